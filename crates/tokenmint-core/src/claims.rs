//! Custom claims: JSON values a provider puts on a credential's (or its organization's) tokens
//! under names of its choosing, such as the partner's tenant id or plan.
//!
//! The rules live here, once, for every way claims arrive (admin API, CLI, portal, token hook):
//! a name must not be one of the registered or tokenmint claims (a token's `sub` or `scope` is
//! tokenmint's statement, which a custom claim must never shadow), names and values are
//! bounded so that a token stays well inside the size verifiers accept, and `null` is refused
//! (remove the claim instead). A token's claims are the organization's, overridden by the
//! credential's, then (at issuance) by the token hook's.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use thiserror::Error;

/// Longest claim name.
pub const MAX_CLAIM_NAME_LEN: usize = 128;
/// Longest claim value, as compact JSON.
pub const MAX_CLAIM_VALUE_BYTES: usize = 1024;
/// Most claims on one credential or one organization.
pub const MAX_CLAIMS: usize = 20;
/// Largest set of claims on one credential or one organization, as compact JSON.
pub const MAX_CLAIMS_BYTES: usize = 2048;
/// Largest set of claims a token hook may add to one token, as compact JSON.
pub const MAX_HOOK_CLAIMS_BYTES: usize = 1024;

/// Names a custom claim may never take: the registered claims of RFC 7519 §4.1, the claims of
/// RFC 9068 §2.2 and of the specifications tokenmint's tokens follow (RFC 8693 `act`, RFC 7800
/// `cnf`, OpenID Connect's `azp`, `auth_time`, `acr`, `amr`, `nonce`, `sid`, Okta's and Entra
/// ID's `scp`, `cid`, `appid`), the members of an RFC 7662 introspection answer (where custom
/// claims appear beside `active`, `token_type` and `username`), and tokenmint's own `env` and
/// `org`. Compared without regard
/// to case, so that no verifier that folds case can be fooled either.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "scope",
    "scp",
    "client_id",
    "cid",
    "appid",
    "azp",
    "cnf",
    "act",
    "may_act",
    "auth_time",
    "acr",
    "amr",
    "nonce",
    "sid",
    "typ",
    "active",
    "token_type",
    "username",
    "env",
    "org",
];

/// A prefix reserved for claims tokenmint may add later.
pub const RESERVED_PREFIX: &str = "tokenmint";

/// Why a custom claim was refused. Each message says what would be accepted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClaimError {
    #[error(
        "the claim name '{0}' is reserved: registered and tokenmint claims (iss, sub, aud, exp, \
         nbf, iat, jti, scope, client_id, cnf, env, org, …) are set by tokenmint alone and can \
         never be set or shadowed; choose another name, for example 'tenant_id' or a URI such \
         as 'https://example.com/tenant'"
    )]
    Reserved(String),
    #[error(
        "the claim name '{0}' is invalid: use 1 to {MAX_CLAIM_NAME_LEN} printable ASCII \
         characters, without spaces, quotes or backslashes"
    )]
    InvalidName(String),
    #[error("the claim '{0}' is null: remove the claim instead of setting it to null")]
    Null(String),
    #[error(
        "the value of the claim '{name}' is {bytes} bytes as JSON; the most is \
         {MAX_CLAIM_VALUE_BYTES}"
    )]
    ValueTooLarge { name: String, bytes: usize },
    #[error("{count} claims given; at most {MAX_CLAIMS} claims are allowed")]
    TooMany { count: usize },
    #[error("the claims are {bytes} bytes as JSON; the most is {max}")]
    TooLarge { bytes: usize, max: usize },
}

/// Whether `name` may be a custom claim's name.
pub fn check_name(name: &str) -> Result<(), ClaimError> {
    let printable = name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if name.is_empty() || name.len() > MAX_CLAIM_NAME_LEN || !printable {
        let shown: String = name.chars().take(60).filter(|c| !c.is_control()).collect();
        return Err(ClaimError::InvalidName(shown));
    }
    let reserved = RESERVED_CLAIMS.iter().any(|r| r.eq_ignore_ascii_case(name))
        || name
            .get(..RESERVED_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(RESERVED_PREFIX));
    if reserved {
        return Err(ClaimError::Reserved(name.to_owned()));
    }
    Ok(())
}

