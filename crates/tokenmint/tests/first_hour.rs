//! A new user's first hour with the binary: `init` and `serve` agree on the token endpoint, a
//! busy port is one clear message, SIGHUP reloads instead of killing, logs carry colour only for
//! a terminal, and the organization a credential creates is announced.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, free_port};
use serde_json::Value;
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn serve(dir: &Path, port: u16, extra: &[&str]) -> Server {
    let db = format!("sqlite://{}", dir.join("t.db").display());
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", &db])
        .args(extra)
        .env_remove("TOKENMINT_MASTER_KEY")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port);
    Server { child, base: format!("http://127.0.0.1:{port}") }
}

fn admin_credential(dir: &Path) -> Value {
    let creds = dir.join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(&creds)
            && let Ok(v) = serde_json::from_str(&text)
        {
            return v;
        }
        assert!(Instant::now() < deadline, "serve wrote no admin credential");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether `tokenmint token` gets a token with the admin credential from `url`.
fn gets_token(url: &str, admin: &Value) -> bool {
    let out = Command::new(BIN)
        .args(["token", "--token-url", url, "--client-id", admin["client_id"].as_str().unwrap()])
        .env("TOKENMINT_CLIENT_SECRET", admin["client_secret"].as_str().unwrap())
        .output()
        .unwrap();
    out.status.success()
}

/// Kills the server and returns what it wrote on stderr.
fn stderr_of(mut server: Server) -> String {
    let _ = server.child.kill();
    let _ = server.child.wait();
    let mut text = String::new();
    if let Some(mut e) = server.child.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    text
}

#[test]
fn init_prints_the_first_token_path_as_serve_would_and_serve_writes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("t.db").display());
    let init = |args: &[&str], env: Option<(&str, &str)>| -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(["init", "--database", &db, "--issuer", "https://auth.example.com"]).args(args);
        cmd.env_remove("TOKENMINT_TOKEN_PATH");
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let endpoint = |out: &Output| -> String {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v["token_endpoint"].as_str().unwrap().to_owned()
    };
    // A flag (repeatable), the environment (comma-separated) and the config file, as serve.
    let out = init(&["--token-path", "/connect/token", "--token-path", "/oauth/token"], None);
    assert_eq!(endpoint(&out), "https://auth.example.com/connect/token");
    let out = init(&[], Some(("TOKENMINT_TOKEN_PATH", "/api/auth/v2/token,/oauth/token")));
    assert_eq!(endpoint(&out), "https://auth.example.com/api/auth/v2/token");
    let cfg = dir.path().join("tokenmint.toml");
    std::fs::write(&cfg, "token_paths = [\"/authorize\"]\n").unwrap();
    let out = init(&["--config", cfg.to_str().unwrap()], None);
    assert_eq!(endpoint(&out), "https://auth.example.com/authorize");
    assert_eq!(endpoint(&init(&[], None)), "https://auth.example.com/oauth/token");
    // A path serve would refuse, init refuses the same way.
    let out = init(&["--token-path", "/admin/token"], None);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--token-path") && err.contains("/admin/token"), "{err}");

    // serve's first start writes the first path too, and it works.
    let fresh = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = serve(
        fresh.path(),
        port,
        &["--token-path", "/connect/token", "--token-path", "/oauth/token"],
    );
    let admin = admin_credential(fresh.path());
    let url = format!("http://127.0.0.1:{port}/connect/token");
    assert_eq!(admin["token_endpoint"], url.as_str());
    assert!(gets_token(&url, &admin));
    drop(server);
}

#[test]
fn a_second_serve_or_gateway_on_a_busy_port_says_so_once_and_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = serve(dir.path(), port, &[]);
    let admin = admin_credential(dir.path());
    let addr = format!("127.0.0.1:{port}");

    let other = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &addr, "--database"])
        .arg(format!("sqlite://{}", other.path().join("t.db").display()))
        .env_remove("TOKENMINT_MASTER_KEY")
        .output()
        .unwrap();
    let check = |out: &Output, what: &str| {
        assert!(!out.status.success(), "{what} started on a busy port");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("cannot listen on {addr}")), "{what}: {err}");
        assert_eq!(err.matches("already in use").count(), 1, "{what}: {err}");
        assert!(!err.contains("os error"), "{what} repeats the OS error: {err}");
        let hint = err.lines().find(|l| l.starts_with("hint: ")).unwrap_or_else(|| panic!("{err}"));
        assert!(hint.contains("stop the other process") && hint.contains("--listen"), "{hint}");
    };
    check(&out, "serve");

    // The gateway, told to listen where the server does.
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://{addr}\"\nclient_id = \"{}\"\n[[route]]\npath_prefix = \"/a\"\n\
             upstream = \"http://127.0.0.1:1\"\nread_scope = \"a:read\"\nwrite_scope = \"a:write\"\n",
            admin["client_id"].as_str().unwrap()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["gateway", "--listen", &addr, "--config"])
        .arg(&config)
        .env("TOKENMINT_CLIENT_SECRET", admin["client_secret"].as_str().unwrap())
        .output()
        .unwrap();
    check(&out, "gateway");
    drop(server);
}

