//! A test issuer: real keys, real HTTP on 127.0.0.1, counters for every endpoint, and knobs to
//! rotate keys, take the issuer down and publish revocations.
//!
//! Each test binary uses a different part of it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair, RsaPublicKeyComponents,
};
use aws_lc_rs::{hmac, rsa::KeySize};
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokenmint_proto::feed::{Revocation, RevocationEntry, RevocationPage, SSE_EVENT};
use tokenmint_proto::jwks::{Jwk, Jwks};
use tokenmint_proto::metadata::AuthorizationServerMetadata;
use tokenmint_verify::{
    Clock, ManualClock, RequireScope, VerifiedToken, Verifier, VerifierConfig, VerifyLayer,
};
use tokio::sync::{broadcast, watch};

pub const AUDIENCE: &str = "https://api.example.com";
pub const FEED_TOKEN: &str = "feed-reader-token";
pub const CLIENT_ID: &str = "client-1";

pub enum Pair {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
}

/// A signing key of the test issuer.
pub struct TestKey {
    pub kid: String,
    pub alg: &'static str,
    /// Whether the JWK names its `alg` (Entra ID's RSA keys do not).
    pub declares_alg: bool,
    pair: Pair,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl TestKey {
    pub fn generate(alg: &'static str, kid: &str) -> Self {
        let pair = match alg {
            "RS256" => Pair::Rsa(RsaKeyPair::generate(KeySize::Rsa2048).unwrap()),
            "ES256" => Pair::Ec(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap()),
            "EdDSA" => Pair::Ed(Ed25519KeyPair::generate().unwrap()),
            other => panic!("no test key for {other}"),
        };
        Self { kid: kid.to_owned(), alg, declares_alg: true, pair }
    }

    /// The same key published without `alg` in its JWK.
    pub fn without_alg(mut self) -> Self {
        self.declares_alg = false;
        self
    }

    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: Some(self.kid.clone()),
            alg: self.declares_alg.then(|| self.alg.to_owned()),
            use_: Some("sig".to_owned()),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        };
        match &self.pair {
            Pair::Rsa(pair) => {
                let parts = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public_key());
                jwk.kty = "RSA".into();
                jwk.n = Some(b64(&parts.n));
                jwk.e = Some(b64(&parts.e));
            }
            Pair::Ec(pair) => {
                let point = pair.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = Some(b64(&point[1..33]));
                jwk.y = Some(b64(&point[33..65]));
            }
            Pair::Ed(pair) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(b64(pair.public_key().as_ref()));
            }
        }
        jwk
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        match &self.pair {
            Pair::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input, &mut signature).unwrap();
                signature
            }
            Pair::Ec(pair) => pair.sign(&SystemRandom::new(), input).unwrap().as_ref().to_vec(),
            Pair::Ed(pair) => pair.sign(input).as_ref().to_vec(),
        }
    }

    /// The RSA public key as PKCS#1 DER and as SPKI PEM: what an HS256-confusion attacker
    /// would use as the HMAC secret.
    pub fn rsa_public_key_forms(&self) -> Vec<Vec<u8>> {
        let Pair::Rsa(pair) = &self.pair else { panic!("not an RSA key") };
        let pkcs1 = pair.public_key().as_ref().to_vec();
        let spki = pair.public_key().as_der().unwrap().as_ref().to_vec();
        let body = STANDARD.encode(&spki);
        let lines: Vec<&str> =
            body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect();
        let pem =
            format!("-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n", lines.join("\n"));
        vec![pkcs1, spki, pem.into_bytes()]
    }
}

/// Encodes a compact JWS from a header, claims and a signing function.
pub fn compact(header: &Value, claims: &Value, sign: impl FnOnce(&[u8]) -> Vec<u8>) -> String {
    let input = format!(
        "{}.{}",
        b64(&serde_json::to_vec(header).unwrap()),
        b64(&serde_json::to_vec(claims).unwrap())
    );
    let signature = sign(input.as_bytes());
    format!("{input}.{}", b64(&signature))
}

