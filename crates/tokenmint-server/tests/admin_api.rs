//! The admin REST API: authorization, problem+json errors, the credential lifecycle, and the
//! OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::spawn_app;
use reqwest::Method;
use serde_json::{Value, json};
use tokenmint_proto::limits::{
    ACTIVITY_DAYS, AUDIENCE_MAX_LEN, AUDIENCES_MAX, AUDIT_PAGE, CREDENTIALS_PAGE,
    DURATION_MAX_SECS, EMAIL_MAX_LEN, KEY_PROPAGATION_MAX_SECS, NAME_MAX_LEN, ORGANIZATIONS_PAGE,
    PASSWORD_MAX_LEN, PASSWORD_MIN_LEN, PUBLIC_KEYS_MAX, RATE_LIMIT_MAX_PER_MINUTE,
    REVOCATIONS_PAGE, SLUG_MAX_LEN,
};

#[tokio::test]
async fn the_admin_api_needs_a_bearer_token_and_says_so_in_problem_json() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/admin/v1/credentials")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["status"], 401);
    assert!(p["detail"].as_str().unwrap().contains("Authorization: Bearer"));
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
}

#[tokio::test]
async fn a_partner_token_is_forbidden_and_the_missing_scope_is_named() {
    let app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 403);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["required_scope"], "tokenmint:admin");
}

