//! Refusals as HTTP responses: RFC 6750 §3 `WWW-Authenticate` challenges with RFC 9457
//! `application/problem+json` bodies.
//!
//! [`Rejection`] is what the layer, the scope check and the extractor answer with, and what a
//! gateway answers with too: `status`, `www_authenticate` and `problem` are public so a proxy
//! with its own response type can reuse them.

use crate::error::VerifyError;
use crate::path::PathError;
use crate::verifier::VerifiedToken;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use std::sync::Arc;
use tokenmint_proto::{PROBLEM_JSON, Problem};

/// Why a request was refused before reaching the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// No bearer token: 401 with a bare `Bearer` challenge (RFC 6750 §3.1: a request without
    /// authentication gets no error code).
    MissingToken,
    /// The `Authorization` header is malformed: 400 `invalid_request`.
    InvalidRequest(&'static str),
    /// The token was refused: 401 `invalid_token` (503 when the verifier cannot judge).
    InvalidToken(VerifyError),
    /// The request path is not one every server reads alike (see
    /// [`CanonicalPath`](crate::CanonicalPath)): 400, whatever the token.
    InvalidPath(PathError),
    /// The token lacks a scope the route needs: 403 `insufficient_scope`.
    InsufficientScope(Arc<str>),
    /// A handler or scope check ran without [`VerifyLayer`](crate::VerifyLayer) in front of
    /// it: a wiring mistake, answered 500 so it fails closed and shows up at once.
    LayerMissing,
}

impl Rejection {
    /// The response status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) | Self::InvalidPath(_) => StatusCode::BAD_REQUEST,
            Self::InvalidToken(error) => error.status(),
            Self::InsufficientScope(_) => StatusCode::FORBIDDEN,
            Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The RFC 6750 error code, when there is one.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(VerifyError::KeysUnavailable) => None,
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope(_) => Some("insufficient_scope"),
            Self::MissingToken | Self::LayerMissing | Self::InvalidPath(_) => None,
        }
    }

    fn description(&self) -> String {
        match self {
            Self::MissingToken => "a Bearer access token is required".to_owned(),
            Self::InvalidRequest(reason) => (*reason).to_owned(),
            Self::InvalidPath(error) => error.to_string(),
            Self::InvalidToken(error) => error.to_string(),
            Self::InsufficientScope(scope) => {
                format!("the access token does not grant the scope {}", sanitize(scope))
            }
            Self::LayerMissing => "the request could not be authenticated".to_owned(),
        }
    }

    /// The RFC 6750 §3 challenge, for 400, 401 and 403.
    pub fn www_authenticate(&self) -> Option<HeaderValue> {
        let value = match self {
            Self::MissingToken => "Bearer".to_owned(),
            Self::InvalidRequest(_) | Self::InvalidToken(_) | Self::InsufficientScope(_) => {
                let code = self.error_code()?;
                let mut value = format!(
                    "Bearer error=\"{code}\", error_description=\"{}\"",
                    sanitize(&self.description())
                );
                if let Self::InsufficientScope(scope) = self {
                    value.push_str(&format!(", scope=\"{}\"", sanitize(scope)));
                }
                value
            }
            Self::LayerMissing | Self::InvalidPath(_) => return None,
        };
        HeaderValue::from_str(&value).ok()
    }

    /// The RFC 9457 body. `title` is the status phrase, as RFC 9457 §4.2.1 asks for
    /// `about:blank` problems; `error` carries the RFC 6750 code and `required_scope` the
    /// missing scope.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let mut problem = Problem::new(status.as_u16(), status.canonical_reason().unwrap_or(""))
            .with_detail(self.description());
        if let Some(code) = self.error_code() {
            problem = problem.with_error(code);
        }
        if let Self::InsufficientScope(scope) = self {
            problem = problem.with_required_scope(scope.as_ref());
        }
        problem
    }
}

/// RFC 6750 §3 allows only %x20-21 / %x23-5B / %x5D-7E inside the quoted values: anything
/// else (quotes, backslashes, control or non-ASCII characters from a misconfigured scope)
/// becomes `?` rather than breaking or injecting into the header.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .map(|c| match c {
            '\x20'..='\x21' | '\x23'..='\x5B' | '\x5D'..='\x7E' => c,
            _ => '?',
        })
        .collect()
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        // A refusal depends on the credentials sent; no cache may replay it to someone else.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(challenge) = self.www_authenticate() {
            headers.insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

