//! The platform never ends up without a working admin, now or later: two admin credentials
//! deactivating each other, setting each other's expiry or narrowing each other's audiences at
//! the same moment leave exactly one that works indefinitely (the other is told 409), on one
//! server over SQLite and through two servers over one PostgreSQL; an admin cannot take
//! `tokenmint:admin` or the issuer's audience away from itself nor give itself an expiry; and
//! nobody can deactivate, narrow, expire or strip the secrets of the last working admin.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Browser;
use common::{instances, spawn_app};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_server::ManualClock;
use tokenmint_server::app::FirstStart;
use tokenmint_store::testing::TestDatabase;

struct Api {
    http: reqwest::Client,
}

impl Api {
    async fn token(&self, base: &str, id: &str, secret: &str) -> String {
        let res = self
            .http
            .post(format!("{base}/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id),
                ("client_secret", secret),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
    }

    async fn call(
        &self,
        base: &str,
        token: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req =
            self.http.request(method, format!("{base}/admin/v1{path}")).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn new_admin(&self, base: &str, token: &str) -> (String, String) {
        let res = self
            .call(
                base,
                token,
                Method::POST,
                "/credentials",
                Some(json!({"name": "admin", "org": "platform", "environment": "production",
                    "permissions": ["tokenmint:admin"]})),
            )
            .await;
        assert_eq!(res.status(), 201);
        let v: Value = res.json().await.unwrap();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }
}

/// Ways one admin can take another out of service, now or later.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Deactivate,
    /// An expiry 6 s away.
    Expire,
    /// Audiences without the issuer: no admin-API token any more.
    Narrow,
}

impl Ending {
    const ALL: [Ending; 3] = [Ending::Deactivate, Ending::Expire, Ending::Narrow];

    fn request(self, client_id: &str) -> (Method, String, Option<Value>) {
        let path = format!("/credentials/{client_id}");
        match self {
            Self::Deactivate => (Method::POST, format!("{path}/deactivate"), None),
            Self::Expire => (Method::PATCH, path, Some(json!({"expires_in_seconds": 6}))),
            Self::Narrow => {
                (Method::PATCH, path, Some(json!({"audiences": ["https://api.example.com"]})))
            }
        }
    }
}

/// Rounds of two fresh admins, the only working ones, ending each other (each round another
/// way) at once: `x` through `base_x`, `y` through `base_y`. Each round starts from the previous
/// round's survivor, which must still administer after the clock has moved past any expiry set.
async fn mutual_endings(
    base_x: &str,
    base_y: &str,
    first_admin: (String, String),
    clock: &ManualClock,
) {
    let api = Api { http: reqwest::Client::new() };
    let mut setup = first_admin;
    for round in 0..12 {
        let ending = Ending::ALL[round % Ending::ALL.len()];
        let setup_token = api.token(base_x, &setup.0, &setup.1).await;
        let x = api.new_admin(base_x, &setup_token).await;
        let y = api.new_admin(base_x, &setup_token).await;
        let tx = api.token(base_x, &x.0, &x.1).await;
        let ty = api.token(base_y, &y.0, &y.1).await;
        // Retire the previous admin, so that x and y are the only ones.
        let retire_path = format!("/credentials/{}/deactivate", setup.0);
        let retire = api.call(base_x, &tx, Method::POST, &retire_path, None).await;
        assert_eq!(retire.status(), 200);

        let ((mx, px, bx), (my, py, by)) = (ending.request(&y.0), ending.request(&x.0));
        let (rx, ry) =
            tokio::join!(api.call(base_x, &tx, mx, &px, bx), api.call(base_y, &ty, my, &py, by),);
        let (sx, sy) = (rx.status().as_u16(), ry.status().as_u16());
        let (winner, loser, loser_answer) = match (sx, sy) {
            (200, 409) => (x.clone(), "y", ry),
            (409, 200) => (y.clone(), "x", rx),
            other => {
                panic!("round {round} ({ending:?}): expected one 200 and one 409, got {other:?}")
            }
        };
        let problem: Value = loser_answer.json().await.unwrap();
        let detail = problem["detail"].as_str().unwrap();
        assert!(
            detail.contains("no longer authorized") || detail.contains("no working credential"),
            "round {round} ({ending:?}): {loser} was told {detail}"
        );
        // Past any expiry set, the survivor still administers, through either server.
        clock.advance(7);
        for base in [base_x, base_y] {
            let t = api.token(base, &winner.0, &winner.1).await;
            let res = api.call(base, &t, Method::GET, "/credentials?limit=1", None).await;
            assert_eq!(
                res.status(),
                200,
                "round {round} ({ending:?}): the survivor was locked out"
            );
        }
        setup = winner;
    }
}

#[tokio::test]
async fn two_admins_ending_each_other_at_once_on_one_server_leave_exactly_one() {
    let app = spawn_app().await;
    let first = (app.admin_id.clone(), app.admin_secret.clone());
    mutual_endings(&app.base, &app.base, first, &app.clock).await;
}

/// A server over the PostgreSQL database at `url`, without Redis.
async fn instance(
    url: &str,
    key: &MasterKey,
    clock: Arc<ManualClock>,
) -> (instances::Instance, Option<FirstStart>) {
    instances::start(url, key, clock, |config| {
        config.sync_interval = std::time::Duration::from_millis(100);
    })
    .await
}

#[tokio::test]
async fn two_admins_ending_each_other_at_once_through_two_servers_over_postgres_leave_exactly_one()
{
    let Some(db) = TestDatabase::create().await else { return };
    let key = MasterKey::generate();
    let clock = Arc::new(ManualClock::new(common::real_now()));
    let (mut a, first) = instance(db.url(), &key, clock.clone()).await;
    let Some(FirstStart::Initialized(admin)) = first else { panic!("first start") };
    let (mut b, _) = instance(db.url(), &key, clock.clone()).await;
    mutual_endings(&a.base, &b.base, (admin.client_id, admin.client_secret), &clock).await;
    a.stop().await;
    b.stop().await;
    db.drop_now().await;
}

#[tokio::test]
async fn an_admin_cannot_take_tokenmint_admin_away_from_itself() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::PATCH,
            &format!("/credentials/{}", app.admin_id),
            Some(json!({"permissions": ["tokenmint:introspect"]})),
        )
        .await;
    assert_eq!(res.status(), 409);
    let p: Value = res.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("tokenmint:admin"), "{p}");
    // Still an admin, and still working.
    assert_eq!(app.admin(Method::GET, "/credentials", None).await.status(), 200);
}

