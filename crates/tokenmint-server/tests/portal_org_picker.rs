//! The organization picker of the portal: a `platform` user chooses any organization and works
//! in it (its credentials, users and audit log, generating credentials and adding users there),
//! while an organization's admin or viewer who names another organization is told it is not
//! found and creates nothing there.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::browser::Browser;
use common::{TestApp, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const PW: &str = "a long enough portal password";

async fn create_user(app: &TestApp, org: &str, email: &str, role: &str) {
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": org, "email": email, "role": role, "password": PW})),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// Two organizations whose names sort otherwise than their slugs, each with a credential, and
/// a platform user, an admin and a viewer of `acme`.
async fn two_orgs(app: &TestApp) {
    for (slug, name) in [("acme", "Zenith Acme"), ("globex", "Alpha Globex")] {
        let res = app
            .admin(Method::POST, "/organizations", Some(json!({"slug": slug, "name": name})))
            .await;
        assert_eq!(res.status(), 201);
        app.create_credential(json!({"name": format!("{slug} sync"), "org": slug,
            "environment": "sandbox", "permissions": ["eligibility:read"]}))
            .await;
    }
    create_user(app, "platform", "root@platform.test", "platform").await;
    create_user(app, "acme", "admin@acme.test", "admin").await;
    create_user(app, "acme", "viewer@acme.test", "viewer").await;
    create_user(app, "globex", "admin@globex.test", "admin").await;
}

/// The organization and role of every user with `email`.
async fn user_orgs(app: &TestApp, email: &str) -> Vec<(String, String)> {
    let v: Value = app.admin(Method::GET, "/users", None).await.json().await.unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|u| u["email"] == email)
        .map(|u| (u["org"].as_str().unwrap().to_owned(), u["role"].as_str().unwrap().to_owned()))
        .collect()
}

async fn credential_names(app: &TestApp, org: &str) -> Vec<String> {
    let v: Value = app
        .admin(Method::GET, &format!("/credentials?org={org}"), None)
        .await
        .json()
        .await
        .unwrap();
    v["items"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_owned()).collect()
}

fn generate_form<'a>(csrf: &'a str, org: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("org", org),
        ("name", "Chosen org sync"),
        ("environment", "production"),
        ("expiration", "90d"),
        ("perm.eligibility", "read"),
        ("perm.billing", "none"),
    ]
}

