//! The `tokenmint` binary: one program for the server, its admin CLI, the gateway and the
//! client side. Each subcommand lives in `cmd/`; this file only parses and dispatches.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program's output is its interface"
)]

mod admin_client;
mod cmd;
mod output;

use tokenmint::settings;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "tokenmint",
    version,
    about = "OAuth 2.0 client-credentials server, credential admin, gateway and client"
)]
struct Cli {
    /// Log format: `text` or `json`.
    #[arg(long, global = true, env = "TOKENMINT_LOG_FORMAT", value_name = "FORMAT")]
    log_format: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the authorization server (token endpoint, discovery, JWKS, introspection, revocation, admin API).
    Serve(Box<settings::ServeArgs>),
    /// Create the database and signing keys if missing, and print a new platform-admin credential as JSON.
    Init(settings::InitArgs),
    /// Apply database migrations and exit.
    Migrate(settings::MigrateArgs),
    /// Manage credentials through the admin API.
    #[command(subcommand)]
    Credentials(cmd::credentials::CredentialsCommand),
    /// Manage organizations through the admin API.
    #[command(subcommand)]
    Orgs(cmd::orgs::OrgsCommand),
    /// Manage portal users through the admin API.
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// Manage signing keys through the admin API.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Export the audit trail through the admin API.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Run the validating reverse proxy in front of an API (routes from --config; SIGHUP reloads).
    Gateway(Box<cmd::gateway::GatewayArgs>),
    /// Fetch an access token from any OAuth 2.0 token endpoint and print it.
    Token(cmd::token::TokenArgs),
    /// Send an authenticated request, curl-like: the token is fetched and cached, a 401 gets a new
    /// token and one retry, 429 and 5xx are retried after their Retry-After.
    Call(Box<cmd::call::CallArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match init_logging(&cli, runtime.handle()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => cmd::serve::run(*args).await,
            Command::Init(args) => cmd::init::run(args).await,
            Command::Migrate(args) => cmd::init::migrate(args).await,
            Command::Credentials(c) => cmd::credentials::run(c).await,
            Command::Orgs(c) => cmd::orgs::run(c).await,
            Command::Users(c) => cmd::users::run(c).await,
            Command::Keys(c) => cmd::keys::run(c).await,
            Command::Audit(c) => cmd::audit::run(c).await,
            Command::Gateway(args) => cmd::gateway::run(*args).await,
            Command::Token(args) => cmd::token::run(args).await,
            Command::Call(args) => cmd::call::run(*args).await,
        }
    });
    if let Some(telemetry) = telemetry {
        telemetry.shutdown();
    }
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (text or JSON) and, for `serve` with an OTLP endpoint, exports the request
/// spans too.
fn init_logging(
    cli: &Cli,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Option<tokenmint::telemetry::Telemetry>> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let filter = EnvFilter::try_from_env("TOKENMINT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match cli.log_format.as_deref().unwrap_or("text") {
        "text" => fmt.boxed(),
        "json" => fmt.json().flatten_event(true).boxed(),
        other => {
            anyhow::bail!("invalid --log-format (TOKENMINT_LOG_FORMAT) '{other}': use text or json")
        }
    };
    let endpoint = match &cli.command {
        Command::Serve(args) => settings::serve_otlp_endpoint(args)?,
        _ => None,
    };
    let (telemetry, otel) = match endpoint {
        Some(endpoint) => {
            let (telemetry, tracer) =
                tokenmint::telemetry::Telemetry::start(&endpoint, "tokenmint", runtime.clone())?;
            (Some(telemetry), Some(tracing_opentelemetry::layer().with_tracer(tracer)))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(fmt).with(otel).with(filter).init();
    Ok(telemetry)
}
