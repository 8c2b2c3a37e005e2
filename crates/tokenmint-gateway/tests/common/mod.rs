//! The pieces every gateway test runs for real, each on its own random port: the tokenmint
//! server (behind a counting HTTP proxy that is also its advertised issuer URL, so every request
//! the gateway makes to the server is seen), two upstream APIs that echo what they received, and
//! the gateway itself.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
use tokenmint_gateway::{Gateway, GatewayConfig, GatewayHandle, Overrides};
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config, ManualClock};
use tokenmint_store::SqlStore;
use tokio::net::TcpListener;

pub const AUDIENCE: &str = "https://api.example.com";

/// The `[[route]]` most tests guard: `/eligibility` to `upstream`, reads with
/// `eligibility:read`, writes with `eligibility:write`.
pub fn eligibility_route(upstream: &str) -> String {
    format!(
        r#"[[route]]
path_prefix = "/eligibility"
upstream = "{upstream}"
read_scope = "eligibility:read"
write_scope = "eligibility:write""#
    )
}

pub fn real_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// An HTTP proxy that counts requests by path and forwards them (streaming) to `target`.
#[derive(Clone)]
pub struct Counter {
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Counter {
    pub fn path(&self, path: &str) -> usize {
        self.counts.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    /// Requests other than the revocation feed (which the gateway reads continuously).
    pub fn outside_feed(&self) -> usize {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(path, _)| !path.starts_with("/admin/v1/revocations"))
            .map(|(_, n)| n)
            .sum()
    }
}

struct ProxyState {
    target: OnceLock<String>,
    counter: Counter,
    http: reqwest::Client,
}

async fn count_and_forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    *state.counter.counts.lock().unwrap().entry(path).or_default() += 1;
    let target = state.target.get().unwrap();
    let url = format!("{target}{}", request.uri().path_and_query().unwrap().as_str());
    let (parts, body) = request.into_parts();
    let mut headers = parts.headers;
    headers.remove("host");
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let upstream =
        state.http.request(parts.method, url).headers(headers).body(bytes).send().await.unwrap();
    let status = upstream.status();
    let upstream_headers = upstream.headers().clone();
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    *response.status_mut() = status;
    for (name, value) in &upstream_headers {
        if name != "transfer-encoding" && name != "connection" {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

/// A real tokenmint server whose issuer URL is a counting proxy in front of it.
pub struct Server {
    /// The issuer URL (the proxy).
    pub issuer: String,
    /// The server itself, for the tests' own calls (not counted).
    pub direct: String,
    pub counter: Counter,
    pub clock: Arc<ManualClock>,
    pub admin_id: String,
    pub admin_secret: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
    master_key: MasterKey,
    /// The counting proxy at the issuer URL, to open it later ([`Server::start_unreachable`]).
    proxy: Arc<ProxyState>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().iter() {
            task.abort();
        }
    }
}

fn server_config(dir: &std::path::Path, master_key: &MasterKey, issuer: &str) -> Config {
    let url = format!("sqlite://{}", dir.join("tokenmint.db").display());
    let mut config = Config::new(url, master_key.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.issuer = Some(issuer.to_owned());
    config.signing_alg = SigningAlgorithm::ES256;
    config.token_rate_limit = 0;
    config.product_areas = ProductAreas::parse(&["eligibility", "billing", "files"]).unwrap();
    config.sync_interval = Duration::from_millis(100);
    config
}

fn run_app(app: Application) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        app.run_until_stopped(std::future::pending()).await.unwrap();
    })
}

fn serve_proxy(listener: TcpListener, proxy: &Arc<ProxyState>) -> tokio::task::JoinHandle<()> {
    let app = Router::new().fallback(count_and_forward).with_state(Arc::clone(proxy));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() })
}

