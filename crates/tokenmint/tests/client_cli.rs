//! `tokenmint token` and `tokenmint call` against a mock OAuth 2.0 server and API on localhost,
//! including servers that misbehave: failing answers to requests that must not be repeated,
//! stalled bodies, endless bodies, echoed secrets, terminal escape sequences, foreign token
//! types. Every test runs the real binary against a real HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::VecDeque;
use std::io::Read;
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use base64::Engine as _;
use serde_json::{Value, json};

const SECRET: &str = "s3cret";

/// One request as the mock saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    headers: HeaderMap,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

/// A canned answer: status, headers, body.
#[derive(Clone)]
struct Reply(u16, Vec<(&'static str, Vec<u8>)>, Vec<u8>);

impl Reply {
    fn status(status: u16) -> Self {
        Self(status, vec![], b"{}".to_vec())
    }

    fn header(mut self, name: &'static str, value: impl Into<Vec<u8>>) -> Self {
        self.1.push((name, value.into()));
        self
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.2 = body.into();
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (StatusCode::from_u16(self.0).unwrap(), self.2).into_response();
        for (name, value) in self.1 {
            response.headers_mut().append(name, HeaderValue::from_bytes(&value).unwrap());
        }
        response
    }
}

#[derive(Default)]
struct Mock {
    tokens: Vec<Seen>,
    api: Vec<Seen>,
    token_script: VecDeque<Reply>,
    api_script: VecDeque<Reply>,
    /// Answers token requests by quoting them back (and refusing them).
    echo: bool,
    token_type: Option<&'static str>,
}

type Shared = Arc<Mutex<Mock>>;

fn seen(method: &axum::http::Method, headers: &HeaderMap, body: &Bytes) -> Seen {
    Seen {
        method: method.to_string(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(body).into_owned(),
    }
}

async fn token(
    State(mock): State<Shared>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = seen(&method, &headers, &body);
    let mut mock = mock.lock().unwrap();
    mock.tokens.push(request.clone());
    if let Some(reply) = mock.token_script.pop_front() {
        return reply.into_response();
    }
    if mock.echo {
        let quoted = format!(
            "cannot parse {} (Authorization: {})",
            request.body,
            request.header("authorization").unwrap_or_default()
        );
        let error = json!({"error": "invalid_request", "error_description": quoted});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    }
    let basic = request.header("authorization").is_some_and(|a| {
        a == format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("cli-client:{SECRET}"))
        )
    });
    let secret_ok = basic
        || request.body.contains(&format!("client_secret={SECRET}"))
        || request.body.contains(&format!("\"client_secret\":\"{SECRET}\""));
    if !secret_ok {
        let error =
            json!({"error": "invalid_client", "error_description": "Client authentication failed"});
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let n = mock.tokens.len();
    let token_type = mock.token_type.unwrap_or("Bearer");
    axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": token_type, "expires_in": 600, "scope": "api:read"}))
        .into_response()
}

async fn api(
    State(mock): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = seen(&method, &headers, &body);
    let mut mock = mock.lock().unwrap();
    mock.api.push(request.clone());
    if let Some(reply) = mock.api_script.pop_front() {
        return reply.into_response();
    }
    if request.header("authorization").is_none_or(|a| !a.starts_with("Bearer tok-")) {
        return Reply::status(401).into_response();
    }
    if uri.path().ends_with("/missing") {
        return (StatusCode::NOT_FOUND, "{\"error\":\"not found\"}").into_response();
    }
    (StatusCode::OK, [("x-api", "yes")], "{\"balance\":42}").into_response()
}

async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn start(mock: Shared) -> String {
    let router = Router::new()
        .route("/oauth/token", post(token))
        .route("/api/{*rest}", any(api))
        .with_state(mock);
    serve(router).await
}

fn run(args: Vec<String>, secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
    command.args(&args).env_remove("TOKENMINT_CLIENT_SECRET_FILE").env_remove("TOKENMINT_ISSUER");
    command.env_remove("TOKENMINT_TOKEN_URL").env_remove("TOKENMINT_CLIENT_SECRET");
    if let Some(secret) = secret {
        command.env("TOKENMINT_CLIENT_SECRET", secret);
    }
    command.output().unwrap()
}

async fn tokenmint(args: Vec<String>, secret: Option<&str>) -> Output {
    let secret = secret.map(str::to_owned);
    tokio::task::spawn_blocking(move || run(args, secret.as_deref())).await.unwrap()
}

/// `extra` with the token URL and client id inserted after the subcommand.
fn args(base: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
    let insert_at = args.iter().position(|a| a == "token" || a == "call").map_or(0, |i| i + 1);
    let client = [
        "--token-url".to_owned(),
        format!("{base}/oauth/token"),
        "--client-id".to_owned(),
        "cli-client".to_owned(),
    ];
    for (i, arg) in client.into_iter().enumerate() {
        args.insert(insert_at + i, arg);
    }
    args
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_the_access_token_alone() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "tok-1\n");
    let request = mock.lock().unwrap().tokens[0].clone();
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        request.body,
        "grant_type=client_credentials&client_id=cli-client&client_secret=s3cret"
    );
}

