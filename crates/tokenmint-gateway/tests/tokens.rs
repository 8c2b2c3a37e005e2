//! Which tokens the gateway refuses and how (RFC 6750 challenges, RFC 9457 bodies); key
//! rotation, deactivation and revocation against the real server; reloading the routes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tokenmint_gateway::{GatewayConfig, Overrides, ReloadError};

/// Asserts a 401 `invalid_token` whose description is `description`.
fn assert_invalid_token(answer: &Answer, description: &str) {
    answer.assert_problem(401);
    assert_eq!(answer.body["error"], "invalid_token", "{answer:?}");
    assert_eq!(answer.body["detail"], description, "{answer:?}");
    assert_eq!(
        answer.header("www-authenticate"),
        Some(
            format!("Bearer error=\"invalid_token\", error_description=\"{description}\"").as_str()
        )
    );
    assert!(answer.body.get("upstream").is_none(), "never forwarded");
}

/// Re-signs nothing: swaps a token's header and keeps the rest.
fn with_header(token: &str, header: serde_json::Value) -> String {
    let mut parts = token.splitn(2, '.');
    parts.next();
    format!("{}.{}", b64(&serde_json::to_vec(&header).unwrap()), parts.next().unwrap())
}

#[tokio::test]
async fn a_request_without_a_token_gets_a_bare_bearer_challenge() {
    let setup = Setup::start().await;
    let answer = setup.get("/eligibility", None).await;
    answer.assert_problem(401);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    let answer = setup
        .send(
            reqwest::Method::GET,
            "/eligibility",
            None,
            &[("authorization", "Basic dXNlcjpwYXNz")],
        )
        .await;
    answer.assert_problem(401);
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn malformed_tokens_and_headers_are_refused() {
    let setup = Setup::start().await;
    assert_invalid_token(
        &setup.get("/eligibility", Some("not-a-jwt")).await,
        "the access token is not a well-formed JWT",
    );
    let answer = setup
        .send(reqwest::Method::GET, "/eligibility", None, &[("authorization", "Bearer two words")])
        .await;
    answer.assert_problem(400);
    assert_eq!(answer.body["error"], "invalid_request");
}

#[tokio::test]
async fn expired_and_not_yet_valid_tokens_are_refused() {
    let setup = Setup::start().await;
    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    // Issued two hours ago with a one-hour lifetime.
    let expired = setup.server.token_issued_at_offset(&id, &secret, -7200).await;
    assert_invalid_token(
        &setup.get("/eligibility", Some(&expired)).await,
        "the access token has expired",
    );
    // Issued an hour from now: beyond any clock leeway.
    let future = setup.server.token_issued_at_offset(&id, &secret, 3600).await;
    assert_invalid_token(
        &setup.get("/eligibility", Some(&future)).await,
        "the access token is not valid yet",
    );
}

#[tokio::test]
async fn tokens_for_another_audience_or_from_another_issuer_are_refused() {
    let setup = Setup::start().await;
    let (id, secret) = setup
        .server
        .credential("production", &["eligibility:read"], &["https://other.example.com"])
        .await;
    let other_audience = setup.server.token(&id, &secret).await;
    assert_invalid_token(
        &setup.get("/eligibility", Some(&other_audience)).await,
        "the access token is not meant for this audience",
    );

    // Signed with the trusted keys by an instance that claims another issuer.
    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    let impostor = setup.server.impostor("https://impostor.example.com").await;
    let token = setup.server.token_at(&impostor, &id, &secret).await;
    assert_eq!(decode(&token).1["iss"], "https://impostor.example.com");
    assert_invalid_token(
        &setup.get("/eligibility", Some(&token)).await,
        "the access token was issued by another issuer",
    );
}

#[tokio::test]
async fn forged_unsigned_and_hs256_confused_tokens_are_refused() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let (header, mut claims) = decode(&token);
    let parts: Vec<&str> = token.split('.').collect();

    // Forged: the claims changed under the original signature.
    claims["scope"] = json!("eligibility:read eligibility:write eligibility:admin");
    let forged =
        format!("{}.{}.{}", parts[0], b64(&serde_json::to_vec(&claims).unwrap()), parts[2]);
    assert_invalid_token(
        &setup.get("/eligibility", Some(&forged)).await,
        "the access token's signature is invalid",
    );

    // alg: none, no signature.
    let mut none = header.clone();
    none["alg"] = json!("none");
    let unsigned = format!("{}.{}.", b64(&serde_json::to_vec(&none).unwrap()), parts[1]);
    let answer = setup.get("/eligibility", Some(&unsigned)).await;
    answer.assert_problem(401);
    assert_eq!(answer.body["error"], "invalid_token");

    // HS256 with the server's public key (its PEM, as published) as the HMAC secret.
    let pem =
        setup.server.http.get(setup.server.url("/pem")).send().await.unwrap().text().await.unwrap();
    let mut hs = header.clone();
    hs["alg"] = json!("HS256");
    let input = format!("{}.{}", b64(&serde_json::to_vec(&hs).unwrap()), parts[1]);
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, pem.as_bytes());
    let confused =
        format!("{input}.{}", b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref()));
    assert_invalid_token(
        &setup.get("/eligibility", Some(&confused)).await,
        "the access token is signed with an algorithm that is not accepted",
    );

    // A token whose header names a key the issuer never published.
    let mut foreign = header;
    foreign["kid"] = json!("made-up");
    let answer = setup.get("/eligibility", Some(&with_header(&token, foreign))).await;
    answer.assert_problem(401);
    // The original is still fine.
    assert_eq!(setup.get("/eligibility", Some(&token)).await.status, 200);
}