impl Server {
    pub async fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        Self::start_with_issuer(addr, Some(listener)).await
    }

    /// A server whose issuer URL refuses connections until [`open_issuer`](Self::open_issuer):
    /// the server itself runs (credentials can be made and tokens issued at `direct`), but
    /// discovery, keys, the token endpoint and the feed at the issuer URL cannot be reached.
    pub async fn start_unreachable() -> Server {
        let addr = closed_port().await;
        Self::start_with_issuer(addr, None).await
    }

    /// Starts answering at the issuer URL.
    pub async fn open_issuer(&self) {
        let addr = self.issuer.trim_start_matches("http://");
        let listener = TcpListener::bind(addr).await.unwrap();
        self.tasks.lock().unwrap().push(serve_proxy(listener, &self.proxy));
    }

    async fn start_with_issuer(addr: SocketAddr, listener: Option<TcpListener>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let master_key = MasterKey::generate();
        let issuer = format!("http://{addr}");
        let counter = Counter { counts: Arc::default() };
        let proxy = Arc::new(ProxyState {
            target: OnceLock::new(),
            counter: counter.clone(),
            http: reqwest::Client::new(),
        });
        let mut tasks = Vec::new();
        if let Some(listener) = listener {
            tasks.push(serve_proxy(listener, &proxy));
        }

        let config = server_config(dir.path(), &master_key, &issuer);
        let store = SqlStore::connect(&config.database_url, true).await.unwrap();
        let clock = Arc::new(ManualClock::new(real_now()));
        let mut app =
            Application::build_with_clock(config, Arc::new(store), clock.clone()).await.unwrap();
        let Some(FirstStart::Initialized(admin)) = app.take_first_start() else {
            panic!("a new database is initialised")
        };
        let direct = format!("http://{}", app.local_addr().unwrap());
        proxy.target.set(direct.clone()).ok().unwrap();
        tasks.push(run_app(app));
        Server {
            issuer,
            direct,
            counter,
            clock,
            admin_id: admin.client_id,
            admin_secret: admin.client_secret,
            http: reqwest::Client::new(),
            dir,
            master_key,
            proxy,
            tasks: Mutex::new(tasks),
        }
    }

    /// A second instance on the same database and keys that claims another issuer: its tokens
    /// are signed with the trusted keys but carry a foreign `iss`.
    pub async fn impostor(&self, issuer: &str) -> String {
        let config = server_config(self.dir.path(), &self.master_key, issuer);
        let store = SqlStore::connect(&config.database_url, false).await.unwrap();
        let app = Application::build_with_clock(config, Arc::new(store), self.clock.clone())
            .await
            .unwrap();
        let base = format!("http://{}", app.local_addr().unwrap());
        self.tasks.lock().unwrap().push(run_app(app));
        base
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.direct)
    }

    pub async fn admin_token(&self) -> String {
        self.token_at(&self.direct, &self.admin_id, &self.admin_secret).await
    }

    pub async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let token = self.admin_token().await;
        let mut request =
            self.http.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {}", response.status());
        response.json().await.unwrap_or(Value::Null)
    }

    /// Creates a credential; returns (client_id, client_secret).
    pub async fn credential(
        &self,
        env: &str,
        permissions: &[&str],
        audiences: &[&str],
    ) -> (String, String) {
        let created = self
            .admin(
                reqwest::Method::POST,
                "/credentials",
                Some(json!({
                    "name": format!("{env} test"), "org": "acme", "environment": env,
                    "permissions": permissions, "audiences": audiences,
                })),
            )
            .await;
        (
            created["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn token_at(&self, base: &str, id: &str, secret: &str) -> String {
        let response = self
            .http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
        let body: Value = response.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    pub async fn token(&self, id: &str, secret: &str) -> String {
        self.token_at(&self.direct, id, secret).await
    }

    /// A token issued with the server's clock moved by `offset` seconds.
    pub async fn token_issued_at_offset(&self, id: &str, secret: &str, offset: i64) -> String {
        let now = real_now();
        self.clock.set(now + offset);
        let token = self.token(id, secret).await;
        self.clock.set(now);
        token
    }
}

/// An upstream API that echoes what it received as JSON, streams large answers and can be slow.
pub struct Upstream {
    pub url: String,
    /// How many `/slow` requests have arrived (and are being held).
    pub slow_arrived: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn echo(
    State((name, slow_arrived)): State<(&'static str, Arc<std::sync::atomic::AtomicUsize>)>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or("").to_owned();
    if path.ends_with("/slow") {
        slow_arrived.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if path.ends_with("/large") {
        // `query` is the size in bytes; sent in 64 KiB chunks.
        let size: usize = query.parse().unwrap();
        let chunks = futures_util::stream::iter((0..size).step_by(65_536).map(move |start| {
            Ok::<_, std::convert::Infallible>(bytes::Bytes::from(vec![
                b'x';
                (size - start).min(65_536)
            ]))
        }));
        return Body::from_stream(chunks).into_response();
    }
    if path.ends_with("/drip") {
        // One chunk now, the next one a second later.
        let chunks = futures_util::stream::unfold(0, |n| async move {
            match n {
                0 => Some((
                    Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"first")),
                    1,
                )),
                1 => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Ok(bytes::Bytes::from_static(b"second")), 2))
                }
                _ => None,
            }
        });
        return Body::from_stream(chunks).into_response();
    }
    let mut stream = body.into_data_stream();
    if path.ends_with("/first-chunk") {
        // Answers as soon as the first chunk of the upload arrives.
        let first = stream.next().await.map(|c| c.unwrap().len()).unwrap_or(0);
        return axum::Json(json!({ "first_chunk": first })).into_response();
    }
    let mut body_len = 0usize;
    while let Some(chunk) = stream.next().await {
        body_len += chunk.unwrap().len();
    }
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), Value::String(v.to_str().unwrap_or("?").to_owned())))
        .collect();
    axum::Json(json!({
        "upstream": name, "method": parts.method.as_str(), "path": path, "query": query,
        "headers": headers, "body_len": body_len,
    }))
    .into_response()
}

