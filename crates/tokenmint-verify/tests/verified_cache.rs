//! The cache of already-verified tokens.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::time::Duration;
use tokenmint_proto::feed::{Revocation, RevocationEntry};
use tokenmint_verify::{RevocationKind, VerifyError};

#[tokio::test]
async fn a_token_presented_again_is_accepted_from_the_cache_without_a_signature_check() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    for kid in ["rs-1", "es-1", "ed-1"] {
        let token = issuer.token(kid);
        let before = verifier.metrics();
        let first = verifier.verify(&token).await.unwrap();
        let again = verifier.verify(&token).await.unwrap();
        let third = verifier.verify(&token).await.unwrap();
        let after = verifier.metrics();
        assert_eq!(after.signature_checks - before.signature_checks, 1, "{kid}");
        assert_eq!(after.cache_hits - before.cache_hits, 2, "{kid}");
        assert_eq!(first.claims(), again.claims());
        assert_eq!(again.claims(), third.claims());
    }
}

#[tokio::test]
async fn with_the_cache_disabled_every_presentation_is_checked() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_verified_cache_capacity(0)).await;
    let token = issuer.token("es-1");
    for _ in 0..3 {
        assert!(verifier.verify(&token).await.is_ok());
    }
    assert_eq!(verifier.metrics().signature_checks, 3);
    assert_eq!(verifier.metrics().cache_hits, 0);
}

#[tokio::test]
async fn a_cached_token_is_refused_once_it_expires() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    let token = issuer.token("rs-1");
    assert!(verifier.verify(&token).await.is_ok());
    issuer.clock.advance(Duration::from_secs(3600 + 59));
    assert!(verifier.verify(&token).await.is_ok(), "within the leeway");
    issuer.clock.advance(Duration::from_secs(1));
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::Expired));
    assert_eq!(verifier.metrics().signature_checks, 1, "refused from the cache entry");
    // The entry is gone: presenting it again goes through full verification.
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::Expired));
    assert_eq!(verifier.metrics().signature_checks, 2);
}

#[tokio::test]
async fn a_cached_token_is_checked_against_revocations_on_every_use() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    let token = issuer.token("ed-1");
    let verified = verifier.verify(&token).await.unwrap();
    let entry = RevocationEntry {
        cursor: 1,
        revocation: Revocation::Token { jti: verified.jti.clone().unwrap() },
        expires_at: verified.exp,
    };
    verifier.revocations().apply(&[entry], verifier.now());
    assert_eq!(
        verifier.verify(&token).await.err(),
        Some(VerifyError::Revoked(RevocationKind::Token))
    );
    assert_eq!(verifier.metrics().signature_checks, 1);
}

#[tokio::test]
async fn the_cache_holds_a_bounded_number_of_tokens() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c.with_verified_cache_capacity(10)).await;
    let tokens: Vec<String> = (0..100).map(|_| issuer.token("ed-1")).collect();
    for token in &tokens {
        assert!(verifier.verify(token).await.is_ok());
    }
    for token in &tokens {
        assert!(verifier.verify(token).await.is_ok());
    }
    let metrics = verifier.metrics();
    assert!(
        metrics.cache_hits <= 20,
        "at most the cache's capacity (plus slack) is remembered: {}",
        metrics.cache_hits
    );
    assert!(metrics.signature_checks >= 180);
}