#[tokio::test]
async fn a_key_rotation_is_picked_up_without_restart_or_a_burst_of_jwks_fetches() {
    let setup = Setup::start().await;
    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    let old = setup.server.token(&id, &secret).await;
    let old_kid = decode(&old).0["kid"].clone();
    assert_eq!(setup.get("/eligibility", Some(&old)).await.status, 200);

    setup
        .server
        .admin(reqwest::Method::POST, "/keys/rotate", Some(json!({ "propagation_seconds": 0 })))
        .await;
    let mut new = String::new();
    assert!(
        eventually(Duration::from_secs(5), async || {
            new = setup.server.token(&id, &secret).await;
            decode(&new).0["kid"] != old_kid
        })
        .await,
        "the server signs with the new key"
    );

    // The gateway fetched the JWKS at start; its refetch cooldown (1 s here) passes.
    setup.clock.advance(Duration::from_millis(1100));
    let jwks = "/.well-known/jwks.json";
    let before = setup.server.counter.path(jwks);
    let requests = (0..50).map(|_| setup.get("/eligibility", Some(&new)));
    let answers = futures_util::future::join_all(requests).await;
    assert!(
        answers.iter().all(|a| a.status == 200),
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let fetched = setup.server.counter.path(jwks) - before;
    assert_eq!(fetched, 1, "50 concurrent requests with the new key cost one JWKS fetch");
    assert_eq!(
        setup.get("/eligibility", Some(&old)).await.status,
        200,
        "the old key is still published"
    );
}

/// Sends requests until the gateway refuses `token` as revoked; returns how many it took.
async fn refused_as_revoked(setup: &Setup, token: &str) -> Option<usize> {
    let mut sent = 0;
    let refused = eventually(Duration::from_secs(5), async || {
        sent += 1;
        let answer = setup.get("/eligibility", Some(token)).await;
        answer.status == 401 && answer.body["detail"] == "the access token has been revoked"
    })
    .await;
    refused.then_some(sent)
}

#[tokio::test]
async fn a_deactivated_credential_and_a_revoked_token_are_refused_within_seconds_without_a_call_per_request()
 {
    let setup = Setup::start().await;
    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    let (other_id, other_secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    let deactivated = setup.server.token(&id, &secret).await;
    let revoked = setup.server.token(&other_id, &other_secret).await;
    let kept = setup.server.token(&other_id, &other_secret).await;
    for token in [&deactivated, &revoked, &kept] {
        assert_eq!(setup.get("/eligibility", Some(token)).await.status, 200);
    }

    let before = setup.server.counter.outside_feed();
    setup.server.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    let sent =
        refused_as_revoked(&setup, &deactivated).await.expect("deactivation honoured within 5 s");

    let response = setup
        .server
        .http
        .post(setup.server.url("/oauth/revoke"))
        .form(&[
            ("token", revoked.as_str()),
            ("client_id", &other_id),
            ("client_secret", &other_secret),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let sent_after_revocation =
        refused_as_revoked(&setup, &revoked).await.expect("revocation honoured within 5 s");
    assert_eq!(
        setup.get("/eligibility", Some(&kept)).await.status,
        200,
        "only that token is revoked"
    );

    for _ in 0..20 {
        assert_eq!(setup.get("/eligibility", Some(&revoked)).await.status, 401);
    }
    let gateway_requests = sent + sent_after_revocation + 21;
    assert_eq!(
        setup.server.counter.outside_feed() - before,
        0,
        "{gateway_requests} requests through the gateway, none to the server besides the feed"
    );
}

#[tokio::test]
async fn a_reload_swaps_routes_without_dropping_requests_and_a_bad_config_is_refused() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read", "billing:read"]).await;
    setup.get("/orders", Some(&token)).await.assert_problem(404);

    // A request in flight during the reload completes.
    let slow = {
        let http = setup.http.clone();
        let url = setup.url("/eligibility/slow");
        let token = token.clone();
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap().status() })
    };
    assert!(
        eventually(Duration::from_secs(5), async || {
            setup.production.slow_arrived.load(std::sync::atomic::Ordering::SeqCst) > 0
        })
        .await,
        "the slow request reached the upstream"
    );

    let text = std::fs::read_to_string(&setup.config_path).unwrap()
        + &format!(
            "\n[[route]]\npath_prefix = \"/orders\"\nupstream = \"{}\"\nread_scope = \"billing:read\"\nwrite_scope = \"billing:write\"\n",
            setup.production.url
        );
    let config = GatewayConfig::from_toml(&text, &Overrides::default()).unwrap();
    assert_eq!(setup.handle.reload(config).unwrap(), 4);
    assert_eq!(setup.get("/orders/1", Some(&token)).await.status, 200);
    assert_eq!(slow.await.unwrap(), 200, "the request in flight was not dropped");

    // A file that does not validate is refused and the routes in force stay.
    std::fs::write(
        &setup.config_path,
        text.replace("read_scope = \"billing:read\"", "read_scope = \"\""),
    )
    .unwrap();
    let error = setup.handle.reload_file(&setup.config_path, &Overrides::default()).unwrap_err();
    assert!(error.to_string().contains("read_scope"), "{error}");
    assert_eq!(setup.get("/orders/1", Some(&token)).await.status, 200);

    // Settings that need a restart are refused by name.
    let moved = text.replace(&setup.server.issuer, "https://elsewhere.example.com");
    let config = GatewayConfig::from_toml(&moved, &Overrides::default()).unwrap();
    assert!(matches!(
        setup.handle.reload(config),
        Err(ReloadError::NeedsRestart { key: "issuer" })
    ));
    assert_eq!(setup.get("/eligibility", Some(&token)).await.status, 200);
}

/// Builds a second gateway over `setup`'s server and upstream, reading the feed as `client_id`.
async fn gateway_with_feed_credential(
    setup: &Setup,
    client_id: &str,
    secret: &str,
    feed_url: Option<&str>,
) -> Result<tokenmint_gateway::Gateway, tokenmint_gateway::StartError> {
    let secret_file = setup.server.dir.path().join(format!("feed-{client_id}"));
    std::fs::write(&secret_file, format!("{secret}\n")).unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:0"
client_id = "{client_id}"
client_secret_file = "{file}"

[[issuer]]
url = "{issuer}"
audience = "{AUDIENCE}"
{feed}

{route}
"#,
        issuer = setup.server.issuer,
        file = secret_file.display(),
        route = common::eligibility_route(&setup.production.url),
        feed = feed_url.map(|u| format!("revocation_feed_url = \"{u}\"")).unwrap_or_default(),
    );
    let path = setup.server.dir.path().join(format!("gateway-{client_id}.toml"));
    std::fs::write(&path, text).unwrap();
    let config = GatewayConfig::load(&path, &Overrides::default()).unwrap();
    tokenmint_gateway::Gateway::build(config, setup.clock.clone()).await
}

