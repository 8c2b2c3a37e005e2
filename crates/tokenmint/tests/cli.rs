//! The binary end to end: `init`, `serve`, and the admin subcommands against it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, free_port};
use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

fn serve(dir: &Path, extra: &[&str]) -> Server {
    let port = free_port();
    let db = format!("sqlite://{}", dir.join("t.db").display());
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database",
            &db,
            "--product-area",
            "eligibility",
        ])
        .args(extra)
        .env_remove("TOKENMINT_MASTER_KEY")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Server { child, base }
}

fn run(args: &[&str], endpoint: &str, creds: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .env("TOKENMINT_ENDPOINT", endpoint)
        .env("TOKENMINT_ADMIN_CREDENTIALS", creds)
        .output()
        .unwrap()
}

/// The admin credential file `serve` writes into `dir` on its first start, once it is whole.
fn admin_file(dir: &Path) -> std::path::PathBuf {
    let creds = dir.join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(&creds)
        .map_or(true, |t| serde_json::from_str::<Value>(&t).is_err())
    {
        assert!(Instant::now() < deadline, "serve wrote no admin credential");
        std::thread::sleep(Duration::from_millis(20));
    }
    creds
}

fn json_of(out: &Output) -> Value {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn init_prints_a_working_admin_credential_and_creates_a_private_master_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = Command::new(BIN)
        .args(["init", "--database", &db, "--signing-alg", "EdDSA"])
        .output()
        .unwrap();
    let admin = json_of(&out);
    assert!(admin["client_id"].as_str().unwrap().starts_with("tmc_"));
    assert!(admin["client_secret"].as_str().unwrap().starts_with("tms_"));
    assert_eq!(admin["token_endpoint"], "http://127.0.0.1:8080/oauth/token");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains(admin["client_secret"].as_str().unwrap())
    );
    let key = dir.path().join("t.master-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
    }
    std::fs::write(dir.path().join("admin.json"), out.stdout).unwrap();
    let server = serve(dir.path(), &[]);
    let keys = json_of(&run(
        &["keys", "list", "--output", "json"],
        &server.base,
        &dir.path().join("admin.json"),
    ));
    assert_eq!(keys[0]["alg"], "EdDSA");
}

#[test]
fn serve_initialises_an_empty_database_and_the_admin_subcommands_manage_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let mut server =
        serve(dir.path(), &["--token-path", "/oauth/token", "--token-path", "/authorize"]);
    let creds = dir.path().join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !creds.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let admin: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
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
            "--permission",
            "eligibility:read",
            "--expires-in",
            "90d",
            "--token-lifetime",
            "10m",
            "--output",
            "json",
        ],
        &base,
        &creds,
    ));
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["credential"]["token_lifetime_seconds"], 600);

    let listed =
        json_of(&run(&["credentials", "list", "--org", "acme", "--output", "json"], &base, &creds));
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let table = run(&["credentials", "list"], &base, &creds);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("CLIENT ID") && text.contains(&id), "{text}");

    let updated = json_of(&run(
        &["credentials", "update", &id, "--name", "HR sync v2", "--output", "json"],
        &base,
        &creds,
    ));
    assert_eq!(updated["name"], "HR sync v2");
    let rotated = json_of(&run(
        &["credentials", "rotate-secret", &id, "--overlap", "1h", "--output", "json"],
        &base,
        &creds,
    ));
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);
    let shown = json_of(&run(&["credentials", "show", &id, "--output", "json"], &base, &creds));
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 2);
    assert!(!shown.to_string().contains(&secret));
    let off = json_of(&run(&["credentials", "deactivate", &id, "--output", "json"], &base, &creds));
    assert_eq!(off["status"], "deactivated");

    // Bad input: a clear error and a failing exit code, nothing stored.
    let bad = run(
        &[
            "credentials",
            "create",
            "--name",
            "x",
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--permission",
            "payroll:read",
        ],
        &base,
        &creds,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown product area"));
    let bad_env = run(
        &["credentials", "create", "--name", "x", "--org", "acme", "--environment", "staging"],
        &base,
        &creds,
    );
    assert!(!bad_env.status.success());
    assert!(String::from_utf8_lossy(&bad_env.stderr).contains("sandbox"));

    let rotated_keys =
        json_of(&run(&["keys", "rotate", "--alg", "ES256", "--output", "json"], &base, &creds));
    assert!(rotated_keys.as_array().unwrap().iter().any(|k| k["state"] == "pending"));

    // The server never printed the admin secret.
    server.child.kill().unwrap();
    let out = server.child.stderr_after_exit();
    assert!(!out.contains(admin["client_secret"].as_str().unwrap()));
    assert!(out.contains("tokenmint-admin.json"));
}

