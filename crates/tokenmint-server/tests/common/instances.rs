//! Several `tokenmint serve` instances of one deployment (one database, maybe one Redis),
//! each on its own random port, for the tests of what instances share: in this process
//! ([`start`]), or as processes of their own behind a real HAProxy, with gateways beside them
//! ([`Bed`]).

#![allow(clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::MasterKey;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{AppState, Application, Config, ManualClock};
use tokenmint_store::testing::{TestDatabase, services_required};
use tokenmint_store::{SqlStore, Store};

/// The issuer every instance of a test deployment names.
pub const ISSUER: &str = "https://auth.example.test";

/// A running instance; [`stop`](Self::stop) ends it and waits for it.
pub struct Instance {
    pub base: String,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Instance {
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

/// Starts an instance over `db_url`: ES256, the `eligibility` area, [`ISSUER`], then `tweak`.
/// The first instance of a database also returns the admin credential it made.
pub async fn start(
    db_url: &str,
    key: &MasterKey,
    clock: Arc<ManualClock>,
    tweak: impl FnOnce(&mut Config),
) -> (Instance, Option<FirstStart>) {
    let mut config = Config::new(db_url.to_owned(), key.clone());
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.product_areas = tokenmint_core::scope::ProductAreas::parse(&["eligibility"]).unwrap();
    config.signing_alg = tokenmint_core::keys::SigningAlgorithm::ES256;
    config.issuer = Some(ISSUER.to_owned());
    tweak(&mut config);
    let store = SqlStore::connect(db_url, true).await.unwrap();
    let mut app = Application::build_with_clock(config, Arc::new(store), clock).await.unwrap();
    let first = app.take_first_start();
    let base = format!("http://{}", app.local_addr().unwrap());
    let state = app.state().clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        app.run_until_stopped(async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    (Instance { base, state, stop: Some(tx), task: Some(task) }, first)
}

/// A client-credentials token request to the server (or balancer) at `base`, the credentials
/// in the body.
pub fn token_request(
    http: &reqwest::Client,
    base: &str,
    client_id: &str,
    secret: &str,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/oauth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
    ])
}

/// Where the tests' Redis is: `TOKENMINT_TEST_REDIS`, else 127.0.0.1:6379.
pub fn redis_target() -> String {
    std::env::var("TOKENMINT_TEST_REDIS").unwrap_or_else(|_| "127.0.0.1:6379".to_owned())
}

/// Whether Redis answers; when it does not, says the test is skipped, or fails when
/// `TOKENMINT_REQUIRE_SERVICES=1` (CI) requires it.
pub async fn redis_available() -> bool {
    let ok = tokio::net::TcpStream::connect(redis_target()).await.is_ok();
    if !ok {
        assert!(
            !services_required(),
            "Redis is required (TOKENMINT_REQUIRE_SERVICES=1) but unreachable at {}",
            redis_target()
        );
        eprintln!("skipping: Redis is not reachable at {}", redis_target());
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// The load-balanced test bed: server processes behind HAProxy, and gateways.
// ---------------------------------------------------------------------------------------------

/// The test, in every test binary that starts a [`Bed`], that runs one of its server processes:
/// `#[test] #[ignore = "…"] fn server_process() { instances::process_main() }`. The bed runs
/// the test binary again with that test alone, so each instance is a process of its own that a
/// test can kill with SIGKILL, serving with the code under test.
pub const PROCESS_TEST: &str = "server_process";
/// Names the file holding a server process's [`ProcessSpec`].
const PROCESS_ENV: &str = "TOKENMINT_TEST_SERVER_PROCESS";
/// The response header HAProxy adds to say which instance answered.
pub const SERVED_BY: &str = "x-served-by";
/// How long an instance may take to become ready, or HAProxy to see a change.
const DEADLINE: Duration = Duration::from_secs(20);

/// What a server process is started with (the `tokenmint serve` settings a deployment of
/// several instances sets), written to a file it reads.
#[derive(serde::Serialize, serde::Deserialize)]
struct ProcessSpec {
    database_url: String,
    master_key: String,
    listen: std::net::SocketAddr,
    issuer: String,
    redis_url: String,
    redis_prefix: String,
    failures_per_ip: u32,
    failures_per_client: u32,
    token_rate_limit: u32,
    webhook: Option<String>,
    /// Where the first instance writes the platform-admin credential it creates.
    admin_file: std::path::PathBuf,
}

/// The body of the [`PROCESS_TEST`] test: serves as the bed asked until SIGTERM (a graceful
/// stop), SIGKILL, or the end of the test process that started it (its stdin closes). Run in
/// any other way, it says so and returns.
pub fn process_main() {
    let Some(path) = std::env::var_os(PROCESS_ENV) else {
        eprintln!("not a test by itself: a test bed runs it as one of its server processes");
        return;
    };
    let spec: ProcessSpec = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        std::process::exit(0);
    });
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(serve_process(spec));
}

async fn serve_process(spec: ProcessSpec) {
    let key = MasterKey::from_hex(&spec.master_key).unwrap();
    let mut config = Config::new(spec.database_url.clone(), key);
    config.listen = spec.listen;
    config.product_areas = tokenmint_core::scope::ProductAreas::parse(&["eligibility"]).unwrap();
    config.signing_alg = tokenmint_core::keys::SigningAlgorithm::ES256;
    config.issuer = Some(spec.issuer);
    config.redis_url = Some(spec.redis_url);
    config.redis_prefix = spec.redis_prefix;
    // HAProxy connects from 127.0.0.1 and says who its client was.
    config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    config.brute_force.failures_per_ip = spec.failures_per_ip;
    config.brute_force.failures_per_client = spec.failures_per_client;
    config.token_rate_limit = spec.token_rate_limit;
    if let Some(hook) = &spec.webhook {
        config.alerts.webhooks =
            vec![tokenmint_server::alerts::WebhookTarget::parse(hook).unwrap()];
        config.alerts.allow_private_targets = true;
        config.alerts.secret =
            Some(tokenmint_server::alerts::WebhookSecret("whsec_test".to_owned()));
    }
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).unwrap();
    let store = SqlStore::connect(&spec.database_url, true).await.unwrap();
    let mut app = Application::build(config, Arc::new(store)).await.unwrap();
    if let Some(FirstStart::Initialized(admin)) = app.take_first_start() {
        let body =
            serde_json::json!({"client_id": admin.client_id, "client_secret": admin.client_secret});
        let partial = spec.admin_file.with_extension("partial");
        std::fs::write(&partial, body.to_string()).unwrap();
        std::fs::rename(&partial, &spec.admin_file).unwrap();
    }
    app.run_until_stopped(async move {
        terminate.recv().await;
    })
    .await
    .unwrap();
}

