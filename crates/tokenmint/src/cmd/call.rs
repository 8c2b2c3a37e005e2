//! `tokenmint call`: a curl-like request with automatic token handling. The token is fetched (or
//! taken from the cache), a 401 gets one new token and one retry, and 429, 500, 502, 503 and 504
//! answers are retried after their `Retry-After` when the request is safe to repeat. The body streams to
//! standard output as it arrives, so its size never becomes the program's memory.

use std::io::{IsTerminal as _, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use tokenmint_client::{ApiRetryPolicy, IDEMPOTENCY_KEY, NotRetried, is_safe_to_repeat};

use crate::cmd::token::ClientArgs;
use crate::exit::{self, Failure};
use crate::terminal::{TerminalSafe, header_value};

#[derive(Debug, Args)]
#[command(after_help = exit::HELP)]
pub struct CallArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The HTTP method (default GET, or POST when a body is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// The request body; `@FILE` reads it from a file, `@-` from standard input. Without a
    /// `Content-Type` header it is sent as `application/json` when it is JSON, else as
    /// `application/x-www-form-urlencoded` (curl's `-d`).
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// Print the status line and the response headers before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// Follow redirects (up to 10), as curl's `-L`: the access token is not sent to another
    /// origin, but the body of a 307 or 308 is. Without it a redirect is printed as answered
    /// and `call` says where it points.
    #[arg(short = 'L', long = "location")]
    pub location: bool,
    /// Send an `Idempotency-Key` header, so that a POST or PATCH may be retried after 429 or
    /// 5xx without being carried out twice: `auto` makes a random one, anything else is sent as
    /// given. Without it, only idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried.
    #[arg(long, env = "TOKENMINT_IDEMPOTENCY_KEY", value_name = "auto|KEY")]
    pub idempotency_key: Option<String>,
    /// The URL to call. The response body is printed whatever the status; the exit status is 22
    /// (as with `curl --fail`) when the final answer is 4xx or 5xx.
    pub url: String,
}

/// A mistake in what was typed: exit status 2, as clap's own usage errors.
fn usage(message: String, hint: &str) -> anyhow::Error {
    anyhow::Error::new(Failure::new(exit::USAGE, message).hint(hint))
}

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue)> {
    // Only the name is repeated: a value may be a credential.
    let hint =
        "write -H 'Name: value', one header per -H, without line breaks or control characters";
    let (name, value) = raw
        .split_once(':')
        .ok_or_else(|| usage("invalid header: use 'Name: value'".into(), hint))?;
    let shown = header_value(name.trim().as_bytes());
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| usage(format!("invalid header name '{shown}'"), hint))?;
    let value = HeaderValue::from_str(value.trim()).map_err(|_| {
        usage(
            format!(
                "invalid value of header '{shown}': it holds a line break or a control character"
            ),
            hint,
        )
    })?;
    Ok((name, value))
}

/// The URL to call, checked before anything is sent: a malformed one is a usage error, not a
/// server that could not be reached. The message never repeats the URL, which may hold a
/// password.
fn parse_url(raw: &str) -> Result<reqwest::Url> {
    let hint = "write the whole URL, like https://api.example.com/path or http://[::1]:8080/path";
    let url =
        reqwest::Url::parse(raw.trim()).map_err(|e| usage(format!("invalid URL: {e}"), hint))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(usage("invalid URL: use an http:// or https:// URL with a host".into(), hint));
    }
    Ok(url)
}

/// The type of a body sent without a `Content-Type`: JSON when it reads as JSON (an API's
/// usual body, as the README's examples send it), else a form, as curl's `-d` says.
fn content_type(body: &[u8]) -> &'static str {
    if serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        "application/json"
    } else {
        "application/x-www-form-urlencoded"
    }
}

/// The largest request body `-d @FILE` or `-d @-` reads.
const BODY_LIMIT: u64 = 64 * 1024 * 1024;
const BODY_LIMIT_TEXT: &str = "64 MiB";

fn read_at_most(reader: impl std::io::Read) -> std::io::Result<Option<Vec<u8>>> {
    tokenmint_http::config_file::read_at_most(reader, BODY_LIMIT)
}

