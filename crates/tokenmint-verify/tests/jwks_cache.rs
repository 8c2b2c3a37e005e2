//! The JWKS cache: rotations, refetch limits, freshness and issuer outages.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use tokenmint_verify::VerifyError;

const COOLDOWN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_is_picked_up_without_restart_and_1000_concurrent_requests_cause_one_fetch()
{
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_jwks_refetch_cooldown(COOLDOWN)).await;
    let app = protected_app(verifier.clone());
    assert_eq!(
        call(&app, "GET", "/whoami", Some(&bearer(&issuer.token("es-1")))).await.status,
        200
    );

    // The issuer rotates to a key the verifier has never seen, and signs with it at once.
    issuer.create_unpublished("ES256", "es-2");
    issuer.publish_existing("es-2");
    issuer.clock.advance(COOLDOWN);
    // The JWKS response is held, so the fetch stays in flight while every request piles up
    // behind it.
    issuer.hold_jwks();
    let before = issuer.jwks_fetches();

    let tokens: Vec<String> = (0..1000).map(|_| issuer.token("es-2")).collect();
    let requests: Vec<_> = tokens
        .into_iter()
        .map(|token| {
            let app = app.clone();
            tokio::spawn(
                async move { call(&app, "GET", "/whoami", Some(&bearer(&token))).await.status },
            )
        })
        .collect();
    // The fetch reaches the issuer only after the tasks queued before it have run (one thread,
    // first in first out), so every request is waiting on it by now.
    assert!(issuer.jwks_requests_reach(before + 1, Duration::from_secs(5)).await);
    issuer.release_jwks();
    for status in futures_util::future::join_all(requests).await {
        assert_eq!(status.unwrap(), 200);
    }
    assert_eq!(issuer.jwks_fetches() - before, 1, "one fetch shared by all waiters");
    let metrics = verifier.metrics();
    assert_eq!(metrics.accepted, 1001);
    assert_eq!(metrics.signature_checks, 1001);
}

#[tokio::test]
async fn unknown_kid_refetches_happen_at_most_once_per_cooldown() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_jwks_refetch_cooldown(COOLDOWN)).await;
    for i in 0..5 {
        issuer.create_unpublished("RS256", &format!("ghost-{i}"));
    }
    let after_build = issuer.jwks_fetches();

    // Within the cooldown of the initial fetch: no refetch at all.
    let error = verifier.verify(&issuer.token("ghost-0")).await.err();
    assert_eq!(error, Some(VerifyError::UnknownKey));
    assert_eq!(issuer.jwks_fetches(), after_build);

    // Past it: the first unknown kid refetches, the next ones inside the new cooldown do not.
    issuer.clock.advance(COOLDOWN);
    for i in 0..5 {
        for _ in 0..20 {
            let error = verifier.verify(&issuer.token(&format!("ghost-{i}"))).await.err();
            assert_eq!(error, Some(VerifyError::UnknownKey));
        }
    }
    assert_eq!(issuer.jwks_fetches(), after_build + 1);
    assert!(verifier.metrics().jwks_refetches_suppressed >= 99);

    issuer.clock.advance(COOLDOWN);
    let _ = verifier.verify(&issuer.token("ghost-0")).await;
    assert_eq!(issuer.jwks_fetches(), after_build + 2);
}

#[tokio::test]
async fn a_key_published_during_the_cooldown_is_found_once_it_has_passed() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_jwks_refetch_cooldown(COOLDOWN)).await;
    issuer.create_unpublished("EdDSA", "ed-2");
    issuer.publish_existing("ed-2");
    let token = issuer.token("ed-2");
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::UnknownKey));
    issuer.clock.advance(COOLDOWN);
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn the_jwks_is_refreshed_in_the_background_once_its_max_age_has_passed() {
    let issuer = TestIssuer::start().await;
    issuer.set_max_age(120);
    let verifier = issuer.verifier(|c| c).await;
    let token = issuer.token("rs-1");
    assert!(verifier.verify(&token).await.is_ok());
    let before = issuer.jwks_fetches();

    issuer.clock.advance(Duration::from_secs(119));
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), before, "still fresh");

    // The answer is held: every verification below happens while the refresh is in flight.
    issuer.hold_jwks();
    issuer.clock.advance(Duration::from_secs(1));
    let started = verifier.metrics().jwks_fetches;
    for _ in 0..50 {
        assert!(verifier.verify(&token).await.is_ok(), "served from the current keys meanwhile");
    }
    assert!(issuer.jwks_requests_reach(before + 1, Duration::from_secs(5)).await);
    // Every fetch those verifications started was spawned before the one that has reached the
    // issuer, so each has begun (and been counted) by now.
    assert_eq!(verifier.metrics().jwks_fetches, started + 1, "one background fetch");
    issuer.release_jwks();
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), before + 1, "one background fetch, not one per request");
}