trait WaitOutput {
    fn stderr_after_exit(&mut self) -> String;
}

impl WaitOutput for Child {
    fn stderr_after_exit(&mut self) -> String {
        use std::io::Read;
        let _ = self.wait();
        let mut s = String::new();
        if let Some(mut e) = self.stderr.take() {
            let _ = e.read_to_string(&mut s);
        }
        s
    }
}

#[test]
fn configuration_errors_name_the_setting_and_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--signing-alg", "HS256"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--signing-alg")
            && err.contains("TOKENMINT_SIGNING_ALG")
            && err.contains("RS256, ES256, EdDSA"),
        "{err}"
    );
    // A start refused for a setting leaves nothing behind: no master key, no database.
    assert!(!err.contains("master key"), "{err}");
    assert!(!dir.path().join("t.master-key").exists());
    assert!(!dir.path().join("t.db").exists());

    let cfg = dir.path().join("tokenmint.toml");
    std::fs::write(&cfg, "listen = \"127.0.0.1:1\"\nproduct_area = [\"Bad Name\"]\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--product-area") && err.contains("Bad Name"), "{err}");
    assert!(err.contains("`product_areas` in the config file"), "{err}");

    // Plain HTTP on a public address is refused with the ways out named; a bad proxy too.
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--listen", "0.0.0.0:0"])
        .env_remove("TOKENMINT_MASTER_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-cert") && err.contains("--insecure-http"), "{err}");
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--behind-proxy", "proxy.internal"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--behind-proxy") && err.contains("CIDR"), "{err}");

    std::fs::write(&cfg, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("lisen"));

    // The environment beats the file, and the flag beats the environment.
    std::fs::write(&cfg, "signing_alg = \"HS1\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["init", "--database", &db, "--config"])
        .arg(&cfg)
        .env("TOKENMINT_SIGNING_ALG", "ES256")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = Command::new(BIN)
        .args(["init", "--database", &db, "--signing-alg", "EdDSA", "--config"])
        .arg(&cfg)
        .env("TOKENMINT_SIGNING_ALG", "HS2")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out =
        Command::new(BIN).args(["init", "--database", &db, "--config"]).arg(&cfg).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("'HS1'"));
}

#[test]
fn a_wrong_master_key_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = Command::new(BIN).args(["init", "--database", &db]).output().unwrap();
    assert!(out.status.success());
    let other = "ab".repeat(32);
    let out = Command::new(BIN)
        .args(["init", "--database", &db])
        .env("TOKENMINT_MASTER_KEY", other)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key does not match"));
}

#[test]
fn audit_export_prints_json_lines_without_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let creds = dir.path().join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !creds.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let created = json_of(&run(
        &[
            "credentials",
            "create",
            "--name",
            "audited",
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--output",
            "json",
        ],
        &server.base,
        &creds,
    ));
    let secret = created["client_secret"].as_str().unwrap();
    let id = created["client_id"].as_str().unwrap();
    // The audit writer batches; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out =
            run(&["audit", "export", "--client-id", id, "--since", "1h"], &server.base, &creds);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        if let Some(line) = text.lines().next() {
            let event: Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["kind"], "credential.created");
            assert!(!text.contains(secret));
            break;
        }
        assert!(Instant::now() < deadline, "no audit event exported");
        std::thread::sleep(Duration::from_millis(100));
    }
    let bad = run(&["audit", "export", "--since", "yesterday-ish"], &server.base, &creds);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

