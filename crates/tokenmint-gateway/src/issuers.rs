//! The trusted issuers as the running gateway holds them, each loaded in the background when it
//! cannot be loaded at start.
//!
//! An issuer is *ready* once its keys have loaded (discovery and JWKS) and, when its revocation
//! feed is followed, once the feed has been read: before that the gateway cannot tell a
//! revoked token from a good one, so it answers 503 with `Retry-After` for the issuer's tokens
//! (never 401, which would tell a client its token is bad, and never forwarding them). An issuer
//! that cannot be reached at start is retried with doubling, jittered pauses up to
//! `issuer_retry_max`, and becomes ready without a restart; `/readyz` names the issuers that are
//! not, and why.
//!
//! What stays fatal at start is what no retry mends: a refused feed credential (starting would
//! accept revoked tokens until someone read the logs), an issuer whose metadata names another
//! issuer or offers no usable algorithm, a feed the configuration asks for that the issuer does
//! not advertise. Found later, once an issuer that was down answers, such a fault is logged as
//! an error and the issuer stays unready (a refused credential is retried, since revoking and
//! fixing a credential happens at the issuer).
//!
//! Logging: a warning when an issuer's state changes (down, or down for another reason), an
//! info line when it becomes ready, and each failed attempt at debug level only.

use crate::config::{FeedCredentials, IssuerConfig, StartupSettings};
use crate::feed::ClientTokenSource;
use crate::{Clock, StartError};
use http::StatusCode;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;
use tokenmint_client::{ClientConfig, TokenClient};
use tokenmint_verify::{
    BuildError, ClaimMapping, ErrorChain, FeedConfig, FeedStart, FetchError, Issuers,
    RevocationFollower, VerifiedToken, Verifier, VerifierConfig, VerifyError,
};

/// How long start-up waits for the feed credential's first token and the feed's first read
/// before serving without the issuer (503 for its tokens) and waiting on in the background.
pub(crate) const FEED_SYNC_WAIT: Duration = Duration::from_secs(5);
/// The first pause after a failed attempt; each further failure doubles it.
const RETRY_BASE: Duration = Duration::from_millis(500);

/// Why a token could not be judged, or was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Judgement {
    /// The token is bad: 401 (or 503 for stale keys, as the verifier says).
    Refused(VerifyError),
    /// The issuer it names is not ready: 503 with `Retry-After`.
    IssuerNotReady { retry_after_secs: u64 },
}

/// Where an issuer stands, for `/readyz` and the state-change log lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum State {
    /// Being loaded for the first time.
    Starting,
    /// Its metadata or keys could not be fetched; retried.
    Unreachable(String),
    /// Keys loaded; its revocation feed has not been read yet (retried by the follower).
    FeedPending,
    /// The feed credential is refused by the issuer; retried.
    FeedRefused(String),
    /// A configuration fault found once the issuer answered; not retried.
    Misconfigured(String),
    Ready,
}

impl State {
    /// The `state` of `/readyz`.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Unreachable(_) => "unreachable",
            Self::FeedPending => "revocation_feed_pending",
            Self::FeedRefused(_) => "revocation_feed_refused",
            Self::Misconfigured(_) => "misconfigured",
            Self::Ready => "ready",
        }
    }

    /// What went wrong last, for `/readyz`.
    pub(crate) fn detail(&self) -> Option<&str> {
        match self {
            Self::Unreachable(why) | Self::FeedRefused(why) | Self::Misconfigured(why) => Some(why),
            Self::FeedPending => Some("the revocation feed has not been read yet"),
            Self::Starting | Self::Ready => None,
        }
    }
}

/// Whether an issuer's revocation feed is followed, once known.
const FEED_UNKNOWN: u8 = 0;
const FEED_FOLLOWED: u8 = 1;
const FEED_NOT_FOLLOWED: u8 = 2;

