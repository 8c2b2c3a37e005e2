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
mod options;
mod output;
mod terminal;

use tokenmint::settings;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;
use tokenmint_client::text::without_url_passwords;

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
    /// token and one retry, 429 and 500/502/503/504 are retried after their Retry-After when the request is
    /// safe to repeat (an idempotent method, or --idempotency-key), and the body streams to stdout.
    Call(Box<cmd::call::CallArgs>),
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let (command, from_file) = match options::with_config_file(program(), &args) {
        Ok(found) => found,
        Err(message) => {
            fail_the_eval();
            eprintln!("error: {message}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let matches = match command.clone().try_get_matches_from(&args) {
        Ok(m) => m,
        Err(e) => {
            if e.use_stderr() {
                fail_the_eval();
                if let Some(message) = options::blame_variable(&e, &command, &args)
                    .or_else(|| options::blame_file(&e, &from_file))
                {
                    eprintln!("error: {message}");
                    return ExitCode::from(exit::USAGE);
                }
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
    for note in options::notes(&command, &matches, &from_file) {
        eprintln!("note: {note}");
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
            eprintln!("error: {}", without_url_passwords(&format!("{e:#}")));
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
        // The reader of stdout is gone (`| head`): nobody wants the rest, and that is no error.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            fail_the_eval();
            eprintln!("error: {}", without_url_passwords(&format!("{e:#}")));
            if let Some(hint) = exit::hint_of(&e) {
                eprintln!("hint: {}", without_url_passwords(hint));
            }
            ExitCode::from(exit::code_of(&e))
        }
    }
}

/// Whether a command failed because its stdout was closed under it.
fn is_broken_pipe(error: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|e| e.kind() == BrokenPipe)
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|e| e.io_error_kind() == Some(BrokenPipe))
    })
}

