//! `private_key_jwt` client authentication (RFC 7523 §2.2, profiled by RFC 7521 §4.2): the
//! public keys a credential registers, and the check of a client assertion against them.
//!
//! Keys arrive as a PEM public key, a JWK or a JWK Set, and are kept in one form, the public
//! JWK members (RFC 7517), so that what is stored, shown and compared is the same whatever the
//! partner uploaded. Only asymmetric keys are accepted, and a JWK carrying private members is
//! refused rather than stripped: a partner who uploads their private key has leaked it and
//! should know.
//!
//! The check is a pure function of the assertion, the keys, what the server expects and `now`.
//! It never accepts `none` or an HMAC algorithm (a public key's bytes used as an HMAC secret is
//! the classic key-confusion forgery), takes the key by `kid` when the header names one, else
//! tries each key of the type the algorithm needs, and then checks the claims RFC 7523 §3
//! requires. Single use of `jti` is the caller's: it needs shared state.

use crate::UnixTime;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use thiserror::Error;

/// The `client_assertion_type` of RFC 7523 §2.2.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The signature algorithms accepted on assertions: asymmetric only.
pub const ALLOWED_ALGS: [&str; 9] =
    ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"];

/// The longest an assertion may live: `exp` at most this far after its `iat` and after now.
pub const MAX_ASSERTION_LIFETIME_SECS: i64 = 300;

/// How far the partner's clock may be off from ours, for `exp`, `iat` and `nbf`.
pub const CLOCK_SKEW_SECS: i64 = 30;

/// Most keys one credential may register.
pub const MAX_KEYS: usize = tokenmint_proto::limits::PUBLIC_KEYS_MAX;

/// Longest `jti` accepted.
pub const MAX_JTI_LEN: usize = 256;

/// Smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// The curves of EC keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Curve {
    P256,
    P384,
}

impl Curve {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
        }
    }

    const fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }

    const fn alg(self) -> &'static str {
        match self {
            Self::P256 => "ES256",
            Self::P384 => "ES384",
        }
    }
}

/// A public key's material, its members base64url-encoded as in a JWK.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyMaterial {
    Rsa { n: String, e: String },
    Ec { crv: Curve, x: String, y: String },
    Ed25519 { x: String },
}

/// One public key registered on a credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientKey {
    pub kid: Option<String>,
    /// The one algorithm the key may be used with, when the JWK said so.
    pub alg: Option<String>,
    pub material: KeyMaterial,
}

/// Why a key upload was refused; each says what to send instead.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(Cow<'static, str>),
}

fn invalid(msg: &'static str) -> KeyError {
    KeyError::Invalid(Cow::Borrowed(msg))
}

/// The JWK members tokenmint stores (and the ones it reads from an upload).
#[derive(Debug, Default, Serialize, Deserialize)]
struct JwkMembers {
    kty: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    alg: Option<String>,
    #[serde(default, rename = "use", skip_serializing_if = "Option::is_none")]
    use_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    crv: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    x: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    y: Option<String>,
}

/// Members that only a private or symmetric key has.
const PRIVATE_MEMBERS: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];

