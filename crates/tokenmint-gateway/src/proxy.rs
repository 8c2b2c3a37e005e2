//! The request path: route, authenticate, authorize, limit, forward, stream back.
//!
//! Checks run in an order that tells a caller no more than it is entitled to: the route first
//! (a 404 says nothing about tokens), then the token, then the environment and the scope, and
//! only then the required headers and the rate limit, which concern callers that are allowed
//! in. Bodies are never buffered: the caller's body is handed to the upstream request as a
//! stream, and the upstream's body to the caller the same way.

use crate::Shared;
use crate::config::{Mode, RouteConfig};
use crate::error::Refusal;
use crate::issuers::Judgement;
use crate::metrics::{RefusalLabels, RequestLabels, RouteLabel};
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokenmint_http::Decision;
use tokenmint_proto::Environment;
use tokenmint_verify::{CanonicalPath, Rejection, VerifiedToken, bearer_token};

pub(crate) const CLIENT_ID: HeaderName = HeaderName::from_static("x-tokenmint-client-id");
pub(crate) const ORG: HeaderName = HeaderName::from_static("x-tokenmint-org");
pub(crate) const ENV: HeaderName = HeaderName::from_static("x-tokenmint-env");
pub(crate) const SCOPE: HeaderName = HeaderName::from_static("x-tokenmint-scope");
const IDENTITY_PREFIX: &str = "x-tokenmint-";

/// RFC 9110 §7.6.1: connection-specific fields a proxy must not forward, besides the ones the
/// `Connection` header names.
const HOP_BY_HOP: [HeaderName; 8] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// What the access log and the metrics learn about a request as it goes.
#[derive(Default)]
pub(crate) struct Trace {
    route: Option<Arc<RouteConfig>>,
    pub(crate) token: Option<VerifiedToken>,
    refusal: Option<&'static str>,
}

impl Trace {
    /// The route the request was matched to, once it has been.
    pub(crate) fn route(&self) -> Option<&RouteConfig> {
        self.route.as_deref()
    }
}

/// The fallback handler: every path that is not the gateway's own goes through here.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let mut trace = Trace::default();
    let outcome = match shared.mode {
        Mode::Proxy => forward(&shared, request, &mut trace).await,
        Mode::Authz(source) => crate::authz::answer(&shared, source, request, &mut trace).await,
    };
    let response = match outcome {
        Ok(response) => response,
        Err(refusal) => {
            trace.refusal = Some(refusal.reason());
            refusal.into_response()
        }
    };
    let elapsed = started.elapsed();
    let route = trace.route.as_ref().map_or("none", |r| r.path_prefix.as_str());
    let status = response.status().as_u16();
    let metrics = &shared.metrics;
    metrics.requests.get_or_create(&RequestLabels { route: route.to_owned(), status }).inc();
    metrics
        .duration
        .get_or_create(&RouteLabel { route: route.to_owned() })
        .observe(elapsed.as_secs_f64());
    if let Some(reason) = trace.refusal {
        metrics
            .refusals
            .get_or_create(&RefusalLabels { route: route.to_owned(), reason: reason.to_owned() })
            .inc();
    }
    // The access log: never the token, nor the query string (where callers sometimes put
    // secrets); the client is named by its id.
    tracing::info!(
        target: "tokenmint_gateway::access",
        %method,
        path,
        status,
        route,
        client_id = trace.token.as_ref().map(|t| t.client_id.as_str()),
        env = trace.token.as_ref().and_then(|t| t.env).map(Environment::as_str),
        refusal = trace.refusal,
        micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
        "request"
    );
    response
}

