//! What the server does at the connection level: HTTPS with a certificate renewed in place,
//! HSTS, the refusal of plain HTTP on a public address, client addresses behind a trusted
//! proxy, and hostile clients (huge or endless headers, idle connections, oversized bodies).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Options, spawn_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenmint_core::MasterKey;
use tokenmint_server::app::StartError;
use tokenmint_server::config::TlsFiles;
use tokenmint_server::{Application, Config};
use tokenmint_store::SqlStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Cert {
    pem: String,
    der: Vec<u8>,
    key_pem: String,
}

fn new_cert() -> Cert {
    let c =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    Cert { pem: c.cert.pem(), der: c.cert.der().to_vec(), key_pem: c.signing_key.serialize_pem() }
}

async fn build(
    dir: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> Result<Application, StartError> {
    // A database of its own per call: each call brings a new master key.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let url = format!("sqlite://{}", dir.join(format!("t{n}.db")).display());
    let mut config = Config::new(url.clone(), MasterKey::generate());
    config.listen = "127.0.0.1:0".parse().unwrap();
    tweak(&mut config);
    let store = SqlStore::connect(&url, true).await.unwrap();
    Application::build(config, Arc::new(store)).await
}

#[tokio::test]
async fn plain_http_on_a_public_address_is_refused_unless_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let err = build(dir.path(), |c| c.listen = "0.0.0.0:0".parse().unwrap()).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, StartError::PlainHttp(_)), "{msg}");
    for hint in ["--tls-cert", "--behind-proxy", "--insecure-http"] {
        assert!(msg.contains(hint), "the refusal names {hint}: {msg}");
    }
    build(dir.path(), |c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.insecure_http = true;
    })
    .await
    .expect("--insecure-http starts");
    build(dir.path(), |c| {
        c.listen = "0.0.0.0:0".parse().unwrap();
        c.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await
    .expect("--behind-proxy starts");
}

#[tokio::test]
async fn a_broken_tls_key_stops_start_up_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let cert = new_cert();
    let other = new_cert();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, &cert.pem).unwrap();
    std::fs::write(&k, &other.key_pem).unwrap();
    let files = TlsFiles { cert: c, key: k.clone() };
    let f = files.clone();
    let err = build(dir.path(), move |cfg| cfg.tls = Some(f)).await.unwrap_err();
    assert!(err.to_string().contains("does not fit"), "{err}");
    std::fs::write(&k, "not a key").unwrap();
    let err = build(dir.path(), move |cfg| cfg.tls = Some(files)).await.unwrap_err();
    assert!(err.to_string().contains("TLS key"), "{err}");
    assert!(!err.to_string().contains("not a key"));
}

fn https_client(root: &Cert) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(root.pem.as_bytes()).unwrap())
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

async fn presented_cert(base: &str, trust: &Cert) -> Option<Vec<u8>> {
    let res = https_client(trust).get(format!("{base}/healthz")).send().await.ok()?;
    let info = res.extensions().get::<reqwest::tls::TlsInfo>()?;
    info.peer_certificate().map(<[u8]>::to_vec)
}

