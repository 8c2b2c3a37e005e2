//! The server killed with SIGKILL in the middle of concurrent credential creations and secret
//! rotations: after a restart every write it acknowledged is there, nothing half-written is,
//! and it starts cleanly. On SQLite and, when available, PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::{Server, free_port};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tokenmint");
const WRITERS: usize = 8;

async fn serve(dir: &Path, db: &str, master_key: &str) -> Server {
    let port = free_port();
    let child = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--database", db])
        .args(["--product-area", "eligibility", "--token-rate-limit", "0"])
        .arg("--admin-credential-file")
        .arg(dir.join("admin.json"))
        .env("TOKENMINT_MASTER_KEY", master_key)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(r) = http.get(format!("{base}/healthz")).send().await
            && r.status() == 200
        {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not start cleanly");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Server { child, base }
}

async fn token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> reqwest::Response {
    http.post(format!("{base}/oauth/token"))
        .form(&[("grant_type", "client_credentials"), ("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap()
}

async fn admin_token(http: &reqwest::Client, base: &str, dir: &Path) -> String {
    let admin: Value =
        serde_json::from_slice(&std::fs::read(dir.join("admin.json")).unwrap()).unwrap();
    let t: Value = token(
        http,
        base,
        admin["client_id"].as_str().unwrap(),
        admin["client_secret"].as_str().unwrap(),
    )
    .await
    .json()
    .await
    .unwrap();
    t["access_token"].as_str().unwrap().to_owned()
}

/// What the server acknowledged: each credential's newest secret it confirmed.
type Acknowledged = Arc<Mutex<HashMap<String, String>>>;

async fn writer(
    http: reqwest::Client,
    base: String,
    bearer: String,
    n: usize,
    acked: Acknowledged,
) {
    for i in 0.. {
        let created = http
            .post(format!("{base}/admin/v1/credentials"))
            .bearer_auth(&bearer)
            .json(&json!({
                "name": format!("w{n}-{i}"),
                "org": format!("org{}", n % 3),
                "environment": "sandbox",
                "permissions": ["eligibility:read"],
            }))
            .send()
            .await;
        let Ok(created) = created else { return };
        if created.status() != 201 {
            return;
        }
        let Ok(v) = created.json::<Value>().await else { return };
        let id = v["client_id"].as_str().unwrap().to_owned();
        acked.lock().unwrap().insert(id.clone(), v["client_secret"].as_str().unwrap().to_owned());
        let rotated = http
            .post(format!("{base}/admin/v1/credentials/{id}/secrets"))
            .bearer_auth(&bearer)
            .json(&json!({"overlap_seconds": 3600}))
            .send()
            .await;
        let Ok(rotated) = rotated else { return };
        if rotated.status() != 201 && rotated.status() != 200 {
            return;
        }
        // The old secret keeps working for the overlap, so a rotation whose answer was lost in
        // the crash leaves the last acknowledged secret valid either way.
        let Ok(v) = rotated.json::<Value>().await else { return };
        acked.lock().unwrap().insert(id, v["client_secret"].as_str().unwrap().to_owned());
    }
}

async fn all_credentials(http: &reqwest::Client, base: &str, bearer: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/admin/v1/credentials?limit=500");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value =
            http.get(url).bearer_auth(bearer).send().await.unwrap().json().await.unwrap();
        out.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

async fn crash_and_recover(db: &str) {
    let dir = tempfile::tempdir().unwrap();
    let master_key = "ab".repeat(32);
    let http = reqwest::Client::new();
    let mut server = serve(dir.path(), db, &master_key).await;
    let bearer = admin_token(&http, &server.base, dir.path()).await;

    let acked: Acknowledged = Arc::default();
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            tokio::spawn(writer(
                http.clone(),
                server.base.clone(),
                bearer.clone(),
                n,
                acked.clone(),
            ))
        })
        .collect();
    // Let writes pile up, then pull the plug mid-stream.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 40 {
        assert!(Instant::now() < deadline, "the writers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.child.kill().unwrap(); // SIGKILL: no shutdown code runs.
    server.child.wait().unwrap();
    for w in writers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    drop(server);

    let server = serve(dir.path(), db, &master_key).await;
    let bearer = admin_token(&http, &server.base, dir.path()).await;
    let listed = all_credentials(&http, &server.base, &bearer).await;
    let by_id: HashMap<&str, &Value> =
        listed.iter().map(|c| (c["client_id"].as_str().unwrap(), c)).collect();

    // Every acknowledged write is there and works: the newest confirmed secret gets a token.
    for (id, secret) in &acked {
        assert!(by_id.contains_key(id.as_str()), "acknowledged credential {id} is missing");
        let res = token(&http, &server.base, id, secret).await;
        assert_eq!(res.status(), 200, "the acknowledged secret of {id} does not work");
    }
    // Nothing is half-written: every credential, acknowledged or not, is whole.
    for c in &listed {
        let id = c["client_id"].as_str().unwrap();
        let full: Value = http
            .get(format!("{}/admin/v1/credentials/{id}", server.base))
            .bearer_auth(&bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(!full["secrets"].as_array().unwrap().is_empty(), "{id} has no secret");
        assert!(!full["name"].as_str().unwrap().is_empty());
        assert!(full["org"].as_str().is_some());
    }
    eprintln!("{} acknowledged writes survived; {} credentials in all", acked.len(), listed.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_keeps_every_acknowledged_write_across_a_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("crash.db").display());
    crash_and_recover(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_keeps_every_acknowledged_write_across_a_sigkill() {
    let Some(db) = tokenmint_store::testing::TestDatabase::create().await else { return };
    crash_and_recover(db.url()).await;
    db.drop_now().await;
}
