//! Types for values that must never leak: client secrets and access tokens.
//!
//! Neither type implements `Serialize`, and both print as `[redacted]` through `Debug` and
//! `Display`, so a stray `{:?}` in a log line, a `tracing` field or an error message cannot
//! expose them. The only way to the value is a method whose name says what it does.

use std::fmt;

const REDACTED: &str = "[redacted]";

/// A client secret (or any other credential string) that prints as `[redacted]`.
///
/// Cloning is cheap enough for a secret fetched once per token request; the value is kept in
/// memory only.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(Box<str>);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into().into_boxed_str())
    }

    /// The secret itself. Call it only where the value goes onto the wire.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }
}

impl From<String> for SecretString {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for SecretString {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// An OAuth 2.0 access token (RFC 6749 §1.4): a bearer credential, so as secret as the client
/// secret that obtained it.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessToken(Box<str>);

impl AccessToken {
    pub(crate) fn new(value: String) -> Self {
        Self(value.into_boxed_str())
    }

    /// The token itself, for an `Authorization: Bearer` header.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Replaces every occurrence of `secret` in server-supplied text.
///
/// A misbehaving server may echo the request in its error body; the client never repeats the
/// secret it sent, even inside a message it only relays.
pub(crate) fn scrub(text: &str, secret: &str) -> String {
    if secret.is_empty() || !text.contains(secret) {
        return text.to_owned();
    }
    text.replace(secret, REDACTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_and_token_print_as_redacted() {
        let secret = SecretString::new("hunter2");
        let token = AccessToken::new("eyJ.secret.token".to_owned());
        for text in [
            format!("{secret:?}"),
            format!("{secret}"),
            format!("{token:?}"),
            format!("{token}"),
            format!("{:?}", Some(&secret)),
        ] {
            assert!(!text.contains("hunter2") && !text.contains("eyJ"), "{text}");
            assert!(text.contains(REDACTED));
        }
        assert_eq!(secret.expose_secret(), "hunter2");
        assert_eq!(token.secret(), "eyJ.secret.token");
    }

    #[test]
    fn scrub_removes_an_echoed_secret() {
        assert_eq!(scrub("bad secret s3cr3t here", "s3cr3t"), "bad secret [redacted] here");
        assert_eq!(scrub("nothing", ""), "nothing");
    }
}
