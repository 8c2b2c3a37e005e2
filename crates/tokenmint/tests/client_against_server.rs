//! The client SDK against tokenmint's own server: `tokenmint init` and `tokenmint serve` run as a
//! user would run them, on a temporary SQLite database and a free localhost port, and the SDK
//! obtains tokens in every authentication style and every seed dialect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use tokenmint_client::{AuthStyle, ClientConfig, Preset, SecretString, TokenClient};

const TOKENMINT: &str = env!("CARGO_BIN_EXE_tokenmint");

/// A running `tokenmint serve`, stopped on drop.
struct Server {
    child: Child,
    issuer: String,
    client_id: String,
    client_secret: String,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn start() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("tokenmint.db").display());
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");

    let init = Command::new(TOKENMINT)
        .args(["init", "--database", &database, "--issuer", &issuer])
        .env_remove("TOKENMINT_CONFIG")
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    let admin: serde_json::Value = serde_json::from_slice(&init.stdout).unwrap();

    let child = Command::new(TOKENMINT)
        .args(["serve", "--database", &database, "--issuer", &issuer])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--token-path", "/oauth/token,/authorize,/connect/token,/api/auth/v2/token"])
        .arg("--allow-missing-grant-type")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Server {
        child,
        issuer: issuer.clone(),
        client_id: admin["client_id"].as_str().unwrap().to_owned(),
        client_secret: admin["client_secret"].as_str().unwrap().to_owned(),
        _dir: dir,
    };
    let http = reqwest::Client::new();
    for _ in 0..300 {
        if http.get(format!("{issuer}/healthz")).send().await.is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("tokenmint serve did not become healthy at {issuer}");
}

fn config(server: &Server, path: &str) -> ClientConfig {
    ClientConfig::new(
        &format!("{}{path}", server.issuer),
        server.client_id.clone(),
        SecretString::new(server.client_secret.clone()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_obtains_tokens_from_tokenmint_in_every_style_and_dialect() {
    let server = start().await;

    for style in [AuthStyle::Basic, AuthStyle::Post, AuthStyle::Json] {
        let client = TokenClient::new(config(&server, "/oauth/token").auth_style(style)).unwrap();
        let token = client.token().await.unwrap_or_else(|e| panic!("{style}: {e}"));
        assert_eq!(token.token_type(), "Bearer");
        // An RFC 9068 JWT: three base64url parts.
        assert_eq!(token.access_token().secret().split('.').count(), 3, "{style}");
    }

    for preset in [Preset::Wellhub, Preset::Wex, Preset::HealthHero, Preset::Candid] {
        let secret = SecretString::new(server.client_secret.clone());
        let config =
            ClientConfig::preset(preset, &server.issuer, server.client_id.clone(), secret).unwrap();
        let token = TokenClient::new(config).unwrap().token().await;
        assert!(token.is_ok(), "{preset:?}: {:?}", token.err());
    }

    let discovered = ClientConfig::discover(
        &server.issuer,
        server.client_id.clone(),
        SecretString::new(server.client_secret.clone()),
    )
    .unwrap();
    TokenClient::new(discovered).unwrap().token().await.unwrap();

    for style in [AuthStyle::Basic, AuthStyle::Post, AuthStyle::Json] {
        let wrong = ClientConfig::new(
            &format!("{}/oauth/token", server.issuer),
            server.client_id.clone(),
            SecretString::new("not-the-secret"),
        )
        .unwrap()
        .auth_style(style);
        let error = TokenClient::new(wrong).unwrap().token().await.unwrap_err();
        assert_eq!(error.oauth_error(), Some("invalid_client"), "{style}: {error}");
    }
}
