//! The token endpoint over HTTP: every seed provider's dialect and every error case.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::{Options, claims, header, spawn_app, spawn_with};
use serde_json::{Value, json};

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
    )
}

async fn assert_token_response(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["pragma"], "no-cache");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 0);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(header(token)["typ"], "at+jwt");
    assert!(header(token)["kid"].is_string());
    body
}

async fn assert_oauth_error(res: reqwest::Response, status: u16, error: &str) -> Value {
    assert_eq!(res.status(), status);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert!(body["error_description"].as_str().is_some_and(|d| !d.is_empty()));
    body
}

#[tokio::test]
async fn wellhub_form_post_with_body_credentials_gets_a_one_hour_token() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("client_id={id}&client_secret={secret}&grant_type=client_credentials"))
        .send()
        .await
        .unwrap();
    let body = assert_token_response(res).await;
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "eligibility:read");
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["sub"], id.as_str());
    assert_eq!(c["client_id"], id.as_str());
    assert_eq!(c["env"], "sandbox");
    assert_eq!(c["org"], "acme");
    assert_eq!(c["iss"], app.base.as_str());
    assert_eq!(c["aud"], app.base.as_str());
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 3600);
    assert!(c["jti"].as_str().unwrap().len() >= 20);
}

#[tokio::test]
async fn wex_form_post_on_authorize_gets_a_ten_minute_token() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "benefits", "org": "wex-partner", "environment": "production",
            "permissions": ["billing:write"], "token_lifetime_seconds": 600,
        }))
        .await;
    let res = app
        .form(
            "/authorize",
            &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    let body = assert_token_response(res).await;
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["scope"], "billing:read billing:write");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["env"], "production");
}

#[tokio::test]
async fn wealthyhood_json_body_with_audience_gets_that_audience_and_a_scope() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "investing", "org": "fintech", "environment": "sandbox",
            "permissions": ["eligibility:read"], "audiences": ["https://api.sandbox.wealthyhood.com", "https://other"],
        }))
        .await;
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .json(&json!({
            "grant_type": "client_credentials", "audience": "https://api.sandbox.wealthyhood.com",
            "client_id": id, "client_secret": secret,
        }))
        .send()
        .await
        .unwrap();
    let body = assert_token_response(res).await;
    assert_eq!(body["scope"], "eligibility:read");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        "https://api.sandbox.wealthyhood.com"
    );
}

#[tokio::test]
async fn healthhero_form_post_on_connect_token_gets_a_jwt() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let res = app
        .form(
            "/connect/token",
            &[("grant_type", "client_credentials"), ("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    let body = assert_token_response(res).await;
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn candid_json_and_form_bodies_without_grant_type_get_tokens_when_allowed() {
    let app = spawn_with(Options { allow_missing_grant_type: true, ..Options::default() }).await;
    let (id, secret) = app.sandbox_reader().await;
    let res = app
        .http
        .post(app.url("/api/auth/v2/token"))
        .json(&json!({"client_id": id, "client_secret": secret}))
        .send()
        .await
        .unwrap();
    assert_token_response(res).await;
    let res =
        app.form("/api/auth/v2/token", &[("client_id", &id), ("client_secret", &secret)]).await;
    assert_token_response(res).await;
    let res = app
        .http
        .post(app.url("/api/auth/v2/token"))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 415, "invalid_request").await;
}

#[tokio::test]
async fn http_basic_authentication_works_and_its_failure_carries_a_basic_challenge() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&id, &secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_token_response(res).await;
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&id, "tms_wrong"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn wrong_secret_unknown_client_and_missing_credentials_are_invalid_client_alike() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let wrong =
        assert_oauth_error(app.token_for(&id, "tms_nope", &[]).await, 401, "invalid_client").await;
    let unknown = assert_oauth_error(
        app.token_for("tmc_unknown", "tms_nope", &[]).await,
        401,
        "invalid_client",
    )
    .await;
    assert_eq!(wrong, unknown, "the answers must not tell an unknown client from a wrong secret");
    let res =
        app.form("/oauth/token", &[("grant_type", "client_credentials"), ("client_id", &id)]).await;
    assert_oauth_error(res, 401, "invalid_client").await;
}

#[tokio::test]
async fn malformed_requests_get_the_rfc_6749_error_they_deserve() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    // No grant_type, where the dialect requires one.
    let res = app.form("/oauth/token", &[("client_id", &id), ("client_secret", &secret)]).await;
    assert_oauth_error(res, 400, "invalid_request").await;
    // Another grant.
    let res = app
        .form(
            "/oauth/token",
            &[("grant_type", "password"), ("client_id", &id), ("client_secret", &secret)],
        )
        .await;
    assert_oauth_error(res, 400, "unsupported_grant_type").await;
    // Basic and body credentials at once.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("authorization", basic(&id, &secret))
        .form(&[("grant_type", "client_credentials"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // A repeated parameter.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=client_credentials&client_id={id}&client_id={id}&client_secret={secret}"
        ))
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // Broken JSON.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 400, "invalid_request").await;
    // No content type, and an unsupported one.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 415, "invalid_request").await;
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/xml")
        .body("<x/>")
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 415, "invalid_request").await;
    // Too large.
    let big = format!("grant_type=client_credentials&pad={}", "a".repeat(64 * 1024));
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_oauth_error(res, 413, "invalid_request").await;
}

