//! The client SDK against tokenmint's own server: `tokenmint init` and `tokenmint serve` run as a
//! user would run them, on a temporary SQLite database and a free localhost port, and the SDK
//! obtains tokens in every authentication style and every seed dialect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

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

fn tokenmint(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(TOKENMINT);
    command.args(args);
    for name in [
        "TOKENMINT_CLIENT_ID",
        "TOKENMINT_CLIENT_SECRET",
        "TOKENMINT_ADMIN_CREDENTIALS",
        "TOKENMINT_ENDPOINT",
        "TOKENMINT_ISSUER",
        "TOKENMINT_TOKEN_URL",
    ] {
        command.env_remove(name);
    }
    command.envs(env.iter().copied()).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_finds_tokenmints_token_endpoint_from_its_issuer_and_says_why_a_resource_is_refused()
 {
    let server = start().await;
    let secret = [("TOKENMINT_CLIENT_SECRET", server.client_secret.as_str())];
    let base = ["token", "--issuer", &server.issuer, "--client-id", &server.client_id];
    let output = tokenmint(&base, &secret);
    assert!(output.status.success(), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim().split('.').count(), 3);

    let output =
        tokenmint(&[&base[..], &["--auth", "basic", "--output", "json"]].concat(), &secret);
    assert!(output.status.success(), "{output:?}");

    // The admin credential has no audience, so a resource is refused as invalid_target.
    let output = tokenmint(&[&base[..], &["--resource", "https://api.example/"]].concat(), &secret);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid_target"), "{stderr}");
    assert!(stderr.contains("hint: check --audience and --resource"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_commands_get_their_token_through_the_sdk_and_say_what_failed() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let credentials = |secret: &str, token_endpoint: &str| {
        let path = dir.path().join(format!("admin-{}.json", secret.len()));
        let body = serde_json::json!({
            "client_id": server.client_id,
            "client_secret": secret,
            "token_endpoint": token_endpoint,
        });
        std::fs::write(&path, body.to_string()).unwrap();
        path.to_str().unwrap().to_owned()
    };
    // The file names a stale port; discovery at --endpoint finds the real token endpoint.
    let stale = credentials(&server.client_secret, "http://127.0.0.1:9/oauth/token");
    let list = |endpoint: &str, file: &str| {
        tokenmint(
            &[
                "keys",
                "list",
                "--endpoint",
                endpoint,
                "--admin-credentials",
                file,
                "--output",
                "json",
            ],
            &[],
        )
    };
    let output = list(&server.issuer, &stale);
    assert!(output.status.success(), "{output:?}");
    let keys: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(keys.as_array().is_some_and(|k| !k.is_empty()), "{keys}");

    let wrong = credentials("tms_not-the-secret", "");
    let output = list(&server.issuer, &wrong);
    assert_eq!(output.status.code(), Some(3), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid_client"), "{stderr}");
    assert!(stderr.contains("hint: check --admin-credentials"), "{stderr}");
    assert!(!stderr.contains("tms_not-the-secret"), "{stderr}");

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let output = list(&format!("http://{closed}"), &stale);
    assert_eq!(output.status.code(), Some(7), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("hint: check --endpoint"), "{stderr}");
}

/// Makes a key pair with the `openssl` command (`genpkey` ARGS), as a partner would: the private
/// key's path and the public key's. `None` when there is no `openssl` to run.
fn openssl_pair(dir: &std::path::Path, name: &str, args: &[&str]) -> Option<(String, String)> {
    let private = dir.join(format!("{name}.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    let made = Command::new("openssl")
        .arg("genpkey")
        .args(args)
        .arg("-out")
        .arg(&private)
        .status()
        .ok()?
        .success()
        && Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&private)
            .arg("-out")
            .arg(&public)
            .status()
            .ok()?
            .success();
    made.then(|| (private.display().to_string(), public.display().to_string()))
}

/// An RSA private key as a JWK, the form JOSE libraries and identity providers export: made by
/// Node's crypto from an `openssl` key. `None` when either is missing.
fn rsa_jwk_pair(dir: &std::path::Path) -> Option<(String, String)> {
    let (pem, public) =
        openssl_pair(dir, "rsa", &["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"])?;
    let jwk = dir.join("rsa.jwk");
    let script = "const c=require('crypto'),fs=require('fs');\
        fs.writeFileSync(process.argv[2],JSON.stringify(c.createPrivateKey(fs.readFileSync(process.argv[1])).export({format:'jwk'})))";
    let made = Command::new("node").args(["-e", script, &pem]).arg(&jwk).status().ok()?.success();
    made.then(|| (jwk.display().to_string(), public))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rsa_private_jwk_signs_the_assertions_of_the_cli() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let Some((jwk, public)) = rsa_jwk_pair(dir.path()) else {
        eprintln!("SKIPPED: no openssl and node to make an RSA JWK with");
        return;
    };
    let admin = dir.path().join("admin.json");
    let body = serde_json::json!({"client_id": server.client_id, "client_secret": server.client_secret,
        "token_endpoint": format!("{}/oauth/token", server.issuer)});
    std::fs::write(&admin, body.to_string()).unwrap();
    let output = tokenmint(
        &[
            "credentials",
            "create",
            "--name",
            "RSA partner",
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--public-key",
            &public,
            "--no-secret",
            "--endpoint",
            &server.issuer,
            "--admin-credentials",
            admin.to_str().unwrap(),
            "--output",
            "json",
        ],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let id = created["client_id"].as_str().unwrap();
    let output = tokenmint(
        &["token", "--issuer", &server.issuer, "--client-id", id, "--private-key", &jwk],
        &[],
    );
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("eyJ"), "{output:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_with_keys_instead_of_a_secret_gets_tokens_from_the_cli_and_the_sdk() {
    let server = start().await;
    let dir = tempfile::tempdir().unwrap();
    let Some((key, public)) = openssl_pair(
        dir.path(),
        "ec",
        &["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"],
    ) else {
        eprintln!("SKIPPED: no openssl to make keys with");
        return;
    };
    let (next_key, next_public) =
        openssl_pair(dir.path(), "ed", &["-algorithm", "ED25519"]).unwrap();
    let admin = dir.path().join("admin.json");
    let body = serde_json::json!({"client_id": server.client_id, "client_secret": server.client_secret,
        "token_endpoint": format!("{}/oauth/token", server.issuer)});
    std::fs::write(&admin, body.to_string()).unwrap();
    let admin_args = ["--endpoint", &server.issuer, "--admin-credentials", admin.to_str().unwrap()];
    let credentials = |args: &[&str]| {
        tokenmint(
            &[&["credentials"][..], args, &admin_args[..], &["--output", "json"]].concat(),
            &[],
        )
    };

    // A private key given as the public one is refused before it leaves the machine.
    let output = credentials(&[
        "create",
        "--name",
        "k",
        "--org",
        "acme",
        "--environment",
        "sandbox",
        "--public-key",
        &key,
        "--no-secret",
    ]);
    assert!(!output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("private key"), "{output:?}");

    let output = credentials(&[
        "create",
        "--name",
        "Keyed partner",
        "--org",
        "acme",
        "--environment",
        "sandbox",
        "--public-key",
        &public,
        "--no-secret",
    ]);
    assert!(output.status.success(), "{output:?}");
    let created: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(created.get("client_secret").is_none(), "{created}");
    let id = created["client_id"].as_str().unwrap().to_owned();

    // The CLI: the issuer (from discovery) as audience, then the token endpoint's URL; a fresh
    // assertion every time.
    let token_url = format!("{}/oauth/token", server.issuer);
    for endpoint in [["--issuer", server.issuer.as_str()], ["--token-url", token_url.as_str()]] {
        for _ in 0..2 {
            let args =
                [&["token"][..], &endpoint[..], &["--client-id", &id, "--private-key", &key]];
            let output = tokenmint(&args.concat(), &[]);
            assert!(output.status.success(), "{output:?}");
        }
    }

    // The SDK.
    for discover in [false, true] {
        let key = tokenmint_client::PrivateKey::from_file(&key).unwrap();
        let config = if discover {
            ClientConfig::discover(&server.issuer, id.clone(), SecretString::new(""))
        } else {
            ClientConfig::new(&token_url, id.clone(), SecretString::new(""))
        };
        let config = config.unwrap().private_key(key);
        let token = TokenClient::new(config).unwrap().token().await.unwrap();
        assert_eq!(token.token_type(), "Bearer");
    }

    // A second key, then the first removed by its thumbprint: only the second signs now.
    let output = credentials(&["update", &id, "--public-key", &next_public]);
    assert!(output.status.success(), "{output:?}");
    let shown: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let keys = shown["public_keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{shown}");
    let first = keys[0]["thumbprint"].as_str().unwrap().to_owned();
    let output = credentials(&["update", &id, "--remove-public-key", &first]);
    assert!(output.status.success(), "{output:?}");
    let with = |key: &str| {
        tokenmint(
            &["token", "--token-url", &token_url, "--client-id", &id, "--private-key", key],
            &[],
        )
    };
    assert!(with(&next_key).status.success());
    let refused = with(&key);
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("invalid_client"), "{refused:?}");

    // A secret is refused: the credential has none.
    let output = tokenmint(
        &["token", "--token-url", &token_url, "--client-id", &id],
        &[("TOKENMINT_CLIENT_SECRET", "a-guess")],
    );
    assert_eq!(output.status.code(), Some(3), "{output:?}");
}
