//! A client secret sent as the client_id (the two fields swapped, by any means a client can
//! send them) is never written down: not in the audit trail, an alert, a webhook body, a log
//! line, the metrics or the answer. Each record keeps it redacted (`tms_` and the four
//! characters the credential's secret hint shows), and the answer says what went wrong.
//!
//! The test installs the process-wide log subscriber, so it is the only test in this binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::routing::post;
use base64::Engine;
use common::{LogCapture, Options, spawn_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokenmint_server::Config;

static HOOK_URL: OnceLock<String> = OnceLock::new();

fn with_alerts(c: &mut Config) {
    c.alerts.webhooks =
        vec![tokenmint_server::alerts::WebhookTarget::parse(HOOK_URL.get().unwrap()).unwrap()];
    c.alerts.allow_private_targets = true;
    c.alerts.retry_base = Duration::from_millis(20);
    // Every form of the secret raises the repeated-failures alert; the source is never blocked.
    c.brute_force.failures_per_client = 1;
    c.brute_force.failures_per_ip = 10_000;
    c.brute_force.block_for = Duration::from_millis(1);
}

async fn webhook_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let store = received.clone();
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let store = store.clone();
            async move {
                store.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

#[tokio::test]
async fn a_secret_sent_as_the_client_id_is_recorded_redacted_by_every_auth_style() {
    let capture = LogCapture::install();
    let (url, webhooks) = webhook_receiver().await;
    HOOK_URL.set(url).unwrap();
    let app = spawn_with(Options { tweak: with_alerts, ..Options::default() }).await;
    let (id, secret) = app.sandbox_reader().await;

    // The secret as sent by mistake: whole, padded, mistyped, cut short, without its prefix.
    let mut mistyped = secret.clone().into_bytes();
    mistyped[30] = if mistyped[30] == b'a' { b'b' } else { b'a' };
    let forms = [
        secret.clone(),
        format!(" {secret}\n"),
        String::from_utf8(mistyped).unwrap(),
        secret[..40].to_owned(),
        secret[4..].to_owned(),
    ];
    // What must appear nowhere: any part of a secret beyond what its hint shows.
    let pieces = [&secret[8..18], &secret[20..30], &secret[40..]];

    let token = app.url("/oauth/token");
    let grant = ("grant_type", "client_credentials");
    let mut answers = Vec::new();
    for form in &forms {
        let f = form.as_str();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!(
            "{}:{id}",
            form_urlencoded::byte_serialize(f.as_bytes()).collect::<String>()
        ));
        let requests = [
            // Form post, the fields swapped.
            app.http.post(&token).form(&[grant, ("client_id", f), ("client_secret", &id)]),
            // Basic, swapped.
            app.http.post(&token).header("authorization", format!("Basic {basic}")).form(&[grant]),
            // JSON, swapped.
            app.http.post(&token).json(
                &json!({"grant_type": "client_credentials", "client_id": f, "client_secret": id}),
            ),
            // The secret alone, in the client_id field (a malformed request).
            app.http.post(&token).form(&[grant, ("client_id", f)]),
            // A client assertion naming the secret as its client.
            app.http.post(&token).form(&[
                grant,
                ("client_id", f),
                ("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"),
                ("client_assertion", "e30.e30.sig"),
            ]),
            // Introspection and revocation authenticate the same way.
            app.http.post(app.url("/oauth/introspect")).form(&[
                ("token", "x"),
                ("client_id", f),
                ("client_secret", &id),
            ]),
            app.http.post(app.url("/oauth/revoke")).form(&[
                ("token", "x"),
                ("client_id", f),
                ("client_secret", &id),
            ]),
        ];
        for (style, req) in requests.into_iter().enumerate() {
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            assert!(matches!(status, 400 | 401 | 429), "style {style}, {form:?}: {status} {body}");
            answers.push(body);
        }
    }
    // Every refusal is audited, each naming the redacted secret.
    let expected = forms.len() * 7;
    let start = Instant::now();
    let audit = loop {
        let page: Value = app
            .admin(Method::GET, "/audit?kind=token.refused&limit=1000", None)
            .await
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap().clone();
        if items.len() >= expected {
            break items;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{} audit records", items.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    let hint = &secret[..8];
    for item in &audit {
        let c = item["client_id"].as_str().unwrap();
        assert!(c.ends_with("…[redacted]"), "audit client_id {c:?}");
        assert!(c.starts_with(hint) || c.starts_with(&secret[4..8]), "audit client_id {c:?}");
    }

    // The repeated-failures alerts, delivered and as the admin API lists them.
    let start = Instant::now();
    while webhooks.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "no alert delivered");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let alerts = app.admin(Method::GET, "/alerts?limit=500", None).await.text().await.unwrap();
    assert!(alerts.contains("[redacted]"), "{alerts}");
    let all_audit = app.admin(Method::GET, "/audit?limit=1000", None).await.text().await.unwrap();
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();

    let mut app = app;
    app.stop().await;
    let logs = capture.text() + &capture.json();
    assert!(logs.contains("security alert"), "the alerts were logged");
    let hooks = webhooks.lock().unwrap().join("\n");
    let places = [
        ("the audit trail", all_audit.as_str()),
        ("the alerts", alerts.as_str()),
        ("a webhook body", hooks.as_str()),
        ("the metrics", metrics.as_str()),
        ("the logs", logs.as_str()),
        ("an answer", &answers.join("\n")),
    ];
    for (place, text) in places {
        for piece in pieces {
            assert!(!text.contains(piece), "a part of the secret is in {place}");
        }
    }

    // The swapped form post is told what happened.
    let first: Value = serde_json::from_str(&answers[0]).unwrap();
    assert_eq!(first["error"], "invalid_client");
    let said = first["error_description"].as_str().unwrap();
    assert!(said.contains("looks like a client secret"), "{said}");
    // RFC 6749 §5.2: printable ASCII but `"` and `\`.
    assert!(said.chars().all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'), "{said}");
}
