//! `tokenmint token` and `tokenmint call` against a mock OAuth 2.0 server and API on localhost.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Value, json};

#[derive(Default)]
struct Seen {
    token_bodies: Vec<(Option<String>, String)>,
    api: Vec<(String, Option<String>, Option<String>, String)>,
    refuse_first_api_call: bool,
}

type Shared = Arc<Mutex<Seen>>;

async fn token(State(seen): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = String::from_utf8_lossy(&body).into_owned();
    let mut seen = seen.lock().unwrap();
    seen.token_bodies.push((content_type, body.clone()));
    let secret_ok =
        body.contains("client_secret=s3cret") || body.contains("\"client_secret\":\"s3cret\"");
    if !secret_ok {
        let error =
            json!({"error": "invalid_client", "error_description": "Client authentication failed"});
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let n = seen.token_bodies.len();
    axum::Json(json!({"access_token": format!("tok-{n}"), "token_type": "Bearer", "expires_in": 600, "scope": "api:read"}))
        .into_response()
}

async fn api(
    State(seen): State<Shared>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let mut seen = seen.lock().unwrap();
    seen.api.push((
        method.to_string(),
        header("authorization"),
        header("x-user-id"),
        String::from_utf8_lossy(&body).into_owned(),
    ));
    if seen.refuse_first_api_call && seen.api.len() == 1 {
        let problem = json!({"title": "Unauthorized", "detail": "expired"});
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/problem+json")],
            problem.to_string(),
        )
            .into_response();
    }
    if uri.path().ends_with("/missing") {
        return (StatusCode::NOT_FOUND, "{\"error\":\"not found\"}").into_response();
    }
    (StatusCode::OK, [("x-api", "yes")], "{\"balance\":42}").into_response()
}

async fn start(seen: Shared) -> String {
    let router = Router::new()
        .route("/oauth/token", post(token))
        .route("/api/{*rest}", any(api))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn tokenmint(args: Vec<String>, secret: Option<&str>) -> Output {
    let secret = secret.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tokenmint"));
        command
            .args(&args)
            .env_remove("TOKENMINT_CLIENT_SECRET")
            .env_remove("TOKENMINT_CLIENT_SECRET_FILE");
        if let Some(secret) = secret {
            command.env("TOKENMINT_CLIENT_SECRET", secret);
        }
        command.output().unwrap()
    })
    .await
    .unwrap()
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_prints_the_access_token_alone() {
    let seen = Shared::default();
    let base = start(seen.clone()).await;
    let output = tokenmint(args(&base, &["token"]), Some("s3cret")).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "tok-1\n");
    let (content_type, body) = seen.lock().unwrap().token_bodies[0].clone();
    assert_eq!(content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(body, "grant_type=client_credentials&client_id=cli-client&client_secret=s3cret");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_output_json_prints_the_whole_response() {
    let base = start(Shared::default()).await;
    let output = tokenmint(args(&base, &["token", "--output", "json"]), Some("s3cret")).await;
    assert!(output.status.success(), "{output:?}");
    let response: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        response,
        json!({"access_token": "tok-1", "token_type": "Bearer", "expires_in": 600, "scope": "api:read"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_failure_prints_the_servers_error_and_exits_non_zero() {
    let base = start(Shared::default()).await;
    let output = tokenmint(args(&base, &["token"]), Some("wrong")).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid_client") && stderr.contains("Client authentication failed"),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_takes_the_secret_from_a_file_and_never_from_a_flag() {
    let seen = Shared::default();
    let base = start(seen.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, "s3cret\n").unwrap();
    let file = path.to_str().unwrap();
    let output = tokenmint(args(&base, &["token", "--client-secret-file", file]), None).await;
    assert!(output.status.success(), "{output:?}");

    let output = tokenmint(args(&base, &["token", "--client-secret", "s3cret"]), None).await;
    assert!(!output.status.success());
    let output = tokenmint(args(&base, &["token"]), None).await;
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("TOKENMINT_CLIENT_SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_speaks_the_json_dialect_without_grant_type() {
    let seen = Shared::default();
    let base = start(seen.clone()).await;
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
    let output = tokenmint(args(&base, &extra), Some("s3cret")).await;
    assert!(output.status.success(), "{output:?}");
    let (content_type, body) = seen.lock().unwrap().token_bodies[0].clone();
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body,
        json!({"client_id": "cli-client", "client_secret": "s3cret", "audience": "https://api.example", "scope": "a b"})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_sends_method_headers_and_body_and_prints_the_response() {
    let seen = Shared::default();
    let base = start(seen.clone()).await;
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
    let output = tokenmint(args(&base, &extra), Some("s3cret")).await;
    assert!(output.status.success(), "{output:?}");
    let out = stdout(&output);
    assert!(out.starts_with("HTTP/1.1 200 OK\n"), "{out}");
    assert!(out.contains("\nx-api: yes\n"), "{out}");
    assert!(out.ends_with("\n\n{\"balance\":42}"), "{out}");
    let api = seen.lock().unwrap().api.clone();
    assert_eq!(
        api,
        [(
            "PUT".to_owned(),
            Some("Bearer tok-1".to_owned()),
            Some("user-12345".to_owned()),
            "{\"amount\":1000}".to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_fetches_a_new_token_and_retries_once_on_401() {
    let seen = Shared::default();
    seen.lock().unwrap().refuse_first_api_call = true;
    let base = start(seen.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some("s3cret")).await;
    assert!(output.status.success(), "{output:?}");
    assert_eq!(stdout(&output), "{\"balance\":42}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.token_bodies.len(), 2);
    let used: Vec<_> = seen.api.iter().map(|a| a.1.clone().unwrap()).collect();
    assert_eq!(used, ["Bearer tok-1", "Bearer tok-2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_prints_an_error_body_and_exits_22_on_a_4xx() {
    let base = start(Shared::default()).await;
    let url = format!("{base}/api/missing");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some("s3cret")).await;
    assert_eq!(output.status.code(), Some(22), "{output:?}");
    assert_eq!(stdout(&output), "{\"error\":\"not found\"}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_reports_a_token_failure_without_calling_the_api() {
    let seen = Shared::default();
    let base = start(seen.clone()).await;
    let url = format!("{base}/api/cash");
    let output = tokenmint(args(&base, &["call", url.as_str()]), Some("wrong")).await;
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("invalid_client"));
    assert!(seen.lock().unwrap().api.is_empty());
}
