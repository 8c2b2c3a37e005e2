//! Time as a dependency: production reads the system clock, tests move a manual one, so
//! expiry is tested without sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokenmint_core::UnixTime;

pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> UnixTime;

    /// The same instant in microseconds: orders events within a second (token ids, revocation
    /// cut-offs). A clock without sub-second resolution answers the start of its second.
    fn now_micros(&self) -> i64 {
        self.now().saturating_mul(1_000_000)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> UnixTime {
        SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
    }

    fn now_micros(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    pub fn new(start: UnixTime) -> Self {
        Self(AtomicI64::new(start))
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn set(&self, t: UnixTime) {
        self.0.store(t, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// The server's clock as the shared rate limiters read it (`tokenmint_http::Clock`), so a test
/// that moves the server's clock moves its token-request limits too.
#[derive(Debug)]
pub struct LimiterClock(pub std::sync::Arc<dyn Clock>);

impl tokenmint_http::Clock for LimiterClock {
    fn now(&self) -> std::time::Duration {
        std::time::Duration::from_micros(u64::try_from(self.0.now_micros()).unwrap_or(0))
    }
}
