//! Compact JWS encoding of access tokens and verification of tokenmint's own tokens.
//!
//! Signing is done here rather than through a general JOSE library because the token endpoint
//! is the hot path: the header is fixed per key and precomputed, claims are serialised from
//! borrowed data straight into the output buffer, and nothing else is allocated. Verification
//! of foreign tokens lives in `tokenmint-verify`, which uses a general JOSE library; the
//! test-suite checks our tokens with that library and with others.

use crate::keys::{KeyError, PublicKey, SigningKey};
use crate::{Environment, UnixTime};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokenmint_proto::AccessTokenClaims;

/// The `aud` claim, borrowed.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum AudienceRef<'a> {
    One(&'a str),
    Many(&'a [String]),
}

/// The claims of an access token, borrowed from the credential and configuration so that
/// building them allocates nothing.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct ClaimsRef<'a> {
    pub iss: &'a str,
    pub sub: &'a str,
    pub client_id: &'a str,
    pub aud: AudienceRef<'a>,
    pub iat: UnixTime,
    pub exp: UnixTime,
    pub jti: &'a str,
    pub scope: &'a str,
    pub env: Environment,
    pub org: &'a str,
    /// Custom claims, as the members of a JSON object without its braces
    /// ([`crate::claims::CustomClaims::json_members`]); empty for none. Their names were
    /// checked against the claims above when they were set, so they never clash.
    #[serde(skip)]
    pub extra: &'a str,
}

#[derive(Debug, Error)]
pub enum JwtError {
    #[error("the token is not a compact JWS")]
    Malformed,
    #[error("the token's header is not acceptable")]
    Header,
    #[error("the token was not signed by a key of this server")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    Signature,
    #[error("the token's claims are not acceptable")]
    Claims,
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Signs `claims` with `key` into a compact JWS (RFC 7515 §7.1).
pub fn encode(key: &SigningKey, claims: &ClaimsRef<'_>) -> Result<String, JwtError> {
    let mut out = String::with_capacity(640);
    out.push_str(key.header_b64());
    out.push('.');
    let mut json = serde_json::to_vec(claims).map_err(|_| JwtError::Claims)?;
    if !claims.extra.is_empty() {
        // Splice the custom claims in before the closing brace.
        json.pop();
        json.push(b',');
        json.extend_from_slice(claims.extra.as_bytes());
        json.push(b'}');
    }
    URL_SAFE_NO_PAD.encode_string(&json, &mut out);
    let signing_input_len = out.len();
    let mut sig = String::with_capacity(344);
    key.sign_into(&out.as_bytes()[..signing_input_len], &mut sig)?;
    out.push('.');
    out.push_str(&sig);
    Ok(out)
}

#[derive(Deserialize)]
struct Header<'a> {
    alg: &'a str,
    #[serde(default)]
    kid: Option<&'a str>,
    #[serde(default)]
    typ: Option<&'a str>,
}

