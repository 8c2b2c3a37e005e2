//! Every option of the client-side commands (the admin commands, `token` and `call`) as a flag,
//! a `TOKENMINT_<OPTION>` variable and a key of the TOML file named by `--config`; a flag beats
//! the variable, which beats the file, which beats the default.
//!
//! `serve`, `init`, `migrate` and `gateway` declare their variables one by one and read files
//! with their own schemas (`settings`, the gateway's config). The client-side commands get
//! theirs here, from clap's command tree, so an option added later has a variable and a key
//! without anyone remembering to add them.
//!
//! Naming: an option's variable is `TOKENMINT_<OPTION>` unless that name already means
//! something else in tokenmint: `TOKENMINT_AUDIENCE` is the audience `token` asks for and the
//! gateway checks, `TOKENMINT_CLIENT_ID` the admin's own credential. Such an option's variable
//! carries its command's name (`TOKENMINT_CREDENTIALS_AUDIENCE`, `TOKENMINT_AUDIT_CLIENT_ID`),
//! and the file sets it only in that command's table (`[credentials]`), so a value set for one
//! purpose never lands in another command's request.
//!
//! The file: top-level keys are options of every command that has them (one file can serve
//! the admin commands, `token` and `call`, and a file written for `serve` or the gateway can be
//! named too: their keys are left to them); a `[credentials]` table holds options of the
//! `credentials` commands and a `[credentials.create]` table those of one command, each beating
//! the one above. A key no tokenmint command takes is an error, as in the server's file, so a
//! typo does not silently fall back to a default. Values the file gives become the options'
//! defaults, so clap's own parsing, conflicts and precedence apply to them unchanged.

use std::any::TypeId;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use clap::builder::BoolishValueParser;
use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};

/// The commands whose options this module gives variables and file keys.
pub const CLIENT_COMMANDS: [&str; 7] =
    ["credentials", "orgs", "users", "keys", "audit", "token", "call"];

/// Variables tokenmint reads in code rather than through an option: derived names avoid them.
const READ_IN_CODE: [&str; 6] = [
    "TOKENMINT_CLIENT_SECRET",
    "TOKENMINT_MASTER_KEY",
    "TOKENMINT_LOG",
    "TOKENMINT_ALERT_WEBHOOK_SECRET",
    "TOKENMINT_TOKEN_HOOK_SECRET",
    "TOKENMINT_FEED_TOKEN",
];

/// Top-level keys of the gateway's file that are not options of any command (the gateway's
/// other keys are its flags); a file written for the gateway can be named here too.
const GATEWAY_FILE_KEYS: [&str; 10] = [
    "mode",
    "authz_source",
    "follow_revocations",
    "redis_prefix",
    "request_timeout",
    "leeway",
    "jwks_refetch_cooldown",
    "issuer_retry_max",
    "verified_cache",
    "header_timeout",
];

/// Tables the gateway's file holds (`[[route]]`, `[[issuer]]`).
const GATEWAY_FILE_TABLES: [&str; 2] = ["route", "issuer"];

fn variable_for(long: &str) -> String {
    format!("TOKENMINT_{}", long.to_ascii_uppercase().replace('-', "_"))
}

fn is_option(arg: &Arg) -> bool {
    !arg.is_positional()
        && arg.get_long().is_some()
        && !matches!(arg.get_action(), ArgAction::Help | ArgAction::HelpLong | ArgAction::Version)
}

/// Whether an option's variable carries its command's name, so the file sets it only in that
/// command's table.
fn is_scoped(arg: &Arg) -> bool {
    match (arg.get_long(), arg.get_env()) {
        (Some(long), Some(env)) => env.to_str() != Some(variable_for(long).as_str()),
        _ => false,
    }
}

/// Every variable some option of some command declares, and those read in code.
fn declared_variables(command: &Command, into: &mut BTreeSet<String>) {
    for arg in command.get_arguments() {
        if let Some(env) = arg.get_env().and_then(|e| e.to_str()) {
            into.insert(env.to_owned());
        }
    }
    for sub in command.get_subcommands() {
        declared_variables(sub, into);
    }
}

/// Gives every option of the client-side commands that has no variable its
/// `TOKENMINT_<OPTION>` (or, when that name is taken, `TOKENMINT_<COMMAND>_<OPTION>`). An on/off
/// option takes `true`/`false`, `1`/`0`, `yes`/`no` or `on`/`off`. A variable set to nothing
/// counts as not set, in every command, as shells use `NAME= command` to unset one; and no
/// command's help shows a variable's value.
pub fn with_variables(cli: Command) -> Command {
    let mut taken: BTreeSet<String> = READ_IN_CODE.iter().map(|s| (*s).to_owned()).collect();
    declared_variables(&cli, &mut taken);
    let cli = cli.mut_subcommands(|group| {
        let name = group.get_name().to_owned();
        if CLIENT_COMMANDS.contains(&name.as_str()) { derive(group, &name, &taken) } else { group }
    });
    without_empty_variables(cli)
}

