//! The `tokenmint` binary: one program for the server, its admin CLI, the gateway and the
//! client side. Each subcommand lives in `cmd/`; this file only parses and dispatches.

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line program's output is its interface"
)]

mod admin_client;
mod cmd;
mod exit;
mod output;
mod terminal;

use tokenmint::settings;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
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
    /// token and one retry, 429 and 5xx are retried after their Retry-After when the request is
    /// safe to repeat (an idempotent method, or --idempotency-key), and the body streams to stdout.
    Call(Box<cmd::call::CallArgs>),
}

fn main() -> ExitCode {
    let matches = match Cli::command().try_get_matches() {
        Ok(m) => m,
        Err(e) => {
            if e.use_stderr() {
                fail_the_eval();
            }
            e.exit()
        }
    };
    let mut cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            fail_the_eval();
            e.exit()
        }
    };
    if let Some((_, sub)) = matches.subcommand() {
        match &mut cli.command {
            Command::Token(args) => args.client.note_sources(sub),
            Command::Call(args) => args.client.note_sources(sub),
            _ => {}
        }
    }
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
            fail_the_eval();
            eprintln!("error: {e:#}");
            if let Some(hint) = exit::hint_of(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit::code_of(&e))
        }
    }
}

/// `eval "$(tokenmint … --output env)"` takes the status of the text it evaluates, not of the
/// command that printed it, so a failed command with nothing on stdout would let a script go on
/// with stale variables. With `--output env` a failure therefore prints `false` on stdout: the
/// `eval` fails as the command did (and `set -e` stops the script).
fn fail_the_eval() {
    let mut args = std::env::args_os().skip(1).map(|a| a.to_string_lossy().into_owned());
    let mut env_output = std::env::var("TOKENMINT_OUTPUT").is_ok_and(|v| v == "env");
    while let Some(arg) = args.next() {
        if arg == "--" {
            break;
        }
        if arg == "--output=env" {
            env_output = true;
        } else if arg == "--output" {
            env_output = args.next().as_deref() == Some("env");
        } else if arg.starts_with("--output=") {
            env_output = false;
        }
    }
    if env_output {
        println!("false");
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
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(colour);
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every argument of every subcommand, at any depth, says what it is for in `--help`.
    #[test]
    fn every_argument_of_every_subcommand_has_a_description() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") {
                    continue;
                }
                let described = arg
                    .get_help()
                    .or(arg.get_long_help())
                    .is_some_and(|h| !h.to_string().trim().is_empty());
                if !described {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_long_about().is_none() {
                    missing.push(format!("{path} {} (the subcommand)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut command = Cli::command();
        command.build();
        walk(&command, "tokenmint", &mut missing);
        assert!(missing.is_empty(), "arguments without a description: {missing:#?}");
    }
}
