-- Portal users and their server-side sessions (PostgreSQL).
-- Emails are unique whatever their case: `email_key` holds the lower-cased address.
-- Passwords are Argon2id PHC strings. A session row holds only the SHA-256 of the session id
-- that is in the browser's cookie, so a copy of the database cannot be used to sign in.

CREATE TABLE portal_users (
    id               TEXT PRIMARY KEY,
    org              TEXT NOT NULL REFERENCES organizations (slug),
    email            TEXT NOT NULL,
    email_key        TEXT NOT NULL UNIQUE,
    role             TEXT NOT NULL CHECK (role IN ('admin', 'viewer', 'platform')),
    password_hash    TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('active', 'deactivated')),
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    last_sign_in_at  BIGINT
);
CREATE INDEX portal_users_by_org ON portal_users (org, email_key);

CREATE TABLE portal_sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    csrf_secret TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX portal_sessions_by_user ON portal_sessions (user_id);
CREATE INDEX portal_sessions_by_expiry ON portal_sessions (expires_at);
