//! `private_key_jwt` client authentication (RFC 7523 §2.2) through the real server over HTTP:
//! a credential registers public keys (PEM, JWK or JWK Set; RSA, EC P-256/P-384, Ed25519), may
//! have no secret, and gets tokens with assertions signed by those keys. Every way an assertion
//! can be wrong is refused with `invalid_client` and a description of what to fix, never the
//! assertion itself; a `jti` is used once, also across two instances sharing PostgreSQL, and
//! through Redis.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::{TestApp, instances, spawn_app};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use tokenmint_core::MasterKey;
use tokenmint_server::app::FirstStart;
use tokenmint_server::{Clock, ManualClock};
use tokenmint_store::testing::{TestDatabase, services_required};

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A key pair made for a test: its private PEM (PKCS #8) and public PEM (SPKI).
struct Keys {
    private_pem: String,
    public_pem: String,
    alg: Algorithm,
}

impl Keys {
    fn new(kind: &str) -> Keys {
        let (alg, pair) = match kind {
            "RS256" | "PS256" => (
                if kind == "RS256" { Algorithm::RS256 } else { Algorithm::PS256 },
                rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                    .unwrap(),
            ),
            "ES256" => (
                Algorithm::ES256,
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap(),
            ),
            "ES384" => (
                Algorithm::ES384,
                rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).unwrap(),
            ),
            "EdDSA" => {
                (Algorithm::EdDSA, rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap())
            }
            other => panic!("no key kind {other}"),
        };
        Keys { private_pem: pair.serialize_pem(), public_pem: pair.public_key_pem(), alg }
    }

    fn encoding_key(&self) -> EncodingKey {
        let pem = self.private_pem.as_bytes();
        match self.alg {
            Algorithm::RS256 | Algorithm::PS256 => EncodingKey::from_rsa_pem(pem).unwrap(),
            Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(pem).unwrap(),
            _ => EncodingKey::from_ed_pem(pem).unwrap(),
        }
    }

    /// The public key as a JWK with `kid`, through tokenmint's own reading of the PEM.
    fn jwk(&self, kid: &str) -> String {
        let key = &tokenmint_core::assertion::parse_public_keys(&self.public_pem).unwrap()[0];
        let mut jwk = key.to_jwk();
        jwk["kid"] = json!(kid);
        jwk.to_string()
    }

    fn sign(&self, kid: Option<&str>, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, claims, &self.encoding_key()).unwrap()
    }
}

fn claims(client_id: &str, aud: &str, now: i64) -> Value {
    json!({
        "iss": client_id, "sub": client_id, "aud": aud,
        "iat": now, "exp": now + 60,
        "jti": tokenmint_core::ids::random_id("jti_", 20),
    })
}

async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.admin(Method::POST, "/credentials", Some(body)).await;
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    res.json().await.unwrap()
}

fn with_keys(keys: &[String], no_secret: bool) -> Value {
    json!({
        "name": "keyed partner", "org": "acme", "environment": "sandbox",
        "permissions": ["eligibility:read"], "public_keys": keys, "no_secret": no_secret,
    })
}

async fn assert_post(app: &TestApp, pairs: &[(&str, &str)]) -> (u16, Value) {
    let res = app.form("/oauth/token", pairs).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap())
}

/// Sends an assertion, with `client_id` only when given.
async fn with_assertion(app: &TestApp, client_id: Option<&str>, jwt: &str) -> (u16, Value) {
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_assertion_type", JWT_BEARER),
        ("client_assertion", jwt),
    ];
    if let Some(id) = client_id {
        pairs.push(("client_id", id));
    }
    assert_post(app, &pairs).await
}

