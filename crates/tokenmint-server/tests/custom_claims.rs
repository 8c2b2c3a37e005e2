//! Custom claims on credentials and organizations: set through the admin API, carried by
//! tokens of every dialect and by introspection, the credential's winning over its
//! organization's, reserved names refused with the reason, and any change revoking the tokens
//! issued before it, at a verifier that follows the revocation feed as gateways do.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Options, TestApp, claims, spawn_app, spawn_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::claims::RESERVED_CLAIMS;
use tokenmint_proto::feed::RevocationEntry;
use tokenmint_server::Clock;
use tokenmint_verify::{RevocationKind, Verifier, VerifierConfig, VerifyError};

async fn patch(app: &TestApp, path: &str, body: Value) -> Value {
    let res = app.admin(Method::PATCH, path, Some(body)).await;
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

async fn introspect(app: &TestApp, token: &str) -> Value {
    let res = app
        .form(
            "/oauth/introspect",
            &[("client_id", &app.admin_id), ("client_secret", &app.admin_secret), ("token", token)],
        )
        .await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn access_token(body: &Value) -> String {
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn claims_of_the_organization_and_the_credential_are_on_tokens_of_every_dialect() {
    let app = spawn_with(Options { allow_missing_grant_type: true, ..Options::default() }).await;
    let created = app
        .admin(Method::POST, "/organizations", Some(json!({"slug": "acme", "name": "Acme"})))
        .await;
    assert_eq!(created.status(), 201);
    patch(&app, "/organizations/acme", json!({"claims": {"tenant_id": "acme-1", "plan": "basic"}}))
        .await;
    let (id, secret) = app
        .create_credential(json!({
            "name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"],
            "claims": {"plan": {"tier": "gold", "seats": 40}, "https://example.com/region": "eu"},
        }))
        .await;
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["claims"]["plan"]["tier"], "gold");
    let org: Value =
        app.admin(Method::GET, "/organizations/acme", None).await.json().await.unwrap();
    assert_eq!(org["claims"], json!({"tenant_id": "acme-1", "plan": "basic"}));

    let basic = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    let dialects: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "form body",
            app.http.post(app.url("/oauth/token")).form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &id),
                ("client_secret", &secret),
            ]),
        ),
        (
            "basic",
            app.http
                .post(app.url("/authorize"))
                .header("authorization", format!("Basic {basic}"))
                .form(&[("grant_type", "client_credentials")]),
        ),
        (
            "json",
            app.http.post(app.url("/connect/token")).json(&json!({
                "grant_type": "client_credentials", "client_id": id, "client_secret": secret,
            })),
        ),
        (
            "json without grant_type",
            app.http
                .post(app.url("/api/auth/v2/token"))
                .json(&json!({"client_id": id, "client_secret": secret})),
        ),
    ];
    for (dialect, req) in dialects {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200, "{dialect}");
        let token = access_token(&res.json().await.unwrap());
        let c = claims(&token);
        assert_eq!(c["tenant_id"], "acme-1", "{dialect}: the organization's claim");
        assert_eq!(
            c["plan"],
            json!({"tier": "gold", "seats": 40}),
            "{dialect}: the credential's wins"
        );
        assert_eq!(c["https://example.com/region"], "eu", "{dialect}");
        // The fixed claims are tokenmint's, untouched.
        assert_eq!((c["sub"].as_str(), c["org"].as_str()), (Some(id.as_str()), Some("acme")));
        let i = introspect(&app, &token).await;
        assert_eq!(i["active"], true);
        assert_eq!(i["tenant_id"], "acme-1", "{dialect}: introspection returns them");
        assert_eq!(i["plan"]["seats"], 40);
    }

    // The verification library exposes them.
    let verifier = Verifier::builder(VerifierConfig::new(app.base.clone())).build().await.unwrap();
    let token = access_token(&app.token(&id, &secret).await);
    let verified = verifier.verify(&token).await.unwrap();
    assert_eq!(verified.claim("tenant_id"), Some(&json!("acme-1")));
    assert_eq!(verified.claim("plan").unwrap()["tier"], "gold");

    // Removing the credential's claim uncovers the organization's.
    patch(&app, &format!("/credentials/{id}"), json!({"remove_claims": ["plan"]})).await;
    let c = claims(&access_token(&app.token(&id, &secret).await));
    assert_eq!(c["plan"], "basic");
}

