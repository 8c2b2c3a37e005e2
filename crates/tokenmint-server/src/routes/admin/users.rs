//! `/admin/v1/users`: portal users (create, list, change the role, deactivate, reactivate,
//! issue a password-reset code).

use super::Bearer;
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use crate::users;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokenmint_proto::Problem;
use tokenmint_proto::admin as dto;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only users of this organization.
    pub org: Option<String>,
}

#[utoipa::path(post, path = "/admin/v1/users", tag = "users",
    request_body = dto::CreateUser,
    responses(
        (status = 201, description = "Created; the user signs in at /portal/ with this email and password", body = dto::CreatedUser),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this organization or role", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The email is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_user(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    JsonBody(input): JsonBody<dto::CreateUser>,
) -> Result<Response, ApiError> {
    let user = users::create_user(&state, &caller.actor, input).await?;
    Ok((StatusCode::CREATED, Json(user)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/users", tag = "users", params(ListQuery),
    responses(
        (status = 200, description = "Users ordered by organization and email", body = Vec<dto::User>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: an unknown parameter", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_users(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<Vec<dto::User>>, ApiError> {
    Ok(Json(users::list_users(&state, &caller.actor, q.org).await?))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/deactivate", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Deactivated; the user's sessions are ended", body = dto::User),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this user's role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own user", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn deactivate_user(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(id): Path<String>,
) -> Result<Json<dto::User>, ApiError> {
    Ok(Json(users::deactivate_user(&state, &caller.actor, &id).await?))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/reactivate", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 200, description = "Active again, with their role and password as they were", body = dto::User),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this user's role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another user holds the email address now", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reactivate_user(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(id): Path<String>,
) -> Result<Json<dto::User>, ApiError> {
    Ok(Json(users::reactivate_user(&state, &caller.actor, &id).await?))
}

#[utoipa::path(patch, path = "/admin/v1/users/{id}", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    request_body = dto::UpdateUser,
    responses(
        (status = 200, description = "Updated", body = dto::User),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this user's role or the role given", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The caller's own user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field: a body that is not an object, an unknown member, a role that is not one", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_user(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<dto::UpdateUser>,
) -> Result<Json<dto::User>, ApiError> {
    Ok(Json(users::update_user(&state, &caller.actor, &id, input).await?))
}

#[utoipa::path(post, path = "/admin/v1/users/{id}/reset-password", tag = "users",
    params(("id" = String, Path, description = "The user's id")),
    responses(
        (status = 201, description = "A one-time code, shown this once, for the user to enter at reset_url with a new password", body = dto::PasswordReset),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed for this user's role", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such user", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The user is deactivated, or is the caller", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn reset_password(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let reset = users::reset_password(&state, &caller.actor, &id).await?;
    let mut res = (StatusCode::CREATED, Json(reset)).into_response();
    // The code is a secret: no cache may keep the answer.
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}
