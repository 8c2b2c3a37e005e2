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
//!
//! An issuer that cannot be reached at start does not stop the gateway: it listens, answers 503
//! with `Retry-After` for that issuer's tokens, says so on `/readyz` and in the metrics, and
//! keeps trying in the background until the issuer answers (see the `issuers` module).

mod authz;
mod config;
mod error;
mod feed;
mod issuers;
mod metrics;
mod proxy;

pub use config::{
    AuthzSource, BindingSegment, ConfigError, FeedCredentials, GatewayConfig, IssuerConfig, Mode,
    Overrides, PathBinding, RouteConfig, StartupSettings, Upstream,
};
pub use error::Refusal;
/// The clock [`Gateway::build`] takes (tokenmint's one clock trait, shared with the verifier).
pub use tokenmint_http::{Clock, ManualClock, SystemClock};

use crate::issuers::IssuerSet;
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
use tokenmint_http::Limits;
use tokenmint_verify::{PrefixTable, Verifier};
use tokio::net::TcpListener;

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    // The OS error is the source, not part of this text: printed as a chain it would appear twice.
    #[error("cannot listen on {addr}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    // Each cause is the source, never part of the text: printed as a chain (`{:#}`), a cause
    // written into its parent's text too would appear once per level.
    #[error("issuer {issuer}")]
    Verifier { issuer: String, source: tokenmint_verify::BuildError },
    #[error(
        "issuer {issuer} publishes a revocation feed: set client_id (a credential with \
         tokenmint:revocations) and its secret, or {off}"
    )]
    FeedCredentialsMissing { issuer: String, off: &'static str },
    #[error("issuer {issuer}: {why}")]
    NoFeed { issuer: String, why: &'static str },
    #[error("the issuers")]
    Issuers(#[source] tokenmint_verify::BuildError),
    #[error("cannot follow the revocation feed")]
    Feed(#[from] tokenmint_verify::FollowError),
    #[error(
        "issuer {issuer} refuses the revocation feed's credential ({reason}); give the gateway \
         a credential with tokenmint:revocations whose audiences are empty or include the \
         issuer, or set {off}"
    )]
    FeedRefused { issuer: String, reason: String, off: &'static str },
    #[error("invalid feed credentials")]
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
    pub(crate) issuers: IssuerSet,
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
}

/// Cheap to clone: reloads the routes of a running gateway and reads its state.
#[derive(Clone)]
pub struct GatewayHandle {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for GatewayHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayHandle")
            .field("issuers", &self.shared.issuers.slots())
            .field("routes", &self.shared.routes.load().len())
            .finish_non_exhaustive()
    }
}

impl Gateway {
    /// Discovers the issuers, loads their keys, starts following their revocation feeds and
    /// binds the listener. An issuer that cannot be reached now is loaded in the background
    /// (its tokens answered 503 meanwhile, see `/readyz`); what no retry mends fails the start:
    /// a configuration error, a feed credential the issuer refuses (the gateway would accept
    /// revoked tokens), an issuer whose metadata is unusable.
    ///
    /// Every decision that depends on time (token validity, JWKS freshness and cooldowns,
    /// revocation lifetimes, rate limits, `Retry-After`) reads `clock`:
    /// [`tokenmint_http::SystemClock`] in production, a [`tokenmint_http::ManualClock`] in
    /// tests that move time.
    pub async fn build(config: GatewayConfig, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        // A certificate that cannot be loaded stops the start, before anything else is set up.
        let settings = &config.startup;
        let tls = settings.tls.as_ref().map(tokenmint_http::Tls::new).transpose()?;
        let issuers = IssuerSet::start(settings, clock.clone()).await?;

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

        let metrics = Metrics::new(Arc::clone(issuers.slots()), limits.fallback.clone());
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
        Ok(Self { listener, tls, handle: GatewayHandle { shared } })
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
    /// The gateway's HTTP service: `/healthz`, `/readyz`, `/metrics` and every other path
    /// proxied (or judged, in authz mode).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
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

    /// The verifiers of the trusted issuers whose keys have loaded, in the configured order,
    /// for their metrics.
    pub fn issuers(&self) -> Vec<Verifier> {
        self.shared.issuers.slots().iter().filter_map(|s| s.loaded().cloned()).collect()
    }

    /// Whether every issuer is ready: its keys loaded and, when its revocation feed is
    /// followed, the feed read once. What `/readyz` answers 200 to.
    pub fn is_ready(&self) -> bool {
        self.shared.issuers.all_ready()
    }
}

async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: 200 once every issuer is ready, else 503 naming the issuers that are not and
/// why, in the shape of the server's own `/readyz`.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let ready = shared.issuers.all_ready();
    let issuers: Vec<serde_json::Value> = shared
        .issuers
        .slots()
        .iter()
        .map(|slot| {
            let state = slot.state();
            let mut entry = serde_json::json!({ "issuer": slot.url, "state": state.label() });
            if let Some(detail) = state.detail() {
                entry["detail"] = detail.into();
            }
            entry
        })
        .collect();
    let (status, label) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    let body = serde_json::json!({ "status": label, "issuers": issuers });
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn an_unreachable_issuers_error_names_each_cause_once() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let issuer = format!("http://{addr}");
        let config = tokenmint_verify::VerifierConfig::new(issuer.clone());
        let source = Verifier::builder(config).build().await.unwrap_err();
        let error = StartError::Verifier { issuer, source };

        // What the binary prints (anyhow's `{:#}`) and the log lines show: the chain, joined.
        let text = tokenmint_verify::ErrorChain(&error).to_string();
        let causes: Vec<String> =
            std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                e.source()
            })
            .map(ToString::to_string)
            .collect();
        assert!(causes.len() >= 3, "issuer, discovery and the connection: {causes:?}");
        for cause in &causes {
            assert_eq!(text.matches(cause.as_str()).count(), 1, "{cause:?} in {text:?}");
        }
        assert!(text.starts_with(&format!("issuer http://{addr}: discovery at ")), "{text}");
        assert_eq!(text.matches(&addr.to_string()).count(), 2, "the issuer and the URL: {text}");
    }
}