fn read_body(data: &str) -> Result<Vec<u8>> {
    match data.strip_prefix('@') {
        // Read whole (a retry sends it again), but never without bound: `@/dev/zero` is
        // refused once past the limit.
        Some("-") => read_at_most(std::io::stdin().lock())
            .context("cannot read the body from stdin")?
            .ok_or_else(|| {
                anyhow::anyhow!("-d @-: standard input holds more than {BODY_LIMIT_TEXT}")
            }),
        Some(path) => std::fs::File::open(path)
            .and_then(read_at_most)
            .with_context(|| format!("cannot read the body from {path}"))?
            .ok_or_else(|| {
                anyhow::anyhow!("-d @{path}: the body is larger than {BODY_LIMIT_TEXT}")
            }),
        None => Ok(data.as_bytes().to_vec()),
    }
}

/// A random UUID (version 4), written as the Structured Field string the IETF Idempotency-Key
/// draft specifies.
fn random_idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    tokenmint_core::crypto::fill_random(&mut bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("\"{}-{}-{}-{}-{}\"", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// What `call` tells the user when an answer it would otherwise retry is final.
fn explain(note: NotRetried, method: &Method, status: reqwest::StatusCode) -> String {
    match note {
        NotRetried::NotIdempotent => format!(
            "not retrying {method} after {status}: {method} is not idempotent and the server may \
             have carried it out; add --idempotency-key auto (or KEY) to allow retries"
        ),
        NotRetried::WaitTooLong { asked, max_wait } => format!(
            "not retrying after {status}: the server asked to wait {} s (Retry-After), longer \
             than the {} s tokenmint call waits",
            asked.as_secs(),
            max_wait.as_secs()
        ),
        NotRetried::RetriesExhausted { retries } => {
            format!("giving up after {retries} retries: the server still answers {status}")
        }
        NotRetried::BodyNotReplayable => {
            format!("not retrying after {status}: the request body cannot be sent again")
        }
        NotRetried::RefusedTwice => format!(
            "the API answered {status} to the token and again to a freshly fetched one: it does \
             not accept this credential's tokens (check --scope, --audience and that the API \
             trusts this issuer)"
        ),
        _ => format!("not retrying after {status}"),
    }
}

pub async fn run(args: CallArgs) -> Result<ExitCode> {
    // What was typed is checked before any file is read or request sent.
    let url = parse_url(&args.url)?;
    let mut headers = reqwest::header::HeaderMap::new();
    for raw in &args.headers {
        let (name, value) = parse_header(raw)?;
        headers.append(name, value);
    }
    let method = match &args.method {
        Some(m) => Some(Method::from_bytes(m.to_ascii_uppercase().as_bytes()).map_err(|_| {
            usage(
                format!("invalid method '{}'", header_value(m.as_bytes())),
                "give -X a method name such as GET, POST, PUT, PATCH or DELETE",
            )
        })?),
        None => None,
    };
    let body = args.data.as_deref().map(read_body).transpose()?;
    let method = match method {
        Some(method) => method,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let config = args.client.config()?.api_retry_policy(ApiRetryPolicy {
        retry_server_errors: true,
        ..ApiRetryPolicy::default()
    });
    let client = tokenmint_client::TokenClient::builder(config)
        .http_client(args.client.http_client()?)
        .build()?;

    // The API request waits at most --timeout for the answer and then for each piece of the
    // body, so a stalled server ends the call while a long body that keeps coming is not cut.
    let redirects = if args.location {
        reqwest::redirect::Policy::limited(10)
    } else {
        reqwest::redirect::Policy::none()
    };
    let api = reqwest::Client::builder()
        .redirect(redirects)
        .connect_timeout(args.client.connect_timeout)
        .read_timeout(args.client.timeout)
        .user_agent(concat!("tokenmint/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot build the HTTP client")?;
    let mut request = api.request(method.clone(), url);
    match args.idempotency_key.as_deref() {
        Some("auto") => {
            let key = HeaderValue::from_str(&random_idempotency_key())
                .context("cannot make an idempotency key")?;
            headers.insert(IDEMPOTENCY_KEY, key);
        }
        Some(key) => {
            let key = HeaderValue::from_str(key).map_err(|_| {
                usage(
                    format!("invalid --idempotency-key '{}'", header_value(key.as_bytes())),
                    "use printable ASCII without line breaks, or auto for a random key",
                )
            })?;
            headers.insert(IDEMPOTENCY_KEY, key);
        }
        None => {}
    }
    if !is_safe_to_repeat(&method, &headers) {
        tracing::debug!(%method, "not idempotent and no Idempotency-Key: 429 and 5xx will not be retried");
    }
    if let Some(body) = &body
        && !headers.contains_key(reqwest::header::CONTENT_TYPE)
    {
        headers.insert(reqwest::header::CONTENT_TYPE, HeaderValue::from_static(content_type(body)));
    }
    request = request.headers(headers);
    if let Some(body) = body {
        request = request.body(body);
    }
    let mut response = client.send(request).await.map_err(|e| match e {
        tokenmint_client::Error::Request(_) => api_failure(&e, &args),
        e => anyhow::Error::new(args.client.token_failure(e)),
    })?;
    let status = response.status();
    if let Some(note) = response.extensions().get::<NotRetried>() {
        eprintln!("tokenmint call: {}", explain(*note, &method, status));
    }
    if status.is_redirection()
        && !args.location
        && let Some(to) = response.headers().get(reqwest::header::LOCATION)
    {
        eprintln!(
            "tokenmint call: not following the redirect ({status}) to {}: add -L to follow it",
            header_value(to.as_bytes())
        );
    }

    let stdout = std::io::stdout();
    let terminal = stdout.is_terminal();
    let mut out = stdout.lock();
    if args.include {
        writeln!(out, "{:?} {status}", response.version())?;
        for (name, value) in response.headers() {
            writeln!(out, "{name}: {}", header_value(value.as_bytes()))?;
        }
        writeln!(out)?;
    }
    // Streamed: each piece is written as it arrives and then dropped. A terminal gets the
    // text with its control characters made visible; a pipe or a file gets the bytes as sent.
    let mut sink = if terminal { Sink::Terminal(TerminalSafe::new(out)) } else { Sink::Raw(out) };
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                sink.finish()?;
                return Err(body_failure(e, &args));
            }
        };
        sink.write(&chunk)?;
    }
    sink.finish()?;
    // The body is printed whatever the status, as `curl --fail-with-body` does, and the exit
    // status tells scripts whether the call succeeded.
    if status.is_client_error() || status.is_server_error() {
        tracing::debug!(%status, "the API answered with an error status");
        return Ok(ExitCode::from(exit::HTTP_ERROR));
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the body goes.
enum Sink<W: Write> {
    Raw(W),
    Terminal(TerminalSafe<W>),
}

impl<W: Write> Sink<W> {
    fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Raw(out) => out.write_all(chunk),
            Self::Terminal(out) => out.write_chunk(chunk),
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Self::Raw(mut out) => out.flush(),
            Self::Terminal(out) => out.finish().map(drop),
        }
    }
}

/// The API request failed before an answer arrived.
fn api_failure(error: &tokenmint_client::Error, args: &CallArgs) -> anyhow::Error {
    let code = exit::for_kind(error.kind());
    let cause = match error {
        tokenmint_client::Error::Request(source) => exit::with_causes(source.as_ref()),
        other => exit::with_causes(other),
    };
    let redirected =
        matches!(error, tokenmint_client::Error::Request(source) if source.is_redirect());
    let failure = if redirected {
        Failure::new(
            exit::TOO_MANY_REDIRECTS,
            "the API redirected more than 10 times without answering (-L follows at most 10)",
        )
        .hint("a redirect loop: call the address the last redirect names, or check the URL")
    } else if code == exit::TIMEOUT {
        Failure::new(code, format!("the API did not answer in time: {cause}")).hint(format!(
            "nothing within --timeout {} (connecting: --connect-timeout {})",
            exit::duration(args.client.timeout),
            exit::duration(args.client.connect_timeout)
        ))
    } else if code == exit::MALFORMED {
        Failure::new(code, format!("the API's answer is not valid HTTP: {cause}"))
            .hint("the server was reached, but what it sent breaks the protocol; check the URL")
    } else {
        Failure::new(code, format!("the API could not be reached: {cause}"))
            .hint("check the URL and that the API is running")
    };
    anyhow::Error::new(failure)
}

/// The connection failed or stalled while the body was arriving.
fn body_failure(error: reqwest::Error, args: &CallArgs) -> anyhow::Error {
    let failure = if error.is_timeout() {
        Failure::new(
            exit::TIMEOUT,
            format!(
                "the response body stalled: nothing arrived for {} (--timeout)",
                exit::duration(args.client.timeout)
            ),
        )
    } else {
        Failure::new(
            exit::NETWORK,
            format!("the connection failed during the response body: {error}"),
        )
    };
    anyhow::Error::new(failure)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_without_a_content_type_is_sent_as_json_when_it_is_json_else_as_a_form() {
        for json in [&b"{\"member\": \"m-1\"}"[..], b"[1, 2]", b" \"text\" ", b"42"] {
            assert_eq!(content_type(json), "application/json");
        }
        for form in [&b"a=1&b=2"[..], b"{not json", b"", b"hello"] {
            assert_eq!(content_type(form), "application/x-www-form-urlencoded");
        }
    }
}