#[tokio::test]
async fn every_reserved_name_is_refused_everywhere_with_a_message_that_says_why() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let mut names: Vec<String> = RESERVED_CLAIMS.iter().map(|s| (*s).to_owned()).collect();
    names.extend(["SUB".to_owned(), "Scope".to_owned(), "tokenmint_plan".to_owned()]);
    for name in &names {
        let attempts = [
            (
                Method::POST,
                "/credentials".to_owned(),
                json!({"name": "x", "org": "acme", "environment": "sandbox",
                    "claims": {name.as_str(): "x"}}),
            ),
            (Method::PATCH, format!("/credentials/{id}"), json!({"claims": {name.as_str(): "x"}})),
            (
                Method::PATCH,
                "/organizations/acme".to_owned(),
                json!({"claims": {name.as_str(): 1}}),
            ),
        ];
        for (method, path, body) in attempts {
            let res = app.admin(method.clone(), &path, Some(body)).await;
            assert_eq!(res.status(), 422, "{method} {path} {name}");
            let problem: Value = res.json().await.unwrap();
            let detail = problem.to_string();
            assert!(
                detail.contains("reserved") && detail.contains("never be set or shadowed"),
                "{detail}"
            );
        }
    }
    // Nulls, oversized values and too many claims are refused, and say the limits.
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"claims": {"a": null}})))
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("remove the claim"));
    let big = "x".repeat(1100);
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"claims": {"a": big}})))
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("1024"));
    let many: serde_json::Map<String, Value> =
        (0..21).map(|i| (format!("c{i}"), json!(i))).collect();
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"claims": many})))
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("at most 20"));
    // Nothing was stored.
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["claims"], json!({}));
}

async fn feed(app: &TestApp) -> Vec<RevocationEntry> {
    let page: Value = app.admin(Method::GET, "/revocations", None).await.json().await.unwrap();
    serde_json::from_value(page["entries"].clone()).unwrap()
}

async fn verify(app: &TestApp, verifier: &Verifier, token: &str) -> Result<(), VerifyError> {
    verifier.revocations().apply(&feed(app).await, app.clock.now());
    verifier.verify(token).await.map(|_| ())
}

fn revoked(r: Result<(), VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Revoked(RevocationKind::Credential)))
}

#[tokio::test]
async fn a_claim_change_on_a_credential_or_its_organization_revokes_the_tokens_issued_before() {
    let app = spawn_app().await;
    let now = u64::try_from(app.clock.now()).unwrap();
    let clock = Arc::new(tokenmint_verify::ManualClock::new(Duration::from_secs(now)));
    let verifier =
        Verifier::builder(VerifierConfig::new(app.base.clone()).with_leeway(Duration::ZERO))
            .clock(clock)
            .build()
            .await
            .unwrap();
    let (a, a_secret) = app
        .create_credential(json!({"name": "a", "org": "acme", "environment": "sandbox",
            "claims": {"tenant_id": "t-1"}}))
        .await;
    let (b, b_secret) =
        app.create_credential(json!({"name": "b", "org": "acme", "environment": "sandbox"})).await;
    let (other, other_secret) =
        app.create_credential(json!({"name": "c", "org": "other", "environment": "sandbox"})).await;
    let first_a = access_token(&app.token(&a, &a_secret).await);
    let first_b = access_token(&app.token(&b, &b_secret).await);
    let first_other = access_token(&app.token(&other, &other_secret).await);
    let entries = feed(&app).await.len();

    // Setting a claim to the value it has changes nothing and revokes nothing.
    patch(&app, &format!("/credentials/{a}"), json!({"claims": {"tenant_id": "t-1"}})).await;
    assert_eq!(feed(&app).await.len(), entries);
    assert!(verify(&app, &verifier, &first_a).await.is_ok());

    // A changed claim on the credential: its older tokens are revoked, the next one is not and
    // carries the new value.
    patch(&app, &format!("/credentials/{a}"), json!({"claims": {"tenant_id": "t-2"}})).await;
    assert!(revoked(verify(&app, &verifier, &first_a).await));
    assert_eq!(introspect(&app, &first_a).await["active"], false);
    assert!(verify(&app, &verifier, &first_b).await.is_ok(), "another credential is untouched");
    let second_a = access_token(&app.token(&a, &a_secret).await);
    assert_eq!(claims(&second_a)["tenant_id"], "t-2");
    assert!(verify(&app, &verifier, &second_a).await.is_ok());

    // A changed claim on the organization: every token of its credentials, none of another's.
    let renamed = patch(&app, "/organizations/acme", json!({"name": "Acme Inc."})).await;
    assert_eq!(renamed["name"], "Acme Inc.");
    assert!(verify(&app, &verifier, &second_a).await.is_ok(), "a rename revokes nothing");
    patch(&app, "/organizations/acme", json!({"claims": {"plan": "gold"}})).await;
    assert!(revoked(verify(&app, &verifier, &second_a).await));
    assert!(revoked(verify(&app, &verifier, &first_b).await));
    assert!(verify(&app, &verifier, &first_other).await.is_ok());
    for (id, secret) in [(&a, &a_secret), (&b, &b_secret)] {
        let token = access_token(&app.token(id, secret).await);
        assert_eq!(claims(&token)["plan"], "gold");
        assert!(verify(&app, &verifier, &token).await.is_ok());
    }
}

