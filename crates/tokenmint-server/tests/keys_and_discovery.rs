//! Discovery, JWKS, PEM, independent verification of issued tokens, and key rotation.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Options, claims, header, spawn_app, spawn_with};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use tokenmint_core::keys::SigningAlgorithm;

async fn jwks(app: &common::TestApp) -> Value {
    let res = app.http.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cc = res.headers()["cache-control"].to_str().unwrap().to_owned();
    assert!(cc.starts_with("public, max-age="), "{cc}");
    res.json().await.unwrap()
}

/// Verifies `token` with the `jsonwebtoken` crate against the JWKS the server serves.
fn verify_independently(token: &str, jwks: &Value, alg: Algorithm, issuer: &str) -> Value {
    let kid = header(token)["kid"].as_str().unwrap().to_owned();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(alg);
    v.set_issuer(&[issuer]);
    v.set_audience(&[issuer]);
    v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &key, &v).unwrap().claims
}

#[tokio::test]
async fn issued_tokens_verify_with_an_independent_jwt_library_for_every_algorithm() {
    for (alg, jalg) in [
        (SigningAlgorithm::RS256, Algorithm::RS256),
        (SigningAlgorithm::ES256, Algorithm::ES256),
        (SigningAlgorithm::EdDSA, Algorithm::EdDSA),
    ] {
        let app = spawn_with(Options { alg, ..Options::default() }).await;
        let (id, secret) = app.sandbox_reader().await;
        let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
        assert_eq!(header(&token)["alg"], alg.as_str());
        let c = verify_independently(&token, &jwks(&app).await, jalg, &app.base);
        assert_eq!(c["client_id"], id.as_str());
        // A tampered token fails the same library.
        let mut parts: Vec<String> = token.split('.').map(String::from).collect();
        parts[1] = parts[1].chars().rev().collect();
        let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks(&app).await).unwrap();
        let key = DecodingKey::from_jwk(&set.keys[0]).unwrap();
        assert!(
            jsonwebtoken::decode::<Value>(&parts.join("."), &key, &Validation::new(jalg)).is_err()
        );
    }
}

#[tokio::test]
async fn the_discovery_document_lists_what_the_server_supports() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let m: Value = app.http.get(app.url(path)).send().await.unwrap().json().await.unwrap();
        assert_eq!(m["issuer"], app.base.as_str());
        assert_eq!(m["token_endpoint"], app.url("/oauth/token").as_str());
        assert_eq!(m["jwks_uri"], app.url("/.well-known/jwks.json").as_str());
        assert_eq!(m["introspection_endpoint"], app.url("/oauth/introspect").as_str());
        assert_eq!(m["revocation_endpoint"], app.url("/oauth/revoke").as_str());
        assert_eq!(m["grant_types_supported"], json!(["client_credentials"]));
        assert_eq!(
            m["token_endpoint_auth_methods_supported"],
            json!(["client_secret_basic", "client_secret_post", "private_key_jwt"])
        );
        let scopes = m["scopes_supported"].as_array().unwrap();
        assert!(
            scopes.contains(&json!("eligibility:read")) && scopes.contains(&json!("billing:write"))
        );
    }
}

#[tokio::test]
async fn the_pem_endpoint_serves_the_active_public_key() {
    let app = spawn_with(Options { alg: SigningAlgorithm::RS256, ..Options::default() }).await;
    let pem = app.http.get(app.url("/pem")).send().await.unwrap().text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    v.set_audience(&[&app.base]);
    jsonwebtoken::decode::<Value>(&token, &key, &v).unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_old_tokens_keep_verifying() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let old_token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let old_kid = header(&old_token)["kid"].as_str().unwrap().to_owned();

    let res = app
        .admin(reqwest::Method::POST, "/keys/rotate", Some(json!({"propagation_seconds": 600})))
        .await;
    assert_eq!(res.status(), 201);
    let keys: Value = res.json().await.unwrap();
    let pending = keys.as_array().unwrap().iter().find(|k| k["state"] == "pending").unwrap();
    let new_kid = pending["kid"].as_str().unwrap().to_owned();
    // Published at once, but not signing yet.
    let set = jwks(&app).await;
    assert!(set["keys"].as_array().unwrap().iter().any(|k| k["kid"] == new_kid.as_str()));
    let t = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(header(&t)["kid"], old_kid.as_str());
    // A second rotation while one is pending is refused.
    let again = app.admin(reqwest::Method::POST, "/keys/rotate", Some(json!({}))).await;
    assert_eq!(again.status(), 409);

    app.clock.advance(600);
    // The switch is made by the server's maintenance, in the background: poll for it.
    let start = std::time::Instant::now();
    let t = loop {
        let t = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
        if header(&t)["kid"] == new_kid.as_str() {
            break t;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "the new key signs after the propagation delay"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    // The old key stays published, so the old token still verifies against the JWKS.
    let set = jwks(&app).await;
    verify_independently(&old_token, &set, Algorithm::ES256, &app.base);
    verify_independently(&t, &set, Algorithm::ES256, &app.base);
    let listed: Value = app.admin(reqwest::Method::GET, "/keys", None).await.json().await.unwrap();
    let old = listed.as_array().unwrap().iter().find(|k| k["kid"] == old_kid.as_str()).unwrap();
    assert_eq!(old["state"], "retired");
    assert!(old["unpublish_at"].is_string());
}

#[tokio::test]
async fn a_withdrawn_key_leaves_the_jwks_and_its_tokens_are_refused() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let kid = header(&token)["kid"].as_str().unwrap().to_owned();
    let res = app.admin(reqwest::Method::POST, &format!("/keys/{kid}/withdraw"), None).await;
    assert_eq!(res.status(), 200);
    let set = jwks(&app).await;
    assert!(!set["keys"].as_array().unwrap().iter().any(|k| k["kid"] == kid.as_str()));
    // A new key signs at once.
    let fresh = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    assert_ne!(header(&fresh)["kid"], kid.as_str());
    let intro: Value = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[("token", token.as_str()), ("client_id", &id), ("client_secret", &secret)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(intro, json!({"active": false}));
    assert_eq!(claims(&fresh)["client_id"], id.as_str());
}

#[tokio::test]
async fn the_rotation_schedule_creates_a_pending_key_once_the_active_one_is_old_enough() {
    let app = spawn_app().await;
    let interval = app.state.config.key_rotation_interval.as_secs() as i64;
    tokenmint_server::app::maintain(&app.state, false).await.unwrap();
    let keys: Value = app.admin(reqwest::Method::GET, "/keys", None).await.json().await.unwrap();
    assert_eq!(keys.as_array().unwrap().len(), 1, "not due yet");
    app.clock.advance(interval);
    tokenmint_server::app::maintain(&app.state, false).await.unwrap();
    tokenmint_server::app::maintain(&app.state, false).await.unwrap();
    let keys: Value = app.admin(reqwest::Method::GET, "/keys", None).await.json().await.unwrap();
    let states: Vec<&str> =
        keys.as_array().unwrap().iter().map(|k| k["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["active", "pending"], "exactly one new key, published before it signs");
}