impl ClientKey {
    /// `RSA`, `EC` or `OKP`.
    pub fn kty(&self) -> &'static str {
        match self.material {
            KeyMaterial::Rsa { .. } => "RSA",
            KeyMaterial::Ec { .. } => "EC",
            KeyMaterial::Ed25519 { .. } => "OKP",
        }
    }

    /// The curve, for EC and OKP keys.
    pub fn crv(&self) -> Option<&'static str> {
        match self.material {
            KeyMaterial::Rsa { .. } => None,
            KeyMaterial::Ec { crv, .. } => Some(crv.as_str()),
            KeyMaterial::Ed25519 { .. } => Some("Ed25519"),
        }
    }

    /// The JWK thumbprint (RFC 7638, SHA-256), base64url: the key's name when it has no `kid`.
    pub fn thumbprint(&self) -> String {
        // The required members only, in lexicographic order, without whitespace (§3.2). Each
        // value is base64url or a fixed name, so needs no JSON escaping.
        let canonical = match &self.material {
            KeyMaterial::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
            KeyMaterial::Ec { crv, x, y } => {
                format!(r#"{{"crv":"{}","kty":"EC","x":"{x}","y":"{y}"}}"#, crv.as_str())
            }
            KeyMaterial::Ed25519 { x } => format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#),
        };
        B64.encode(crate::crypto::sha256(canonical.as_bytes()))
    }

    /// Whether the key is named `id`: its `kid`, or its thumbprint.
    pub fn is_named(&self, id: &str) -> bool {
        self.kid.as_deref() == Some(id) || self.thumbprint() == id
    }

    /// Whether the key can verify a signature made with `alg`.
    pub fn fits(&self, alg: &str) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Rsa { .. } => alg.starts_with("RS") || alg.starts_with("PS"),
            KeyMaterial::Ec { crv, .. } => crv.alg() == alg,
            KeyMaterial::Ed25519 { .. } => alg == "EdDSA",
        }
    }

    fn decoding_key(&self) -> Option<DecodingKey> {
        match &self.material {
            KeyMaterial::Rsa { n, e } => DecodingKey::from_rsa_components(n, e).ok(),
            KeyMaterial::Ec { x, y, .. } => DecodingKey::from_ec_components(x, y).ok(),
            KeyMaterial::Ed25519 { x } => DecodingKey::from_ed_components(x).ok(),
        }
    }

    fn members(&self) -> JwkMembers {
        let mut m = JwkMembers {
            kty: self.kty().to_owned(),
            kid: self.kid.clone(),
            alg: self.alg.clone(),
            ..JwkMembers::default()
        };
        match &self.material {
            KeyMaterial::Rsa { n, e } => {
                m.n = Some(n.clone());
                m.e = Some(e.clone());
            }
            KeyMaterial::Ec { crv, x, y } => {
                m.crv = Some(crv.as_str().to_owned());
                m.x = Some(x.clone());
                m.y = Some(y.clone());
            }
            KeyMaterial::Ed25519 { x } => {
                m.crv = Some("Ed25519".to_owned());
                m.x = Some(x.clone());
            }
        }
        m
    }

    /// The public JWK.
    pub fn to_jwk(&self) -> serde_json::Value {
        serde_json::to_value(self.members()).unwrap_or(serde_json::Value::Null)
    }

    fn from_members(m: JwkMembers) -> Result<Self, KeyError> {
        if m.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err(invalid("the JWK's \"use\" is not \"sig\"; register a signing key"));
        }
        if let Some(kid) = &m.kid
            && (kid.is_empty() || kid.len() > 128 || kid.chars().any(crate::ids::is_hidden_char))
        {
            return Err(invalid("the JWK's \"kid\" must be 1 to 128 printable characters"));
        }
        if let Some(alg) = &m.alg
            && !ALLOWED_ALGS.contains(&alg.as_str())
        {
            return Err(KeyError::Invalid(Cow::Owned(format!(
                "the JWK's \"alg\" must be one of {}",
                ALLOWED_ALGS.join(", ")
            ))));
        }
        let b64 = |v: Option<String>, what: &'static str| -> Result<(String, Vec<u8>), KeyError> {
            let v = v.ok_or(KeyError::Invalid(Cow::Owned(format!("the JWK lacks \"{what}\""))))?;
            let bytes = B64.decode(v.as_bytes()).map_err(|_| {
                KeyError::Invalid(Cow::Owned(format!("the JWK's \"{what}\" is not base64url")))
            })?;
            Ok((v, bytes))
        };
        let material = match m.kty.as_str() {
            "RSA" => {
                let (n, nb) = b64(m.n, "n")?;
                let (e, _) = b64(m.e, "e")?;
                let bits = significant_bits(&nb);
                if bits < MIN_RSA_BITS {
                    return Err(invalid("RSA keys must have at least 2048 bits"));
                }
                KeyMaterial::Rsa { n, e }
            }
            "EC" => {
                let crv = match m.crv.as_deref() {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    _ => return Err(invalid("EC keys must be on the curve P-256 or P-384")),
                };
                let (x, xb) = b64(m.x, "x")?;
                let (y, yb) = b64(m.y, "y")?;
                if xb.len() != crv.coordinate_len() || yb.len() != crv.coordinate_len() {
                    return Err(invalid("the EC key's coordinates do not fit its curve"));
                }
                KeyMaterial::Ec { crv, x, y }
            }
            "OKP" => {
                if m.crv.as_deref() != Some("Ed25519") {
                    return Err(invalid("OKP keys must be on the curve Ed25519"));
                }
                let (x, xb) = b64(m.x, "x")?;
                if xb.len() != 32 {
                    return Err(invalid("the Ed25519 key's \"x\" must be 32 bytes"));
                }
                KeyMaterial::Ed25519 { x }
            }
            "oct" => {
                return Err(invalid(
                    "symmetric (oct) keys cannot authenticate a client here; register a public \
                     RSA, EC (P-256, P-384) or Ed25519 key",
                ));
            }
            _ => return Err(invalid("the JWK's \"kty\" must be RSA, EC or OKP")),
        };
        let key = Self { kid: m.kid, alg: m.alg, material };
        if let Some(alg) = key.alg.clone()
            && !key.fits(&alg)
        {
            return Err(invalid("the JWK's \"alg\" does not fit its key type"));
        }
        Ok(key)
    }

    fn from_jwk_value(v: &serde_json::Value) -> Result<Self, KeyError> {
        let obj = v.as_object().ok_or(invalid("a JWK must be a JSON object"))?;
        if PRIVATE_MEMBERS.iter().any(|p| obj.contains_key(*p)) {
            return Err(invalid(
                "this JWK holds a private or symmetric key; register only the public key (and \
                 treat the private one as leaked if it was shared)",
            ));
        }
        let members: JwkMembers =
            serde_json::from_value(v.clone()).map_err(|_| invalid("the JWK is malformed"))?;
        Self::from_members(members)
    }
}