#[tokio::test]
async fn a_credential_without_a_secret_gets_tokens_with_assertions_of_each_key_type() {
    let app = spawn_app().await;
    let token_url = app.url("/oauth/token");
    for kind in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
        let keys = Keys::new(kind);
        // PEM for some, a JWK for the others, a JWK Set for one.
        let upload = match kind {
            "RS256" | "ES256" => keys.public_pem.clone(),
            "ES384" => format!(r#"{{"keys":[{}]}}"#, keys.jwk("k-384")),
            _ => keys.jwk("k1"),
        };
        let created = create(&app, with_keys(&[upload], true)).await;
        let id = created["client_id"].as_str().unwrap();
        assert!(created.get("client_secret").is_none(), "{kind}: {created}");
        assert_eq!(created["credential"]["public_keys"].as_array().unwrap().len(), 1);
        assert_eq!(created["credential"]["secrets"], json!([]));
        let now = app.clock.now();
        // The token endpoint URL as audience, client_id taken from the assertion.
        let (status, body) =
            with_assertion(&app, None, &keys.sign(None, &claims(id, &token_url, now))).await;
        assert_eq!(status, 200, "{kind}: {body}");
        assert_eq!(common::claims(body["access_token"].as_str().unwrap())["sub"], id);
        // The issuer as audience, with client_id given; another path of the endpoint too.
        let (status, body) =
            with_assertion(&app, Some(id), &keys.sign(None, &claims(id, &app.base, now))).await;
        assert_eq!(status, 200, "{kind}: {body}");
        let alias = app.url("/connect/token");
        let (status, body) =
            with_assertion(&app, Some(id), &keys.sign(None, &claims(id, &alias, now))).await;
        assert_eq!(status, 200, "{kind} via an alias's URL: {body}");
    }
}

/// One keyed credential without a secret, and what a refusal looks like.
struct Refusals {
    app: TestApp,
    id: String,
    keys: Keys,
    aud: String,
}

impl Refusals {
    async fn new() -> Refusals {
        // Room for every refusal below before the brute-force protection would step in.
        let app = common::spawn_with(common::Options {
            tweak: |c| {
                c.brute_force.failures_per_ip = 1000;
                c.brute_force.failures_per_client = 1000;
            },
            ..Default::default()
        })
        .await;
        let keys = Keys::new("ES256");
        let created = create(&app, with_keys(&[keys.jwk("k1")], true)).await;
        let aud = app.url("/oauth/token");
        Refusals { id: created["client_id"].as_str().unwrap().to_owned(), app, keys, aud }
    }

    fn claims(&self) -> Value {
        claims(&self.id, &self.aud, self.app.clock.now())
    }

    /// Expects `invalid_client` (401) whose description contains `says`, and never the assertion.
    async fn refused(&self, jwt: &str, says: &str) {
        let (status, body) = with_assertion(&self.app, Some(&self.id), jwt).await;
        assert_eq!(status, 401, "{says}: {body}");
        assert_eq!(body["error"], "invalid_client", "{body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(says), "wanted {says:?} in {description:?}");
        for part in jwt.split('.').filter(|p| p.len() > 8) {
            assert!(!description.contains(part), "the assertion is echoed: {description}");
        }
    }
}

#[tokio::test]
async fn every_wrong_assertion_is_refused_with_invalid_client_and_what_to_fix() {
    let r = Refusals::new().await;
    let now = r.app.clock.now();

    // A replayed jti.
    let once = r.keys.sign(Some("k1"), &r.claims());
    assert_eq!(with_assertion(&r.app, Some(&r.id), &once).await.0, 200);
    r.refused(&once, "jti was used before").await;

    // Wrong audience.
    let mut c = r.claims();
    c["aud"] = json!("https://elsewhere.example/oauth/token");
    r.refused(&r.keys.sign(Some("k1"), &c), "aud").await;

    // Wrong iss or sub.
    let mut c = r.claims();
    c["iss"] = json!("tmc_someoneelse000000000000");
    r.refused(&r.keys.sign(Some("k1"), &c), "iss and sub").await;
    let mut c = r.claims();
    c["sub"] = json!("tmc_someoneelse000000000000");
    r.refused(&r.keys.sign(Some("k1"), &c), "iss and sub").await;

    // Expired.
    let mut c = r.claims();
    c["iat"] = json!(now - 600);
    c["exp"] = json!(now - 400);
    r.refused(&r.keys.sign(Some("k1"), &c), "expired").await;

    // Too long: exp more than 5 minutes ahead.
    let mut c = r.claims();
    c["exp"] = json!(now + 3600);
    r.refused(&r.keys.sign(Some("k1"), &c), "5 minutes").await;

    // No jti.
    let mut c = r.claims();
    c.as_object_mut().unwrap().remove("jti");
    r.refused(&r.keys.sign(Some("k1"), &c), "no jti").await;

    // alg none.
    let unsigned = format!(
        "{}.{}.",
        B64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        B64.encode(r.claims().to_string())
    );
    r.refused(&unsigned, "alg none").await;

    // HS256 keyed with the public key's bytes (key confusion), and with anything else.
    for secret in [r.keys.public_pem.as_bytes(), r.keys.jwk("k1").as_bytes(), b"any bytes"] {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let forged = encode(&header, &r.claims(), &EncodingKey::from_secret(secret)).unwrap();
        r.refused(&forged, "HMAC").await;
    }

    // An unknown kid, and a key registered on another credential: the answer an unknown
    // client_id gets (see the next test).
    const UNKNOWN: &str = "Client authentication failed";
    r.refused(&r.keys.sign(Some("k-unknown"), &r.claims()), UNKNOWN).await;
    let other_keys = Keys::new("ES256");
    create(&r.app, with_keys(&[other_keys.jwk("k1")], true)).await;
    r.refused(&other_keys.sign(Some("k1"), &r.claims()), UNKNOWN).await;
    r.refused(&other_keys.sign(None, &r.claims()), UNKNOWN).await;

    // An assertion together with a secret: invalid_request.
    let jwt = r.keys.sign(Some("k1"), &r.claims());
    let (status, body) = assert_post(
        &r.app,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &r.id),
            ("client_secret", "tms_anything"),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", &jwt),
        ],
    )
    .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (400, "invalid_request"), "{body}");

    // A secret on a credential without one.
    let (status, body) = assert_post(
        &r.app,
        &[("grant_type", "client_credentials"), ("client_id", &r.id), ("client_secret", "x")],
    )
    .await;
    assert_eq!((status, body["error"].as_str().unwrap()), (401, "invalid_client"), "{body}");

    // After all that, a good assertion still works.
    let (status, body) = with_assertion(&r.app, None, &r.keys.sign(Some("k1"), &r.claims())).await;
    assert_eq!(status, 200, "{body}");
}

