//! The claims of a verified access token, whatever its issuer, and where each comes from.
//!
//! tokenmint's tokens carry `client_id`, a space-separated `scope`, `env` and `org`. Other
//! issuers name these differently: Auth0 and Entra ID put the client in `azp` (Entra ID v1 in
//! `appid`), Okta in `cid`; Okta lists scopes in an `scp` array, Entra ID in an `scp` string or
//! a `roles` array; none of them has `env` or `org`. A [`ClaimMapping`] per issuer says which
//! claim holds what, and [`Claims`] is the one shape every verified token comes out in.

use crate::error::{ClaimProblem, TokenClaim, VerifyError};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use tokenmint_proto::json::StrictJsonError;
use tokenmint_proto::{Audience, Environment};

/// Which claim of an issuer's tokens holds the client, the scopes, the environment and the
/// organization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClaimMapping {
    /// A space-separated string (`scope`, Entra ID's `scp`) or an array of strings (Okta's
    /// `scp`, Entra ID's `roles`). Default `scope`; a token without it has no scopes.
    pub scope_claim: String,
    /// The client the token was issued to. Default `client_id` (RFC 9068); `azp` for Auth0,
    /// Keycloak and Entra ID v2, `appid` for Entra ID v1, `cid` for Okta, or `sub`. Required.
    pub client_id_claim: String,
    /// `sandbox` or `production`; optional (a token without it has no environment).
    pub env_claim: String,
    /// The client's organization; optional.
    pub org_claim: String,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            scope_claim: "scope".to_owned(),
            client_id_claim: "client_id".to_owned(),
            env_claim: "env".to_owned(),
            org_claim: "org".to_owned(),
        }
    }
}

impl ClaimMapping {
    #[must_use]
    pub fn with_scope_claim(mut self, name: impl Into<String>) -> Self {
        self.scope_claim = name.into();
        self
    }

    #[must_use]
    pub fn with_client_id_claim(mut self, name: impl Into<String>) -> Self {
        self.client_id_claim = name.into();
        self
    }
}

/// The claims of a verified access token (RFC 9068 §2.2, RFC 7519 §4.1), mapped through the
/// issuer's [`ClaimMapping`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Claims {
    pub iss: String,
    pub sub: Option<String>,
    /// From the mapping's `client_id_claim`.
    pub client_id: String,
    /// Empty when the token has no `aud`.
    pub aud: Audience,
    pub iat: Option<i64>,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub jti: Option<String>,
    /// The granted scopes, space-separated, from the mapping's `scope_claim` (a string or an
    /// array); empty when there are none.
    pub scope: String,
    /// `None` when the token carries no environment (tokens of other issuers).
    pub env: Option<Environment>,
    /// `None` when the token carries no organization.
    pub org: Option<String>,
    /// Every other claim of the token: tokenmint's custom claims (set on the credential or its
    /// organization, or added by the token hook), or any other issuer's own.
    pub extra: BTreeMap<String, Value>,
}

impl Claims {
    /// The granted scopes, in the order the token lists them.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// A custom claim (one that is not mapped to a field above), as the token carries it.
    pub fn claim(&self, name: &str) -> Option<&Value> {
        self.extra.get(name)
    }

    /// A claim by the name a route may bind a path segment to: `client_id`, `sub`, `org` or
    /// `env`.
    pub fn named(&self, name: &str) -> Option<&str> {
        match name {
            "client_id" => Some(&self.client_id),
            "sub" => self.sub.as_deref(),
            "org" => self.org.as_deref(),
            "env" => self.env.map(Environment::as_str),
            _ => None,
        }
    }
}

fn string(value: Option<Value>, claim: TokenClaim) -> Result<Option<String>, VerifyError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::InvalidClaim(ClaimProblem::WrongType(claim))),
    }
}

/// A NumericDate (RFC 7519 §2): integer or fractional seconds.
fn date(value: Option<Value>, claim: TokenClaim) -> Result<Option<i64>, VerifyError> {
    let wrong = VerifyError::InvalidClaim(ClaimProblem::WrongType(claim));
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(Some(i)),
            #[expect(
                clippy::cast_possible_truncation,
                reason = "a date far past i64 is refused by the range check"
            )]
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
            _ => Err(wrong),
        },
        Some(_) => Err(wrong),
    }
}

