//! Brute-force protection for client authentication.
//!
//! Failed authentications are counted per source IP and per client_id. A source that fails too
//! often is refused (429) for a while, whatever client_id it tries next. A client_id that fails
//! too often raises an alert and is refused *from the failing source* only: blocking the
//! client_id everywhere would let anyone lock a partner out by sending wrong secrets in its name.

use quick_cache::sync::Cache;
use std::net::IpAddr;
use std::time::Duration;
use tokenmint_core::{PresentedClientId, UnixTime};
use tokenmint_http::ratelimit::{Decision, RateLimiter, unix_seconds};

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

#[derive(Debug)]
pub struct AbuseGuard {
    config: BruteForceConfig,
    failures: RateLimiter,
    /// Blocked keys (`ip:…` or `pair:…`) and when the block ends.
    blocked: Cache<String, UnixTime>,
}

fn ip_key(ip: IpAddr) -> String {
    format!("ip:{ip}")
}

fn pair_key(client_id: &PresentedClientId, ip: IpAddr) -> String {
    format!("pair:{ip}|{client_id}")
}

impl AbuseGuard {
    pub fn new(config: BruteForceConfig) -> Self {
        Self { config, failures: RateLimiter::new(100_000), blocked: Cache::new(100_000) }
    }

    /// Seconds until the source may try again, if it is blocked (for this client_id or at all).
    pub fn blocked_for(
        &self,
        ip: Option<IpAddr>,
        client_id: &PresentedClientId,
        now: UnixTime,
    ) -> Option<u64> {
        // The common case has no block at all: no key is built, nothing is looked up.
        let ip = ip?;
        if self.blocked.is_empty() {
            return None;
        }
        let mut longest: Option<UnixTime> = None;
        for key in [ip_key(ip), pair_key(client_id, ip)] {
            match self.blocked.get(&key) {
                Some(until) if until > now => {
                    longest = Some(longest.map_or(until, |l| l.max(until)))
                }
                // Expired blocks are removed, so the no-block fast path comes back.
                Some(_) => {
                    self.blocked.remove(&key);
                }
                None => {}
            }
        }
        longest.map(|until| u64::try_from(until - now).unwrap_or(1).max(1))
    }

    /// Counts a failed authentication and blocks what crossed its threshold.
    pub fn record_failure(
        &self,
        ip: Option<IpAddr>,
        client_id: &PresentedClientId,
        now: UnixTime,
    ) -> FailureOutcome {
        let mut out = FailureOutcome::default();
        let until = now + i64::try_from(self.config.block_for.as_secs()).unwrap_or(900);
        if let Some(ip) = ip
            && matches!(
                self.failures.check_quota(
                    &ip_key(ip),
                    self.config.failures_per_ip,
                    self.config.window,
                    unix_seconds(now),
                ),
                Decision::Limited { .. }
            )
        {
            out.source_blocked = self.block(ip_key(ip), now, until);
        }
        let client_key = format!("client:{client_id}");
        if matches!(
            self.failures.check_quota(
                &client_key,
                self.config.failures_per_client,
                self.config.window,
                unix_seconds(now),
            ),
            Decision::Limited { .. }
        ) {
            out.client_threshold_reached = true;
            if let Some(ip) = ip {
                self.block(pair_key(client_id, ip), now, until);
            }
        }
        out
    }

    /// Blocks `key` until `until`; returns whether it was not blocked already.
    fn block(&self, key: String, now: UnixTime, until: UnixTime) -> bool {
        let fresh = self.blocked.get(&key).is_none_or(|t| t <= now);
        if fresh {
            self.blocked.insert(key, until);
        }
        fresh
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> PresentedClientId {
        PresentedClientId::parse(s)
    }

    fn guard() -> AbuseGuard {
        AbuseGuard::new(BruteForceConfig {
            failures_per_ip: 5,
            failures_per_client: 3,
            window: Duration::from_secs(300),
            block_for: Duration::from_secs(60),
        })
    }

    #[test]
    fn a_source_failing_too_often_is_blocked_for_every_client_id() {
        let g = guard();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..5 {
            let o = g.record_failure(Some(ip), &id(&format!("tmc_{i}")), 100);
            assert!(!o.source_blocked);
        }
        assert!(g.record_failure(Some(ip), &id("tmc_x"), 100).source_blocked);
        assert_eq!(g.blocked_for(Some(ip), &id("tmc_other"), 100), Some(60));
        assert_eq!(g.blocked_for(Some(ip), &id("tmc_other"), 160), None);
        assert_eq!(g.blocked_for(Some("192.0.2.2".parse().unwrap()), &id("tmc_other"), 100), None);
    }

    #[test]
    fn a_client_id_failing_too_often_alerts_and_blocks_only_the_failing_source() {
        let g = guard();
        let attacker: IpAddr = "198.51.100.9".parse().unwrap();
        for _ in 0..3 {
            assert!(
                !g.record_failure(Some(attacker), &id("tmc_victim"), 100).client_threshold_reached
            );
        }
        assert!(g.record_failure(Some(attacker), &id("tmc_victim"), 100).client_threshold_reached);
        assert!(g.blocked_for(Some(attacker), &id("tmc_victim"), 100).is_some());
        assert_eq!(
            g.blocked_for(Some("203.0.113.5".parse().unwrap()), &id("tmc_victim"), 100),
            None
        );
    }
}
