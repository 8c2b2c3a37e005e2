//! Backoff delays and `Retry-After`.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

/// Parses `Retry-After` (RFC 9110 §10.2.3): either delta-seconds or an HTTP-date, the latter
/// measured against `now`. A date in the past means "now"; an unparseable value is ignored.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The "full jitter" backoff delay before retry number `retry` (0-based): uniform in
/// `[0, min(max, base * 2^retry)]`. Spreading retries over the whole interval, rather than
/// around its end, is what keeps many failing clients from retrying in lockstep.
pub(crate) fn full_jitter(base: Duration, max: Duration, retry: u32) -> Duration {
    let factor = 1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX);
    let bound = base.saturating_mul(factor).min(max);
    let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(0..=nanos))
}

/// Statuses worth retrying at the token endpoint: the server is overloaded or failing, and the
/// request was not judged on its merits.
pub(crate) fn is_retryable_status(status: StatusCode) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&headers("7"), now), Some(Duration::from_secs(7)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&later), now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&earlier), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-3"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    proptest::proptest! {
        #[test]
        fn retry_after_never_panics_on_untrusted_values(value in "[ -~]{0,40}", now in 0u64..4_000_000_000) {
            if let Ok(header) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(RETRY_AFTER, header);
                let _ = retry_after(&headers, SystemTime::UNIX_EPOCH + Duration::from_secs(now));
            }
        }
    }

    #[test]
    fn full_jitter_stays_within_its_exponential_bound() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for retry in 0..40 {
            let bound = base.saturating_mul(1u32 << retry.min(31)).min(max);
            for _ in 0..50 {
                assert!(full_jitter(base, max, retry) <= bound);
            }
        }
    }
}
