//! `Json` and `Query` extractors that refuse bad input with problem+json (axum's own answer
//! with plain text). JSON bodies are read strictly (`tokenmint_core::json`): a key repeated in
//! any object is refused, as the token endpoint refuses a repeated parameter.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use tokenmint_core::json::StrictJsonError;
use tokenmint_proto::limits::ADMIN_BODY_MAX_BYTES;

/// A JSON request body that must be a JSON object. serde fills a struct from a JSON array too
/// (its elements taken as the fields in order, so `["renamed"]` would rename), which no client
/// means and no documentation promises: every admin-API body is refused unless it is `{…}`.
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

/// Whether the request says its body is JSON: `application/json` or `application/*+json`,
/// parameters allowed (as axum's `Json` accepts).
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json"
        || essence.strip_prefix("application/").is_some_and(|sub| sub.ends_with("+json"))
}

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::BadRequest(
                "send the body as JSON with Content-Type: application/json".into(),
            ));
        }
        let bytes = read_body(req).await?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::Validation {
                field: "body".into(),
                message: "the body must be a JSON object, {\"field\": value, …}, not an array, \
                          a string, a number or null"
                    .into(),
            });
        }
        // Read strictly first: a key given twice in one object, at any depth (a claim's value
        // among them), is refused rather than left to serde's last-wins, and nesting past
        // serde_json's limit is told as such rather than as "not valid JSON".
        match tokenmint_core::json::from_slice(&bytes) {
            Ok(_) => {}
            // Valid JSON by RFC 8259's grammar, which no reader can hold (`1e400`, or `1e-400`
            // read as 0): a problem with a value, not with the body's syntax.
            Err(e @ StrictJsonError::NumberOutOfRange { .. }) => {
                return Err(ApiError::Validation {
                    field: "body".into(),
                    message: format!(
                        "{e}; claim values hold numbers up to ±9007199254740991 (2^53 - 1): give \
                         larger ones as strings"
                    ),
                });
            }
            Err(StrictJsonError::Invalid(_)) => {}
            Err(e @ StrictJsonError::DuplicateKey { .. }) => {
                return Err(ApiError::Validation { field: "body".into(), message: e.to_string() });
            }
            Err(StrictJsonError::TooDeep) => {
                return Err(ApiError::Validation {
                    field: "body".into(),
                    message: format!(
                        "{}; a claim's value may nest at most {} levels",
                        StrictJsonError::TooDeep,
                        tokenmint_core::claims::MAX_CLAIM_DEPTH
                    ),
                });
            }
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
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

/// The body, at most [`ADMIN_BODY_MAX_BYTES`]: a longer one is refused with 413 naming the
/// limit, at once when its `Content-Length` says so, else when the limit is reached. The
/// admin API's JSON and the portal's forms are read through it.
pub(crate) async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge(ADMIN_BODY_MAX_BYTES);
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > ADMIN_BODY_MAX_BYTES as u64) {
        return Err(too_large);
    }
    axum::body::to_bytes(req.into_body(), ADMIN_BODY_MAX_BYTES).await.map_err(|e| {
        let e = e.into_inner();
        if e.is::<http_body_util::LengthLimitError>() {
            too_large
        } else {
            ApiError::BadRequest(format!("the body could not be read: {e}"))
        }
    })
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