async fn forward(
    shared: &Shared,
    request: Request,
    trace: &mut Trace,
) -> Result<Response, Refusal> {
    let (mut parts, body) = request.into_parts();
    // One spelling of the path, computed once: it picks the route and it is what the upstream
    // receives, so no upstream can read the request as a path another route guards.
    let path = CanonicalPath::parse(parts.uri.path()).map_err(Refusal::UnsafePath)?;
    let route =
        authorize(shared, &parts.method, &path, parts.uri.query(), &parts.headers, trace).await?;
    let Some(token) = trace.token.as_ref() else { return Err(Refusal::IdentityHeader) };
    let upstream = route.upstream_for(token.env).ok_or(Refusal::NoUpstream)?;

    // From the owned string, which becomes the URI's buffer without another copy.
    let target = upstream.url_for(path.as_str(), parts.uri.query());
    let uri = http::Uri::try_from(target).map_err(|_| Refusal::IdentityHeader)?;
    let client_addr = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let host = request_host(&parts.headers, &parts.uri, parts.version)?;
    let headers =
        upstream_headers(&mut parts.headers, host, &route, token, client_addr, shared.scheme)?;

    // A request without a body (most GETs) is sent without one, rather than as an empty chunked
    // stream some servers refuse.
    let body = if body.size_hint().exact() == Some(0) { Body::empty() } else { body };
    let mut upstream_request = http::Request::new(body);
    *upstream_request.method_mut() = parts.method.clone();
    *upstream_request.uri_mut() = uri;
    *upstream_request.headers_mut() = headers;
    let sent = tokio::time::timeout(route.request_timeout, shared.http.request(upstream_request));
    let upstream_response = match sent.await {
        Err(_) => {
            tracing::warn!(
                route = route.path_prefix,
                upstream = upstream.as_str(),
                "upstream timed out"
            );
            return Err(Refusal::UpstreamTimeout);
        }
        Ok(Err(error)) if timed_out(&error) => return Err(Refusal::UpstreamTimeout),
        Ok(Err(error)) => {
            tracing::warn!(
                route = route.path_prefix,
                upstream = upstream.as_str(),
                %error,
                "upstream unavailable"
            );
            return Err(Refusal::UpstreamUnavailable);
        }
        Ok(Ok(response)) => response,
    };
    Ok(downstream_response(upstream_response))
}

/// Every check of a request that names `method`, `path` and `query`, in proxy and in authz
/// mode alike:
/// the route, the token (kept in `trace`), the environment and organization, the scope, the
/// path binding, the required headers and the rate limit.
pub(crate) async fn authorize(
    shared: &Shared,
    method: &Method,
    path: &CanonicalPath<'_>,
    query: Option<&str>,
    headers: &HeaderMap,
    trace: &mut Trace,
) -> Result<Arc<RouteConfig>, Refusal> {
    let table = shared.routes.load();
    let route = table.route(path).map_err(Refusal::UnsafePath)?.cloned().ok_or(Refusal::NoRoute)?;
    trace.route = Some(Arc::clone(&route));

    // Kept in the trace for the access log, and borrowed from there: no copy per request.
    let token = bearer_token(headers)?.ok_or(Rejection::MissingToken)?;
    let verified = shared.issuers.verify(token).await.map_err(|judgement| match judgement {
        Judgement::Refused(error) => Refusal::Auth(Rejection::InvalidToken(error)),
        Judgement::IssuerNotReady { retry_after_secs } => {
            Refusal::IssuerNotReady { retry_after_secs }
        }
    })?;
    let token = &*trace.token.insert(verified);
    match token.env {
        None if route.require_env => return Err(Refusal::ClaimRequired("env")),
        Some(env) if !route.serves(env) => return Err(Refusal::EnvironmentNotServed(env)),
        _ => {}
    }
    if route.require_org && token.org.is_none() {
        return Err(Refusal::ClaimRequired("org"));
    }
    // Judged by the method an upstream may take the request as, too (method overrides).
    token.require_scope(route.scopes.required_for(method, headers, query))?;
    if let Some(binding) = &route.path_binding
        && !binding.admits(path, token)
    {
        return Err(Refusal::PathBinding(binding.template.clone()));
    }
    if let Some(missing) = route.require_headers.iter().find(|h| !headers.contains_key(*h)) {
        return Err(Refusal::MissingHeader(missing.clone()));
    }
    if let Some(limit) = route.rate_limit_per_minute {
        let key = format!("{}\u{1f}{}", route.path_prefix, token.client_id);
        let decision = shared.limits.check(&key, limit, std::time::Duration::from_secs(60)).await;
        if let Decision::Limited { retry_after_secs } = decision {
            return Err(Refusal::RateLimited { retry_after_secs });
        }
    }
    Ok(route)
}