/// Whether a variable's value says "off" to an on/off option (`false`, `0`, `no`, `off`, in
/// any case).
fn is_off(value: &std::ffi::OsStr) -> bool {
    value.to_str().is_some_and(|v| {
        ["false", "0", "no", "off", "n", "f"].contains(&v.trim().to_ascii_lowercase().as_str())
    })
}

fn without_empty_variables(command: Command) -> Command {
    command
        .mut_args(|arg| {
            let value = arg.get_env().and_then(std::env::var_os);
            let empty = value.as_ref().is_some_and(|value| value.is_empty());
            // An on/off option set off by its variable is as if not set: it then neither
            // turns on nor conflicts with the option it excludes (`--never-expires` off and
            // `--expires-in 10d`).
            let off = matches!(arg.get_action(), ArgAction::SetTrue)
                && value.as_deref().is_some_and(is_off);
            // Help names the variable, never its value: it may be a password in a URL.
            let arg = arg.hide_env_values(true);
            if empty || off { arg.env(None::<&'static str>) } else { arg }
        })
        .mut_subcommands(without_empty_variables)
}

fn derive(command: Command, group: &str, taken: &BTreeSet<String>) -> Command {
    command
        .mut_args(|arg| {
            if !is_option(&arg) || arg.get_env().is_some() {
                return arg;
            }
            let long = arg.get_long().unwrap_or_default();
            let mut name = variable_for(long);
            if taken.contains(&name) {
                name = format!(
                    "TOKENMINT_{}_{}",
                    group.to_ascii_uppercase(),
                    &name["TOKENMINT_".len()..]
                );
            }
            let arg = if matches!(arg.get_action(), ArgAction::SetTrue) {
                arg.value_parser(BoolishValueParser::new())
            } else {
                arg
            };
            arg.env(name)
        })
        .mut_subcommands(|sub| derive(sub, group, taken))
}

/// The options a config file gave: the option's id and where in the file it was written.
#[derive(Debug, Default)]
pub struct FromFile {
    pub file: Option<PathBuf>,
    pub keys: BTreeMap<String, String>,
}

/// The subcommand path of the client-side command `matches` holds, if it is one.
fn client_path(matches: &ArgMatches) -> Option<(Vec<String>, &ArgMatches)> {
    let (group, group_matches) = matches.subcommand()?;
    if !CLIENT_COMMANDS.contains(&group) {
        return None;
    }
    match group_matches.subcommand() {
        Some((sub, sub_matches)) => Some((vec![group.to_owned(), sub.to_owned()], sub_matches)),
        None => Some((vec![group.to_owned()], group_matches)),
    }
}

fn find<'a>(command: &'a Command, path: &[String]) -> Option<&'a Command> {
    path.iter().try_fold(command, |at, name| at.find_subcommand(name))
}

/// The option of `command` a file key names: `token_url` is `--token-url`; a repeatable
/// option also answers to the plural (`audiences = [...]`).
fn option_named<'a>(command: &'a Command, key: &str) -> Option<&'a Arg> {
    let flag = key.replace('_', "-");
    command.get_arguments().filter(|a| is_option(a)).find(|a| {
        let long = a.get_long().unwrap_or_default();
        long == flag || (matches!(a.get_action(), ArgAction::Append) && format!("{long}s") == flag)
    })
}

/// Whether any command of the whole program takes this key (then a file may hold it for that
/// command).
fn known_anywhere(cli: &Command, key: &str) -> bool {
    fn walk(command: &Command, key: &str) -> bool {
        option_named(command, key).is_some()
            || command.get_arguments().any(|a| {
                // The server's file names repeatable options in the plural too.
                a.get_long().is_some_and(|l| format!("{}s", l.replace('-', "_")) == key)
            })
            || command.get_subcommands().any(|s| walk(s, key))
    }
    GATEWAY_FILE_KEYS.contains(&key) || walk(cli, key)
}

