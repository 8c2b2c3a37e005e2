//! Liveness, readiness, Prometheus metrics and the not-found answer.
//!
//! Liveness and readiness are different questions with different consumers. `/healthz` is for
//! a liveness probe (restart the process when it fails): it answers 200 as long as the process
//! serves HTTP, even while the database is away and tokens are served from the cache, because a
//! restart would only throw that cache away. `/readyz` is for a load balancer or a readiness
//! probe (send traffic here or not): it answers 503 when the instance cannot serve token
//! requests: its cache has gone unsynced for longer than `--max-cache-staleness`.
//!
//! A database that does not answer makes the instance `degraded`, not unready: while its cache
//! is fresh it still serves every token request, and the database is shared by all instances,
//! so taking this one out would not send admin writes anywhere better. Answering 503 then made
//! a balancer take every instance out at once and refuse the token requests the caches could
//! serve. A balancer that must route only to fully working instances checks the body's status
//! member, `"status":"ready"` as written (HAProxy `http-check expect string '"status":"ready"'`):
//! a bare `"ready"` is also found in `"not_ready"`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// How long readiness waits for the database: a probe must answer well within its own timeout
/// (one second is the usual default of orchestrators), and a database slower than this is not
/// ready for token traffic either.
const READINESS_DB_TIMEOUT: Duration = Duration::from_millis(800);

fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Liveness: the process answers. Nothing else is consulted, so a database outage never makes
/// an orchestrator kill an instance that is still serving tokens from its cache.
pub async fn healthz(State(_state): State<AppState>) -> Response {
    no_store((StatusCode::OK, axum::Json(serde_json::json!({"status": "ok"}))).into_response())
}

/// Readiness: the cache is fresh enough to trust (200 `ready`, or `degraded` while the database
/// does not answer), else 503 `not_ready`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = match tokio::time::timeout(READINESS_DB_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: database unavailable");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: database did not answer in time");
            false
        }
    };
    let cache = state.cache_is_fresh();
    let body = readiness(cache, database.then(|| state.store.backend()));
    let status = if cache { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    no_store((status, axum::Json(body)).into_response())
}

/// The readiness body: whether the cache is fresh, and the database's backend when it answered.
fn readiness(cache: bool, database: Option<&'static str>) -> serde_json::Value {
    serde_json::json!({
        "status": match (cache, database) {
            (false, _) => "not_ready",
            (true, None) => "degraded",
            (true, Some(_)) => "ready",
        },
        "database": database.unwrap_or("unavailable"),
        "cache": if cache { "fresh" } else { "stale" },
    })
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let (hits, misses) = state.credentials.stats();
    state.metrics.cache_hits.set(hits);
    state.metrics.cache_misses.set(misses);
    let keys = state.keys.load();
    state.metrics.signing_key_age_seconds.set(state.now() - keys.active_since);
    state.metrics.audit_dropped.set(state.audit.dropped());
    state.metrics.audit_write_lag_seconds.set(state.audit.lag(state.now()));
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &state.metrics.registry).is_err() {
        return ApiError::Internal("metrics encoding failed".into()).into_response();
    }
    let mut res = (StatusCode::OK, out).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    res
}

pub async fn not_found() -> Response {
    ApiError::not_found("this path").into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The README's HAProxy check, taken from the README itself, finds the ready body and
    /// neither the degraded nor the not-ready one, as `axum::Json` writes them.
    #[test]
    fn the_readme_balancer_check_matches_only_a_ready_instance() {
        let readme = include_str!("../../../../README.md");
        let (_, rest) = readme.split_once("http-check expect string '").expect("the check");
        let (wanted, _) = rest.split_once('\'').unwrap();
        assert_eq!(wanted, r#""status":"ready""#);
        let body = |cache, database| serde_json::to_string(&readiness(cache, database)).unwrap();
        assert!(body(true, Some("postgres")).contains(wanted));
        assert!(!body(true, None).contains(wanted));
        assert!(!body(false, None).contains(wanted), "{}", body(false, None));
        assert!(!body(false, Some("postgres")).contains(wanted));
    }
}
