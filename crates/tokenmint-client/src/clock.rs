//! Where the client reads the time.
//!
//! Token expiry is computed on a monotonic clock, so a wall-clock step (NTP, a suspended laptop
//! resuming) cannot make a cached token look fresh. The wall clock is needed only to turn an
//! HTTP-date `Retry-After` into a delay.

use std::fmt;
use std::time::{Instant, SystemTime};

/// A source of time for expiry and `Retry-After` computations.
///
/// The client waits (backoff, `Retry-After`) with `tokio::time`, so a custom clock must advance
/// together with tokio's timer. The default, [`TokioClock`], does; under
/// `tokio::time::pause()` it follows the paused clock, which is how the crate's own tests move
/// across a token's lifetime without sleeping.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current monotonic instant.
    fn now(&self) -> Instant;

    /// The current wall-clock time, used only for HTTP-date `Retry-After` values.
    fn system_time(&self) -> SystemTime;
}

/// The default clock: tokio's monotonic time and the system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn system_time(&self) -> SystemTime {
        SystemTime::now()
    }
}