/// One server process of a bed, on a port of its own that stays its own across restarts.
pub struct ServerProcess {
    /// HAProxy's name for it, as [`SERVED_BY`] gives it.
    pub name: String,
    /// Its own address, bypassing the balancer.
    pub base: String,
    spec: std::path::PathBuf,
    log: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is running", self.name);
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).unwrap();
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([PROCESS_TEST, "--exact", "--ignored", "--nocapture", "--test-threads=1"])
            .env(PROCESS_ENV, &self.spec)
            .stdin(std::process::Stdio::piped())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// Waits until it answers `/readyz` with 200.
    async fn ready(&mut self, http: &reqwest::Client) {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let res = http.get(format!("{}/readyz", self.base)).send().await;
            if res.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("{} exited ({status}) before it was ready:\n{}", self.name, self.log_text());
            }
            assert!(std::time::Instant::now() < deadline, "{} was never ready", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts it again (after [`kill`](Self::kill) or [`terminate`](Self::terminate)) on the
    /// same address, and waits until it is ready.
    pub async fn restart(&mut self, http: &reqwest::Client) {
        self.spawn();
        self.ready(http).await;
    }

    /// SIGKILL: it ends at once, whatever it was doing.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// SIGTERM, then waits until it has stopped: requests in flight finished, audit records
    /// and alert deliveries flushed.
    pub async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "{} stopped with {status}:\n{}",
                    self.name,
                    self.log_text()
                );
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{} did not stop", self.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of {} ---\n{}", self.name, self.log_text());
        }
        self.kill();
    }
}

/// The settings a bed's instances share.
#[derive(Clone)]
pub struct BedOptions {
    pub instances: usize,
    pub failures_per_ip: u32,
    pub failures_per_client: u32,
    /// Token requests per minute per credential; 0 for none.
    pub token_rate_limit: u32,
    /// A webhook for the alerts.
    pub webhook: Option<String>,
}

