//! RFC 7662 introspection and RFC 7009 revocation, and revoking every token of a credential.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{TestApp, spawn_app};
use serde_json::{Value, json};

async fn introspect(app: &TestApp, token: &str, id: &str, secret: &str) -> Value {
    let res = app
        .http
        .post(app.url("/oauth/introspect"))
        .form(&[("token", token), ("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    res.json().await.unwrap()
}

async fn revoke(app: &TestApp, token: &str, id: &str, secret: &str) -> reqwest::Response {
    app.http
        .post(app.url("/oauth/revoke"))
        .form(&[("token", token), ("client_id", id), ("client_secret", secret)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_client_introspects_its_own_token_and_sees_its_claims() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let i = introspect(&app, &token, &id, &secret).await;
    assert_eq!(i["active"], true);
    assert_eq!(i["client_id"], id.as_str());
    assert_eq!(i["scope"], "eligibility:read");
    assert_eq!(i["env"], "sandbox");
    assert_eq!(i["org"], "acme");
    assert_eq!(i["token_type"], "Bearer");
    assert_eq!(i["iss"], app.base.as_str());
}

#[tokio::test]
async fn expired_garbage_foreign_and_other_clients_tokens_are_inactive() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let (other, other_secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, "garbage", &id, &secret).await, json!({"active": false}));
    assert_eq!(introspect(&app, &token, &other, &other_secret).await, json!({"active": false}));
    // A token of another server (same shape, our kid, wrong signature).
    let mut parts: Vec<&str> = token.split('.').collect();
    let sig = "A".repeat(parts[2].len());
    parts[2] = &sig;
    assert_eq!(introspect(&app, &parts.join("."), &id, &secret).await, json!({"active": false}));
    // The platform admin may introspect anyone's token.
    assert_eq!(introspect(&app, &token, &app.admin_id, &app.admin_secret).await["active"], true);
    app.clock.advance(3600);
    assert_eq!(introspect(&app, &token, &id, &secret).await, json!({"active": false}));
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let app = spawn_app().await;
    let res =
        app.http.post(app.url("/oauth/introspect")).form(&[("token", "x")]).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn a_revoked_token_becomes_inactive_and_enters_the_revocation_feed() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let jti = common::claims(&token)["jti"].as_str().unwrap().to_owned();
    let res = revoke(&app, &token, &id, &secret).await;
    assert_eq!(res.status(), 200);
    assert_eq!(introspect(&app, &token, &id, &secret).await, json!({"active": false}));
    // Revoking garbage is fine too (RFC 7009 §2.2).
    assert_eq!(revoke(&app, "not-a-token", &id, &secret).await.status(), 200);
    let feed: Value =
        app.admin(reqwest::Method::GET, "/revocations?after=0", None).await.json().await.unwrap();
    let entries = feed["entries"].as_array().unwrap();
    let entry = entries.iter().find(|e| e["kind"] == "token").unwrap();
    assert_eq!(entry["jti"], jti.as_str());
    assert_eq!(entry["expires_at"], common::claims(&token)["exp"]);
    assert_eq!(feed["next_cursor"], entry["cursor"]);
}

#[tokio::test]
async fn a_client_cannot_revoke_another_clients_token() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let (other, other_secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let res = revoke(&app, &token, &other, &other_secret).await;
    assert_eq!(res.status(), 400);
    assert_eq!(introspect(&app, &token, &id, &secret).await["active"], true);
}

#[tokio::test]
async fn revoking_all_tokens_of_a_credential_spares_the_ones_issued_after() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let before = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let res =
        app.admin(reqwest::Method::POST, &format!("/credentials/{id}/revoke-tokens"), None).await;
    assert_eq!(res.status(), 200);
    assert_eq!(introspect(&app, &before, &id, &secret).await["active"], false);
    let after = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    assert_eq!(introspect(&app, &after, &id, &secret).await["active"], true);
    let feed: Value =
        app.admin(reqwest::Method::GET, "/revocations", None).await.json().await.unwrap();
    assert!(
        feed["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "credential" && e["client_id"] == id.as_str())
    );
}

#[tokio::test]
async fn deactivating_a_credential_revokes_its_tokens() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    app.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    assert_eq!(introspect(&app, &token, &app.admin_id, &app.admin_secret).await["active"], false);
}

#[tokio::test]
async fn the_revocation_stream_delivers_backlog_and_new_entries_and_resumes_by_cursor() {
    use futures_util::StreamExt;
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let t1 = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    revoke(&app, &t1, &id, &secret).await;
    let admin = app.admin_token().await;
    let res = app
        .http
        .get(app.url("/admin/v1/revocations/stream"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut stream = res.bytes_stream();
    let mut seen = String::new();
    let t2 = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let jti2 = common::claims(&t2)["jti"].as_str().unwrap().to_owned();
    revoke(&app, &t2, &id, &secret).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(&jti2) {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the entry arrives")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let jti1 = common::claims(&t1)["jti"].as_str().unwrap().to_owned();
    assert!(seen.contains(&jti1), "the backlog comes first");
    assert!(seen.contains("event: revocation"));
    // Resuming after the first entry gives only the second.
    let first_id: String = seen.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_owned();
    let res = app
        .http
        .get(app.url("/admin/v1/revocations/stream"))
        .bearer_auth(&admin)
        .header("last-event-id", first_id)
        .send()
        .await
        .unwrap();
    let mut stream = res.bytes_stream();
    let chunk = String::from_utf8_lossy(&stream.next().await.unwrap().unwrap()).into_owned();
    assert!(chunk.contains(&jti2) && !chunk.contains(&jti1), "{chunk}");
}

/// An open stream asks for its caller again before each new entry: once the caller's
/// credential is deactivated, loses `tokenmint:revocations` or has its tokens revoked, the
/// stream ends and the next entries are not delivered (a poll with that token is refused too).
#[tokio::test]
async fn a_stream_ends_when_its_callers_credential_may_no_longer_follow_the_feed() {
    use futures_util::StreamExt;
    let app = spawn_app().await;
    let (reader, reader_secret) = app.sandbox_reader().await;
    let changes: [(&str, Option<Value>); 3] = [
        ("deactivate", None),
        ("revoke-tokens", None),
        ("", Some(serde_json::json!({"permissions": ["eligibility:read"]}))),
    ];
    for (action, patch) in changes {
        let (id, secret) = app
            .create_credential(serde_json::json!({"name": "feed", "org": "platform",
                "environment": "production",
                "permissions": ["tokenmint:revocations", "eligibility:read"]}))
            .await;
        let res = app.token_for(&id, &secret, &[("audience", app.state.issuer.as_str())]).await;
        let token: Value = res.json().await.unwrap();
        let token = token["access_token"].as_str().unwrap().to_owned();
        let res = app
            .http
            .get(app.url("/admin/v1/revocations/stream"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{action}");
        let mut stream = res.bytes_stream();
        // A first entry is delivered while the caller may follow the feed.
        let t1 =
            app.token(&reader, &reader_secret).await["access_token"].as_str().unwrap().to_owned();
        let jti1 = common::claims(&t1)["jti"].as_str().unwrap().to_owned();
        revoke(&app, &t1, &reader, &reader_secret).await;
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while !seen.contains(&jti1) {
            let chunk = tokio::time::timeout_at(deadline, stream.next())
                .await
                .expect("the entry arrives")
                .unwrap()
                .unwrap();
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        // The caller's credential changes; the next entry is not delivered and the stream ends.
        let res = match &patch {
            None => {
                app.admin(reqwest::Method::POST, &format!("/credentials/{id}/{action}"), None).await
            }
            Some(body) => {
                app.admin(reqwest::Method::PATCH, &format!("/credentials/{id}"), Some(body.clone()))
                    .await
            }
        };
        assert_eq!(res.status(), 200, "{action}");
        let t2 =
            app.token(&reader, &reader_secret).await["access_token"].as_str().unwrap().to_owned();
        let jti2 = common::claims(&t2)["jti"].as_str().unwrap().to_owned();
        revoke(&app, &t2, &reader, &reader_secret).await;
        let mut rest = String::new();
        while let Some(Ok(chunk)) =
            tokio::time::timeout_at(deadline, stream.next()).await.expect("the stream ends")
        {
            rest.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!rest.contains(&jti2), "{action:?} {patch:?}: delivered after the change: {rest}");
        let polled = app
            .http
            .get(app.url("/admin/v1/revocations"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(matches!(polled.status().as_u16(), 401 | 403), "{action:?} {patch:?}");
    }
}

#[tokio::test]
async fn the_feed_refuses_clients_without_the_revocations_scope() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let res =
        app.http.get(app.url("/admin/v1/revocations")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}
