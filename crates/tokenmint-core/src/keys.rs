//! Signing keys: generation, the JWK and PEM views of their public halves, and the lifecycle
//! that decides which key signs and which are published.
//!
//! A key's lifecycle is derived from three stored instants rather than from mutable state, so
//! that several instances sharing one database agree on it without coordinating: a key is
//! *pending* until its `activates_at` (published in the JWKS so verifiers learn it first),
//! *active* while it is the newest activated key, *retired* once a newer key has activated, and
//! unpublished when every token it could have signed has expired. A *withdrawn* key (suspected
//! compromise) leaves the JWKS at once.

use crate::UnixTime;
use crate::ids::random_id;
use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use std::fmt;
use std::str::FromStr;
use thiserror::Error;
use tokenmint_proto::admin::KeyState;
use tokenmint_proto::jwks::Jwk;

/// The JWS algorithms tokenmint signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256, 2048-bit keys.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl SigningAlgorithm {
    pub const ALL: [SigningAlgorithm; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

impl fmt::Display for SigningAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("unknown signing algorithm '{0}': use RS256, ES256 or EdDSA")]
    UnknownAlgorithm(String),
    #[error("key generation failed")]
    Generation,
    #[error("stored signing key {0} is not a valid {1} key")]
    Rejected(String, SigningAlgorithm),
    #[error("signing failed")]
    Signing,
}

impl FromStr for SigningAlgorithm {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            _ => Err(KeyError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

enum Pair {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

/// A private key ready to sign, with its precomputed JWS header.
pub struct SigningKey {
    kid: String,
    alg: SigningAlgorithm,
    pair: Pair,
    /// base64url of `{"alg":..,"typ":"at+jwt","kid":..}`, computed once: every token of this
    /// key starts with it.
    header_b64: String,
    rng: SystemRandom,
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

/// Private key bytes (PKCS#8 DER) fresh from generation, to be sealed before storage.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    pub pkcs8: Vec<u8>,
}

impl fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl GeneratedKey {
    pub fn generate(alg: SigningAlgorithm) -> Result<Self, KeyError> {
        let pkcs8 = match alg {
            SigningAlgorithm::RS256 => {
                let pair =
                    RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| KeyError::Generation)?;
                let der = AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&pair)
                    .map_err(|_| KeyError::Generation)?;
                der.as_ref().to_vec()
            }
            SigningAlgorithm::ES256 => {
                let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| KeyError::Generation)?;
                pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?.as_ref().to_vec()
            }
            SigningAlgorithm::EdDSA => {
                let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generation)?;
                pair.to_pkcs8v1().map_err(|_| KeyError::Generation)?.as_ref().to_vec()
            }
        };
        Ok(Self { kid: random_id("", 20), alg, pkcs8 })
    }
}

impl SigningKey {
    pub fn from_pkcs8(kid: &str, alg: SigningAlgorithm, pkcs8: &[u8]) -> Result<Self, KeyError> {
        let rejected = |_| KeyError::Rejected(kid.to_owned(), alg);
        let pair = match alg {
            SigningAlgorithm::RS256 => Pair::Rsa(RsaKeyPair::from_pkcs8(pkcs8).map_err(rejected)?),
            SigningAlgorithm::ES256 => Pair::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8)
                    .map_err(rejected)?,
            ),
            SigningAlgorithm::EdDSA => {
                Pair::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
        };
        let header = serde_json::json!({"alg": alg.as_str(), "typ": tokenmint_proto::ACCESS_TOKEN_TYP, "kid": kid});
        let header_b64 = URL_SAFE_NO_PAD.encode(header.to_string());
        Ok(Self { kid: kid.to_owned(), alg, pair, header_b64, rng: SystemRandom::new() })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn alg(&self) -> SigningAlgorithm {
        self.alg
    }

    pub fn header_b64(&self) -> &str {
        &self.header_b64
    }