/// Whether the client gave up on the upstream for time (the connect timeout), as opposed to
/// being refused or reset.
fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Headers by which a client could describe hops before the gateway (its own address, host,
/// port, path prefix or scheme), which upstream frameworks use to build URLs and decide
/// trust. The gateway drops the caller's and sets `Forwarded`, `X-Forwarded-Host` and
/// `X-Forwarded-Proto` from what it saw; `X-Forwarded-For` keeps the caller's list with the
/// gateway's view of the caller appended, as every proxy does (an upstream reads it from the
/// right). The older spellings of the scheme and host (Rack, Laravel, IIS) go too, as do
/// `X-Original-URL` and `X-Rewrite-URL`, by which IIS URL Rewrite and some PHP frameworks route
/// a request to another path than the one the gateway authorized, and the other descriptions
/// of "the original request" that proxies give authorization services (`X-Original-URI`,
/// `X-Original-Method`, `X-Forwarded-Uri`, `X-Forwarded-Method`, `X-Envoy-Original-Path`).
/// `Proxy` goes as well: CGI-style upstreams turn it into `HTTP_PROXY` and send their own
/// outbound requests through the caller's host ("httpoxy"). So do the other claims of a
/// client address that CDNs and frameworks read (`True-Client-IP`, `CF-Connecting-IP`,
/// `X-Client-IP`, `Client-IP` …), of a user that authenticating proxies pass on (`Remote-User`,
/// `X-Forwarded-User`, oauth2-proxy's `X-Auth-Request-*` …) and of a client certificate that
/// TLS-terminating proxies forward (`X-Forwarded-Client-Cert`, `X-SSL-Client-*` …): behind
/// the gateway, none of them can be the caller's to state.
fn is_caller_forwarding(name: &str) -> bool {
    matches!(
        name,
        "forwarded"
            | "x-forwarded-host"
            | "x-forwarded-port"
            | "x-forwarded-prefix"
            | "x-forwarded-server"
            | "x-real-ip"
            | "x-forwarded-ssl"
            | "front-end-https"
            | "x-url-scheme"
            | "x-forwarded-scheme"
            | "x-host"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-original-uri"
            | "x-original-method"
            | "x-forwarded-uri"
            | "x-forwarded-method"
            | "x-envoy-original-path"
            | "proxy"
            | "true-client-ip"
            | "cf-connecting-ip"
            | "x-client-ip"
            | "client-ip"
            | "x-cluster-client-ip"
            | "fastly-client-ip"
            | "x-proxyuser-ip"
            | "x-remote-addr"
            | "x-remote-ip"
            | "x-originating-ip"
            | "remote-addr"
            | "remote-user"
            | "x-remote-user"
            | "x-forwarded-user"
            | "x-forwarded-email"
            | "x-forwarded-preferred-username"
            | "x-forwarded-groups"
            | "x-forwarded-access-token"
            | "x-auth-request-user"
            | "x-auth-request-email"
            | "x-auth-request-preferred-username"
            | "x-auth-request-groups"
            | "x-auth-request-access-token"
            | "x-forwarded-path"
            | "x-original-path"
            | "x-original-host"
            | "x-forwarded-client-cert"
            | "x-ssl-client-cert"
            | "ssl-client-cert"
            | "x-client-cert"
            | "x-arr-clientcert"
            | "x-ssl-client-dn"
            | "x-ssl-client-verify"
    )
}

/// Whether `value` can stand unquoted in a `Forwarded` parameter (RFC 7230 `token`; a host
/// with a port is `host:port`, and `:` is no token character, so such a host is quoted).
fn is_forwarded_token(value: &str) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The hop-by-hop headers of `headers`, and any header its `Connection` names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
}