#[tokio::test]
async fn an_admin_token_stops_working_when_its_credential_is_deactivated() {
    let app = spawn_app().await;
    let (id, secret) = app
        .create_credential(json!({"name": "second admin", "org": "platform", "environment": "production", "permissions": ["tokenmint:admin"]}))
        .await;
    let token = app.token(&id, &secret).await["access_token"].as_str().unwrap().to_owned();
    let ok =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    app.admin(Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    let res =
        app.http.get(app.url("/admin/v1/credentials")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn validation_errors_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"name": "", "org": "acme", "environment": "sandbox"}), "name"),
        (json!({"name": "x", "org": "Not A Slug", "environment": "sandbox"}), "org"),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "permissions": ["payroll:read"]}),
            "permissions",
        ),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "token_lifetime_seconds": 5}),
            "token_lifetime_seconds",
        ),
        (
            json!({"name": "x", "org": "acme", "environment": "sandbox", "expires_in_seconds": 0}),
            "expires_in_seconds",
        ),
    ];
    for (body, field) in cases {
        let res = app.admin(Method::POST, "/credentials", Some(body)).await;
        assert_eq!(res.status(), 422);
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let p: Value = res.json().await.unwrap();
        assert_eq!(p["field"], field, "{p}");
    }
    // Unknown fields and wrong types are refused, not ignored.
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "x", "org": "acme", "environment": "staging"})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "x", "org": "acme", "environment": "sandbox", "colour": 1})),
        )
        .await;
    assert_eq!(res.status(), 422);
    let token = app.admin_token().await;
    let res = app
        .http
        .post(app.url("/admin/v1/credentials"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn credentials_are_created_listed_shown_updated_and_paged() {
    let app = spawn_app().await;
    let res = app
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "HR sync", "org": "acme", "environment": "production", "permissions": ["eligibility:write"], "expires_in_seconds": 86400})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("tmc_"));
    assert!(created["client_secret"].as_str().unwrap().starts_with("tms_"));
    assert_eq!(created["token_endpoint"], app.url("/oauth/token").as_str());
    let c = &created["credential"];
    assert_eq!(c["scopes"], json!(["eligibility:read", "eligibility:write"]));
    assert_eq!(c["status"], "active");
    assert!(c["expires_at"].is_string());
    assert_eq!(c["secrets"].as_array().unwrap().len(), 1);
    assert!(c["secrets"][0]["hint"].as_str().unwrap().ends_with('…'));

    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"name": "HR sync v2", "permissions": ["billing:read"], "never_expires": true, "audiences": ["https://api"]})))
        .await;
    assert_eq!(res.status(), 200);
    let u: Value = res.json().await.unwrap();
    assert_eq!(u["name"], "HR sync v2");
    assert_eq!(u["permissions"], json!(["billing:read"]));
    assert_eq!(u["expires_at"], Value::Null);
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    assert_eq!(shown["name"], "HR sync v2");
    assert!(shown.get("client_secret").is_none());

    for i in 0..3 {
        app.create_credential(
            json!({"name": format!("c{i}"), "org": "paged", "environment": "sandbox"}),
        )
        .await;
    }
    let page: Value =
        app.admin(Method::GET, "/credentials?org=paged&limit=2", None).await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest: Value = app
        .admin(Method::GET, &format!("/credentials?org=paged&limit=2&cursor={cursor}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    // A cursor no listing returned is invalid input, answered as every listing answers it:
    // 422 naming the parameter, saying what to do.
    for path in ["/credentials?org=paged&cursor=not-a-cursor", "/audit?cursor=not-a-cursor"] {
        let forged = app.admin(Method::GET, path, None).await;
        assert_eq!(forged.status(), 422, "{path}");
        let problem: Value = forged.json().await.unwrap();
        assert_eq!(problem["field"], "cursor", "{path}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("start again without"), "{problem}");
    }
    let missing = app.admin(Method::GET, "/credentials/tmc_nothing", None).await;
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_secret_can_be_deleted_at_once() {
    let app = spawn_app().await;
    let (id, old) = app.sandbox_reader().await;
    let rotated: Value = app
        .admin(Method::POST, &format!("/credentials/{id}/secrets"), Some(json!({})))
        .await
        .json()
        .await
        .unwrap();
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    let old_id = shown["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] != rotated["secret"]["id"])
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let res = app.admin(Method::DELETE, &format!("/credentials/{id}/secrets/{old_id}"), None).await;
    assert_eq!(res.status(), 204);
    assert_eq!(app.token_for(&id, &old, &[]).await.status(), 401);
    app.token(&id, rotated["client_secret"].as_str().unwrap()).await;
}

#[tokio::test]
async fn organizations_are_created_and_conflicts_reported() {
    let app = spawn_app().await;
    let res = app
        .admin(Method::POST, "/organizations", Some(json!({"slug": "acme", "name": "Acme Corp"})))
        .await;
    assert_eq!(res.status(), 201);
    let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await;
    assert_eq!(res.status(), 409);
    let list: Value = app.admin(Method::GET, "/organizations", None).await.json().await.unwrap();
    let slugs: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|o| o["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["acme", "platform"]);
    let one: Value =
        app.admin(Method::GET, "/organizations/acme", None).await.json().await.unwrap();
    assert_eq!(one["name"], "Acme Corp");
}

#[tokio::test]
async fn the_openapi_document_is_generated_and_covers_every_admin_route() {
    let app = spawn_app().await;
    let doc: Value =
        app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/admin/v1/credentials",
        "/admin/v1/credentials/{client_id}",
        "/admin/v1/credentials/{client_id}/secrets",
        "/admin/v1/credentials/{client_id}/deactivate",
        "/admin/v1/keys/rotate",
        "/admin/v1/revocations",
        "/admin/v1/organizations",
    ] {
        assert!(paths.contains_key(p), "missing {p}");
    }
    assert!(doc["components"]["schemas"]["CreateCredential"].is_object());
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = spawn_app().await;
    let h: Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(h["status"], "ok");
    let (id, secret) = app.sandbox_reader().await;
    app.token(&id, &secret).await;
    app.token_for(&id, "tms_wrong", &[]).await;
    let m = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(m.contains("tokenmint_tokens_issued_total{alg=\"ES256\"}"), "{m}");
    assert!(m.contains("tokenmint_token_requests_refused_total{reason=\"wrong_secret\"} 1"), "{m}");
    assert!(m.contains("tokenmint_token_request_seconds_bucket"));
    assert!(m.trim_end().ends_with("# EOF"));
}

#[tokio::test]
async fn unknown_paths_are_problem_json_404s() {
    let app = spawn_app().await;
    let res = app.http.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    assert!(res.headers().contains_key("x-request-id"));
}

#[tokio::test]
async fn the_admin_credential_cannot_lock_itself_out() {
    let mut app = spawn_app().await;
    let own = app.admin_id.clone();
    for (method, path) in [
        (Method::POST, format!("/credentials/{own}/deactivate")),
        (Method::POST, format!("/credentials/{own}/revoke-tokens")),
    ] {
        let res = app.admin(method, &path, None).await;
        assert_eq!(res.status(), 409, "{path}");
        let body: Value = res.json().await.unwrap();
        assert!(body["detail"].as_str().unwrap().contains("another admin credential"), "{body}");
    }
    // Still working.
    let res = app.admin(Method::GET, "/credentials", None).await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

/// Every list of the admin API serves pages up to its maximum and refuses a larger page, 0 and
/// a negative number with the 422 problem of any other bad query, rather than cutting the page
/// down to size (a client would take the short page for the end of the list).
#[tokio::test]
async fn every_list_endpoint_refuses_a_page_size_beyond_its_maximum_or_below_one() {
    let app = spawn_app().await;
    let (id, _) = app.sandbox_reader().await;
    let activity = format!("/credentials/{id}/activity");
    let lists = [
        ("/audit", "limit", AUDIT_PAGE),
        ("/credentials", "limit", CREDENTIALS_PAGE),
        ("/organizations", "limit", ORGANIZATIONS_PAGE),
        ("/revocations", "limit", REVOCATIONS_PAGE),
        ("/revocations/stream", "limit", REVOCATIONS_PAGE),
        (activity.as_str(), "days", ACTIVITY_DAYS),
    ];
    for (path, param, size) in lists {
        for ok in [1, size.max] {
            let res = app.admin(Method::GET, &format!("{path}?{param}={ok}"), None).await;
            assert_eq!(res.status(), 200, "{path}?{param}={ok}");
        }
        for bad in [i64::from(size.max) + 1, 0, -1, i64::from(u32::MAX) + 1] {
            let res = app.admin(Method::GET, &format!("{path}?{param}={bad}"), None).await;
            assert_eq!(res.status(), 422, "{path}?{param}={bad}");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let p: Value = res.json().await.unwrap();
            // A number a page size cannot be at all is a malformed query; one it can be but
            // out of range names the parameter and its bounds.
            if (0..=i64::from(u32::MAX)).contains(&bad) {
                assert_eq!(p["field"], param, "{path}?{param}={bad}: {p}");
                assert!(
                    p["detail"].as_str().unwrap().contains(&format!("1 to {}", size.max)),
                    "{p}"
                );
            } else {
                assert_eq!(p["field"], "query", "{path}?{param}={bad}: {p}");
            }
        }
    }
    let res = app.admin(Method::GET, "/revocations?after=-1", None).await;
    assert_eq!(res.status(), 422);
}

/// The schema of a request body's member: in the schema's own properties or in one of those
/// it combines (`allOf`, as a flattened body is documented), `$ref`s followed.
fn member<'a>(doc: &'a Value, schema: &'a Value, name: &str) -> Option<&'a Value> {
    let schema = resolve(doc, schema);
    schema["properties"]
        .get(name)
        .map(|m| resolve(doc, m))
        .or_else(|| schema["allOf"].as_array()?.iter().find_map(|part| member(doc, part, name)))
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.trim_start_matches("#/components/schemas/")],
        None => schema,
    }
}

/// Every member of a schema, with the schemas it combines.
fn members<'a>(doc: &'a Value, schema: &'a Value) -> Vec<(String, &'a Value)> {
    let schema = resolve(doc, schema);
    let mut out: Vec<(String, &Value)> = schema["properties"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), resolve(doc, v))).collect())
        .unwrap_or_default();
    for part in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(members(doc, part));
    }
    out
}

