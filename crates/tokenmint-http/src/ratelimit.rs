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
use std::time::Duration;

/// What a check decided, with what the `RateLimit` headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allowed { remaining: u32, reset_secs: u64 },
    Limited { retry_after_secs: u64 },
}

/// Per-key GCRA state. It reads no clock: every check is given `now` (time since a fixed
/// origin, in practice a [`crate::Clock`]'s reading), so its callers decide where time comes
/// from and tests choose the instant.
///
/// The state is kept under a hash of the client's key, not the key: every client that has
/// sent a request has an entry, and a copy of its key would cost a heap block each (the token
/// endpoint keeps one per credential in use). The hash is keyed with a secret random to the
/// process, so two keys share state only by a chance of about one in 2^64 per pair, which no
/// client can arrange.
#[derive(Debug)]
pub struct RateLimiter {
    /// Theoretical arrival time per client, in nanoseconds since the clock's origin.
    tats: Cache<u64, Arc<AtomicU64>>,
    hasher: std::hash::RandomState,
}

/// The instant a limiter is given by callers that keep time in whole Unix seconds.
pub fn unix_seconds(now: i64) -> Duration {
    Duration::from_secs(u64::try_from(now).unwrap_or(0))
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Checks and counts one event against `limit` per `period` at `now`, in a state cell the
/// caller keeps (the token endpoint keeps one in each cached credential, see
/// `tokenmint_server::cache`): the same GCRA as [`RateLimiter::check_quota`], without the
/// lookup. A new cell holds 0.
pub fn check_cell(cell: &AtomicU64, limit: u32, period: Duration, now: Duration) -> Decision {
    gcra(cell, limit, nanos(period).max(1), nanos(now))
}

/// Whether a state cell of [`check_cell`] is as good as a new one at `now`: its theoretical
/// arrival time is not in the future, so the next check decides as on a new cell.
pub fn cell_is_idle(cell: &AtomicU64, now: Duration) -> bool {
    cell.load(Ordering::Acquire) <= nanos(now)
}

/// One GCRA step on `cell`: see the module documentation.
fn gcra(cell: &AtomicU64, limit: u32, period_nanos: u64, now: u64) -> Decision {
    let limit = u64::from(limit.max(1));
    let interval = (period_nanos / limit).max(1);
    // Burst tolerance: the whole period's worth may arrive at once.
    let tolerance = interval.saturating_mul(limit - 1);
    // The latest theoretical arrival time that still admits a request now.
    let horizon = now.saturating_add(tolerance).saturating_add(interval);
    let mut tat = cell.load(Ordering::Acquire);
    loop {
        let base = tat.max(now);
        let new_tat = base.saturating_add(interval);
        if new_tat > horizon {
            let wait = (new_tat - horizon).div_ceil(1_000_000_000).max(1);
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

impl RateLimiter {
    pub fn new(capacity: usize) -> Self {
        Self { tats: Cache::new(capacity.max(16)), hasher: std::hash::RandomState::new() }
    }

    fn slot(&self, key: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    /// Checks and counts one request of `key` against `per_minute` (> 0) at `now`.
    pub fn check(&self, key: &str, per_minute: u32, now: Duration) -> Decision {
        self.check_quota(key, per_minute, Duration::from_secs(60), now)
    }

    /// Checks and counts one event of `key` against `limit` per `period` (a burst of `limit`,
    /// refilled continuously over `period`) at `now`.
    pub fn check_quota(&self, key: &str, limit: u32, period: Duration, now: Duration) -> Decision {
        self.check_quota_at(key, limit, nanos(period).max(1), nanos(now))
    }

    fn check_quota_at(&self, key: &str, limit: u32, period_nanos: u64, now: u64) -> Decision {
        let slot = self.slot(key);
        let cell = match self.tats.get(&slot) {
            Some(c) => c,
            None => {
                let c = Arc::new(AtomicU64::new(0));
                self.tats.insert(slot, c.clone());
                self.tats.get(&slot).unwrap_or(c)
            }
        };
        gcra(&cell, limit, period_nanos, now)
    }

    /// Gives back one event of `key` counted against `limit` per `period` (an attempt counted
    /// before it was known to be a success): the next one is admitted as if it had not been
    /// counted. Nothing to give back is no error.
    pub fn refund(&self, key: &str, limit: u32, period: Duration, now: Duration) {
        let interval = (nanos(period).max(1) / u64::from(limit.max(1))).max(1);
        let now = nanos(now);
        let Some(cell) = self.tats.get(&self.slot(key)) else { return };
        let mut tat = cell.load(Ordering::Acquire);
        while tat > now {
            let back = tat.saturating_sub(interval).max(now);
            match cell.compare_exchange_weak(tat, back, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return,
                Err(current) => tat = current,
            }
        }
    }

    /// Forgets a client's state (its limit changed).
    pub fn reset(&self, key: &str) {
        self.tats.remove(&self.slot(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An instant `secs` seconds after an arbitrary origin (a real clock's epoch is far away).
    fn at(secs: u64) -> Duration {
        Duration::from_secs(1_765_000_000 + secs)
    }

    #[test]
    fn a_full_minute_may_arrive_at_once_and_the_next_request_waits() {
        let l = RateLimiter::new(100);
        for i in 0..100 {
            assert!(matches!(l.check("a", 100, at(0)), Decision::Allowed { .. }), "request {i}");
        }
        let Decision::Limited { retry_after_secs } = l.check("a", 100, at(0)) else {
            panic!("not limited")
        };
        assert_eq!(retry_after_secs, 1);
        // Another client is unaffected.
        assert!(matches!(l.check("b", 100, at(0)), Decision::Allowed { remaining: 99, .. }));
    }

    #[test]
    fn a_refunded_event_is_admitted_again_and_a_refund_never_goes_below_nothing() {
        let l = RateLimiter::new(100);
        let hour = Duration::from_secs(3600);
        for _ in 0..3 {
            assert!(matches!(l.check_quota("a", 3, hour, at(0)), Decision::Allowed { .. }));
        }
        assert!(matches!(l.check_quota("a", 3, hour, at(0)), Decision::Limited { .. }));
        l.refund("a", 3, hour, at(0));
        assert!(matches!(l.check_quota("a", 3, hour, at(0)), Decision::Allowed { .. }));
        assert!(matches!(l.check_quota("a", 3, hour, at(0)), Decision::Limited { .. }));
        // Refunds beyond what was counted give nothing extra.
        for _ in 0..10 {
            l.refund("b", 3, hour, at(0));
        }
        l.check_quota("b", 3, hour, at(0));
        for _ in 0..10 {
            l.refund("b", 3, hour, at(0));
        }
        for _ in 0..3 {
            assert!(matches!(l.check_quota("b", 3, hour, at(0)), Decision::Allowed { .. }));
        }
        assert!(matches!(l.check_quota("b", 3, hour, at(0)), Decision::Limited { .. }));
    }

    #[test]
    fn the_limit_recovers_at_the_configured_rate() {
        let l = RateLimiter::new(100);
        for _ in 0..10 {
            l.check("a", 10, at(0));
        }
        assert!(matches!(l.check("a", 10, at(0)), Decision::Limited { .. }));
        assert!(matches!(l.check("a", 10, at(6)), Decision::Allowed { .. }));
        assert!(matches!(l.check("a", 10, at(6)), Decision::Limited { .. }));
        assert!(matches!(l.check("a", 10, at(66)), Decision::Allowed { remaining: 9, .. }));
    }

    #[test]
    fn quotas_over_other_periods_work_the_same_way() {
        let l = RateLimiter::new(100);
        let five_min = Duration::from_secs(300);
        for _ in 0..3 {
            assert!(matches!(l.check_quota("ip", 3, five_min, at(0)), Decision::Allowed { .. }));
        }
        assert!(matches!(
            l.check_quota("ip", 3, five_min, at(0)),
            Decision::Limited { retry_after_secs: 100 }
        ));
        assert!(matches!(l.check_quota("ip", 3, five_min, at(100)), Decision::Allowed { .. }));
    }

    #[test]
    fn remaining_counts_down() {
        let l = RateLimiter::new(100);
        assert_eq!(l.check("a", 3, at(0)), Decision::Allowed { remaining: 2, reset_secs: 20 });
        assert_eq!(l.check("a", 3, at(0)), Decision::Allowed { remaining: 1, reset_secs: 40 });
        assert_eq!(l.check("a", 3, at(0)), Decision::Allowed { remaining: 0, reset_secs: 60 });
    }

    proptest::proptest! {
        /// Whatever a client sends, and whenever: in no span of time are more requests admitted
        /// than the burst plus what the rate refills in that span, and a client that keeps to
        /// the rate is never refused.
        #[test]
        fn no_span_admits_more_than_the_burst_and_the_refill(
            limit in 1u32..20,
            gaps_ms in proptest::collection::vec(0u64..4_000, 1..120),
        ) {
            let l = RateLimiter::new(16);
            let period = Duration::from_secs(60);
            let interval_ms = 60_000 / u64::from(limit);
            let mut now = 0u64;
            let mut admitted = Vec::new();
            for gap in gaps_ms {
                now += gap;
                if matches!(l.check_quota("k", limit, period, at(0) + Duration::from_millis(now)), Decision::Allowed { .. }) {
                    admitted.push(now);
                }
            }
            for (i, start) in admitted.iter().enumerate() {
                for (j, end) in admitted.iter().enumerate().skip(i) {
                    let in_span = u64::try_from(j - i + 1).unwrap();
                    proptest::prop_assert!(
                        in_span <= (end - start) / interval_ms + u64::from(limit),
                        "{in_span} admitted within {} ms", end - start
                    );
                }
            }

            let steady = RateLimiter::new(16);
            for n in 0..u64::from(limit) * 3 {
                let t = at(0) + Duration::from_millis(n * interval_ms + interval_ms);
                let kept_to_the_rate = matches!(steady.check_quota("k", limit, period, t), Decision::Allowed { .. });
                proptest::prop_assert!(kept_to_the_rate, "request {n} refused");
            }
        }
    }
}
