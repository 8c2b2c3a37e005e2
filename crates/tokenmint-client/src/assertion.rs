//! `private_key_jwt` client authentication (RFC 7523 §2.2): a private key that signs a fresh,
//! short-lived assertion for every token request, in place of a client secret.
//!
//! Each assertion carries `iss` = `sub` = the client id, the audience (the issuer when it is
//! known from discovery, else the token endpoint's URL), a random `jti` so the server can refuse
//! a replay, and an `exp` 60 seconds ahead. The key is read once, from PEM (PKCS #8, PKCS #1 or
//! SEC 1) or a private JWK, and never printed.

use std::fmt;
use std::path::Path;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use serde_json::{Value, json};

use crate::error::Error;

/// The client assertion type of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How long each assertion is valid.
pub const ASSERTION_LIFETIME_SECS: u64 = 60;

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa { key: EcdsaKeyPair, alg: &'static str },
    Ed25519(Ed25519KeyPair),
}

/// A private key that signs client assertions. `Debug` shows its algorithm and `kid` only.
pub struct PrivateKey {
    signer: Signer,
    kid: Option<String>,
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("alg", &self.alg())
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Config(msg.into())
}

/// The largest private key file read.
const KEY_MAX_LEN: u64 = 64 * 1024;

impl PrivateKey {
    /// Reads a key file: PEM or a private JWK.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let text = crate::file::read_small(path, KEY_MAX_LEN, "key").map_err(|reason| {
            bad(format!("cannot read the private key {}: {reason}", path.display()))
        })?;
        Self::parse(&text)
    }

    /// Reads a PEM private key or a private JWK.
    pub fn parse(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.starts_with('{') { Self::from_jwk(text) } else { Self::from_pem(text) }
    }

    /// Reads a PEM private key: `PRIVATE KEY` (PKCS #8: RSA, EC P-256/P-384, Ed25519),
    /// `RSA PRIVATE KEY` (PKCS #1) or `EC PRIVATE KEY` (SEC 1).
    pub fn from_pem(text: &str) -> Result<Self, Error> {
        let mut lines = text.lines().map(str::trim);
        let label = lines
            .next()
            .and_then(|l| l.strip_prefix("-----BEGIN "))
            .and_then(|l| l.strip_suffix("-----"))
            .ok_or_else(|| bad("the private key is neither PEM nor a JWK"))?
            .to_owned();
        let body: String = lines.take_while(|l| !l.starts_with("-----END")).collect();
        let der = STANDARD.decode(body).map_err(|_| bad("the PEM body is not base64"))?;
        let signer = match label.as_str() {
            "PRIVATE KEY" => RsaKeyPair::from_pkcs8(&der)
                .map(Signer::Rsa)
                .or_else(|_| ecdsa_der(&der))
                .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der).map(Signer::Ed25519))
                .map_err(|_| bad("the PKCS #8 key is not an RSA, EC P-256/P-384 or Ed25519 key"))?,
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(&der)
                .map(Signer::Rsa)
                .map_err(|_| bad("the RSA private key does not parse"))?,
            "EC PRIVATE KEY" => {
                ecdsa_der(&der).map_err(|_| bad("the EC private key is not on P-256 or P-384"))?
            }
            "ENCRYPTED PRIVATE KEY" => {
                return Err(bad("the private key is encrypted; decrypt it first (openssl pkey)"));
            }
            _ => return Err(bad(format!("a PEM {label} is not a private key"))),
        };
        Ok(Self { signer, kid: None })
    }

    /// Reads a private JWK: RSA (with its CRT members, as JOSE libraries write them), EC
    /// (P-256, P-384) or OKP (Ed25519).
    pub fn from_jwk(text: &str) -> Result<Self, Error> {
        let jwk: Value = serde_json::from_str(text).map_err(|_| bad("the JWK is not JSON"))?;
        let member = |name: &str| -> Result<Vec<u8>, Error> {
            let v = jwk
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("the JWK lacks \"{name}\"")))?;
            B64.decode(v).map_err(|_| bad(format!("the JWK's \"{name}\" is not base64url")))
        };
        let kid = jwk.get("kid").and_then(Value::as_str).map(str::to_owned);
        let signer = match (
            jwk.get("kty").and_then(Value::as_str),
            jwk.get("crv").and_then(Value::as_str),
        ) {
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let (alg, name) = if crv == "P-256" {
                    (&signature::ECDSA_P256_SHA256_FIXED_SIGNING, "ES256")
                } else {
                    (&signature::ECDSA_P384_SHA384_FIXED_SIGNING, "ES384")
                };
                let mut public = vec![0x04];
                public.extend(member("x")?);
                public.extend(member("y")?);
                let key =
                    EcdsaKeyPair::from_private_key_and_public_key(alg, &member("d")?, &public)
                        .map_err(|_| bad("the EC JWK is not a valid key pair"))?;
                Signer::Ecdsa { key, alg: name }
            }
            (Some("OKP"), Some("Ed25519")) => {
                Ed25519KeyPair::from_seed_and_public_key(&member("d")?, &member("x")?)
                    .map(Signer::Ed25519)
                    .map_err(|_| bad("the Ed25519 JWK is not a valid key pair"))?
            }
            (Some("RSA"), _) => {
                if jwk.get("oth").is_some() {
                    return Err(bad(
                        "RSA keys with more than two primes (\"oth\") are not supported",
                    ));
                }
                // RFC 7518 §6.3.2: the CRT members are what a signer needs; every JOSE library
                // writes them. They become the PKCS #1 RSAPrivateKey that aws-lc-rs reads.
                let mut fields = Vec::new();
                for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
                    fields.push(member(name)?);
                }
                RsaKeyPair::from_der(&rsa_private_key_der(&fields))
                    .map(Signer::Rsa)
                    .map_err(|_| bad("the RSA JWK is not a valid key pair of at least 2048 bits"))?
            }
            _ => {
                return Err(bad("the JWK is not an RSA, EC (P-256, P-384) or Ed25519 private key"));
            }
        };
        Ok(Self { signer, kid })
    }

    /// Names the key in each assertion's header (`kid`), as registered on the server.
    pub fn with_kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// The JWS algorithm the key signs with.
    pub fn alg(&self) -> &'static str {
        match &self.signer {
            Signer::Rsa(_) => "RS256",
            Signer::Ecdsa { alg, .. } => alg,
            Signer::Ed25519(_) => "EdDSA",
        }
    }

    /// The public half as a JWK (with the key's `kid`, when it has one): what to register.
    pub fn public_jwk(&self) -> Value {
        let mut jwk = match &self.signer {
            Signer::Rsa(k) => {
                let public = k.public_key();
                let n = public.modulus();
                let e = public.exponent();
                json!({
                    "kty": "RSA",
                    "n": B64.encode(n.big_endian_without_leading_zero()),
                    "e": B64.encode(e.big_endian_without_leading_zero()),
                })
            }
            Signer::Ecdsa { key, alg } => {
                let point = key.public_key().as_ref();
                let len = (point.len().saturating_sub(1)) / 2;
                let crv = if *alg == "ES256" { "P-256" } else { "P-384" };
                let (x, y) = point.get(1..).unwrap_or_default().split_at(len.min(point.len()));
                json!({"kty": "EC", "crv": crv, "x": B64.encode(x), "y": B64.encode(y)})
            }
            Signer::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(k.public_key().as_ref())})
            }
        };
        if let (Some(kid), Some(obj)) = (&self.kid, jwk.as_object_mut()) {
            obj.insert("kid".to_owned(), Value::String(kid.clone()));
        }
        jwk
    }

    /// A fresh assertion for `client_id` and `audience`, issued at `now` (Unix seconds).
    pub fn assertion(&self, client_id: &str, audience: &str, now: u64) -> Result<String, Error> {
        let mut header = json!({"alg": self.alg(), "typ": "JWT"});
        if let (Some(kid), Some(obj)) = (&self.kid, header.as_object_mut()) {
            obj.insert("kid".to_owned(), Value::String(kid.clone()));
        }
        let mut jti = [0u8; 16];
        aws_lc_rs::rand::fill(&mut jti).map_err(|_| bad("the system random generator failed"))?;
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": B64.encode(jti),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_SECS,
        });
        let mut jwt = B64.encode(header.to_string());
        jwt.push('.');
        jwt.push_str(&B64.encode(claims.to_string()));
        let sig = self.sign(jwt.as_bytes())?;
        jwt.push('.');
        jwt.push_str(&B64.encode(sig));
        Ok(jwt)
    }

    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let failed = |_| bad("signing the client assertion failed");
        match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0u8; k.public_modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), message, &mut sig)
                    .map_err(failed)?;
                Ok(sig)
            }
            Signer::Ecdsa { key, .. } => {
                Ok(key.sign(&SystemRandom::new(), message).map_err(failed)?.as_ref().to_vec())
            }
            Signer::Ed25519(k) => Ok(k.sign(message).as_ref().to_vec()),
        }
    }
}

