//! RFC 8414 metadata, the JWKS (RFC 7517) and the signing key as PEM.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokenmint_proto::metadata::AuthorizationServerMetadata;

/// Builds the RFC 8414 discovery document. Only what the server really supports is listed.
pub fn metadata_document(
    state_issuer: &str,
    config: &crate::Config,
    token_endpoint: &str,
) -> AuthorizationServerMetadata {
    let auth_methods = vec![
        "client_secret_basic".to_owned(),
        "client_secret_post".to_owned(),
        "private_key_jwt".to_owned(),
    ];
    let assertion_algs: Vec<String> =
        tokenmint_core::assertion::ALLOWED_ALGS.iter().map(|a| (*a).to_owned()).collect();
    let mut scopes = config.product_areas.all_scopes();
    scopes.extend(tokenmint_proto::system_scopes::ALL.iter().map(|s| (*s).to_owned()));
    AuthorizationServerMetadata {
        issuer: state_issuer.to_owned(),
        token_endpoint: token_endpoint.to_owned(),
        jwks_uri: format!("{state_issuer}/.well-known/jwks.json"),
        introspection_endpoint: Some(format!("{state_issuer}/oauth/introspect")),
        revocation_endpoint: Some(format!("{state_issuer}/oauth/revoke")),
        grant_types_supported: vec!["client_credentials".to_owned()],
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        scopes_supported: scopes,
        // RFC 8414 §2 makes this member REQUIRED even of a server without an authorization
        // endpoint, and validators (authlib among them) refuse an empty list. `none` (OAuth 2.0
        // Multiple Response Type Encoding Practices §4) is the response type that issues
        // nothing, which is what tokenmint issues outside its token endpoint; with no
        // `authorization_endpoint` advertised, no client can start a browser flow from it.
        response_types_supported: vec!["none".to_owned()],
        // RFC 8414 §2: the algorithms of `private_key_jwt` assertions, at each endpoint that
        // takes them (the introspection and revocation endpoints authenticate clients alike).
        token_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        introspection_endpoint_auth_signing_alg_values_supported: assertion_algs.clone(),
        revocation_endpoint_auth_signing_alg_values_supported: assertion_algs,
        subject_types_supported: vec![],
        id_token_signing_alg_values_supported: vec![],
        revocation_feed_endpoint: Some(format!("{state_issuer}/admin/v1/revocations")),
        access_token_signing_alg_values_supported: tokenmint_core::keys::SigningAlgorithm::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
    }
}

/// The OpenID Connect Discovery 1.0 document: the RFC 8414 one plus the two members §3 makes
/// REQUIRED of every provider. tokenmint issues no ID tokens, but an OIDC client library refuses
/// a provider document without them:
/// * `subject_types_supported`: `public`, since a token's `sub` is the client_id, the same for
///   every resource server;
/// * `id_token_signing_alg_values_supported`: §3 requires RS256 in the list, and RS256 is an
///   algorithm tokenmint signs with.
pub fn openid_configuration(metadata: &AuthorizationServerMetadata) -> AuthorizationServerMetadata {
    AuthorizationServerMetadata {
        subject_types_supported: vec!["public".to_owned()],
        id_token_signing_alg_values_supported: vec!["RS256".to_owned()],
        ..metadata.clone()
    }
}

fn cached(body: Bytes, content_type: &'static str, max_age: u64) -> Response {
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        h.insert(header::CACHE_CONTROL, v);
    }
    res
}

pub async fn metadata(State(state): State<AppState>) -> Response {
    cached(state.metadata_json.clone(), "application/json", 3600)
}

pub async fn openid_metadata(State(state): State<AppState>) -> Response {
    cached(state.openid_metadata_json.clone(), "application/json", 3600)
}

pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.keys.load();
    cached(keys.jwks_json.clone(), "application/jwk-set+json", state.config.jwks_max_age())
}

pub async fn pem(State(state): State<AppState>) -> Response {
    let keys = state.keys.load();
    cached(keys.pem.clone(), "application/x-pem-file", state.config.jwks_max_age())
}
