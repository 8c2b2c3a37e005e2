//! What a protected API accepts and refuses, and how it says so (RFC 6750, RFC 9457).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;
use tokenmint_verify::{BuildError, Verifier, VerifierConfig, VerifyError};

/// Asserts a 401 `invalid_token` refusal whose description is `error`'s.
fn assert_invalid_token(answer: &Answer, error: VerifyError) {
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(answer.content_type(), Some("application/problem+json"));
    assert_eq!(
        answer.www_authenticate(),
        Some(format!("Bearer error=\"invalid_token\", error_description=\"{error}\"").as_str())
    );
    assert_eq!(answer.body["status"], 401);
    assert_eq!(answer.body["title"], "Unauthorized");
    assert_eq!(answer.body["type"], "about:blank");
    assert_eq!(answer.body["error"], "invalid_token");
    assert_eq!(answer.body["detail"], error.to_string());
}

async fn setup() -> (TestIssuer, axum::Router, Verifier) {
    let issuer = TestIssuer::start().await;
    let verifier = issuer.verifier(|c| c).await;
    let app = protected_app(verifier.clone());
    (issuer, app, verifier)
}

#[tokio::test]
async fn valid_tokens_signed_with_each_algorithm_are_accepted() {
    let (issuer, app, _) = setup().await;
    for kid in ["rs-1", "es-1", "ed-1"] {
        let answer = call(&app, "GET", "/whoami", Some(&bearer(&issuer.token(kid)))).await;
        assert_eq!(answer.status, 200, "{kid}: {answer:?}");
        assert_eq!(answer.body, json!({ "client_id": CLIENT_ID, "org": "acme", "kid": kid }));
    }
}

#[tokio::test]
async fn the_verified_claims_are_handed_over_typed() {
    let (issuer, _, verifier) = setup().await;
    let token = issuer.token_with("ed-1", |c| {
        c["scope"] = json!("eligibility:read eligibility:write");
        c["aud"] = json!(["https://other.example.com", AUDIENCE]);
        c["env"] = json!("sandbox");
    });
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.client_id, CLIENT_ID);
    assert_eq!(verified.env, Some(tokenmint_proto::Environment::Sandbox));
    assert!(verified.has_scope("eligibility:write"));
    assert_eq!(verified.kid(), "ed-1");
    assert_eq!(verified.algorithm(), tokenmint_verify::Algorithm::EdDSA);
}

#[tokio::test]
async fn a_request_without_a_token_gets_401_with_a_bare_bearer_challenge() {
    let (_issuer, app, _) = setup().await;
    for authorization in [None, Some("Basic dXNlcjpwYXNz")] {
        let answer = call(&app, "GET", "/whoami", authorization).await;
        assert_eq!(answer.status, 401);
        assert_eq!(answer.www_authenticate(), Some("Bearer"));
        assert_eq!(answer.content_type(), Some("application/problem+json"));
        assert_eq!(answer.body["status"], 401);
        assert_eq!(answer.body.get("error"), None, "RFC 6750 §3.1: no error code");
    }
}

#[tokio::test]
async fn a_malformed_authorization_header_is_a_400_invalid_request() {
    let (_issuer, app, _) = setup().await;
    let answer = call(&app, "GET", "/whoami", Some("Bearer two words")).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["error"], "invalid_request");
    assert!(answer.www_authenticate().unwrap().starts_with("Bearer error=\"invalid_request\""));
}

#[tokio::test]
async fn a_malformed_token_is_refused_as_invalid_token() {
    let (_issuer, app, _) = setup().await;
    for token in ["not-a-jwt", "a.b.c", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        let answer = call(&app, "GET", "/whoami", Some(&bearer(token))).await;
        assert_invalid_token(&answer, VerifyError::Malformed);
    }
}

#[tokio::test]
async fn an_oversized_token_is_refused_before_it_is_decoded() {
    let (_issuer, app, verifier) = setup().await;
    let token = "a".repeat(10_000);
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::TooLarge);
    assert_eq!(verifier.metrics().signature_checks, 0);
}

