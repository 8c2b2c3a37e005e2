//! Every error the server answers with, and how each maps to HTTP, in one place.
//!
//! Two families, because the RFCs ask for two shapes: the OAuth endpoints answer RFC 6749
//! §5.2 JSON (`{"error", "error_description"}`), everything else RFC 9457 problem details.
//! A 500 says nothing internal; the detail goes to the log with the request's id.
//!
//! The service layer ([`crate::service`], [`crate::users`]) knows no transport and fails with
//! a [`ServiceError`]; `impl From<ServiceError> for ApiError` below is the one place such a
//! failure becomes a status and a problem body, for the admin API and (through
//! [`crate::portal::PortalError`]) the portal's pages alike. A store error reaches HTTP the same
//! way, through the service layer's reading of it.

use crate::service::ServiceError;
use crate::service::policy::Needs;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;
use tokenmint_core::grant::GrantError;
use tokenmint_core::request::RequestError;
use tokenmint_proto::{OAuthErrorCode, PROBLEM_JSON, Problem};
use tokenmint_store::StoreError;

/// An error of the token, introspection or revocation endpoint.
#[derive(Debug, Clone)]
pub struct OAuthFailure {
    pub code: OAuthErrorCode,
    pub description: Cow<'static, str>,
    /// The status, when it is not the code's usual one (415, 413).
    pub status: Option<StatusCode>,
    /// Add `WWW-Authenticate: Basic` (RFC 6749 §5.2: when the client tried Basic).
    pub basic_challenge: bool,
    pub retry_after: Option<u64>,
}

impl OAuthFailure {
    pub fn new(code: OAuthErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self {
            code,
            description: description.into(),
            status: None,
            basic_challenge: false,
            retry_after: None,
        }
    }

    /// The one answer to every failed client authentication, whatever the reason, so that
    /// nobody can learn which client ids exist or why a secret failed.
    pub fn invalid_client(basic: bool) -> Self {
        Self {
            basic_challenge: basic,
            ..Self::new(OAuthErrorCode::InvalidClient, "Client authentication failed")
        }
    }

    /// `invalid_client` with a description of what to fix (a refused client assertion).
    pub fn invalid_client_because(description: String) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, description)
    }

    pub fn unsupported_media_type() -> Self {
        Self {
            status: Some(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ..Self::new(
                OAuthErrorCode::InvalidRequest,
                "unsupported content type: send application/x-www-form-urlencoded or application/json",
            )
        }
    }

    pub fn payload_too_large(limit: usize) -> Self {
        Self {
            status: Some(StatusCode::PAYLOAD_TOO_LARGE),
            ..Self::new(
                OAuthErrorCode::InvalidRequest,
                format!("the request body is larger than {limit} bytes"),
            )
        }
    }

    pub fn rate_limited(retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after),
            ..Self::new(
                OAuthErrorCode::SlowDown,
                "too many token requests for this client; reuse tokens until they expire, and retry after the \
                 number of seconds in Retry-After",
            )
        }
    }

    pub fn server_error() -> Self {
        Self::new(
            OAuthErrorCode::ServerError,
            "the server could not complete the request; try again later",
        )
    }

    /// The token hook gave no usable answer (none in time, an error, or one that breaks the
    /// rules) and `--token-hook-on-failure refuse` is in force.
    pub fn hook_unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the provider's token hook gave no usable answer; try again later",
            )
        }
    }

    pub fn unavailable() -> Self {
        Self {
            retry_after: Some(5),
            ..Self::new(
                OAuthErrorCode::TemporarilyUnavailable,
                "the server is temporarily unavailable; try again later",
            )
        }
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST)
        })
    }
}

impl From<RequestError> for OAuthFailure {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::UnsupportedMediaType => Self::unsupported_media_type(),
            RequestError::MissingClientAuthentication => {
                Self { description: Cow::Owned(e.to_string()), ..Self::invalid_client(false) }
            }
            other => Self::new(other.oauth_code(), other.to_string()),
        }
    }
}

impl From<GrantError> for OAuthFailure {
    fn from(e: GrantError) -> Self {
        Self::new(e.oauth_code(), e.to_string())
    }
}

