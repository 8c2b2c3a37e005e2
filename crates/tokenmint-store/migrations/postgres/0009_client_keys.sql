-- private_key_jwt (RFC 7523): the public keys a credential registers, as a JSON array of public
-- JWKs ('[]': none; older instances ignore the column), and the assertion ids (`jti`) already
-- used, each kept until its assertion has expired, so that an assertion is accepted once across
-- every instance sharing the database. The key is a hash of the client_id and the jti.
ALTER TABLE credentials ADD COLUMN public_keys TEXT NOT NULL DEFAULT '[]';
CREATE TABLE used_client_assertions (
    replay_key  TEXT PRIMARY KEY,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX used_client_assertions_by_expiry ON used_client_assertions (expires_at);
