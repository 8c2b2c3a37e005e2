//! `--claim` and `--remove-claim` on `credentials create/update` and `orgs update`, against the
//! real binary and server: the claims reach the tokens, reserved names are refused before any
//! request (as are control characters and inexact numbers in values, and a claim both set and
//! removed), and the token hook flags are checked at start-up (a hook needs a signing secret
//! unless unsigned calls are chosen).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, free_port};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

fn serve(dir: &Path) -> Server {
    let port = free_port();
    let db = format!("sqlite://{}", dir.join("t.db").display());
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .args(["--product-area", "eligibility"])
        .env_remove("TOKENMINT_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

fn run(args: &[&str], endpoint: &str, creds: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TOKENMINT_ENDPOINT", endpoint)
        .env("TOKENMINT_ADMIN_CREDENTIALS", creds)
        .output()
        .unwrap()
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn token_claims(base: &str, id: &str, secret: &str) -> Value {
    use base64::Engine;
    let out = Command::new(BIN)
        .args(["token", "--token-url", &format!("{base}/oauth/token"), "--client-id", id])
        .env("TOKENMINT_CLIENT_SECRET", secret)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let token = String::from_utf8(out.stdout).unwrap();
    let payload = token.trim().split('.').nth(1).unwrap().to_owned();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[test]
fn claims_set_with_the_cli_on_credentials_and_organizations_reach_the_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let creds = dir.path().join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !creds.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = server.base.clone();
    let created = json_of(&run(
        &[
            "credentials",
            "create",
            "--name",
            "HR sync",
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--claim",
            "tenant_id=t-42",
            "--claim",
            r#"plan={"tier":"gold"}"#,
            "--claim",
            "seats=40",
            "--claim",
            "region=eu",
            "--output",
            "json",
        ],
        &base,
        &creds,
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(
        created["credential"]["claims"],
        json!({"tenant_id": "t-42", "plan": {"tier": "gold"}, "seats": 40, "region": "eu"})
    );
    let org = json_of(&run(
        &[
            "orgs",
            "update",
            "acme",
            "--name",
            "Acme Inc.",
            "--claim",
            "partner=acme-7",
            "--claim",
            "region=us",
            "--output",
            "json",
        ],
        &base,
        &creds,
    ));
    assert_eq!(org["name"], "Acme Inc.");
    assert_eq!(org["claims"], json!({"partner": "acme-7", "region": "us"}));
    let c = token_claims(&base, &id, &secret);
    assert_eq!((c["tenant_id"].as_str(), c["seats"].as_i64()), (Some("t-42"), Some(40)));
    assert_eq!(c["region"], "eu", "the credential's claim wins");
    assert_eq!(c["partner"], "acme-7");

    let updated = json_of(&run(
        &[
            "credentials",
            "update",
            &id,
            "--remove-claim",
            "region",
            "--claim",
            "seats=41",
            "--output",
            "json",
        ],
        &base,
        &creds,
    ));
    assert_eq!(updated["claims"]["seats"], 41);
    let c = token_claims(&base, &id, &secret);
    assert_eq!((c["region"].as_str(), c["seats"].as_i64()), (Some("us"), Some(41)));
    let shown = run(&["orgs", "show", "acme"], &base, &creds);
    assert!(String::from_utf8_lossy(&shown.stdout).contains(r#"partner="acme-7""#));

    // A control character anywhere in a value, typed as text or as a JSON escape, and a number
    // beyond ±(2^53 - 1) are refused before any request, naming the claim and saying why; so is
    // a claim both set and removed.
    let commands: [&[&str]; 3] = [
        &["credentials", "create", "--name", "x", "--org", "acme", "--environment", "sandbox"],
        &["credentials", "update", &id],
        &["orgs", "update", "acme"],
    ];
    let controls = ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'];
    for command in commands {
        let mut claims: Vec<(String, &str)> = Vec::new();
        for c in controls {
            if c != '\0' {
                // An argument cannot hold NUL; its JSON escape below can.
                claims.push((format!("note=a{c}b"), "control character"));
            }
            let escaped = format!("\\u{:04x}", u32::from(c));
            claims.push((format!("note=\"a{escaped}b\""), "control character"));
            claims.push((format!("note={{\"k\":[\"{escaped}\"]}}"), "control character"));
        }
        claims.push(("note=9007199254740993".to_owned(), "2^53"));
        claims.push(("note=[1,-18446744073709551615]".to_owned(), "2^53"));
        for (claim, says) in &claims {
            let mut args = command.to_vec();
            args.extend(["--claim", claim.as_str()]);
            let out = run(&args, &base, &creds);
            assert!(!out.status.success(), "{args:?}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("'note'") && err.contains(says), "{args:?}: {err}");
        }
    }
    for command in &commands[1..] {
        let mut args = command.to_vec();
        args.extend(["--claim", "plan=x", "--remove-claim", "plan"]);
        let out = run(&args, &base, &creds);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("'plan' is both set and removed"), "{args:?}: {err}");
    }
    // A name given twice is refused, not the later value taken.
    for command in commands {
        let mut args = command.to_vec();
        args.extend(["--claim", "plan=1", "--claim", "seats=2", "--claim", "plan=2"]);
        let out = run(&args, &base, &creds);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("'plan' is given twice"), "{args:?}: {err}");
    }
    let shown = json_of(&run(&["credentials", "show", &id, "--output", "json"], &base, &creds));
    assert_eq!(
        shown["claims"],
        json!({"tenant_id": "t-42", "plan": {"tier": "gold"}, "seats": 41})
    );

    // Reserved names and malformed arguments are refused before any request, saying why.
    for (args, says) in [
        (vec!["credentials", "update", &id, "--claim", "sub=x"], "reserved"),
        (vec!["orgs", "update", "acme", "--claim", "ORG=x"], "reserved"),
        (vec!["credentials", "update", &id, "--remove-claim", "scope"], "reserved"),
        (vec!["credentials", "update", &id, "--claim", "novalue"], "NAME=VALUE"),
        (vec!["orgs", "update", "acme"], "nothing to update"),
    ] {
        let out = run(&args, &base, &creds);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[test]
fn token_hook_settings_are_checked_at_start_with_the_setting_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    for (args, says) in [
        (vec!["--token-hook", "ftp://x"], "--token-hook"),
        (vec!["--token-hook", "http://127.0.0.1:9/h"], "--token-hook-allow-private"),
        (
            vec!["--token-hook", "https://hook.example", "--token-hook-on-failure", "skip"],
            "refuse or issue",
        ),
        (
            vec!["--token-hook", "https://hook.example", "--token-hook-cache-ttl", "2h"],
            "at most 1h",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(&args)
            .env_remove("TOKENMINT_MASTER_KEY")
            .env("TOKENMINT_TOKEN_HOOK_SECRET", "a hook signing secret")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
    // A hook without a signing secret is an error at start unless unsigned calls are chosen on
    // purpose; a secret and --token-hook-unsigned together are one too many.
    let secret_file = dir.path().join("hook-secret");
    std::fs::write(&secret_file, "a hook signing secret\n").unwrap();
    let secret_file = secret_file.to_str().unwrap();
    for (args, says) in [
        (vec!["--token-hook", "https://hook.example"], "--token-hook-unsigned"),
        (vec!["--token-hook", "https://hook.example"], "--token-hook-secret-file"),
        (
            vec![
                "--token-hook",
                "https://hook.example",
                "--token-hook-unsigned",
                "--token-hook-secret-file",
                secret_file,
            ],
            "not both",
        ),
    ] {
        let out = Command::new(BIN)
            .args(["serve", "--database", &db, "--listen", &format!("127.0.0.1:{}", free_port())])
            .args(&args)
            .env_remove("TOKENMINT_MASTER_KEY")
            .env_remove("TOKENMINT_TOKEN_HOOK_SECRET")
            .env_remove("TOKENMINT_TOKEN_HOOK_UNSIGNED")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
    }
}
