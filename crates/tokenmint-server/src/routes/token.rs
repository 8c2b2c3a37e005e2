//! The token endpoint (RFC 6749 §4.4), in every seed dialect.
//!
//! This is the hot path. In the common case it does no database I/O and takes no lock: the
//! credential comes from the cache, the signing key from an atomic pointer, the rate limit is a
//! compare-and-swap, and the last-used note goes into a channel without waiting.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::OAuthFailure;
use crate::extract::client_auth::peer_ip;
use crate::extract::{authenticate_client, read_params};
use crate::hook::{Asked, Decision as HookDecision, OnFailure, OutcomeLabel};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tokenmint_core::PresentedClientId;
use tokenmint_core::grant::{self, GrantedAudience};
use tokenmint_core::jwt::{self, AudienceRef, ClaimsRef};
use tokenmint_core::request;
use tokenmint_http::ratelimit::Decision;
use tokenmint_proto::OAuthErrorCode;

pub async fn issue_token(State(state): State<AppState>, req: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let ip = peer_ip(&parts.extensions);
    let response = match issue(&state, &parts.headers, body, ip).await {
        Ok(r) => r,
        Err(refusal) => {
            state.metrics.refused(refusal.reason);
            audit_refusal(&state, "token", &refusal, ip);
            refusal.failure.into_response()
        }
    };
    state.metrics.token_request_seconds.observe(started.elapsed().as_secs_f64());
    response
}

/// A refused request: the answer, why, and which client it claimed to be.
#[derive(Debug)]
pub struct Refusal {
    pub reason: &'static str,
    pub client_id: Option<PresentedClientId>,
    pub failure: OAuthFailure,
    /// Said by the provider (the token hook's reason for a refusal, exactly as it gave it, cut
    /// to 200 characters), kept in the audit record beside the refusal's own reason: a JSON
    /// string there, JSON escaping what must be.
    pub provider_reason: Option<String>,
}

impl Refusal {
    pub fn new(
        reason: &'static str,
        client_id: Option<PresentedClientId>,
        failure: OAuthFailure,
    ) -> Self {
        Self { reason, client_id, failure, provider_reason: None }
    }
}

