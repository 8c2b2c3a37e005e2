//! The set-up the custom-claims benchmarks share: a server with a credential without custom
//! claims and one with five, and a token hook answered from its cache.

#![allow(dead_code)]

use axum::body::Body;
use http::Request;
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Application, Config};
use tokenmint_store::SqlStore;
use tower::ServiceExt;

/// A token hook on a loopback port that allows every token and adds five claims, configured to
/// cache its answers for an hour.
pub async fn cached_hook() -> tokenmint_server::hook::HookConfig {
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async {
            axum::Json(serde_json::json!({"allow": true, "claims": {"tenant_id": "acme-7",
                "plan": "gold", "seats": 40, "regions": ["eu", "uk"],
                "https://example.com/partner": {"tier": 2}}}))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, hook).await.unwrap() });
    let target =
        tokenmint_server::alerts::WebhookTarget::parse(&format!("http://{addr}/hook")).unwrap();
    let mut hook = tokenmint_server::hook::HookConfig::new(target);
    hook.allow_private = true;
    // Signed, as a hook must be unless unsigned calls are chosen; the signature is made per
    // call, which the cache keeps off the measured path.
    hook.secret =
        Some(tokenmint_server::alerts::WebhookSecret("a bench hook signing secret".to_owned()));
    hook.cache_ttl = std::time::Duration::from_secs(3600);
    hook
}

async fn call(router: &axum::Router, req: Request<Body>) -> serde_json::Value {
    let res = router.clone().oneshot(req).await.unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Sends one token request with `body` and returns the response body; panics unless 200.
pub async fn token(router: &axum::Router, body: &str) -> axum::body::Bytes {
    let req = Request::post("/oauth/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let res = router.clone().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    axum::body::to_bytes(res.into_body(), 8192).await.unwrap()
}

/// A server (ES256) and the token request bodies of a credential without custom claims and of
/// one with five; with `hook`, every token request also asks that token hook.
pub async fn claims_app(
    url: &str,
    hook: Option<tokenmint_server::hook::HookConfig>,
) -> (axum::Router, String, String) {
    let mut config = Config::new(url.to_owned(), MasterKey::generate());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.signing_alg = SigningAlgorithm::ES256;
    config.token_rate_limit = 1_000_000_000;
    config.product_areas = ProductAreas::parse(&["eligibility"]).unwrap();
    config.token_hook = hook;
    let store = SqlStore::connect(url, true).await.unwrap();
    let mut app = Application::build(config, Arc::new(store)).await.unwrap();
    let Some(FirstStart::Initialized(admin)) = app.take_first_start() else { panic!() };
    let router = Application::router(app.state().clone());
    let form = |id: &str, secret: &str| {
        format!("grant_type=client_credentials&client_id={id}&client_secret={secret}")
    };
    let admin_form = form(&admin.client_id, &admin.client_secret);
    let token_request = |body: String| {
        Request::post("/oauth/token")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap()
    };
    let admin_token = call(&router, token_request(admin_form.clone())).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bodies = Vec::new();
    for claims in [
        serde_json::json!({}),
        serde_json::json!({"tenant_id": "acme-7", "plan": "gold", "seats": 40,
            "regions": ["eu", "uk"], "https://example.com/partner": {"tier": 2}}),
    ] {
        let create = Request::post("/admin/v1/credentials")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {admin_token}"))
            .body(Body::from(
                serde_json::json!({"name": "bench", "org": "acme", "environment": "production",
                    "permissions": ["eligibility:read"], "claims": claims})
                .to_string(),
            ))
            .unwrap();
        let created = call(&router, create).await;
        bodies.push(form(
            created["client_id"].as_str().unwrap(),
            created["client_secret"].as_str().unwrap(),
        ));
    }
    let five = bodies.pop().unwrap();
    let none = bodies.pop().unwrap();
    (router, none, five)
}
