//! Nothing an attacker can multiply by the number of instances: two instances over one
//! PostgreSQL database (and one Redis, when given) count failed client authentications and
//! portal sign-ins together, block at exactly the configured count whichever instance the
//! attempts reach, and fire an alert that both see once. Without a reachable Redis, each
//! instance still counts and blocks on its own.
//!
//! Requests alternate between the instances, as a round-robin balancer would send them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::instances::{self, Instance};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::MasterKey;
use tokenmint_server::ManualClock;
use tokenmint_server::alerts::{WebhookSecret, WebhookTarget};
use tokenmint_server::app::FirstStart;
use tokenmint_store::testing::TestDatabase;

/// Failed authentications one source may have before it is blocked, in these tests.
const PER_IP: u32 = 4;

/// Where the instances keep what they share besides the database.
#[derive(Clone, Copy)]
enum Shared<'a> {
    /// This Redis.
    Redis(&'a str),
    /// `--redis` given, but nothing listens there.
    DeadRedis(&'a str),
    /// No `--redis`: alerts are claimed in the database.
    DatabaseOnly,
}

/// An address nothing listens on.
async fn closed_port() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr.to_string()
}

struct Setup<'a> {
    db_url: &'a str,
    key: &'a MasterKey,
    shared: Shared<'a>,
    prefix: &'a str,
    clock: Arc<ManualClock>,
    per_ip: u32,
    per_client: u32,
    hook: Option<&'a str>,
}

async fn instance(s: &Setup<'_>) -> (Instance, Option<FirstStart>) {
    instances::start(s.db_url, s.key, s.clock.clone(), |config| {
        config.redis_url = match s.shared {
            Shared::Redis(addr) | Shared::DeadRedis(addr) => Some(format!("redis://{addr}/0")),
            Shared::DatabaseOnly => None,
        };
        config.redis_prefix = s.prefix.to_owned();
        config.brute_force.failures_per_ip = s.per_ip;
        config.brute_force.failures_per_client = s.per_client;
        if let Some(hook) = s.hook {
            config.alerts.webhooks = vec![WebhookTarget::parse(hook).unwrap()];
            config.alerts.allow_private_targets = true;
            config.alerts.secret = Some(WebhookSecret("whsec_test".to_owned()));
            config.alerts.retry_base = Duration::from_millis(20);
        }
    })
    .await
}

struct Pair {
    instances: [Instance; 2],
    admin: (String, String),
    db: Option<TestDatabase>,
    http: reqwest::Client,
}

async fn pair(
    shared: Shared<'_>,
    (per_ip, per_client): (u32, u32),
    hook: Option<&str>,
) -> Option<Pair> {
    let db = TestDatabase::create().await?;
    let key = MasterKey::generate();
    let prefix = format!("tokenmint-test:{}:", tokenmint_core::ids::random_id("", 10));
    let clock = Arc::new(ManualClock::new(common::real_now()));
    let setup = Setup {
        db_url: db.url(),
        key: &key,
        shared,
        prefix: &prefix,
        clock,
        per_ip,
        per_client,
        hook,
    };
    // One after the other: the first creates the schema and the platform admin.
    let (a, first) = instance(&setup).await;
    let Some(FirstStart::Initialized(admin)) = first else { panic!("first start") };
    let (b, _) = instance(&setup).await;
    let http =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Some(Pair {
        instances: [a, b],
        admin: (admin.client_id, admin.client_secret),
        db: Some(db),
        http,
    })
}

impl Pair {
    /// The instance a round-robin balancer sends request `i` to.
    fn base(&self, i: usize) -> &str {
        &self.instances[i % 2].base
    }

    async fn token(&self, i: usize, client_id: &str, secret: &str) -> reqwest::Response {
        instances::token_request(&self.http, self.base(i), client_id, secret).send().await.unwrap()
    }

    async fn wrong_secret(&self, i: usize, client_id: &str) -> StatusCode {
        self.token(i, client_id, "tms_wrong").await.status()
    }

