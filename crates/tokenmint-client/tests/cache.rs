//! The token cache: single flight, refresh ahead of expiry, per-caller deadlines, the negative
//! cache and invalidation. Time-dependent tests run on tokio's paused clock.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{MockServer, Recorded, Reply, eventually, expect_post};
use serde_json::json;
use tokenmint_client::{
    BearerAuth, ClientConfig, CountingMetrics, Error, MetricEvent, RetryPolicy, SecretSource,
    SecretString, TokenClient,
};
use tokio::time::advance;

fn client(server: &MockServer, metrics: &Arc<CountingMetrics>) -> TokenClient {
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret")).unwrap();
    TokenClient::builder(config).metrics(metrics.clone()).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_sends_one_request_for_a_thousand_cold_callers() {
    let server = MockServer::builder().start().await;
    server.state.close_gate();
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, &metrics);

    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.token().await })
        })
        .collect();
    // Every caller has found the cache cold and is waiting before the server answers.
    eventually("all callers wait", || metrics.get(MetricEvent::CacheMiss) == 1000).await;
    server.state.open_gate();

    for caller in callers {
        assert_eq!(caller.await.unwrap().unwrap().access_token().secret(), "tok-1");
    }
    assert_eq!(server.state.token_count(), 1);
    assert_eq!(metrics.get(MetricEvent::TokenRequest), 1);
}

