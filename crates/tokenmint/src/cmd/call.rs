//! `tokenmint call`: a curl-like request with automatic token handling. The token is fetched (or
//! taken from the cache), a 401 gets one new token and one retry, and 429 and 5xx answers are
//! retried after their `Retry-After`.

use std::io::{Read, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use clap::Args;
use reqwest::Method;
use reqwest::header::{HeaderName, HeaderValue};
use tokenmint_client::ApiRetryPolicy;

use crate::cmd::token::ClientArgs;

#[derive(Debug, Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// The HTTP method (default GET, or POST when a body is given).
    #[arg(short = 'X', long = "request", value_name = "METHOD")]
    pub method: Option<String>,
    /// A request header, `Name: value`; repeatable.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// The request body; `@FILE` reads it from a file, `@-` from standard input.
    #[arg(short = 'd', long = "data", value_name = "BODY")]
    pub data: Option<String>,
    /// Print the status line and the response headers before the body.
    #[arg(short = 'i', long = "include")]
    pub include: bool,
    /// The URL to call. The response body is printed whatever the status; the exit status is 22
    /// (as with `curl --fail`) when the final answer is 4xx or 5xx.
    pub url: String,
}

fn parse_header(raw: &str) -> Result<(HeaderName, HeaderValue)> {
    let (name, value) =
        raw.split_once(':').ok_or_else(|| anyhow!("invalid header '{raw}': use 'Name: value'"))?;
    let name = HeaderName::from_bytes(name.trim().as_bytes())
        .with_context(|| format!("invalid header name in '{raw}'"))?;
    let value = HeaderValue::from_str(value.trim())
        .with_context(|| format!("invalid header value in '{raw}'"))?;
    Ok((name, value))
}

fn read_body(data: &str) -> Result<Vec<u8>> {
    match data.strip_prefix('@') {
        Some("-") => {
            let mut body = Vec::new();
            std::io::stdin().read_to_end(&mut body).context("cannot read the body from stdin")?;
            Ok(body)
        }
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read the body from {path}"))
        }
        None => Ok(data.as_bytes().to_vec()),
    }
}

pub async fn run(args: CallArgs) -> Result<ExitCode> {
    let body = args.data.as_deref().map(read_body).transpose()?;
    let method = match &args.method {
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| anyhow!("invalid method '{m}'"))?,
        None if body.is_some() => Method::POST,
        None => Method::GET,
    };
    let config = args.client.config()?.api_retry_policy(ApiRetryPolicy {
        retry_server_errors: true,
        ..ApiRetryPolicy::default()
    });
    let client = tokenmint_client::TokenClient::new(config)?;

    let mut request = reqwest::Client::new().request(method, &args.url);
    for raw in &args.headers {
        let (name, value) = parse_header(raw)?;
        request = request.header(name, value);
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = client.send(request).await?;

    let mut out = std::io::stdout().lock();
    if args.include {
        writeln!(out, "{:?} {}", response.version(), response.status())?;
        for (name, value) in response.headers() {
            writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
        }
        writeln!(out)?;
    }
    let status = response.status();
    let bytes = response.bytes().await.context("cannot read the response body")?;
    out.write_all(&bytes)?;
    out.flush()?;
    // The body is printed whatever the status, as `curl --fail-with-body` does, and the exit
    // status tells scripts whether the call succeeded.
    if status.is_client_error() || status.is_server_error() {
        tracing::debug!(%status, "the API answered with an error status");
        return Ok(ExitCode::from(22));
    }
    Ok(ExitCode::SUCCESS)
}
