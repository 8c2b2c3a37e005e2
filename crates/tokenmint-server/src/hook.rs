//! The token hook (`serve --token-hook URL`): at issuance, after the client authenticated and
//! its grant was decided and before the token is signed, tokenmint asks the provider's endpoint
//! about the token. The answer may add claims, narrow the scopes or refuse the request.
//!
//! The call is a POST of JSON describing the credential, its organization and the request
//! (never a secret), signed like the alert webhooks (`Tokenmint-Signature: t=<unix>,v1=<hex>`,
//! HMAC-SHA-256 over `<unix>.<body>`), through the same outbound rules: no redirects, no proxy
//! from the environment, no loopback, private or link-local targets unless
//! `--token-hook-allow-private`. The answer is `{"allow": true, "claims": {...},
//! "scope": "a b"}` or `{"allow": false, "reason": "..."}`.
//!
//! Answers are cached per credential (its revision, so that any change of the credential or of
//! its organization asks again), requested scope and audience, for `--token-hook-cache-ttl`,
//! timed by the injected clock: the hot path calls the hook once per credential and TTL, not
//! once per token. Concurrent requests that miss the cache for the same key share one call:
//! the first calls, the others wait for its answer (or its failure). A hook that fails (times
//! out, answers an error or something unreadable) is handled by `--token-hook-on-failure`:
//! refuse the request (`temporarily_unavailable`), or issue the token without the hook's
//! claims. Failures are never cached.
//!
//! An answer is malformed, and handled as a failure, when its claims break the custom claim
//! rules (a reserved name, a control character in a string, a number beyond ±(2^53 − 1), …)
//! or its `scope` keeps none of the granted scopes (a hook that wants no token refuses it).
//! A refusal's reason reaches the client as `error_description`, within the characters
//! RFC 6749 §5.2 allows.

use crate::alerts::{WebhookSecret, WebhookTarget, non_public_target, outbound_client, signature};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use quick_cache::Equivalent;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokenmint_core::claims::{ClaimError, CustomClaims};
use tokenmint_core::{Environment, UnixTime};

/// Longest answer read from the hook.
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// Longest refusal reason passed on to the client.
const MAX_REASON_CHARS: usize = 200;
/// Most answers cached at once.
const CACHE_CAPACITY: usize = 100_000;

/// What tokenmint does when the hook cannot answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Refuse the token request with `temporarily_unavailable` (the default: a hook that
    /// decides who gets a token is not skipped silently).
    Refuse,
    /// Issue the token without the hook's claims and scope narrowing.
    Issue,
}

impl std::str::FromStr for OnFailure {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refuse" => Ok(Self::Refuse),
            "issue" => Ok(Self::Issue),
            other => {
                Err(format!("'{other}' is not a token hook failure policy: use refuse or issue"))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct HookConfig {
    pub target: WebhookTarget,
    /// Call loopback, private and link-local targets too.
    pub allow_private: bool,
    /// Signs every call; without it receivers cannot authenticate tokenmint.
    pub secret: Option<WebhookSecret>,
    /// Call the hook without a signature, on purpose (`--token-hook-unsigned`): the hook
    /// authenticates tokenmint some other way (a private network, mutual TLS at a proxy).
    /// Without a secret and without this, the server does not start.
    pub unsigned: bool,
    /// How long one call may take, connection included.
    pub timeout: Duration,
    pub on_failure: OnFailure,
    /// How long an answer is reused; zero calls the hook for every token.
    pub cache_ttl: Duration,
}

impl HookConfig {
    pub fn new(target: WebhookTarget) -> Self {
        Self {
            target,
            allow_private: false,
            secret: None,
            unsigned: false,
            timeout: Duration::from_secs(2),
            on_failure: OnFailure::Refuse,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

/// A hook URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookConfigError {
    #[error(
        "the token hook {shown} points at {addr}, a {kind} address: tokenmint calls no internal \
         targets; use a public endpoint, or give --token-hook-allow-private if the hook is meant \
         to be internal"
    )]
    Private { shown: String, addr: IpAddr, kind: &'static str },
    #[error(
        "the token hook {shown} has no signing secret, so it could not tell tokenmint's calls \
         from anyone else's: give --token-hook-secret-file FILE (or TOKENMINT_TOKEN_HOOK_SECRET) \
         and check the Tokenmint-Signature header in the hook, or give --token-hook-unsigned if \
         the hook authenticates tokenmint another way (a private network, mutual TLS)"
    )]
    Unsigned { shown: String },
    #[error(
        "the token hook {shown} has a signing secret and --token-hook-unsigned: give one of them"
    )]
    SignedAndUnsigned { shown: String },
}

