//! `tokenmint gateway` as a process: its options, its refusal of a bad configuration, and a
//! SIGHUP reload in front of a real `tokenmint serve`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::free_port;
use serde_json::Value;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A GET with a bearer token over plain HTTP/1.1; returns the status code.
fn get(port: u16, path: &str, token: &str) -> u16 {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response.split(' ').nth(1).unwrap().parse().unwrap()
}

fn route(prefix: &str, upstream: &str) -> String {
    format!(
        "[[route]]\npath_prefix = \"{prefix}\"\nupstream = \"{upstream}\"\n\
         read_scope = \"tokenmint:admin\"\nwrite_scope = \"tokenmint:admin\"\n"
    )
}

#[test]
fn gateway_help_documents_its_options() {
    let out = Command::new(BIN).args(["gateway", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for option in [
        "--config",
        "--listen",
        "--issuer",
        "--audience",
        "--client-id",
        "--client-secret-file",
        "--token-url",
        "--redis",
        "TOKENMINT_CLIENT_SECRET",
    ] {
        assert!(help.contains(option), "{option} missing from:\n{help}");
    }
}

#[test]
fn a_bad_gateway_configuration_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(
        &config,
        "issuer = \"http://127.0.0.1:1\"\nfollow_revocations = false\n[[route]]\npath_prefix = \"/a\"\nupstream = \"http://127.0.0.1:2\"\nwrite_scope = \"a:write\"\n",
    )
    .unwrap();
    let out = Command::new(BIN).args(["gateway", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("route[0].read_scope"), "{stderr}");
}

fn admin_credential(dir: &Path) -> Value {
    let creds = dir.join("tokenmint-admin.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    // Polled until the file holds the whole credential, not only until it exists.
    loop {
        if let Ok(text) = std::fs::read_to_string(&creds)
            && let Ok(admin) = serde_json::from_str::<Value>(&text)
        {
            return admin;
        }
        assert!(Instant::now() < deadline, "serve wrote no admin credential");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(unix)]
#[test]
fn the_gateway_reloads_its_routes_on_sighup_and_flags_beat_the_file_and_logs_its_own_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server_port = free_port();
    let issuer = format!("http://127.0.0.1:{server_port}");
    let _server = Process(
        Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{server_port}"), "--database"])
            .arg(format!("sqlite://{}", dir.path().join("t.db").display()))
            .env_remove("TOKENMINT_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(server_port);
    let admin = admin_credential(dir.path());
    let id = admin["client_id"].as_str().unwrap();
    let secret = admin["client_secret"].as_str().unwrap();

    // Nothing listens upstream: a forwarded request is a 502, an unrouted one a 404.
    let upstream = format!("http://127.0.0.1:{}", free_port());
    let gateway_port = free_port();
    let config = dir.path().join("gateway.toml");
    let head = format!("listen = \"127.0.0.1:1\"\nissuer = \"{issuer}\"\nclient_id = \"{id}\"\n");
    std::fs::write(&config, format!("{head}{}", route("/old", &upstream))).unwrap();
    let log = dir.path().join("gateway.log");
    let mut gateway = Process(
        Command::new(BIN)
            .args(["gateway", "--config"])
            .arg(&config)
            .env("TOKENMINT_LISTEN", format!("127.0.0.1:{gateway_port}"))
            .env("TOKENMINT_CLIENT_SECRET", secret)
            .env_remove("TOKENMINT_LOG")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap(),
    );
    wait_for_port(gateway_port);

    let token = Command::new(BIN)
        .args(["token", "--token-url", &format!("{issuer}/oauth/token"), "--client-id", id])
        .env("TOKENMINT_CLIENT_SECRET", secret)
        .output()
        .unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap().trim().to_owned();

    assert_eq!(get(gateway_port, "/old/x", &token), 502);
    assert_eq!(get(gateway_port, "/new/x", &token), 404);

    std::fs::write(
        &config,
        format!("{head}{}{}", route("/old", &upstream), route("/new", &upstream)),
    )
    .unwrap();
    let pid = gateway.0.id().to_string();
    assert!(Command::new("kill").args(["-HUP", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(5);
    while get(gateway_port, "/new/x", &token) != 502 {
        assert!(Instant::now() < deadline, "the new route was not loaded");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(get(gateway_port, "/old/x", &token), 502, "the old route is kept");

    // Stopping is logged under the gateway command's target, not the server's.
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(gateway.0.wait().unwrap().success());
    let log = std::fs::read_to_string(&log).unwrap();
    let shutdown =
        log.lines().find(|l| l.contains("shutting down")).unwrap_or_else(|| panic!("{log}"));
    assert!(shutdown.contains("tokenmint::cmd::gateway"), "{shutdown}");
    assert!(!log.contains("cmd::serve"), "{log}");
    assert!(log.contains("tokenmint gateway stopped"), "{log}");
}
