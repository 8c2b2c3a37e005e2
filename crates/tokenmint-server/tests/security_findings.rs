//! Regression tests for the findings of the security review that the authorization work closed
//! (the matrix in `authorization_matrix.rs` covers the class; these replay the attacks).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use tokenmint_server::service::ROTATION_SETTLE_SECS;

const PASSWORD: &str = "a long enough password";

async fn add_user(app: &TestApp, org: &str, email: &str, role: Option<&str>) -> Value {
    let mut body = json!({"org": org, "email": email, "password": PASSWORD});
    if let Some(r) = role {
        body["role"] = json!(r);
    }
    let res = app.admin(Method::POST, "/users", Some(body)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn secret_ids(app: &TestApp, client_id: &str) -> Vec<String> {
    let c = app.state.store.get_credential(client_id).await.unwrap().unwrap();
    c.secrets.iter().map(|s| s.id.clone()).collect()
}

#[tokio::test]
async fn an_organization_admin_cannot_take_over_a_credential_holding_a_system_scope() {
    let app = spawn_app().await;
    // What `users create --org <the platform admin's organization>` makes by default: an
    // admin of that organization, and the answer says it is not a platform role.
    let ops = add_user(&app, "platform", "ops@platform.test", None).await;
    assert_eq!(ops["role"], "admin");
    assert!(ops["role_grants"].as_str().unwrap().contains("not a platform role"), "{ops}");

    let mut b = Browser::new(&app);
    let csrf = b.sign_in("ops@platform.test", PASSWORD).await;
    let admin_page = b.get(&format!("/portal/credentials/{}", app.admin_id)).await;
    assert_eq!(admin_page.status, 200, "it may be seen");
    assert!(
        !admin_page.body.contains("Rotate secret") && !admin_page.body.contains("Save changes")
    );
    let before = secret_ids(&app, &app.admin_id).await;
    let base = format!("/portal/credentials/{}", app.admin_id);
    for (path, form) in [
        (format!("{base}/rotate"), vec![("overlap", "0")]),
        (format!("{base}/deactivate"), vec![]),
        (format!("{base}/activate"), vec![]),
        (base.clone(), vec![("name", "mine now"), ("perm.eligibility", "read")]),
    ] {
        let mut form = form;
        form.push(("csrf", &csrf));
        let out = b.post(&path, &form).await;
        assert_eq!(out.status, 403, "{path}: {}", out.body);
        assert!(!out.body.contains("tms_"), "no secret is ever shown");
    }
    assert_eq!(secret_ids(&app, &app.admin_id).await, before, "the admin credential is untouched");
    assert_eq!(app.admin(Method::GET, "/credentials", None).await.status(), 200);

    // An ordinary organization's admin and its credential holding tokenmint:introspect.
    add_user(&app, "acme", "admin@acme.test", Some("admin")).await;
    let (introspector, _) = app
        .create_credential(json!({"name": "resource server", "org": "acme",
            "environment": "production", "permissions": ["tokenmint:introspect"]}))
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", PASSWORD).await;
    let before = secret_ids(&app, &introspector).await;
    let out = b
        .post(
            &format!("/portal/credentials/{introspector}/rotate"),
            &[("csrf", &csrf), ("overlap", "0")],
        )
        .await;
    assert_eq!(out.status, 403);
    assert!(out.body.contains("platform administrators"), "the page says why: {}", out.body);
    assert_eq!(secret_ids(&app, &introspector).await, before);
}

#[tokio::test]
async fn fifty_concurrent_rotations_hand_out_only_secrets_that_work() {
    let app = spawn_app().await;
    let (id, first) = app.sandbox_reader().await;
    let token = app.admin_token().await;
    let rotate = |overlap: u64| {
        app.http
            .post(app.url(&format!("/admin/v1/credentials/{id}/secrets")))
            .bearer_auth(&token)
            .json(&json!({"overlap_seconds": overlap}))
            .send()
    };
    let answers = futures_util::future::join_all((0..50).map(|_| rotate(0))).await;
    let mut handed_out = Vec::new();
    for res in answers {
        let res = res.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        match status {
            201 => handed_out.push(body["client_secret"].as_str().unwrap().to_owned()),
            409 => assert!(body["detail"].as_str().unwrap().contains("rotated"), "{body}"),
            other => panic!("a rotation answered {other}: {body}"),
        }
    }
    assert!(!handed_out.is_empty());
    for secret in &handed_out {
        let res = app.token_for(&id, secret, &[]).await;
        assert_eq!(res.status(), 200, "an acknowledged secret must work");
    }
    assert_eq!(app.token_for(&id, &first, &[]).await.status(), 401, "overlap 0 ended the old one");

    // Once the rotation has settled, the next one goes through.
    app.clock.advance(ROTATION_SETTLE_SECS);
    let res = rotate(0).await.unwrap();
    assert_eq!(res.status(), 201);
    let latest: Value = res.json().await.unwrap();
    assert_eq!(
        app.token_for(&id, latest["client_secret"].as_str().unwrap(), &[]).await.status(),
        200
    );
}

#[tokio::test]
async fn a_credential_holds_at_most_five_live_secrets_and_is_told_to_delete_one() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let rotate = async || {
        app.clock.advance(ROTATION_SETTLE_SECS);
        app.admin(
            Method::POST,
            &format!("/credentials/{id}/secrets"),
            Some(json!({"overlap_seconds": 86_400})),
        )
        .await
    };
    for _ in 0..4 {
        assert_eq!(rotate().await.status(), 201);
    }
    let refused = rotate().await;
    assert_eq!(refused.status(), 409);
    let p: Value = refused.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("delete one first"), "{p}");
    let oldest = secret_ids(&app, &id).await.remove(0);
    let res = app.admin(Method::DELETE, &format!("/credentials/{id}/secrets/{oldest}"), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(rotate().await.status(), 201);
}

#[tokio::test]
async fn editing_a_credential_does_not_reset_its_token_request_limit() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({"name": "limited", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"], "rate_limit_per_minute": 3}))
        .await;
    for _ in 0..3 {
        assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 200);
    }
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429);
    for edit in [json!({"name": "limited, renamed"}), json!({"rate_limit_per_minute": 3})] {
        let res = app.admin(Method::PATCH, &format!("/credentials/{id}"), Some(edit)).await;
        assert_eq!(res.status(), 200);
        assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 429, "no fresh burst");
    }
}

