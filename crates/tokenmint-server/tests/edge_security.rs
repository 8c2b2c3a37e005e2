//! The edge findings of the security review, each with the test that covers its class:
//! liveness and readiness, equal work for unknown and known client ids, JSON bodies with
//! repeated members, and alert webhooks (no redirects, no internal targets, no URL secrets
//! shown).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use axum::Router;
use axum::routing::post;
use common::proxy::Proxy;
use common::{Options, TestApp, spawn_app, spawn_with};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokenmint_core::MasterKey;
use tokenmint_server::alerts::{WebhookError, WebhookTarget, delivery_client, send_once};
use tokenmint_server::app::StartError;
use tokenmint_server::{Application, Config, ManualClock};
use tokenmint_store::SqlStore;
use tokenmint_store::testing::TestDatabase;

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    let res = app.http.get(app.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

// ---------------------------------------------------------------------------------------------
// Liveness and readiness

#[tokio::test]
async fn liveness_stays_up_and_readiness_says_degraded_while_the_database_is_unreachable() {
    let Some(db) = TestDatabase::create().await else { return };
    let target = db.url().trim_start_matches("postgres://").split('/').next().unwrap();
    let target = target.split('@').next_back().unwrap().to_owned();
    let pg = Proxy::start(&target).await;
    let url = db.url().replacen(&target, &pg.addr.to_string(), 1);
    let mut config = Config::new(url.clone(), MasterKey::generate());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.sync_interval = Duration::from_millis(100);
    let store = SqlStore::connect(&url, true).await.unwrap();
    let clock = Arc::new(ManualClock::new(common::real_now()));
    let mut app = Application::build_with_clock(config, Arc::new(store), clock).await.unwrap();
    let Some(tokenmint_server::app::FirstStart::Initialized(admin)) = app.take_first_start() else {
        panic!("first start")
    };
    let base = format!("http://{}", app.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until_stopped(async move {
        let _ = rx.await;
    }));
    let http = reqwest::Client::new();
    let status = |path: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let res = http.get(format!("{base}{path}")).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let token = || {
        let (http, base) = (http.clone(), base.clone());
        let (id, secret) = (admin.client_id.clone(), admin.client_secret.clone());
        async move {
            http.post(format!("{base}/oauth/token"))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &id),
                    ("client_secret", &secret),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(status("/healthz").await.0, 200);
    let (code, body) = status("/readyz").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("ready")), "{body}");
    assert_eq!(token().await, 200);

    pg.down();
    // Degraded, not unready: every instance shares the database, and a balancer that took them
    // all out would refuse the token requests their caches serve.
    let (code, body) = status("/readyz").await;
    assert_eq!((code, body["status"].as_str()), (200, Some("degraded")), "{body}");
    assert_eq!(body["database"], "unavailable");
    assert_eq!(body["cache"], "fresh");
    // Still alive, and still serving tokens from the cache: a liveness probe must not kill it.
    assert_eq!(status("/healthz").await.0, 200);
    assert_eq!(token().await, 200);

    pg.up();
    let start = Instant::now();
    while status("/readyz").await.1["status"] != "ready" {
        assert!(start.elapsed() < Duration::from_secs(15), "never ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
    drop(db);
}

#[tokio::test]
async fn readiness_goes_down_when_the_cache_is_too_stale_to_trust_while_liveness_stays_up() {
    // A staleness allowance of zero: the cache is never fresh enough to serve every request.
    let app = spawn_with(Options {
        tweak: |c| c.max_cache_staleness = Duration::ZERO,
        ..Options::default()
    })
    .await;
    let (code, body) = get(&app, "/readyz").await;
    assert_eq!(code, 503, "{body}");
    assert_eq!(body["cache"], "stale");
    assert_eq!(get(&app, "/healthz").await.0, 200);
}

#[tokio::test]
async fn readiness_and_liveness_answers_are_never_cached() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    }
}

// ---------------------------------------------------------------------------------------------
// Equal work for unknown and known client ids

