//! The one error type of the crate.
//!
//! It is `Clone` because a single token fetch answers many waiting callers, each of whom gets the
//! same outcome. No variant ever carries the client secret or a token: messages relayed from the
//! server are scrubbed of the secret, and response bodies that might hold a token are never
//! quoted.

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

/// Everything that can go wrong while obtaining a token or sending an authenticated request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token endpoint refused the request with an RFC 6749 §5.2 error body, for example
    /// `invalid_client`. Such errors are never retried.
    #[error("token endpoint answered {status} {error}{}", describe(.description))]
    OAuth {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// The server's `error` code.
        error: String,
        /// The server's `error_description`, if it sent one.
        description: Option<String>,
    },

    /// The token endpoint answered with an HTTP error status and no RFC 6749 error body, or
    /// kept answering 429 or 5xx until the retries ran out.
    #[error("token endpoint answered {status} after {attempts} attempt(s){}", excerpt(.body))]
    Status {
        /// The last HTTP status received.
        status: StatusCode,
        /// How many requests were sent.
        attempts: u32,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The start of the response body, scrubbed of the secret.
        body: Option<String>,
    },

    /// The token endpoint could not be reached, or did not answer in time.
    #[error("token endpoint could not be reached after {attempts} attempt(s)")]
    Transport {
        /// How many requests were sent.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: Arc<reqwest::Error>,
    },

    /// The token endpoint answered 2xx with a body that is not a token response.
    #[error("token endpoint answered with an unusable response: {0}")]
    InvalidResponse(String),

    /// Authorization server metadata could not be discovered (RFC 8414).
    #[error("discovery from {issuer} failed: {reason}")]
    Discovery {
        /// The configured issuer.
        issuer: String,
        /// What went wrong.
        reason: String,
    },

    /// The client secret could not be read from its environment variable or file.
    #[error("client secret unavailable: {0}")]
    Secret(String),

    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),

    /// This caller's deadline passed while the token fetch was still running. The fetch itself
    /// goes on for the other callers waiting for it.
    #[error("no token within {0:?}")]
    Timeout(Duration),

    /// An authenticated request to the API failed before a response arrived.
    #[error("request failed")]
    Request(#[source] Arc<reqwest::Error>),

    /// The blocking facade was used from inside an async runtime, where it would deadlock.
    #[error("the blocking client cannot be used inside an async runtime; use TokenClient instead")]
    BlockingInAsyncContext,

    /// The fetch task ended without an outcome (the runtime is shutting down).
    #[error("token fetch was aborted")]
    Aborted,
}

impl Error {
    /// The RFC 6749 `error` code, when the token endpoint sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// The HTTP status the token endpoint answered with, when there was an answer.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::OAuth { status, .. } | Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

fn describe(description: &Option<String>) -> String {
    description.as_deref().map(|d| format!(": {d}")).unwrap_or_default()
}

fn excerpt(body: &Option<String>) -> String {
    body.as_deref().filter(|b| !b.is_empty()).map(|b| format!(": {b}")).unwrap_or_default()
}

impl From<reqwest::Error> for Error {
    fn from(source: reqwest::Error) -> Self {
        Self::Request(Arc::new(source))
    }
}
