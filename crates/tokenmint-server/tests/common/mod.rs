//! Starts a real server on a random port, with a manual clock, and talks HTTP to it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod browser;
pub mod haproxy;
pub mod instances;
pub mod proxy;

use serde_json::{Value, json};
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{AppState, Application, Config, ManualClock};
use tokenmint_store::SqlStore;

pub struct Options {
    pub alg: SigningAlgorithm,
    pub allow_missing_grant_type: bool,
    pub token_rate_limit: u32,
    /// Any other configuration change.
    pub tweak: fn(&mut Config),
    /// The token hook, which a `tweak` cannot set (its URL is only known at run time).
    pub token_hook: Option<tokenmint_server::hook::HookConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            alg: SigningAlgorithm::ES256,
            allow_missing_grant_type: false,
            token_rate_limit: 1000,
            tweak: |_| {},
            token_hook: None,
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub clock: Arc<ManualClock>,
    pub state: AppState,
    pub admin_id: String,
    pub admin_secret: String,
    pub master_key: MasterKey,
    pub dir: tempfile::TempDir,
    pub db_path: std::path::PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

pub fn real_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

pub async fn spawn_app() -> TestApp {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(opts: Options) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let master_key = MasterKey::generate();
    let (app, admin) = start(dir.path(), master_key.clone(), &opts, None).await;
    let (id, secret) = admin.unwrap();
    finish(app, dir, master_key, id, secret)
}

/// Starts a server on the database in `dir`; on first start also returns the admin credential.
async fn start(
    dir: &std::path::Path,
    master_key: MasterKey,
    opts: &Options,
    clock: Option<Arc<ManualClock>>,
) -> ((Application, Arc<ManualClock>), Option<(String, String)>) {
    let db_path = dir.join("tokenmint.db");
    let url = format!("sqlite://{}", db_path.display());
    let mut config = Config::new(url.clone(), master_key.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.token_paths = ["/oauth/token", "/authorize", "/connect/token", "/api/auth/v2/token"]
        .map(String::from)
        .to_vec();
    config.allow_missing_grant_type = opts.allow_missing_grant_type;
    config.signing_alg = opts.alg;
    config.token_rate_limit = opts.token_rate_limit;
    config.product_areas = ProductAreas::parse(&["eligibility", "billing"]).unwrap();
    config.sync_interval = std::time::Duration::from_millis(100);
    (opts.tweak)(&mut config);
    config.token_hook = opts.token_hook.clone();
    let store = SqlStore::connect(&url, true).await.unwrap();
    let clock = clock.unwrap_or_else(|| Arc::new(ManualClock::new(real_now())));
    let mut app =
        Application::build_with_clock(config, Arc::new(store), clock.clone()).await.unwrap();
    let admin = match app.take_first_start() {
        Some(FirstStart::Initialized(admin)) => Some((admin.client_id, admin.client_secret)),
        _ => None,
    };
    ((app, clock), admin)
}

fn finish(
    (app, clock): (Application, Arc<ManualClock>),
    dir: tempfile::TempDir,
    master_key: MasterKey,
    admin_id: String,
    admin_secret: String,
) -> TestApp {
    let db_path = dir.path().join("tokenmint.db");
    let base = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    TestApp {
        base,
        http: reqwest::Client::new(),
        clock,
        state,
        admin_id,
        admin_secret,
        master_key,
        dir,
        db_path,
        shutdown: Some(tx),
        server: Some(server),
    }
}

impl TestApp {
    /// Stops the server and starts a new one on the same database, master key and clock.
    pub async fn restart(mut self, opts: Options) -> TestApp {
        self.stop().await;
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        let (app, admin) =
            start(dir.path(), self.master_key.clone(), &opts, Some(self.clock.clone())).await;
        assert!(admin.is_none(), "a restart must not initialise again");
        finish(app, dir, self.master_key.clone(), self.admin_id.clone(), self.admin_secret.clone())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and waits until it has flushed and closed.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap();
        }
    }

    /// POSTs a form to a token path with body credentials.
    pub async fn form(&self, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.url(path)).form(pairs).send().await.unwrap()
    }

    pub async fn token_for(
        &self,
        client_id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut pairs = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ];
        pairs.extend_from_slice(extra);
        self.form("/oauth/token", &pairs).await
    }

    /// An admin access token.
    /// A token for the admin API, asked for the issuer by name as the admin CLI does (the admin
    /// API takes tokens for the issuer alone).
    pub async fn admin_token(&self) -> String {
        let issuer = self.state.issuer.clone();
        let res =
            self.token_for(&self.admin_id, &self.admin_secret, &[("audience", &issuer)]).await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let token = self.admin_token().await;
        let mut req =
            self.http.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// Creates a credential through the admin API; returns (client_id, client_secret).
    pub async fn create_credential(&self, body: Value) -> (String, String) {
        let res = self.admin(reqwest::Method::POST, "/credentials", Some(body)).await;
        assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
        let v: Value = res.json().await.unwrap();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn sandbox_reader(&self) -> (String, String) {
        self.create_credential(json!({
            "name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"],
        }))
        .await
    }

    /// Gets a token and returns the parsed response.
    pub async fn token(&self, client_id: &str, secret: &str) -> Value {
        let res = self.token_for(client_id, secret, &[]).await;
        assert_eq!(res.status(), 200);
        res.json().await.unwrap()
    }
}

/// The claims of a JWT, without verification (tests look inside tokens they got).
pub fn claims(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub fn header(token: &str) -> Value {
    use base64::Engine;
    let part = token.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Every log line of the test process at TRACE level, in the text format and in the JSON
/// format as `serve --log-format` writes them, for tests that look at them. Installs the global
/// subscriber, so one such test per test binary.
#[derive(Clone, Default)]
pub struct LogCapture {
    text: LogBuffer,
    json: LogBuffer,
}

/// One format's lines.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<std::sync::Mutex<Vec<u8>>>);

impl LogCapture {
    pub fn install() -> Self {
        use tokenmint_server::logging::{LogFormat, layer};
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        let capture = Self::default();
        let (text, json) = (capture.text.clone(), capture.json.clone());
        tracing_subscriber::registry()
            .with(layer(LogFormat::Text, move || text.clone(), false))
            .with(layer(LogFormat::Json, move || json.clone(), false))
            .with(tracing_subscriber::filter::LevelFilter::TRACE)
            .init();
        capture
    }

    /// The text format's lines.
    pub fn text(&self) -> String {
        self.text.text()
    }

    /// The JSON format's lines.
    pub fn json(&self) -> String {
        self.json.text()
    }
}

impl LogBuffer {
    /// What was written, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
