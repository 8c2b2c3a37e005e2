//! Tokens from issuers tokenmint did not write, shaped like Auth0's, Entra ID's, Keycloak's and
//! Okta's (headers, claims and JWKS as those issuers publish them), and several issuers behind
//! one [`Issuers`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use std::sync::Arc;
use tokenmint_verify::{
    Algorithm, ClaimMapping, Clock, Issuers, Verifier, VerifierConfig, VerifyError,
};

async fn build(config: VerifierConfig, issuer: &TestIssuer) -> Result<Verifier, String> {
    Verifier::builder(config)
        .clock(Arc::clone(&issuer.clock) as Arc<dyn Clock>)
        .build()
        .await
        .map_err(|e| e.to_string())
}

fn jwks_uri(issuer: &TestIssuer) -> String {
    format!("{}/.well-known/jwks.json", issuer.issuer)
}

#[tokio::test]
async fn an_auth0_shaped_token_is_verified_against_its_issuer_with_the_trailing_slash() {
    let issuer = TestIssuer::start().await;
    let auth0 = format!("{}/", issuer.issuer);
    let now = issuer.now();
    let claims = json!({
        "iss": auth0, "sub": "app-1@clients", "aud": AUDIENCE, "iat": now, "exp": now + 86400,
        "azp": "app-1", "gty": "client-credentials", "scope": "read:files write:files",
    });
    let token = issuer.sign(&json!({"alg": "RS256", "typ": "JWT", "kid": "rs-1"}), &claims, "rs-1");
    let config = |iss: &str| {
        VerifierConfig::new(iss)
            .with_audience(AUDIENCE)
            .with_jwks_uri(jwks_uri(&issuer))
            .with_token_types(["JWT"])
            .with_claims(ClaimMapping::default().with_client_id_claim("azp"))
    };
    let verifier = build(config(&auth0), &issuer).await.unwrap();
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.client_id, "app-1");
    assert_eq!(verified.scope, "read:files write:files");
    assert!(verified.has_scope("write:files"));
    assert_eq!((verified.env, verified.org.as_deref()), (None, None));
    assert!(verifier.metadata().is_none(), "no discovery with a jwks_uri");

    // Issuers are compared exactly: without the slash it is another issuer.
    let without_slash = build(config(&issuer.issuer), &issuer).await.unwrap();
    assert_eq!(without_slash.verify(&token).await.err(), Some(VerifyError::WrongIssuer));
    // And at+jwt only (the default) refuses Auth0's typ.
    let strict = build(config(&auth0).with_token_types(["at+jwt"]), &issuer).await.unwrap();
    assert_eq!(strict.verify(&token).await.err(), Some(VerifyError::WrongType));
}

#[tokio::test]
async fn an_entra_id_shaped_token_is_verified_with_a_jwks_key_that_has_no_alg() {
    let issuer = TestIssuer::start().await;
    issuer.publish(TestKey::generate("RS256", "entra-1").without_alg());
    let now = issuer.now();
    let claims = json!({
        "aud": AUDIENCE, "iss": issuer.issuer, "iat": now, "nbf": now, "exp": now + 3600,
        "azp": "6e74172b-be56-4843-9ff4-e66a39bb12e3", "azpacr": "1", "oid": "x", "sub": "x",
        "tid": "72f988bf", "uti": "AbC", "ver": "2.0", "roles": ["Files.Read", "Files.Write"],
    });
    let header = json!({"typ": "JWT", "alg": "RS256", "kid": "entra-1", "x5t": "entra-1"});
    let token = issuer.sign(&header, &claims, "entra-1");
    let verifier = build(
        VerifierConfig::new(&issuer.issuer)
            .with_audience(AUDIENCE)
            .with_token_types(["JWT"])
            .with_claims(
                ClaimMapping::default().with_client_id_claim("azp").with_scope_claim("roles"),
            ),
        &issuer,
    )
    .await
    .unwrap();
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.client_id, "6e74172b-be56-4843-9ff4-e66a39bb12e3");
    assert_eq!(verified.scope, "Files.Read Files.Write");
    assert!(verified.jti.is_none());

    // The alg-less key admits only the algorithms the issuer allows for RSA keys: an HS256
    // token (keyed with anything) or an RS384 claim on it never passes.
    for alg in ["HS256", "none", "RS384", "ES256"] {
        let forged =
            issuer.sign(&json!({"typ": "JWT", "alg": alg, "kid": "entra-1"}), &claims, "entra-1");
        assert!(verifier.verify(&forged).await.is_err(), "{alg}");
    }
    // With algorithms configured, the key serves exactly those of its type.
    let ps_only = build(
        VerifierConfig::new(&issuer.issuer)
            .with_token_types(["JWT"])
            .with_algorithms([Algorithm::PS256])
            .with_claims(ClaimMapping::default().with_client_id_claim("azp")),
        &issuer,
    )
    .await
    .unwrap();
    assert_eq!(ps_only.verify(&token).await.err(), Some(VerifyError::AlgorithmNotAllowed));
    // HMAC cannot be configured at all.
    let hmac =
        build(VerifierConfig::new(&issuer.issuer).with_algorithms([Algorithm::HS256]), &issuer);
    assert!(hmac.await.is_err());
}

