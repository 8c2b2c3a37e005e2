//! Bearer authentication for the admin API and the revocation feed, with tokens this server
//! issued.
//!
//! The checks are the ones any resource server makes (signature by a published key, issuer,
//! audience, expiry, revocation), plus one only the issuer can make cheaply: the credential must
//! still exist and be active, and the actor's `tokenmint:*` scopes are those the token carries
//! *and* the credential still holds, so that removing admin rights takes effect at once and not
//! when the token expires. What the caller may then do is the policy's decision
//! ([`crate::service::policy`]), not this module's.

use crate::error::ApiError;
use crate::service::{Actor, SystemScopes};
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use std::borrow::Cow;
use tokenmint_core::credential::CredentialStatus;
use tokenmint_core::jwt;
use tokenmint_proto::AccessTokenClaims;

/// An authenticated caller of a Bearer-protected endpoint.
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
    let c = &cached;
    if c.status() != CredentialStatus::Active
        || c.is_expired(now)
        || c.revokes_token(claims.iat, &claims.jti)
    {
        return Err(invalid("the access token has been revoked"));
    }
    Ok(claims)
}

/// Authenticates the caller of the admin API or the revocation feed.
///
/// The token must be meant for this API, whose audience is the issuer: a token minted for
/// another audience (a resource server's) is a credential's pass to that server, and whoever
/// holds it there must not be able to replay it here.
pub async fn authenticate_bearer(
    state: &AppState,
    headers: &HeaderMap,
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
    // The issuer alone: a token that also names another audience has been (or may be) handed
    // to that resource server, which could replay it here.
    if !claims.aud.contains(&state.issuer) || claims.aud.iter().any(|a| a != state.issuer) {
        return Err(invalid(
            "the access token is for another audience, or for others besides this API; request \
             one with the issuer as its only audience (audience or resource = the issuer) for \
             the admin API",
        ));
    }
    // Loaded by the verification just now: a cache hit.
    let cached = state
        .credentials
        .get(state.store.as_ref(), &claims.client_id)
        .await
        .map_err(ApiError::from)?;
    let still_granted = |s: &str| cached.as_ref().is_some_and(|c| c.permissions().allows_scope(s));
    let scopes = SystemScopes::from_fn(|s| claims.has_scope(s) && still_granted(s));
    let actor = Actor::Credential {
        client_id: claims.client_id.clone(),
        org: claims.org.clone(),
        scopes,
        token: Some((claims.iat, claims.jti.clone())),
    };
    Ok(Caller { claims, actor })
}
