//! Request limits, local or shared through Redis: the server's token-request limits, the
//! gateway's per-route limits, and the failure counters and blocks of brute-force protection
//! (client authentication, portal sign-in), which an attacker would otherwise get N times over
//! N instances behind a round-robin balancer.
//!
//! One instance keeps its limits in memory ([`crate::ratelimit`]). Several instances
//! behind a load balancer must share them, or a client gets N times its limit: with `--redis`,
//! each check runs the same GCRA atomically in Redis (one Lua script, one round trip, time taken
//! from the Redis server so instances' clocks do not matter). When Redis cannot answer in time,
//! the instance falls back to its local limiter (says so once in the log, and in a metric), and
//! returns to Redis by itself; no request fails because Redis is down. The local limiter and
//! the wait before Redis is tried again read the [`Clock`] the limits are built with.
//!
//! A failure is counted and its block set in one script ([`Limits::count_failure`]), so that of
//! instances counting the same failures exactly one sees the block begin (and alerts). The
//! same connection also claims one-shot keys ([`Limits::claim_once`]): an alert that several
//! instances see fires once.

use crate::ratelimit::{Decision, RateLimiter};
use arc_swap::ArcSwapOption;
use prometheus_client::metrics::gauge::Gauge;
use quick_cache::sync::Cache;
use redis::aio::ConnectionManager;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokenmint_proto::clock::Clock;

/// The GCRA step both scripts share: the client's theoretical arrival time after this request
/// (`new_tat`), from the limit and period in ARGV[1..2] and Redis's own clock.
macro_rules! gcra_step {
    () => {
        r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(period / limit)
local tolerance = interval * (limit - 1)
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local new_tat = tat + interval
"
    };
}

/// GCRA in Redis. KEYS[1]: the client's key; ARGV: limit, period in microseconds.
/// Returns {1, remaining, reset_us} when allowed, {0, retry_after_us} when limited.
const GCRA: &str = concat!(
    gcra_step!(),
    r"if new_tat > now + tolerance + interval then
  return {0, new_tat - (now + tolerance + interval)}
end
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1000)
local used = math.ceil((new_tat - now) / interval)
return {1, limit - used, new_tat - now}
"
);

/// A failure counted with the GCRA above, and the block it may set, in one step.
/// KEYS[1]: the counter, KEYS[2] (optional): the block; ARGV: limit, period in microseconds, block in
/// milliseconds, 1 to reset the counter once it blocks. Returns {over_limit, newly_blocked}.
const FAIL: &str = concat!(
    gcra_step!(),
    r"if new_tat <= now + tolerance + interval then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1000)
  return {0, 0}
end
if ARGV[4] == '1' then redis.call('DEL', KEYS[1]) end
if KEYS[2] == nil then return {1, 0} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[3])) then
  return {1, 1}
end
return {1, 0}
"
);

/// One event of KEYS[1] given back (ARGV: limit, period in microseconds): its theoretical
/// arrival time moves back one interval, never before now. Returns 1 when there was one to give.
const REFUND: &str = r"
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = math.floor(period / limit)
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat <= now then return 0 end
local back = tat - interval
if back <= now then
  redis.call('DEL', KEYS[1])
  return 1
end
redis.call('SET', KEYS[1], back, 'PX', math.floor((back - now) / 1000) + 1000)
return 1
";

/// The longest time any of KEYS still lives, in milliseconds (negative: none exists).
const LONGEST_PTTL: &str = r"
local longest = -2
for _, k in ipairs(KEYS) do
  local p = redis.call('PTTL', k)
  if p > longest then longest = p end
end
return longest
";

/// How long a check waits for Redis before deciding locally.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);
/// How long a fallen-back instance waits before trying Redis again.
const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(1);

pub struct RedisLimits {
    client: redis::Client,
    manager: redis::aio::ConnectionManagerConfig,
    /// The connection, once made: Redis may be down when the instance starts, and the
    /// instance must start anyway (deciding locally) and connect when Redis comes.
    conn: ArcSwapOption<ConnectionManager>,
    gcra: redis::Script,
    fail: redis::Script,
    refund: redis::Script,
    pttl: redis::Script,
    prefix: String,
    health: RedisHealth,
}

/// Whether Redis answers, as the calls to it find out. A call may change the state only from
/// the one it began in: under load, calls begun before a change finish after it, and letting
/// them flip it back made the state (its log lines and gauge) flap hundreds of times a second.
#[derive(Debug, Default)]
struct RedisHealth {
    /// Counts the changes between "Redis answers" (even) and "deciding locally" (odd).
    epoch: AtomicU64,
    /// Nanoseconds since the clock's origin before which Redis is not tried again.
    retry_at: AtomicU64,
}