fn significant_bits(be: &[u8]) -> usize {
    let Some(first) = be.iter().position(|b| *b != 0) else { return 0 };
    (be.len() - first) * 8 - be[first].leading_zeros() as usize
}

/// Reads an upload: a PEM public key (`PUBLIC KEY` or `RSA PUBLIC KEY`), a JWK, or a JWK Set.
pub fn parse_public_keys(text: &str) -> Result<Vec<ClientKey>, KeyError> {
    let text = text.trim();
    if text.len() > 64 * 1024 {
        return Err(invalid("the key is larger than 64 KiB"));
    }
    if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|_| invalid("the key looks like JSON but does not parse"))?;
        return match v.get("keys") {
            Some(serde_json::Value::Array(keys)) => {
                if keys.is_empty() {
                    return Err(invalid("the JWK Set holds no keys"));
                }
                keys.iter().map(ClientKey::from_jwk_value).collect()
            }
            Some(_) => Err(invalid("a JWK Set's \"keys\" must be an array")),
            None => Ok(vec![ClientKey::from_jwk_value(&v)?]),
        };
    }
    if text.starts_with("-----BEGIN") {
        return parse_pem(text).map(|k| vec![k]);
    }
    Err(invalid("a public key must be PEM (-----BEGIN PUBLIC KEY-----), a JWK or a JWK Set"))
}

fn parse_pem(text: &str) -> Result<ClientKey, KeyError> {
    let mut lines = text.lines().map(str::trim);
    let first = lines.next().unwrap_or_default();
    let label = first
        .strip_prefix("-----BEGIN ")
        .and_then(|l| l.strip_suffix("-----"))
        .ok_or(invalid("the PEM header is malformed"))?;
    if label.contains("PRIVATE") {
        return Err(invalid(
            "this is a private key; register its public key (openssl pkey -pubout), and keep \
             the private key to sign assertions",
        ));
    }
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(invalid("the PEM has no END line"));
    }
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|_| invalid("the PEM body is not base64"))?;
    let material = match label {
        "PUBLIC KEY" => spki(&der),
        "RSA PUBLIC KEY" => rsa_pkcs1(&der),
        _ => None,
    }
    .ok_or(invalid(
        "the PEM is not a public key tokenmint reads: send an RSA, EC (P-256, P-384) or Ed25519 \
         PUBLIC KEY",
    ))?;
    let members = ClientKey { kid: None, alg: None, material }.members();
    // Through the JWK checks, so that a PEM key meets the same rules (RSA size, curves).
    ClientKey::from_members(members)
}

