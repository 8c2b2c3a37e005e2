//! Verification against a JWKS the caller already holds, with no network and no background
//! task.
//!
//! [`Verifier`](crate::Verifier) is what a resource server runs: it discovers the issuer, keeps
//! the JWKS fresh and follows revocations. Some callers have none of that and need none of it:
//! a batch job checking tokens against a key set pinned in its configuration, an air-gapped
//! service, a test, or a fuzz harness that must drive the real verification code with fixed
//! keys. [`OfflineVerifier`] runs exactly the same header, signature and claims checks as
//! [`Verifier`](crate::Verifier) (it shares the code), minus what needs the issuer at run
//! time: keys never change, and revocations are not known, so a revoked but unexpired token
//! passes. Use it only where that is acceptable.

use crate::config::VerifierConfig;
use crate::error::VerifyError;
use crate::jwks::{KeySet, key_set};
use crate::jws;
use crate::verifier::{VerifiedToken, check_signed};
use std::fmt;
use std::time::Duration;
use tokenmint_proto::jwks::Jwks;

/// Verifies access tokens against a fixed JWKS, synchronously and without I/O.
///
/// Keys are taken from the JWKS as [`Verifier`](crate::Verifier) takes them: a key needs a
/// `kid`, an asymmetric algorithm (declared, or implied by its curve) and valid parameters;
/// other keys are skipped. Each key verifies only its own algorithm.
///
/// ```
/// use tokenmint_verify::{OfflineVerifier, VerifierConfig, VerifyError};
/// use tokenmint_proto::jwks::Jwks;
///
/// let jwks: Jwks = serde_json::from_str(r#"{"keys":[]}"#)?;
/// let verifier = OfflineVerifier::new(VerifierConfig::new("https://auth.example.com"), &jwks);
/// let now = 1_700_000_000;
/// assert_eq!(verifier.verify("not-a-jwt", now).err(), Some(VerifyError::Malformed));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub struct OfflineVerifier {
    config: VerifierConfig,
    leeway_secs: i64,
    keys: KeySet,
}

impl fmt::Debug for OfflineVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OfflineVerifier")
            .field("issuer", &self.config.issuer)
            .field("audience", &self.config.audience)
            .field("kids", &self.keys.kids())
            .finish()
    }
}

impl OfflineVerifier {
    /// A verifier for `config.issuer` that trusts the usable keys of `jwks`. Of `config`, the
    /// issuer, audience, leeway and size limits apply; the JWKS, cache and HTTP settings do
    /// not.
    pub fn new(config: VerifierConfig, jwks: &Jwks) -> Self {
        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        // The configured algorithms, else each key's own, bound what tokens may use.
        let keys = key_set(jwks, config.algorithms.as_deref(), Duration::ZERO, Duration::MAX);
        Self { config, leeway_secs, keys }
    }

    /// The `kid`s of the keys this verifier trusts, sorted: the ones of `jwks` that were usable.
    pub fn kids(&self) -> Vec<&str> {
        self.keys.kids()
    }

    /// Checks `token` (the bearer string, without `Bearer `) at time `now` (Unix seconds) and
    /// returns its claims. Revocations are not checked (see the module documentation).
    pub fn verify(&self, token: &str, now: i64) -> Result<VerifiedToken, VerifyError> {
        if token.len() > self.config.max_token_bytes {
            return Err(VerifyError::TooLarge);
        }
        let parsed = jws::parse(token, self.config.max_header_bytes, &self.config.token_types)?;
        let key = self.keys.get(&parsed.kid).ok_or(VerifyError::UnknownKey)?;
        check_signed(parsed, key, &self.config, self.leeway_secs, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};
    use tokenmint_proto::jwks::Jwk;

    const ISSUER: &str = "https://auth.example.com";
    const NOW: i64 = 1_700_000_000;

    fn pair(seed: u8) -> Ed25519KeyPair {
        Ed25519KeyPair::from_seed_unchecked(&[seed; 32]).unwrap()
    }

    fn jwk(pair: &Ed25519KeyPair, kid: &str) -> Jwk {
        Jwk {
            kty: "OKP".into(),
            kid: Some(kid.into()),
            alg: Some("EdDSA".into()),
            use_: Some("sig".into()),
            n: None,
            e: None,
            crv: Some("Ed25519".into()),
            x: Some(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref())),
            y: None,
        }
    }

    fn claims() -> Value {
        json!({
            "iss": ISSUER, "sub": "c1", "client_id": "c1", "aud": "https://api.example.com",
            "iat": NOW - 10, "exp": NOW + 300, "jti": "j1", "scope": "a:read",
            "env": "production", "org": "o1"
        })
    }

    fn sign(pair: &Ed25519KeyPair, kid: &str, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "typ": "at+jwt", "kid": kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = pair.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn verifier() -> OfflineVerifier {
        let jwks = Jwks { keys: vec![jwk(&pair(1), "k1")] };
        OfflineVerifier::new(
            VerifierConfig::new(ISSUER).with_audience("https://api.example.com"),
            &jwks,
        )
    }

    #[test]
    fn a_token_signed_by_a_listed_key_is_accepted_with_its_claims() {
        let token = sign(&pair(1), "k1", &claims());
        let verified = verifier().verify(&token, NOW).unwrap();
        assert_eq!(verified.client_id, "c1");
        assert_eq!(verified.kid(), "k1");
        assert_eq!(verifier().kids(), ["k1"]);
    }

    #[test]
    fn signature_key_issuer_audience_and_time_are_all_checked() {
        let v = verifier();
        let other_key = sign(&pair(2), "k1", &claims());
        assert_eq!(v.verify(&other_key, NOW).err(), Some(VerifyError::BadSignature));
        let unknown = sign(&pair(1), "k2", &claims());
        assert_eq!(v.verify(&unknown, NOW).err(), Some(VerifyError::UnknownKey));
        let mut c = claims();
        c["iss"] = json!("https://evil.example.com");
        assert_eq!(v.verify(&sign(&pair(1), "k1", &c), NOW).err(), Some(VerifyError::WrongIssuer));
        let mut c = claims();
        c["aud"] = json!("https://other.example.com");
        let token = sign(&pair(1), "k1", &c);
        assert_eq!(v.verify(&token, NOW).err(), Some(VerifyError::WrongAudience));
        let token = sign(&pair(1), "k1", &claims());
        assert_eq!(v.verify(&token, NOW + 400).err(), Some(VerifyError::Expired));
        assert_eq!(v.verify(&token, NOW - 100).err(), Some(VerifyError::NotYetValid));
    }

    #[test]
    fn oversized_and_malformed_tokens_are_refused_before_any_key_is_used() {
        let v = verifier();
        assert_eq!(v.verify(&"a".repeat(9000), NOW).err(), Some(VerifyError::TooLarge));
        assert_eq!(v.verify("a.b", NOW).err(), Some(VerifyError::Malformed));
    }

    #[test]
    fn keys_without_kid_or_with_an_hmac_algorithm_are_not_trusted() {
        let mut no_kid = jwk(&pair(1), "k1");
        no_kid.kid = None;
        let mut hmac = jwk(&pair(1), "k2");
        hmac.alg = Some("HS256".into());
        let v =
            OfflineVerifier::new(VerifierConfig::new(ISSUER), &Jwks { keys: vec![no_kid, hmac] });
        assert!(v.kids().is_empty());
    }
}
