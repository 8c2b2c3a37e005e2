//! `/admin/v1/credentials`: create, list, show, update, (de)activate, rotate and delete
//! secrets, register and remove public keys, revoke tokens.

use super::Bearer;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::service;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokenmint_core::credential::CredentialStatus;
use tokenmint_proto::Problem;
use tokenmint_proto::admin as dto;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only credentials of this organization.
    pub org: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    #[param(schema_with = credentials_limit)]
    pub limit: Option<u32>,
}

fn credentials_limit() -> utoipa::openapi::Object {
    tokenmint_proto::openapi::page_size(tokenmint_proto::limits::CREDENTIALS_PAGE, "Page size")
}

#[utoipa::path(post, path = "/admin/v1/credentials", tag = "credentials",
    request_body = dto::NewCredential,
    responses(
        (status = 201, description = "Created; the secret is shown this once", body = dto::CreatedCredential),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Missing scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_credential(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    JsonBody(input): JsonBody<dto::NewCredential>,
) -> Result<Response, ApiError> {
    let created = service::create_credential_with_keys(&state, &caller.actor, input).await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/credentials", tag = "credentials", params(ListQuery),
    responses(
        (status = 200, description = "A page of credentials", body = dto::Page<dto::Credential>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: an unknown parameter, a limit out of range, a cursor no listing returned", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_credentials(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<dto::Page<dto::Credential>>, ApiError> {
    Ok(Json(service::list_credentials(&state, &caller.actor, q.org, q.cursor, q.limit).await?))
}

#[utoipa::path(get, path = "/admin/v1/credentials/{client_id}", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    responses(
        (status = 200, description = "The credential", body = dto::Credential),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn show_credential(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
) -> Result<Json<dto::Credential>, ApiError> {
    let c = service::get_credential(&state, &caller.actor, &client_id).await?;
    Ok(Json(service::view(&c)))
}

#[utoipa::path(patch, path = "/admin/v1/credentials/{client_id}", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    request_body = dto::UpdateCredential,
    responses(
        (status = 200, description = "The updated credential", body = dto::Credential),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Concurrent change", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_credential(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
    JsonBody(input): JsonBody<dto::UpdateCredential>,
) -> Result<Json<dto::Credential>, ApiError> {
    Ok(Json(service::update_credential(&state, &caller.actor, &client_id, input).await?))
}

#[utoipa::path(post, path = "/admin/v1/credentials/{client_id}/deactivate", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    responses(
        (status = 200, description = "Deactivated; its tokens are revoked", body = dto::Credential),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own credential: it would lock itself out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn deactivate_credential(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
) -> Result<Json<dto::Credential>, ApiError> {
    Ok(Json(
        service::set_status(&state, &caller.actor, &client_id, CredentialStatus::Deactivated)
            .await?,
    ))
}

#[utoipa::path(post, path = "/admin/v1/credentials/{client_id}/activate", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    responses(
        (status = 200, description = "Active again", body = dto::Credential),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn activate_credential(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
) -> Result<Json<dto::Credential>, ApiError> {
    Ok(Json(
        service::set_status(&state, &caller.actor, &client_id, CredentialStatus::Active).await?,
    ))
}

#[utoipa::path(post, path = "/admin/v1/credentials/{client_id}/secrets", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    request_body = dto::RotateSecret,
    responses(
        (status = 201, description = "The new secret, shown this once", body = dto::RotatedSecret),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Rotated moments ago, or as many secrets live as a credential may hold: delete one first", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
    JsonBody(input): JsonBody<dto::RotateSecret>,
) -> Result<Response, ApiError> {
    let rotated = service::rotate_secret(&state, &caller.actor, &client_id, input).await?;
    Ok((StatusCode::CREATED, Json(rotated)).into_response())
}

#[utoipa::path(delete, path = "/admin/v1/credentials/{client_id}/secrets/{secret_id}", tag = "credentials",
    params(
        ("client_id" = String, Path, description = "The credential's client_id"),
        ("secret_id" = String, Path, description = "The secret's id"),
    ),
    responses(
        (status = 204, description = "Deleted; the secret no longer works"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential or secret", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own credential: it would lock itself out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn delete_secret(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path((client_id, secret_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::delete_secret(&state, &caller.actor, &client_id, &secret_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/admin/v1/credentials/{client_id}/revoke-tokens", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    responses(
        (status = 200, description = "Every token issued until now is revoked", body = dto::TokensRevoked),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own credential: it would lock itself out", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn revoke_tokens(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
) -> Result<Json<dto::TokensRevoked>, ApiError> {
    Ok(Json(service::revoke_tokens(&state, &caller.actor, &client_id).await?))
}

#[utoipa::path(post, path = "/admin/v1/credentials/{client_id}/public-keys", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id")),
    request_body = dto::AddPublicKeys,
    responses(
        (status = 200, description = "The credential, with its keys", body = dto::Credential),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A key that is private, malformed, of an unsupported type or already registered", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn add_public_keys(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
    JsonBody(input): JsonBody<dto::AddPublicKeys>,
) -> Result<Json<dto::Credential>, ApiError> {
    Ok(Json(service::add_public_keys(&state, &caller.actor, &client_id, input).await?))
}

#[utoipa::path(delete, path = "/admin/v1/credentials/{client_id}/public-keys/{key_id}", tag = "credentials",
    params(
        ("client_id" = String, Path, description = "The credential's client_id"),
        ("key_id" = String, Path, description = "The key's kid, or its RFC 7638 thumbprint"),
    ),
    responses(
        (status = 204, description = "Removed; assertions signed by the key are refused from now on (tokens obtained with it before stay valid until they expire)"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential or key", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own credential, or the last key of a credential without a secret", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove_public_key(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path((client_id, key_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    service::remove_public_key(&state, &caller.actor, &client_id, &key_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