/// One of each class of control character: C0 (NUL, tab, LF, CR, ESC, U+0001), DEL and C1.
const CONTROLS: [char; 9] =
    ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'];

/// A value holding `c` at every place a string can be in a claim's value.
fn with_control(c: char) -> Vec<Value> {
    let s = format!("a{c}b");
    vec![
        json!(s),
        json!(["ok", s]),
        json!({"k": s}),
        json!({s.clone(): 1}),
        json!({"k": [{"l": s}]}),
    ]
}

/// Every way the admin API sets claims (a new credential, a credential's update, an
/// organization's update) refuses a control character anywhere in a value, and a number beyond
/// ±(2^53 - 1), with a problem that names the claim and says what is allowed; nothing is stored.
#[tokio::test]
async fn control_characters_and_inexact_numbers_are_refused_wherever_the_admin_api_sets_claims() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let mut values: Vec<(Value, &str)> =
        CONTROLS.iter().flat_map(|c| with_control(*c)).map(|v| (v, "control characters")).collect();
    for n in ["9007199254740992", "-9007199254740993", "18446744073709551615", "1e300"] {
        let n: Value = serde_json::from_str(n).unwrap();
        values.push((n.clone(), "2^53"));
        values.push((json!({"ids": [n]}), "2^53"));
    }
    for (value, says) in &values {
        let attempts = [
            (
                Method::POST,
                "/credentials".to_owned(),
                json!({"name": "x", "org": "acme", "environment": "sandbox",
                    "claims": {"note": value}}),
            ),
            (Method::PATCH, format!("/credentials/{id}"), json!({"claims": {"note": value}})),
            (Method::PATCH, "/organizations/acme".to_owned(), json!({"claims": {"note": value}})),
        ];
        for (method, path, body) in attempts {
            let res = app.admin(method.clone(), &path, Some(body)).await;
            assert_eq!(res.status(), 422, "{method} {path} {value}");
            let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(content_type.starts_with("application/problem+json"), "{content_type}");
            let problem: Value = res.json().await.unwrap();
            let detail = problem.to_string();
            assert!(detail.contains("'note'") && detail.contains(says), "{detail}");
        }
    }
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["claims"], json!({}));
    let org: Value =
        app.admin(Method::GET, "/organizations/acme", None).await.json().await.unwrap();
    assert_eq!(org["claims"], json!({}));
    let list: Value = app.admin(Method::GET, "/credentials", None).await.json().await.unwrap();
    assert!(!list.to_string().contains("\"x\""), "no credential was created: {list}");

    // Other text is welcome, and reaches the tokens as it is.
    let (id, secret) = app
        .create_credential(json!({"name": "y", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"],
            "claims": {"city": "Zürich", "team": "東京 ops", "max": 9_007_199_254_740_991_u64}}))
        .await;
    let c = claims(&access_token(&app.token(&id, &secret).await));
    assert_eq!((c["city"].as_str(), c["team"].as_str()), (Some("Zürich"), Some("東京 ops")));
    assert_eq!(c["max"].as_u64(), Some(9_007_199_254_740_991));
}

/// An update that sets and removes the same claim is refused, for a credential and for an
/// organization, rather than one of the two being picked.
#[tokio::test]
async fn an_update_that_sets_and_removes_one_claim_is_refused() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    patch(&app, &format!("/credentials/{id}"), json!({"claims": {"plan": "basic"}})).await;
    patch(&app, "/organizations/acme", json!({"claims": {"plan": "basic"}})).await;
    for path in [format!("/credentials/{id}"), "/organizations/acme".to_owned()] {
        let body = json!({"claims": {"plan": "gold", "seats": 3}, "remove_claims": ["plan"]});
        let res = app.admin(Method::PATCH, &path, Some(body)).await;
        assert_eq!(res.status(), 422, "{path}");
        let detail = res.text().await.unwrap();
        assert!(detail.contains("'plan' is both set and removed"), "{detail}");
        let now: Value = app.admin(Method::GET, &path, None).await.json().await.unwrap();
        assert_eq!(now["claims"], json!({"plan": "basic"}), "{path}: unchanged");
    }
}