#[tokio::test]
async fn a_max_age_below_the_configured_minimum_is_raised_to_it() {
    let issuer = TestIssuer::start().await;
    issuer.set_max_age(0);
    let verifier = issuer.verifier(|c| c).await; // jwks_min_ttl: 60 s
    let token = issuer.token("es-1");
    let before = issuer.jwks_fetches();
    let started = verifier.metrics().jwks_fetches;
    issuer.clock.advance(Duration::from_secs(59));
    assert!(verifier.verify(&token).await.is_ok());
    // A background fetch would be a spawned task; one yield lets every queued task run.
    tokio::task::yield_now().await;
    assert_eq!(verifier.metrics().jwks_fetches, started, "no fetch before the minimum");
    assert_eq!(issuer.jwks_fetches(), before);
    issuer.clock.advance(Duration::from_secs(1));
    assert!(verifier.verify(&token).await.is_ok());
    assert!(eventually(Duration::from_secs(5), async || issuer.jwks_fetches() == before + 1).await);
}

#[tokio::test]
async fn a_key_removed_from_the_jwks_stops_being_trusted_after_the_refresh() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    let cached = issuer.token("rs-1");
    assert!(verifier.verify(&cached).await.is_ok());
    issuer.unpublish("rs-1");
    issuer.clock.advance(Duration::from_secs(300));
    let _ = verifier.verify(&cached).await; // starts the background refresh
    assert!(
        eventually(Duration::from_secs(5), async || {
            verifier.verify(&cached).await.err() == Some(VerifyError::UnknownKey)
        })
        .await
    );
    assert!(verifier.verify(&issuer.token("es-1")).await.is_ok());
}

#[tokio::test]
async fn when_the_issuer_is_down_the_last_good_keys_are_still_used_for_a_bounded_time() {
    let issuer = TestIssuer::start().await;
    let staleness = Duration::from_secs(3600);
    let verifier = issuer.verifier(|c| c.with_jwks_max_staleness(staleness)).await;
    let before = verifier.metrics();
    issuer.set_down(true);

    // Past the keys' freshness: the refresh fails, new tokens still verify on the old keys.
    issuer.clock.advance(Duration::from_secs(301));
    assert!(verifier.verify(&issuer.token("rs-1")).await.is_ok());
    assert!(
        eventually(Duration::from_secs(5), async || {
            verifier.metrics().jwks_fetch_failures > before.jwks_fetch_failures
        })
        .await
    );
    assert!(verifier.verify(&issuer.token("es-1")).await.is_ok());
    assert!(verifier.metrics().jwks_stale_uses >= 1);

    // Past the staleness bound: the keys are no longer trusted, and the refusal is a 503.
    issuer.clock.advance(staleness);
    let error = verifier.verify(&issuer.token("ed-1")).await.err();
    assert_eq!(error, Some(VerifyError::KeysUnavailable));
    let app = protected_app(verifier.clone());
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&issuer.token("ed-1")))).await;
    assert_eq!(answer.status, 503);
    assert_eq!(answer.content_type(), Some("application/problem+json"));
    assert_eq!(answer.www_authenticate(), None);

    // Back up: the next fetch after the cooldown restores service.
    issuer.set_down(false);
    issuer.clock.advance(COOLDOWN);
    assert!(verifier.verify(&issuer.token("ed-1")).await.is_ok());
}

#[tokio::test]
async fn a_waiter_that_gives_up_does_not_cancel_the_shared_fetch() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_jwks_refetch_cooldown(COOLDOWN)).await;
    issuer.create_unpublished("RS256", "rs-2");
    issuer.publish_existing("rs-2");
    issuer.clock.advance(COOLDOWN);
    issuer.hold_jwks();
    let token = Arc::new(issuer.token("rs-2"));
    let fetches = issuer.jwks_fetches();

    // The first waiter is dropped mid-fetch (its client went away): once its fetch has reached
    // the issuer, and before the issuer answers.
    {
        let abandoned = verifier.verify(&token);
        tokio::pin!(abandoned);
        tokio::select! {
            answer = &mut abandoned => panic!("answered while the JWKS was held: {answer:?}"),
            reached = issuer.jwks_requests_reach(fetches + 1, Duration::from_secs(5)) => {
                assert!(reached, "the fetch reaches the issuer");
            }
        }
    }
    // The fetch goes on regardless: a later verification is served by it, with no new fetch
    // (the cooldown would forbid one, so a cancelled fetch would leave the key unknown).
    issuer.release_jwks();
    assert!(verifier.verify(&token).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), fetches + 1);
}
