//! Untrusted identifiers cannot forge log lines: for any client_id a caller sends (generated,
//! plus the classic attacks), the logs in text and JSON format hold exactly one line per event
//! and no raw control character, and alert summaries, webhook bodies and audit records carry
//! none either. Also: a webhook URL's credentials and query never reach a log line.
//!
//! The test installs the process-wide log subscriber, so it is the only test in this binary.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::Router;
use axum::routing::post;
use base64::Engine;
use common::{LogBuffer, Options, spawn_with};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use serde_json::Value;
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tokenmint_core::PresentedClientId;
use tokenmint_server::alerts::WebhookTarget;
use tokenmint_server::logging::{LogFormat, layer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Counts events, to compare with the number of lines each format wrote.
struct CountEvents(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountEvents {
    fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A character no log line, summary or record may carry raw.
fn forbidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}')
        || matches!(c, '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}

/// The keys of a text log line's `key=value` fields: each `=` outside quotes, read the way a
/// logfmt reader does (a `\` inside quotes escapes the next character).
fn keys(line: &str) -> Vec<&str> {
    let (mut keys, mut quoted, mut escaped, mut start) = (Vec::new(), false, false, 0);
    for (i, c) in line.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ' ' if !quoted => start = i + 1,
            '=' if !quoted => keys.push(&line[start..i]),
            _ => {}
        }
    }
    keys
}

/// The classic attacks, then generated ids mixing control characters, separators, escapes and
/// printable text.
fn client_ids() -> Vec<String> {
    let mut ids: Vec<String> = [
        "tmc_x\n2026-01-01T00:00:00.000000Z  INFO tokenmint: admin signed in",
        "tmc_x\r\nX-Injected: yes",
        "\u{1b}[2J\u{1b}[31mALERT\u{1b}[0m",
        "tmc_\u{202e}txt.exe",
        "a\u{2028}b\u{2029}c\u{85}d",
        "\"},{\"kind\":\"forged\"",
        "tmc_x forged=1",
        "x\" forged=\"1",
        "x\\\" forged=1",
        "",
        "\\u{a}",
    ]
    .map(String::from)
    .to_vec();
    let strategy = proptest::string::string_regex(
        "([\\x00-\\x1f\\x7f\\u{80}-\\u{9f}\\u{2028}\\u{2029}\\u{202a}-\\u{202e}\\u{feff}]|[ -~]|\\PC){0,160}",
    )
    .unwrap();
    let mut runner = TestRunner::deterministic();
    for _ in 0..56 {
        ids.push(strategy.new_tree(&mut runner).unwrap().current());
    }
    ids
}

static HOOKS: OnceLock<(String, String)> = OnceLock::new();

#[tokio::test]
async fn no_client_id_forges_a_log_line_or_carries_control_characters_anywhere() {
    let (text_log, json_log, events) = (LogBuffer::default(), LogBuffer::default(), Arc::default());
    let (t, j) = (text_log.clone(), json_log.clone());
    // Every event of tokenmint's own code and of the request layer, at every level. (Other
    // crates' events, such as a database driver's multi-line SQL, carry no request text.)
    let ours = tracing_subscriber::filter::Targets::new()
        .with_target("tokenmint_server", tracing::Level::TRACE)
        .with_target("tokenmint_core", tracing::Level::TRACE)
        .with_target("tower_http", tracing::Level::TRACE);
    tracing_subscriber::registry()
        .with(ours)
        // The two formats as `serve --log-format` writes them.
        .with(layer(LogFormat::Text, move || t.clone(), false))
        .with(layer(LogFormat::Json, move || j.clone(), false))
        .with(CountEvents(Arc::clone(&events)))
        .init();

    // A receiver that keeps every body, behind a URL with secrets in it; and a dead one.
    let bodies: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = bodies.clone();
    let router = Router::new().route(
        "/hook",
        post(move |body: String| {
            keep.lock().unwrap().push(body);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    HOOKS
        .set((
            format!("http://ops:pw-LEAKED@{addr}/hook?token=Q-LEAKED"),
            format!("http://ops:pw-LEAKED@{dead}/hook?token=Q-LEAKED"),
        ))
        .unwrap();
    let mut app = spawn_with(Options {
        tweak: |c| {
            let (live, dead) = HOOKS.get().unwrap();
            c.alerts.webhooks =
                vec![WebhookTarget::parse(live).unwrap(), WebhookTarget::parse(dead).unwrap()];
            c.alerts.allow_private_targets = true;
            c.alerts.retry_base = Duration::from_millis(5);
            c.alerts.max_attempts = 2;
            c.brute_force.failures_per_client = 1;
            c.brute_force.failures_per_ip = 1_000_000;
        },
        ..Options::default()
    })
    .await;

    let ids = client_ids();
    for id in &ids {
        // Form body, JSON body and HTTP Basic: every way a client_id arrives.
        let form = app
            .form(
                "/oauth/token",
                &[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", "x")],
            )
            .await;
        assert!(matches!(form.status().as_u16(), 400 | 401 | 429), "{id:?}: {}", form.status());
        let json = serde_json::json!({"grant_type": "client_credentials", "client_id": id, "client_secret": "x"});
        let res = app.http.post(app.url("/oauth/token")).json(&json).send().await.unwrap();
        assert!(matches!(res.status().as_u16(), 400 | 401 | 429), "{id:?}: {}", res.status());
        let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:x", enc(id)));
        let res = app
            .http
            .post(app.url("/oauth/token"))
            .header("authorization", format!("Basic {basic}"))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        assert!(matches!(res.status().as_u16(), 400 | 401 | 429), "{id:?}: {}", res.status());
    }

    // One alert per distinct client_id (each failed at least twice); wait for their delivery.
    let expected: HashSet<String> =
        ids.iter().map(|i| PresentedClientId::parse(i).as_str().to_owned()).collect();
    let start = Instant::now();
    while bodies.lock().unwrap().len() < expected.len() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{} of {} alerts delivered",
            bodies.lock().unwrap().len(),
            expected.len()
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // Webhook bodies: parsed, no field holds a forbidden character.
    for body in bodies.lock().unwrap().iter() {
        let v: Value = serde_json::from_str(body).unwrap();
        for field in ["summary", "client_id"] {
            let s = v[field].as_str().unwrap_or("");
            assert!(!s.chars().any(forbidden), "{field} of a webhook body: {s:?}");
        }
        // The summary names the client_id as the client_id field does: escaped once (its
        // start, since a long one is cut shorter in the summary).
        if let Some(id) = v["client_id"].as_str() {
            let summary = v["summary"].as_str().unwrap();
            let start: String = id.chars().take(60).collect();
            assert!(summary.contains(&start), "{summary:?} does not name {id:?} as escaped once");
        }
    }
    // Alert deliveries and the audit trail, as the admin API shows them.
    let start = Instant::now();
    loop {
        let res =
            app.admin(reqwest::Method::GET, "/audit?kind=token.refused&limit=500", None).await;
        let audit: Value = res.json().await.unwrap();
        let items = audit["items"].as_array().unwrap();
        if items.len() >= ids.len() * 2 {
            for item in items {
                let c = item["client_id"].as_str().unwrap_or("");
                assert!(!c.chars().any(forbidden), "audit client_id {c:?}");
                // Exactly the escaped, bounded form of one of the ids sent.
                assert!(expected.contains(c), "audit client_id {c:?} is none of those sent");
            }
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "audit has {} records", items.len());
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let alerts = app.admin(reqwest::Method::GET, "/alerts?limit=500", None).await;
    let alerts: Value = alerts.json().await.unwrap();
    for d in alerts.as_array().unwrap() {
        let payload: Value = serde_json::from_str(d["payload"].as_str().unwrap()).unwrap();
        assert!(!payload["summary"].as_str().unwrap().chars().any(forbidden));
        let target = d["target"].as_str().unwrap();
        assert!(!target.contains("LEAKED"), "{target}");
    }
    // Let the dead webhook's failures be logged.
    let start = Instant::now();
    while !text_log.text().contains("alert delivery failed") {
        assert!(start.elapsed() < Duration::from_secs(20), "no failed delivery logged");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }

    // The logs, once the server has stopped: one line per event in each format, nothing raw,
    // no URL secret.
    app.stop().await;
    let (text, json) = (text_log.text(), json_log.text());
    let (n_text, n_json) = (text.lines().count(), json.lines().count());
    let n = events.load(Ordering::SeqCst);
    assert!(n_text == n && n_json == n, "text lines {n_text}, JSON lines {n_json}, events {n}");
    for line in text.lines() {
        assert!(!line.chars().any(forbidden), "a text log line carries a raw character: {line:?}");
        assert!(!keys(line).contains(&"forged"), "a client_id added a field: {line:?}");
        assert!(
            line.len() > 20 && line.as_bytes()[4] == b'-' && line.as_bytes()[10] == b'T',
            "a text log line that is not an event's: {line:?}"
        );
    }
    for line in json.lines() {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert!(v["level"].is_string(), "{line}");
        assert!(!line.chars().any(forbidden), "{line:?}");
    }
    assert!(text.contains("security alert"));
    assert!(!text.contains("LEAKED") && !json.contains("LEAKED"), "a webhook secret was logged");
}
