//! Following the issuer's revocation feed, so stateless JWTs can still be revoked.
//!
//! The follower runs as one background task:
//! 1. it catches up by polling `GET {feed}?after=CURSOR&limit=N` until a page comes back short
//!    (at start, `after=0` returns every live entry);
//! 2. it opens the stream `GET {feed}/stream?after=CURSOR` (with `Last-Event-ID`) and applies
//!    each `revocation` event as it arrives;
//! 3. when the stream ends, goes idle past its timeout or errors, it goes back to 1 after a
//!    short pause; when the stream cannot be opened at all, it polls every `poll_interval`
//!    and tries the stream again every `stream_retry_interval`.
//!
//! A failing feed never stops verification: tokens keep being checked against what is known,
//! each failed request is counted, and a warning is logged when the feed goes down (then at
//! most once a minute while it stays down). A 401 from the feed makes the [`TokenSource`]
//! drop its token and the request is retried once with a new one.

use crate::clock::{Clock, unix_seconds};
use crate::config::FeedConfig;
use crate::error::FetchError;
use crate::fetch::read_limited;
use crate::metrics::Metrics;
use crate::revocation::RevocationList;
use crate::sse::SseParser;
use crate::token_source::{BearerToken, TokenSource};
use http::{HeaderValue, StatusCode, header};
use reqwest::Url;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokenmint_proto::feed::{RevocationEntry, RevocationPage, SSE_EVENT};
use tokio::sync::watch;
use tokio::time::Instant;

/// Upper bound on pages read in one catch-up, so a feed that keeps answering full pages
/// cannot keep the follower from ever opening the stream.
const MAX_PAGES_PER_CATCH_UP: usize = 1_000;
/// Pause before reopening a stream that ended normally, unless the server asked for another.
const RECONNECT_DELAY: Duration = Duration::from_secs(1);
/// A stream shorter-lived than this counts as a failure for the reconnection backoff.
const SHORT_LIVED_STREAM: Duration = Duration::from_secs(10);
/// While the feed stays down, how often the warning is repeated.
const WARN_EVERY: Duration = Duration::from_secs(60);

/// A handle on the running follower.
///
/// The follower runs as long as its verifier lives: dropping this handle (even at once, as in
/// `let _ = verifier.follow_revocations(..)?`) does not stop it, so a revocation feed cannot be
/// lost by accident. [`stop`](Self::stop) stops it on purpose.
#[derive(Debug)]
pub struct RevocationFollower {
    task: tokio::task::AbortHandle,
    state: watch::Receiver<FeedState>,
}

/// What the follower knows of the feed so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FeedState {
    /// The feed has been read successfully at least once.
    synced: bool,
    /// The feed's last answer refused this reader (401 with a fresh token, or 403).
    refused: bool,
}

/// How the first read of the feed went, from [`RevocationFollower::wait_started`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FeedStart {
    /// The feed has been read.
    Synced,
    /// The feed refuses this reader's token: its credential lacks `tokenmint:revocations`,
    /// is deactivated, or its token is for another audience. Retrying will not help.
    Refused,
    /// Neither within the time given (the issuer is unreachable or slow); the follower keeps
    /// trying.
    Pending,
}

impl RevocationFollower {
    /// Whether the feed has been read successfully at least once.
    pub fn is_synced(&self) -> bool {
        self.state.borrow().synced
    }

    /// Waits until the feed has been read once, or `timeout`; returns whether it was.
    ///
    /// A service can call this at start-up so that it does not accept tokens revoked while it
    /// was down, and decide for itself whether to start anyway when the feed is unreachable.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut state = self.state.clone();
        tokio::time::timeout(timeout, state.wait_for(|s| s.synced)).await.is_ok_and(|r| r.is_ok())
    }

    /// Waits until the feed has been read once or has refused this reader, or `timeout`.
    ///
    /// A refusal is a configuration fault (wrong credential, missing scope, wrong audience)
    /// that no retry mends: a service should stop rather than accept revoked tokens for as
    /// long as nobody notices.
    pub async fn wait_started(&self, timeout: Duration) -> FeedStart {
        let mut state = self.state.clone();
        let seen = tokio::time::timeout(timeout, state.wait_for(|s| s.synced || s.refused)).await;
        match seen {
            Ok(Ok(s)) if s.synced => FeedStart::Synced,
            Ok(Ok(_)) => FeedStart::Refused,
            _ => FeedStart::Pending,
        }
    }
}