/// Sets the headers of the route's `forward_claims` from `token`. A claim the token lacks is
/// left out, or sent empty with `empty_when_absent` (as for the identity headers).
///
/// The header's value is the claim's text ([`claim_header_value`]) percent-encoded so that it
/// is visible ASCII: a claim with a control character in it (which tokenmint refuses to set,
/// but an older release stored) is not forwarded, with a warning, as if the token lacked it;
/// never an error.
pub(crate) fn set_claim_headers(
    out: &mut HeaderMap,
    forward: &[(String, HeaderName)],
    token: &VerifiedToken,
    empty_when_absent: bool,
) {
    for (claim, header) in forward {
        let value = match token.claim(claim).map(forwardable) {
            Some(Ok(value)) => value,
            Some(Err(why)) => {
                if first_warning(claim, &token.client_id) {
                    // Another issuer's client id is any text: the log's format quotes and
                    // escapes it, so it cannot read as another field of the line.
                    tracing::warn!(
                        claim = %claim,
                        client_id = token.client_id.as_str(),
                        "a forwarded claim holds {why}: the claim is not forwarded; remove or set \
                         it again on the credential or organization (or at the issuer that set \
                         it); said once per claim and client, then at debug"
                    );
                } else {
                    tracing::debug!(claim = %claim, client_id = token.client_id.as_str(), "a forwarded claim holds {why}: not forwarded");
                }
                if !empty_when_absent {
                    continue;
                }
                HeaderValue::from_static("")
            }
            None if empty_when_absent => HeaderValue::from_static(""),
            None => continue,
        };
        out.insert(header.clone(), value);
    }
}

/// The (claim, client) pairs whose unforwardable claim was warned about. The problem is the
/// same on every request of that client until someone fixes the claim, so it is a warning the
/// first time and a debug line after, not a warning per request. At most
/// [`WARNED_PAIRS`] are kept; past that the set starts again, so a new problem is never
/// silenced for good (a pair warned about before may be warned about once more).
static WARNED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<String>>> =
    std::sync::LazyLock::new(Default::default);

const WARNED_PAIRS: usize = 4096;

/// Whether this is the first time `claim` of `client_id` could not be forwarded.
fn first_warning(claim: &str, client_id: &str) -> bool {
    let mut warned = WARNED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.len() >= WARNED_PAIRS {
        warned.clear();
    }
    // A NUL is in neither a claim name nor a client id that reached here.
    warned.insert(format!("{claim}\0{client_id}"))
}

/// A claim as the value of a header ([`claim_header_value`]), or what keeps it from being one:
/// a control character in a string, or a number another issuer wrote beyond ±(2^53 − 1), which
/// was read as a float and would be handed on as another number than the issuer signed.
fn forwardable(claim: &serde_json::Value) -> Result<HeaderValue, &'static str> {
    if tokenmint_proto::claims::has_inexact_number(claim) {
        return Err("a number beyond ±(2^53 - 1) that cannot be handed on exactly");
    }
    claim_header_value(claim).ok_or("a control character")
}

/// A claim as the value of a header: its text (a string as it is, any other value as compact
/// JSON), percent-encoded as UTF-8 (RFC 3986 §2.1) where it is not visible ASCII: space, `%`
/// and every byte of a non-ASCII character become `%XX`, all else stays as it is, so that
/// percent-decoding the header gives the text back exactly. `None` for text with a control
/// character (U+0000 to U+001F, U+007F to U+009F), which no upstream should be handed.
pub(crate) fn claim_header_value(claim: &serde_json::Value) -> Option<HeaderValue> {
    let json;
    let text = match claim {
        serde_json::Value::String(s) => s.as_str(),
        other => {
            json = other.to_string();
            json.as_str()
        }
    };
    header_text(text)
}

fn needs_no_encoding(b: u8) -> bool {
    b.is_ascii_graphic() && b != b'%'
}