/// A minimal DER reader: enough for a SubjectPublicKeyInfo (RFC 5280 §4.1.2.7).
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn read(&mut self, tag: u8) -> Option<&'a [u8]> {
        let (&t, rest) = self.0.split_first()?;
        if t != tag {
            return None;
        }
        let (&l0, rest) = rest.split_first()?;
        let (len, rest) = if l0 < 0x80 {
            (usize::from(l0), rest)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let (lb, rest) = rest.split_at_checked(n)?;
            (lb.iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), rest)
        };
        let (content, rest) = rest.split_at_checked(len)?;
        self.0 = rest;
        Some(content)
    }
}

const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn spki(der: &[u8]) -> Option<KeyMaterial> {
    let mut outer = Der(Der(der).read(0x30)?);
    let mut alg = Der(outer.read(0x30)?);
    let bits = outer.read(0x03)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    let oid = alg.read(0x06)?;
    match oid {
        _ if oid == OID_RSA => rsa_pkcs1(key),
        _ if oid == OID_EC => {
            let crv = match alg.read(0x06)? {
                c if c == OID_P256 => Curve::P256,
                c if c == OID_P384 => Curve::P384,
                _ => return None,
            };
            let len = crv.coordinate_len();
            let (&form, xy) = key.split_first()?;
            if form != 0x04 || xy.len() != 2 * len {
                return None;
            }
            let (x, y) = xy.split_at(len);
            Some(KeyMaterial::Ec { crv, x: B64.encode(x), y: B64.encode(y) })
        }
        _ if oid == OID_ED25519 => {
            (key.len() == 32).then(|| KeyMaterial::Ed25519 { x: B64.encode(key) })
        }
        _ => None,
    }
}

fn rsa_pkcs1(der: &[u8]) -> Option<KeyMaterial> {
    let mut seq = Der(Der(der).read(0x30)?);
    let strip = |i: &[u8]| -> Vec<u8> {
        let start = i.iter().position(|b| *b != 0).unwrap_or(i.len());
        i[start..].to_vec()
    };
    let n = strip(seq.read(0x02)?);
    let e = strip(seq.read(0x02)?);
    Some(KeyMaterial::Rsa { n: B64.encode(n), e: B64.encode(e) })
}

/// The keys as stored with the credential: a JSON array of public JWKs.
pub fn keys_to_stored(keys: &[ClientKey]) -> String {
    serde_json::to_string(&keys.iter().map(ClientKey::members).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

/// Reads the stored form back.
pub fn keys_from_stored(text: &str) -> Result<Vec<ClientKey>, KeyError> {
    let members: Vec<JwkMembers> =
        serde_json::from_str(text).map_err(|_| invalid("stored keys are malformed"))?;
    members.into_iter().map(ClientKey::from_members).collect()
}

/// Why an assertion was refused. The text says what to fix, and never repeats the assertion.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AssertionError {
    #[error("the client_assertion is not a JWT (three base64url parts separated by dots)")]
    Malformed,
    #[error("the client_assertion is unsigned (alg none); sign it with one of the registered keys")]
    AlgNone,
    #[error(
        "the client_assertion is signed with an HMAC algorithm; private_key_jwt needs an \
         asymmetric signature (RS256, PS256, ES256, ES384 or EdDSA) by a registered key"
    )]
    AlgHmac,
    #[error("the client_assertion's alg is not accepted; use one of {}", ALLOWED_ALGS.join(", "))]
    AlgNotAllowed,
    #[error("this client has no public keys registered; register one with --public-key")]
    NoKeys,
    #[error(
        "no key registered for this client has the kid in the client_assertion's header; use \
         the kid of a registered key, or register this key"
    )]
    UnknownKid,
    #[error("no key registered for this client fits the client_assertion's alg")]
    NoKeyForAlg,
    #[error(
        "the client_assertion's signature does not verify with the keys registered for this client"
    )]
    BadSignature,
    #[error(
        "the client_assertion's claims are malformed: iss, sub and jti must be strings, aud a \
         string or an array of strings, exp, iat and nbf integers"
    )]
    BadClaims,
    #[error("the client_assertion's iss and sub must both be the client_id")]
    WrongIssuerOrSubject,
    #[error("the client_assertion's aud must contain the issuer or the token endpoint URL")]
    WrongAudience,
    #[error("the client_assertion has no exp; set exp at most 5 minutes ahead")]
    MissingExp,
    #[error("the client_assertion has expired; make a fresh one for each request")]
    Expired,
    #[error(
        "the client_assertion's exp is too far ahead: at most 5 minutes after its iat and after \
         now; make short-lived assertions"
    )]
    TooLong,
    #[error("the client_assertion's iat or nbf is in the future; check the client's clock")]
    NotYetValid,
    #[error(
        "the client_assertion has no jti; give each assertion a unique jti (at most 256 \
         characters)"
    )]
    MissingJti,
    #[error(
        "the client_assertion's jti was used before; make a new assertion with a fresh jti for \
         every request"
    )]
    Replayed,
}