#[tokio::test]
async fn scope_subsets_are_granted_and_scopes_beyond_the_permissions_are_invalid_scope() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "both", "org": "acme", "environment": "production",
            "permissions": ["eligibility:write", "billing:read"],
        }))
        .await;
    let all = app.token(&id, &secret).await;
    assert_eq!(all["scope"], "billing:read eligibility:read eligibility:write");
    let res = app.token_for(&id, &secret, &[("scope", "eligibility:read")]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["scope"], "eligibility:read");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["scope"], "eligibility:read");
    let res = app.token_for(&id, &secret, &[("scope", "billing:write")]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
    let res = app.token_for(&id, &secret, &[("scope", "tokenmint:admin")]).await;
    assert_oauth_error(res, 400, "invalid_scope").await;
}

#[tokio::test]
async fn audiences_are_checked_against_the_credential() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "aud", "org": "acme", "environment": "production", "audiences": ["https://a", "https://b"],
        }))
        .await;
    let body = app.token(&id, &secret).await;
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        json!(["https://a", "https://b"])
    );
    let res = app.token_for(&id, &secret, &[("resource", "https://b")]).await;
    let body: Value = res.json().await.unwrap();
    assert_eq!(claims(body["access_token"].as_str().unwrap())["aud"], "https://b");
    let res = app.token_for(&id, &secret, &[("audience", "https://evil")]).await;
    assert_oauth_error(res, 400, "invalid_target").await;
}

#[tokio::test]
async fn deactivation_takes_effect_on_the_next_request() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    app.token(&id, &secret).await;
    let res =
        app.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    assert_eq!(res.status(), 200);
    assert_oauth_error(app.token_for(&id, &secret, &[]).await, 401, "invalid_client").await;
    let res = app.admin(reqwest::Method::POST, &format!("/credentials/{id}/activate"), None).await;
    assert_eq!(res.status(), 200);
    app.token(&id, &secret).await;
}

#[tokio::test]
async fn credential_expiry_takes_effect_at_the_instant_it_passes() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({"name": "short", "org": "acme", "environment": "sandbox", "expires_in_seconds": 120}))
        .await;
    let body = app.token(&id, &secret).await;
    // The token does not outlive its credential.
    assert_eq!(body["expires_in"], 120);
    app.clock.advance(119);
    app.token(&id, &secret).await;
    app.clock.advance(1);
    assert_oauth_error(app.token_for(&id, &secret, &[]).await, 401, "invalid_client").await;
}