/// The bearer token of a request (RFC 6750 §2.1), `None` when there is none.
///
/// Only the `Authorization` header is read: RFC 6750 §2.2 and §2.3 (form body, query string)
/// put tokens where logs and caches see them. A scheme other than `Bearer` counts as no
/// token; a malformed `Bearer` credential or two `Authorization` headers are an
/// `invalid_request`.
pub fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, Rejection> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Rejection::InvalidRequest("more than one Authorization header"));
    }
    let value = value
        .to_str()
        .map_err(|_| Rejection::InvalidRequest("the Authorization header is not valid ASCII"))?
        .trim();
    let (scheme, credentials) = value.split_once(' ').unwrap_or((value, ""));
    // RFC 9110 §11.1: the scheme is case-insensitive.
    if !scheme.eq_ignore_ascii_case("Bearer") {
        return Ok(None);
    }
    let token = credentials.trim_start_matches(' ');
    if !is_b64token(token) {
        return Err(Rejection::InvalidRequest("the Bearer credentials are malformed"));
    }
    Ok(Some(token))
}

/// RFC 6750 §2.1: `b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Which scope a route needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRule {
    /// The same scope for every method.
    Always(Arc<str>),
    /// `read` for the safe methods GET, HEAD and OPTIONS (RFC 9110 §9.2.1), `write` for the
    /// others: the gateway's `read_scope`/`write_scope`.
    ReadWrite { read: Arc<str>, write: Arc<str> },
}

/// Headers by which a request asks the application to take it as another method (Google's,
/// Microsoft's and various frameworks' spellings): a GET carrying `X-HTTP-Method-Override:
/// DELETE` is a DELETE to an application that honours it.
/// Their `_` spellings count too: CGI-style applications read both as one environment name.
pub const METHOD_OVERRIDE_HEADERS: [HeaderName; 6] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
    HeaderName::from_static("x_http_method_override"),
    HeaderName::from_static("x_http_method"),
    HeaderName::from_static("x_method_override"),
];

/// Query parameters by which a request asks the application to take it as another method
/// (Rails' and Laravel's `_method`, Express's `method-override` getter, Salesforce's
/// `_HttpMethod`, and the override headers' names used as parameters), compared without regard
/// to case: `GET /orders/7?_method=DELETE` is a DELETE to an application that honours it.
pub const METHOD_OVERRIDE_PARAMETERS: [&str; 8] = [
    "_method",
    "_httpmethod",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x_http_method_override",
    "x_http_method",
    "x_method_override",
];

/// Whether a method-override value names something other than one safe method. A list,
/// garbage or an empty value counts as a write: an upstream may read it in a way this check
/// does not.
fn names_unsafe_method(value: &[u8]) -> bool {
    let value = std::str::from_utf8(value).unwrap_or(",").trim();
    !["GET", "HEAD", "OPTIONS"].iter().any(|safe| value.eq_ignore_ascii_case(safe))
}

/// Whether `headers` ask for a method other than a safe one (GET, HEAD, OPTIONS) through a
/// method-override header ([`METHOD_OVERRIDE_HEADERS`]).
pub fn overrides_to_unsafe_method(headers: &HeaderMap) -> bool {
    METHOD_OVERRIDE_HEADERS
        .iter()
        .any(|name| headers.get_all(name).iter().any(|value| names_unsafe_method(value.as_bytes())))
}

/// Whether the query string asks for a method other than a safe one through a method-override
/// parameter ([`METHOD_OVERRIDE_PARAMETERS`]), its name and value read as an application
/// would: percent-decoded, `+` as a space.
///
/// Read as leniently as any framework might: `;` separates parameters too (Rack 2, older
/// Python), a name's surrounding spaces and control characters are ignored, and so is what
/// follows its first `[` (PHP's and Rack's array and hash syntax: `_method[]`, `_method[0]`,
/// `_method[x]`) and any trailing `.` or `_` (PHP reads `.` and spaces in names as `_`).
/// Reading too much as an override only refuses a read token a request it might have made.
pub fn query_overrides_to_unsafe_method(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    query.split(';').any(|part| {
        form_urlencoded::parse(part.as_bytes()).any(|(name, value)| {
            let name = name.split('[').next().unwrap_or_default();
            let name = name.trim_matches(|c: char| c.is_whitespace() || c.is_control());
            let name = name.trim_end_matches(['.', '_']);
            METHOD_OVERRIDE_PARAMETERS.iter().any(|p| name.eq_ignore_ascii_case(p))
                && names_unsafe_method(value.as_bytes())
        })
    })
}

