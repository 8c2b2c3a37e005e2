//! The credential portal over HTTP: who may do what, cross-organization isolation, CSRF and
//! Origin checks, sign-in without user enumeration, throttling, session cookies and security
//! headers. The browser scenario is in `e2e/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::{Answer, Browser};
use common::{Options, TestApp, spawn_app, spawn_with};
use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ADMIN_PW: &str = "acme admin password";
const VIEWER_PW: &str = "acme viewer password";
const GLOBEX_PW: &str = "globex admin password";

async fn create_user(app: &TestApp, org: &str, email: &str, role: &str, password: &str) -> Value {
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": org, "email": email, "role": role, "password": password})),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

/// Two organizations, their users, and one acme credential.
async fn two_orgs(app: &TestApp) -> String {
    for org in ["acme", "globex"] {
        let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": org}))).await;
        assert_eq!(res.status(), 201);
    }
    create_user(app, "acme", "admin@acme.test", "admin", ADMIN_PW).await;
    create_user(app, "acme", "viewer@acme.test", "viewer", VIEWER_PW).await;
    create_user(app, "globex", "admin@globex.test", "admin", GLOBEX_PW).await;
    app.sandbox_reader().await.0
}

async fn credential(app: &TestApp, client_id: &str) -> Value {
    let res = app.admin(Method::GET, &format!("/credentials/{client_id}"), None).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The audit records of `kind`, polled until `written` holds for them: the audit trail is
/// written behind the response, by a background task.
async fn audit_once(app: &TestApp, kind: &str, written: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let path = format!("/audit?kind={kind}");
        let audit = app.admin(Method::GET, &path, None).await.text().await.unwrap();
        if written(&audit) {
            return audit;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no {kind} audit record: {audit}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn generate_form(csrf: &str) -> Vec<(&str, &str)> {
    vec![
        ("csrf", csrf),
        ("name", "Payroll"),
        ("environment", "production"),
        ("expiration", "90d"),
        ("perm.eligibility", "read"),
        ("perm.billing", "none"),
    ]
}

#[tokio::test]
async fn a_viewer_can_read_the_credentials_but_cannot_change_anything() {
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let before = credential(&app, &id).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("viewer@acme.test", VIEWER_PW).await;

    let list = b.get("/portal/credentials").await;
    assert!(list.body.contains("HR sync"));
    assert!(!list.body.contains("Generate credential"), "no generate button for a viewer");
    let page = b.get(&format!("/portal/credentials/{id}")).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Save changes") && !page.body.contains("Rotate secret"));
    assert_eq!(b.get("/portal/credentials/new").await.status, 403);

    let edit = [("csrf", csrf.as_str()), ("name", "Renamed"), ("perm.eligibility", "write")];
    let attempts = [
        b.post("/portal/credentials", &generate_form(&csrf)).await,
        b.post(&format!("/portal/credentials/{id}"), &edit).await,
        b.post(&format!("/portal/credentials/{id}/rotate"), &[("csrf", &csrf), ("overlap", "0")])
            .await,
        b.post(&format!("/portal/credentials/{id}/deactivate"), &[("csrf", &csrf)]).await,
        b.post("/portal/users", &[("csrf", &csrf), ("email", "x@acme.test"), ("role", "admin")])
            .await,
    ];
    for a in &attempts {
        assert_eq!(a.status, 403, "{}", a.body);
        assert!(a.body.contains("Not allowed"));
    }
    let users =
        app.admin(Method::GET, "/users?org=acme", None).await.json::<Value>().await.unwrap();
    let admin_id =
        users.as_array().unwrap().iter().find(|u| u["email"] == "admin@acme.test").unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let res = b.post(&format!("/portal/users/{admin_id}/deactivate"), &[("csrf", &csrf)]).await;
    assert_eq!(res.status, 403);

    let after = credential(&app, &id).await;
    assert_eq!(before, after, "the credential is unchanged");
    let listed =
        app.admin(Method::GET, "/credentials?org=acme", None).await.json::<Value>().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "nothing was created");
    assert_eq!(
        app.admin(Method::GET, "/users?org=acme", None).await.json::<Value>().await.unwrap(),
        users
    );
}

#[tokio::test]
async fn an_admin_registers_and_removes_public_keys_in_the_portal_and_a_viewer_cannot() {
    const JWK: &str = r#"{"kty":"OKP","crv":"Ed25519","kid":"partner-1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}"#;
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let page = format!("/portal/credentials/{id}");
    let add = format!("/portal/credentials/{id}/public-keys");
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let shown = b.get(&page).await.body;
    assert!(shown.contains("No public keys registered") && shown.contains("Register key"));

    // Refused with the reason, nothing stored: junk, a private key, nothing at all.
    let private = r#"{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}"#;
    for (text, says) in [("not a key", "key 1"), (private, "private"), ("  ", "Paste a public key")]
    {
        let refused = b.post(&add, &[("csrf", &csrf), ("public_key", text)]).await;
        assert_eq!(refused.status, 422, "{text}: {}", refused.body);
        assert!(refused.body.contains(says), "{text}: {}", refused.body);
        assert!(!refused.body.contains("nWGxne_9"), "the private key is not echoed");
    }
    assert!(credential(&app, &id).await["public_keys"].as_array().unwrap().is_empty());

    let added = b.post(&add, &[("csrf", &csrf), ("public_key", JWK)]).await;
    assert_eq!(added.status, 303, "{}", added.body);
    let shown = b.get(added.location()).await.body;
    assert!(shown.contains("Public key registered"), "{shown}");
    let keys = credential(&app, &id).await["public_keys"].clone();
    let thumbprint = keys[0]["thumbprint"].as_str().unwrap().to_owned();
    assert!(shown.contains(&thumbprint) && shown.contains("kid partner-1"), "{shown}");
    let again = b.post(&add, &[("csrf", &csrf), ("public_key", JWK)]).await;
    assert_eq!(again.status, 422, "the same key twice: {}", again.body);

    // A viewer sees the key but gets neither the form nor the removal.
    let mut viewer = Browser::new(&app);
    let viewer_csrf = viewer.sign_in("viewer@acme.test", VIEWER_PW).await;
    let seen = viewer.get(&page).await.body;
    assert!(
        seen.contains(&thumbprint) && !seen.contains("Register key") && !seen.contains("/remove")
    );
    let remove = format!("/portal/credentials/{id}/public-keys/{thumbprint}/remove");
    assert_eq!(viewer.post(&remove, &[("csrf", &viewer_csrf)]).await.status, 403);

    // Removal is asked first, then done by thumbprint.
    let confirm = b.get(&remove).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Yes, remove the key"), "{}", confirm.body);
    assert!(credential(&app, &id).await["public_keys"].as_array().unwrap().len() == 1);
    let removed = b.post(&remove, &[("csrf", &csrf)]).await;
    assert_eq!(removed.status, 303, "{}", removed.body);
    assert!(b.get(removed.location()).await.body.contains("Public key removed"));
    assert!(credential(&app, &id).await["public_keys"].as_array().unwrap().is_empty());
    assert_eq!(b.get(&remove).await.status, 404, "gone");
}

#[tokio::test]
async fn failed_sign_ins_and_the_pause_they_cause_are_in_the_accounts_organization_audit_log() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut attacker = Browser::new(&app);
    for _ in 0..=5 {
        attacker.try_sign_in("viewer@acme.test", "a guess").await;
    }
    // In the organization's records (audit records are written in the background).
    let blocked =
        audit_once(&app, "source.blocked&org=acme", |a| a.contains("viewer@acme.test")).await;
    assert!(blocked.contains("too_many_portal_sign_in_failures"), "{blocked}");
    // Five passwords checked and refused; the sixth attempt, over the limit, is refused unchecked.
    let failed = audit_once(&app, "portal.sign_in_failed&org=acme", |a| {
        a.matches("\"bad_credentials\"").count() == 5 && a.matches("\"throttled\"").count() == 1
    })
    .await;
    assert!(failed.contains("viewer@acme.test"));

    let mut admin = Browser::new(&app);
    admin.sign_in("admin@acme.test", ADMIN_PW).await;
    let failed = admin.get("/portal/audit?kind=portal.sign_in_failed").await.body;
    assert!(failed.contains("viewer@acme.test</span> (user)"), "the user it is about: {failed}");
    let blocked = admin.get("/portal/audit?kind=source.blocked").await.body;
    assert!(!blocked.contains("No events match"), "{blocked}");
    let mut other = Browser::new(&app);
    other.sign_in("admin@globex.test", GLOBEX_PW).await;
    let theirs = other.get("/portal/audit?kind=portal.sign_in_failed").await.body;
    assert!(!theirs.contains("viewer@acme.test"), "another organization does not see them");
}

#[tokio::test]
async fn a_refused_rotation_redirects_so_a_reload_cannot_repeat_it() {
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let rotate = format!("/portal/credentials/{id}/rotate");
    let form = [("csrf", csrf.as_str()), ("overlap", "3600")];
    let first = b.post(&rotate, &form).await;
    assert_eq!(first.status, 303);
    assert!(b.get(first.location()).await.shown_secret().is_some());
    let secrets = credential(&app, &id).await["secrets"].as_array().unwrap().len();

    // At once again: refused, and answered with a redirect to the page that says why, once.
    let second = b.post(&rotate, &form).await;
    assert_eq!(second.status, 303, "{}", second.body);
    let page = b.get(second.location()).await;
    assert!(page.body.contains("The secret was not rotated: "), "{}", page.body);
    assert!(page.shown_secret().is_none());
    let again = b.get(second.location()).await;
    assert!(!again.body.contains("The secret was not rotated"), "shown once");
    assert_eq!(credential(&app, &id).await["secrets"].as_array().unwrap().len(), secrets);
}

/// The secrets listed on a credential's page: (hint, delete link) per secret, in order.
fn listed_secrets(body: &str) -> Vec<(String, Option<String>)> {
    let start = body.find(r#"<ul class="plain" id="secrets">"#).expect("the secrets list");
    let list = &body[start..start + body[start..].find("</ul>").unwrap()];
    list.split("<li>")
        .skip(1)
        .map(|item| {
            let hint = item["<code>".len()..item.find("</code>").unwrap()].to_owned();
            let link = item.find(r#"href=""#).map(|at| {
                let rest = &item[at + r#"href=""#.len()..];
                rest[..rest.find('"').unwrap()].to_owned()
            });
            (hint, link)
        })
        .collect()
}

#[tokio::test]
async fn at_the_most_live_secrets_the_portal_says_to_delete_an_old_one_and_deletes_it_after_asking()
{
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let page = format!("/portal/credentials/{id}");
    let mut b = Browser::new(&app);
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    // Four rotations keeping the old secrets for an hour: five live secrets, the most allowed.
    for _ in 0..4 {
        assert_eq!(b.rotate(&id).await.status, 303);
        app.clock.advance(10);
    }
    let refused = b.rotate(&id).await;
    assert_eq!(refused.status, 303, "{}", refused.body);
    let shown = b.get(refused.location()).await.body;
    assert!(shown.contains("already has 5 live secrets"), "{shown}");
    assert!(shown.contains("Delete one it no longer needs"), "{shown}");
    assert!(!shown.contains("delete-secret"), "no CLI command in the portal: {shown}");

    // Every old secret has a Delete link; the current one has none.
    let secrets = listed_secrets(&shown);
    assert_eq!(secrets.len(), 5);
    assert_eq!(secrets.iter().filter(|(_, link)| link.is_none()).count(), 1, "{secrets:?}");
    let current = credential(&app, &id).await["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expires_at"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delete = secrets[0].1.clone().expect("the oldest secret can be deleted");
    assert!(delete.ends_with("/delete") && !delete.contains(&current), "{delete}");

    // A viewer sees no link and is refused.
    let mut viewer = Browser::new(&app);
    let viewer_csrf = viewer.sign_in("viewer@acme.test", VIEWER_PW).await;
    assert!(!viewer.get(&page).await.body.contains("/secrets/"), "no Delete for a viewer");
    assert_eq!(viewer.post(&delete, &[("csrf", &viewer_csrf)]).await.status, 403);

    // Asked first; then deleted, said, and a rotation works again.
    let confirm = b.get(&delete).await;
    assert_eq!(confirm.status, 200);
    assert!(confirm.body.contains("Yes, delete the secret"), "{}", confirm.body);
    assert_eq!(credential(&app, &id).await["secrets"].as_array().unwrap().len(), 5);
    let csrf = confirm.csrf();
    let deleted = b.post(&delete, &[("csrf", &csrf)]).await;
    assert_eq!(deleted.status, 303, "{}", deleted.body);
    assert!(b.get(deleted.location()).await.body.contains("Secret deleted"));
    assert_eq!(credential(&app, &id).await["secrets"].as_array().unwrap().len(), 4);
    assert_eq!(b.get(&delete).await.status, 404, "gone");
    assert_eq!(b.rotate(&id).await.location(), page);

    // The current secret is not deleted here: it is replaced by rotating.
    let current = credential(&app, &id).await["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["expires_at"].is_null())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = b.post(&format!("{page}/secrets/{current}/delete"), &[("csrf", &csrf)]).await;
    assert_eq!(refused.status, 409);
    assert!(refused.body.contains("rotate it to replace it"), "{}", refused.body);
}

#[tokio::test]
async fn a_rotated_away_secret_says_when_it_stops_and_then_that_it_stopped() {
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let rotated = b
        .post(&format!("/portal/credentials/{id}/rotate"), &[("csrf", &csrf), ("overlap", "3600")])
        .await;
    assert_eq!(rotated.status, 303, "{}", rotated.body);
    let page = format!("/portal/credentials/{id}");
    let before = b.get(&page).await.body;
    assert!(before.contains(", stops working "), "{before}");
    assert!(!before.contains("stopped working"), "{before}");
    app.clock.advance(3601);
    let after = b.get(&page).await.body;
    assert!(after.contains(", stopped working "), "{after}");
    assert!(!after.contains(", stops working "), "{after}");
}

#[tokio::test]
async fn users_of_one_organization_cannot_see_or_touch_another_organizations_credentials() {
    let app = spawn_app().await;
    let id = two_orgs(&app).await;
    let before = credential(&app, &id).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@globex.test", GLOBEX_PW).await;

    let list = b.get("/portal/credentials").await;
    assert!(list.body.contains("No credentials yet"));
    assert!(!list.body.contains(&id) && !list.body.contains("HR sync"));
    let show = b.get(&format!("/portal/credentials/{id}")).await;
    assert_eq!(show.status, 404);
    assert!(!show.body.contains("HR sync"));
    assert_eq!(b.get(&format!("/portal/credentials/{id}/deactivate")).await.status, 404);
    let edit = [("csrf", csrf.as_str()), ("name", "Stolen"), ("perm.eligibility", "write")];
    assert_eq!(b.post(&format!("/portal/credentials/{id}"), &edit).await.status, 404);
    assert_eq!(
        b.post(&format!("/portal/credentials/{id}/rotate"), &[("csrf", &csrf), ("overlap", "0")])
            .await
            .status,
        404
    );
    assert_eq!(
        b.post(&format!("/portal/credentials/{id}/deactivate"), &[("csrf", &csrf)]).await.status,
        404
    );
    assert_eq!(
        b.post(&format!("/portal/credentials/{id}/activate"), &[("csrf", &csrf)]).await.status,
        404
    );
    assert_eq!(credential(&app, &id).await, before);

    // Nor another organization's users, nor its audit trail.
    let users = b.get("/portal/users").await;
    assert!(users.body.contains("admin@globex.test") && !users.body.contains("acme.test"));
    let acme_users =
        app.admin(Method::GET, "/users?org=acme", None).await.json::<Value>().await.unwrap();
    let viewer_id = acme_users[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        b.post(&format!("/portal/users/{viewer_id}/deactivate"), &[("csrf", &csrf)]).await.status,
        404
    );
    let audit = b.get("/portal/audit").await;
    assert!(!audit.body.contains(&id));

    // What globex generates is globex's.
    let created = b.post("/portal/credentials", &generate_form(&csrf)).await;
    assert_eq!(created.status, 303, "{}", created.body);
    let new_id = created.location().trim_start_matches("/portal/credentials/").to_owned();
    assert_eq!(credential(&app, &new_id).await["org"], "globex");
}

#[tokio::test]
async fn forms_without_the_csrf_token_or_from_another_origin_are_refused() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;

    let mut missing = generate_form(&csrf);
    missing.retain(|(k, _)| *k != "csrf");
    let wrong = generate_form("forged-token");
    for res in [
        b.post("/portal/credentials", &missing).await,
        b.post("/portal/credentials", &wrong).await,
        b.post_with_origin("/portal/credentials", "https://evil.example", &generate_form(&csrf))
            .await,
        b.post_with_origin("/portal/credentials", "null", &generate_form(&csrf)).await,
    ] {
        assert_eq!(res.status, 403);
        assert!(res.body.contains("Request refused"));
    }
    let listed =
        app.admin(Method::GET, "/credentials?org=acme", None).await.json::<Value>().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 1, "nothing was created");

    // Sign-out is a form too.
    assert_eq!(b.post("/portal/sign-out", &[("csrf", "nope")]).await.status, 403);

    // The same form from the portal's own origin goes through.
    let ok = b.post_with_origin("/portal/credentials", &app.base, &generate_form(&csrf)).await;
    assert_eq!(ok.status, 303, "{}", ok.body);

    // Signing in needs the sign-in page's token as well.
    let mut fresh = Browser::new(&app);
    let res = fresh
        .post(
            "/portal/sign-in",
            &[("csrf", "x"), ("email", "admin@acme.test"), ("password", ADMIN_PW)],
        )
        .await;
    assert_eq!(res.status, 403);
    assert!(!fresh.cookies.iter().any(|(k, _)| k == "tm_session"));
}

#[tokio::test]
async fn a_wrong_password_an_unknown_email_and_a_deactivated_user_get_the_same_answer() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let gone = create_user(&app, "acme", "gone@acme.test", "admin", "a password that works").await;
    let res = app
        .admin(Method::POST, &format!("/users/{}/deactivate", gone["id"].as_str().unwrap()), None)
        .await;
    assert_eq!(res.status(), 200);

    let mut b = Browser::new(&app);
    let normalise =
        |a: &Answer, email: &str| a.body.replace(&a.csrf(), "TOKEN").replace(email, "EMAIL");
    let wrong = b.try_sign_in("admin@acme.test", "not the password").await;
    let unknown = b.try_sign_in("nobody@acme.test", "not the password").await;
    let deactivated = b.try_sign_in("gone@acme.test", "a password that works").await;
    for a in [&wrong, &unknown, &deactivated] {
        assert_eq!(a.status, 401);
        assert!(a.body.contains("The email or password is incorrect."));
    }
    assert_eq!(normalise(&wrong, "admin@acme.test"), normalise(&unknown, "nobody@acme.test"));
    assert_eq!(normalise(&wrong, "admin@acme.test"), normalise(&deactivated, "gone@acme.test"));
    assert!(!b.cookies.iter().any(|(k, _)| k == "tm_session"));

    // Every path costs one Argon2id verification with the same parameters: an unknown email is
    // checked against a stand-in hash, so the answer's timing does not tell whether it exists.
    let checks = async || {
        let text = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("tokenmint_portal_password_checks_total "))
            .map(|v| v.trim().parse::<u64>().unwrap())
            .expect("the metric is exported")
    };
    let mut t = Browser::new(&app);
    for (email, password) in [
        ("viewer@acme.test", "wrong password!"),
        ("someone.else@acme.test", "wrong password!"),
        ("gone@acme.test", "a password that works"),
        ("", "wrong password!"),
    ] {
        let before = checks().await;
        let csrf = t.get("/portal/sign-in").await.csrf();
        let fields = [("csrf", csrf.as_str()), ("email", email), ("password", password)];
        assert_eq!(t.post("/portal/sign-in", &fields).await.status, 401, "{email:?}");
        assert_eq!(checks().await - before, 1, "{email:?}: one password verification");
    }
    // "$argon2id$v=19$m=…,t=…,p=…$salt$hash": everything but the salt and the hash is the cost.
    let cost = |phc: &str| phc.split('$').take(4).collect::<Vec<_>>().join("$");
    let known = app.state.store.find_user_by_email("viewer@acme.test").await.unwrap().unwrap();
    assert!(known.password_hash.starts_with("$argon2id$"));
    assert_eq!(cost(&app.state.portal.dummy_hash().await), cost(&known.password_hash));

    // Every failure is in the audit trail, without the password.
    let audit = audit_once(&app, "portal.sign_in_failed", |a| a.contains("nobody@acme.test")).await;
    assert!(!audit.contains("not the password"));
}

#[tokio::test]
async fn sign_in_is_throttled_per_account_and_per_source_with_a_clear_message() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(b.try_sign_in("admin@acme.test", "wrong password").await.status, 401);
    }
    // The failure over the limit is told at once that signing in is paused.
    let over = b.try_sign_in("admin@acme.test", "wrong password").await;
    assert_eq!(over.status, 429);
    assert!(over.body.contains("Too many sign-in attempts"), "{}", over.body);
    // Blocked now, even with the right password, and whatever the email's case.
    let blocked = b.try_sign_in("Admin@Acme.test", ADMIN_PW).await;
    assert_eq!(blocked.status, 429);
    assert!(blocked.body.contains("Too many sign-in attempts"), "{}", blocked.body);
    assert!(blocked.body.contains("try again in 15 minutes"));
    assert!(blocked.headers.contains_key(header::RETRY_AFTER));
    assert!(!b.cookies.iter().any(|(k, _)| k == "tm_session"));
    // The block is audited.
    let blocks = audit_once(&app, "source.blocked", |a| a.contains("\"reason\"")).await;
    let blocks: Value = serde_json::from_str(&blocks).unwrap();
    assert_eq!(blocks["items"][0]["reason"], "too_many_portal_sign_in_failures");
    // Another account from the same source is not blocked yet.
    b.sign_in("viewer@acme.test", VIEWER_PW).await;

    // Many failing accounts from one source block the source.
    let mut attacker = Browser::new(&app);
    let mut statuses = vec![];
    // 6 failures so far from this source; 14 more make 20, the limit; the 21st is over it.
    for i in 0..15 {
        statuses.push(
            attacker.try_sign_in(&format!("guess{i}@acme.test"), "wrong password").await.status,
        );
    }
    assert_eq!(statuses[..14], [StatusCode::UNAUTHORIZED; 14], "{statuses:?}");
    assert_eq!(statuses[14], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let res = attacker.try_sign_in("admin@globex.test", GLOBEX_PW).await;
    assert_eq!(res.status, 429, "the source is blocked after more than 20 failures");
    assert!(res.body.contains("Too many sign-in attempts"));
}