fn has_type(schema: &Value, ty: &str) -> bool {
    schema["type"] == ty || schema["type"].as_array().is_some_and(|t| t.iter().any(|t| t == ty))
}

async fn openapi(app: &common::TestApp) -> Value {
    app.http.get(app.url("/admin/v1/openapi.json")).send().await.unwrap().json().await.unwrap()
}

/// The document states each bound the server enforces, from the constants it enforces them
/// with: every page size its minimum and maximum, every number of a request body its range,
/// and every bounded string and list of a body its length, pattern, values or count.
#[tokio::test]
async fn the_openapi_document_states_every_bound_the_server_enforces() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let pages = [
        ("/admin/v1/audit", "limit", AUDIT_PAGE),
        ("/admin/v1/credentials", "limit", CREDENTIALS_PAGE),
        ("/admin/v1/organizations", "limit", ORGANIZATIONS_PAGE),
        ("/admin/v1/revocations", "limit", REVOCATIONS_PAGE),
        ("/admin/v1/revocations/stream", "limit", REVOCATIONS_PAGE),
        ("/admin/v1/credentials/{client_id}/activity", "days", ACTIVITY_DAYS),
    ];
    let mut pages_seen = 0;
    let mut bodies = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                // A path parameter is one the path names; everything else is in the query.
                assert_eq!(
                    p["in"] == "path",
                    path.contains(&format!("{{{name}}}")),
                    "{method} {path} {name}: {p}"
                );
                if p["in"] != "query" || !has_type(&p["schema"], "integer") {
                    continue;
                }
                // Every number a query takes has a lower bound; page sizes an upper one.
                assert!(p["schema"]["minimum"].is_number(), "{method} {path} {name}: {p}");
                if let Some((.., size)) = pages.iter().find(|(pp, n, _)| pp == path && *n == name) {
                    assert_eq!(p["schema"]["minimum"], 1, "{path} {name}");
                    assert_eq!(p["schema"]["maximum"], size.max, "{path} {name}");
                    pages_seen += 1;
                } else {
                    assert!(!["limit", "days"].contains(&name), "{path} {name} is not known here");
                }
            }
            if let Some(body) = op.pointer("/requestBody/content/application~1json/schema") {
                bodies.push((format!("{method} {path}"), body));
            }
        }
    }
    assert_eq!(pages_seen, pages.len());
    // Every number of every body: a range.
    assert!(bodies.len() >= 8, "{}", bodies.len());
    for (op, body) in &bodies {
        for (name, m) in members(&doc, body) {
            if has_type(m, "integer") {
                assert!(m["minimum"].is_number() && m["maximum"].is_number(), "{op} {name}: {m}");
            }
        }
    }
    let schemas = &doc["components"]["schemas"];
    let get = |schema: &str, name: &str| {
        member(&doc, &schemas[schema], name).unwrap_or_else(|| panic!("{schema}.{name}")).clone()
    };
    let slug_pattern = format!("[a-z0-9][a-z0-9-]{{0,{}}}", SLUG_MAX_LEN - 1);
    for (schema, name) in
        [("CreateOrganization", "slug"), ("CreateCredential", "org"), ("CreateUser", "org")]
    {
        assert!(
            get(schema, name)["pattern"].as_str().unwrap().contains(&slug_pattern),
            "{schema}.{name}"
        );
    }
    for (schema, name) in [
        ("CreateOrganization", "name"),
        ("UpdateOrganization", "name"),
        ("CreateCredential", "name"),
        ("UpdateCredential", "name"),
    ] {
        let m = get(schema, name);
        assert_eq!(
            (m["minLength"].as_u64(), m["maxLength"].as_u64()),
            (Some(1), Some(NAME_MAX_LEN as u64)),
            "{schema}.{name}"
        );
        assert!(m["pattern"].is_string(), "{schema}.{name}");
    }
    for schema in ["CreateCredential", "UpdateCredential"] {
        let a = get(schema, "audiences");
        assert_eq!(a["maxItems"], AUDIENCES_MAX, "{schema}");
        assert_eq!(a["items"]["maxLength"], AUDIENCE_MAX_LEN, "{schema}");
        assert!(a["items"]["pattern"].is_string(), "{schema}");
        let p = get(schema, "permissions");
        let pattern = p["items"]["pattern"].as_str().unwrap();
        for known in ["eligibility:read", "billing:write", "tokenmint:admin"] {
            assert!(pattern.contains(known), "{schema}: {pattern}");
        }
        assert_eq!(
            get(schema, "token_lifetime_seconds")["maximum"],
            app.state.config.max_token_lifetime
        );
    }
    assert_eq!(get("NewCredential", "public_keys")["maxItems"], PUBLIC_KEYS_MAX);
    let keys = get("AddPublicKeys", "keys");
    assert_eq!(
        (keys["minItems"].as_u64(), keys["maxItems"].as_u64()),
        (Some(1), Some(PUBLIC_KEYS_MAX as u64))
    );
    assert_eq!(get("CreateUser", "email")["maxLength"], EMAIL_MAX_LEN);
    let password = get("CreateUser", "password");
    assert_eq!(
        (password["minLength"].as_u64(), password["maxLength"].as_u64()),
        (Some(PASSWORD_MIN_LEN as u64), Some(PASSWORD_MAX_LEN as u64))
    );
    assert_eq!(get("RotateKey", "alg")["enum"], json!(["RS256", "ES256", "EdDSA", null]));
    assert_eq!(get("RotateKey", "propagation_seconds")["maximum"], KEY_PROPAGATION_MAX_SECS);
    assert_eq!(get("RotateSecret", "overlap_seconds")["maximum"], DURATION_MAX_SECS);
    assert_eq!(
        get("CreateCredential", "rate_limit_per_minute")["maximum"],
        RATE_LIMIT_MAX_PER_MINUTE
    );
    for (schema, edits) in
        [("CreateCredential", false), ("UpdateCredential", true), ("UpdateOrganization", true)]
    {
        let claims = get(schema, "claims");
        assert_eq!(claims["maxProperties"], tokenmint_core::claims::MAX_CLAIMS, "{schema}");
        let names = claims["propertyNames"]["pattern"].as_str().unwrap();
        assert!(names.contains(&tokenmint_core::claims::MAX_CLAIM_NAME_LEN.to_string()), "{names}");
        assert!(
            claims["propertyNames"]["not"]["pattern"].as_str().unwrap().contains("[sS][uU][bB]")
        );
        if edits {
            assert_eq!(get(schema, "remove_claims")["items"], claims["propertyNames"], "{schema}");
        }
    }
}