/// Checks the hook's signing and destination at start-up (the destination is checked again at
/// every connection).
pub async fn check_target(config: &HookConfig) -> Result<(), HookConfigError> {
    let shown = || config.target.shown().to_owned();
    match (&config.secret, config.unsigned) {
        (None, false) => return Err(HookConfigError::Unsigned { shown: shown() }),
        (Some(_), true) => return Err(HookConfigError::SignedAndUnsigned { shown: shown() }),
        _ => {}
    }
    if config.allow_private {
        return Ok(());
    }
    match non_public_target(&config.target).await {
        Some((addr, kind)) => {
            Err(HookConfigError::Private { shown: config.target.shown().to_owned(), addr, kind })
        }
        None => Ok(()),
    }
}

/// What the hook is told about a token request.
#[derive(Debug, Serialize)]
pub struct HookRequest<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub org: &'a str,
    pub environment: Environment,
    /// The scope the client asked for; `null` when it asked for none (all of its own).
    pub requested_scope: Option<&'a str>,
    /// The scope tokenmint would grant, space-separated.
    pub scope: &'a str,
    /// The audiences the client asked for (`audience`, or one or more `resource`s); empty
    /// when it asked for none.
    pub requested_audiences: &'a [String],
    /// The custom claims the token carries already (organization's and credential's).
    pub claims: serde_json::Map<String, serde_json::Value>,
}

/// What the hook is told of, and keys its answers by: the credential asking, borrowed from the
/// cache entry the token endpoint already holds (nothing is copied on a cache hit).
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub client_id: &'a str,
    pub name: &'a str,
    pub org: &'a str,
    pub environment: Environment,
    /// Storage revision: a changed credential is asked about again.
    pub revision: i64,
}

#[derive(Debug, Deserialize)]
#[serde(expecting = "an object such as {\"allow\": true}")]
struct Answer {
    allow: bool,
    #[serde(default)]
    claims: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The hook's decision, ready for the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Issue, with these claims (the static ones overlaid with the hook's, as JSON object
    /// members) and, when the hook narrowed it, this scope.
    Allow { claims_json: String, scope: Option<String> },
    /// Refuse with `access_denied` and this reason (an `error_description`), keeping what the
    /// hook said for the audit trail.
    Deny {
        reason: String,
        /// The hook's `reason` exactly as it was given (at most [`MAX_REASON_CHARS`]
        /// characters), when it gave one as a string. Any text: what writes it escapes it
        /// (the audit record as JSON; the log line through `SafeText`).
        said: Option<String>,
        /// What else was wrong with an answer that refused: a refusal stands however the rest
        /// of the answer is written (see [`refuses`]).
        malformed: Option<String>,
    },
}

/// Why the hook gave no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookFailure {
    #[error("the token hook did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the token hook could not be reached: {0}")]
    Unreachable(String),
    #[error("the token hook answered HTTP {0}")]
    Status(u16),
    #[error("the token hook's answer is not understood: {0}")]
    Malformed(String),
}

impl HookFailure {
    /// The metrics label.
    pub const fn outcome(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Unreachable(_) | Self::Status(_) => "error",
            Self::Malformed(_) => "malformed",
        }
    }
}

/// The cache key. Only a miss builds one: lookups use the borrowed [`KeyRef`], so a request
/// answered from the cache allocates nothing for its key.
#[derive(Debug, Clone, Hash, PartialEq, Eq)]
struct Key {
    client_id: String,
    revision: i64,
    scope: Option<String>,
    audiences: Vec<String>,
}

/// [`Key`] borrowed from the request. The derived `Hash` feeds the same values in the same order
/// as `Key`'s (`&str` hashes as `String`, `&[String]` as `Vec<String>`), which the cache's
/// [`Equivalent`] lookup requires.
#[derive(Debug, Clone, Copy, Hash)]
struct KeyRef<'a> {
    client_id: &'a str,
    revision: i64,
    scope: Option<&'a str>,
    audiences: &'a [String],
}