/// Without the private key, nothing an assertion gets back tells which client_ids exist,
/// whether they have keys, or which kids they have: every refusal before the signature
/// verifies is the same for a client with keys, one without, and an id that does not exist.
#[tokio::test]
async fn a_refused_assertion_tells_nothing_about_which_clients_or_keys_exist() {
    let r = Refusals::new().await;
    let secret_only = r.app.sandbox_reader().await.0;
    let unknown = "tmc_NeverSeenBefore000000000".to_owned();
    let stranger = Keys::new("ES256");
    let rsa_stranger = Keys::new("RS256");
    let now = r.app.clock.now();
    let mut answers: Vec<Vec<(u16, Value)>> = Vec::new();
    for id in [&r.id, &secret_only, &unknown] {
        let claims = claims(id, &r.aud, now);
        let mut seen = Vec::new();
        for jwt in [
            stranger.sign(Some("k1"), &claims),
            stranger.sign(Some("k-unknown"), &claims),
            stranger.sign(None, &claims),
            rsa_stranger.sign(Some("k1"), &claims),
            rsa_stranger.sign(None, &claims),
            "not.a.jwt".to_owned(),
        ] {
            let (status, mut body) = with_assertion(&r.app, Some(id), &jwt).await;
            body.as_object_mut().unwrap().remove("request_id");
            seen.push((status, body));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0], answers[1], "a client with keys and one without");
    assert_eq!(answers[0], answers[2], "a client with keys and an unknown client_id");
    assert!(answers[0].iter().all(|(status, _)| *status == 401));
}

