//! Metrics hooks.
//!
//! The crate keeps no global registry: a [`TokenClient`](crate::TokenClient) reports to the
//! [`Metrics`] value it was built with, and the program forwards the events to whatever it uses
//! (Prometheus, StatsD, logs). [`CountingMetrics`] is a ready-made in-memory counter.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

/// Something the client did that is worth counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MetricEvent {
    /// A caller was served a cached token without waiting.
    CacheHit,
    /// A caller found no usable token and waited for a fetch.
    CacheMiss,
    /// A caller was answered from the negative cache: a fetch failed moments ago.
    NegativeCacheHit,
    /// A background refresh of a still-valid token started.
    RefreshStarted,
    /// A request was sent to the token endpoint.
    TokenRequest,
    /// A token fetch succeeded.
    TokenFetched,
    /// A token fetch failed (after its retries).
    TokenFetchFailed,
    /// The token endpoint answered 429, 5xx or not at all, and the request is being retried.
    TokenEndpointRetry,
    /// The API answered 401; a new token was fetched and the request sent again.
    ApiUnauthorizedRetry,
    /// The API answered 429 or 503; the request is sent again after `Retry-After`.
    ApiRateLimitedRetry,
}

impl MetricEvent {
    /// Every event, in declaration order.
    pub const ALL: [Self; 10] = [
        Self::CacheHit,
        Self::CacheMiss,
        Self::NegativeCacheHit,
        Self::RefreshStarted,
        Self::TokenRequest,
        Self::TokenFetched,
        Self::TokenFetchFailed,
        Self::TokenEndpointRetry,
        Self::ApiUnauthorizedRetry,
        Self::ApiRateLimitedRetry,
    ];

    /// A stable snake_case name, suitable as a metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CacheHit => "cache_hit",
            Self::CacheMiss => "cache_miss",
            Self::NegativeCacheHit => "negative_cache_hit",
            Self::RefreshStarted => "refresh_started",
            Self::TokenRequest => "token_request",
            Self::TokenFetched => "token_fetched",
            Self::TokenFetchFailed => "token_fetch_failed",
            Self::TokenEndpointRetry => "token_endpoint_retry",
            Self::ApiUnauthorizedRetry => "api_unauthorized_retry",
            Self::ApiRateLimitedRetry => "api_rate_limited_retry",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// Receives [`MetricEvent`]s. Called on the hot path, so implementations should be cheap and
/// must not block.
pub trait Metrics: Send + Sync + fmt::Debug + 'static {
    /// Records one occurrence of `event`.
    fn record(&self, event: MetricEvent);
}

/// Discards every event; the default.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _event: MetricEvent) {}
}

/// Counts events in memory.
#[derive(Debug, Default)]
pub struct CountingMetrics {
    counts: [AtomicU64; MetricEvent::ALL.len()],
}

impl CountingMetrics {
    /// A counter with every count at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many times `event` has been recorded.
    pub fn get(&self, event: MetricEvent) -> u64 {
        self.counts[event.index()].load(Ordering::Relaxed)
    }
}

impl Metrics for CountingMetrics {
    fn record(&self, event: MetricEvent) {
        self.counts[event.index()].fetch_add(1, Ordering::Relaxed);
    }
}

impl<M: Metrics> Metrics for std::sync::Arc<M> {
    fn record(&self, event: MetricEvent) {
        (**self).record(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_has_its_own_counter() {
        let metrics = CountingMetrics::new();
        for (i, event) in MetricEvent::ALL.into_iter().enumerate() {
            assert_eq!(event.index(), i);
            metrics.record(event);
        }
        metrics.record(MetricEvent::CacheHit);
        assert_eq!(metrics.get(MetricEvent::CacheHit), 2);
        assert_eq!(metrics.get(MetricEvent::ApiRateLimitedRetry), 1);
    }
}
