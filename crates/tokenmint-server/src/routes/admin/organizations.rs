//! `/admin/v1/organizations`.

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
use tokenmint_proto::Problem;
use tokenmint_proto::admin as dto;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    #[param(schema_with = organizations_limit)]
    pub limit: Option<u32>,
}

fn organizations_limit() -> utoipa::openapi::Object {
    tokenmint_proto::openapi::page_size(tokenmint_proto::limits::ORGANIZATIONS_PAGE, "Page size")
}

#[utoipa::path(post, path = "/admin/v1/organizations", tag = "organizations",
    request_body = dto::CreateOrganization,
    responses(
        (status = 201, description = "Created", body = dto::Organization),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The slug is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create_organization(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    JsonBody(input): JsonBody<dto::CreateOrganization>,
) -> Result<Response, ApiError> {
    let org = service::create_organization(&state, &caller.actor, input).await?;
    Ok((StatusCode::CREATED, Json(org)).into_response())
}

#[utoipa::path(get, path = "/admin/v1/organizations", tag = "organizations", params(ListQuery),
    responses(
        (status = 200, description = "A page of organizations", body = dto::Page<dto::Organization>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: an unknown parameter, a limit out of range, a cursor no listing returned", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_organizations(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    QueryParams(q): QueryParams<ListQuery>,
) -> Result<Json<dto::Page<dto::Organization>>, ApiError> {
    Ok(Json(
        service::list_organizations(&state, &caller.actor, q.cursor.as_deref(), q.limit).await?,
    ))
}

#[utoipa::path(get, path = "/admin/v1/organizations/{slug}", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    responses(
        (status = 200, description = "The organization", body = dto::Organization),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn show_organization(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(slug): Path<String>,
) -> Result<Json<dto::Organization>, ApiError> {
    Ok(Json(service::get_organization(&state, &caller.actor, &slug).await?))
}

#[utoipa::path(patch, path = "/admin/v1/organizations/{slug}", tag = "organizations",
    params(("slug" = String, Path, description = "The organization's slug")),
    request_body = dto::UpdateOrganization,
    responses(
        (status = 200, description = "The updated organization; a change of its claims revoked every token of its credentials", body = dto::Organization),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not allowed", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such organization", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field: a reserved or malformed claim name, a null or oversized value, too many claims", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn update_organization(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(slug): Path<String>,
    JsonBody(input): JsonBody<dto::UpdateOrganization>,
) -> Result<Json<dto::Organization>, ApiError> {
    Ok(Json(service::update_organization(&state, &caller.actor, &slug, input).await?))
}
