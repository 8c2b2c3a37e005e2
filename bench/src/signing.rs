//! The signing limit: how many signatures one thread makes per second with the code the server
//! signs with (`tokenmint_core::keys::SigningKey`, aws-lc-rs underneath), over the signing input
//! of a token the server would issue. It is the ceiling of the token endpoint on one core.

use anyhow::{Result, anyhow};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tokenmint_core::jwt::{AudienceRef, ClaimsRef};
use tokenmint_core::keys::{GeneratedKey, SigningAlgorithm, SigningKey};
use tokenmint_proto::Environment;

pub fn limit(alg: &str, run_for: Duration) -> Result<f64> {
    let alg: SigningAlgorithm = alg.parse().map_err(|e| anyhow!("{e}"))?;
    let generated = GeneratedKey::generate(alg).map_err(|e| anyhow!("{e}"))?;
    let key = SigningKey::from_pkcs8(&generated.kid, alg, &generated.pkcs8)
        .map_err(|e| anyhow!("{e}"))?;
    let claims = ClaimsRef {
        iss: "http://127.0.0.1:8080",
        sub: "tmc_0123456789abcdefghijklmn",
        client_id: "tmc_0123456789abcdefghijklmn",
        aud: AudienceRef::One("http://127.0.0.1:8080"),
        iat: 1_800_000_000,
        exp: 1_800_003_600,
        jti: "0123456789abcdefghijkl",
        scope: "eligibility:read",
        env: Environment::Production,
        org: "bench",
        extra: "",
    };
    let token = tokenmint_core::jwt::encode(&key, &claims).map_err(|e| anyhow!("{e}"))?;
    let signing_input = &token[..token.rfind('.').unwrap_or(token.len())];
    let mut out = String::with_capacity(700);
    // Warm caches and the CPU's frequency before counting.
    let warm_until = Instant::now() + Duration::from_millis(300);
    while Instant::now() < warm_until {
        out.clear();
        key.sign_into(signing_input.as_bytes(), &mut out).map_err(|e| anyhow!("{e}"))?;
    }
    let start = Instant::now();
    let mut count: u64 = 0;
    loop {
        // Check the clock every 16 signatures: reading it costs next to nothing against one.
        for _ in 0..16 {
            out.clear();
            key.sign_into(black_box(signing_input.as_bytes()), &mut out)
                .map_err(|e| anyhow!("{e}"))?;
            black_box(&out);
        }
        count += 16;
        let elapsed = start.elapsed();
        if elapsed >= run_for {
            return Ok(count as f64 / elapsed.as_secs_f64());
        }
    }
}
