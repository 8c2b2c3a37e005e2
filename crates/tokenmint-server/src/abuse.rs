//! Brute-force protection for client authentication.
//!
//! Failed authentications are counted per source IP and per client_id. A source that fails too
//! often is refused (429) for a while, whatever client_id it tries next. A client_id that fails
//! too often raises an alert and is refused *from the failing source* only: blocking the
//! client_id everywhere would let anyone lock a partner out by sending wrong secrets in its name.
//!
//! The counts and blocks are kept by [`Limits`]: in this process for a single instance, in
//! Redis with `--redis`, so that N instances behind a round-robin balancer give an attacker
//! the configured number of attempts, not N times as many. Redis unreachable, each instance
//! counts and blocks on its own until it answers again (see [`tokenmint_http::limits`]).
//!
//! A failure is counted after its check, not before: requests sent at the same moment are all
//! checked before the block they trip is set, so a burst of K parallel failures may pass the
//! limit by up to K. The portal's sign-in counts first and gives the count back on success,
//! because a person's password is guessable; a client secret is 256 random bits, so the burst
//! buys nothing, and counting first would add a Redis round trip to every successful token
//! request, the hot path.

use std::net::IpAddr;
use std::time::Duration;
use tokenmint_core::PresentedClientId;
use tokenmint_http::Limits;
use tokenmint_http::limits::FailureCount;

#[derive(Debug, Clone)]
pub struct BruteForceConfig {
    /// Failures one source IP may have within `window` before it is blocked.
    pub failures_per_ip: u32,
    /// Failures one client_id may have within `window` before an alert fires and the failing
    /// source is blocked for that client_id.
    pub failures_per_client: u32,
    pub window: Duration,
    pub block_for: Duration,
}

impl Default for BruteForceConfig {
    fn default() -> Self {
        Self {
            failures_per_ip: 30,
            failures_per_client: 10,
            window: Duration::from_secs(300),
            block_for: Duration::from_secs(900),
        }
    }
}

/// What a recorded failure triggered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureOutcome {
    pub source_blocked: bool,
    pub client_threshold_reached: bool,
}

/// The thresholds; the counts and blocks live in [`Limits`], in this process or in Redis.
#[derive(Debug)]
pub struct AbuseGuard {
    config: BruteForceConfig,
}

fn ip_key(ip: IpAddr) -> String {
    format!("bf:ip:{ip}")
}

fn pair_key(client_id: &PresentedClientId, ip: IpAddr) -> String {
    format!("bf:pair:{ip}|{client_id}")
}

impl AbuseGuard {
    pub fn new(config: BruteForceConfig) -> Self {
        Self { config }
    }

    /// Seconds until the source may try again, if it is blocked (for this client_id or at all),
    /// by this instance or, with Redis, by any.
    pub async fn blocked_for(
        &self,
        limits: &Limits,
        ip: Option<IpAddr>,
        client_id: &PresentedClientId,
    ) -> Option<u64> {
        let ip = ip?;
        let (source, pair) = (ip_key(ip), pair_key(client_id, ip));
        let wait = limits.blocked_for(&[source.as_str(), pair.as_str()]).await?;
        Some(u64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(u64::MAX).max(1))
    }

    /// Counts a failed authentication and blocks what crossed its threshold.
    pub async fn record_failure(
        &self,
        limits: &Limits,
        ip: Option<IpAddr>,
        client_id: &PresentedClientId,
    ) -> FailureOutcome {
        let mut out = FailureOutcome::default();
        if let Some(ip) = ip {
            let key = ip_key(ip);
            let counted = limits
                .count_failure(FailureCount {
                    counter: &key,
                    limit: self.config.failures_per_ip,
                    window: self.config.window,
                    block: Some(&key),
                    block_for: self.config.block_for,
                    reset: false,
                })
                .await;
            out.source_blocked = counted.newly_blocked;
        }
        let client_key = format!("bf:client:{client_id}");
        // Without a source address there is no source to block; the count still raises the
        // alert.
        let pair = ip.map(|ip| pair_key(client_id, ip));
        let counted = limits
            .count_failure(FailureCount {
                counter: &client_key,
                limit: self.config.failures_per_client,
                window: self.config.window,
                block: pair.as_deref(),
                block_for: self.config.block_for,
                reset: false,
            })
            .await;
        out.client_threshold_reached = counted.over_limit;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokenmint_http::ManualClock;

    fn id(s: &str) -> PresentedClientId {
        PresentedClientId::parse(s)
    }

    fn guard() -> (AbuseGuard, Limits, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_765_000_000)));
        let g = AbuseGuard::new(BruteForceConfig {
            failures_per_ip: 5,
            failures_per_client: 3,
            window: Duration::from_secs(300),
            block_for: Duration::from_secs(60),
        });
        (g, Limits::local(clock.clone()), clock)
    }

    #[tokio::test]
    async fn a_source_failing_too_often_is_blocked_for_every_client_id() {
        let (g, l, clock) = guard();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..5 {
            let o = g.record_failure(&l, Some(ip), &id(&format!("tmc_{i}"))).await;
            assert!(!o.source_blocked);
        }
        assert!(g.record_failure(&l, Some(ip), &id("tmc_x")).await.source_blocked);
        assert!(!g.record_failure(&l, Some(ip), &id("tmc_x")).await.source_blocked, "once");
        assert_eq!(g.blocked_for(&l, Some(ip), &id("tmc_other")).await, Some(60));
        let elsewhere: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(g.blocked_for(&l, Some(elsewhere), &id("tmc_other")).await, None);
        clock.advance(Duration::from_secs(60));
        assert_eq!(g.blocked_for(&l, Some(ip), &id("tmc_other")).await, None);
    }

    #[tokio::test]
    async fn a_client_id_failing_too_often_alerts_and_blocks_only_the_failing_source() {
        let (g, l, _) = guard();
        let attacker: IpAddr = "198.51.100.9".parse().unwrap();
        for _ in 0..3 {
            let o = g.record_failure(&l, Some(attacker), &id("tmc_victim")).await;
            assert!(!o.client_threshold_reached);
        }
        let o = g.record_failure(&l, Some(attacker), &id("tmc_victim")).await;
        assert!(o.client_threshold_reached);
        assert!(g.blocked_for(&l, Some(attacker), &id("tmc_victim")).await.is_some());
        let partner: IpAddr = "203.0.113.5".parse().unwrap();
        assert_eq!(g.blocked_for(&l, Some(partner), &id("tmc_victim")).await, None);
    }

    #[tokio::test]
    async fn a_client_id_of_any_length_is_counted_under_its_own_key() {
        let (g, l, _) = guard();
        let ip: IpAddr = "198.51.100.10".parse().unwrap();
        // Longer than any client_id: kept bounded, and counted apart from another such id.
        let long = format!("a{}", "x".repeat(100_000));
        let other = format!("b{}", "x".repeat(100_000));
        for _ in 0..4 {
            g.record_failure(&l, Some(ip), &id(&long)).await;
        }
        assert!(g.blocked_for(&l, Some(ip), &id(&long)).await.is_some());
        assert!(g.blocked_for(&l, Some(ip), &id(&other)).await.is_none());
    }
}