/// What a string member's `pattern` and lengths allow is what the server takes, value for
/// value, white space it trims and characters it refuses included: the document neither
/// refuses what the server takes nor promises what it refuses.
#[tokio::test]
async fn string_bounds_in_the_document_accept_exactly_what_the_server_accepts() {
    let app = spawn_app().await;
    let doc = openapi(&app).await;
    let schemas = &doc["components"]["schemas"];
    let allows = |schema: &str, name: &str, value: &str| {
        let m = member(&doc, &schemas[schema], name).unwrap();
        let m = if m["items"].is_object() { &m["items"] } else { m };
        let n = value.chars().count() as u64;
        m["pattern"].as_str().is_none_or(|p| regex::Regex::new(p).unwrap().is_match(value))
            && m["maxLength"].as_u64().is_none_or(|max| n <= max)
            && m["minLength"].as_u64().is_none_or(|min| n >= min)
    };
    let long_name = "n".repeat(NAME_MAX_LEN);
    let too_long_name = format!(" {long_name}");
    let names = [
        "ok",
        " padded\u{3000}",
        "",
        " ",
        "\u{3000}\u{a0}",
        "tab\there",
        "\u{85}",
        "line\u{2028}sep",
        "rtl\u{202e}override",
        "zero\u{200b}width",
        "soft\u{ad}hyphen",
        "émoji 🦀",
        long_name.as_str(),
        too_long_name.as_str(),
    ];
    for (i, name) in names.iter().enumerate() {
        let slug = format!("org-{i}");
        let res = app
            .admin(Method::POST, "/organizations", Some(json!({"slug": slug, "name": name})))
            .await;
        let documented = allows("CreateOrganization", "name", name);
        assert_eq!(res.status() == 201, documented, "name {name:?}: {}", res.status());
    }
    let long_slug = "s".repeat(SLUG_MAX_LEN);
    let too_long_slug = format!("{long_slug}x");
    let slugs = [
        "acme",
        " spaced\t",
        "-dash",
        "UPPER",
        "a_b",
        "",
        long_slug.as_str(),
        too_long_slug.as_str(),
        "\u{3000}wide",
        "x\u{1c}",
    ];
    for slug in slugs {
        let res = app.admin(Method::POST, "/organizations", Some(json!({"slug": slug}))).await;
        let documented = allows("CreateOrganization", "slug", slug);
        assert_eq!(res.status() == 201, documented, "slug {slug:?}: {}", res.status());
    }
    let long_audience = "a".repeat(AUDIENCE_MAX_LEN);
    let too_long_audience = format!("{long_audience}x");
    let audiences = [
        "https://api",
        " https://api ",
        "a b",
        "",
        " ",
        "\u{3000}",
        "tab\tin",
        "nbsp\u{a0}in",
        "a\u{202e}b",
        "a\u{2028}b",
        "\u{feff}a",
        long_audience.as_str(),
        too_long_audience.as_str(),
    ];
    for aud in audiences {
        let res = app
            .admin(
                Method::POST,
                "/credentials",
                Some(json!({"name": "aud", "org": "acme", "environment": "sandbox", "audiences": [aud]})),
            )
            .await;
        let documented = allows("CreateCredential", "audiences", aud);
        assert_eq!(res.status() == 201, documented, "audience {aud:?}: {}", res.status());
    }
    // "@example.com" is 12 characters: the first long address is exactly the most.
    let longest_email = format!("{}@example.com", "l".repeat(EMAIL_MAX_LEN - 12));
    let too_long_email = format!("l{longest_email}");
    let emails = [
        "ada@example.com",
        " pad@example.com ",
        "a@b@c",
        "@b",
        "a@",
        "a b@c",
        "<a>@b",
        "a\u{3000}@b",
        "\u{202e}elpmaxe.emca@ada",
        "a\u{200d}b@c",
        longest_email.as_str(),
        too_long_email.as_str(),
    ];
    for (i, email) in emails.iter().enumerate() {
        let res = app
            .admin(
                Method::POST,
                "/users",
                Some(json!({"org": "acme", "email": email, "password": format!("long enough password {i}")})),
            )
            .await;
        let documented = allows("CreateUser", "email", email);
        assert_eq!(res.status() == 201, documented, "email {email:?}: {}", res.status());
    }
    for perm in [
        "eligibility:read",
        " billing:write ",
        "payroll:read",
        "eligibility:admin",
        "tokenmint:admin",
        "tokenmint:nope",
        "",
    ] {
        let res = app
            .admin(
                Method::POST,
                "/credentials",
                Some(json!({"name": "perm", "org": "acme", "environment": "sandbox", "permissions": [perm]})),
            )
            .await;
        let documented = allows("CreateCredential", "permissions", perm);
        assert_eq!(res.status() == 201, documented, "permission {perm:?}: {}", res.status());
    }
}

