//! Tables and timestamps for the admin subcommands' human output.

use std::io::Write;

/// Prints rows as an aligned table with a header.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    writeln!(out, "{}", line(headers.to_vec()))?;
    for row in rows {
        writeln!(out, "{}", line(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

/// Prints `key  value` lines, the values in one column; a value of several lines (a credential's
/// secrets, claims or keys) continues in that column.
pub fn fields(pairs: &[(&str, String)]) -> std::io::Result<()> {
    write_fields(&mut std::io::stdout().lock(), pairs)
}

fn write_fields(out: &mut impl Write, pairs: &[(&str, String)]) -> std::io::Result<()> {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        let mut lines = v.lines();
        writeln!(out, "{k:<width$}  {}", lines.next().unwrap_or(""))?;
        for line in lines {
            writeln!(out, "{:width$}  {line}", "")?;
        }
    }
    Ok(())
}

pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

/// Prints an answer's fields as POSIX shell assignments, one per line, for
/// `eval "$(tokenmint … --output env)"`: `client_secret` becomes `CLIENT_SECRET='…'`, a nested
/// field joins its names with `_` (`secret.id` → `SECRET_ID`), a list of scalars is one
/// space-separated value and a list of objects numbers its items from 0
/// (`secrets[0].id` → `SECRETS_0_ID`); nulls are left out. Values are single-quoted, so the
/// `eval` never expands or executes anything in them, and a name the shell itself relies on
/// (`PATH`, `IFS`, `HOME`…) is prefixed with `FIELD_` rather than overwriting it. A command
/// that fails prints `false` instead (see `main`), so the `eval` fails with it.
pub fn env<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let value = serde_json::to_value(value)?;
    if !value.is_object() {
        anyhow::bail!(
            "this command answers with a list, which `--output env` cannot express: use `--output json`"
        );
    }
    let mut lines = Vec::new();
    flatten("", &value, &mut lines);
    let mut out = std::io::stdout().lock();
    for (name, value) in lines {
        writeln!(out, "{}={}", safe_name(name), shell_quote(&value))?;
    }
    Ok(())
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut Vec<(String, String)>) {
    use serde_json::Value;
    let join = |name: &str| {
        let name = env_name(name);
        if prefix.is_empty() { name } else { format!("{prefix}_{name}") }
    };
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                flatten(&join(name), field, out);
            }
        }
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let joined: Vec<String> = items.iter().filter_map(scalar).collect();
            out.push((prefix.to_owned(), joined.join(" ")));
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                flatten(&join(&i.to_string()), item, out);
            }
        }
        other => {
            if let Some(text) = scalar(other) {
                out.push((prefix.to_owned(), text));
            }
        }
    }
}

fn scalar(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(_) | serde_json::Value::Number(_) => Some(value.to_string()),
        _ => None,
    }
}

/// `client_secret` → `CLIENT_SECRET`; anything but ASCII letters and digits becomes `_`.
fn env_name(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' })
        .collect()
}

/// Variables the shell or the programs it starts rely on are never assigned by an `eval`.
fn safe_name(name: String) -> String {
    const RESERVED: &[&str] = &[
        "PATH", "HOME", "IFS", "PS1", "PS2", "PS4", "SHELL", "USER", "PWD", "OLDPWD", "LANG",
        "TERM", "ENV", "CDPATH", "BASH_ENV", "TMPDIR", "EDITOR", "PAGER", "OPTIND", "OPTARG",
    ];
    let starts_badly = name.chars().next().is_none_or(|c| c.is_ascii_digit());
    if starts_badly
        || RESERVED.contains(&name.as_str())
        || name.starts_with("LD_")
        || name.starts_with("BASH")
        || name.starts_with("TOKENMINT_")
    {
        format!("FIELD_{name}")
    } else {
        name
    }
}

/// Single quotes keep every character literal; a quote inside is closed, escaped, reopened.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

pub fn when(t: Option<time::OffsetDateTime>, none: &str) -> String {
    match t {
        Some(t) => t
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| t.unix_timestamp().to_string()),
        None => none.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_field_starts_in_the_value_column() {
        let mut out = Vec::new();
        let pairs = [
            ("name", "HR sync".to_owned()),
            ("claims", "plan=\"gold\"\ntenant=\"t-42\"\nzone=1".to_owned()),
            ("token lifetime", "3600s".to_owned()),
        ];
        write_fields(&mut out, &pairs).unwrap();
        let text = String::from_utf8(out).unwrap();
        let column = "token lifetime  ".len();
        for line in text.lines() {
            assert!(line.len() > column && line.as_bytes()[column] != b' ', "{line:?} in\n{text}");
            assert!(line[..column].ends_with("  "), "{line:?} in\n{text}");
        }
        assert_eq!(text.lines().count(), 5, "{text}");
    }

    #[test]
    fn env_names_are_upper_snake_case_shell_identifiers() {
        assert_eq!(env_name("client_secret"), "CLIENT_SECRET");
        assert_eq!(env_name("token-endpoint"), "TOKEN_ENDPOINT");
    }

    #[test]
    fn shell_quoting_keeps_every_character_literal() {
        for value in ["plain", "it's", "$(rm -rf /)", "`x`", "a\nb", "''", "\\", "x y\tz"] {
            let quoted = shell_quote(value);
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {quoted}"))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value, "{quoted}");
        }
    }

    fn flat(value: serde_json::Value) -> Vec<(String, String)> {
        let mut out = Vec::new();
        flatten("", &value, &mut out);
        out.into_iter().map(|(k, v)| (safe_name(k), v)).collect()
    }

    #[test]
    fn nested_fields_join_their_names_and_list_items_are_numbered() {
        let got = flat(serde_json::json!({
            "client_id": "tmc_a",
            "secret": {"id": "sec_1", "expires_at": null},
            "scopes": ["a:read", "b:write"],
            "secrets": [{"id": "sec_1"}, {"id": "sec_2"}],
            "limit": 3,
        }));
        let want = [
            ("CLIENT_ID", "tmc_a"),
            ("SECRET_ID", "sec_1"),
            ("SCOPES", "a:read b:write"),
            ("SECRETS_0_ID", "sec_1"),
            ("SECRETS_1_ID", "sec_2"),
            ("LIMIT", "3"),
        ];
        for (name, value) in want {
            assert!(got.contains(&(name.to_owned(), value.to_owned())), "{name} in {got:?}");
        }
        assert_eq!(got.len(), want.len(), "{got:?}");
    }

    #[test]
    fn names_the_shell_relies_on_are_never_assigned() {
        let got = flat(
            serde_json::json!({"path": "/x", "ifs": " ", "tokenmint_client_secret": "s", "ld_preload": "x"}),
        );
        for (name, _) in &got {
            assert!(name.starts_with("FIELD_"), "{name}");
        }
    }
}
