//! The functions every token request or verification runs, one by one: parsing the request
//! (form, JSON, HTTP Basic), checking the secret, deciding the grant, writing the claims,
//! signing, and verifying a token. `bench/run.sh` measures the whole server; this says where
//! inside it the time goes.
//!
//! `cargo bench -p tokenmint-core --bench hot_functions`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use tokenmint_core::MasterKey;
use tokenmint_core::credential::{Credential, CredentialStatus, StoredSecret};
use tokenmint_core::ids::ClientId;
use tokenmint_core::jwt::{AudienceRef, ClaimsRef};
use tokenmint_core::keys::{GeneratedKey, SigningAlgorithm, SigningKey};
use tokenmint_core::request::{BodyFormat, EndpointParams, parse_basic, token_request};
use tokenmint_core::scope::{Permissions, ProductAreas};
use tokenmint_core::secret::{ClientSecret, SecretHasher};
use tokenmint_proto::Environment;

const CLIENT_ID: &str = "tmc_0123456789abcdefghijklmn";

fn parsing(c: &mut Criterion) {
    let secret = ClientSecret::generate();
    let form = format!(
        "grant_type=client_credentials&client_id={CLIENT_ID}&client_secret={}&scope=eligibility%3Aread",
        secret.expose()
    );
    let json = format!(
        r#"{{"grant_type":"client_credentials","client_id":"{CLIENT_ID}","client_secret":"{}","audience":"https://api.example.com"}}"#,
        secret.expose()
    );
    let basic = {
        use base64::Engine;
        let raw = format!("{CLIENT_ID}:{}", secret.expose());
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    };
    let mut group = c.benchmark_group("parse");
    group.bench_function("form body", |b| {
        b.iter(|| {
            let params = EndpointParams::from_form(black_box(form.as_bytes())).unwrap();
            token_request(params, None, BodyFormat::Form, false).unwrap()
        })
    });
    group.bench_function("json body", |b| {
        b.iter(|| {
            let params = EndpointParams::from_json(black_box(json.as_bytes())).unwrap();
            token_request(params, None, BodyFormat::Json, false).unwrap()
        })
    });
    group.bench_function("basic header", |b| {
        b.iter(|| parse_basic(black_box(basic.as_bytes())).unwrap().unwrap())
    });
    group.finish();
}

fn credential(hasher: &SecretHasher, secret: &ClientSecret) -> Credential {
    let areas = ProductAreas::parse(&["eligibility", "billing"]).unwrap();
    Credential {
        client_id: ClientId::parse(CLIENT_ID).unwrap(),
        name: "HR sync".into(),
        org: "acme".into(),
        environment: Environment::Production,
        permissions: Permissions::parse(&["eligibility:write", "billing:read"], &areas, false)
            .unwrap(),
        audiences: vec!["https://api.example.com".into()],
        token_lifetime_secs: 3600,
        rate_limit_per_minute: None,
        status: CredentialStatus::Active,
        expires_at: None,
        created_at: 0,
        updated_at: 0,
        last_used_at: None,
        tokens_revoked_before: None,
        secrets: vec![StoredSecret {
            id: "sec_1".into(),
            hash: hasher.hash(secret),
            hint: "tms_abcd…".into(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
        }],
        claims: tokenmint_core::CustomClaims::default(),
        org_claims: tokenmint_core::CustomClaims::default(),
        public_keys: Vec::new(),
        revision: 1,
    }
}

fn authentication_and_grant(c: &mut Criterion) {
    let hasher = SecretHasher::new(&MasterKey::generate());
    let secret = ClientSecret::generate();
    let credential = credential(&hasher, &secret);
    let all_scopes = credential.permissions.scopes().join(" ");
    let mut group = c.benchmark_group("authenticate");
    group.bench_function("secret hash and check", |b| {
        b.iter(|| {
            let presented = hasher.hash(black_box(&secret));
            credential.authenticate(&presented, 1_800_000_000).unwrap();
        })
    });
    group.bench_function("grant, default scope", |b| {
        b.iter(|| {
            tokenmint_core::grant::decide(
                &credential,
                None,
                &[],
                "https://auth.example.com",
                &all_scopes,
                86_400,
                1_800_000_000,
            )
            .unwrap()
        })
    });
    let requested = ["https://api.example.com".to_owned()];
    group.bench_function("grant, requested scope and audience", |b| {
        b.iter(|| {
            tokenmint_core::grant::decide(
                &credential,
                Some(black_box("eligibility:read billing:read")),
                black_box(&requested),
                "https://auth.example.com",
                &all_scopes,
                86_400,
                1_800_000_000,
            )
            .unwrap()
        })
    });
    group.finish();
}

fn claims() -> ClaimsRef<'static> {
    ClaimsRef {
        iss: "https://auth.example.com",
        sub: CLIENT_ID,
        client_id: CLIENT_ID,
        aud: AudienceRef::One("https://api.example.com"),
        iat: 1_800_000_000,
        exp: 1_800_003_600,
        jti: "0123456789abcdefghijkl",
        scope: "eligibility:read eligibility:write billing:read",
        env: Environment::Production,
        org: "acme",
        extra: "",
    }
}

fn tokens(c: &mut Criterion) {
    let claims = claims();
    let mut group = c.benchmark_group("token");
    group.bench_function("claims to JSON", |b| {
        b.iter(|| serde_json::to_vec(black_box(&claims)).unwrap())
    });
    for alg in SigningAlgorithm::ALL {
        let generated = GeneratedKey::generate(alg).unwrap();
        let key = SigningKey::from_pkcs8(&generated.kid, alg, &generated.pkcs8).unwrap();
        let token = tokenmint_core::jwt::encode(&key, &claims).unwrap();
        let signing_input = &token[..token.rfind('.').unwrap()];
        let mut signature = String::with_capacity(400);
        group.bench_function(format!("{alg}/sign"), |b| {
            b.iter(|| {
                signature.clear();
                key.sign_into(black_box(signing_input.as_bytes()), &mut signature).unwrap();
            })
        });
        group.bench_function(format!("{alg}/encode (claims + sign)"), |b| {
            b.iter(|| tokenmint_core::jwt::encode(&key, black_box(&claims)).unwrap())
        });
        let public = [key.public_key()];
        group.bench_function(format!("{alg}/decode and verify"), |b| {
            b.iter(|| tokenmint_core::jwt::decode(black_box(&token), &public).unwrap())
        });
    }
    group.finish();
}

criterion_group!(benches, parsing, authentication_and_grant, tokens);
criterion_main!(benches);
