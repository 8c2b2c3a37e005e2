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

/// The gateway's exit, or `None` if it is still running after `limit` (then it is stopped).
fn exit_within(mut child: Child, limit: Duration) -> Option<(std::process::ExitStatus, String)> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
            return Some((status, stderr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A relative `client_secret_file` is the config file's, wherever the gateway is started; one
/// that cannot be read stops the start with one error naming where it was looked for.
#[test]
fn a_relative_secret_file_is_the_config_files_and_an_unreadable_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&conf).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    let config = conf.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "issuer = \"http://127.0.0.1:1\"\nclient_id = \"tmc_gw\"\n\
             client_secret_file = \"gw.secret\"\n{}",
            route("/a", "http://127.0.0.1:2")
        ),
    )
    .unwrap();
    // The same name in the working directory is not the one meant.
    std::fs::write(elsewhere.join("gw.secret"), "tms_wrong").unwrap();
    let start = |port: u16| {
        Command::new(BIN)
            .args(["gateway", "--listen", &format!("127.0.0.1:{port}"), "--config"])
            .arg(&config)
            .current_dir(&elsewhere)
            .env_remove("TOKENMINT_CLIENT_SECRET")
            .env_remove("TOKENMINT_CLIENT_SECRET_FILE")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (status, stderr) = exit_within(start(free_port()), Duration::from_secs(20))
        .expect("the gateway started without its secret file");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let expected = conf.join("gw.secret").display().to_string();
    assert!(stderr.contains("`client_secret_file`") && stderr.contains(&expected), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("error:")).count(), 1, "{stderr}");

    std::fs::write(conf.join("gw.secret"), "tms_right\n").unwrap();
    let port = free_port();
    let running = Process(start(port));
    wait_for_port(port);
    drop(running);
}

/// A wrongly typed value in the gateway's file is named with its table path and what to write.
#[test]
fn a_wrongly_typed_gateway_value_names_its_key_and_what_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    let head = "issuer = \"http://127.0.0.1:1\"\nfollow_revocations = false\n";
    let cases = [
        (
            format!("{head}{}rate_limit_per_minute = \"600\"\n", route("/a", "http://127.0.0.1:2")),
            "invalid `route[0].rate_limit_per_minute`: expected a whole number, not text",
        ),
        (
            format!("request_timeout = 30\n{head}{}", route("/a", "http://127.0.0.1:2")),
            "request_timeout = \"30s\"",
        ),
        (
            format!("{head}{}", route("/a", "http://127.0.0.1:2").replace("[[route]]", "[route]")),
            "write [[route]] (an array of tables",
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&config, text).unwrap();
        let out = Command::new(BIN).args(["gateway", "--config"]).arg(&config).output().unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("invalid type") && !stderr.contains("u32"), "{stderr}");
    }
}
