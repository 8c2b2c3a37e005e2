//! The access-token claims of RFC 9068 plus tokenmint's `env` and `org`.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The largest integer every JSON reader carries exactly, 2^53 − 1 (JavaScript's
/// `Number.MAX_SAFE_INTEGER`, RFC 7493 §2.2).
pub const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// Whether `n` is within ±[`MAX_SAFE_INTEGER`], where every JSON reader reads it exactly.
pub fn is_exact_number(n: &serde_json::Number) -> bool {
    match (n.as_u64(), n.as_i64(), n.as_f64()) {
        (Some(u), _, _) => u <= MAX_SAFE_INTEGER,
        (None, Some(i), _) => i.unsigned_abs() <= MAX_SAFE_INTEGER,
        // A number beyond the 64-bit integers is read as a float and may be rounded already:
        // never taken as it is.
        #[allow(clippy::cast_precision_loss)]
        (None, None, Some(f)) => f.is_finite() && f.abs() <= MAX_SAFE_INTEGER as f64,
        (None, None, None) => false,
    }
}

/// Whether `value` holds, at any depth, a number beyond ±[`MAX_SAFE_INTEGER`]. Such a number
/// in another issuer's token was read as a float and may be rounded already
/// (`123456789012345678901234567890` reads as `1.2345678901234568e29`): handed on, it would be
/// another number than the issuer signed, so a gateway does not forward it.
pub fn has_inexact_number(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) => !is_exact_number(n),
        Value::Array(items) => items.iter().any(has_inexact_number),
        Value::Object(members) => members.values().any(has_inexact_number),
        Value::Null | Value::Bool(_) | Value::String(_) => false,
    }
}

/// Which data a credential reaches: the provider's sandbox or its production system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Sandbox,
    Production,
}

impl Environment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error for an environment name other than `sandbox` or `production`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownEnvironment(pub String);

impl fmt::Display for UnknownEnvironment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown environment '{}': use 'sandbox' or 'production'", self.0)
    }
}

impl std::error::Error for UnknownEnvironment {}

impl FromStr for Environment {
    type Err = UnknownEnvironment;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sandbox" => Ok(Self::Sandbox),
            "production" => Ok(Self::Production),
            _ => Err(UnknownEnvironment(s.to_owned())),
        }
    }
}

/// The `aud` claim: RFC 7519 §4.1.3 allows one string or an array of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, aud: &str) -> bool {
        match self {
            Self::One(a) => a == aud,
            Self::Many(list) => list.iter().any(|a| a == aud),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&str>, &[String]) = match self {
            Self::One(a) => (Some(a.as_str()), &[]),
            Self::Many(list) => (None, list.as_slice()),
        };
        one.into_iter().chain(many.iter().map(String::as_str))
    }
}

/// The claims of a tokenmint access token (RFC 9068 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The client_id: in the client-credentials grant the client is the subject.
    pub sub: String,
    pub client_id: String,
    pub aud: Audience,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Space-separated scopes; empty when the credential has no permissions.
    #[serde(default)]
    pub scope: String,
    pub env: Environment,
    pub org: String,
    /// The custom claims set on the credential or its organization, or added by the token
    /// hook: every other top-level claim.
    #[serde(flatten, default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl AccessTokenClaims {
    /// The granted scopes, in the order the token lists them.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }
}
