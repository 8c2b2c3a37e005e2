//! What custom claims cost per token, counted in instructions rather than timed.
//!
//! Timing the three variants of the token endpoint (no claims, five static claims, the token
//! hook answered from its cache) on a shared two-core machine leaves a run-to-run noise of about
//! ±10 %, twice the 5 % the features may cost. Instruction counts under Valgrind do not depend on
//! what else the machine runs. `bench/claims-cost.sh` runs this program under Callgrind for each
//! variant with two request counts; the difference divided by the difference of counts is the
//! instructions one token costs, free of the set-up both runs share.
//!
//! `TOKENMINT_CLAIMS_COST=VARIANT:COUNT` (`none`, `static` or `hook`) issues COUNT tokens of that
//! variant after a warm-up. Without it (as under `cargo test --all-targets`), every variant issues
//! a few tokens, to prove the set-up works.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    missing_docs
)]

mod claims_setup;

/// Tokens issued before counting starts: caches filled, the hook's answer cached.
const WARM_UP: usize = 20;

fn main() {
    let asked = std::env::var("TOKENMINT_CLAIMS_COST").ok();
    let runs: Vec<(String, usize)> = match asked.as_deref().and_then(|a| a.split_once(':')) {
        Some((variant, count)) => {
            let count = count.parse().expect("TOKENMINT_CLAIMS_COST=VARIANT:COUNT");
            vec![(variant.to_owned(), count)]
        }
        None => ["none", "static", "hook"].iter().map(|v| ((*v).to_owned(), 3)).collect(),
    };
    // One thread: the same work in the same order on every run.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        for (variant, count) in runs {
            let url = format!("sqlite://{}", dir.path().join(format!("{variant}.db")).display());
            let hook = match variant.as_str() {
                "hook" => Some(claims_setup::cached_hook().await),
                "none" | "static" => None,
                other => panic!("unknown variant {other:?}: none, static or hook"),
            };
            let (router, none, five) = claims_setup::claims_app(&url, hook).await;
            // The hook variant's credential has no static claims: the five come from the hook.
            let body = if variant == "static" { five } else { none };
            for _ in 0..WARM_UP + count {
                claims_setup::token(&router, &body).await;
            }
            println!("{variant}: {count} tokens after {WARM_UP} warm-up tokens");
        }
    });
}