/// One configured issuer and what has been loaded of it.
pub(crate) struct IssuerSlot {
    pub(crate) url: String,
    /// The verifier once its keys have loaded: read by the metrics even before it is ready.
    loaded: OnceLock<Verifier>,
    /// The verifier once it may judge tokens. A once-cell: the hot path reads it with one
    /// atomic load, and an issuer that was ready stays ready (later outages are the
    /// verifier's to ride out on its cached keys and known revocations).
    ready: OnceLock<Verifier>,
    /// Kept to show what runs; the follower lives as long as its verifier anyway.
    follower: Mutex<Option<RevocationFollower>>,
    /// `FEED_UNKNOWN` until the verifier has loaded (the issuer's metadata says whether it
    /// publishes a feed).
    feed: AtomicU8,
    /// The configuration turns this issuer's feed off.
    feed_off: bool,
    state: Mutex<State>,
    /// Clock milliseconds of the next attempt, for `Retry-After`.
    retry_at_ms: AtomicU64,
}

impl std::fmt::Debug for IssuerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerSlot")
            .field("url", &self.url)
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl IssuerSlot {
    fn new(issuer: &IssuerConfig) -> Self {
        Self {
            url: issuer.url.clone(),
            loaded: OnceLock::new(),
            ready: OnceLock::new(),
            follower: Mutex::new(None),
            feed: AtomicU8::new(FEED_UNKNOWN),
            feed_off: issuer.revocation_feed == Some(false),
            state: Mutex::new(State::Starting),
            retry_at_ms: AtomicU64::new(0),
        }
    }

    pub(crate) fn state(&self) -> State {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The verifier, once its keys have loaded (ready or not).
    pub(crate) fn loaded(&self) -> Option<&Verifier> {
        self.loaded.get()
    }

    /// `Some(up)` when this issuer's feed counts for `revocation_feed_up`: a feed followed, or
    /// one that may be once the issuer is loaded; `None` when the issuer has no feed.
    pub(crate) fn feed_up(&self) -> Option<bool> {
        match self.feed.load(Ordering::Relaxed) {
            FEED_NOT_FOLLOWED => None,
            FEED_UNKNOWN if self.feed_off => None,
            FEED_UNKNOWN => Some(false),
            _ => Some(self.loaded.get().is_some_and(|v| v.metrics().revocation_feed_up == 1)),
        }
    }

    /// Seconds until the next attempt to load the issuer, at least 1.
    fn retry_after_secs(&self, clock: &dyn Clock) -> u64 {
        let now = millis(clock.now());
        let at = self.retry_at_ms.load(Ordering::Relaxed);
        at.saturating_sub(now).div_ceil(1000).clamp(1, 600)
    }

    /// Records a new state; logs when it is another state than before (not on every attempt).
    fn set_state(&self, new: State) {
        let old = std::mem::replace(
            &mut *self.state.lock().unwrap_or_else(PoisonError::into_inner),
            new.clone(),
        );
        let changed = std::mem::discriminant(&old) != std::mem::discriminant(&new);
        match (&new, changed) {
            (State::Ready, true) => tracing::info!(
                issuer = self.url,
                "issuer ready: its keys are loaded and its tokens are verified"
            ),
            (State::Misconfigured(why), true) => tracing::error!(
                issuer = self.url,
                error = why,
                "issuer answered, but not as the configuration requires; its tokens are \
                 answered 503 (see /readyz)"
            ),
            (State::Unreachable(why) | State::FeedRefused(why), true) => tracing::warn!(
                issuer = self.url,
                state = new.label(),
                error = why,
                "issuer not ready; its tokens are answered 503 and the gateway keeps trying"
            ),
            (State::FeedPending, true) => tracing::warn!(
                issuer = self.url,
                "the revocation feed could not be read yet; this issuer's tokens are answered \
                 503 until it is (see tokenmint_gateway_revocation_feed_up)"
            ),
            (_, _) => tracing::debug!(
                issuer = self.url,
                state = new.label(),
                detail = new.detail(),
                "issuer still not ready"
            ),
        }
    }
}

/// The issuers of a running gateway: a token goes to the one its `iss` names.
#[derive(Debug)]
pub(crate) struct IssuerSet {
    slots: Arc<[Arc<IssuerSlot>]>,
    /// Every issuer ready: then tokens take the verifier library's own dispatch.
    all: Arc<OnceLock<Issuers>>,
    clock: Arc<dyn Clock>,
    /// The background attempts, stopped with the gateway.
    tasks: Vec<tokio::task::AbortHandle>,
}

impl Drop for IssuerSet {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl IssuerSet {
    /// Loads every issuer of `settings`, each within the start-up waits; an issuer that cannot
    /// be reached now goes on loading in the background. Fails on what no retry mends.
    pub(crate) async fn start(
        settings: &StartupSettings,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        let slots: Arc<[Arc<IssuerSlot>]> =
            settings.issuers.iter().map(|i| Arc::new(IssuerSlot::new(i))).collect();
        let all = Arc::new(OnceLock::new());
        let mut tasks = Vec::new();
        for (issuer, slot) in settings.issuers.iter().zip(slots.iter()) {
            let mut loader = Loader {
                settings: settings.clone(),
                issuer: issuer.clone(),
                clock: Arc::clone(&clock),
                slot: Arc::clone(slot),
                slots: Arc::clone(&slots),
                all: Arc::clone(&all),
                client: None,
                follower: None,
            };
            match loader.step().await {
                Ok(Progress::Ready) => {}
                Ok(Progress::FeedPending) => {
                    slot.set_state(State::FeedPending);
                    tasks.push(tokio::spawn(loader.keep_trying(0)).abort_handle());
                }
                Err(error) if retryable_at_start(&error) => {
                    loader.failed(&error, 1);
                    tasks.push(tokio::spawn(loader.keep_trying(1)).abort_handle());
                }
                Err(error) => {
                    if let Some(follower) = loader.follower.take() {
                        follower.stop();
                    }
                    return Err(error);
                }
            }
        }
        Ok(Self { slots, all, clock, tasks })
    }

    /// Verifies `token` with the issuer it names, or says that issuer is not ready.
    pub(crate) async fn verify(&self, token: &str) -> Result<VerifiedToken, Judgement> {
        if let Some(all) = self.all.get() {
            return all.verify(token).await.map_err(Judgement::Refused);
        }
        let slot = if let [only] = &*self.slots {
            only
        } else {
            // As `Issuers::verify` picks: by the `iss` the token names, compared exactly; the
            // chosen verifier checks it in full.
            let iss = tokenmint_verify::pick_issuer(token).map_err(Judgement::Refused)?;
            match self.slots.iter().find(|s| s.url == iss) {
                Some(slot) => slot,
                None => return Err(Judgement::Refused(VerifyError::WrongIssuer)),
            }
        };
        match slot.ready.get() {
            Some(verifier) => verifier.verify(token).await.map_err(Judgement::Refused),
            None => Err(Judgement::IssuerNotReady {
                retry_after_secs: slot.retry_after_secs(&*self.clock),
            }),
        }
    }

    pub(crate) fn slots(&self) -> &Arc<[Arc<IssuerSlot>]> {
        &self.slots
    }

    /// Whether every issuer is ready.
    pub(crate) fn all_ready(&self) -> bool {
        self.all.get().is_some()
    }
}

/// What a [`Loader::step`] got to.
enum Progress {
    Ready,
    /// Keys loaded, the feed followed, its first read still awaited.
    FeedPending,
}

/// Whether a failure at start may be waited out in the background: the issuer (or its token
/// endpoint, or a proxy before it) could not be reached or was failing. A refused credential
/// or an issuer that answers with something unusable is a fault the operator must see at once.
fn retryable_at_start(error: &StartError) -> bool {
    match error {
        StartError::Verifier {
            source: BuildError::Discovery { source, .. } | BuildError::Jwks { source, .. },
            ..
        } => match source {
            FetchError::Http(_) | FetchError::Timeout => true,
            FetchError::Status(status) => {
                status.is_server_error()
                    || *status == StatusCode::TOO_MANY_REQUESTS
                    || *status == StatusCode::REQUEST_TIMEOUT
            }
            _ => false,
        },
        _ => false,
    }
}

/// Doubling pauses from [`RETRY_BASE`] up to `max`, with "equal jitter": uniform in the upper
/// half of the pause, so gateways started together spread their attempts without any of them
/// retrying at once.
fn backoff(failures: u32, max: Duration) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let ceiling = RETRY_BASE.saturating_mul(1 << exp).min(max);
    let half = ceiling / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX);
    half + Duration::from_nanos(fastrand::u64(0..=nanos))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Loads one issuer, as far as it can get each time it is asked, keeping what it got.
struct Loader {
    settings: StartupSettings,
    issuer: IssuerConfig,
    clock: Arc<dyn Clock>,
    slot: Arc<IssuerSlot>,
    slots: Arc<[Arc<IssuerSlot>]>,
    all: Arc<OnceLock<Issuers>>,
    client: Option<TokenClient>,
    follower: Option<RevocationFollower>,
}

impl Loader {
    /// Retries until the issuer is ready, or has a fault no retry mends.
    async fn keep_trying(mut self, mut failures: u32) {
        loop {
            if failures > 0 {
                let pause = backoff(failures, self.settings.issuer_retry_max);
                tracing::debug!(
                    issuer = self.issuer.url,
                    pause_ms = millis(pause),
                    "next attempt to load the issuer"
                );
                tokio::time::sleep(pause).await;
            }
            match self.step().await {
                Ok(Progress::Ready) => return,
                Ok(Progress::FeedPending) => {
                    self.slot.set_state(State::FeedPending);
                    if self.follower.as_ref().is_some_and(RevocationFollower::is_running) {
                        // The follower retries on its own; waiting for its first read is
                        // `step`'s bounded wait, so no pause here.
                        failures = 0;
                    } else {
                        // A follower that ended (it cannot, short of a panic) is started
                        // again, after a pause rather than in a tight loop.
                        self.follower = None;
                        failures = failures.saturating_add(1);
                    }
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if !self.failed(&error, failures) {
                        return;
                    }
                }
            }
        }
    }

    /// Records a failed attempt; returns whether to try again.
    fn failed(&self, error: &StartError, failures: u32) -> bool {
        let why = ErrorChain(error).to_string();
        let pause_ceiling = RETRY_BASE
            .saturating_mul(1 << failures.saturating_sub(1).min(20))
            .min(self.settings.issuer_retry_max);
        self.slot
            .retry_at_ms
            .store(millis(self.clock.now().saturating_add(pause_ceiling)), Ordering::Relaxed);
        let (state, again) = match error {
            StartError::Verifier { .. } if retryable_at_start(error) => {
                (State::Unreachable(why), true)
            }
            // An issuer answering with unusable metadata may be mid-deployment: retried, but
            // reported as what it is.
            StartError::Verifier { .. } => (State::Misconfigured(why), true),
            StartError::FeedRefused { .. } => (State::FeedRefused(why), true),
            // Decided by the metadata already loaded and the configuration: no retry changes it.
            _ => (State::Misconfigured(why), false),
        };
        tracing::debug!(issuer = self.issuer.url, failures, "attempt to load the issuer failed");
        self.slot.set_state(state);
        again
    }

    /// Goes as far as it can: keys, then the feed credential's token, then the feed's first
    /// read; what was reached is kept for the next call.
    async fn step(&mut self) -> Result<Progress, StartError> {
        let verifier = match self.slot.loaded.get() {
            Some(verifier) => verifier.clone(),
            None => {
                let verifier = build_verifier(&self.settings, &self.issuer, &self.clock).await?;
                self.slot.loaded.get_or_init(|| verifier).clone()
            }
        };
        // tokenmint issuers advertise their feed; for the others it is off unless asked for.
        let follow = self.issuer.revocation_feed.unwrap_or_else(|| verifier.has_revocation_feed());
        if !follow {
            self.slot.feed.store(FEED_NOT_FOLLOWED, Ordering::Relaxed);
            if self.issuer.revocation_feed == Some(false) && verifier.has_revocation_feed() {
                tracing::warn!(
                    issuer = self.issuer.url,
                    "revocation feed not followed: revoked tokens and deactivated credentials \
                     stay accepted until their tokens expire"
                );
            }
            self.become_ready(verifier);
            return Ok(Progress::Ready);
        }
        self.slot.feed.store(FEED_FOLLOWED, Ordering::Relaxed);
        if self.follower.is_none() {
            let client = match self.client.take() {
                Some(client) => client,
                None => self.feed_client(&verifier)?,
            };
            // A refused feed credential is a configuration fault no retry mends; starting
            // anyway would accept revoked tokens until someone reads the logs. An unreachable
            // or slow token endpoint is retried by the follower.
            match tokio::time::timeout(FEED_SYNC_WAIT, client.token()).await {
                Ok(Err(error)) if error.kind() == tokenmint_client::ErrorKind::Refused => {
                    self.client = Some(client);
                    return Err(StartError::FeedRefused {
                        issuer: self.issuer.url.clone(),
                        reason: error.to_string(),
                        off: feed_off(&self.issuer),
                    });
                }
                Ok(_) | Err(_) => {}
            }
            let mut feed_config = FeedConfig::default();
            if let Some(url) = &self.issuer.revocation_feed_url {
                feed_config = feed_config.with_endpoint(url.clone());
            }
            let source = ClientTokenSource::new(client);
            self.follower = Some(verifier.follow_revocations(source, feed_config)?);
        }
        let Some(follower) = &self.follower else {
            return Ok(Progress::FeedPending);
        };
        match follower.wait_started(FEED_SYNC_WAIT).await {
            FeedStart::Synced => {
                *self.slot.follower.lock().unwrap_or_else(PoisonError::into_inner) =
                    self.follower.take();
                self.become_ready(verifier);
                Ok(Progress::Ready)
            }
            FeedStart::Refused => Err(StartError::FeedRefused {
                issuer: self.issuer.url.clone(),
                reason: "the feed answered 401 or 403 to the credential's token".to_owned(),
                off: feed_off(&self.issuer),
            }),
            _ => {
                self.slot.retry_at_ms.store(
                    millis(self.clock.now().saturating_add(FEED_SYNC_WAIT)),
                    Ordering::Relaxed,
                );
                Ok(Progress::FeedPending)
            }
        }
    }

    /// The SDK client the follower gets its tokens from.
    fn feed_client(&self, verifier: &Verifier) -> Result<TokenClient, StartError> {
        let issuer = &self.issuer;
        if issuer.revocation_feed_url.is_none() && !verifier.has_revocation_feed() {
            let why = if issuer.shorthand {
                "follow_revocations is on, but it advertises no revocation feed; set \
                 follow_revocations = false, or list it in an [[issuer]] table with \
                 revocation_feed_url"
            } else {
                "revocation_feed = true, but it advertises no feed; set revocation_feed_url"
            };
            return Err(StartError::NoFeed { issuer: issuer.url.clone(), why });
        }
        let FeedCredentials::Client { client_id, secret, token_url } = &self.settings.feed else {
            return Err(StartError::FeedCredentialsMissing {
                issuer: issuer.url.clone(),
                off: feed_off(issuer),
            });
        };
        // The feed is part of the admin API, which takes tokens for the issuer alone: asked for
        // by name, so a feed credential that also lists other audiences still gets one.
        let client_config = match token_url {
            Some(url) => ClientConfig::new(url, client_id.clone(), secret.clone())?,
            None => ClientConfig::discover(&issuer.url, client_id.clone(), secret.clone())?,
        }
        .scope(tokenmint_proto::system_scopes::REVOCATIONS)
        .audience(issuer.url.clone());
        Ok(TokenClient::new(client_config)?)
    }

    fn become_ready(&self, verifier: Verifier) {
        let _ = self.slot.ready.set(verifier);
        self.slot.set_state(State::Ready);
        // The last issuer to become ready hands every token to the library's dispatch.
        let verifiers: Option<Vec<Verifier>> =
            self.slots.iter().map(|s| s.ready.get().cloned()).collect();
        if let Some(verifiers) = verifiers
            && let Ok(issuers) = Issuers::new(verifiers)
        {
            let _ = self.all.set(issuers);
        }
    }
}

/// How the configuration turns this issuer's feed off, in the form it was written in: the
/// shorthand `issuer = "URL"` has no table to hold `revocation_feed`, only the top-level
/// `follow_revocations` (which an [[issuer]] table's `revocation_feed` would be refused beside).
fn feed_off(issuer: &IssuerConfig) -> &'static str {
    if issuer.shorthand {
        "follow_revocations = false"
    } else {
        "revocation_feed = false in this [[issuer]] table"
    }
}