impl RevocationFollower {
    /// Stops following the feed. The revocations already known stay in force.
    pub fn stop(self) {
        self.task.abort();
    }

    /// Whether the follower is still running.
    pub fn is_running(&self) -> bool {
        !self.task.is_finished()
    }
}

pub(crate) struct FollowerParts {
    pub(crate) feed: Url,
    pub(crate) stream: Url,
    pub(crate) http: reqwest::Client,
    pub(crate) http_timeout: Duration,
    pub(crate) max_page_bytes: usize,
    pub(crate) list: Arc<RevocationList>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) metrics: Arc<Metrics>,
    /// Closed when the verifier is dropped.
    pub(crate) verifier_alive: watch::Receiver<()>,
}

pub(crate) fn spawn<T: TokenSource>(
    parts: FollowerParts,
    source: T,
    config: FeedConfig,
) -> RevocationFollower {
    let (state_tx, state) = watch::channel(FeedState::default());
    let mut alive = parts.verifier_alive.clone();
    let follower =
        Follower { parts, source, config, state: state_tx, down_since: None, last_warning: None };
    let task = tokio::spawn(async move {
        tokio::select! {
            () = follower.run() => {}
            // Every clone of the verifier is gone: nobody can use what the feed brings.
            _ = alive.changed() => tracing::debug!("verifier dropped; revocation follower stops"),
        }
    });
    RevocationFollower { task: task.abort_handle(), state }
}

