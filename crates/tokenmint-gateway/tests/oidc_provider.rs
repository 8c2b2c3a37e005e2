//! Tokens from an issuer tokenmint did not write: node-oidc-provider (npm, the harness's peer in
//! `bench/peer`), found by OpenID Connect discovery, through both modes of the gateway.
//!
//! node-oidc-provider is installed by `.ci/setup-oidc-provider.sh` (`npm install` in
//! `bench/peer`). Without it the test is skipped with a message, unless
//! TOKENMINT_REQUIRE_SERVICES=1, which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::*;
use reqwest::Method;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// node-oidc-provider issuing ES256 JWT access tokens for client `bench`, audience
/// https://api.example.com, scope `eligibility:read`; `None` when it is not installed.
fn start_provider(secret: &str) -> Option<(Process, String)> {
    let peer = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../bench/peer");
    let installed = peer.join("node_modules/oidc-provider").is_dir()
        && Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !installed {
        if std::env::var("TOKENMINT_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("node-oidc-provider is required: run .ci/setup-oidc-provider.sh");
        }
        eprintln!("skipped: node-oidc-provider is not installed (run .ci/setup-oidc-provider.sh)");
        return None;
    }
    let mut child = Command::new("node")
        .arg(peer.join("server.mjs"))
        .args(["ES256", "0", secret])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let issuer = line.trim().strip_prefix("listening=").expect("the provider prints its issuer");
    Some((process, issuer.to_owned()))
}

async fn provider_token(issuer: &str, secret: &str) -> String {
    let response = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "bench"),
            ("client_secret", secret),
            ("scope", "eligibility:read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.unwrap();
    body["access_token"].as_str().unwrap().to_owned()
}

async fn gateway(issuer: &str, top: &str) -> Setup {
    Setup::start_text(|_server, production, _sandbox, _secret| {
        format!(
            r#"
listen = "127.0.0.1:0"
{top}

[[issuer]]
url = "{issuer}"
audience = "{AUDIENCE}"

{route}
"#,
            route = common::eligibility_route(&production.url),
        )
    })
    .await
}

#[tokio::test]
async fn node_oidc_provider_tokens_pass_both_modes_and_a_read_only_token_cannot_write() {
    let secret = "oidc-provider-test-secret";
    let Some((_provider, issuer)) = start_provider(secret) else { return };
    let token = provider_token(&issuer, secret).await;

    let proxy = gateway(&issuer, "").await;
    let read = proxy.get("/eligibility/7", Some(&token)).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.forwarded("x-tokenmint-client-id"), Some("bench"));
    assert_eq!(read.forwarded("x-tokenmint-scope"), Some("eligibility:read"));
    proxy.send(Method::POST, "/eligibility/7", Some(&token), &[]).await.assert_problem(403);

    let authz = gateway(&issuer, "mode = \"authz\"").await;
    let ask = |method: &'static str| {
        [("x-original-method", method), ("x-original-uri", "/eligibility/7")]
    };
    let allowed = authz.send(Method::GET, "/_auth", Some(&token), &ask("GET")).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-tokenmint-client-id"), Some("bench"));
    authz.send(Method::GET, "/_auth", Some(&token), &ask("PUT")).await.assert_problem(403);
}