/// Characters that show as nothing, break the line or reorder the text around them: every
/// stored name, email address and audience refuses them, wherever in the text they are, with a
/// 422 naming the field (the portal and the CLI reach the same checks).
#[tokio::test]
async fn stored_names_emails_and_audiences_refuse_bidi_zero_width_and_format_characters() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let send = |method: Method, path: String, body: Value| {
        app.http
            .request(method, app.url(&format!("/admin/v1{path}")))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let (id, _) = app.sandbox_reader().await;
    let hidden = [
        '\u{202A}',
        '\u{202B}',
        '\u{202C}',
        '\u{202D}',
        '\u{202E}', // embeddings, overrides
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}', // isolates
        '\u{200E}',
        '\u{200F}',
        '\u{061C}', // direction marks
        '\u{2028}',
        '\u{2029}', // line and paragraph separators
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{FEFF}',
        '\u{2060}', // zero-width
        '\u{00AD}',
        '\u{2061}',
        '\u{FFF9}',
        '\u{E0041}', // other format characters
        '\u{1b}',
        '\u{85}', // controls, refused before
    ];
    for c in hidden {
        let code = format!("U+{:04X}", u32::from(c));
        for (i, text) in
            [format!("{c}elpmaxe.emca@ada"), format!("ev{c}il@acme.example"), format!("a{c}")]
                .iter()
                .enumerate()
        {
            let slug = format!("o{}x{i}", u32::from(c));
            let cases = [
                (
                    Method::POST,
                    "/organizations".to_owned(),
                    json!({"slug": slug, "name": text}),
                    "name",
                ),
                (Method::PATCH, "/organizations/acme".to_owned(), json!({"name": text}), "name"),
                (
                    Method::POST,
                    "/credentials".to_owned(),
                    json!({"name": text, "org": "acme", "environment": "sandbox"}),
                    "name",
                ),
                (Method::PATCH, format!("/credentials/{id}"), json!({"name": text}), "name"),
                (
                    Method::POST,
                    "/credentials".to_owned(),
                    json!({"name": "n", "org": "acme", "environment": "sandbox", "audiences": ["https://api", text]}),
                    "audiences",
                ),
                (
                    Method::PATCH,
                    format!("/credentials/{id}"),
                    json!({"audiences": [text]}),
                    "audiences",
                ),
                (
                    Method::POST,
                    "/users".to_owned(),
                    json!({"org": "acme", "email": text, "password": "long enough password"}),
                    "email",
                ),
            ];
            for (method, path, body, field) in cases {
                let what = format!("{method} {path} {body}");
                let res = send(method, path, body).await.unwrap();
                assert_eq!(res.status(), 422, "{what}");
                let p: Value = res.json().await.unwrap();
                assert_eq!(p["field"], field, "{what}: {p}");
                assert!(p.to_string().contains(&code), "{what}: {p}");
            }
        }
    }
    // Nothing was stored.
    let stored = app.admin(Method::GET, "/users", None).await.text().await.unwrap()
        + &app.admin(Method::GET, "/credentials", None).await.text().await.unwrap()
        + &app.admin(Method::GET, "/organizations", None).await.text().await.unwrap();
    assert!(!stored.contains("elpmaxe") && !stored.contains("il@acme"), "{stored}");
    // Text in other scripts, and emoji, is welcome.
    for (i, name) in ["Zoë Müller", "名前", "مرحبا", "🦀 team"].iter().enumerate() {
        let res = send(
            Method::POST,
            "/organizations".into(),
            json!({"slug": format!("ok-{i}"), "name": name}),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), 201, "{name}");
    }
}