/// Why a feed request failed.
#[derive(Debug, thiserror::Error)]
enum FeedError {
    #[error(transparent)]
    Fetch(#[from] FetchError),
    #[error(transparent)]
    Token(#[from] crate::token_source::TokenSourceError),
    #[error("the stream answered with content type {0:?}, not text/event-stream")]
    NotEventStream(Option<HeaderValue>),
    #[error("stream: {0}")]
    Stream(String),
}

impl FeedError {
    fn unauthorized(&self) -> bool {
        matches!(self, Self::Fetch(FetchError::Status(StatusCode::UNAUTHORIZED)))
    }

    /// The feed refused the reader (after one renewal of its token, for a 401).
    fn refused(&self) -> bool {
        matches!(
            self,
            Self::Fetch(FetchError::Status(StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN))
        )
    }
}

enum StreamEnd {
    /// The stream could not be opened: fall back to polling for a while.
    NotOpened(FeedError),
    /// The stream was open for `lasted` and then ended (`error` is `None` when the server
    /// closed it); `retry` is the reconnection delay the server asked for, if any.
    Ended { lasted: Duration, error: Option<FeedError>, retry: Option<Duration> },
}

struct Follower<T> {
    parts: FollowerParts,
    source: T,
    config: FeedConfig,
    state: watch::Sender<FeedState>,
    down_since: Option<Instant>,
    last_warning: Option<Instant>,
}

impl<T: TokenSource> Follower<T> {
    async fn run(mut self) {
        // Counted apart: a poll that works between two streams that die at once must not
        // reset the stream's backoff, or a broken stream would be reopened every second.
        let mut poll_failures: u32 = 0;
        let mut stream_failures: u32 = 0;
        let mut next_stream_attempt = Instant::now();
        loop {
            if let Err(error) = self.catch_up().await {
                self.failed("poll", &error);
                poll_failures = poll_failures.saturating_add(1);
                let pause = self.backoff(poll_failures).max(self.config.poll_interval);
                tokio::time::sleep(pause).await;
                continue;
            }
            poll_failures = 0;
            if self.config.stream && Instant::now() >= next_stream_attempt {
                match self.follow_stream().await {
                    StreamEnd::NotOpened(error) => {
                        tracing::info!(
                            error = %crate::ErrorChain(&error),
                            "revocation stream unavailable; polling instead"
                        );
                        next_stream_attempt = Instant::now() + self.config.stream_retry_interval;
                    }
                    StreamEnd::Ended { lasted, error, retry } => {
                        let mut pause =
                            retry.unwrap_or(RECONNECT_DELAY).min(self.config.max_backoff);
                        if let Some(error) = &error {
                            self.failed("stream", error);
                        }
                        if lasted < SHORT_LIVED_STREAM {
                            stream_failures = stream_failures.saturating_add(1);
                            pause = pause.max(self.backoff(stream_failures));
                        } else {
                            stream_failures = 0;
                        }
                        tokio::time::sleep(pause).await;
                        continue;
                    }
                }
            }
            tokio::time::sleep(self.config.poll_interval).await;
        }
    }

    /// Doubling wait after consecutive failures, capped at `max_backoff`.
    fn backoff(&self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(16);
        RECONNECT_DELAY.saturating_mul(1 << exp).min(self.config.max_backoff)
    }

    fn now(&self) -> i64 {
        unix_seconds(self.parts.clock.now())
    }

    /// Sends a feed request with a token, renewing the token once on a 401.
    async fn send(
        &self,
        build: impl Fn(&BearerToken) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FeedError> {
        let mut renewed = false;
        loop {
            let token = self.source.token().await?;
            let request = build(&token);
            let response = tokio::time::timeout(self.parts.http_timeout, request.send())
                .await
                .map_err(|_| FeedError::Fetch(FetchError::Timeout))?;
            let response = response.map_err(FetchError::from)?;
            if response.status() == StatusCode::UNAUTHORIZED && !renewed {
                self.source.invalidate(&token).await;
                renewed = true;
                continue;
            }
            return Ok(response);
        }
    }

    /// Polls pages until the feed has nothing more.
    async fn catch_up(&mut self) -> Result<(), FeedError> {
        // The server refuses a page size beyond its maximum rather than cutting it down.
        let limit = self.config.page_limit.clamp(1, tokenmint_proto::limits::REVOCATIONS_PAGE.max);
        for _ in 0..MAX_PAGES_PER_CATCH_UP {
            let after = self.parts.list.cursor();
            let response = self
                .send(|token| {
                    let mut url = self.parts.feed.clone();
                    url.query_pairs_mut()
                        .append_pair("after", &after.to_string())
                        .append_pair("limit", &limit.to_string());
                    self.parts.http.get(url).bearer_auth(token.expose())
                })
                .await?;
            if response.status() != StatusCode::OK {
                return Err(FetchError::Status(response.status()).into());
            }
            let read = get_json_from(response, self.parts.max_page_bytes);
            let page: RevocationPage = tokio::time::timeout(self.parts.http_timeout, read)
                .await
                .map_err(|_| FetchError::Timeout)??;
            let count = page.entries.len();
            self.parts.list.apply(&page.entries, self.now());
            self.parts.list.advance_cursor(page.next_cursor);
            self.succeeded();
            if count < limit as usize || page.next_cursor <= after {
                return Ok(());
            }
        }
        Ok(())
    }

    async fn follow_stream(&mut self) -> StreamEnd {
        let after = self.parts.list.cursor();
        let opened = self
            .send(|token| {
                let mut url = self.parts.stream.clone();
                url.query_pairs_mut().append_pair("after", &after.to_string());
                self.parts
                    .http
                    .get(url)
                    .bearer_auth(token.expose())
                    .header(header::ACCEPT, "text/event-stream")
                    .header("last-event-id", after.to_string())
            })
            .await;
        let mut response = match opened {
            Ok(response) if response.status() == StatusCode::OK => response,
            Ok(response) => {
                return StreamEnd::NotOpened(FetchError::Status(response.status()).into());
            }
            Err(error) => return StreamEnd::NotOpened(error),
        };
        let content_type = response.headers().get(header::CONTENT_TYPE);
        if !content_type
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim_start().starts_with("text/event-stream"))
        {
            return StreamEnd::NotOpened(FeedError::NotEventStream(content_type.cloned()));
        }

        let opened_at = Instant::now();
        self.succeeded();
        self.parts.metrics.revocation_stream_connected.store(1, Ordering::Relaxed);
        tracing::debug!(after, "revocation stream open");
        let mut parser = SseParser::new(self.config.max_event_bytes);
        let mut events = Vec::new();
        let error = loop {
            let chunk =
                match tokio::time::timeout(self.config.stream_idle_timeout, response.chunk()).await
                {
                    Err(_) => break Some(FeedError::Stream("idle timeout".to_owned())),
                    Ok(Err(error)) => break Some(FetchError::from(error).into()),
                    Ok(Ok(None)) => break None,
                    Ok(Ok(Some(chunk))) => chunk,
                };
            if let Err(error) = parser.feed(&chunk, &mut events) {
                break Some(FeedError::Stream(error.to_string()));
            }
            let entries: Vec<RevocationEntry> = events
                .drain(..)
                .filter(|event| event.event == SSE_EVENT)
                .filter_map(|event| match serde_json::from_str(&event.data) {
                    Ok(entry) => Some(entry),
                    Err(error) => {
                        // Later entries move the cursor past this one, so it is lost to
                        // this verifier; only a server bug can produce it: report it loudly.
                        tracing::error!(%error, id = event.id.as_deref().unwrap_or(""), "unreadable revocation event");
                        None
                    }
                })
                .collect();
            self.parts.list.apply(&entries, self.now());
            self.succeeded();
        };
        self.parts.metrics.revocation_stream_connected.store(0, Ordering::Relaxed);
        StreamEnd::Ended { lasted: opened_at.elapsed(), error, retry: parser.retry }
    }

    fn succeeded(&mut self) {
        let metrics = &self.parts.metrics;
        metrics.revocation_feed_up.store(1, Ordering::Relaxed);
        metrics.revocation_last_sync.store(self.now(), Ordering::Relaxed);
        self.state.send_replace(FeedState { synced: true, refused: false });
        if let Some(since) = self.down_since.take() {
            tracing::info!(
                down_secs = since.elapsed().as_secs(),
                "revocation feed reachable again"
            );
            self.last_warning = None;
        }
    }

    fn failed(&mut self, what: &'static str, error: &FeedError) {
        let metrics = &self.parts.metrics;
        Metrics::incr(&metrics.revocation_feed_failures);
        metrics.revocation_feed_up.store(0, Ordering::Relaxed);
        let refused = error.refused();
        self.state.send_if_modified(|s| std::mem::replace(&mut s.refused, refused) != refused);
        let now = Instant::now();
        let since = *self.down_since.get_or_insert(now);
        if self.last_warning.is_none_or(|last| now.duration_since(last) >= WARN_EVERY) {
            self.last_warning = Some(now);
            tracing::warn!(
                request = what,
                error = %crate::ErrorChain(error),
                unauthorized = error.unauthorized(),
                down_secs = now.duration_since(since).as_secs(),
                revocations_held = self.parts.list.len(),
                "revocation feed unavailable; verifying with the revocations already known"
            );
        }
    }
}

async fn get_json_from<D: serde::de::DeserializeOwned>(
    response: reqwest::Response,
    max_bytes: usize,
) -> Result<D, FetchError> {
    let body = read_limited(response, max_bytes).await?;
    Ok(serde_json::from_slice(&body)?)
}
