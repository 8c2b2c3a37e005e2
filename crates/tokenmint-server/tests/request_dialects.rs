//! What clients send that the RFCs allow or that a first-time user gets wrong: JSON sent with
//! curl's default form type, token type hints of every kind (RFC 7009 §2.1, RFC 7662 §2.1),
//! and several `resource` parameters (RFC 8707 §2).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, claims, spawn_app};
use serde_json::{Value, json};

/// Every hint a client might send: the registered ones, one from another server's vocabulary,
/// nonsense and an empty one.
const HINTS: [Option<&str>; 6] = [
    None,
    Some("access_token"),
    Some("refresh_token"),
    Some("id_token"),
    Some("no_such_type"),
    Some(""),
];

fn with_hint<'a>(
    mut pairs: Vec<(&'a str, &'a str)>,
    hint: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    if let Some(h) = hint {
        pairs.push(("token_type_hint", h));
    }
    pairs
}

async fn post_form(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> reqwest::Response {
    app.http.post(app.url(path)).form(pairs).send().await.unwrap()
}

async fn introspect(app: &TestApp, token: &str, hint: Option<&str>) -> Value {
    let pairs = with_hint(
        vec![("token", token), ("client_id", &app.admin_id), ("client_secret", &app.admin_secret)],
        hint,
    );
    let res = post_form(app, "/oauth/introspect", &pairs).await;
    assert_eq!(res.status(), 200, "hint {hint:?}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn json_sent_with_the_form_content_type_gets_a_hint_on_every_endpoint() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let body =
        json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret})
            .to_string();
    for path in ["/oauth/token", "/oauth/introspect", "/oauth/revoke"] {
        // What `curl -d '{...}'` sends.
        let res = app
            .http
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{path}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request", "{path}");
        let description = err["error_description"].as_str().unwrap();
        assert!(
            description.contains("looks like JSON")
                && description.contains("Content-Type: application/json"),
            "{path}: {description}"
        );
        assert!(!description.contains(&secret), "{path}: the secret is echoed");
    }
    // The same body with the right type works.
    let res = app
        .http
        .post(app.url("/oauth/token"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn revocation_ignores_every_token_type_hint_and_revokes_the_access_token() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    for hint in HINTS {
        let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
        let pairs = with_hint(
            vec![("token", &token), ("client_id", &id), ("client_secret", &secret)],
            hint,
        );
        let res = post_form(&app, "/oauth/revoke", &pairs).await;
        assert_eq!(res.status(), 200, "hint {hint:?}: {}", res.text().await.unwrap());
        assert_eq!(introspect(&app, &token, None).await["active"], false, "hint {hint:?}");
        // A token this server never issued (a refresh token of another server, say) is 200 too.
        let pairs = with_hint(
            vec![("token", "rt-from-elsewhere"), ("client_id", &id), ("client_secret", &secret)],
            hint,
        );
        assert_eq!(post_form(&app, "/oauth/revoke", &pairs).await.status(), 200, "{hint:?}");
    }
}

#[tokio::test]
async fn introspection_ignores_every_token_type_hint() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    for hint in HINTS {
        let answer = introspect(&app, &token, hint).await;
        assert_eq!(answer["active"], true, "hint {hint:?}");
        assert_eq!(answer["client_id"], id.as_str());
        assert_eq!(introspect(&app, "rt-from-elsewhere", hint).await, json!({"active": false}));
    }
}

async fn token_claims(res: reqwest::Response) -> Value {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    claims(body["access_token"].as_str().unwrap())
}

#[tokio::test]
async fn several_resources_make_an_audience_array_in_form_and_json_bodies() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "aud", "org": "acme", "environment": "production",
            "audiences": ["https://a", "https://b", "https://c"],
        }))
        .await;
    // Repeated form parameters, in the order sent; a repeat counts once.
    let c = token_claims(
        app.token_for(&id, &secret, &[("resource", "https://c"), ("resource", "https://a")]).await,
    )
    .await;
    assert_eq!(c["aud"], json!(["https://c", "https://a"]));
    let c = token_claims(
        app.token_for(&id, &secret, &[("resource", "https://b"), ("resource", "https://b")]).await,
    )
    .await;
    assert_eq!(c["aud"], "https://b", "one target stays a string");
    // A JSON array.
    let json_body = |resource: Value| {
        app.http.post(app.url("/oauth/token")).json(&json!({
            "grant_type": "client_credentials", "client_id": id, "client_secret": secret,
            "resource": resource,
        }))
    };
    let c = token_claims(json_body(json!(["https://a", "https://b"])).send().await.unwrap()).await;
    assert_eq!(c["aud"], json!(["https://a", "https://b"]));
    let c = token_claims(json_body(json!("https://c")).send().await.unwrap()).await;
    assert_eq!(c["aud"], "https://c");
    // One target outside the credential's audiences spoils the request, wherever it stands.
    for pairs in [
        [("resource", "https://evil"), ("resource", "https://a")],
        [("resource", "https://a"), ("resource", "https://evil")],
    ] {
        let res = app.token_for(&id, &secret, &pairs).await;
        assert_eq!(res.status(), 400);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_target");
        assert!(err["error_description"].as_str().unwrap().contains("https://evil"));
    }
    let res = json_body(json!(["https://a", "https://evil"])).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_target");
    let res = json_body(json!(["https://a", 7])).send().await.unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "invalid_request");
}

#[tokio::test]
async fn audience_and_resource_together_must_name_the_same_target() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "aud", "org": "acme", "environment": "production",
            "audiences": ["https://a", "https://b"],
        }))
        .await;
    let same = app.token_for(&id, &secret, &[("audience", "https://a"), ("resource", "https://a")]);
    assert_eq!(token_claims(same.await).await["aud"], "https://a");
    for extra in [
        &[("audience", "https://a"), ("resource", "https://b")][..],
        &[("audience", "https://a"), ("resource", "https://a"), ("resource", "https://b")],
    ] {
        let res = app.token_for(&id, &secret, extra).await;
        assert_eq!(res.status(), 400);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"], "invalid_request");
        assert!(err["error_description"].as_str().unwrap().contains("either audience"));
    }
}
