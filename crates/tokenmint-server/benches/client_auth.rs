//! What a refused client authentication costs, by why it was refused: a wrong secret for a
//! known client_id, a client_id never seen before, and an unknown one seen before. Timing must
//! not tell an attacker whether an id exists, so the three should cost the same.
//!
//! `cargo bench -p tokenmint-server --bench client_auth`; compare the three medians (the README
//! gives the ratio). In-process through the router, on SQLite, as the token endpoint runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenmint_core::MasterKey;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config};
use tokenmint_store::SqlStore;
use tower::ServiceExt;

fn request(client_id: &str) -> Request<Body> {
    Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "grant_type=client_credentials&client_id={client_id}&client_secret=tms_wrong"
        )))
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let (router, known) = rt.block_on(async {
        let mut config = Config::new(url.clone(), MasterKey::generate());
        config.listen = "127.0.0.1:0".parse().unwrap();
        // Failures are what is measured: nothing may be blocked along the way.
        config.brute_force.failures_per_client = u32::MAX;
        config.brute_force.failures_per_ip = u32::MAX;
        let store = SqlStore::connect(&url, true).await.unwrap();
        let mut app = Application::build(config, Arc::new(store)).await.unwrap();
        let Some(FirstStart::Initialized(admin)) = app.take_first_start() else { panic!() };
        let router = Application::router(app.state().clone());
        // Cache the known credential, as real traffic would have.
        let res = router.clone().oneshot(request(&admin.client_id)).await.unwrap();
        assert_eq!(res.status(), 401);
        (router, admin.client_id)
    });
    let refused = |router: axum::Router, req: Request<Body>| async move {
        let res = router.oneshot(req).await.unwrap();
        assert_eq!(res.status(), 401);
        axum::body::to_bytes(res.into_body(), 4096).await.unwrap()
    };
    let mut group = c.benchmark_group("client_auth_refused");
    group.bench_function("wrong secret, known id", |b| {
        b.to_async(&rt).iter(|| refused(router.clone(), request(&known)))
    });
    let fresh = AtomicU64::new(0);
    group.bench_function("unknown id never seen", |b| {
        b.to_async(&rt).iter(|| {
            let n = fresh.fetch_add(1, Ordering::Relaxed);
            refused(router.clone(), request(&format!("tmc_unknown{n:016}")))
        })
    });
    group.bench_function("unknown id seen before", |b| {
        b.to_async(&rt).iter(|| refused(router.clone(), request("tmc_unknownSeenBefore0000000")))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
