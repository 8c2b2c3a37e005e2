//! The admin REST API under `/admin/v1`, authorized by Bearer tokens this server issued.

pub mod audit;
pub mod credentials;
pub mod keys;
pub mod organizations;
pub mod revocations;
pub mod users;

use crate::error::ApiError;
use crate::extract::{Caller, authenticate_bearer};
use crate::service::Action;
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::Method;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post};

/// An authenticated caller (a valid access token of this server, for this API). What it may
/// do is asked of the policy by the operation the handler calls.
#[derive(Debug, Clone)]
pub struct Bearer(pub Caller);

impl FromRequestParts<AppState> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(authenticate_bearer(state, &parts.headers).await?))
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the OpenAPI document, the portal's sign-in page and assets).
    Public,
    /// Any signed-in portal user, for their own session (signing out).
    OwnSession,
    /// Whoever the policy allows this action.
    Policy(Action),
}

/// One route: its method, path (as the router spells it) and who may call it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// Every admin route with its handler. The router is built from this table and nothing
/// else, so the list [`routes`] returns is the router's, and a test checks that the
/// authorization matrix covers each entry.
fn table() -> Vec<(RouteSpec, MethodRouter<AppState>)> {
    use Access::{Policy, Public};
    use Action::*;
    let spec =
        |method: Method, path: &'static str, access: Access| RouteSpec { method, path, access };
    vec![
        (spec(Method::GET, "/openapi.json", Public), get(openapi_document)),
        (
            spec(Method::GET, "/organizations", Policy(ListOrganizations)),
            get(organizations::list_organizations),
        ),
        (
            spec(Method::POST, "/organizations", Policy(CreateOrganization)),
            post(organizations::create_organization),
        ),
        (
            spec(Method::GET, "/organizations/{slug}", Policy(ReadOrganization)),
            get(organizations::show_organization),
        ),
        (
            spec(Method::PATCH, "/organizations/{slug}", Policy(EditOrganization)),
            patch(organizations::update_organization),
        ),
        (
            spec(Method::GET, "/credentials", Policy(ListCredentials)),
            get(credentials::list_credentials),
        ),
        (
            spec(Method::POST, "/credentials", Policy(CreateCredential)),
            post(credentials::create_credential),
        ),
        (
            spec(Method::GET, "/credentials/{client_id}", Policy(ReadCredential)),
            get(credentials::show_credential),
        ),
        (
            spec(Method::PATCH, "/credentials/{client_id}", Policy(EditCredential)),
            patch(credentials::update_credential),
        ),
        (
            spec(Method::POST, "/credentials/{client_id}/deactivate", Policy(DeactivateCredential)),
            post(credentials::deactivate_credential),
        ),
        (
            spec(Method::POST, "/credentials/{client_id}/activate", Policy(ActivateCredential)),
            post(credentials::activate_credential),
        ),
        (
            spec(Method::POST, "/credentials/{client_id}/secrets", Policy(RotateSecret)),
            post(credentials::rotate_secret),
        ),
        (
            spec(
                Method::DELETE,
                "/credentials/{client_id}/secrets/{secret_id}",
                Policy(DeleteSecret),
            ),
            delete(credentials::delete_secret),
        ),
        (
            spec(Method::POST, "/credentials/{client_id}/public-keys", Policy(AddPublicKeys)),
            post(credentials::add_public_keys),
        ),
        (
            spec(
                Method::DELETE,
                "/credentials/{client_id}/public-keys/{key_id}",
                Policy(RemovePublicKey),
            ),
            delete(credentials::remove_public_key),
        ),
        (
            spec(
                Method::POST,
                "/credentials/{client_id}/revoke-tokens",
                Policy(RevokeCredentialTokens),
            ),
            post(credentials::revoke_tokens),
        ),
        (
            spec(Method::GET, "/credentials/{client_id}/activity", Policy(ReadCredential)),
            get(audit::show_activity),
        ),
        (spec(Method::GET, "/users", Policy(ListUsers)), get(users::list_users)),
        (spec(Method::POST, "/users", Policy(CreateUser)), post(users::create_user)),
        (
            spec(Method::POST, "/users/{id}/deactivate", Policy(DeactivateUser)),
            post(users::deactivate_user),
        ),
        (
            spec(Method::POST, "/users/{id}/reactivate", Policy(ReactivateUser)),
            post(users::reactivate_user),
        ),
        (spec(Method::PATCH, "/users/{id}", Policy(ChangeUserRole)), patch(users::update_user)),
        (
            spec(Method::POST, "/users/{id}/reset-password", Policy(ResetUserPassword)),
            post(users::reset_password),
        ),
        (spec(Method::GET, "/audit", Policy(ReadAudit)), get(audit::list_audit)),
        (spec(Method::GET, "/alerts", Policy(ReadAlerts)), get(audit::list_alerts)),
        (spec(Method::GET, "/keys", Policy(ReadKeys)), get(keys::list_keys)),
        (spec(Method::POST, "/keys/rotate", Policy(RotateKey)), post(keys::rotate_key)),
        (spec(Method::POST, "/keys/{kid}/withdraw", Policy(WithdrawKey)), post(keys::withdraw_key)),
        (
            spec(Method::GET, "/revocations", Policy(FollowRevocations)),
            get(revocations::list_revocations),
        ),
        (
            spec(Method::GET, "/revocations/stream", Policy(FollowRevocations)),
            get(revocations::stream_revocations),
        ),
    ]
}

/// Every admin route, relative to `/admin/v1`.
pub fn routes() -> Vec<RouteSpec> {
    table().into_iter().map(|(spec, _)| spec).collect()
}

pub fn router() -> Router<AppState> {
    table()
        .into_iter()
        .fold(Router::new(), |r, (spec, handler)| r.route(spec.path, handler))
        .fallback(|| async { ApiError::not_found("this admin API path").into_response() })
}

async fn openapi_document(State(state): State<AppState>) -> Response {
    axum::Json(crate::openapi::document(&state.issuer, &state.config)).into_response()
}