/// A `--since` reaching back before the year 1 is a usage error naming the longest duration
/// taken, told before any server is asked (it once panicked subtracting from the date).
#[test]
fn audit_export_refuses_a_since_before_the_year_1_as_a_usage_error() {
    let env = [
        ("TOKENMINT_ENDPOINT", "http://127.0.0.1:9"),
        ("TOKENMINT_CLIENT_ID", "tmc_x"),
        ("TOKENMINT_CLIENT_SECRET", "x"),
    ];
    for (flag, value) in [
        ("--since", "99999999d"),
        ("--since", "300000y"),
        ("--since", "5000000000h"),
        ("--until", "99999999d"),
    ] {
        let out = run_within(&["audit", "export", flag, value], &env, 20);
        let said = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {said}");
        assert!(
            said.contains(&format!("{flag} {value} reaches back before the year 1; give at most ")),
            "{said}"
        );
        assert!(!said.contains("panicked"), "{said}");
    }
}

/// `eval "$(tokenmint credentials create … --output env)"`, as the README does: the shell gets
/// the id and secret, the secret works, and a failing command makes the `eval` fail too.
#[test]
fn output_env_feeds_a_shell_eval_and_a_failure_fails_the_eval() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let creds = dir.path().join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !creds.exists() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(20));
    }
    let script = format!(
        r#"set -eu
eval "$('{BIN}' credentials create --name 'it'"'"'s $(odd)' --org acme --environment sandbox \
    --permission eligibility:read --output env)"
printf '%s\n%s\n%s\n%s\n' "$CLIENT_ID" "$CLIENT_SECRET" "$CREDENTIAL_NAME" "$CREDENTIAL_SECRETS_0_ID"
"#
    );
    let out = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .env("TOKENMINT_ENDPOINT", &server.base)
        .env("TOKENMINT_ADMIN_CREDENTIALS", &creds)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("tmc_"), "{stdout}");
    assert!(lines[1].starts_with("tms_"), "{stdout}");
    assert_eq!(lines[2], "it's $(odd)", "values are never expanded by the eval");
    assert!(lines[3].starts_with("sec_"), "{stdout}");

    let token = Command::new(BIN)
        .args(["token", "--token-url", &format!("{}/oauth/token", server.base)])
        .args(["--client-id", lines[0]])
        .env("TOKENMINT_CLIENT_SECRET", lines[1])
        .output()
        .unwrap();
    assert!(token.status.success(), "the secret printed for the eval works");

    // A refused request, a usage error and a server that cannot be reached: each prints
    // `false` for the eval, so `set -e` stops the script before stale variables are used.
    for args in [
        "credentials show tmc_doesnotexist --output env",
        "credentials create --output env",
        "credentials list --output=env --endpoint http://127.0.0.1:9",
    ] {
        let script = format!("set -e\nCLIENT_ID=stale\neval \"$('{BIN}' {args})\"\necho reached");
        let out = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("TOKENMINT_ENDPOINT", &server.base)
            .env("TOKENMINT_ADMIN_CREDENTIALS", &creds)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args}: the eval must fail");
        assert!(!String::from_utf8_lossy(&out.stdout).contains("reached"), "{args}");
    }
}

#[test]
fn without_admin_credentials_the_error_names_the_file_serve_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let attempt = || {
        let out = Command::new(BIN)
            .args(["credentials", "list"])
            .current_dir(dir.path())
            .env_remove("TOKENMINT_ADMIN_CREDENTIALS")
            .env_remove("TOKENMINT_CLIENT_ID")
            .env_remove("TOKENMINT_CLIENT_SECRET")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let elsewhere = attempt();
    assert!(elsewhere.contains("TOKENMINT_ADMIN_CREDENTIALS=FILE"), "{elsewhere}");
    assert!(elsewhere.contains("tokenmint-admin.json next to the"), "{elsewhere}");
    assert!(!elsewhere.contains("is in this directory"), "{elsewhere}");
    std::fs::write(dir.path().join("tokenmint-admin.json"), "{}").unwrap();
    let here = attempt();
    assert!(
        here.contains("tokenmint-admin.json is in this directory: export TOKENMINT_ADMIN_CREDENTIALS=tokenmint-admin.json"),
        "{here}"
    );
}

