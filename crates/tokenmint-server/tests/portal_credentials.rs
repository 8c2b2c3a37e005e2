//! The portal's credential pages over HTTP: the list's search, filters and pages over every
//! credential of the organization; audiences, token lifetime, rate limit and expiry shown and
//! edited through the same operation as the admin API; custom claims read-only to an
//! organization's admins except those the platform names; and the one-time secret shown
//! exactly once by whichever of two instances serves the page.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::browser::Browser;
use common::{Options, TestApp, instances, spawn_app, spawn_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Clock, ManualClock};
use tokenmint_store::testing::TestDatabase;

const ADMIN_PW: &str = "acme admin password";
const VIEWER_PW: &str = "acme viewer password";
const PLATFORM_PW: &str = "platform user password";

async fn create_user(app: &TestApp, org: &str, email: &str, role: &str, password: &str) {
    let res = app
        .admin(
            Method::POST,
            "/users",
            Some(json!({"org": org, "email": email, "role": role, "password": password})),
        )
        .await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
}

/// acme with an admin and a viewer, globex with one credential, and a platform user (of the
/// organization the first start creates for the platform).
async fn orgs(app: &TestApp) {
    for org in ["acme", "globex"] {
        let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": org}))).await;
        assert_eq!(res.status(), 201);
    }
    create_user(app, "acme", "admin@acme.test", "admin", ADMIN_PW).await;
    create_user(app, "acme", "viewer@acme.test", "viewer", VIEWER_PW).await;
    create_user(app, "platform", "ops@platform.test", "platform", PLATFORM_PW).await;
    app.create_credential(json!({
        "name": "Globex sync", "org": "globex", "environment": "sandbox",
        "permissions": ["eligibility:read"],
    }))
    .await;
}

