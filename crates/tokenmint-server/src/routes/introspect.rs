//! RFC 7662 token introspection.
//!
//! The caller authenticates as a client. Who may see which token is the policy's decision
//! ([`crate::service::policy`]): resource servers holding the `tokenmint:introspect` (or admin)
//! scope any token, any other client only its own, so that one partner cannot probe another's
//! tokens. Anything not active for this caller, for whatever reason, is `{"active": false}`
//! (§2.2). `token_type_hint` is never an error (§2.1: the server may ignore it, and with access
//! tokens the only kind issued there is nothing else to search).

use crate::error::OAuthFailure;
use crate::extract::bearer::verify_own_token;
use crate::extract::{authenticate_client, read_params};
use crate::service::{Action, Actor, SystemScopes, Target, policy};
use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tokenmint_core::request;
use tokenmint_proto::{Audience, Environment};

#[derive(Debug, Serialize)]
pub struct Introspection {
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<Audience>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// The token's custom claims (RFC 7662 §2.2 allows further members). Their names can never
    /// be one of the members above: they are reserved claim names.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl Introspection {
    fn inactive() -> Self {
        Self {
            active: false,
            scope: None,
            client_id: None,
            token_type: None,
            exp: None,
            iat: None,
            sub: None,
            aud: None,
            iss: None,
            jti: None,
            env: None,
            org: None,
            extra: serde_json::Map::new(),
        }
    }
}

pub async fn introspect_token(
    State(state): State<AppState>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let ip = crate::extract::client_auth::peer_ip(&parts.extensions);
    match introspect(&state, &parts.headers, body, ip).await {
        Ok(i) => {
            let mut res = Json(i).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(f) => f.into_response(),
    }
}

async fn introspect(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    ip: Option<std::net::IpAddr>,
) -> Result<Introspection, OAuthFailure> {
    let (mut params, basic, format) = read_params(state, headers, body).await?;
    let token = params.token.take();
    let auth = request::client_authentication(&mut params, basic, format)?;
    let caller = authenticate_client(state, &auth, ip).await.map_err(|(reason, f)| {
        state.metrics.refused(reason);
        let refusal = crate::routes::token::Refusal::new(reason, Some(auth.client_id.clone()), f);
        crate::routes::token::audit_refusal(state, "introspect", &refusal, ip);
        refusal.failure
    })?;
    let Some(token) = token else {
        return Err(OAuthFailure::new(
            tokenmint_proto::OAuthErrorCode::InvalidRequest,
            "the token parameter is required",
        ));
    };
    let Ok(claims) = verify_own_token(state, &token).await else {
        return Ok(Introspection::inactive());
    };
    let target = Target::Token { client_id: &claims.client_id, org: &claims.org };
    if policy::may(&client_actor(&caller.credential), Action::IntrospectToken, &target).is_err() {
        return Ok(Introspection::inactive());
    }
    Ok(Introspection {
        active: true,
        scope: Some(claims.scope),
        client_id: Some(claims.client_id),
        token_type: Some("Bearer"),
        exp: Some(claims.exp),
        iat: Some(claims.iat),
        sub: Some(claims.sub),
        aud: Some(claims.aud),
        iss: Some(claims.iss),
        jti: Some(claims.jti),
        env: Some(claims.env),
        org: Some(claims.org),
        extra: claims.extra,
    })
}

/// A client authenticated with its secret, as the policy sees it: its system scopes are the
/// ones its credential grants.
pub fn client_actor(c: &crate::cache::CachedCredential) -> Actor {
    Actor::Credential {
        client_id: String::from(c.client_id()),
        org: c.org().to_owned(),
        scopes: SystemScopes::from_fn(|s| c.permissions().has_system(s)),
        token: None,
    }
}
