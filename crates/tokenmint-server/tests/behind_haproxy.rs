//! `--behind-proxy` through a real HAProxy with `option forwardfor`: whatever `X-Forwarded-For`
//! lines a client sends, the address tokenmint audits, counts and blocks is the one HAProxy saw.
//!
//! HAProxy appends its own field line after the client's, so a server that read only the first
//! line (as tokenmint once did) believed the client. Clients here connect from 127.0.0.2 and
//! 127.0.0.3 (loopback addresses that are not the trusted proxy) so the real address differs
//! from every forged one. Skipped with a message when `haproxy` is not installed
//! (`.ci/setup-haproxy.sh` installs it), unless `TOKENMINT_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::haproxy::{self, Haproxy};
use common::{Options, TestApp, spawn_with};
use serde_json::Value;
use std::net::IpAddr;
use std::time::Duration;

/// Starts HAProxy in front of `backend`, connecting to it from 127.0.0.1 (the trusted proxy).
async fn start_haproxy(backend: &str) -> Haproxy {
    let port = haproxy::free_port();
    let config = format!(
        "global\n  maxconn 200\n\
         defaults\n  mode http\n  timeout connect 5s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 option forwardfor\n\
         frontend edge\n  bind 127.0.0.1:{port}\n  default_backend tokenmint\n\
         backend tokenmint\n  server app {backend} source 127.0.0.1\n"
    );
    Haproxy::start(&config, port).await
}

/// An HTTP client whose connections come from `source`, a loopback address.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder().local_address(source.parse::<IpAddr>().unwrap()).build().unwrap()
}

async fn app_behind_proxy() -> TestApp {
    spawn_with(Options {
        tweak: |c| {
            c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
            c.brute_force.failures_per_ip = 4;
            c.brute_force.failures_per_client = 1000;
            c.brute_force.block_for = Duration::from_secs(600);
        },
        ..Options::default()
    })
    .await
}

/// Sends a token request through the proxy with the given forged `X-Forwarded-For` lines.
async fn token_through(
    proxy: &Haproxy,
    http: &reqwest::Client,
    forged: &[&str],
    client_id: &str,
    secret: &str,
) -> reqwest::Response {
    let mut req = http.post(format!("http://{}/oauth/token", proxy.addr)).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ]);
    for line in forged {
        req = req.header("x-forwarded-for", *line);
    }
    req.send().await.unwrap()
}

/// The source addresses of the refused token requests in the audit trail, once `n` are there.
async fn refused_sources(app: &TestApp, client_id: &str, n: usize) -> Vec<String> {
    for _ in 0..400 {
        let res = app
            .admin(
                reqwest::Method::GET,
                &format!("/audit?kind=token.refused&client_id={client_id}"),
                None,
            )
            .await;
        let body: Value = res.json().await.unwrap();
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if items.len() >= n {
            return items
                .iter()
                .map(|i| i["source_ip"].as_str().unwrap_or("").to_owned())
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("the audit trail never held {n} refusals for {client_id}");
}

const FORGERIES: &[&[&str]] = &[
    &["203.0.113.9"],
    &["203.0.113.9, 198.51.100.4"],
    &["203.0.113.9", "198.51.100.4"],
    &["127.0.0.1"],
    &["203.0.113.9, 127.0.0.1", "127.0.0.1"],
    &["not-an-address"],
    &["127.0.0.3"],
];

#[tokio::test]
async fn forged_forwarded_for_lines_do_not_choose_the_audited_address() {
    if !haproxy::installed() {
        return;
    }
    let app = app_behind_proxy().await;
    let proxy = start_haproxy(app.base.trim_start_matches("http://")).await;
    let attacker = client_from("127.0.0.2");
    let (id, _) = app.sandbox_reader().await;
    for forged in FORGERIES {
        let res = token_through(&proxy, &attacker, forged, &id, "tms_wrong").await;
        assert!(res.status() == 401 || res.status() == 429, "{forged:?}: {}", res.status());
    }
    let sources = refused_sources(&app, &id, FORGERIES.len()).await;
    assert_eq!(sources.len(), FORGERIES.len());
    assert!(sources.iter().all(|s| s == "127.0.0.2"), "audited sources: {sources:?}");
}

#[tokio::test]
async fn forged_forwarded_for_lines_neither_evade_the_block_nor_block_another_address() {
    if !haproxy::installed() {
        return;
    }
    let app = app_behind_proxy().await;
    let proxy = start_haproxy(app.base.trim_start_matches("http://")).await;
    let (id, secret) = app.sandbox_reader().await;
    let attacker = client_from("127.0.0.2");
    // Each failure claims another origin, among them the victim's own address.
    for i in 0..8 {
        let forged = format!("198.51.100.{i}, 127.0.0.3");
        let res = token_through(&proxy, &attacker, &[&forged, "127.0.0.3"], &id, "tms_wrong").await;
        if i >= 5 {
            assert_eq!(
                res.status(),
                429,
                "the attacker's real address is blocked, forged {forged}"
            );
        }
    }
    // The attacker stays blocked whatever it claims, even with the right secret.
    let res = token_through(&proxy, &attacker, &["192.0.2.200"], &id, &secret).await;
    assert_eq!(res.status(), 429);
    // The address the attacker wrote is not blocked: the victim there gets its token.
    let victim = client_from("127.0.0.3");
    let res = token_through(&proxy, &victim, &[], &id, &secret).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}