#[test]
fn credentials_list_is_newest_first_and_tells_a_missing_organization_from_an_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let creds = admin_file(dir.path());
    let base = server.base.clone();
    for name in ["first", "second", "third"] {
        let args = [
            "credentials",
            "create",
            "--name",
            name,
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--permission",
            "eligibility:read",
            "--output",
            "json",
        ];
        json_of(&run(&args, &base, &creds));
    }
    // Newest first, as the portal lists them: by creation, then client_id, both descending.
    let listed = json_of(&run(&["credentials", "list", "--output", "json"], &base, &creds));
    let keys: Vec<(String, String)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            // RFC 3339 in UTC, all of one form: ordered as text as in time.
            let created = c["created_at"].as_str().unwrap().to_owned();
            (created, c["client_id"].as_str().unwrap().to_owned())
        })
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
    assert!(keys.len() >= 4, "the admin credential and the three: {keys:?}");
    let help = run(&["credentials", "list", "--help"], &base, &creds);
    assert!(String::from_utf8_lossy(&help.stdout).contains("newest first"));

    // An organization that does not exist is an error, said so.
    let missing = run(&["credentials", "list", "--org", "nosuchorg"], &base, &creds);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("no organization 'nosuchorg' exists"), "{said}");
    assert!(said.contains("hint: `tokenmint orgs list`"), "{said}");
    // One without credentials says it has none.
    assert!(run(&["orgs", "create", "empty"], &base, &creds).status.success());
    let empty = run(&["credentials", "list", "--org", "empty"], &base, &creds);
    assert!(empty.status.success(), "{empty:?}");
    assert_eq!(
        String::from_utf8_lossy(&empty.stdout).trim(),
        "The organization 'empty' has no credentials."
    );
    let json = json_of(&run(
        &["credentials", "list", "--org", "empty", "--output", "json"],
        &base,
        &creds,
    ));
    assert_eq!(json, serde_json::json!([]));
}

/// The admin commands ask the server that wrote the credential file, on whatever port it
/// listens, without `--endpoint`; a name that matches nothing is an error with a hint, never an
/// empty answer that reads as "nothing there".
#[test]
fn the_credential_file_names_its_server_and_a_misspelt_name_is_told_with_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let creds = admin_file(dir.path());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    assert_eq!(written["endpoint"], server.base.as_str());
    let admin = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .arg("--admin-credentials")
            .arg(&creds)
            .env_remove("TOKENMINT_ENDPOINT")
            .env_remove("TOKENMINT_ADMIN_CREDENTIALS")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    // Not the default port: the file's server is asked.
    assert!(!server.base.ends_with(":8080"));
    let keys = admin(&["keys", "list", "--output", "json"]);
    assert!(keys.status.success(), "{}", String::from_utf8_lossy(&keys.stderr));

    let missing = admin(&["credentials", "show", "tmc_nothing"]);
    assert!(!missing.status.success());
    let said = String::from_utf8_lossy(&missing.stderr);
    assert!(said.contains("404"), "{said}");
    assert!(said.contains("hint: `tokenmint credentials list`"), "{said}");

    let kind = admin(&["audit", "export", "--kind", "token.refusd"]);
    assert!(!kind.status.success());
    let said = String::from_utf8_lossy(&kind.stderr);
    assert!(said.contains("there is no event kind 'token.refusd'"), "{said}");
    assert!(said.contains("token.refused"), "the known kinds are listed: {said}");

    let org = admin(&["audit", "export", "--org", "nosuchorg"]);
    assert!(!org.status.success());
    let said = String::from_utf8_lossy(&org.stderr);
    assert!(said.contains("no organization 'nosuchorg' exists"), "{said}");
}

/// A token hook on 127.0.0.1 that refuses every token with `reason`; its URL.
fn refusing_hook(reason: &'static str) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap_or(0);
                }
                line.clear();
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let answer = serde_json::json!({"allow": false, "reason": reason}).to_string();
            let _ = write!(
                reader.get_mut(),
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
                answer.len()
            );
        }
    });
    url
}

