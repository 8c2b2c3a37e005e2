//! Bearer authorization for the admin API and the revocation feed, with tokens this server
//! issued.
//!
//! The checks are the ones any resource server makes (signature by a published key, issuer,
//! expiry, revocation), plus one only the issuer can make cheaply: the credential must still
//! exist, be active and still hold the scope, so that removing admin rights takes effect at
//! once and not when the token expires.

use crate::error::ApiError;
use crate::service::Actor;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use std::borrow::Cow;
use tokenmint_core::credential::CredentialStatus;
use tokenmint_core::jwt;
use tokenmint_proto::{AccessTokenClaims, system_scopes};

/// An authorized caller of a Bearer-protected endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessTokenClaims,
    pub actor: Actor,
}

fn invalid(description: &'static str) -> ApiError {
    ApiError::Unauthorized { error: Some("invalid_token"), description: Cow::Borrowed(description) }
}

/// Verifies a token issued by this server: signature, issuer, expiry and revocation.
pub async fn verify_own_token(
    state: &AppState,
    token: &str,
) -> Result<AccessTokenClaims, ApiError> {
    let keys = state.keys.load();
    let claims = jwt::decode(token, &keys.public_keys)
        .map_err(|_| invalid("the access token is invalid"))?;
    let now = state.now();
    if claims.iss != state.issuer {
        return Err(invalid("the access token was issued by another server"));
    }
    if claims.exp <= now {
        return Err(invalid("the access token has expired"));
    }
    if state.revocations.is_token_revoked(&claims.jti) {
        return Err(invalid("the access token has been revoked"));
    }
    let cached = state
        .credentials
        .get(state.store.as_ref(), &claims.client_id)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| invalid("the access token's client no longer exists"))?;
    let c = &cached.credential;
    if c.status != CredentialStatus::Active || c.is_expired(now) || c.revokes_issued_at(claims.iat)
    {
        return Err(invalid("the access token has been revoked"));
    }
    Ok(claims)
}

/// Authorizes a request that needs one of `scopes` (any of them).
pub async fn authorize_bearer(
    state: &AppState,
    headers: &HeaderMap,
    scopes: &[&'static str],
) -> Result<Caller, ApiError> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    let token = match value.and_then(|v| v.split_once(' ')) {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => {
            return Err(ApiError::Unauthorized {
                error: None,
                description: Cow::Borrowed(
                    "send an access token: Authorization: Bearer <token> (get one from the token endpoint \
                     with an admin credential)",
                ),
            });
        }
    };
    let claims = verify_own_token(state, token).await?;
    let cached = state.credentials.peek(&claims.client_id).flatten();
    let still_granted =
        |s: &str| cached.as_ref().is_some_and(|c| c.credential.permissions.allows_scope(s));
    let Some(_) = scopes.iter().find(|s| claims.has_scope(s) && still_granted(s)) else {
        let needed = scopes.first().copied().unwrap_or(system_scopes::ADMIN);
        return Err(ApiError::Forbidden { scope: Cow::Borrowed(needed) });
    };
    let actor = if claims.has_scope(system_scopes::ADMIN) && still_granted(system_scopes::ADMIN) {
        Actor::Platform { principal: format!("credential:{}", claims.client_id) }
    } else {
        Actor::OrgViewer {
            principal: format!("credential:{}", claims.client_id),
            org: claims.org.clone(),
        }
    };
    Ok(Caller { claims, actor })
}