impl Upstream {
    pub async fn start(name: &'static str) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let slow_arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let app = Router::new().fallback(echo).with_state((name, slow_arrived.clone()));
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Upstream { url, slow_arrived, task }
    }
}

/// Forwards every request arriving at `addr` to `target` (a base URL), from now on.
pub async fn forward_on(addr: &str, target: &str) -> tokio::task::JoinHandle<()> {
    let proxy = Arc::new(ProxyState {
        target: OnceLock::from(target.to_owned()),
        counter: Counter { counts: Arc::default() },
        http: reqwest::Client::new(),
    });
    serve_proxy(TcpListener::bind(addr).await.unwrap(), &proxy)
}

/// An address nothing listens on.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// The whole setup: server, two upstreams and a running gateway.
pub struct Setup {
    pub server: Server,
    pub production: Upstream,
    pub sandbox: Upstream,
    pub gateway: String,
    pub handle: GatewayHandle,
    /// The gateway's clock: tests move it instead of waiting for cooldowns and limits.
    pub clock: Arc<tokenmint_gateway::ManualClock>,
    pub http: reqwest::Client,
    pub config_path: std::path::PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The gateway's configuration text for `server`, `production` and `sandbox`, plus `top`
/// (top-level keys) and `extra` (more routes).
pub fn config_text(
    server: &Server,
    production: &str,
    sandbox: &str,
    secret_file: &std::path::Path,
    top: &str,
    extra: &str,
) -> String {
    format!(
        r#"
listen = "127.0.0.1:0"
issuer = "{issuer}"
audience = "{AUDIENCE}"
client_id = "{client_id}"
client_secret_file = "{secret_file}"
jwks_refetch_cooldown = "1s"
{top}

[[route]]
path_prefix = "/eligibility"
upstream = "{production}"
sandbox_upstream = "{sandbox}"
read_scope = "eligibility:read"
write_scope = "eligibility:write"

[[route]]
path_prefix = "/eligibility/members"
upstream = "{production}"
sandbox_upstream = "{sandbox}"
read_scope = "eligibility:read"
write_scope = "eligibility:write"
require_headers = ["x-user-id"]

[[route]]
path_prefix = "/billing"
upstream = "{production}"
read_scope = "billing:read"
write_scope = "billing:write"
rate_limit_per_minute = 3
forward_authorization = true
{extra}
"#,
        issuer = server.issuer,
        client_id = server.admin_id,
        secret_file = secret_file.display(),
    )
}

impl Setup {
    pub async fn start() -> Setup {
        Self::start_with("").await
    }

    /// With `extra` (more routes) appended to the configuration.
    pub async fn start_with(extra: &str) -> Setup {
        Self::start_configured("", extra).await
    }

    /// With `top` (top-level keys) and `extra` (more routes) added to the configuration.
    pub async fn start_configured(top: &str, extra: &str) -> Setup {
        let server = Server::start().await;
        let production = Upstream::start("production").await;
        let sandbox = Upstream::start("sandbox").await;
        let secret_file = server.dir.path().join("gateway-secret");
        std::fs::write(&secret_file, format!("{}\n", server.admin_secret)).unwrap();
        // `PRODUCTION_URL` in `extra` stands for the production upstream's URL.
        let extra = extra.replace("PRODUCTION_URL", &production.url);
        let text = config_text(&server, &production.url, &sandbox.url, &secret_file, top, &extra);
        Self::launch(server, production, sandbox, text).await
    }

    /// Over a server whose issuer URL refuses connections until `server.open_issuer()`, with
    /// `top` (top-level keys) added to the configuration.
    pub async fn start_unreachable(top: &str) -> Setup {
        let server = Server::start_unreachable().await;
        Self::over(server, |server, production, sandbox, secret_file| {
            config_text(server, &production.url, &sandbox.url, secret_file, top, "")
        })
        .await
    }

    /// With the whole configuration from `text`, given the server, the two upstreams and the
    /// file holding the feed credential's secret.
    pub async fn start_text(
        text: impl FnOnce(&Server, &Upstream, &Upstream, &std::path::Path) -> String,
    ) -> Setup {
        Self::over(Server::start().await, text).await
    }