impl AssertionError {
    /// Whether saying this error would tell an unauthenticated caller something about the
    /// client (that it exists, which keys or kids it has). Such refusals get the same answer as
    /// an unknown client_id; the others depend on the assertion alone (its form) or are said
    /// only once its signature has verified, to the key's holder.
    pub const fn tells_about_the_client(&self) -> bool {
        matches!(self, Self::NoKeys | Self::UnknownKid | Self::NoKeyForAlg | Self::BadSignature)
    }

    /// The short reason for metrics and the audit trail.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Malformed => "assertion_malformed",
            Self::AlgNone => "assertion_alg_none",
            Self::AlgHmac => "assertion_alg_hmac",
            Self::AlgNotAllowed => "assertion_alg_not_allowed",
            Self::NoKeys => "assertion_no_keys",
            Self::UnknownKid => "assertion_unknown_kid",
            Self::NoKeyForAlg => "assertion_no_key_for_alg",
            Self::BadSignature => "assertion_bad_signature",
            Self::BadClaims => "assertion_bad_claims",
            Self::WrongIssuerOrSubject => "assertion_wrong_iss_sub",
            Self::WrongAudience => "assertion_wrong_aud",
            Self::MissingExp => "assertion_missing_exp",
            Self::Expired => "assertion_expired",
            Self::TooLong => "assertion_too_long",
            Self::NotYetValid => "assertion_not_yet_valid",
            Self::MissingJti => "assertion_missing_jti",
            Self::Replayed => "assertion_replayed",
        }
    }
}

/// The claims of an unverified assertion's payload that name the client: `sub`, else `iss`.
/// Used only to find which credential's keys to check the assertion with.
pub fn claimed_client(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = B64.decode(payload.as_bytes()).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let pick = |k: &str| v.get(k).and_then(|s| s.as_str()).map(str::to_owned);
    pick("sub").or_else(|| pick("iss"))
}

/// What a verified assertion establishes, for the single-use check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAssertion {
    pub jti: String,
    pub exp: UnixTime,
    /// The thumbprint of the key that verified it.
    pub key_thumbprint: String,
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Aud>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    nbf: Option<i64>,
    #[serde(default)]
    jti: Option<String>,
}

