//! The token endpoint in-process (router, parsing, authentication, limits, signing, response)
//! against the bare signature it cannot avoid, per algorithm, in the same run.
//!
//! `cargo bench -p tokenmint-server --bench token_endpoint`. The ratio endpoint/signature is
//! what matters: it says how much of the request's cost is anything but the signature.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use axum::body::Body;
use criterion::{Criterion, criterion_group, criterion_main};
use http::Request;
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_core::jwt::{AudienceRef, ClaimsRef};
use tokenmint_core::keys::{GeneratedKey, SigningAlgorithm, SigningKey};
use tokenmint_core::scope::ProductAreas;
use tokenmint_proto::Environment;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config};
use tokenmint_store::SqlStore;
use tower::ServiceExt;

mod claims_setup;

fn bench(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    for alg in SigningAlgorithm::ALL {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("bench.db").display());
        let (router, body) = rt.block_on(async {
            let mut config = Config::new(url.clone(), MasterKey::generate());
            config.listen = "127.0.0.1:0".parse().unwrap();
            config.signing_alg = alg;
            // A limit no request reaches: every request pays for the check, none is refused.
            config.token_rate_limit = 1_000_000_000;
            config.product_areas = ProductAreas::parse(&["eligibility"]).unwrap();
            let store = SqlStore::connect(&url, true).await.unwrap();
            let mut app = Application::build(config, Arc::new(store)).await.unwrap();
            let Some(FirstStart::Initialized(admin)) = app.take_first_start() else { panic!() };
            let body = format!(
                "grant_type=client_credentials&client_id={}&client_secret={}",
                admin.client_id, admin.client_secret
            );
            (Application::router(app.state().clone()), body)
        });
        let mut group = c.benchmark_group(format!("token_endpoint/{alg}"));
        group.bench_function("full request", |b| {
            b.to_async(&rt).iter(|| {
                let req = Request::post("/oauth/token")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(body.clone()))
                    .unwrap();
                let r = router.clone();
                async move {
                    let res = r.oneshot(req).await.unwrap();
                    assert_eq!(res.status(), 200);
                    axum::body::to_bytes(res.into_body(), 4096).await.unwrap()
                }
            })
        });
        let g = GeneratedKey::generate(alg).unwrap();
        let key = SigningKey::from_pkcs8(&g.kid, alg, &g.pkcs8).unwrap();
        let claims = ClaimsRef {
            iss: "http://127.0.0.1:8080",
            sub: "tmc_0123456789abcdefghijklmn",
            client_id: "tmc_0123456789abcdefghijklmn",
            aud: AudienceRef::One("http://127.0.0.1:8080"),
            iat: 1_800_000_000,
            exp: 1_800_003_600,
            jti: "0123456789abcdefghijkl",
            scope: "eligibility:read eligibility:write",
            env: Environment::Production,
            org: "acme",
            extra: "",
        };
        group.bench_function("signature only", |b| {
            let mut sig = String::with_capacity(400);
            b.iter(|| {
                sig.clear();
                key.sign_into(
                    b"eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJodHRwOi8vMTI3LjAuMC4xOjgwODAifQ",
                    &mut sig,
                )
                .unwrap();
            })
        });
        group.bench_function("claims and signature", |b| {
            b.iter(|| tokenmint_core::jwt::encode(&key, &claims).unwrap())
        });
        group.finish();
        drop(dir);
    }
}

/// What the abuse protection and audit counting add to each token request: one rate-limit
/// check, one usage note into the counting channel (drained, as in the server), one check of
/// the brute-force block list.
fn hot_path_additions(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let mut group = c.benchmark_group("token_endpoint/additions");
    let limiter = tokenmint_http::RateLimiter::new(1000);
    let clock = tokenmint_http::SystemClock;
    group.bench_function("rate limit check", |b| {
        use tokenmint_http::Clock as _;
        b.iter(|| limiter.check("tmc_0123456789abcdefghijklmn", 1_000_000_000, clock.now()));
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(String, String, i64)>(65_536);
    rt.spawn(async move { while rx.recv().await.is_some() {} });
    group.bench_function("usage note", |b| {
        b.iter(|| {
            let _ = tx.try_send((
                "tmc_0123456789abcdefghijklmn".to_owned(),
                "sec_0123456789abcdef".to_owned(),
                1,
            ));
        });
    });
    let guard = tokenmint_server::abuse::AbuseGuard::new(
        tokenmint_server::abuse::BruteForceConfig::default(),
    );
    let ip: std::net::IpAddr = "192.0.2.1".parse().unwrap();
    let client_id = tokenmint_core::PresentedClientId::parse("tmc_0123456789abcdefghijklmn");
    let limits = tokenmint_http::Limits::local(Arc::new(tokenmint_http::SystemClock));
    group.bench_function("block list check", |b| {
        // Without Redis the check never waits: one poll answers it.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        b.iter(|| std::pin::pin!(guard.blocked_for(&limits, Some(ip), &client_id)).poll(&mut cx));
    });
    group.finish();
}

/// The token endpoint with no custom claims, with five static ones, and with the token hook
/// (its answer cached, five claims), in one run: the two ratios against the first are what the
/// README reports.
fn custom_claims(c: &mut Criterion) {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (plain, no_claims, five_claims, hooked, hooked_body) = rt.block_on(async {
        let hook = claims_setup::cached_hook().await;
        let a = format!("sqlite://{}", dir.path().join("a.db").display());
        let b = format!("sqlite://{}", dir.path().join("b.db").display());
        let (plain, none, five) = claims_setup::claims_app(&a, None).await;
        let (hooked, hooked_none, _) = claims_setup::claims_app(&b, Some(hook)).await;
        (plain, none, five, hooked, hooked_none)
    });
    let mut group = c.benchmark_group("token_endpoint/custom_claims");
    for (name, router, body) in [
        ("no claims", &plain, &no_claims),
        ("5 static claims", &plain, &five_claims),
        ("token hook (cached, 5 claims)", &hooked, &hooked_body),
    ] {
        group.bench_function(name, |b| b.to_async(&rt).iter(|| claims_setup::token(router, body)));
    }
    group.finish();
    drop(dir);
}

criterion_group!(benches, bench, hot_path_additions, custom_claims);
criterion_main!(benches);
