//! Access-token verification in `tokenmint-verify`, through [`OfflineVerifier`]: the same
//! header, signature and claims code as the networked `Verifier`, with fixed keys and no I/O.
//!
//! Two modes, chosen by the input:
//! - anything else is a bearer string verified as it is. Its signature cannot be right (the
//!   fuzzer holds no private key), so this explores splitting, size limits, base64, the JOSE
//!   header, `alg`/`kid` handling and the signature decoding of each key type; acceptance would
//!   be a forgery and fails the target.
//! - `sign:HEADER\nPAYLOAD` signs `base64url(HEADER).base64url(PAYLOAD)` with the fixed Ed25519
//!   key before verifying, so that arbitrary headers and claims reach the code that only runs
//!   after a valid signature. Acceptance must then mean the issuer, audience and times passed.
//!
//! [`OfflineVerifier`]: tokenmint_verify::OfflineVerifier

#![no_main]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use libfuzzer_sys::fuzz_target;
use std::sync::LazyLock;
use tokenmint_proto::jwks::{Jwk, Jwks};
use tokenmint_verify::{OfflineVerifier, VerifierConfig};

const ISSUER: &str = "https://auth.example.com";
const AUDIENCE: &str = "https://api.example.com";
/// The verification time: 2023-11-14T22:13:20Z.
const NOW: i64 = 1_700_000_000;
/// Public part of a throwaway 2048-bit RSA key (its private part was never kept).
const RSA_N: &str = "1VvjPeArAZPGZkMkpiKv_nPd4I4zrQHWW2Tk6SKCDvI00RHaEvF6CI94jVZE-rSWHE0nfvnqjE8J5e29_lmKhdV_nGIPqj-RuUmgVTqf8xKIxtgDqNN0iwJpO1kfmIrsOMiAgwR6rdJrDW_jRGo0Q_Lp0JF_-HJpEGDvoLyGxknVzOLkBSr5no_O-X9wDLYLJUnrrvZoAGERyZ0BIDyVHFqZn8DAS_JkUSqIolajgpeWoxQe4E1Shg9jUZCzotnuUblynYug-7A3gW6tlMNuh3OVupRJWUH4F7Tm7uHB_0b-Pr7gTJ8-1LIvtorlmhEOdpN2QDiBRWm1-WqUFzKsgw";

struct Fixture {
    signer: Ed25519KeyPair,
    verifier: OfflineVerifier,
}

fn jwk(kty: &str, kid: &str, alg: &str) -> Jwk {
    Jwk {
        kty: kty.into(),
        kid: Some(kid.into()),
        alg: Some(alg.into()),
        use_: Some("sig".into()),
        n: None,
        e: None,
        crv: None,
        x: None,
        y: None,
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let signer = match Ed25519KeyPair::from_seed_unchecked(&[7; 32]) {
        Ok(pair) => pair,
        Err(_) => panic!("a 32-byte seed is a valid Ed25519 key"),
    };
    let mut ed = jwk("OKP", "ed", "EdDSA");
    ed.crv = Some("Ed25519".into());
    ed.x = Some(URL_SAFE_NO_PAD.encode(signer.public_key().as_ref()));
    let mut rsa = jwk("RSA", "rsa", "RS256");
    rsa.n = Some(RSA_N.into());
    rsa.e = Some("AQAB".into());
    // The same modulus declared for PS256: one kid per algorithm family member.
    let mut ps = rsa.clone();
    ps.kid = Some("ps".into());
    ps.alg = Some("PS256".into());
    let jwks = Jwks { keys: vec![ed, rsa, ps] };
    let config = VerifierConfig::new(ISSUER).with_audience(AUDIENCE);
    let verifier = OfflineVerifier::new(config, &jwks);
    assert_eq!(verifier.kids(), ["ed", "ps", "rsa"]);
    Fixture { signer, verifier }
});

fuzz_target!(|data: &[u8]| {
    let fixture = &*FIXTURE;
    if let Some(rest) = data.strip_prefix(b"sign:") {
        let (header, payload) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let input = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(payload));
        let signature = fixture.signer.sign(input.as_bytes());
        let token = format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()));
        if let Ok(verified) = fixture.verifier.verify(&token, NOW) {
            assert_eq!(verified.kid(), "ed");
            assert_eq!(verified.iss, ISSUER);
            assert!(verified.aud.contains(AUDIENCE));
            assert!(NOW < verified.exp.saturating_add(60), "an expired token was accepted");
            assert!(verified.iat <= NOW + 60, "a token issued in the future was accepted");
        }
        return;
    }
    let Ok(token) = std::str::from_utf8(data) else { return };
    if let Ok(verified) = fixture.verifier.verify(token, NOW) {
        panic!("a token nobody signed was accepted: {verified:?}");
    }
});
