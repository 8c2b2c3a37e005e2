//! The server's validated configuration. Layering (flags, environment, TOML) and the messages
//! that name a wrong setting live in the binary; by the time a [`Config`] exists every value
//! in it is valid.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;

/// Default token-endpoint path (Wellhub, and most servers).
pub const DEFAULT_TOKEN_PATH: &str = "/oauth/token";

pub use tokenmint_http::{DEFAULT_HEADER_TIMEOUT, TlsFiles};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    /// The `iss` claim and base of every advertised URL, without a trailing slash; `None`:
    /// `http://` + the address actually bound.
    pub issuer: Option<String>,
    /// Every path that serves the token endpoint; the first is advertised.
    pub token_paths: Vec<String>,
    pub allow_missing_grant_type: bool,
    pub signing_alg: SigningAlgorithm,
    /// Token requests per minute per credential; 0 disables the limit.
    pub token_rate_limit: u32,
    pub product_areas: ProductAreas,
    /// Custom claims an organization's admins may set and remove on its credentials; every
    /// other claim is the platform's (see [`crate::service::policy`]).
    pub org_editable_claims: Vec<String>,
    pub master_key: MasterKey,
    /// Upper bound on any token's lifetime, in seconds; also how long a retired key stays
    /// published.
    pub max_token_lifetime: u32,
    /// Age at which the active signing key is replaced; zero disables the schedule.
    pub key_rotation_interval: Duration,
    /// How long a new key is published before it signs.
    pub key_propagation: Duration,
    /// Largest request body accepted by the OAuth endpoints.
    pub max_body_bytes: usize,
    /// Where `serve` writes the admin credential when it initialises an empty database.
    pub admin_credential_file: Option<PathBuf>,
    /// How often the change log is polled for changes made by other processes.
    pub sync_interval: Duration,
    pub brute_force: crate::abuse::BruteForceConfig,
    pub alerts: crate::alerts::AlertConfig,
    /// How long audit records, token counts and alert deliveries are kept.
    pub audit_retention: Duration,
    /// Adds a per-organization label to the issued-token counter (bounded by the number of
    /// organizations; off by default).
    pub metrics_per_org: bool,
    /// Redis URL for rate limits shared by several instances; `None`: in-process limits.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key tokenmint writes.
    pub redis_prefix: String,
    /// How long cached credentials keep being served while the database cannot be read; past
    /// it, token requests get 503 rather than answers from a cache that may be stale.
    pub max_cache_staleness: Duration,
    /// Serve HTTPS with this certificate and key (PEM), re-read when the files change.
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are checked for a renewal.
    pub tls_reload_interval: Duration,
    /// Serve plain HTTP on a non-loopback address although nothing in front encrypts it.
    pub insecure_http: bool,
    /// Reverse proxies whose `X-Forwarded-For` is believed; plain HTTP is then allowed on any
    /// address, as the proxy terminates TLS.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open.
    pub header_timeout: Duration,
    /// How long a request may take from its headers to its response's headers.
    pub request_timeout: Duration,
    /// The provider's token hook, called at issuance (`--token-hook`).
    pub token_hook: Option<crate::hook::HookConfig>,
}

impl Config {
    /// A configuration with every default, for tests and as the base of layering.
    pub fn new(database_url: impl Into<String>, master_key: MasterKey) -> Self {
        let listen: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080));
        Self {
            listen,
            database_url: database_url.into(),
            issuer: None,
            token_paths: vec![DEFAULT_TOKEN_PATH.to_owned()],
            allow_missing_grant_type: false,
            signing_alg: SigningAlgorithm::RS256,
            token_rate_limit: 100,
            product_areas: ProductAreas::default(),
            org_editable_claims: Vec::new(),
            master_key,
            max_token_lifetime: 86_400,
            key_rotation_interval: Duration::from_secs(90 * 86_400),
            key_propagation: Duration::from_secs(15 * 60),
            max_body_bytes: 16 * 1024,
            admin_credential_file: None,
            sync_interval: Duration::from_secs(1),
            brute_force: crate::abuse::BruteForceConfig::default(),
            alerts: crate::alerts::AlertConfig::default(),
            audit_retention: Duration::from_secs(90 * 86_400),
            metrics_per_org: false,
            redis_url: None,
            redis_prefix: "tokenmint:ratelimit:".to_owned(),
            max_cache_staleness: Duration::from_secs(600),
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            insecure_http: false,
            trusted_proxies: Vec::new(),
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            request_timeout: Duration::from_secs(30),
            token_hook: None,
        }
    }

    /// `Cache-Control: max-age` of the JWKS: short enough that every verifier has refetched it
    /// well within the propagation delay of a new key.
    pub fn jwks_max_age(&self) -> u64 {
        (self.key_propagation.as_secs() / 3).clamp(0, 3600)
    }
}
