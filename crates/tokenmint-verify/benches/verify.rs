//! Verification cost per algorithm: a token found in the verified-token cache against one that
//! goes through parsing, the signature check and the claims checks.
//!
//! `cargo bench -p tokenmint-verify --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

fn verify(c: &mut Criterion) {
    // The issuer's HTTP server runs on the runtime's worker; measurements run on this thread.
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let issuer = rt.block_on(common::TestIssuer::start());
    let hot = rt.block_on(issuer.verifier(|c| c));
    let cold = rt.block_on(issuer.verifier(|c| c.with_verified_cache_capacity(0)));

    let mut group = c.benchmark_group("verify");
    for kid in ["rs-1", "es-1", "ed-1"] {
        let alg = issuer.key(kid).alg;
        let token = issuer.token(kid);
        rt.block_on(hot.verify(&token)).unwrap();
        group.bench_function(format!("{alg}/hot cache"), |b| {
            b.iter(|| rt.block_on(hot.verify(black_box(&token))).unwrap())
        });
        group.bench_function(format!("{alg}/cold"), |b| {
            b.iter(|| rt.block_on(cold.verify(black_box(&token))).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
