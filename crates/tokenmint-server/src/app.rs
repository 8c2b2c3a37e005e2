//! Building and running the server: `Application::build` binds the listener (port 0 in tests)
//! and prepares the state; `run_until_stopped` serves until the shutdown future resolves, then
//! drains connections and flushes what is buffered.

use crate::bootstrap::{self, BootstrapError};
use crate::cache::CredentialCache;
use crate::clock::{Clock, SystemClock};
use crate::config::Config;
use crate::keyring::{self, Decrypted, KeyRing};
use crate::metrics::Metrics;
use crate::revocations::RevocationSet;
use crate::routes;
use crate::state::{AppState, Inner};
use crate::sync;
use crate::usage::{self, UsageQueue};
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use bytes::Bytes;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokenmint_core::SecretHasher;
use tokenmint_store::{Store, StoreError};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

#[derive(Debug, Error)]
pub enum StartError {
    // The OS error is the source, not part of this text: printed as a chain it would appear twice.
    #[error("cannot listen on {addr}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("signing keys: {0}")]
    Keys(#[from] keyring::KeyRingError),
    #[error("invalid --redis URL: {0}")]
    Redis(String),
    #[error("{0}")]
    PlainHttp(String),
    #[error(transparent)]
    Tls(#[from] crate::transport::TlsError),
    #[error(transparent)]
    Webhook(#[from] crate::alerts::WebhookError),
    #[error(transparent)]
    TokenHook(#[from] crate::hook::HookConfigError),
}

/// What `build` did on first start.
#[derive(Debug)]
pub enum FirstStart {
    AlreadyInitialized,
    /// The database was empty: here is the admin credential to hand to the operator.
    Initialized(Box<tokenmint_proto::admin::CreatedCredential>),
}

#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    state: AppState,
    usage_queue: UsageQueue,
    audit_queue: crate::audit::AuditQueue,
    alert_queue: crate::alerts::AlertQueue,
    first_start: Option<FirstStart>,
    tls: Option<crate::transport::Tls>,
}

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-chosen request id kept (a UUID is 36 characters).
const MAX_REQUEST_ID_LEN: usize = 128;

/// Drops a client's `x-request-id` unless it is one field line of 1 to 128 visible ASCII
/// characters, so that a fresh id is generated instead: the id is echoed in the response and
/// written to logs, and raw bytes there (control characters, U+2028, bidirectional marks) could
/// split or disguise lines in whatever reads them.
fn keep_plain_request_id(mut req: Request) -> Request {
    let mut ids = req.headers().get_all(&X_REQUEST_ID).iter();
    let plain = match (ids.next(), ids.next()) {
        (Some(id), None) => {
            let b = id.as_bytes();
            !b.is_empty() && b.len() <= MAX_REQUEST_ID_LEN && b.iter().all(|c| c.is_ascii_graphic())
        }
        (None, _) => true,
        (Some(_), Some(_)) => false,
    };
    if !plain {
        req.headers_mut().remove(&X_REQUEST_ID);
    }
    req
}

/// What the trace layer logs of a 5xx answer. A 503 is a refusal the server chose (the token
/// hook gave no usable answer, the database is away, the cache is too old to trust), logged
/// where it was decided with its cause: here it is kept at debug, so that a hook outage is not
/// also an ERROR line per token request. Every other server error is logged as an error.
fn log_failure(
    class: tower_http::classify::ServerErrorsFailureClass,
    latency: std::time::Duration,
    _span: &tracing::Span,
) {
    use tower_http::classify::ServerErrorsFailureClass;
    match class {
        ServerErrorsFailureClass::StatusCode(code)
            if code == axum::http::StatusCode::SERVICE_UNAVAILABLE =>
        {
            tracing::debug!(latency_ms = latency.as_millis(), "answered 503 Service Unavailable");
        }
        class => tracing::error!(
            classification = %class,
            latency_ms = latency.as_millis(),
            "response failed"
        ),
    }
}

impl Application {
    pub async fn build(config: Config, store: Arc<dyn Store>) -> Result<Self, StartError> {
        Self::build_with_clock(config, store, Arc::new(SystemClock)).await
    }

    pub async fn build_with_clock(
        config: Config,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StartError> {
        if let Some(refusal) = crate::transport::plain_http_refusal(&config) {
            return Err(StartError::PlainHttp(refusal));
        }
        let tls = config.tls.as_ref().map(crate::transport::Tls::new).transpose()?;
        crate::alerts::check_targets(&config.alerts).await?;
        if let Some(hook) = &config.token_hook {
            crate::hook::check_target(hook).await?;
        }
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| StartError::Bind { addr: config.listen, source })?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let issuer = config.issuer.clone().unwrap_or_else(|| format!("{scheme}://{local}"));
        let issuer = issuer.trim_end_matches('/').to_owned();
        let token_endpoint = format!(
            "{issuer}{}",
            config.token_paths.first().map_or(crate::config::DEFAULT_TOKEN_PATH, String::as_str)
        );

        let now = clock.now();
        bootstrap::check_master_key(store.as_ref(), &config.master_key).await?;
        bootstrap::ensure_signing_key(store.as_ref(), &config.master_key, config.signing_alg, now)
            .await?;
        let first_start = if bootstrap::is_initialized(store.as_ref()).await? {
            FirstStart::AlreadyInitialized
        } else {
            let admin = bootstrap::create_admin_credential(
                store.as_ref(),
                &config.master_key,
                &token_endpoint,
                now,
            )
            .await?;
            FirstStart::Initialized(Box::new(admin))
        };

        let mut decrypted = Decrypted::default();
        let records = store.list_keys().await?;
        let keys = keyring::build(
            &records,
            now,
            i64::from(config.max_token_lifetime),
            &config.master_key,
            &mut decrypted,
        )?;
        let metadata =
            crate::routes::discovery::metadata_document(&issuer, &config, &token_endpoint);
        let metadata_json = Bytes::from(serde_json::to_vec(&metadata).unwrap_or_default());
        let openid_metadata_json = Bytes::from(
            serde_json::to_vec(&crate::routes::discovery::openid_configuration(&metadata))
                .unwrap_or_default(),
        );
        let (usage, usage_queue) = usage::channel();
        let (audit, audit_queue) = crate::audit::channel(65_536);
        if !config.alerts.webhooks.is_empty() && config.alerts.secret.is_none() {
            tracing::warn!(
                "alert webhooks are configured without a signing secret: receivers cannot authenticate them"
            );
        }
        let last_change = store.latest_change().await?;
        let limiter_clock = Arc::new(crate::clock::LimiterClock(clock.clone()));
        let limits = match &config.redis_url {
            Some(url) => tokenmint_http::Limits::redis(url, &config.redis_prefix, limiter_clock)
                .await
                .map_err(|e| StartError::Redis(e.to_string()))?,
            None => tokenmint_http::Limits::local(limiter_clock),
        };
        let limits = Arc::new(limits);
        let (alerts, alert_queue) =
            crate::alerts::channel(config.alerts.clone(), limits.clone(), store.clone());
        let mut metrics = Metrics::new();
        metrics.registry.register(
            "rate_limit_fallback",
            "1 while rate limits and brute-force counters are decided locally because Redis is unreachable",
            limits.fallback.clone(),
        );
        // Signed unless --token-hook-unsigned said otherwise (checked above, at start-up).
        let token_hook = config
            .token_hook
            .clone()
            .map(|hook| crate::hook::TokenHook::new(hook, &mut metrics.registry));
        let inner = Inner {
            hasher: SecretHasher::new(&config.master_key),
            credentials: if token_hook.is_some() {
                CredentialCache::new(PRELOAD_ROOM)
            } else {
                CredentialCache::new(PRELOAD_ROOM).without_names()
            },
            keys: KeyRing::new(keys),
            decrypted: tokio::sync::Mutex::new(decrypted),
            revocations: RevocationSet::new(),
            limits,
            last_sync_ok: std::sync::atomic::AtomicU64::new(0),
            started: std::time::Instant::now(),
            changed: tokio::sync::Notify::new(),
            usage,
            audit: Arc::new(audit),
            abuse: crate::abuse::AbuseGuard::new(config.brute_force.clone()),
            alerts: Arc::new(alerts),
            portal: crate::portal::PortalState::new(),
            metrics,
            token_hook,
            metadata_json,
            openid_metadata_json,
            assertion_audiences: std::iter::once(issuer.clone())
                .chain(config.token_paths.iter().map(|p| format!("{issuer}{p}")))
                .collect(),
            token_endpoint,
            issuer,
            sync_lock: tokio::sync::Mutex::new(last_change),
            store,
            clock,
            config,
        };
        let state = AppState(Arc::new(inner));
        sync::load_revocations(&state).await?;
        state.mark_synced();
        Ok(Self {
            listener,
            state,
            usage_queue,
            audit_queue,
            alert_queue,
            first_start: Some(first_start),
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// What a reload request (SIGHUP) can refresh while the server runs.
    pub fn reloader(&self) -> Reloader {
        Reloader { state: self.state.clone(), tls: self.tls.clone() }
    }

    /// What start-up did to an empty database (taken once).
    pub fn take_first_start(&mut self) -> Option<FirstStart> {
        self.first_start.take()
    }

    /// The router with every layer, for serving or for in-process tests.
    pub fn router(state: AppState) -> Router {
        let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
            // The path only: a query string could carry anything, including a secret a client
            // wrongly put there.
            // A client's own request id is untrusted text: escaped and bounded before it is logged.
            let request_id = req.headers().get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            let request_id = tokenmint_core::SafeText::bounded(request_id, 128);
            let request_id = request_id.as_str();
            tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
        })
        .on_failure(log_failure);
        let hsts = (state.config.tls.is_some() || state.issuer.starts_with("https://"))
            .then_some(HeaderValue::from_static("max-age=31536000"));
        let request_timeout = state.config.request_timeout;
        // The layers wrap the router once, as one concrete service, rather than each route
        // through `Router::layer`: that would box every layer per route and clone each box on
        // every request, a measurable share of a token request (see bench/run.sh).
        let layered = tower::ServiceBuilder::new()
            .map_request(keep_plain_request_id)
            .layer(SetRequestIdLayer::new(X_REQUEST_ID, MakeRequestUuid))
            .layer(trace)
            .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ))
            .layer(SetResponseHeaderLayer::if_not_present(
                HeaderName::from_static("strict-transport-security"),
                hsts,
            ))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                request_timeout,
            ))
            .service(routes::router(state));
        Router::new().fallback_service(layered)
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets requests in flight finish,
    /// and writes pending last-used times.
    pub async fn run_until_stopped<F>(self, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let state = self.state.clone();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(sync_loop(state.clone(), stop_rx.clone()));
        tasks.spawn(listen_loop(state.clone(), stop_rx.clone()));
        tasks.spawn(maintenance_loop(state.clone(), stop_rx.clone()));
        if sync::keeps_every_credential(&state) {
            tasks.spawn(preload_loop(state.clone(), stop_rx.clone()));
        }
        let flusher = tokio::spawn(usage::run_flusher(
            self.usage_queue,
            state.store.clone(),
            Duration::from_secs(5),
            stop_rx.clone(),
        ));
        let alert_task = tokio::spawn(crate::alerts::run_deliveries(
            self.alert_queue,
            state.alerts.clone(),
            state.audit.clone(),
            state.store.clone(),
            stop_rx.clone(),
        ));
        // The audit writer stops last, after everything that records events.
        let (audit_stop_tx, audit_stop_rx) = tokio::sync::watch::channel(false);
        let audit_task = tokio::spawn(crate::audit::run_writer(
            self.audit_queue,
            state.store.clone(),
            audit_stop_rx,
        ));
        if let Some(tls) = &self.tls {
            tasks.spawn(crate::transport::watch_certificate(
                tls.clone(),
                state.config.tls_reload_interval,
                stop_rx.clone(),
            ));
        }
        let app = Self::router(state.clone());
        let served = crate::transport::serve(
            self.listener,
            app,
            &crate::transport::listen_options(&state.config),
            self.tls,
            shutdown,
        )
        .await;
        let _ = stop_tx.send(true);
        while tasks.join_next().await.is_some() {}
        let _ = flusher.await;
        let _ = alert_task.await;
        let _ = audit_stop_tx.send(true);
        let _ = audit_task.await;
        served
    }
}

/// Refreshes, without a restart, what can change safely under a running server: the TLS
/// certificate and key files, and this process's view of the database (the change log, so
/// credential edits and revocations made elsewhere, and the signing keys). Everything else (the
/// listener, the issuer, the token paths, limits) is fixed at start: changing it under clients
/// that already read the discovery document would break them, so it takes a restart.
#[derive(Clone, Debug)]
pub struct Reloader {
    state: AppState,
    tls: Option<crate::transport::Tls>,
}

/// What one reload did; each part failed or not on its own, and a failed part kept what it had.
#[derive(Debug)]
pub struct Reloaded {
    /// `None` when the server does not serve TLS.
    pub tls: Option<Result<(), crate::transport::TlsError>>,
    pub database: Result<(), StoreError>,
}

impl Reloader {
    /// Reloads everything it can and logs the outcome as one line.
    pub async fn reload(&self) -> Reloaded {
        let tls = self.tls.as_ref().map(crate::transport::Tls::reload);
        let database = match sync::sync_now(&self.state).await {
            Ok(()) => sync::reload_keys(&self.state).await,
            Err(e) => Err(e),
        };
        let tls_text = match &tls {
            None => "not served".to_owned(),
            Some(Ok(())) => "certificate reloaded".to_owned(),
            Some(Err(e)) => format!("kept the current certificate: {e}"),
        };
        let database_text = match &database {
            Ok(()) => "changes and signing keys reloaded".to_owned(),
            Err(e) => format!("kept the cached state: {e}"),
        };
        if matches!(tls, Some(Err(_))) || database.is_err() {
            tracing::warn!(tls = %tls_text, database = %database_text, "reload incomplete");
        } else {
            tracing::info!(tls = %tls_text, database = %database_text, "reloaded");
        }
        Reloaded { tls, database }
    }
}

/// Turns the store's change notifications (PostgreSQL `LISTEN`) into immediate syncs; the
/// periodic sync in [`sync_loop`] still runs, so a lost notification only delays a change by
/// one sync interval.
async fn listen_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut listener = None;
    loop {
        if listener.is_none() {
            match state.store.listen_changes().await {
                Ok(Some(l)) => listener = Some(l),
                Ok(None) => return,
                Err(e) => tracing::debug!(error = %e, "cannot listen for changes yet"),
            }
        }
        let woke = match listener.as_mut() {
            Some(l) => tokio::select! {
                r = l.recv() => r.is_ok(),
                _ = stop.changed() => return,
            },
            None => tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                _ = stop.changed() => return,
            },
        };
        if woke {
            state.changed.notify_one();
        } else if listener.is_some() {
            listener = None;
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = stop.changed() => return,
            }
        }
    }
}

