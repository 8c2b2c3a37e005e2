//! The admin REST API: authorization, problem+json errors, the credential lifecycle, and the
//! OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn the_admin_api_needs_a_bearer_token_and_says_so_in_problem_json() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/admin/v1/credentials")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["status"], 401);
    assert!(p["detail"].as_str().unwrap().contains("Authorization: Bearer"));
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn a_partner_token_is_forbidden_and_the_missing_scope_is_named() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["required_scope"], "tokenmint:admin");
}

#[tokio::test]
async fn an_admin_token_stops_working_when_its_credential_is_deactivated() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({"name": "second admin", "org": "platform", "environment": "production", "permissions": ["tokenmint:admin"]}))
        .await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let ok =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    app.admin(Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "", "org": "acme", "environment": "sandbox"}), "name"),
        (json!({"name": "x", "org": "Not A Slug", "environment": "sandbox"}), "org"),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "permissions": ["payroll:read"]}),
            "permissions",
        ),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "token_lifetime_seconds": 5}),
            "token_lifetime_seconds",
        ),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "expires_in_seconds": 0}),
            "expires_in_seconds",
        ),
    ];
    for (body, field) in cases {
        let res = app.admin(Method::POST, "/credentials", Some(body)).await;
        assert_eq!(res.status(), 422);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["field"], field, "{p}");
    }
    // Unknown fields and wrong types are refused, not ignored.
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "x", "org": "acme", "environment": "staging"})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "x", "org": "acme", "environment": "sandbox", "colour": 1})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let token = app.admin_token().await;
    let res = app
        .http
        .post(app.url("/admin/v1/credentials"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn credentials_are_created_listed_shown_updated_and_paged() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "HR sync", "org": "acme", "environment": "production", "permissions": ["eligibility:write"], "expires_in_seconds": 86400})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tmc_"));
    assert!(created["client_secret"].as_str().unwrap().starts_with("tms_"));
    assert_eq!(created["token_endpoint"], app.url("/oauth/token").as_str());
    let c = &created["credential"];
    assert_eq!(c["scopes"], json!(["eligibility:read", "eligibility:write"]));
    assert_eq!(c["status"], "active");
    assert!(c["expires_at"].is_string());
    assert_eq!(c["secrets"].as_array().unwrap().len(), 1);
    assert!(c["secrets"][0]["hint"].as_str().unwrap().ends_with('…'));

    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"name": "HR sync v2", "permissions": ["billing:read"], "never_expires": true, "audiences": ["https://api"]})))
        .await;
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["name"], "HR sync v2");
    assert_eq!(u["permissions"], json!(["billing:read"]));
    assert_eq!(u["expires_at"], Value::Null);
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["name"], "HR sync v2");
    assert!(shown.get("client_secret").is_none());

    for i in 0..3 {
        app.create_credential(
            json!({"name": format!("c{i}"), "org": "paged", "environment": "sandbox"}),
        )
        .await;
    }
    let page: Value =
        app.admin(Method::GET, "/credentials?org=paged&limit=2", None).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .admin(Method::GET, &format!("/credentials?org=paged&limit=2&cursor={cursor}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    // A cursor no listing returned is the caller's mistake: 400, saying what to do.
    let forged = app.admin(Method::GET, "/credentials?org=paged&cursor=not-a-cursor", None).await;
    assert_eq!(forged.status(), 400);
    let problem: Value = forged.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("start again without"), "{problem}");
    let missing = app.admin(Method::GET, "/credentials/tmc_nothing", None).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_secret_can_be_deleted_at_once() {
    let app = spawn_app().await;
    let (id, old) = app.sandbox_reader().await;
    let rotated: Value = app
        .admin(Method::POST, &format!("/credentials/{id}/secrets"), Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    let old_id = shown["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] != rotated["secret"]["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.admin(Method::DELETE, &format!("/credentials/{id}/secrets/{old_id}"), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.token_for(&id, &old, &[]).await.status(), 401);
    app.token(&id, rotated["client_secret"].as_str().unwrap()).await;
}

#[tokio::test]
async fn organizations_are_created_and_conflicts_reported() {
    let app = spawn_app().await;
    let res = app
        .admin(Method::POST, "/organizations", Some(json!({"slug": "acme", "name": "Acme Corp"})))
        .await;
    assert_eq!(res.status(), 201);
    let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await;
    assert_eq!(res.status(), 409);
    let list: Value = app.admin(Method::GET, "/organizations", None).await.json().await.unwrap();
    let slugs: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "platform"]);
    let one: Value =
        app.admin(Method::GET, "/organizations/acme", None).await.json().await.unwrap();
    assert_eq!(one["name"], "Acme Corp");
}

#[tokio::test]
async fn the_openapi_document_is_generated_and_covers_every_admin_route() {
    let app = spawn_app().await;
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/credentials",
        "/admin/v1/credentials/{client_id}",
        "/admin/v1/credentials/{client_id}/secrets",
        "/admin/v1/credentials/{client_id}/deactivate",
        "/admin/v1/keys/rotate",
        "/admin/v1/revocations",
        "/admin/v1/organizations",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["CreateCredential"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let h: Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    let (id, secret) = app.sandbox_reader().await;
    app.token(&id, &secret).await;
    app.token_for(&id, "tms_wrong", &[]).await;
    let m = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("tokenmint_tokens_issued_total{alg=\"ES256\"}"), "{m}");
    assert!(m.contains("tokenmint_token_requests_refused_total{reason=\"wrong_secret\"} 1"), "{m}");
    assert!(m.contains("tokenmint_token_request_seconds_bucket"));
    assert!(m.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn unknown_paths_are_problem_json_404s() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn the_admin_credential_cannot_lock_itself_out() {
    let mut app = spawn_app().await;
    let own = app.admin_id.clone();
    for (method, path) in [
        (Method::POST, format!("/credentials/{own}/deactivate")),
        (Method::POST, format!("/credentials/{own}/revoke-tokens")),
    ] {
        let res = app.admin(method, &path, None).await;
        assert_eq!(res.status(), 409, "{path}");
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("another admin credential"), "{body}");
    }
    // Still working.
    let res = app.admin(Method::GET, "/credentials", None).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}
