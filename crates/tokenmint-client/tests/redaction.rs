//! Captures every log line, the SDK's and its dependencies', at trace level while tokens are
//! fetched, refreshed, retried and refused, and finds neither the secret nor any token in them.
//!
//! A file of its own: the capturing subscriber is installed process-wide, so that it sees the
//! events of spawned tasks on any thread and of crates that log through `log`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{MockServer, Reply, expect_basic, expect_json, expect_post, form_encode};
use serde_json::json;
use tokenmint_client::{
    AuthStyle, BearerAuth, ClientConfig, Error, RetryPolicy, SecretString, TokenClient,
};

const CLIENT_ID: &str = "log-test-client";
const SECRET: &str = "S3CR3T:+ value/9f8e";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Buffer {
    type Writer = Buffer;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

fn config(server: &MockServer, style: AuthStyle) -> ClientConfig {
    ClientConfig::new(&server.url("/oauth/token"), CLIENT_ID, SecretString::new(SECRET))
        .unwrap()
        .auth_style(style)
        .retry_policy(RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            ..RetryPolicy::default()
        })
}

#[tokio::test(start_paused = true)]
async fn trace_logs_of_fetches_refreshes_retries_and_errors_hold_no_secret_and_no_token() {
    let buffer = Buffer::default();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(buffer.clone())
        .try_init()
        .unwrap();

    let mut debug_output = Vec::new();
    let mut issued = Vec::new();
    for (style, validator) in [
        (AuthStyle::Basic, expect_basic(CLIENT_ID, SECRET)),
        (AuthStyle::Post, expect_post(CLIENT_ID, SECRET)),
        (AuthStyle::Json, expect_json(CLIENT_ID, SECRET)),
    ] {
        let server = MockServer::builder()
            .validator(validator)
            .token_prefix("tkn-Zq81")
            .expires_in(Some(json!(600)), Duration::from_secs(600))
            .start()
            .await;
        let config = config(&server, style);
        debug_output.push(format!("{config:?}"));
        let client = TokenClient::new(config).unwrap();
        debug_output.push(format!("{client:?}"));

        // A retried fetch: 503, then 429 with Retry-After, then success.
        server.state.script_token(Reply::oauth_error(503, "temporarily_unavailable", "busy"));
        server.state.script_token(Reply::new(429, json!({})).header("retry-after", "0"));
        let token = client.token().await.unwrap();
        debug_output.push(format!("{token:?}"));

        // An authenticated call that meets a 401 and retries with a new token.
        let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(BearerAuth::new(client.clone()))
            .build();
        server.state.script_api(Reply::problem(401, "Unauthorized", "expired"));
        let response = api.get(server.url("/api/cash")).send().await.unwrap();
        assert_eq!(response.status(), 200);

        // A background refresh, started by a call in the token's refresh window.
        let before = client.token().await.unwrap();
        tokio::time::advance(Duration::from_secs(550)).await;
        client.token().await.unwrap();
        common::eventually("the refresh completes", || {
            client.cached_token().is_some_and(|t| t.access_token() != before.access_token())
        })
        .await;

        // A refusal whose description echoes the secret back.
        let refused = TokenClient::new(config_for_refusal(&server, style)).unwrap();
        server.state.script_token(Reply::oauth_error(
            401,
            "invalid_client",
            &format!("Client authentication failed for secret {SECRET}"),
        ));
        let error = refused.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
        tracing::error!(error = %error, debug = ?error, "token refused");
        debug_output.push(format!("{error:?} {error}"));

        issued.extend(server.state.issued_tokens());
    }

    // A transport error, for its message too.
    let error = unreachable_error().await;
    tracing::error!(%error, "unreachable");
    debug_output.push(format!("{error:?} {error}"));

    let logs = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    // The capture works and is thorough: the SDK's own events and the HTTP stack's are there.
    assert!(logs.contains("requesting token"), "{logs}");
    assert!(logs.contains("token refresh started"), "{logs}");
    assert!(logs.contains("retrying"), "{logs}");
    assert!(logs.contains("TRACE hyper_util"), "{logs}");
    assert!(issued.len() >= 9, "{issued:?}");

    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(CLIENT_ID),
        form_encode(SECRET)
    ));
    let mut forbidden = vec![SECRET.to_owned(), form_encode(SECRET), basic];
    forbidden.extend(issued);
    let debug_output = debug_output.join("\n");
    for needle in &forbidden {
        assert!(!logs.contains(needle.as_str()), "{needle:?} appears in the logs");
        assert!(!debug_output.contains(needle.as_str()), "{needle:?} appears in Debug output");
    }
    assert!(debug_output.contains("[redacted]"));
}

fn config_for_refusal(server: &MockServer, style: AuthStyle) -> ClientConfig {
    // A different client id gets its own cache entry and its own fetch.
    ClientConfig::new(&server.url("/oauth/token"), "refused-client", SecretString::new(SECRET))
        .unwrap()
        .auth_style(style)
}

async fn unreachable_error() -> Error {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = ClientConfig::new(
        &format!("http://{addr}/oauth/token"),
        CLIENT_ID,
        SecretString::new(SECRET),
    )
    .unwrap()
    .retry_policy(RetryPolicy::none());
    TokenClient::new(config).unwrap().token().await.unwrap_err()
}
