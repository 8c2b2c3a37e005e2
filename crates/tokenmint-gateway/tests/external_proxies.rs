//! The external-authorization mode end to end, behind real proxies from Debian: nginx with
//! `auth_request` and Caddy with `forward_auth`, configured as the README documents. A
//! read-only token reads, its write is refused, a request without a token is refused, and the
//! upstream receives the identity headers from the gateway, never the caller's.
//!
//! nginx and Caddy come from `.ci/setup-nginx.sh` and `.ci/setup-caddy.sh`. Without them these
//! tests are skipped with a message, unless TOKENMINT_REQUIRE_SERVICES=1, which makes them fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::*;
use reqwest::Method;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A child process stopped when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn binary(names: &[&str], setup_script: &str) -> Option<String> {
    let found = names.iter().find(|p| Path::new(p).exists()).map(|p| (*p).to_owned());
    if found.is_none() {
        if std::env::var("TOKENMINT_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("{names:?} is required (TOKENMINT_REQUIRE_SERVICES=1): run {setup_script}");
        }
        eprintln!("skipped: {} is not installed (run {setup_script})", names[0]);
    }
    found
}

/// The gateway in authz mode with a read-only route.
async fn authz_gateway() -> Setup {
    Setup::start_text(|server, production, _sandbox, secret| {
        format!(
            r#"
listen = "127.0.0.1:0"
issuer = "{issuer}"
audience = "{AUDIENCE}"
client_id = "{client_id}"
client_secret_file = "{secret}"
mode = "authz"

[[route]]
path_prefix = "/files"
upstream = "{upstream}"
read_scope = "files:read"
write_scope = "files:write"
"#,
            issuer = server.issuer,
            client_id = server.admin_id,
            secret = secret.display(),
            upstream = production.url,
        )
    })
    .await
}

fn host(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// What every proxy must show: reads pass with the gateway's identity headers, writes and
/// anonymous requests are refused, and the upstream never sees a refused request.
async fn check_through(proxy: &str, setup: &Setup) {
    let http = reqwest::Client::new();
    let (id, secret) = setup.server.credential("production", &["files:read"], &[AUDIENCE]).await;
    let reader = setup.server.token(&id, &secret).await;

    let read = http
        .get(format!("{proxy}/files/report?x=1"))
        .bearer_auth(&reader)
        .header("x-tokenmint-client-id", "someone-else")
        .header("x-tokenmint-org", "evil")
        .send()
        .await
        .unwrap();
    let read = Answer::from(read).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["path"], "/files/report");
    assert_eq!(read.body["query"], "x=1");
    assert_eq!(read.forwarded("x-tokenmint-client-id"), Some(id.as_str()));
    assert_eq!(read.forwarded("x-tokenmint-org"), Some("acme"));
    assert_eq!(read.forwarded("x-tokenmint-env"), Some("production"));
    assert_eq!(read.forwarded("x-tokenmint-scope"), Some("files:read"));

    for method in [Method::POST, Method::DELETE] {
        let write =
            http.request(method.clone(), format!("{proxy}/files/report")).bearer_auth(&reader);
        let write = write.body("{}").send().await.unwrap();
        assert_eq!(write.status(), 403, "{method} with a read-only token");
    }
    let anonymous = http.get(format!("{proxy}/files/report")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(
        anonymous.headers().get("www-authenticate").is_some(),
        "the Bearer challenge reaches the caller"
    );
}

async fn wait_up(url: &str, log: &Path) {
    let up = eventually(Duration::from_secs(15), async || reqwest::get(url).await.is_ok()).await;
    assert!(up, "{url} did not start: {}", std::fs::read_to_string(log).unwrap_or_default());
}

#[tokio::test]
async fn behind_nginx_auth_request_a_read_only_token_reads_and_cannot_write() {
    let Some(nginx) = binary(&["/usr/sbin/nginx", "/usr/bin/nginx"], ".ci/setup-nginx.sh") else {
        return;
    };
    let setup = authz_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().await.port();
    let d = dir.path().display();
    let config = format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
{locations}
    }}
}}
"#,
        locations = NGINX_LOCATIONS
            .replace("GATEWAY", host(&setup.gateway))
            .replace("UPSTREAM", host(&setup.production.url)),
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _nginx = Process(child);
    let proxy = format!("http://127.0.0.1:{port}");
    wait_up(&format!("{proxy}/"), &dir.path().join("error.log")).await;
    check_through(&proxy, &setup).await;
}

/// The README's nginx locations (GATEWAY and UPSTREAM stand for host:port).
const NGINX_LOCATIONS: &str = r#"
        location = /_tokenmint {
            internal;
            proxy_pass http://GATEWAY/_tokenmint;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Original-URI $request_uri;
        }
        location / {
            auth_request /_tokenmint;
            auth_request_set $tm_client_id $upstream_http_x_tokenmint_client_id;
            auth_request_set $tm_org $upstream_http_x_tokenmint_org;
            auth_request_set $tm_env $upstream_http_x_tokenmint_env;
            auth_request_set $tm_scope $upstream_http_x_tokenmint_scope;
            proxy_set_header X-Tokenmint-Client-Id $tm_client_id;
            proxy_set_header X-Tokenmint-Org $tm_org;
            proxy_set_header X-Tokenmint-Env $tm_env;
            proxy_set_header X-Tokenmint-Scope $tm_scope;
            proxy_pass http://UPSTREAM;
        }
"#;

#[tokio::test]
async fn behind_caddy_forward_auth_a_read_only_token_reads_and_cannot_write() {
    let Some(caddy) = binary(&["/usr/bin/caddy", "/usr/local/bin/caddy"], ".ci/setup-caddy.sh")
    else {
        return;
    };
    let setup = authz_gateway().await;
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().await.port();
    let caddyfile = format!(
        "{{\n    admin off\n    auto_https off\n}}\n\nhttp://127.0.0.1:{port} {{\n{site}}}\n",
        site = CADDY_SITE
            .replace("GATEWAY", host(&setup.gateway))
            .replace("UPSTREAM", host(&setup.production.url)),
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, caddyfile).unwrap();
    let log = dir.path().join("caddy.log");
    let child = Command::new(caddy)
        .args(["run", "--adapter", "caddyfile", "--config"])
        .arg(&path)
        .env("HOME", dir.path())
        .env("XDG_DATA_HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _caddy = Process(child);
    let proxy = format!("http://127.0.0.1:{port}");
    wait_up(&format!("{proxy}/"), &log).await;
    check_through(&proxy, &setup).await;
}

/// The README's Caddy site body (GATEWAY and UPSTREAM stand for host:port).
const CADDY_SITE: &str = r#"    forward_auth GATEWAY {
        uri /_tokenmint
        copy_headers X-Tokenmint-Client-Id X-Tokenmint-Org X-Tokenmint-Env X-Tokenmint-Scope
    }
    reverse_proxy UPSTREAM
"#;
