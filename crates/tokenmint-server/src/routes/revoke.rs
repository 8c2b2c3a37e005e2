//! RFC 7009 token revocation.
//!
//! A client may revoke its own tokens; the platform admin any (the policy's decision,
//! [`crate::service::policy`]). The token's id goes into the
//! revocation feed until the token would have expired anyway, which is how gateways and
//! verifiers holding a stateless JWT learn to refuse it. Per §2.2, an invalid, expired or
//! unknown token is answered with 200: there is nothing to revoke. `token_type_hint` is never
//! an error, whatever it says (§2.1).

use crate::error::OAuthFailure;
use crate::extract::bearer::verify_own_token;
use crate::extract::{authenticate_client, read_params};
use crate::routes::introspect::client_actor;
use crate::service::{Action, Target, policy};
use crate::state::AppState;
use crate::sync::sync_now;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokenmint_core::request;
use tokenmint_proto::OAuthErrorCode;
use tokenmint_proto::feed::Revocation;
use tokenmint_store::NewRevocation;

pub async fn revoke_token(State(state): State<AppState>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let ip = crate::extract::client_auth::peer_ip(&parts.extensions);
    match revoke(&state, &parts.headers, body, ip).await {
        Ok(()) => {
            let mut res = StatusCode::OK.into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(f) => f.into_response(),
    }
}

async fn revoke(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    ip: Option<std::net::IpAddr>,
) -> Result<(), OAuthFailure> {
    let (mut params, basic, format) = read_params(state, headers, body).await?;
    let token = params.token.take();
    // RFC 7009 §2.1: the hint only says where to look first, and a wrong or unknown one must
    // not fail the request; with access tokens the only kind issued, there is nowhere else to
    // look, so it is not read at all. A refresh token from elsewhere is an unknown token: 200.
    let auth = request::client_authentication(&mut params, basic, format)?;
    let caller = authenticate_client(state, &auth, ip).await.map_err(|(reason, f)| {
        state.metrics.refused(reason);
        let refusal = crate::routes::token::Refusal::new(reason, Some(auth.client_id.clone()), f);
        crate::routes::token::audit_refusal(state, "revoke", &refusal, ip);
        refusal.failure
    })?;
    let Some(token) = token else {
        return Err(OAuthFailure::new(
            OAuthErrorCode::InvalidRequest,
            "the token parameter is required",
        ));
    };
    let Ok(claims) = verify_own_token(state, &token).await else {
        return Ok(());
    };
    let caller_cred = &caller.credential;
    let target = Target::Token { client_id: &claims.client_id, org: &claims.org };
    if let Err(refusal) = policy::may(&client_actor(caller_cred), Action::RevokeToken, &target) {
        let description = match refusal {
            policy::Denied::Forbidden { reason, .. } | policy::Denied::Conflict { reason } => {
                reason
            }
            policy::Denied::NotFound => "the token was not issued to this client",
        };
        return Err(OAuthFailure::new(OAuthErrorCode::UnauthorizedClient, description));
    }
    let entry = NewRevocation {
        revocation: Revocation::Token { jti: claims.jti.clone() },
        expires_at: claims.exp,
    };
    state.store.add_revocation(&entry, state.now()).await.map_err(|e| {
        tracing::warn!(error = %e, "could not store a revocation");
        OAuthFailure::unavailable()
    })?;
    if let Err(e) = sync_now(state).await {
        tracing::warn!(error = %e, "could not refresh caches after a revocation");
    }
    tracing::info!(client_id = %claims.client_id, by = %caller_cred.client_id(), "token revoked");
    state.audit.record(
        crate::audit::AuditEvent::new(crate::audit::AuditKind::TokenRevoked)
            .org(claims.org.clone())
            .client(tokenmint_core::PresentedClientId::parse(&claims.client_id))
            .actor(format!("credential:{}", caller_cred.client_id()))
            .ip(ip)
            .details(serde_json::json!({"jti": claims.jti})),
        state.now(),
    );
    Ok(())
}