    /// Signs `message` and appends the base64url signature to `out`.
    pub fn sign_into(&self, message: &[u8], out: &mut String) -> Result<(), KeyError> {
        match &self.pair {
            Pair::Rsa(k) => {
                let mut sig = [0u8; 512];
                let len = k.public_modulus_len();
                let buf = sig.get_mut(..len).ok_or(KeyError::Signing)?;
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, message, buf)
                    .map_err(|_| KeyError::Signing)?;
                URL_SAFE_NO_PAD.encode_string(buf, out);
            }
            Pair::Ecdsa(k) => {
                let sig = k.sign(&self.rng, message).map_err(|_| KeyError::Signing)?;
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), out);
            }
            Pair::Ed25519(k) => {
                let sig = k.sign(message);
                URL_SAFE_NO_PAD.encode_string(sig.as_ref(), out);
            }
        }
        Ok(())
    }

    /// The public key in the form verification needs (see [`PublicKey`]).
    pub fn public_key(&self) -> PublicKey {
        let bytes = match &self.pair {
            Pair::Rsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            Pair::Ed25519(k) => k.public_key().as_ref().to_vec(),
        };
        PublicKey { kid: self.kid.clone(), alg: self.alg, bytes }
    }

    /// The RFC 7517 JWK of the public key.
    pub fn jwk(&self) -> Jwk {
        let mut jwk = Jwk {
            kty: String::new(),
            kid: Some(self.kid.clone()),
            alg: Some(self.alg.as_str().to_owned()),
            use_: Some("sig".to_owned()),
            n: None,
            e: None,
            crv: None,
            x: None,
            y: None,
        };
        match &self.pair {
            Pair::Rsa(k) => {
                let p = k.public_key();
                jwk.kty = "RSA".into();
                jwk.n = Some(URL_SAFE_NO_PAD.encode(p.modulus().big_endian_without_leading_zero()));
                jwk.e =
                    Some(URL_SAFE_NO_PAD.encode(p.exponent().big_endian_without_leading_zero()));
            }
            Pair::Ecdsa(k) => {
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                let point = k.public_key().as_ref();
                jwk.kty = "EC".into();
                jwk.crv = Some("P-256".into());
                jwk.x = point.get(1..33).map(|b| URL_SAFE_NO_PAD.encode(b));
                jwk.y = point.get(33..65).map(|b| URL_SAFE_NO_PAD.encode(b));
            }
            Pair::Ed25519(k) => {
                jwk.kty = "OKP".into();
                jwk.crv = Some("Ed25519".into());
                jwk.x = Some(URL_SAFE_NO_PAD.encode(k.public_key().as_ref()));
            }
        }
        jwk
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), as Candid publishes it.
    pub fn public_pem(&self) -> Result<String, KeyError> {
        let der: Result<PublicKeyX509Der<'static>, _> = match &self.pair {
            Pair::Rsa(k) => k.public_key().as_der(),
            Pair::Ecdsa(k) => k.public_key().as_der(),
            Pair::Ed25519(k) => k.public_key().as_der(),
        };
        let der = der.map_err(|_| KeyError::Signing)?;
        let b64 = STANDARD.encode(der.as_ref());
        let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            pem.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            pem.push('\n');
        }
        pem.push_str("-----END PUBLIC KEY-----\n");
        Ok(pem)
    }
}

/// A public key for verifying tokenmint's own tokens (introspection, admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub kid: String,
    pub alg: SigningAlgorithm,
    /// RSA: DER RSAPublicKey; EC: uncompressed point; Ed25519: the 32 raw bytes.
    pub bytes: Vec<u8>,
}

impl PublicKey {
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        let alg: &dyn signature::VerificationAlgorithm = match self.alg {
            SigningAlgorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            SigningAlgorithm::ES256 => &signature::ECDSA_P256_SHA256_FIXED,
            SigningAlgorithm::EdDSA => &signature::ED25519,
        };
        signature::UnparsedPublicKey::new(alg, &self.bytes).verify(message, sig).is_ok()
    }
}

/// A signing key as stored: the private half sealed under the master key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub kid: String,
    pub alg: SigningAlgorithm,
    /// `KeyEncryption::seal(pkcs8, associated_data(kid, alg))`.
    pub sealed_private: Vec<u8>,
    pub created_at: UnixTime,
    pub activates_at: UnixTime,
    pub withdrawn_at: Option<UnixTime>,
}

impl KeyRecord {
    /// The associated data that binds a sealed key to its id and algorithm.
    pub fn associated_data(kid: &str, alg: SigningAlgorithm) -> Vec<u8> {
        format!("tokenmint signing key {kid} {alg}").into_bytes()
    }
}

/// Where a key is in its lifecycle at some instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    pub retired_at: Option<UnixTime>,
    /// When the key leaves the JWKS (retired keys only).
    pub unpublish_at: Option<UnixTime>,
}

/// Clock skew allowed for verifiers when deciding how long a retired key stays published.
pub const UNPUBLISH_GRACE_SECS: i64 = 300;