/// `serve --log-format json` logs a token hook's refusal reason as its plain text (JSON's
/// escaping only, not quoted a second time), and `audit export` prints it as the hook gave it,
/// one event a line (a line separator in it written as a JSON escape).
#[test]
fn a_hooks_reason_is_plain_text_in_the_json_log_and_exported_as_it_was_said() {
    use std::io::Read;
    let reason = "no \"x\"\u{7} y=1\u{2028}z";
    let hook = refusing_hook(reason);
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(
        dir.path(),
        &[
            "--log-format",
            "json",
            "--token-hook",
            &hook,
            "--token-hook-unsigned",
            "--token-hook-allow-private",
        ],
    );
    let creds = admin_file(dir.path());
    let created = json_of(&run(
        &[
            "credentials",
            "create",
            "--name",
            "hooked",
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--permission",
            "eligibility:read",
            "--output",
            "json",
        ],
        &server.base,
        &creds,
    ));
    let id = created["client_id"].as_str().unwrap();
    let token = Command::new(BIN)
        .args(["token", "--token-url", &format!("{}/oauth/token", server.base)])
        .args(["--client-id", id])
        .env("TOKENMINT_CLIENT_SECRET", created["client_secret"].as_str().unwrap())
        .output()
        .unwrap();
    assert!(!token.status.success(), "the hook refuses");

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = run(
            &["audit", "export", "--client-id", id, "--kind", "token.refused", "--since", "1h"],
            &server.base,
            &creds,
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        if let Some(line) = text.lines().next() {
            assert!(!text.contains('\u{2028}'), "one event a line: {text:?}");
            assert!(text.contains(r"\u2028"), "{text:?}");
            let event: Value = serde_json::from_str(line).unwrap();
            assert_eq!(event["details"]["provider_reason"], reason, "{event}");
            break;
        }
        assert!(Instant::now() < deadline, "no refusal exported");
        std::thread::sleep(Duration::from_millis(100));
    }

    let _ = server.child.kill();
    let mut log = String::new();
    server.child.stderr.take().unwrap().read_to_string(&mut log).unwrap();
    let refusal = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["message"] == "the token hook refused the token")
        .unwrap_or_else(|| panic!("no refusal in the JSON log: {log}"));
    // The log's escaped form of outside text (`\u{7}`), as a plain JSON string.
    assert_eq!(refusal["reason"], r#"no "x"\u{7} y=1\u{2028}z"#, "{refusal}");
    assert_eq!(refusal["client_id"], id, "{refusal}");
}