/// How many credentials an instance over a shared database loads at start: the cache's size.
const PRELOAD_ROOM: usize = 200_000;

/// Over a shared database, loads every credential into the cache in the background
/// ([`sync::preload_credentials`]); retried while the database does not answer.
async fn preload_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let started = std::time::Instant::now();
    loop {
        match sync::preload_credentials(&state, PRELOAD_ROOM).await {
            Ok(loaded) => {
                tracing::info!(
                    credentials = loaded,
                    elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    "credentials loaded into the cache"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "cannot load the credentials into the cache yet"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Applies changes made by other processes, and moves the key lifecycle on.
async fn sync_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(state.config.sync_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = state.changed.notified() => {}
            _ = stop.changed() => return,
        }
        match sync::sync_now(&state).await {
            Ok(()) => {
                if failing {
                    tracing::info!("change log readable again");
                    failing = false;
                }
            }
            Err(e) => {
                state.metrics.sync_errors.inc();
                if !failing {
                    tracing::warn!(error = %e, "cannot read the change log; serving from cache");
                    failing = true;
                }
            }
        }
        let due = state.keys.load().next_transition.is_some_and(|t| t <= state.now());
        if due && let Err(e) = sync::reload_keys(&state).await {
            tracing::warn!(error = %e, "cannot rebuild the key set");
        }
    }
}

/// Once a minute: scheduled key rotation, pruning of expired state.
async fn maintenance_loop(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut rounds: u64 = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        rounds += 1;
        if let Err(e) = maintain(&state, rounds % 60 == 1).await {
            tracing::warn!(error = %e, "maintenance failed; will retry");
        }
    }
}

/// One round of maintenance: rotate the signing key when the schedule says so, delete keys
/// that left the JWKS, forget expired revocations, and (with `purge`) delete expired history.
pub async fn maintain(state: &AppState, purge: bool) -> Result<(), StoreError> {
    let now = state.now();
    state.credentials.sweep_idle_limits(state.limits.now());
    let interval = state.config.key_rotation_interval.as_secs();
    if interval > 0 {
        let records = state.store.list_keys().await?;
        let interval = i64::try_from(interval).unwrap_or(i64::MAX / 4);
        if tokenmint_core::keys::rotation_due(&records, now, interval) {
            let propagation = state.config.key_propagation.as_secs();
            match crate::routes::admin::keys::schedule_new_key(
                state,
                state.config.signing_alg,
                propagation,
                None,
            )
            .await
            {
                Ok(Some(kid)) => tracing::info!(kid = %kid, "scheduled key rotation"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "scheduled key rotation failed"),
            }
        }
        // Keys that left the JWKS are no longer needed by anyone.
        let live = tokenmint_core::keys::lifecycle(
            &records,
            now,
            i64::from(state.config.max_token_lifetime),
        );
        let garbage: Vec<String> = records
            .iter()
            .filter(|r| !live.iter().any(|s| s.kid == r.kid) && r.activates_at <= now)
            .map(|r| r.kid.clone())
            .collect();
        if !garbage.is_empty() {
            state.store.delete_keys(&garbage).await?;
        }
    }
    state.revocations.prune(now);
    if purge {
        // Hourly: drop feed entries whose tokens expired, history older than 30 days, and
        // audit records past their retention.
        state.store.purge(now, now - 30 * 86_400).await?;
        state.store.purge_sessions(now).await?;
        let retention =
            i64::try_from(state.config.audit_retention.as_secs()).unwrap_or(i64::MAX / 4);
        state.store.purge_audit(now - retention).await?;
    }
    Ok(())
}
