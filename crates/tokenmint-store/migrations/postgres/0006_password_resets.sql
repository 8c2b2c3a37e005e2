-- One-time password-reset codes for portal users (postgres). Only the SHA-256 of a code is kept;
-- a code works once, until it expires, on any instance, and issuing a new one for a user
-- replaces the user's earlier ones.
CREATE TABLE password_resets (
    code_hash   TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES portal_users (id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX password_resets_by_user ON password_resets (user_id);
-- The audit page filters by actor, newest first.
CREATE INDEX audit_events_by_actor ON audit_events (actor, seq);
