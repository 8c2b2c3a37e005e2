//! `tokenmint gateway`: a validating reverse proxy in front of an API.
//!
//! Many APIs cannot link a Rust library, so the checks of `tokenmint-verify` are also offered as
//! a process that sits in front of them. For every request the gateway
//! 1. brings the path to its one canonical spelling (refusing spellings that upstreams read
//!    differently, see [`tokenmint_verify::CanonicalPath`]) and picks the route with the
//!    longest matching prefix (whole segments, with the letter-case rule);
//! 2. verifies the bearer token (signature, `typ`, `iss`, `aud`, validity, revocations) with a
//!    [`Verifier`] that follows the issuer's revocation feed, so a deactivated credential or a
//!    revoked token is refused within seconds without a call to the issuer per request;
//! 3. sends production tokens to `upstream` and sandbox tokens to `sandbox_upstream`;
//! 4. checks the route's read scope (GET, HEAD, OPTIONS) or write scope (other methods),
//!    its required headers and its per-client rate limit;
//! 5. forwards the request with the canonical path, and with `x-tokenmint-client-id`, `-org`,
//!    `-env` and `-scope` set from the token (never from the caller) and without
//!    `Authorization` unless the route asks for it, streaming bodies both ways.
//!
//! Refusals are RFC 9457 problem details (with RFC 6750 challenges on 401 and 403), see
//! [`Refusal`]. Routes are held in an [`ArcSwap`]: [`GatewayHandle::reload`] swaps them between
//! two requests, so a reload (SIGHUP in the binary) drops no connection, and a configuration
//! that does not validate is refused while the old one stays in force.

mod authz;
mod config;
mod error;
mod feed;
mod metrics;
mod proxy;

pub use config::{
    AuthzSource, BindingSegment, ConfigError, FeedCredentials, GatewayConfig, IssuerConfig, Mode,
    Overrides, PathBinding, RouteConfig, StartupSettings, Upstream,
};
pub use error::Refusal;
/// The clock [`Gateway::build`] takes (tokenmint's one clock trait, shared with the verifier).
pub use tokenmint_http::{Clock, ManualClock, SystemClock};

use crate::feed::ClientTokenSource;
use crate::metrics::{Metrics, ResultLabel};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokenmint_client::{ClientConfig, TokenClient};
use tokenmint_http::Limits;
use tokenmint_verify::{
    ClaimMapping, FeedConfig, FeedStart, Issuers, PrefixTable, RevocationFollower, Verifier,
    VerifierConfig,
};
use tokio::net::TcpListener;

