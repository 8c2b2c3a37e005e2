//! Where the revocation follower gets its own bearer token.
//!
//! The feed is authenticated: its reader needs an access token with the
//! `tokenmint:revocations` scope, obtained through the client-credentials grant. Obtaining and
//! renewing it is the client SDK's job, so the follower only asks a [`TokenSource`], and tells
//! it when the feed refused the token it was given.

use std::fmt;
use std::future::Future;

/// A bearer token the verifier presents to the issuer. Its `Debug` output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(String);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }

    /// The token itself, for an `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken([redacted])")
    }
}

/// A token source could not provide a token.
#[derive(Debug, thiserror::Error)]
#[error("no token for the revocation feed: {0}")]
pub struct TokenSourceError(Box<dyn std::error::Error + Send + Sync>);

impl TokenSourceError {
    pub fn new(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(error.into())
    }
}

/// Provides the bearer token the revocation follower sends to the feed.
///
/// Implementations cache the token and renew it before it expires; the follower asks for it
/// before every feed request.
pub trait TokenSource: Send + Sync + 'static {
    /// A currently valid token.
    fn token(&self) -> impl Future<Output = Result<BearerToken, TokenSourceError>> + Send;

    /// The feed answered 401 to `rejected`: drop it, so the next [`token`](Self::token) call
    /// obtains a new one.
    fn invalidate(&self, rejected: &BearerToken) -> impl Future<Output = ()> + Send;
}

/// A fixed token: for tests, and for deployments that inject a long-lived token.
#[derive(Debug, Clone)]
pub struct StaticToken(BearerToken);

impl StaticToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(BearerToken::new(token))
    }
}

impl TokenSource for StaticToken {
    async fn token(&self) -> Result<BearerToken, TokenSourceError> {
        Ok(self.0.clone())
    }

    async fn invalidate(&self, _rejected: &BearerToken) {
        tracing::warn!("the revocation feed refused the configured static token");
    }
}

impl<T: TokenSource> TokenSource for std::sync::Arc<T> {
    fn token(&self) -> impl Future<Output = Result<BearerToken, TokenSourceError>> + Send {
        (**self).token()
    }

    fn invalidate(&self, rejected: &BearerToken) -> impl Future<Output = ()> + Send {
        (**self).invalidate(rejected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bearer_token_never_shows_in_debug_output() {
        let token = BearerToken::new("eyJhbGciOiJSUzI1NiJ9.secret.sig");
        assert_eq!(format!("{token:?}"), "BearerToken([redacted])");
        assert!(!format!("{:?}", StaticToken::new("secret-value")).contains("secret-value"));
    }
}