/// The admin commands' TOKENMINT_OUTPUT (table, json, env) set in a shell does not break
/// `token`, whose formats are other ones (TOKENMINT_TOKEN_OUTPUT).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_commands_output_setting_leaves_token_alone() {
    let base = start(Shared::default()).await;
    for admin_format in ["table", "json", "env"] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
        command.args(args(&base, &["token"])).env("TOKENMINT_CLIENT_SECRET", SECRET);
        command.env("TOKENMINT_OUTPUT", admin_format).env_remove("TOKENMINT_TOKEN_OUTPUT");
        let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
        assert!(output.status.success(), "{admin_format}: {output:?}");
        let printed = stdout(&output);
        assert!(printed.starts_with("tok-") && printed.lines().count() == 1, "{admin_format}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_output_json_prints_the_whole_response() {
    let base = start(Shared::default()).await;
    let output = tokenmint(args(&base, &["token", "--output", "json"]), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        response,
        json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 600, "scope": "api:read"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_credentials_exit_3_with_the_servers_error_and_a_hint() {
    let base = start(Shared::default()).await;
    let output = tokenmint(args(&base, &["token"]), Some("wrong")).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(output.stdout.is_empty());
    let stderr = stderr(&output);
    assert!(
        stderr.contains("invalid_client") && stderr.contains("Client authentication failed"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: check --client-id"), "{stderr}");
    assert!(!stderr.contains("wrong"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_takes_the_secret_from_a_file_and_never_from_a_flag() {
    let base = start(Shared::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    let file = path.to_str().unwrap();
    let output = tokenmint(args(&base, &["token", "--client-secret-file", file]), None).await;
    assert!(output.status.success(), "{output:?}");

    let output = tokenmint(args(&base, &["token", "--client-secret", "s3cret"]), None).await;
    assert_eq!(output.status.code(), Some(2));
    let output = tokenmint(args(&base, &["token"]), None).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("TOKENMINT_CLIENT_SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_speaks_the_json_dialect_without_grant_type() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let extra = [
        "token",
        "--auth",
        "json",
        "--no-grant-type",
        "--audience",
        "https://api.example",
        "--scope",
        "b a",
    ];
    let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    let request = mock.lock().unwrap().tokens[0].clone();
    assert_eq!(request.header("content-type").as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(
        body,
        json!({"client_id": "cli-client", "client_secret": "s3cret", "audience": "https://api.example", "scope": "a b"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_write_a_space_as_percent_20() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let output =
        tokenmint(args(&base, &["token", "--auth", "basic"]), Some("with space+plus")).await;
    assert_eq!(output.status.code(), Some(3), "the mock knows another secret: {output:?}");
    let header = mock.lock().unwrap().tokens[0].header("authorization").unwrap();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(header.strip_prefix("Basic ").unwrap())
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), "cli-client:with%20space%2Bplus");
}

/// A token endpoint with RFC 8414 metadata at its issuer.
async fn start_with_metadata(mock: Shared) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}/tenant", listener.local_addr().unwrap());
    let metadata = json!({
        "issuer": issuer,
        "token_endpoint": format!("{issuer}/connect/token"),
        "grant_types_supported": ["client_credentials"],
    });
    let router = Router::new()
        .route(
            "/.well-known/oauth-authorization-server/tenant",
            get(move || async move { axum::Json(metadata) }),
        )
        .route("/tenant/connect/token", post(token))
        .route("/api/{*rest}", any(api))
        .with_state(mock);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    issuer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_discovery_and_resource_indicators_reach_the_token_endpoint() {
    let mock = Shared::default();
    let issuer = start_with_metadata(mock.clone()).await;
    let url = issuer.replace("/tenant", "/api/orders");
    for command in [
        vec!["token", "--issuer", &issuer, "--client-id", "cli-client"],
        vec!["call", "--issuer", &issuer, "--client-id", "cli-client", &url],
    ] {
        let mut command: Vec<String> = command.into_iter().map(str::to_owned).collect();
        let at = 1;
        for resource in ["https://b.example/", "https://a.example/"] {
            command.insert(at, resource.to_owned());
            command.insert(at, "--resource".to_owned());
        }
        let output = tokenmint(command, Some(SECRET)).await;
        assert!(output.status.success(), "{output:?}");
    }
    let tokens = mock.lock().unwrap().tokens.clone();
    assert_eq!(tokens.len(), 2);
    for request in tokens {
        let resources: Vec<String> = form_urlencoded::parse(request.body.as_bytes())
            .filter(|(k, _)| k == "resource")
            .map(|(_, v)| v.into_owned())
            .collect();
        assert_eq!(resources, ["https://a.example/", "https://b.example/"], "{}", request.body);
    }

    // Metadata naming another issuer is refused as malformed, with a hint at --issuer.
    let output = tokenmint(
        vec![
            "token".into(),
            "--issuer".into(),
            format!("{issuer}/"),
            "--client-id".into(),
            "x".into(),
        ],
        Some(SECRET),
    )
    .await;
    assert!(output.status.success(), "a trailing slash names the same issuer: {output:?}");
    let other = issuer.replace("/tenant", "/other");
    let output = tokenmint(
        vec!["token".into(), "--issuer".into(), other, "--client-id".into(), "x".into()],
        Some(SECRET),
    )
    .await;
    assert_eq!(output.status.code(), Some(4), "no metadata there: {output:?}");
    assert!(stderr(&output).contains("discovery"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_url_or_issuer_flag_beats_the_other_from_the_environment() {
    let mock = Shared::default();
    let issuer = start_with_metadata(mock.clone()).await;
    let token_url = format!("{issuer}/connect/token");
    let unreachable = "http://127.0.0.1:9";
    let with_env = |args: Vec<&str>, env: (&'static str, String)| {
        let args: Vec<String> = args.into_iter().map(str::to_owned).collect();
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_tokenmint"))
                .args(args)
                .env_remove("TOKENMINT_ISSUER")
                .env_remove("TOKENMINT_TOKEN_URL")
                .env("TOKENMINT_CLIENT_SECRET", SECRET)
                .env(env.0, env.1)
                .output()
                .unwrap()
        })
    };
    // TOKENMINT_ISSUER is the server's and the verifier's setting too, often set in the shell.
    let output = with_env(
        vec!["token", "--token-url", &token_url, "--client-id", "cli-client"],
        ("TOKENMINT_ISSUER", unreachable.to_owned()),
    )
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output = with_env(
        vec!["token", "--issuer", &issuer, "--client-id", "cli-client"],
        ("TOKENMINT_TOKEN_URL", format!("{unreachable}/token")),
    )
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    let output =
        with_env(vec!["token", "--client-id", "cli-client"], ("TOKENMINT_ISSUER", issuer.clone()))
            .await
            .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(mock.lock().unwrap().tokens.len(), 3);

    // Both as flags, or neither anywhere: a usage error that says what to give.
    let both = vec!["token", "--token-url", &token_url, "--issuer", &issuer, "--client-id", "x"];
    let output = tokenmint(both.into_iter().map(str::to_owned).collect(), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(stderr(&output).contains("cannot be used together"), "{}", stderr(&output));
    let neither = vec!["token", "--client-id", "x"];
    let output = tokenmint(neither.into_iter().map(str::to_owned).collect(), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr(&output).contains("give --token-url URL or --issuer URL"),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_sends_method_headers_and_body_and_prints_the_response() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/orders");
    let extra = [
        "call",
        "-X",
        "PUT",
        "-H",
        "x-user-id: user-12345",
        "-d",
        "{\"amount\":1000}",
        "-i",
        url.as_str(),
    ];
    let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(out.starts_with("HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("\nx-api: yes\n"), "{out}");
    assert!(out.ends_with("\n\n{\"balance\":42}"), "{out}");
    let api = mock.lock().unwrap().api.clone();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].method, "PUT");
    assert_eq!(api[0].header("authorization").as_deref(), Some("Bearer tok-1"));
    assert_eq!(api[0].header("x-user-id").as_deref(), Some("user-12345"));
    assert_eq!(api[0].body, "{\"amount\":1000}");
    // A JSON body without a Content-Type goes as JSON; a form as a form; one given stays.
    assert_eq!(api[0].header("content-type").as_deref(), Some("application/json"));
    for (data, header, sent) in [
        ("a=1&b=2", None, "application/x-www-form-urlencoded"),
        (
            "{\"a\":1}",
            Some("Content-Type: application/merge-patch+json"),
            "application/merge-patch+json",
        ),
    ] {
        let mock = Shared::default();
        let base = start(mock.clone()).await;
        let mut extra = vec!["call", "-X", "PUT", "-d", data];
        if let Some(h) = header {
            extra.extend(["-H", h]);
        }
        let url = format!("{base}/api/orders");
        extra.push(url.as_str());
        let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
        assert!(output.status.success(), "{output:?}");
        let api = mock.lock().unwrap().api.clone();
        assert_eq!(api[0].header("content-type").as_deref(), Some(sent), "{data}");
    }
}

/// A redirect is printed as answered and named on stderr, as curl does without `-L`; with `-L`
/// it is followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_follows_a_redirect_only_when_told_to() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let moved = format!("{base}/api/moved");
    mock.lock().unwrap().api_script.push_back(Reply::status(302).header("location", moved.clone()));
    let url = format!("{base}/api/orders");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        stderr(&output)
            .contains(&format!("not following the redirect (302 Found) to {moved}: add -L")),
        "{}",
        stderr(&output)
    );
    assert_eq!(mock.lock().unwrap().api.len(), 1, "not followed");

    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let moved = format!("{base}/api/moved");
    mock.lock().unwrap().api_script.push_back(Reply::status(302).header("location", moved.clone()));
    let url = format!("{base}/api/orders");
    let output = tokenmint(args(&base, &["call", "-L", url.as_str()]), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "{\"balance\":42}");
    let api = mock.lock().unwrap().api.clone();
    assert_eq!(api.len(), 2, "followed");

    // A loop is said as one, with curl's status for it, not as a server out of reach.
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/orders");
    for _ in 0..12 {
        mock.lock()
            .unwrap()
            .api_script
            .push_back(Reply::status(302).header("location", url.clone()));
    }
    let output = tokenmint(args(&base, &["call", "-L", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(47), "{output:?}");
    let said = stderr(&output);
    assert!(said.contains("redirected more than 10 times"), "{said}");
    assert!(!said.contains("could not be reached"), "{said}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_fetches_a_new_token_and_retries_once_on_401() {
    let mock = Shared::default();
    mock.lock().unwrap().api_script.push_back(Reply::status(401));
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", "-X", "POST", url.as_str()]), Some(SECRET)).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "{\"balance\":42}");
    {
        let mock = mock.lock().unwrap();
        assert_eq!(mock.tokens.len(), 2);
        let used: Vec<_> = mock.api.iter().map(|a| a.header("authorization").unwrap()).collect();
        assert_eq!(used, ["Bearer tok-1", "Bearer tok-2"]);
    }

    // Refused again with the new token: said, not retried a third time.
    let mock = Shared::default();
    for _ in 0..3 {
        mock.lock().unwrap().api_script.push_back(Reply::status(401));
    }
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(22), "{output:?}");
    assert!(stderr(&output).contains("again to a freshly fetched one"), "{}", stderr(&output));
    assert_eq!(mock.lock().unwrap().api.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_answered_501_or_503_is_sent_exactly_once_and_the_reason_is_said() {
    // 501 answers the same every time: sent once whatever the method, and no key is suggested.
    for method in ["POST", "PUT"] {
        let mock = Shared::default();
        mock.lock().unwrap().api_script.push_back(Reply::status(501).body("no such thing"));
        let base = start(mock.clone()).await;
        let url = format!("{base}/api/orders");
        let extra = ["call", "-X", method, "-d", "{\"order\":1}", url.as_str()];
        let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
        assert_eq!(output.status.code(), Some(22), "{method}: {output:?}");
        assert_eq!(mock.lock().unwrap().api.len(), 1, "a {method} answered 501 was sent again");
        assert!(!stderr(&output).contains("--idempotency-key"), "{}", stderr(&output));
    }
    for status in [503, 429, 500] {
        let mock = Shared::default();
        mock.lock()
            .unwrap()
            .api_script
            .push_back(Reply::status(status).header("retry-after", "0").body("busy"));
        let base = start(mock.clone()).await;
        let url = format!("{base}/api/orders");
        let extra = ["call", "-X", "POST", "-d", "{\"order\":1}", url.as_str()];
        let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
        assert_eq!(output.status.code(), Some(22), "{status}: {output:?}");
        assert_eq!(stdout(&output), "busy");
        assert_eq!(mock.lock().unwrap().api.len(), 1, "a POST answered {status} was sent again");
        let stderr = stderr(&output);
        assert!(
            stderr.contains("not retrying POST") && stderr.contains("--idempotency-key"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_requests_and_requests_with_an_idempotency_key_are_retried() {
    let cases: [(&[&str], &str); 4] = [
        (&["-X", "GET"], "GET"),
        (&["-X", "DELETE"], "DELETE"),
        (&["-X", "POST", "-d", "{}", "--idempotency-key", "auto"], "POST"),
        (&["-X", "PATCH", "-d", "{}", "-H", "Idempotency-Key: order-77"], "PATCH"),
    ];
    for (flags, method) in cases {
        let mock = Shared::default();
        mock.lock().unwrap().api_script.push_back(Reply::status(503).header("retry-after", "0"));
        let base = start(mock.clone()).await;
        let url = format!("{base}/api/orders");
        let mut extra = vec!["call"];
        extra.extend_from_slice(flags);
        extra.push(&url);
        let output = tokenmint(args(&base, &extra), Some(SECRET)).await;
        assert!(output.status.success(), "{method}: {output:?}");
        let api = mock.lock().unwrap().api.clone();
        assert_eq!(api.len(), 2, "{method}");
        assert!(api.iter().all(|r| r.method == method));
        // A repeat carries the same key, or the server could not recognise it.
        let keys: Vec<_> = api.iter().map(|r| r.header("idempotency-key")).collect();
        assert_eq!(keys[0], keys[1], "{method}");
        if flags.contains(&"auto") {
            let key = keys[0].clone().unwrap();
            let uuid = key.trim_matches('"');
            assert!(key.starts_with('"') && key.ends_with('"'), "{key}");
            assert_eq!(uuid.len(), 36, "{key}");
            assert_eq!(uuid.chars().nth(14), Some('4'), "a version 4 UUID: {key}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_after_beyond_the_cap_ends_the_call_saying_how_long_the_server_asked_for() {
    let mock = Shared::default();
    mock.lock().unwrap().api_script.push_back(Reply::status(503).header("retry-after", "3600"));
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(22), "{output:?}");
    let stderr = stderr(&output);
    assert!(stderr.contains("asked to wait 3600 s"), "{stderr}");
    assert_eq!(mock.lock().unwrap().api.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_an_error_body_and_exits_22_on_a_4xx() {
    let base = start(Shared::default()).await;
    let url = format!("{base}/api/missing");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(22), "{output:?}");
    assert_eq!(stdout(&output), "{\"error\":\"not found\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reports_a_token_failure_without_calling_the_api() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some("wrong")).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    assert!(stderr(&output).contains("invalid_client"));
    assert!(mock.lock().unwrap().api.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_failure_has_its_own_exit_status() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;

    // 4: the token endpoint answers an HTTP error that is not a refusal; the hint names the flag.
    let output = tokenmint(
        vec![
            "token".into(),
            "--token-url".into(),
            format!("{base}/nowhere"),
            "--client-id".into(),
            "x".into(),
        ],
        Some(SECRET),
    )
    .await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    assert!(stderr(&output).contains("hint: check --token-url"), "{}", stderr(&output));

    // 8: a 200 that is not a token response, and a token of another type than Bearer.
    mock.lock().unwrap().token_script.push_back(Reply::status(200).body("<html>"));
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    mock.lock().unwrap().token_type = Some("DPoP");
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    assert!(stderr(&output).contains("only Bearer tokens"), "{}", stderr(&output));
    assert!(mock.lock().unwrap().api.is_empty(), "a DPoP token was sent as a bearer token");

    // 7: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = tokenmint(args(&format!("http://{closed}"), &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    assert!(stderr(&output).contains("hint: check --token-url"), "{}", stderr(&output));
    mock.lock().unwrap().token_type = None;
    let url = format!("http://{closed}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    assert!(stderr(&output).contains("the API could not be reached"), "{}", stderr(&output));
}

/// An API that sends its headers and the first part of the body, then nothing more.
async fn start_stalling() -> String {
    let router = Router::new().route(
        "/stall",
        get(|| async {
            let first =
                futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("partial"))]);
            let body = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Body::from_stream(body)
        }),
    );
    let router = router.route("/silent", get(std::future::pending::<&'static str>));
    let mock = Shared::default();
    let router = router.route("/oauth/token", post(token)).with_state(mock);
    serve(router).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_or_a_silent_server_ends_the_call_with_exit_28() {
    let base = start_stalling().await;
    for (path, message) in
        [("/stall", "the response body stalled"), ("/silent", "did not answer in time")]
    {
        let url = format!("{base}{path}");
        let started = std::time::Instant::now();
        let output =
            tokenmint(args(&base, &["call", "--timeout", "2s", url.as_str()]), Some(SECRET)).await;
        assert_eq!(output.status.code(), Some(28), "{path}: {output:?}");
        assert!(stderr(&output).contains(message), "{path}: {}", stderr(&output));
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        if path == "/stall" {
            assert_eq!(stdout(&output), "partial", "what arrived is printed");
        } else {
            assert!(stderr(&output).contains("--timeout 2s"), "{}", stderr(&output));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_accepts_the_connection_ends_with_exit_28() {
    // A listening socket whose accept queue is full: the kernel drops further connection
    // attempts, as a firewall that drops packets does, instead of refusing them.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let attempt = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        );
        match attempt.await {
            Ok(Ok(stream)) => fillers.push(stream),
            _ => break,
        }
    }
    let base = format!("http://{addr}");
    let output = tokenmint(args(&base, &["token", "--connect-timeout", "1s"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(28), "{output:?}");
    assert!(stderr(&output).contains("--connect-timeout 1s"), "{}", stderr(&output));
    drop(listener);
}

/// An API whose body is `size` bytes in 1 MiB chunks followed by "END", which it sends only
/// once `release` is notified.
async fn start_streaming(size: usize, release: Arc<tokio::sync::Notify>) -> String {
    let router = Router::new().route(
        "/big",
        get(move || {
            let release = release.clone();
            async move {
                let chunk = Bytes::from(vec![b'x'; 1 << 20]);
                let chunks = futures_util::stream::iter(
                    (0..size / (1 << 20)).map(move |_| Ok::<_, std::io::Error>(chunk.clone())),
                );
                let end = futures_util::stream::once(async move {
                    release.notified().await;
                    Ok(Bytes::from("END"))
                });
                Body::from_stream(futures_util::StreamExt::chain(chunks, end))
            }
        }),
    );
    let router = router.route("/oauth/token", post(token)).with_state(Shared::default());
    serve(router).await
}

/// The peak resident memory of a process, from `/proc/PID/status`.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_body_streams_through_in_bounded_memory() {
    const SIZE: usize = 200 << 20;
    let release = Arc::new(tokio::sync::Notify::new());
    let base = start_streaming(SIZE, release.clone()).await;
    let url = format!("{base}/big");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tokenmint"))
        .args(args(&base, &["call", url.as_str()]))
        .env("TOKENMINT_CLIENT_SECRET", SECRET)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut buffer = vec![0u8; 1 << 16];
        let mut total = 0usize;
        // Everything but the end has arrived and the process is still running, waiting for it.
        while total < SIZE {
            let n = stdout.read(&mut buffer).unwrap();
            assert!(n > 0, "the body ended early, after {total} bytes");
            total += n;
        }
        let peak = peak_rss_kib(pid);
        release.notify_one();
        let mut rest = Vec::new();
        stdout.read_to_end(&mut rest).unwrap();
        (peak, total + rest.len())
    });
    // A program that buffers the body prints nothing until the end, which the server holds
    // back: give up then rather than wait for ever.
    let Ok(read) = tokio::time::timeout(std::time::Duration::from_secs(120), reader).await else {
        let _ = child.kill();
        panic!("no body within 120 s: it is buffered, not streamed");
    };
    let (peak, total) = read.unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(total, SIZE + 3);
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB while streaming {SIZE} bytes");
}

/// Text a hostile server puts where the user will read it: an OSC 52 clipboard write, a forged
/// log line, an 8-bit CSI and a right-to-left override.
const HOSTILE: &str =
    "bad\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\r\n2024-01-01 INFO forged line\u{9b}31m\u{202e}x";

fn assert_no_control_characters(text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|c| (c.is_control() && *c != '\n') || matches!(c, '\u{202a}'..='\u{202e}'))
        .collect();
    assert!(bad.is_empty(), "{bad:?} in {text:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_text_reaches_the_terminal_with_its_control_characters_made_visible() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;

    // An error_description on stderr.
    let error = json!({"error": "invalid_scope", "error_description": HOSTILE}).to_string();
    mock.lock().unwrap().token_script.push_back(Reply::status(400).body(error));
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(3));
    let stderr = stderr(&output);
    assert_no_control_characters(&stderr);
    assert!(stderr.contains("\\u{1b}]52;c;") && stderr.contains("\\r\\n2024"), "{stderr}");
    assert!(!stderr.lines().any(|l| l.starts_with("2024-01-01")), "a forged line: {stderr}");

    // A body quoted in a retry log line.
    for _ in 0..4 {
        mock.lock().unwrap().token_script.push_back(Reply::status(502).body(HOSTILE));
    }
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = self::stderr(&output);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert_no_control_characters(&stderr);

    // Headers printed by -i: an 8-bit CSI (C2 9B in UTF-8) and a tab inside a value.
    mock.lock().unwrap().api_script.push_back(
        Reply::status(200)
            .header("x-evil", "a\u{9b}2J\tb".as_bytes())
            .header("x-bidi", "\u{202e}gnp.exe".as_bytes()),
    );
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", "-i", url.as_str()]), Some(SECRET)).await;
    let out = stdout(&output);
    assert!(out.contains("x-evil: a\\u{9b}2J\\tb\n"), "{out}");
    assert!(out.contains("x-bidi: \\u{202e}gnp.exe\n"), "{out}");
    assert_no_control_characters(&out);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_is_escaped_for_a_terminal_and_left_byte_for_byte_for_a_pipe() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    // A line feed ends a line of a body, as it should; a lone carriage return may not
    // overwrite one.
    let hostile = "bad\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\rforged line\u{9b}31m\u{202e}x";
    let body = format!("{{\"note\": \"{hostile}\"}}\n");
    let url = format!("{base}/api/cash");

    mock.lock().unwrap().api_script.push_back(Reply::status(200).body(body.clone()));
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.stdout, body.as_bytes(), "a pipe gets the data as sent");

    // A terminal, through script(1)'s pseudo-terminal where it is installed.
    let script_available = Command::new("script").arg("--version").output().is_ok();
    if !script_available {
        eprintln!("SKIPPED the terminal half: script(1) is not installed");
        return;
    }
    mock.lock().unwrap().api_script.push_back(Reply::status(200).body(body.clone()));
    let command: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_tokenmint").to_owned())
        .chain(args(&base, &["call", url.as_str()]))
        .collect();
    let shell = command.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(" ");
    let output = tokio::task::spawn_blocking(move || {
        Command::new("script")
            .args(["-qec", &shell, "/dev/null"])
            .env("TOKENMINT_CLIENT_SECRET", SECRET)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{output:?}");
    // The pseudo-terminal turns each "\n" into "\r\n" on the way out.
    let shown = stdout(&output).replace("\r\n", "\n");
    assert!(
        shown.contains("bad\\u{1b}]52;c;ZWNobyBwd25lZA==\\u{7}\\rforged line\\u{9b}31m\\u{202e}x"),
        "{shown:?}"
    );
    assert_no_control_characters(&shown);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_echoing_the_request_never_gets_the_secret_printed_in_any_encoding() {
    let secret = "p@ss word+/é\"x";
    let form = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let b64 = |v: String| base64::engine::general_purpose::STANDARD.encode(v);
    let json = serde_json::to_string(secret).unwrap();
    let forms = [
        secret.to_owned(),
        form(secret),
        form(secret).replace('+', "%20"),
        json[1..json.len() - 1].to_owned(),
        b64(format!("cli-client:{secret}")),
        b64(format!("cli-client:{}", form(secret).replace('+', "%20"))),
    ];
    for style in ["basic", "post", "json"] {
        let mock = Shared::default();
        mock.lock().unwrap().echo = true;
        let base = start(mock.clone()).await;
        let output = tokenmint(args(&base, &["token", "--auth", style]), Some(secret)).await;
        assert_eq!(output.status.code(), Some(3), "{style}: {output:?}");
        let printed = format!("{}{}", stdout(&output), stderr(&output));
        assert!(printed.contains("[redacted]"), "{style}: {printed}");
        for form in &forms {
            assert!(!printed.contains(form.as_str()), "{style}: {form:?} in {printed}");
        }
    }
}

#[test]
fn token_and_call_help_share_one_layout_and_document_the_exit_statuses() {
    for command in ["token", "call"] {
        let short = run(vec![command.into(), "-h".into()], None);
        let long = run(vec![command.into(), "--help".into()], None);
        assert!(short.status.success() && long.status.success());
        assert_eq!(stdout(&short), stdout(&long), "{command} --help is laid out differently");
        let help = stdout(&long);
        assert!(!help.contains("Possible values:"), "{help}");
        for needle in ["Exit status:", "  3   ", "  7   ", "  8   ", "  22  ", "  28  "] {
            assert!(help.contains(needle), "{command} --help lacks {needle:?}");
        }
        for flag in ["--resource", "--issuer", "--timeout", "--connect-timeout"] {
            assert!(help.contains(flag), "{command} --help lacks {flag}");
        }
    }
    assert!(stdout(&run(vec!["call".into(), "--help".into()], None)).contains("--idempotency-key"));
}

/// A server that answers with something that is not HTTP was reached: exit 8 ("breaks the
/// protocol"), not 7 ("could not be reached").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_that_is_not_valid_http_ends_the_call_with_exit_8() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = start_stalling().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let answer = b"HTTP/1.1 200 OK\r\nX-Bad: a\x1b[2Jb\r\nContent-Length: 2\r\n\r\nok";
            let _ = stream.write_all(answer).await;
        }
    });
    let url = format!("http://{api}/orders");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(8), "{output:?}");
    assert!(stderr(&output).contains("not valid HTTP"), "{}", stderr(&output));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_longer_than_what_is_left_of_the_timeout_ends_at_once_saying_how_long_was_asked() {
    // A first short pause is waited for; the second would end after --timeout: given up at
    // once, with the server's wait in the message instead of a bare timeout.
    let mock = Shared::default();
    {
        let mut m = mock.lock().unwrap();
        m.token_script.push_back(Reply::status(503).header("retry-after", "1"));
        m.token_script.push_back(Reply::status(429).header("retry-after", "4"));
    }
    let base = start(mock.clone()).await;
    let started = std::time::Instant::now();
    let output = tokenmint(args(&base, &["token", "--timeout", "4s"]), Some(SECRET)).await;
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "it did not wait it out");
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = stderr(&output);
    assert!(stderr.contains("asked to wait 4 s"), "{stderr}");
    assert!(stderr.contains("more than --timeout 4s allows"), "{stderr}");
    assert_eq!(mock.lock().unwrap().tokens.len(), 2);

    // The same from the first answer, when it is an RFC 6749 error (as tokenmint's own 429).
    let slow_down = json!({"error": "slow_down", "error_description": "too many requests"});
    mock.lock()
        .unwrap()
        .token_script
        .push_back(Reply::status(429).header("retry-after", "60").body(slow_down.to_string()));
    let output = tokenmint(args(&base, &["token", "--timeout", "30s"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = self::stderr(&output);
    assert!(stderr.contains("slow_down and asked to wait 60 s"), "{stderr}");
    assert!(stderr.contains("more than --timeout 30s allows"), "{stderr}");
    assert!(stderr.contains("hint: try again in 60 s"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_token_fetch_is_reported_once_not_also_as_a_log_warning() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let refused = json!({"error": "invalid_scope", "error_description": "not for you"});
    mock.lock().unwrap().token_script.push_back(Reply::status(400).body(refused.to_string()));
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = stderr(&output);
    assert_eq!(stderr.matches("not for you").count(), 1, "{stderr}");
    assert!(!stderr.contains("WARN") && !stderr.contains("token fetch failed"), "{stderr}");

    // With retries, each retry is said as it happens, and the failure once at the end.
    for _ in 0..4 {
        mock.lock().unwrap().token_script.push_back(Reply::status(502).body("down"));
    }
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    assert_eq!(output.status.code(), Some(4), "{output:?}");
    let stderr = self::stderr(&output);
    assert_eq!(stderr.matches("retrying").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("after 4 attempt(s)").count(), 1, "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");

    // Who wants the trail gets it at debug.
    mock.lock().unwrap().token_script.push_back(Reply::status(400).body(refused.to_string()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
    command.args(args(&base, &["token"])).env("TOKENMINT_LOG", "debug");
    command.env("TOKENMINT_CLIENT_SECRET", SECRET).env_remove("TOKENMINT_CLIENT_SECRET_FILE");
    command.env_remove("TOKENMINT_ISSUER").env_remove("TOKENMINT_TOKEN_URL");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap();
    assert!(self::stderr(&output).contains("token fetch failed"), "{}", self::stderr(&output));
}

/// A malformed URL, header or method is a usage error (exit 2) found before any request: not
/// a server that could not be reached (7), nor any other failure (1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_url_header_or_method_is_a_usage_error_before_any_request() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let url = format!("{base}/api/cash");
    let cases: [(&[&str], &str); 6] = [
        (&["call", "http://[::1"], "invalid URL"),
        (&["call", "http://user:hunter2@[::1/x"], "invalid URL"),
        (&["call", "ftp://example.com/x"], "invalid URL"),
        (&["call", "-H", "X-A: b\r\nInjected: 1", url.as_str()], "invalid value of header 'X-A'"),
        (&["call", "-H", "X A: b", url.as_str()], "invalid header name"),
        (&["call", "-X", "GE T", url.as_str()], "invalid method 'GE T'"),
    ];
    for (extra, expected) in cases {
        let output = tokenmint(args(&base, extra), Some(SECRET)).await;
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(expected) && err.contains("hint: "), "{extra:?}: {err}");
        assert!(!err.contains("could not be reached") && !err.contains("hunter2"), "{err}");
        assert!(!err.contains("Injected"), "{err}");
    }
    let output = tokenmint(
        args(&base, &["call", "--idempotency-key", "a\u{1}b", url.as_str()]),
        Some(SECRET),
    )
    .await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let seen = mock.lock().unwrap();
    assert!(seen.tokens.is_empty() && seen.api.is_empty(), "a request was sent");
}

/// A valid JSON token response over the client's size limit is said to be too large.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_response_over_the_size_limit_is_said_to_be_too_large() {
    let mock = Shared::default();
    let base = start(mock.clone()).await;
    let big = json!({"access_token": "t".repeat(1024 * 1024), "token_type": "Bearer"});
    mock.lock().unwrap().token_script.push_back(Reply::status(200).body(big.to_string()));
    let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(8), "{err}");
    assert!(err.contains("the token response is larger than 262144 bytes"), "{err}");
    assert!(!err.contains("not JSON"), "{err}");
}

/// `token` refuses an access token that is not visible ASCII (RFC 6750 b64token), as `call`
/// does: printed raw it would drive the terminal or split a header built from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_refuses_an_access_token_that_cannot_be_sent_in_a_header() {
    for hostile in ["abc\u{1b}[2J\u{1b}]0;pwned\u{7}", "abc\r\nX-Evil: 1"] {
        let mock = Shared::default();
        let base = start(mock.clone()).await;
        let body = json!({"access_token": hostile, "token_type": "Bearer", "expires_in": 60});
        mock.lock().unwrap().token_script.push_back(Reply::status(200).body(body.to_string()));
        let output = tokenmint(args(&base, &["token"]), Some(SECRET)).await;
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(8), "{hostile:?}: {err}");
        assert!(err.contains("the access token cannot be sent in a header"), "{err}");
        assert!(output.stdout.is_empty(), "{:?}", stdout(&output));
        assert!(!err.contains("abc") && !err.contains('\u{1b}'), "{err:?}");
    }
}

/// A malformed --token-url or --issuer is a usage error (exit 2), as `call`'s URL is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_takes_a_malformed_token_url_or_issuer_as_a_usage_error() {
    for (flag, url) in [
        ("--token-url", "http://[::1"),
        ("--token-url", "notaurl"),
        ("--issuer", "http://[::1"),
        ("--issuer", "notaurl"),
    ] {
        let output = tokenmint(
            vec!["token".into(), flag.into(), url.into(), "--client-id".into(), "c".into()],
            Some(SECRET),
        )
        .await;
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{flag} {url}: {err}");
        assert!(
            err.contains(&format!("invalid {flag} '{url}'")) && err.contains("hint: "),
            "{err}"
        );
    }
}
