//! Following the revocation feed over SSE and by polling.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokenmint_proto::feed::Revocation;
use tokenmint_verify::{
    BearerToken, FeedConfig, RevocationFollower, RevocationKind, StaticToken, TokenSource,
    TokenSourceError, Verifier, VerifyError,
};

const WITHIN: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug)]
enum Mode {
    Stream,
    Poll,
}

fn feed_config(mode: Mode) -> FeedConfig {
    FeedConfig::default()
        .with_stream(matches!(mode, Mode::Stream))
        .with_poll_interval(Duration::from_millis(100))
        .with_max_backoff(Duration::from_millis(200))
        .with_stream_idle_timeout(Duration::from_secs(2))
}

/// A verifier following the feed, once the feed has been read.
async fn start_following(issuer: &TestIssuer, mode: Mode) -> (Verifier, RevocationFollower) {
    let verifier = issuer.verifier(|c| c).await;
    let follower =
        verifier.follow_revocations(StaticToken::new(FEED_TOKEN), feed_config(mode)).unwrap();
    assert!(follower.wait_synced(WITHIN).await, "the feed is read at start");
    (verifier, follower)
}

/// A verifier following the feed, once the feed has been read and the stream (if used) is open.
async fn follow(issuer: &TestIssuer, mode: Mode) -> (Verifier, RevocationFollower) {
    let (verifier, follower) = start_following(issuer, mode).await;
    if matches!(mode, Mode::Stream) {
        assert!(
            eventually(WITHIN, async || verifier.metrics().revocation_stream_connected == 1).await
        );
    }
    (verifier, follower)
}

async fn refused_with(verifier: &Verifier, token: &str, kind: RevocationKind) -> bool {
    eventually(WITHIN, async || {
        verifier.verify(token).await.err() == Some(VerifyError::Revoked(kind))
    })
    .await
}

async fn a_revoked_token_is_refused_within_seconds(mode: Mode) {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, mode).await;
    let token = issuer.token("rs-1");
    let other = issuer.token("rs-1");
    let verified = verifier.verify(&token).await.unwrap(); // now in the verified-token cache
    issuer.revoke(token_revocation(verified.jti.as_deref().unwrap()), verified.exp);
    assert!(refused_with(&verifier, &token, RevocationKind::Token).await, "{mode:?}");
    assert!(verifier.verify(&other).await.is_ok(), "only that token is revoked");
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_seconds_via_the_stream() {
    a_revoked_token_is_refused_within_seconds(Mode::Stream).await;
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_seconds_via_polling() {
    a_revoked_token_is_refused_within_seconds(Mode::Poll).await;
}

async fn a_deactivated_credential_loses_the_tokens_issued_before(mode: Mode) {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, mode).await;
    let now = issuer.now();
    let old = issuer.token_with("es-1", |c| c["iat"] = serde_json::json!(now - 10));
    let other_client = issuer.token_with("es-1", |c| {
        c["iat"] = serde_json::json!(now - 10);
        c["client_id"] = serde_json::json!("client-2");
        c["sub"] = serde_json::json!("client-2");
    });
    assert!(verifier.verify(&old).await.is_ok());
    let revocation = Revocation::Credential {
        client_id: CLIENT_ID.into(),
        issued_before: now,
        issued_before_jti: None,
    };
    issuer.revoke(revocation, now + 3600);
    assert!(refused_with(&verifier, &old, RevocationKind::Credential).await, "{mode:?}");
    assert!(verifier.verify(&issuer.token("es-1")).await.is_ok(), "issued at the cutoff");
    assert!(verifier.verify(&other_client).await.is_ok(), "another credential");
}

#[tokio::test]
async fn a_deactivated_credential_loses_the_tokens_issued_before_via_the_stream() {
    a_deactivated_credential_loses_the_tokens_issued_before(Mode::Stream).await;
}

#[tokio::test]
async fn a_deactivated_credential_loses_the_tokens_issued_before_via_polling() {
    a_deactivated_credential_loses_the_tokens_issued_before(Mode::Poll).await;
}