impl KeyRef<'_> {
    fn to_owned_key(self) -> Key {
        Key {
            client_id: self.client_id.to_owned(),
            revision: self.revision,
            scope: self.scope.map(str::to_owned),
            audiences: self.audiences.to_vec(),
        }
    }
}

impl Equivalent<Key> for KeyRef<'_> {
    fn equivalent(&self, key: &Key) -> bool {
        self.client_id == key.client_id
            && self.revision == key.revision
            && self.scope == key.scope.as_deref()
            && self.audiences == key.audiences.as_slice()
    }
}

/// A decision, shared between the cache and the requests it serves.
#[derive(Debug)]
pub struct Cached {
    pub decision: Decision,
    expires_at: UnixTime,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabel {
    pub result: &'static str,
}

/// The hook's metrics.
#[derive(Debug, Clone)]
pub struct HookMetrics {
    /// Calls made, by outcome: `allow`, `deny`, `timeout`, `error`, `malformed`.
    pub calls: Family<OutcomeLabel, Counter>,
    /// Lookups of the answer cache: `hit`, `miss` (this request calls the hook) or `shared`
    /// (a miss that waits for the call another request for the same key is making).
    pub cache: Family<CacheLabel, Counter>,
    /// Failures handled by `--token-hook-on-failure`: `refused` or `issued`.
    pub failures: Family<OutcomeLabel, Counter>,
    pub call_seconds: Histogram,
    hits: Counter,
    misses: Counter,
    shared: Counter,
}

impl HookMetrics {
    pub fn register(registry: &mut Registry) -> Self {
        let cache = Family::<CacheLabel, Counter>::default();
        let hits = cache.get_or_create(&CacheLabel { result: "hit" }).clone();
        let misses = cache.get_or_create(&CacheLabel { result: "miss" }).clone();
        let shared = cache.get_or_create(&CacheLabel { result: "shared" }).clone();
        let m = Self {
            calls: Family::default(),
            cache,
            failures: Family::default(),
            call_seconds: Histogram::new([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5]),
            hits,
            misses,
            shared,
        };
        registry.register(
            "token_hook_calls",
            "Calls of the token hook, by outcome",
            m.calls.clone(),
        );
        registry.register(
            "token_hook_cache",
            "Token hook answers looked up in the cache, by result",
            m.cache.clone(),
        );
        registry.register(
            "token_hook_failures",
            "Token hook failures, by what --token-hook-on-failure made of them",
            m.failures.clone(),
        );
        registry.register(
            "token_hook_call_seconds",
            "Latency of token hook calls",
            m.call_seconds.clone(),
        );
        m
    }
}

/// What one call gave, shared by the requests that waited for it.
type Outcome = Result<Arc<Cached>, HookFailure>;

/// A call being made: the requests that miss the cache for its key meanwhile wait for its
/// outcome instead of calling too. The sender is dropped without an outcome only when the
/// calling request was abandoned (its client went away); the waiters then try again.
type Flight = Arc<tokio::sync::watch::Sender<Option<Outcome>>>;

/// The hook client, its cache, the calls being made and its metrics.
pub struct TokenHook {
    pub config: HookConfig,
    http: reqwest::Client,
    cache: Cache<Key, Arc<Cached>>,
    in_flight: Mutex<HashMap<Key, Flight>>,
    pub metrics: HookMetrics,
}

/// The request making a call: whatever becomes of it, the call is no longer in flight after.
struct Leading<'a> {
    in_flight: &'a Mutex<HashMap<Key, Flight>>,
    key: Key,
    flight: Flight,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
        if in_flight.get(&self.key).is_some_and(|f| Arc::ptr_eq(f, &self.flight)) {
            in_flight.remove(&self.key);
        }
    }
}

impl std::fmt::Debug for TokenHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenHook").field("target", &self.config.target).finish_non_exhaustive()
    }
}

/// What a token request is, for the hook.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    pub scope: Option<&'a str>,
    pub audiences: &'a [String],
    /// The scope the grant decided.
    pub granted_scope: &'a str,
}

impl TokenHook {
    pub fn new(config: HookConfig, registry: &mut Registry) -> Self {
        let http = outbound_client(
            config.allow_private,
            config.timeout,
            concat!("tokenmint-token-hook/", env!("CARGO_PKG_VERSION")),
        );
        Self {
            config,
            http,
            cache: Cache::new(CACHE_CAPACITY),
            in_flight: Mutex::new(HashMap::new()),
            metrics: HookMetrics::register(registry),
        }
    }

