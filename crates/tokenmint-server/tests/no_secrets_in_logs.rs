//! A whole session at TRACE level, with every log line captured: no client secret, no access
//! token and no master key appears in any of them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};

#[tokio::test]
async fn a_full_session_at_trace_level_logs_no_secret_and_no_token() {
    let capture = common::LogCapture::install();

    let mut app = common::spawn_app().await;
    let mut secrets = vec![app.admin_secret.clone()];
    let mut tokens = vec![app.admin_token().await];
    let (id, secret) = app
        .create_credential(json!({"name": "logged", "org": "acme", "environment": "production", "permissions": ["eligibility:write"]}))
        .await;
    secrets.push(secret.clone());
    let t = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    tokens.push(t.clone());
    // Refusals: wrong secret, secret in Basic, secret in JSON, a secret in the query string.
    app.token_for(&id, "tms_wrong_but_secret_looking", &[]).await;
    secrets.push("tms_wrong_but_secret_looking".into());
    app.http
        .post(app.url("/oauth/token?client_secret=query_secret_value"))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    secrets.push("query_secret_value".into());
    app.http
        .post(app.url("/oauth/token"))
        .json(&json!({"client_id": id, "client_secret": secret, "grant_type": "password"}))
        .send()
        .await
        .unwrap();
    let rotated: Value = app
        .admin(reqwest::Method::POST, &format!("/credentials/{id}/secrets"), Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    secrets.push(rotated["client_secret"].as_str().unwrap().to_owned());
    app.http
        .post(app.url("/oauth/introspect"))
        .form(&[("token", t.as_str()), ("client_id", &id), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    app.http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", t.as_str()), ("client_id", &id), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    app.http.get(app.url("/admin/v1/credentials")).bearer_auth(&t).send().await.unwrap();
    app.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    app.token_for(&id, &secret, &[]).await;
    app.stop().await;

    let logs = capture.text() + &capture.json();
    assert!(logs.contains("TRACE") || logs.contains("DEBUG"), "trace logging was captured");
    assert!(logs.contains("credential created"));
    for s in &secrets {
        assert!(!logs.contains(s.as_str()), "a secret is in the logs");
    }
    for t in &tokens {
        assert!(!logs.contains(t.as_str()), "a token is in the logs");
        let signature = t.rsplit('.').next().unwrap();
        assert!(!logs.contains(signature), "a token signature is in the logs");
    }
    assert!(!logs.contains(&app.master_key.to_hex()));
}
