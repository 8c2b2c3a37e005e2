//! What the gateway adds to a request, over loopback HTTP: the same GET sent to the upstream
//! directly, through the gateway with the token in its verified-token cache (the steady state:
//! clients reuse a token for its lifetime), and through a gateway whose cache is off, so that
//! every request pays what a never-seen token costs (parse, ES256 signature, claims,
//! revocations).
//!
//! `cargo bench -p tokenmint-gateway --bench gateway -- --measurement-time 3 --warm-up-time 1`
//! Compare the three results of one run with each other: the absolute figures depend on the
//! machine, their ratios much less.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_debug_implementations)]

#[path = "../tests/common/mod.rs"]
mod common;

use common::Setup;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn gateway(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (hot, cold, token_hot, token_cold) = runtime.block_on(async {
        let hot = Setup::start().await;
        let cold = Setup::start_configured("verified_cache = 0", "").await;
        let token_hot = hot.token("production", &["eligibility:read"]).await;
        let token_cold = cold.token("production", &["eligibility:read"]).await;
        (hot, cold, token_hot, token_cold)
    });
    let client = reqwest::Client::builder().tcp_nodelay(true).build().unwrap();
    let direct_url = format!("{}/eligibility/7", hot.production.url);
    let hot_url = hot.url("/eligibility/7");
    let cold_url = cold.url("/eligibility/7");

    let send = |url: &str, token: &str| {
        let request = client.get(url).bearer_auth(token);
        async move {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap()
        }
    };

    let mut group = c.benchmark_group("gateway");
    group.throughput(Throughput::Elements(1));
    group.bench_function("direct", |b| b.to_async(&runtime).iter(|| send(&direct_url, &token_hot)));
    group.bench_function("through_gateway_cached_token", |b| {
        b.to_async(&runtime).iter(|| send(&hot_url, &token_hot))
    });
    group.bench_function("through_gateway_every_token_new", |b| {
        b.to_async(&runtime).iter(|| send(&cold_url, &token_cold))
    });
    group.finish();

    let hits = hot.handle.issuers().first().unwrap().metrics();
    let misses = cold.handle.issuers().first().unwrap().metrics();
    // Under `cargo test` each benchmark runs once, so the first request has nothing cached yet.
    assert!(hits.accepted < 2 || hits.cache_hits > 0, "{hits:?}");
    assert_eq!(misses.cache_hits, 0, "{misses:?}");
    assert_eq!(misses.signature_checks, misses.accepted, "every request checked a signature");
    drop((hot, cold));
}

criterion_group!(benches, gateway);
criterion_main!(benches);