    /// The hook's decision for this request: cached while fresh at `now`, else asked, once for
    /// all the requests that miss the cache for the same key at the same time.
    pub async fn decide(
        &self,
        credential: &Subject<'_>,
        static_claims: &CustomClaims,
        asked: Asked<'_>,
        now: UnixTime,
    ) -> Result<Arc<Cached>, HookFailure> {
        let key = KeyRef {
            client_id: credential.client_id,
            revision: credential.revision,
            scope: asked.scope,
            audiences: asked.audiences,
        };
        if let Some(hit) = self.cache.get(&key).filter(|c| now < c.expires_at) {
            self.metrics.hits.inc();
            return Ok(hit);
        }
        let key = key.to_owned_key();
        let leading = loop {
            let joined = {
                let mut in_flight = self.in_flight.lock().unwrap_or_else(PoisonError::into_inner);
                match in_flight.get(&key) {
                    Some(flight) => Err(flight.subscribe()),
                    None => {
                        let flight = Arc::new(tokio::sync::watch::channel(None).0);
                        in_flight.insert(key.clone(), flight.clone());
                        Ok(flight)
                    }
                }
            };
            let mut waiting = match joined {
                Ok(flight) => break Leading { in_flight: &self.in_flight, key, flight },
                Err(waiting) => waiting,
            };
            self.metrics.shared.inc();
            // Ends with the outcome, or when the call left the flight (its outcome is there
            // then, unless the calling request was abandoned).
            let _ = waiting.wait_for(Option::is_some).await;
            if let Some(outcome) = waiting.borrow().as_ref() {
                return outcome.clone();
            }
            // The calling request was abandoned before the answer: the answer may be cached by
            // now, else this request calls (or waits for another's call).
            if let Some(hit) = self.cache.get(&key).filter(|c| now < c.expires_at) {
                self.metrics.hits.inc();
                return Ok(hit);
            }
        };
        self.metrics.misses.inc();
        let started = Instant::now();
        let result = self.call(credential, static_claims, asked, now).await;
        self.metrics.call_seconds.observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(Decision::Allow { .. }) => "allow",
            Ok(Decision::Deny { .. }) => "deny",
            Err(f) => f.outcome(),
        };
        self.metrics.calls.get_or_create(&OutcomeLabel { outcome }).inc();
        let ttl = i64::try_from(self.config.cache_ttl.as_secs()).unwrap_or(i64::MAX);
        let outcome = result
            .map(|decision| Arc::new(Cached { decision, expires_at: now.saturating_add(ttl) }));
        // Cached before the call leaves the flight, so that a request arriving in between finds
        // either; a failure is handed to the waiters only.
        if let Ok(cached) = &outcome
            && ttl > 0
        {
            self.cache.insert(leading.key.clone(), cached.clone());
        }
        leading.flight.send_replace(Some(outcome.clone()));
        drop(leading);
        outcome
    }

    async fn call(
        &self,
        credential: &Subject<'_>,
        static_claims: &CustomClaims,
        asked: Asked<'_>,
        now: UnixTime,
    ) -> Result<Decision, HookFailure> {
        let request = HookRequest {
            client_id: credential.client_id,
            name: credential.name,
            org: credential.org,
            environment: credential.environment,
            requested_scope: asked.scope,
            scope: asked.granted_scope,
            requested_audiences: asked.audiences,
            claims: static_claims.to_map(),
        };
        let body = serde_json::to_string(&request)
            .map_err(|e| HookFailure::Malformed(format!("request: {e}")))?;
        let mut req = self
            .http
            .post(self.config.target.url().clone())
            .header("content-type", "application/json")
            .header("accept", "application/json");
        if let Some(secret) = &self.config.secret {
            req = req.header("tokenmint-signature", signature(secret, now, &body));
        }
        let timeout = self.config.timeout;
        let exchange = async {
            let res = req.body(body).send().await?;
            let status = res.status();
            let bytes = res.bytes().await?;
            Ok::<_, reqwest::Error>((status, bytes))
        };
        let (status, bytes) = match tokio::time::timeout(timeout, exchange).await {
            Err(_) => return Err(HookFailure::Timeout(timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(HookFailure::Timeout(timeout)),
            Ok(Err(e)) => return Err(HookFailure::Unreachable(describe(&e))),
            Ok(Ok(answer)) => answer,
        };
        if !status.is_success() {
            return Err(HookFailure::Status(status.as_u16()));
        }
        if bytes.len() > MAX_ANSWER_BYTES {
            return Err(HookFailure::Malformed(format!("longer than {MAX_ANSWER_BYTES} bytes")));
        }
        match read_answer(&bytes) {
            Ok(answer) => decision(answer, static_claims, asked.granted_scope),
            // An answer that says `"allow": false` refuses, whatever else is wrong with it: a
            // mistyped reason must not turn into a token under `--token-hook-on-failure issue`.
            Err(HookFailure::Malformed(why)) if refuses(&bytes) => Ok(Decision::Deny {
                reason: error_description(None),
                said: None,
                malformed: Some(why),
            }),
            Err(failure) => Err(failure),
        }
    }
}

/// Whether an answer refuses: a JSON object whose `allow` members (at its top level) are all
/// `false`, read leniently (any other member may be anything, repeated or malformed, as long as
/// the document is JSON). An `allow` given both `true` and `false` is not a refusal but a
/// malformed answer.
fn refuses(bytes: &[u8]) -> bool {
    use serde::de::{IgnoredAny, MapAccess, Visitor};
    struct AllowVisitor;
    impl<'de> Visitor<'de> for AllowVisitor {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("an object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
            let (mut refused, mut allowed) = (false, false);
            while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                if key == "allow" {
                    // Anything but `false` (`true`, "false", 0) is no refusal.
                    match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::Bool(false) => refused = true,
                        _ => allowed = true,
                    }
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(refused && !allowed)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde::Deserializer::deserialize_map(&mut de, AllowVisitor).is_ok_and(|r| r) && de.end().is_ok()
}

/// The hook's answer, read strictly: a key repeated anywhere (`"allow"` twice, or inside a
/// claim's value) means different things to different readers, so it is no answer at all.
fn read_answer(bytes: &[u8]) -> Result<Answer, HookFailure> {
    tokenmint_core::json::from_slice(bytes)
        .map_err(|e| e.to_string())
        .and_then(|v| serde_json::from_value(v).map_err(|e| e.to_string()))
        .map_err(|e| HookFailure::Malformed(format!("expected {{\"allow\": …}}: {e}")))
}

/// Makes a decision of an answer: claims checked like any custom claim (a hook can no more set
/// `sub` than an administrator can), scopes narrowed to the granted ones and never widened.
fn decision(
    answer: Answer,
    static_claims: &CustomClaims,
    granted: &str,
) -> Result<Decision, HookFailure> {
    if !answer.allow {
        return Ok(Decision::Deny {
            reason: error_description(answer.reason.as_deref()),
            said: answer.reason.as_deref().map(said),
            malformed: None,
        });
    }
    let added = CustomClaims::parse_hook(answer.claims.unwrap_or_default())
        .map_err(|e: ClaimError| HookFailure::Malformed(e.to_string()))?;
    let claims_json = CustomClaims::overlay(static_claims, &added).json_members();
    let scope = match answer.scope {
        None => None,
        Some(s) => {
            // Only a space separates scopes (RFC 6749 §3.3): `a\tb` is one scope, which
            // matches no granted one.
            let wanted: Vec<&str> = s.split(' ').filter(|w| !w.is_empty()).collect();
            let kept = granted
                .split(' ')
                .filter(|g| !g.is_empty() && wanted.contains(g))
                .collect::<Vec<_>>()
                .join(" ");
            // A token without any of its scopes is no narrowing but a refusal the hook did not
            // say: it is not issued, and not cached.
            if kept.is_empty() && !granted.is_empty() {
                let shown: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
                return Err(HookFailure::Malformed(format!(
                    "its scope '{shown}' keeps none of the granted scopes '{granted}'; a hook \
                     that wants no token answers {{\"allow\": false}}"
                )));
            }
            Some(kept)
        }
    };
    Ok(Decision::Allow { claims_json, scope })
}

/// The hook's reason as it was given, for the audit trail: any text, unescaped, at most
/// [`MAX_REASON_CHARS`] characters (a longer one keeps its first 199 and ends with `…`).
fn said(reason: &str) -> String {
    if reason.chars().nth(MAX_REASON_CHARS).is_none() {
        return reason.to_owned();
    }
    let mut kept: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
    kept.push('…');
    kept
}

/// The hook's reason for a refusal as an `error_description`: RFC 6749 §5.2 allows only
/// %x20-21 / %x23-5B / %x5D-7E. A quote becomes `'`, a backslash `/`, a run of white space or
/// control characters one space, any other character `?`; at most [`MAX_REASON_CHARS`]
/// characters, and a fixed sentence when nothing is left.
fn error_description(reason: Option<&str>) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in reason.unwrap_or_default().chars() {
        if c.is_whitespace() || c.is_control() {
            gap = !out.is_empty();
            continue;
        }
        if out.len() + usize::from(gap) >= MAX_REASON_CHARS {
            break;
        }
        if std::mem::take(&mut gap) {
            out.push(' ');
        }
        out.push(match c {
            '"' => '\'',
            '\\' => '/',
            '!'..='~' => c,
            _ => '?',
        });
    }
    if out.is_empty() { "the provider refused to issue this token".to_owned() } else { out }
}

/// An error's chain, without the URL (it may hold secrets in its query).
fn describe(e: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
    while let Some(err) = source {
        parts.push(err.to_string());
        source = err.source();
    }
    if parts.is_empty() {
        if e.is_connect() { "connection failed".to_owned() } else { "request failed".to_owned() }
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(v: serde_json::Value) -> Answer {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn scopes_are_only_ever_narrowed_and_claims_follow_the_custom_claim_rules() {
        let statics = CustomClaims::default();
        let d = decision(
            answer(json!({"allow": true, "scope": "b:read x:write a:read"})),
            &statics,
            "a:read b:read c:read",
        )
        .unwrap();
        assert_eq!(
            d,
            Decision::Allow { claims_json: String::new(), scope: Some("a:read b:read".into()) }
        );
        // Only a space separates the hook's scopes: other whitespace joins two into one, which
        // matches none of the granted ones.
        for joined in ["a:read\tb:read", "a:read\u{a0}b:read", "a:read\u{2028}b:read"] {
            let d = decision(
                answer(json!({"allow": true, "scope": joined})),
                &statics,
                "a:read b:read",
            );
            assert!(matches!(d, Err(HookFailure::Malformed(_))), "{joined:?}: {d:?}");
        }
        let d = decision(
            answer(json!({"allow": true, "scope": "c:read\u{a0}a:read b:read"})),
            &statics,
            "a:read b:read",
        )
        .unwrap();
        assert_eq!(d, Decision::Allow { claims_json: String::new(), scope: Some("b:read".into()) });
        for reserved in ["sub", "scope", "ORG", "client_id", "tokenmint_x"] {
            let e =
                decision(answer(json!({"allow": true, "claims": {reserved: "x"}})), &statics, "a");
            assert!(
                matches!(e, Err(HookFailure::Malformed(ref m)) if m.contains("reserved")),
                "{reserved}: {e:?}"
            );
        }
        let big = "x".repeat(600);
        let e =
            decision(answer(json!({"allow": true, "claims": {"a": big, "b": big}})), &statics, "a");
        assert!(matches!(e, Err(HookFailure::Malformed(_))));
    }

    #[test]
    fn the_hooks_claims_are_laid_over_the_static_ones_and_a_denial_keeps_its_reason_clean() {
        let statics = CustomClaims::parse(
            json!({"plan": "basic", "tenant": "t1"}).as_object().cloned().unwrap(),
        )
        .unwrap();
        let d = decision(answer(json!({"allow": true, "claims": {"plan": "gold"}})), &statics, "a")
            .unwrap();
        assert_eq!(
            d,
            Decision::Allow { claims_json: r#""plan":"gold","tenant":"t1""#.into(), scope: None }
        );
        let d =
            decision(answer(json!({"allow": false, "reason": "unpaid\r\ninvoice"})), &statics, "a")
                .unwrap();
        let Decision::Deny { reason, said, malformed } = d else { panic!("{d:?}") };
        assert_eq!(reason, "unpaid invoice");
        assert_eq!(said.as_deref(), Some("unpaid\r\ninvoice"));
        assert_eq!(malformed, None);
    }

    /// RFC 6749 §5.2: `error_description` = 1*( %x20-21 / %x23-5B / %x5D-7E ).
    fn rfc6749_description(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E))
    }

    #[test]
    fn a_refusals_reason_is_kept_within_the_characters_of_an_error_description() {
        for (reason, described) in [
            (Some("contract ended"), "contract ended"),
            (Some("the partner's \"plan\" ended"), "the partner's 'plan' ended"),
            (Some(r"C:\path"), "C:/path"),
            (Some("Vertrag für Zürich beendet"), "Vertrag f?r Z?rich beendet"),
            (Some("東京"), "??"),
            (Some("line\r\nbreak\0nul\ttab\u{1b}[31m\u{7f}\u{85}x"), "line break nul tab [31m x"),
            (Some("  \n padded \t "), "padded"),
            (Some("\r\n\0"), "the provider refused to issue this token"),
            (Some(""), "the provider refused to issue this token"),
            (None, "the provider refused to issue this token"),
        ] {
            let got = error_description(reason);
            assert_eq!(got, described, "{reason:?}");
            assert!(rfc6749_description(&got), "{got:?}");
        }
        let long = "é".repeat(500);
        let got = error_description(Some(&long));
        assert_eq!(got.len(), MAX_REASON_CHARS);
        assert!(rfc6749_description(&got));
        let long = format!("{} {}", "a".repeat(MAX_REASON_CHARS - 1), "b".repeat(10));
        assert_eq!(error_description(Some(&long)), "a".repeat(MAX_REASON_CHARS - 1));
    }

    #[test]
    fn a_scope_that_keeps_none_of_the_granted_ones_is_a_malformed_answer() {
        let statics = CustomClaims::default();
        for scope in ["", " ", "x:write", "A:READ", "a:read:more"] {
            let e =
                decision(answer(json!({"allow": true, "scope": scope})), &statics, "a:read b:read");
            assert!(
                matches!(&e, Err(HookFailure::Malformed(m)) if m.contains("keeps none of the granted")),
                "{scope:?}: {e:?}"
            );
        }
        // Nothing was granted to narrow: the hook's scope cannot take anything away.
        let d = decision(answer(json!({"allow": true, "scope": "a:read"})), &statics, "").unwrap();
        assert_eq!(d, Decision::Allow { claims_json: String::new(), scope: Some(String::new()) });
        let d = decision(
            answer(json!({"allow": true, "scope": "x b:read"})),
            &statics,
            "a:read b:read",
        )
        .unwrap();
        assert_eq!(d, Decision::Allow { claims_json: String::new(), scope: Some("b:read".into()) });
    }

    #[test]
    fn claims_with_a_control_character_or_an_inexact_number_make_a_malformed_answer() {
        let statics = CustomClaims::default();
        for claims in [
            json!({"note": "a\r\nb"}),
            json!({"note": "nul\u{0}"}),
            json!({"note": ["ok", "tab\t"]}),
            json!({"note": {"k": "del\u{7f}"}}),
            json!({"note": "nel\u{85}"}),
            json!({"n": 9_007_199_254_740_993_u64}),
        ] {
            let e = decision(answer(json!({"allow": true, "claims": claims})), &statics, "a");
            assert!(matches!(e, Err(HookFailure::Malformed(_))), "{claims}: {e:?}");
            assert_eq!(e.unwrap_err().outcome(), "malformed");
        }
        // Beyond the 64-bit integers, serde_json reads a float: refused too, never rounded.
        let raw = br#"{"allow": true, "claims": {"n": 123456789012345678901234567890}}"#;
        let a = read_answer(raw).unwrap();
        assert!(matches!(decision(a, &statics, "a"), Err(HookFailure::Malformed(_))));
    }

    #[test]
    fn an_answer_refuses_when_its_every_allow_is_false_whatever_else_it_holds() {
        for refusing in [
            r#"{"allow": false}"#,
            r#"{"allow": false, "reason": 42}"#,
            r#"{"reason": {"a": 1, "a": 2}, "allow": false}"#,
            r#"{"allow": false, "allow": false, "x": [1e400, "\u0000"]}"#,
            r#" {"allow":false} "#,
        ] {
            assert!(refuses(refusing.as_bytes()), "{refusing}");
        }
        for not_refusing in [
            r#"{"allow": true}"#,
            r#"{"allow": false, "allow": true}"#,
            r#"{"allow": "false"}"#,
            r#"{"allow": 0}"#,
            r#"{"nested": {"allow": false}}"#,
            r#"[false]"#,
            r#"{"allow": false} trailing"#,
            r#"{"allow": false"#,
            "",
        ] {
            assert!(!refuses(not_refusing.as_bytes()), "{not_refusing}");
        }
    }

    #[test]
    fn a_refusals_reason_is_kept_as_said_for_the_audit_trail() {
        let answer = read_answer(r#"{"allow": false, "reason": "日本語の理由\u0007"}"#.as_bytes());
        let d = decision(answer.unwrap(), &CustomClaims::default(), "a").unwrap();
        let Decision::Deny { reason, said, malformed } = d else { panic!("{d:?}") };
        assert_eq!(said.as_deref(), Some("日本語の理由\u{7}"));
        assert!(reason.is_ascii(), "{reason}");
        assert_eq!(malformed, None);
        // Cut to 200 characters, the cut marked.
        let long = format!("{}\\tail", "é".repeat(MAX_REASON_CHARS));
        let refusal = self::answer(json!({"allow": false, "reason": long}));
        let d = decision(refusal, &CustomClaims::default(), "a").unwrap();
        let Decision::Deny { said: Some(said), .. } = d else { panic!("{d:?}") };
        assert_eq!(said.chars().count(), MAX_REASON_CHARS);
        assert_eq!(said, format!("{}…", "é".repeat(MAX_REASON_CHARS - 1)));
        let exact = "\\".repeat(MAX_REASON_CHARS);
        let refusal = self::answer(json!({"allow": false, "reason": exact}));
        let d = decision(refusal, &CustomClaims::default(), "a").unwrap();
        let Decision::Deny { said: Some(said), .. } = d else { panic!("{d:?}") };
        assert_eq!(said, exact, "200 characters are kept whole, unescaped");
    }

    #[test]
    fn an_answer_with_a_key_given_twice_anywhere_is_malformed() {
        for raw in [
            &br#"{"allow": false, "allow": true}"#[..],
            br#"{"allow": true, "claims": {"t": 1, "t": 2}}"#,
            br#"{"allow": true, "claims": {"plan": {"tier": "a", "tier": "b"}}}"#,
            br#"{"allow": true, "claims": {"p": [{"x": 1, "x": 1}]}}"#,
        ] {
            let e = read_answer(raw).map(|_| ()).unwrap_err();
            assert!(
                matches!(&e, HookFailure::Malformed(m) if m.contains("appears twice")),
                "{}: {e:?}",
                String::from_utf8_lossy(raw)
            );
        }
        assert!(
            read_answer(br#"{"allow": true, "claims": {"a": {"x": 1}, "b": {"x": 1}}}"#).is_ok()
        );
    }

    #[test]
    fn failure_policies_parse() {
        assert_eq!("refuse".parse::<OnFailure>(), Ok(OnFailure::Refuse));
        assert_eq!("issue".parse::<OnFailure>(), Ok(OnFailure::Issue));
        assert!("skip".parse::<OnFailure>().unwrap_err().contains("refuse or issue"));
    }

    #[test]
    fn a_borrowed_key_finds_the_owned_entry_and_only_it() {
        let audiences = vec!["https://api.example".to_owned(), "billing".to_owned()];
        let asked = KeyRef {
            client_id: "cli_1",
            revision: 3,
            scope: Some("read write"),
            audiences: &audiences,
        };
        let cache: Cache<Key, u8> = Cache::new(16);
        cache.insert(asked.to_owned_key(), 1);
        assert_eq!(cache.get(&asked), Some(1));

        let others = [
            KeyRef { client_id: "cli_2", ..asked },
            KeyRef { revision: 4, ..asked },
            KeyRef { scope: None, ..asked },
            KeyRef { scope: Some("read"), ..asked },
            KeyRef { audiences: &audiences[..1], ..asked },
            KeyRef { audiences: &[], ..asked },
        ];
        for other in others {
            assert_eq!(cache.get(&other), None, "{other:?}");
        }
        // The other keys, stored, are found by their borrowed forms too.
        for (i, other) in others.iter().enumerate() {
            cache.insert(other.to_owned_key(), u8::try_from(i + 2).unwrap());
        }
        for (i, other) in others.iter().enumerate() {
            assert_eq!(cache.get(other), Some(u8::try_from(i + 2).unwrap()));
        }
        assert_eq!(cache.get(&asked), Some(1));
    }
}