pub fn hs256(secret: &[u8], input: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), input).as_ref().to_vec()
}

struct IssuerState {
    issuer: String,
    clock: Arc<ManualClock>,
    published: Mutex<Vec<Arc<TestKey>>>,
    all_keys: Mutex<HashMap<String, Arc<TestKey>>>,
    advertised_algs: Mutex<Vec<String>>,
    max_age: AtomicU64,
    /// While true, JWKS requests are held unanswered (a fetch kept in flight on purpose).
    jwks_held: watch::Sender<bool>,
    /// JWKS requests received so far, for tests to wait on.
    jwks_arrivals: watch::Sender<usize>,
    down: AtomicBool,
    stream_enabled: AtomicBool,
    feed_token: Mutex<String>,
    requests: AtomicUsize,
    metadata_fetches: AtomicUsize,
    jwks_fetches: AtomicUsize,
    feed_polls: AtomicUsize,
    stream_opens: AtomicUsize,
    unauthorized_feed_requests: AtomicUsize,
    feed: Mutex<Vec<RevocationEntry>>,
    next_cursor: AtomicI64,
    feed_tx: broadcast::Sender<RevocationEntry>,
    /// Bumped to cut every open stream.
    cut_streams: watch::Sender<u64>,
    keepalive: Duration,
    jti: AtomicU64,
}

/// The test issuer. Dropping it stops its server.
pub struct TestIssuer {
    pub issuer: String,
    pub clock: Arc<ManualClock>,
    state: Arc<IssuerState>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestIssuer {
    /// An issuer with one RS256 (`rs-1`), one ES256 (`es-1`) and one EdDSA (`ed-1`) key.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        let clock = Arc::new(ManualClock::starting_now());
        let (feed_tx, _) = broadcast::channel(1024);
        let state = Arc::new(IssuerState {
            issuer: issuer.clone(),
            clock: Arc::clone(&clock),
            published: Mutex::new(Vec::new()),
            all_keys: Mutex::new(HashMap::new()),
            advertised_algs: Mutex::new(vec!["RS256".into(), "ES256".into(), "EdDSA".into()]),
            max_age: AtomicU64::new(300),
            jwks_held: watch::channel(false).0,
            jwks_arrivals: watch::channel(0).0,
            down: AtomicBool::new(false),
            stream_enabled: AtomicBool::new(true),
            feed_token: Mutex::new(FEED_TOKEN.to_owned()),
            requests: AtomicUsize::new(0),
            metadata_fetches: AtomicUsize::new(0),
            jwks_fetches: AtomicUsize::new(0),
            feed_polls: AtomicUsize::new(0),
            stream_opens: AtomicUsize::new(0),
            unauthorized_feed_requests: AtomicUsize::new(0),
            feed: Mutex::new(Vec::new()),
            next_cursor: AtomicI64::new(1),
            feed_tx,
            cut_streams: watch::channel(0).0,
            keepalive: Duration::from_millis(200),
            jti: AtomicU64::new(0),
        });
        let this = Self {
            issuer,
            clock,
            state: Arc::clone(&state),
            server: tokio::spawn(async move {
                axum::serve(listener, router(state)).await.unwrap();
            }),
        };
        for (alg, kid) in [("RS256", "rs-1"), ("ES256", "es-1"), ("EdDSA", "ed-1")] {
            this.publish(TestKey::generate(alg, kid));
        }
        this
    }

    /// Adds a key to the JWKS.
    pub fn publish(&self, key: TestKey) {
        let key = Arc::new(key);
        self.state.all_keys.lock().unwrap().insert(key.kid.clone(), Arc::clone(&key));
        self.state.published.lock().unwrap().push(key);
    }

    /// Creates a key the issuer can sign with but does not publish yet.
    pub fn create_unpublished(&self, alg: &'static str, kid: &str) {
        let key = Arc::new(TestKey::generate(alg, kid));
        self.state.all_keys.lock().unwrap().insert(kid.to_owned(), key);
    }