/// Records a refused request in the audit trail: the reason, the claimed client_id and the
/// source, never the secret.
pub fn audit_refusal(
    state: &AppState,
    endpoint: &'static str,
    r: &Refusal,
    ip: Option<std::net::IpAddr>,
) {
    let mut event = AuditEvent::new(AuditKind::TokenRefused).reason(r.reason).ip(ip).details(
        match &r.provider_reason {
            None => serde_json::json!({"endpoint": endpoint, "error": r.failure.code.as_str()}),
            Some(said) => serde_json::json!({
                "endpoint": endpoint,
                "error": r.failure.code.as_str(),
                "provider_reason": said,
            }),
        },
    );
    if let Some(c) = &r.client_id {
        event = event.client(c.clone());
        if let Some(Some(cached)) = c.client_id().and_then(|id| state.credentials.peek(id.as_str()))
        {
            event = event.org(cached.org());
        }
    }
    state.audit.record(event, state.now());
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    ip: Option<std::net::IpAddr>,
) -> Result<Response, Refusal> {
    let (params, basic, format) = read_params(state, headers, body)
        .await
        .map_err(|f| Refusal::new("invalid_request", None, f))?;
    let tried_basic = basic.is_some();
    let claimed = basic
        .as_ref()
        .map(|b| b.client_id.as_str())
        .or(params.client_id.as_deref())
        .map(PresentedClientId::parse);
    let req = request::token_request(params, basic, format, state.config.allow_missing_grant_type)
        .map_err(|e| {
            let reason = match e.oauth_code() {
                tokenmint_proto::OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
                tokenmint_proto::OAuthErrorCode::InvalidClient => "missing_credentials",
                _ => "invalid_request",
            };
            let mut f = OAuthFailure::from(e);
            f.basic_challenge |= tried_basic;
            Refusal::new(reason, claimed, f)
        })?;
    let client = authenticate_client(state, &req.auth, ip)
        .await
        .map_err(|(reason, f)| Refusal::new(reason, Some(req.auth.client_id.clone()), f))?;
    let cached = &client.credential;
    let credential = cached.as_ref();
    // Decoded from the entry once, for all that names the client below.
    let client_id = credential.client_id();
    let client_id = client_id.as_str();

    // The limit is checked before the expensive part: signing.
    let limit = credential.rate_limit_per_minute().unwrap_or(state.config.token_rate_limit);
    let rate = if limit > 0 {
        match state
            .limits
            .check_in(client_id, credential.limit_cell(), limit, std::time::Duration::from_secs(60))
            .await
        {
            Decision::Allowed { remaining, reset_secs } => Some((remaining, reset_secs)),
            Decision::Limited { retry_after_secs } => {
                state.metrics.rate_limited.inc();
                state.metrics.refused("rate_limited");
                let refusal = Refusal::new(
                    "rate_limited",
                    Some(presented(client_id)),
                    OAuthFailure::rate_limited(retry_after_secs),
                );
                audit_refusal(state, "token", &refusal, ip);
                state
                    .alerts
                    .on_rate_limited(client_id, credential.org(), state.now(), &state.audit)
                    .await;
                let mut res = refusal.failure.into_response();
                rate_headers(res.headers_mut(), limit, 0, retry_after_secs);
                return Ok(res);
            }
        }
    } else {
        None
    };

    // One reading of the clock: the token's `iat` (seconds) and its id (microseconds, which
    // places it after a revocation cut-off made earlier in the same second).
    let now_micros = state.clock.now_micros();
    let now = now_micros.div_euclid(1_000_000);
    let grant = grant::decide_for(
        credential.terms(),
        req.scope.as_deref(),
        &req.audiences,
        &state.issuer,
        cached.all_scopes(),
        state.config.max_token_lifetime,
        now,
    )
    .map_err(|e| {
        let reason = match e {
            grant::GrantError::InvalidScope(_) => "invalid_scope",
            grant::GrantError::InvalidTarget(_) => "invalid_target",
        };
        Refusal::new(reason, Some(presented(client_id)), OAuthFailure::from(e))
    })?;
    // The provider's hook, when configured: it may add claims, narrow the scope or refuse.
    // A token whose every scope is a tokenmint:* one never asks it: such a token is for
    // tokenmint itself (admin API, introspection, the gateways' revocation feed), and a hook
    // that is down or refuses must not lock operators out or leave gateways without the feed.
    // A token with any other scope asks it, whatever else the credential holds.
    let hook = state.token_hook.as_ref().filter(|_| {
        grant.scope.is_empty()
            || !grant.scope.split(' ').all(|s| tokenmint_proto::system_scopes::ALL.contains(&s))
    });
    let hook_answer = match hook {
        None => None,
        Some(hook) => {
            let asked = Asked {
                scope: req.scope.as_deref(),
                audiences: &req.audiences,
                granted_scope: &grant.scope,
            };
            match hook
                .decide(&credential.hook_subject(client_id), cached.claims(), asked, now)
                .await
            {
                Ok(answer) => Some(answer),
                Err(failure) => {
                    let refuse = hook.config.on_failure == OnFailure::Refuse;
                    let outcome = if refuse { "refused" } else { "issued" };
                    hook.metrics.failures.get_or_create(&OutcomeLabel { outcome }).inc();
                    // The failure quotes the hook's answer (a claim name, a JSON reader's
                    // message): escaped before it reaches the log. The parts serde and the
                    // strict reader quote are escaped already (`"a\n"`), so they are not
                    // escaped a second time; anything else that must be is.
                    let error = tokenmint_core::SafeText::composed(&failure.to_string());
                    tracing::warn!(client_id, %error, policy = outcome, "token hook failed");
                    if refuse {
                        // A hook that answered something unusable is a bug to fix on the
                        // provider's side, not an outage: the audit trail tells them apart.
                        let reason = match failure {
                            crate::hook::HookFailure::Malformed(_) => "hook_malformed",
                            _ => "hook_unavailable",
                        };
                        return Err(Refusal::new(
                            reason,
                            Some(presented(client_id)),
                            OAuthFailure::hook_unavailable(),
                        ));
                    }
                    None
                }
            }
        }
    };
    let (extra, scope): (&str, &str) = match hook_answer.as_deref().map(|a| &a.decision) {
        None => (cached.claims_json(), &grant.scope),
        Some(HookDecision::Deny { reason, said, malformed }) => {
            // What the hook said is any text: escaped for the log (`SafeText`), which quotes it
            // (text) or makes it a JSON string, so that none of it reads as another field.
            match (malformed, said) {
                (None, Some(said)) => {
                    let said = tokenmint_core::SafeText::new(said);
                    tracing::info!(client_id, reason = %said, "the token hook refused the token")
                }
                (None, None) => {
                    tracing::info!(client_id, "the token hook refused the token, giving no reason")
                }
                (Some(why), _) => {
                    let why = tokenmint_core::SafeText::composed(why);
                    tracing::warn!(client_id, answer = %why, "the token hook refused the token with an answer that is otherwise malformed; refused as it says");
                }
            }
            let mut refusal = Refusal::new(
                "hook_denied",
                Some(presented(client_id)),
                OAuthFailure::new(OAuthErrorCode::AccessDenied, reason.clone()),
            );
            refusal.provider_reason.clone_from(said);
            return Err(refusal);
        }
        Some(HookDecision::Allow { claims_json, scope }) => {
            (claims_json, scope.as_deref().unwrap_or(&grant.scope))
        }
    };
    let keys = state.keys.load();
    let jti = credential.new_token_id(now_micros);
    let claims = ClaimsRef {
        iss: &state.issuer,
        sub: client_id,
        client_id,
        aud: match &grant.audience {
            GrantedAudience::One(a) => AudienceRef::One(a),
            GrantedAudience::Many(m) => AudienceRef::Many(m),
        },
        iat: grant.issued_at,
        exp: grant.expires_at,
        jti: &jti,
        scope,
        env: credential.environment(),
        org: credential.org(),
        extra,
    };
    let token = jwt::encode(&keys.signing, &claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        Refusal::new("server_error", Some(presented(client_id)), OAuthFailure::server_error())
    })?;
    state.metrics.issued(keys.signing.alg());
    if state.config.metrics_per_org {
        state.metrics.issued_for_org(credential.org());
    }
    state.usage.record(cached, &client.secret_id, now);
    state.alerts.on_use(credential, ip, now);

    // The body as the protocol crate defines it (RFC 6749 §5.1), the one the SDK and the tests
    // read: the token is moved in, not copied.
    let body = tokenmint_proto::TokenResponse {
        access_token: token,
        token_type: "Bearer".to_owned(),
        expires_in: grant.expires_in(),
        scope: Some(scope.to_owned()),
    };
    let body = serde_json::to_vec(&body).map_err(|e| {
        tracing::error!(error = %e, "the token response could not be written");
        Refusal::new("server_error", Some(presented(client_id)), OAuthFailure::server_error())
    })?;
    let mut res = (StatusCode::OK, body).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    if let Some((remaining, reset)) = rate {
        rate_headers(h, limit, remaining, reset);
    }
    Ok(res)
}

/// The client id of an authenticated credential, as a refusal names it.
fn presented(id: &str) -> PresentedClientId {
    PresentedClientId::parse(id)
}

/// The IETF `RateLimit-Policy` and `RateLimit` fields (draft-ietf-httpapi-ratelimit-headers).
fn rate_headers(h: &mut HeaderMap, limit: u32, remaining: u32, reset: u64) {
    if let Ok(v) = HeaderValue::from_str(&format!("\"token-requests\";q={limit};w=60")) {
        h.insert("ratelimit-policy", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"token-requests\";r={remaining};t={reset}")) {
        h.insert("ratelimit", v);
    }
}