/// A key given twice inside a claim's value (at any depth) and a body nested past what any JSON
/// reader takes are refused with 422 and a problem that says which and where, wherever the admin
/// API sets claims; nothing is stored. (serde keeps the last of two keys and calls deep nesting
/// "not valid JSON": neither is what the sender meant to be told.)
#[tokio::test]
async fn repeated_keys_inside_claims_and_nesting_past_json_readers_limits_are_refused_by_name() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
    let values = [
        (
            r#"{"tier":"gold","tier":"basic"}"#.to_owned(),
            "appears twice in the object at /claims/plan",
        ),
        (r#"{"a":[{"x":1,"x":2}]}"#.to_owned(), "appears twice in the object at /claims/plan/a/0"),
        (deep, "nested more than 127 levels deep; a claim's value may nest at most 16"),
        ("1e400".to_owned(), "the number 1e400 cannot be held by JSON readers"),
        ("[1, -2e999]".to_owned(), "the number -2e999 cannot be held by JSON readers"),
        ("1e-400".to_owned(), "the number 1e-400 cannot be held by JSON readers"),
        (r#"{"a":[0.5, 7E-999]}"#.to_owned(), "the number 7E-999 cannot be held by JSON readers"),
    ];
    let token = app.admin_token().await;
    for (value, says) in &values {
        let attempts = [
            (
                Method::POST,
                "/credentials".to_owned(),
                format!(
                    r#"{{"name":"x","org":"acme","environment":"sandbox","claims":{{"plan":{value}}}}}"#
                ),
            ),
            (
                Method::PATCH,
                format!("/credentials/{id}"),
                format!(r#"{{"claims":{{"plan":{value}}}}}"#),
            ),
            (
                Method::PATCH,
                "/organizations/acme".to_owned(),
                format!(r#"{{"claims":{{"plan":{value}}}}}"#),
            ),
        ];
        for (method, path, body) in attempts {
            let res = app
                .http
                .request(method.clone(), app.url(&format!("/admin/v1{path}")))
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 422, "{method} {path}");
            let problem: Value = res.json().await.unwrap();
            let detail = problem["detail"].as_str().unwrap_or_default();
            assert!(detail.contains(says), "{method} {path}: {detail}");
        }
    }
    // A repeated top-level field is refused the same way.
    let res = app
        .http
        .patch(app.url(&format!("/admin/v1/credentials/{id}")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"name":"a","name":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["claims"], json!({}));
    assert_ne!(shown["name"], json!("b"));
    let org: Value =
        app.admin(Method::GET, "/organizations/acme", None).await.json().await.unwrap();
    assert_eq!(org["claims"], json!({}));
}

/// A server whose organization admins may edit the claim `note`; the organization `acme` with
/// its admin signed in to the portal (the browser and its CSRF token), and its credential
/// "HR sync" (the id) holding `claims`.
async fn portal_editing_note(claims: Value) -> (TestApp, String, common::browser::Browser, String) {
    let app = spawn_with(Options {
        tweak: |c| c.org_editable_claims = vec!["note".to_owned()],
        ..Options::default()
    })
    .await;
    assert_eq!(
        app.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await.status(),
        201
    );
    let user = json!({"org": "acme", "email": "admin@acme.test", "role": "admin",
        "password": "acme admin password"});
    assert_eq!(app.admin(Method::POST, "/users", Some(user)).await.status(), 201);
    let (id, _) = app
        .create_credential(json!({"name": "HR sync", "org": "acme", "environment": "sandbox",
            "permissions": ["eligibility:read"], "claims": claims}))
        .await;
    let mut b = common::browser::Browser::new(&app);
    let csrf = b.sign_in("admin@acme.test", "acme admin password").await;
    (app, id, b, csrf)
}

/// The portal's org-editable claims follow the same rule: refused with the reason shown on the
/// form, nothing changed.
#[tokio::test]
async fn the_portal_refuses_control_characters_in_the_claims_org_admins_edit() {
    let (app, id, mut b, csrf) = portal_editing_note(json!({"note": "fine"})).await;
    let mut texts: Vec<String> = CONTROLS.iter().map(|c| format!("a{c}b")).collect();
    // Typed as JSON, the escapes are control characters too; a control character alone is a
    // value (refused), not an empty field.
    texts.extend([
        r#""a\u0000b""#.to_owned(),
        r#"["x\u007f"]"#.to_owned(),
        "\u{85}".to_owned(),
        " \u{9f} ".to_owned(),
    ]);
    for text in &texts {
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "HR sync"),
            ("perm.eligibility", "read"),
            ("claim.note", text.as_str()),
        ];
        let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
        assert_ne!(res.status, 303, "{text:?}");
        assert!(res.body.contains("claims-error"), "{text:?}: the error by the claims");
        assert!(res.body.contains("control characters"), "{text:?}");
        let now: Value =
            app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
        assert_eq!(now["claims"], json!({"note": "fine"}), "{text:?}");
    }
    // A field given twice is refused, whichever copy a reader would take.
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        ("claim.note", "one"),
        ("claim.note", "two"),
    ];
    let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
    assert_eq!(res.status, 400);
    assert!(res.body.contains("more than once"), "{}", res.body);
    let now: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(now["claims"], json!({"note": "fine"}));
    // Typed as the CLI reads `--claim`: text written as JSON must read as JSON, with each key
    // once.
    for (text, says) in
        [(r#"{"a":1,"a":2}"#, "appears twice"), (r#"{"tier":gold}"#, "cannot be read as JSON")]
    {
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "HR sync"),
            ("perm.eligibility", "read"),
            ("claim.note", text),
        ];
        let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
        assert_ne!(res.status, 303, "{text:?}");
        assert!(res.body.contains("claims-error"), "{text:?}: the error by the claims");
        assert!(res.body.contains(says), "{text:?}");
    }
    let form = [
        ("csrf", csrf.as_str()),
        ("name", "HR sync"),
        ("perm.eligibility", "read"),
        ("claim.note", "Zürich"),
    ];
    assert_eq!(b.post(&format!("/portal/credentials/{id}"), &form).await.status, 303);
}

