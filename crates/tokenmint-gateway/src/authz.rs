//! External authorization (`mode = "authz"`): the gateway answers a proxy's authorization
//! subrequest about a request instead of forwarding it, with exactly the checks of proxy mode
//! ([`crate::proxy::authorize`]): routes, scopes by the original method, environments,
//! required headers, path binding and rate limits.
//!
//! Where the subrequest names the original request ([`AuthzSource`]):
//! - nginx `auth_request`: `X-Original-Method` and `X-Original-URI`, which the documented
//!   configuration sets (`proxy_set_header X-Original-URI $request_uri;` …);
//! - Traefik and Caddy `forward_auth`: `X-Forwarded-Method` and `X-Forwarded-Uri`;
//! - Envoy's HTTP `ext_authz`: the subrequest's own method and path.
//!
//! With `auto` (the default), exactly one of the two header pairs must be present: a proxy
//! sets its own pair and passes the caller's headers on, so a caller could add the other pair
//! to describe a request it is not making; both pairs at once are refused.
//!
//! A request that passes gets 200 with the identity headers (`x-tokenmint-client-id`, `-org`,
//! `-env`, `-scope`; empty when the token lacks the claim) for the proxy to copy upstream; any
//! other is refused as proxy mode refuses it.

use crate::Shared;
use crate::config::AuthzSource;
use crate::error::Refusal;
use crate::proxy::{Trace, authorize, set_claim_headers, set_identity_headers};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use tokenmint_verify::CanonicalPath;

const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");

/// One header's value, refusing a repeated or non-ASCII one.
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a str>, Refusal> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else { return Ok(None) };
    if values.next().is_some() {
        return Err(Refusal::AuthzRequest("the original method or URI header is repeated"));
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| Refusal::AuthzRequest("the original method or URI header is not ASCII"))
}

/// The header pair (method, URI) named `method` and `uri`, when either is present.
fn pair<'a>(
    headers: &'a HeaderMap,
    method: &HeaderName,
    uri: &HeaderName,
) -> Result<Option<(&'a str, &'a str)>, Refusal> {
    match (single(headers, method)?, single(headers, uri)?) {
        (Some(m), Some(u)) => Ok(Some((m, u))),
        (None, None) => Ok(None),
        _ => Err(Refusal::AuthzRequest(
            "the authorization subrequest names the original method or URI but not both",
        )),
    }
}

/// The method and request target the subrequest is about.
fn described(
    source: AuthzSource,
    request: &http::request::Parts,
) -> Result<(Method, &str), Refusal> {
    let headers = &request.headers;
    let (method, target) = match source {
        AuthzSource::Envoy => {
            return Ok((
                request.method.clone(),
                request.uri.path_and_query().map_or("/", |p| p.as_str()),
            ));
        }
        AuthzSource::Nginx => pair(headers, &X_ORIGINAL_METHOD, &X_ORIGINAL_URI)?.ok_or(
            Refusal::AuthzRequest("set X-Original-Method and X-Original-URI on the subrequest"),
        )?,
        AuthzSource::ForwardAuth => pair(headers, &X_FORWARDED_METHOD, &X_FORWARDED_URI)?.ok_or(
            Refusal::AuthzRequest("set X-Forwarded-Method and X-Forwarded-Uri on the subrequest"),
        )?,
        AuthzSource::Auto => {
            let nginx = pair(headers, &X_ORIGINAL_METHOD, &X_ORIGINAL_URI)?;
            let forward_auth = pair(headers, &X_FORWARDED_METHOD, &X_FORWARDED_URI)?;
            match (nginx, forward_auth) {
                (Some(p), None) | (None, Some(p)) => p,
                (Some(_), Some(_)) => {
                    return Err(Refusal::AuthzRequest(
                        "both X-Original-* and X-Forwarded-Method/-Uri are present; the proxy \
                         sets one pair, so the other came from the caller",
                    ));
                }
                (None, None) => {
                    return Err(Refusal::AuthzRequest(
                        "the subrequest names no original request: set X-Original-Method and \
                         X-Original-URI (nginx) or X-Forwarded-Method and X-Forwarded-Uri \
                         (forward_auth), or authz_source = \"envoy\"",
                    ));
                }
            }
        }
    };
    let method = Method::from_bytes(method.trim().as_bytes())
        .map_err(|_| Refusal::AuthzRequest("the original method is not an HTTP method"))?;
    Ok((method, target.trim()))
}

/// Answers one authorization subrequest.
pub(crate) async fn answer(
    shared: &Shared,
    source: AuthzSource,
    request: Request,
    trace: &mut Trace,
) -> Result<Response, Refusal> {
    let (parts, _body) = request.into_parts();
    let (method, target) = described(source, &parts)?;
    // An absolute URI (some proxies send one) is reduced to its path and query; the query is
    // not part of the path but may ask for another method, and the fragment is dropped.
    let target = match target.find("://") {
        Some(scheme_end) => {
            let after = &target[scheme_end + 3..];
            after.find('/').map_or("/", |i| &after[i..])
        }
        None => target,
    };
    let target = target.split('#').next().unwrap_or("");
    let (raw_path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let path = CanonicalPath::parse(raw_path).map_err(Refusal::UnsafePath)?;
    authorize(shared, &method, &path, query, &parts.headers, trace).await?;
    let Some(token) = trace.token.as_ref() else { return Err(Refusal::IdentityHeader) };
    let mut response = StatusCode::OK.into_response();
    let headers = response.headers_mut();
    set_identity_headers(headers, token, true)?;
    if let Some(route) = trace.route() {
        set_claim_headers(headers, &route.forward_claims, token, true);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