/// The state a call began in.
#[derive(Debug, Clone, Copy)]
struct Began(u64);

/// A change of state a call's outcome made, to log once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HealthChange {
    Unreachable,
    Back,
}

impl RedisHealth {
    /// Whether a call may try Redis at `now`: not within the wait after a failure. A retry time
    /// further away than the wait itself means the clock was set back since: try Redis rather
    /// than stay local for as long as the clock jumped.
    fn may_try(&self, now: u64, wait: u64) -> Option<Began> {
        let retry_at = self.retry_at.load(Ordering::Acquire);
        if now < retry_at && retry_at - now <= wait {
            return None;
        }
        Some(Began(self.epoch.load(Ordering::Acquire)))
    }

    /// A call begun in `began` got its answer: Redis is back if the call began while deciding
    /// locally (one begun before the failure says nothing about now).
    fn answered(&self, began: Began) -> Option<HealthChange> {
        let Began(epoch) = began;
        let changed = epoch % 2 == 1
            && self
                .epoch
                .compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        changed.then_some(HealthChange::Back)
    }

    /// A call begun in `began` failed at `now`: Redis is unreachable if it began while Redis
    /// answered (one begun before Redis came back says nothing about now); tried again while
    /// deciding locally, the wait starts again.
    fn failed(&self, began: Began, now: u64, wait: u64) -> Option<HealthChange> {
        let Began(epoch) = began;
        if epoch % 2 == 0 {
            let changed = self
                .epoch
                .compare_exchange(epoch, epoch + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
            if changed {
                self.retry_at.store(now.saturating_add(wait), Ordering::Release);
                return Some(HealthChange::Unreachable);
            }
        } else if self.epoch.load(Ordering::Acquire) == epoch {
            self.retry_at.store(now.saturating_add(wait), Ordering::Release);
        }
        None
    }
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
    /// Blocks set while deciding locally: key and the end, in nanoseconds since the clock's
    /// origin.
    blocks: Cache<String, u64>,
    redis: Option<RedisLimits>,
    /// 1 while checks are decided locally because Redis is unreachable.
    pub fallback: Gauge,
}

impl Limits {
    /// Limits kept in this process, timed by `clock`.
    pub fn local(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            local: RateLimiter::new(200_000),
            blocks: Cache::new(100_000),
            redis: None,
            fallback: Gauge::default(),
        }
    }