#[tokio::test]
async fn nobody_can_deactivate_the_last_working_admin_credential() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": "platform", "email": "root@platform.test", "role": "platform",
                "password": "a long enough password"})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("root@platform.test", "a long enough password").await;
    let path = format!("/portal/credentials/{}/deactivate", app.admin_id);
    let out = b.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 409, "{}", out.body);
    assert!(out.body.contains("no working credential holding tokenmint:admin"), "{}", out.body);
    assert_eq!(app.admin(Method::GET, "/credentials", None).await.status(), 200);

    // Admins that cannot reach the admin API (restricted to another audience) do not count.
    for _ in 0..3 {
        app.create_credential(json!({"name": "elsewhere", "org": "platform",
            "environment": "production", "permissions": ["tokenmint:admin"],
            "audiences": ["https://api.example.com"]}))
            .await;
    }
    let out = b.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 409, "{}", out.body);
    assert_eq!(app.admin(Method::GET, "/credentials", None).await.status(), 200);

    // With a second admin credential, the first may go.
    let (second, _) = app
        .create_credential(json!({"name": "second", "org": "platform", "environment": "production",
            "permissions": ["tokenmint:admin"]}))
        .await;
    assert!(!second.is_empty());
    let out = b.post(&path, &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303, "{}", out.body);
}