/// Attempts sent at once are each counted before their password is checked: however many
/// arrive together, no more than the account's limit of passwords is checked (a check made
/// before counting let 33 of 40 concurrent guesses through); the rest are told to wait.
#[tokio::test]
async fn concurrent_sign_in_attempts_check_no_more_passwords_than_the_limit() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let checks = async || {
        let m = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
        m.lines()
            .find(|l| l.starts_with("tokenmint_portal_password_checks_total "))
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = checks().await;
    let mut browsers = Vec::new();
    for _ in 0..30 {
        let mut b = Browser::new(&app);
        let csrf = b.get("/portal/sign-in").await.csrf();
        browsers.push((b, csrf));
    }
    let attempts = browsers.iter_mut().map(|(b, csrf)| {
        let csrf = csrf.clone();
        async move {
            b.post(
                "/portal/sign-in",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", "admin@acme.test"),
                    ("password", "wrong password"),
                ],
            )
            .await
            .status
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    let checked = checks().await - before;
    assert!(checked <= 5, "{checked} passwords checked: {statuses:?}");
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert!(refused >= 25, "{statuses:?}");
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_and_ends_at_sign_out_and_expiry() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let page = b.get("/portal/sign-in").await;
    let csrf = page.csrf();
    let res = b
        .post(
            "/portal/sign-in",
            &[("csrf", &csrf), ("email", "ADMIN@acme.test"), ("password", ADMIN_PW)],
        )
        .await;
    assert_eq!(res.status, 303);
    let cookie = res
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("tm_session="))
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/portal", "Max-Age=28800"] {
        assert!(cookie.contains(attr), "{cookie} lacks {attr}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP cannot keep a Secure cookie");
    let value = cookie.split(';').next().unwrap().trim_start_matches("tm_session=").to_owned();
    assert!(value.len() >= 43, "a 256-bit session id");

    // The database holds only a hash of the id.
    let db = std::fs::read(&app.db_path).unwrap();
    assert!(!db.windows(value.len()).any(|w| w == value.as_bytes()));

    // Sign-out ends the session on the server, not only in the browser.
    let csrf = b.get("/portal/credentials").await.csrf();
    let out = b.post("/portal/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    let mut replay = Browser::new(&app);
    replay.cookies.push(("tm_session".into(), value));
    let res = replay.get("/portal/credentials").await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/portal/sign-in?next=%2Fportal%2Fcredentials")
    );

    // Sessions expire.
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    assert_eq!(b.get("/portal/credentials").await.status, 200);
    app.clock.advance(8 * 3600 + 1);
    let res = b.get("/portal/credentials").await;
    assert_eq!(
        (res.status, res.location()),
        (StatusCode::SEE_OTHER, "/portal/sign-in?next=%2Fportal%2Fcredentials")
    );
}

#[tokio::test]
async fn over_https_the_session_cookie_is_secure() {
    let app = spawn_with(Options {
        tweak: |c| c.issuer = Some("https://auth.example.com".into()),
        ..Options::default()
    })
    .await;
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": "acme", "email": "a@acme.test", "password": ADMIN_PW})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut b = Browser::new(&app);
    let page = b.get("/portal/sign-in").await;
    let csrf = page.csrf();
    let res = b
        .post(
            "/portal/sign-in",
            &[("csrf", &csrf), ("email", "a@acme.test"), ("password", ADMIN_PW)],
        )
        .await;
    assert_eq!(res.status, 303);
    let cookies: Vec<String> = res
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let session = cookies.iter().find(|c| c.starts_with("tm_session=")).unwrap();
    assert!(session.contains("; Secure"), "{session}");
}

#[tokio::test]
async fn every_portal_response_carries_the_security_headers() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let mut answers = vec![
        b.get("/portal/").await,
        b.get("/portal/sign-in").await,
        b.get("/portal/credentials").await,
        b.get("/portal/credentials/new").await,
        b.get("/portal/static/portal.css").await,
        b.get("/portal/static/portal.js").await,
        b.get("/portal/no-such-page").await,
        b.get("/portal/credentials/tmc_missing").await,
    ];
    answers.push(b.post("/portal/credentials", &[("csrf", "bad")]).await);
    answers.push(b.post("/portal/credentials", &generate_form(&csrf)).await);
    for a in &answers {
        let csp = a.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"));
        assert_eq!(a.headers["x-frame-options"], "DENY");
        assert_eq!(a.headers["referrer-policy"], "same-origin");
        assert_eq!(a.headers["x-content-type-options"], "nosniff");
    }
    // No inline script or style anywhere, so the CSP breaks nothing.
    let page = b.get("/portal/credentials").await;
    assert!(!page.body.contains("<script>") && !page.body.contains("style="));
    assert_eq!(page.headers["cache-control"], "no-store");
}