/// The token's scopes as one string, separated by single spaces. Only a space (U+0020)
/// separates scopes (RFC 6749 §3.3, RFC 9068 §2.2.3): any other whitespace (a tab, a
/// no-break space, a line separator) is part of a scope, so `read\u{a0}write` is one scope that
/// matches neither `read` nor `write`; a control character among them is refused afterwards.
fn scopes(value: Option<Value>) -> Result<String, VerifyError> {
    let wrong = || VerifyError::InvalidClaim(ClaimProblem::WrongType(TokenClaim::Scope));
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => {
            Ok(s.split(' ').filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" "))
        }
        Some(Value::Array(items)) => {
            let mut out = String::new();
            for item in items {
                let Value::String(scope) = item else { return Err(wrong()) };
                if scope.is_empty() || scope.contains(' ') {
                    return Err(wrong());
                }
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&scope);
            }
            Ok(out)
        }
        Some(_) => Err(wrong()),
    }
}

/// The claims as one JSON object, read strictly ([`tokenmint_proto::json`]): a member given
/// twice, among the claims (RFC 7519 §4 allows refusing it) or inside a claim's value, is
/// refused, so that no reader of the token takes another value than this one did; so is a
/// number no reader holds, rather than `1e-400` read as 0.
fn claims_object(json: &[u8]) -> Result<Map<String, Value>, VerifyError> {
    match tokenmint_proto::json::from_slice(json) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(_) => Err(VerifyError::Malformed),
        Err(StrictJsonError::DuplicateKey { .. }) => {
            Err(VerifyError::InvalidClaim(ClaimProblem::RepeatedMember))
        }
        Err(StrictJsonError::NumberOutOfRange { .. }) => {
            Err(VerifyError::InvalidClaim(ClaimProblem::NumberOutOfRange))
        }
        Err(_) => Err(VerifyError::Malformed),
    }
}

/// Decodes the payload of a token whose signature has been verified, through `mapping`.
pub(crate) fn decode(payload: &str, mapping: &ClaimMapping) -> Result<Claims, VerifyError> {
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| VerifyError::Malformed)?;
    let mut object = claims_object(&json)?;
    let missing = |claim| VerifyError::InvalidClaim(ClaimProblem::Missing(claim));
    let iss = string(object.remove("iss"), TokenClaim::Issuer)?
        .ok_or_else(|| missing(TokenClaim::Issuer))?;
    let exp = date(object.remove("exp"), TokenClaim::Expiry)?
        .ok_or_else(|| missing(TokenClaim::Expiry))?;
    let aud = match object.remove("aud") {
        None | Some(Value::Null) => Audience::Many(Vec::new()),
        Some(value) => serde_json::from_value(value).map_err(|_| {
            VerifyError::InvalidClaim(ClaimProblem::WrongType(TokenClaim::Audience))
        })?,
    };
    // Read before `sub` is taken, so that `client_id_claim = "sub"` works.
    let client_id = match object.get(&mapping.client_id_claim) {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        Some(Value::String(_)) | None | Some(Value::Null) => return Err(VerifyError::NoClient),
        Some(_) => {
            return Err(VerifyError::InvalidClaim(ClaimProblem::WrongType(TokenClaim::Client)));
        }
    };
    let env = match string(object.remove(&mapping.env_claim), TokenClaim::Environment)? {
        None => None,
        Some(name) => Some(
            name.parse::<Environment>()
                .map_err(|_| VerifyError::InvalidClaim(ClaimProblem::Environment))?,
        ),
    };
    let scope = scopes(object.remove(&mapping.scope_claim))?;
    let org = string(object.remove(&mapping.org_claim), TokenClaim::Organization)?;
    let sub = string(object.remove("sub"), TokenClaim::Subject)?;
    let iat = date(object.remove("iat"), TokenClaim::IssuedAt)?;
    let nbf = date(object.remove("nbf"), TokenClaim::NotBefore)?;
    let jti = string(object.remove("jti"), TokenClaim::TokenId)?;
    object.remove(&mapping.client_id_claim);
    // The client, organization and scopes name who acts and are handed on (as headers, to
    // logs): a control character in them is no identity anyone issued on purpose.
    let controlled = |text: &str| text.chars().any(char::is_control);
    if controlled(&client_id) || org.as_deref().is_some_and(controlled) || controlled(&scope) {
        return Err(VerifyError::InvalidClaim(ClaimProblem::ControlCharacter));
    }
    Ok(Claims {
        scope,
        org,
        sub,
        iat,
        nbf,
        jti,
        iss,
        client_id,
        aud,
        exp,
        env,
        extra: object.into_iter().collect(),
    })
}

