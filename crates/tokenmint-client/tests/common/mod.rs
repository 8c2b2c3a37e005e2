//! Test servers and shared checks for the integration tests.
//!
//! [`MockServer`] is an OAuth 2.0 token endpoint plus a protected API on one localhost port. It
//! records every request, checks each token request with a pluggable [`Validator`] (so a test
//! states exactly what must arrive), can be scripted to answer with errors, and issues numbered
//! tokens whose expiry the API enforces on tokio's clock.
//!
//! The [`conformance`] functions take only a token URL and credentials, so the same checks run
//! against any server: the mocks here, node-oidc-provider, and tokenmint's own server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use base64::Engine as _;
use serde_json::{Value, json};
use tokenmint_client::Clock;
use tokio::time::Instant;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    pub path: String,
    pub content_type: Option<String>,
    pub authorization: Option<String>,
    pub body: String,
    pub at: Instant,
}

impl Recorded {
    /// The form body as ordered pairs.
    pub fn form(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.body.as_bytes()).into_owned().collect()
    }

    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form().into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    pub fn json(&self) -> Option<serde_json::Map<String, Value>> {
        match serde_json::from_str(&self.body) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        }
    }

    pub fn bearer(&self) -> Option<&str> {
        self.authorization.as_deref().and_then(|a| a.strip_prefix("Bearer "))
    }
}

/// A canned answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// An RFC 6749 §5.2 error body.
    pub fn oauth_error(status: u16, error: &str, description: &str) -> Self {
        Self::new(status, json!({ "error": error, "error_description": description }))
    }

    /// An RFC 7807 problem, as the WEX API answers a missing or expired token.
    pub fn problem(status: u16, title: &str, detail: &str) -> Self {
        Self {
            status,
            headers: vec![("content-type".into(), "application/problem+json".into())],
            body: json!({
                "type": "https://platform.example/api/problem",
                "title": title,
                "detail": detail,
                "instance": "path/to/resource",
            })
            .to_string(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::from_u16(self.status).unwrap(), self.body).into_response();
        for (name, value) in self.headers {
            response.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        response
    }
}

/// Decides whether a token request is acceptable; `Err` is the answer when it is not.
pub type Validator = Box<dyn Fn(&Recorded) -> Result<(), Reply> + Send + Sync>;

pub struct ServerState {
    pub validator: Validator,
    pub token_requests: Mutex<Vec<Recorded>>,
    pub api_requests: Mutex<Vec<Recorded>>,
    /// Answers given, in order, before any token is issued.
    pub token_script: Mutex<VecDeque<Reply>>,
    /// Answers given, in order, before the API checks the token.
    pub api_script: Mutex<VecDeque<Reply>>,
    /// The `expires_in` member of issued tokens (`None`: omitted).
    pub expires_in: Mutex<Option<Value>>,
    /// The lifetime the API enforces for each issued token.
    pub lifetime: Mutex<Duration>,
    issued: Mutex<HashMap<String, Instant>>,
    revoked: Mutex<Vec<String>>,
    /// API requests carrying an issued token after its expiry.
    pub expired_seen: AtomicU64,
    counter: AtomicU64,
    gate: tokio::sync::watch::Sender<bool>,
}

impl ServerState {
    pub fn token_count(&self) -> usize {
        self.token_requests.lock().unwrap().len()
    }

    pub fn api_count(&self) -> usize {
        self.api_requests.lock().unwrap().len()
    }

    pub fn last_token_request(&self) -> Recorded {
        self.token_requests.lock().unwrap().last().cloned().expect("no token request")
    }

    pub fn script_token(&self, reply: Reply) {
        self.token_script.lock().unwrap().push_back(reply);
    }

    pub fn script_api(&self, reply: Reply) {
        self.api_script.lock().unwrap().push_back(reply);
    }

    /// Holds token requests until [`open_gate`](Self::open_gate).
    pub fn close_gate(&self) {
        self.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.gate.send_replace(true);
    }

    /// The API refuses `token` from now on.
    pub fn revoke(&self, token: &str) {
        self.revoked.lock().unwrap().push(token.to_owned());
    }

    /// Every token issued so far, in order.
    pub fn issued_tokens(&self) -> Vec<String> {
        let mut tokens: Vec<_> = self.issued.lock().unwrap().keys().cloned().collect();
        tokens.sort_by_key(|t| t.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()));
        tokens
    }
}