#[tokio::test]
async fn a_credential_with_keys_and_a_secret_accepts_both_and_keys_are_shown_and_removed() {
    let app = spawn_app().await;
    let keys = Keys::new("EdDSA");
    let created = create(&app, with_keys(&[keys.jwk("k1")], false)).await;
    let id = created["client_id"].as_str().unwrap();
    let secret = created["client_secret"].as_str().unwrap();
    assert_eq!(app.token_for(id, secret, &[]).await.status(), 200);
    let aud = app.url("/oauth/token");
    let (status, _) =
        with_assertion(&app, Some(id), &keys.sign(None, &claims(id, &aud, app.clock.now()))).await;
    assert_eq!(status, 200);

    // Shown: kid, type and thumbprint; never more.
    let shown: Value =
        app.admin(Method::GET, &format!("/credentials/{id}"), None).await.json().await.unwrap();
    let key = &shown["public_keys"][0];
    assert_eq!(key["kid"], "k1");
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["thumbprint"].as_str().unwrap().len(), 43);
    assert!(key.get("x").is_none());

    // A private key is refused at upload.
    let res = app
        .admin(
            Method::POST,
            &format!("/credentials/{id}/public-keys"),
            Some(json!({"keys": [keys.private_pem]})),
        )
        .await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("private key"));
    // The same key twice is refused too.
    let res = app
        .admin(
            Method::POST,
            &format!("/credentials/{id}/public-keys"),
            Some(json!({"keys": [keys.jwk("k2")]})),
        )
        .await;
    assert_eq!(res.status(), 422);

    // Removed by kid: its assertions are refused from then on.
    let res = app.admin(Method::DELETE, &format!("/credentials/{id}/public-keys/k1"), None).await;
    assert_eq!(res.status(), 204);
    let (status, body) =
        with_assertion(&app, Some(id), &keys.sign(None, &claims(id, &aud, app.clock.now()))).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error_description"], "Client authentication failed", "{body}");

    // A credential created without a secret cannot lose its last key, nor be made without one.
    let lone = create(&app, with_keys(&[keys.jwk("k1")], true)).await;
    let lone = lone["client_id"].as_str().unwrap();
    let res = app.admin(Method::DELETE, &format!("/credentials/{lone}/public-keys/k1"), None).await;
    assert_eq!(res.status(), 409);
    let res = app.admin(Method::POST, "/credentials", Some(with_keys(&[], true))).await;
    assert_eq!(res.status(), 422);
}

#[tokio::test]
async fn discovery_advertises_private_key_jwt_and_its_algorithms() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"] {
        let meta: Value = app.http.get(app.url(path)).send().await.unwrap().json().await.unwrap();
        let methods = meta["token_endpoint_auth_methods_supported"].as_array().unwrap();
        assert!(methods.contains(&json!("private_key_jwt")), "{meta}");
        let algs = meta["token_endpoint_auth_signing_alg_values_supported"].as_array().unwrap();
        for alg in ["RS256", "PS256", "ES256", "ES384", "EdDSA"] {
            assert!(algs.contains(&json!(alg)), "{alg}: {meta}");
        }
        assert!(!algs.iter().any(|a| a == "none" || a.as_str().unwrap().starts_with("HS")));
        // RFC 8414 §2: each endpoint that takes assertions lists their algorithms.
        for endpoint in ["introspection", "revocation"] {
            let methods = &meta[format!("{endpoint}_endpoint_auth_methods_supported")];
            assert!(methods.as_array().unwrap().contains(&json!("private_key_jwt")));
            assert_eq!(
                meta[format!("{endpoint}_endpoint_auth_signing_alg_values_supported")],
                json!(algs)
            );
        }
    }
}

#[tokio::test]
async fn failed_assertions_are_audited_and_count_toward_blocking_the_source() {
    let app = common::spawn_with(common::Options {
        tweak: |c| c.brute_force.failures_per_client = 3,
        ..Default::default()
    })
    .await;
    let keys = Keys::new("ES256");
    let created = create(&app, with_keys(&[keys.jwk("k1")], true)).await;
    let id = created["client_id"].as_str().unwrap();
    let mut c = claims(id, "https://wrong.example", app.clock.now());
    // Three failures are allowed per client_id; the fourth crosses the threshold.
    for _ in 0..4 {
        c["jti"] = json!(tokenmint_core::ids::random_id("jti_", 20));
        assert_eq!(with_assertion(&app, Some(id), &keys.sign(None, &c)).await.0, 401);
    }
    // The source is blocked now, even with a good assertion.
    let good = keys.sign(None, &claims(id, &app.url("/oauth/token"), app.clock.now()));
    assert_eq!(with_assertion(&app, Some(id), &good).await.0, 429);
}

// --- Two instances over one PostgreSQL, and Redis -----------------------------------------

