-- Audit trail, per-minute token counts, alert deliveries and the networks credentials are used
-- from (PostgreSQL).

CREATE TABLE audit_events (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    org       TEXT,
    client_id TEXT,
    actor     TEXT,
    source_ip TEXT,
    reason    TEXT,
    details   TEXT NOT NULL
);
CREATE INDEX audit_events_by_at ON audit_events (at);
CREATE INDEX audit_events_by_org ON audit_events (org, seq);
CREATE INDEX audit_events_by_client ON audit_events (client_id, seq);
CREATE INDEX audit_events_by_kind ON audit_events (kind, seq);

CREATE TABLE token_counts (
    client_id TEXT NOT NULL,
    minute    BIGINT NOT NULL,
    count     BIGINT NOT NULL,
    PRIMARY KEY (client_id, minute)
);

CREATE TABLE alert_deliveries (
    id           TEXT PRIMARY KEY,
    at           BIGINT NOT NULL,
    kind         TEXT NOT NULL,
    target       TEXT NOT NULL,
    payload      TEXT NOT NULL,
    attempts     BIGINT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('delivered', 'failed')),
    last_error   TEXT
);
CREATE INDEX alert_deliveries_by_at ON alert_deliveries (at);

CREATE TABLE credential_networks (
    client_id  TEXT NOT NULL,
    network    TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (client_id, network)
);