/// Collects a child's stderr on a thread, so a test can wait for a line while it runs.
fn collect_stderr(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<String>> {
    let text = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let sink = text.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    text
}

#[cfg(unix)]
#[test]
fn sighup_reloads_serve_and_never_stops_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = serve(dir.path(), port, &[]);
    let logs = collect_stderr(&mut server.child);
    let admin = admin_credential(dir.path());
    let url = format!("http://127.0.0.1:{port}/oauth/token");
    let pid = server.child.id().to_string();
    for round in 1..=3 {
        assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
        // One log line per signal.
        let deadline = Instant::now() + Duration::from_secs(10);
        while logs.lock().unwrap().matches("changes and signing keys reloaded").count() < round {
            assert!(Instant::now() < deadline, "no reload logged: {}", logs.lock().unwrap());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(server.child.try_wait().unwrap().is_none(), "SIGHUP stopped the server");
        assert!(gets_token(&url, &admin));
    }
    let text = logs.lock().unwrap().clone();
    let line = text.lines().find(|l| l.contains("reloaded")).unwrap();
    assert!(line.contains("tls") && line.contains("not served"), "{line}");
}

/// Runs `args` with stderr on a pseudo-terminal (through `script`), returning what it wrote.
fn on_a_terminal(args: &str, no_color: bool) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        return None;
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &format!("{BIN} {args}"), "/dev/null"]).env_remove("NO_COLOR");
    if no_color {
        cmd.env("NO_COLOR", "1");
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn logs_are_coloured_only_on_a_terminal_without_no_color() {
    const ESC: char = '\u{1b}';
    // A pipe: serve's, the gateway's and init's logs are plain text.
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), free_port(), &[]);
    let admin = admin_credential(dir.path());
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"{}\"\nclient_id = \"{}\"\n[[route]]\npath_prefix = \"/a\"\n\
             upstream = \"http://127.0.0.1:1\"\nread_scope = \"a:read\"\nwrite_scope = \"a:write\"\n",
            server.base,
            admin["client_id"].as_str().unwrap()
        ),
    )
    .unwrap();
    let gateway_port = free_port();
    let gateway = Command::new(BIN)
        .args(["gateway", "--listen", &format!("127.0.0.1:{gateway_port}"), "--config"])
        .arg(&config)
        .env("TOKENMINT_CLIENT_SECRET", admin["client_secret"].as_str().unwrap())
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let gateway = Server { child: gateway, base: String::new() };
    wait_for_port(gateway_port);
    let logs = stderr_of(gateway);
    assert!(logs.contains("tokenmint gateway listening"), "{logs}");
    assert!(!logs.contains(ESC), "the gateway's log to a pipe is coloured: {logs:?}");
    let logs = stderr_of(server);
    assert!(logs.contains("tokenmint listening"), "{logs}");
    assert!(!logs.contains(ESC), "serve's log to a pipe is coloured: {logs:?}");

    let other = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", other.path().join("t.db").display());
    let out = Command::new(BIN)
        .args(["init", "--database", &db])
        .env_remove("NO_COLOR")
        .output()
        .unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(logs.contains("created the first signing key"), "{logs}");
    assert!(!logs.contains(ESC), "init's log to a pipe is coloured: {logs:?}");

    // A terminal: coloured, unless NO_COLOR is set.
    let args = format!("init --database sqlite://{}", other.path().join("tty.db").display());
    if let Some(coloured) = on_a_terminal(&args, false) {
        assert!(coloured.contains(ESC), "no colour on a terminal: {coloured:?}");
        let args = format!("init --database sqlite://{}", other.path().join("tty2.db").display());
        let plain = on_a_terminal(&args, true).unwrap();
        assert!(plain.contains("created the first signing key"), "{plain}");
        assert!(!plain.contains(ESC), "colour despite NO_COLOR: {plain:?}");
    }
}

#[test]
fn a_credential_that_creates_its_organization_says_so_and_orgs_create_explains_the_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), free_port(), &["--product-area", "eligibility"]);
    admin_credential(dir.path());
    let creds = dir.path().join("tokenmint-admin.json");
    let run = |args: &[&str]| -> Output {
        Command::new(BIN)
            .args(args)
            .env("TOKENMINT_ENDPOINT", &server.base)
            .env("TOKENMINT_ADMIN_CREDENTIALS", &creds)
            .output()
            .unwrap()
    };
    let create = |name: &str, output: &str| {
        run(&[
            "credentials",
            "create",
            "--name",
            name,
            "--org",
            "acme",
            "--environment",
            "sandbox",
            "--output",
            output,
        ])
    };
    let first = create("first", "json");
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let note = String::from_utf8_lossy(&first.stderr);
    assert!(note.contains("Created the organization 'acme'"), "{note}");
    // stdout is the credential's JSON alone.
    let created: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert!(created["client_id"].as_str().unwrap().starts_with("tmc_"));
    // The second credential finds the organization: no note.
    let second = create("second", "table");
    assert!(second.status.success());
    assert!(!String::from_utf8_lossy(&second.stderr).contains("Created the organization"));

    let conflict = run(&["orgs", "create", "acme"]);
    assert!(!conflict.status.success());
    let err = String::from_utf8_lossy(&conflict.stderr);
    assert!(err.contains("409") && err.contains("organization 'acme' already exists"), "{err}");
    let hint = err.lines().find(|l| l.starts_with("hint: ")).unwrap_or_else(|| panic!("{err}"));
    assert!(hint.contains("tokenmint orgs list"), "{hint}");
    assert!(String::from_utf8_lossy(&run(&["orgs", "list"]).stdout).contains("acme"));
}
