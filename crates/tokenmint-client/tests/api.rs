//! Authenticated API requests: the middleware, `TokenClient::send` and the blocking facade.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{MockServer, PausedClock, Reply};
use tokenmint_client::{
    ApiRetryPolicy, BearerAuth, BlockingTokenClient, ClientConfig, CountingMetrics, Error,
    MetricEvent, NotRetried, SecretString, TokenClient,
};
use tokio::time::Instant;

fn token_client(server: &MockServer, metrics: &Arc<CountingMetrics>) -> TokenClient {
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret")).unwrap();
    TokenClient::builder(config).metrics(metrics.clone()).clock(PausedClock::new()).build().unwrap()
}

fn api(client: TokenClient) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(client))
        .build()
}

fn bearers(server: &MockServer) -> Vec<String> {
    server
        .state
        .api_requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.bearer().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test]
async fn a_401_from_the_api_fetches_a_new_token_and_retries_once() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let api = api(token_client(&server, &metrics));
    server.state.script_api(Reply::problem(401, "Unauthorized", "token revoked"));

    let response = api
        .post(server.url("/api/orders"))
        .body("{\"isin\":\"US0378331005\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.state.token_count(), 2);
    assert_eq!(bearers(&server), ["tok-1", "tok-2"]);
    let requests = server.state.api_requests.lock().unwrap().clone();
    assert_eq!(requests[1].body, "{\"isin\":\"US0378331005\"}", "the body is replayed");
    assert_eq!(metrics.get(MetricEvent::ApiUnauthorizedRetry), 1);
}

#[tokio::test]
async fn an_api_that_refuses_every_token_is_not_retried_in_a_loop() {
    let server = MockServer::builder().start().await;
    let api = api(token_client(&server, &Arc::new(CountingMetrics::new())));
    for _ in 0..5 {
        server.state.script_api(Reply::problem(401, "Unauthorized", "no"));
    }
    let response = api.get(server.url("/api/cash")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(response.extensions().get::<NotRetried>(), Some(&NotRetried::RefusedTwice));
    assert_eq!(server.state.api_count(), 2);
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test]
async fn a_request_whose_body_cannot_be_replayed_is_not_retried() {
    let server = MockServer::builder().start().await;
    let api = api(token_client(&server, &Arc::new(CountingMetrics::new())));
    server.state.script_api(Reply::problem(401, "Unauthorized", "no"));
    let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes_of("streamed"))]);
    let response = api
        .post(server.url("/api/upload"))
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(server.state.api_count(), 1);
    assert_eq!(server.state.token_count(), 1);
}

