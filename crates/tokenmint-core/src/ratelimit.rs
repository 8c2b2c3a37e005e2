//! Per-client request limits: GCRA (the generic cell rate algorithm), in-process. The token
//! endpoint limits token requests per credential with it; the gateway limits API calls per
//! client with it.
//!
//! A limit of N per minute is a bucket of N requests that refills continuously at N per
//! minute: a client may send N at once, then one every 60/N seconds. GCRA stores that as one
//! number per client (the theoretical arrival time), updated with a compare-and-swap, so a
//! check costs an atomic operation and no lock. The `governor` crate implements the same
//! algorithm but with one quota for every key; here each credential has its own.

use quick_cache::sync::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// What a check decided, with what the `RateLimit` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32, reset_secs: u64 },
    Limited { retry_after_secs: u64 },
}

#[derive(Debug)]
pub struct RateLimiter {
    start: Instant,
    /// Theoretical arrival time per client, in nanoseconds since `start`.
    tats: Cache<String, Arc<AtomicU64>>,
}

impl RateLimiter {
    pub fn new(capacity: usize) -> Self {
        Self { start: Instant::now(), tats: Cache::new(capacity.max(16)) }
    }

    fn now_nanos(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Checks and counts one request of `key` against `per_minute` (> 0).
    pub fn check(&self, key: &str, per_minute: u32) -> Decision {
        self.check_at(key, per_minute, self.now_nanos())
    }

    /// [`RateLimiter::check`] at an explicit instant (tests).
    pub fn check_at(&self, key: &str, per_minute: u32, now: u64) -> Decision {
        self.check_quota_at(key, per_minute, 60_000_000_000, now)
    }

    /// Checks and counts one event of `key` against `limit` per `period` (a burst of `limit`,
    /// refilled continuously over `period`).
    pub fn check_quota(&self, key: &str, limit: u32, period: std::time::Duration) -> Decision {
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.check_quota_at(key, limit, period, self.now_nanos())
    }

    fn check_quota_at(&self, key: &str, limit: u32, period_nanos: u64, now: u64) -> Decision {
        let limit = u64::from(limit.max(1));
        let interval = (period_nanos / limit).max(1);
        // Burst tolerance: the whole period's worth may arrive at once.
        let tolerance = interval * (limit - 1);
        let cell = match self.tats.get(key) {
            Some(c) => c,
            None => {
                let c = Arc::new(AtomicU64::new(0));
                self.tats.insert(key.to_owned(), c.clone());
                self.tats.get(key).unwrap_or(c)
            }
        };
        let mut tat = cell.load(Ordering::Acquire);
        loop {
            let base = tat.max(now);
            let new_tat = base + interval;
            if new_tat > now + tolerance + interval {
                let wait = (new_tat - (now + tolerance + interval)).div_ceil(1_000_000_000).max(1);
                return Decision::Limited { retry_after_secs: wait };
            }
            match cell.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    let used = (new_tat - now).div_ceil(interval);
                    let remaining = limit.saturating_sub(used);
                    let reset_secs = (new_tat - now).div_ceil(1_000_000_000);
                    return Decision::Allowed {
                        remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
                        reset_secs,
                    };
                }
                Err(current) => tat = current,
            }
        }
    }

    /// Forgets a client's state (its limit changed).
    pub fn reset(&self, key: &str) {
        self.tats.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn a_full_minute_may_arrive_at_once_and_the_next_request_waits() {
        let l = RateLimiter::new(100);
        for i in 0..100 {
            assert!(matches!(l.check_at("a", 100, 0), Decision::Allowed { .. }), "request {i}");
        }
        let Decision::Limited { retry_after_secs } = l.check_at("a", 100, 0) else {
            panic!("not limited")
        };
        assert_eq!(retry_after_secs, 1);
        // Another client is unaffected.
        assert!(matches!(l.check_at("b", 100, 0), Decision::Allowed { remaining: 99, .. }));
    }

    #[test]
    fn the_limit_recovers_at_the_configured_rate() {
        let l = RateLimiter::new(100);
        for _ in 0..10 {
            l.check_at("a", 10, 0);
        }
        assert!(matches!(l.check_at("a", 10, 0), Decision::Limited { .. }));
        assert!(matches!(l.check_at("a", 10, 6 * SEC), Decision::Allowed { .. }));
        assert!(matches!(l.check_at("a", 10, 6 * SEC), Decision::Limited { .. }));
        assert!(matches!(
            l.check_at("a", 10, 60 * SEC + 6 * SEC),
            Decision::Allowed { remaining: 9, .. }
        ));
    }

    #[test]
    fn quotas_over_other_periods_work_the_same_way() {
        let l = RateLimiter::new(100);
        let five_min = 300 * SEC;
        for _ in 0..3 {
            assert!(matches!(l.check_quota_at("ip", 3, five_min, 0), Decision::Allowed { .. }));
        }
        assert!(matches!(
            l.check_quota_at("ip", 3, five_min, 0),
            Decision::Limited { retry_after_secs: 100 }
        ));
        assert!(matches!(l.check_quota_at("ip", 3, five_min, 100 * SEC), Decision::Allowed { .. }));
    }

    #[test]
    fn remaining_counts_down() {
        let l = RateLimiter::new(100);
        assert_eq!(l.check_at("a", 3, 0), Decision::Allowed { remaining: 2, reset_secs: 20 });
        assert_eq!(l.check_at("a", 3, 0), Decision::Allowed { remaining: 1, reset_secs: 40 });
        assert_eq!(l.check_at("a", 3, 0), Decision::Allowed { remaining: 0, reset_secs: 60 });
    }
}
