-- tokenmint schema, version 1 (PostgreSQL).
-- Instants are Unix seconds (BIGINT). Secrets and private keys are never stored in clear:
-- credential_secrets.hash is an HMAC under a master-key-derived key, signing_keys.sealed_private
-- is AES-256-GCM under another.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE organizations (
    slug       TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE credentials (
    client_id             TEXT PRIMARY KEY,
    org                   TEXT NOT NULL REFERENCES organizations (slug),
    name                  TEXT NOT NULL,
    environment           TEXT NOT NULL CHECK (environment IN ('sandbox', 'production')),
    permissions           TEXT NOT NULL,
    audiences             TEXT NOT NULL,
    token_lifetime_secs   BIGINT NOT NULL,
    rate_limit_per_minute BIGINT,
    status                TEXT NOT NULL CHECK (status IN ('active', 'deactivated')),
    expires_at            BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL,
    last_used_at          BIGINT,
    tokens_revoked_before BIGINT,
    revision              BIGINT NOT NULL
);
CREATE INDEX credentials_by_created ON credentials (created_at, client_id);
CREATE INDEX credentials_by_org ON credentials (org, created_at, client_id);

CREATE TABLE credential_secrets (
    id           TEXT PRIMARY KEY,
    client_id    TEXT NOT NULL REFERENCES credentials (client_id) ON DELETE CASCADE,
    hash         BYTEA NOT NULL,
    hint         TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX credential_secrets_by_client ON credential_secrets (client_id);

CREATE TABLE signing_keys (
    kid            TEXT PRIMARY KEY,
    alg            TEXT NOT NULL,
    sealed_private BYTEA NOT NULL,
    created_at     BIGINT NOT NULL,
    activates_at   BIGINT NOT NULL,
    withdrawn_at   BIGINT
);

CREATE TABLE revocations (
    seq           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('token', 'credential', 'key')),
    subject       TEXT NOT NULL,
    issued_before BIGINT,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

CREATE TABLE changes (
    seq    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity TEXT NOT NULL,
    key    TEXT NOT NULL,
    at     BIGINT NOT NULL
);