/// An assertion used on one instance is refused on the other, and vice versa.
async fn replay_across(redis: Option<&str>) {
    let Some(db) = TestDatabase::create().await else { return };
    let key = MasterKey::generate();
    let clock = Arc::new(ManualClock::new(common::real_now()));
    // One Redis key prefix for both, as instances of one deployment share it.
    let prefix = format!("tokenmint-test:{}:", tokenmint_core::ids::random_id("", 10));
    let shared = |c: &mut tokenmint_server::Config| {
        c.redis_url = redis.map(|r| format!("redis://{r}/0"));
        c.redis_prefix = prefix.clone();
    };
    let (a, first) = instances::start(db.url(), &key, clock.clone(), shared).await;
    let Some(FirstStart::Initialized(admin)) = first else { panic!("first start") };
    let (b, _) = instances::start(db.url(), &key, clock.clone(), shared).await;
    let http = reqwest::Client::new();
    let token_at = |base: &str, pairs: Vec<(&'static str, String)>| {
        http.post(format!("{base}/oauth/token")).form(&pairs).send()
    };
    let admin_token: Value = token_at(
        &a.base,
        vec![
            ("grant_type", "client_credentials".into()),
            ("client_id", admin.client_id.clone()),
            ("client_secret", admin.client_secret.clone()),
        ],
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let keys = Keys::new("EdDSA");
    let created: Value = http
        .post(format!("{}/admin/v1/credentials", a.base))
        .bearer_auth(admin_token["access_token"].as_str().unwrap())
        .json(&with_keys(&[keys.jwk("k1")], true))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["client_id"].as_str().unwrap().to_owned();
    let send = |base: String, jwt: String| {
        let pairs = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_assertion_type", JWT_BEARER.to_owned()),
            ("client_assertion", jwt),
        ];
        let http = http.clone();
        async move {
            http.post(format!("{base}/oauth/token")).form(&pairs).send().await.unwrap().status()
        }
    };
    for (first, second) in [(&a, &b), (&b, &a)] {
        let jwt = keys.sign(None, &claims(&id, instances::ISSUER, clock.now()));
        // The second instance may not have read the new credential from the change log yet:
        // it finds it in the store on its own.
        assert_eq!(send(first.base.clone(), jwt.clone()).await, 200);
        assert_eq!(send(second.base.clone(), jwt.clone()).await, 401, "replayed on the other");
        assert_eq!(send(first.base.clone(), jwt).await, 401, "replayed on the same");
    }
    // Sent to both at once: exactly one wins.
    let jwt = keys.sign(None, &claims(&id, instances::ISSUER, clock.now()));
    let (x, y) = tokio::join!(send(a.base.clone(), jwt.clone()), send(b.base.clone(), jwt));
    let mut got = [x.as_u16(), y.as_u16()];
    got.sort_unstable();
    assert_eq!(got, [200, 401]);
    for mut i in [a, b] {
        i.stop().await;
    }
    db.drop_now().await;
}

#[tokio::test]
async fn an_assertion_is_used_once_across_two_instances_sharing_postgresql() {
    replay_across(None).await;
}

#[tokio::test]
async fn an_assertion_is_used_once_across_two_instances_sharing_redis() {
    if instances::redis_available().await {
        replay_across(Some(&instances::redis_target())).await;
    }
}

// --- Interoperability ---------------------------------------------------------------------

/// Python authlib's `PrivateKeyJWT` client authentication gets a token, with an RSA and an EC
/// key registered as PEM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_private_key_jwt_gets_a_token() {
    let app = spawn_app().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authlib/private_key_jwt.sh");
    for kind in ["RS256", "ES256"] {
        let keys = Keys::new(kind);
        let created = create(&app, with_keys(std::slice::from_ref(&keys.public_pem), true)).await;
        let id = created["client_id"].as_str().unwrap().to_owned();
        let key_file = app.dir.path().join(format!("{kind}.pem"));
        std::fs::write(&key_file, &keys.private_pem).unwrap();
        let (script, url) = (script.clone(), app.url("/oauth/token"));
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new("bash")
                .arg(&script)
                .args([url.as_str(), id.as_str(), key_file.to_str().unwrap(), kind])
                .output()
        })
        .await
        .unwrap();
        let out = match out {
            Ok(out) => out,
            Err(e) => {
                eprintln!("SKIPPED authlib interop: cannot run bash: {e}");
                return;
            }
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() == Some(3) {
            assert!(!services_required(), "authlib cannot be installed: {stderr}");
            eprintln!("SKIPPED authlib interop: authlib cannot be installed: {stderr}");
            return;
        }
        assert!(out.status.success(), "{kind}: authlib got no token: {stderr}");
        let token = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        assert_eq!(
            common::claims(&token)["sub"],
            created["client_id"],
            "{kind}: a token for the client"
        );
    }
}
