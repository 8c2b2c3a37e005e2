//! The token hook over HTTP, against a local hook server: it adds claims, narrows the scope or
//! refuses; its answer is cached per credential until the (manual) clock passes the TTL; a
//! hook that does not answer in time is handled by the configured policy; calls are signed and
//! carry no secret; a private target is refused unless allowed, and a hook without a signing
//! secret unless unsigned calls are chosen. Concurrent requests that miss the cache share one
//! call; an answer with claims that break the custom claim rules, or a scope that keeps none of
//! the granted ones, is malformed; a refusal's reason reaches the client within RFC 6749's
//! characters.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use common::{LogCapture, Options, TestApp, claims, spawn_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenmint_server::alerts::{WebhookSecret, WebhookTarget};
use tokenmint_server::hook::{HookConfig, OnFailure};

const SECRET: &str = "a hook signing secret";

/// What the hook server answers next.
#[derive(Clone)]
enum Behaviour {
    Answer(Value),
    /// This text, as JSON.
    Raw(&'static str),
    Hang,
    Fail,
    /// What the inner behaviour answers, once the test released one call ([`Hook::release`]).
    Held(Box<Behaviour>),
}

struct Hook {
    behaviour: Mutex<Behaviour>,
    /// Each call's body, as parsed and as sent, and its signature header.
    calls: Mutex<Vec<(Value, String, Option<String>)>>,
    /// Permits for held calls to answer.
    released: tokio::sync::Semaphore,
}

impl Hook {
    fn set(&self, b: Behaviour) {
        *self.behaviour.lock().unwrap() = b;
    }

    fn calls(&self) -> usize {
        self.calls.lock().unwrap().len()
    }

    fn last(&self) -> (Value, Option<String>) {
        let (parsed, _, signature) = self.calls.lock().unwrap().last().cloned().unwrap();
        (parsed, signature)
    }

    fn last_raw(&self) -> String {
        self.calls.lock().unwrap().last().cloned().unwrap().1
    }