#[tokio::test]
async fn the_favicon_answers_as_an_icon_that_caches_keep_and_every_page_links_it() {
    let app = spawn_app().await;
    for (path, content_type, magic) in [
        ("/favicon.ico", "image/x-icon", &b"\0\0\x01\0"[..]),
        ("/portal/static/favicon.svg", "image/svg+xml", &b"<svg "[..]),
    ] {
        let res = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()[header::CONTENT_TYPE], content_type, "{path}");
        let cache = res.headers()[header::CACHE_CONTROL].to_str().unwrap().to_owned();
        assert!(cache.starts_with("public, max-age=") && !cache.ends_with("=0"), "{path}: {cache}");
        let body = res.bytes().await.unwrap();
        assert!(body.starts_with(magic), "{path}: {:?}", &body[..body.len().min(8)]);
    }
    // The signed-out pages and the signed-in layout link the SVG icon.
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let link = r#"<link rel="icon" href="/portal/static/favicon.svg" type="image/svg+xml">"#;
    assert!(b.get("/portal/sign-in").await.body.contains(link));
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    assert!(b.get("/portal/credentials").await.body.contains(link));
}

#[tokio::test]
async fn a_generated_secret_is_shown_once_and_never_in_a_url() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let created = b.post("/portal/credentials", &generate_form(&csrf)).await;
    assert_eq!(created.status, 303);
    let location = created.location().to_owned();
    let first = b.get(&location).await;
    let at = first.body.find(r#"id="new-client-secret">"#).expect("the secret is shown");
    let rest = &first.body[at + r#"id="new-client-secret">"#.len()..];
    let secret = rest[..rest.find('<').unwrap()].to_owned();
    let client_id = location.trim_start_matches("/portal/credentials/").split('?').next().unwrap();
    assert!(!location.contains(&secret));
    let token = app.token(client_id, &secret).await;
    assert_eq!(token["scope"], "eligibility:read");
    assert!(first.body.contains("Credential generated."), "{}", first.body);
    assert!(!location.contains("done="), "nothing in the URL brings the message back");
    let again = b.get(&location).await;
    assert!(!again.body.contains(&secret), "the secret is gone after its one view");
    assert!(!again.body.contains("Credential generated."), "and so is the message with it");

    // The acting user is in the audit trail.
    let audit =
        audit_once(&app, "credential.created", |a| a.contains("user:admin@acme.test")).await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert!(
        audit["items"].as_array().unwrap().iter().any(|e| e["actor"] == "user:admin@acme.test")
    );
}

#[tokio::test]
async fn the_users_api_creates_lists_and_deactivates_portal_users_and_is_documented() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let dup = app
        .admin(Method::POST, "/users", Some(json!({"org": "acme", "email": "ADMIN@acme.test", "password": "long enough password"})))
        .await;
    // A taken email is a conflict, as a taken organization slug is.
    assert_eq!(dup.status(), 409);
    let taken_org = app.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await;
    assert_eq!(taken_org.status(), 409);
    let p: Value = dup.json().await.unwrap();
    assert!(p["detail"].as_str().unwrap().contains("already exists"), "{p}");
    let short = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": "acme", "email": "s@acme.test", "password": "short"})),
        )
        .await;
    let p: Value = short.json().await.unwrap();
    assert_eq!(p["field"], "password");
    let all: Value = app.admin(Method::GET, "/users", None).await.json().await.unwrap();
    assert_eq!(all.as_array().unwrap().len(), 3);
    assert!(!all.to_string().contains("argon2"), "hashes never leave the server");
    let acme: Value = app.admin(Method::GET, "/users?org=acme", None).await.json().await.unwrap();
    assert_eq!(acme.as_array().unwrap().len(), 2);
    let id = acme[0]["id"].as_str().unwrap();
    let res = app.admin(Method::POST, &format!("/users/{id}/deactivate"), None).await;
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["status"], "deactivated");
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["paths"]["/admin/v1/users"].is_object());
    assert!(doc["paths"]["/admin/v1/users/{id}/deactivate"].is_object());
    assert!(doc["components"]["schemas"]["CreateUser"].is_object());
}

