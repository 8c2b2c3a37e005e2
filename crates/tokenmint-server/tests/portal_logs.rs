//! A full session at TRACE level, with every log line captured: portal sign-in (with a wrong
//! password first), a credential generated in the portal, then over the API a credential
//! created, tokens issued, refusals and a secret rotation. No password, session id, CSRF token,
//! client secret or access token appears in any of the log lines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use reqwest::header;
use serde_json::{Value, json};

fn between<'a>(text: &'a str, before: &str, after: &str) -> &'a str {
    let start = text.find(before).expect(before) + before.len();
    let len = text[start..].find(after).unwrap();
    &text[start..start + len]
}

fn cookie_value(res: &reqwest::Response, name: &str) -> String {
    res.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| between(v, &format!("{name}="), ";").to_owned())
        .unwrap()
}

#[tokio::test]
async fn a_full_session_at_trace_level_logs_no_password_session_id_secret_or_token() {
    let capture = common::LogCapture::install();

    let mut app = common::spawn_app().await;
    let password = "a portal password that must stay private";
    let res = app
        .admin(
            reqwest::Method::POST,
            "/users",
            Some(json!({"org": "acme", "email": "ada@acme.test", "password": password})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut sensitive = vec![password.to_owned(), "a wrong password guess".to_owned()];

    let page = http.get(app.url("/portal/sign-in")).send().await.unwrap();
    let pre = cookie_value(&page, "tm_signin");
    let html = page.text().await.unwrap();
    let token = between(&html, r#"name="csrf" value=""#, "\"").to_owned();
    for pw in ["a wrong password guess", password] {
        let res = http
            .post(app.url("/portal/sign-in"))
            .header(header::COOKIE, format!("tm_signin={pre}"))
            .form(&[("csrf", token.as_str()), ("email", "ada@acme.test"), ("password", pw)])
            .send()
            .await
            .unwrap();
        if pw == password {
            assert_eq!(res.status(), 303);
            sensitive.push(cookie_value(&res, "tm_session"));
        }
    }
    let session = format!("tm_session={}", sensitive.last().unwrap());
    let list = http
        .get(app.url("/portal/credentials"))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = between(&list, r#"name="csrf" value=""#, "\"").to_owned();
    sensitive.push(csrf.clone());
    let created = http
        .post(app.url("/portal/credentials"))
        .header(header::COOKIE, &session)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Logged"),
            ("environment", "sandbox"),
            ("expiration", "never"),
            ("perm.eligibility", "read"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let location = created.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let shown = http
        .get(app.url(&location))
        .header(header::COOKIE, &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    sensitive.push(between(&shown, r#"id="new-client-secret">"#, "<").to_owned());
    let res = http
        .post(app.url("/portal/sign-out"))
        .header(header::COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    // The API side of the same session: a credential, its token, refusals and a rotation.
    sensitive.push(app.admin_secret.clone());
    let (id, secret) = app
        .create_credential(json!({"name": "api", "org": "acme", "environment": "production",
            "permissions": ["eligibility:write"]}))
        .await;
    sensitive.push(secret.clone());
    let t = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    sensitive.push(t.rsplit('.').next().unwrap().to_owned());
    sensitive.push(t);
    let wrong = "tms_wrong_but_secret_looking_value";
    assert_eq!(app.token_for(&id, wrong, &[]).await.status(), 401);
    sensitive.push(wrong.to_owned());
    let rotated: Value = app
        .admin(reqwest::Method::POST, &format!("/credentials/{id}/secrets"), Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    sensitive.push(rotated["client_secret"].as_str().unwrap().to_owned());
    app.stop().await;

    let logs = capture.text();
    assert!(logs.contains("portal sign-in"), "the portal's log lines were captured");
    // Addresses are printed as addresses, not as Rust values.
    let refused = logs.lines().find(|l| l.contains("portal sign-in refused")).unwrap();
    assert!(refused.contains("127.0.0.1") && !refused.contains("Some("), "{refused}");
    for s in &sensitive {
        assert!(s.len() >= 20);
        assert!(
            !logs.contains(s.as_str()),
            "a password, session id, secret or token is in the logs"
        );
    }
}