/// The `iss` of a token, read without verifying anything: only to pick which issuer's keys
/// to verify it with. The verified claims are checked against that issuer exactly afterwards.
/// Never act on it otherwise: anyone can write any `iss` into a token.
///
/// A token whose `iss` cannot be read is refused as a verifier of one issuer would refuse it
/// (the claims are read with the same strict reader): a repeated member, a number no reader
/// holds, `iss` missing or not a string are named, not told as "not a well-formed JWT".
pub fn read_issuer(token: &str) -> Result<String, VerifyError> {
    let payload = token.split('.').nth(1).ok_or(VerifyError::Malformed)?;
    let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| VerifyError::Malformed)?;
    let mut object = claims_object(&json)?;
    string(object.remove("iss"), TokenClaim::Issuer)?
        .ok_or(VerifyError::InvalidClaim(ClaimProblem::Missing(TokenClaim::Issuer)))
}

/// The issuer to verify `token` with, for a verifier of several issuers: [`read_issuer`]'s
/// answer, but cheap in the common case, since it runs on every request before any
/// verified-token cache. `iss` is read alone (the other members skipped, not built); only a
/// token whose `iss` cannot be read that way is read whole, to say why. Whatever else is wrong
/// with the claims, the chosen verifier finds in its full read.
pub fn pick_issuer(token: &str) -> Result<String, VerifyError> {
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: String,
    }
    let peeked = token.split('.').nth(1).and_then(|p| URL_SAFE_NO_PAD.decode(p).ok());
    // serde refuses a repeated `iss` here too, so that case is read whole and named.
    match peeked.as_deref().map(serde_json::from_slice::<Iss>) {
        Some(Ok(Iss { iss })) => Ok(iss),
        _ => read_issuer(token),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn payload(claims: &Value) -> String {
        URL_SAFE_NO_PAD.encode(claims.to_string())
    }

    #[test]
    fn only_a_space_separates_scopes_and_other_whitespace_is_part_of_one_or_refused() {
        let mapping = ClaimMapping::default();
        let decoded = |scope: Value| {
            decode(
                &payload(&json!({"iss": "i", "exp": 2, "client_id": "c", "scope": scope})),
                &mapping,
            )
        };
        assert_eq!(decoded(json!("  a:read   b:write ")).unwrap().scope, "a:read b:write");
        for joined in ["a:read\u{a0}a:write", "a:read\u{2028}a:write", "a:read\u{3000}a:write"] {
            let c = decoded(json!(joined)).unwrap();
            assert_eq!(c.scope, joined, "one opaque scope");
            assert!(!c.scope.split(' ').any(|s| s == "a:write"), "{joined:?}");
            let c = decoded(json!([joined])).unwrap();
            assert_eq!(c.scope, joined);
        }
        for controlled in [
            "a:read\ta:write",
            "a:read\u{b}a:write",
            "a:read\u{c}a:write",
            "a:read\u{85}a:write",
            "a:read a:write\r\n",
        ] {
            assert_eq!(
                decoded(json!(controlled)).err(),
                Some(VerifyError::InvalidClaim(ClaimProblem::ControlCharacter)),
                "{controlled:?}"
            );
        }
        assert_eq!(
            decoded(json!(["a b"])).err(),
            Some(VerifyError::InvalidClaim(ClaimProblem::WrongType(TokenClaim::Scope)))
        );
    }

    #[test]
    fn a_control_character_in_the_client_the_organization_or_a_scope_is_refused() {
        let base = json!({"iss": "https://a", "client_id": "c1", "exp": 2, "org": "acme",
            "scope": "a:read"});
        for (claim, value) in [
            ("client_id", "c\r\n1"),
            ("client_id", "c\u{0}"),
            ("org", "o\nrg"),
            ("org", "o\u{85}"),
            ("scope", "a:read \u{1b}[31m"),
        ] {
            let mut claims = base.clone();
            claims[claim] = json!(value);
            let decoded = decode(&payload(&claims), &ClaimMapping::default());
            let e = decoded.err();
            assert_eq!(
                e,
                Some(VerifyError::InvalidClaim(ClaimProblem::ControlCharacter)),
                "{claim} {value:?}"
            );
            assert!(e.unwrap().to_string().contains("holds a control character"));
        }
        let mut visible = base.clone();
        visible["client_id"] = json!("c\u{2028}1");
        assert!(decode(&payload(&visible), &ClaimMapping::default()).is_ok(), "not a control");
    }

    #[test]
    fn tokenmint_claims_map_with_the_defaults() {
        let claims = decode(
            &payload(&json!({"iss": "https://a", "sub": "c1", "client_id": "c1", "aud": "x",
                "iat": 1, "exp": 2, "jti": "j", "scope": "a:read  b:write", "env": "sandbox",
                "org": "acme"})),
            &ClaimMapping::default(),
        )
        .unwrap();
        assert_eq!(claims.client_id, "c1");
        assert_eq!(claims.scope, "a:read b:write");
        assert_eq!(claims.env, Some(Environment::Sandbox));
        assert_eq!(claims.org.as_deref(), Some("acme"));
        assert!(claims.extra.is_empty(), "{:?}", claims.extra);
    }

    #[test]
    fn custom_claims_are_exposed_beside_the_mapped_ones() {
        let claims = decode(
            &payload(&json!({"iss": "https://a", "client_id": "c1", "exp": 2, "org": "acme",
                "tenant_id": "t-42", "plan": {"tier": "gold"}})),
            &ClaimMapping::default(),
        )
        .unwrap();
        assert_eq!(claims.claim("tenant_id"), Some(&json!("t-42")));
        assert_eq!(claims.claim("plan"), Some(&json!({"tier": "gold"})));
        assert_eq!(claims.claim("org"), None, "mapped claims are fields, not extras");
        assert_eq!(claims.extra.len(), 2);
    }

    #[test]
    fn other_issuers_scp_arrays_azp_and_missing_env_and_org_are_understood() {
        let mapping = ClaimMapping::default().with_scope_claim("scp").with_client_id_claim("azp");
        let claims = decode(
            &payload(&json!({"iss": "https://login/", "azp": "app", "sub": "app@clients",
                "aud": ["x", "y"], "exp": 2.5, "scp": ["read", "write"]})),
            &mapping,
        )
        .unwrap();
        assert_eq!(claims.client_id, "app");
        assert_eq!(claims.scope, "read write");
        assert_eq!((claims.env, claims.org, claims.jti, claims.iat), (None, None, None, None));
        assert_eq!(claims.exp, 2);
    }

    #[test]
    fn a_missing_client_a_repeated_member_or_a_mistyped_claim_is_refused_naming_which() {
        let mapping = ClaimMapping::default();
        let missing = payload(&json!({"iss": "i", "exp": 1}));
        assert_eq!(decode(&missing, &mapping), Err(VerifyError::NoClient));
        let duplicate =
            URL_SAFE_NO_PAD.encode(r#"{"iss":"i","exp":1,"client_id":"a","client_id":"b"}"#);
        let repeated = VerifyError::InvalidClaim(ClaimProblem::RepeatedMember);
        assert_eq!(decode(&duplicate, &mapping), Err(repeated));
        let wrong = |c| VerifyError::InvalidClaim(ClaimProblem::WrongType(c));
        for (bad, error) in [
            (json!({"iss": "i", "exp": "1", "client_id": "a"}), wrong(TokenClaim::Expiry)),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "scope": [1]}),
                wrong(TokenClaim::Scope),
            ),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "scope": ["a b"]}),
                wrong(TokenClaim::Scope),
            ),
            (json!({"iss": 1, "exp": 1, "client_id": "a"}), wrong(TokenClaim::Issuer)),
            (json!({"iss": "i", "exp": 1, "client_id": 7}), wrong(TokenClaim::Client)),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "aud": [1]}),
                wrong(TokenClaim::Audience),
            ),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "iat": "x"}),
                wrong(TokenClaim::IssuedAt),
            ),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "nbf": {}}),
                wrong(TokenClaim::NotBefore),
            ),
            (json!({"iss": "i", "exp": 1, "client_id": "a", "jti": 5}), wrong(TokenClaim::TokenId)),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "sub": []}),
                wrong(TokenClaim::Subject),
            ),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "org": 1}),
                wrong(TokenClaim::Organization),
            ),
            (
                json!({"iss": "i", "exp": 1, "client_id": "a", "env": true}),
                wrong(TokenClaim::Environment),
            ),
            (
                json!({"exp": 1, "client_id": "a"}),
                VerifyError::InvalidClaim(ClaimProblem::Missing(TokenClaim::Issuer)),
            ),
            (
                json!({"iss": "i", "client_id": "a"}),
                VerifyError::InvalidClaim(ClaimProblem::Missing(TokenClaim::Expiry)),
            ),
        ] {
            let e = decode(&payload(&bad), &mapping).unwrap_err();
            assert_eq!(e, error, "{bad}");
            assert!(!e.to_string().contains("well-formed"), "{e}");
        }
        // Inside a claim's value too, and a number no reader holds, wherever it is.
        for text in [
            r#"{"iss":"i","exp":1,"client_id":"a","plan":{"tier":"a","tier":"b"}}"#,
            r#"{"iss":"i","exp":1,"client_id":"a","x":[{"k":1},{"k":1,"k":2}]}"#,
        ] {
            assert_eq!(decode(&URL_SAFE_NO_PAD.encode(text), &mapping), Err(repeated));
        }
        for text in [
            r#"{"iss":"i","exp":1,"client_id":"a","n":1e400}"#,
            r#"{"iss":"i","exp":1,"client_id":"a","n":{"m":[-1e-400]}}"#,
        ] {
            let e = decode(&URL_SAFE_NO_PAD.encode(text), &mapping).unwrap_err();
            assert_eq!(e, VerifyError::InvalidClaim(ClaimProblem::NumberOutOfRange), "{text}");
        }
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("[1]"), &mapping), Err(VerifyError::Malformed));
        assert_eq!(decode(&URL_SAFE_NO_PAD.encode("{"), &mapping), Err(VerifyError::Malformed));
        // Well-formed, but a claim this verifier cannot take: said so, not "not a well-formed
        // JWT".
        for env in ["staging", "sandbox\r", "production\n", "", "Sandbox "] {
            let bad = json!({"iss": "i", "exp": 1, "client_id": "a", "env": env});
            let e = decode(&payload(&bad), &mapping).unwrap_err();
            assert_eq!(e, VerifyError::InvalidClaim(ClaimProblem::Environment), "{env:?}");
            assert!(e.to_string().contains("neither sandbox nor production"), "{e}");
        }
    }

    #[test]
    fn the_issuer_is_peeked_without_verification() {
        let token = format!("e30.{}.sig", payload(&json!({"iss": "https://a/"})));
        assert_eq!(read_issuer(&token).ok().as_deref(), Some("https://a/"));
        assert_eq!(read_issuer("garbage"), Err(VerifyError::Malformed));
        // Why an issuer cannot be read is said as a verifier of one issuer says it.
        let token = |claims: &str| format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims));
        let claim = VerifyError::InvalidClaim;
        for (claims, error) in [
            (r#"{"sub":"x"}"#, claim(ClaimProblem::Missing(TokenClaim::Issuer))),
            (r#"{"iss":null}"#, claim(ClaimProblem::Missing(TokenClaim::Issuer))),
            (r#"{"iss":5}"#, claim(ClaimProblem::WrongType(TokenClaim::Issuer))),
            (r#"{"iss":"a","iss":"b"}"#, claim(ClaimProblem::RepeatedMember)),
            (r#"{"iss":"a","x":{"k":1,"k":2}}"#, claim(ClaimProblem::RepeatedMember)),
            (r#"{"iss":"a","n":1e-400}"#, claim(ClaimProblem::NumberOutOfRange)),
            ("[]", VerifyError::Malformed),
        ] {
            assert_eq!(read_issuer(&token(claims)), Err(error), "{claims}");
        }
        assert_eq!(read_issuer("only-one-part"), Err(VerifyError::Malformed));
        // The cheap pick agrees wherever `iss` itself is the problem, and leaves the rest of
        // the claims to the chosen verifier.
        for claims in [r#"{"sub":"x"}"#, r#"{"iss":5}"#, r#"{"iss":"a","iss":"b"}"#, "[]"] {
            assert_eq!(pick_issuer(&token(claims)), read_issuer(&token(claims)), "{claims}");
        }
        assert_eq!(pick_issuer(&token(r#"{"iss":"a","x":{"k":1,"k":2}}"#)), Ok("a".into()));
    }
}