/// A server started without `--product-area` (the README's first command): the Generate
/// buttons are disabled, and the list and the form say why no credential can be made and how
/// the operator changes that.
#[tokio::test]
async fn without_product_areas_generating_is_disabled_saying_why_and_what_to_start_the_server_with()
{
    let app = spawn_with(Options {
        tweak: |c| {
            c.product_areas = tokenmint_core::scope::ProductAreas::parse::<&str>(&[]).unwrap()
        },
        ..Options::default()
    })
    .await;
    let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await;
    assert_eq!(res.status(), 201);
    create_user(&app, "acme", "admin@acme.test", "admin", ADMIN_PW).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let list = b.get("/portal/credentials").await;
    assert_eq!(list.status, 200);
    let disabled = r#"<button type="button" class="btn btn-primary" disabled aria-describedby="no-product-areas">Generate credential</button>"#;
    assert!(list.body.contains(disabled), "{}", list.body);
    assert!(!list.body.contains(r#"href="/portal/credentials/new""#), "{}", list.body);
    assert!(list.body.contains(r#"id="no-product-areas""#) && list.body.contains("--product-area"));
    let form = b.get("/portal/credentials/new").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("no-product-areas") && form.body.contains("--product-area"));
    let submit = r#"<button type="submit" class="btn btn-primary" disabled aria-describedby="no-product-areas">Generate credential</button>"#;
    assert!(form.body.contains(submit), "{}", form.body);
    let out = b
        .post(
            "/portal/credentials",
            &[
                ("csrf", &csrf),
                ("name", "Payroll"),
                ("environment", "production"),
                ("expiration", "90d"),
            ],
        )
        .await;
    assert!(out.body.contains("start it with --product-area NAME"), "{}", out.body);
}

/// A form body over the limit is refused with 413 naming the limit, as the admin API does,
/// not as a form that could not be read.
#[tokio::test]
async fn an_oversized_form_is_413_naming_the_limit() {
    let app = spawn_app().await;
    let mut b = Browser::new(&app);
    let csrf = b.get("/portal/sign-in").await.csrf();
    let big = "a".repeat(3 * 1024 * 1024);
    let res =
        b.post("/portal/sign-in", &[("csrf", &csrf), ("email", &big), ("password", "x")]).await;
    assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", res.body);
    assert!(res.body.contains("2097152"), "{}", res.body);
}