#[tokio::test]
async fn rotation_keeps_both_secrets_working_for_the_overlap_then_only_the_new_one() {
    let app = spawn_app().await;
    let (id, old) = app.sandbox_reader().await;
    let res = app
        .admin(
            reqwest::Method::POST,
            &format!("/credentials/{id}/secrets"),
            Some(json!({"overlap_seconds": 300})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let rotated: Value = res.json().await.unwrap();
    let new = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    app.token(&id, &old).await;
    app.token(&id, &new).await;
    app.clock.advance(300);
    assert_oauth_error(app.token_for(&id, &old, &[]).await, 401, "invalid_client").await;
    app.token(&id, &new).await;
    // The secret is never shown again.
    let shown = app
        .admin(reqwest::Method::GET, &format!("/credentials/{id}"), None)
        .await
        .text()
        .await
        .unwrap();
    assert!(!shown.contains(&new) && !shown.contains(&old));
}

#[tokio::test]
async fn the_101st_token_request_in_a_minute_is_refused_with_retry_after_and_others_are_unaffected()
{
    let app = spawn_with(Options { token_rate_limit: 100, ..Options::default() }).await;
    let (id, secret) = app.sandbox_reader().await;
    let (other, other_secret) = app.sandbox_reader().await;
    for i in 0..100 {
        let res = app.token_for(&id, &secret, &[]).await;
        assert_eq!(res.status(), 200, "request {i}");
        assert!(res.headers().contains_key("ratelimit"));
        assert_eq!(res.headers()["ratelimit-policy"], "\"token-requests\";q=100;w=60");
    }
    let res = app.token_for(&id, &secret, &[]).await;
    assert_eq!(res.status(), 429);
    // The server's clock stands still, however slowly the 100 requests went: 100 a minute
    // refill one every 0.6 s, announced as 1 s.
    assert_eq!(res.headers()["retry-after"], "1");
    let body: Value = res.json().await.unwrap();
    assert!(body["error_description"].as_str().unwrap().contains("Retry-After"));
    app.token(&other, &other_secret).await;

    // A second later one more request is admitted (1 s refills 1.67 requests), and the next is not.
    app.clock.advance(1);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 200);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
}

#[tokio::test]
async fn a_per_credential_limit_overrides_the_default() {
    let app = spawn_with(Options { token_rate_limit: 100, ..Options::default() }).await;
    let (id, secret) = app
        .create_credential(json!({"name": "tight", "org": "acme", "environment": "sandbox", "rate_limit_per_minute": 2}))
        .await;
    app.token(&id, &secret).await;
    app.token(&id, &secret).await;
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
}

#[tokio::test]
async fn editing_a_credential_hands_its_client_no_fresh_burst() {
    let app = spawn_with(Options { token_rate_limit: 100, ..Options::default() }).await;
    let (id, secret) = app
        .create_credential(json!({"name": "tight", "org": "acme", "environment": "sandbox", "rate_limit_per_minute": 2}))
        .await;
    app.token(&id, &secret).await;
    app.token(&id, &secret).await;
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
    // Each edit drops the cached credential; the next request reads it again.
    let path = format!("/credentials/{id}");
    for name in ["renamed", "renamed again"] {
        let res = app.admin(reqwest::Method::PATCH, &path, Some(json!({"name": name}))).await;
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429, "after {name}");
    }
    // Not even an edit of the limit: what was spent stays spent (a new bucket would admit
    // three at once); the new limit refills at its own rate, one every 20 s.
    let res =
        app.admin(reqwest::Method::PATCH, &path, Some(json!({"rate_limit_per_minute": 3}))).await;
    assert_eq!(res.status(), 200);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
    app.clock.advance(20);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 200);
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
}

#[tokio::test]
async fn other_methods_on_the_token_path_are_refused() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/oauth/token")).send().await.unwrap();
    assert_eq!(res.status(), 405);
}

/// A client secret sent in the wrong parameter (scope, audience, resource, grant_type) is not
/// echoed in the error description; the description says a secret was sent there.
#[tokio::test]
async fn a_secret_sent_as_another_parameter_is_not_echoed_in_the_error() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let cases = [
        ("scope", "invalid_scope"),
        ("audience", "invalid_target"),
        ("resource", "invalid_target"),
        ("grant_type", "unsupported_grant_type"),
    ];
    for (param, error) in cases {
        for sent in [secret.clone(), secret[4..].to_owned()] {
            let mut fields = vec![("client_id", id.as_str()), ("client_secret", secret.as_str())];
            if param != "grant_type" {
                fields.push(("grant_type", "client_credentials"));
            }
            let resource;
            if param == "resource" {
                resource = format!("https://{sent}.example");
                fields.push((param, resource.as_str()));
            } else {
                fields.push((param, sent.as_str()));
            }
            let res = app.form("/oauth/token", &fields).await;
            assert_eq!(res.status(), 400, "{param}");
            let body = res.text().await.unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"], error, "{param}: {body}");
            assert!(!body.contains(&secret[8..]), "{param}: {body}");
            assert!(body.contains("[a client secret, redacted]"), "{param}: {body}");
        }
    }
}