/// The admin commands and `token` take their options from a flag, a `TOKENMINT_*` variable and
/// the `--config` file, in that order; an admin command says which of its own options did not
/// come from the command line; a variable the client side uses (`TOKENMINT_AUDIENCE`) never
/// becomes a credential's audience.
#[test]
fn admin_and_client_options_come_from_flags_variables_and_the_config_file_in_that_order() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let creds = admin_file(dir.path());
    let file = dir.path().join("admin.toml");
    std::fs::write(
        &file,
        format!(
            "endpoint = {base:?}\nadmin_credentials = {creds:?}\norg = \"from-file\"\n\
             [credentials]\nenvironment = \"sandbox\"\n\
             [credentials.create]\naudience = [\"https://file.example\"]\npermission = \
             [\"eligibility:read\"]\ntoken_lifetime = \"5m\"\n",
            base = server.base,
            creds = creds.display().to_string(),
        ),
    )
    .unwrap();
    let admin = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .env_remove("TOKENMINT_ENDPOINT")
            .env_remove("TOKENMINT_ADMIN_CREDENTIALS");
        for (name, value) in env {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let config = file.to_str().unwrap();

    // The file alone: everything but the name, with a note for each of the command's options.
    let out = admin(
        &["credentials", "create", "--name", "From file", "--config", config, "--output", "json"],
        &[("TOKENMINT_AUDIENCE", "https://partner-shell.example")],
    );
    let created = json_of(&out);
    let c = &created["credential"];
    assert_eq!(c["org"], "from-file");
    assert_eq!(c["environment"], "sandbox");
    assert_eq!(c["audiences"], serde_json::json!(["https://file.example"]));
    assert_eq!(c["token_lifetime_seconds"], 300);
    let said = String::from_utf8_lossy(&out.stderr);
    for note in [
        "note: --org is taken from `org` in",
        "note: --environment is taken from `credentials.environment` in",
        "note: --audience is taken from `credentials.create.audience` in",
    ] {
        assert!(said.contains(note), "{note}: {said}");
    }
    // Which server gets the admin credential is said, and which credential file the config
    // file named.
    assert!(said.contains("note: --endpoint is taken from `endpoint` in"), "{said}");
    assert!(said.contains("note: --admin-credentials is taken from `admin_credentials`"), "{said}");

    // A variable beats the file, a flag beats both; the command's own variable is noted.
    let out = admin(
        &[
            "credentials",
            "create",
            "--name",
            "Mixed",
            "--environment",
            "production",
            "--expires-in",
            "30d",
            "--config",
            config,
            "--output",
            "json",
        ],
        &[
            ("TOKENMINT_ORG", "from-env"),
            ("TOKENMINT_CREDENTIALS_AUDIENCE", "https://env.example"),
            ("TOKENMINT_ENVIRONMENT", "sandbox"),
            // Set off, an on/off option is as if not set: no conflict with --expires-in.
            ("TOKENMINT_NEVER_EXPIRES", "false"),
        ],
    );
    let created = json_of(&out);
    let c = &created["credential"];
    assert_eq!(c["org"], "from-env");
    assert_eq!(c["environment"], "production");
    assert_eq!(c["audiences"], serde_json::json!(["https://env.example"]));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: --org is taken from the variable TOKENMINT_ORG"), "{said}");
    assert!(!said.contains("--environment is taken"), "{said}");
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();

    // `token` reads the same file's top level and its own table; the secret stays out of it.
    let token_file = dir.path().join("client.toml");
    std::fs::write(
        &token_file,
        format!(
            "token_url = \"{}/oauth/token\"\nclient_id = \"{id}\"\n[token]\noutput = \"json\"\n",
            server.base
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["token", "--config", token_file.to_str().unwrap()])
        .env("TOKENMINT_CLIENT_SECRET", &secret)
        .env_remove("TOKENMINT_CLIENT_ID")
        .env_remove("TOKENMINT_TOKEN_URL")
        .env_remove("TOKENMINT_ISSUER")
        .output()
        .unwrap();
    let response = json_of(&out);
    assert_eq!(response["token_type"], "Bearer");
    assert_eq!(response["expires_in"], 300);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: --token-url is taken from `token_url` in"), "{said}");
    assert!(!said.contains("--client-id is taken"), "{said}");

    // A variable that sends the admin credential elsewhere is said too.
    let out = admin(
        &["orgs", "list", "--admin-credentials", creds.to_str().unwrap()],
        &[("TOKENMINT_ENDPOINT", &server.base), ("TOKENMINT_OUTPUT", "json")],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: --endpoint is taken from the variable TOKENMINT_ENDPOINT"));
    assert!(said.contains("note: --output is taken from the variable TOKENMINT_OUTPUT"), "{said}");

    // A reader that stops early (`| head -1`) ends the command quietly.
    let mut child = Command::new(BIN)
        .args(["credentials", "list", "--config", config])
        .env_remove("TOKENMINT_ENDPOINT")
        .env_remove("TOKENMINT_ADMIN_CREDENTIALS")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!said.contains("error") && !said.contains("Broken pipe"), "{said}");
    assert!(out.status.success(), "{said}");

    // A typo in the file is an error naming it, before anything is sent.
    std::fs::write(dir.path().join("typo.toml"), "orgg = \"acme\"\n").unwrap();
    let out = admin(
        &["credentials", "list", "--config", dir.path().join("typo.toml").to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("unknown key `orgg`"), "{said}");
}

/// Runs the binary with a deadline, so a command that would block fails the test instead.
fn run_within(args: &[&str], env: &[(&str, &str)], seconds: u64) -> Output {
    let mut command = Command::new(BIN);
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("{args:?} did not finish in {seconds} s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Every config file reader (the client-side commands', `serve`'s and the gateway's) refuses
/// what is not a small regular file at once, and a file that does not parse is told by line
/// and column without its text.
#[test]
fn config_files_must_be_small_regular_files_and_errors_never_show_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.toml");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let big = dir.path().join("big.toml");
    std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap();
    let commands: [&[&str]; 4] = [
        &["orgs", "list"],
        &["serve", "--database", "sqlite::memory:"],
        &["gateway"],
        &["token", "--client-id", "tmc_x", "--token-url", "http://127.0.0.1:9/t"],
    ];
    for command in commands {
        for (file, says) in [
            ("/dev/zero", "is not a regular file but a device"),
            (fifo.to_str().unwrap(), "is not a regular file but a named pipe"),
            (big.to_str().unwrap(), "is larger than 1 MiB"),
        ] {
            let mut args = command.to_vec();
            args.extend(["--config", file]);
            let out = run_within(&args, &[("TOKENMINT_CLIENT_SECRET", "x")], 20);
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{args:?}: {said}");
            assert!(said.contains(&format!("the config file {file} {says}")), "{args:?}: {said}");
        }
    }

    let bad = dir.path().join("bad.toml");
    for (command, text) in [
        (commands[0], "org = \"acme\"\nendpoint = \"http://:SECRET@h\n"),
        (commands[1], "listen = \"127.0.0.1:1\"\nmaster_key = \"SECRET\" x\n"),
        (commands[1], "redis = \"redis://:SECRET@h\n"),
        (commands[2], "client_secret = \"tms_SECRET\"\n"),
    ] {
        std::fs::write(&bad, text).unwrap();
        let mut args = command.to_vec();
        args.extend(["--config", bad.to_str().unwrap()]);
        let out = run_within(&args, &[], 20);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{text}: {said}");
        assert!(said.contains(&format!("invalid config file {}, line ", bad.display())), "{said}");
        assert!(said.contains(", column "), "{said}");
        assert!(!said.contains("SECRET"), "{text}: {said}");
    }
}

/// A file option naming a device (`/dev/zero`) or standard input that never ends is refused
/// at once, never read into memory without bound.
#[test]
fn file_options_and_stdin_are_read_with_a_limit() {
    let cases: [(&[&str], &str); 2] = [
        (
            &["serve", "--database", "sqlite::memory:", "--master-key-file", "/dev/zero"],
            "the master key file (--master-key-file) /dev/zero is not a regular file but a device",
        ),
        (
            &[
                "serve",
                "--database",
                "sqlite::memory:",
                "--tls-cert",
                "/dev/zero",
                "--tls-key",
                "/dev/zero",
            ],
            "/dev/zero is not a regular file but a device",
        ),
    ];
    let client = ["token", "--client-id", "c", "--token-url", "http://127.0.0.1:9/t"];
    let client_cases: [(&[&str], &str); 2] = [
        (&["--private-key", "/dev/zero"], "the private key /dev/zero: it is not a regular file"),
        (&["--client-secret-file", "/dev/zero"], "cannot read /dev/zero: it is not a regular file"),
    ];
    for (extra, says) in client_cases {
        let args = [&client[..], extra].concat();
        let out = run_within(&args, &[], 20);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?}: {said}");
    }
    for (body, says) in [
        ("@/dev/zero", "-d @/dev/zero: the body is larger than 64 MiB"),
        ("@-", "-d @-: standard input holds more than 64 MiB"),
    ] {
        let mut command = Command::new(BIN);
        command.args(["call", "--client-id", "c", "--token-url", "http://127.0.0.1:9/t"]);
        command.args(["-d", body, "http://127.0.0.1:9/x"]).env("TOKENMINT_CLIENT_SECRET", "x");
        let out = command.stdin(std::fs::File::open("/dev/zero").unwrap()).output().unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{body}: {said}");
        assert!(said.contains(says), "{body}: {said}");
    }
    let key = "ab".repeat(32);
    for (args, says) in cases {
        let out = run_within(args, &[("TOKENMINT_MASTER_KEY", &key)], 20);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {said}");
        assert!(said.contains(says), "{args:?}: {said}");
    }
    let out = Command::new(BIN)
        .args(["users", "create", "--org", "acme", "--email", "a@b.example", "--role", "viewer"])
        .arg("--password-stdin")
        .env("TOKENMINT_ENDPOINT", "http://127.0.0.1:9")
        .env("TOKENMINT_CLIENT_ID", "tmc_x")
        .env("TOKENMINT_CLIENT_SECRET", "x")
        .stdin(std::fs::File::open("/dev/zero").unwrap())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("standard input holds more than 4 KiB"), "{said}");
}

/// `--help` names each variable but never prints its value, which may hold a password.
#[test]
fn help_never_shows_a_variables_value() {
    let env = [
        ("TOKENMINT_DATABASE", "postgres://u:hunter2@h/db"),
        ("TOKENMINT_REDIS", "redis://:hunter2@h"),
        ("TOKENMINT_ENDPOINT", "http://hunter2.example"),
        ("TOKENMINT_TOKEN_URL", "http://hunter2.example/t"),
    ];
    for command in [
        &["serve", "--help"][..],
        &["init", "--help"],
        &["migrate", "--help"],
        &["gateway", "--help"],
        &["orgs", "list", "--help"],
        &["credentials", "create", "--help"],
        &["token", "--help"],
        &["call", "--help"],
    ] {
        let out = run_within(command, &env, 20);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && help.contains("[env: TOKENMINT_"), "{command:?}: {help}");
        assert!(!help.contains("hunter2"), "{command:?}: {help}");
    }
}

