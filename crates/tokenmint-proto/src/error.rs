//! RFC 6749 §5.2 error responses, with the RFC 8707 `invalid_target` code.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The `error` codes a token, introspection or revocation endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    /// RFC 8707 §2: the requested resource or audience is not allowed.
    InvalidTarget,
    /// RFC 7009 §2.2.1.
    UnsupportedTokenType,
    /// Not an RFC 6749 code; tokenmint answers it with 429 when a client asks too often.
    SlowDown,
    ServerError,
    TemporarilyUnavailable,
    /// The provider's token hook refused the request (as Auth0 answers a denying Action).
    AccessDenied,
}

impl OAuthErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::SlowDown => "slow_down",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::AccessDenied => "access_denied",
        }
    }

    /// The HTTP status RFC 6749 §5.2 (and RFC 6585 for 429) pairs with the code.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient => 401,
            Self::SlowDown => 429,
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            Self::AccessDenied => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON body of an RFC 6749 §5.2 error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self { error: code.as_str().to_owned(), error_description: Some(description.into()) }
    }
}