fn bytes_of(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

#[tokio::test]
async fn concurrent_401s_for_the_same_token_cause_one_new_fetch() {
    let server = MockServer::builder().start().await;
    let client = token_client(&server, &Arc::new(CountingMetrics::new()));
    let api = api(client.clone());
    client.token().await.unwrap();
    server.state.revoke("tok-1");
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let api = api.clone();
            let url = server.url("/api/cash");
            tokio::spawn(async move { api.get(url).send().await.unwrap().status() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_from_the_api_is_retried_after_its_retry_after() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let api = api(token_client(&server, &metrics));
    server.state.script_api(Reply::new(429, serde_json::json!({})).header("retry-after", "3"));
    server.state.script_api(Reply::new(503, serde_json::json!({})).header("retry-after", "4"));

    let started = Instant::now();
    let response = api.get(server.url("/api/cash")).send().await.unwrap();
    let waited = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(
        waited >= Duration::from_secs(7) && waited < Duration::from_millis(7_100),
        "{waited:?}"
    );
    assert_eq!(server.state.api_count(), 3);
    assert_eq!(metrics.get(MetricEvent::ApiRateLimitedRetry), 2);
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_beyond_the_bound_returns_the_429() {
    let server = MockServer::builder().start().await;
    let client = token_client(&server, &Arc::new(CountingMetrics::new()));
    let policy = ApiRetryPolicy { max_wait: Duration::from_secs(10), ..ApiRetryPolicy::default() };
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(client).with_policy(policy))
        .build();
    server.state.script_api(Reply::new(429, serde_json::json!({})).header("retry-after", "60"));
    let started = Instant::now();
    let response = api.get(server.url("/api/cash")).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(server.state.api_count(), 1);
}

#[tokio::test]
async fn send_authenticates_and_retries_without_middleware() {
    let server = MockServer::builder().start().await;
    let client = token_client(&server, &Arc::new(CountingMetrics::new()));
    server.state.script_api(Reply::problem(401, "Unauthorized", "expired"));
    let http = reqwest::Client::new();
    let response = client.send(http.get(server.url("/api/portfolio/holdings"))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(bearers(&server), ["tok-1", "tok-2"]);
}

#[tokio::test]
async fn a_token_error_is_reported_by_the_middleware_as_the_typed_error() {
    let server = MockServer::builder().start().await;
    server.state.script_token(Reply::oauth_error(
        401,
        "invalid_client",
        "Client authentication failed",
    ));
    let api = api(token_client(&server, &Arc::new(CountingMetrics::new())));
    let error = api.get(server.url("/api/cash")).send().await.unwrap_err();
    let reqwest_middleware::Error::Middleware(error) = error else { panic!("{error:?}") };
    let error = error.downcast_ref::<Error>().unwrap();
    assert_eq!(error.oauth_error(), Some("invalid_client"));
    assert_eq!(server.state.api_count(), 0);
}

#[test]
fn the_blocking_client_fetches_caches_and_sends_without_a_runtime() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let server = runtime.block_on(MockServer::builder().start());
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret")).unwrap();
    let client = BlockingTokenClient::new(config).unwrap();

    assert_eq!(client.token().unwrap().access_token().secret(), "tok-1");
    assert_eq!(client.token().unwrap().access_token().secret(), "tok-1");
    let response = client.send(reqwest::Client::new().get(server.url("/api/cash"))).unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(runtime.block_on(async { server.state.token_count() }), 1);

    // Inside a runtime it refuses rather than deadlocking.
    let refused = runtime.block_on(async { client.token() });
    assert!(matches!(refused, Err(Error::BlockingInAsyncContext)));
    drop(client);
    drop(server);
}

/// RFC 9110 §9.2.2: only these methods may be repeated without the server's help.
const IDEMPOTENT: [&str; 6] = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];
const NOT_IDEMPOTENT: [&str; 3] = ["POST", "PATCH", "LOCK"];

fn send_retrying(
    client: &TokenClient,
    server: &MockServer,
    method: &str,
    idempotency_key: Option<&str>,
) -> impl Future<Output = reqwest::Response> {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = reqwest::Client::new().request(method, server.url("/api/orders")).body("{}");
    if let Some(key) = idempotency_key {
        request = request.header("idempotency-key", key);
    }
    let client = client.clone();
    async move { client.send(request).await.unwrap() }
}

#[tokio::test(start_paused = true)]
async fn a_failing_answer_to_a_non_idempotent_request_is_never_sent_again() {
    for method in NOT_IDEMPOTENT {
        for status in [429, 500, 501, 502, 503, 504] {
            let server = MockServer::builder().start().await;
            let config =
                ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
                    .unwrap()
                    .api_retry_policy(ApiRetryPolicy {
                        retry_server_errors: true,
                        ..ApiRetryPolicy::default()
                    });
            let client = TokenClient::builder(config).clock(PausedClock::new()).build().unwrap();
            server
                .state
                .script_api(Reply::new(status, serde_json::json!({})).header("retry-after", "1"));
            let response = send_retrying(&client, &server, method, None).await;
            assert_eq!(response.status(), status, "{method} {status}");
            assert_eq!(server.state.api_count(), 1, "{method} answered {status} was sent again");
            // A 501 would answer the same again: not a retry withheld, so nothing to say.
            let withheld = (status != 501).then_some(&NotRetried::NotIdempotent);
            assert_eq!(response.extensions().get::<NotRetried>(), withheld, "{method} {status}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn idempotent_methods_and_requests_with_an_idempotency_key_are_retried() {
    let cases = IDEMPOTENT.iter().map(|m| (*m, None)).chain(
        NOT_IDEMPOTENT.iter().map(|m| (*m, Some("\"8e03978e-40d5-43e8-bc93-6894a57f9324\""))),
    );
    for (method, key) in cases {
        let server = MockServer::builder().start().await;
        let client = token_client(&server, &Arc::new(CountingMetrics::new()));
        server.state.script_api(Reply::new(503, serde_json::json!({})).header("retry-after", "1"));
        let response = send_retrying(&client, &server, method, key).await;
        assert_eq!(response.status(), 200, "{method} {key:?}");
        assert_eq!(server.state.api_count(), 2, "{method} {key:?}");
        assert_eq!(response.extensions().get::<NotRetried>(), None);
        let requests = server.state.api_requests.lock().unwrap().clone();
        assert!(requests.iter().all(|r| r.method.as_str() == method));
    }
}

#[tokio::test(start_paused = true)]
async fn a_401_is_retried_with_a_new_token_whatever_the_method() {
    for method in NOT_IDEMPOTENT {
        let server = MockServer::builder().start().await;
        let client = token_client(&server, &Arc::new(CountingMetrics::new()));
        server.state.script_api(Reply::problem(401, "Unauthorized", "expired"));
        let response = send_retrying(&client, &server, method, None).await;
        assert_eq!(response.status(), 200, "{method}");
        assert_eq!(bearers(&server), ["tok-1", "tok-2"], "{method}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_returned_unretried_says_why() {
    let server = MockServer::builder().start().await;
    let client = token_client(&server, &Arc::new(CountingMetrics::new()));
    server.state.script_api(Reply::new(503, serde_json::json!({})).header("retry-after", "3600"));
    let response = send_retrying(&client, &server, "GET", None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.extensions().get::<NotRetried>(),
        Some(&NotRetried::WaitTooLong {
            asked: Duration::from_secs(3600),
            max_wait: ApiRetryPolicy::default().max_wait
        })
    );

    for _ in 0..3 {
        server.state.script_api(Reply::new(429, serde_json::json!({})).header("retry-after", "1"));
    }
    let response = send_retrying(&client, &server, "GET", None).await;
    assert_eq!(response.status(), 429);
    assert_eq!(
        response.extensions().get::<NotRetried>(),
        Some(&NotRetried::RetriesExhausted { retries: 2 })
    );

    // An answer the policy would never retry carries no note.
    let response = send_retrying(&client, &server, "POST", None).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.extensions().get::<NotRetried>(), None);
}