/// How long start-up waits for the first read of the revocation feed before serving anyway.
const FEED_SYNC_WAIT: Duration = Duration::from_secs(5);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    // The OS error is the source, not part of this text: printed as a chain it would appear twice.
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("issuer {issuer}: {source}")]
    Verifier { issuer: String, source: tokenmint_verify::BuildError },
    #[error(
        "issuer {issuer} publishes a revocation feed: set client_id (a credential with \
         tokenmint:revocations) and its secret, or {off}"
    )]
    FeedCredentialsMissing { issuer: String, off: &'static str },
    #[error("issuer {issuer}: {why}")]
    NoFeed { issuer: String, why: &'static str },
    #[error("the issuers: {0}")]
    Issuers(tokenmint_verify::BuildError),
    #[error("cannot follow the revocation feed: {0}")]
    Feed(#[from] tokenmint_verify::FollowError),
    #[error(
        "issuer {issuer} refuses the revocation feed's credential ({reason}); give the gateway \
         a credential with tokenmint:revocations whose audiences are empty or include the \
         issuer, or set {off}"
    )]
    FeedRefused { issuer: String, reason: String, off: &'static str },
    #[error("invalid feed credentials: {0}")]
    FeedClient(#[from] tokenmint_client::Error),
    #[error("cannot connect to Redis: {0}")]
    Redis(String),
    #[error("cannot build the upstream HTTP client: {0}")]
    HttpClient(String),
    #[error(transparent)]
    Tls(#[from] tokenmint_http::TlsError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Why a reload was refused; the configuration in force stays.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "`{key}` changed, and only routes can change without a restart; restart the gateway to apply it"
    )]
    NeedsRestart { key: &'static str },
}

/// What every request handler shares.
pub(crate) struct Shared {
    pub(crate) routes: ArcSwap<PrefixTable<Arc<RouteConfig>>>,
    config: ArcSwap<GatewayConfig>,
    pub(crate) issuers: Issuers,
    pub(crate) mode: Mode,
    /// `https` when the gateway serves TLS: the `x-forwarded-proto` it sends upstream.
    pub(crate) scheme: &'static str,
    pub(crate) limits: Limits,
    pub(crate) http: UpstreamClient,
    pub(crate) metrics: Metrics,
}

/// The pooled HTTP/1.1 client to the upstreams (http or https, the system's roots).
pub(crate) type UpstreamClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    axum::body::Body,
>;

/// hyper's client rather than reqwest: on the gateway's hot path every request would otherwise
/// be turned into a `Url` and back and pass reqwest's redirect and retry wrappers, about a tenth
/// of the gateway's CPU (bench/run.sh). Redirects are the caller's business anyway, and an
/// `HTTP_PROXY` variable meant for other programs never reroutes an upstream named in the
/// configuration.
fn upstream_client(connect_timeout: Duration) -> Result<UpstreamClient, StartError> {
    let mut tcp = hyper_util::client::legacy::connect::HttpConnector::new();
    tcp.set_connect_timeout(Some(connect_timeout));
    tcp.set_nodelay(true);
    tcp.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .try_with_platform_verifier()
        .map_err(|e| StartError::HttpClient(e.to_string()))?
        .https_or_http()
        .enable_http1()
        .wrap_connector(tcp);
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_timer(hyper_util::rt::TokioTimer::new())
        .build(connector))
}

/// How often the TLS certificate files are checked for a renewal.
const CERTIFICATE_POLL: Duration = Duration::from_secs(10);

/// A gateway bound to its address, ready to run.
#[derive(Debug)]
pub struct Gateway {
    listener: TcpListener,
    tls: Option<tokenmint_http::Tls>,
    handle: GatewayHandle,
    /// The followers run as long as the verifiers; kept to show what runs.
    _followers: Vec<RevocationFollower>,
}

/// Cheap to clone: reloads the routes of a running gateway and reads its state.
#[derive(Clone)]
pub struct GatewayHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("issuers", &self.shared.issuers)
            .field("routes", &self.shared.routes.load().len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Discovers the issuer, loads its keys, starts following its revocation feed and binds the
    /// listener. Fails when the issuer cannot be reached: a gateway that cannot judge tokens
    /// should not start accepting connections.
    ///
    /// Every decision that depends on time (token validity, JWKS freshness and cooldowns,
    /// revocation lifetimes, rate limits) reads `clock`: [`tokenmint_http::SystemClock`] in
    /// production, a [`tokenmint_http::ManualClock`] in tests that move time.
    pub async fn build(config: GatewayConfig, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        // A certificate that cannot be loaded stops the start, before anything else is set up.
        let settings = &config.startup;
        let tls = settings.tls.as_ref().map(tokenmint_http::Tls::new).transpose()?;
        let mut verifiers = Vec::with_capacity(settings.issuers.len());
        let mut followers = Vec::new();
        for issuer in &settings.issuers {
            let (verifier, follower) = start_issuer(settings, issuer, clock.clone()).await?;
            verifiers.push(verifier);
            followers.extend(follower);
        }
        let issuers = Issuers::new(verifiers).map_err(StartError::Issuers)?;

        let limits = match &settings.redis {
            Some(url) => Limits::redis(url, &settings.redis_prefix, clock.clone())
                .await
                .map_err(|e| StartError::Redis(e.to_string()))?,
            None => Limits::local(clock),
        };
        let http = upstream_client(settings.connect_timeout)?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|source| StartError::Listen { addr: settings.listen, source })?;

        let metrics = Metrics::new(issuers.clone(), limits.fallback.clone());
        let routes = config.route_table()?;
        metrics.routes.set(i64::try_from(routes.len()).unwrap_or(i64::MAX));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mode = settings.mode;
        let shared = Arc::new(Shared {
            routes: ArcSwap::from_pointee(routes),
            config: ArcSwap::from_pointee(config),
            issuers,
            mode,
            scheme,
            limits,
            http,
            metrics,
        });
        Ok(Self { listener, tls, handle: GatewayHandle { shared }, _followers: followers })
    }

    /// The address the gateway listens on (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle to reload the running gateway's routes.
    pub fn handle(&self) -> GatewayHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let app = self.handle.router();
        // The server's accept loop: header deadline (slow clients, idle keep-alive), header size
        // and count limits, TLS handshake deadline, certificate reload.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let watcher = self.tls.clone().map(|tls| {
            tokio::spawn(tokenmint_http::listener::watch_certificate(
                tls,
                CERTIFICATE_POLL,
                stop_rx,
            ))
        });
        let options = tokenmint_http::ListenOptions {
            header_timeout: self.handle.shared.config.load().startup.header_timeout,
            ..Default::default()
        };
        let served =
            tokenmint_http::listener::serve(self.listener, app, &options, self.tls, shutdown).await;
        let _ = stop_tx.send(true);
        if let Some(watcher) = watcher {
            let _ = watcher.await;
        }
        served
    }
}

