//! The one error type of the crate.
//!
//! It is `Clone` because a single token fetch answers many waiting callers, each of whom gets the
//! same outcome. No variant ever carries the client secret or a token: text relayed from the
//! server has every encoded form of the secret masked and its control characters escaped, and
//! response bodies that might hold a token are never quoted. [`Error::kind`] sorts the variants
//! into what a caller reacts to differently (a command-line tool's exit status, say).

use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;

/// Everything that can go wrong while obtaining a token or sending an authenticated request.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The token endpoint refused the request with an RFC 6749 §5.2 error body, for example
    /// `invalid_client`. Such errors are never retried.
    #[error("token endpoint answered {status} {error}{}{}", asked(.retry_after), describe(.description))]
    OAuth {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// The server's `error` code.
        error: String,
        /// The server's `error_description`, if it sent one.
        description: Option<String>,
        /// The server's `Retry-After`, if it sent one (a 429 `slow_down` answer, say, which is
        /// retried like any 429 until the retries run out or the pause is too long).
        retry_after: Option<Duration>,
    },

    /// The token endpoint answered with an HTTP error status and no RFC 6749 error body, or
    /// kept answering 429 or 5xx until the retries ran out, or asked to wait longer than the
    /// retry policy's `max_retry_after`.
    #[error("token endpoint answered {status} after {attempts} attempt(s){}{}", asked(.retry_after), excerpt(.body))]
    Status {
        /// The last HTTP status received.
        status: StatusCode,
        /// How many requests were sent.
        attempts: u32,
        /// The server's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
        /// The start of the response body, secret masked and control characters escaped.
        body: Option<String>,
    },

    /// The token endpoint could not be reached, or did not answer in time.
    #[error("token endpoint {} after {attempts} attempt(s)", transport_what(source))]
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

    /// The token endpoint issued a token of a type other than `Bearer` (for example `DPoP`),
    /// which this client does not know how to present; RFC 6749 §7.1 forbids using it.
    #[error(
        "token endpoint issued a {0:?} token, but only Bearer tokens can be used (RFC 6749 §7.1)"
    )]
    UnsupportedTokenType(String),

    /// Authorization server metadata could not be discovered (RFC 8414).
    #[error("discovery from {issuer} failed: {reason}")]
    Discovery {
        /// The configured issuer.
        issuer: String,
        /// What went wrong.
        reason: String,
        /// Whether the server could not be reached, did not answer in time, answered with an
        /// error status, or answered with something that is not usable metadata.
        kind: ErrorKind,
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

/// What kind of failure an [`Error`] is: the distinctions a caller acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The token endpoint judged the request and refused it with an RFC 6749 §5.2 error
    /// (`invalid_client`, `invalid_scope`, `invalid_target` …): wrong credentials or a request
    /// the client may not make. Asking again unchanged will not help.
    Refused,
    /// An HTTP error status without an RFC 6749 error, a server error, or 429 and 5xx until the
    /// retries ran out or the server asked for a longer pause than the client waits.
    Status,
    /// The server could not be reached (name resolution, connection refused, TLS) or the
    /// connection failed before the answer was complete.
    Network,
    /// No answer, or no progress, within the time allowed.
    Timeout,
    /// An answer that breaks the protocol: not JSON, no access token, a token type the client
    /// cannot use, metadata naming another issuer.
    InvalidResponse,
    /// Nothing was sent: the configuration, the secret's source or the runtime.
    Local,
}

impl Error {
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::OAuth { status, .. } if status.is_client_error() && *status != 429 => {
                ErrorKind::Refused
            }
            Self::OAuth { .. } | Self::Status { .. } => ErrorKind::Status,
            Self::Transport { source, .. } | Self::Request(source) => transport_kind(source),
            Self::Timeout(_) => ErrorKind::Timeout,
            Self::InvalidResponse(_) | Self::UnsupportedTokenType(_) => ErrorKind::InvalidResponse,
            Self::Discovery { kind, .. } => *kind,
            Self::Secret(_) | Self::Config(_) | Self::BlockingInAsyncContext | Self::Aborted => {
                ErrorKind::Local
            }
        }
    }

    /// The RFC 6749 `error` code, when the token endpoint sent one.
    pub fn oauth_error(&self) -> Option<&str> {
        match self {
            Self::OAuth { error, .. } => Some(error),
            _ => None,
        }
    }

    /// How long the token endpoint asked to wait (its `Retry-After`), when it answered with an
    /// error and said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::OAuth { retry_after, .. } | Self::Status { retry_after, .. } => *retry_after,
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

/// A failed request is a timeout when any cause in its chain timed out (connect, read or whole
/// request), and a network failure otherwise.
/// What a transport failure was, as the message says it.
fn transport_what(error: &reqwest::Error) -> &'static str {
    match transport_kind(error) {
        ErrorKind::Timeout => "did not answer in time",
        ErrorKind::InvalidResponse => "answered with something that is not valid HTTP",
        _ => "could not be reached",
    }
}

fn transport_kind(error: &reqwest::Error) -> ErrorKind {
    if error.is_timeout() {
        return ErrorKind::Timeout;
    }
    // An answer that is not HTTP (a header with bytes no header may hold, a status line that
    // does not parse) came from a server that was reached: it breaks the protocol.
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if e.downcast_ref::<hyper::Error>().is_some_and(hyper::Error::is_parse) {
            return ErrorKind::InvalidResponse;
        }
        source = e.source();
    }
    ErrorKind::Network
}

fn asked(retry_after: &Option<Duration>) -> String {
    retry_after.map(|wait| format!(" and asked to wait {} s", wait.as_secs())).unwrap_or_default()
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
