//! Several instances over one PostgreSQL database and one Redis: what one instance changes the
//! other sees within a second, limits hold across both, and neither fails a token request when
//! Redis or PostgreSQL goes away for a while.
//!
//! PostgreSQL and Redis are reached through proxies the tests can cut, so an outage is
//! simulated without disturbing the real services other tests use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::instances::{self, Instance};
use common::proxy::Proxy;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenmint_core::MasterKey;
use tokenmint_server::ManualClock;
use tokenmint_server::app::FirstStart;
use tokenmint_store::testing::TestDatabase;

struct Cluster {
    a: Instance,
    b: Instance,
    admin: (String, String),
    pg: Proxy,
    redis: Proxy,
    db: Option<TestDatabase>,
    http: reqwest::Client,
    clock: Arc<ManualClock>,
    /// What another instance of the cluster is started with.
    url: String,
    key: MasterKey,
    prefix: String,
}

async fn instance(
    db_url: &str,
    key: &MasterKey,
    redis: &str,
    prefix: &str,
    clock: Arc<ManualClock>,
    limit: u32,
) -> (Instance, Option<FirstStart>) {
    instances::start(db_url, key, clock, |config| {
        config.token_rate_limit = limit;
        config.redis_url = Some(format!("redis://{redis}/0"));
        config.redis_prefix = prefix.to_owned();
        config.sync_interval = Duration::from_millis(250);
    })
    .await
}

async fn cluster(limit: u32) -> Option<Cluster> {
    if !instances::redis_available().await {
        return None;
    }
    let db = TestDatabase::create().await?;
    let pg_target = db
        .url()
        .trim_start_matches("postgres://")
        .split('/')
        .next()
        .unwrap()
        .split('@')
        .next_back()
        .unwrap()
        .to_owned();
    let pg = Proxy::start(&pg_target).await;
    let redis = Proxy::start(&instances::redis_target()).await;
    let url = db.url().replacen(&pg_target, &pg.addr.to_string(), 1);
    let key = MasterKey::generate();
    let prefix = format!("tokenmint-test:{}:", tokenmint_core::ids::random_id("", 10));
    let clock = Arc::new(ManualClock::new(common::real_now()));
    let (a, first) =
        instance(&url, &key, &redis.addr.to_string(), &prefix, clock.clone(), limit).await;
    let Some(FirstStart::Initialized(admin)) = first else { panic!("first start") };
    let (b, _) = instance(&url, &key, &redis.addr.to_string(), &prefix, clock.clone(), limit).await;
    Some(Cluster {
        a,
        b,
        admin: (admin.client_id, admin.client_secret),
        pg,
        redis,
        db: Some(db),
        http: reqwest::Client::new(),
        clock,
        url,
        key,
        prefix,
    })
}

impl Cluster {
    /// One more instance of the cluster, as a new instance joins a running deployment.
    async fn another(&self, limit: u32) -> Instance {
        let redis = self.redis.addr.to_string();
        instance(&self.url, &self.key, &redis, &self.prefix, self.clock.clone(), limit).await.0
    }

    async fn token(&self, base: &str, id: &str, secret: &str) -> reqwest::Response {
        instances::token_request(&self.http, base, id, secret).send().await.unwrap()
    }