/// `text` as a header value by the rule of [`claim_header_value`]: visible ASCII but `%` as it
/// is, every other byte `%XX`; `None` when it holds a control character.
fn header_text(text: &str) -> Option<HeaderValue> {
    // The common case on the hot path (a tokenmint client id, slug or scope): nothing to encode,
    // so no new string.
    if text.bytes().all(needs_no_encoding) {
        return HeaderValue::from_str(text).ok();
    }
    if text.chars().any(char::is_control) {
        return None;
    }
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if needs_no_encoding(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    HeaderValue::from_str(&out).ok()
}

/// Sets the identity headers from `token`; a claim the token lacks is left out, or sent empty
/// with `empty_when_absent` (an authorization answer, so that a proxy copying the headers
/// overwrites whatever the caller sent under those names).
pub(crate) fn set_identity_headers(
    out: &mut HeaderMap,
    token: &VerifiedToken,
    empty_when_absent: bool,
) -> Result<(), Refusal> {
    // Encoded as forwarded claims are: a tokenmint client id, slug or scope is visible ASCII
    // and passes unchanged; another issuer's may hold any text (a line separator, a bidi
    // control), which reaches the upstream percent-encoded, never raw. (The verifier refuses a
    // control character in them.)
    let value = |v: &str| header_text(v).ok_or(Refusal::IdentityHeader);
    let empty = HeaderValue::from_static("");
    out.insert(CLIENT_ID, value(&token.client_id)?);
    match (&token.org, empty_when_absent) {
        (Some(org), _) => _ = out.insert(ORG, value(org)?),
        (None, true) => _ = out.insert(ORG, empty.clone()),
        (None, false) => {}
    }
    match (token.env, empty_when_absent) {
        (Some(env), _) => _ = out.insert(ENV, HeaderValue::from_static(env.as_str())),
        (None, true) => _ = out.insert(ENV, empty),
        (None, false) => {}
    }
    // Scopes one by one, so that the spaces between them stay spaces; the verifier joined them
    // with single spaces, so a scope string with nothing to encode is sent as it is.
    if token.scope.bytes().all(|b| b == b' ' || needs_no_encoding(b)) {
        out.insert(
            SCOPE,
            HeaderValue::from_str(&token.scope).map_err(|_| Refusal::IdentityHeader)?,
        );
        return Ok(());
    }
    let mut scope = String::with_capacity(token.scope.len());
    for one in token.scope.split(' ').filter(|s| !s.is_empty()) {
        let encoded = value(one)?;
        if !scope.is_empty() {
            scope.push(' ');
        }
        scope.push_str(encoded.to_str().map_err(|_| Refusal::IdentityHeader)?);
    }
    out.insert(SCOPE, HeaderValue::from_str(&scope).map_err(|_| Refusal::IdentityHeader)?);
    Ok(())
}

/// The host the caller addressed, which the gateway repeats to the upstream in `Forwarded` and
/// `X-Forwarded-Host` (RFC 9112 §3.2, RFC 9113 §8.3.1):
/// * an authority in the request target (absolute form, or HTTP/2's `:authority`) wins over
///   `Host`, which a recipient then ignores;
/// * otherwise one `Host`; an HTTP/1.1 request without one, or with several, is a 400;
/// * either must be a host and an optional numeric port: a second value or a quote would let
///   the caller write parameters of its own into the forwarded fields.
fn request_host(
    headers: &HeaderMap,
    uri: &http::Uri,
    version: http::Version,
) -> Result<Option<HeaderValue>, Refusal> {
    if let Some(authority) = uri.authority() {
        return match is_plain_host(authority.as_str()) {
            true => Ok(HeaderValue::from_str(authority.as_str()).ok()),
            false => {
                Err(Refusal::BadHost("the request target must name a host and an optional port"))
            }
        };
    }
    let mut hosts = headers.get_all(header::HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(host), None) => match host.to_str().is_ok_and(is_plain_host) {
            true => Ok(Some(host.clone())),
            false => Err(Refusal::BadHost("the Host header must be a host and an optional port")),
        },
        (Some(_), Some(_)) => Err(Refusal::BadHost("send one Host header")),
        (None, _) if version == http::Version::HTTP_11 => {
            Err(Refusal::BadHost("send a Host header: HTTP/1.1 requires one"))
        }
        (None, _) => Ok(None),
    }
}

/// A host (name, IPv4 or bracketed IPv6) and an optional port of digits in 16 bits: no
/// userinfo, no list (`,`), no `*`, nothing a framework could split differently.
fn is_plain_host(text: &str) -> bool {
    let Ok(authority) = text.parse::<http::uri::Authority>() else { return false };
    let port_ok = match text.get(authority.host().len()..).unwrap_or(":") {
        "" => true,
        rest => rest.strip_prefix(':').is_some_and(|digits| {
            !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
                && digits.parse::<u16>().is_ok()
        }),
    };
    authority.as_str() == text
        && !authority.host().is_empty()
        && port_ok
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b))
}