    /// An admin API call on the first instance.
    async fn admin(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let t: Value = self.token(0, &self.admin.0, &self.admin.1).await.json().await.unwrap();
        let mut req = self
            .http
            .request(method, format!("{}/admin/v1{path}", self.base(0)))
            .bearer_auth(t["access_token"].as_str().unwrap());
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap_or(Value::Null)
    }

    /// One sign-in attempt with a wrong password on the instance of request `i`.
    async fn wrong_password(&self, i: usize, email: &str) -> StatusCode {
        self.sign_in(i, email, "not-the-password").await
    }

    /// One sign-in attempt on the instance of request `i`: the form is fetched from that
    /// instance and posted back to it.
    async fn sign_in(&self, i: usize, email: &str, password: &str) -> StatusCode {
        let page = self.http.get(format!("{}/portal/sign-in", self.base(i))).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let cookies: Vec<String> = page
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
            .collect();
        let body = page.text().await.unwrap();
        let at = body.find(r#"name="csrf" value=""#).unwrap() + r#"name="csrf" value=""#.len();
        let csrf = &body[at..at + body[at..].find('"').unwrap()];
        self.http
            .post(format!("{}/portal/sign-in", self.base(i)))
            .header(reqwest::header::COOKIE, cookies.join("; "))
            .form(&[("csrf", csrf), ("email", email), ("password", password)])
            .send()
            .await
            .unwrap()
            .status()
    }

    async fn shutdown(mut self) -> TestDatabase {
        for i in &mut self.instances {
            i.stop().await;
        }
        self.db.take().unwrap()
    }
}

#[tokio::test]
async fn failed_authentications_spread_over_two_instances_block_at_exactly_the_configured_count() {
    if !instances::redis_available().await {
        return;
    }
    let redis = instances::redis_target();
    let Some(p) = pair(Shared::Redis(&redis), (PER_IP, 1000), None).await else { return };
    // PER_IP failures are allowed, whichever instance they reach; the next one is still
    // answered (it is the failure that sets the block), and from then on both refuse.
    for i in 0..=PER_IP as usize {
        assert_eq!(p.wrong_secret(i, &format!("tmc_guess{i}")).await, 401, "failure {}", i + 1);
    }
    for i in 0..4 {
        assert_eq!(p.wrong_secret(i, "tmc_other").await, 429, "after the block, on {}", i % 2);
    }
    p.shutdown().await.drop_now().await;
}

#[tokio::test]
async fn failed_sign_ins_spread_over_two_instances_block_at_exactly_the_configured_count() {
    if !instances::redis_available().await {
        return;
    }
    let redis = instances::redis_target();
    let Some(p) = pair(Shared::Redis(&redis), (PER_IP, 1000), None).await else { return };
    let allowed = tokenmint_server::portal::auth::FAILURES_PER_ACCOUNT as usize;
    for i in 0..allowed {
        assert_eq!(p.wrong_password(i, "ada@acme.test").await, 401, "failure {}", i + 1);
    }
    // The failure over the limit is refused as paused at once, on either instance.
    assert_eq!(p.wrong_password(allowed, "ada@acme.test").await, 429, "failure {}", allowed + 1);
    for i in 0..2 {
        assert_eq!(p.wrong_password(i, "Ada@acme.test").await, 429, "after the block, on {i}");
    }
    // Another account from the same source is not blocked yet.
    assert_eq!(p.wrong_password(0, "bob@acme.test").await, 401);
    p.shutdown().await.drop_now().await;
}

/// Every attempt is counted before its password is checked, and a success gives its count
/// back through Redis: sign-ins that succeed, on either instance, use none of the source's
/// budget of failures.
#[tokio::test]
async fn successful_sign_ins_spread_over_two_instances_use_none_of_the_sources_failure_budget() {
    if !instances::redis_available().await {
        return;
    }
    let redis = instances::redis_target();
    let Some(p) = pair(Shared::Redis(&redis), (PER_IP, 1000), None).await else { return };
    let password = "a long enough portal password";
    p.admin(
        reqwest::Method::POST,
        "/users",
        Some(json!({"org": "acme", "email": "eve@acme.test", "role": "viewer",
            "password": password})),
    )
    .await;
    let per_source = tokenmint_server::portal::auth::FAILURES_PER_IP as usize;
    for i in 0..per_source + 5 {
        assert_eq!(p.sign_in(i, "eve@acme.test", password).await, 303, "sign-in {}", i + 1);
    }
    for i in 0..per_source {
        let email = format!("guess{i}@acme.test");
        assert_eq!(p.wrong_password(i, &email).await, 401, "failure {}", i + 1);
    }
    assert_eq!(p.wrong_password(per_source, "last@acme.test").await, 429, "over the limit");
    p.shutdown().await.drop_now().await;
}

#[tokio::test]
async fn with_redis_unreachable_each_instance_still_blocks_on_its_own() {
    let dead = closed_port().await;
    let Some(p) = pair(Shared::DeadRedis(&dead), (PER_IP, 1000), None).await else { return };
    // Every request to the first instance: it counts alone and blocks at its count.
    for i in 0..=PER_IP as usize {
        assert_eq!(p.wrong_secret(0, &format!("tmc_guess{i}")).await, 401, "failure {}", i + 1);
    }
    assert_eq!(p.wrong_secret(0, "tmc_other").await, 429);
    // The second has not seen those failures, and blocks at its own count.
    for i in 0..=PER_IP as usize {
        assert_eq!(p.wrong_secret(1, &format!("tmc_guess{i}")).await, 401, "failure {}", i + 1);
    }
    assert_eq!(p.wrong_secret(1, "tmc_other").await, 429);
    // The portal's throttle too.
    let allowed = tokenmint_server::portal::auth::FAILURES_PER_ACCOUNT as usize;
    for _ in 0..allowed {
        assert_eq!(p.wrong_password(0, "ada@acme.test").await, 401);
    }
    assert_eq!(p.wrong_password(0, "ada@acme.test").await, 429, "the failure over the limit");
    assert_eq!(p.wrong_password(0, "ada@acme.test").await, 429);
    assert_eq!(p.wrong_password(1, "ada@acme.test").await, 401);
    p.shutdown().await.drop_now().await;
}

/// The right secret of a deactivated credential, presented to both instances: each refuses it
/// and would raise the alert, and it is delivered once.
async fn one_alert_for_an_event_both_instances_see(shared: Shared<'_>) {
    let (hook, got) = instances::webhook_receiver().await;
    let Some(p) = pair(shared, (1000, 1000), Some(&hook)).await else { return };
    let created = p
        .admin(
            reqwest::Method::POST,
            "/credentials",
            Some(json!({"name": "x", "org": "acme", "environment": "sandbox"})),
        )
        .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    p.admin(reqwest::Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    // The second instance refuses it once the change reaches it (within a second), the first
    // at once; both have then seen the event.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while p.token(1, &id, &secret).await.status() != 401 {
        assert!(std::time::Instant::now() < deadline, "the deactivation never reached it");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(p.token(0, &id, &secret).await.status(), 401);
    assert_eq!(p.token(1, &id, &secret).await.status(), 401);
    // Both instances have decided by now (an alert is claimed before the answer goes out);
    // the delivery is on its way.
    instances::until_delivered(&got).await;
    // Stopped, the instances have written their audit trails and finished their deliveries.
    instances::assert_one_alert(p.shutdown().await, &got, "deactivated_credential_used").await;
}

#[tokio::test]
async fn an_event_seen_by_both_instances_fires_one_alert_through_redis() {
    if !instances::redis_available().await {
        return;
    }
    let redis = instances::redis_target();
    one_alert_for_an_event_both_instances_see(Shared::Redis(&redis)).await;
}

#[tokio::test]
async fn an_event_seen_by_both_instances_fires_one_alert_through_the_database() {
    one_alert_for_an_event_both_instances_see(Shared::DatabaseOnly).await;
}

#[tokio::test]
async fn with_redis_unreachable_an_alert_is_still_fired_once_through_the_database() {
    let dead = closed_port().await;
    one_alert_for_an_event_both_instances_see(Shared::DeadRedis(&dead)).await;
}