#[tokio::test]
async fn https_serves_tokens_with_hsts_and_picks_up_a_renewed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = new_cert();
    std::fs::write(&c, &first.pem).unwrap();
    std::fs::write(&k, &first.key_pem).unwrap();
    let files = TlsFiles { cert: c.clone(), key: k.clone() };
    let mut app = build(dir.path(), move |cfg| {
        cfg.tls = Some(files);
        cfg.tls_reload_interval = Duration::from_millis(100);
    })
    .await
    .unwrap();
    let port = app.local_addr().unwrap().port();
    let admin = match app.take_first_start() {
        Some(tokenmint_server::app::FirstStart::Initialized(a)) => a,
        _ => panic!("first start"),
    };
    assert!(admin.token_endpoint.starts_with("https://"), "{}", admin.token_endpoint);
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let base = format!("https://127.0.0.1:{port}");

    let res = https_client(&first)
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &admin.client_id),
            ("client_secret", &admin.client_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000");
    assert_eq!(presented_cert(&base, &first).await.unwrap(), first.der);

    // Plain HTTP on the TLS port gets no answer a client could mistake for success.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // A renewal written in place is served to new connections without a restart.
    let second = new_cert();
    std::fs::write(&k, &second.key_pem).unwrap();
    std::fs::write(&c, &second.pem).unwrap();
    let start = Instant::now();
    while presented_cert(&base, &second).await.as_deref() != Some(&second.der[..]) {
        assert!(start.elapsed() < Duration::from_secs(10), "the renewed certificate is not served");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A broken renewal keeps the current certificate: tokenmint-http's
    // `a_broken_renewal_keeps_the_certificate_in_use_until_a_good_one_arrives`, on its clock.

    let _ = stop.send(());
    server.await.unwrap();
}

/// What `kill -HUP` runs: a reload swaps in renewed certificate files at once (the file poll
/// is made too slow to do it here), keeps the current pair when the new one is broken, and
/// says what it did.
#[tokio::test]
async fn a_reload_request_swaps_the_certificate_at_once_and_keeps_it_when_the_files_are_broken() {
    let dir = tempfile::tempdir().unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let first = new_cert();
    std::fs::write(&c, &first.pem).unwrap();
    std::fs::write(&k, &first.key_pem).unwrap();
    let files = TlsFiles { cert: c.clone(), key: k.clone() };
    let app = build(dir.path(), move |cfg| {
        cfg.tls = Some(files);
        cfg.tls_reload_interval = Duration::from_secs(3600);
    })
    .await
    .unwrap();
    let port = app.local_addr().unwrap().port();
    let reloader = app.reloader();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    let base = format!("https://127.0.0.1:{port}");
    assert_eq!(presented_cert(&base, &first).await.unwrap(), first.der);

    let second = new_cert();
    std::fs::write(&k, &second.key_pem).unwrap();
    std::fs::write(&c, &second.pem).unwrap();
    let done = reloader.reload().await;
    assert!(matches!(done.tls, Some(Ok(()))), "{done:?}");
    assert!(done.database.is_ok(), "{done:?}");
    assert_eq!(presented_cert(&base, &second).await.unwrap(), second.der);

    std::fs::write(&k, "not a key").unwrap();
    let done = reloader.reload().await;
    assert!(matches!(done.tls, Some(Err(_))), "{done:?}");
    assert_eq!(presented_cert(&base, &second).await.unwrap(), second.der);

    let _ = stop.send(());
    server.await.unwrap();
}

async fn wait_for_audit(app: &common::TestApp, client_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let page: Value = app
            .admin(Method::GET, &format!("/audit?client_id={client_id}&kind=token.refused"), None)
            .await
            .json()
            .await
            .unwrap();
        if let Some(e) = page["items"].as_array().and_then(|a| a.first()) {
            return e.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no audit record");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn x_forwarded_for_is_believed_only_from_the_configured_proxy() {
    for (trusted, expected) in [("127.0.0.1", "203.0.113.7"), ("10.1.2.3", "127.0.0.1")] {
        let tweak: fn(&mut tokenmint_server::Config) = if trusted == "127.0.0.1" {
            |c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]
        } else {
            |c| c.trusted_proxies = vec!["10.1.2.3/32".parse().unwrap()]
        };
        let opts = Options { tweak, ..Options::default() };
        let mut app = spawn_with(opts).await;
        let (id, _) = app
            .create_credential(json!({"name": "p", "org": "acme", "environment": "sandbox"}))
            .await;
        let res = app
            .http
            .post(app.url("/oauth/token"))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
                ("client_secret", "tms_wrong"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let record = wait_for_audit(&app, &id).await;
        assert_eq!(record["source_ip"], expected, "trusting {trusted}");
        app.stop().await;
    }
}

async fn raw(addr: &str, request: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn hostile_clients_are_cut_off_cleanly() {
    let opts =
        Options { tweak: |c| c.header_timeout = Duration::from_millis(500), ..Options::default() };
    let mut app = spawn_with(opts).await;
    let addr = app.base.trim_start_matches("http://").to_owned();

    // A header block far too large: 431, then the connection closes.
    let huge =
        format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(100_000));
    let answer = raw(&addr, huge.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Too many header fields.
    let mut many = String::from("GET /healthz HTTP/1.1\r\nHost: x\r\n");
    for i in 0..200 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    let answer = raw(&addr, many.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

    // Slow loris: headers that never end are dropped after the header timeout.
    let start = Instant::now();
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut buf = [0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap();
    assert!(matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"));
    assert!(start.elapsed() < Duration::from_secs(5));

    // An idle keep-alive connection is closed after the same timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut out = Vec::new();
    let start = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await.unwrap();
    assert!(String::from_utf8_lossy(&out).starts_with("HTTP/1.1 200"));
    assert!(start.elapsed() < Duration::from_secs(5), "idle connection kept open");

    // An oversized token request body: 413 with a JSON error, nothing read beyond the cap.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=client_credentials&scope={}", "a".repeat(1_000_000)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);

    // Deeply nested JSON and thousands of parameters: 400, not a crash.
    let nested = format!("{}{}", "[".repeat(5_000), "]".repeat(5_000));
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(nested)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let params: String = (0..2000).map(|i| format!("p{i}=v&")).collect();
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(params)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Tokens with a huge header, and with a `kid` that tries path and SQL injection.
    let forge = |header: Value| {
        format!(
            "{}.{}.AAAA",
            base64_url(&header.to_string()),
            base64_url(&json!({"sub": "x"}).to_string())
        )
    };
    let huge = forge(json!({"alg": "ES256", "typ": "at+jwt", "kid": "k", "x": "y".repeat(8_000)}));
    let evil =
        forge(json!({"alg": "ES256", "typ": "at+jwt", "kid": "../../etc/passwd' OR '1'='1"}));
    let introspect = |token: String| {
        app.http
            .post(app.url("/oauth/introspect"))
            .basic_auth(&app.admin_id, Some(&app.admin_secret))
            .form(&[("token", token)])
            .send()
    };
    // Longer than any parameter may be: refused before any decoding.
    let res = introspect(huge).await.unwrap();
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "invalid_request");
    let res = introspect(evil).await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["active"], false);

    // The server still serves normally afterwards.
    let res = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}