/// Checks an assertion for `client_id`, against its `keys`, accepting any audience in
/// `audiences` (the issuer and the token endpoint URLs), at `now`.
pub fn verify(
    assertion: &str,
    client_id: &str,
    keys: &[ClientKey],
    audiences: &[impl AsRef<str>],
    now: UnixTime,
) -> Result<VerifiedAssertion, AssertionError> {
    let mut parts = assertion.split('.');
    let (Some(h), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AssertionError::Malformed);
    };
    let header: Header = B64
        .decode(h.as_bytes())
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or(AssertionError::Malformed)?;
    let alg = header.alg.as_str();
    if alg.eq_ignore_ascii_case("none") {
        return Err(AssertionError::AlgNone);
    }
    if alg.starts_with("HS") {
        return Err(AssertionError::AlgHmac);
    }
    if !ALLOWED_ALGS.contains(&alg) {
        return Err(AssertionError::AlgNotAllowed);
    }
    let algorithm: Algorithm = alg.parse().map_err(|_| AssertionError::AlgNotAllowed)?;
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    // Which registered keys could have signed it. When none could, a signature check against
    // a stand-in key of the same kind is spent all the same: a client without a fitting key,
    // and a client_id that does not exist (checked with no keys), cost what a wrong signature
    // costs, so timing tells nothing about which ids or kids exist.
    let named = |k: &&ClientKey| header.kid.as_deref().is_none_or(|kid| k.is_named(kid));
    let candidates: Vec<&ClientKey> = keys.iter().filter(named).filter(|k| k.fits(alg)).collect();
    if candidates.is_empty() {
        let stand_in = stand_in_key(alg);
        let _ = std::hint::black_box(
            jsonwebtoken::decode::<serde_json::Value>(assertion, &stand_in, &validation).is_ok(),
        );
        return Err(if keys.is_empty() {
            AssertionError::NoKeys
        } else if header.kid.is_some() && !keys.iter().any(|k| named(&k)) {
            AssertionError::UnknownKid
        } else {
            AssertionError::NoKeyForAlg
        });
    }
    let mut verified = None;
    for key in candidates {
        let Some(dk) = key.decoding_key() else { continue };
        if let Ok(data) = jsonwebtoken::decode::<serde_json::Value>(assertion, &dk, &validation) {
            verified = Some((data.claims, key));
            break;
        }
    }
    let (claims, key) = verified.ok_or(AssertionError::BadSignature)?;
    let claims: Claims = serde_json::from_value(claims).map_err(|_| AssertionError::BadClaims)?;
    // RFC 7523 §3: iss and sub are the client_id (RFC 7521 §5.2).
    if claims.iss.as_deref() != Some(client_id) || claims.sub.as_deref() != Some(client_id) {
        return Err(AssertionError::WrongIssuerOrSubject);
    }
    let accepted = |a: &String| audiences.iter().any(|x| x.as_ref() == a);
    let aud_ok = match &claims.aud {
        Some(Aud::One(a)) => accepted(a),
        Some(Aud::Many(list)) => list.iter().any(accepted),
        None => false,
    };
    if !aud_ok {
        return Err(AssertionError::WrongAudience);
    }
    let exp = claims.exp.ok_or(AssertionError::MissingExp)?;
    if exp.saturating_add(CLOCK_SKEW_SECS) <= now {
        return Err(AssertionError::Expired);
    }
    if claims.iat.is_some_and(|iat| iat > now.saturating_add(CLOCK_SKEW_SECS))
        || claims.nbf.is_some_and(|nbf| nbf > now.saturating_add(CLOCK_SKEW_SECS))
    {
        return Err(AssertionError::NotYetValid);
    }
    let longest = MAX_ASSERTION_LIFETIME_SECS.saturating_add(CLOCK_SKEW_SECS);
    if exp.saturating_sub(now) > longest
        || claims.iat.is_some_and(|iat| exp.saturating_sub(iat) > MAX_ASSERTION_LIFETIME_SECS)
    {
        return Err(AssertionError::TooLong);
    }
    let jti = match claims.jti {
        Some(j) if !j.is_empty() && j.len() <= MAX_JTI_LEN => j,
        _ => return Err(AssertionError::MissingJti),
    };
    Ok(VerifiedAssertion { jti, exp, key_thumbprint: key.thumbprint() })
}

/// A public key nobody holds the private half of, of the kind `alg` needs: what an assertion
/// that no registered key fits is checked against, so that refusing it costs a signature check.
fn stand_in_key(alg: &str) -> DecodingKey {
    const RSA_N: &str = "t7uBWKn6uTXis5aTyDhyx_YrALVY4BmDXcmttcl9vxifKsviyvO4VqMDyIN0DDCGYJR5kwlhZCIYRqyDQgnc4NTa1QUyEiuHTGoois2nhA_GxschXKHK-sEG-3PaOptTPku5h5FkgBXw6BpgnnBv4dUw6imM7yEKDu1Lx3I6RCy7ULOtP0nITbyHavBSwG8WM1owVQSmZXNkh20cl_ZmZn2xL6Jj-bQgusct3gP0Zvg1r9NJ_r9RtRanCpwZP1NiNeIyjGqMQrDZdy_HIc1UNJFeMYEqlHyCg3cdM_idpD6cw2NF4HUNnrcqQ6do3GG38HFJ0vzfRcWy1GheDJYG9Q";
    const P256: (&str, &str) = (
        "ETmegEiOdzmn-ymGCk9LQpGkMzvAsq8vmkAVr2kEthc",
        "MJKAbUP9OVDsTSIEKBElJx-hw4c26BHJuzSR-_ssvEw",
    );
    const P384: (&str, &str) = (
        "3-z4vPJm1Tt4Cu6xMOCvn8M7t6zfjp4NRGtBCftJSEbX2jLa4kB1PszR8D_mkOhY",
        "BPHO-kDEJsRMbNVIsJcgCtaMT_Tz2xuKM3owcKsGpHDcqpO3l-gV7NDR5gpRCLv5",
    );
    const ED25519_X: &str = "sM2my2u7YhgaDjUzso0HgXK6lAmjeKIX55uG2uUDMv8";
    let key = match alg {
        "ES256" => DecodingKey::from_ec_components(P256.0, P256.1),
        "ES384" => DecodingKey::from_ec_components(P384.0, P384.1),
        "EdDSA" => DecodingKey::from_ed_components(ED25519_X),
        _ => DecodingKey::from_rsa_components(RSA_N, "AQAB"),
    };
    // The constants above are valid keys; an error here would be a bug, and the secret-free
    // fallback still refuses (no signature verifies under an empty HMAC-less key).
    key.unwrap_or_else(|_| DecodingKey::from_secret(&[]))
}

