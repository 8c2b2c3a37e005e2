//! Token issuance over HTTP with one instance on SQLite, one instance on PostgreSQL and two
//! instances sharing one PostgreSQL database, in the same run.
//!
//! `cargo bench -p tokenmint-server --bench instances` (needs PostgreSQL; see
//! `TOKENMINT_TEST_POSTGRES`). PostgreSQL is reached through a counting TCP proxy, so the table
//! shows how often the instances talked to the database while they issued tokens: the hot path
//! reads credentials and keys from memory, and the only database traffic is the background
//! change-log poll and the per-minute usage counts, whatever the request rate.
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) each scenario runs for a moment
//! only, to prove the benchmark still works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

#[allow(dead_code, reason = "the outage controls are for the tests")]
#[path = "../tests/common/proxy.rs"]
mod proxy;

use proxy::Proxy;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config};
use tokenmint_store::SqlStore;
use tokenmint_store::testing::TestDatabase;

const CONNECTIONS: usize = 16;

struct Running {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

async fn start(url: &str, key: &MasterKey) -> (Running, Option<FirstStart>) {
    let mut config = Config::new(url.to_owned(), key.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.signing_alg = SigningAlgorithm::ES256;
    config.token_rate_limit = 0;
    config.product_areas = ProductAreas::parse(&["eligibility"]).unwrap();
    config.issuer = Some("https://auth.example.test".to_owned());
    let store = SqlStore::connect(url, true).await.unwrap();
    let mut app = Application::build(config, Arc::new(store)).await.unwrap();
    let first = app.take_first_start();
    let base = format!("http://{}", app.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (Running { base, stop, task }, first)
}

impl Running {
    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

struct Outcome {
    tokens: u64,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

/// `CONNECTIONS` keep-alive clients request tokens for `duration`, spread over `bases`.
async fn drive(bases: &[String], body: &str, duration: Duration) -> Outcome {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..CONNECTIONS {
        let url = format!("{}/oauth/token", bases[i % bases.len()]);
        let body = body.to_owned();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::with_capacity(50_000);
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let res = http
                    .post(&url)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(res.status(), 200);
                res.bytes().await.unwrap();
                latencies.push(t.elapsed());
            }
            latencies
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| all[((all.len() - 1) as f64 * q) as usize];
    Outcome {
        tokens: all.len() as u64,
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    }
}

fn form(client_id: &str, secret: &str) -> String {
    format!("grant_type=client_credentials&client_id={client_id}&client_secret={secret}")
}

fn admin_of(first: Option<FirstStart>) -> String {
    let Some(FirstStart::Initialized(admin)) = first else { panic!("a fresh database") };
    form(&admin.client_id, &admin.client_secret)
}

fn main() {
    let benchmarking = std::env::args().any(|a| a == "--bench");
    let duration = if benchmarking { Duration::from_secs(5) } else { Duration::from_millis(300) };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let key = MasterKey::generate();
        let dir = tempfile::tempdir().unwrap();

        let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let (one, first) = start(&sqlite_url, &key).await;
        let body = admin_of(first);
        drive(std::slice::from_ref(&one.base), &body, duration / 5).await;
        let sqlite = drive(std::slice::from_ref(&one.base), &body, duration).await;
        one.stop().await;

        let Some(db) = TestDatabase::create().await else {
            eprintln!("skipping the PostgreSQL scenarios: no PostgreSQL server");
            return;
        };
        let host = db.url().trim_start_matches("postgres://").split('/').next().unwrap();
        let host = host.rsplit('@').next().unwrap().to_owned();
        let pg = Proxy::start(&host).await;
        let url = db.url().replacen(&host, &pg.addr.to_string(), 1);
        let (a, first) = start(&url, &key).await;
        let body = admin_of(first);
        drive(std::slice::from_ref(&a.base), &body, duration / 5).await;
        let before = pg.client_writes();
        let pg_one = drive(std::slice::from_ref(&a.base), &body, duration).await;
        let pg_one_writes = pg.client_writes() - before;

        let (b, _) = start(&url, &key).await;
        let bases = [a.base.clone(), b.base.clone()];
        drive(&bases, &body, duration / 5).await;
        let before = pg.client_writes();
        let pg_two = drive(&bases, &body, duration).await;
        let pg_two_writes = pg.client_writes() - before;
        a.stop().await;
        b.stop().await;
        db.drop_now().await;

        println!(
            "\ntoken issuance over HTTP, ES256, {CONNECTIONS} keep-alive connections, {} s per row",
            duration.as_secs_f64()
        );
        println!(
            "| setup | tokens/s | vs SQLite | p50 | p99 | PostgreSQL writes | writes/s | per 1,000 tokens |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        let row = |name: &str, o: &Outcome, writes: Option<u64>| {
            let (w, rate, per) = match writes {
                Some(w) => (
                    w.to_string(),
                    format!("{:.1}", w as f64 / duration.as_secs_f64()),
                    format!("{:.2}", w as f64 * 1000.0 / o.tokens as f64),
                ),
                None => ("n/a".to_owned(), "n/a".to_owned(), "n/a".to_owned()),
            };
            println!(
                "| {name} | {:.0} | {:.2} | {:.2} ms | {:.2} ms | {w} | {rate} | {per} |",
                o.per_second,
                o.per_second / sqlite.per_second,
                o.p50.as_secs_f64() * 1e3,
                o.p99.as_secs_f64() * 1e3,
            );
        };
        row("one instance, SQLite", &sqlite, None);
        row("one instance, PostgreSQL", &pg_one, Some(pg_one_writes));
        row("two instances, one PostgreSQL", &pg_two, Some(pg_two_writes));
    });
}