#[tokio::test]
async fn an_expired_token_is_refused_but_small_clock_skew_is_tolerated() {
    let (issuer, app, _) = setup().await;
    let now = issuer.now();
    let expired = issuer.token_with("rs-1", |c| c["exp"] = json!(now - 61));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&expired))).await;
    assert_invalid_token(&answer, VerifyError::Expired);

    let within_leeway = issuer.token_with("rs-1", |c| c["exp"] = json!(now - 30));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&within_leeway))).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test]
async fn a_token_expires_when_the_clock_passes_exp_plus_leeway() {
    let (issuer, app, _) = setup().await;
    let token = issuer.token("es-1");
    assert_eq!(call(&app, "GET", "/whoami", Some(&bearer(&token))).await.status, 200);
    issuer.clock.advance(Duration::from_secs(3600 + 60));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::Expired);
}

#[tokio::test]
async fn a_token_not_yet_valid_or_issued_in_the_future_is_refused() {
    let (issuer, app, _) = setup().await;
    let now = issuer.now();
    let with_nbf = issuer.token_with("rs-1", |c| c["nbf"] = json!(now + 120));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&with_nbf))).await;
    assert_invalid_token(&answer, VerifyError::NotYetValid);

    let from_the_future = issuer.token_with("rs-1", |c| c["iat"] = json!(now + 120));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&from_the_future))).await;
    assert_invalid_token(&answer, VerifyError::NotYetValid);

    let nbf_within_leeway = issuer.token_with("rs-1", |c| c["nbf"] = json!(now + 30));
    assert_eq!(call(&app, "GET", "/whoami", Some(&bearer(&nbf_within_leeway))).await.status, 200);
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let (issuer, app, _) = setup().await;
    let token = issuer.token_with("rs-1", |c| c["aud"] = json!(["https://other.example.com"]));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::WrongAudience);
}

#[tokio::test]
async fn a_token_from_another_issuer_is_refused_even_when_signed_with_a_known_key() {
    let (issuer, app, _) = setup().await;
    for iss in ["https://evil.example", &format!("{}/", issuer.issuer)] {
        let token = issuer.token_with("rs-1", |c| c["iss"] = json!(iss));
        let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
        assert_invalid_token(&answer, VerifyError::WrongIssuer);
    }
}

#[tokio::test]
async fn a_token_whose_typ_is_not_at_jwt_is_refused() {
    let (issuer, app, _) = setup().await;
    for typ in [json!("JWT"), json!("application/jwt"), Value::Null] {
        let header = json!({ "alg": "RS256", "typ": typ, "kid": "rs-1" });
        let token = issuer.sign(&header, &issuer.claims(), "rs-1");
        let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
        assert_invalid_token(&answer, VerifyError::WrongType);
    }
    let header = json!({ "alg": "RS256", "typ": "application/AT+JWT", "kid": "rs-1" });
    let token = issuer.sign(&header, &issuer.claims(), "rs-1");
    assert_eq!(call(&app, "GET", "/whoami", Some(&bearer(&token))).await.status, 200);
}

#[tokio::test]
async fn a_forged_or_tampered_signature_is_refused() {
    let (issuer, app, _) = setup().await;
    // Signed by a key the issuer never published, under the name of one it did.
    let impostor = TestKey::generate("RS256", "rs-1");
    let forged = compact(&issuer.header("rs-1"), &issuer.claims(), |input| impostor.sign(input));
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&forged))).await;
    assert_invalid_token(&answer, VerifyError::BadSignature);

    // A genuine token whose claims were edited afterwards.
    let genuine = issuer.token("es-1");
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut claims = issuer.claims();
    claims["scope"] = json!("eligibility:read eligibility:write");
    let edited = compact(&issuer.header("es-1"), &claims, |_| Vec::new());
    let edited_payload = edited.split('.').nth(1).unwrap();
    let tampered = format!("{}.{}.{}", parts[0], edited_payload, parts[2]);
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&tampered))).await;
    assert_invalid_token(&answer, VerifyError::BadSignature);
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_refused() {
    let (issuer, app, verifier) = setup().await;
    for alg in ["none", "None", "NONE"] {
        let header = json!({ "alg": alg, "typ": "at+jwt", "kid": "rs-1" });
        let token = compact(&header, &issuer.claims(), |_| Vec::new());
        let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
        assert_invalid_token(&answer, VerifyError::AlgorithmNotAllowed);
    }
    assert_eq!(verifier.metrics().signature_checks, 0);
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_rsa_public_key_is_refused() {
    let (issuer, app, verifier) = setup().await;
    let header = json!({ "alg": "HS256", "typ": "at+jwt", "kid": "rs-1" });
    for secret in issuer.key("rs-1").rsa_public_key_forms() {
        let token = compact(&header, &issuer.claims(), |input| hs256(&secret, input));
        let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
        assert_invalid_token(&answer, VerifyError::AlgorithmNotAllowed);
    }
    assert_eq!(verifier.metrics().signature_checks, 0);
}

#[tokio::test]
async fn a_token_whose_alg_differs_from_its_keys_is_refused() {
    let (issuer, app, _) = setup().await;
    // An RS256 signature presented under the EC key's kid, and the reverse.
    let header = json!({ "alg": "RS256", "typ": "at+jwt", "kid": "es-1" });
    let token = issuer.sign(&header, &issuer.claims(), "rs-1");
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::KeyAlgorithmMismatch);

    let header = json!({ "alg": "ES256", "typ": "at+jwt", "kid": "rs-1" });
    let token = issuer.sign(&header, &issuer.claims(), "es-1");
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::KeyAlgorithmMismatch);
}