/// A token endpoint and a protected API on one localhost port.
pub struct MockServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub struct MockBuilder {
    token_paths: Vec<String>,
    validator: Validator,
    expires_in: Option<Value>,
    lifetime: Duration,
    token_prefix: String,
}

impl MockServer {
    pub fn builder() -> MockBuilder {
        MockBuilder {
            token_paths: vec!["/oauth/token".into()],
            validator: Box::new(|_| Ok(())),
            expires_in: Some(json!(3600)),
            lifetime: Duration::from_secs(3600),
            token_prefix: "tok".into(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl MockBuilder {
    pub fn token_path(mut self, path: &str) -> Self {
        self.token_paths = vec![path.into()];
        self
    }

    pub fn validator(
        mut self,
        validator: impl Fn(&Recorded) -> Result<(), Reply> + Send + Sync + 'static,
    ) -> Self {
        self.validator = Box::new(validator);
        self
    }

    /// Issued tokens carry this `expires_in` and the API enforces `lifetime`.
    pub fn expires_in(mut self, expires_in: Option<Value>, lifetime: Duration) -> Self {
        self.expires_in = expires_in;
        self.lifetime = lifetime;
        self
    }

    pub fn token_prefix(mut self, prefix: &str) -> Self {
        self.token_prefix = prefix.into();
        self
    }

    pub async fn start(self) -> MockServer {
        let (gate, _) = tokio::sync::watch::channel(true);
        let state = Arc::new(ServerState {
            validator: self.validator,
            token_requests: Mutex::default(),
            api_requests: Mutex::default(),
            token_script: Mutex::default(),
            api_script: Mutex::default(),
            expires_in: Mutex::new(self.expires_in),
            lifetime: Mutex::new(self.lifetime),
            issued: Mutex::default(),
            revoked: Mutex::default(),
            expired_seen: AtomicU64::new(0),
            counter: AtomicU64::new(0),
            gate,
        });
        let prefix: Arc<str> = self.token_prefix.into();
        let mut router = Router::new().route("/api/{*rest}", any(api));
        for path in &self.token_paths {
            let prefix = Arc::clone(&prefix);
            router = router.route(
                path,
                post(move |state, method, uri, headers, body| {
                    token(state, method, uri, headers, body, Arc::clone(&prefix))
                }),
            );
        }
        let router = router.with_state(Arc::clone(&state));
        let (addr, task) = serve(router).await;
        MockServer { addr, state, task }
    }
}

/// Serves `router` on a free localhost port.
pub async fn serve(router: Router) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    (addr, task)
}

fn record(method: Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Recorded {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    Recorded {
        method,
        path: uri.path().to_owned(),
        content_type: header("content-type"),
        authorization: header("authorization"),
        body: String::from_utf8_lossy(body).into_owned(),
        at: Instant::now(),
    }
}

async fn token(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    prefix: Arc<str>,
) -> Response {
    let request = record(method, &uri, &headers, &body);
    state.token_requests.lock().unwrap().push(request.clone());
    let mut gate = state.gate.subscribe();
    let _ = gate.wait_for(|open| *open).await;
    if let Some(reply) = state.token_script.lock().unwrap().pop_front() {
        return reply.into_response();
    }
    if let Err(reply) = (state.validator)(&request) {
        return reply.into_response();
    }
    let n = state.counter.fetch_add(1, Ordering::SeqCst) + 1;
    let token = format!("{prefix}-{n}");
    let lifetime = *state.lifetime.lock().unwrap();
    state.issued.lock().unwrap().insert(token.clone(), Instant::now() + lifetime);
    let mut body = json!({ "access_token": token, "token_type": "Bearer" });
    if let Some(expires_in) = state.expires_in.lock().unwrap().clone() {
        body["expires_in"] = expires_in;
    }
    let mut response = axum::Json(body).into_response();
    response.headers_mut().insert("cache-control", "no-store".parse().unwrap());
    response
}

async fn api(
    State(state): State<Arc<ServerState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = record(method, &uri, &headers, &body);
    state.api_requests.lock().unwrap().push(request.clone());
    if let Some(reply) = state.api_script.lock().unwrap().pop_front() {
        return reply.into_response();
    }
    if request.bearer().is_some_and(|t| state.revoked.lock().unwrap().iter().any(|r| r == t)) {
        return Reply::problem(401, "Unauthorized", "The access token was revoked.")
            .into_response();
    }
    let expiry = request.bearer().and_then(|t| state.issued.lock().unwrap().get(t).copied());
    match expiry {
        Some(expiry) if Instant::now() < expiry => {
            axum::Json(json!({ "ok": true, "path": request.path })).into_response()
        }
        Some(_) => {
            state.expired_seen.fetch_add(1, Ordering::SeqCst);
            Reply::problem(401, "Unauthorized", "The access token has expired.").into_response()
        }
        None => Reply::problem(401, "Unauthorized", "The request requires user authentication.")
            .into_response(),
    }
}

/// Form-encodes one value as RFC 6749 Appendix B says.
pub fn form_encode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn invalid_client() -> Reply {
    Reply::oauth_error(401, "invalid_client", "Client authentication failed")
}

fn bad_request(description: &str) -> Reply {
    Reply::oauth_error(400, "invalid_request", description)
}

/// Decodes an HTTP Basic header the RFC 6749 §2.3.1 way: base64, split at the first `:`, then
/// form-decode each half.
pub fn decode_basic(header: &str) -> Option<(String, String)> {
    let encoded = header.strip_prefix("Basic ")?;
    let decoded =
        String::from_utf8(base64::engine::general_purpose::STANDARD.decode(encoded).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let decode = |part: &str| {
        form_urlencoded::parse(format!("v={part}").as_bytes()).next().map(|(_, v)| v.into_owned())
    };
    Some((decode(id)?, decode(secret)?))
}

fn require_form(request: &Recorded) -> Result<(), Reply> {
    match request.content_type.as_deref() {
        Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => Ok(()),
        _ => Err(bad_request("expected a form body")),
    }
}

fn require_grant_type(request: &Recorded, value: Option<String>) -> Result<(), Reply> {
    match value.as_deref() {
        Some("client_credentials") => Ok(()),
        Some(_) => {
            Err(Reply::oauth_error(400, "unsupported_grant_type", "Grant type not supported"))
        }
        None => Err(bad_request(&format!("grant_type missing from {}", request.path))),
    }
}

/// Accepts only HTTP Basic with exactly these credentials and a form body without them.
pub fn expect_basic(client_id: &str, secret: &str) -> Validator {
    let (client_id, secret) = (client_id.to_owned(), secret.to_owned());
    Box::new(move |request| {
        require_form(request)?;
        let header = request.authorization.as_deref().ok_or_else(invalid_client)?;
        if decode_basic(header) != Some((client_id.clone(), secret.clone())) {
            return Err(invalid_client());
        }
        let form = request.form();
        if form.iter().any(|(k, _)| k == "client_id" || k == "client_secret") {
            return Err(bad_request("credentials in both the header and the body"));
        }
        require_grant_type(request, request.form_value("grant_type"))
    })
}

/// Accepts only a form body with exactly these credentials and no Authorization header.
pub fn expect_post(client_id: &str, secret: &str) -> Validator {
    let (client_id, secret) = (client_id.to_owned(), secret.to_owned());
    Box::new(move |request| {
        require_form(request)?;
        if request.authorization.is_some() {
            return Err(bad_request("unexpected Authorization header"));
        }
        if request.form_value("client_id").as_deref() != Some(client_id.as_str())
            || request.form_value("client_secret").as_deref() != Some(secret.as_str())
        {
            return Err(invalid_client());
        }
        require_grant_type(request, request.form_value("grant_type"))
    })
}

/// Accepts only a JSON body with exactly these credentials and no Authorization header.
pub fn expect_json(client_id: &str, secret: &str) -> Validator {
    let (client_id, secret) = (client_id.to_owned(), secret.to_owned());
    Box::new(move |request| {
        if request.content_type.as_deref() != Some("application/json") {
            return Err(bad_request("expected a JSON body"));
        }
        if request.authorization.is_some() {
            return Err(bad_request("unexpected Authorization header"));
        }
        let body = request.json().ok_or_else(|| bad_request("body is not a JSON object"))?;
        if body.get("client_id") != Some(&json!(client_id))
            || body.get("client_secret") != Some(&json!(secret))
        {
            return Err(invalid_client());
        }
        let grant_type = body.get("grant_type").and_then(Value::as_str).map(str::to_owned);
        require_grant_type(request, grant_type)
    })
}

/// A clock on tokio's (paused) time whose wall clock moves with it, so HTTP-date `Retry-After`
/// values computed by a test are exact.
#[derive(Debug)]
pub struct PausedClock {
    base: Instant,
    base_system: SystemTime,
}

impl PausedClock {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            base: Instant::now(),
            base_system: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        })
    }
}

impl Clock for PausedClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn system_time(&self) -> SystemTime {
        self.base_system + (Instant::now() - self.base)
    }
}

/// Waits until `condition` holds, for states reached by other tasks. Sleeps a millisecond
/// between checks (virtual under paused time, which lets pending timers and I/O progress), at
/// most ten thousand times.
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("gave up waiting until {what}");
}