    /// Connects to Redis. Only a URL that is not a Redis URL is an error: Redis unreachable at
    /// start, the limits are decided locally (logged once, in the metric) and the connection is
    /// made when Redis answers, so a missing Redis slows nothing and fails nothing.
    /// Once made, the connection is kept up by the manager's reconnect logic.
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
        let limits = Self {
            clock,
            local: RateLimiter::new(200_000),
            blocks: Cache::new(100_000),
            redis: Some(RedisLimits {
                client,
                manager: config,
                conn: ArcSwapOption::empty(),
                gcra: redis::Script::new(GCRA),
                fail: redis::Script::new(FAIL),
                refund: redis::Script::new(REFUND),
                pttl: redis::Script::new(LONGEST_PTTL),
                prefix: prefix.to_owned(),
                health: RedisHealth::default(),
            }),
            fallback: Gauge::default(),
        };
        // Connect now when Redis is there, so the first request does not wait for it.
        let _ = limits.in_redis(|_, _| async { Ok(()) }).await;
        Ok(limits)
    }

    pub fn is_shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Checks and counts one request of `key` against `limit` per `period`.
    pub async fn check(&self, key: &str, limit: u32, period: Duration) -> Decision {
        let now = self.clock.now();
        match self.check_shared(key, limit, period).await {
            Some(v) => decision(&v),
            None => self.local.check_quota(key, limit, period, now),
        }
    }

    /// [`Limits::check`] of a key whose local state the caller keeps in `cell` (see
    /// [`crate::ratelimit::check_cell`]): shared through Redis under `key` as every check is,
    /// decided in `cell` when this instance decides alone.
    pub async fn check_in(
        &self,
        key: &str,
        cell: &AtomicU64,
        limit: u32,
        period: Duration,
    ) -> Decision {
        let now = self.clock.now();
        match self.check_shared(key, limit, period).await {
            Some(v) => decision(&v),
            None => crate::ratelimit::check_cell(cell, limit, period, now),
        }
    }

    /// The GCRA of [`Limits::check`] in Redis, when Redis is configured and answers.
    async fn check_shared(&self, key: &str, limit: u32, period: Duration) -> Option<Vec<i64>> {
        self.in_redis(|r, mut conn| {
            let mut invocation = r.gcra.key(format!("{}{key}", r.prefix));
            invocation.arg(limit.max(1)).arg(u64::try_from(period.as_micros()).unwrap_or(u64::MAX));
            async move { invocation.invoke_async::<Vec<i64>>(&mut conn).await }
        })
        .await
    }

    /// The instant the local limits read, as [`crate::ratelimit::cell_is_idle`] takes it.
    pub fn now(&self) -> Duration {
        self.clock.now()
    }

    /// Counts one failure of `counter` against `limit` per `window` (the same GCRA as
    /// [`Limits::check`]); when the failure is over the limit, blocks `block` for `block_for`
    /// and, with `reset`, starts the count afresh. Counting and blocking are one atomic step,
    /// so of several instances counting the same failures exactly one reports the new block.
    ///
    /// `counter` and `block` may hold attacker-chosen text (a client_id, an email): they are
    /// hashed to a fixed length before they become keys, here and in Redis.
    pub async fn count_failure(&self, failure: FailureCount<'_>) -> Counted {
        let counter = bounded_key("f", failure.counter);
        let block = failure.block.map(|b| bounded_key("b", b));
        let shared = self
            .in_redis(|r, mut conn| {
                let mut invocation = r.fail.key(format!("{}{counter}", r.prefix));
                if let Some(block) = &block {
                    invocation.key(format!("{}{block}", r.prefix));
                }
                invocation
                    .arg(failure.limit.max(1))
                    .arg(u64::try_from(failure.window.as_micros()).unwrap_or(u64::MAX))
                    .arg(u64::try_from(failure.block_for.as_millis()).unwrap_or(u64::MAX).max(1))
                    .arg(u8::from(failure.reset));
                async move { invocation.invoke_async::<Vec<i64>>(&mut conn).await }
            })
            .await;
        if let Some(v) = shared {
            return Counted {
                over_limit: v.first() == Some(&1),
                newly_blocked: v.get(1) == Some(&1),
            };
        }
        let now = self.clock.now();
        let limited = matches!(
            self.local.check_quota(&counter, failure.limit, failure.window, now),
            Decision::Limited { .. }
        );
        if !limited {
            return Counted::default();
        }
        if failure.reset {
            self.local.reset(&counter);
        }
        let Some(block) = block else {
            return Counted { over_limit: true, newly_blocked: false };
        };
        let now_nanos = nanos(now);
        let fresh = self.blocks.get(&block).is_none_or(|until| until <= now_nanos);
        if fresh {
            self.blocks.insert(block, now_nanos.saturating_add(nanos(failure.block_for)));
        }
        Counted { over_limit: true, newly_blocked: fresh }
    }

    /// Gives back one failure counted for `counter` against `limit` per `window`: an attempt
    /// counted before it was checked (so that concurrent attempts cannot all pass a check made
    /// before any of them was counted) that turned out to succeed.
    pub async fn refund_failure(&self, counter: &str, limit: u32, window: Duration) {
        let counter = bounded_key("f", counter);
        let shared = self
            .in_redis(|r, mut conn| {
                let mut invocation = r.refund.key(format!("{}{counter}", r.prefix));
                invocation
                    .arg(limit.max(1))
                    .arg(u64::try_from(window.as_micros()).unwrap_or(u64::MAX));
                async move { invocation.invoke_async::<i64>(&mut conn).await }
            })
            .await;
        if shared.is_none() {
            self.local.refund(&counter, limit, window, self.clock.now());
        }
    }

    /// How long the longest of `blocks` still holds, if any does: blocks set by any instance
    /// through Redis, and the ones this instance set while it decided locally.
    pub async fn blocked_for(&self, blocks: &[&str]) -> Option<Duration> {
        let keys: Vec<String> = blocks.iter().map(|b| bounded_key("b", b)).collect();
        let now = nanos(self.clock.now());
        // The common case of a single instance has no block at all: nothing is looked up.
        let local = if self.blocks.is_empty() {
            None
        } else {
            keys.iter()
                .filter_map(|k| match self.blocks.get(k) {
                    Some(until) if until > now => Some(until - now),
                    Some(_) => {
                        // Expired: removed, so the no-block fast path comes back.
                        self.blocks.remove(k);
                        None
                    }
                    None => None,
                })
                .max()
                .map(Duration::from_nanos)
        };
        let shared = self
            .in_redis(|r, mut conn| {
                let mut invocation = r.pttl.prepare_invoke();
                for k in &keys {
                    invocation.key(format!("{}{k}", r.prefix));
                }
                async move { invocation.invoke_async::<i64>(&mut conn).await }
            })
            .await
            .and_then(|ms| u64::try_from(ms).ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        local.max(shared)
    }

    /// Forgets the failures counted for `counter` (a success clears them).
    pub async fn forget(&self, counter: &str) {
        let counter = bounded_key("f", counter);
        self.local.reset(&counter);
        let _ = self
            .in_redis(|r, mut conn| {
                let key = format!("{}{counter}", r.prefix);
                async move { redis::cmd("DEL").arg(key).query_async::<i64>(&mut conn).await }
            })
            .await;
    }

    /// Claims `key` for `ttl` if nobody holds it (`SET NX PX`): `Some(true)` for the one
    /// caller that got it, `Some(false)` for the others, `None` when Redis is not configured or
    /// cannot answer now (the caller decides another way, see [`crate::limits`]).
    pub async fn claim_once(&self, key: &str, ttl: Duration) -> Option<bool> {
        let key = bounded_key("c", key);
        self.in_redis(|r, mut conn| {
            let key = format!("{}{key}", r.prefix);
            let ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
            async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms)
                    .query_async::<Option<String>>(&mut conn)
                    .await
            }
        })
        .await
        .map(|set| set.is_some())
    }

    /// Runs one Redis call, or answers `None` when the caller must decide locally: no Redis
    /// configured, within the wait after a failure, or the call failed or took too long now.
    /// Going local and coming back are logged once each and shown in [`Limits::fallback`].
    async fn in_redis<'s, T, F, Fut>(&'s self, call: F) -> Option<T>
    where
        F: Fn(&'s RedisLimits, ConnectionManager) -> Fut,
        Fut: Future<Output = Result<T, redis::RedisError>> + 's,
    {
        let r = self.redis.as_ref()?;
        let now_nanos = nanos(self.clock.now());
        let wait = nanos(RETRY_AFTER_FAILURE);
        let began = r.health.may_try(now_nanos, wait)?;
        let attempt = async {
            let conn = match r.conn.load_full() {
                Some(conn) => ConnectionManager::clone(&conn),
                None => {
                    let conn =
                        ConnectionManager::new_with_config(r.client.clone(), r.manager.clone())
                            .await?;
                    r.conn.store(Some(Arc::new(conn.clone())));
                    conn
                }
            };
            match call(r, conn.clone()).await {
                // A connection Redis closed (a restart, a failover, an idle timeout) fails the
                // first call on it, and the manager connects again at once: the call is made
                // once more on the new connection, within the same time limit, so that an
                // instance idle through a Redis restart does not decide alone for the wait
                // after a failure. Had the closed connection carried the call to Redis before
                // closing, it is counted twice: stricter, never looser.
                Err(e) if e.is_connection_dropped() || e.is_io_error() => call(r, conn).await,
                answered => answered,
            }
        };
        match tokio::time::timeout(REDIS_TIMEOUT, attempt).await {
            Ok(Ok(v)) => {
                if r.health.answered(began) == Some(HealthChange::Back) {
                    tracing::info!(
                        "Redis answers again: rate limits and brute-force counters are shared across instances again"
                    );
                    self.fallback.set(0);
                }
                Some(v)
            }
            failed => {
                if r.health.failed(began, now_nanos, wait) == Some(HealthChange::Unreachable) {
                    let reason = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => "timeout".to_owned(),
                    };
                    tracing::warn!(error = %reason, "Redis is unreachable: rate limits and brute-force counters fall back to this instance's own");
                    self.fallback.set(1);
                }
                None
            }
        }
    }
}

