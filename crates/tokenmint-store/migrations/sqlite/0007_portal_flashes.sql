-- What the portal shows once on a session's next page (a new client secret, a new user's
-- password), kept here rather than in one instance's memory so that any instance can show it:
-- sealed with the master key, bound to its session (and deleted with it), taken once.
CREATE TABLE portal_flashes (
    session_hash TEXT PRIMARY KEY REFERENCES portal_sessions (id_hash) ON DELETE CASCADE,
    purpose      TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX portal_flashes_by_expiry ON portal_flashes (expires_at);
-- The credential list searches names case-insensitively within an organization, newest first.
CREATE INDEX credentials_by_org_newest ON credentials (org, created_at DESC, client_id DESC);