/// The whole command line: the derived parser with every client-side option's variable.
fn program() -> clap::Command {
    options::with_variables(Cli::command())
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
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = EnvFilter::try_from_env("TOKENMINT_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log file or a collector gets plain text.
    let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let name = cli.log_format.as_deref().unwrap_or("text");
    let Some(format) = tokenmint_server::logging::LogFormat::parse(name) else {
        anyhow::bail!("invalid --log-format (TOKENMINT_LOG_FORMAT) '{name}': use text or json")
    };
    let fmt = tokenmint_server::logging::layer(format, std::io::stderr, colour);
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

    #[test]
    fn a_closed_stdout_is_told_from_other_failures() {
        let pipe = std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        assert!(is_broken_pipe(&anyhow::Error::new(pipe).context("writing the table")));
        let other = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(!is_broken_pipe(&anyhow::Error::new(other)));
        assert!(!is_broken_pipe(&anyhow::anyhow!("broken pipe")));
        let json = serde_json::Error::io(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(is_broken_pipe(&anyhow::Error::new(json)));
    }

    /// The long flags of the subcommand at `path` (global ones included), without dashes.
    fn flags_of(path: &[&str]) -> Vec<String> {
        let mut command = program();
        command.build();
        let mut at = &command;
        let mut flags: Vec<String> = Vec::new();
        let mut collect = |c: &clap::Command| {
            flags.extend(c.get_arguments().filter_map(|a| a.get_long().map(str::to_owned)));
        };
        collect(at);
        for name in path {
            at = at.find_subcommand(name).unwrap_or_else(|| panic!("no subcommand {path:?}"));
            collect(at);
        }
        flags
    }

    /// The flags a piece of source code names in what it prints: `--name` in strings and doc
    /// comments, and `setting("name")` (which prints `--name`). Plain comments, argument
    /// attributes, tests, and text in backticks naming another command (`tokenmint …`,
    /// `curl …`) are left out.
    fn flags_named_in(source: &str) -> Vec<String> {
        let source = source.split("#[cfg(test)]").next().unwrap_or(source);
        let mut found = Vec::new();
        for line in source.lines() {
            let trimmed = line.trim_start();
            if (trimmed.starts_with("//") && !trimmed.starts_with("///"))
                || trimmed.starts_with("#[arg")
                || trimmed.starts_with("long =")
            {
                continue;
            }
            // Drop `tokenmint …` spans: they name another command's flags on purpose.
            let mut kept = String::new();
            for (i, part) in line.split('`').enumerate() {
                let other = part.starts_with("tokenmint ") || part.starts_with("curl ");
                if !(i % 2 == 1 && other) {
                    kept.push_str(part);
                    kept.push(' ');
                }
            }
            let bytes = kept.as_bytes();
            let mut i = 0;
            while i + 2 < bytes.len() {
                let starts = bytes[i] == b'-'
                    && bytes[i + 1] == b'-'
                    && bytes[i + 2].is_ascii_lowercase()
                    && (i == 0 || bytes[i - 1] != b'-');
                if starts {
                    let end = kept[i + 2..]
                        .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'))
                        .map_or(kept.len(), |n| i + 2 + n);
                    found.push(kept[i + 2..end].trim_end_matches('-').to_owned());
                    i = end;
                } else {
                    i += 1;
                }
            }
            let mut rest = kept.as_str();
            while let Some(at) = rest.find("setting(\"") {
                let after = &rest[at + "setting(\"".len()..];
                if let Some(end) = after.find('"') {
                    found.push(after[..end].to_owned());
                }
                rest = after;
            }
        }
        found.sort();
        found.dedup();
        found
    }

    /// Every flag an error, hint or help text names is one the command that prints it has:
    /// a hint to pass `--listen` to a command without `--listen` sends the user nowhere. Each
    /// source file is checked against the commands that run its code; a flag must exist on
    /// every one of them. (main.rs holds only the subcommands' one-line descriptions and the
    /// global --log-format.)
    #[test]
    fn every_flag_a_message_names_belongs_to_the_command_that_prints_it() {
        let admin: &[&[&str]] = &[
            &["credentials", "create"],
            &["credentials", "list"],
            &["orgs", "create"],
            &["orgs", "list"],
            &["users", "create"],
            &["keys", "list"],
            &["audit", "export"],
        ];
        // orgs.rs holds `create` and `update`: each part is held to its own command.
        let orgs = include_str!("cmd/orgs.rs");
        let (orgs_create, orgs_update) =
            orgs.split_once("OrgsCommand::Update(a) =>").unwrap_or((orgs, ""));
        let files: &[(&str, &str, &[&[&str]])] = &[
            ("settings.rs", include_str!("settings.rs"), &[&["serve"]]),
            ("cmd/serve.rs", include_str!("cmd/serve.rs"), &[&["serve"]]),
            ("cmd/init.rs", include_str!("cmd/init.rs"), &[&["init"]]),
            ("cmd/gateway.rs", include_str!("cmd/gateway.rs"), &[&["gateway"]]),
            ("cmd/token.rs", include_str!("cmd/token.rs"), &[&["token"], &["call"]]),
            ("cmd/call.rs", include_str!("cmd/call.rs"), &[&["call"]]),
            ("cmd/orgs.rs", orgs_create, &[&["orgs", "create"]]),
            ("cmd/orgs.rs (update)", orgs_update, &[&["orgs", "update"]]),
            ("cmd/users.rs", include_str!("cmd/users.rs"), &[&["users", "create"]]),
            ("admin_client.rs", include_str!("admin_client.rs"), admin),
            (
                "transport refusal",
                include_str!("../../tokenmint-server/src/transport.rs"),
                &[&["serve"]],
            ),
        ];
        let mut wrong = Vec::new();
        for (file, source, commands) in files {
            for flag in flags_named_in(source) {
                for command in *commands {
                    if !flags_of(command).contains(&flag) {
                        wrong.push(format!("{file}: --{flag} is not an option of {command:?}"));
                    }
                }
            }
        }
        // settings.rs also resolves `init`'s options: what resolve_init and the functions it
        // calls print must name init's flags.
        let settings = include_str!("settings.rs");
        let init_part = settings
            .split("pub fn resolve_database")
            .nth(1)
            .and_then(|s| s.split("pub fn resolve_serve").next())
            .unwrap_or_default();
        let init_fn = settings.split("pub fn resolve_init").nth(1).unwrap_or_default();
        for flag in flags_named_in(init_part).into_iter().chain(flags_named_in(init_fn)) {
            if !flags_of(&["init"]).contains(&flag) {
                wrong.push(format!("settings.rs (init): --{flag} is not an option of init"));
            }
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        // The walker does find flags, in strings and through setting().
        assert_eq!(
            flags_named_in(
                "bail!(\"give --token-url or set(`tokenmint x --y`)\", setting(\"issuer\"))"
            ),
            ["issuer", "token-url"]
        );
    }

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
        let mut command = program();
        command.build();
        walk(&command, "tokenmint", &mut missing);
        assert!(missing.is_empty(), "arguments without a description: {missing:#?}");
    }

    /// A key thumbprint is base64url, so one in 32 starts with `-`: the flag that takes one must
    /// accept it as a value, not read it as another flag.
    #[test]
    fn a_thumbprint_starting_with_a_dash_is_a_value() {
        for thumbprint in ["-Sx0n3Yc", "--", "-h", "_abc"] {
            let cli = Cli::try_parse_from([
                "tokenmint",
                "credentials",
                "update",
                "tmc_example",
                "--remove-public-key",
                thumbprint,
            ]);
            assert!(cli.is_ok(), "{thumbprint}: {:?}", cli.err());
        }
    }
}