impl Default for BedOptions {
    fn default() -> Self {
        Self {
            instances: 3,
            failures_per_ip: 1000,
            failures_per_client: 1000,
            token_rate_limit: 1000,
            webhook: None,
        }
    }
}

/// A deployment as the README's "several instances" describes it: `instances` server processes
/// over one PostgreSQL database and one Redis, behind a real HAProxy that balances round robin
/// (every request on its own, no stickiness), checks each instance's `/readyz` every 100 ms,
/// retries token requests that an instance dropped without an answer on another instance, and
/// names the instance that answered in [`SERVED_BY`]. The balancer's address is the issuer.
///
/// `None` (the test is skipped, with a message) when PostgreSQL, Redis or haproxy is missing,
/// unless `TOKENMINT_REQUIRE_SERVICES=1`.
pub struct Bed {
    /// The balancer, `http://127.0.0.1:PORT`: the issuer too.
    pub balancer: String,
    pub servers: Vec<ServerProcess>,
    /// The platform-admin credential the first instance created.
    pub admin: (String, String),
    /// The database, for tests that look at what was written.
    pub database_url: String,
    /// The Redis key prefix of this bed alone.
    pub redis_prefix: String,
    pub http: reqwest::Client,
    stats: String,
    db: Option<TestDatabase>,
    haproxy: Option<super::haproxy::Haproxy>,
    dir: tempfile::TempDir,
}