async fn counter(app: &TestApp, name: &str) -> f64 {
    let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")).map(|v| v.trim().parse().unwrap()))
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

/// (store reads, secret checks) one token request costs.
async fn work_of(app: &TestApp, client_id: &str, secret: &str) -> (f64, f64, u16) {
    let reads = "tokenmint_client_auth_store_reads_total";
    let checks = "tokenmint_client_auth_secret_checks_total";
    let (r0, c0) = (counter(app, reads).await, counter(app, checks).await);
    let status = app.token_for(client_id, secret, &[]).await.status().as_u16();
    (counter(app, reads).await - r0, counter(app, checks).await - c0, status)
}

#[tokio::test]
async fn an_unknown_client_id_costs_the_same_work_as_a_wrong_secret() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    // Warm the cache as real traffic would.
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 200);

    let wrong_secret = work_of(&app, &id, "tms_wrong").await;
    let never_seen = work_of(&app, "tmc_NeverSeenBefore000000000", "tms_wrong").await;
    let seen_again = work_of(&app, "tmc_NeverSeenBefore000000000", "tms_wrong").await;
    let accepted = work_of(&app, &id, &secret).await;
    assert_eq!(wrong_secret, (1.0, 1.0, 401), "a wrong secret: one store read, one check");
    assert_eq!(never_seen, wrong_secret, "an id never seen before");
    assert_eq!(seen_again, wrong_secret, "an unknown id seen before (negative cache)");
    assert_eq!(accepted, (0.0, 1.0, 200), "an accepted one is served from memory");
}