#[tokio::test]
async fn an_admin_cannot_narrow_itself_away_from_the_admin_api_nor_give_itself_an_expiry() {
    let app = spawn_app().await;
    let me = format!("/credentials/{}", app.admin_id);
    for (body, says) in [
        (json!({"audiences": ["https://api.example.com"]}), "issuer"),
        (json!({"audiences": ["https://api.example.com"], "name": "x"}), "issuer"),
        (json!({"expires_in_seconds": 2}), "expiry"),
        (json!({"expires_in_seconds": 315_000_000}), "expiry"),
    ] {
        let res = app.admin(Method::PATCH, &me, Some(body.clone())).await;
        assert_eq!(res.status(), 409, "{body}");
        let p: Value = res.json().await.unwrap();
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(says) && detail.contains("another admin credential"), "{p}");
    }
    // Listing the issuer beside another audience keeps it working, now and later.
    let issuer = app.state.issuer.clone();
    let res = app
        .admin(Method::PATCH, &me, Some(json!({"audiences": ["https://api.example.com", issuer]})))
        .await;
    assert_eq!(res.status(), 200);
    app.clock.advance(3 * 86_400);
    let res = app.admin(Method::GET, &me, None).await;
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["expires_at"], Value::Null);
    // Then removing the issuer is refused the same way.
    let res = app
        .admin(Method::PATCH, &me, Some(json!({"audiences": ["https://api.example.com"]})))
        .await;
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn no_admin_can_expire_narrow_or_end_the_secrets_of_the_last_admin_that_works_indefinitely() {
    let app = spawn_app().await;
    let (b_id, b_secret) = app
        .create_credential(json!({"name": "b", "org": "platform", "environment": "production",
            "permissions": ["tokenmint:admin"]}))
        .await;
    let api = Api { http: reqwest::Client::new() };
    let tb = api.token(&app.base, &b_id, &b_secret).await;
    // b gives the first admin an expiry: fine, b itself works indefinitely.
    let a_path = format!("/credentials/{}", app.admin_id);
    let res = api
        .call(&app.base, &tb, Method::PATCH, &a_path, Some(json!({"expires_in_seconds": 60})))
        .await;
    assert_eq!(res.status(), 200);
    // Now the first admin may not end b by any path: an expiry, another audience, deactivation,
    // or rotating b's secret and then deleting the new one.
    let b_path = format!("/credentials/{b_id}");
    for (method, path, body) in [
        (Method::PATCH, b_path.clone(), Some(json!({"expires_in_seconds": 3600}))),
        (Method::PATCH, b_path.clone(), Some(json!({"audiences": ["https://api.example.com"]}))),
        (Method::POST, format!("{b_path}/deactivate"), None),
    ] {
        let res = app.admin(method, &path, body).await;
        assert_eq!(res.status(), 409, "{path}");
        let p: Value = res.json().await.unwrap();
        assert!(p["detail"].as_str().unwrap().contains("no working credential"), "{p}");
    }
    let res = app
        .admin(Method::POST, &format!("{b_path}/secrets"), Some(json!({"overlap_seconds": 30})))
        .await;
    assert_eq!(res.status(), 201);
    let rotated: Value = res.json().await.unwrap();
    let new_secret = rotated["secret"]["id"].as_str().unwrap().to_owned();
    let res = app.admin(Method::DELETE, &format!("{b_path}/secrets/{new_secret}"), None).await;
    assert_eq!(res.status(), 409);
    // Past every expiry set, b (with its new secret) still administers.
    app.clock.advance(120);
    let tb = api.token(&app.base, &b_id, rotated["client_secret"].as_str().unwrap()).await;
    let res = api.call(&app.base, &tb, Method::GET, "/credentials?limit=1", None).await;
    assert_eq!(res.status(), 200);
}