/// GET, HEAD and OPTIONS (RFC 9110 §9.2.1), the methods a read scope covers.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl ScopeRule {
    /// The scope a request needs, judged by its method and by any method it asks for through
    /// a method-override header ([`METHOD_OVERRIDE_HEADERS`]) or query parameter
    /// ([`METHOD_OVERRIDE_PARAMETERS`]; `query` is the request target's query string): a read
    /// with an override to a write needs the write scope, whether or not the application
    /// honours overrides.
    pub fn required_for(&self, method: &Method, headers: &HeaderMap, query: Option<&str>) -> &str {
        match self {
            // Only a read can be turned into a write: every other request needs the write
            // scope already, so the overrides are looked at for safe methods alone.
            Self::ReadWrite { read, write } if is_safe(method) => {
                if overrides_to_unsafe_method(headers) || query_overrides_to_unsafe_method(query) {
                    write
                } else {
                    read
                }
            }
            _ => self.required(method),
        }
    }

    /// The scope a request with `method` needs, method overrides left aside (see
    /// [`required_for`](Self::required_for)).
    pub fn required(&self, method: &Method) -> &str {
        match self {
            Self::Always(scope) => scope,
            Self::ReadWrite { read, write } => {
                if is_safe(method) {
                    read
                } else {
                    write
                }
            }
        }
    }
}

