//! Revoking a credential's tokens, deactivating it, or taking a permission or an audience away
//! ends exactly the tokens issued before, those of the same second included, and none issued
//! after: the next token carries a non-future `iat` and verifies at once, with zero leeway, here
//! (introspection), and in a verifier that applies the revocation feed, as gateways do. The
//! clock is a manual one, stopped: everything happens within one second.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, claims, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_proto::feed::RevocationEntry;
use tokenmint_server::Clock;
use tokenmint_verify::{RevocationKind, Verifier, VerifierConfig, VerifyError};

/// A verifier of this server's tokens that tolerates no clock skew at all.
async fn strict_verifier(app: &TestApp) -> Verifier {
    let now = u64::try_from(app.clock.now()).unwrap();
    let clock = Arc::new(tokenmint_verify::ManualClock::new(Duration::from_secs(now)));
    Verifier::builder(VerifierConfig::new(app.base.clone()).with_leeway(Duration::ZERO))
        .clock(clock)
        .build()
        .await
        .unwrap()
}

/// The revocation feed as a gateway reads it.
async fn feed(app: &TestApp) -> Vec<RevocationEntry> {
    let page: Value = app.admin(Method::GET, "/revocations", None).await.json().await.unwrap();
    serde_json::from_value(page["entries"].clone()).unwrap()
}

/// What a verifier following the feed says about `token`.
async fn verify(app: &TestApp, verifier: &Verifier, token: &str) -> Result<(), VerifyError> {
    verifier.revocations().apply(&feed(app).await, app.clock.now());
    verifier.verify(token).await.map(|_| ())
}

/// Whether introspection (by the platform admin, who may see every token) says active.
async fn active(app: &TestApp, token: &str) -> bool {
    let res = app
        .form(
            "/oauth/introspect",
            &[("client_id", &app.admin_id), ("client_secret", &app.admin_secret), ("token", token)],
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["active"].as_bool().unwrap()
}

async fn access_token(app: &TestApp, id: &str, secret: &str) -> String {
    let token = app.token(id, secret).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(claims(&token)["iat"], app.clock.now(), "issued now, never in the future");
    token
}

fn revoked(r: Result<(), VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Revoked(RevocationKind::Credential)))
}

#[tokio::test]
async fn revoking_tokens_ends_those_issued_earlier_in_the_same_second_and_not_the_next_one() {
    let app = spawn_app().await;
    let verifier = strict_verifier(&app).await;
    let (id, secret) = app.sandbox_reader().await;
    let before = access_token(&app, &id, &secret).await;
    assert!(verify(&app, &verifier, &before).await.is_ok());

    let res = app.admin(Method::POST, &format!("/credentials/{id}/revoke-tokens"), None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    let cut = time::OffsetDateTime::parse(
        body["issued_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(cut.unix_timestamp() <= app.clock.now(), "the cut-off is not in the future: {body}");

    let after = access_token(&app, &id, &secret).await;
    assert!(revoked(verify(&app, &verifier, &before).await));
    assert!(!active(&app, &before).await);
    assert_eq!(verify(&app, &verifier, &after).await.map_err(|e| e.to_string()), Ok(()));
    assert!(active(&app, &after).await);

    // Deactivating and reactivating within the same second: the same holds.
    for path in ["deactivate", "activate"] {
        let res = app.admin(Method::POST, &format!("/credentials/{id}/{path}"), None).await;
        assert_eq!(res.status(), 200);
    }
    let again = access_token(&app, &id, &secret).await;
    assert!(revoked(verify(&app, &verifier, &after).await));
    assert!(!active(&app, &after).await);
    assert!(verify(&app, &verifier, &again).await.is_ok());
    assert!(active(&app, &again).await);
}

#[tokio::test]
async fn taking_a_permission_or_an_audience_away_revokes_earlier_tokens_and_widening_does_not() {
    let app = spawn_app().await;
    let verifier = strict_verifier(&app).await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "HR sync", "org": "acme", "environment": "production",
            "permissions": ["eligibility:write", "billing:read"],
            "audiences": ["https://a.example", "https://b.example"],
        }))
        .await;
    let patch = async |body: Value| {
        let res = app.admin(Method::PATCH, &format!("/credentials/{id}"), Some(body)).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    };
    let first = access_token(&app, &id, &secret).await;
    let entries = feed(&app).await.len();

    // A new name, a wider grant, one more audience: nothing is taken away, nothing revoked.
    patch(json!({"name": "HR sync 2"})).await;
    patch(json!({"permissions": ["eligibility:write", "billing:write"]})).await;
    patch(json!({"audiences": ["https://a.example", "https://b.example", "https://c.example"]}))
        .await;
    assert_eq!(feed(&app).await.len(), entries, "widening adds no feed entry");
    assert!(active(&app, &first).await);
    assert!(verify(&app, &verifier, &first).await.is_ok());

    // Write taken away from eligibility: the token that could write is revoked everywhere, and
    // the next token, of the same second, is not.
    patch(json!({"permissions": ["eligibility:read", "billing:write"]})).await;
    let narrowed = feed(&app).await;
    assert_eq!(narrowed.len(), entries + 1);
    assert!(
        matches!(&narrowed.last().unwrap().revocation,
            tokenmint_proto::feed::Revocation::Credential { client_id, .. } if *client_id == id),
        "the same kind of entry as a deactivation"
    );
    assert!(!active(&app, &first).await);
    assert!(revoked(verify(&app, &verifier, &first).await));
    let second = access_token(&app, &id, &secret).await;
    assert!(active(&app, &second).await);
    assert!(verify(&app, &verifier, &second).await.is_ok());

    // An audience taken away: the same.
    patch(json!({"audiences": ["https://a.example", "https://c.example"]})).await;
    assert!(!active(&app, &second).await);
    assert!(revoked(verify(&app, &verifier, &second).await));
    let third = access_token(&app, &id, &secret).await;
    assert!(active(&app, &third).await);
    assert!(verify(&app, &verifier, &third).await.is_ok());
}

#[tokio::test]
async fn the_admin_api_stops_accepting_an_admin_token_when_its_admin_scope_is_taken_away() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({"name": "second admin", "org": "platform",
            "environment": "production", "permissions": ["tokenmint:admin"]}))
        .await;
    let token = access_token(&app, &id, &secret).await;
    let list = |t: String| app.http.get(app.url("/admin/v1/credentials")).bearer_auth(t).send();
    assert_eq!(list(token.clone()).await.unwrap().status(), 200);
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"permissions": []})))
        .await;
    assert_eq!(res.status(), 200);
    // Revoked with the narrowing (401), not merely short of a scope.
    assert_eq!(list(token).await.unwrap().status(), 401);
}
