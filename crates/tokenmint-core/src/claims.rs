//! Custom claims: JSON values a provider puts on a credential's (or its organization's) tokens
//! under names of its choosing, such as the partner's tenant id or plan.
//!
//! The rules live here, once, for every way claims arrive (admin API, CLI, portal, token hook):
//! a name must not be one of the registered or tokenmint claims (a token's `sub` or `scope` is
//! tokenmint's statement, which a custom claim must never shadow), names and values are
//! bounded so that a token stays well inside the size verifiers accept, `null` is refused
//! (remove the claim instead), no string of a value holds a control character (a CR or LF
//! would break every header a gateway forwards the claim in), and no number is beyond what a
//! JSON number carries exactly everywhere (±(2^53 − 1), RFC 7493 §2.2). A token's claims are the organization's, overridden by the
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
/// Most arrays and objects nested in one claim's value: far below what any verifier's JSON
/// reader accepts (Ruby's stops at 100, serde_json at 128).
pub const MAX_CLAIM_DEPTH: usize = 16;
/// Largest magnitude of a number in a claim's value: 2^53 − 1, the largest integer every JSON
/// reader carries exactly (JavaScript's `Number.MAX_SAFE_INTEGER`, RFC 7493 §2.2).
pub use tokenmint_proto::claims::MAX_SAFE_INTEGER;

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
    #[error(
        "the value of the claim '{name}' holds the control character {shown}{at}: claim strings \
         may hold any text but control characters (U+0000 to U+001F, such as NUL, tab, CR and \
         LF, and U+007F to U+009F); use a JSON array for lines"
    )]
    ControlCharacter {
        name: String,
        /// The character, as `U+000D (CR)`.
        shown: String,
        /// Where in the value, as ` at /path` (a JSON pointer), or empty for a plain string.
        at: String,
    },
    #[error(
        "the value of the claim '{name}' holds the number {number}{at}, beyond ±{MAX_SAFE_INTEGER} \
         (2^53 - 1): larger numbers are not read exactly by every verifier (JavaScript's among \
         them); give it as a string instead, such as \"12345678901234567890\""
    )]
    UnsafeNumber { name: String, number: String, at: String },
    #[error(
        "the value of the claim '{name}' nests arrays and objects deeper than \
         {MAX_CLAIM_DEPTH} levels{at}; flatten it"
    )]
    TooDeep { name: String, at: String },
    #[error(
        "the claim '{0}' is both set and removed in one update: set it to change its value, or \
         remove it, not both"
    )]
    SetAndRemoved(String),
    #[error(
        "the claims would number {count}; at most {MAX_CLAIMS} are allowed on one credential or \
         organization: remove some first"
    )]
    TooMany { count: usize },
    #[error("the claims are {bytes} bytes as JSON; the most is {max}")]
    TooLarge { bytes: usize, max: usize },
}