async fn a_withdrawn_key_invalidates_every_token_it_signed(mode: Mode) {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, mode).await;
    let token = issuer.token("ed-1");
    assert!(verifier.verify(&token).await.is_ok());
    issuer.revoke(Revocation::Key { kid: "ed-1".into() }, issuer.now() + 3600);
    assert!(refused_with(&verifier, &token, RevocationKind::Key).await, "{mode:?}");
    let fresh = issuer.token("ed-1");
    assert_eq!(
        verifier.verify(&fresh).await.err(),
        Some(VerifyError::Revoked(RevocationKind::Key))
    );
    assert!(verifier.verify(&issuer.token("rs-1")).await.is_ok());
}

#[tokio::test]
async fn a_withdrawn_key_invalidates_every_token_it_signed_via_the_stream() {
    a_withdrawn_key_invalidates_every_token_it_signed(Mode::Stream).await;
}

#[tokio::test]
async fn a_withdrawn_key_invalidates_every_token_it_signed_via_polling() {
    a_withdrawn_key_invalidates_every_token_it_signed(Mode::Poll).await;
}

#[tokio::test]
async fn revocations_published_before_start_are_applied_before_the_follower_reports_synced() {
    let issuer = TestIssuer::start().await;
    let token = issuer.token("rs-1");
    let jti = format!("jti-{}", 0);
    issuer.revoke(token_revocation(&jti), issuer.now() + 3600);
    let (verifier, _follower) = follow(&issuer, Mode::Stream).await;
    assert_eq!(
        verifier.verify(&token).await.err(),
        Some(VerifyError::Revoked(RevocationKind::Token))
    );
}

#[tokio::test]
async fn checking_revocations_costs_no_call_to_the_issuer_per_request() {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, Mode::Stream).await;
    issuer.revoke(token_revocation("someone-else"), issuer.now() + 3600);
    assert!(eventually(WITHIN, async || verifier.revocations().len() == 1).await);
    let tokens: Vec<String> = (0..200).map(|_| issuer.token("es-1")).collect();
    let before = issuer.requests();
    for token in &tokens {
        assert!(verifier.verify(token).await.is_ok());
        assert!(verifier.verify(token).await.is_ok());
    }
    assert_eq!(issuer.requests(), before, "400 verifications, no request to the issuer");
}

#[tokio::test]
async fn without_a_stream_the_follower_falls_back_to_polling() {
    let issuer = TestIssuer::start().await;
    issuer.set_stream_enabled(false);
    let (verifier, _follower) = start_following(&issuer, Mode::Stream).await;
    let token = issuer.token("rs-1");
    let verified = verifier.verify(&token).await.unwrap();
    let polls = issuer.feed_polls();
    issuer.revoke(token_revocation(verified.jti.as_deref().unwrap()), verified.exp);
    assert!(refused_with(&verifier, &token, RevocationKind::Token).await);
    assert!(issuer.feed_polls() > polls);
    assert_eq!(issuer.stream_opens(), 0);
}

#[tokio::test]
async fn a_cut_stream_is_resumed_from_the_last_cursor() {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, Mode::Stream).await;
    issuer.revoke(token_revocation("first"), issuer.now() + 3600);
    assert!(eventually(WITHIN, async || verifier.revocations().cursor() == 1).await);
    issuer.cut_streams();
    issuer.revoke(token_revocation("second"), issuer.now() + 3600);
    assert!(eventually(WITHIN, async || verifier.revocations().len() == 2).await);
    assert!(eventually(WITHIN, async || issuer.stream_opens() >= 2).await);
    assert_eq!(verifier.revocations().cursor(), 2);
}

#[tokio::test]
async fn verification_goes_on_while_the_feed_is_down_and_catches_up_after() {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, Mode::Stream).await;
    issuer.set_down(true);
    assert!(
        eventually(WITHIN, async || {
            let m = verifier.metrics();
            m.revocation_feed_failures > 0 && m.revocation_feed_up == 0
        })
        .await
    );
    let token = issuer.token("rs-1");
    assert!(verifier.verify(&token).await.is_ok(), "verifying with the revocations known");

    let verified = verifier.verify(&token).await.unwrap();
    issuer.revoke(token_revocation(verified.jti.as_deref().unwrap()), verified.exp);
    issuer.set_down(false);
    assert!(refused_with(&verifier, &token, RevocationKind::Token).await);
    assert_eq!(verifier.metrics().revocation_feed_up, 1);
}

