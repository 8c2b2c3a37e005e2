//! The measuring helpers of tokenmint's performance harness; `bench/run.sh` drives them.
//!
//! The harness itself is a shell script because most of its job is starting processes pinned to
//! cores (`taskset`) and reading what the load generator prints. What a shell cannot measure
//! well, or only with its own process start-up in the figure, lives here: the signing limit
//! with the crypto code the server uses, a minimal upstream for the gateway, the SDK's
//! single-flight under 1,000 callers, loading 100,000 credentials through the admin API, and
//! the time from `exec` to the first answered request.
//!
//! Each subcommand prints one line of `key=value` pairs on stdout for the script to read.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use anyhow::{Context, Result, anyhow, bail};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

mod load;
mod proxy;
mod sdk;
mod signing;
mod startup;
mod upstream;

#[derive(Parser, Debug)]
#[command(name = "tokenmint-bench", about = "Measuring helpers for bench/run.sh")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Signatures per second on the calling thread, per algorithm, with tokenmint's own
    /// signing code over a real token's signing input.
    SigningLimit {
        /// Seconds to sign for, per algorithm.
        #[arg(long, default_value = "5")]
        seconds: f64,
        /// RS256, ES256 or EdDSA.
        #[arg(required = true)]
        algorithms: Vec<String>,
    },
    /// A minimal HTTP/1.1 upstream on one thread: every request gets a small JSON 200.
    Upstream {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
    },
    /// A bare reverse proxy on one thread (no checks): the reference the gateway is held to.
    Proxy {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: std::net::SocketAddr,
        /// The upstream's base URL, such as http://127.0.0.1:7000.
        #[arg(long)]
        upstream: String,
    },
    /// N concurrent callers of one cold SDK client: token requests made, time to first response.
    SdkCallers {
        #[arg(long)]
        token_url: String,
        #[arg(long)]
        client_id: String,
        /// File holding the client secret.
        #[arg(long)]
        secret_file: PathBuf,
        #[arg(long, default_value = "1000")]
        callers: usize,
    },
    /// Create credentials through the admin API and write `client_id secret` lines to a file.
    CreateCredentials {
        #[arg(long)]
        endpoint: String,
        /// The admin credential JSON that `tokenmint init` prints.
        #[arg(long)]
        admin_credentials: PathBuf,
        #[arg(long)]
        count: usize,
        #[arg(long, default_value = "8")]
        concurrency: usize,
        #[arg(long)]
        out: PathBuf,
    },
    /// Request one token for each credential of a file written by `create-credentials`.
    UseCredentials {
        #[arg(long)]
        endpoint: String,
        #[arg(long)]
        file: PathBuf,
        #[arg(long, default_value = "32")]
        concurrency: usize,
    },
    /// Start a command and time it until `url` answers 200; the command is then stopped.
    Startup {
        #[arg(long)]
        url: String,
        #[arg(required = true, last = true)]
        command: Vec<String>,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::SigningLimit { seconds, algorithms } => {
            for alg in algorithms {
                let rate = signing::limit(&alg, Duration::from_secs_f64(seconds))?;
                println!("alg={alg} signatures_per_s={rate:.0}");
            }
            Ok(())
        }
        Command::Upstream { listen } => current_thread()?.block_on(upstream::serve(listen)),
        Command::Proxy { listen, upstream } => {
            current_thread()?.block_on(proxy::serve(listen, upstream))
        }
        Command::SdkCallers { token_url, client_id, secret_file, callers } => {
            multi_thread()?.block_on(sdk::callers(&token_url, &client_id, secret_file, callers))
        }
        Command::CreateCredentials { endpoint, admin_credentials, count, concurrency, out } => {
            multi_thread()?.block_on(load::create(
                &endpoint,
                &admin_credentials,
                count,
                concurrency,
                &out,
            ))
        }
        Command::UseCredentials { endpoint, file, concurrency } => {
            multi_thread()?.block_on(load::use_all(&endpoint, &file, concurrency))
        }
        Command::Startup { url, command } => {
            multi_thread()?.block_on(startup::time(&url, &command))
        }
    }
}

fn current_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

fn multi_thread() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

/// Milliseconds with three decimals, for the script's tables.
fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

/// The value at quantile `q` (0..=1) of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A token for `client_id` from a form `client_secret_post` request, as the load generator sends.
async fn fetch_token(
    http: &reqwest::Client,
    token_url: &str,
    client_id: &str,
    secret: &str,
) -> Result<String> {
    let response = http
        .post(token_url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret),
        ])
        .send()
        .await
        .context("token request")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.context("token response body")?;
    if !status.is_success() {
        bail!("token endpoint answered {status}: {}", body["error"]);
    }
    body["access_token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("no access_token in the token response"))
}

/// Shared by the subcommands that talk HTTP: keep-alive, no proxy from the environment.
fn http_client() -> Result<Arc<reqwest::Client>> {
    Ok(Arc::new(reqwest::Client::builder().no_proxy().tcp_nodelay(true).build()?))
}