#[tokio::test]
async fn a_secret_rotated_elsewhere_is_accepted_before_the_change_log_arrives() {
    // No periodic sync during the test: only the refusal's re-read can find the new secret.
    let app = spawn_with(Options {
        tweak: |c| c.sync_interval = Duration::from_secs(3600),
        ..Options::default()
    })
    .await;
    let (id, _) = app.sandbox_reader().await;
    // Another instance's rotation: straight into the store, no cache sync here.
    let hasher = app.state.hasher.clone();
    let secret = tokenmint_core::ClientSecret::generate();
    let stored = tokenmint_core::StoredSecret {
        id: "sec_elsewhere000000".into(),
        hash: hasher.hash(&secret),
        hint: secret.hint(),
        created_at: common::real_now(),
        expires_at: None,
        last_used_at: None,
    };
    let rotation = tokenmint_store::Rotation {
        secret: stored,
        expire_others_at: None,
        max_live: 5,
        settle_secs: 0,
    };
    let guard = tokenmint_store::Guard::system(common::real_now());
    app.state.store.add_secret(&id, &rotation, &guard).await.unwrap();
    let res = app.token_for(&id, secret.expose(), &[]).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

// ---------------------------------------------------------------------------------------------
// JSON token requests with repeated members

#[tokio::test]
async fn json_token_requests_with_a_repeated_member_are_invalid_requests_naming_it() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    for (member, body) in [
        (
            "client_id",
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}","client_id":"tmc_other"}}"#
            ),
        ),
        (
            "scope",
            format!(
                r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"{secret}","scope":"eligibility:read","scope":"x"}}"#
            ),
        ),
        (
            "grant_type",
            format!(
                r#"{{"grant_type":"password","client_id":"{id}","client_secret":"{secret}","grant_type":"client_credentials"}}"#
            ),
        ),
    ] {
        let res = app
            .http
            .post(app.url("/oauth/token"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{member}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{member}: {v}");
        assert!(v["error_description"].as_str().unwrap().contains(&format!("'{member}'")), "{v}");
    }
}

// ---------------------------------------------------------------------------------------------
// Alert webhooks

type Hits = Arc<AtomicUsize>;

/// A receiver with `/hook` (answers 200), `/moved` (a 302 to `/elsewhere`) and `/elsewhere`,
/// counting what reaches each.
async fn receiver() -> (std::net::SocketAddr, Hits, Hits) {
    let hook: Hits = Arc::default();
    let elsewhere: Hits = Arc::default();
    let (h, e) = (hook.clone(), elsewhere.clone());
    let app = Router::new()
        .route(
            "/hook",
            post(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        )
        .route(
            "/moved",
            post(|| async {
                (axum::http::StatusCode::FOUND, [("location", "/elsewhere")], "moved")
            }),
        )
        .route(
            "/elsewhere",
            post(move || {
                e.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hook, elsewhere)
}

#[tokio::test]
async fn webhook_deliveries_do_not_follow_redirects() {
    let (addr, _, elsewhere) = receiver().await;
    let target = WebhookTarget::parse(&format!("http://{addr}/moved")).unwrap();
    let result = send_once(&delivery_client(true), &target, true, None, "{}").await;
    assert_eq!(result, Err("HTTP 302".to_owned()));
    assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "the redirect was followed");
}

#[tokio::test]
async fn internal_webhook_targets_are_refused_at_start_up_unless_allowed() {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.1.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[64:ff9b::a9fe:a9fe]/hook",
        "http://[64:ff9b::7f00:1]/hook",
        "http://[64:ff9b:1::a00:1]/hook",
        // 6to4 wrapping 10.0.0.1, 127.0.0.1, 169.254.169.254, 192.168.0.1.
        "http://[2002:a00:1::1]/hook",
        "http://[2002:7f00:1::]/hook",
        "http://[2002:a9fe:a9fe::1]/hook",
        "http://[2002:c0a8:1:1::1]/hook",
        // Teredo: a private server, or a client 10.0.0.1 / 127.0.0.1 (stored inverted).
        "http://[2001:0:a00:1::1]/hook",
        "http://[2001:0:4136:e378:8000:63bf:f5ff:fffe]/hook",
        "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/hook",
        "http://[2001:db8::1]/hook",
        // SIIT (IPv4-translated) wrapping 127.0.0.1 and 169.254.169.254.
        "http://[::ffff:0:7f00:1]/hook",
        "http://[::ffff:0:a9fe:a9fe]/hook",
        "http://localhost:9/hook",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("t.db").display());
        let mut config = Config::new(db.clone(), MasterKey::generate());
        config.listen = "127.0.0.1:0".parse().unwrap();
        config.signing_alg = tokenmint_core::keys::SigningAlgorithm::ES256;
        config.alerts.webhooks = vec![WebhookTarget::parse(url).unwrap()];
        let store = Arc::new(SqlStore::connect(&db, true).await.unwrap());
        let refused = Application::build(config.clone(), store.clone()).await;
        match refused {
            Err(StartError::Webhook(e @ WebhookError::Private { .. })) => {
                assert!(e.to_string().contains("--alert-webhook-allow-private"), "{e}")
            }
            Err(other) => panic!("{url}: refused for another reason: {other}"),
            Ok(_) => panic!("{url} was accepted"),
        }
        config.alerts.allow_private_targets = true;
        assert!(Application::build(config, store).await.is_ok(), "{url} allowed explicitly");
    }
}

#[tokio::test]
async fn a_name_resolving_to_an_internal_address_is_refused_when_connecting() {
    // Start-up let it through (as when DNS answered a public address then): the resolver of
    // the delivery client checks again, so a rebinding to an internal address gets nothing.
    let (addr, hook, _) = receiver().await;
    let target = WebhookTarget::parse(&format!("http://localhost:{}/hook", addr.port())).unwrap();
    let refused = send_once(&delivery_client(false), &target, false, None, "{}").await;
    let reason = refused.unwrap_err();
    assert!(reason.starts_with("refused: ") && reason.contains("loopback"), "{reason}");
    let literal = WebhookTarget::parse(&format!("http://{addr}/hook")).unwrap();
    let refused = send_once(&delivery_client(false), &literal, false, None, "{}").await;
    assert_eq!(refused, Err("refused: a loopback address".to_owned()));
    assert_eq!(hook.load(Ordering::SeqCst), 0);
    // Allowed explicitly, the same receiver gets it.
    assert_eq!(send_once(&delivery_client(true), &target, true, None, "{}").await, Ok(()));
    assert_eq!(hook.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_webhook_url_s_credentials_and_query_are_never_shown() {
    let target =
        WebhookTarget::parse("https://ops:hunter2@hooks.example.com:8443/a/b?token=s3cret#frag")
            .unwrap();
    assert_eq!(target.shown(), "https://[redacted]@hooks.example.com:8443/a/b?[redacted]");
    let debug = format!("{target:?}");
    assert!(!debug.contains("hunter2") && !debug.contains("s3cret") && !debug.contains("ops"));
    let e = WebhookTarget::parse("ftp://ops:hunter2@x/?token=s3cret").unwrap_err().to_string();
    assert!(!e.contains("hunter2") && !e.contains("s3cret"), "{e}");

    // End to end: the dead letter listed at /admin/v1/alerts shows the redacted form.
    let (addr, hook, _) = receiver().await;
    let url = format!("http://ops:hunter2@{addr}/hook?token=s3cret");
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.set(url).unwrap();
    let app = spawn_with(Options {
        tweak: |c| {
            c.alerts.webhooks = vec![WebhookTarget::parse(URL.get().unwrap()).unwrap()];
            c.alerts.allow_private_targets = true;
            c.brute_force.failures_per_client = 1;
        },
        ..Options::default()
    })
    .await;
    let (id, _) = app.sandbox_reader().await;
    for _ in 0..3 {
        app.token_for(&id, "tms_wrong", &[]).await;
    }
    let start = Instant::now();
    let listed = loop {
        let res = app.admin(reqwest::Method::GET, "/alerts", None).await;
        let text = res.text().await.unwrap();
        if text.contains("\"target\"") {
            break text;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no delivery recorded: {text}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert!(hook.load(Ordering::SeqCst) >= 1, "the receiver got the alert");
    assert!(!listed.contains("hunter2") && !listed.contains("s3cret"), "{listed}");
    assert!(listed.contains(&format!("http://[redacted]@{addr}/hook?[redacted]")), "{listed}");
}
