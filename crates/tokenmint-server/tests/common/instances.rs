//! Several `tokenmint serve` instances of one deployment (one database, maybe one Redis),
//! each on its own random port, for the tests of what instances share.

#![allow(clippy::print_stderr)]

use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config, ManualClock};
use tokenmint_store::SqlStore;
use tokenmint_store::testing::services_required;

/// The issuer every instance of a test deployment names.
pub const ISSUER: &str = "https://auth.example.test";

/// A running instance; [`stop`](Self::stop) ends it and waits for it.
pub struct Instance {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Instance {
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// Starts an instance over `db_url`: ES256, the `eligibility` area, [`ISSUER`], then `tweak`.
/// The first instance of a database also returns the admin credential it made.
pub async fn start(
    db_url: &str,
    key: &MasterKey,
    clock: Arc<ManualClock>,
    tweak: impl FnOnce(&mut Config),
) -> (Instance, Option<FirstStart>) {
    let mut config = Config::new(db_url.to_owned(), key.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.product_areas = tokenmint_core::scope::ProductAreas::parse(&["eligibility"]).unwrap();
    config.signing_alg = tokenmint_core::keys::SigningAlgorithm::ES256;
    config.issuer = Some(ISSUER.to_owned());
    tweak(&mut config);
    let store = SqlStore::connect(db_url, true).await.unwrap();
    let mut app = Application::build_with_clock(config, Arc::new(store), clock).await.unwrap();
    let first = app.take_first_start();
    let base = format!("http://{}", app.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (Instance { base, stop: Some(tx), task: Some(task) }, first)
}

/// Where the tests' Redis is: `TOKENMINT_TEST_REDIS`, else 127.0.0.1:6379.
pub fn redis_target() -> String {
    std::env::var("TOKENMINT_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".to_owned())
}

/// Whether Redis answers; when it does not, says the test is skipped, or fails when
/// `TOKENMINT_REQUIRE_SERVICES=1` (CI) requires it.
pub async fn redis_available() -> bool {
    let ok = tokio::net::TcpStream::connect(redis_target()).await.is_ok();
    if !ok {
        assert!(
            !services_required(),
            "Redis is required (TOKENMINT_REQUIRE_SERVICES=1) but unreachable at {}",
            redis_target()
        );
        eprintln!("skipping: Redis is not reachable at {}", redis_target());
    }
    ok
}