/// Reads the config file a client-side command names (`--config` or `TOKENMINT_CONFIG`) and
/// returns the program with the file's values as its options' defaults. Any other command, a
/// command line clap will refuse anyway, or no file: the program unchanged.
pub fn with_config_file(cli: Command, args: &[OsString]) -> Result<(Command, FromFile), String> {
    let Ok(lenient) = cli.clone().ignore_errors(true).try_get_matches_from(args) else {
        return Ok((cli, FromFile::default()));
    };
    let Some((path, matches)) = client_path(&lenient) else {
        return Ok((cli, FromFile::default()));
    };
    let Some(file) = matches.try_get_one::<PathBuf>("config").ok().flatten().cloned() else {
        return Ok((cli, FromFile::default()));
    };
    let mut built = cli.clone();
    built.build();
    let command = find(&built, &path).ok_or("unknown command")?;
    let table = read_table(&file)?;
    let written = values_for(&built, command, &path, &table, &file)?;
    let mut defaults: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut from_file = FromFile { file: Some(file.clone()), keys: BTreeMap::new() };
    for (id, (key, value)) in written {
        let Some(arg) = command.get_arguments().find(|a| a.get_id().as_str() == id) else {
            continue;
        };
        let given = |id: &str| {
            matches!(
                matches.value_source(id),
                Some(ValueSource::CommandLine | ValueSource::EnvVariable)
            )
        };
        // A flag or a variable beats the file, and so does one that conflicts with it (a
        // conflict is declared on either of the two).
        let conflicts = |other: &Arg| {
            command.get_arg_conflicts_with(arg).iter().any(|c| c.get_id() == other.get_id())
                || command.get_arg_conflicts_with(other).iter().any(|c| c.get_id() == arg.get_id())
        };
        if given(&id)
            || command
                .get_arguments()
                .any(|other| given(other.get_id().as_str()) && conflicts(other))
        {
            continue;
        }
        defaults.insert(id.clone(), to_values(arg, &key, &value, &file)?);
        from_file.keys.insert(id, key);
    }
    if defaults.is_empty() {
        return Ok((cli, from_file));
    }
    Ok((set_defaults(cli, &path, &defaults), from_file))
}

fn read_table(file: &Path) -> Result<toml::Table, String> {
    tokenmint_http::config_file::load(file).map_err(|e| e.to_string())
}

/// The file's values for the options of `command` (at `path`), by option id, with the key
/// that gave each: the top level, then the group's table, then the command's own.
fn values_for(
    cli: &Command,
    command: &Command,
    path: &[String],
    table: &toml::Table,
    file: &Path,
) -> Result<BTreeMap<String, (String, toml::Value)>, String> {
    let shown = file.display();
    let mut out = BTreeMap::new();
    let mut group_table = None;
    for (key, value) in table {
        if value.is_table() {
            if *key == path[0] {
                group_table = value.as_table();
            } else if !CLIENT_COMMANDS.contains(&key.as_str())
                && cli.find_subcommand(key).is_none()
                && !GATEWAY_FILE_TABLES.contains(&key.as_str())
            {
                return Err(format!(
                    "unknown table [{key}] in the config file {shown}: a table names a command \
                     ({})",
                    CLIENT_COMMANDS.join(", ")
                ));
            }
            continue;
        }
        let is_tables = value.as_array().is_some_and(|a| a.iter().all(toml::Value::is_table));
        if is_tables && GATEWAY_FILE_TABLES.contains(&key.as_str()) {
            continue;
        }
        match option_named(command, key) {
            Some(arg) if !is_scoped(arg) => {
                out.insert(arg.get_id().to_string(), (key.clone(), value.clone()));
            }
            Some(_) => {}
            None if known_anywhere(cli, key) => {}
            None => {
                return Err(format!(
                    "unknown key `{key}` in the config file {shown}: no tokenmint command has \
                     --{}; see `tokenmint {} --help` for this command's options",
                    key.replace('_', "-"),
                    path.join(" ")
                ));
            }
        }
    }
    let Some(group_table) = group_table else { return Ok(out) };
    let group = cli.find_subcommand(&path[0]).ok_or("unknown command")?;
    let mut command_table = None;
    for (key, value) in group_table {
        if value.is_table() {
            if path.get(1) == Some(key) {
                command_table = value.as_table();
            } else if group.find_subcommand(key).is_none() {
                return Err(format!(
                    "unknown table [{}.{key}] in the config file {shown}: `tokenmint {}` has no \
                     command {key}",
                    path[0], path[0]
                ));
            }
            continue;
        }
        if let Some(arg) = option_named(command, key) {
            out.insert(arg.get_id().to_string(), (format!("{}.{key}", path[0]), value.clone()));
        } else if !group.get_subcommands().any(|s| option_named(s, key).is_some())
            && option_named(group, key).is_none()
        {
            return Err(format!(
                "unknown key `{key}` in the [{}] table of the config file {shown}: no \
                 `tokenmint {}` command has --{}",
                path[0],
                path[0],
                key.replace('_', "-")
            ));
        }
    }
    for (key, value) in command_table.into_iter().flatten() {
        let Some(arg) = option_named(command, key) else {
            return Err(format!(
                "unknown key `{key}` in the [{}] table of the config file {shown}: `tokenmint {}` \
                 has no --{}",
                path.join("."),
                path.join(" "),
                key.replace('_', "-")
            ));
        };
        out.insert(arg.get_id().to_string(), (format!("{}.{key}", path.join(".")), value.clone()));
    }
    Ok(out)
}