/// An admin-API body over the limit is refused with 413 and a problem naming the limit in
/// bytes, on every route that takes one, whether its length is declared or streamed; one just
/// under the limit is read.
#[tokio::test]
async fn an_oversized_admin_body_is_413_naming_the_limit_on_every_route() {
    use tokenmint_proto::limits::ADMIN_BODY_MAX_BYTES;
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let (id, _) = app.sandbox_reader().await;
    let routes = [
        (Method::POST, "/credentials".to_owned()),
        (Method::PATCH, format!("/credentials/{id}")),
        (Method::POST, format!("/credentials/{id}/secrets")),
        (Method::POST, "/organizations".to_owned()),
        (Method::PATCH, "/organizations/acme".to_owned()),
        (Method::POST, "/users".to_owned()),
        (Method::POST, "/keys/rotate".to_owned()),
    ];
    let padded = |len: usize| {
        let mut body = format!("{{\"name\": \"{}", "a".repeat(len));
        body.truncate(len - 2);
        body.push_str("\"}");
        body
    };
    let over = padded(ADMIN_BODY_MAX_BYTES + 1);
    let expected = format!("the request body is larger than {ADMIN_BODY_MAX_BYTES} bytes");
    for (method, path) in &routes {
        let url = app.url(&format!("/admin/v1{path}"));
        let declared = app.http.request(method.clone(), &url).body(over.clone());
        let chunks: Vec<Result<String, std::io::Error>> = over
            .as_bytes()
            .chunks(64 * 1024)
            .map(|c| Ok(String::from_utf8(c.to_vec()).unwrap()))
            .collect();
        let streamed = app
            .http
            .request(method.clone(), &url)
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)));
        for (how, req) in [("declared", declared), ("streamed", streamed)] {
            let res = req
                .bearer_auth(&token)
                .header("content-type", "application/json")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 413, "{method} {path} ({how})");
            assert_eq!(res.headers()["content-type"], "application/problem+json");
            let p: Value = res.json().await.unwrap();
            assert_eq!(p["status"], 413, "{p}");
            assert_eq!(p["detail"], expected.as_str(), "{method} {path} ({how}): {p}");
        }
    }
    // At the limit the body is read: this one is judged by its fields (a long name), not size.
    let res = app
        .http
        .post(app.url("/admin/v1/organizations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(padded(ADMIN_BODY_MAX_BYTES))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
}
