//! Portal users' lifecycle over HTTP: password reset with a one-time code, changing one's own
//! password, reactivation, role changes, reusing a deactivated user's email, and the
//! confirmations and success messages of the portal's forms, and the audit page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::{Answer, Browser};
use common::{Options, TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const ADMIN_PW: &str = "acme admin password";
const USER_PW: &str = "acme viewer password";

async fn create_user(app: &TestApp, org: &str, email: &str, role: &str, password: &str) -> String {
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": org, "email": email, "role": role, "password": password})),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// acme with an admin and a viewer; returns the viewer's id.
async fn acme(app: &TestApp) -> String {
    for org in ["acme", "globex"] {
        let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": org}))).await;
        assert_eq!(res.status(), 201);
    }
    create_user(app, "acme", "admin@acme.test", "admin", ADMIN_PW).await;
    create_user(app, "acme", "viewer@acme.test", "viewer", USER_PW).await
}

/// The text of the element with this id.
fn text_of(page: &Answer, id: &str) -> String {
    let marker = format!(r#"id="{id}">"#);
    let at = page.body.find(&marker).unwrap_or_else(|| panic!("no #{id} in {}", page.body));
    let rest = &page.body[at + marker.len()..];
    rest[..rest.find('<').unwrap()].to_owned()
}

/// Posts the own-password form.
async fn change(b: &mut Browser, csrf: &str, current: &str, new: &str, again: &str) -> Answer {
    b.post(
        "/portal/account",
        &[
            ("csrf", csrf),
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", again),
        ],
    )
    .await
}

/// Sets a password with a reset code, as a browser without a session.
async fn redeem(app: &TestApp, code: &str, new: &str, again: &str) -> Answer {
    let mut b = Browser::new(app);
    let form = b.get("/portal/reset-password").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    b.post(
        "/portal/reset-password",
        &[("csrf", &csrf), ("code", code), ("new_password", new), ("confirm_password", again)],
    )
    .await
}

#[tokio::test]
async fn an_admin_resets_a_password_with_a_code_that_works_once_until_it_expires_on_any_instance() {
    let app = spawn_app().await;
    let viewer = acme(&app).await;
    let mut victim = Browser::new(&app);
    victim.sign_in("viewer@acme.test", USER_PW).await;
    let mut admin = Browser::new(&app);
    let csrf = admin.sign_in("admin@acme.test", ADMIN_PW).await;

    let page = admin.get(&format!("/portal/users/{viewer}")).await;
    assert!(page.body.contains("Generate reset code"), "{}", page.body);
    // The POST answers with a redirect, so a reload of what the browser shows re-submits
    // nothing; the code waits in the session's sealed one-time flash for the user's page.
    let posted =
        admin.post(&format!("/portal/users/{viewer}/reset-password"), &[("csrf", &csrf)]).await;
    assert_eq!(posted.status, StatusCode::SEE_OTHER, "{}", posted.body);
    assert_eq!(posted.location(), format!("/portal/users/{viewer}"));
    assert!(!posted.body.contains("tmr_"), "the POST's answer holds no code");
    // Another user's page does not take it.
    let admin_id = app
        .admin(Method::GET, "/users?org=acme", None)
        .await
        .json::<Value>()
        .await
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["email"] == "admin@acme.test")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!admin.get(&format!("/portal/users/{admin_id}")).await.body.contains("tmr_"));
    let out = admin.get(posted.location()).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.headers["cache-control"], "no-store");
    let code = text_of(&out, "reset-code");
    assert!(code.starts_with("tmr_") && code.len() > 30, "{code}");
    assert!(out.body.contains("/portal/reset-password"));
    // Shown once: a reload of the page shows no code, neither this one nor a new one.
    let reload = admin.get(posted.location()).await;
    assert_eq!(reload.status, 200);
    assert!(!reload.body.contains(&code) && !reload.body.contains("tmr_"), "{}", reload.body);
    assert!(reload.body.contains("Generate reset code"));
    // The current password keeps working until the code is used.
    assert_eq!(victim.get("/portal/credentials").await.status, 200);

    // Another instance (here: the same database after a restart) takes the code, which also
    // shows that the reload issued no newer code (a newer one would have replaced it).
    let app = app.restart(Options::default()).await;
    let mismatch = redeem(&app, &code, "a brand new password", "another new password").await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("The two new passwords differ."));
    let short = redeem(&app, &code, "short", "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = redeem(&app, &code, "a brand new password", "a brand new password").await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/portal/sign-in?done=password-set");
    let mut b = Browser::new(&app);
    assert!(b.get("/portal/sign-in?done=password-set").await.body.contains("new password is set"));
    assert_eq!(b.try_sign_in("viewer@acme.test", USER_PW).await.status, 401);
    b.sign_in("viewer@acme.test", "a brand new password").await;
    // Once only.
    let again = redeem(&app, &code, "yet another password", "yet another password").await;
    assert_eq!(again.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(again.body.contains("This code is not valid"));

    // A code expires after 24 hours, measured on the server's clock.
    let res = app.admin(Method::POST, &format!("/users/{viewer}/reset-password"), None).await;
    assert_eq!(res.status(), 201);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let reset: Value = res.json().await.unwrap();
    let late = reset["code"].as_str().unwrap();
    app.clock.advance(24 * 3600);
    let expired = redeem(&app, late, "yet another password", "yet another password").await;
    assert_eq!(expired.status, StatusCode::UNPROCESSABLE_ENTITY);
    // A code that never was, and a newer code replacing an older one.
    let unknown = redeem(&app, "tmr_nothing", "yet another password", "yet another password").await;
    assert_eq!(unknown.status, StatusCode::UNPROCESSABLE_ENTITY);
    let first: Value = app
        .admin(Method::POST, &format!("/users/{viewer}/reset-password"), None)
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .admin(Method::POST, &format!("/users/{viewer}/reset-password"), None)
        .await
        .json()
        .await
        .unwrap();
    let old = first["code"].as_str().unwrap();
    assert_eq!(redeem(&app, old, "yet another password", "yet another password").await.status, 422);
    let new = second["code"].as_str().unwrap();
    assert_eq!(redeem(&app, new, "yet another password", "yet another password").await.status, 303);
    // The audit trail says who issued codes and that the password changed, never the code.
    // The trail is written behind the answers: read until both events are in it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let audit: Value =
            app.admin(Method::GET, "/audit?org=acme", None).await.json().await.unwrap();
        let text = audit.to_string();
        if text.contains("user.password_reset") && text.contains("user.password_changed") {
            break text;
        }
        assert!(std::time::Instant::now() < deadline, "events missing from the trail: {text}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(!text.contains(&code) && !text.contains(new));
}

#[tokio::test]
async fn a_user_changes_their_own_password_only_with_the_current_one_and_their_other_sessions_end()
{
    let app = spawn_app().await;
    acme(&app).await;
    let mut other = Browser::new(&app);
    other.sign_in("viewer@acme.test", USER_PW).await;
    let mut b = Browser::new(&app);
    b.sign_in("viewer@acme.test", USER_PW).await;
    let page = b.get("/portal/account").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Change password"));
    let csrf = page.csrf();
    let wrong =
        change(&mut b, &csrf, "not my password", "a new password!", "a new password!").await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("The current password is not right."));
    let differ = change(&mut b, &csrf, USER_PW, "a new password!", "a new passw0rd!").await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    let short = change(&mut b, &csrf, USER_PW, "short", "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mut probe = Browser::new(&app);
    assert_eq!(probe.try_sign_in("viewer@acme.test", USER_PW).await.status, 303, "unchanged");
    let ok = change(&mut b, &csrf, USER_PW, "a new password!", "a new password!").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    assert_eq!(ok.location(), "/portal/account?done=password-changed");
    assert!(
        b.get("/portal/account?done=password-changed")
            .await
            .body
            .contains("Your password was changed")
    );
    // The other session ended; this one stays.
    assert_eq!(other.get("/portal/credentials").await.status, StatusCode::SEE_OTHER);
    let mut c = Browser::new(&app);
    assert_eq!(c.try_sign_in("viewer@acme.test", USER_PW).await.status, 401);
    c.sign_in("viewer@acme.test", "a new password!").await;
}

/// The current password of the change-password form is a guess like a sign-in's: whoever holds
/// a session (left open, or stolen) gets the account's five failures, then nothing for the
/// block's length, not even with the right password, and no sign-in either; every failure is in
/// the organization's audit trail.
#[tokio::test]
async fn guessing_the_current_password_is_throttled_with_the_accounts_sign_ins_and_audited() {
    let app = spawn_app().await;
    acme(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("viewer@acme.test", USER_PW).await;
    let csrf = b.get("/portal/account").await.csrf();
    // A right current password with a refused new one gives its count back: not a guess.
    for _ in 0..6 {
        let short = change(&mut b, &csrf, USER_PW, "short", "short").await;
        assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    }
    for i in 0..5 {
        let wrong =
            change(&mut b, &csrf, &format!("guess {i}"), "a new password!", "a new password!")
                .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
        assert!(wrong.body.contains("The current password is not right."));
    }
    let paused = change(&mut b, &csrf, USER_PW, "a new password!", "a new password!").await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS, "{}", paused.body);
    assert!(paused.body.contains("try again in 15 minutes"), "{}", paused.body);
    // Tried again while paused: refused unchecked, and audited too.
    let again = change(&mut b, &csrf, "guess 5", "a new password!", "a new password!").await;
    assert_eq!(again.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(paused.headers.contains_key("retry-after"));
    let mut other = Browser::new(&app);
    assert_eq!(other.try_sign_in("viewer@acme.test", USER_PW).await.status, 429);
    // The password did not change, and the block ends.
    app.clock.advance(15 * 60 + 1);
    let ok = change(&mut b, &csrf, USER_PW, "a new password!", "a new password!").await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let audit: Value = app
            .admin(Method::GET, "/audit?org=acme&kind=portal.sign_in_failed", None)
            .await
            .json()
            .await
            .unwrap();
        let events = audit["items"].as_array().unwrap();
        let during = |reason: &str| {
            events
                .iter()
                .filter(|e| e["reason"] == reason && e["details"]["during"] == "password_change")
                .count()
        };
        if during("bad_current_password") == 5 && during("throttled") == 2 {
            assert!(!audit.to_string().contains("guess 0"), "no password in the trail");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "failures not audited: {audit}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A sign-in by the account's owner clears the sign-in failures, not the guesses made in the
/// password-change form: a session held by someone else gets no fresh guesses from it.
#[tokio::test]
async fn the_owners_sign_in_gives_a_held_session_no_fresh_password_guesses() {
    let app = spawn_app().await;
    acme(&app).await;
    let mut held = Browser::new(&app);
    held.sign_in("viewer@acme.test", USER_PW).await;
    let csrf = held.get("/portal/account").await.csrf();
    for i in 0..3 {
        let wrong =
            change(&mut held, &csrf, &format!("guess {i}"), "a new password!", "a new password!")
                .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
    }
    let mut owner = Browser::new(&app);
    owner.sign_in("viewer@acme.test", USER_PW).await;
    for i in 3..5 {
        let wrong =
            change(&mut held, &csrf, &format!("guess {i}"), "a new password!", "a new password!")
                .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "guess {i}");
    }
    let paused = change(&mut held, &csrf, "guess 5", "a new password!", "a new password!").await;
    assert_eq!(paused.status, StatusCode::TOO_MANY_REQUESTS, "{}", paused.body);
    // The owner, proving the current password once the pause is over, clears the count.
    app.clock.advance(15 * 60 + 1);
    let owner_csrf = owner.get("/portal/account").await.csrf();
    let short = change(&mut owner, &owner_csrf, USER_PW, "short", "short").await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    for i in 0..4 {
        let wrong =
            change(&mut held, &csrf, &format!("again {i}"), "a new password!", "a new password!")
                .await;
        assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY, "again {i}");
    }
}

#[tokio::test]
async fn deactivating_asks_first_and_every_user_action_ends_with_a_message() {
    let app = spawn_app().await;
    let viewer = acme(&app).await;
    let mut v = Browser::new(&app);
    v.sign_in("viewer@acme.test", USER_PW).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let page = b.get(&format!("/portal/users/{viewer}")).await;
    // The page links to a confirmation; no form deactivates in one click.
    assert!(page.body.contains(&format!(r#"href="/portal/users/{viewer}/deactivate""#)));
    assert!(!page.body.contains(&format!(r#"action="/portal/users/{viewer}/deactivate""#)));
    let confirm = b.get(&format!("/portal/users/{viewer}/deactivate")).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Deactivate viewer<wbr>@acme.<wbr>test?"));
    assert!(confirm.body.contains(&format!(r#"action="/portal/users/{viewer}/deactivate""#)));
    assert_eq!(v.get("/portal/credentials").await.status, 200, "asking changed nothing");

    let out = b.post(&format!("/portal/users/{viewer}/deactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.location(), format!("/portal/users/{viewer}?done=user-deactivated"));
    assert!(b.get(out.location()).await.body.contains("User deactivated"));
    assert_eq!(v.get("/portal/credentials").await.status, StatusCode::SEE_OTHER);

    let out = b.post(&format!("/portal/users/{viewer}/reactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(out.location(), format!("/portal/users/{viewer}?done=user-reactivated"));
    assert!(b.get(out.location()).await.body.contains("User reactivated"));
    v.sign_in("viewer@acme.test", USER_PW).await;

    let out = b
        .post(&format!("/portal/users/{viewer}/role"), &[("csrf", &csrf), ("role", "admin")])
        .await;
    assert_eq!(out.location(), format!("/portal/users/{viewer}?done=role-changed"));
    assert!(b.get(out.location()).await.body.contains("Role changed."));
    let users: Value = app.admin(Method::GET, "/users?org=acme", None).await.json().await.unwrap();
    let u = users.as_array().unwrap().iter().find(|u| u["id"] == viewer.as_str()).unwrap();
    assert_eq!((u["role"].as_str(), u["status"].as_str()), (Some("admin"), Some("active")));
    // The promoted user now manages credentials, in the session they already had.
    assert_eq!(v.get("/portal/credentials/new").await.status, 200);
    // The portal offers no platform role, and refuses one.
    let out = b
        .post(&format!("/portal/users/{viewer}/role"), &[("csrf", &csrf), ("role", "platform")])
        .await;
    assert_eq!(out.status, StatusCode::BAD_REQUEST);
    // An admin cannot change their own role.
    let me = users.as_array().unwrap().iter().find(|u| u["email"] == "admin@acme.test").unwrap();
    let me = me["id"].as_str().unwrap();
    let out =
        b.post(&format!("/portal/users/{me}/role"), &[("csrf", &csrf), ("role", "viewer")]).await;
    assert_eq!(out.status, StatusCode::CONFLICT);
    // A role the form does not offer is refused, never quietly made a viewer.
    for role in ["platform", "owner", "Admin", ""] {
        let email = format!("odd-{}@acme.test", role.len());
        let out =
            b.post("/portal/users", &[("csrf", &csrf), ("email", &email), ("role", role)]).await;
        assert_eq!(out.status, StatusCode::BAD_REQUEST, "role {role:?}");
    }
    let listed: Value = app.admin(Method::GET, "/users?org=acme", None).await.json().await.unwrap();
    assert!(!listed.to_string().contains("odd-"), "no user was made for an unknown role");
    // Adding a user ends with the message and the password shown once.
    let out = b
        .post("/portal/users", &[("csrf", &csrf), ("email", "new@acme.test"), ("role", "viewer")])
        .await;
    assert_eq!(out.location(), "/portal/users?done=user-added");
    let list = b.get(out.location()).await;
    assert!(list.body.contains("User added.") && list.body.contains("new-password"));
}

#[tokio::test]
async fn a_deactivated_users_email_goes_to_a_new_user_in_any_organization_and_reactivation_waits_for_it()
 {
    let app = spawn_app().await;
    acme(&app).await;
    let old = create_user(&app, "globex", "moved@example.test", "admin", USER_PW).await;
    let res = app.admin(Method::POST, &format!("/users/{old}/deactivate"), None).await;
    assert_eq!(res.status(), 200);
    // acme's admin adds the address as for any new email: nothing tells of the old user.
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let out = b
        .post(
            "/portal/users",
            &[("csrf", &csrf), ("email", "Moved@example.test"), ("role", "viewer")],
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER, "{}", out.body);
    let users: Value = app.admin(Method::GET, "/users", None).await.json().await.unwrap();
    let holders: Vec<&Value> = users
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"].as_str().unwrap().eq_ignore_ascii_case("moved@example.test"))
        .collect();
    assert_eq!(holders.len(), 2, "the old user is kept, for the audit trail");
    let new = holders.iter().find(|u| u["org"] == "acme").unwrap();
    assert_eq!((new["role"].as_str(), new["status"].as_str()), (Some("viewer"), Some("active")));
    assert_ne!(new["id"].as_str(), Some(old.as_str()));
    // The old user cannot come back while the address is taken.
    let res = app.admin(Method::POST, &format!("/users/{old}/reactivate"), None).await;
    assert_eq!(res.status(), 409);
    let p: Value = res.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("another user has this email"), "{p}");
}

#[tokio::test]
async fn the_users_api_reactivates_changes_roles_and_issues_reset_codes_and_documents_them() {
    let app = spawn_app().await;
    let viewer = acme(&app).await;
    let res =
        app.admin(Method::PATCH, &format!("/users/{viewer}"), Some(json!({"role": "admin"}))).await;
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["role"], "admin");
    let bad =
        app.admin(Method::PATCH, &format!("/users/{viewer}"), Some(json!({"role": "root"}))).await;
    assert_eq!(bad.status(), 422);
    app.admin(Method::POST, &format!("/users/{viewer}/deactivate"), None).await;
    // A deactivated user gets no reset code.
    let res = app.admin(Method::POST, &format!("/users/{viewer}/reset-password"), None).await;
    assert_eq!(res.status(), 409);
    let res = app.admin(Method::POST, &format!("/users/{viewer}/reactivate"), None).await;
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.unwrap();
    assert_eq!((u["status"].as_str(), u["role"].as_str()), (Some("active"), Some("admin")));
    let res = app.admin(Method::POST, &format!("/users/{viewer}/reset-password"), None).await;
    assert_eq!(res.status(), 201);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["reset_url"], app.url("/portal/reset-password"));
    assert!(r["expires_at"].is_string() && r["user"]["id"] == viewer.as_str());
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    for path in [
        "/admin/v1/users/{id}",
        "/admin/v1/users/{id}/reactivate",
        "/admin/v1/users/{id}/reset-password",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["PasswordReset"].is_object());
}

#[tokio::test]
async fn rotating_with_the_current_secret_stopped_at_once_asks_first_then_says_it_is_done() {
    let app = spawn_app().await;
    acme(&app).await;
    let (id, _) = app
        .create_credential(json!({"name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"]}))
        .await;
    let secrets = |v: &Value| v["secrets"].as_array().unwrap().len();
    let before: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let ask = b
        .post(&format!("/portal/credentials/{id}/rotate"), &[("csrf", &csrf), ("overlap", "0")])
        .await;
    assert_eq!(ask.status, 200);
    assert!(ask.body.contains("Stop the current secret now?"));
    assert!(ask.body.contains(r#"name="confirm" value="yes""#));
    let after: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(secrets(&after), secrets(&before), "asking rotated nothing");
    let done = b
        .post(
            &format!("/portal/credentials/{id}/rotate"),
            &[("csrf", &csrf), ("overlap", "0"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(done.location(), format!("/portal/credentials/{id}"));
    let page = b.get(done.location()).await;
    assert!(page.body.contains("new-client-secret"), "the secret is shown once");
    assert!(page.body.contains("Secret rotated."), "{}", page.body);
    // On a reload the secret is gone, and so is the message that came with it.
    let reload = b.get(done.location()).await;
    assert!(!reload.body.contains("new-client-secret") && !reload.body.contains("Secret rotated."));
    // A rotation with an overlap needs no confirmation; every edit says it was saved.
    app.clock.advance(600);
    let out = b
        .post(&format!("/portal/credentials/{id}/rotate"), &[("csrf", &csrf), ("overlap", "3600")])
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let edit = [("csrf", csrf.as_str()), ("name", "HR sync 2"), ("perm.eligibility", "read")];
    let out = b.post(&format!("/portal/credentials/{id}"), &edit).await;
    assert_eq!(out.location(), format!("/portal/credentials/{id}?done=saved"));
    assert!(b.get(out.location()).await.body.contains("Changes saved."));
}

/// Rows of the audit table on a page, by their source IP (unique per seeded event).
fn audit_ips(page: &Answer) -> Vec<String> {
    page.body
        .split(r#"<td data-label="Source IP" class="ip">"#)
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

/// The link to the next (older) page, if any.
fn older_link(page: &Answer) -> Option<String> {
    let at = page.body.find(r#"rel="next" href=""#)?;
    let rest = &page.body[at + r#"rel="next" href=""#.len()..];
    Some(rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
}

#[tokio::test]
async fn the_audit_page_reaches_every_event_newest_first_with_filters_in_words() {
    let app = spawn_app().await;
    acme(&app).await;
    let (id, _) = app
        .create_credential(json!({"name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"]}))
        .await;
    // An attack: many refusals, more than any fixed window would keep, and events of another
    // organization that must never show.
    let now = common::real_now();
    let records: Vec<tokenmint_store::AuditRecord> = (0..130)
        .map(|i| tokenmint_store::AuditRecord {
            seq: 0,
            at: now - 20 * 86_400 + i * 3600,
            kind: "token.refused".into(),
            org: Some(if i % 10 == 9 { "globex" } else { "acme" }.into()),
            client_id: Some(id.clone()),
            actor: None,
            source_ip: Some(format!("10.0.{}.{}", i / 256, i % 256)),
            reason: Some("wrong_secret".into()),
            details: json!({}),
        })
        .collect();
    app.state.store.append_audit(&records).await.unwrap();
    let mut b = Browser::new(&app);
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    let first = b.get("/portal/audit?kind=token.refused").await;
    assert_eq!(first.status, 200);
    assert!(first.body.contains("Wrong secret") && !first.body.contains("wrong_secret"));
    assert!(first.body.contains("HR sync") && first.body.contains("Token request refused"));
    assert_eq!(audit_ips(&first)[0], "10.0.0.128", "the newest first");
    let mut seen = audit_ips(&first);
    let mut next = older_link(&first);
    while let Some(link) = next {
        assert!(link.contains("kind=token.refused"), "the cursor keeps the filter: {link}");
        let page = b.get(&link).await;
        assert_eq!(page.status, 200);
        seen.extend(audit_ips(&page));
        next = older_link(&page);
    }
    let mut want: Vec<String> = (0..130)
        .rev()
        .filter(|i| i % 10 != 9)
        .map(|i| format!("10.0.{}.{}", i / 256, i % 256))
        .collect();
    assert_eq!(seen, want, "every event of the organization once, newest first");

    // The date range and the credential filter narrow it in the query.
    let day = |t: i64| {
        let d = time::OffsetDateTime::from_unix_timestamp(t).unwrap().date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    };
    let from = now - 20 * 86_400 + 48 * 3600;
    let ranged = b
        .get(&format!(
            "/portal/audit?kind=token.refused&client={id}&from={}&to={}",
            day(from),
            day(from)
        ))
        .await;
    want.retain(|ip| {
        let i: i64 = ip.rsplit('.').next().unwrap().parse().unwrap();
        day(now - 20 * 86_400 + i * 3600) == day(from)
    });
    assert_eq!(audit_ips(&ranged), want);
    assert_eq!(b.get("/portal/audit?from=yesterday").await.status, StatusCode::BAD_REQUEST);
    // A filter that can match nothing is said so on a page of the portal, not answered with
    // "No events match" or a bare error.
    for (query, says) in [
        ("before=abc", "page link is damaged"),
        ("kind=nonsense", "there is no event kind &#39;nonsense&#39;"),
        ("from=2026-12-10&to=2026-12-01", "swap the two dates"),
        ("kind=token.refused&kind=user.created", "a parameter is repeated or malformed"),
        ("before=1&before=2", "a parameter is repeated or malformed"),
    ] {
        let page = b.get(&format!("/portal/audit?{query}")).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(page.body.contains(says), "{query}: {}", page.body);
        assert!(page.body.contains("Back to the portal"), "{query}");
    }

    // Actors by name: the user's email, not a raw code.
    let csrf = b.get("/portal/users").await.csrf();
    b.post("/portal/users", &[("csrf", &csrf), ("email", "x@acme.test"), ("role", "viewer")]).await;
    // The trail is written behind the answers: read until the event is in it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mine = loop {
        let mine = b.get("/portal/audit?actor=user%3Aadmin%40acme.test").await;
        if mine.body.contains(r#"data-label="Event">User added"#) {
            break mine;
        }
        assert!(std::time::Instant::now() < deadline, "no User added: {}", mine.body);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(!mine.body.contains(r#"data-label="Event">Token request refused"#));
    assert!(mine.body.contains(r#"data-label="By">admin@acme.test<"#), "named by email");
}

/// The texts of the options of the select `id` on a page, in order, without its "any" option.
fn option_texts(page: &Answer, id: &str) -> Vec<String> {
    let start = page.body.find(&format!(r#"<select id="{id}""#)).unwrap();
    let select = &page.body[start..start + page.body[start..].find("</select>").unwrap()];
    select
        .split("<option value=\"")
        .skip(2)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            text[..text.find('<').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_audit_filters_list_credentials_and_actors_by_name_whatever_the_case() {
    let app = spawn_app().await;
    acme(&app).await;
    for email in ["Zed@acme.test", "bea@acme.test"] {
        create_user(&app, "acme", email, "viewer", USER_PW).await;
    }
    let mut ids = std::collections::HashMap::new();
    for name in ["payroll", "Billing sync", "zeta feed", "Access review"] {
        let (id, _) = app
            .create_credential(json!({"name": name, "org": "acme", "environment": "sandbox",
                "permissions": ["eligibility:read"]}))
            .await;
        ids.insert(name, id);
    }
    let mut b = Browser::new(&app);
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    let page = b.get("/portal/audit").await;
    assert_eq!(page.status, 200);
    let named = |name: &str| format!("{name} ({})", ids[name]);
    // Credentials may share a name: each is told apart by its id.
    let by = |name: &str| format!("{name} ({}, credential)", ids[name]);
    assert_eq!(
        option_texts(&page, "client"),
        [named("Access review"), named("Billing sync"), named("payroll"), named("zeta feed")]
    );
    assert_eq!(
        option_texts(&page, "actor"),
        [
            by("Access review"),
            "admin@acme.test".to_owned(),
            "bea@acme.test".to_owned(),
            by("Billing sync"),
            by("payroll"),
            "viewer@acme.test".to_owned(),
            "Zed@acme.test".to_owned(),
            by("zeta feed"),
        ]
    );
}

#[tokio::test]
async fn the_reset_form_names_the_account_for_password_managers_once_the_code_is_entered() {
    let app = spawn_app().await;
    let viewer = acme(&app).await;
    let reset: Value = app
        .admin(Method::POST, &format!("/users/{viewer}/reset-password"), None)
        .await
        .json()
        .await
        .unwrap();
    let code = reset["code"].as_str().unwrap();
    let mut b = Browser::new(&app);
    let first = b.get("/portal/reset-password").await;
    assert!(first.body.contains(r#"name="code""#) && !first.body.contains("new_password"));

    // A wrong code is refused on the first step, naming no account.
    let wrong =
        b.post("/portal/reset-password", &[("csrf", &first.csrf()), ("code", "tmr_no")]).await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.body.contains("This code is not valid") && !wrong.body.contains("viewer@"));

    // The code alone: the password step, with the account's email as the username field.
    let second = b.post("/portal/reset-password", &[("csrf", &wrong.csrf()), ("code", code)]).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let username = r#"<input id="username" name="username" type="email" autocomplete="username" value="viewer@acme.test" readonly>"#;
    assert!(second.body.contains(username), "{}", second.body);
    assert!(second.body.contains(r#"autocomplete="new-password""#));
    assert!(second.body.contains(&format!(r#"<input type="hidden" name="code" value="{code}">"#)));
    // A refusal on that step keeps the account named.
    let csrf = second.csrf();
    let differ = b
        .post(
            "/portal/reset-password",
            &[
                ("csrf", &csrf),
                ("code", code),
                ("username", "viewer@acme.test"),
                ("new_password", "a brand new password"),
                ("confirm_password", "another one"),
            ],
        )
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        differ.body.contains("The two new passwords differ.") && differ.body.contains(username)
    );
    let csrf = differ.csrf();
    let done = b
        .post(
            "/portal/reset-password",
            &[
                ("csrf", &csrf),
                ("code", code),
                ("username", "viewer@acme.test"),
                ("new_password", "a brand new password"),
                ("confirm_password", "a brand new password"),
            ],
        )
        .await;
    assert_eq!(done.location(), "/portal/sign-in?done=password-set", "{}", done.body);
    Browser::new(&app).sign_in("viewer@acme.test", "a brand new password").await;
}

/// The portal's forms refuse what the admin API refuses: an email, a credential's name or an
/// audience holding a bidirectional control, a zero-width or other invisible format character
/// or a line separator is answered with the form again, naming the character; nothing is saved.
#[tokio::test]
async fn the_portal_forms_refuse_bidi_zero_width_and_format_characters() {
    let app = spawn_app().await;
    acme(&app).await;
    let (id, _) = app
        .create_credential(json!({"name": "api", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"]}))
        .await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let edit = format!("/portal/credentials/{id}");
    for c in ['\u{202e}', '\u{2066}', '\u{200f}', '\u{200b}', '\u{2028}', '\u{feff}', '\u{ad}'] {
        let code = format!("U+{:04X}", u32::from(c));
        let email = format!("{c}tset.emca@nimda");
        let forms: [(&str, Vec<(&str, String)>); 3] = [
            ("/portal/users", vec![("email", email), ("role", "viewer".into())]),
            (&edit, vec![("name", format!("evil{c}FAKE"))]),
            (&edit, vec![("name", "api".into()), ("audiences", format!("https://a{c}b"))]),
        ];
        for (path, fields) in forms {
            let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
            form.extend(fields.iter().map(|(k, v)| (*k, v.as_str())));
            let out = b.post(path, &form).await;
            assert_ne!(out.status, StatusCode::SEE_OTHER, "{path} {fields:?} was saved");
            assert!(out.body.contains(&code), "{path} {fields:?}: {}", out.body);
        }
    }
    let users: Value = app.admin(Method::GET, "/users?org=acme", None).await.json().await.unwrap();
    assert!(!users.to_string().contains("nimda"), "{users}");
    let cred: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(cred["name"], "api");
    assert_eq!(cred["audiences"], json!([]), "{cred}");
}
