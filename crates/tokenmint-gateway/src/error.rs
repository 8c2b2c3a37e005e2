//! Every refusal of the gateway, and the one place it becomes an HTTP answer.
//!
//! Token and scope refusals are [`Rejection`]s from tokenmint-verify, answered exactly as a
//! protected API built with the library answers them; the gateway's own refusals (no route, a
//! missing header, the rate limit, a failing upstream) use the same RFC 9457 shape. No refusal
//! carries the token or anything upstream said: the detail goes to the log, the caller gets a
//! fixed sentence.

use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, StatusCode, header};
use tokenmint_proto::{Environment, PROBLEM_JSON, Problem};
use tokenmint_verify::{PathError, Rejection};

/// `Retry-After` of a 503 for keys the verifier no longer trusts (each such request waits for
/// a JWKS fetch at most once per refetch cooldown, 10 s by default).
const KEYS_UNAVAILABLE_RETRY_AFTER: &str = "10";

/// Why the gateway did not forward a request, or could not get an answer for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The token is missing or invalid, or lacks the route's scope.
    Auth(Rejection),
    /// No route covers the path.
    NoRoute,
    /// The path is not one every upstream reads alike (dot segments, encoded separators,
    /// matrix parameters, a letter case that another route would match, …): the upstream might
    /// read it as a path under another route's policy.
    UnsafePath(PathError),
    /// The route has no upstream for the token's environment.
    EnvironmentNotServed(Environment),
    /// A header the route requires is missing.
    MissingHeader(HeaderName),
    /// The client is past the route's rate limit.
    RateLimited { retry_after_secs: u64 },
    /// The upstream could not be reached or broke the exchange.
    UpstreamUnavailable,
    /// The upstream did not answer within the route's timeout.
    UpstreamTimeout,
    /// A claim could not be put in an identity header (a control character in `org`, …).
    IdentityHeader,
    /// The route requires a claim (`env`, `org`) the token does not carry.
    ClaimRequired(&'static str),
    /// The path does not name the token's own client (or other claim) where the route's
    /// `path_binding` says it must.
    PathBinding(String),
    /// The route has no upstream for a token without `env` (it has only a sandbox upstream).
    NoUpstream,
    /// An authorization subrequest that does not say which request it is about.
    AuthzRequest(&'static str),
    /// The request's `Host` is repeated or not a host and port (RFC 9112 §3.2).
    BadHost(&'static str),
    /// The issuer the token names has not loaded yet (its keys, or its revocation feed's first
    /// read): the token cannot be judged, which is not the caller's fault, so 503 with
    /// `Retry-After` rather than 401.
    IssuerNotReady { retry_after_secs: u64 },
}

impl From<Rejection> for Refusal {
    fn from(rejection: Rejection) -> Self {
        Self::Auth(rejection)
    }
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Auth(rejection) => rejection.status(),
            Self::NoRoute => StatusCode::NOT_FOUND,
            Self::UnsafePath(_) | Self::MissingHeader(_) => StatusCode::BAD_REQUEST,
            Self::EnvironmentNotServed(_)
            | Self::ClaimRequired(_)
            | Self::PathBinding(_)
            | Self::NoUpstream => StatusCode::FORBIDDEN,
            Self::AuthzRequest(_) | Self::BadHost(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::IssuerNotReady { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::IdentityHeader => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short label for metrics and the access log.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Auth(Rejection::MissingToken) => "missing_token",
            Self::Auth(Rejection::InsufficientScope(_)) => "insufficient_scope",
            Self::Auth(Rejection::InvalidRequest(_)) => "invalid_request",
            Self::Auth(Rejection::InvalidToken(tokenmint_verify::VerifyError::KeysUnavailable)) => {
                "keys_unavailable"
            }
            Self::Auth(_) => "invalid_token",
            Self::NoRoute => "no_route",
            Self::UnsafePath(_) => "unsafe_path",
            Self::EnvironmentNotServed(_) => "environment_not_served",
            Self::MissingHeader(_) => "missing_header",
            Self::RateLimited { .. } => "rate_limited",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::IdentityHeader => "identity_header",
            Self::ClaimRequired(_) => "claim_required",
            Self::PathBinding(_) => "path_binding",
            Self::NoUpstream => "no_upstream",
            Self::AuthzRequest(_) => "authz_request",
            Self::BadHost(_) => "bad_host",
            Self::IssuerNotReady { .. } => "issuer_not_ready",
        }
    }

    fn detail(&self) -> String {
        match self {
            Self::Auth(_) => String::new(),
            Self::NoRoute => "no API is served at this path".to_owned(),
            Self::UnsafePath(error) => error.to_string(),
            Self::EnvironmentNotServed(env) => {
                format!("this API does not serve {env} credentials")
            }
            Self::MissingHeader(name) => format!("the {name} header is required"),
            Self::RateLimited { retry_after_secs } => {
                format!("too many requests for this client; retry in {retry_after_secs} s")
            }
            Self::UpstreamUnavailable => "the API behind the gateway is unavailable".to_owned(),
            Self::UpstreamTimeout => "the API behind the gateway did not answer in time".to_owned(),
            Self::IdentityHeader => "the request could not be forwarded".to_owned(),
            Self::ClaimRequired(claim) => {
                format!("this API requires tokens that carry the {claim} claim")
            }
            Self::PathBinding(template) => {
                format!("the path must be {template} with this token's own values")
            }
            Self::NoUpstream => "this API does not serve tokens without an environment".to_owned(),
            Self::AuthzRequest(reason) | Self::BadHost(reason) => (*reason).to_owned(),
            Self::IssuerNotReady { retry_after_secs } => format!(
                "the gateway cannot check this token yet: its issuer's keys or revocations \
                 have not been loaded; retry in {retry_after_secs} s"
            ),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut problem = match &self {
            Self::Auth(rejection) => {
                let mut response = rejection.clone().into_response();
                // Keys too stale to trust: as for an issuer not loaded, a time to come back.
                if response.status() == StatusCode::SERVICE_UNAVAILABLE {
                    response.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from_static(KEYS_UNAVAILABLE_RETRY_AFTER),
                    );
                }
                return response;
            }
            _ => Problem::new(status.as_u16(), status.canonical_reason().unwrap_or(""))
                .with_detail(self.detail()),
        };
        match &self {
            Self::MissingHeader(name) => problem = problem.with_field(name.as_str()),
            Self::UnsafePath(_) => problem = problem.with_field("path"),
            _ => {}
        }
        if matches!(
            self,
            Self::EnvironmentNotServed(_)
                | Self::ClaimRequired(_)
                | Self::PathBinding(_)
                | Self::NoUpstream
        ) {
            // RFC 6750 §3.1: the token is valid but does not give access to this resource.
            problem = problem.with_error("insufficient_scope");
        }
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match &self {
            Self::EnvironmentNotServed(_)
            | Self::ClaimRequired(_)
            | Self::PathBinding(_)
            | Self::NoUpstream => {
                // The detail is built from configuration and fixed text only.
                let detail: String =
                    self.detail()
                        .chars()
                        .map(|c| {
                            if c == '"' || c == '\\' || !(' '..='~').contains(&c) { '?' } else { c }
                        })
                        .collect();
                let challenge =
                    format!("Bearer error=\"insufficient_scope\", error_description=\"{detail}\"");
                if let Ok(value) = HeaderValue::from_str(&challenge) {
                    headers.insert(header::WWW_AUTHENTICATE, value);
                }
            }
            Self::RateLimited { retry_after_secs } | Self::IssuerNotReady { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from((*retry_after_secs).max(1)));
            }
            _ => {}
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn body(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn refusals_are_problem_details_with_their_headers() {
        let response = Refusal::RateLimited { retry_after_secs: 7 }.into_response();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);

        let response = Refusal::MissingHeader(HeaderName::from_static("x-user-id")).into_response();
        assert_eq!(response.status(), 400);
        let problem = body(response).await;
        assert_eq!(problem["field"], "x-user-id");
        assert_eq!(problem["detail"], "the x-user-id header is required");

        let response = Refusal::EnvironmentNotServed(Environment::Sandbox).into_response();
        assert_eq!(response.status(), 403);
        assert!(
            response.headers()[header::WWW_AUTHENTICATE]
                .to_str()
                .unwrap()
                .starts_with("Bearer error=\"insufficient_scope\"")
        );

        let response = Refusal::Auth(Rejection::MissingToken).into_response();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[tokio::test]
    async fn an_issuer_not_ready_is_a_503_problem_with_retry_after_and_no_token_challenge() {
        let response = Refusal::IssuerNotReady { retry_after_secs: 3 }.into_response();
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert!(
            response.headers().get(header::WWW_AUTHENTICATE).is_none(),
            "not the token's fault"
        );
        let problem = body(response).await;
        assert_eq!(problem["status"], 503);
        assert!(problem.get("error").is_none(), "{problem}");
        assert!(problem["detail"].as_str().unwrap().contains("retry in 3 s"), "{problem}");

        let stale =
            Refusal::Auth(Rejection::InvalidToken(tokenmint_verify::VerifyError::KeysUnavailable))
                .into_response();
        assert_eq!(stale.status(), 503);
        assert_eq!(stale.headers()[header::RETRY_AFTER], KEYS_UNAVAILABLE_RETRY_AFTER);
    }
}
