//! The token client: a cache of tokens with single-flight fetches, background refresh, retries
//! and a negative cache.
//!
//! # How the cache behaves
//!
//! Each distinct set of [`TokenParams`] has a slot holding the current token in an
//! `ArcSwapOption`: a caller with a usable token takes it with one atomic load, no lock. A slot
//! has at most one fetch running (a spawned task, so a caller that gives up cannot cancel it for
//! the others); callers without a usable token await a shared handle to it, each under its own
//! deadline. Once a token enters its refresh window the first caller to notice starts that fetch
//! and every caller keeps getting the old token until the new one is stored. A failed fetch
//! leaves the old token in place and is remembered for a short while, so that neither
//! refreshes nor cold callers hammer a failing server.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::FutureExt as _;
use futures_util::future::{BoxFuture, Shared};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};

use crate::clock::{Clock, TokioClock};
use crate::config::{ClientConfig, Endpoint, TokenParams};
use crate::endpoint::{self, TokenRequest, TokenResponse};
use crate::error::Error;
use crate::metrics::{MetricEvent, Metrics, NoMetrics};
use crate::retry::{full_jitter, is_retryable_status, retry_after};
use crate::secret::{AccessToken, SecretString};
use crate::source::SecretReader;

/// The longest lifetime taken from a response; larger values are clamped so instant arithmetic
/// cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(365 * 24 * 3600);
/// A token is treated as expired this long (at most a tenth of its lifetime) before the server
/// says, so that it does not expire on its way to the API.
const EXPIRY_LEEWAY: Duration = Duration::from_secs(5);

/// An access token with what the token endpoint said about it.
///
/// Cheap to clone. `Debug` shows the token type, scope and lifetime, never the token.
#[derive(Clone)]
pub struct Token {
    inner: Arc<TokenInner>,
}

struct TokenInner {
    access_token: AccessToken,
    token_type: String,
    scope: Option<String>,
    expires_in: Option<Duration>,
    obtained_at: Instant,
    refresh_at: Instant,
    expires_at: Instant,
    /// Identifies this token among all tokens of the client, for [`TokenClient::invalidate`].
    generation: u64,
    slot: Weak<Slot>,
    raw: Map<String, Value>,
}

impl Token {
    /// The access token.
    pub fn access_token(&self) -> &AccessToken {
        &self.inner.access_token
    }

    /// The `token_type` the server sent (`Bearer` when it sent none).
    pub fn token_type(&self) -> &str {
        &self.inner.token_type
    }

    /// The `scope` the server granted, if it said.
    pub fn scope(&self) -> Option<&str> {
        self.inner.scope.as_deref()
    }

    /// The `expires_in` the server sent, if any.
    pub fn expires_in(&self) -> Option<Duration> {
        self.inner.expires_in
    }

    /// When the token was requested.
    pub fn obtained_at(&self) -> Instant {
        self.inner.obtained_at
    }

    /// From when on the client refreshes the token in the background.
    pub fn refresh_at(&self) -> Instant {
        self.inner.refresh_at
    }

    /// From when on the client no longer hands the token out (a few seconds before the
    /// server's expiry).
    pub fn expires_at(&self) -> Instant {
        self.inner.expires_at
    }

    /// The whole token response as received, access token included, for programs whose job is
    /// to print it (`tokenmint token --output json`).
    pub fn expose_response(&self) -> &Map<String, Value> {
        &self.inner.raw
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &self.inner.access_token)
            .field("token_type", &self.inner.token_type)
            .field("scope", &self.inner.scope)
            .field("expires_in", &self.inner.expires_in)
            .finish_non_exhaustive()
    }
}

/// Everything that shapes a token: two requests with equal keys get interchangeable tokens.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    endpoint: Endpoint,
    client_id: String,
    params: TokenParams,
}

type Flight = Shared<BoxFuture<'static, Result<Token, Error>>>;

/// The cache entry for one [`CacheKey`].
struct Slot {
    key: CacheKey,
    current: ArcSwapOption<TokenInner>,
    failure: ArcSwapOption<Failure>,
    /// The running fetch. Locked only to join or start one, never across an `.await`.
    flight: Mutex<Option<Flight>>,
    /// Mirrors `flight.is_some()` so callers in the refresh window need not take the lock.
    in_flight: AtomicBool,
}