    /// Publishes a key created with [`create_unpublished`].
    pub fn publish_existing(&self, kid: &str) {
        let key = Arc::clone(&self.state.all_keys.lock().unwrap()[kid]);
        self.state.published.lock().unwrap().push(key);
    }

    /// Removes a key from the JWKS (it can still sign: a withdrawn key).
    pub fn unpublish(&self, kid: &str) {
        self.state.published.lock().unwrap().retain(|k| k.kid != kid);
    }

    pub fn key(&self, kid: &str) -> Arc<TestKey> {
        Arc::clone(&self.state.all_keys.lock().unwrap()[kid])
    }

    pub fn set_advertised_algs(&self, algs: &[&str]) {
        *self.state.advertised_algs.lock().unwrap() =
            algs.iter().map(|a| (*a).to_owned()).collect();
    }

    pub fn set_max_age(&self, secs: u64) {
        self.state.max_age.store(secs, Ordering::SeqCst);
    }

    /// Holds every JWKS request unanswered until [`release_jwks`](Self::release_jwks), so a
    /// fetch stays in flight for as long as a test needs, without waiting for time to pass.
    pub fn hold_jwks(&self) {
        self.state.jwks_held.send_replace(true);
    }

    /// Answers the held JWKS requests, and the later ones at once.
    pub fn release_jwks(&self) {
        self.state.jwks_held.send_replace(false);
    }

    /// Waits until `count` JWKS requests in all have reached the issuer, or `within`; returns
    /// whether they did.
    pub async fn jwks_requests_reach(&self, count: usize, within: Duration) -> bool {
        let mut arrivals = self.state.jwks_arrivals.subscribe();
        tokio::time::timeout(within, arrivals.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Down: every endpoint answers 503 and open streams are cut.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
        if down {
            self.cut_streams();
        }
    }

    /// Without the stream, `/stream` answers 404 and followers must poll.
    pub fn set_stream_enabled(&self, enabled: bool) {
        self.state.stream_enabled.store(enabled, Ordering::SeqCst);
        if !enabled {
            self.cut_streams();
        }
    }

    pub fn set_feed_token(&self, token: &str) {
        *self.state.feed_token.lock().unwrap() = token.to_owned();
    }

    pub fn cut_streams(&self) {
        self.state.cut_streams.send_modify(|g| *g += 1);
    }

    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    pub fn feed_polls(&self) -> usize {
        self.state.feed_polls.load(Ordering::SeqCst)
    }

    pub fn stream_opens(&self) -> usize {
        self.state.stream_opens.load(Ordering::SeqCst)
    }

    pub fn unauthorized_feed_requests(&self) -> usize {
        self.state.unauthorized_feed_requests.load(Ordering::SeqCst)
    }

    pub fn now(&self) -> i64 {
        self.clock.now().as_secs() as i64
    }

    /// Publishes a revocation on the feed; returns its cursor.
    pub fn revoke(&self, revocation: Revocation, expires_at: i64) -> i64 {
        let mut feed = self.state.feed.lock().unwrap();
        let cursor = self.state.next_cursor.fetch_add(1, Ordering::SeqCst);
        let entry = RevocationEntry { cursor, revocation, expires_at };
        feed.push(entry.clone());
        let _ = self.state.feed_tx.send(entry);
        cursor
    }

    /// The claims of a fresh, valid token.
    pub fn claims(&self) -> Value {
        let now = self.now();
        let jti = self.state.jti.fetch_add(1, Ordering::SeqCst);
        json!({
            "iss": self.issuer,
            "sub": CLIENT_ID,
            "client_id": CLIENT_ID,
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 3600,
            "jti": format!("jti-{jti}"),
            "scope": "eligibility:read",
            "env": "production",
            "org": "acme",
        })
    }

    pub fn header(&self, kid: &str) -> Value {
        let alg = self.key(kid).alg;
        json!({ "alg": alg, "typ": "at+jwt", "kid": kid })
    }

    /// A valid token signed by `kid`.
    pub fn token(&self, kid: &str) -> String {
        self.token_with(kid, |_| {})
    }

    /// A token signed by `kid` whose claims `edit` changed.
    pub fn token_with(&self, kid: &str, edit: impl FnOnce(&mut Value)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        self.sign(&self.header(kid), &claims, kid)
    }

    /// Signs any header and claims with `kid`'s key.
    pub fn sign(&self, header: &Value, claims: &Value, kid: &str) -> String {
        let key = self.key(kid);
        compact(header, claims, |input| key.sign(input))
    }

    /// A verifier for this issuer on its clock, with `edit` applied to the defaults.
    pub async fn verifier(&self, edit: impl FnOnce(VerifierConfig) -> VerifierConfig) -> Verifier {
        let config = edit(VerifierConfig::new(&self.issuer).with_audience(AUDIENCE));
        Verifier::builder(config)
            .clock(Arc::clone(&self.clock) as Arc<dyn Clock>)
            .build()
            .await
            .expect("verifier builds against the test issuer")
    }
}

fn router(state: Arc<IssuerState>) -> Router {
    Router::new()
        .route("/.well-known/oauth-authorization-server", get(metadata))
        .route("/.well-known/openid-configuration", get(metadata))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/admin/v1/revocations", get(poll))
        .route("/admin/v1/revocations/stream", get(stream))
        .route("/oauth/token", post(|| async { StatusCode::NOT_IMPLEMENTED }))
        .with_state(state)
}

fn unavailable() -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, "down").into_response()
}