#[tokio::test]
async fn a_token_naming_a_key_not_in_the_jwks_is_refused() {
    let (issuer, app, _) = setup().await;
    issuer.create_unpublished("RS256", "ghost");
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&issuer.token("ghost")))).await;
    assert_invalid_token(&answer, VerifyError::UnknownKey);

    let header = json!({ "alg": "RS256", "typ": "at+jwt" });
    let token = issuer.sign(&header, &issuer.claims(), "rs-1");
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    assert_invalid_token(&answer, VerifyError::MissingKeyId);
}

#[tokio::test]
async fn only_algorithms_the_issuer_advertises_are_accepted() {
    let issuer = TestIssuer::start().await;
    issuer.set_advertised_algs(&["ES256"]);
    let verifier = issuer.verifier(|c| c).await;
    let before = issuer.jwks_fetches();
    assert_eq!(
        verifier.verify(&issuer.token("rs-1")).await.err(),
        Some(VerifyError::AlgorithmNotAllowed)
    );
    assert_eq!(
        verifier.verify(&issuer.token("ed-1")).await.err(),
        Some(VerifyError::AlgorithmNotAllowed)
    );
    assert!(verifier.verify(&issuer.token("es-1")).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), before, "a refused algorithm costs the issuer nothing");
}

#[tokio::test]
async fn without_advertised_algorithms_the_jwks_keys_declare_them() {
    let issuer = TestIssuer::start().await;
    issuer.set_advertised_algs(&[]);
    let verifier = issuer.verifier(|c| c).await;
    for kid in ["rs-1", "es-1", "ed-1"] {
        assert!(verifier.verify(&issuer.token(kid)).await.is_ok(), "{kid}");
    }
}

#[tokio::test]
async fn an_issuer_advertising_only_symmetric_algorithms_cannot_be_used() {
    let issuer = TestIssuer::start().await;
    issuer.set_advertised_algs(&["HS256"]);
    let config = VerifierConfig::new(&issuer.issuer);
    let error = Verifier::builder(config).build().await.err();
    assert!(matches!(error, Some(BuildError::NoUsableAlgorithm { .. })), "{error:?}");
}

#[tokio::test]
async fn metadata_naming_another_issuer_is_refused_at_build() {
    let issuer = TestIssuer::start().await;
    let config = VerifierConfig::new(format!("{}/", issuer.issuer));
    let error = Verifier::builder(config).build().await.err();
    assert!(matches!(error, Some(BuildError::IssuerMismatch { .. })), "{error:?}");
}

#[tokio::test]
async fn an_unreachable_issuer_fails_the_build_with_a_discovery_error() {
    let issuer = TestIssuer::start().await;
    issuer.set_down(true);
    let error = Verifier::builder(VerifierConfig::new(&issuer.issuer)).build().await.err();
    assert!(matches!(error, Some(BuildError::Discovery { .. })), "{error:?}");
}

