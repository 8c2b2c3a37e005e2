//! `/admin/v1/revocations`: the revocation feed that gateways and verifiers follow, polled or
//! streamed as server-sent events (see `tokenmint_proto::feed`).

use super::Bearer;
use crate::error::ApiError;
use crate::extract::QueryParams;
use crate::extract::authenticate_bearer;
use crate::service::{self, Action, Target};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::StreamExt as _;
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokenmint_proto::Problem;
use tokenmint_proto::feed::{RevocationEntry, RevocationEvent, RevocationPage, SSE_EVENT};
use tokenmint_proto::limits::REVOCATIONS_PAGE;
use tokio_stream::wrappers::BroadcastStream;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// Return entries after this cursor (0: every live entry).
    #[param(minimum = 0)]
    pub after: Option<i64>,
    #[param(schema_with = revocations_limit)]
    pub limit: Option<u32>,
}

fn revocations_limit() -> utoipa::openapi::Object {
    tokenmint_proto::openapi::page_size(REVOCATIONS_PAGE, "Page size")
}

impl FeedQuery {
    /// The cursor (0 when none) and the page size, each refused when out of range, as the
    /// document's `minimum` and `maximum` say, rather than cut down.
    fn checked(&self) -> Result<(Option<i64>, u32), ApiError> {
        if let Some(after) = self.after
            && after < 0
        {
            return Err(ApiError::validation(
                "after",
                format!("after is a cursor, 0 or more, not {after}"),
            ));
        }
        Ok((self.after, service::page_size("limit", self.limit, REVOCATIONS_PAGE)?))
    }
}

#[utoipa::path(get, path = "/admin/v1/revocations", tag = "revocations", params(FeedQuery),
    responses(
        (status = 200, description = "Live entries after the cursor", body = RevocationPage),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs tokenmint:revocations", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: after below 0, limit out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_revocations(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    QueryParams(q): QueryParams<FeedQuery>,
) -> Result<Json<RevocationPage>, ApiError> {
    service::authorize(&caller.actor, Action::FollowRevocations, &Target::Platform, "feed")?;
    let (after, limit) = q.checked()?;
    let after = after.unwrap_or(0);
    let entries = state.store.list_revocations(after, limit, state.now()).await?;
    let next_cursor = entries.last().map_or(after, |e| e.cursor);
    Ok(Json(RevocationPage { entries, next_cursor }))
}

/// Whether the caller of a stream (its request's `Authorization`) would still be let in: the
/// same authentication and policy question the stream was opened with.
async fn still_following(state: &AppState, headers: &HeaderMap) -> bool {
    match authenticate_bearer(state, headers).await {
        Ok(caller) => {
            service::authorize(&caller.actor, Action::FollowRevocations, &Target::Platform, "feed")
                .is_ok()
        }
        Err(_) => false,
    }
}

fn event(e: &RevocationEntry) -> Event {
    Event::default()
        .event(SSE_EVENT)
        .id(e.cursor.to_string())
        .data(serde_json::to_string(e).unwrap_or_default())
}

#[utoipa::path(get, path = "/admin/v1/revocations/stream", tag = "revocations", params(FeedQuery),
    responses(
        (status = 200, description = "A text/event-stream of entries; resume with Last-Event-ID", content_type = "text/event-stream", body = RevocationEvent),
        (status = 401, description = "No or invalid token", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Needs tokenmint:revocations", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: after below 0, limit out of range", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn stream_revocations(
    State(state): State<AppState>,
    Bearer(caller): Bearer,
    headers: HeaderMap,
    QueryParams(q): QueryParams<FeedQuery>,
) -> Result<Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>>, ApiError> {
    service::authorize(&caller.actor, Action::FollowRevocations, &Target::Platform, "feed")?;
    // The stream's backlog is read in one page of the largest size; `limit` is checked all
    // the same, so that a value the document refuses is refused here too.
    let (after, _) = q.checked()?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let after = resume.or(after).unwrap_or(0).max(0);
    // Subscribe before reading the backlog, so nothing committed in between is missed; the
    // cursor filter below drops what both deliver.
    let live = BroadcastStream::new(state.revocations.subscribe());
    let now = state.now();
    let backlog = state.store.list_revocations(after, REVOCATIONS_PAGE.max, now).await?;
    let mut last = backlog.last().map_or(after, |e| e.cursor);
    let backlog_events: Vec<Result<Event, Infallible>> =
        backlog.iter().map(|e| Ok(event(e))).collect();
    // A lagging reader is cut off (it reconnects with its cursor) rather than silently skipped.
    let live = tokio_stream::StreamExt::map_while(live, |r| r.ok()).filter_map(move |e| {
        let fresh = e.cursor > last;
        if fresh {
            last = e.cursor;
        }
        std::future::ready(fresh.then_some(e))
    });
    // The caller is asked for again before each new entry, as a poll would ask: a stream whose
    // credential was deactivated, lost `tokenmint:revocations` or had its tokens revoked ends
    // at the next entry instead of delivering the feed until its token expires. (Every such
    // change is itself an entry, so none can pass unnoticed between two checks.)
    let headers = std::sync::Arc::new(headers);
    let live = live
        .then(move |e| {
            let (state, headers) = (state.clone(), headers.clone());
            async move { still_following(&state, &headers).await.then_some(e) }
        })
        .take_while(|e| std::future::ready(e.is_some()))
        .filter_map(|e| std::future::ready(e.map(|e| Ok(event(&e)))));
    // The stream ends when the caller's token expires; it reconnects with a fresh one.
    let remaining = u64::try_from(caller.claims.exp - now).unwrap_or(0);
    let stream = futures_util::stream::iter(backlog_events)
        .chain(live)
        .take_until(tokio::time::sleep(Duration::from_secs(remaining)));
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("keep-alive")))
}