impl GatewayHandle {
    /// The gateway's HTTP service: `/healthz`, `/metrics` and every other path proxied.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/metrics", get(metrics))
            .fallback(proxy::handle)
            .with_state(Arc::clone(&self.shared))
    }

    /// Applies `config`'s routes from the next request on. Refused when a setting that needs a
    /// restart changed; the routes in force stay then.
    pub fn reload(&self, config: GatewayConfig) -> Result<usize, ReloadError> {
        let current = self.shared.config.load();
        if let Some(key) = current.startup.needs_restart_for(&config.startup) {
            return Err(ReloadError::NeedsRestart { key });
        }
        let routes = config.route_table()?;
        let count = routes.len();
        self.shared.routes.store(Arc::new(routes));
        self.shared.config.store(Arc::new(config));
        self.shared.metrics.routes.set(i64::try_from(count).unwrap_or(i64::MAX));
        Ok(count)
    }

    /// Reads the configuration file again and applies it (the binary's SIGHUP handler). The
    /// outcome is logged and counted either way.
    pub fn reload_file(&self, path: &Path, overrides: &Overrides) -> Result<usize, ReloadError> {
        let result = GatewayConfig::load(path, overrides)
            .map_err(ReloadError::from)
            .and_then(|config| self.reload(config));
        let label = match &result {
            Ok(routes) => {
                tracing::info!(routes, path = %path.display(), "configuration reloaded");
                "ok"
            }
            Err(error) => {
                tracing::error!(%error, path = %path.display(), "configuration reload refused; the previous configuration stays in force");
                "refused"
            }
        };
        self.shared.metrics.reloads.get_or_create(&ResultLabel { result: label.to_owned() }).inc();
        result
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<GatewayConfig> {
        self.shared.config.load_full()
    }

    /// The verifiers of the trusted issuers, for their metrics.
    pub fn issuers(&self) -> &Issuers {
        &self.shared.issuers
    }
}

/// Builds the verifier of one issuer and, when it is to be followed, its revocation feed.
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

async fn start_issuer(
    config: &StartupSettings,
    issuer: &IssuerConfig,
    clock: Arc<dyn Clock>,
) -> Result<(Verifier, Option<RevocationFollower>), StartError> {
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
    let verifier = Verifier::builder(verifier_config)
        .clock(clock)
        .build()
        .await
        .map_err(|source| StartError::Verifier { issuer: issuer.url.clone(), source })?;

    // tokenmint issuers advertise their feed; for the others it is off unless asked for.
    let follow = issuer.revocation_feed.unwrap_or_else(|| verifier.has_revocation_feed());
    if !follow {
        if issuer.revocation_feed == Some(false) && verifier.has_revocation_feed() {
            tracing::warn!(
                issuer = issuer.url,
                "revocation feed not followed: revoked tokens and deactivated credentials \
                 stay accepted until their tokens expire"
            );
        }
        return Ok((verifier, None));
    }
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
    let FeedCredentials::Client { client_id, secret, token_url } = &config.feed else {
        return Err(StartError::FeedCredentialsMissing {
            issuer: issuer.url.clone(),
            off: feed_off(issuer),
        });
    };
    // The feed is part of the admin API, which takes tokens for the issuer alone: asked for by
    // name, so a feed credential that also lists other audiences still gets one.
    let client_config = match token_url {
        Some(url) => ClientConfig::new(url, client_id.clone(), secret.clone())?,
        None => ClientConfig::discover(&issuer.url, client_id.clone(), secret.clone())?,
    }
    .scope(tokenmint_proto::system_scopes::REVOCATIONS)
    .audience(issuer.url.clone());
    let client = TokenClient::new(client_config)?;
    // A refused feed credential is a configuration fault no retry mends; starting anyway would
    // accept revoked tokens until someone reads the logs. An unreachable or slow token endpoint
    // is retried by the follower, within the start-up wait below.
    match tokio::time::timeout(FEED_SYNC_WAIT, client.token()).await {
        Ok(Err(error)) if error.kind() == tokenmint_client::ErrorKind::Refused => {
            return Err(StartError::FeedRefused {
                issuer: issuer.url.clone(),
                reason: error.to_string(),
                off: feed_off(issuer),
            });
        }
        Ok(_) | Err(_) => {}
    }
    let source = ClientTokenSource::new(client);
    let mut feed_config = FeedConfig::default();
    if let Some(url) = &issuer.revocation_feed_url {
        feed_config = feed_config.with_endpoint(url.clone());
    }
    let follower = verifier.follow_revocations(source, feed_config)?;
    match follower.wait_started(FEED_SYNC_WAIT).await {
        FeedStart::Synced => {}
        FeedStart::Refused => {
            follower.stop();
            return Err(StartError::FeedRefused {
                issuer: issuer.url.clone(),
                reason: "the feed answered 401 or 403 to the credential's token".to_owned(),
                off: feed_off(issuer),
            });
        }
        _ => tracing::warn!(
            issuer = issuer.url,
            "the revocation feed could not be read yet; serving anyway and retrying in the \
             background (see tokenmint_gateway_revocation_feed_up)"
        ),
    }
    Ok((verifier, Some(follower)))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.metrics.encode() {
        Ok(body) => {
            let mut response = body.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            response
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
