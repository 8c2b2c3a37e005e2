//! HTTP routes, one module per resource.

pub mod admin;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod revoke;
pub mod token;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for path in &state.config.token_paths {
        r = r.route(path, post(token::issue_token));
    }
    r.route("/.well-known/oauth-authorization-server", get(discovery::metadata))
        .route("/.well-known/openid-configuration", get(discovery::openid_metadata))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/pem", get(discovery::pem))
        .route("/oauth/introspect", post(introspect::introspect_token))
        .route("/oauth/revoke", post(revoke::revoke_token))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/admin/v1", admin::router())
        .merge(crate::portal::router())
        .fallback(health::not_found)
        .with_state(state)
}
