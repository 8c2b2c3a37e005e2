//! A gateway whose issuer cannot be reached at start: it listens, answers 503 with
//! `Retry-After` for the tokens it cannot judge (never 401, never forwarded), says it is not
//! ready on `/readyz` and in the metrics, and becomes ready without a restart once the issuer
//! answers. No test sleeps for time to pass: each polls an observable state, within a bound.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Answer, ForeignIssuer, Server, Setup, closed_port, eventually, forward_on};
use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// Short pauses between attempts, so the tests wait for the issuer, not for the backoff.
const FAST_RETRY: &str = "issuer_retry_max = \"200ms\"";
/// How long a test waits for the gateway to notice the issuer is back.
const WITHIN: Duration = Duration::from_secs(20);

async fn readiness(setup: &Setup) -> (u16, Value) {
    let answer = Answer::from(setup.http.get(setup.url("/readyz")).send().await.unwrap()).await;
    (answer.status, answer.body)
}

async fn metrics(setup: &Setup) -> String {
    setup.http.get(setup.url("/metrics")).send().await.unwrap().text().await.unwrap()
}

/// Asserts the 503 a token gets while its issuer is not ready.
fn assert_not_ready_answer(answer: &Answer) {
    answer.assert_problem(503);
    let retry_after: u64 = answer.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=600).contains(&retry_after), "{answer:?}");
    assert!(answer.header("www-authenticate").is_none(), "not a bad token: {answer:?}");
    assert!(answer.body.get("error").is_none(), "no invalid_token: {answer:?}");
    assert!(answer.body.get("upstream").is_none(), "not forwarded: {answer:?}");
}

#[tokio::test]
async fn a_gateway_whose_issuer_is_unreachable_listens_answers_503_and_becomes_ready_once_it_answers()
 {
    let setup = Setup::start_unreachable(FAST_RETRY).await;
    let token = setup.token("production", &["eligibility:read"]).await;

    // It listens, and says it is alive but not ready, naming the issuer and why.
    assert_eq!(setup.http.get(setup.url("/healthz")).send().await.unwrap().status(), 200);
    let (status, body) = readiness(&setup).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_eq!(body["issuers"][0]["issuer"], setup.server.issuer.as_str(), "{body}");
    assert_eq!(body["issuers"][0]["state"], "unreachable", "{body}");
    let detail = body["issuers"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("discovery at"), "{detail}");

    // A good token cannot be judged yet: 503 with Retry-After, in the problem shape.
    let answer = setup.get("/eligibility/7", Some(&token)).await;
    assert_not_ready_answer(&answer);
    assert!(answer.body["detail"].as_str().unwrap().contains("retry in"), "{answer:?}");
    // So can a bad one: nothing tells a caller its token is wrong while nothing was checked.
    assert_not_ready_answer(&setup.get("/eligibility/7", Some("not.a.token")).await);
    // No token at all is still a 401: no key is needed to see that.
    setup.get("/eligibility/7", None).await.assert_problem(401);

    let text = metrics(&setup).await;
    assert!(text.contains("tokenmint_gateway_revocation_feed_up 0"), "{text}");
    let ready_gauge =
        format!("tokenmint_gateway_issuer_ready{{issuer=\"{}\"}}", setup.server.issuer);
    assert!(text.contains(&format!("{ready_gauge} 0")), "{text}");
    assert!(
        text.contains(
            "tokenmint_gateway_refusals_total{route=\"/eligibility\",reason=\"issuer_not_ready\"} 2"
        ),
        "{text}"
    );

    // The issuer comes up: the gateway loads it without a restart.
    setup.server.open_issuer().await;
    let ready = eventually(WITHIN, async || readiness(&setup).await.0 == 200).await;
    assert!(ready, "not ready after the issuer came up: {:?}", readiness(&setup).await);
    assert!(setup.handle.is_ready());
    let (_, body) = readiness(&setup).await;
    assert_eq!(body["status"], "ready", "{body}");
    assert_eq!(body["issuers"][0]["state"], "ready", "{body}");

    let answer = setup.get("/eligibility/7", Some(&token)).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body["upstream"], "production");
    setup.get("/eligibility/7", Some("not.a.token")).await.assert_problem(401);
    let text = metrics(&setup).await;
    assert!(text.contains("tokenmint_gateway_revocation_feed_up 1"), "{text}");
    assert!(text.contains(&format!("{ready_gauge} 1")), "{text}");

    // And it follows the feed it could not reach at start: a deactivation reaches it.
    let (id, secret) =
        setup.server.credential("production", &["eligibility:read"], &[common::AUDIENCE]).await;
    let token = setup.server.token(&id, &secret).await;
    assert_eq!(setup.get("/eligibility/7", Some(&token)).await.status, 200);
    setup.server.admin(Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    let refused =
        eventually(WITHIN, async || setup.get("/eligibility/7", Some(&token)).await.status == 401)
            .await;
    assert!(refused, "the deactivation reached the gateway through its feed");
}

#[tokio::test]
async fn authz_mode_answers_503_while_the_issuer_is_unreachable_and_200_once_it_answers() {
    let setup = Setup::start_unreachable(&format!("mode = \"authz\"\n{FAST_RETRY}")).await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let nginx = [("x-original-method", "GET"), ("x-original-uri", "/eligibility/7")];
    let ask = async || setup.send(Method::GET, "/_tokenmint/auth", Some(&token), &nginx).await;

    assert_not_ready_answer(&ask().await);
    assert_eq!(readiness(&setup).await.0, 503);

    setup.server.open_issuer().await;
    assert!(eventually(WITHIN, async || readiness(&setup).await.0 == 200).await);
    let allowed = ask().await;
    assert_eq!(allowed.status, 200, "{allowed:?}");
    assert!(allowed.header("x-tokenmint-client-id").is_some_and(|id| !id.is_empty()));
}