async fn metadata(State(state): State<Arc<IssuerState>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.metadata_fetches.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let issuer = &state.issuer;
    let metadata = AuthorizationServerMetadata {
        issuer: issuer.clone(),
        token_endpoint: format!("{issuer}/oauth/token"),
        jwks_uri: format!("{issuer}/.well-known/jwks.json"),
        introspection_endpoint: None,
        revocation_endpoint: None,
        grant_types_supported: vec!["client_credentials".into()],
        token_endpoint_auth_methods_supported: vec!["client_secret_post".into()],
        introspection_endpoint_auth_methods_supported: vec![],
        revocation_endpoint_auth_methods_supported: vec![],
        scopes_supported: vec![],
        response_types_supported: vec![],
        token_endpoint_auth_signing_alg_values_supported: vec![],
        introspection_endpoint_auth_signing_alg_values_supported: vec![],
        revocation_endpoint_auth_signing_alg_values_supported: vec![],
        subject_types_supported: vec![],
        id_token_signing_alg_values_supported: vec![],
        revocation_feed_endpoint: Some(format!("{issuer}/admin/v1/revocations")),
        access_token_signing_alg_values_supported: state.advertised_algs.lock().unwrap().clone(),
    };
    Json(metadata).into_response()
}

async fn jwks(State(state): State<Arc<IssuerState>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    state.jwks_arrivals.send_modify(|n| *n += 1);
    let mut held = state.jwks_held.subscribe();
    // The sender lives in the state this handler holds, so the wait cannot fail.
    let _ = held.wait_for(|held| !*held).await;
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    let keys = state.published.lock().unwrap().iter().map(|k| k.jwk()).collect();
    let cache_control = format!("public, max-age={}", state.max_age.load(Ordering::SeqCst));
    let mut response = Json(Jwks { keys }).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_str(&cache_control).unwrap());
    response
}

fn authorized(state: &IssuerState, headers: &HeaderMap) -> bool {
    let expected = format!("Bearer {}", state.feed_token.lock().unwrap());
    let ok =
        headers.get(header::AUTHORIZATION).is_some_and(|v| v.as_bytes() == expected.as_bytes());
    if !ok {
        state.unauthorized_feed_requests.fetch_add(1, Ordering::SeqCst);
    }
    ok
}