#[tokio::test]
async fn a_refused_feed_credential_names_the_switch_of_the_configuration_form_in_use() {
    let setup = Setup::start().await;
    let (id, _) = setup.server.credential("production", &["tokenmint:revocations"], &[]).await;
    // An [[issuer]] table: its own revocation_feed.
    match gateway_with_feed_credential(&setup, &id, "wrong", None).await {
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains("revocation_feed = false in this [[issuer]] table"), "{text}");
        }
        Ok(_) => panic!("started with a refused feed credential"),
    }
    // The shorthand issuer = "URL" has no table: its switch is follow_revocations.
    let secret_file = setup.server.dir.path().join("feed-shorthand");
    std::fs::write(&secret_file, "wrong\n").unwrap();
    let text = format!(
        r#"
listen = "127.0.0.1:0"
issuer = "{issuer}"
audience = "{AUDIENCE}"
client_id = "{id}"
client_secret_file = "{file}"

{route}
"#,
        issuer = setup.server.issuer,
        file = secret_file.display(),
        route = common::eligibility_route(&setup.production.url),
    );
    let path = setup.server.dir.path().join("gateway-shorthand.toml");
    std::fs::write(&path, text).unwrap();
    let config = GatewayConfig::load(&path, &Overrides::default()).unwrap();
    match tokenmint_gateway::Gateway::build(config, setup.clock.clone()).await {
        Err(error) => {
            let text = error.to_string();
            assert!(text.contains("set follow_revocations = false"), "{text}");
            assert!(!text.contains("revocation_feed ="), "a key this form cannot hold: {text}");
        }
        Ok(_) => panic!("started with a refused feed credential"),
    }
}

