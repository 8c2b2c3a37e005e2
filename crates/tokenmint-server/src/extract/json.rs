//! `Json` and `Query` extractors that refuse bad input with problem+json (axum's own answer
//! with plain text).

use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::BadRequest(
                "send the body as JSON with Content-Type: application/json".into(),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::Validation {
                field: "body".into(),
                message: format!(
                    "the JSON body does not match the expected fields: {}",
                    e.body_text()
                ),
            }),
            Err(e) => {
                Err(ApiError::BadRequest(format!("the body is not valid JSON: {}", e.body_text())))
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(Self(v)),
            Err(e @ QueryRejection::FailedToDeserializeQueryString(_)) => {
                Err(ApiError::Validation { field: "query".into(), message: e.body_text() })
            }
            Err(e) => Err(ApiError::BadRequest(e.body_text())),
        }
    }
}
