//! Three instances over one PostgreSQL database and one Redis behind a real HAProxy that balances
//! round robin with health checks on `/readyz` (see [`Bed`]), and two gateways sharing their
//! limits through the same Redis: nothing a request needs from an earlier one is kept in one
//! instance, an attacker gains nothing from the number of instances, and an instance killed with
//! SIGKILL in the middle of a stream of token requests costs no token request.
//!
//! Every instance is a process of its own (this test binary run again, see
//! [`instances::process_main`]). Skipped with a message when PostgreSQL, Redis or haproxy is
//! missing, unless `TOKENMINT_REQUIRE_SERVICES=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::browser::Browser;
use common::instances::{self, Bed, BedOptions, served_by, token_request};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Not a test by itself: the entry point of the bed's server processes.
#[test]
#[ignore = "run by the load-balanced test bed as one of its server processes"]
fn server_process() {
    instances::process_main();
}

const PASSWORD: &str = "correct horse battery staple";

/// An HTTP client whose connections come from `source`, a loopback address.
fn client_from(source: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(source.parse::<IpAddr>().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An organization `acme` with a portal admin, made through the balancer.
async fn acme_admin(bed: &Bed) {
    let res = bed.admin(Method::POST, "/organizations", Some(json!({"slug": "acme"}))).await;
    assert_eq!(res.status(), 201);
    let user = json!({"org": "acme", "email": "admin@acme.test", "role": "admin",
        "password": PASSWORD});
    assert_eq!(bed.admin(Method::POST, "/users", Some(user)).await.status(), 201);
}

#[tokio::test]
async fn the_portal_flow_through_the_balancer_needs_no_stickiness() {
    let Some(bed) = Bed::start(BedOptions::default()).await else { return };
    acme_admin(&bed).await;
    let mut browser =
        Browser { http: bed.http.clone(), base: bed.balancer.clone(), cookies: vec![] };
    let mut served = BTreeSet::new();

    let page = browser.get("/portal/sign-in").await;
    served.insert(page.headers[instances::SERVED_BY].to_str().unwrap().to_owned());
    let signed_in = browser
        .post(
            "/portal/sign-in",
            &[("csrf", &page.csrf()), ("email", "admin@acme.test"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER, "{}", signed_in.body);
    served.insert(signed_in.headers[instances::SERVED_BY].to_str().unwrap().to_owned());
    let list = browser.get("/portal/credentials").await;
    assert_eq!(list.status, 200);
    served.insert(list.headers[instances::SERVED_BY].to_str().unwrap().to_owned());

    let form = [
        ("csrf", list.csrf()),
        ("name", "Payroll".to_owned()),
        ("environment", "production".to_owned()),
        ("expiration", "90d".to_owned()),
        ("perm.eligibility", "read".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = browser.post("/portal/credentials", &form).await;
    assert_eq!(created.status, StatusCode::SEE_OTHER, "{}", created.body);
    let created_by = created.headers[instances::SERVED_BY].to_str().unwrap().to_owned();
    let page = created.location().to_owned();
    let client_id =
        page.trim_start_matches("/portal/credentials/").split('?').next().unwrap().to_owned();

    // Shown once, by the next instance in the round; never again, by any of them.
    let shown = browser.get(&page).await;
    let shown_by = shown.headers[instances::SERVED_BY].to_str().unwrap().to_owned();
    assert_ne!(shown_by, created_by, "round robin sent the next request elsewhere");
    let secret = shown.shown_secret().expect("the secret is shown by another instance");
    let mut again_by = BTreeSet::new();
    for _ in 0..3 {
        let again = browser.get(&page).await;
        assert_eq!(again.status, 200);
        assert!(again.shown_secret().is_none() && !again.body.contains(&secret));
        again_by.insert(again.headers[instances::SERVED_BY].to_str().unwrap().to_owned());
    }
    assert_eq!(again_by.len(), 3, "every instance was asked again: {again_by:?}");
    let works = bed.token_with(&bed.http, &client_id, &secret).await;
    assert_eq!(works.status(), 200, "the secret shown is the credential's");

    // Rotated through one instance, the new secret shown by another, once.
    let rotated = browser.rotate(&client_id).await;
    assert_eq!(rotated.status, StatusCode::SEE_OTHER, "{}", rotated.body);
    let rotated_by = rotated.headers[instances::SERVED_BY].to_str().unwrap().to_owned();
    let shown = browser.get(rotated.location()).await;
    assert_ne!(shown.headers[instances::SERVED_BY].to_str().unwrap(), rotated_by);
    let new_secret = shown.shown_secret().expect("the rotated secret is shown");
    assert_ne!(new_secret, secret);
    let again = browser.get(rotated.location()).await;
    assert!(again.shown_secret().is_none());
    for s in [&secret, &new_secret] {
        assert_eq!(bed.token_with(&bed.http, &client_id, s).await.status(), 200);
    }
    served.extend([created_by, shown_by, rotated_by]);
    assert_eq!(served.len(), 3, "the flow went through every instance: {served:?}");
    bed.shutdown().await;
}

#[tokio::test]
async fn failures_spread_over_the_instances_block_at_exactly_the_configured_count() {
    const PER_IP: u32 = 4;
    let options = BedOptions { failures_per_ip: PER_IP, ..BedOptions::default() };
    let Some(bed) = Bed::start(options).await else { return };
    acme_admin(&bed).await;
    let (id, secret, _) =
        bed.credential(json!({"name": "x", "org": "acme", "environment": "sandbox"})).await;

    // Client authentication: PER_IP failures are allowed wherever they land; the next one is
    // still answered (it is the failure that sets the block); from then on every instance
    // refuses the source, even with the right secret.
    let attacker = client_from("127.0.0.2");
    let mut failed_on = BTreeSet::new();
    for i in 0..=PER_IP {
        let res = bed.token_with(&attacker, &id, "tms_wrong").await;
        failed_on.insert(served_by(&res));
        assert_eq!(res.status(), 401, "failure {}", i + 1);
    }
    assert_eq!(failed_on.len(), 3, "the failures were spread: {failed_on:?}");
    let mut blocked_on = BTreeSet::new();
    for _ in 0..3 {
        let res = bed.token_with(&attacker, &id, &secret).await;
        blocked_on.insert(served_by(&res));
        assert_eq!(res.status(), 429);
    }
    assert_eq!(blocked_on.len(), 3, "every instance refuses: {blocked_on:?}");
    // Another source is not blocked.
    assert_eq!(bed.token_with(&client_from("127.0.0.3"), &id, &secret).await.status(), 200);

    // Portal sign-ins: the account's throttle, counted over all instances.
    let allowed = tokenmint_server::portal::auth::FAILURES_PER_ACCOUNT;
    let mut browser =
        Browser { http: client_from("127.0.0.4"), base: bed.balancer.clone(), cookies: vec![] };
    let mut failed_on = BTreeSet::new();
    for i in 0..=allowed {
        let res = browser.try_sign_in("admin@acme.test", "not the password").await;
        // The failure over the limit is told at once that signing in is paused.
        let expected = if i < allowed { 401 } else { 429 };
        assert_eq!(res.status, expected, "failure {}", i + 1);
        failed_on.insert(res.headers[instances::SERVED_BY].to_str().unwrap().to_owned());
    }
    assert_eq!(failed_on.len(), 3, "the failures were spread: {failed_on:?}");
    let mut blocked_on = BTreeSet::new();
    for _ in 0..3 {
        let res = browser.try_sign_in("admin@acme.test", PASSWORD).await;
        assert_eq!(res.status, 429, "blocked, whatever the password");
        blocked_on.insert(res.headers[instances::SERVED_BY].to_str().unwrap().to_owned());
    }
    assert_eq!(blocked_on.len(), 3, "every instance refuses: {blocked_on:?}");
    bed.shutdown().await;
}

#[tokio::test]
async fn a_credential_created_through_one_instance_works_at_once_through_all() {
    let Some(bed) = Bed::start(BedOptions::default()).await else { return };
    let mut created_on = BTreeSet::new();
    for i in 0..3 {
        let (id, secret, by) = bed
            .credential(json!({"name": format!("c{i}"), "org": "platform",
                "environment": "sandbox"}))
            .await;
        created_on.insert(by.clone());
        // At once: the first request each instance gets for it succeeds, no waiting.
        for server in &bed.servers {
            let res = token_request(&bed.http, &server.base, &id, &secret).send().await.unwrap();
            assert_eq!(res.status(), 200, "created on {by}, asked {}", server.name);
        }
        for _ in 0..3 {
            assert_eq!(bed.token_with(&bed.http, &id, &secret).await.status(), 200);
        }
    }
    assert!(created_on.len() >= 2, "created on several instances: {created_on:?}");
    bed.shutdown().await;
}

/// One token request of the stream: the phase it was sent in (one of the constants below), its status (0: the balancer could
/// not be reached) and the instance that answered.
type Sent = (u8, u16, String);

const BEFORE_KILL: u8 = 0;
const KILLED: u8 = 1;
const DROPPED: u8 = 2;
const RESTARTING: u8 = 3;
const REJOINED: u8 = 4;

/// Waits until `enough` holds of what was sent so far.
async fn until_sent(sent: &Mutex<Vec<Sent>>, what: &str, enough: impl Fn(&[Sent]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !enough(&sent.lock().unwrap()) {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_instance_killed_in_a_stream_of_token_requests_fails_none_and_rejoins_when_restarted() {
    let options = BedOptions { token_rate_limit: 0, ..BedOptions::default() };
    let Some(mut bed) = Bed::start(options).await else { return };
    let (id, secret, _) = bed
        .credential(json!({"name": "stream", "org": "platform", "environment": "sandbox"}))
        .await;
    let admin_token = bed.admin_token().await;
    let phase = Arc::new(std::sync::atomic::AtomicU8::new(BEFORE_KILL));
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(Mutex::new(Vec::<Sent>::new()));
    let mut streams = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (balancer, http) = (bed.balancer.clone(), reqwest::Client::new());
        let (id, secret) = (id.clone(), secret.clone());
        let (phase, stop, sent) = (phase.clone(), stop.clone(), sent.clone());
        streams.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let p = phase.load(Ordering::SeqCst);
                let res = token_request(&http, &balancer, &id, &secret).send().await;
                let outcome = match res {
                    Ok(r) => (p, r.status().as_u16(), served_by(&r)),
                    Err(_) => (p, 0, String::new()),
                };
                sent.lock().unwrap().push(outcome);
            }
        });
    }
    // Admin writes beside the stream: each one acknowledged must be there afterwards. One that
    // reached the killed instance may fail (HAProxy does not send it again: it might have been
    // done).
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let unacknowledged = Arc::new(std::sync::atomic::AtomicU64::new(0));
    {
        let (url, http, stop) = (bed.url("/admin/v1/credentials"), bed.http.clone(), stop.clone());
        let (acknowledged, token) = (acknowledged.clone(), admin_token.clone());
        let unacknowledged = unacknowledged.clone();
        streams.spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let body = json!({"name": format!("w{i}"), "org": "platform",
                    "environment": "sandbox"});
                let res = http.post(&url).bearer_auth(&token).json(&body).send().await;
                if let Ok(res) = res
                    && res.status() == 201
                {
                    let v: Value = res.json().await.unwrap();
                    acknowledged.lock().unwrap().push(v["client_id"].as_str().unwrap().to_owned());
                } else {
                    unacknowledged.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }

    until_sent(&sent, "every instance serving the stream", |s| {
        s.len() >= 60 && ["s0", "s1", "s2"].iter().all(|n| s.iter().any(|x| x.2 == *n))
    })
    .await;
    phase.store(KILLED, Ordering::SeqCst);
    bed.servers[1].kill();
    let took = bed.wait_for_state("s1", "DOWN").await;
    phase.store(DROPPED, Ordering::SeqCst);
    eprintln!("HAProxy took s1 out {took:?} after the SIGKILL");
    until_sent(&sent, "100 token requests after the drop", |s| {
        s.iter().filter(|x| x.0 == DROPPED).count() >= 100
    })
    .await;

    phase.store(RESTARTING, Ordering::SeqCst);
    let http = bed.http.clone();
    bed.servers[1].restart(&http).await;
    bed.wait_for_state("s1", "UP").await;
    phase.store(REJOINED, Ordering::SeqCst);
    until_sent(&sent, "the restarted instance serving again", |s| {
        s.iter().filter(|x| x.0 == REJOINED && x.2 == "s1").count() >= 5
    })
    .await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = streams.join_next().await {
        done.unwrap();
    }

    let sent = sent.lock().unwrap().clone();
    let stats = bed.stats().await;
    let column = |name: &str| -> u64 { stats["BACKEND"][name].parse().unwrap() };
    let failed: Vec<&Sent> = sent.iter().filter(|x| x.1 != 200).collect();
    eprintln!(
        "token requests: {} ({} between the kill and the drop, {} after the drop); retried by \
         the balancer: {}, redispatched to another instance: {}; failed: {}",
        sent.len(),
        sent.iter().filter(|x| x.0 == KILLED).count(),
        sent.iter().filter(|x| x.0 >= DROPPED).count(),
        column("wretr"),
        column("wredis"),
        failed.len()
    );
    assert!(failed.is_empty(), "failed token requests: {failed:?}");
    let misrouted = sent.iter().filter(|x| x.0 == DROPPED && x.2 == "s1").count();
    assert_eq!(misrouted, 0, "sent to the instance HAProxy had taken out");

    // No acknowledged write was lost: each credential created is there, through any instance.
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    for id in &acknowledged {
        let res = bed
            .http
            .get(bed.url(&format!("/admin/v1/credentials/{id}")))
            .bearer_auth(&admin_token)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{id}, acknowledged, is missing");
    }
    eprintln!(
        "admin writes during the run: {} acknowledged and all there, {} refused",
        acknowledged.len(),
        unacknowledged.load(Ordering::SeqCst)
    );
    bed.shutdown().await;
}

/// An API behind the gateways that answers every request.
async fn upstream() -> String {
    let app = axum::Router::new().fallback(|| async { "ok" });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

async fn access_token(bed: &Bed, name: &str) -> String {
    let (id, secret, _) = bed
        .credential(json!({"name": name, "org": "platform", "environment": "production",
            "permissions": ["eligibility:read"]}))
        .await;
    let res = bed.token_with(&bed.http, &id, &secret).await;
    assert_eq!(res.status(), 200);
    res.json::<Value>().await.unwrap()["access_token"].as_str().unwrap().to_owned()
}

async fn through(http: &reqwest::Client, gateway: &str, token: &str) -> u16 {
    let res = http.get(format!("{gateway}/eligibility/7")).bearer_auth(token).send().await.unwrap();
    let status = res.status().as_u16();
    assert!(status == 200 || status == 429, "{status}: {}", res.text().await.unwrap());
    status
}

#[tokio::test]
async fn two_gateways_hold_one_per_client_limit_between_them() {
    // The limit refills one request every 60 / LIMIT seconds: far longer than the requests take.
    const LIMIT: usize = 8;
    let Some(bed) = Bed::start(BedOptions::default()).await else { return };
    let upstream = upstream().await;
    let gateways = bed.gateways(2, &upstream, LIMIT as u32).await;
    let http = reqwest::Client::new();

    // Alternating between the gateways.
    let token = access_token(&bed, "alternating").await;
    let mut allowed = [0; 2];
    for i in 0..3 * LIMIT {
        if through(&http, &gateways[i % 2].base, &token).await == 200 {
            allowed[i % 2] += 1;
        }
    }
    assert_eq!(allowed[0] + allowed[1], LIMIT, "allowed by each gateway: {allowed:?}");
    assert!(allowed.iter().all(|n| *n > 0), "both gateways allowed some: {allowed:?}");

    // All at once, on both.
    let token = access_token(&bed, "concurrent").await;
    let requests = (0..3 * LIMIT).map(|i| through(&http, &gateways[i % 2].base, &token));
    let statuses = futures_util::future::join_all(requests).await;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(allowed, LIMIT, "{statuses:?}");

    // Another client has its own limit.
    let other = access_token(&bed, "other").await;
    assert_eq!(through(&http, &gateways[1].base, &other).await, 200);
    drop(gateways);
    bed.shutdown().await;
}

/// The networks recorded for `client_id`.
async fn networks(pool: &sqlx::PgPool, client_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT network FROM credential_networks WHERE client_id = $1")
        .bind(client_id)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn until_networks(pool: &sqlx::PgPool, client_id: &str, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while networks(pool, client_id).await.len() < n {
        assert!(Instant::now() < deadline, "{client_id} never had {n} networks recorded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_new_network_seen_by_every_instance_fires_one_alert() {
    let (hook, got) = instances::webhook_receiver().await;
    let options = BedOptions { webhook: Some(hook), ..BedOptions::default() };
    let Some(bed) = Bed::start(options).await else { return };
    let pool = sqlx::PgPool::connect(&bed.database_url).await.unwrap();
    let (id, secret, _) =
        bed.credential(json!({"name": "x", "org": "platform", "environment": "sandbox"})).await;
    // Its usual network, 127.0.0.0/24, first through one instance, then through all.
    let home = client_from("127.0.0.5");
    assert_eq!(bed.token_with(&home, &id, &secret).await.status(), 200);
    until_networks(&pool, &id, 1).await;
    for _ in 0..3 {
        assert_eq!(bed.token_with(&home, &id, &secret).await.status(), 200);
    }
    // Then 127.0.1.0/24, through every instance.
    let away = client_from("127.0.1.5");
    let mut served = BTreeSet::new();
    for _ in 0..6 {
        let res = bed.token_with(&away, &id, &secret).await;
        assert_eq!(res.status(), 200);
        served.insert(served_by(&res));
    }
    assert_eq!(served.len(), 3, "{served:?}");
    // Each instance checks networks in order, one after the other: once each has recorded the
    // network of a credential used after these requests, it has decided about them.
    for server in &bed.servers {
        let (marker, marker_secret, _) = bed
            .credential(json!({"name": "marker", "org": "platform", "environment": "sandbox"}))
            .await;
        let res = token_request(&bed.http, &server.base, &marker, &marker_secret).send();
        let res = res.await.unwrap();
        assert_eq!(res.status(), 200);
        until_networks(&pool, &marker, 1).await;
    }
    assert_eq!(networks(&pool, &id).await.len(), 2);
    pool.close().await;
    instances::until_delivered(&got).await;
    // Stopped, the instances have written their audit trails and finished their deliveries.
    instances::assert_one_alert(bed.stop().await, &got, "new_network").await;
}

#[tokio::test]
async fn a_credential_hitting_its_limit_on_every_instance_fires_one_alert() {
    let (hook, got) = instances::webhook_receiver().await;
    let options = BedOptions { webhook: Some(hook), ..BedOptions::default() };
    let Some(bed) = Bed::start(options).await else { return };
    let (id, secret, _) = bed
        .credential(json!({"name": "eager", "org": "platform", "environment": "sandbox",
            "rate_limit_per_minute": 2}))
        .await;
    // Two tokens, then refusals spread over the instances: more than the five hits within ten
    // minutes that make the alert, on each instance. An instance decides about the alert
    // before it answers the refusal.
    let mut limited_on = BTreeSet::new();
    for i in 0..14 {
        let res = bed.token_with(&bed.http, &id, &secret).await;
        let expected = if i < 2 { 200 } else { 429 };
        assert_eq!(res.status(), expected, "request {}", i + 1);
        if i >= 2 {
            limited_on.insert(served_by(&res));
        }
    }
    assert_eq!(limited_on.len(), 3, "{limited_on:?}");
    instances::until_delivered(&got).await;
    instances::assert_one_alert(bed.stop().await, &got, "rate_limited_repeatedly").await;
}