/// Whether `name` may be a custom claim's name.
pub fn check_name(name: &str) -> Result<(), ClaimError> {
    let printable = name.bytes().all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if name.is_empty() || name.len() > MAX_CLAIM_NAME_LEN || !printable {
        // Shown with its control characters escaped (`a\u{7}b`), not dropped: the name the
        // sender sees must be the one they sent.
        let shown: String = name.chars().take(60).flat_map(char::escape_debug).collect();
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

/// Whether `value` may be the value of the claim `name`, wherever it comes from (the admin API,
/// the CLI, the portal, the token hook): not `null`, at most [`MAX_CLAIM_VALUE_BYTES`] as
/// compact JSON, no control character in any string (object keys included, at any depth) and
/// no number beyond ±[`MAX_SAFE_INTEGER`]. Other Unicode text is welcome (a gateway forwards
/// it percent-encoded). Answers the value's size.
pub fn check_value(name: &str, value: &Value) -> Result<usize, ClaimError> {
    let bytes = check_stored_value(name, value)?;
    let mut at = String::new();
    check_content(name, value, &mut at)?;
    Ok(bytes)
}

/// The checks a stored value passes again when read: not `null` and bounded. Its content is
/// not checked again, so that a value an older release accepted (a control character in a
/// string) still loads, can be shown and removed; the gateway skips forwarding such a value.
fn check_stored_value(name: &str, value: &Value) -> Result<usize, ClaimError> {
    if value.is_null() {
        return Err(ClaimError::Null(name.to_owned()));
    }
    let bytes = value.to_string().len();
    if bytes > MAX_CLAIM_VALUE_BYTES {
        return Err(ClaimError::ValueTooLarge { name: name.to_owned(), bytes });
    }
    Ok(bytes)
}

/// Walks `value`, with `at` the JSON pointer of where it is in the claim's value.
fn check_content(name: &str, value: &Value, at: &mut String) -> Result<(), ClaimError> {
    match value {
        Value::String(s) => check_text(name, s, at),
        Value::Number(n) => {
            if tokenmint_proto::claims::is_exact_number(n) {
                Ok(())
            } else {
                // A number beyond the 64-bit integers was read as a float, rounded already:
                // shown as read, it would not be the number that was written.
                // Shown to four figures: serde_json's reading of such a number may be off in
                // its last digit, and the digits past the fourth say nothing more.
                let number = match n.as_f64().filter(|_| n.is_f64()) {
                    Some(f) => format!("near {f:.3e}"),
                    None => n.to_string(),
                };
                Err(ClaimError::UnsafeNumber { name: name.to_owned(), number, at: pointer(at) })
            }
        }
        Value::Array(_) | Value::Object(_)
            if at.bytes().filter(|&b| b == b'/').count() >= MAX_CLAIM_DEPTH =>
        {
            Err(ClaimError::TooDeep { name: name.to_owned(), at: pointer(at) })
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let len = at.len();
                at.push('/');
                at.push_str(&i.to_string());
                check_content(name, item, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        Value::Object(members) => {
            for (key, item) in members {
                check_text(name, key, at)?;
                let len = at.len();
                at.push('/');
                at.push_str(&key.replace('~', "~0").replace('/', "~1"));
                check_content(name, item, at)?;
                at.truncate(len);
            }
            Ok(())
        }
        Value::Null | Value::Bool(_) => Ok(()),
    }
}

fn check_text(name: &str, text: &str, at: &str) -> Result<(), ClaimError> {
    match text.chars().find(|c| c.is_control()) {
        None => Ok(()),
        Some(c) => Err(ClaimError::ControlCharacter {
            name: name.to_owned(),
            shown: control_name(c),
            at: pointer(at),
        }),
    }
}

/// ` at /a/0`, or nothing for the value itself. The pointer's keys are the value's own; any
/// control character in them is left out (the key is refused for it).
fn pointer(at: &str) -> String {
    if at.is_empty() {
        String::new()
    } else {
        format!(" at {}", at.chars().filter(|c| !c.is_control()).take(100).collect::<String>())
    }
}

/// `U+000A (LF)`: a control character named where it has a usual name.
fn control_name(c: char) -> String {
    let usual = match c {
        '\0' => " (NUL)",
        '\t' => " (tab)",
        '\n' => " (LF)",
        '\r' => " (CR)",
        '\u{1b}' => " (ESC)",
        '\u{7f}' => " (DEL)",
        '\u{85}' => " (NEL)",
        _ => "",
    };
    format!("U+{:04X}{usual}", u32::from(c))
}

/// Whether an update may set `set` and remove `remove`: no name may be in both (which of the
/// two was meant cannot be told).
pub fn check_edit<'a>(
    set: impl IntoIterator<Item = &'a String>,
    remove: &[String],
) -> Result<(), ClaimError> {
    match set.into_iter().find(|name| remove.contains(name)) {
        Some(name) => Err(ClaimError::SetAndRemoved(name.clone())),
        None => Ok(()),
    }
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

    /// Sets, then removes, the named claims of `self`, and checks the result's bounds. A name
    /// both set and removed is refused ([`check_edit`]).
    pub fn edited(&self, set: &Self, remove: &[String]) -> Result<Self, ClaimError> {
        check_edit(set.0.keys(), remove)?;
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
    /// were set; their names are validated again, so that a row edited by hand cannot shadow
    /// a registered claim. Their values' content is not ([`check_stored_value`]): a value an
    /// older release accepted still loads.
    pub fn from_stored(text: &str) -> Result<Self, ClaimError> {
        let map: Map<String, Value> = serde_json::from_str(text)
            .map_err(|_| ClaimError::InvalidName("(stored claims are not a JSON object)".into()))?;
        let mut out = BTreeMap::new();
        for (name, value) in map {
            check_name(&name)?;
            check_stored_value(&name, &value)?;
            out.insert(name, value);
        }
        Ok(Self(out))
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
    let value = parse_value_text(name, value)?;
    Ok((name.to_owned(), value))
}

/// A claim's value as a person types it (the CLI's `--claim NAME=VALUE`, a portal field):
/// JSON when it is JSON, else the text as a string, checked by [`check_value`].
///
/// Text written as JSON (a number, or starting with `{`, `[` or `"`) that does not read as
/// JSON is refused rather than kept as a string: a typo in `{"tier":gold}` or a number serde
/// cannot hold (`1e400`, or `1e-400`, which would be read as 0) is not the text anyone
/// meant. A key repeated inside an object is refused too ([`crate::json`]).
pub fn parse_value_text(name: &str, text: &str) -> Result<Value, String> {
    let value = match crate::json::from_str(text) {
        Ok(json) => json,
        Err(crate::json::StrictJsonError::TooDeep) => {
            return Err(
                ClaimError::TooDeep { name: name.to_owned(), at: String::new() }.to_string()
            );
        }
        Err(
            e @ (crate::json::StrictJsonError::DuplicateKey { .. }
            | crate::json::StrictJsonError::NumberOutOfRange { .. }),
        ) => {
            return Err(format!("the value of '{name}' is refused: {e}"));
        }
        Err(crate::json::StrictJsonError::Invalid(e)) if looks_like_json(text) => {
            return Err(format!(
                "the value of '{name}' looks like JSON but cannot be read as JSON ({e}); fix \
                 it, or give it as a JSON string instead, such as '{name}=\"…\"'"
            ));
        }
        Err(crate::json::StrictJsonError::Invalid(_)) => Value::String(text.to_owned()),
    };
    check_value(name, &value).map_err(|e| e.to_string())?;
    Ok(value)
}

/// Whether `text` is written as JSON that is not a bare word: a number by JSON's grammar
/// (`-1.5e400`, but not `2024-01-01` or `00012`, which stay text), an object, an array or a
/// quoted string. Such text is read as JSON or refused, never kept as a string by accident.
fn looks_like_json(text: &str) -> bool {
    let t = text.trim();
    t.starts_with(['{', '[', '"']) || is_json_number(t)
}

/// RFC 8259 §6: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(t: &str) -> bool {
    let b = t.as_bytes();
    let digits = |mut i: usize| {
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        i
    };
    let mut i = usize::from(b.first() == Some(&b'-'));
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => i = digits(i),
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let end = digits(i);
        if end == i {
            return false;
        }
        i = end;
    }
    i == b.len()
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
    fn values_nest_at_most_max_claim_depth_levels() {
        let nested = |depth: usize, open: &str, close: &str, leaf: &str| {
            format!("{}{leaf}{}", open.repeat(depth), close.repeat(depth))
        };
        for (open, close, leaf) in [("[", "]", "1"), ("{\"a\":", "}", "1")] {
            let ok: Value =
                serde_json::from_str(&nested(MAX_CLAIM_DEPTH, open, close, leaf)).unwrap();
            assert!(check_value("deep", &ok).is_ok(), "{open} at the limit");
            let deep: Value =
                serde_json::from_str(&nested(MAX_CLAIM_DEPTH + 1, open, close, leaf)).unwrap();
            let error = check_value("deep", &deep).unwrap_err().to_string();
            assert!(error.contains("deeper than 16 levels"), "{error}");
        }
    }

    #[test]
    fn a_number_serde_cannot_hold_is_refused_not_kept_as_text() {
        for value in ["1e400", "-1e400", "2E+999", "1e-400", "[1, -3E-999]"] {
            let error = parse_assignment(&format!("x={value}")).unwrap_err();
            assert!(error.contains("cannot be held by JSON readers"), "{value}: {error}");
        }
        assert_eq!(parse_assignment("x=t-42").unwrap().1, json!("t-42"));
        assert_eq!(parse_assignment("x=12").unwrap().1, json!(12));
    }

    #[test]
    fn text_written_as_json_is_read_as_json_or_refused_never_kept_as_a_string() {
        // Typos, and nesting beyond what serde_json reads at all.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        for (value, says) in [
            ("{\"a\":1", "cannot be read as JSON"),
            ("{\"tier\":gold}", "cannot be read as JSON"),
            ("[1,2", "cannot be read as JSON"),
            ("\"open", "cannot be read as JSON"),
            ("[draft]", "as a JSON string"),
            (deep.as_str(), "deeper than 16 levels"),
        ] {
            let error = parse_assignment(&format!("x={value}")).unwrap_err();
            assert!(error.contains(says), "{value}: {error}");
        }
        assert_eq!(parse_assignment("x=\"[draft]\"").unwrap().1, json!("[draft]"));
        // A bare word, or text that only contains JSON characters later, stays text.
        assert_eq!(parse_assignment("x=gold {tier}").unwrap().1, json!("gold {tier}"));
        assert_eq!(parse_assignment("x=true-ish").unwrap().1, json!("true-ish"));
        // Only text that JSON's grammar reads as a number counts as one: dates, zero-padded
        // codes and the like stay text.
        for text in ["2024-01-01", "00012", "12abc", "+5", ".5", "1.", "1e", "-", "0x1F"] {
            assert_eq!(parse_assignment(&format!("x={text}")).unwrap().1, json!(text), "{text}");
        }
        for number in ["0", "-0", "12", "-1.5", "1e3", "2E-2", "0.25"] {
            assert!(parse_assignment(&format!("x={number}")).unwrap().1.is_number(), "{number}");
        }
    }

    #[test]
    fn a_key_repeated_inside_a_value_is_refused_at_any_depth() {
        for (value, at) in
            [(r#"{"tier":"a","tier":"b"}"#, "/"), (r#"{"a":{"b":[{"c":1,"c":1}]}}"#, "/a/b/0")]
        {
            let error = parse_assignment(&format!("plan={value}")).unwrap_err();
            assert!(error.contains("appears twice") && error.contains(at), "{value}: {error}");
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

    /// One of each class of control character: C0 (NUL, tab, LF, CR, ESC), DEL and C1 (NEL,
    /// U+009F).
    pub(crate) const CONTROLS: [char; 9] =
        ['\0', '\t', '\n', '\r', '\u{1}', '\u{1b}', '\u{7f}', '\u{85}', '\u{9f}'];

    /// A value holding `c` at each place a string can be in a claim's value: the value itself,
    /// an array's item, an object's member, an object's key, deep inside.
    fn placements(c: char) -> Vec<(Value, &'static str)> {
        let s = format!("a{c}b");
        vec![
            (json!(s), ""),
            (json!(["ok", s]), " at /1"),
            (json!({"k": s}), " at /k"),
            (json!({ s.clone(): 1 }), ""),
            (json!({"k": [{"l": s}]}), " at /k/0/l"),
        ]
    }

    #[test]
    fn a_control_character_anywhere_in_a_value_is_refused_by_every_way_claims_are_set() {
        for c in CONTROLS {
            for (value, at) in placements(c) {
                let shown = format!("U+{:04X}", u32::from(c));
                let expected = |e: &ClaimError| {
                    matches!(e, ClaimError::ControlCharacter { name, shown: s, at: a }
                        if name == "note" && s.starts_with(&shown) && a == at)
                };
                let e = check_value("note", &value).unwrap_err();
                assert!(expected(&e), "{c:?} {value}: {e:?}");
                let text = e.to_string();
                assert!(text.contains("'note'") && text.contains("control characters"), "{text}");
                let e = CustomClaims::parse(map(json!({ "note": value.clone() }))).unwrap_err();
                assert!(expected(&e), "admin API, portal: {e:?}");
                let e =
                    CustomClaims::parse_hook(map(json!({ "note": value.clone() }))).unwrap_err();
                assert!(expected(&e), "token hook: {e:?}");
                // The CLI: the value as JSON, and (for a plain string) as the text itself.
                let e = parse_assignment(&format!("note={value}")).unwrap_err();
                assert!(e.contains("'note'") && e.contains(&shown), "CLI: {e}");
                if let Value::String(s) = &value {
                    let e = parse_assignment(&format!("note={s}")).unwrap_err();
                    assert!(e.contains(&shown), "CLI: {e}");
                }
                // A value an older release stored still loads (the gateway skips forwarding it).
                let stored = json!({ "note": value.clone() }).to_string();
                assert_eq!(CustomClaims::from_stored(&stored).unwrap().get("note"), Some(&value));
            }
        }
        assert!(check_value("n", &json!("U+000A as text, and Zürich, 東京, emoji 🙂")).is_ok());
        let e = check_value("n", &json!("a\r\nb")).unwrap_err().to_string();
        assert!(e.contains("U+000D (CR)"), "{e}");
    }

    #[test]
    fn numbers_beyond_what_every_reader_carries_exactly_are_refused_never_rounded() {
        for good in ["9007199254740991", "-9007199254740991", "0", "1.5", "-2.5e3", "1e15"] {
            let value: Value = serde_json::from_str(good).unwrap();
            assert!(check_value("n", &json!([value])).is_ok(), "{good}");
            assert_eq!(parse_assignment(&format!("n={good}")).unwrap().1, value, "{good}");
        }
        for bad in [
            "9007199254740992",
            "-9007199254740993",
            "18446744073709551615",
            "18446744073709551617",
            "-99999999999999999999",
            "1e300",
        ] {
            let value: Value = serde_json::from_str(bad).unwrap();
            for (placed, at) in [(value.clone(), ""), (json!({"a": [value.clone()]}), " at /a/0")] {
                let e = CustomClaims::parse_hook(map(json!({ "n": placed }))).unwrap_err();
                assert!(
                    matches!(&e, ClaimError::UnsafeNumber { name, at: a, .. } if name == "n" && a == at),
                    "{bad}: {e:?}"
                );
                assert!(e.to_string().contains("as a string"), "{e}");
            }
            let e = parse_assignment(&format!("n={bad}")).unwrap_err();
            assert!(e.contains("2^53"), "{e}");
            assert!(parse_assignment(&format!("n=\"{bad}\"")).is_ok(), "as a string, fine");
        }
        // A float beyond 2^53 is already rounded when read: the refusal does not quote the
        // rounded number back as if it were the one written.
        let e = parse_assignment("n=9007199254740993.0").unwrap_err();
        assert!(e.contains("the number near 9.007e15,"), "{e}");
        assert!(!e.contains("9007199254740993") && !e.contains("9007199254740994"), "{e}");
    }

    #[test]
    fn an_edit_that_sets_and_removes_one_name_is_refused() {
        let c = CustomClaims::parse(map(json!({"a": 1, "b": 2}))).unwrap();
        let set = CustomClaims::parse(map(json!({"b": 3, "c": 4}))).unwrap();
        let e = c.edited(&set, &["a".into(), "b".into()]).unwrap_err();
        assert_eq!(e, ClaimError::SetAndRemoved("b".into()));
        assert!(e.to_string().contains("both set and removed"), "{e}");
        let names = ["b".to_owned()];
        assert_eq!(check_edit(&names, &["b".into()]), Err(ClaimError::SetAndRemoved("b".into())));
        assert_eq!(check_edit(&names, &["B".into()]), Ok(()), "names are case-sensitive");
        assert!(c.edited(&set, &["a".into()]).is_ok());
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