struct Failure {
    error: Error,
    until: Instant,
}

impl Slot {
    fn new(key: CacheKey) -> Self {
        Self {
            key,
            current: ArcSwapOption::empty(),
            failure: ArcSwapOption::empty(),
            flight: Mutex::new(None),
            in_flight: AtomicBool::new(false),
        }
    }

    fn recent_failure(&self, now: Instant) -> Option<Error> {
        self.failure.load().as_ref().filter(|f| now < f.until).map(|f| f.error.clone())
    }
}

impl fmt::Debug for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Slot")
            .field("key", &self.key)
            .field("in_flight", &self.in_flight.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// An OAuth 2.0 client-credentials client with a shared token cache.
///
/// Cheap to clone; clones share the cache. Create one per client id and keep it for the life of
/// the program.
#[derive(Clone, Debug)]
pub struct TokenClient {
    inner: Arc<Inner>,
}

struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn Metrics>,
    secret: SecretReader,
    /// The token endpoint, and the issuer when it was discovered.
    token_url: tokio::sync::OnceCell<(Url, Option<String>)>,
    default_slot: Arc<Slot>,
    /// Slots for non-default parameters. Copy-on-write: read without a lock, written rarely.
    slots: ArcSwap<HashMap<TokenParams, Arc<Slot>>>,
    slots_write: Mutex<()>,
    generation: AtomicU64,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenClient")
            .field("config", &self.config)
            .field("clock", &self.clock)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// Builds a [`TokenClient`] with a custom HTTP client, clock or metrics.
#[derive(Debug)]
pub struct TokenClientBuilder {
    config: ClientConfig,
    http: Option<reqwest::Client>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn Metrics>,
}

impl TokenClientBuilder {
    /// The HTTP client for the token endpoint (and discovery). It should not follow redirects:
    /// a redirected POST would carry the credentials to wherever the redirect points.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    /// The clock for expiry and `Retry-After` computations; see [`Clock`].
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Where metric events go; see [`Metrics`].
    pub fn metrics(mut self, metrics: Arc<dyn Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Validates the configuration and builds the client. Nothing is fetched yet.
    pub fn build(self) -> Result<TokenClient, Error> {
        self.config.validate()?;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(Duration::from_secs(10))
                .build()
                .map_err(|e| Error::Config(format!("cannot build the HTTP client: {e}")))?,
        };
        let token_url = match &self.config.endpoint {
            Endpoint::TokenUrl(url) => tokio::sync::OnceCell::new_with(Some((url.clone(), None))),
            Endpoint::Issuer(_) => tokio::sync::OnceCell::new(),
        };
        let key = CacheKey {
            endpoint: self.config.endpoint.clone(),
            client_id: self.config.client_id.clone(),
            params: self.config.params.clone(),
        };
        let secret = SecretReader::new(&self.config.secret, self.config.secret_recheck_interval);
        Ok(TokenClient {
            inner: Arc::new(Inner {
                config: self.config,
                http,
                clock: self.clock,
                metrics: self.metrics,
                secret,
                token_url,
                default_slot: Arc::new(Slot::new(key)),
                slots: ArcSwap::default(),
                slots_write: Mutex::new(()),
                generation: AtomicU64::new(0),
            }),
        })
    }
}

impl TokenClient {
    /// A client with the default HTTP client, clock and no metrics.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        Self::builder(config).build()
    }

    /// A builder for a client with a custom HTTP client, clock or metrics.
    pub fn builder(config: ClientConfig) -> TokenClientBuilder {
        TokenClientBuilder {
            config,
            http: None,
            clock: Arc::new(TokioClock),
            metrics: Arc::new(NoMetrics),
        }
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A usable token for the configured parameters, from the cache or fetched now.
    pub async fn token(&self) -> Result<Token, Error> {
        let slot = Arc::clone(&self.inner.default_slot);
        self.inner.get(&slot, self.inner.config.wait_timeout).await
    }

    /// A usable token for other parameters (scopes, audience, resource, extra); each distinct
    /// set has its own cache entry.
    pub async fn token_with(&self, params: &TokenParams) -> Result<Token, Error> {
        self.token_with_deadline(params, self.inner.config.wait_timeout).await
    }

    /// Like [`token_with`](Self::token_with), waiting at most `deadline` for a fetch. Giving up
    /// does not cancel the fetch: other callers still get its token.
    pub async fn token_with_deadline(
        &self,
        params: &TokenParams,
        deadline: Duration,
    ) -> Result<Token, Error> {
        params.validate()?;
        let slot = self.inner.slot(params);
        self.inner.get(&slot, deadline).await
    }

    /// Drops `token` from the cache, because an API refused it. A newer token that replaced it
    /// meanwhile is kept, so many requests failing with the same token cause one fetch, not one
    /// each.
    pub fn invalidate(&self, token: &Token) {
        let Some(slot) = token.inner.slot.upgrade() else { return };
        let generation = token.inner.generation;
        slot.current.rcu(|current| match current {
            Some(current) if current.generation == generation => None,
            other => other.clone(),
        });
        tracing::debug!(client_id = %self.inner.config.client_id, "cached token invalidated");
    }

    /// The token the cache holds for the configured parameters, if it is still usable; never
    /// fetches.
    pub fn cached_token(&self) -> Option<Token> {
        let now = self.inner.clock.now();
        self.inner
            .default_slot
            .current
            .load_full()
            .filter(|t| now < t.expires_at)
            .map(|inner| Token { inner })
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub(crate) fn metrics(&self) -> &Arc<dyn Metrics> {
        &self.inner.metrics
    }
}

impl Inner {
    fn slot(&self, params: &TokenParams) -> Arc<Slot> {
        if *params == self.config.params {
            return Arc::clone(&self.default_slot);
        }
        if let Some(slot) = self.slots.load().get(params) {
            return Arc::clone(slot);
        }
        let _writer = self.slots_write.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.slots.load_full();
        if let Some(slot) = current.get(params) {
            return Arc::clone(slot);
        }
        let slot = Arc::new(Slot::new(CacheKey {
            endpoint: self.config.endpoint.clone(),
            client_id: self.config.client_id.clone(),
            params: params.clone(),
        }));
        let mut next = HashMap::clone(&current);
        next.insert(params.clone(), Arc::clone(&slot));
        self.slots.store(Arc::new(next));
        slot
    }

    async fn get(self: &Arc<Self>, slot: &Arc<Slot>, deadline: Duration) -> Result<Token, Error> {
        let now = self.clock.now();
        if let Some(token) = slot.current.load_full()
            && now < token.expires_at
        {
            if now >= token.refresh_at {
                self.refresh_in_background(slot, now);
            }
            self.metrics.record(MetricEvent::CacheHit);
            return Ok(Token { inner: token });
        }
        if let Some(error) = slot.recent_failure(now) {
            self.metrics.record(MetricEvent::NegativeCacheHit);
            return Err(error);
        }
        self.metrics.record(MetricEvent::CacheMiss);
        let (flight, _) = self.join_or_start(slot, Waiting::Caller);
        match tokio::time::timeout(deadline, flight).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Error::Timeout(deadline)),
        }
    }

    fn refresh_in_background(self: &Arc<Self>, slot: &Arc<Slot>, now: Instant) {
        // A failed refresh is not retried until its negative-cache entry lapses.
        if slot.in_flight.load(Ordering::Acquire) || slot.recent_failure(now).is_some() {
            return;
        }
        let (_, started) = self.join_or_start(slot, Waiting::Nobody);
        if started {
            self.metrics.record(MetricEvent::RefreshStarted);
            tracing::debug!(client_id = %self.config.client_id, "token refresh started");
        }
    }

    /// The running fetch of `slot`, started now if there is none; `true` when started now.
    /// `waiting` says whether the fetch started now has a caller waiting for its outcome.
    fn join_or_start(self: &Arc<Self>, slot: &Arc<Slot>, waiting: Waiting) -> (Flight, bool) {
        let mut flight = slot.flight.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(running) = flight.as_ref() {
            return (running.clone(), false);
        }
        let inner = Arc::clone(self);
        let task_slot = Arc::clone(slot);
        // Spawned rather than run by the first caller, so that the first caller timing out or
        // being dropped does not cancel the fetch the others are waiting for.
        let task = tokio::spawn(async move { inner.fetch_and_store(&task_slot, waiting).await });
        let shared = async move { task.await.unwrap_or(Err(Error::Aborted)) }.boxed().shared();
        *flight = Some(shared.clone());
        slot.in_flight.store(true, Ordering::Release);
        (shared, true)
    }

    async fn fetch_and_store(
        self: &Arc<Self>,
        slot: &Arc<Slot>,
        waiting: Waiting,
    ) -> Result<Token, Error> {
        let outcome = self.fetch(slot).await;
        match &outcome {
            Ok(token) => {
                slot.current.store(Some(Arc::clone(&token.inner)));
                slot.failure.store(None);
                self.metrics.record(MetricEvent::TokenFetched);
            }
            Err(error) => {
                // The current token, if any, stays: it is still usable until it expires.
                // A server that asked for a pause gets it, up to the longest wait the retry
                // policy accepts: one 429 must not silence every caller for an hour.
                let ttl = match error {
                    Error::Status { retry_after: Some(wait), .. } => self
                        .config
                        .negative_cache_ttl
                        .max(*wait.min(&self.config.retry.max_retry_after)),
                    _ => self.config.negative_cache_ttl,
                };
                let until = self.clock.now().checked_add(ttl).unwrap_or_else(|| self.clock.now());
                slot.failure.store(Some(Arc::new(Failure { error: error.clone(), until })));
                self.metrics.record(MetricEvent::TokenFetchFailed);
                // A background refresh has nobody to tell but the log. A fetch a caller waits
                // for hands that caller the error, which reports it (a command-line tool prints
                // it): a warning too would say the same failure twice. It stays in the debug
                // log, and in the `TokenFetchFailed` metric, for whoever wants the trail.
                match waiting {
                    Waiting::Nobody => {
                        tracing::warn!(client_id = %self.config.client_id, error = %error, "token refresh failed");
                    }
                    Waiting::Caller => {
                        tracing::debug!(client_id = %self.config.client_id, error = %error, "token fetch failed");
                    }
                }
            }
        }
        // Cleared after the token is stored, so a caller who finds no fetch running finds the
        // new token instead.
        *slot.flight.lock().unwrap_or_else(PoisonError::into_inner) = None;
        slot.in_flight.store(false, Ordering::Release);
        outcome
    }

    async fn token_url(&self) -> Result<&Url, Error> {
        self.endpoint().await.map(|(url, _)| url)
    }

    /// The token endpoint and, when discovered, the issuer (as its metadata names it).
    async fn endpoint(&self) -> Result<&(Url, Option<String>), Error> {
        self.token_url
            .get_or_try_init(|| async {
                match &self.config.endpoint {
                    Endpoint::TokenUrl(url) => Ok((url.clone(), None)),
                    Endpoint::Issuer(issuer) => {
                        endpoint::discover(&self.http, issuer, self.config.request_timeout)
                            .await
                            .map(|(url, issuer)| (url, Some(issuer)))
                    }
                }
            })
            .await
    }

    /// What authenticates this attempt: the current secret, or a fresh assertion (RFC 7523
    /// §3: a new `jti` every time, so a retry is never refused as a replay).
    async fn credential(&self) -> Result<SecretString, Error> {
        let Some(key) = &self.config.private_key else {
            return self.secret.get(&self.clock, false).await;
        };
        let (url, issuer) = self.endpoint().await?;
        let audience = issuer.clone().unwrap_or_else(|| url.to_string());
        let now = self
            .clock
            .system_time()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        key.assertion(&self.config.client_id, &audience, now).map(SecretString::new)
    }

    /// One token fetch: requests with retries on 429, 5xx, timeouts and connection errors
    /// (RFC 6749 §5.2 errors are final), honouring `Retry-After`.
    async fn fetch(&self, slot: &Arc<Slot>) -> Result<Token, Error> {
        let started = self.clock.now();
        let url = self.token_url().await?;
        let policy = self.config.retry;
        let client_id = self.config.client_id.as_str();
        let mut attempt: u32 = 0;
        let mut secret_rechecked = false;
        loop {
            attempt += 1;
            let secret = self.credential().await?;
            let request = TokenRequest {
                url,
                client_id,
                secret: &secret,
                style: self.config.auth_style,
                send_grant_type: self.config.send_grant_type,
                params: &slot.key.params,
                assertion: self.config.private_key.is_some(),
            }
            .build(&self.http, self.config.request_timeout)?;
            let sent_at = self.clock.now();
            self.metrics.record(MetricEvent::TokenRequest);
            tracing::debug!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, attempt, style = %self.config.auth_style, "requesting token");

            let (wait, error) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let server_wait = retry_after(response.headers(), self.clock.system_time());
                    let body = endpoint::read_body(response).await;
                    match body {
                        Ok(body) if status.is_success() => {
                            let parsed = endpoint::parse_token_response(&body)?;
                            tracing::debug!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, %status, expires_in = ?parsed.expires_in, "token received");
                            return Ok(self.token_from(parsed, sent_at, slot));
                        }
                        Ok(body) => {
                            let error = endpoint::error_from_response(
                                status,
                                &body,
                                attempt,
                                server_wait,
                                client_id,
                                &secret,
                            );
                            tracing::debug!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, %status, attempt, "token endpoint answered with an error");
                            if !is_retryable_status(status) {
                                // A rotated secret file shows up as invalid_client until it is
                                // re-read; re-read it now rather than after the interval.
                                if status == StatusCode::UNAUTHORIZED
                                    && self.secret.can_change()
                                    && !secret_rechecked
                                {
                                    secret_rechecked = true;
                                    let fresh = self.secret.get(&self.clock, true).await?;
                                    if fresh != secret {
                                        tracing::info!(
                                            client_id,
                                            "client secret changed; retrying with it"
                                        );
                                        attempt -= 1;
                                        continue;
                                    }
                                }
                                return Err(error);
                            }
                            (server_wait, error)
                        }
                        Err(e) => (None, transport(attempt, e)),
                    }
                }
                Err(e) if e.is_timeout() || e.is_connect() || e.is_request() => {
                    tracing::debug!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, attempt, error = %e, "token endpoint unreachable");
                    (None, transport(attempt, e))
                }
                Err(e) => return Err(transport(attempt, e)),
            };

            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let delay = match wait {
                Some(wait) if wait > policy.max_retry_after => return Err(error),
                Some(wait) => wait,
                None => full_jitter(policy.base_delay, policy.max_delay, attempt - 1),
            };
            if let Some(limit) = policy.give_up_after
                && self.clock.now().saturating_duration_since(started).saturating_add(delay) > limit
            {
                tracing::debug!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), "the next attempt would come too late; giving up");
                return Err(error);
            }
            self.metrics.record(MetricEvent::TokenEndpointRetry);
            tracing::info!(token_url = %crate::text::without_url_passwords(url.as_str()), client_id, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), error = %error, "token request failed; retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn token_from(&self, response: TokenResponse, sent_at: Instant, slot: &Arc<Slot>) -> Token {
        // Lifetimes count from when the request was sent: the server's clock started somewhere
        // between sending and receiving, so this errs on the safe side.
        let lifetime =
            response.expires_in.unwrap_or(self.config.default_lifetime).min(MAX_LIFETIME);
        let leeway = EXPIRY_LEEWAY.min(lifetime / 10);
        let margin = self.config.refresh_margin.min(lifetime / 2).max(leeway);
        let at = |before: Duration| {
            sent_at.checked_add(lifetime.saturating_sub(before)).unwrap_or(sent_at)
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        Token {
            inner: Arc::new(TokenInner {
                access_token: response.access_token,
                token_type: response.token_type,
                scope: response.scope,
                expires_in: response.expires_in,
                obtained_at: sent_at,
                refresh_at: at(margin),
                expires_at: at(leeway),
                generation,
                slot: Arc::downgrade(slot),
                raw: response.raw,
            }),
        }
    }
}

/// Whether a fetch has a caller waiting for its outcome (a token request) or nobody (a refresh
/// started in the background before the token expires).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waiting {
    Caller,
    Nobody,
}

fn transport(attempts: u32, source: reqwest::Error) -> Error {
    Error::Transport { attempts, source: Arc::new(source) }
}
