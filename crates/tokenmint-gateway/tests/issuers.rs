//! The gateway for any issuer and any proxy: tokenmint's and a foreign issuer's tokens (shaped
//! like Entra ID's: RSA key without `alg`, `typ: JWT`, `azp`, an `scp` array, no `env` or
//! `org`, an issuer URL with a trailing slash) through proxy mode and through the
//! external-authorization mode, with path binding and the route rules for absent claims.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;

const ROUTES: &str = r#"
[[route]]
path_prefix = "/files"
upstream = "PRODUCTION"
read_scope = "files:read"
write_scope = "files:write"

[[route]]
path_prefix = "/api/v1"
upstream = "PRODUCTION"
read_scope = "files:read"
write_scope = "files:write"
path_binding = "/api/v1/{client_id}/traversal"

[[route]]
path_prefix = "/org-only"
upstream = "PRODUCTION"
read_scope = "files:read"
write_scope = "files:write"
require_org = true
"#;

async fn start(foreign: &ForeignIssuer, top: &str) -> Setup {
    let table = foreign.table();
    Setup::start_text(|server, production, _sandbox, secret| {
        format!(
            r#"
listen = "127.0.0.1:0"
client_id = "{client_id}"
client_secret_file = "{secret}"
jwks_refetch_cooldown = "1s"
{top}

[[issuer]]
url = "{issuer}"
audience = "{AUDIENCE}"
{table}
{routes}
"#,
            client_id = server.admin_id,
            secret = secret.display(),
            issuer = server.issuer,
            routes = ROUTES.replace("PRODUCTION", &production.url),
        )
    })
    .await
}

#[tokio::test]
async fn a_foreign_issuers_tokens_are_proxied_with_its_client_and_scopes_and_no_org_or_env() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "").await;
    let reader = foreign.token("app-1", &["files:read"]);

    let answer = setup.get("/files/x", Some(&reader)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.forwarded("x-tokenmint-client-id"), Some("app-1"));
    assert_eq!(answer.forwarded("x-tokenmint-scope"), Some("files:read"));
    assert_eq!(answer.forwarded("x-tokenmint-org"), None);
    assert_eq!(answer.forwarded("x-tokenmint-env"), None);
    assert_eq!(answer.body["upstream"], "production", "a token without env goes to upstream");

    let write = setup.send(Method::POST, "/files/x", Some(&reader), &[]).await;
    write.assert_problem(403);
    assert_eq!(write.body["required_scope"], "files:write");

    // tokenmint's own tokens keep working beside it, with their org and env.
    let own = setup.token("production", &["files:read"]).await;
    let answer = setup.get("/files/x", Some(&own)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.forwarded("x-tokenmint-org"), Some("acme"));

    // A route that needs an organization refuses the foreign token, saying why.
    let refused = setup.get("/org-only/x", Some(&reader)).await;
    refused.assert_problem(403);
    assert_eq!(refused.body["detail"], "this API requires tokens that carry the org claim");
    assert_eq!(setup.get("/org-only/x", Some(&own)).await.status, 200);

    // The issuer is compared exactly: the same token naming the URL without its slash fails.
    let claims = serde_json::json!({"iss": foreign.issuer.trim_end_matches('/'), "aud": AUDIENCE,
        "exp": real_now() + 60, "azp": "app-1", "scp": ["files:read"]});
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"});
    let other = foreign.sign(&header, &claims);
    setup.get("/files/x", Some(&other)).await.assert_problem(401);
}

/// Another issuer's client id may be any text: it reaches the upstream percent-encoded like a
/// forwarded claim (a line separator or a bidi control never raw), and a control character in
/// it refuses the token (401), never a 500.
#[tokio::test]
async fn a_foreign_client_id_is_forwarded_encoded_and_one_with_a_control_character_is_refused() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "").await;
    let signed = |client: &str, scopes: serde_json::Value| {
        let claims = serde_json::json!({"iss": foreign.issuer, "aud": AUDIENCE,
            "exp": real_now() + 60, "azp": client, "scp": scopes});
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"});
        foreign.sign(&header, &claims)
    };
    for (client, forwarded) in [
        ("app\u{2028}1", "app%E2%80%A81"),
        ("app\u{202e}1", "app%E2%80%AE1"),
        ("50% app", "50%25%20app"),
    ] {
        let token = signed(client, serde_json::json!(["files:read", "x\u{e9}y"]));
        let answer = setup.get("/files/x", Some(&token)).await;
        assert_eq!(answer.status, 200, "{client:?}: {answer:?}");
        assert_eq!(answer.forwarded("x-tokenmint-client-id"), Some(forwarded), "{client:?}");
        assert_eq!(answer.forwarded("x-tokenmint-scope"), Some("files:read x%C3%A9y"));
    }
    for client in ["app\r\n1", "app\u{0}", "app\u{85}1"] {
        let token = signed(client, serde_json::json!(["files:read"]));
        let answer = setup.get("/files/x", Some(&token)).await;
        answer.assert_problem(401);
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("holds a control character"), "{client:?}: {detail}");
    }
    // An environment claim the gateway cannot take is said to be one, not "not a well-formed
    // JWT".
    for env in ["production\r", "staging"] {
        let claims = serde_json::json!({"iss": foreign.issuer, "aud": AUDIENCE,
            "exp": real_now() + 60, "azp": "app-1", "scp": ["files:read"], "env": env});
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"});
        let answer = setup.get("/files/x", Some(&foreign.sign(&header, &claims))).await;
        answer.assert_problem(401);
        let detail = answer.body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("neither sandbox nor production"), "{env:?}: {detail}");
    }
}