/// A password in an endpoint's URL is never repeated in what a command prints.
#[test]
fn a_password_in_an_endpoint_url_is_not_printed() {
    let port = free_port();
    for args in [&["orgs", "list"][..], &["credentials", "list"]] {
        let out = Command::new(BIN)
            .args(args)
            .env_remove("TOKENMINT_ADMIN_CREDENTIALS")
            .env("TOKENMINT_ENDPOINT", format!("http://admin:pwLEAK@127.0.0.1:{port}/"))
            .env("TOKENMINT_CLIENT_ID", "tmc_x")
            .env("TOKENMINT_CLIENT_SECRET", "secretLEAK")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!said.contains("pwLEAK") && !said.contains("secretLEAK"), "{said}");
        assert!(said.contains("127.0.0.1"), "the server is still named: {said}");
    }
}

/// A value a `TOKENMINT_*` variable gave and clap refuses is said to come from the variable,
/// with the accepted words of an on/off option; a typed flag is still named as typed.
#[test]
fn a_refused_value_from_a_variable_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let out = Command::new(BIN)
        .args(["serve", "--database", &db])
        .env("TOKENMINT_TOKEN_RATE_LIMIT", "-5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(
            "invalid value '-5' in TOKENMINT_TOKEN_RATE_LIMIT (the variable of --token-rate-limit)"
        ),
        "{err}"
    );
    assert!(!dir.path().join("t.db").exists());

    let out = Command::new(BIN)
        .args(["credentials", "create", "--name", "x", "--endpoint", "http://127.0.0.1:1"])
        .env("TOKENMINT_NEVER_EXPIRES", "maybe")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("in TOKENMINT_NEVER_EXPIRES (the variable of --never-expires)"), "{err}");
    assert!(err.contains("true or false") && err.contains("yes/no"), "{err}");

    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--insecure-http"])
        .env("TOKENMINT_METRICS_PER_ORG", "maybe")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in TOKENMINT_METRICS_PER_ORG") && err.contains("true or false"), "{err}");

    // Typed, the flag is the one named.
    let out = Command::new(BIN)
        .args(["serve", "--database", &db, "--token-rate-limit=-5"])
        .env("TOKENMINT_TOKEN_RATE_LIMIT", "-5")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("'--token-rate-limit <N>'") && !err.contains("variable of"), "{err}");
}