/// One failure to count with [`Limits::count_failure`].
#[derive(Debug, Clone, Copy)]
pub struct FailureCount<'a> {
    /// What the failures are counted against.
    pub counter: &'a str,
    /// Failures allowed within `window`; the next one blocks.
    pub limit: u32,
    pub window: Duration,
    /// What is blocked when the count goes over the limit, if anything.
    pub block: Option<&'a str>,
    pub block_for: Duration,
    /// Start the count afresh once it blocked.
    pub reset: bool,
}

/// What counting a failure did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    /// The failure was over the limit.
    pub over_limit: bool,
    /// It set a block that did not hold already (exactly one instance sees this).
    pub newly_blocked: bool,
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A key of fixed length for text of any length: the first 128 bits of its SHA-256. Keys built
/// from a client_id or an email cannot grow Redis or the local caches by their length, and
/// every instance, whatever it was built with, derives the same key.
fn bounded_key(kind: &str, raw: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, raw.as_bytes());
    let mut key = String::with_capacity(kind.len() + 33);
    key.push_str(kind);
    key.push(':');
    for b in &digest.as_ref()[..16] {
        key.push_str(&format!("{b:02x}"));
    }
    key
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

    /// Every order in which calls begun before a change finish after it: only a call begun in
    /// the current state changes it, so the state changes once per episode, not once per
    /// call finishing late.
    #[test]
    fn redis_health_changes_once_whatever_order_late_calls_finish_in() {
        let wait = 1_000;
        let health = RedisHealth::default();
        // Two calls begin while Redis answers; the second times out first.
        let early = health.may_try(0, wait).unwrap();
        let late = health.may_try(0, wait).unwrap();
        assert_eq!(health.failed(late, 100, wait), Some(HealthChange::Unreachable));
        // The first answers after the failure: it began before it, so nothing changes.
        assert_eq!(health.answered(early), None);
        // A third, begun before the failure too, times out: already said.
        assert_eq!(health.failed(early, 101, wait), None);
        // Within the wait nothing tries Redis.
        assert!(health.may_try(500, wait).is_none());
        // After it, probes: one fails (the wait starts again), then one answers.
        let probe = health.may_try(1_100, wait).unwrap();
        assert_eq!(health.failed(probe, 1_100, wait), None);
        assert!(health.may_try(1_500, wait).is_none());
        let probe = health.may_try(2_200, wait).unwrap();
        let other_probe = health.may_try(2_200, wait).unwrap();
        assert_eq!(health.answered(probe), Some(HealthChange::Back));
        // The other probe, begun while local, answering or failing later, changes nothing.
        assert_eq!(health.answered(other_probe), None);
        assert_eq!(health.failed(other_probe, 2_300, wait), None);
        assert!(health.may_try(2_300, wait).is_some(), "a stale failure starts no wait");
        // A call begun now, failing, is a new episode.
        let now = health.may_try(3_000, wait).unwrap();
        assert_eq!(health.failed(now, 3_000, wait), Some(HealthChange::Unreachable));
        // A clock set back further than the wait tries Redis rather than stay local.
        assert!(health.may_try(3_500, wait).is_none(), "within the wait");
        assert!(health.may_try(0, wait).is_some(), "the clock went back further than the wait");
    }

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

    #[tokio::test]
    async fn failures_over_the_limit_block_once_until_the_block_ends() {
        let clock =
            Arc::new(tokenmint_proto::clock::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let limits = Limits::local(clock.clone());
        let failure = FailureCount {
            counter: "ip:192.0.2.1",
            limit: 2,
            window: Duration::from_secs(300),
            block: Some("ip:192.0.2.1"),
            block_for: Duration::from_secs(60),
            reset: false,
        };
        assert_eq!(limits.blocked_for(&["ip:192.0.2.1"]).await, None);
        for _ in 0..2 {
            assert_eq!(limits.count_failure(failure).await, Counted::default());
        }
        let first = limits.count_failure(failure).await;
        assert_eq!(first, Counted { over_limit: true, newly_blocked: true });
        let again = limits.count_failure(failure).await;
        assert_eq!(again, Counted { over_limit: true, newly_blocked: false });
        assert_eq!(
            limits.blocked_for(&["other", "ip:192.0.2.1"]).await,
            Some(Duration::from_secs(60))
        );
        clock.advance(Duration::from_secs(59));
        assert_eq!(limits.blocked_for(&["ip:192.0.2.1"]).await, Some(Duration::from_secs(1)));
        clock.advance(Duration::from_secs(1));
        assert_eq!(limits.blocked_for(&["ip:192.0.2.1"]).await, None);
    }

    #[tokio::test]
    async fn a_forgotten_count_starts_again() {
        let clock =
            Arc::new(tokenmint_proto::clock::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let limits = Limits::local(clock);
        let failure = FailureCount {
            counter: "acct:a@x.test",
            limit: 1,
            window: Duration::from_secs(900),
            block: None,
            block_for: Duration::ZERO,
            reset: false,
        };
        assert!(!limits.count_failure(failure).await.over_limit);
        limits.forget("acct:a@x.test").await;
        assert!(!limits.count_failure(failure).await.over_limit);
        assert!(limits.count_failure(failure).await.over_limit);
        // Without Redis there is nothing to claim one-shot keys in: the caller decides.
        assert_eq!(limits.claim_once("alert", Duration::from_secs(1)).await, None);
    }

    #[tokio::test]
    async fn a_refunded_failure_is_not_counted() {
        let clock =
            Arc::new(tokenmint_proto::clock::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let limits = Limits::local(clock);
        let failure = FailureCount {
            counter: "ip:192.0.2.9",
            limit: 2,
            window: Duration::from_secs(900),
            block: None,
            block_for: Duration::ZERO,
            reset: false,
        };
        for _ in 0..5 {
            assert!(!limits.count_failure(failure).await.over_limit);
            limits.refund_failure("ip:192.0.2.9", 2, failure.window).await;
        }
        assert!(!limits.count_failure(failure).await.over_limit);
        assert!(!limits.count_failure(failure).await.over_limit);
        assert!(limits.count_failure(failure).await.over_limit);
    }

    #[test]
    fn keys_made_of_untrusted_text_have_a_fixed_length() {
        let short = bounded_key("b", "a");
        let long = bounded_key("b", &"x".repeat(1_000_000));
        assert_eq!(short.len(), 34);
        assert_eq!(long.len(), 34);
        assert_ne!(short, bounded_key("b", "b"));
        assert_ne!(short, bounded_key("f", "a"));
    }

    #[test]
    fn script_answers_map_to_decisions() {
        assert_eq!(decision(&[1, 99, 600_000]), Decision::Allowed { remaining: 99, reset_secs: 1 });
        assert_eq!(decision(&[0, 250_000]), Decision::Limited { retry_after_secs: 1 });
        assert_eq!(decision(&[0, 2_500_000]), Decision::Limited { retry_after_secs: 3 });
    }
    /// A TCP relay to Redis whose connections can all be closed at once, as a Redis restart
    /// closes them, while it goes on accepting new ones.
    struct Relay {
        port: u16,
        cut: tokio::sync::watch::Sender<u64>,
        open: Arc<std::sync::atomic::AtomicUsize>,
    }

    async fn relay(target: String) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (cut, cuts) = tokio::sync::watch::channel(0_u64);
        let open = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = open.clone();
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let (target, counted) = (target.clone(), counted.clone());
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                    drop((client, server));
                    counted.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Relay { port, cut, open }
    }

    /// Redis restarted while an instance was idle: its connection is closed, and the first
    /// call on it fails. The call is made again on a new connection, so the instance keeps
    /// counting with the others instead of deciding alone for a second (where an attacker
    /// spreading guesses over the instances got each instance's own allowance).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_instance_idle_through_a_redis_restart_keeps_counting_in_redis() {
        let target =
            std::env::var("TOKENMINT_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".to_owned());
        if tokio::net::TcpStream::connect(&target).await.is_err() {
            assert!(
                std::env::var("TOKENMINT_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "Redis is required (TOKENMINT_REQUIRE_SERVICES=1) but unreachable at {target}"
            );
            eprintln!("skipping: Redis is not reachable at {target}");
            return;
        }
        let relay = relay(target).await;
        let clock =
            Arc::new(tokenmint_proto::clock::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let prefix = format!("tm-test-restart-{}-{}:", std::process::id(), relay.port);
        let url = format!("redis://127.0.0.1:{}/15", relay.port);
        let limits = Limits::redis(&url, &prefix, clock).await.unwrap();
        let hour = Duration::from_secs(3600);
        for _ in 0..2 {
            assert!(matches!(limits.check("k", 3, hour).await, Decision::Allowed { .. }));
        }
        for restart in 1..=3 {
            relay.cut.send_replace(restart);
            let closed = async {
                while relay.open.load(Ordering::SeqCst) > 0 {
                    tokio::task::yield_now().await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), closed).await.unwrap();
            // The third request of three is allowed, and the fourth refused: only Redis holds
            // the two before (this instance's own limiter has seen none of them).
            let decided = limits.check("k", 3, hour).await;
            if restart == 1 {
                assert!(matches!(decided, Decision::Allowed { .. }), "{decided:?}");
            } else {
                assert!(matches!(decided, Decision::Limited { .. }), "{decided:?}");
            }
            assert_eq!(limits.fallback.get(), 0, "decided alone after restart {restart}");
        }
    }
}