/// A file value as the words a command line would give the option.
fn to_values(
    arg: &Arg,
    key: &str,
    value: &toml::Value,
    file: &Path,
) -> Result<Vec<String>, String> {
    let on_off = matches!(arg.get_action(), ArgAction::SetTrue);
    let long = arg.get_long().unwrap_or_default();
    // An option that takes text takes a TOML string: `org = 5` or an unquoted date is more
    // likely a slip than a name, as `true` is.
    let parses_to = arg.get_value_parser().type_id();
    let text = [TypeId::of::<String>(), TypeId::of::<PathBuf>(), TypeId::of::<OsString>()]
        .iter()
        .any(|t| parses_to == *t);
    let scalar = |v: &toml::Value| -> Result<String, String> {
        match v {
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Datetime(_) if text => {
                Err(format!(
                    "invalid `{key}` in the config file {}: --{long} takes text: write the \
                     value in double quotes",
                    file.display()
                ))
            }
            toml::Value::Boolean(_) if !on_off => Err(format!(
                "invalid `{key}` in the config file {}: --{long} takes a value, not true/false: \
                 give a string or a number",
                file.display()
            )),
            _ if on_off && !v.is_bool() => Err(format!(
                "invalid `{key}` in the config file {}: --{long} is on/off: give true or false \
                 (no quotes)",
                file.display()
            )),
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            toml::Value::Datetime(d) => Ok(d.to_string()),
            toml::Value::Array(_) | toml::Value::Table(_) => Err(format!(
                "invalid `{key}` in the config file {}: give a string, a number or true/false",
                file.display()
            )),
        }
    };
    match value {
        toml::Value::Array(items) => {
            if !matches!(arg.get_action(), ArgAction::Append) {
                return Err(format!(
                    "invalid `{key}` in the config file {}: --{long} takes one value, not a list",
                    file.display(),
                ));
            }
            items.iter().map(scalar).collect()
        }
        other => Ok(vec![scalar(other)?]),
    }
}

/// The program with `defaults` set on the options of the command at `path` (and of its
/// group, where the options every command of the group shares are declared).
fn set_defaults(
    cli: Command,
    path: &[String],
    defaults: &BTreeMap<String, Vec<String>>,
) -> Command {
    fn at(command: Command, rest: &[String], defaults: &BTreeMap<String, Vec<String>>) -> Command {
        let command = command.mut_args(|arg| match defaults.get(arg.get_id().as_str()) {
            // A default does not satisfy clap's `required`; a value from the file does.
            Some(values) => arg.default_values(values.clone()).required(false),
            None => arg,
        });
        match rest.split_first() {
            Some((name, rest)) => command.mut_subcommands(|sub| {
                if sub.get_name() == name { at(sub, rest, defaults) } else { sub }
            }),
            None => command,
        }
    }
    let Some((group, rest)) = path.split_first() else { return cli };
    cli.mut_subcommands(|sub| if sub.get_name() == group { at(sub, rest, defaults) } else { sub })
}

/// Why clap refused a value a `TOKENMINT_*` variable gave, said as the variable's (clap names
/// the flag, which was not typed): `None` when the value was typed, or the refusal is about
/// something else. Checked before [`blame_file`]: a variable beats the file.
pub fn blame_variable(error: &clap::Error, cli: &Command, args: &[OsString]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(named) = error.get(ContextKind::InvalidArg)? else { return None };
    let ContextValue::String(value) = error.get(ContextKind::InvalidValue)? else { return None };
    let long = named.trim_start_matches("--").split([' ', '=', '<']).next()?;
    fn find_arg<'a>(command: &'a Command, long: &str, value: &str) -> Option<&'a Arg> {
        command
            .get_arguments()
            .find(|a| {
                a.get_long() == Some(long)
                    && a.get_env().and_then(std::env::var_os).is_some_and(|v| {
                        let v = v.to_string_lossy();
                        v == value || v.split(',').any(|part| part == value)
                    })
            })
            .or_else(|| command.get_subcommands().find_map(|sub| find_arg(sub, long, value)))
    }
    let arg = find_arg(cli, long, value)?;
    let typed = args.iter().filter_map(|a| a.to_str()).any(|a| {
        a == format!("--{long}")
            || a.starts_with(&format!("--{long}="))
            || arg
                .get_short()
                .is_some_and(|c| a.starts_with(&format!("-{c}")) && !a.starts_with("--"))
    });
    if typed {
        return None;
    }
    let variable = arg.get_env()?.to_string_lossy();
    let rendered = error.render().to_string();
    let first = rendered.lines().next().unwrap_or_default();
    // clap's first line is `error: invalid value 'V' for '--flag <V>': why`; the why alone.
    let reason = first.split_once("': ").map_or("not accepted", |(_, reason)| reason).trim();
    let accepted: Vec<String> = arg
        .get_possible_values()
        .iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| v.get_name().to_owned())
        .collect();
    let on_off = arg.get_possible_values().iter().any(|v| v.get_name() == "true");
    let hint = if on_off && arg.get_possible_values().iter().any(|v| v.get_name() == "yes") {
        format!(
            "--{long} is on/off: give true or false (also 1/0, yes/no, on/off; empty is as if \
             not set)"
        )
    } else if on_off {
        format!("--{long} is on/off: give true or false")
    } else if accepted.is_empty() {
        String::new()
    } else {
        format!("accepted: {}", accepted.join(", "))
    };
    let mut message = format!(
        "invalid value '{}' in {variable} (the variable of --{long}): {reason}",
        crate::terminal::header_value(value.as_bytes())
    );
    if !hint.is_empty() && !reason.contains(&hint) {
        message.push_str("; ");
        message.push_str(&hint);
    }
    Some(message)
}