    async fn admin(
        &self,
        base: &str,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let t: Value = self.token(base, &self.admin.0, &self.admin.1).await.json().await.unwrap();
        let mut req = self
            .http
            .request(method, format!("{base}/admin/v1{path}"))
            .bearer_auth(t["access_token"].as_str().unwrap());
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    async fn credential(&self, base: &str, body: Value) -> (String, String) {
        let v: Value =
            self.admin(base, Method::POST, "/credentials", Some(body)).await.json().await.unwrap();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn shutdown(mut self) {
        self.a.stop().await;
        self.b.stop().await;
        if let Some(db) = self.db.take() {
            db.drop_now().await;
        }
    }
}

async fn within_a_second<F, Fut>(what: &str, f: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < Duration::from_secs(1), "{what} took longer than a second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn a_credential_created_on_one_instance_works_on_the_other_at_once_and_a_deactivation_reaches_it_within_a_second()
 {
    let Some(c) = cluster(1000).await else { return };
    let (id, secret) = c
        .credential(&c.a.base, json!({"name": "x", "org": "acme", "environment": "sandbox"}))
        .await;
    assert_eq!(
        c.token(&c.b.base, &id, &secret).await.status(),
        200,
        "usable on the other instance at once"
    );
    c.admin(&c.a.base, Method::POST, &format!("/credentials/{id}/deactivate"), None).await;
    let took = within_a_second("the deactivation on the other instance", || async {
        c.token(&c.b.base, &id, &secret).await.status() == 401
    })
    .await;
    eprintln!("deactivation seen by the other instance after {took:?}");
    c.shutdown().await;
}

#[tokio::test]
async fn both_instances_publish_identical_jwks_before_and_after_a_rotation() {
    let Some(c) = cluster(1000).await else { return };
    let jwks = |base: String| {
        let http = c.http.clone();
        async move {
            http.get(format!("{base}/.well-known/jwks.json"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert_eq!(jwks(c.a.base.clone()).await, jwks(c.b.base.clone()).await);
    let res = c.admin(&c.a.base, Method::POST, "/keys/rotate", Some(json!({}))).await;
    assert_eq!(res.status(), 201);
    let a_after = jwks(c.a.base.clone()).await;
    within_a_second("the new key on the other instance", || {
        let (b, expected) = (c.b.base.clone(), a_after.clone());
        let f = jwks(b);
        async move { f.await == expected }
    })
    .await;
    c.shutdown().await;
}

#[tokio::test]
async fn the_scheduled_rotation_happens_on_exactly_one_instance() {
    let Some(c) = cluster(1000).await else { return };
    let interval = c.a.state.config.key_rotation_interval.as_secs() as i64;
    c.clock.advance(interval);
    let (ra, rb) = tokio::join!(
        tokenmint_server::app::maintain(&c.a.state, false),
        tokenmint_server::app::maintain(&c.b.state, false)
    );
    ra.unwrap();
    rb.unwrap();
    let keys: Value = c.admin(&c.b.base, Method::GET, "/keys", None).await.json().await.unwrap();
    assert_eq!(keys.as_array().unwrap().iter().filter(|k| k["state"] == "pending").count(), 1);
    c.shutdown().await;
}

#[tokio::test]
async fn the_per_client_limit_holds_across_instances_and_survives_redis_going_away() {
    let Some(c) = cluster(10).await else { return };
    let (id, secret) = c
        .credential(&c.a.base, json!({"name": "x", "org": "acme", "environment": "sandbox"}))
        .await;
    for i in 0..10 {
        let base = if i % 2 == 0 { &c.a.base } else { &c.b.base };
        assert_eq!(c.token(base, &id, &secret).await.status(), 200, "request {i}");
    }
    assert_eq!(
        c.token(&c.a.base, &id, &secret).await.status(),
        429,
        "the 11th, on either instance, is refused"
    );
    assert_eq!(c.token(&c.b.base, &id, &secret).await.status(), 429);

    // Redis goes away: requests are decided locally, none fails.
    c.redis.down();
    let (other, other_secret) = c
        .credential(&c.a.base, json!({"name": "y", "org": "acme", "environment": "sandbox"}))
        .await;
    for i in 0..6 {
        let base = if i % 2 == 0 { &c.a.base } else { &c.b.base };
        let status = c.token(base, &other, &other_secret).await.status();
        assert_eq!(status, 200, "request {i} while Redis is down");
    }
    let metrics =
        c.http.get(format!("{}/metrics", c.a.base)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("tokenmint_rate_limit_fallback 1"),
        "the fallback shows in the metrics"
    );
    c.redis.up();
    // The instance tries Redis again a second (of its clock) after a failure, and the
    // connection manager reconnects by itself: the clock moves on, and the test polls until
    // the reconnection has happened. Six seconds a step refill the one request each step
    // spends of the local 10 a minute, so the polling itself is never limited.
    let start = Instant::now();
    loop {
        c.clock.advance(6);
        assert_eq!(c.token(&c.a.base, &other, &other_secret).await.status(), 200);
        let metrics =
            c.http.get(format!("{}/metrics", c.a.base)).send().await.unwrap().text().await.unwrap();
        if metrics.contains("tokenmint_rate_limit_fallback 0") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "not back on Redis: {metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.shutdown().await;
}

#[tokio::test]
async fn a_postgres_outage_fails_no_token_request_for_a_known_credential_and_admin_writes_get_503()
{
    let Some(c) = cluster(1000).await else { return };
    let (id, secret) = c
        .credential(&c.a.base, json!({"name": "x", "org": "acme", "environment": "sandbox"}))
        .await;
    assert_eq!(c.token(&c.a.base, &id, &secret).await.status(), 200);
    assert_eq!(c.token(&c.b.base, &id, &secret).await.status(), 200);
    let admin_token: Value = c.token(&c.a.base, &c.admin.0, &c.admin.1).await.json().await.unwrap();
    let admin_token = admin_token["access_token"].as_str().unwrap().to_owned();

    let (cold, cold_secret) = c
        .credential(&c.a.base, json!({"name": "cold", "org": "acme", "environment": "sandbox"}))
        .await;
    assert!(!cold_secret.is_empty());
    // Instance b learns of `cold` from the change log on its next sync tick (100 ms here); a
    // credential it was loading at that moment is dropped rather than cached from a read that
    // may predate the change. Keep b serving the known credential across a few ticks so its
    // cache holds it again after that sync, as any instance in steady state does.
    let settled = Instant::now() + Duration::from_millis(400);
    while Instant::now() < settled {
        assert_eq!(c.token(&c.b.base, &id, &secret).await.status(), 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    c.pg.down();
    for _ in 0..20 {
        assert_eq!(c.token(&c.a.base, &id, &secret).await.status(), 200);
        assert_eq!(c.token(&c.b.base, &id, &secret).await.status(), 200);
    }
    // Every refusal probes the database; with it down, each is the same 503, so a cached
    // (existing) id with a wrong secret is not told apart from an unknown or uncached one.
    let wrong = "tms_wrong";
    for base in [&c.a.base, &c.b.base] {
        let mut answers = Vec::new();
        for (who, client) in [("cached", id.as_str()), ("cold", &cold), ("unknown", "tmc_nobody")] {
            let res = c.token(base, client, wrong).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert_eq!(status, 503, "{who}: {body}");
            assert_eq!(body["error"], "temporarily_unavailable", "{who}");
            answers.push(body);
        }
        assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    }
    let write = c
        .http
        .post(format!("{}/admin/v1/credentials", c.a.base))
        .bearer_auth(&admin_token)
        .json(&json!({"name": "z", "org": "acme", "environment": "sandbox"}))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 503);
    assert_eq!(write.headers()["content-type"], "application/problem+json");
    // Alive, and ready for the token requests its cache serves: degraded, not taken out of a
    // balancer that would then refuse them on every instance.
    let health = c.http.get(format!("{}/healthz", c.a.base)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready = c.http.get(format!("{}/readyz", c.a.base)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["status"], "degraded", "{ready}");

    c.pg.up();
    let start = Instant::now();
    loop {
        let res = c
            .http
            .post(format!("{}/admin/v1/credentials", c.a.base))
            .bearer_auth(&admin_token)
            .json(&json!({"name": "z", "org": "acme", "environment": "sandbox"}))
            .send()
            .await
            .unwrap();
        if res.status() == 201 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the server did not reconnect: {}",
            res.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    c.shutdown().await;
}

/// Until `instance`'s cache holds the credential `id` (loaded from the database, not asked for
/// by any request to it); fails after ten seconds.
async fn until_cached(instance: &Instance, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !matches!(instance.state.credentials.peek(id), Some(Some(_))) {
        assert!(Instant::now() < deadline, "{} never cached {id}", instance.base);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Over PostgreSQL every instance holds every credential: those existing when it starts, and
/// those created or changed later, elsewhere. Behind a round-robin balancer a credential that
/// only ever asked one instance for tokens is still served by every other one while the
/// database is unreachable.
#[tokio::test]
async fn every_instance_serves_every_credential_through_a_postgres_outage() {
    let Some(c) = cluster(1000).await else { return };
    let (before, before_secret) = c
        .credential(&c.a.base, json!({"name": "before", "org": "acme", "environment": "sandbox"}))
        .await;
    let mut late = c.another(1000).await;
    let (after, after_secret) = c
        .credential(&c.a.base, json!({"name": "after", "org": "acme", "environment": "sandbox"}))
        .await;
    assert_eq!(c.token(&c.a.base, &after, &after_secret).await.status(), 200);
    // b never served either; `late` started after `before` was made and before `after` was.
    for instance in [&c.b, &late] {
        until_cached(instance, &before).await;
        until_cached(instance, &after).await;
    }

    c.pg.down();
    for base in [&c.a.base, &c.b.base, &late.base] {
        for (id, secret) in [(&before, &before_secret), (&after, &after_secret)] {
            let res = c.token(base, id, secret).await;
            assert_eq!(res.status(), 200, "{base} {id}: {}", res.text().await.unwrap());
        }
    }
    c.pg.up();
    late.stop().await;
    c.shutdown().await;
}