/// Whether the caller may not send this header on: an `x-tokenmint-*` one (the identity
/// headers are the gateway's word, and whatever the caller sent under those names goes); one
/// whose name holds anything but letters, digits and `-` (`_`, `.`, `~`, …: CGI, WSGI, PHP,
/// Rack and lighttpd name headers in their environment with `_` for `-`, PHP also for `.`,
/// lighttpd for every other character, so `X_Tokenmint_Scope`, `X.Tokenmint.Scope` or
/// `X_HTTP_Method_Override` would reach an application as the header the gateway sets or
/// judges; nginx drops names with `_` by default for the same reason); or one describing
/// earlier hops, the caller's address, user or certificate ([`is_caller_forwarding`]).
fn from_caller_only(name: &HeaderName) -> bool {
    let name = name.as_str();
    name.starts_with(IDENTITY_PREFIX)
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || is_caller_forwarding(name)
}

/// Drops every header [`from_caller_only`] names, in one pass over the request's headers
/// (this runs for every request).
fn drop_caller_headers(headers: &mut HeaderMap) {
    if !headers.keys().any(from_caller_only) {
        return;
    }
    let names: Vec<HeaderName> = headers.keys().filter(|n| from_caller_only(n)).cloned().collect();
    for name in names {
        headers.remove(name);
    }
}

fn upstream_headers(
    headers: &mut HeaderMap,
    original_host: Option<HeaderValue>,
    route: &RouteConfig,
    token: &VerifiedToken,
    client_addr: Option<SocketAddr>,
    scheme: &'static str,
) -> Result<HeaderMap, Refusal> {
    let mut out = std::mem::take(headers);
    strip_hop_by_hop(&mut out);
    // What a caller says about identity and earlier hops is not believed: the gateway is the
    // first hop an upstream should trust, so it states these itself (or leaves them out).
    drop_caller_headers(&mut out);
    if !route.forward_authorization {
        out.remove(header::AUTHORIZATION);
    }
    out.remove(header::HOST);
    set_identity_headers(&mut out, token, false)?;
    set_claim_headers(&mut out, &route.forward_claims, token, false);
    // One buffer for the whole field, written in place: this runs for every request.
    let mut forwarded = String::with_capacity(96);
    if let Some(addr) = client_addr {
        // RFC 7239 §6: an IPv6 node is quoted and bracketed.
        let _ = match addr.ip() {
            std::net::IpAddr::V4(ip) => write!(forwarded, "for={ip};"),
            std::net::IpAddr::V6(ip) => write!(forwarded, "for=\"[{ip}]\";"),
        };
    }
    if let Some(host) = original_host.as_ref().and_then(|h| h.to_str().ok()) {
        if is_forwarded_token(host) {
            let _ = write!(forwarded, "host={host};");
        } else if host.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\') {
            let _ = write!(forwarded, "host=\"{host}\";");
        }
    }
    let _ = write!(forwarded, "proto={scheme}");
    if let Ok(value) = HeaderValue::from_str(&forwarded) {
        out.insert(header::FORWARDED, value);
    }
    if let Some(host) = original_host {
        out.insert(HeaderName::from_static("x-forwarded-host"), host);
    }
    if let Some(addr) = client_addr {
        // Every field line the caller sent is one list (RFC 9110 §5.3): keep them all, in
        // order, and append the gateway's view of the caller.
        let forwarded_for = HeaderName::from_static("x-forwarded-for");
        let mut chain = String::new();
        for line in out.get_all(&forwarded_for).iter().filter_map(|v| v.to_str().ok()) {
            chain.push_str(line);
            chain.push_str(", ");
        }
        let _ = write!(chain, "{}", addr.ip());
        if let Ok(chain) = HeaderValue::from_str(&chain) {
            out.insert(forwarded_for, chain);
        }
    }
    // The scheme the caller used to reach the gateway, not a constant.
    out.insert(HeaderName::from_static("x-forwarded-proto"), HeaderValue::from_static(scheme));
    Ok(out)
}