#[tokio::test]
async fn a_platform_user_picks_any_organization_and_generates_credentials_in_it() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("root@platform.test", PW).await;

    // The picker lists every organization by name: Alpha Globex before Zenith Acme.
    let own = b.get("/portal/credentials").await;
    assert_eq!(own.status, StatusCode::OK);
    let picker = &own.body[own.body.find(r#"id="org-picker""#).expect("a picker")..];
    let (globex, acme) =
        (picker.find(r#"value="globex""#).unwrap(), picker.find(r#"value="acme""#).unwrap());
    assert!(globex < acme, "sorted by name: {picker}");

    let page = b.get("/portal/credentials?org=globex").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("globex sync") && !page.body.contains("acme sync"), "{}", page.body);
    assert!(page.body.contains(r#"<option value="globex" selected>"#));
    assert!(page.body.contains("/portal/credentials/new?org=globex"));
    for path in ["/portal/users?org=globex", "/portal/audit?org=globex"] {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(page.body.contains(r#"<option value="globex" selected>"#), "{path}");
    }
    let users = b.get("/portal/users?org=globex").await;
    assert!(users.body.contains("admin@globex.test") && !users.body.contains("admin@acme.test"));
    // The Add-a-user form adds to the organization shown, named in a hidden field.
    assert!(users.body.contains("Add a user to globex"), "{}", users.body);
    assert!(users.body.contains(r#"<input type="hidden" name="org" value="globex">"#));
    let csrf = users.csrf();
    let added = b
        .post(
            "/portal/users",
            &[
                ("csrf", csrf.as_str()),
                ("org", "globex"),
                ("email", "new@globex.test"),
                ("role", "admin"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::SEE_OTHER, "{}", added.body);
    assert_eq!(added.location(), "/portal/users?org=globex&done=user-added");
    let shown = b.get(added.location()).await;
    assert!(shown.body.contains("Give this password to new@globex.test"), "{}", shown.body);
    assert!(shown.body.contains(r#"<option value="globex" selected>"#), "stays in globex");
    assert_eq!(
        user_orgs(&app, "new@globex.test").await,
        vec![("globex".to_owned(), "admin".to_owned())]
    );
    // A taken email is told on the same organization's page.
    let again = b
        .post(
            "/portal/users",
            &[
                ("csrf", csrf.as_str()),
                ("org", "globex"),
                ("email", "new@globex.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    assert!(again.body.contains(r#"<option value="globex" selected>"#), "{}", again.body);
    // In an organization that does not exist, nothing is added.
    let nowhere = b
        .post(
            "/portal/users",
            &[
                ("csrf", csrf.as_str()),
                ("org", "nowhere"),
                ("email", "x@nowhere.test"),
                ("role", "viewer"),
            ],
        )
        .await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    assert!(user_orgs(&app, "x@nowhere.test").await.is_empty());
    let users = b.get("/portal/users?org=globex").await;
    let at = users.body.find("/portal/users/").unwrap();
    let link = &users.body[at..];
    let user = b.get(&link[..link.find('"').unwrap()]).await;
    assert_eq!(user.status, StatusCode::OK);
    assert!(user.body.contains(r#"href="/portal/users?org=globex""#), "{}", user.body);

    let form = b.get("/portal/credentials/new?org=globex").await;
    assert_eq!(form.status, StatusCode::OK);
    assert!(form.body.contains(r#"<input type="hidden" name="org" value="globex">"#));
    let csrf = form.csrf();
    let res = b.post("/portal/credentials", &generate_form(&csrf, "globex")).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    // The new credential's page shows its secret once and leads back to the chosen organization.
    let shown = b.get(res.location()).await;
    assert!(shown.shown_secret().is_some());
    assert!(shown.body.contains(r#"href="/portal/credentials?org=globex""#), "{}", shown.body);
    assert!(credential_names(&app, "globex").await.contains(&"Chosen org sync".to_owned()));
    assert!(!credential_names(&app, "acme").await.contains(&"Chosen org sync".to_owned()));

    // An organization that does not exist is not found, for pages and forms alike.
    assert_eq!(b.get("/portal/credentials?org=nowhere").await.status, StatusCode::NOT_FOUND);
    let res = b.post("/portal/credentials", &generate_form(&csrf, "nowhere")).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_organizations_admin_or_viewer_naming_another_organization_finds_nothing_there() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    for email in ["admin@acme.test", "viewer@acme.test"] {
        let mut b = Browser::new(&app);
        b.sign_in(email, PW).await;
        let own = b.get("/portal/credentials").await;
        assert_eq!(own.status, StatusCode::OK);
        assert!(!own.body.contains("org-picker"), "{email} sees no picker");
        assert!(own.body.contains("acme sync") && !own.body.contains("globex sync"));
        for path in [
            "/portal/credentials?org=globex",
            "/portal/credentials/new?org=globex",
            "/portal/users?org=globex",
            "/portal/audit?org=globex",
        ] {
            let page = b.get(path).await;
            assert_eq!(page.status, StatusCode::NOT_FOUND, "{email} {path}");
            assert!(!page.body.contains("globex sync") && !page.body.contains("@globex.test"));
        }
        let csrf = own.csrf();
        let res = b.post("/portal/credentials", &generate_form(&csrf, "globex")).await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{email}");
        let res = b
            .post(
                "/portal/users",
                &[
                    ("csrf", csrf.as_str()),
                    ("org", "globex"),
                    ("email", "in@globex.test"),
                    ("role", "admin"),
                ],
            )
            .await;
        assert_eq!(res.status, StatusCode::NOT_FOUND, "{email}");
        assert!(user_orgs(&app, "in@globex.test").await.is_empty(), "{email} added no one");
        // Naming their own organization changes nothing.
        assert_eq!(b.get("/portal/credentials?org=acme").await.status, StatusCode::OK);
    }
    assert_eq!(credential_names(&app, "globex").await, vec!["globex sync".to_owned()]);
    assert!(!credential_names(&app, "acme").await.contains(&"Chosen org sync".to_owned()));
}

/// The `href`s of the page's side navigation, in order.
fn nav_links(body: &str) -> Vec<String> {
    let nav = &body[body.find(r#"<nav class="sidenav""#).expect("a side navigation")..];
    let nav = &nav[..nav.find("</nav>").unwrap()];
    nav.split(r#"href=""#).skip(1).map(|s| s[..s.find('"').unwrap()].to_owned()).collect()
}

/// The organization the page's header names.
fn header_org(body: &str) -> String {
    let at = body.find(r#"<span class="org">"#).expect("a header") + r#"<span class="org">"#.len();
    body[at..at + body[at..].find('<').unwrap()].to_owned()
}

#[tokio::test]
async fn a_platform_user_working_in_an_organization_stays_in_it_through_the_navigation() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    b.sign_in("root@platform.test", PW).await;
    let globex_credential = {
        let v: Value =
            app.admin(Method::GET, "/credentials?org=globex", None).await.json().await.unwrap();
        v["items"][0]["client_id"].as_str().unwrap().to_owned()
    };
    let in_globex = [
        "/portal/credentials?org=globex".to_owned(),
        "/portal/credentials/new?org=globex".to_owned(),
        "/portal/users?org=globex".to_owned(),
        "/portal/audit?org=globex".to_owned(),
        format!("/portal/credentials/{globex_credential}"),
        format!("/portal/credentials/{globex_credential}/deactivate"),
    ];
    for path in &in_globex {
        let page = b.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert_eq!(header_org(&page.body), "globex", "{path}: the header names the organization");
        assert_eq!(
            nav_links(&page.body),
            [
                "/portal/credentials?org=globex",
                "/portal/users?org=globex",
                "/portal/audit?org=globex",
                // One's own account belongs to no other organization.
                "/portal/account",
            ],
            "{path}"
        );
    }
    // In their own organization the links name none.
    let own = b.get("/portal/credentials").await;
    assert_eq!(header_org(&own.body), "platform");
    assert_eq!(
        nav_links(&own.body),
        ["/portal/credentials", "/portal/users", "/portal/audit", "/portal/account"]
    );
}

#[tokio::test]
async fn a_page_asked_for_while_signed_out_is_where_signing_in_goes_on_to() {
    let app = spawn_app().await;
    two_orgs(&app).await;
    let mut b = Browser::new(&app);
    let asked = b.get("/portal/audit?org=globex&kind=token.refused").await;
    assert_eq!(asked.status, StatusCode::SEE_OTHER);
    assert_eq!(
        asked.location(),
        "/portal/sign-in?next=%2Fportal%2Faudit%3Forg%3Dglobex%26kind%3Dtoken.refused"
    );
    let form = b.get(asked.location()).await;
    assert!(
        form.body.contains(
            r#"<input type="hidden" name="next" value="/portal/audit?org=globex&amp;kind=token.refused">"#
        ),
        "{}",
        form.body
    );
    // A wrong password keeps the page to go on to.
    let csrf = form.csrf();
    let wrong = b
        .post(
            "/portal/sign-in",
            &[
                ("csrf", csrf.as_str()),
                ("email", "root@platform.test"),
                ("password", "not the password"),
                ("next", "/portal/audit?org=globex&kind=token.refused"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains(r#"name="next" value="/portal/audit?org=globex&amp;kind"#));
    let csrf = wrong.csrf();
    let signed_in = b
        .post(
            "/portal/sign-in",
            &[
                ("csrf", csrf.as_str()),
                ("email", "root@platform.test"),
                ("password", PW),
                ("next", "/portal/audit?org=globex&kind=token.refused"),
            ],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    assert_eq!(signed_in.location(), "/portal/audit?org=globex&kind=token.refused");

    // Another site is never where a sign-in goes on to, however it is spelt.
    for elsewhere in
        ["https://evil.example/", "//evil.example/x", "/portal//evil.example", "/\\evil.example"]
    {
        let mut b = Browser::new(&app);
        let form = b.get(&format!("/portal/sign-in?next={}", urlencode(elsewhere))).await;
        assert!(!form.body.contains(r#"name="next""#), "{elsewhere}");
        let csrf = form.csrf();
        let res = b
            .post(
                "/portal/sign-in",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", "root@platform.test"),
                    ("password", PW),
                    ("next", elsewhere),
                ],
            )
            .await;
        assert_eq!(res.location(), "/portal/credentials", "{elsewhere}");
    }

    // Signing out says so.
    let page = b.get("/portal/credentials").await;
    let csrf = page.csrf();
    let out = b.post("/portal/sign-out", &[("csrf", csrf.as_str())]).await;
    assert_eq!(out.location(), "/portal/sign-in?done=signed-out");
    assert!(b.get(out.location()).await.body.contains("You are signed out."));
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
