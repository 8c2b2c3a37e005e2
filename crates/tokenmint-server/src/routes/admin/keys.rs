//! `/admin/v1/keys`: list, rotate, withdraw signing keys.

use super::Bearer;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::keyring::new_key_record;
use crate::service::{self, Action, Target, instant};
use crate::state::AppState;
use crate::sync::sync_now;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tokenmint_core::keys::{self, SigningAlgorithm, UNPUBLISH_GRACE_SECS};
use tokenmint_proto::Problem;
use tokenmint_proto::admin::{self as dto, KeyState};
use tokenmint_proto::feed::Revocation;
use tokenmint_proto::limits::KEY_PROPAGATION_MAX_SECS;
use tokenmint_store::NewRevocation;

/// The keys that are still published (or pending), with their lifecycle.
pub async fn key_views(state: &AppState) -> Result<Vec<dto::SigningKey>, ApiError> {
    let records = state.store.list_keys().await?;
    let statuses =
        keys::lifecycle(&records, state.now(), i64::from(state.config.max_token_lifetime));
    Ok(statuses
        .iter()
        .filter_map(|s| {
            let r = records.iter().find(|r| r.kid == s.kid)?;
            Some(dto::SigningKey {
                kid: r.kid.clone(),
                alg: r.alg.as_str().to_owned(),
                state: s.state,
                created_at: instant(r.created_at),
                activates_at: instant(r.activates_at),
                retired_at: s.retired_at.map(instant),
                unpublish_at: s.unpublish_at.map(instant),
            })
        })
        .collect())
}

#[utoipa::path(get, path = "/admin/v1/keys", tag = "keys",
    responses(
        (status = 200, description = "Published and pending keys", body = Vec<dto::SigningKey>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<Vec<dto::SigningKey>>, ApiError> {
    service::authorize(&caller.actor, Action::ReadKeys, &Target::Platform, "signing key")?;
    Ok(Json(key_views(&state).await?))
}

/// Creates a key that starts signing after `propagation` seconds, unless one is pending.
/// `actor` is `None` for the scheduled rotation.
pub async fn schedule_new_key(
    state: &AppState,
    alg: SigningAlgorithm,
    propagation: u64,
    actor: Option<&service::Actor>,
) -> Result<Option<String>, ApiError> {
    let now = state.now();
    let master = state.config.master_key.clone();
    let activates_at = now + i64::try_from(propagation).unwrap_or(i64::MAX / 2);
    // RSA key generation takes tens of milliseconds: keep it off the async workers.
    let record =
        tokio::task::spawn_blocking(move || new_key_record(&master, alg, now, activates_at))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
    let kid = record.kid.clone();
    let guard = match actor {
        Some(a) => service::guard(state, a, false),
        None => tokenmint_store::Guard::system(now),
    };
    if !state.store.insert_key(&record, Some(now), &guard).await? {
        return Ok(None);
    }
    if let Err(e) = sync_now(state).await {
        tracing::warn!(error = %e, "could not reload keys after a rotation");
    }
    tracing::info!(kid = %kid, alg = %alg, activates_at, "signing key created");
    state.audit.record(
        crate::audit::AuditEvent::new(crate::audit::AuditKind::KeyRotated)
            .actor(actor.map_or_else(|| "system".to_owned(), service::Actor::principal))
            .details(
                serde_json::json!({"kid": kid, "alg": alg.as_str(), "activates_at": activates_at}),
            ),
        now,
    );
    Ok(Some(kid))
}

#[utoipa::path(post, path = "/admin/v1/keys/rotate", tag = "keys",
    request_body = dto::RotateKey,
    responses(
        (status = 201, description = "The keys after the rotation; the new one is pending", body = Vec<dto::SigningKey>),
        (status = 400, description = "Malformed body", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "A new key is already pending", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid field", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn rotate_key(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    JsonBody(input): JsonBody<dto::RotateKey>,
) -> Result<Response, ApiError> {
    service::authorize(&caller.actor, Action::RotateKey, &Target::Platform, "signing key")?;
    let alg = match input.alg.as_deref() {
        Some(a) => {
            a.parse::<SigningAlgorithm>().map_err(|e| ApiError::validation("alg", e.to_string()))?
        }
        None => state.config.signing_alg,
    };
    let propagation = input.propagation_seconds.unwrap_or(state.config.key_propagation.as_secs());
    if propagation > KEY_PROPAGATION_MAX_SECS {
        return Err(ApiError::validation(
            "propagation_seconds",
            format!("at most {KEY_PROPAGATION_MAX_SECS} seconds (30 days)"),
        ));
    }
    if schedule_new_key(&state, alg, propagation, Some(&caller.actor)).await?.is_none() {
        return Err(ApiError::Conflict(
            "a new signing key is already pending; it activates on its own (see GET /admin/v1/keys)".into(),
        ));
    }
    Ok((StatusCode::CREATED, Json(key_views(&state).await?)).into_response())
}

#[utoipa::path(post, path = "/admin/v1/keys/{kid}/withdraw", tag = "keys",
    params(("kid" = String, Path, description = "The key id")),
    responses(
        (status = 200, description = "Withdrawn: unpublished, and its tokens refused", body = Vec<dto::SigningKey>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn withdraw_key(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(kid): Path<String>,
) -> Result<Json<Vec<dto::SigningKey>>, ApiError> {
    service::authorize(&caller.actor, Action::WithdrawKey, &Target::Platform, "signing key")?;
    let views = key_views(&state).await?;
    let target =
        views.iter().find(|k| k.kid == kid).ok_or_else(|| ApiError::not_found("signing key"))?;
    if target.state == KeyState::Active {
        // Something must sign once the active key is gone: a new key, at once.
        let alg = target.alg.parse::<SigningAlgorithm>().unwrap_or(state.config.signing_alg);
        let now = state.now();
        let master = state.config.master_key.clone();
        let record = tokio::task::spawn_blocking(move || new_key_record(&master, alg, now, now))
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        state
            .store
            .insert_key(&record, None, &service::guard(&state, &caller.actor, false))
            .await?;
    }
    let now = state.now();
    let revocation = NewRevocation {
        revocation: Revocation::Key { kid: kid.clone() },
        expires_at: now + i64::from(state.config.max_token_lifetime) + UNPUBLISH_GRACE_SECS,
    };
    state
        .store
        .withdraw_key(&kid, &revocation, &service::guard(&state, &caller.actor, false))
        .await?;
    if let Err(e) = sync_now(&state).await {
        tracing::warn!(error = %e, "could not reload keys after a withdrawal");
    }
    tracing::warn!(kid = %kid, "signing key withdrawn");
    state.audit.record(
        crate::audit::AuditEvent::new(crate::audit::AuditKind::KeyWithdrawn)
            .actor(caller.actor.principal())
            .details(serde_json::json!({"kid": kid})),
        now,
    );
    Ok(Json(key_views(&state).await?))
}