/// Checks that any OAuth 2.0 server, given only its token URL and credentials, works with the
/// SDK. tokenmint's own server runs the same checks.
pub mod conformance {
    use tokenmint_client::{AuthStyle, ClientConfig, SecretString, TokenClient};

    /// Fetches a token with `style` and returns it, failing the test on any error.
    pub async fn fetch_token(
        token_url: &str,
        client_id: &str,
        secret: &str,
        style: AuthStyle,
    ) -> tokenmint_client::Token {
        let config = ClientConfig::new(token_url, client_id, SecretString::new(secret))
            .unwrap()
            .auth_style(style);
        let client = TokenClient::new(config).unwrap();
        match client.token().await {
            Ok(token) => token,
            Err(e) => panic!("{style} authentication against {token_url} failed: {e}"),
        }
    }

    /// A wrong secret comes back as `invalid_client`, whatever the style.
    pub async fn wrong_secret_is_invalid_client(
        token_url: &str,
        client_id: &str,
        style: AuthStyle,
    ) {
        let config = ClientConfig::new(token_url, client_id, SecretString::new("wrong"))
            .unwrap()
            .auth_style(style);
        let client = TokenClient::new(config).unwrap();
        let error = client.token().await.expect_err("a wrong secret was accepted");
        assert_eq!(error.oauth_error(), Some("invalid_client"), "{error}");
    }
}