/// Longest token [`decode`] looks at.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Verifies a token signed by one of `keys` and returns its claims. Expiry, issuer and
/// revocation are for the caller to check: they depend on time and state.
pub fn decode(token: &str, keys: &[PublicKey]) -> Result<AccessTokenClaims, JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let header_json = URL_SAFE_NO_PAD.decode(h).map_err(|_| JwtError::Malformed)?;
    let header: Header<'_> = serde_json::from_slice(&header_json).map_err(|_| JwtError::Header)?;
    if !header.typ.is_some_and(|t| t.eq_ignore_ascii_case("at+jwt")) {
        return Err(JwtError::Header);
    }
    let kid = header.kid.ok_or(JwtError::Header)?;
    // The key decides the algorithm; the header must agree (no alg confusion, no "none").
    let key = keys.iter().find(|k| k.kid == kid).ok_or(JwtError::UnknownKey)?;
    if header.alg != key.alg.as_str() {
        return Err(JwtError::Header);
    }
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed)?;
    let signing_input = &token[..h.len() + 1 + c.len()];
    if !key.verify(signing_input.as_bytes(), &sig) {
        return Err(JwtError::Signature);
    }
    let claims_json = URL_SAFE_NO_PAD.decode(c).map_err(|_| JwtError::Malformed)?;
    serde_json::from_slice(&claims_json).map_err(|_| JwtError::Claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{GeneratedKey, SigningAlgorithm};
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    fn claims<'a>(aud: AudienceRef<'a>) -> ClaimsRef<'a> {
        ClaimsRef {
            iss: "http://localhost:8080",
            sub: "tmc_x",
            client_id: "tmc_x",
            aud,
            iat: 1_700_000_000,
            exp: 4_000_000_000,
            jti: "j1",
            scope: "eligibility:read",
            env: Environment::Sandbox,
            org: "acme",
            extra: "",
        }
    }

    #[test]
    fn tokens_verify_with_our_keys_and_with_an_independent_library() {
        for alg in SigningAlgorithm::ALL {
            let g = GeneratedKey::generate(alg).unwrap();
            let k = SigningKey::from_pkcs8(&g.kid, alg, &g.pkcs8).unwrap();
            let token = encode(&k, &claims(AudienceRef::One("https://api"))).unwrap();
            let c = decode(&token, &[k.public_key()]).unwrap();
            assert_eq!(c.scope, "eligibility:read");

            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(g.kid.as_str()));
            let jwk: jsonwebtoken::jwk::Jwk =
                serde_json::from_value(serde_json::to_value(k.jwk()).unwrap()).unwrap();
            let dk = DecodingKey::from_jwk(&jwk).unwrap();
            let alg = match alg {
                SigningAlgorithm::RS256 => Algorithm::RS256,
                SigningAlgorithm::ES256 => Algorithm::ES256,
                SigningAlgorithm::EdDSA => Algorithm::EdDSA,
            };
            let mut v = Validation::new(alg);
            v.set_audience(&["https://api"]);
            let data = jsonwebtoken::decode::<AccessTokenClaims>(&token, &dk, &v).unwrap();
            assert_eq!(data.claims.org, "acme");
        }
    }

    #[test]
    fn custom_claims_are_spliced_in_and_read_back_beside_the_fixed_ones() {
        let g = GeneratedKey::generate(SigningAlgorithm::EdDSA).unwrap();
        let k = SigningKey::from_pkcs8(&g.kid, SigningAlgorithm::EdDSA, &g.pkcs8).unwrap();
        let extra = r#""plan":{"tier":"gold"},"tenant_id":"t-42""#;
        let token = encode(&k, &ClaimsRef { extra, ..claims(AudienceRef::One("a")) }).unwrap();
        let c = decode(&token, &[k.public_key()]).unwrap();
        assert_eq!(c.org, "acme");
        assert_eq!(c.extra["tenant_id"], "t-42");
        assert_eq!(c.extra["plan"]["tier"], "gold");
        let plain = decode(&encode(&k, &claims(AudienceRef::One("a"))).unwrap(), &[k.public_key()]);
        assert!(plain.unwrap().extra.is_empty());
    }

    #[test]
    fn tampered_or_foreign_tokens_are_refused() {
        let g = GeneratedKey::generate(SigningAlgorithm::ES256).unwrap();
        let k = SigningKey::from_pkcs8(&g.kid, SigningAlgorithm::ES256, &g.pkcs8).unwrap();
        let token = encode(&k, &claims(AudienceRef::Many(&["a".into(), "b".into()]))).unwrap();
        let other = GeneratedKey::generate(SigningAlgorithm::ES256).unwrap();
        let other =
            SigningKey::from_pkcs8(&other.kid, SigningAlgorithm::ES256, &other.pkcs8).unwrap();
        assert!(matches!(decode(&token, &[other.public_key()]), Err(JwtError::UnknownKey)));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"iss":"x"}"#);
        parts[1] = &forged;
        assert!(matches!(decode(&parts.join("."), &[k.public_key()]), Err(JwtError::Signature)));
        assert!(decode("a.b", &[k.public_key()]).is_err());
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#),
            parts[1]
        );
        assert!(decode(&none, &[k.public_key()]).is_err());
    }
}
