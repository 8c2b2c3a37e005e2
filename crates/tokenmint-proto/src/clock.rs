//! Where every tokenmint component reads the time from.
//!
//! One small trait shared by the verifier, the gateway and the HTTP crate's rate limiters: each
//! decision that depends on time (token validity, JWKS freshness, cooldowns, rate limits) takes
//! `now` from a [`Clock`], so tests move time forward instead of sleeping, and production swaps
//! in the system clock at one place. It lives here, in the one crate all of them share, because
//! it needs nothing but `std`.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A source of the current time.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Time elapsed since the Unix epoch.
    fn now(&self) -> Duration;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        // A clock set before 1970 is a broken host; treating it as the epoch makes every token
        // look issued in the future, which fails closed.
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default()
    }
}

/// A clock that only moves when told to: for tests of expiry, caching, cooldowns and limits.
#[derive(Debug, Default)]
pub struct ManualClock {
    millis: AtomicU64,
}

impl ManualClock {
    /// A clock stopped at `since_epoch`.
    pub fn new(since_epoch: Duration) -> Self {
        Self { millis: AtomicU64::new(duration_millis(since_epoch)) }
    }

    /// A clock stopped at the current wall-clock time.
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(duration_millis(by), Ordering::SeqCst);
    }

    /// Sets the clock to `since_epoch`.
    pub fn set(&self, since_epoch: Duration) {
        self.millis.store(duration_millis(since_epoch), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Duration {
        Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> Duration {
        (**self).now()
    }
}

fn duration_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced_or_set() {
        let clock = ManualClock::new(Duration::from_secs(1_000));
        assert_eq!(clock.now(), Duration::from_secs(1_000));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(clock.now(), Duration::from_millis(1_001_500));
        clock.set(Duration::from_secs(7));
        assert_eq!(clock.now(), Duration::from_secs(7));
    }

    #[test]
    fn a_shared_clock_reads_the_same_time() {
        let clock = std::sync::Arc::new(ManualClock::new(Duration::from_secs(5)));
        let shared: std::sync::Arc<dyn Clock> = clock.clone();
        clock.advance(Duration::from_secs(1));
        assert_eq!(shared.now(), Duration::from_secs(6));
    }
}
