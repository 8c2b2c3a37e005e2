-- When each alert (its rule and subject, hashed) last fired (sqlite), so that instances sharing
-- the database fire an alert they all see once per cooldown, not once each. Claims older than
-- the cooldown are deleted by the next claim.
CREATE TABLE alert_claims (
    subject_hash  TEXT PRIMARY KEY,
    fired_at      BIGINT NOT NULL
);
CREATE INDEX alert_claims_by_time ON alert_claims (fired_at);