fn check_value(name: &str, value: &Value) -> Result<usize, ClaimError> {
    if value.is_null() {
        return Err(ClaimError::Null(name.to_owned()));
    }
    let bytes = value.to_string().len();
    if bytes > MAX_CLAIM_VALUE_BYTES {
        return Err(ClaimError::ValueTooLarge { name: name.to_owned(), bytes });
    }
    Ok(bytes)
}

/// A validated set of custom claims, ordered by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomClaims(BTreeMap<String, Value>);

impl CustomClaims {
    /// Validates claims given by an administrator: names, values, count and size.
    pub fn parse(claims: Map<String, Value>) -> Result<Self, ClaimError> {
        let out = Self::parse_unbounded(claims)?;
        out.check_bounds(MAX_CLAIMS_BYTES)?;
        Ok(out)
    }

    /// Validates claims a token hook answered with, bounded by [`MAX_HOOK_CLAIMS_BYTES`].
    pub fn parse_hook(claims: Map<String, Value>) -> Result<Self, ClaimError> {
        let out = Self::parse_unbounded(claims)?;
        out.check_bounds(MAX_HOOK_CLAIMS_BYTES)?;
        Ok(out)
    }

    fn parse_unbounded(claims: Map<String, Value>) -> Result<Self, ClaimError> {
        let mut out = BTreeMap::new();
        for (name, value) in claims {
            check_name(&name)?;
            check_value(&name, &value)?;
            out.insert(name, value);
        }
        Ok(Self(out))
    }

    /// Sets, then removes, the named claims of `self`, and checks the result's bounds.
    pub fn edited(&self, set: &Self, remove: &[String]) -> Result<Self, ClaimError> {
        let mut out = self.0.clone();
        for (k, v) in &set.0 {
            out.insert(k.clone(), v.clone());
        }
        for name in remove {
            out.remove(name);
        }
        let out = Self(out);
        out.check_bounds(MAX_CLAIMS_BYTES)?;
        Ok(out)
    }

    fn check_bounds(&self, max_bytes: usize) -> Result<(), ClaimError> {
        if self.0.len() > MAX_CLAIMS {
            return Err(ClaimError::TooMany { count: self.0.len() });
        }
        let bytes = self.to_stored().len();
        if bytes > max_bytes {
            return Err(ClaimError::TooLarge { bytes, max: max_bytes });
        }
        Ok(())
    }

    /// Reads claims as [`Self::to_stored`] wrote them. Stored claims were validated when they
    /// were set; they are validated again, so that a row edited by hand cannot shadow a
    /// registered claim.
    pub fn from_stored(text: &str) -> Result<Self, ClaimError> {
        let map: Map<String, Value> = serde_json::from_str(text)
            .map_err(|_| ClaimError::InvalidName("(stored claims are not a JSON object)".into()))?;
        Self::parse_unbounded(map)
    }