#[derive(Deserialize)]
struct FeedQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn poll(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.feed_polls.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    if !authorized(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let after = query.after.unwrap_or(0);
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let entries: Vec<RevocationEntry> = state
        .feed
        .lock()
        .unwrap()
        .iter()
        .filter(|e| e.cursor > after)
        .take(limit)
        .cloned()
        .collect();
    let next_cursor = entries.last().map_or(after, |e| e.cursor);
    Json(RevocationPage { entries, next_cursor }).into_response()
}

fn frame(entry: &RevocationEntry) -> String {
    format!(
        "id: {}\nevent: {SSE_EVENT}\ndata: {}\n\n",
        entry.cursor,
        serde_json::to_string(entry).unwrap()
    )
}

async fn stream(
    State(state): State<Arc<IssuerState>>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    if state.down.load(Ordering::SeqCst) {
        return unavailable();
    }
    if !state.stream_enabled.load(Ordering::SeqCst) {
        return StatusCode::NOT_FOUND.into_response();
    }
    if !authorized(&state, &headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    state.stream_opens.fetch_add(1, Ordering::SeqCst);
    let after = query.after.or_else(|| {
        headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok())
    });
    let after = after.unwrap_or(0);
    // Subscribe before reading the backlog so nothing published in between is missed.
    let live = state.feed_tx.subscribe();
    let backlog: VecDeque<RevocationEntry> =
        state.feed.lock().unwrap().iter().filter(|e| e.cursor > after).cloned().collect();
    let mut cut = state.cut_streams.subscribe();
    cut.mark_unchanged();
    let keepalive = tokio::time::interval(state.keepalive);
    let start = (backlog, live, after, cut, keepalive);
    let body = futures_util::stream::unfold(
        start,
        |(mut backlog, mut live, mut last, mut cut, mut keepalive)| async move {
            if let Some(entry) = backlog.pop_front() {
                last = entry.cursor;
                return Some((
                    Ok::<_, std::convert::Infallible>(frame(&entry)),
                    (backlog, live, last, cut, keepalive),
                ));
            }
            loop {
                tokio::select! {
                    _ = cut.changed() => return None,
                    received = live.recv() => match received {
                        Ok(entry) if entry.cursor > last => {
                            last = entry.cursor;
                            return Some((Ok(frame(&entry)), (backlog, live, last, cut, keepalive)));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    },
                    _ = keepalive.tick() => {
                        return Some((Ok(": keep-alive\n\n".to_owned()), (backlog, live, last, cut, keepalive)));
                    }
                }
            }
        },
    );
    let mut response = Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A protected API over `verifier`: `GET /eligibility` needs `eligibility:read`,
/// `POST /eligibility` needs `eligibility:write`, `GET /whoami` any valid token.
pub fn protected_app(verifier: Verifier) -> Router {
    async fn whoami(token: VerifiedToken) -> Json<Value> {
        Json(json!({ "client_id": token.client_id, "org": token.org, "kid": token.kid() }))
    }
    Router::new()
        .route(
            "/eligibility",
            get(whoami)
                .post(whoami)
                .route_layer(RequireScope::read_write("eligibility:read", "eligibility:write")),
        )
        .route("/whoami", get(whoami))
        .layer(VerifyLayer::new(verifier))
}

/// What a protected app answered.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn www_authenticate(&self) -> Option<&str> {
        self.headers.get(header::WWW_AUTHENTICATE).and_then(|v| v.to_str().ok())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok())
    }
}

/// Sends one request to `app`, with `authorization` as the header value when given.
pub async fn call(app: &Router, method: &str, path: &str, authorization: Option<&str>) -> Answer {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder().method(method).uri(path);
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
    Answer { status, headers, body }
}

pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// Checks `condition` until it holds or `within` passes; returns whether it held.
///
/// For conditions no event announces (a counter another task bumps, a background task ending):
/// between checks it yields to the runtime, so the tasks it waits for run, and it never sleeps.
/// Waits that have an event (a watch, a notify) use the event instead.
pub async fn eventually(within: Duration, mut condition: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::task::yield_now().await;
    }
}

pub fn token_revocation(jti: &str) -> Revocation {
    Revocation::Token { jti: jti.to_owned() }
}