#[tokio::test]
async fn keycloak_and_okta_shaped_tokens_map_their_clients_and_scopes() {
    let issuer = TestIssuer::start().await;
    let now = issuer.now();
    let keycloak = json!({
        "exp": now + 300, "iat": now, "jti": "onrtcc:1", "iss": issuer.issuer, "aud": "account",
        "sub": "f4c", "typ": "Bearer", "azp": "billing-service", "acr": "1",
        "realm_access": {"roles": ["offline_access"]}, "scope": "profile email files:read",
        "clientHost": "10.0.0.1", "email_verified": false, "client_id": "billing-service",
    });
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": "es-1"});
    let token = issuer.sign(&header, &keycloak, "es-1");
    let verifier = build(
        VerifierConfig::new(&issuer.issuer)
            .with_jwks_uri(jwks_uri(&issuer))
            .with_token_types(["JWT"])
            .with_claims(ClaimMapping::default().with_client_id_claim("azp")),
        &issuer,
    )
    .await
    .unwrap();
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.client_id, "billing-service");
    assert!(verified.has_scope("files:read"));

    let okta = json!({
        "ver": 1, "jti": "AT.x", "iss": issuer.issuer, "aud": "api://default", "iat": now,
        "exp": now + 3600, "cid": "0oa1", "scp": ["files:read", "files:write"], "sub": "0oa1",
    });
    let token = issuer.sign(&json!({"alg": "RS256", "kid": "rs-1"}), &okta, "rs-1");
    let verifier = build(
        VerifierConfig::new(&issuer.issuer)
            .with_audience("api://default")
            .with_token_types(["JWT", ""])
            .with_claims(
                ClaimMapping::default().with_client_id_claim("cid").with_scope_claim("scp"),
            ),
        &issuer,
    )
    .await
    .unwrap();
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.client_id, "0oa1");
    assert_eq!(verified.scope, "files:read files:write");

    // A token without the client claim the mapping names is refused.
    let anonymous = issuer.sign(
        &json!({"alg": "RS256", "kid": "rs-1"}),
        &json!({"iss": issuer.issuer, "aud": "api://default", "exp": now + 60, "scp": []}),
        "rs-1",
    );
    assert_eq!(verifier.verify(&anonymous).await.err(), Some(VerifyError::NoClient));
}

#[tokio::test]
async fn several_issuers_each_verify_only_their_own_tokens() {
    let tokenmint = TestIssuer::start().await;
    let other = TestIssuer::start().await;
    let first = tokenmint.verifier(|c| c).await;
    let second =
        build(VerifierConfig::new(&other.issuer).with_audience(AUDIENCE), &other).await.unwrap();
    let issuers = Issuers::new(vec![first.clone(), second.clone()]).unwrap();
    assert_eq!(issuers.verify(&tokenmint.token("es-1")).await.unwrap().iss, tokenmint.issuer);
    assert_eq!(issuers.verify(&other.token("es-1")).await.unwrap().iss, other.issuer);

    // A token signed by one issuer's key but naming the other is refused by the one it names.
    let forged = tokenmint.token_with("es-1", |c| c["iss"] = json!(other.issuer));
    assert!(issuers.verify(&forged).await.is_err());
    let unknown = tokenmint.token_with("es-1", |c| c["iss"] = json!("https://elsewhere"));
    assert_eq!(issuers.verify(&unknown).await.err(), Some(VerifyError::WrongIssuer));
    assert_eq!(issuers.verify("junk").await.err(), Some(VerifyError::Malformed));
    assert!(Issuers::new(vec![first.clone(), first]).is_err());
}
