//! Custom claims at the gateway: a route forwards the claims it lists as headers (and drops any
//! such header the caller sent), and a change of the claims revokes the older tokens within
//! seconds, through the revocation feed. Header values are visible ASCII: a claim's text is
//! percent-encoded where it is not, and a claim with a control character (which an older
//! release may have stored) is skipped with a warning, never a 500, in proxy and authz mode.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{AUDIENCE, Setup, decode, eventually, real_now};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;

const ROUTE: &str = r#"
[[route]]
path_prefix = "/claims"
upstream = "PRODUCTION_URL"
read_scope = "eligibility:read"
write_scope = "eligibility:write"
forward_claims = ["tenant_id", "plan", "https://example.com/region", "missing"]
"#;

async fn credential(setup: &Setup, claims: serde_json::Value) -> (String, String) {
    let created = setup
        .server
        .admin(
            Method::POST,
            "/credentials",
            Some(json!({"name": "claims", "org": "acme", "environment": "production",
                "permissions": ["eligibility:read"], "audiences": [AUDIENCE], "claims": claims})),
        )
        .await;
    (
        created["client_id"].as_str().unwrap().to_owned(),
        created["client_secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn a_route_forwards_the_claims_it_lists_and_drops_what_the_caller_sent_under_those_names() {
    let setup = Setup::start_with(ROUTE).await;
    let (id, secret) = credential(
        &setup,
        json!({"tenant_id": "t-42", "plan": {"tier": "gold"}, "https://example.com/region": "eu",
            "not_listed": "x"}),
    )
    .await;
    let token = setup.server.token(&id, &secret).await;
    let spoofed = [
        ("x-tokenmint-claim-tenant-id", "someone-else"),
        ("x-tokenmint-claim-missing", "forged"),
        ("x-tokenmint-claim-not-listed", "forged"),
    ];
    let answer = setup.send(Method::GET, "/claims/x", Some(&token), &spoofed).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.forwarded("x-tokenmint-claim-tenant-id"), Some("t-42"));
    assert_eq!(answer.forwarded("x-tokenmint-claim-plan"), Some(r#"{"tier":"gold"}"#));
    assert_eq!(answer.forwarded("x-tokenmint-claim-https---example-com-region"), Some("eu"));
    assert_eq!(answer.forwarded("x-tokenmint-claim-missing"), None, "absent, not forged");
    assert_eq!(answer.forwarded("x-tokenmint-claim-not-listed"), None);
    // A route without forward_claims forwards none.
    let other = setup.send(Method::GET, "/eligibility", Some(&token), &spoofed).await;
    assert_eq!(other.status, 200);
    assert_eq!(other.forwarded("x-tokenmint-claim-tenant-id"), None);
}

#[tokio::test]
async fn a_claim_change_revokes_older_tokens_at_the_gateway_within_seconds() {
    let setup = Setup::start_with(ROUTE).await;
    let (id, secret) = credential(&setup, json!({"tenant_id": "t-1"})).await;
    let old = setup.server.token(&id, &secret).await;
    assert_eq!(setup.get("/claims", Some(&old)).await.status, 200);
    setup
        .server
        .admin(
            Method::PATCH,
            &format!("/credentials/{id}"),
            Some(json!({"claims": {"tenant_id": "t-2"}})),
        )
        .await;
    let refused = eventually(Duration::from_secs(5), async || {
        let answer = setup.get("/claims", Some(&old)).await;
        answer.status == 401 && answer.body["detail"] == "the access token has been revoked"
    })
    .await;
    assert!(refused, "the old token is refused within 5 s");
    let new = setup.server.token(&id, &secret).await;
    let answer = setup.get("/claims", Some(&new)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.forwarded("x-tokenmint-claim-tenant-id"), Some("t-2"));

    // The same for a change of the organization's claims, for every credential of it.
    let old = new;
    setup
        .server
        .admin(Method::PATCH, "/organizations/acme", Some(json!({"claims": {"plan": "gold"}})))
        .await;
    let refused = eventually(Duration::from_secs(5), async || {
        setup.get("/claims", Some(&old)).await.status == 401
    })
    .await;
    assert!(refused);
    let new = setup.server.token(&id, &secret).await;
    assert_eq!(
        setup.get("/claims", Some(&new)).await.forwarded("x-tokenmint-claim-plan"),
        Some("gold")
    );
}

const FORWARDING: &str = r#"
[[route]]
path_prefix = "/claims"
upstream = "PRODUCTION_URL"
read_scope = "eligibility:read"
write_scope = "eligibility:write"
forward_claims = ["tenant_id", "city", "note", "plan"]
"#;

/// Stores claims as an older release could have: without today's checks of their content.
async fn store_as_an_older_release(setup: &Setup, client_id: &str, claims: &serde_json::Value) {
    use tokenmint_store::Store;
    let url = format!("sqlite://{}", setup.server.dir.path().join("tokenmint.db").display());
    let store = tokenmint_store::SqlStore::connect(&url, false).await.unwrap();
    let mut c = store.get_credential(client_id).await.unwrap().unwrap();
    c.claims = tokenmint_core::CustomClaims::from_stored(&claims.to_string()).unwrap();
    store.update_credential(&c, None, &tokenmint_store::Guard::system(real_now())).await.unwrap();
}

/// One of each class of control character: C0 (NUL, tab, LF, CR, ESC, U+0001), DEL and C1.
const CONTROLS: [char; 9] =
    ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'];

/// What the upstream (proxy mode) or the proxy asking (authz mode) gets for `header`.
async fn forwarded(setup: &Setup, authz: bool, token: &str, header: &str) -> (u16, Option<String>) {
    let spoofed = [(header, "forged")];
    let answer = if authz {
        let ask =
            [("x-original-method", "GET"), ("x-original-uri", "/claims/x"), (header, "forged")];
        setup.send(Method::GET, "/_auth", Some(token), &ask).await
    } else {
        setup.send(Method::GET, "/claims/x", Some(token), &spoofed).await
    };
    let value = if authz { answer.header(header) } else { answer.forwarded(header) };
    (answer.status, value.map(str::to_owned))
}

#[tokio::test]
async fn claims_travel_as_visible_ascii_and_one_that_cannot_be_a_header_is_skipped_not_a_500() {
    for authz in [false, true] {
        let top = if authz { "mode = \"authz\"" } else { "" };
        let setup = Setup::start_configured(top, FORWARDING).await;
        // Non-ASCII text is a valid claim; it is forwarded percent-encoded (UTF-8), as are a
        // space and `%`, so that percent-decoding gives the claim back exactly.
        let (id, secret) = credential(
            &setup,
            json!({"tenant_id": "t-42", "city": "Zürich", "note": "50% off",
                "plan": {"name": "Gold plan", "region": "東京"}}),
        )
        .await;
        let token = setup.server.token(&id, &secret).await;
        for (header, value) in [
            ("x-tokenmint-claim-tenant-id", "t-42"),
            ("x-tokenmint-claim-city", "Z%C3%BCrich"),
            ("x-tokenmint-claim-note", "50%25%20off"),
            ("x-tokenmint-claim-plan", r#"{"name":"Gold%20plan","region":"%E6%9D%B1%E4%BA%AC"}"#),
        ] {
            assert_eq!(
                forwarded(&setup, authz, &token, header).await,
                (200, Some(value.to_owned())),
                "authz {authz}: {header}"
            );
        }

        // A control character, anywhere the gateway would have to put it in a header: the
        // claim is left out (sent empty in authz mode, so the proxy overwrites what the caller
        // sent), the others are forwarded, and the request is served.
        for c in CONTROLS {
            let s = format!("a{c}b");
            for note in [json!(s), json!({"k": format!("x{c}")})] {
                // C0 characters inside a structure travel JSON-escaped, which is plain ASCII.
                let escaped = !note.is_string() && u32::from(c) < 0x20;
                store_as_an_older_release(&setup, &id, &json!({"tenant_id": "t-1", "note": note}))
                    .await;
                // The server sees the change at its next sync with the database.
                let mut token = String::new();
                let changed = eventually(Duration::from_secs(5), async || {
                    token = setup.server.token(&id, &secret).await;
                    decode(&token).1["note"] == note
                })
                .await;
                assert!(changed, "the server issues tokens with the stored claims");
                let (status, value) =
                    forwarded(&setup, authz, &token, "x-tokenmint-claim-note").await;
                assert_eq!(status, 200, "authz {authz}: {c:?} in {note}");
                match (escaped, authz) {
                    (true, _) => assert_eq!(value, Some(note.to_string()), "{c:?}"),
                    (false, true) => assert_eq!(value.as_deref(), Some(""), "{c:?}"),
                    (false, false) => assert_eq!(value, None, "{c:?}: not forwarded, not forged"),
                }
                let (status, tenant) =
                    forwarded(&setup, authz, &token, "x-tokenmint-claim-tenant-id").await;
                assert_eq!((status, tenant.as_deref()), (200, Some("t-1")), "{c:?}");
            }
        }
    }
}
