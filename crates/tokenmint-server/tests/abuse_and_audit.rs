//! Brute-force protection, signed alert webhooks, the audit trail and the metrics endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::routing::post;
use common::{Options, spawn_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenmint_server::Config;

const WEBHOOK_SECRET: &str = "whsec_0123456789abcdef";

type Received = Arc<Mutex<Vec<(String, String)>>>;

/// A webhook receiver on port 0 that keeps each request's signature header and body.
async fn webhook_receiver() -> (String, Received) {
    let received: Received = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let store = store.clone();
            async move {
                let sig = headers
                    .get("tokenmint-signature")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                store.lock().unwrap().push((sig, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

fn verify_signature(header: &str, body: &str) -> bool {
    let mut t = "";
    let mut v1 = "";
    for part in header.split(',') {
        if let Some(x) = part.strip_prefix("t=") {
            t = x;
        }
        if let Some(x) = part.strip_prefix("v1=") {
            v1 = x;
        }
    }
    let expected = tokenmint_core::crypto::hmac_sha256_hex(
        WEBHOOK_SECRET.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    );
    !t.is_empty() && expected == v1
}

static HOOK_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn with_alerts(c: &mut Config) {
    c.alerts.webhooks =
        vec![tokenmint_server::alerts::WebhookTarget::parse(HOOK_URL.get().unwrap()).unwrap()];
    // The receiver is on loopback, which deliveries refuse unless told otherwise.
    c.alerts.allow_private_targets = true;
    c.alerts.secret = Some(tokenmint_server::alerts::WebhookSecret(WEBHOOK_SECRET.to_owned()));
    c.alerts.retry_base = Duration::from_millis(20);
    c.brute_force.failures_per_ip = 6;
    c.brute_force.failures_per_client = 3;
    c.brute_force.block_for = Duration::from_secs(120);
}

async fn eventually<F: Fn() -> bool>(what: &str, f: F) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_brute_force_run_blocks_the_source_and_a_signed_webhook_reports_it() {
    let (url, received) = webhook_receiver().await;
    HOOK_URL.set(url).unwrap();
    let app = spawn_with(Options { tweak: with_alerts, ..Options::default() }).await;
    let (id, secret) = app.sandbox_reader().await;
    let mut statuses = vec![];
    for i in 0..8 {
        let res = app.token_for(&id, &format!("tms_guess_{i}"), &[]).await;
        statuses.push(res.status().as_u16());
    }
    // Three failures are allowed per client_id; the fourth crosses the threshold and the failing
    // source is blocked for this client.
    assert_eq!(&statuses[..4], &[401, 401, 401, 401]);
    assert!(statuses[4..].iter().all(|s| *s == 429), "{statuses:?}");
    let res = app.token_for(&id, &secret, &[]).await;
    assert_eq!(res.status(), 429, "even the right secret is refused from a blocked source");
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=120).contains(&retry));
    // The credential itself is not locked: the block expires and the partner gets its token.
    app.clock.advance(121);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 200);

    eventually("the webhook", || !received.lock().unwrap().is_empty()).await;
    let (sig, body) = received.lock().unwrap()[0].clone();
    assert!(verify_signature(&sig, &body), "the signature verifies with the shared secret");
    assert!(!verify_signature(&sig, &body.replace("auth", "AUTH")));
    let alert: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(alert["kind"], "auth_failures");
    assert_eq!(alert["client_id"], id.as_str());
    assert!(!body.contains(&secret));

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let deliveries: Value = app.admin(Method::GET, "/alerts", None).await.json().await.unwrap();
        let list = deliveries.as_array().unwrap();
        if list.iter().any(|d| d["delivered"] == true && d["kind"] == "auth_failures") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the delivery is not recorded: {deliveries}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_right_secret_of_a_deactivated_credential_raises_an_alert() {
    let app = spawn_with(Options::default()).await;
    let (id, secret) = app.sandbox_reader().await;
    app.admin(Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 401);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let events: Value =
            app.admin(Method::GET, "/audit?kind=alert.fired", None).await.json().await.unwrap();
        if events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["reason"] == "deactivated_credential_used")
        {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no alert: {events}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn the_audit_trail_holds_a_scripted_session_in_order_without_secrets_and_survives_a_restart()
{
    let app = spawn_with(Options::default()).await;
    let (id, secret) = app.sandbox_reader().await;
    app.admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"name": "renamed"}))).await;
    let rotated: Value = app
        .admin(
            Method::POST,
            &format!("/credentials/{id}/secrets"),
            Some(json!({"overlap_seconds": 0})),
        )
        .await
        .json()
        .await
        .unwrap();
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 401);
    app.token(&id, &new_secret).await;
    app.admin(Method::POST, &format!("/credentials/{id}/revoke-tokens"), None).await;
    app.admin(Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    app.admin(Method::POST, "/keys/rotate", Some(json!({}))).await;

    let app = app.restart(Options::default()).await;
    let page: Value =
        app.admin(Method::GET, &format!("/audit?client_id={id}"), None).await.json().await.unwrap();
    let kinds: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "credential.created",
            "credential.updated",
            "credential.secret_rotated",
            "alert.fired",
            "token.refused",
            "credential.tokens_revoked",
            "credential.deactivated",
        ]
    );
    let all: Value = app.admin(Method::GET, "/audit?limit=1000", None).await.json().await.unwrap();
    let text = all.to_string();
    assert!(
        !text.contains(&secret) && !text.contains(&new_secret) && !text.contains(&app.admin_secret)
    );
    let items = all["items"].as_array().unwrap();
    assert!(items.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    let refused = items.iter().find(|e| e["kind"] == "token.refused").unwrap();
    assert_eq!(refused["reason"], "secret_expired");
    assert_eq!(refused["source_ip"], "127.0.0.1");
    assert!(
        items.iter().any(|e| e["kind"] == "key.rotated"
            && e["actor"].as_str().unwrap().starts_with("credential:"))
    );
    let created = items
        .iter()
        .find(|e| e["kind"] == "credential.created" && e["client_id"] == id.as_str())
        .unwrap();
    assert_eq!(created["actor"], format!("credential:{}", app.admin_id));
    // Paging by cursor walks the same trail.
    let first: Value = app.admin(Method::GET, "/audit?limit=2", None).await.json().await.unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .admin(Method::GET, &format!("/audit?limit=2&cursor={cursor}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["seq"], items[2]["seq"]);
}

#[tokio::test]
async fn token_issuances_are_counted_per_day_not_written_one_by_one() {
    let mut app = spawn_with(Options::default()).await;
    let (id, secret) = app.sandbox_reader().await;
    for _ in 0..5 {
        app.token(&id, &secret).await;
    }
    app.stop().await;
    let app = app.restart(Options::default()).await;
    let activity: Value = app
        .admin(Method::GET, &format!("/credentials/{id}/activity?days=7"), None)
        .await
        .json()
        .await
        .unwrap();
    let days = activity["tokens_per_day"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days.last().unwrap()["tokens"], 5);
    assert_eq!(days.iter().map(|d| d["tokens"].as_i64().unwrap()).sum::<i64>(), 5);
}

#[tokio::test]
async fn the_metrics_endpoint_parses_as_prometheus_text() {
    let app = spawn_with(Options::default()).await;
    let (id, secret) = app.sandbox_reader().await;
    app.token(&id, &secret).await;
    app.token_for(&id, "tms_bad", &[]).await;
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let value = |name: &str, label: Option<(&str, &str)>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => f64::NAN,
            })
    };
    // One for the admin that created the credential, one for the partner.
    assert_eq!(value("tokenmint_tokens_issued_total", Some(("alg", "ES256"))), Some(2.0));
    assert_eq!(
        value("tokenmint_token_requests_refused_total", Some(("reason", "wrong_secret"))),
        Some(1.0)
    );
    assert!(scrape.samples.iter().any(|s| s.metric.starts_with("tokenmint_token_request_seconds")));
    assert!(value("tokenmint_signing_key_age_seconds", None).is_some());
    assert!(value("tokenmint_audit_write_lag_seconds", None).is_some());
    // No label carries a client_id by default.
    assert!(!text.contains(&id));
}
