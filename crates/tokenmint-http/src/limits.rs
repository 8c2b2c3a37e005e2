//! Request limits, local or shared through Redis: the server's token-request limits and the
//! gateway's per-route limits.
//!
//! One instance keeps its limits in memory ([`crate::ratelimit`]). Several instances
//! behind a load balancer must share them, or a client gets N times its limit: with `--redis`,
//! each check runs the same GCRA atomically in Redis (one Lua script, one round trip, time taken
//! from the Redis server so instances' clocks do not matter). When Redis cannot answer in time,
//! the instance falls back to its local limiter (says so once in the log, and in a metric), and
//! returns to Redis by itself; no request fails because Redis is down. The local limiter and
//! the wait before Redis is tried again read the [`Clock`] the limits are built with.

use crate::ratelimit::{Decision, RateLimiter};
use prometheus_client::metrics::gauge::Gauge;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokenmint_proto::clock::Clock;

/// GCRA in Redis. KEYS[1]: the client's key; ARGV: limit, period in microseconds.
/// Returns {1, remaining, reset_us} when allowed, {0, retry_after_us} when limited.
const GCRA: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(period / limit)
local tolerance = interval * (limit - 1)
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
if new_tat > now + tolerance + interval then
  return {0, new_tat - (now + tolerance + interval)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1000)
local used = math.ceil((new_tat - now) / interval)
return {1, limit - used, new_tat - now}
";

/// How long a check waits for Redis before deciding locally.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a fallen-back instance waits before trying Redis again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct RedisLimits {
    conn: ConnectionManager,
    script: redis::Script,
    prefix: String,
    degraded: AtomicBool,
    /// Nanoseconds since the clock's origin before which Redis is not tried again.
    retry_at: AtomicU64,
}

impl std::fmt::Debug for RedisLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimits").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Where limits are kept.
#[derive(Debug)]
pub struct Limits {
    clock: Arc<dyn Clock>,
    local: RateLimiter,
    redis: Option<RedisLimits>,
    /// 1 while checks are decided locally because Redis is unreachable.
    pub fallback: Gauge,
}

impl Limits {
    /// Limits kept in this process, timed by `clock`.
    pub fn local(clock: Arc<dyn Clock>) -> Self {
        Self { clock, local: RateLimiter::new(200_000), redis: None, fallback: Gauge::default() }
    }

    /// Connects to Redis. The connection is made lazily by the manager's reconnect logic when
    /// Redis is down at start, so a missing Redis slows nothing and fails nothing.
    /// The local fallback and the wait before Redis is tried again are timed by `clock`; the
    /// shared limits themselves by the Redis server's clock.
    pub async fn redis(
        url: &str,
        prefix: &str,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(REDIS_TIMEOUT)
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            clock,
            local: RateLimiter::new(200_000),
            redis: Some(RedisLimits {
                conn,
                script: redis::Script::new(GCRA),
                prefix: prefix.to_owned(),
                degraded: AtomicBool::new(false),
                retry_at: AtomicU64::new(0),
            }),
            fallback: Gauge::default(),
        })
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Checks and counts one request of `key` against `limit` per `period`.
    pub async fn check(&self, key: &str, limit: u32, period: Duration) -> Decision {
        let now = self.clock.now();
        let Some(r) = &self.redis else {
            return self.local.check_quota(key, limit, period, now);
        };
        let now_nanos = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let wait = u64::try_from(RETRY_AFTER_FAILURE.as_nanos()).unwrap_or(u64::MAX);
        // Within the wait after a failure, decide locally. A retry time further away than the
        // wait itself means the clock was set back since: try Redis rather than stay local for
        // as long as the clock jumped.
        let retry_at = r.retry_at.load(Ordering::Acquire);
        if now_nanos < retry_at && retry_at - now_nanos <= wait {
            return self.local.check_quota(key, limit, period, now);
        }
        let mut conn = r.conn.clone();
        let mut invocation = r.script.key(format!("{}{key}", r.prefix));
        invocation.arg(limit.max(1)).arg(u64::try_from(period.as_micros()).unwrap_or(u64::MAX));
        let call = invocation.invoke_async::<Vec<i64>>(&mut conn);
        match tokio::time::timeout(REDIS_TIMEOUT, call).await {
            Ok(Ok(v)) => {
                if r.degraded.swap(false, Ordering::AcqRel) {
                    tracing::info!(
                        "Redis answers again: rate limits are shared across instances again"
                    );
                    self.fallback.set(0);
                }
                decision(&v)
            }
            failed => {
                let reason = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => "timeout".to_owned(),
                };
                if !r.degraded.swap(true, Ordering::AcqRel) {
                    tracing::warn!(error = %reason, "Redis is unreachable: rate limits fall back to this instance's own");
                    self.fallback.set(1);
                }
                r.retry_at.store(now_nanos.saturating_add(wait), Ordering::Release);
                self.local.check_quota(key, limit, period, now)
            }
        }
    }
}

fn decision(v: &[i64]) -> Decision {
    let micros_to_secs = |us: i64| u64::try_from(us).unwrap_or(0).div_ceil(1_000_000);
    match v {
        [1, remaining, reset_us] => Decision::Allowed {
            remaining: u32::try_from(*remaining).unwrap_or(0),
            reset_secs: micros_to_secs(*reset_us),
        },
        [0, wait_us] => Decision::Limited { retry_after_secs: micros_to_secs(*wait_us).max(1) },
        // An answer of another shape is a bug; deciding "allowed" keeps partners working.
        _ => Decision::Allowed { remaining: 0, reset_secs: 0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn local_limits_refill_as_the_clock_they_are_given_moves() {
        let clock =
            Arc::new(tokenmint_proto::clock::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let limits = Limits::local(clock.clone());
        let minute = Duration::from_secs(60);
        for _ in 0..2 {
            assert!(matches!(limits.check("k", 2, minute).await, Decision::Allowed { .. }));
        }
        assert_eq!(limits.check("k", 2, minute).await, Decision::Limited { retry_after_secs: 30 });
        clock.advance(Duration::from_secs(29));
        assert_eq!(limits.check("k", 2, minute).await, Decision::Limited { retry_after_secs: 1 });
        clock.advance(Duration::from_secs(1));
        assert!(matches!(limits.check("k", 2, minute).await, Decision::Allowed { .. }));
    }

    #[test]
    fn script_answers_map_to_decisions() {
        assert_eq!(decision(&[1, 99, 600_000]), Decision::Allowed { remaining: 99, reset_secs: 1 });
        assert_eq!(decision(&[0, 250_000]), Decision::Limited { retry_after_secs: 1 });
        assert_eq!(decision(&[0, 2_500_000]), Decision::Limited { retry_after_secs: 3 });
    }
}