#[tokio::test]
async fn revocation_entries_are_dropped_once_the_tokens_they_cover_have_expired() {
    let issuer = TestIssuer::start().await;
    let (verifier, _follower) = follow(&issuer, Mode::Stream).await;
    let token = issuer.token("rs-1");
    let verified = verifier.verify(&token).await.unwrap();
    issuer.revoke(token_revocation(verified.jti.as_deref().unwrap()), verified.exp);
    assert!(refused_with(&verifier, &token, RevocationKind::Token).await);
    assert_eq!(verifier.metrics().revocations_live, 1);

    // Past exp plus the leeway the entry is useless: the token fails on `exp` by itself.
    issuer.clock.advance(Duration::from_secs(3600 + 60));
    assert_eq!(verifier.verify(&token).await.err(), Some(VerifyError::Expired));
    // Keep-alives on the stream give the follower its chance to prune.
    assert!(eventually(WITHIN, async || verifier.revocations().is_empty()).await);
    assert_eq!(verifier.metrics().revocations_live, 0);
}

/// A token source that first hands out a token the feed no longer accepts.
#[derive(Default)]
struct RotatingSource {
    invalidated: AtomicUsize,
    current: Mutex<Option<String>>,
}

impl TokenSource for RotatingSource {
    async fn token(&self) -> Result<BearerToken, TokenSourceError> {
        let current = self.current.lock().unwrap().clone();
        Ok(BearerToken::new(current.unwrap_or_else(|| "expired-token".to_owned())))
    }

    async fn invalidate(&self, rejected: &BearerToken) {
        assert_eq!(rejected.expose(), "expired-token");
        self.invalidated.fetch_add(1, Ordering::SeqCst);
        *self.current.lock().unwrap() = Some(FEED_TOKEN.to_owned());
    }
}

#[tokio::test]
async fn a_feed_token_rejected_with_401_is_renewed_through_the_token_source() {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    let source = std::sync::Arc::new(RotatingSource::default());
    let follower = verifier
        .follow_revocations(std::sync::Arc::clone(&source), feed_config(Mode::Stream))
        .unwrap();
    assert!(follower.wait_synced(WITHIN).await);
    assert_eq!(source.invalidated.load(Ordering::SeqCst), 1);
    assert_eq!(issuer.unauthorized_feed_requests(), 1);
}

#[tokio::test]
async fn dropping_the_follower_handle_keeps_it_running_until_stopped() {
    let issuer = TestIssuer::start().await;
    let (verifier, follower) = follow(&issuer, Mode::Poll).await;
    // What `let _ = verifier.follow_revocations(..)?` does: the handle is gone at once.
    let again = verifier.follow_revocations(StaticToken::new(FEED_TOKEN), feed_config(Mode::Poll));
    drop(again);
    let polls = issuer.feed_polls();
    assert!(
        eventually(WITHIN, async || issuer.feed_polls() > polls + 2).await,
        "the followers keep polling without their handles"
    );
    assert!(follower.is_running());
    follower.stop();
}

#[tokio::test]
async fn stopping_the_follower_or_dropping_its_verifier_stops_it() {
    let issuer = TestIssuer::start().await;
    let (verifier, follower) = follow(&issuer, Mode::Poll).await;
    follower.stop();
    // A control follower of a second issuer, with the same poll interval, shows the intervals
    // passing: once it has polled three more times, the stopped one would have polled too.
    let control_issuer = TestIssuer::start().await;
    let (_control_verifier, control) = follow(&control_issuer, Mode::Poll).await;
    let polls = issuer.feed_polls();
    let control_polls = control_issuer.feed_polls();
    assert!(eventually(WITHIN, async || control_issuer.feed_polls() >= control_polls + 3).await);
    assert_eq!(issuer.feed_polls(), polls, "no poll after stop");
    control.stop();

    let follower =
        verifier.follow_revocations(StaticToken::new(FEED_TOKEN), feed_config(Mode::Poll)).unwrap();
    assert!(follower.wait_synced(WITHIN).await);
    drop(verifier);
    assert!(eventually(WITHIN, async || !follower.is_running()).await);
}
