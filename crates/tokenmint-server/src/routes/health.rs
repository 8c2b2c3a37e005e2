//! Liveness, Prometheus metrics and the not-found answer.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Liveness: the process answers and its database does.
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({"status": "ok", "database": state.store.backend()})),
        )
            .into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"status": "degraded", "database": "unavailable"})),
            )
                .into_response()
        }
    }
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
