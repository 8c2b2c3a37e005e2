//! The admin REST API under `/admin/v1`, authorized by Bearer tokens this server issued.

pub mod audit;
pub mod credentials;
pub mod keys;
pub mod organizations;
pub mod revocations;
pub mod users;

use crate::error::ApiError;
use crate::extract::{Caller, authorize_bearer};
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use tokenmint_proto::system_scopes;

/// A caller holding `tokenmint:admin`.
#[derive(Debug, Clone)]
pub struct Admin(pub Caller);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(authorize_bearer(state, &parts.headers, &[system_scopes::ADMIN]).await?))
    }
}

/// A caller allowed to follow the revocation feed.
#[derive(Debug, Clone)]
pub struct FeedReader(pub Caller);

impl FromRequestParts<AppState> for FeedReader {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = authorize_bearer(
            state,
            &parts.headers,
            &[system_scopes::REVOCATIONS, system_scopes::ADMIN],
        )
        .await?;
        Ok(Self(caller))
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi_document))
        .route(
            "/organizations",
            get(organizations::list_organizations).post(organizations::create_organization),
        )
        .route("/organizations/{slug}", get(organizations::show_organization))
        .route(
            "/credentials",
            get(credentials::list_credentials).post(credentials::create_credential),
        )
        .route(
            "/credentials/{client_id}",
            get(credentials::show_credential).patch(credentials::update_credential),
        )
        .route("/credentials/{client_id}/deactivate", post(credentials::deactivate_credential))
        .route("/credentials/{client_id}/activate", post(credentials::activate_credential))
        .route("/credentials/{client_id}/secrets", post(credentials::rotate_secret))
        .route("/credentials/{client_id}/secrets/{secret_id}", delete(credentials::delete_secret))
        .route("/credentials/{client_id}/revoke-tokens", post(credentials::revoke_tokens))
        .route("/credentials/{client_id}/activity", get(audit::show_activity))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/users/{id}/deactivate", post(users::deactivate_user))
        .route("/audit", get(audit::list_audit))
        .route("/alerts", get(audit::list_alerts))
        .route("/keys", get(keys::list_keys))
        .route("/keys/rotate", post(keys::rotate_key))
        .route("/keys/{kid}/withdraw", post(keys::withdraw_key))
        .route("/revocations", get(revocations::list_revocations))
        .route("/revocations/stream", get(revocations::stream_revocations))
        .fallback(|| async { ApiError::not_found("this admin API path").into_response() })
}

async fn openapi_document(State(state): State<AppState>) -> Response {
    axum::Json(crate::openapi::document(&state.issuer)).into_response()
}
