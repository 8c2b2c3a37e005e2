-- Revocation cut-offs to the microsecond (a token's iat has one-second resolution; its jti
-- carries its issue time). Older instances keep reading tokens_revoked_before.
ALTER TABLE credentials ADD COLUMN tokens_revoked_through_us BIGINT;
ALTER TABLE revocations ADD COLUMN issued_before_jti TEXT;