/// Computes every non-withdrawn key's state at `now`, oldest activation first.
///
/// `max_token_lifetime` bounds how long a retired key's tokens can live, hence how long it
/// must stay published. Keys whose `unpublish_at` has passed are omitted: they are garbage.
pub fn lifecycle(keys: &[KeyRecord], now: UnixTime, max_token_lifetime: i64) -> Vec<KeyStatus> {
    let mut live: Vec<&KeyRecord> = keys.iter().filter(|k| k.withdrawn_at.is_none()).collect();
    live.sort_by(|a, b| {
        (a.activates_at, a.created_at, &a.kid).cmp(&(b.activates_at, b.created_at, &b.kid))
    });
    let activated: Vec<&&KeyRecord> = live.iter().filter(|k| k.activates_at <= now).collect();
    let active_kid =
        activated.last().map(|k| k.kid.as_str()).or_else(|| live.first().map(|k| k.kid.as_str()));
    let mut out = Vec::with_capacity(live.len());
    for (i, k) in live.iter().enumerate() {
        if Some(k.kid.as_str()) == active_kid {
            out.push(KeyStatus {
                kid: k.kid.clone(),
                state: KeyState::Active,
                retired_at: None,
                unpublish_at: None,
            });
        } else if k.activates_at <= now {
            // Retired by the next key that activated after it.
            let retired_at =
                live[i + 1..].iter().map(|n| n.activates_at).find(|t| *t <= now).unwrap_or(now);
            let unpublish_at = retired_at + max_token_lifetime + UNPUBLISH_GRACE_SECS;
            if unpublish_at > now {
                out.push(KeyStatus {
                    kid: k.kid.clone(),
                    state: KeyState::Retired,
                    retired_at: Some(retired_at),
                    unpublish_at: Some(unpublish_at),
                });
            }
        } else {
            out.push(KeyStatus {
                kid: k.kid.clone(),
                state: KeyState::Pending,
                retired_at: None,
                unpublish_at: None,
            });
        }
    }
    out
}

/// Whether the automatic schedule should create a new key now: the active key has signed for
/// `interval` seconds and no successor is already waiting.
pub fn rotation_due(keys: &[KeyRecord], now: UnixTime, interval: i64) -> bool {
    let live = || keys.iter().filter(|k| k.withdrawn_at.is_none());
    if live().any(|k| k.activates_at > now) {
        return false;
    }
    match live().filter(|k| k.activates_at <= now).map(|k| k.activates_at).max() {
        Some(newest) => now >= newest + interval,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(kid: &str, activates_at: i64) -> KeyRecord {
        KeyRecord {
            kid: kid.into(),
            alg: SigningAlgorithm::ES256,
            sealed_private: vec![],
            created_at: activates_at,
            activates_at,
            withdrawn_at: None,
        }
    }

    #[test]
    fn a_new_key_is_pending_then_active_and_the_old_one_retires_then_disappears() {
        let keys = [rec("a", 0), rec("b", 100)];
        let at = |now| {
            lifecycle(&keys, now, 50).into_iter().map(|s| (s.kid, s.state)).collect::<Vec<_>>()
        };
        assert_eq!(at(10), [("a".into(), KeyState::Active), ("b".into(), KeyState::Pending)]);
        assert_eq!(at(100), [("a".into(), KeyState::Retired), ("b".into(), KeyState::Active)]);
        assert_eq!(at(100 + 50 + UNPUBLISH_GRACE_SECS), [("b".into(), KeyState::Active)]);
    }

    #[test]
    fn withdrawn_keys_leave_at_once() {
        let mut keys = [rec("a", 0), rec("b", 10)];
        keys[1].withdrawn_at = Some(20);
        let s = lifecycle(&keys, 30, 3600);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].state, KeyState::Active);
        assert_eq!(s[0].kid, "a");
    }

    #[test]
    fn rotation_is_due_after_the_interval_unless_a_successor_waits() {
        assert!(rotation_due(&[], 0, 10));
        assert!(!rotation_due(&[rec("a", 0)], 9, 10));
        assert!(rotation_due(&[rec("a", 0)], 10, 10));
        assert!(!rotation_due(&[rec("a", 0), rec("b", 20)], 15, 10));
    }

    #[test]
    fn every_algorithm_generates_signs_and_verifies() {
        for alg in SigningAlgorithm::ALL {
            let g = GeneratedKey::generate(alg).unwrap();
            let k = SigningKey::from_pkcs8(&g.kid, alg, &g.pkcs8).unwrap();
            let mut sig = String::new();
            k.sign_into(b"message", &mut sig).unwrap();
            let raw = URL_SAFE_NO_PAD.decode(&sig).unwrap();
            assert!(k.public_key().verify(b"message", &raw), "{alg}");
            assert!(!k.public_key().verify(b"messagf", &raw), "{alg}");
            assert!(k.public_pem().unwrap().starts_with("-----BEGIN PUBLIC KEY-----\n"));
            assert_eq!(k.jwk().alg.as_deref(), Some(alg.as_str()));
        }
    }

    #[test]
    fn a_key_of_one_algorithm_is_rejected_as_another() {
        let g = GeneratedKey::generate(SigningAlgorithm::ES256).unwrap();
        assert!(SigningKey::from_pkcs8(&g.kid, SigningAlgorithm::RS256, &g.pkcs8).is_err());
    }
}