#[tokio::test]
async fn a_token_without_the_needed_scope_gets_403_naming_the_scope() {
    let (issuer, app, _) = setup().await;
    let token = bearer(&issuer.token("rs-1")); // eligibility:read only
    assert_eq!(call(&app, "GET", "/eligibility", Some(&token)).await.status, 200);
    assert_eq!(call(&app, "HEAD", "/eligibility", Some(&token)).await.status, 200);

    let answer = call(&app, "POST", "/eligibility", Some(&token)).await;
    assert_eq!(answer.status, 403);
    assert_eq!(answer.content_type(), Some("application/problem+json"));
    assert_eq!(
        answer.www_authenticate(),
        Some(
            "Bearer error=\"insufficient_scope\", error_description=\"the access token does not \
             grant the scope eligibility:write\", scope=\"eligibility:write\""
        )
    );
    assert_eq!(answer.body["status"], 403);
    assert_eq!(answer.body["title"], "Forbidden");
    assert_eq!(answer.body["error"], "insufficient_scope");
    assert_eq!(answer.body["required_scope"], "eligibility:write");

    let writer =
        issuer.token_with("rs-1", |c| c["scope"] = json!("eligibility:write eligibility:read"));
    assert_eq!(call(&app, "POST", "/eligibility", Some(&bearer(&writer))).await.status, 200);
}

#[tokio::test]
async fn neither_refusals_nor_debug_output_contain_the_token() {
    let (issuer, app, verifier) = setup().await;
    let token = issuer.token_with("rs-1", |c| c["aud"] = json!("https://other.example.com"));
    let signature = token.rsplit('.').next().unwrap().to_owned();
    let answer = call(&app, "GET", "/whoami", Some(&bearer(&token))).await;
    let shown = format!("{answer:?}");
    assert!(!shown.contains(&signature) && !shown.contains(&token));

    let good = issuer.token("rs-1");
    let verified = verifier.verify(&good).await.unwrap();
    let shown = format!("{verified:?} {verifier:?}");
    assert!(!shown.contains(&good) && !shown.contains(good.rsplit('.').next().unwrap()));
}

#[tokio::test]
async fn refusals_are_counted_by_reason() {
    let (issuer, _, verifier) = setup().await;
    let now = issuer.now();
    let _ = verifier.verify(&issuer.token_with("rs-1", |c| c["exp"] = json!(now - 3600))).await;
    let _ = verifier.verify("garbage").await;
    let _ = verifier.verify(&issuer.token("es-1")).await;
    let metrics = verifier.metrics();
    assert_eq!(metrics.rejected(tokenmint_verify::RejectReason::Expired), 1);
    assert_eq!(metrics.rejected(tokenmint_verify::RejectReason::Malformed), 1);
    assert_eq!(metrics.rejected_total(), 2);
    assert_eq!(metrics.accepted, 1);
}

async fn greet(token: Option<tokenmint_verify::VerifiedToken>) -> axum::Json<Value> {
    axum::Json(json!({ "caller": token.map(|t| t.client_id.clone()) }))
}

#[tokio::test]
async fn an_optional_layer_lets_anonymous_requests_through_but_still_refuses_bad_tokens() {
    let (issuer, _, verifier) = setup().await;
    let app = axum::Router::new()
        .route("/", axum::routing::get(greet))
        .layer(tokenmint_verify::VerifyLayer::optional(verifier));
    let anonymous = call(&app, "GET", "/", None).await;
    assert_eq!(
        (anonymous.status.as_u16(), anonymous.body.clone()),
        (200, json!({ "caller": null }))
    );
    let known = call(&app, "GET", "/", Some(&bearer(&issuer.token("es-1")))).await;
    assert_eq!(known.body, json!({ "caller": CLIENT_ID }));
    let bad = call(&app, "GET", "/", Some(&bearer("not-a-jwt"))).await;
    assert_invalid_token(&bad, VerifyError::Malformed);
}

#[tokio::test]
async fn a_route_extracting_a_token_without_the_layer_fails_closed_with_500() {
    async fn handler(token: tokenmint_verify::VerifiedToken) -> String {
        token.client_id.clone()
    }
    let app = axum::Router::new()
        .route("/", axum::routing::get(handler))
        .route_layer(tokenmint_verify::RequireScope::new("eligibility:read"));
    let answer = call(&app, "GET", "/", None).await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.content_type(), Some("application/problem+json"));
    let app = axum::Router::new().route("/", axum::routing::get(handler));
    assert_eq!(call(&app, "GET", "/", None).await.status, 500);
}
