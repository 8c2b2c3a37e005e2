//! Retries at the token endpoint: backoff, `Retry-After`, and which errors are final. Waits are
//! measured on tokio's paused clock, so the assertions are about virtual time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MockServer, PausedClock, Reply};
use tokenmint_client::{
    ClientConfig, Clock, CountingMetrics, Error, MetricEvent, RetryPolicy, SecretString,
    TokenClient,
};
use tokio::time::Instant;

fn client(
    server: &MockServer,
    clock: Arc<PausedClock>,
    metrics: &Arc<CountingMetrics>,
) -> TokenClient {
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret")).unwrap();
    TokenClient::builder(config).clock(clock).metrics(metrics.clone()).build().unwrap()
}

fn slow_down(retry_after: String) -> Reply {
    Reply::oauth_error(429, "slow_down", "too many token requests")
        .header("retry-after", retry_after)
}

#[tokio::test(start_paused = true)]
async fn retry_after_in_seconds_is_waited_out_exactly() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, PausedClock::new(), &metrics);
    server.state.script_token(slow_down("7".into()));

    let started = Instant::now();
    let token = client.token().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(token.access_token().secret(), "tok-1");
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7_100),
        "{waited:?}"
    );
    let requests = server.state.token_requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].at - requests[0].at >= Duration::from_secs(7));
    assert_eq!(metrics.get(MetricEvent::TokenEndpointRetry), 1);
}

#[tokio::test(start_paused = true)]
async fn retry_after_as_an_http_date_is_waited_out_exactly() {
    let server = MockServer::builder().start().await;
    let clock = PausedClock::new();
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, clock.clone(), &metrics);
    let date = httpdate::fmt_http_date(clock.system_time() + Duration::from_secs(12));
    server.state.script_token(slow_down(date));

    let started = Instant::now();
    client.token().await.unwrap();
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(12) && waited < Duration::from_millis(12_100),
        "{waited:?}"
    );
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_cap_ends_the_retries_at_once() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, PausedClock::new(), &metrics);
    server.state.script_token(Reply::new(429, serde_json::json!({})).header("retry-after", "3600"));

    let started = Instant::now();
    let error = client.token().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1));
    match error {
        Error::Status { status, retry_after, attempts, .. } => {
            assert_eq!(status.as_u16(), 429);
            assert_eq!(retry_after, Some(Duration::from_secs(3600)));
            assert_eq!(attempts, 1);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(server.state.token_count(), 1);

    // Callers are held off for the longest accepted wait (60 s), not the hour asked for.
    tokio::time::advance(Duration::from_secs(59)).await;
    client.token().await.unwrap_err();
    assert_eq!(server.state.token_count(), 1);
    assert_eq!(metrics.get(MetricEvent::NegativeCacheHit), 1);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-1");
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn server_errors_are_retried_with_bounded_jittered_backoff() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, PausedClock::new(), &metrics);
    server.state.script_token(Reply::new(500, serde_json::json!({})));
    server.state.script_token(Reply::new(502, serde_json::json!({})));
    server.state.script_token(Reply::oauth_error(503, "temporarily_unavailable", "busy"));

    let started = Instant::now();
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-1");
    // Full jitter: at most 200 ms + 400 ms + 800 ms in all.
    assert!(started.elapsed() <= Duration::from_millis(1_400), "{:?}", started.elapsed());
    assert_eq!(server.state.token_count(), 4);
    assert_eq!(metrics.get(MetricEvent::TokenEndpointRetry), 3);
}

#[tokio::test(start_paused = true)]
async fn retries_stop_after_max_attempts_with_the_last_error() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, PausedClock::new(), &metrics);
    for _ in 0..10 {
        server
            .state
            .script_token(Reply::new(503, serde_json::json!({})).header("retry-after", "1"));
    }
    let error = client.token().await.unwrap_err();
    assert!(matches!(error, Error::Status { attempts: 4, .. }), "{error:?}");
    assert_eq!(server.state.token_count(), 4);
}

#[tokio::test]
async fn invalid_client_is_not_retried_and_carries_the_servers_words() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, PausedClock::new(), &metrics);
    server.state.script_token(Reply::oauth_error(
        401,
        "invalid_client",
        "Client authentication failed",
    ));

    let error = client.token().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(401));
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert!(
        matches!(&error, Error::OAuth { description: Some(d), .. } if d == "Client authentication failed")
    );
    assert_eq!(
        error.to_string(),
        "token endpoint answered 401 Unauthorized invalid_client: Client authentication failed"
    );
    assert_eq!(server.state.token_count(), 1);
    assert_eq!(metrics.get(MetricEvent::TokenEndpointRetry), 0);
}

#[tokio::test]
async fn other_client_errors_are_not_retried_either() {
    for (status, code) in
        [(400, "invalid_scope"), (400, "unsupported_grant_type"), (403, "access_denied")]
    {
        let server = MockServer::builder().start().await;
        let client = client(&server, PausedClock::new(), &Arc::new(CountingMetrics::new()));
        server.state.script_token(Reply::oauth_error(status, code, "no"));
        let error = client.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some(code));
        assert_eq!(server.state.token_count(), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn connection_errors_are_retried_then_reported() {
    // A port that was free a moment ago: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let metrics = Arc::new(CountingMetrics::new());
    let config =
        ClientConfig::new(&format!("http://{addr}/oauth/token"), "id", SecretString::new("secret"))
            .unwrap()
            .retry_policy(RetryPolicy { max_attempts: 3, ..RetryPolicy::default() });
    let client = TokenClient::builder(config).metrics(metrics.clone()).build().unwrap();
    let error = client.token().await.unwrap_err();
    assert!(matches!(error, Error::Transport { attempts: 3, .. }), "{error:?}");
    assert_eq!(metrics.get(MetricEvent::TokenRequest), 3);
    assert_eq!(metrics.get(MetricEvent::TokenEndpointRetry), 2);
}

#[tokio::test(start_paused = true)]
async fn a_hanging_token_endpoint_times_out_and_is_retried() {
    let server = MockServer::builder().start().await;
    server.state.close_gate();
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
        .unwrap()
        .request_timeout(Duration::from_secs(5))
        .retry_policy(RetryPolicy { max_attempts: 2, ..RetryPolicy::default() });
    let client = TokenClient::new(config).unwrap();
    let started = Instant::now();
    let error = client.token().await.unwrap_err();
    assert!(matches!(error, Error::Transport { attempts: 2, .. }), "{error:?}");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert_eq!(server.state.token_count(), 2);
}