/// Why clap refused a value the file gave, said as the file's: `None` when the refusal is
/// about something else.
pub fn blame_file(error: &clap::Error, from_file: &FromFile) -> Option<String> {
    let file = from_file.file.as_ref()?;
    let clap::error::ContextValue::String(named) =
        error.get(clap::error::ContextKind::InvalidArg)?
    else {
        return None;
    };
    let long = named.trim_start_matches("--").split([' ', '=', '<']).next()?;
    let key = from_file.keys.iter().find_map(|(id, key)| {
        (id.replace('_', "-") == long || key.ends_with(&long.replace('-', "_"))).then_some(key)
    })?;
    let rendered = error.render().to_string();
    let said = rendered.lines().next().unwrap_or_default().trim_start_matches("error: ");
    // clap lists an option's values on a line of their own (`[possible values: a, b]`).
    let accepted = rendered
        .lines()
        .find_map(|line| line.trim().strip_prefix("[possible values: "))
        .map(|values| format!("; accepted: {}", values.trim_end_matches(']')))
        .unwrap_or_default();
    Some(format!("in the config file {}, `{key}`: {said}{accepted}", file.display()))
}

/// What a person should know about where an admin command's or `call`'s own options came from,
/// when not from the command line: a variable left set in the shell or a file's key then
/// never changes a credential unseen. The options that say how to reach the server (the admin
/// credential file, the client's own options, and every option of `token`) are expected to come
/// from there and are not noted, except those that say where a secret goes: an admin command's
/// `--endpoint` (it overrides the server the credential file names) and `--output`, and the
/// `--token-url` and `--issuer` of `token` and `call`, which receive the client's secret.
pub fn notes(cli: &Command, matches: &ArgMatches, from_file: &FromFile) -> Vec<String> {
    if let Some((name, sub)) = matches.subcommand()
        && let Some(watched) = WHERE_DATA_GOES.iter().find(|(n, _)| *n == name).map(|(_, w)| *w)
    {
        return where_data_goes(cli, name, sub, watched);
    }
    let Some((path, leaf)) = client_path(matches) else { return Vec::new() };
    let mut built = cli.clone();
    built.build();
    let Some(command) = find(&built, &path) else { return Vec::new() };
    let (quiet, still_noted): (BTreeSet<&str>, [&str; 2]) = match path[0].as_str() {
        "token" | "call" => (
            built
                .find_subcommand("token")
                .map(|t| t.get_arguments().map(|a| a.get_id().as_str()).collect())
                .unwrap_or_default(),
            ["token_url", "issuer"],
        ),
        _ => (
            command
                .get_arguments()
                .filter(|a| a.is_global_set())
                .map(|a| a.get_id().as_str())
                .collect(),
            ["endpoint", "output"],
        ),
    };
    let mut notes = Vec::new();
    for arg in command.get_arguments().filter(|a| is_option(a)) {
        let id = arg.get_id().as_str();
        // The admin credential file is exported as a variable on purpose (the README does);
        // named in a config file, it decides which credential is sent where, and is noted.
        let from_a_file = id == "admin_credentials" && from_file.keys.contains_key(id);
        if quiet.contains(id) && !still_noted.contains(&id) && !from_a_file {
            continue;
        }
        let long = arg.get_long().unwrap_or_default();
        match matches_source(leaf, id) {
            Some(ValueSource::EnvVariable) => {
                let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
                notes.push(format!("--{long} is taken from the variable {env}"));
            }
            Some(ValueSource::DefaultValue) => {
                if let (Some(key), Some(file)) = (from_file.keys.get(id), &from_file.file) {
                    notes.push(format!("--{long} is taken from `{key}` in {}", file.display()));
                }
            }
            _ => {}
        }
    }
    notes
}