/// Saving the portal's credential form unchanged keeps every claim as it is: a string that
/// would read back as something else (empty, `"123"`, `"[draft]"`, padded) is shown quoted, so
/// the field reads back as the same string (an empty field would remove it).
#[tokio::test]
async fn saving_the_portal_form_unchanged_keeps_every_claim_value_exactly() {
    let (app, id, mut b, csrf) = portal_editing_note(json!({})).await;
    for value in [
        json!(""),
        json!("123"),
        json!("[draft]"),
        json!(" padded "),
        json!("true"),
        json!("t-42"),
        json!(7),
        json!({"a": [1]}),
    ] {
        patch(&app, &format!("/credentials/{id}"), json!({"claims": {"note": value}})).await;
        let page = b.get(&format!("/portal/credentials/{id}")).await.body;
        let field = page.split(r#"name="claim.note""#).nth(1).expect("the claim's field");
        let shown = field.split(r#"value=""#).nth(1).and_then(|v| v.split('"').next()).unwrap();
        let shown = shown.replace("&quot;", "\"").replace("&amp;", "&").replace("&#39;", "'");
        let form = [
            ("csrf", csrf.as_str()),
            ("name", "HR sync renamed"),
            ("perm.eligibility", "read"),
            ("claim.note", shown.as_str()),
        ];
        let res = b.post(&format!("/portal/credentials/{id}"), &form).await;
        assert_eq!(res.status, 303, "{value}: {}", res.body);
        let now: Value =
            app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
        assert_eq!(now["claims"], json!({"note": value}), "shown as {shown:?}");
        patch(&app, &format!("/credentials/{id}"), json!({"name": "HR sync"})).await;
    }
}

/// A value an older release stored with a control character still loads: the credential is
/// shown, its tokens are issued, and the claim can be removed.
#[tokio::test]
async fn a_control_character_stored_by_an_older_release_still_loads_and_can_be_removed() {
    use tokenmint_store::Store;
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let url = format!("sqlite://{}", app.db_path.display());
    let store = tokenmint_store::SqlStore::connect(&url, false).await.unwrap();
    let mut c = store.get_credential(&id).await.unwrap().unwrap();
    c.claims =
        tokenmint_core::CustomClaims::from_stored(r#"{"note":"a\r\nb","tenant":"t-1"}"#).unwrap();
    store
        .update_credential(&c, None, &tokenmint_store::Guard::system(app.clock.now()))
        .await
        .unwrap();
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["claims"]["note"], "a\r\nb");
    let c = claims(&access_token(&app.token(&id, &secret).await));
    assert_eq!(c["note"], "a\r\nb");
    // Another claim can be set beside it; the stored one is not checked again.
    patch(&app, &format!("/credentials/{id}"), json!({"claims": {"plan": "gold"}})).await;
    let after =
        patch(&app, &format!("/credentials/{id}"), json!({"remove_claims": ["note"]})).await;
    assert_eq!(after["claims"], json!({"plan": "gold", "tenant": "t-1"}));
}