/// The DER of a PKCS #1 `RSAPrivateKey` (RFC 8017 §A.1.2, two primes): version 0, then
/// `n, e, d, p, q, dp, dq, qi` as big-endian unsigned integers.
fn rsa_private_key_der(fields: &[Vec<u8>]) -> Vec<u8> {
    let mut body = der_integer(&[0]);
    for field in fields {
        body.extend(der_integer(field));
    }
    der_tlv(0x30, &body)
}

/// A DER INTEGER holding the unsigned big-endian `value`: leading zeros dropped, one added back
/// where the top bit would otherwise read as a sign.
fn der_integer(value: &[u8]) -> Vec<u8> {
    let start = value.iter().position(|&b| b != 0).unwrap_or(value.len().saturating_sub(1));
    let digits = if value.is_empty() { &[0u8][..] } else { &value[start..] };
    let mut content = Vec::with_capacity(digits.len() + 1);
    if digits[0] & 0x80 != 0 {
        content.push(0);
    }
    content.extend_from_slice(digits);
    der_tlv(0x02, &content)
}

/// Tag, DER length (short form below 128, else long form), content.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len() - 1);
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend_from_slice(&bytes[skip..]);
    }
    out.extend_from_slice(content);
    out
}

fn ecdsa_der(der: &[u8]) -> Result<Signer, aws_lc_rs::error::KeyRejected> {
    EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
        .map(|key| Signer::Ecdsa { key, alg: "ES256" })
        .or_else(|_| {
            EcdsaKeyPair::from_private_key_der(&signature::ECDSA_P384_SHA384_FIXED_SIGNING, der)
                .map(|key| Signer::Ecdsa { key, alg: "ES384" })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ed25519_jwk_signs_assertions_that_name_the_client_and_never_prints() {
        let seed = [9u8; 32];
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
        let jwk = json!({"kty":"OKP","crv":"Ed25519","kid":"k1","d":B64.encode(seed),
            "x":B64.encode(pair.public_key().as_ref())});
        let key = PrivateKey::parse(&jwk.to_string()).unwrap();
        assert_eq!(key.alg(), "EdDSA");
        assert!(!format!("{key:?}").contains(&B64.encode(seed)));
        let jwt = key.assertion("tmc_x", "https://issuer", 1000).unwrap();
        let parts: Vec<&str> = jwt.split('.').collect();
        let claims: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
        assert_eq!(claims["iss"], "tmc_x");
        assert_eq!(claims["sub"], "tmc_x");
        assert_eq!(claims["aud"], "https://issuer");
        assert_eq!(claims["exp"], 1060);
        let header: Value = serde_json::from_slice(&B64.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], "k1");
        let other = key.assertion("tmc_x", "https://issuer", 1000).unwrap();
        let other_claims: Value =
            serde_json::from_slice(&B64.decode(other.split('.').nth(1).unwrap()).unwrap()).unwrap();
        assert_ne!(claims["jti"], other_claims["jti"]);
        assert_eq!(key.public_jwk()["x"], jwk["x"]);
    }

    #[test]
    fn der_integers_and_lengths_follow_the_encoding_rules() {
        assert_eq!(der_integer(&[0]), [0x02, 0x01, 0x00]);
        assert_eq!(der_integer(&[]), [0x02, 0x01, 0x00]);
        assert_eq!(der_integer(&[0x01, 0x00, 0x01]), [0x02, 0x03, 0x01, 0x00, 0x01]);
        assert_eq!(der_integer(&[0x00, 0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(der_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_tlv(0x30, &[7; 127])[..2], [0x30, 0x7f]);
        assert_eq!(der_tlv(0x30, &[7; 128])[..3], [0x30, 0x81, 0x80]);
        assert_eq!(der_tlv(0x30, &[7; 256])[..4], [0x30, 0x82, 0x01, 0x00]);
        assert_eq!(der_tlv(0x30, &[7; 256]).len(), 260);
    }

    #[test]
    fn an_rsa_jwk_without_its_crt_members_or_with_more_primes_is_refused_with_a_reason() {
        let partial = json!({"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB"}).to_string();
        let error = PrivateKey::parse(&partial).unwrap_err().to_string();
        assert!(error.contains("\"p\""), "{error}");
        let more = json!({"kty":"RSA","n":"AQAB","e":"AQAB","d":"AQAB","oth":[]}).to_string();
        let error = PrivateKey::parse(&more).unwrap_err().to_string();
        assert!(error.contains("more than two primes"), "{error}");
    }

    #[test]
    fn junk_keys_are_refused_with_a_reason() {
        for junk in ["", "{", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----", "{}"] {
            assert!(PrivateKey::parse(junk).is_err(), "{junk}");
        }
    }
}
