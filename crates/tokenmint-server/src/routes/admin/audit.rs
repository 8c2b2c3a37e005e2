//! `/admin/v1/audit`, `/admin/v1/alerts` and a credential's activity.

use super::Bearer;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::service::{self, Action, Target, instant};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use time::OffsetDateTime;
use tokenmint_proto::Problem;
use tokenmint_proto::admin as dto;
use tokenmint_proto::limits::{ACTIVITY_DAYS, AUDIT_PAGE};
use tokenmint_store::{AuditFilter, AuditRecord};
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub org: Option<String>,
    pub client_id: Option<String>,
    /// An event kind such as `token.refused`.
    pub kind: Option<String>,
    /// Events at or after this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<OffsetDateTime>,
    /// Events at or before this instant (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<OffsetDateTime>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    #[param(schema_with = audit_limit)]
    pub limit: Option<u32>,
}

fn audit_limit() -> utoipa::openapi::Object {
    tokenmint_proto::openapi::page_size(AUDIT_PAGE, "Page size")
}

pub fn event_view(r: &AuditRecord) -> dto::AuditEvent {
    dto::AuditEvent {
        seq: r.seq,
        at: instant(r.at),
        kind: r.kind.clone(),
        org: r.org.clone(),
        client_id: r.client_id.clone(),
        actor: r.actor.clone(),
        source_ip: r.source_ip.clone(),
        reason: r.reason.clone(),
        details: r.details.clone(),
    }
}

#[utoipa::path(get, path = "/admin/v1/audit", tag = "audit", params(AuditQuery),
    responses(
        (status = 200, description = "Audit events, oldest first", body = dto::Page<dto::AuditEvent>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_audit(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<dto::Page<dto::AuditEvent>>, ApiError> {
    let after = match q.cursor.as_deref() {
        Some(c) => Some(c.parse::<i64>().map_err(|_| {
            ApiError::validation("cursor", "the cursor is invalid; start again without it")
        })?),
        None => None,
    };
    // A filter that can match nothing because it is misspelt is refused, rather than answered
    // with an empty trail that reads as "nothing happened".
    if let Some(kind) = q.kind.as_deref()
        && crate::audit::AuditKind::named(kind).is_none()
    {
        let known: Vec<&str> = crate::audit::AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        return Err(ApiError::validation(
            "kind",
            format!(
                "there is no event kind '{}': use one of {}",
                tokenmint_core::SafeText::new(kind),
                known.join(", ")
            ),
        ));
    }
    let org = service::list_scope(&caller.actor, Action::ReadAudit, q.org)?;
    let limit = service::page_size("limit", q.limit, AUDIT_PAGE)?;
    let filter = AuditFilter {
        org,
        client_id: q.client_id,
        kind: q.kind,
        since: q.since.map(OffsetDateTime::unix_timestamp),
        until: q.until.map(OffsetDateTime::unix_timestamp),
        after,
        limit: limit + 1,
        ..Default::default()
    };
    let mut records = state.store.list_audit(&filter).await?;
    let next_cursor = if records.len() > limit as usize {
        records.truncate(limit as usize);
        records.last().map(|r| r.seq.to_string())
    } else {
        None
    };
    Ok(Json(dto::Page { items: records.iter().map(event_view).collect(), next_cursor }))
}

#[utoipa::path(get, path = "/admin/v1/alerts", tag = "audit",
    responses(
        (status = 200, description = "Recent alert deliveries, newest first; undelivered ones are the dead letters", body = Vec<dto::AlertDelivery>),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_alerts(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
) -> Result<Json<Vec<dto::AlertDelivery>>, ApiError> {
    service::authorize(&caller.actor, Action::ReadAlerts, &Target::Platform, "alert")?;
    let list = state.store.list_alert_deliveries(200).await?;
    Ok(Json(
        list.into_iter()
            .map(|d| dto::AlertDelivery {
                id: d.id,
                at: instant(d.at),
                kind: d.kind,
                target: d.target,
                attempts: d.attempts,
                delivered: d.delivered,
                last_error: d.last_error,
                payload: d.payload,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    #[param(schema_with = activity_days)]
    pub days: Option<u32>,
}

fn activity_days() -> utoipa::openapi::Object {
    tokenmint_proto::openapi::page_size(ACTIVITY_DAYS, "Days of history")
}

/// A credential's tokens per day and recent failures (used by the portal, too).
pub async fn activity(
    state: &AppState,
    client_id: &str,
    days: u32,
    now: i64,
) -> Result<dto::CredentialActivity, ApiError> {
    // Callers pass a checked number (`service::page_size`); the clamp only keeps the
    // arithmetic below in bounds.
    let days = i64::from(days.clamp(1, ACTIVITY_DAYS.max));
    let today = now - now.rem_euclid(86_400);
    let start = today - (days - 1) * 86_400;
    let counts = state.store.token_counts(client_id, start).await?;
    let mut per_day = vec![0i64; usize::try_from(days).unwrap_or(14)];
    for (minute, count) in counts {
        if let Ok(i) = usize::try_from((minute - start) / 86_400)
            && let Some(slot) = per_day.get_mut(i)
        {
            *slot += count;
        }
    }
    let tokens_per_day = per_day
        .into_iter()
        .enumerate()
        .map(|(i, tokens)| {
            let day = instant(start + i as i64 * 86_400).date();
            dto::DailyCount { day: day.to_string(), tokens }
        })
        .collect();
    let mut failures = state
        .store
        .list_audit(&AuditFilter {
            client_id: Some(client_id.to_owned()),
            kind: Some(crate::audit::AuditKind::TokenRefused.as_str().to_owned()),
            since: Some(start),
            limit: 10_000,
            ..Default::default()
        })
        .await?;
    failures.reverse();
    failures.truncate(20);
    Ok(dto::CredentialActivity {
        client_id: client_id.to_owned(),
        tokens_per_day,
        recent_failures: failures.iter().map(event_view).collect(),
    })
}

#[utoipa::path(get, path = "/admin/v1/credentials/{client_id}/activity", tag = "credentials",
    params(("client_id" = String, Path, description = "The credential's client_id"), ActivityQuery),
    responses(
        (status = 200, description = "Tokens per day and recent refused requests", body = dto::CredentialActivity),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such credential", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: days out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn show_activity(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    Path(client_id): Path<String>,
    QueryParams(q): QueryParams<ActivityQuery>,
) -> Result<Json<dto::CredentialActivity>, ApiError> {
    service::get_credential(&state, &caller.actor, &client_id).await?;
    let days = service::page_size("days", q.days, ACTIVITY_DAYS)?;
    Ok(Json(activity(&state, &client_id, days, state.now()).await?))
}