/// Builds the verifier of one issuer: discovery (unless `jwks_uri` is given) and its keys.
async fn build_verifier(
    config: &StartupSettings,
    issuer: &IssuerConfig,
    clock: &Arc<dyn Clock>,
) -> Result<Verifier, StartError> {
    let mut verifier_config = VerifierConfig::new(issuer.url.clone())
        .with_leeway(config.leeway)
        .with_jwks_refetch_cooldown(config.jwks_refetch_cooldown)
        .with_verified_cache_capacity(config.verified_cache)
        .with_token_types(issuer.token_types.iter().cloned())
        .with_claims(ClaimMapping::clone(&issuer.claims));
    if let Some(audience) = &issuer.audience {
        verifier_config = verifier_config.with_audience(audience.clone());
    }
    if let Some(uri) = &issuer.jwks_uri {
        verifier_config = verifier_config.with_jwks_uri(uri.clone());
    }
    if let Some(algorithms) = &issuer.algorithms {
        verifier_config = verifier_config.with_algorithms(algorithms.iter().copied());
    }
    Verifier::builder(verifier_config)
        .clock(Arc::clone(clock))
        .build()
        .await
        .map_err(|source| StartError::Verifier { issuer: issuer.url.clone(), source })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pause_doubles_from_half_a_second_up_to_the_cap_within_its_upper_half() {
        let max = Duration::from_secs(30);
        for failures in 1..40 {
            let ceiling = RETRY_BASE.saturating_mul(1 << (failures - 1).min(20)).min(max);
            for _ in 0..50 {
                let pause = backoff(failures, max);
                assert!(pause <= ceiling, "{failures}: {pause:?} > {ceiling:?}");
                assert!(pause >= ceiling / 2, "{failures}: {pause:?} < half of {ceiling:?}");
            }
        }
        assert!(backoff(1, max) <= Duration::from_millis(500));
        assert!(backoff(100, max) >= Duration::from_secs(15));
        assert!(backoff(u32::MAX, Duration::from_millis(100)) <= Duration::from_millis(100));
    }

    /// Counts the events at each level, for the log-once checks.
    #[derive(Default)]
    struct Levels(Mutex<Vec<tracing::Level>>);

    impl tracing::Subscriber for Levels {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            self.0.lock().unwrap().push(*event.metadata().level());
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    fn slot() -> IssuerSlot {
        IssuerSlot::new(&IssuerConfig {
            url: "http://127.0.0.1:1".to_owned(),
            audience: None,
            jwks_uri: None,
            token_types: vec!["at+jwt".to_owned()],
            algorithms: None,
            claims: ClaimMapping::default(),
            revocation_feed: None,
            revocation_feed_url: None,
            shorthand: true,
        })
    }

    #[test]
    fn an_issuer_that_stays_down_is_warned_about_once_per_state_change_not_per_attempt() {
        let levels = Arc::new(Levels::default());
        let slot = slot();
        tracing::subscriber::with_default(Arc::clone(&levels), || {
            for attempt in 0..5 {
                slot.set_state(State::Unreachable(format!("connection refused ({attempt})")));
            }
            slot.set_state(State::FeedRefused("invalid_client".to_owned()));
            slot.set_state(State::FeedRefused("invalid_client".to_owned()));
            slot.set_state(State::Ready);
        });
        let levels = levels.0.lock().unwrap().clone();
        use tracing::Level;
        assert_eq!(
            levels,
            [
                Level::WARN,  // down
                Level::DEBUG, // still down: attempts 2 to 5
                Level::DEBUG,
                Level::DEBUG,
                Level::DEBUG,
                Level::WARN, // down for another reason
                Level::DEBUG,
                Level::INFO, // up
            ]
        );
        assert_eq!(slot.state(), State::Ready);
    }

    #[test]
    fn retry_after_counts_whole_seconds_to_the_next_attempt_at_least_one() {
        let clock = tokenmint_http::ManualClock::new(Duration::from_secs(1_000));
        let slot = slot();
        slot.retry_at_ms.store(1_000_000 + 2_500, Ordering::Relaxed);
        assert_eq!(slot.retry_after_secs(&clock), 3);
        clock.advance(Duration::from_secs(10));
        assert_eq!(slot.retry_after_secs(&clock), 1, "an attempt due now: come back soon");
    }

    #[test]
    fn the_pauses_are_jittered() {
        let pauses: std::collections::HashSet<Duration> =
            (0..20).map(|_| backoff(5, Duration::from_secs(30))).collect();
        assert!(pauses.len() > 1, "{pauses:?}");
    }
}
