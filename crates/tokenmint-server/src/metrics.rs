//! Prometheus metrics, registered in a registry owned by the application (no global state).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AlgLabel {
    pub alg: &'static str,
}

#[derive(Debug)]
pub struct Metrics {
    pub registry: Registry,
    pub tokens_issued: Family<AlgLabel, Counter>,
    pub token_requests_refused: Family<ReasonLabel, Counter>,
    pub token_request_seconds: Histogram,
    pub rate_limited: Counter,
    pub cache_hits: Gauge<u64, AtomicU64>,
    pub cache_misses: Gauge<u64, AtomicU64>,
    pub signing_key_age_seconds: Gauge<i64>,
    pub sync_errors: Counter,
    pub sources_blocked: Counter,
    pub audit_dropped: Gauge<u64, AtomicU64>,
    pub audit_write_lag_seconds: Gauge<i64>,
    pub tokens_issued_by_org: Family<OrgLabel, Counter>,
    /// Credential reads from the database made while authenticating clients.
    pub client_auth_store_reads: Counter,
    /// Presented secrets checked against a credential (or against the stand-in for an
    /// unknown client_id).
    pub client_auth_secret_checks: Counter,
    /// Portal sign-in passwords checked against an Argon2id hash (or against the stand-in for
    /// an unknown email).
    pub portal_password_checks: Counter,
    issued_by_alg: [Counter; 3],
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OrgLabel {
    pub org: String,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tokenmint");
        let tokens_issued = Family::<AlgLabel, Counter>::default();
        registry.register("tokens_issued", "Access tokens issued", tokens_issued.clone());
        let token_requests_refused = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "token_requests_refused",
            "Token requests refused, by reason",
            token_requests_refused.clone(),
        );
        let token_request_seconds = Histogram::new([
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
        ]);
        registry.register(
            "token_request_seconds",
            "Token endpoint latency",
            token_request_seconds.clone(),
        );
        let rate_limited = Counter::default();
        registry.register(
            "token_requests_rate_limited",
            "Token requests refused by the per-client limit",
            rate_limited.clone(),
        );
        let cache_hits = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "credential_cache_hits",
            "Credential lookups served from memory",
            cache_hits.clone(),
        );
        let cache_misses = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "credential_cache_misses",
            "Credential lookups that read the database",
            cache_misses.clone(),
        );
        let signing_key_age_seconds = Gauge::<i64>::default();
        registry.register(
            "signing_key_age_seconds",
            "Seconds since the active signing key started signing",
            signing_key_age_seconds.clone(),
        );
        let sync_errors = Counter::default();
        registry.register("sync_errors", "Failed reads of the change log", sync_errors.clone());
        let sources_blocked = Counter::default();
        registry.register(
            "sources_blocked",
            "Sources blocked after repeated failed authentications",
            sources_blocked.clone(),
        );
        let audit_dropped = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "audit_events_dropped",
            "Audit events dropped because the queue was full",
            audit_dropped.clone(),
        );
        let audit_write_lag_seconds = Gauge::<i64>::default();
        registry.register(
            "audit_write_lag_seconds",
            "Age of the oldest audit event not yet written",
            audit_write_lag_seconds.clone(),
        );
        let tokens_issued_by_org = Family::<OrgLabel, Counter>::default();
        registry.register(
            "tokens_issued_by_org",
            "Access tokens issued per organization (with --metrics-per-org)",
            tokens_issued_by_org.clone(),
        );
        let client_auth_store_reads = Counter::default();
        registry.register(
            "client_auth_store_reads",
            "Credential reads from the database while authenticating clients: one per refused \
             authentication, none for an accepted one served from memory",
            client_auth_store_reads.clone(),
        );
        let client_auth_secret_checks = Counter::default();
        registry.register(
            "client_auth_secret_checks",
            "Presented client secrets checked, known client or not",
            client_auth_secret_checks.clone(),
        );
        let portal_password_checks = Counter::default();
        registry.register(
            "portal_password_checks",
            "Portal sign-in passwords checked, known email or not",
            portal_password_checks.clone(),
        );
        let issued_by_alg = tokenmint_core::keys::SigningAlgorithm::ALL
            .map(|a| tokens_issued.get_or_create(&AlgLabel { alg: a.as_str() }).clone());
        Self {
            client_auth_store_reads,
            client_auth_secret_checks,
            portal_password_checks,
            sources_blocked,
            audit_dropped,
            audit_write_lag_seconds,
            tokens_issued_by_org,
            issued_by_alg,
            registry,
            tokens_issued,
            token_requests_refused,
            token_request_seconds,
            rate_limited,
            cache_hits,
            cache_misses,
            signing_key_age_seconds,
            sync_errors,
        }
    }

    /// Counts an issued token. The per-algorithm counters are resolved once, so this is one
    /// atomic add, with no lookup in the label family.
    pub fn issued(&self, alg: tokenmint_core::keys::SigningAlgorithm) {
        use tokenmint_core::keys::SigningAlgorithm as A;
        let i = match alg {
            A::RS256 => 0,
            A::ES256 => 1,
            A::EdDSA => 2,
        };
        self.issued_by_alg[i].inc();
    }

    pub fn issued_for_org(&self, org: &str) {
        self.tokens_issued_by_org.get_or_create(&OrgLabel { org: org.to_owned() }).inc();
    }

    pub fn refused(&self, reason: &'static str) {
        self.token_requests_refused.get_or_create(&ReasonLabel { reason }).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