/// Other projects' servers, started by a script that installs them on first use and prints
/// `listening <issuer>` once they accept requests.
pub mod interop {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Child, Command, Stdio};
    use std::sync::mpsc;
    use std::time::Duration;

    /// A running server, stopped on drop.
    pub struct Peer {
        pub child: Child,
        pub issuer: String,
    }

    impl Drop for Peer {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Whether `program --version` runs.
    pub fn available(program: &str) -> bool {
        Command::new(program)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs `script` (relative to the crate) with bash after checking that `programs` are
    /// installed, and waits up to `timeout` (installation included) for its issuer; `Err` says
    /// why the server is not there. The script's stdin stays open for the server's life, so it
    /// can stop when the test does, even when the test is killed.
    pub fn start(script: &str, programs: &[&str], timeout: Duration) -> Result<Peer, String> {
        for program in programs {
            if !available(program) {
                return Err(format!("{program} is not installed"));
            }
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
        let mut child = Command::new("bash")
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(issuer) = line.strip_prefix("listening ") {
                    let _ = tx.send(issuer.trim().to_owned());
                }
            }
        });
        let mut peer = Peer { child, issuer: String::new() };
        match rx.recv_timeout(timeout) {
            Ok(issuer) => {
                peer.issuer = issuer;
                Ok(peer)
            }
            Err(_) => {
                let status = peer.child.try_wait().ok().flatten();
                Err(match status {
                    Some(status) => format!(
                        "{} exited ({status}); is the package registry reachable?",
                        script.display()
                    ),
                    None => format!("not listening after {timeout:?}"),
                })
            }
        }
    }
}