impl Bed {
    pub async fn start(options: BedOptions) -> Option<Bed> {
        if !super::haproxy::installed() || !redis_available().await {
            return None;
        }
        let db = TestDatabase::create().await?;
        let dir = tempfile::tempdir().unwrap();
        let http =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        // HAProxy starts first, on ports chosen now (the instances' too): if another process
        // takes one of them in between, HAProxy exits and all are chosen again.
        let mut attempt = 0;
        let (haproxy, port, stats_port, listens) = loop {
            attempt += 1;
            let mut ports = std::collections::BTreeSet::new();
            while ports.len() < options.instances + 2 {
                ports.insert(super::haproxy::free_port());
            }
            let ports: Vec<u16> = ports.into_iter().collect();
            let (port, stats_port) = (ports[0], ports[1]);
            let listens: Vec<std::net::SocketAddr> =
                ports[2..].iter().map(|p| format!("127.0.0.1:{p}").parse().unwrap()).collect();
            let backends: String = listens
                .iter()
                .enumerate()
                .map(|(i, listen)| format!("  server s{i} {listen} check\n"))
                .collect();
            let config = haproxy_config(port, stats_port, &backends);
            match super::haproxy::Haproxy::try_start(&config, &[port, stats_port]).await {
                Ok(haproxy) => break (haproxy, port, stats_port, listens),
                Err(said) if attempt < 5 => eprintln!("haproxy did not start, again: {said}"),
                Err(said) => panic!("{said}"),
            }
        };
        let balancer = format!("http://127.0.0.1:{port}");
        let redis_prefix = format!("tokenmint-test:{}:", tokenmint_core::ids::random_id("", 10));
        let master_key = MasterKey::generate().to_hex();
        let admin_file = dir.path().join("admin.json");
        let mut servers = Vec::new();
        for (i, listen) in listens.into_iter().enumerate() {
            let spec = ProcessSpec {
                database_url: db.url().to_owned(),
                master_key: master_key.clone(),
                listen,
                issuer: balancer.clone(),
                redis_url: format!("redis://{}/0", redis_target()),
                redis_prefix: redis_prefix.clone(),
                failures_per_ip: options.failures_per_ip,
                failures_per_client: options.failures_per_client,
                token_rate_limit: options.token_rate_limit,
                webhook: options.webhook.clone(),
                admin_file: admin_file.clone(),
            };
            let path = dir.path().join(format!("s{i}.json"));
            std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
            servers.push(ServerProcess {
                name: format!("s{i}"),
                base: format!("http://{listen}"),
                spec: path,
                log: dir.path().join(format!("s{i}.log")),
                child: None,
            });
        }
        // The first alone: it creates the schema and the platform admin; the others together.
        servers[0].restart(&http).await;
        for s in &mut servers[1..] {
            s.spawn();
        }
        for s in &mut servers[1..] {
            s.ready(&http).await;
        }
        let admin: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&admin_file).unwrap()).unwrap();
        let bed = Bed {
            balancer,
            servers,
            admin: (
                admin["client_id"].as_str().unwrap().to_owned(),
                admin["client_secret"].as_str().unwrap().to_owned(),
            ),
            database_url: db.url().to_owned(),
            redis_prefix,
            http,
            stats: format!("http://127.0.0.1:{stats_port}/stats;csv"),
            db: Some(db),
            haproxy: Some(haproxy),
            dir,
        };
        for s in &bed.servers {
            bed.wait_for_state(&s.name, "UP").await;
        }
        Some(bed)
    }

    /// A URL of the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.balancer)
    }

    /// A token request through the balancer with `http` (whose source address it may choose).
    pub async fn token_with(
        &self,
        http: &reqwest::Client,
        client_id: &str,
        secret: &str,
    ) -> reqwest::Response {
        token_request(http, &self.balancer, client_id, secret).send().await.unwrap()
    }

    /// An access token for the admin API, through the balancer.
    pub async fn admin_token(&self) -> String {
        let res = self
            .http
            .post(self.url("/oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.admin.0),
                ("client_secret", &self.admin.1),
                ("audience", &self.balancer),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// An admin API call through the balancer.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .request(method, self.url(&format!("/admin/v1{path}")))
            .bearer_auth(self.admin_token().await);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }

    /// Creates a credential through the balancer: (client_id, client_secret, the instance
    /// that created it).
    pub async fn credential(&self, body: serde_json::Value) -> (String, String, String) {
        let res = self.admin(reqwest::Method::POST, "/credentials", Some(body)).await;
        assert_eq!(res.status(), 201);
        let by = served_by(&res);
        let v: serde_json::Value = res.json().await.unwrap();
        (
            v["client_id"].as_str().unwrap().to_owned(),
            v["client_secret"].as_str().unwrap().to_owned(),
            by,
        )
    }

    /// HAProxy's statistics for each instance: name → the named columns (`status`, `wretr`
    /// for retries, `wredis` for redispatches, ...).
    pub async fn stats(
        &self,
    ) -> std::collections::HashMap<String, std::collections::HashMap<String, String>> {
        let csv = self.http.get(&self.stats).send().await.unwrap().text().await.unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().trim_start_matches("# ").split(',').collect();
        lines
            .map(|l| {
                header
                    .iter()
                    .map(|h| h.to_string())
                    .zip(l.split(',').map(str::to_owned))
                    .collect::<std::collections::HashMap<_, _>>()
            })
            .filter(|row| row["pxname"] == "tokenmint")
            .map(|row| (row["svname"].clone(), row))
            .collect()
    }

    /// Waits until HAProxy's health check has `server` in `state` (`UP`, `DOWN`).
    pub async fn wait_for_state(&self, server: &str, state: &str) -> Duration {
        let start = std::time::Instant::now();
        loop {
            let stats = self.stats().await;
            let now = stats.get(server).map(|row| row["status"].clone()).unwrap_or_default();
            if now == state {
                return start.elapsed();
            }
            assert!(start.elapsed() < DEADLINE, "{server} is {now}, never {state}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the balancer (and the connections it holds), then every instance gracefully
    /// (SIGTERM: audit records and alert deliveries flushed); returns the database for a last
    /// look, to be dropped by the caller.
    pub async fn stop(mut self) -> TestDatabase {
        self.haproxy.take();
        for s in &mut self.servers {
            s.terminate().await;
        }
        self.db.take().unwrap()
    }

    /// Stops everything and drops the database.
    pub async fn shutdown(self) {
        self.stop().await.drop_now().await;
    }

    /// A file in the bed's own directory.
    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }
}

/// The instance that answered `res` through the balancer.
pub fn served_by(res: &reqwest::Response) -> String {
    res.headers().get(SERVED_BY).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// A gateway (`tokenmint gateway` from a configuration file) running in this test process,
/// stopped when dropped.
pub struct RunningGateway {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for RunningGateway {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

impl Bed {
    /// `count` gateways in front of `upstream` for `/eligibility`, each verifying tokens of the
    /// balancer's issuer and following its revocation feed through the balancer, with the
    /// route's per-client limit `per_minute` shared through the bed's Redis.
    pub async fn gateways(
        &self,
        count: usize,
        upstream: &str,
        per_minute: u32,
    ) -> Vec<RunningGateway> {
        let (feed_id, feed_secret, _) = self
            .credential(serde_json::json!({"name": "API gateway", "org": "platform",
                "environment": "production", "permissions": ["tokenmint:revocations"]}))
            .await;
        let secret_file = self.path("gateway.secret");
        std::fs::write(&secret_file, feed_secret).unwrap();
        let config = format!(
            "listen = \"127.0.0.1:0\"\n\
             issuer = \"{issuer}\"\n\
             client_id = \"{feed_id}\"\n\
             client_secret_file = \"{secret}\"\n\
             redis = \"redis://{redis}/0\"\n\
             redis_prefix = \"{prefix}gw:\"\n\
             [[route]]\n\
             path_prefix = \"/eligibility\"\n\
             upstream = \"{upstream}\"\n\
             read_scope = \"eligibility:read\"\n\
             write_scope = \"eligibility:write\"\n\
             rate_limit_per_minute = {per_minute}\n",
            issuer = self.balancer,
            secret = secret_file.display(),
            redis = redis_target(),
            prefix = self.redis_prefix,
        );
        let path = self.path("gateway.toml");
        std::fs::write(&path, config).unwrap();
        let mut gateways = Vec::new();
        for _ in 0..count {
            let config = tokenmint_gateway::GatewayConfig::load(
                &path,
                &tokenmint_gateway::Overrides::default(),
            )
            .unwrap();
            let gateway =
                tokenmint_gateway::Gateway::build(config, Arc::new(tokenmint_gateway::SystemClock))
                    .await
                    .unwrap();
            let base = format!("http://{}", gateway.local_addr().unwrap());
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(gateway.run_until_stopped(async move {
                let _ = rx.await;
            }));
            gateways.push(RunningGateway { base, stop: Some(tx) });
        }
        gateways
    }
}

/// A webhook receiver that keeps the `kind` of every alert posted to it.
pub async fn webhook_receiver() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
    let got = Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let kept = kept.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap();
                kept.lock().unwrap().push(v["kind"].as_str().unwrap().to_owned());
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

/// Waits until the webhook of [`webhook_receiver`] has been called.
pub async fn until_delivered(got: &std::sync::Mutex<Vec<String>>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no alert delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Once the instances have stopped (audit trails written, deliveries finished): the webhook
/// was called once, for `kind`, and the database holds one delivered delivery and one
/// `alert.fired` record. Drops the database.
pub async fn assert_one_alert(db: TestDatabase, got: &std::sync::Mutex<Vec<String>>, kind: &str) {
    let calls = got.lock().unwrap().clone();
    assert_eq!(calls, [kind], "webhook calls");
    let store = SqlStore::connect(db.url(), false).await.unwrap();
    let deliveries = store.list_alert_deliveries(100).await.unwrap();
    assert_eq!(deliveries.len(), 1, "delivery records");
    assert!(deliveries[0].delivered);
    let fired = store
        .list_audit(&tokenmint_store::AuditFilter {
            kind: Some("alert.fired".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(fired.len(), 1, "alert.fired records");
    store.close().await;
    db.drop_now().await;
}

/// The balancer in front of the instances: round robin with /readyz health checks every 100 ms,
/// token requests (and only they) sent again to another instance when one drops them.
fn haproxy_config(port: u16, stats_port: u16, backends: &str) -> String {
    // Token requests may be sent again: a second token for the same request does no harm.
    // Other requests are retried only when no connection could be made (nothing was sent).
    format!(
        "global\n  maxconn 500\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n\
         \x20 timeout check 1s\n  option forwardfor\n  retries 3\n  option redispatch 1\n\
         frontend edge\n  bind 127.0.0.1:{port}\n  default_backend tokenmint\n\
         listen stats\n  bind 127.0.0.1:{stats_port}\n  stats enable\n  stats uri /stats\n\
         backend tokenmint\n  balance roundrobin\n\
         \x20 option httpchk GET /readyz\n  http-check expect status 200\n\
         \x20 retry-on conn-failure empty-response\n\
         \x20 http-request disable-l7-retry unless {{ path /oauth/token }}\n\
         \x20 http-response set-header {SERVED_BY} %[srv_name]\n\
         \x20 default-server inter 100ms fastinter 100ms downinter 100ms fall 2 rise 2 source 127.0.0.1\n\
         {backends}"
    )
}
