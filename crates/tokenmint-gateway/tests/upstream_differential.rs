//! Differential test of the canonical path against real upstreams: Python's `http.server` and
//! nginx with its default configuration. Many generated paths are sent through the gateway
//! with a token that holds only `files:read`; `/files/private` needs `files:write`. Whatever
//! path an upstream says it read (Python's translated file path, nginx's normalised `$uri`)
//! must never fall under `/files/private`.
//!
//! nginx comes from Debian (`.ci/setup-nginx.sh`). Without it the nginx half is skipped with a
//! message, unless TOKENMINT_REQUIRE_SERVICES=1, which makes it fail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::*;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

const GUARDED: &str = "/files/private";
const PATHS: usize = 1_500;

/// Pieces upstreams read in surprising ways, and plain ones.
const ATOMS: &[&str] = &[
    "files",
    "private",
    "Private",
    "PRIVATE",
    "priv",
    "ate",
    "%70",
    "%50",
    "%61",
    "%2e",
    "%2E",
    ".",
    "..",
    "%2f",
    "%2F",
    "%5c",
    "\\",
    ";x=1",
    ";",
    "%3b",
    "%00",
    "%20",
    "%09",
    "%25",
    "%2570",
    "%252e",
    "%C5%BF",
    "%E2%84%AA",
    "%c0%af",
    "x",
    "~",
    "%7e",
    "%",
    "%zz",
    "",
    "%2e%2e",
    "..;",
    "private.",
    "privat%65",
    "PRIV%41TE",
    "%2e%2e%2f",
    "..%2f",
    "%u0070",
];

/// Pieces every upstream reads plainly, so that many paths get through to be checked.
const PLAIN: &[&str] = &[
    "files", "private", "x", "priv", "ate", "%70", "%61", "%7e", "~", "Report", "%41", "%C3%A9",
    "a.b", "%2e", "-", "_",
];

/// A small deterministic generator, so a failure names a path that fails again.
struct Rng(u64);

impl Rng {
    fn next(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound as u64) as usize
    }
}

fn generated_paths() -> Vec<String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut paths = vec![
        "/files/%70rivate/x".to_owned(),
        "/files//private/x".to_owned(),
        "/files/priv%61te/x".to_owned(),
        "/files/private;x=1/y".to_owned(),
        "/files/Private/x".to_owned(),
        "/files/private%00".to_owned(),
        "/files/private%20".to_owned(),
        "/files/x/../private/y".to_owned(),
        "/files/x/%2e%2e/private/y".to_owned(),
    ];
    while paths.len() < PATHS {
        // Most paths start under /files, where the guarded prefix is one segment away.
        let mut path = if rng.next(4) == 0 { String::new() } else { "/files".to_owned() };
        for _ in 0..=rng.next(4) {
            path.push('/');
            for _ in 0..=rng.next(3) {
                // One tricky piece in five: paths stay close to what gets forwarded.
                let atoms = if rng.next(5) == 0 { ATOMS } else { PLAIN };
                path.push_str(atoms[rng.next(atoms.len())]);
            }
        }
        paths.push(path);
    }
    paths
}