    /// The claims as one compact JSON object.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "{}".into())
    }

    /// `base` overridden, name by name, by `over`.
    pub fn overlay(base: &Self, over: &Self) -> Self {
        let mut out = base.0.clone();
        for (k, v) in &over.0 {
            out.insert(k.clone(), v.clone());
        }
        Self(out)
    }

    /// The claims as the members of a JSON object without its braces (`"a":1,"b":"x"`), ready
    /// to be spliced into a token's claims ([`crate::jwt::ClaimsRef::extra`]); empty when
    /// there are none.
    pub fn json_members(&self) -> String {
        let object = self.to_stored();
        object.get(1..object.len().saturating_sub(1)).unwrap_or_default().to_owned()
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The claims as a JSON object, for answers.
    pub fn to_map(&self) -> Map<String, Value> {
        self.0.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// Parses a `NAME=VALUE` argument: the value is JSON when it parses as JSON, else a string.
pub fn parse_assignment(arg: &str) -> Result<(String, Value), String> {
    let Some((name, value)) = arg.split_once('=') else {
        return Err(format!(
            "'{arg}' is not NAME=VALUE; for example --claim tenant_id=t-42 or --claim 'plan={{\"tier\":\"gold\"}}'"
        ));
    };
    check_name(name).map_err(|e| e.to_string())?;
    let value =
        serde_json::from_str::<Value>(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    check_value(name, &value).map_err(|e| e.to_string())?;
    Ok((name.to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn every_reserved_name_in_any_case_and_the_tokenmint_prefix_are_refused_with_the_reason() {
        for name in RESERVED_CLAIMS {
            for spelled in [name.to_string(), name.to_uppercase()] {
                let err = CustomClaims::parse(map(json!({ spelled.clone(): "x" }))).unwrap_err();
                assert_eq!(err, ClaimError::Reserved(spelled.clone()));
                assert!(err.to_string().contains("reserved"), "{err}");
                assert!(parse_assignment(&format!("{spelled}=x")).is_err());
            }
        }
        for name in ["tokenmint", "tokenmint_tier", "TokenMint:x"] {
            assert!(matches!(check_name(name), Err(ClaimError::Reserved(_))), "{name}");
        }
    }

    #[test]
    fn names_are_bounded_printable_ascii_and_uris_are_welcome() {
        for good in ["tenant_id", "https://example.com/tenant", "plan.tier", "a"] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        let long = "a".repeat(MAX_CLAIM_NAME_LEN + 1);
        for bad in ["", "with space", "quote\"", "back\\slash", "tab\t", "é", long.as_str()] {
            assert!(matches!(check_name(bad), Err(ClaimError::InvalidName(_))), "{bad}");
        }
    }

    #[test]
    fn values_counts_and_sizes_are_bounded_and_null_is_refused() {
        assert!(matches!(CustomClaims::parse(map(json!({"a": null}))), Err(ClaimError::Null(_))));
        let big = "x".repeat(MAX_CLAIM_VALUE_BYTES);
        assert!(matches!(
            CustomClaims::parse(map(json!({ "a": big }))),
            Err(ClaimError::ValueTooLarge { .. })
        ));
        let many: Map<String, Value> =
            (0..=MAX_CLAIMS).map(|i| (format!("c{i}"), json!(i))).collect();
        assert!(matches!(CustomClaims::parse(many), Err(ClaimError::TooMany { .. })));
        let large: Map<String, Value> =
            (0..3).map(|i| (format!("c{i}"), json!("y".repeat(900)))).collect();
        assert!(matches!(CustomClaims::parse(large), Err(ClaimError::TooLarge { .. })));
    }

    #[test]
    fn the_credentials_claims_win_over_the_organizations() {
        let org = CustomClaims::parse(map(json!({"tenant": "org", "plan": "basic"}))).unwrap();
        let cred = CustomClaims::parse(map(json!({"plan": "gold", "n": 1}))).unwrap();
        let merged = CustomClaims::overlay(&org, &cred);
        assert_eq!(merged.to_stored(), r#"{"n":1,"plan":"gold","tenant":"org"}"#);
        assert_eq!(merged.json_members(), r#""n":1,"plan":"gold","tenant":"org""#);
        assert_eq!(CustomClaims::default().json_members(), "");
    }

    #[test]
    fn edits_set_and_remove_names_and_stored_claims_round_trip() {
        let c = CustomClaims::parse(map(json!({"a": 1, "b": [1, 2]}))).unwrap();
        let set = CustomClaims::parse(map(json!({"c": {"d": true}}))).unwrap();
        let edited = c.edited(&set, &["a".into()]).unwrap();
        assert_eq!(edited.to_stored(), r#"{"b":[1,2],"c":{"d":true}}"#);
        assert_eq!(CustomClaims::from_stored(&edited.to_stored()).unwrap(), edited);
        assert!(CustomClaims::from_stored(r#"{"sub":"x"}"#).is_err());
    }

    #[test]
    fn assignments_take_json_when_it_parses_and_a_string_otherwise() {
        assert_eq!(parse_assignment("n=42").unwrap(), ("n".into(), json!(42)));
        assert_eq!(parse_assignment("t=t-42").unwrap(), ("t".into(), json!("t-42")));
        assert_eq!(parse_assignment(r#"p={"a":[1]}"#).unwrap(), ("p".into(), json!({"a": [1]})));
        assert_eq!(parse_assignment("s=\"7\"").unwrap(), ("s".into(), json!("7")));
        assert_eq!(parse_assignment("e=").unwrap(), ("e".into(), json!("")));
        assert!(parse_assignment("z=null").unwrap_err().contains("remove the claim"));
        assert_eq!(parse_assignment("u=a=b").unwrap(), ("u".into(), json!("a=b")));
        assert!(parse_assignment("novalue").is_err());
    }
}