async fn credential(app: &TestApp, client_id: &str) -> Value {
    let res = app.admin(Method::GET, &format!("/credentials/{client_id}"), None).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// The client IDs of the list page's rows, in order.
fn listed_ids(body: &str) -> Vec<String> {
    body.split(r#"<td data-label="Client ID"><code class="id">"#)
        .skip(1)
        .map(|rest| rest[..rest.find('<').unwrap()].to_owned())
        .collect()
}

/// The href of the page's "Next page" link, unescaped.
fn next_link(body: &str) -> Option<String> {
    let at = body.find(r#"rel="next" href=""#)?;
    let rest = &body[at + r#"rel="next" href=""#.len()..];
    Some(rest[..rest.find('"').unwrap()].replace("&amp;", "&"))
}

/// Every page of a listing, following "Next page" from `first`.
async fn all_pages(b: &mut Browser, first: &str) -> (Vec<String>, usize) {
    let mut ids = vec![];
    let mut pages = 0;
    let mut at = Some(first.to_owned());
    while let Some(path) = at {
        let page = b.get(&path).await;
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        pages += 1;
        assert!(pages < 20, "the pages do not end");
        ids.extend(listed_ids(&page.body));
        at = next_link(&page.body);
    }
    (ids, pages)
}

#[tokio::test]
async fn the_list_searches_filters_and_pages_through_every_credential_of_the_organization() {
    let app = spawn_app().await;
    orgs(&app).await;
    // 45 credentials: more than two pages of 20. Every fifth is production, the seventh is
    // deactivated; names alternate between two families.
    let mut created = vec![];
    for i in 0..45 {
        let name = if i % 2 == 0 { format!("Payroll feed {i}") } else { format!("HR sync {i}") };
        let env = if i % 5 == 0 { "production" } else { "sandbox" };
        let (id, _) = app
            .create_credential(json!({
                "name": name, "org": "acme", "environment": env,
                "permissions": ["eligibility:read"],
            }))
            .await;
        created.push(id);
    }
    let off = &created[7];
    let res = app.admin(Method::POST, &format!("/credentials/{off}/deactivate"), None).await;
    assert_eq!(res.status(), 200);

    let mut b = Browser::new(&app);
    b.sign_in("viewer@acme.test", VIEWER_PW).await;

    // Every credential once, in pages of at most 20, none of globex's.
    let (ids, pages) = all_pages(&mut b, "/portal/credentials").await;
    assert_eq!(pages, 3);
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), 45, "no credential twice");
    assert_eq!(unique, created.iter().collect(), "exactly acme's credentials");
    let first = b.get("/portal/credentials").await;
    assert_eq!(listed_ids(&first.body).len(), 20);
    assert!(!first.body.contains("First page"), "the first page has no link to itself");

    // Search by name (any case) and by client ID.
    let (payroll, _) = all_pages(&mut b, "/portal/credentials?q=PAYROLL").await;
    assert_eq!(payroll.len(), 23);
    let page = b.get("/portal/credentials?q=payroll+feed+4").await;
    let mut expect: Vec<&str> = vec![&created[4], &created[40], &created[42], &created[44]];
    expect.sort_unstable();
    let mut got = listed_ids(&page.body);
    got.sort_unstable();
    assert_eq!(got, expect);
    let by_id = b.get(&format!("/portal/credentials?q={}", created[13])).await;
    assert_eq!(listed_ids(&by_id.body), [created[13].clone()]);

    // Filters, alone and with a search and pages; the form keeps what was chosen.
    let (prod, _) = all_pages(&mut b, "/portal/credentials?env=production").await;
    assert_eq!(prod.len(), 9);
    let (prod_hr, _) = all_pages(&mut b, "/portal/credentials?q=hr&env=production").await;
    assert_eq!(prod_hr.len(), 4, "5, 15, 25, 35");
    let deactivated = b.get("/portal/credentials?status=deactivated").await;
    assert_eq!(listed_ids(&deactivated.body), std::slice::from_ref(off));
    assert!(deactivated.body.contains(r#"<option value="deactivated" selected>"#));
    let (active, _) = all_pages(&mut b, "/portal/credentials?status=active&q=sync").await;
    assert_eq!(active.len(), 21, "22 HR sync, one deactivated");
    let first_sync = b.get("/portal/credentials?q=sync").await;
    let second = b.get(&next_link(&first_sync.body).unwrap()).await;
    assert!(second.body.contains(r#"value="sync""#), "the search stays in the form");
    assert!(second.body.contains("First page"));

    // Nothing matches: said so, with a way back; bad filters and cursors are refused clearly.
    let none = b.get("/portal/credentials?q=nothing-like-this").await;
    assert_eq!(none.status, 200);
    assert!(none.body.contains("No credentials match"));
    let globex = b.get("/portal/credentials?q=Globex").await;
    assert!(listed_ids(&globex.body).is_empty(), "another organization's stay out of search");
    for (path, says) in [
        ("/portal/credentials?env=staging", "production, sandbox"),
        ("/portal/credentials?status=lost", "active, expired, deactivated"),
        ("/portal/credentials?after=garbage", "start again from the first page"),
    ] {
        let res = b.get(path).await;
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{path}");
        assert!(res.body.contains(says), "{path}: {}", res.body);
    }
}

#[tokio::test]
async fn an_org_admin_edits_audiences_lifetime_rate_limit_and_expiry_as_the_admin_api_would() {
    let app = spawn_app().await;
    orgs(&app).await;
    let (id, secret) = app.sandbox_reader().await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let page = b.get(&format!("/portal/credentials/{id}")).await;
    assert!(page.body.contains(r#"<dd id="token-lifetime">"#));
    assert!(page.body.contains("Server default (1000 tokens per minute)"), "{}", page.body);
    // A refused authentication is listed in words, as on the audit page.
    assert_eq!(app.token_for(&id, "tms_wrong", &[]).await.status(), 401);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = b.get(&format!("/portal/credentials/{id}")).await;
        if page.body.contains("Wrong secret") {
            assert!(!page.body.contains("wrong_secret"), "{}", page.body);
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no failure listed: {}", page.body);
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let before = app.token(&id, &secret).await;

    let form = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        ("perm.billing", "none"),
        ("audiences", "https://api.acme.test\r\n  https://reports.acme.test \r\n\r\n"),
        ("token_lifetime", "600"),
        ("rate_limit", "30"),
        ("expiry", "30d"),
    ];
    let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let c = credential(&app, &id).await;
    assert_eq!(c["audiences"], json!(["https://api.acme.test", "https://reports.acme.test"]));
    assert_eq!(c["token_lifetime_seconds"], 600);
    assert_eq!(c["rate_limit_per_minute"], 30);
    let expires = time::OffsetDateTime::parse(
        c["expires_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
    .unix_timestamp();
    assert_eq!(expires, app.clock.now() + 30 * 86_400);

    // The page shows what was saved.
    let page = b.get(res.location()).await;
    assert!(page.body.contains("Changes saved."));
    assert!(page.body.contains("<code>https://reports.acme.test</code>"));
    assert!(page.body.contains("10 minutes (600 s)"));
    assert!(page.body.contains("30 tokens per minute"));
    // Audiences narrowed from "any": the tokens issued before are revoked, as through the API.
    let introspected = app
        .form(
            "/oauth/introspect",
            &[
                ("token", before["access_token"].as_str().unwrap()),
                ("client_id", &id),
                ("client_secret", &secret),
            ],
        )
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(introspected["active"], false, "{introspected}");
    let token = app.token(&id, &secret).await;
    assert_eq!(token["expires_in"], 600);

    // Back to the defaults: no audiences, the server's rate limit, no expiry.
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        ("audiences", ""),
        ("token_lifetime", "600"),
        ("rate_limit", ""),
        ("expiry", "never"),
    ];
    assert_eq!(b.post(&format!("/portal/credentials/{id}"), &form).await.status, 303);
    let c = credential(&app, &id).await;
    assert_eq!(c["audiences"], json!([]));
    assert_eq!(c["rate_limit_per_minute"], Value::Null);
    assert_eq!(c["expires_at"], Value::Null);

    // Input the form cannot take is answered on the form, the field named, nothing changed.
    for (field, value, says) in [
        ("token_lifetime", "5", "between 60 and"),
        ("token_lifetime", "an hour", "whole number of seconds"),
        ("rate_limit", "-1", "whole number of tokens per minute"),
        ("audiences", "has space", "audience"),
        ("expiry", "forever", "Choose one of the offered expiries"),
    ] {
        let mut form = vec![
            ("csrf", csrf.as_str()),
            ("name", "HR sync"),
            ("perm.eligibility", "read"),
            ("token_lifetime", "600"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{field}={value}");
        assert!(res.body.contains(says), "{field}={value}: {}", res.body);
        assert!(res.body.contains(&format!(r#"id="{field}-error""#)), "{field}");
    }
    let settings = |c: &Value| {
        ["audiences", "token_lifetime_seconds", "rate_limit_per_minute", "expires_at", "name"]
            .map(|k| c[k].clone())
    };
    assert_eq!(settings(&credential(&app, &id).await), settings(&c), "nothing changed");

    // A refused field comes back with every field as it was typed, not as stored: correcting
    // the one loses nothing written in the others.
    let typed = [
        ("csrf", csrf.as_str()),
        ("name", "Renamed sync"),
        ("perm.eligibility", "write"),
        ("perm.billing", "read"),
        ("audiences", "https://a.acme.test\nhttps://b.acme.test"),
        ("token_lifetime", "5"),
        ("rate_limit", "42"),
        ("expiry", "30d"),
    ];
    let res = b.post(&format!("/portal/credentials/{id}"), &typed).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    let form = &res.body[res.body.find("<h2>Edit</h2>").expect("the edit form")..];
    for shown in [
        r#"name="name" type="text" maxlength="200" required value="Renamed sync""#,
        ">https://a.acme.test\nhttps://b.acme.test</textarea>",
        r#"name="token_lifetime" type="number""#,
        r#"required value="5""#,
        r#"name="rate_limit" type="number" inputmode="numeric" min="0" max="1000000" value="42""#,
        r#"<option value="30d" selected>"#,
        r#"name="perm.eligibility"><option value="none">No access</option><option value="read">Read</option><option value="write" selected>"#,
        r#"name="perm.billing"><option value="none">No access</option><option value="read" selected>"#,
    ] {
        assert!(form.contains(shown), "{shown}: {form}");
    }
    assert!(!form.contains(r#"<option value="keep" selected>"#));
    assert_eq!(settings(&credential(&app, &id).await), settings(&c), "nothing saved");

    // Every refused field is said at once, each under its field.
    let several = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        ("audiences", "not a url\nhttps://ok.acme.test"),
        ("token_lifetime", "5"),
        ("rate_limit", "abc"),
    ];
    let res = b.post(&format!("/portal/credentials/{id}"), &several).await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY);
    for field in ["audiences", "token_lifetime", "rate_limit"] {
        assert!(res.body.contains(&format!(r#"id="{field}-error""#)), "{field}: {}", res.body);
    }
    assert!(res.body.contains("3 fields need correcting"), "{}", res.body);
    assert_eq!(settings(&credential(&app, &id).await), settings(&c), "nothing saved");

    // A level the select does not offer is refused, and an area not sent keeps its level:
    // neither reads as "no access", which would remove the permission and revoke the tokens.
    let before = credential(&app, &id).await["permissions"].clone();
    for levels in [&[("perm.eligibility", "superuser")][..], &[("perm.billing", "READ")]] {
        let mut form =
            vec![("csrf", csrf.as_str()), ("name", "HR sync"), ("token_lifetime", "600")];
        form.extend_from_slice(levels);
        let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
        assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{levels:?}");
        assert!(res.body.contains(r#"id="permissions-error""#), "{levels:?}: {}", res.body);
        assert_eq!(credential(&app, &id).await["permissions"], before, "{levels:?}");
    }
}

/// What the edit of a claim through the portal answers: `ok` (303 and changed) or `403`.
async fn edit_claim(
    app: &TestApp,
    who: (&str, &str),
    id: &str,
    name: &str,
    value: &str,
) -> (StatusCode, Value) {
    let mut b = Browser::new(app);
    let csrf = b.sign_in(who.0, who.1).await;
    let field = format!("claim.{name}");
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        (field.as_str(), value),
    ];
    let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
    (res.status, credential(app, id).await["claims"].clone())
}

#[tokio::test]
async fn org_admins_edit_only_the_claims_the_platform_names_and_only_the_platform_edits_others() {
    let app = spawn_with(Options {
        tweak: |c| c.org_editable_claims = vec!["tenant".to_owned(), "plan".to_owned()],
        ..Default::default()
    })
    .await;
    orgs(&app).await;
    let (id, _) = app
        .create_credential(json!({
            "name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"], "claims": {"tier": "gold", "tenant": "t-1"},
        }))
        .await;
    let admin = ("admin@acme.test", ADMIN_PW);
    let viewer = ("viewer@acme.test", VIEWER_PW);

    // The page: editable inputs for the named claims only, for the admin only.
    let mut b = Browser::new(&app);
    b.sign_in(admin.0, admin.1).await;
    let page = b.get(&format!("/portal/credentials/{id}")).await;
    assert!(
        page.body.contains(r#"name="claim.tenant" type="text" spellcheck="false" value="t-1""#)
    );
    assert!(page.body.contains(r#"name="claim.plan""#));
    assert!(!page.body.contains(r#"name="claim.tier""#), "tier stays read-only");
    assert!(page.body.contains("<code>tier</code> = <code>&quot;gold&quot;</code>"));
    let mut v = Browser::new(&app);
    v.sign_in(viewer.0, viewer.1).await;
    assert!(!v.get(&format!("/portal/credentials/{id}")).await.body.contains("claim.tenant"));

    // The admin sets, changes (JSON when it parses) and removes a named claim.
    let (status, claims) = edit_claim(&app, admin, &id, "plan", "{\"seats\": 5}").await;
    assert_eq!(status, 303);
    assert_eq!(claims["plan"], json!({"seats": 5}));
    let (status, claims) = edit_claim(&app, admin, &id, "tenant", "").await;
    assert_eq!(status, 303);
    assert!(claims.get("tenant").is_none(), "{claims}");
    // An unchanged value is no edit at all (strings are shown and read as they are).
    let (status, claims) = edit_claim(&app, admin, &id, "plan", "{\"seats\":5}").await;
    assert_eq!((status, claims["plan"].clone()), (StatusCode::SEE_OTHER, json!({"seats": 5})));

    // The policy, not the form, decides: a claim the platform did not name is refused to the
    // admin even when posted by hand, and to a viewer everything is; the platform may.
    let platform = ("ops@platform.test", PLATFORM_PW);
    let cases = [
        (admin, "tier", "silver", 403),
        (admin, "region", "eu", 403),
        (admin, "tier", "", 403),
        (viewer, "plan", "basic", 403),
        (platform, "plan", "basic", 303),
        (platform, "tier", "platinum", 303),
    ];
    for (who, name, value, expected) in cases {
        let before = credential(&app, &id).await["claims"].clone();
        let (status, after) = edit_claim(&app, who, &id, name, value).await;
        assert_eq!(status.as_u16(), expected, "{} {name}={value}", who.0);
        if expected == 403 {
            assert_eq!(after, before, "{} {name}: nothing changed", who.0);
        }
    }
    let claims = credential(&app, &id).await["claims"].clone();
    assert_eq!(
        (claims["plan"].clone(), claims["tier"].clone()),
        (json!("basic"), json!("platinum"))
    );

    // Through the admin API, the platform (an admin credential) sets any non-reserved name, and
    // a reserved one is refused with the reason.
    let res = app
        .admin(
            Method::PATCH,
            &format!("/credentials/{id}"),
            Some(json!({"claims": {"region": "eu"}, "remove_claims": ["tier"]})),
        )
        .await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"claims": {"org": "x"}})))
        .await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn without_the_setting_claims_are_read_only_to_org_admins() {
    let app = spawn_app().await;
    orgs(&app).await;
    let (id, _) = app
        .create_credential(json!({
            "name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"], "claims": {"tenant": "t-1"},
        }))
        .await;
    let mut b = Browser::new(&app);
    b.sign_in("admin@acme.test", ADMIN_PW).await;
    let page = b.get(&format!("/portal/credentials/{id}")).await;
    assert!(page.body.contains("<code>tenant</code> = <code>&quot;t-1&quot;</code>"));
    assert!(page.body.contains("Set by the platform administrators."));
    assert!(!page.body.contains("claim.tenant"));
}

#[tokio::test]
async fn a_secret_generated_through_one_instance_is_shown_by_the_other_exactly_once() {
    let Some(db) = TestDatabase::create().await else { return };
    let key = MasterKey::generate();
    let clock = Arc::new(ManualClock::new(common::real_now()));
    let (mut instance_a, first) = instances::start(db.url(), &key, clock.clone(), |_| {}).await;
    let Some(FirstStart::Initialized(admin)) = first else { panic!("first start") };
    let (mut instance_b, _) = instances::start(db.url(), &key, clock.clone(), |_| {}).await;
    let (a, b) = (instance_a.base.clone(), instance_b.base.clone());
    let (admin_id, admin_secret) = (admin.client_id, admin.client_secret);
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{a}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &admin_id),
            ("client_secret", &admin_secret),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap();
    let user =
        json!({"org": "acme", "email": "admin@acme.test", "role": "admin", "password": ADMIN_PW});
    assert_eq!(
        http.post(format!("{a}/admin/v1/organizations"))
            .bearer_auth(bearer)
            .json(&json!({"slug": "acme"}))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    let res = http.post(format!("{a}/admin/v1/users")).bearer_auth(bearer).json(&user).send();
    assert_eq!(res.await.unwrap().status(), 201);

    // One browser, one session: every request alternates between the instances, as a load
    // balancer without affinity would send them.
    let mut browser = Browser {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: a.clone(),
        cookies: vec![],
    };
    let csrf = browser.sign_in("admin@acme.test", ADMIN_PW).await;
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "Payroll"),
        ("environment", "production"),
        ("expiration", "90d"),
        ("perm.eligibility", "read"),
    ];
    let created = browser.post("/portal/credentials", &form).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let page = created.location().to_owned();
    let client_id =
        page.trim_start_matches("/portal/credentials/").split('?').next().unwrap().to_owned();

    browser.base = b.clone();
    let shown = browser.get(&page).await;
    assert_eq!(shown.status, 200);
    let secret = shown.shown_secret().expect("instance B shows the secret generated on A");
    let works = http
        .post(format!("{b}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &client_id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(works.status(), 200, "the secret shown is the credential's");

    // Once: neither instance shows it again.
    for base in [&a, &b] {
        browser.base = base.clone();
        let again = browser.get(&page).await;
        assert_eq!(again.status, 200);
        assert!(again.shown_secret().is_none(), "shown again by {base}");
        assert!(!again.body.contains(&secret));
    }

    // Rotated on B, shown on A, and sealed at rest: the database holds no clear secret.
    browser.base = b.clone();
    let rotated = browser.rotate(&client_id).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER);
    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let rows: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT sealed FROM portal_flashes").fetch_all(&pool).await.unwrap();
    assert_eq!(rows.len(), 1, "one flash waits");
    browser.base = a.clone();
    let new_secret = browser.get(rotated.location()).await.shown_secret().unwrap();
    assert_ne!(new_secret, secret);
    assert!(!rows[0].0.windows(new_secret.len()).any(|w| w == new_secret.as_bytes()));
    let left: Vec<(String,)> =
        sqlx::query_as("SELECT session_hash FROM portal_flashes").fetch_all(&pool).await.unwrap();
    assert!(left.is_empty(), "deleted when shown");
    pool.close().await;

    instance_a.stop().await;
    instance_b.stop().await;
    db.drop_now().await;
}

/// Generating reads the levels as editing does: one no select offers is refused, never taken
/// as "no access" and never granted.
#[tokio::test]
async fn generating_with_a_level_no_select_offers_is_refused_and_creates_nothing() {
    let app = spawn_app().await;
    orgs(&app).await;
    let mut b = Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", ADMIN_PW).await;
    let res = b
        .post(
            "/portal/credentials",
            &[
                ("csrf", csrf.as_str()),
                ("name", "Crafted"),
                ("environment", "sandbox"),
                ("expiration", "90d"),
                ("perm.eligibility", "read"),
                ("perm.billing", "superuser"),
            ],
        )
        .await;
    assert_eq!(res.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", res.body);
    assert!(res.body.contains("Choose No access, Read or Read &amp; write for billing."));
    let listed: Value =
        app.admin(Method::GET, "/credentials?org=acme", None).await.json().await.unwrap();
    assert!(!listed.to_string().contains("Crafted"), "{listed}");
}
