//! A small eligibility API protected by tokenmint-verify.
//!
//! ```text
//! TOKENMINT_ISSUER=http://127.0.0.1:8080 \
//! TOKENMINT_AUDIENCE=https://api.example.com \
//! TOKENMINT_FEED_TOKEN="$(tokenmint token --scope tokenmint:revocations ...)" \
//!     cargo run -p tokenmint-verify --example protected_api
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:7000/eligibility
//! ```
//!
//! `GET /eligibility` needs `eligibility:read`, `POST /eligibility` needs `eligibility:write`,
//! `GET /me` any valid token, `GET /report` checks `eligibility:admin` in the handler, and
//! `GET /healthz` is public.

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::error::Error;
use tokenmint_verify::{
    FeedConfig, Rejection, RequireScope, StaticToken, VerifiedToken, Verifier, VerifierConfig,
    VerifyLayer,
};
use tracing_subscriber::EnvFilter;

fn setting(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn list(token: VerifiedToken) -> Json<Value> {
    // Sandbox credentials see sandbox data: the environment comes from the token, not the caller.
    Json(json!({ "org": token.org, "env": token.env, "members": [] }))
}

async fn create(token: VerifiedToken, Json(member): Json<Value>) -> Json<Value> {
    Json(json!({ "created_by": token.client_id, "member": member }))
}

async fn me(token: VerifiedToken) -> Json<Value> {
    Json(json!({
        "client_id": token.client_id,
        "org": token.org,
        "env": token.env,
        "scopes": token.scopes().collect::<Vec<_>>(),
        "expires_at": token.exp,
    }))
}

/// A scope checked inside the handler rather than by a route layer.
async fn report(token: VerifiedToken) -> Result<Json<Value>, Rejection> {
    token.require_scope("eligibility:admin")?;
    Ok(Json(json!({ "org": token.org, "report": "…" })))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        // Colour only on a terminal, and not when NO_COLOR is set (https://no-color.org).
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();

    let mut config = VerifierConfig::new(setting("TOKENMINT_ISSUER", "http://127.0.0.1:8080"));
    if let Ok(audience) = std::env::var("TOKENMINT_AUDIENCE") {
        config = config.with_audience(audience);
    }
    let verifier = Verifier::builder(config).build().await?;

    // The feed needs a token with the tokenmint:revocations scope. A real service would plug
    // the tokenmint-client SDK in as the TokenSource so the token is renewed automatically.
    let _follower = match std::env::var("TOKENMINT_FEED_TOKEN") {
        Ok(token) => {
            let follower =
                verifier.follow_revocations(StaticToken::new(token), FeedConfig::default())?;
            if !follower.wait_synced(std::time::Duration::from_secs(5)).await {
                tracing::warn!("revocation feed not reachable yet; starting anyway");
            }
            Some(follower)
        }
        Err(_) => {
            tracing::warn!("TOKENMINT_FEED_TOKEN not set: revocations will not be followed");
            None
        }
    };

    let app = Router::new()
        .route(
            "/eligibility",
            get(list)
                .post(create)
                .route_layer(RequireScope::read_write("eligibility:read", "eligibility:write")),
        )
        .route("/me", get(me))
        .route("/report", get(report))
        .layer(VerifyLayer::new(verifier))
        // Added after the layer, so it is not behind it.
        .route("/healthz", get(|| async { "ok" }));

    let listen = setting("LISTEN", "127.0.0.1:7000");
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    tracing::info!(%listen, "protected API listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
