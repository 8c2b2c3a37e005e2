//! Prometheus metrics of the gateway, served at `GET /metrics`.
//!
//! The registry belongs to one gateway (no global state, so tests running several gateways in
//! one process do not mix counts). The verifier keeps its own atomic counters; a collector reads
//! them at scrape time instead of mirroring every increment on the hot path.

use crate::issuers::IssuerSlot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokenmint_verify::{MetricsSnapshot, RejectReason};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's path prefix, or `none` when no route matched.
    pub route: String,
    pub status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    pub route: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusalLabels {
    pub route: String,
    pub reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabel {
    pub issuer: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    pub result: String,
}

/// The gateway's metrics and the registry that exports them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub refusals: Family<RefusalLabels, Counter>,
    /// Seconds from the request to the upstream's response headers (or the refusal).
    pub duration: Family<RouteLabel, Histogram>,
    pub reloads: Family<ResultLabel, Counter>,
    pub routes: Gauge,
}

impl Metrics {
    pub fn new(issuers: Arc<[Arc<IssuerSlot>]>, limits_fallback: Gauge) -> Self {
        let mut registry = Registry::with_prefix("tokenmint_gateway");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("requests", "Requests answered, by route and status", requests.clone());
        let refusals = Family::<RefusalLabels, Counter>::default();
        registry.register(
            "refusals",
            "Requests the gateway answered itself, by route and reason",
            refusals.clone(),
        );
        let duration = Family::<RouteLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        registry.register(
            "request_duration_seconds",
            "Time until the response headers, by route",
            duration.clone(),
        );
        let reloads = Family::<ResultLabel, Counter>::default();
        registry.register("config_reloads", "Configuration reloads, by result", reloads.clone());
        let routes = Gauge::default();
        registry.register("routes", "Routes in the configuration in force", routes.clone());
        registry.register(
            "rate_limit_local_fallback",
            "1 while Redis is unreachable and rate limits are decided by this instance alone",
            limits_fallback,
        );
        registry.register_collector(Box::new(VerifierCollector(issuers)));
        Self { registry, requests, refusals, duration, reloads, routes }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Reads the verifiers' counters at scrape time, summed over the issuers whose keys have
/// loaded.
#[derive(Debug)]
struct VerifierCollector(Arc<[Arc<IssuerSlot>]>);

impl VerifierCollector {
    fn snapshot(&self) -> MetricsSnapshot {
        let mut total = MetricsSnapshot::default();
        for verifier in self.0.iter().filter_map(|slot| slot.loaded()) {
            let m = verifier.metrics();
            total.accepted += m.accepted;
            total.cache_hits += m.cache_hits;
            total.signature_checks += m.signature_checks;
            for (sum, n) in total.rejected.iter_mut().zip(m.rejected) {
                *sum += n;
            }
            total.jwks_fetches += m.jwks_fetches;
            total.jwks_fetch_failures += m.jwks_fetch_failures;
            total.jwks_refetches_suppressed += m.jwks_refetches_suppressed;
            total.jwks_stale_uses += m.jwks_stale_uses;
            total.revocations_applied += m.revocations_applied;
            total.revocations_live += m.revocations_live;
            total.revocation_feed_failures += m.revocation_feed_failures;
            total.revocation_last_sync = total.revocation_last_sync.max(m.revocation_last_sync);
        }
        // Up only when every feed that is (or, for an issuer not loaded yet, may be) followed
        // is up: one issuer's feed being down is what an alert on 0 is for. 0 without feeds.
        let feeds: Vec<bool> = self.0.iter().filter_map(|slot| slot.feed_up()).collect();
        total.revocation_feed_up = u64::from(!feeds.is_empty() && feeds.iter().all(|up| *up));
        total
    }
}

fn counter(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: u64,
) -> std::fmt::Result {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> std::fmt::Result {
    let metric = ConstGauge::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for VerifierCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let m = self.snapshot();
        let e = &mut encoder;
        counter(e, "tokens_accepted", "Access tokens accepted", m.accepted)?;
        counter(e, "token_cache_hits", "Tokens accepted without a signature check", m.cache_hits)?;
        counter(e, "signature_checks", "Signature verifications", m.signature_checks)?;
        {
            let family = Family::<ResultLabel, Counter>::default();
            for reason in RejectReason::ALL {
                family
                    .get_or_create(&ResultLabel { result: reason.as_str().to_owned() })
                    .inc_by(m.rejected(reason));
            }
            family.encode(e.encode_descriptor(
                "tokens_rejected",
                "Access tokens refused, by reason (label result)",
                None,
                family.metric_type(),
            )?)?;
        }
        counter(e, "jwks_fetches", "JWKS fetches", m.jwks_fetches)?;
        counter(e, "jwks_fetch_failures", "Failed JWKS fetches", m.jwks_fetch_failures)?;
        counter(
            e,
            "jwks_refetches_suppressed",
            "Unknown-kid refetches skipped by the cooldown",
            m.jwks_refetches_suppressed,
        )?;
        counter(e, "revocations_applied", "Revocation entries applied", m.revocations_applied)?;
        gauge(
            e,
            "revocations_live",
            "Revocation entries held",
            i64::try_from(m.revocations_live).unwrap_or(i64::MAX),
        )?;
        counter(
            e,
            "revocation_feed_failures",
            "Failed revocation feed requests",
            m.revocation_feed_failures,
        )?;
        gauge(
            e,
            "revocation_feed_up",
            "1 when the last request to every followed revocation feed succeeded; 0 while one \
             fails or has not been reached yet",
            i64::from(m.revocation_feed_up == 1),
        )?;
        gauge(
            e,
            "revocation_last_sync_timestamp_seconds",
            "Unix time of the last successful revocation feed read",
            m.revocation_last_sync,
        )?;
        {
            let family = Family::<IssuerLabel, Gauge>::default();
            for slot in self.0.iter() {
                let ready = slot.state() == crate::issuers::State::Ready;
                family
                    .get_or_create(&IssuerLabel { issuer: slot.url.clone() })
                    .set(i64::from(ready));
            }
            family.encode(e.encode_descriptor(
                "issuer_ready",
                "1 once the issuer's keys are loaded and its revocation feed (when followed) has \
                 been read; its tokens are answered 503 before",
                None,
                family.metric_type(),
            )?)?;
        }
        Ok(())
    }
}
