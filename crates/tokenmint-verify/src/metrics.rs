//! Counters the verifier keeps, for its owner to export.
//!
//! They are plain atomics owned by one verifier (no global registry), so two verifiers in one
//! process, or two tests, never share counts. An owner exporting Prometheus metrics reads a
//! [`MetricsSnapshot`] at scrape time.

use crate::error::RejectReason;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Live counters of one verifier. Read them with [`Metrics::snapshot`].
#[derive(Debug, Default)]
pub struct Metrics {
    pub(crate) accepted: AtomicU64,
    pub(crate) cache_hits: AtomicU64,
    pub(crate) signature_checks: AtomicU64,
    pub(crate) rejected: [AtomicU64; RejectReason::ALL.len()],
    pub(crate) jwks_fetches: AtomicU64,
    pub(crate) jwks_fetch_failures: AtomicU64,
    pub(crate) jwks_refetches_suppressed: AtomicU64,
    pub(crate) jwks_stale_uses: AtomicU64,
    pub(crate) revocations_applied: AtomicU64,
    pub(crate) revocations_live: AtomicU64,
    pub(crate) revocation_feed_failures: AtomicU64,
    pub(crate) revocation_feed_up: AtomicU64,
    pub(crate) revocation_stream_connected: AtomicU64,
    pub(crate) revocation_last_sync: AtomicI64,
}

/// A copy of the counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Tokens accepted (cache hits included).
    pub accepted: u64,
    /// Tokens accepted from the verified-token cache, without a signature check.
    pub cache_hits: u64,
    /// Signature verifications performed.
    pub signature_checks: u64,
    /// Tokens refused, by reason, in the order of [`RejectReason::ALL`].
    pub rejected: [u64; RejectReason::ALL.len()],
    /// JWKS fetches started (the initial one included).
    pub jwks_fetches: u64,
    /// JWKS fetches that failed; the previous keys stayed in use.
    pub jwks_fetch_failures: u64,
    /// Unknown-`kid` refetches not made because of the cooldown.
    pub jwks_refetches_suppressed: u64,
    /// Verifications that used keys whose refresh had failed.
    pub jwks_stale_uses: u64,
    /// Revocation entries received from the feed or applied by hand.
    pub revocations_applied: u64,
    /// Revocation entries currently held (gauge).
    pub revocations_live: u64,
    /// Failed feed requests (poll or stream).
    pub revocation_feed_failures: u64,
    /// 1 when the last feed request succeeded, else 0 (gauge).
    pub revocation_feed_up: u64,
    /// 1 while the SSE stream is open, else 0 (gauge).
    pub revocation_stream_connected: u64,
    /// Unix time of the last successful feed read; 0 before the first (gauge).
    pub revocation_last_sync: i64,
}

impl MetricsSnapshot {
    /// Tokens refused for `reason`.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason as usize]
    }

    /// Tokens refused for any reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }
}

impl Metrics {
    /// Reads every counter. Each value is exact; the set is not one atomic picture, which is
    /// fine for monitoring.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            accepted: get(&self.accepted),
            cache_hits: get(&self.cache_hits),
            signature_checks: get(&self.signature_checks),
            rejected: std::array::from_fn(|i| get(&self.rejected[i])),
            jwks_fetches: get(&self.jwks_fetches),
            jwks_fetch_failures: get(&self.jwks_fetch_failures),
            jwks_refetches_suppressed: get(&self.jwks_refetches_suppressed),
            jwks_stale_uses: get(&self.jwks_stale_uses),
            revocations_applied: get(&self.revocations_applied),
            revocations_live: get(&self.revocations_live),
            revocation_feed_failures: get(&self.revocation_feed_failures),
            revocation_feed_up: get(&self.revocation_feed_up),
            revocation_stream_connected: get(&self.revocation_stream_connected),
            revocation_last_sync: self.revocation_last_sync.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn incr(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn reject(&self, reason: RejectReason) {
        Self::incr(&self.rejected[reason as usize]);
    }
}