    /// Over `server`, with the whole configuration from `text` (as [`Setup::start_text`]).
    pub async fn over(
        server: Server,
        text: impl FnOnce(&Server, &Upstream, &Upstream, &std::path::Path) -> String,
    ) -> Setup {
        let production = Upstream::start("production").await;
        let sandbox = Upstream::start("sandbox").await;
        let secret_file = server.dir.path().join("gateway-secret");
        std::fs::write(&secret_file, format!("{}\n", server.admin_secret)).unwrap();
        let text = text(&server, &production, &sandbox, &secret_file);
        Self::launch(server, production, sandbox, text).await
    }

    async fn launch(
        server: Server,
        production: Upstream,
        sandbox: Upstream,
        text: String,
    ) -> Setup {
        let config_path = server.dir.path().join("gateway.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = GatewayConfig::load(&config_path, &Overrides::default()).unwrap();
        let clock = Arc::new(tokenmint_gateway::ManualClock::starting_now());
        let gateway = Gateway::build(config, clock.clone()).await.unwrap();
        let addr = gateway.local_addr().unwrap();
        let handle = gateway.handle();
        let task = tokio::spawn(async move {
            gateway.run_until_stopped(std::future::pending()).await.unwrap();
        });
        Setup {
            server,
            production,
            sandbox,
            gateway: format!("http://{addr}"),
            handle,
            clock,
            http: reqwest::Client::new(),
            config_path,
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// A token of a new credential in `env` with `permissions` and the gateway's audience.
    pub async fn token(&self, env: &str, permissions: &[&str]) -> String {
        let (id, secret) = self.server.credential(env, permissions, &[AUDIENCE]).await;
        self.server.token(&id, &secret).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send(reqwest::Method::GET, path, token, &[]).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Answer::from(request.send().await.unwrap()).await
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Answer { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The header the upstream received, from its echo.
    pub fn forwarded(&self, name: &str) -> Option<&str> {
        self.body["headers"][name].as_str()
    }

    /// Asserts an RFC 9457 refusal with `status`.
    pub fn assert_problem(&self, status: u16) {
        assert_eq!(self.status, status, "{self:?}");
        assert_eq!(self.header("content-type"), Some("application/problem+json"), "{self:?}");
        assert_eq!(self.body["status"], status, "{self:?}");
    }
}

/// Polls `condition` every 50 ms until it holds or `within` passes.
pub async fn eventually(within: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The header and claims of a JWT, decoded without verification.
pub fn decode(token: &str) -> (Value, Value) {
    use base64::Engine;
    let mut parts = token.split('.');
    let mut part = || {
        let bytes =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(parts.next().unwrap()).unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    (part(), part())
}

pub fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Sends `method path` exactly as written (HTTP clients resolve dot segments, even encoded
/// ones, before sending) to `addr` (`host:port`) with `token`; returns the status and the body.
pub async fn raw_request(addr: &str, method: &str, path: &str, token: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// An issuer tokenmint did not write, shaped like Entra ID: an RSA key published without `alg`,
/// `typ: JWT`, the client in `azp`, scopes in an array, no `env` or `org`; its issuer URL ends
/// in a slash, and its keys are at `jwks_uri` (no discovery).
pub struct ForeignIssuer {
    /// With the trailing slash, as tokens carry it.
    pub issuer: String,
    pub jwks_uri: String,
    key: aws_lc_rs::signature::RsaKeyPair,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ForeignIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ForeignIssuer {
    pub async fn start() -> ForeignIssuer {
        use aws_lc_rs::signature::{KeyPair, RsaPublicKeyComponents};
        let key =
            aws_lc_rs::signature::RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let parts = RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
        let jwks = json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "foreign-1",
            "n": b64(&parts.n), "e": b64(&parts.e)}]});
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().route(
            "/discovery/v2.0/keys",
            axum::routing::get(move || {
                let jwks = jwks.clone();
                async move { axum::Json(jwks) }
            }),
        );
        let task = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        ForeignIssuer {
            issuer: format!("{base}/tenant/v2.0/"),
            jwks_uri: format!("{base}/discovery/v2.0/keys"),
            key,
            task,
        }
    }

    /// A token for client `azp` with the scopes `scp`.
    pub fn token(&self, azp: &str, scp: &[&str]) -> String {
        let now = real_now();
        let claims = json!({"iss": self.issuer, "aud": AUDIENCE, "iat": now, "nbf": now,
            "exp": now + 3600, "azp": azp, "sub": azp, "scp": scp, "ver": "2.0"});
        self.sign(&json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"}), &claims)
    }

    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap();
        format!("{input}.{}", b64(&signature))
    }

    /// Its `[[issuer]]` table for the gateway's configuration.
    pub fn table(&self) -> String {
        format!(
            r#"
[[issuer]]
url = "{}"
audience = "{AUDIENCE}"
jwks_uri = "{}"
token_types = ["JWT"]
scope_claim = "scp"
client_id_claim = "azp"
"#,
            self.issuer, self.jwks_uri
        )
    }
}