/// The options of the server and the gateway that decide where they send a secret or data:
/// the token URL and issuer the gateway authenticates its feed credential at, the hook, webhooks
/// and collector `serve` calls. Deployments set these through variables as a rule, so a
/// variable left in a shell is what would send them elsewhere unseen.
const WHERE_DATA_GOES: [(&str, &[&str]); 2] = [
    ("gateway", &["token_url", "issuer"]),
    ("serve", &["issuer", "token_hook", "alert_webhooks", "otlp_endpoint"]),
];

fn where_data_goes(cli: &Command, name: &str, sub: &ArgMatches, watched: &[&str]) -> Vec<String> {
    let Some(command) = cli.find_subcommand(name) else { return Vec::new() };
    watched
        .iter()
        .filter(|id| matches_source(sub, id) == Some(ValueSource::EnvVariable))
        .filter_map(|id| command.get_arguments().find(|a| a.get_id().as_str() == *id))
        .map(|arg| {
            let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
            format!("--{} is taken from the variable {env}", arg.get_long().unwrap_or_default())
        })
        .collect()
}

fn matches_source(matches: &ArgMatches, id: &str) -> Option<ValueSource> {
    matches.try_get_raw(id).ok().flatten()?;
    matches.value_source(id)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use std::collections::BTreeMap;

    /// Every command at every depth with its path.
    fn commands(command: &Command, path: Vec<String>, out: &mut Vec<(Vec<String>, Command)>) {
        out.push((path.clone(), command.clone()));
        for sub in command.get_subcommands() {
            let mut next = path.clone();
            next.push(sub.get_name().to_owned());
            commands(sub, next, out);
        }
    }

    fn all() -> Vec<(Vec<String>, Command)> {
        let mut cli = crate::program();
        cli.build();
        let mut out = Vec::new();
        commands(&cli, Vec::new(), &mut out);
        out
    }

    /// The contract's rule for the client-side commands, over every option of every one of
    /// them: it has a variable, named `TOKENMINT_<OPTION>` or, where that name is taken,
    /// `TOKENMINT_<COMMAND>_<OPTION>`; and across the whole program one variable always
    /// stands for one option name, so no variable set for one purpose feeds another.
    #[test]
    fn every_client_option_has_its_variable_and_a_variable_names_one_option() {
        let mut meaning: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut checked = 0;
        for (path, command) in all() {
            let client = path.first().is_some_and(|g| CLIENT_COMMANDS.contains(&g.as_str()));
            for arg in command.get_arguments().filter(|a| is_option(a)) {
                let long = arg.get_long().unwrap();
                let env = arg.get_env().and_then(|e| e.to_str()).map(str::to_owned);
                if let Some(env) = &env {
                    meaning.entry(env.clone()).or_default().insert(long.to_owned());
                }
                if !client || long == "log-format" {
                    continue;
                }
                let env = env.unwrap_or_else(|| panic!("{path:?} --{long} has no variable"));
                let plain = variable_for(long);
                let scoped = format!("TOKENMINT_{}_{}", path[0].to_ascii_uppercase(), &plain[10..]);
                assert!(env == plain || env == scoped, "{path:?} --{long}: {env}");
                assert!(!READ_IN_CODE.contains(&env.as_str()), "{path:?} --{long}: {env}");
                checked += 1;
            }
        }
        assert!(checked > 60, "only {checked} options checked");
        let shared: Vec<_> = meaning.iter().filter(|(_, longs)| longs.len() > 1).collect();
        assert!(shared.is_empty(), "variables standing for several options: {shared:?}");
        // The names that would collide carry their command's name.
        let env_of = |path: &[&str], long: &str| {
            let (_, command) = all().into_iter().find(|(p, _)| p == path).unwrap();
            let arg = command.get_arguments().find(|a| a.get_long() == Some(long)).unwrap();
            arg.get_env().unwrap().to_str().unwrap().to_owned()
        };
        assert_eq!(env_of(&["audit", "export"], "client-id"), "TOKENMINT_AUDIT_CLIENT_ID");
        assert_eq!(
            env_of(&["credentials", "create"], "audience"),
            "TOKENMINT_CREDENTIALS_AUDIENCE"
        );
        assert_eq!(env_of(&["credentials", "create"], "org"), "TOKENMINT_ORG");
        assert_eq!(env_of(&["token"], "audience"), "TOKENMINT_AUDIENCE");
    }

    fn parse_with(file: &str, args: &[&str]) -> Result<(ArgMatches, FromFile), String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenmint.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv: Vec<OsString> = vec!["tokenmint".into()];
        argv.extend(args.iter().map(OsString::from));
        argv.push("--config".into());
        argv.push(path.clone().into());
        let (cli, from_file) = with_config_file(crate::program(), &argv)?;
        match cli.try_get_matches_from(&argv) {
            Ok(m) => Ok((m, from_file)),
            Err(e) => Err(blame_file(&e, &from_file).unwrap_or_else(|| e.to_string())),
        }
    }

    fn leaf(matches: &ArgMatches) -> &ArgMatches {
        client_path(matches).unwrap().1
    }

    fn strings(matches: &ArgMatches, id: &str) -> Vec<String> {
        matches.get_many::<String>(id).map(|v| v.cloned().collect()).unwrap_or_default()
    }

    #[test]
    fn the_file_fills_what_the_command_line_leaves_and_the_narrower_table_wins() {
        let file = r#"
            org = "from-top"
            audience = "https://only-for-token.example"
            listen = "127.0.0.1:8080"            # serve's, left to it
            product_areas = ["eligibility"]      # serve's, in its plural spelling
            mode = "verify"                      # the gateway's
            [[route]]
            path_prefix = "/"
            [credentials]
            audience = ["https://a.example", "https://b.example"]
            environment = "sandbox"
            [credentials.create]
            environment = "production"
            never_expires = true
            [token]
            output = "json"
        "#;
        let (m, from_file) =
            parse_with(file, &["credentials", "create", "--name", "flag"]).unwrap();
        let create = leaf(&m);
        assert_eq!(strings(create, "name"), ["flag"]);
        assert_eq!(strings(create, "org"), ["from-top"]);
        assert_eq!(strings(create, "audiences"), ["https://a.example", "https://b.example"]);
        assert!(create.get_flag("never_expires"));
        assert_eq!(from_file.keys["audiences"], "credentials.audience");
        assert_eq!(from_file.keys["org"], "org");
        // A number option takes a TOML number.
        let (m, _) = parse_with(
            "org = \"a\"\nenvironment = \"sandbox\"\n[credentials]\nrate_limit = 300",
            &["credentials", "create", "--name", "n"],
        )
        .unwrap();
        assert_eq!(leaf(&m).get_one::<u32>("rate_limit"), Some(&300));

        // A flag beats the file; so does a flag that conflicts with a file's option.
        let (m, _) =
            parse_with(file, &["credentials", "create", "--name", "n", "--expires-in", "30d"])
                .unwrap();
        assert!(!leaf(&m).get_flag("never_expires"));

        // The top-level audience is the token's, not a credential's.
        let (m, _) = parse_with(file, &["credentials", "update", "tmc_x"]).unwrap();
        assert!(strings(leaf(&m), "audiences").len() == 2, "the [credentials] table applies");
        let (m, _) = parse_with(file, &["token", "--client-id", "c"]).unwrap();
        assert_eq!(strings(leaf(&m), "audience"), ["https://only-for-token.example"]);
    }

    /// An on/off option set off by its variable is as if not set, so it does not conflict
    /// with the option it excludes; the server's and gateway's destinations from variables are
    /// noted; an admin credential file named in a config file is noted.
    #[test]
    fn off_is_unset_and_destinations_from_variables_are_noted() {
        assert!(is_off(std::ffi::OsStr::new("false")) && is_off(std::ffi::OsStr::new("OFF")));
        assert!(is_off(std::ffi::OsStr::new("0")) && !is_off(std::ffi::OsStr::new("true")));
        let cli = crate::program();
        for name in ["gateway", "serve"] {
            let watched = WHERE_DATA_GOES.iter().find(|(n, _)| *n == name).unwrap().1;
            let command = cli.find_subcommand(name).unwrap();
            for id in watched {
                let arg = command.get_arguments().find(|a| a.get_id().as_str() == *id);
                assert!(arg.is_some_and(|a| a.get_env().is_some()), "{name} {id}");
            }
        }
        let (m, from_file) =
            parse_with("admin_credentials = \"elsewhere.json\"", &["credentials", "list"]).unwrap();
        let said = notes(&crate::program(), &m, &from_file);
        assert!(
            said.iter().any(|n| n.starts_with("--admin-credentials is taken from")),
            "{said:?}"
        );
    }

    #[test]
    fn a_key_no_command_takes_and_a_value_of_the_wrong_shape_are_refused_naming_them() {
        let refused = |file: &str, args: &[&str], says: &[&str]| {
            let e = parse_with(file, args).expect_err(file);
            for s in says {
                assert!(e.contains(s), "{file}: {e}");
            }
        };
        let create = ["credentials", "create", "--name", "n"];
        refused("orgg = \"acme\"", &create, &["unknown key `orgg`", "--orgg"]);
        refused("[credential]\norg = \"a\"", &create, &["unknown table [credential]"]);
        refused("[credentials]\nlisten = \"x\"", &create, &["[credentials] table", "--listen"]);
        refused("[credentials.create]\noverlap = \"1h\"", &create, &["has no --overlap"]);
        refused("[credentials.crate]\norg = \"a\"", &create, &["[credentials.crate]"]);
        refused("org = [\"a\", \"b\"]", &create, &["`org`", "one value, not a list"]);
        refused(
            "[credentials]\nrate_limit = \"lots\"",
            &create,
            &["config file", "`credentials.rate_limit`", "lots"],
        );
        refused("org = 3 = 4", &create, &["invalid config file", "line 1, column"]);
        // An on/off option takes a TOML boolean, and only it does.
        refused(
            "[credentials.create]\nnever_expires = \"yes\"",
            &create,
            &["`credentials.create.never_expires`", "--never-expires is on/off", "true or false"],
        );
        refused("[credentials]\nnever_expires = 1", &create, &["--never-expires is on/off"]);
        refused("org = true", &create, &["`org`", "--org takes a value, not true/false"]);
        refused("[credentials]\nrate_limit = false", &create, &["--rate-limit takes a value"]);
        refused("org = 5", &create, &["`org`", "--org takes text", "double quotes"]);
        refused("org = 1.5", &create, &["--org takes text"]);
        refused(
            "[credentials]\norg = 2027-01-01",
            &create,
            &["`credentials.org`", "--org takes text"],
        );
        refused(
            "[credentials.create]\naudience = [\"a\", 7]",
            &create,
            &["`credentials.create.audience`", "--audience takes text"],
        );
        refused(
            "[credentials.create]\naudience = [\"a\", true]",
            &create,
            &["`credentials.create.audience`", "--audience takes a value"],
        );
        // An option with a fixed set of values lists them.
        refused(
            "auth = \"bsaic\"",
            &["token", "--token-url", "http://127.0.0.1:1/t", "--client-id", "x"],
            &["`auth`", "'bsaic'", "accepted: basic, post, json"],
        );
        // Another command's table or option is left to it.
        let others = "org = \"a\"\nenvironment = \"sandbox\"\n[users]\nrole = \"viewer\"\n[keys.rotate]\nx=1";
        assert!(parse_with(others, &create).is_ok());
    }

    /// Help names each variable but never shows its value (a database or Redis URL may hold a
    /// password), in every command of the program, the server's and the gateway's included.
    #[test]
    fn no_command_help_shows_a_variables_value() {
        let mut checked = BTreeSet::new();
        for (path, command) in all() {
            for arg in command.get_arguments() {
                let Some(env) = arg.get_env().and_then(|e| e.to_str()) else { continue };
                assert!(arg.is_hide_env_values_set(), "{path:?} {env} shows its value");
                checked.insert(env.to_owned());
            }
        }
        for env in ["TOKENMINT_DATABASE", "TOKENMINT_REDIS", "TOKENMINT_ENDPOINT"] {
            assert!(checked.contains(env), "{env} not checked");
        }
    }

    /// Where a secret goes is said when a file chose it: an admin command's server and output,
    /// the admin credential file, and the token endpoint `token` and `call` send the client's
    /// secret to. The options meant to come from the environment stay quiet.
    #[test]
    fn where_a_secret_goes_is_noted_when_the_file_chose_it() {
        let file = "endpoint = \"http://elsewhere.example\"\noutput = \"json\"\n\
                    admin_credentials = \"admin.json\"\ntoken_url = \"http://elsewhere.example/t\"\n\
                    issuer = \"http://elsewhere.example\"\nclient_id = \"tmc_x\"\n";
        let notes_of = |args: &[&str]| {
            let (matches, from_file) = parse_with(file, args).unwrap();
            notes(&crate::program(), &matches, &from_file).join("\n")
        };
        let said = notes_of(&["orgs", "list"]);
        assert!(said.contains("--endpoint is taken from `endpoint` in"), "{said}");
        assert!(said.contains("--output is taken from `output` in"), "{said}");
        // The credential file named in a config file decides which credential goes where.
        assert!(said.contains("--admin-credentials is taken from `admin_credentials`"), "{said}");
        assert!(!said.contains("--config"), "{said}");
        for command in [&["token"][..], &["call", "http://api.example/x"]] {
            let said = notes_of(command);
            assert!(said.contains("--token-url is taken from `token_url` in"), "{said}");
            assert!(said.contains("--issuer is taken from `issuer` in"), "{said}");
            assert!(!said.contains("--client-id") && !said.contains("--output"), "{said}");
        }
    }
}