fn downstream_response(upstream: http::Response<hyper::body::Incoming>) -> Response {
    let (mut parts, body) = upstream.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    // The gateway speaks HTTP/1.1 to its callers whatever the upstream spoke: an HTTP/1.0
    // status line passed through would make HTTP/1.1 clients drop their kept-alive connection.
    // (hyper answers an HTTP/1.0 caller in HTTP/1.0 by itself.)
    parts.version = http::Version::HTTP_11;
    Response::from_parts(parts, Body::new(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_removed() {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, x-private"));
        headers.insert("x-private", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::TE, HeaderValue::from_static("trailers"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key("x-kept"));
    }

    #[test]
    fn claims_travel_as_visible_ascii_percent_encoded_and_control_characters_not_at_all() {
        use serde_json::json;
        let header =
            |v: serde_json::Value| claim_header_value(&v).map(|h| h.to_str().unwrap().to_owned());
        for (claim, forwarded) in [
            (json!("t-42"), "t-42"),
            (json!("https://example.com/a?b=c&d"), "https://example.com/a?b=c&d"),
            (json!("Zürich"), "Z%C3%BCrich"),
            (json!("東京"), "%E6%9D%B1%E4%BA%AC"),
            (json!("50% off"), "50%25%20off"),
            (json!(" padded "), "%20padded%20"),
            (json!(""), ""),
            (json!(40), "40"),
            (json!(true), "true"),
            (json!({"tier": "gold"}), r#"{"tier":"gold"}"#),
            (json!({"city": "Zürich"}), r#"{"city":"Z%C3%BCrich"}"#),
            // JSON escapes C0 characters inside a structure: what is forwarded is plain ASCII.
            (json!(["a\nb"]), r#"["a\nb"]"#),
        ] {
            let got = header(claim.clone());
            assert_eq!(got.as_deref(), Some(forwarded), "{claim}");
            let decoded: Vec<u8> = {
                let bytes = forwarded.as_bytes();
                let mut out = Vec::new();
                let mut i = 0;
                while i < bytes.len() {
                    if bytes[i] == b'%' {
                        let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                        out.push(u8::from_str_radix(hex, 16).unwrap());
                        i += 3;
                    } else {
                        out.push(bytes[i]);
                        i += 1;
                    }
                }
                out
            };
            let text = match &claim {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert_eq!(String::from_utf8(decoded).unwrap(), text, "decoding gives it back");
        }
        for c in ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'] {
            assert_eq!(header(json!(format!("a{c}b"))), None, "{c:?}");
            assert_eq!(header(json!(format!("{c}"))), None, "{c:?}");
        }
        for c in ['\u{7f}', '\u{85}', '\u{9f}'] {
            assert_eq!(header(json!({"k": format!("a{c}b")})), None, "{c:?} in a structure");
        }
    }

    #[test]
    fn another_issuers_number_beyond_what_json_readers_read_exactly_is_not_forwarded() {
        let read = |text: &str| serde_json::from_str::<serde_json::Value>(text).unwrap();
        for inexact in [
            "123456789012345678901234567890",
            "9007199254740992",
            "-9007199254740993",
            "18446744073709551615",
            "1e300",
            r#"{"ids":[1,12345678901234567890]}"#,
        ] {
            let why = forwardable(&read(inexact)).unwrap_err();
            assert!(why.contains("2^53"), "{inexact}: {why}");
        }
        for exact in ["9007199254740991", "-9007199254740991", "1.5", r#"{"ids":[1,2]}"#, "0"] {
            let value = forwardable(&read(exact)).unwrap();
            assert_eq!(value.to_str().unwrap(), read(exact).to_string(), "{exact}");
        }
        assert_eq!(forwardable(&read(r#""a\u0000""#)), Err("a control character"));
    }

    #[test]
    fn a_claim_that_cannot_be_forwarded_is_warned_about_once_per_claim_and_client() {
        assert!(first_warning("once-plan", "client-a"));
        for _ in 0..3 {
            assert!(!first_warning("once-plan", "client-a"), "said already");
        }
        assert!(first_warning("once-plan", "client-b"), "another client");
        assert!(first_warning("once-tier", "client-a"), "another claim");
        // The set is bounded: filling it starts it again, so nothing is silenced for good.
        for i in 0..WARNED_PAIRS {
            first_warning("once-fill", &i.to_string());
        }
        assert!(WARNED.lock().unwrap().len() <= WARNED_PAIRS);
    }
}