#[tokio::test]
async fn a_feed_never_read_keeps_its_issuers_tokens_at_503_until_it_is() {
    // Discovery and keys answer; the feed the configuration names does not, yet. A token
    // revoked while the gateway was down could not be told from a good one: none is accepted.
    let server = Server::start().await;
    let feed_addr = closed_port().await.to_string();
    let setup = Setup::over(server, |server, production, _, secret_file| {
        format!(
            r#"
listen = "127.0.0.1:0"
client_id = "{client_id}"
client_secret_file = "{file}"
{FAST_RETRY}

[[issuer]]
url = "{issuer}"
audience = "{audience}"
revocation_feed_url = "http://{feed_addr}/admin/v1/revocations"

{route}
"#,
            client_id = server.admin_id,
            file = secret_file.display(),
            issuer = server.issuer,
            audience = common::AUDIENCE,
            route = common::eligibility_route(&production.url),
        )
    })
    .await;
    let token = setup.token("production", &["eligibility:read"]).await;

    let (status, body) = readiness(&setup).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["issuers"][0]["state"], "revocation_feed_pending", "{body}");
    assert_not_ready_answer(&setup.get("/eligibility/7", Some(&token)).await);
    assert!(metrics(&setup).await.contains("tokenmint_gateway_revocation_feed_up 0"));

    // The feed comes up (the server's own, behind the configured address).
    let _feed = forward_on(&feed_addr, &setup.server.direct).await;
    assert!(
        eventually(WITHIN, async || readiness(&setup).await.0 == 200).await,
        "{:?}",
        readiness(&setup).await
    );
    assert_eq!(setup.get("/eligibility/7", Some(&token)).await.status, 200);
    assert!(metrics(&setup).await.contains("tokenmint_gateway_revocation_feed_up 1"));
}

#[tokio::test]
async fn another_issuers_tokens_pass_while_one_issuer_is_unreachable() {
    let foreign = ForeignIssuer::start().await;
    let server = Server::start_unreachable().await;
    let table = foreign.table();
    let setup = Setup::over(server, |server, production, _, secret_file| {
        format!(
            r#"
listen = "127.0.0.1:0"
client_id = "{client_id}"
client_secret_file = "{file}"
{FAST_RETRY}

[[issuer]]
url = "{issuer}"
audience = "{audience}"
{table}

{route}
"#,
            client_id = server.admin_id,
            file = secret_file.display(),
            issuer = server.issuer,
            audience = common::AUDIENCE,
            route = common::eligibility_route(&production.url),
        )
    })
    .await;

    let (status, body) = readiness(&setup).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["issuers"][0]["state"], "unreachable", "{body}");
    assert_eq!(body["issuers"][1]["state"], "ready", "{body}");

    let foreign_token = foreign.token("app-1", &["eligibility:read"]);
    assert_eq!(setup.get("/eligibility/7", Some(&foreign_token)).await.status, 200);
    let token = setup.token("production", &["eligibility:read"]).await;
    assert_not_ready_answer(&setup.get("/eligibility/7", Some(&token)).await);
    // A token naming neither issuer is refused as before: that needs no key.
    let stranger = foreign.sign(
        &serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "foreign-1"}),
        &serde_json::json!({"iss": "https://stranger.example/", "aud": common::AUDIENCE}),
    );
    setup.get("/eligibility/7", Some(&stranger)).await.assert_problem(401);

    setup.server.open_issuer().await;
    assert!(eventually(WITHIN, async || readiness(&setup).await.0 == 200).await);
    assert_eq!(setup.get("/eligibility/7", Some(&token)).await.status, 200);
    assert_eq!(setup.get("/eligibility/7", Some(&foreign_token)).await.status, 200);
}

#[tokio::test]
async fn a_feed_credential_refused_once_the_issuer_answers_keeps_its_tokens_at_503() {
    // At start nothing could judge the credential; when the issuer comes back and refuses it,
    // the gateway must not begin accepting tokens it cannot check for revocation.
    let server = Server::start_unreachable().await;
    let setup = Setup::over(server, |server, production, sandbox, secret_file| {
        std::fs::write(secret_file, "not-the-secret\n").unwrap();
        common::config_text(server, &production.url, &sandbox.url, secret_file, FAST_RETRY, "")
    })
    .await;
    let token = setup.token("production", &["eligibility:read"]).await;
    assert_not_ready_answer(&setup.get("/eligibility/7", Some(&token)).await);

    setup.server.open_issuer().await;
    let refused = eventually(WITHIN, async || {
        readiness(&setup).await.1["issuers"][0]["state"] == "revocation_feed_refused"
    })
    .await;
    assert!(refused, "{:?}", readiness(&setup).await);
    let (status, body) = readiness(&setup).await;
    assert_eq!(status, 503, "{body}");
    let detail = body["issuers"][0]["detail"].as_str().unwrap();
    assert!(detail.contains("tokenmint:revocations"), "says what to do: {detail}");
    assert!(!detail.contains("not-the-secret"), "{detail}");
    assert_not_ready_answer(&setup.get("/eligibility/7", Some(&token)).await);
    assert!(metrics(&setup).await.contains("tokenmint_gateway_revocation_feed_up 0"));
}
