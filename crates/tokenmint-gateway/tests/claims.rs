//! Custom claims at the gateway: a route forwards the claims it lists as headers (and drops any
//! such header the caller sent), and a change of the claims revokes the older tokens within
//! seconds, through the revocation feed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{AUDIENCE, Setup, eventually};
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
