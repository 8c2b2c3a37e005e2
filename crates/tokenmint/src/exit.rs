//! Exit statuses that tell a script what went wrong, and the failures that carry them.
//!
//! The client commands (`token`, `call`) and the admin commands end with a distinct status for
//! each kind of failure a script reacts to differently: retrying helps after a network error or
//! a timeout, never after refused credentials. The numbers follow curl's where the meaning is the
//! same (7, 8, 22, 28), so scripts written around `curl --fail` read them the same way.

use std::fmt;
use std::time::Duration;

use tokenmint_client::ErrorKind;

/// Any other failure: a bad option value, an unreadable file, a local I/O error.
pub const FAILURE: u8 = 1;
/// A command-line usage error (clap's own status for them).
pub const USAGE: u8 = 2;
/// The token endpoint refused the credentials or the request (an RFC 6749 error such as
/// `invalid_client`, `invalid_scope`, `invalid_target`).
pub const REFUSED: u8 = 3;
/// The token endpoint (or its discovery) answered with an HTTP error that is not a refusal: a
/// wrong URL, a server failing, or still rate-limited when the retries ran out.
pub const TOKEN_ENDPOINT: u8 = 4;
/// A server could not be reached, or the connection failed during the exchange.
pub const NETWORK: u8 = 7;
/// A server's answer breaks the protocol: not a token response, a token type other than
/// Bearer, unusable metadata.
pub const MALFORMED: u8 = 8;
/// The API's final answer was an HTTP error (4xx or 5xx), as with `curl --fail`.
pub const HTTP_ERROR: u8 = 22;
/// A server did not connect, answer or keep sending within the time allowed.
pub const TIMEOUT: u8 = 28;
/// `call -L` followed the most redirects it follows without reaching an answer (curl's 47).
pub const TOO_MANY_REDIRECTS: u8 = 47;

/// The table `--help` and the README show.
pub const HELP: &str = "\
Exit status:
  0   success
  1   any other failure (a bad option value, an unreadable file)
  2   a command-line usage error (also a malformed call URL, -H header or -X method)
  3   the token endpoint refused the credentials or the request (invalid_client, invalid_scope...)
  4   the token endpoint answered with another HTTP error (wrong URL, server failing, rate limit)
  7   a server could not be reached, or the connection failed (also mid-way through a body)
  8   a server's answer breaks the protocol (not a token response, a token type other than Bearer)
  22  the API's final answer was an HTTP error (4xx or 5xx)
  28  a server did not connect or answer within --connect-timeout / --timeout
  47  call -L met more than 10 redirects";

/// The exit status of a failure of `kind`.
pub fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        ErrorKind::Refused => REFUSED,
        ErrorKind::Status => TOKEN_ENDPOINT,
        ErrorKind::Network => NETWORK,
        ErrorKind::Timeout => TIMEOUT,
        ErrorKind::InvalidResponse => MALFORMED,
        _ => FAILURE,
    }
}

/// A failure with its exit status and, where one helps, a hint naming the setting to look at.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), hint: None }
    }

    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The exit status of an error that reached `main`: a [`Failure`]'s own, else the kind of the
/// first client or HTTP error in its chain, else [`FAILURE`].
pub fn code_of(error: &anyhow::Error) -> u8 {
    for cause in error.chain() {
        if let Some(failure) = cause.downcast_ref::<Failure>() {
            return failure.code;
        }
        if let Some(client) = cause.downcast_ref::<tokenmint_client::Error>() {
            return for_kind(client.kind());
        }
        if let Some(http) = cause.downcast_ref::<reqwest::Error>() {
            return if http.is_timeout() { TIMEOUT } else { NETWORK };
        }
    }
    FAILURE
}

/// The hint of the [`Failure`] (or admin API refusal) in `error`'s chain, if it has one.
pub fn hint_of(error: &anyhow::Error) -> Option<&str> {
    error.chain().find_map(|c| {
        if let Some(failure) = c.downcast_ref::<Failure>() {
            return failure.hint.as_deref();
        }
        c.downcast_ref::<crate::admin_client::ApiRefusal>().and_then(|r| r.hint.as_deref())
    })
}

/// `error` followed by each of its causes that says something new ("connection refused"), for
/// one-line messages built from a library error.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Why `serve` or `gateway` could not listen on `addr`, in words a person starting it for the
/// first time can act on; `where_set` names the places the address comes from.
pub fn listen_failure(
    addr: std::net::SocketAddr,
    error: &std::io::Error,
    where_set: &str,
) -> Failure {
    use std::io::ErrorKind;
    let (what, hint) = match error.kind() {
        ErrorKind::AddrInUse => (
            "the address is already in use by another process (perhaps another tokenmint)"
                .to_owned(),
            format!("stop the other process, or pick a free address with {where_set}"),
        ),
        ErrorKind::PermissionDenied => (
            "permission denied (ports below 1024 need privileges)".to_owned(),
            format!("use a port above 1023 with {where_set}"),
        ),
        ErrorKind::AddrNotAvailable => (
            "no network interface of this machine has that address".to_owned(),
            format!("use one of its addresses, or 0.0.0.0 for all of them, with {where_set}"),
        ),
        _ => (error.to_string(), format!("check the address given with {where_set}")),
    };
    Failure::new(FAILURE, format!("cannot listen on {addr}: {what}")).hint(hint)
}

/// `30s`, `1m 30s`: how durations appear in messages.
pub fn duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_client_failure_has_its_own_status() {
        let kinds = [
            ErrorKind::Refused,
            ErrorKind::Status,
            ErrorKind::Network,
            ErrorKind::Timeout,
            ErrorKind::InvalidResponse,
        ];
        let mut codes: Vec<u8> = kinds.iter().map(|k| for_kind(*k)).collect();
        codes.push(HTTP_ERROR);
        codes.push(TOO_MANY_REDIRECTS);
        codes.push(FAILURE);
        codes.push(USAGE);
        let count = codes.len();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), count, "two kinds share an exit status");
        for code in codes {
            assert!(HELP.contains(&format!("\n  {code} ")), "{code} is not in the help table");
        }
    }

    #[test]
    fn a_failure_deep_in_the_chain_decides_the_status() {
        let error = anyhow::Error::new(Failure::new(TIMEOUT, "slow")).context("calling the API");
        assert_eq!(code_of(&error), TIMEOUT);
        assert_eq!(code_of(&anyhow::anyhow!("plain")), FAILURE);
        let error = anyhow::Error::new(tokenmint_client::Error::InvalidResponse("x".into()))
            .context("fetching a token");
        assert_eq!(code_of(&error), MALFORMED);
    }

    #[test]
    fn a_message_names_the_root_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = anyhow::Error::new(io).context("cannot reach the API");
        let error: &dyn std::error::Error = error.as_ref();
        assert_eq!(with_causes(error), "cannot reach the API: connection refused");
    }
}
