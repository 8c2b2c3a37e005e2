//! The gateway's listener: HTTPS with the configured certificate, and the limits it shares with
//! the server against hostile clients (header size and count, slow headers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn certificate(dir: &std::path::Path) -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("gateway-cert.pem"), dir.join("gateway-key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    (c.cert.pem(), format!("tls_cert = {:?}\ntls_key = {:?}", cert, key))
}

#[tokio::test]
async fn with_a_certificate_the_gateway_serves_https_only() {
    let dir = tempfile::tempdir().unwrap();
    let (pem, settings) = certificate(dir.path());
    let setup = Setup::start_configured(&settings, "").await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let https = setup.gateway.replace("http://", "https://");

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let answer = client.get(format!("{https}/eligibility/7")).bearer_auth(&token).send().await;
    let answer = answer.unwrap();
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["upstream"], "production");
    // The upstream learns the caller came over HTTPS.
    assert_eq!(body["headers"]["x-forwarded-proto"], "https");

    // A client that does not trust the certificate gets no answer, nor does plain HTTP.
    assert!(reqwest::get(format!("{https}/healthz")).await.is_err());
    let plain = reqwest::Client::new().get(setup.url("/healthz")).send().await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
}

#[tokio::test]
async fn a_certificate_without_its_key_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let text = "listen = \"127.0.0.1:0\"\nissuer = \"http://127.0.0.1:1\"\nfollow_revocations = false\n\
                tls_cert = \"/nonexistent/cert.pem\"\n[[route]]\npath_prefix = \"/a\"\nupstream = \"http://127.0.0.1:2\"\n\
                read_scope = \"a:read\"\nwrite_scope = \"a:write\"\n";
    let err = tokenmint_gateway::GatewayConfig::from_toml(text, &Default::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("tls_key"), "{err}");
    drop(dir);
}

#[tokio::test]
async fn oversized_header_blocks_are_refused() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let mut request = setup.http.get(setup.url("/eligibility/7")).bearer_auth(&token);
    for i in 0..100 {
        request = request.header(format!("x-filler-{i}"), "x");
    }
    let refused = request.send().await.unwrap();
    assert_eq!(refused.status(), 431, "more headers than the listener accepts");

    let big = "x".repeat(100 * 1024);
    let refused = setup
        .http
        .get(setup.url("/eligibility/7"))
        .bearer_auth(&token)
        .header("x-big", big)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 431, "a header block far larger than the listener accepts");
}

#[tokio::test]
async fn a_client_that_sends_its_headers_too_slowly_is_disconnected() {
    let setup = Setup::start_configured("header_timeout = \"300ms\"", "").await;
    let addr = setup.gateway.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET /healthz HT").await.unwrap();
    let mut buf = [0u8; 256];
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    let closed = match read {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        // hyper may answer 408 before closing.
        Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 408"),
        Err(_) => false,
    };
    assert!(closed, "the connection stayed open past the header deadline");
    assert!(started.elapsed() >= Duration::from_millis(250));

    // An idle kept-alive connection is closed the same way, and a prompt client is served.
    let ok = setup.http.get(setup.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}