#[tokio::test]
async fn the_admin_api_refuses_an_admin_token_minted_for_another_audience() {
    let app = spawn_app().await;
    let issuer = app.base.clone();
    let (id, secret) = app
        .create_credential(json!({"name": "admin with audiences", "org": "platform",
            "environment": "production", "permissions": ["tokenmint:admin", "tokenmint:revocations"],
            "audiences": ["https://api.example.com", issuer]}))
        .await;
    let token_for = async |audience: Option<&str>| {
        let extra: Vec<(&str, &str)> = audience.map(|a| vec![("audience", a)]).unwrap_or_default();
        let res = app.token_for(&id, &secret, &extra).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    };
    let elsewhere = token_for(Some("https://api.example.com")).await;
    for path in ["/admin/v1/credentials", "/admin/v1/revocations"] {
        let res = app.http.get(app.url(path)).bearer_auth(&elsewhere).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
        let p: Value = res.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("another audience"), "{p}");
    }
    // For the issuer alone it is accepted; a token for the issuer and another audience (the
    // default of a credential that lists both, or both asked for) is not: the other resource
    // server could replay it here.
    let res = app
        .http
        .get(app.url("/admin/v1/credentials"))
        .bearer_auth(token_for(Some(&app.base)).await);
    assert_eq!(res.send().await.unwrap().status(), 200);
    let both = {
        let extra = [("resource", "https://api.example.com"), ("resource", issuer.as_str())];
        let res = app.token_for(&id, &secret, &extra).await;
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    };
    for token in [token_for(None).await, both] {
        for path in ["/admin/v1/credentials", "/admin/v1/revocations"] {
            let res = app.http.get(app.url(path)).bearer_auth(&token).send().await.unwrap();
            assert_eq!(res.status(), 401, "{path}");
        }
    }
    // A credential whose only audience is another one gets no token the admin API accepts.
    let res = app
        .admin(
            Method::PATCH,
            &format!("/credentials/{id}"),
            Some(json!({"audiences": ["https://api.example.com"]})),
        )
        .await;
    assert_eq!(res.status(), 200);
    let res = app.http.get(app.url("/admin/v1/credentials")).bearer_auth(token_for(None).await);
    assert_eq!(res.send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn adding_a_user_whose_email_exists_in_another_organization_reveals_nothing_about_it() {
    let app = spawn_app().await;
    add_user(&app, "globex", "taken@globex.test", Some("viewer")).await;
    add_user(&app, "acme", "admin@acme.test", Some("admin")).await;
    add_user(&app, "acme", "twin@acme.test", Some("viewer")).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", PASSWORD).await;
    let mut pages = Vec::new();
    for email in ["taken@globex.test", "twin@acme.test"] {
        let out =
            b.post("/portal/users", &[("csrf", &csrf), ("email", email), ("role", "viewer")]).await;
        assert_eq!(out.status, 409);
        let at = out.body.find(r#"id="email-error" role="alert">"#).expect("the form says why");
        let message = &out.body[at..];
        pages.push(message[..message.find("</p>").unwrap()].to_owned());
        // Beyond the address as typed, nothing names the other organization.
        let rest = out.body.replace(email, "");
        assert!(!rest.contains("globex") && !rest.contains("another organization"));
    }
    assert_eq!(pages[0], pages[1], "an email of another organization is answered like one of ours");
    // The platform, which sees every user anyway, is told plainly.
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": "acme", "email": "taken@globex.test", "password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let p: Value = res.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("already exists"));
}

/// serde fills a struct from a JSON array (its elements as the fields in order), so
/// `PATCH ["renamed"]` once renamed a credential. Every admin-API route that reads a body, as
/// the OpenAPI document lists them, refuses any body that is not a JSON object, and changes
/// nothing.
#[tokio::test]
async fn every_admin_api_body_must_be_a_json_object() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let secret_id = secret_ids(&app, &id).await.remove(0);
    let before = app.state.store.get_credential(&id).await.unwrap().unwrap();
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut with_body = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op.get("requestBody").is_some() {
                let path = path
                    .replace("{client_id}", &id)
                    .replace("{secret_id}", &secret_id)
                    .replace("{slug}", "acme")
                    .replace("{id}", "usr_missing")
                    .replace("{kid}", "missing");
                with_body
                    .push((Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(), path));
            }
        }
    }
    assert!(with_body.len() >= 6, "{with_body:?}");
    let token = app.admin_token().await;
    for (method, path) in &with_body {
        for body in [r#"["renamed"]"#, "[]", r#""renamed""#, "1", "null", " \n[{}]"] {
            let res = app
                .http
                .request(method.clone(), app.url(path))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{method} {path} {body}");
            let p: Value = res.json().await.unwrap();
            assert!(p["detail"].as_str().unwrap().contains("must be a JSON object"), "{p}");
        }
    }
    let after = app.state.store.get_credential(&id).await.unwrap().unwrap();
    assert_eq!(after, before, "nothing changed");
    // An object still works, with whitespace before it.
    let res = app
        .http
        .patch(app.url(&format!("/admin/v1/credentials/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(" \n{\"name\": \"renamed\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// A client's `x-request-id` is echoed and logged only when it is short visible ASCII; any
/// other (control characters, U+2028, bidirectional marks, spaces, too long, repeated) is
/// replaced by a generated one.
#[tokio::test]
async fn a_client_request_id_is_echoed_only_when_it_is_short_visible_ascii() {
    let app = spawn_app().await;
    let send = async |values: &[&[u8]]| {
        let mut req = app.http.get(app.url("/healthz"));
        for v in values {
            req = req.header("x-request-id", reqwest::header::HeaderValue::from_bytes(v).unwrap());
        }
        let res = req.send().await.unwrap();
        let ids: Vec<Vec<u8>> =
            res.headers().get_all("x-request-id").iter().map(|v| v.as_bytes().to_vec()).collect();
        assert_eq!(ids.len(), 1, "{ids:?}");
        ids.into_iter().next().unwrap()
    };
    let long = "a".repeat(129);
    for bad in [
        &b"abc\tdef"[..],
        "line\u{2028}break".as_bytes(),
        "evil\u{202E}txt".as_bytes(),
        "caf\u{e9}".as_bytes(),
        b"two words",
        long.as_bytes(),
    ] {
        let echoed = send(&[bad]).await;
        assert_ne!(echoed, bad, "{:?}", String::from_utf8_lossy(bad));
        assert!(echoed.iter().all(u8::is_ascii_graphic) && echoed.len() == 36, "{echoed:?}");
    }
    let echoed = send(&[b"ok-1", b"ok-2"]).await;
    assert!(echoed != b"ok-1" && echoed != b"ok-2");
    for good in [&b"req-123_ABC.x:y/z"[..], "a".repeat(128).as_bytes()] {
        assert_eq!(send(&[good]).await, good);
    }
}
