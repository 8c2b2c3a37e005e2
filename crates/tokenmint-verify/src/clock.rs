//! Where the verifier reads the time from.
//!
//! Every expiry decision (`exp`, `nbf`, `iat`, JWKS freshness, revocation lifetimes, the
//! unknown-`kid` cooldown) takes `now` from a [`Clock`], so tests move time forward instead of
//! sleeping and the production clock is swapped in at one place. The trait is tokenmint's one
//! clock (`tokenmint_proto::clock`), shared with the gateway and the rate limiters, so one test
//! clock moves all of them.

use std::time::Duration;
pub use tokenmint_proto::clock::{Clock, ManualClock, SystemClock};

/// Whole seconds since the epoch, as JWT NumericDate claims count them (RFC 7519 §2).
pub(crate) fn unix_seconds(now: Duration) -> i64 {
    i64::try_from(now.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_seconds_count_whole_seconds() {
        let clock = ManualClock::new(Duration::from_secs(1_000));
        clock.advance(Duration::from_millis(1_500));
        assert_eq!(unix_seconds(clock.now()), 1_001);
    }
}