impl IntoResponse for OAuthFailure {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = tokenmint_proto::OAuthError::new(self.code, self.description);
        let mut res = (status, axum::Json(body)).into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tokenmint\", charset=\"UTF-8\""),
            );
        }
        if let Some(s) = self.retry_after {
            h.insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

/// An error of the admin API (and other problem+json endpoints).
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0} not found")]
    NotFound(Cow<'static, str>),
    #[error("{message}")]
    Validation { field: Cow<'static, str>, message: String },
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is longer than the limit, in bytes.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    Conflict(String),
    /// 401 with an RFC 6750 challenge; `error` is absent when no token was sent (§3.1).
    #[error("{description}")]
    Unauthorized { error: Option<&'static str>, description: Cow<'static, str> },
    /// 403: the policy refused, with its reason and what would be needed.
    #[error("{reason}")]
    Forbidden { reason: Cow<'static, str>, needs: Needs },
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn validation(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::Validation { field: field.into(), message: message.into() }
    }

    pub fn not_found(what: impl Into<Cow<'static, str>>) -> Self {
        Self::NotFound(what.into())
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn title(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "Not Found",
            Self::Validation { .. } => "Invalid input",
            Self::BadRequest(_) => "Bad Request",
            Self::PayloadTooLarge(_) => "Content Too Large",
            Self::Conflict(_) => "Conflict",
            Self::Unauthorized { .. } => "Unauthorized",
            Self::Forbidden { .. } => "Forbidden",
            Self::Unavailable(_) => "Service Unavailable",
            Self::Internal(_) => "Internal Server Error",
        }
    }

    pub fn to_problem(&self) -> Problem {
        let status = self.status();
        let mut p = Problem::new(status.as_u16(), self.title());
        match self {
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                p = p
                    .with_detail("the server could not complete the request; the error was logged");
            }
            Self::Validation { field, message } => {
                p = p.with_detail(message.clone()).with_field(field.to_string());
            }
            Self::Unauthorized { error, description } => {
                p = p.with_detail(description.to_string());
                if let Some(e) = error {
                    p = p.with_error(*e);
                }
            }
            Self::Forbidden { reason, needs: Needs::Scope(scope) } => {
                p = p
                    .with_detail(reason.to_string())
                    .with_error("insufficient_scope")
                    .with_required_scope((*scope).to_owned());
            }
            Self::Forbidden { reason, needs: Needs::Role(role) } => {
                p = p.with_detail(format!("{reason} (needs the role: {role})"));
            }
            other => p = p.with_detail(other.to_string()),
        }
        p
    }
}

/// The one mapping of a service failure to HTTP.
impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => Self::NotFound(what),
            ServiceError::Invalid { field, message } => Self::Validation { field, message },
            ServiceError::Conflict(message) => Self::Conflict(message),
            ServiceError::Denied { reason, needs } => {
                Self::Forbidden { reason: Cow::Borrowed(reason), needs }
            }
            ServiceError::Unavailable(message) => Self::Unavailable(message),
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

/// A store error met outside an operation (authenticating a token, the signing keys, the
/// audit listing) is answered as the service layer reads it.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

/// Builds a problem+json response.
pub fn problem_response(
    problem: &Problem,
    extra: Option<(header::HeaderName, HeaderValue)>,
) -> Response {
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = serde_json::to_vec(problem).unwrap_or_default();
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some((k, v)) = extra {
        h.insert(k, v);
    }
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.to_problem();
        let challenge = match &self {
            Self::Unauthorized { error: None, .. } => Some("Bearer realm=\"tokenmint\"".to_owned()),
            Self::Unauthorized { error: Some(e), description } => Some(format!(
                "Bearer realm=\"tokenmint\", error=\"{e}\", error_description=\"{}\"",
                quote_safe(description)
            )),
            Self::Forbidden { needs: Needs::Scope(scope), .. } => Some(format!(
                "Bearer realm=\"tokenmint\", error=\"insufficient_scope\", scope=\"{}\"",
                quote_safe(scope)
            )),
            Self::Unavailable(_) => {
                return problem_response(
                    &problem,
                    Some((header::RETRY_AFTER, HeaderValue::from_static("5"))),
                );
            }
            _ => None,
        };
        let extra = challenge
            .and_then(|c| HeaderValue::from_str(&c).ok())
            .map(|v| (header::WWW_AUTHENTICATE, v));
        problem_response(&problem, extra)
    }
}

/// RFC 6750 §3: error_description is a quoted-string of printable ASCII without `"` or `\`.
fn quote_safe(s: &str) -> String {
    s.chars().filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\').collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(e: impl Into<ApiError>) -> Problem {
        e.into().to_problem()
    }

    #[test]
    fn a_service_error_gets_the_status_and_problem_body_of_its_kind() {
        let p = problem(ServiceError::not_found("credential"));
        assert_eq!((p.status, p.detail.as_deref()), (404, Some("credential not found")));
        let p = problem(ServiceError::invalid("name", "the name is too long"));
        assert_eq!((p.status, p.title.as_str()), (422, "Invalid input"));
        assert_eq!(
            (p.field.as_deref(), p.detail.as_deref()),
            (Some("name"), Some("the name is too long"))
        );
        let p = problem(ServiceError::Conflict("changed concurrently".into()));
        assert_eq!((p.status, p.detail.as_deref()), (409, Some("changed concurrently")));
        let p = problem(ServiceError::Internal("secret detail".into()));
        assert_eq!(p.status, 500);
        assert!(!p.detail.unwrap_or_default().contains("secret detail"));

        let scope =
            ServiceError::Denied { reason: "needs admin", needs: Needs::Scope("tokenmint:admin") };
        let p = problem(scope);
        assert_eq!((p.status, p.error.as_deref()), (403, Some("insufficient_scope")));
        assert_eq!(p.required_scope.as_deref(), Some("tokenmint:admin"));
        let role = ServiceError::Denied { reason: "not yours", needs: Needs::Role("platform") };
        assert_eq!(problem(role).detail.as_deref(), Some("not yours (needs the role: platform)"));
    }

    #[test]
    fn a_store_error_is_answered_as_the_service_layer_reads_it() {
        let p = problem(StoreError::InvalidCursor);
        assert_eq!((p.status, p.field.as_deref()), (422, Some("cursor")));
        let p = problem(StoreError::Unavailable("connection refused".into()));
        assert_eq!(p.status, 503);
        let detail = p.detail.unwrap_or_default();
        assert!(!detail.contains("connection refused"));
        // The same words answer a read and a write: true for both, and saying what to do.
        assert!(detail.contains("database is unavailable") && detail.contains("retry"), "{detail}");
        assert!(!detail.contains("changes") && !detail.contains("saved"), "{detail}");
        assert_eq!(problem(StoreError::NotFound("organization")).status, 404);
        assert_eq!(problem(StoreError::Backend("boom".into())).status, 500);
        let res = ApiError::from(StoreError::Unavailable("down".into())).into_response();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"5"[..]));
        let res = ApiError::from(ServiceError::Unavailable("down".into())).into_response();
        assert_eq!(res.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"5"[..]));
    }
}
