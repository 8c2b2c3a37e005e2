//! The one application state, built once in [`crate::Application::build`].

use crate::cache::CredentialCache;
use crate::clock::Clock;
use crate::config::Config;
use crate::keyring::{Decrypted, KeyRing};
use crate::metrics::Metrics;
use crate::revocations::RevocationSet;
use crate::usage::UsageRecorder;
use bytes::Bytes;
use std::ops::Deref;
use std::sync::Arc;
use tokenmint_core::SecretHasher;
use tokenmint_store::Store;

#[derive(Debug)]
pub struct Inner {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hasher: SecretHasher,
    pub credentials: CredentialCache,
    pub keys: KeyRing,
    pub decrypted: tokio::sync::Mutex<Decrypted>,
    pub revocations: RevocationSet,
    /// Token-request limits, brute-force counters and alert claims: local, or shared by every
    /// instance through Redis.
    pub limits: Arc<tokenmint_http::Limits>,
    /// When the change log was last read successfully (nanoseconds since `started`).
    pub last_sync_ok: std::sync::atomic::AtomicU64,
    pub started: std::time::Instant,
    /// Woken by the store's change notifications (PostgreSQL), to sync at once.
    pub changed: tokio::sync::Notify,
    pub usage: UsageRecorder,
    pub audit: Arc<crate::audit::AuditLog>,
    pub abuse: crate::abuse::AbuseGuard,
    pub alerts: Arc<crate::alerts::Alerts>,
    /// Sign-in throttling and one-time flashes of the portal.
    pub portal: crate::portal::PortalState,
    pub metrics: Metrics,
    /// The provider's token hook, when configured.
    pub token_hook: Option<crate::hook::TokenHook>,
    /// The `iss` of every token, without a trailing slash.
    pub issuer: String,
    /// The discovery document, serialised once.
    pub metadata_json: Bytes,
    /// The OpenID Connect Discovery document (the RFC 8414 one plus OIDC's required members).
    pub openid_metadata_json: Bytes,
    pub token_endpoint: String,
    /// The audiences a `private_key_jwt` assertion may name (RFC 7523 §3): the issuer, and the
    /// token endpoint's URL under each of its paths.
    pub assertion_audiences: Vec<String>,
    /// Serialises change-log syncs (never on the token path).
    pub sync_lock: tokio::sync::Mutex<i64>,
}

/// Cheap to clone: one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState(pub Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    pub fn now(&self) -> tokenmint_core::UnixTime {
        self.clock.now()
    }

    fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn mark_synced(&self) {
        self.last_sync_ok.store(self.monotonic_nanos(), std::sync::atomic::Ordering::Release);
    }

    /// Whether the cache may still be trusted: the change log was read recently enough.
    /// Measured on the monotonic clock: it is about outages, not about token times.
    pub fn cache_is_fresh(&self) -> bool {
        let last = self.last_sync_ok.load(std::sync::atomic::Ordering::Acquire);
        let limit = u64::try_from(self.config.max_cache_staleness.as_nanos()).unwrap_or(u64::MAX);
        self.monotonic_nanos().saturating_sub(last) <= limit
    }
}