#[tokio::test(start_paused = true)]
async fn the_api_never_sees_an_expired_token_across_many_lifetimes() {
    let server =
        MockServer::builder().expires_in(Some(json!(600)), Duration::from_secs(600)).start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(client(&server, &metrics)))
        .build();

    // Half an hour of requests every 7 seconds: three lifetimes, with calls landing at every
    // point of the refresh window.
    for _ in 0..260 {
        let response = api.get(server.url("/api/eligibility")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        advance(Duration::from_secs(7)).await;
    }
    assert_eq!(server.state.expired_seen.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(metrics.get(MetricEvent::ApiUnauthorizedRetry), 0);
    let fetched = server.state.token_count();
    assert!((4..=5).contains(&fetched), "{fetched} tokens for 1820 s of 600 s tokens");
    assert!(metrics.get(MetricEvent::RefreshStarted) >= 3);
}

#[tokio::test(start_paused = true)]
async fn callers_keep_the_old_token_while_a_refresh_runs() {
    let server =
        MockServer::builder().expires_in(Some(json!(600)), Duration::from_secs(600)).start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, &metrics);
    let first = client.token().await.unwrap();

    // Into the refresh window (60 s before expiry); the refresh request hangs at the server.
    server.state.close_gate();
    advance(Duration::from_secs(545)).await;
    for _ in 0..100 {
        assert_eq!(client.token().await.unwrap().access_token(), first.access_token());
    }
    eventually("the refresh reaches the server", || server.state.token_count() == 2).await;
    assert_eq!(metrics.get(MetricEvent::RefreshStarted), 1);

    server.state.open_gate();
    eventually("the refreshed token is stored", || {
        client.cached_token().is_some_and(|t| t.access_token().secret() == "tok-2")
    })
    .await;
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_still_valid_token_survives_a_failed_refresh() {
    let server =
        MockServer::builder().expires_in(Some(json!(600)), Duration::from_secs(600)).start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
        .unwrap()
        .retry_policy(RetryPolicy { max_attempts: 2, ..RetryPolicy::default() });
    let client = TokenClient::builder(config).metrics(metrics.clone()).build().unwrap();
    let first = client.token().await.unwrap();

    for _ in 0..2 {
        server.state.script_token(Reply::oauth_error(
            503,
            "temporarily_unavailable",
            "maintenance",
        ));
    }
    advance(Duration::from_secs(550)).await;
    assert_eq!(client.token().await.unwrap().access_token(), first.access_token());
    eventually("the refresh fails", || metrics.get(MetricEvent::TokenFetchFailed) == 1).await;

    // Still valid, still served, and the failure is not retried on every call.
    for _ in 0..10 {
        assert_eq!(client.token().await.unwrap().access_token(), first.access_token());
    }
    assert_eq!(server.state.token_count(), 3);

    // Once the negative cache lapses a new refresh succeeds.
    advance(Duration::from_secs(6)).await;
    assert_eq!(client.token().await.unwrap().access_token(), first.access_token());
    eventually("the second refresh succeeds", || metrics.get(MetricEvent::TokenFetched) == 2).await;
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-2");
}

#[tokio::test(start_paused = true)]
async fn a_caller_giving_up_does_not_cancel_the_fetch_for_others() {
    let server = MockServer::builder().start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let client = client(&server, &metrics);
    server.state.close_gate();

    let patient = tokio::spawn({
        let client = client.clone();
        async move { client.token_with_deadline(&Default::default(), Duration::from_secs(60)).await }
    });
    let hasty = client.token_with_deadline(&Default::default(), Duration::from_secs(2)).await;
    assert!(matches!(hasty, Err(Error::Timeout(d)) if d == Duration::from_secs(2)));

    server.state.open_gate();
    assert_eq!(patient.await.unwrap().unwrap().access_token().secret(), "tok-1");
    assert_eq!(server.state.token_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failing_server_is_not_hammered_by_every_caller() {
    let server = MockServer::builder().validator(expect_post("id", "right")).start().await;
    let metrics = Arc::new(CountingMetrics::new());
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("wrong")).unwrap();
    let client = TokenClient::builder(config).metrics(metrics.clone()).build().unwrap();

    for _ in 0..50 {
        let error = client.token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"));
    }
    assert_eq!(server.state.token_count(), 1);
    assert_eq!(metrics.get(MetricEvent::NegativeCacheHit), 49);

    advance(Duration::from_secs(6)).await;
    client.token().await.unwrap_err();
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test]
async fn invalidate_drops_only_the_token_that_was_refused() {
    let server = MockServer::builder().start().await;
    let client = client(&server, &Arc::new(CountingMetrics::new()));
    let first = client.token().await.unwrap();
    client.invalidate(&first);
    let second = client.token().await.unwrap();
    assert_eq!(second.access_token().secret(), "tok-2");

    // A late report about the first token must not throw away the second.
    client.invalidate(&first);
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-2");
    assert_eq!(server.state.token_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn expires_in_as_a_string_or_missing_is_tolerated() {
    for (expires_in, lifetime) in [
        (Some(json!("600")), Duration::from_secs(600)),
        (None, Duration::from_secs(300)),
        (Some(json!(60)), Duration::from_secs(60)),
    ] {
        let server = MockServer::builder().expires_in(expires_in.clone(), lifetime).start().await;
        let client = client(&server, &Arc::new(CountingMetrics::new()));
        let token = client.token().await.unwrap();
        let until_expiry = token.expires_at() - token.obtained_at();
        let until_refresh = token.refresh_at() - token.obtained_at();
        // A few seconds of leeway before the server's expiry, refresh a minute (at most half
        // the lifetime) before it.
        assert!(until_expiry < lifetime && until_expiry >= lifetime * 9 / 10, "{expires_in:?}");
        let margin = Duration::from_secs(60).min(lifetime / 2);
        assert_eq!(until_refresh, lifetime - margin, "{expires_in:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rotated_secret_file_is_picked_up_without_a_restart() {
    let accepted = Arc::new(Mutex::new("old-secret".to_owned()));
    let server = MockServer::builder()
        .expires_in(Some(json!(600)), Duration::from_secs(600))
        .validator({
            let accepted = accepted.clone();
            move |request: &Recorded| expect_post("id", &accepted.lock().unwrap())(request)
        })
        .start()
        .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client_secret");
    std::fs::write(&path, "old-secret\n").unwrap();
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretSource::file(&path))
        .unwrap()
        .secret_recheck_interval(Duration::from_secs(3600));
    let client = TokenClient::new(config).unwrap();
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-1");

    // The secret is rotated: the server takes only the new one, the file holds it, and the
    // client's periodic recheck is an hour away. The invalid_client answer makes it look now.
    std::fs::write(&path, "new-secret-rotated\n").unwrap();
    *accepted.lock().unwrap() = "new-secret-rotated".to_owned();
    advance(Duration::from_secs(601)).await;
    assert_eq!(client.token().await.unwrap().access_token().secret(), "tok-2");
    let requests = server.state.token_requests.lock().unwrap().clone();
    let secrets: Vec<_> = requests.iter().map(|r| r.form_value("client_secret").unwrap()).collect();
    assert_eq!(secrets, ["old-secret", "old-secret", "new-secret-rotated"]);
}
