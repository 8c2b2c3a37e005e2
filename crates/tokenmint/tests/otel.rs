//! `serve --otlp-endpoint`: request spans reach an OpenTelemetry collector over OTLP/HTTP, with
//! the request id that the response and the logs carry, and without any secret or token.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::body::Bytes;
use common::{Server, free_port};
use serde_json::Value;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

/// A collector that keeps the body of every `POST /v1/traces`.
async fn collector() -> (String, Arc<Mutex<Vec<Bytes>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&bodies);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: Bytes| {
            let kept = Arc::clone(&kept);
            async move {
                kept.lock().unwrap().push(body);
                ""
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, bodies)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_the_collector_with_their_request_id_and_no_secret() {
    let (collector_url, bodies) = collector().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database"])
        .arg(format!("sqlite://{}", dir.path().join("t.db").display()))
        .args(["--otlp-endpoint", &collector_url])
        .env("TOKENMINT_LOG", "info")
        // Export every 100 ms instead of every 5 s, so the test need not wait.
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env_remove("TOKENMINT_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server { child, base: format!("http://127.0.0.1:{port}") };
    let creds = dir.path().join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !creds.exists() || std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let admin: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    let (id, secret) =
        (admin["client_id"].as_str().unwrap(), admin["client_secret"].as_str().unwrap());

    let http = reqwest::Client::new();
    let token_url = format!("{}/oauth/token", server.base);
    let issued = http
        .post(&token_url)
        .header("x-request-id", "otel-check-issued")
        .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(issued.headers()["x-request-id"], "otel-check-issued");
    let token = issued.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned();
    let wrong_secret = "tms_ThisIsNotTheSecretButMustNotBeExportedEither0";
    let refused = http
        .post(&token_url)
        .header("x-request-id", "otel-check-refused")
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", id),
            ("client_secret", wrong_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let seen = bodies.lock().unwrap().concat();
        if contains(&seen, "otel-check-issued") && contains(&seen, "otel-check-refused") {
            assert!(contains(&seen, "/oauth/token"), "the span names the path");
            assert!(contains(&seen, "tokenmint"), "the resource names the service");
            for leaked in [secret, wrong_secret, token.as_str()] {
                assert!(!contains(&seen, leaked), "a secret or token was exported");
            }
            break;
        }
        assert!(Instant::now() < deadline, "no span with both request ids reached the collector");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(server);
}

#[test]
fn a_collector_url_that_is_not_http_is_refused_by_name_from_the_flag_and_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--otlp-endpoint", "collector:4318"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--otlp-endpoint") && stderr.contains("http://"), "{stderr}");

    let config = dir.path().join("tokenmint.toml");
    std::fs::write(&config, "otlp_endpoint = \"ftp://collector\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--config"])
        .arg(&config)
        .env_remove("TOKENMINT_OTLP_ENDPOINT")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("otlp_endpoint") && stderr.contains("ftp://collector"), "{stderr}");
    assert!(!dir.path().join("t.db").exists(), "nothing is created before the settings are valid");
}