fn under_guarded(path: &str) -> bool {
    path.strip_prefix(GUARDED).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

fn routes(upstream: &str) -> String {
    format!(
        r#"
[[route]]
path_prefix = "/"
upstream = "{upstream}"
read_scope = "files:read"
write_scope = "files:write"

[[route]]
path_prefix = "/files"
upstream = "{upstream}"
read_scope = "files:read"
write_scope = "files:write"

[[route]]
path_prefix = "{GUARDED}"
upstream = "{upstream}"
read_scope = "files:write"
write_scope = "files:write"
"#
    )
}

/// Sends every generated path through a gateway in front of `upstream_url`; returns the
/// paths the upstream read for the requests that were forwarded, after checking each.
async fn send_all(upstream_name: &str, upstream_url: &str) -> usize {
    // The gateway's configuration takes routes only after its fixed ones; a catch-all route
    // and the two /files routes go to this upstream.
    let setup = Setup::start_with(&routes(upstream_url)).await;
    let reader = setup.token("production", &["files:read"]).await;
    let addr = setup.gateway.trim_start_matches("http://").to_owned();
    let (mut forwarded, mut guarded_refusals) = (0, 0);
    for path in generated_paths() {
        let (status, body) = raw_request(&addr, "GET", &path, &reader).await;
        match status {
            200 => {
                forwarded += 1;
                let read = body.trim_end_matches('\n');
                assert!(
                    !under_guarded(read),
                    "{path:?} was forwarded and {upstream_name} read it as {read:?}"
                );
            }
            403 => guarded_refusals += 1,
            // Refused by the gateway (or by the upstream itself): nothing guarded was served.
            _ => {}
        }
    }
    // The test means something only if many paths got through and some hit the guard.
    assert!(forwarded > PATHS / 10, "{upstream_name}: only {forwarded} paths were forwarded");
    assert!(guarded_refusals > 0, "{upstream_name}: no path was routed to the guarded route");
    forwarded
}

/// A child process killed when the test ends.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const PYTHON_UPSTREAM: &str = r#"
import http.server, os, sys
root = os.path.realpath(sys.argv[1])
class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=root, **kwargs)
    def do_GET(self):
        # The file path this server would serve for the request, relative to its root.
        rel = os.path.relpath(self.translate_path(self.path), root)
        body = ("/" if rel == "." else "/" + rel).encode("utf-8", "surrogatepass")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// Python's `http.server` on a free port, serving (and describing) paths under a temporary
/// directory; it answers in HTTP/1.0.
fn python_upstream(dir: &std::path::Path) -> (Process, String) {
    let script = dir.join("upstream.py");
    std::fs::write(&script, PYTHON_UPSTREAM).unwrap();
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs the upstream");
    let stdout = child.stdout.take().unwrap();
    let python = Process(child);
    let mut port = String::new();
    BufReader::new(stdout).read_line(&mut port).unwrap();
    let port = port.trim().to_owned();
    assert!(!port.is_empty(), "the upstream prints its port");
    (python, format!("http://127.0.0.1:{port}"))
}

#[tokio::test]
async fn no_generated_path_reaches_the_guarded_prefix_as_python_http_server_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_python, url) = python_upstream(dir.path());
    let forwarded = send_all("python http.server", &url).await;
    eprintln!("python http.server: {forwarded} of {PATHS} paths forwarded, none read as guarded");
}

#[tokio::test]
async fn an_http_1_0_upstream_is_answered_to_http_1_1_callers_in_http_1_1() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let (_python, url) = python_upstream(dir.path());
    let setup = Setup::start_with(&routes(&url)).await;
    let reader = setup.token("production", &["files:read"]).await;
    let addr = setup.gateway.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let request = format!(
        "GET /files/x HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {reader}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.ends_with("/files/x"), "{text}");
}

fn nginx_config(dir: &std::path::Path, port: u16) -> String {
    let d = dir.display();
    // Only what a test instance needs to run unprivileged in `dir`; the URI handling is
    // nginx's default (merge_slashes on, decoding, dot segments resolved).
    format!(
        r#"
daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/plain;
            return 200 "$uri\n";
        }}
    }}
}}
"#
    )
}

#[tokio::test]
async fn no_generated_path_reaches_the_guarded_prefix_as_nginx_reads_it() {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(nginx) = nginx else {
        if std::env::var("TOKENMINT_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("nginx is required (TOKENMINT_REQUIRE_SERVICES=1): run .ci/setup-nginx.sh");
        }
        eprintln!("skipped: nginx is not installed (apt-get install nginx, or .ci/setup-nginx.sh)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = closed_port().await.port();
    let config = dir.path().join("nginx.conf");
    std::fs::write(&config, nginx_config(dir.path(), port)).unwrap();
    let child = Command::new(nginx)
        .arg("-c")
        .arg(&config)
        .arg("-p")
        .arg(dir.path())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let _nginx = Process(child);
    let url = format!("http://127.0.0.1:{port}");
    let up = eventually(std::time::Duration::from_secs(10), async || {
        reqwest::get(format!("{url}/ready")).await.is_ok()
    })
    .await;
    assert!(
        up,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
    let forwarded = send_all("nginx", &url).await;
    eprintln!("nginx: {forwarded} of {PATHS} paths forwarded, none read as guarded");
}