/// The key under which an assertion's single use is recorded: a fixed-length hash of the
/// client and the `jti` (partner-chosen text of any shape never reaches a key or a column).
pub fn replay_key(client_id: &str, jti: &str) -> String {
    let mut input = Vec::with_capacity(client_id.len() + jti.len() + 1);
    input.extend_from_slice(client_id.as_bytes());
    input.push(0);
    input.extend_from_slice(jti.as_bytes());
    B64.encode(crate::crypto::sha256(&input))
}

/// Until when a used `jti` must be remembered: as long as the assertion could still be
/// accepted.
pub fn remember_until(exp: UnixTime) -> UnixTime {
    exp.saturating_add(CLOCK_SKEW_SECS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header as JwtHeader, encode};

    #[test]
    fn rfc_7638_thumbprint_example_matches() {
        // RFC 7638 §3.1.
        let jwk = r#"{"kty":"RSA","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB","alg":"RS256","kid":"2011-04-29"}"#;
        let keys = parse_public_keys(jwk).unwrap();
        assert_eq!(keys[0].thumbprint(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
    }

    #[test]
    fn a_key_id_holding_a_control_separator_or_format_character_is_refused() {
        let x = B64.encode([7u8; 32]);
        let jwk = |kid: &str| {
            serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid}).to_string()
        };
        assert!(parse_public_keys(&jwk("key-2026")).is_ok());
        for c in ['\u{1b}', '\u{202e}', '\u{2066}', '\u{200b}', '\u{2028}', '\u{feff}'] {
            assert!(parse_public_keys(&jwk(&format!("key{c}2026"))).is_err(), "{c:?}");
        }
    }

    #[test]
    fn private_and_symmetric_keys_are_refused() {
        assert!(parse_public_keys(r#"{"kty":"oct","k":"c2VjcmV0"}"#).is_err());
        assert!(
            parse_public_keys(r#"{"kty":"EC","crv":"P-256","x":"a","y":"b","d":"c"}"#).is_err()
        );
        assert!(
            parse_public_keys("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----")
                .is_err()
        );
        assert!(parse_public_keys("garbage").is_err());
    }

    #[test]
    fn parsers_never_panic_on_junk() {
        for junk in ["{", "{\"keys\":5}", "{\"keys\":[]}", "-----BEGIN PUBLIC KEY-----\n!!\n"] {
            assert!(parse_public_keys(junk).is_err());
        }
        assert!(spki(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]).is_none());
        assert!(spki(&[]).is_none());
    }

    proptest::proptest! {
        #[test]
        fn uploads_and_assertions_of_any_shape_never_panic(s in ".{0,300}") {
            let _ = parse_public_keys(&s);
            let _ = claimed_client(&s);
            let _ = verify(&s, "tmc_x", &[], &["https://a"], 0);
        }
    }

    #[test]
    fn hmac_signed_with_the_public_key_is_refused() {
        let key = ClientKey {
            kid: None,
            alg: None,
            material: KeyMaterial::Ed25519 { x: B64.encode([7u8; 32]) },
        };
        let claims = serde_json::json!({"iss":"c","sub":"c","aud":"a","exp":100,"jti":"j"});
        let token = encode(
            &JwtHeader::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(key.thumbprint().as_bytes()),
        )
        .unwrap();
        assert_eq!(verify(&token, "c", &[key], &["a"], 50), Err(AssertionError::AlgHmac));
    }
}