impl VerifiedToken {
    /// Whether the token grants `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.claims().has_scope(scope)
    }

    /// `Ok` when the token grants `scope`, else the 403 refusal naming it: for handlers that
    /// check scopes themselves (`token.require_scope("eligibility:write")?`).
    pub fn require_scope(&self, scope: &str) -> Result<(), Rejection> {
        if self.has_scope(scope) { Ok(()) } else { Err(Rejection::InsufficientScope(scope.into())) }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_method_override_to_anything_but_a_safe_method_needs_the_write_scope() {
        use super::*;
        let rule = ScopeRule::ReadWrite { read: "e:read".into(), write: "e:write".into() };
        let with = |name: &str, value: &[u8]| {
            let mut h = HeaderMap::new();
            h.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_bytes(value).unwrap(),
            );
            h
        };
        assert_eq!(rule.required_for(&Method::GET, &HeaderMap::new(), None), "e:read");
        for name in METHOD_OVERRIDE_HEADERS {
            for value in [&b"DELETE"[..], b"put", b"GET, DELETE", b"", b"\xff", b"PATCH "] {
                assert_eq!(
                    rule.required_for(&Method::GET, &with(name.as_str(), value), None),
                    "e:write"
                );
            }
            for value in [&b"GET"[..], b"head", b" OPTIONS "] {
                assert_eq!(
                    rule.required_for(&Method::GET, &with(name.as_str(), value), None),
                    "e:read"
                );
            }
            assert_eq!(
                rule.required_for(&Method::POST, &with(name.as_str(), b"GET"), None),
                "e:write"
            );
        }
        let mut two = with("x-http-method", b"GET");
        two.append("x-http-method", HeaderValue::from_static("DELETE"));
        assert_eq!(rule.required_for(&Method::HEAD, &two, None), "e:write");
        assert_eq!(ScopeRule::Always("a".into()).required_for(&Method::GET, &two, None), "a");
    }

    #[test]
    fn a_method_override_parameter_to_anything_but_a_safe_method_needs_the_write_scope() {
        use super::*;
        let rule = ScopeRule::ReadWrite { read: "e:read".into(), write: "e:write".into() };
        let none = HeaderMap::new();
        for name in METHOD_OVERRIDE_PARAMETERS {
            let upper = name.to_ascii_uppercase();
            let encoded = name.replace('_', "%5F");
            for spelling in [name, upper.as_str(), encoded.as_str()] {
                for value in ["DELETE", "put", "GET,DELETE", "", "%FF", "PATCH+", "%44ELETE"] {
                    let query = format!("a=1&{spelling}={value}");
                    for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
                        assert_eq!(
                            rule.required_for(&method, &none, Some(&query)),
                            "e:write",
                            "{method} ?{query}"
                        );
                    }
                }
                for value in ["GET", "head", "+OPTIONS+"] {
                    let query = format!("{spelling}={value}");
                    assert_eq!(rule.required_for(&Method::GET, &none, Some(&query)), "e:read");
                }
            }
        }
        for query in [
            "a=1;_method=DELETE",
            "_method[]=DELETE",
            "_method[0]=PUT",
            "_method[x]=PUT",
            "_method%5Bx%5D=PUT",
            "_method.=PUT",
            "_method_=PUT",
            "_method%20=PUT",
            "_method%00=DELETE",
            "X_HTTP_METHOD_OVERRIDE=DELETE",
            "x_method_override=PUT",
        ] {
            assert_eq!(rule.required_for(&Method::GET, &none, Some(query)), "e:write", "{query}");
        }
        for query in ["method=DELETE", "x_method=DELETE", "a=_method", "q=DELETE"] {
            assert_eq!(rule.required_for(&Method::GET, &none, Some(query)), "e:read", "{query}");
        }
        assert_eq!(rule.required_for(&Method::GET, &none, None), "e:read");
    }

    use super::*;
    use proptest::prelude::*;

    fn auth(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_bearer_scheme_is_case_insensitive_and_the_token_is_returned_as_is() {
        assert_eq!(bearer_token(&auth("Bearer abc.def-_~+/==")), Ok(Some("abc.def-_~+/==")));
        assert_eq!(bearer_token(&auth("bearer  abc")), Ok(Some("abc")));
        assert_eq!(bearer_token(&auth("BEARER abc")), Ok(Some("abc")));
    }

    #[test]
    fn no_header_or_another_scheme_counts_as_no_token() {
        assert_eq!(bearer_token(&HeaderMap::new()), Ok(None));
        assert_eq!(bearer_token(&auth("Basic dXNlcjpwYXNz")), Ok(None));
        assert_eq!(bearer_token(&auth("Bearerabc")), Ok(None));
    }

    #[test]
    fn malformed_bearer_credentials_and_repeated_headers_are_invalid_requests() {
        for value in ["Bearer", "Bearer ", "Bearer a b", "Bearer a\"b", "Bearer ==="] {
            let headers = auth(value);
            assert!(matches!(bearer_token(&headers), Err(Rejection::InvalidRequest(_))), "{value}");
        }
        let mut headers = auth("Bearer a");
        headers.append(header::AUTHORIZATION, HeaderValue::from_static("Bearer b"));
        assert!(matches!(bearer_token(&headers), Err(Rejection::InvalidRequest(_))));
    }

    #[test]
    fn challenges_follow_rfc_6750() {
        assert_eq!(
            Rejection::MissingToken.www_authenticate().as_ref().map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let expired = Rejection::InvalidToken(VerifyError::Expired).www_authenticate();
        assert_eq!(
            expired.as_ref().and_then(|v| v.to_str().ok()),
            Some(
                "Bearer error=\"invalid_token\", error_description=\"the access token has expired\""
            )
        );
        let scope = Rejection::InsufficientScope("a:\"write\\".into()).www_authenticate();
        assert_eq!(
            scope.as_ref().and_then(|v| v.to_str().ok()),
            Some(
                "Bearer error=\"insufficient_scope\", error_description=\"the access token does \
                 not grant the scope a:?write?\", scope=\"a:?write?\""
            )
        );
        assert_eq!(Rejection::InvalidToken(VerifyError::KeysUnavailable).www_authenticate(), None);
    }

    #[test]
    fn the_read_write_rule_maps_safe_methods_to_the_read_scope() {
        let rule = ScopeRule::ReadWrite { read: "e:read".into(), write: "e:write".into() };
        for method in [Method::GET, Method::HEAD, Method::OPTIONS] {
            assert_eq!(rule.required(&method), "e:read");
        }
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(rule.required(&method), "e:write");
        }
    }

    proptest! {
        #[test]
        fn parsing_any_authorization_value_never_panics(value in "[ -~]{0,200}") {
            if let Ok(value) = HeaderValue::from_str(&value) {
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, value);
                if let Ok(Some(token)) = bearer_token(&headers) {
                    prop_assert!(is_b64token(token));
                }
            }
        }
    }
}