/// Only a space separates another issuer's scopes: `files:read<NBSP>files:write` (or with a
/// line separator, an ideographic space) is one scope, which grants neither the read nor the
/// write route; with a tab, a vertical tab, NEL or CRLF the token is refused.
#[tokio::test]
async fn only_a_space_separates_a_foreign_tokens_scopes() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "").await;
    let signed = |scope: &str| {
        let claims = serde_json::json!({"iss": foreign.issuer, "aud": AUDIENCE,
            "exp": real_now() + 60, "azp": "app-1", "scp": scope});
        let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"});
        foreign.sign(&header, &claims)
    };
    let both = signed("files:read files:write");
    assert_eq!(setup.send(Method::POST, "/files/x", Some(&both), &[]).await.status, 200);
    for joiner in ['\u{a0}', '\u{2028}', '\u{3000}', '\u{202f}'] {
        let token = signed(&format!("files:read{joiner}files:write"));
        let answer = setup.send(Method::POST, "/files/x", Some(&token), &[]).await;
        answer.assert_problem(403);
        setup.get("/files/x", Some(&token)).await.assert_problem(403);
    }
    for joiner in ["\t", "\u{b}", "\u{c}", "\u{85}", "\r\n"] {
        let token = signed(&format!("files:read{joiner}files:write"));
        setup.send(Method::POST, "/files/x", Some(&token), &[]).await.assert_problem(401);
    }
}

#[tokio::test]
async fn a_bound_path_segment_must_name_the_tokens_own_client() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "").await;
    let token = foreign.token("app-1", &["files:read"]);
    let answer = setup.get("/api/v1/app-1/traversal", Some(&token)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(setup.get("/api/v1/app-1/traversal/7", Some(&token)).await.status, 200);
    for path in ["/api/v1/app-2/traversal", "/api/v1/app-1/other", "/api/v1/app-1", "/api/v1"] {
        let answer = setup.get(path, Some(&token)).await;
        answer.assert_problem(403);
        assert!(answer.body["detail"].as_str().unwrap().contains("{client_id}"), "{path}");
    }
    // The segment is compared decoded, so an encoded spelling of the client is the same client.
    assert_eq!(setup.get("/api/v1/app%2D1/traversal", Some(&token)).await.status, 200);
}

/// Asks the authz gateway about `method target` the nginx way or the forward_auth way.
async fn ask(setup: &Setup, headers: &[(&str, &str)], token: Option<&str>) -> Answer {
    setup.send(Method::GET, "/_tokenmint/auth", token, headers).await
}

#[tokio::test]
async fn authz_mode_answers_nginx_and_forward_auth_subrequests_with_the_proxy_checks() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "mode = \"authz\"").await;
    let reader = foreign.token("app-1", &["files:read"]);
    let nginx = |method: &'static str, uri: &'static str| {
        [("x-original-method", method), ("x-original-uri", uri)]
    };
    let forward = |method: &'static str, uri: &'static str| {
        [("x-forwarded-method", method), ("x-forwarded-uri", uri)]
    };

    let allowed = ask(&setup, &nginx("GET", "/files/x?q=1"), Some(&reader)).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-tokenmint-client-id"), Some("app-1"));
    assert_eq!(allowed.header("x-tokenmint-scope"), Some("files:read"));
    assert_eq!(allowed.header("x-tokenmint-org"), Some(""), "absent claims are sent empty");
    assert_eq!(ask(&setup, &forward("HEAD", "/files/x"), Some(&reader)).await.status, 200);

    // The write a read-only token may not make, whichever way it is described.
    for headers in [nginx("POST", "/files/x"), forward("DELETE", "/files/x")] {
        let refused = ask(&setup, &headers, Some(&reader)).await;
        refused.assert_problem(403);
        assert_eq!(refused.body["required_scope"], "files:write");
    }
    ask(&setup, &nginx("GET", "/files/x"), None).await.assert_problem(401);
    ask(&setup, &nginx("GET", "/nowhere"), Some(&reader)).await.assert_problem(404);
    ask(&setup, &nginx("GET", "/files//x"), Some(&reader)).await.assert_problem(400);
    ask(&setup, &nginx("GET", "/api/v1/app-2/traversal"), Some(&reader)).await.assert_problem(403);
    assert_eq!(
        ask(&setup, &nginx("GET", "/api/v1/app-1/traversal"), Some(&reader)).await.status,
        200
    );

    // A caller behind one kind of proxy cannot add the other kind's pair to describe another
    // request; a subrequest that describes none is refused too.
    let both = [
        ("x-original-method", "GET"),
        ("x-original-uri", "/files/x"),
        ("x-forwarded-method", "POST"),
        ("x-forwarded-uri", "/files/x"),
    ];
    ask(&setup, &both, Some(&reader)).await.assert_problem(400);
    ask(&setup, &[], Some(&reader)).await.assert_problem(400);
    ask(&setup, &[("x-original-uri", "/files/x")], Some(&reader)).await.assert_problem(400);
}

#[tokio::test]
async fn authz_mode_for_envoy_judges_the_subrequests_own_method_and_path() {
    let foreign = ForeignIssuer::start().await;
    let setup = start(&foreign, "mode = \"authz\"\nauthz_source = \"envoy\"").await;
    let reader = foreign.token("app-1", &["files:read"]);
    let allowed = setup.send(Method::GET, "/files/x", Some(&reader), &[]).await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert_eq!(allowed.header("x-tokenmint-client-id"), Some("app-1"));
    assert_eq!(allowed.body, serde_json::Value::Null, "answered by the gateway, not forwarded");
    setup.send(Method::POST, "/files/x", Some(&reader), &[]).await.assert_problem(403);
    // Headers a caller could add are not looked at.
    let ignored = [("x-original-method", "GET"), ("x-original-uri", "/files/x")];
    setup.send(Method::PUT, "/files/x", Some(&reader), &ignored).await.assert_problem(403);
}