#[tokio::test]
async fn a_feed_credential_that_lists_other_audiences_still_reads_the_feed() {
    let setup = Setup::start().await;
    let issuer = setup.server.issuer.clone();
    // Its default token would name both audiences, which the admin API refuses (the other
    // server could replay it); the gateway asks for the issuer by name.
    let (feed_id, feed_secret) = setup
        .server
        .credential("production", &["tokenmint:revocations"], &[&issuer, "https://other.example"])
        .await;
    let gateway = gateway_with_feed_credential(&setup, &feed_id, &feed_secret, None).await.unwrap();
    let url = format!("http://{}/eligibility", gateway.local_addr().unwrap());
    tokio::spawn(async move { gateway.run_until_stopped(std::future::pending()).await.unwrap() });

    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[AUDIENCE]).await;
    let token = setup.server.token(&id, &secret).await;
    let status = async || setup.http.get(&url).bearer_auth(&token).send().await.unwrap().status();
    assert_eq!(status().await, 200);
    setup.server.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    assert!(
        eventually(Duration::from_secs(5), async || status().await == 401).await,
        "the deactivation reached this gateway through its feed"
    );
}

#[tokio::test]
async fn a_gateway_whose_feed_credential_is_refused_does_not_start() {
    let setup = Setup::start().await;
    let expect_refused = |result: Result<tokenmint_gateway::Gateway, _>, why: &str| match result {
        Err(error @ tokenmint_gateway::StartError::FeedRefused { .. }) => {
            let text = error.to_string();
            assert!(text.contains("tokenmint:revocations"), "{why}: says what to do: {text}");
        }
        Err(other) => panic!("{why}: refused for another reason: {other}"),
        Ok(_) => panic!("{why}: started, and would accept revoked tokens"),
    };
    // Its tokens are for another audience only: the token endpoint refuses the issuer.
    let (id, secret) = setup
        .server
        .credential("production", &["tokenmint:revocations"], &["https://other.example"])
        .await;
    expect_refused(gateway_with_feed_credential(&setup, &id, &secret, None).await, "audience");
    // No feed permission: the token endpoint refuses the scope.
    let (id, secret) = setup.server.credential("production", &["eligibility:read"], &[]).await;
    expect_refused(gateway_with_feed_credential(&setup, &id, &secret, None).await, "scope");
    // A wrong secret.
    let (id, _) = setup.server.credential("production", &["tokenmint:revocations"], &[]).await;
    expect_refused(gateway_with_feed_credential(&setup, &id, "wrong", None).await, "secret");
    // A token the token endpoint grants but the feed refuses: 401 (even to a renewed token)
    // or 403, from a stand-in feed.
    let (id, secret) = setup.server.credential("production", &["tokenmint:revocations"], &[]).await;
    for status in [axum::http::StatusCode::UNAUTHORIZED, axum::http::StatusCode::FORBIDDEN] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let feed = format!("http://{}/feed", listener.local_addr().unwrap());
        let refusing = axum::Router::new().fallback(move || async move { status });
        tokio::spawn(async move { axum::serve(listener, refusing).await.unwrap() });
        let started = gateway_with_feed_credential(&setup, &id, &secret, Some(&feed)).await;
        expect_refused(started, status.as_str());
    }
}