    /// Lets `n` held calls answer.
    fn release(&self, n: usize) {
        self.released.add_permits(n);
    }
}

async fn hook_endpoint(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let signature = headers.get("tokenmint-signature").map(|v| v.to_str().unwrap().to_owned());
    hook.calls.lock().unwrap().push((serde_json::from_str(&body).unwrap(), body, signature));
    let mut behaviour = hook.behaviour.lock().unwrap().clone();
    if let Behaviour::Held(then) = behaviour {
        hook.released.acquire().await.unwrap().forget();
        behaviour = *then;
    }
    match behaviour {
        Behaviour::Answer(v) => axum::Json(v).into_response(),
        Behaviour::Raw(text) => {
            ([(axum::http::header::CONTENT_TYPE, "application/json")], text).into_response()
        }
        Behaviour::Fail | Behaviour::Held(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        Behaviour::Hang => {
            std::future::pending::<()>().await;
            StatusCode::OK.into_response()
        }
    }
}

async fn hook_server(first: Behaviour) -> (String, Arc<Hook>) {
    let hook = Arc::new(Hook {
        behaviour: Mutex::new(first),
        calls: Mutex::new(Vec::new()),
        released: tokio::sync::Semaphore::new(0),
    });
    let router = axum::Router::new()
        .route("/hook", axum::routing::post(hook_endpoint))
        .with_state(hook.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook?token=url-secret"), hook)
}

fn hook_config(url: &str, on_failure: OnFailure) -> HookConfig {
    let mut c = HookConfig::new(WebhookTarget::parse(url).unwrap());
    // The test's hook server is on loopback.
    c.allow_private = true;
    c.secret = Some(WebhookSecret(SECRET.to_owned()));
    c.timeout = Duration::from_millis(300);
    c.on_failure = on_failure;
    c.cache_ttl = Duration::from_secs(60);
    c
}

async fn app_with_hook(first: Behaviour, on_failure: OnFailure) -> (TestApp, Arc<Hook>) {
    app_with(first, |url| hook_config(url, on_failure)).await
}

async fn app_with(first: Behaviour, config: impl Fn(&str) -> HookConfig) -> (TestApp, Arc<Hook>) {
    let (url, hook) = hook_server(first).await;
    let app = spawn_with(Options { token_hook: Some(config(&url)), ..Options::default() }).await;
    (app, hook)
}

async fn reader(app: &TestApp) -> (String, String) {
    app.create_credential(json!({
        "name": "HR sync", "org": "acme", "environment": "sandbox",
        "permissions": ["eligibility:read", "billing:read"], "claims": {"tenant_id": "t-1"},
    }))
    .await
}

async fn metrics(app: &TestApp) -> String {
    app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap()
}

fn verifies(signature: &str, body: &str) -> bool {
    let (t, v1) = signature.split_once(',').unwrap();
    let t = t.strip_prefix("t=").unwrap();
    let v1 = v1.strip_prefix("v1=").unwrap();
    let expected = tokenmint_core::crypto::hmac_sha256_hex(
        SECRET.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    );
    expected == v1
}

#[tokio::test]
async fn the_hook_adds_claims_and_narrows_the_scope_told_who_asks_signed_and_without_secrets() {
    let answer = json!({"allow": true, "claims": {"plan": "gold", "tenant_id": "t-hook"},
        "scope": "billing:read eligibility:write"});
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Refuse).await;
    let (id, secret) = reader(&app).await;
    // The admin's own token requests were asked about too (and are cached now).
    let admin_calls = hook.calls();
    hook.set(Behaviour::Answer(answer));
    let body = app.token(&id, &secret).await;
    let token = body["access_token"].as_str().unwrap();
    let c = claims(token);
    assert_eq!(c["plan"], "gold");
    assert_eq!(c["tenant_id"], "t-hook", "the hook's claim overrides the static one");
    assert_eq!(c["scope"], "billing:read", "narrowed, and never widened to eligibility:write");
    assert_eq!(body["scope"], "billing:read");
    assert_eq!(c["sub"], id.as_str());

    assert_eq!(hook.calls(), admin_calls + 1);
    let (request, signature) = hook.last();
    assert_eq!(request["client_id"], id.as_str());
    assert_eq!(request["org"], "acme");
    assert_eq!(request["environment"], "sandbox");
    assert_eq!(request["scope"], "billing:read eligibility:read");
    assert_eq!(request["requested_scope"], Value::Null);
    assert_eq!(request["claims"], json!({"tenant_id": "t-1"}));
    assert!(!request.to_string().contains(&secret), "no secret in the body");
    assert!(verifies(&signature.expect("signed"), &hook.last_raw()), "signed like alert webhooks");
    assert!(!verifies(&hook.last().1.unwrap(), &hook.last_raw().replace("acme", "evil")));

    // A requested scope and audience are passed on, and make a separate cache entry.
    // The hook keeps none of it: no token with an empty scope, but a malformed answer (the
    // failure policy applies), not cached.
    let res = app.token_for(&id, &secret, &[("scope", "eligibility:read")]).await;
    assert_eq!(res.status(), 503);
    let (request, _) = hook.last();
    assert_eq!(request["requested_scope"], "eligibility:read");
    let refused: Value = res.json().await.unwrap();
    assert_eq!(refused["error"], "temporarily_unavailable");
    let m = metrics(&app).await;
    assert!(m.contains("tokenmint_token_hook_calls_total{outcome=\"malformed\"} 1"), "{m}");
    hook.set(Behaviour::Answer(json!({"allow": true, "scope": "eligibility:read"})));
    let calls = hook.calls();
    let res = app.token_for(&id, &secret, &[("scope", "eligibility:read")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(hook.calls(), calls + 1, "the malformed answer was not cached");
    let narrowed: Value = res.json().await.unwrap();
    assert_eq!(narrowed["scope"], "eligibility:read");
    let m = metrics(&app).await;
    assert!(m.contains("tokenmint_token_hook_calls_total{outcome=\"allow\"}"), "{m}");
    assert!(!m.contains("url-secret"), "the hook URL's secret parts stay out of metrics");
}

#[tokio::test]
async fn a_refusal_by_the_hook_is_access_denied_to_the_client_and_audited() {
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Refuse).await;
    let (id, secret) = reader(&app).await;
    hook.set(Behaviour::Answer(
        json!({"allow": false, "reason": "the partner's contract has ended"}),
    ));
    let res = app.token_for(&id, &secret, &[("audience", "x")]).await;
    // An audience the credential lacks is refused before the hook is asked.
    assert_eq!(res.status(), 400);
    let res = app.token_for(&id, &secret, &[("scope", "billing:read")]).await;
    assert_eq!(res.status(), 403);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "access_denied");
    assert_eq!(body["error_description"], "the partner's contract has ended");

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = app
            .admin(Method::GET, &format!("/audit?client_id={id}&kind=token.refused"), None)
            .await;
        let page: Value = res.json().await.unwrap();
        let items = page["items"].as_array().cloned().unwrap_or_default();
        if let Some(record) = items.iter().find(|e| e["reason"] == "hook_denied") {
            // The hook's own reason is kept beside the refusal's.
            assert_eq!(
                record["details"]["provider_reason"], "the partner's contract has ended",
                "{record}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no audit record of the refusal: {page}");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let m = metrics(&app).await;
    assert!(m.contains("tokenmint_token_requests_refused_total{reason=\"hook_denied\"} 1"), "{m}");
}

/// An answer that says `"allow": false` refuses however the rest of it is written (a reason of
/// another type, a member given twice, a number no reader holds), also under
/// `--token-hook-on-failure issue`: a malformed refusal never becomes a token. An `allow` given
/// both ways is no refusal but a malformed answer, which that policy issues without claims.
#[tokio::test]
async fn an_answer_that_refuses_refuses_however_the_rest_of_it_is_written() {
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Issue).await;
    let (id, secret) = reader(&app).await;
    // One scope per answer: a refusal is cached per requested scope.
    let scopes = ["eligibility:read", "billing:read", "eligibility:read billing:read"];
    let refusals = [
        r#"{"allow": false, "reason": 42}"#,
        r#"{"reason": ["suspended"], "allow": false}"#,
        r#"{"allow": false, "reason": "a", "reason": "b", "debug": {"t": 1e400}}"#,
    ];
    for (scope, answer) in scopes.iter().zip(refusals) {
        hook.set(Behaviour::Raw(answer));
        let res = app.token_for(&id, &secret, &[("scope", scope)]).await;
        assert_eq!(res.status(), 403, "{answer}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "access_denied", "{answer}");
    }
    let m = metrics(&app).await;
    assert!(m.contains("tokenmint_token_hook_calls_total{outcome=\"deny\"} 3"), "{m}");
    // Both ways at once is no refusal: under `issue`, a token without the hook's claims.
    hook.set(Behaviour::Raw(r#"{"allow": false, "allow": true, "claims": {"plan": "x"}}"#));
    let res = app.token_for(&id, &secret, &[]).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert!(claims(body["access_token"].as_str().unwrap()).get("plan").is_none());
}

#[tokio::test]
async fn the_answer_is_cached_n_tokens_one_call_until_the_ttl_passes_or_the_credential_changes() {
    let (app, hook) = app_with_hook(
        Behaviour::Answer(json!({"allow": true, "claims": {"plan": "gold"}})),
        OnFailure::Refuse,
    )
    .await;
    let (id, secret) = reader(&app).await;
    let before = hook.calls();
    for _ in 0..25 {
        let token = app.token(&id, &secret).await;
        assert_eq!(claims(token["access_token"].as_str().unwrap())["plan"], "gold");
    }
    assert_eq!(hook.calls(), before + 1, "25 token requests, 1 hook call");

    // Still fresh one second before the TTL; asked again once it has passed.
    app.clock.advance(59);
    app.token(&id, &secret).await;
    assert_eq!(hook.calls(), before + 1);
    app.clock.advance(1);
    app.token(&id, &secret).await;
    assert_eq!(hook.calls(), before + 2);

    // A change of the credential asks again at once, with what it has become.
    let res = app
        .admin(Method::PATCH, &format!("/credentials/{id}"), Some(json!({"claims": {"seats": 5}})))
        .await;
    assert_eq!(res.status(), 200);
    let calls = hook.calls();
    app.token(&id, &secret).await;
    assert_eq!(hook.calls(), calls + 1);
    assert_eq!(hook.last().0["claims"], json!({"seats": 5, "tenant_id": "t-1"}));
    let m = metrics(&app).await;
    assert!(m.contains("tokenmint_token_hook_cache_total{result=\"hit\"}"), "{m}");
}

#[tokio::test]
async fn a_hook_that_times_out_or_fails_refuses_or_issues_without_its_claims_as_configured() {
    for policy in [OnFailure::Refuse, OnFailure::Issue] {
        let (app, hook) = app_with_hook(
            Behaviour::Answer(json!({"allow": true, "claims": {"plan": "gold"}})),
            policy,
        )
        .await;
        let (id, secret) = reader(&app).await;
        for failure in [Behaviour::Hang, Behaviour::Fail] {
            hook.set(failure);
            let res = app.token_for(&id, &secret, &[]).await;
            match policy {
                OnFailure::Refuse => {
                    assert_eq!(res.status(), 503);
                    assert!(res.headers().contains_key("retry-after"));
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"], "temporarily_unavailable");
                }
                OnFailure::Issue => {
                    assert_eq!(res.status(), 200);
                    let body: Value = res.json().await.unwrap();
                    let c = claims(body["access_token"].as_str().unwrap());
                    assert_eq!(c["tenant_id"], "t-1", "the static claims stay");
                    assert!(c.get("plan").is_none(), "without the hook's claims");
                }
            }
        }
        // A failure is not cached: once the hook answers again, its claims are back.
        hook.set(Behaviour::Answer(json!({"allow": true, "claims": {"plan": "gold"}})));
        let token = app.token(&id, &secret).await;
        assert_eq!(claims(token["access_token"].as_str().unwrap())["plan"], "gold");
        let m = metrics(&app).await;
        assert!(m.contains("tokenmint_token_hook_calls_total{outcome=\"timeout\"} 1"), "{m}");
        assert!(m.contains("tokenmint_token_hook_calls_total{outcome=\"error\"} 1"), "{m}");
        let outcome = if policy == OnFailure::Refuse { "refused" } else { "issued" };
        assert!(
            m.contains(&format!("tokenmint_token_hook_failures_total{{outcome=\"{outcome}\"}} 2")),
            "{m}"
        );
    }
}

#[tokio::test]
async fn a_hook_at_a_private_address_is_refused_at_start_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    for target in ["http://127.0.0.1:9/hook", "http://169.254.169.254/latest", "http://10.1.2.3/"] {
        let mut config =
            tokenmint_server::Config::new(url.clone(), tokenmint_core::MasterKey::generate());
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut hook = hook_config(target, OnFailure::Refuse);
        hook.allow_private = false;
        config.token_hook = Some(hook);
        let store = tokenmint_store::SqlStore::connect(&url, true).await.unwrap();
        let err = tokenmint_server::Application::build(config, Arc::new(store)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("--token-hook-allow-private"), "{target}: {text}");
    }
}

/// Platform credentials (any `tokenmint:*` permission) never ask the hook: a hook that refuses
/// everything, or is down under the refuse policy, does not lock operators out of the admin API
/// nor gateways out of the revocation feed.
#[tokio::test]
async fn platform_credentials_never_ask_the_hook_so_it_cannot_lock_out_operators() {
    let (app, hook) = app_with_hook(
        Behaviour::Answer(json!({"allow": false, "reason": "no"})),
        OnFailure::Refuse,
    )
    .await;
    let (feed, feed_secret) = app
        .create_credential(json!({
            "name": "gateway feed", "org": "acme", "environment": "production",
            "permissions": ["tokenmint:revocations"],
        }))
        .await;
    let refusing = Behaviour::Answer(json!({"allow": false, "reason": "no"}));
    for (behaviour, partner_status) in [(refusing, 403), (Behaviour::Fail, 503)] {
        hook.set(behaviour);
        // A partner credential of its own each round: the hook's answers are cached.
        let (partner, partner_secret) = reader(&app).await;
        let before = hook.calls();
        // The partner's token goes through the hook, and is refused.
        let status = app.token_for(&partner, &partner_secret, &[]).await.status();
        assert_eq!(status, partner_status);
        assert_eq!(hook.calls(), before + 1);
        // The platform's are not asked about.
        for (id, secret) in [(&app.admin_id, &app.admin_secret), (&feed, &feed_secret)] {
            let res = app.token_for(id, secret, &[]).await;
            assert_eq!(res.status(), 200, "{id}");
            let body: Value = res.json().await.unwrap();
            assert!(body["access_token"].as_str().is_some());
        }
        assert_eq!(hook.calls(), before + 1, "no hook call for a platform credential");
        // A credential that holds a tokenmint:* scope and a business one asks the hook for a
        // token with the business scope: the exemption follows what the token is for.
        let (mixed, mixed_secret) = app
            .create_credential(json!({
                "name": "mixed", "org": "acme", "environment": "production",
                "permissions": ["tokenmint:introspect", "billing:read"],
            }))
            .await;
        let res = app.token_for(&mixed, &mixed_secret, &[("scope", "billing:read")]).await;
        assert_eq!(res.status(), partner_status);
        assert_eq!(hook.calls(), before + 2, "the business token asked the hook");
        let res = app.token_for(&mixed, &mixed_secret, &[("scope", "tokenmint:introspect")]).await;
        assert_eq!(res.status(), 200);
        assert_eq!(hook.calls(), before + 2);
        assert_eq!(app.admin(Method::GET, "/credentials", None).await.status(), 200);
    }
}

/// One of each class of control character: C0 (NUL, tab, LF, CR, ESC, U+0001), DEL and C1.
const CONTROLS: [char; 9] =
    ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'];

/// Claims holding `c` at every place a string can be in a claim's value.
fn with_control(c: char) -> Vec<Value> {
    let s = format!("a{c}b");
    vec![
        json!({"note": s}),
        json!({"note": ["ok", s]}),
        json!({"note": {"k": s}}),
        json!({"note": {s.clone(): 1}}),
        json!({"plan": "gold", "note": {"k": [{"l": s}]}}),
    ]
}

/// A hook answering claims with a control character anywhere, or a number no JSON reader
/// carries exactly, gives a malformed answer: under `refuse`, the request is refused; under
/// `issue`, the token is issued without the hook's claims; the failure is counted and logged as
/// malformed (not as a hook that did not answer) and never cached.
#[tokio::test]
async fn claims_with_control_characters_or_inexact_numbers_are_a_malformed_answer() {
    let logs = LogCapture::install();
    let mut answers: Vec<Behaviour> = CONTROLS
        .iter()
        .flat_map(|c| with_control(*c))
        .map(|claims| Behaviour::Answer(json!({"allow": true, "claims": claims})))
        .collect();
    for raw in [
        r#"{"allow": true, "claims": {"account": 9007199254740993}}"#,
        r#"{"allow": true, "claims": {"account": -18446744073709551615}}"#,
        r#"{"allow": true, "claims": {"account": 123456789012345678901234567890}}"#,
        r#"{"allow": true, "claims": {"ids": [1, 2, 36028797018963968]}}"#,
    ] {
        answers.push(Behaviour::Raw(raw));
    }
    for policy in [OnFailure::Refuse, OnFailure::Issue] {
        let (app, hook) = app_with_hook(Behaviour::Answer(json!({"allow": true})), policy).await;
        let (id, secret) = reader(&app).await;
        for answer in &answers {
            hook.set(answer.clone());
            let calls = hook.calls();
            let res = app.token_for(&id, &secret, &[]).await;
            assert_eq!(hook.calls(), calls + 1, "asked again: no failure is cached");
            match policy {
                OnFailure::Refuse => {
                    assert_eq!(res.status(), 503);
                    let body: Value = res.json().await.unwrap();
                    assert_eq!(body["error"], "temporarily_unavailable");
                }
                OnFailure::Issue => {
                    assert_eq!(res.status(), 200);
                    let body: Value = res.json().await.unwrap();
                    let c = claims(body["access_token"].as_str().unwrap());
                    assert_eq!(c["tenant_id"], "t-1", "the static claims stay");
                    for hook_claim in ["note", "plan", "account", "ids"] {
                        assert!(c.get(hook_claim).is_none(), "{c}");
                    }
                }
            }
        }
        let m = metrics(&app).await;
        let n = answers.len();
        assert!(
            m.contains(&format!("tokenmint_token_hook_calls_total{{outcome=\"malformed\"}} {n}")),
            "{m}"
        );
        assert!(!m.contains("outcome=\"error\""), "{m}");
        assert!(!m.contains("outcome=\"timeout\""), "{m}");
        // Once the hook answers well again, its claims are back.
        hook.set(Behaviour::Answer(json!({"allow": true, "claims": {"plan": "Zürich gold"}})));
        let token = app.token(&id, &secret).await;
        assert_eq!(claims(token["access_token"].as_str().unwrap())["plan"], "Zürich gold");
    }
    // A claim name from outside reaches the log escaped (a line separator, a bidi control),
    // and the refusal is audited as a malformed answer, not as an unreachable hook.
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Refuse).await;
    let (id, secret) = reader(&app).await;
    hook.set(Behaviour::Answer(json!({"allow": true, "claims": {"x\u{2028}forged\u{202e}": 1}})));
    let res = app.token_for(&id, &secret, &[]).await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["error_description"],
        "the provider's token hook gave no usable answer; try again later"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page: Value = app
            .admin(Method::GET, &format!("/audit?client_id={id}&kind=token.refused"), None)
            .await
            .json()
            .await
            .unwrap();
        if page["items"].as_array().unwrap().iter().any(|e| e["reason"] == "hook_malformed") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no hook_malformed audit record: {page}");
        tokio::task::yield_now().await;
    }
    let text = logs.text();
    assert!(!text.contains('\u{2028}') && !text.contains('\u{202e}'), "raw in the log");
    assert!(text.contains("\\u{2028}"), "escaped in the log");
    assert!(text.contains("the token hook's answer is not understood"), "reported as malformed");
    assert!(text.contains("control character U+000D (CR)"), "names the character");
    assert!(text.contains("2^53"), "says why a number is refused");
    // Each refusal is logged once, where it was decided, as a warning: the 503 it gives is not
    // also an ERROR line of the request's trace.
    assert!(
        !text.lines().any(|l| l.contains("ERROR") && l.contains("Service Unavailable")),
        "no ERROR line for a hook outage"
    );
    assert!(text.contains("answered 503 Service Unavailable"), "the trace keeps it at debug");

    // A JSON reader's message quotes the answer escaped once, not twice, and says what a hook
    // should send rather than naming a type of tokenmint's code.
    hook.set(Behaviour::Raw(r#"{"allow": "yes\n"}"#));
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 503);
    hook.set(Behaviour::Raw(r#""ok""#));
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 503);
    // A refusal by the hook is logged with its reason (and audited, see above): a value of the
    // text format, quoted and escaped once, that no `key=value` in it can add a field to; a
    // plain JSON string in the JSON format.
    let said = "contract \"ended\"\u{7} policy=issued\\";
    hook.set(Behaviour::Answer(json!({"allow": false, "reason": said})));
    assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 403);
    let text = logs.text();
    // The failure's message quotes the answer as serde does; the text format quotes the
    // whole, and neither escapes what the other did.
    assert!(text.contains(r#"error="the token hook's answer is not understood"#), "{text}");
    assert!(text.contains(r#"string \"yes\n\""#), "escaped once: {text}");
    assert!(!text.contains(r#"yes\\n"#), "not escaped twice");
    assert!(text.contains(r#"expected an object such as {\"allow\": true}"#), "{text}");
    assert!(!text.contains("struct Answer"), "no type of tokenmint's code");
    // (Other tests of this binary log too: this one's client is the one to look for.)
    let refusal = text
        .lines()
        .find(|l| {
            l.contains("the token hook refused the token") && l.contains(&format!("client_id={id}"))
        })
        .unwrap_or_else(|| panic!("the refusal is logged with its client: {text}"));
    assert!(
        refusal.ends_with(r#"reason="contract \"ended\"\u{7} policy=issued\u{5c}""#),
        "quoted and escaped once: {refusal}"
    );
    let json = logs.json();
    let lines: Vec<Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let refusal = lines
        .iter()
        .find(|v| {
            v["message"] == "the token hook refused the token" && v["client_id"] == id.as_str()
        })
        .unwrap_or_else(|| panic!("the refusal is logged as JSON: {json}"));
    assert_eq!(refusal["reason"], "contract \"ended\"\\u{7} policy=issued\\u{5c}", "{refusal}");
    let failure = lines
        .iter()
        .find_map(|v| v["error"].as_str().filter(|e| e.contains("yes")))
        .unwrap_or_else(|| panic!("the malformed answer is logged as JSON: {json}"));
    assert!(failure.contains(r#"string "yes\n""#), "a plain JSON string: {failure:?}");
    assert!(
        lines.iter().any(|v| v["error"]
            .as_str()
            .is_some_and(|e| e.contains(r#"expected an object such as {"allow": true}"#))),
        "{json}"
    );
}

/// The hook's reason for a refusal is audited exactly as the hook gave it (quotes, backslashes,
/// control characters and separators included), cut to 200 characters: the audit record is
/// JSON, which escapes what must be.
#[tokio::test]
async fn the_hooks_reason_is_audited_exactly_as_it_was_given() {
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Refuse).await;
    let long = format!("{}tail", "é".repeat(200));
    let cut = format!("{}…", "é".repeat(199));
    for (reason, audited) in [
        ("no \"x\"\u{7} C:\\dir\u{2028}next\u{202e}", "no \"x\"\u{7} C:\\dir\u{2028}next\u{202e}"),
        (long.as_str(), cut.as_str()),
    ] {
        let (id, secret) = reader(&app).await;
        hook.set(Behaviour::Answer(json!({"allow": false, "reason": reason})));
        assert_eq!(app.token_for(&id, &secret, &[]).await.status(), 403);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let res = app
                .admin(Method::GET, &format!("/audit?client_id={id}&kind=token.refused"), None)
                .await;
            let page: Value = res.json().await.unwrap();
            let items = page["items"].as_array().cloned().unwrap_or_default();
            if let Some(record) = items.iter().find(|e| e["reason"] == "hook_denied") {
                assert_eq!(record["details"]["provider_reason"], audited, "{record}");
                break;
            }
            assert!(std::time::Instant::now() < deadline, "no audit record: {page}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A refusal's reason with characters RFC 6749 §5.2 does not allow in `error_description`
/// reaches the client within them.
#[tokio::test]
async fn a_refusals_reason_reaches_the_client_as_a_valid_error_description() {
    let (app, hook) =
        app_with_hook(Behaviour::Answer(json!({"allow": true})), OnFailure::Refuse).await;
    let (id, secret) = reader(&app).await;
    let allowed = |s: &str| s.bytes().all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E));
    for (i, (reason, described)) in [
        ("contract \"ended\"\r\nX-Injected: 1", "contract 'ended' X-Injected: 1"),
        ("Vertrag für Zürich beendet", "Vertrag f?r Z?rich beendet"),
        ("C:\\contracts\\ended\u{0}\u{7f}\u{85}", "C:/contracts/ended"),
        ("\u{1b}[31m\t", "[31m"),
        ("\r\n", "the provider refused to issue this token"),
    ]
    .into_iter()
    .enumerate()
    {
        hook.set(Behaviour::Answer(json!({"allow": false, "reason": reason})));
        // A scope of its own each time: a refusal is cached like any answer.
        let scope =
            ["eligibility:read", "billing:read", "eligibility:read billing:read"].get(i).copied();
        let res = match scope {
            Some(scope) => app.token_for(&id, &secret, &[("scope", scope)]).await,
            None => {
                let (other, other_secret) = reader(&app).await;
                app.token_for(&other, &other_secret, &[]).await
            }
        };
        assert_eq!(res.status(), 403);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"], "access_denied");
        let description = body["error_description"].as_str().unwrap();
        assert_eq!(description, described, "{reason:?}");
        assert!(allowed(description), "{description:?}");
    }
}

/// Requests that waited for another's hook call, by the metrics.
async fn shared(app: &TestApp) -> usize {
    let m = metrics(app).await;
    m.lines()
        .find_map(|l| l.strip_prefix("tokenmint_token_hook_cache_total{result=\"shared\"} "))
        .map_or(0, |n| n.parse::<usize>().unwrap())
}

/// N token requests for the same key on a cold cache make one hook call: the hook holds its
/// answer until every request has missed the cache and waits, so the N are truly concurrent.
/// A failure is shared by those who waited, and not cached.
#[tokio::test]
async fn concurrent_requests_on_a_cold_cache_share_one_hook_call_and_its_failure() {
    const N: usize = 8;
    let (app, hook) = app_with(Behaviour::Answer(json!({"allow": true})), |url| {
        let mut c = hook_config(url, OnFailure::Refuse);
        // Long enough for the N requests to arrive while the call is held.
        c.timeout = Duration::from_secs(20);
        c
    })
    .await;
    let app = Arc::new(app);
    let (id, secret) = reader(&app).await;

    for (round, (then, status)) in [
        (Behaviour::Answer(json!({"allow": true, "claims": {"plan": "gold"}})), 200),
        (Behaviour::Fail, 503),
    ]
    .into_iter()
    .enumerate()
    {
        // Each round asks for a scope of its own: a cold cache entry.
        let scope = ["eligibility:read", "billing:read"][round];
        hook.set(Behaviour::Held(Box::new(then)));
        let calls = hook.calls();
        let waiting_before = shared(&app).await;
        let requests: Vec<_> = (0..N)
            .map(|_| {
                let (app, id, secret) = (app.clone(), id.clone(), secret.clone());
                tokio::spawn(async move {
                    let res = app.token_for(&id, &secret, &[("scope", scope)]).await;
                    let status = res.status().as_u16();
                    (status, res.json::<Value>().await.unwrap())
                })
            })
            .collect();
        // Every request but the one calling waits for that call (or, were calls not shared,
        // each would be at the hook): released once all N are there.
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        while shared(&app).await < waiting_before + N - 1 && std::time::Instant::now() < deadline {
            tokio::task::yield_now().await;
        }
        hook.release(N);
        for request in requests {
            let (got, body) = request.await.unwrap();
            assert_eq!(got, status, "{body}");
            if status == 200 {
                assert_eq!(claims(body["access_token"].as_str().unwrap())["plan"], "gold");
            } else {
                assert_eq!(body["error"], "temporarily_unavailable");
            }
        }
        assert_eq!(hook.calls(), calls + 1, "round {round}: {N} requests, 1 hook call");
        while let Ok(permit) = hook.released.try_acquire() {
            permit.forget();
        }
        assert_eq!(shared(&app).await, waiting_before + N - 1);
    }
    // The shared failure was not cached: the next request asks again.
    hook.set(Behaviour::Answer(json!({"allow": true, "claims": {"plan": "silver"}})));
    let calls = hook.calls();
    let res = app.token_for(&id, &secret, &[("scope", "billing:read")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(hook.calls(), calls + 1);
    let body: Value = res.json().await.unwrap();
    assert_eq!(claims(body["access_token"].as_str().unwrap())["plan"], "silver");
}

/// A hook without a signing secret is refused at start unless unsigned calls are chosen; a
/// hook with both is refused too; an unsigned hook's calls carry no signature.
#[tokio::test]
async fn a_hook_without_a_secret_needs_unsigned_chosen_and_then_its_calls_are_unsigned() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    for (secret, unsigned, says) in [
        (None, false, "--token-hook-unsigned"),
        (Some(WebhookSecret(SECRET.to_owned())), true, "give one of them"),
    ] {
        let mut config =
            tokenmint_server::Config::new(url.clone(), tokenmint_core::MasterKey::generate());
        config.listen = "127.0.0.1:0".parse().unwrap();
        let mut hook = hook_config("http://127.0.0.1:9/hook", OnFailure::Refuse);
        hook.secret = secret;
        hook.unsigned = unsigned;
        config.token_hook = Some(hook);
        let store = tokenmint_store::SqlStore::connect(&url, true).await.unwrap();
        let err = tokenmint_server::Application::build(config, Arc::new(store)).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(says), "{text}");
        assert!(text.contains("--token-hook-secret-file") || unsigned, "{text}");
    }
    let (app, hook) = app_with(Behaviour::Answer(json!({"allow": true})), |url| {
        let mut c = hook_config(url, OnFailure::Refuse);
        c.secret = None;
        c.unsigned = true;
        c
    })
    .await;
    let (id, secret) = reader(&app).await;
    app.token(&id, &secret).await;
    assert_eq!(hook.last().1, None, "no signature header");
}
