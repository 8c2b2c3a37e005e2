//! RFC 8414 metadata, the JWKS (RFC 7517) and the signing key as PEM.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokenmint_proto::metadata::AuthorizationServerMetadata;

/// Builds the discovery document. Only what the server really supports is listed.
pub fn metadata_document(
    state_issuer: &str,
    config: &crate::Config,
    token_endpoint: &str,
) -> AuthorizationServerMetadata {
    let auth_methods = vec!["client_secret_basic".to_owned(), "client_secret_post".to_owned()];
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
        response_types_supported: vec!["token".to_owned()],
        token_endpoint_auth_signing_alg_values_supported: vec![],
        id_token_signing_alg_values_supported: vec![],
        revocation_feed_endpoint: Some(format!("{state_issuer}/admin/v1/revocations")),
        access_token_signing_alg_values_supported: tokenmint_core::keys::SigningAlgorithm::ALL
            .iter()
            .map(|a| a.as_str().to_owned())
            .collect(),
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

pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.keys.load();
    cached(keys.jwks_json.clone(), "application/jwk-set+json", state.config.jwks_max_age())
}

pub async fn pem(State(state): State<AppState>) -> Response {
    let keys = state.keys.load();
    cached(keys.pem.clone(), "application/x-pem-file", state.config.jwks_max_age())
}
