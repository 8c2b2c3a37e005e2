//! Reading a TOML config file, for every command that takes one (`serve`, `init`, `migrate`,
//! the client-side commands' `--config` and the gateway, on start and on SIGHUP).
//!
//! A config file is a few kilobytes of text someone wrote, so anything else is refused before
//! it is read: what is not a regular file once symlinks are followed (a directory, a FIFO that
//! would block forever, `/dev/zero` that never ends) and a file over [`MAX_LEN`], of which at
//! most one byte more is read. A file that does not parse is refused with its line, column and
//! what is wrong, never with its text: the line may hold a secret (a master key, a Redis
//! password, a client secret), and a path named by mistake may be someone else's file.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest config file read: far above any real one, far below what could hurt.
pub const MAX_LEN: u64 = 1024 * 1024;

/// Why a config file could not be used; each names the file and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigFileError {
    #[error("cannot read the config file {}: {reason}", path.display())]
    Read { path: PathBuf, reason: String },
    #[error(
        "the config file {} is not a regular file but {kind}: name a TOML file",
        path.display()
    )]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error(
        "the config file {} is larger than 1 MiB, which no config file is: check that it names \
         the right file",
        path.display()
    )]
    TooLarge { path: PathBuf },
    #[error("invalid config file {}, {error}", path.display())]
    Syntax { path: PathBuf, error: SyntaxError },
}

/// Where a TOML text is wrong and what is wrong there, without the text itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// What a file system object is, in words, when it is not a regular file.
fn kind_of(file_type: std::fs::FileType) -> Option<&'static str> {
    if file_type.is_file() {
        return None;
    }
    if file_type.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return Some("a named pipe");
        }
        if file_type.is_socket() {
            return Some("a socket");
        }
        if file_type.is_char_device() || file_type.is_block_device() {
            return Some("a device");
        }
    }
    Some("not a file")
}

/// The text of the config file at `path`: a regular file (symlinks followed) of at most
/// [`MAX_LEN`] bytes of UTF-8.
pub fn read(path: &Path) -> Result<String, ConfigFileError> {
    read_text_limited(path, MAX_LEN, "the config file").map_err(|e| match e {
        FileError::Read { path, reason, .. } => ConfigFileError::Read { path, reason },
        FileError::NotAFile { path, kind, .. } => ConfigFileError::NotAFile { path, kind },
        FileError::TooLarge { path, .. } => ConfigFileError::TooLarge { path },
    })
}

/// Why a file other than a config file (a key, a secret, a certificate) could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    #[error("cannot read {what} {}: {reason}", path.display())]
    Read { what: String, path: PathBuf, reason: String },
    #[error("{what} {} is not a regular file but {kind}: name the file itself", path.display())]
    NotAFile { what: String, path: PathBuf, kind: &'static str },
    #[error(
        "{what} {} is larger than {} KiB, which none is: check that it names the right file",
        path.display(),
        limit / 1024
    )]
    TooLarge { what: String, path: PathBuf, limit: u64 },
}

/// The bytes of the file at `path`, for `what` (`--public-key`, `the master key file`): a
/// regular file (symlinks followed) of at most `limit` bytes, of which at most one byte more
/// is read, so `/dev/zero` or a FIFO named by mistake is refused at once.
pub fn read_limited(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, FileError> {
    let failed =
        |reason: String| FileError::Read { what: what.to_owned(), path: path.to_owned(), reason };
    let not_a_file =
        |kind| FileError::NotAFile { what: what.to_owned(), path: path.to_owned(), kind };
    // Checked before opening: opening a FIFO waits for a writer.
    let metadata = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
    if let Some(kind) = kind_of(metadata.file_type()) {
        return Err(not_a_file(kind));
    }
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    let metadata = file.metadata().map_err(|e| failed(e.to_string()))?;
    if let Some(kind) = kind_of(metadata.file_type()) {
        return Err(not_a_file(kind));
    }
    read_at_most(file, limit)
        .map_err(|e| failed(e.to_string()))?
        .ok_or_else(|| FileError::TooLarge { what: what.to_owned(), path: path.to_owned(), limit })
}

/// The UTF-8 text of the file at `path`, as [`read_limited`] reads it.
pub fn read_text_limited(path: &Path, limit: u64, what: &str) -> Result<String, FileError> {
    String::from_utf8(read_limited(path, limit, what)?).map_err(|_| FileError::Read {
        what: what.to_owned(),
        path: path.to_owned(),
        reason: "it is not UTF-8 text".into(),
    })
}

/// At most `limit` bytes of `reader` (standard input, a file), reading at most one byte more;
/// `None` when there were more.
pub fn read_at_most(reader: impl Read, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    reader.take(limit + 1).read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

/// Parses a TOML text into `T`; an error says where and what, never the text.
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SyntaxError> {
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |span| span.start).min(text.len());
        let before = text.get(..offset).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or_default().chars().count() + 1;
        SyntaxError { line, column, message: without_values(e.message()) }
    })
}

/// Reads and parses the config file at `path`.
pub fn load<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, ConfigFileError> {
    parse(&read(path)?).map_err(|error| ConfigFileError::Syntax { path: path.to_owned(), error })
}

/// Parses a TOML text into `T` like [`parse`]; a value of the wrong type is named by its key
/// and its table path (`route[2].rate_limit_per_minute`), as `name` spells it, and the message
/// says in words what to write there, with an example. `durations` are the keys whose text is a
/// duration (`"30s"`), so a number given for one is answered with the text to write.
pub fn parse_typed<T: serde::de::DeserializeOwned>(
    text: &str,
    durations: &[&str],
    name: &dyn Fn(&WrongType) -> String,
) -> Result<T, SyntaxError> {
    parse(text).map_err(|mut error| {
        let table: Option<toml::Table> = toml::from_str(text).ok();
        if let Some(wrong) = table.and_then(|t| wrongly_typed::<T>(&t, durations)) {
            error.message = wrong.message(&name(&wrong));
        }
        error
    })
}

/// A path in a config file as the file means it: a relative path is taken from the file's
/// directory, not from wherever the command was started, and made absolute.
pub fn relative_to_file(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() || path.as_os_str().is_empty() {
        return path.to_owned();
    }
    let dir = config.parent().unwrap_or(Path::new(""));
    let joined = dir.join(path);
    std::path::absolute(&joined).unwrap_or(joined)
}

/// A value that does not fit its key, found by giving the type each key alone (and each item
/// of a list, and each key of a table in a list), so no value of the file is ever quoted.
#[derive(Debug, Clone, PartialEq)]
pub struct WrongType {
    /// The key with its table path: `listen`, `route[2].rate_limit_per_minute`.
    pub path: String,
    /// The key itself (for a list item, the list's key).
    pub key: String,
    value: toml::Value,
    expected: Expected,
    /// For `[route]` written where `[[route]]` tables are expected.
    tables: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Expected {
    Text,
    Duration,
    /// The largest value, from the Rust type's name.
    WholeNumber(u128),
    Number,
    Bool,
    List,
    Table,
    Other(String),
}

fn expected_of(message: &str, duration: bool) -> Expected {
    let Some(after) = message.rsplit("expected ").next().filter(|_| message.contains("expected "))
    else {
        return Expected::Other(without_values(message));
    };
    let word = after.trim().trim_end_matches('.');
    let whole = |max: u128| Expected::WholeNumber(max);
    match word {
        "a string" | "a borrowed string" | "path string" if duration => Expected::Duration,
        "a string" | "a borrowed string" | "path string" => Expected::Text,
        "a boolean" => Expected::Bool,
        "a sequence" => Expected::List,
        "a map" => Expected::Table,
        "u8" => whole(u8::MAX.into()),
        "u16" => whole(u16::MAX.into()),
        "u32" => whole(u32::MAX.into()),
        "u64" | "usize" => whole(u64::MAX.into()),
        "i8" | "i16" | "i32" | "i64" | "isize" => whole(i64::MAX.unsigned_abs().into()),
        "f32" | "f64" => Expected::Number,
        w if w.starts_with("struct ") => Expected::Table,
        _ => Expected::Other(without_values(message)),
    }
}

/// What a value is, in words, without the value.
fn found_words(value: &toml::Value) -> &'static str {
    match value {
        toml::Value::String(_) => "text",
        toml::Value::Integer(_) | toml::Value::Float(_) => "a number",
        toml::Value::Boolean(_) => "true or false",
        toml::Value::Datetime(_) => "a date",
        toml::Value::Array(_) => "a list",
        toml::Value::Table(_) => "a table",
    }
}

impl WrongType {
    /// `invalid NAMED: expected …, not …; write it …`.
    pub fn message(&self, named: &str) -> String {
        let key = &self.key;
        let found = found_words(&self.value);
        let (expected, advice) = match &self.expected {
            Expected::Text => (
                "text in double quotes".to_owned(),
                format!("write it in double quotes, like {key} = \"…\""),
            ),
            Expected::Duration => {
                let example = match &self.value {
                    toml::Value::Integer(n) if *n >= 0 => format!("{n}s"),
                    _ => "30s".to_owned(),
                };
                (
                    "a duration: text in double quotes with a unit (ms, s, m, h, d)".to_owned(),
                    format!("write it like {key} = \"{example}\""),
                )
            }
            Expected::WholeNumber(max) => {
                let advice = match &self.value {
                    toml::Value::String(_) => format!("write it without quotes, like {key} = 100"),
                    toml::Value::Integer(_) => format!("use a whole number from 0 to {max}"),
                    _ => format!("write it like {key} = 100"),
                };
                ("a whole number".to_owned(), advice)
            }
            Expected::Number => {
                ("a number".to_owned(), format!("write it without quotes, like {key} = 1.5"))
            }
            Expected::Bool => {
                ("true or false".to_owned(), format!("write it without quotes, like {key} = true"))
            }
            Expected::List if self.tables => (
                format!("a list of [[{key}]] tables"),
                format!(
                    "write [[{key}]] (an array of tables, with two brackets) above each one, \
                     not [{key}]"
                ),
            ),
            Expected::List => (
                "a list".to_owned(),
                format!("write it in square brackets, even for one item, like {key} = [\"…\"]"),
            ),
            Expected::Table if self.path.ends_with(']') => {
                (format!("a [[{key}]] table"), format!("write each one as a table under [[{key}]]"))
            }
            Expected::Table => ("a table".to_owned(), format!("write its settings under [{key}]")),
            Expected::Other(message) => return format!("invalid {named}: {message}"),
        };
        format!("invalid {named}: expected {expected}, not {found}; {advice}")
    }
}

/// A table of one key.
fn one(key: &str, value: toml::Value) -> toml::Table {
    toml::Table::from_iter([(key.to_owned(), value)])
}

/// Why `table` does not fit `T` by itself: `None` when it does, or when it misses a required
/// key or has an unknown one (which are reported as they are).
fn misfit<T: serde::de::DeserializeOwned>(table: toml::Table) -> Option<String> {
    match toml::Value::Table(table).try_into::<T>() {
        Ok(_) => None,
        Err(e) => {
            let message = e.message().to_owned();
            (!message.contains("unknown field") && !message.contains("missing field"))
                .then_some(message)
        }
    }
}

/// The first value of `table` that does not fit `T` because of its type (see [`WrongType`]).
pub fn wrongly_typed<T: serde::de::DeserializeOwned>(
    table: &toml::Table,
    durations: &[&str],
) -> Option<WrongType> {
    use toml::Value::{Array, Table};
    let empty = toml::Table::new;
    table.iter().find_map(|(key, value)| {
        let message = misfit::<T>(one(key, value.clone()))?;
        let list_of_tables = misfit::<T>(one(key, Array(vec![Table(empty())]))).is_none();
        let wrong = |path: String, key: &str, value: &toml::Value, message: &str| WrongType {
            path,
            key: key.to_owned(),
            value: value.clone(),
            expected: expected_of(message, durations.contains(&key)),
            tables: list_of_tables && matches!(value, Table(_)),
        };
        // Inside a list or a table that fits as a container, the item or key that does not.
        let inner = match value {
            Array(items) if misfit::<T>(one(key, Array(Vec::new()))).is_none() => {
                items.iter().enumerate().find_map(|(i, item)| {
                    let message = misfit::<T>(one(key, Array(vec![item.clone()])))?;
                    let path = format!("{key}[{i}]");
                    let field = match item {
                        Table(fields) if list_of_tables => fields.iter().find_map(|(sub, v)| {
                            let m = misfit::<T>(one(key, Array(vec![Table(one(sub, v.clone()))])))?;
                            Some(wrong(format!("{path}.{sub}"), sub, v, &m))
                        }),
                        _ => None,
                    };
                    Some(field.unwrap_or_else(|| wrong(path, key, item, &message)))
                })
            }
            Table(fields) if misfit::<T>(one(key, Table(empty()))).is_none() => {
                fields.iter().find_map(|(sub, v)| {
                    let m = misfit::<T>(one(key, Table(one(sub, v.clone()))))?;
                    Some(wrong(format!("{key}.{sub}"), sub, v, &m))
                })
            }
            _ => None,
        };
        Some(inner.unwrap_or_else(|| wrong(key.clone(), key, value, &message)))
    })
}

/// A parser's message without the string value it may quote (serde's `invalid type: string
/// "…", expected …`): the value given to the wrong key may be a secret.
fn without_values(message: &str) -> String {
    const QUOTED: &str = "string \"";
    let Some(start) = message.find(QUOTED) else { return message.trim().to_owned() };
    let rest = &message[start + QUOTED.len()..];
    let after = rest.rfind('"').map_or("", |end| &rest[end + 1..]);
    format!("{}a string{after}", &message[..start]).trim().to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_limited_read_refuses_devices_and_reads_at_most_one_byte_past_the_limit() {
        let zero = read_limited(Path::new("/dev/zero"), 4096, "--public-key").unwrap_err();
        assert_eq!(
            zero.to_string(),
            "--public-key /dev/zero is not a regular file but a device: name the file itself"
        );
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 4097]).unwrap();
        let e = read_limited(&big, 4096, "the master key file").unwrap_err();
        assert!(e.to_string().contains("is larger than 4 KiB"), "{e}");
        std::fs::write(&big, vec![b'a'; 4096]).unwrap();
        assert_eq!(read_limited(&big, 4096, "x").unwrap().len(), 4096);
        assert_eq!(read_at_most(std::io::repeat(0), 10).unwrap(), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Settings {
        master_key: Option<String>,
        redis: Option<String>,
        insecure_http: Option<bool>,
    }

    fn write(text: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokenmint.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn a_good_file_is_read_and_parsed() {
        let (_dir, path) = write(b"redis = \"redis://h\"\ninsecure_http = true\n");
        let settings: Settings = load(&path).unwrap();
        assert_eq!(settings.redis.as_deref(), Some("redis://h"));
        assert_eq!(settings.insecure_http, Some(true));
    }

    #[test]
    fn parse_errors_give_line_and_column_and_never_the_text() {
        let cases: [(&str, usize); 4] = [
            ("insecure_http = true\nmaster_key = \"SECRET1\" x\n", 2),
            ("\n\nredis = \"redis://:SECRET2@h\n", 3),
            ("client_secret = \"tms_SECRET3\"\n", 1),
            ("insecure_http = \"SECRET4\"\n", 1),
        ];
        for (text, line) in cases {
            let (_dir, path) = write(text.as_bytes());
            let error = load::<Settings>(&path).unwrap_err();
            let said = error.to_string();
            assert!(said.contains(&path.display().to_string()), "{said}");
            assert!(said.contains(&format!("line {line}, column ")), "{said}");
            assert!(!said.contains("SECRET"), "{said}");
            let ConfigFileError::Syntax { error, .. } = error else { panic!("{said}") };
            assert!(!error.message.is_empty(), "{said}");
        }
        let error = parse::<Settings>("redis = \"x\"\n  master_key = 3 = 4\n").unwrap_err();
        assert_eq!((error.line, error.column), (2, 18), "{error}");
    }

    #[test]
    fn what_is_not_a_small_regular_file_is_refused_without_reading_it_all() {
        let dir = tempfile::tempdir().unwrap();
        let said = read(dir.path()).unwrap_err().to_string();
        assert!(said.contains("not a regular file but a directory"), "{said}");

        let (_dir, big) = write(&vec![b'#'; usize::try_from(MAX_LEN).unwrap() + 1]);
        let said = read(&big).unwrap_err().to_string();
        assert!(said.contains("larger than 1 MiB") && said.contains("tokenmint.toml"), "{said}");
        let (_dir, edge) = write(&vec![b'#'; usize::try_from(MAX_LEN).unwrap()]);
        assert!(read(&edge).is_ok());

        #[cfg(unix)]
        {
            // Endless, and a pipe with no writer: both refused at once, through a symlink too.
            assert!(matches!(
                read(Path::new("/dev/zero")),
                Err(ConfigFileError::NotAFile { kind: "a device", .. })
            ));
            let fifo = dir.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
            assert!(made.success());
            let link = dir.path().join("link.toml");
            std::os::unix::fs::symlink(&fifo, &link).unwrap();
            let said = read(&link).unwrap_err().to_string();
            assert!(said.contains("a named pipe") && said.contains("link.toml"), "{said}");
        }
        let said = read(&dir.path().join("missing.toml")).unwrap_err().to_string();
        assert!(said.starts_with("cannot read the config file"), "{said}");
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Nested {
        timeout: Option<String>,
        limit: Option<u32>,
        names: Option<Vec<String>>,
        #[serde(default, rename = "route")]
        routes: Vec<Route>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Route {
        prefix: Option<String>,
        per_minute: Option<u32>,
        on: Option<bool>,
    }

    fn typed_error(text: &str) -> String {
        let named = |wrong: &WrongType| format!("`{}`", wrong.path);
        parse_typed::<Nested>(text, &["timeout"], &named).unwrap_err().to_string()
    }

    #[test]
    fn a_wrongly_typed_value_is_named_with_its_table_path_in_words() {
        let routes = "[[route]]\nprefix = \"/a\"\n[[route]]\nprefix = \"/b\"\n[[route]]\n";
        let e = typed_error(&format!("{routes}per_minute = \"SECRET600\"\n"));
        assert!(e.starts_with("line 6, column "), "{e}");
        assert!(
            e.contains("invalid `route[2].per_minute`: expected a whole number, not text"),
            "{e}"
        );
        assert!(e.contains("without quotes, like per_minute = 100"), "{e}");
        assert!(!e.contains("SECRET") && !e.contains("u32"), "{e}");
        let e = typed_error(&format!("{routes}on = \"yes\"\n"));
        assert!(e.contains("`route[2].on`: expected true or false, not text"), "{e}");
        let e = typed_error("timeout = 3600\n");
        assert!(
            e.contains("`timeout`: expected a duration") && e.contains("timeout = \"3600s\""),
            "{e}"
        );
        let e = typed_error("names = \"SECRET\"\n");
        assert!(
            e.contains("`names`: expected a list, not text") && e.contains("names = [\""),
            "{e}"
        );
        assert!(!e.contains("SECRET") && !e.contains("sequence"), "{e}");
        let e = typed_error("names = [\"a\", 5]\n");
        assert!(e.contains("`names[1]`: expected text in double quotes, not a number"), "{e}");
        let e = typed_error("limit = -5\n");
        assert!(
            e.contains("`limit`: expected a whole number") && e.contains("0 to 4294967295"),
            "{e}"
        );
        let e = typed_error("[route]\nprefix = \"/a\"\n");
        assert!(e.contains("`route`: expected a list of [[route]] tables, not a table"), "{e}");
        assert!(e.contains("write [[route]]"), "{e}");
        let e = typed_error("route = [1]\n");
        assert!(e.contains("`route[0]`: expected a [[route]] table, not a number"), "{e}");
        // Unknown keys and syntax errors keep the parser's own message.
        assert!(typed_error("nope = 1\n").contains("unknown field `nope`"));
    }

    #[test]
    fn a_relative_path_in_a_file_is_the_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("conf").join("g.toml");
        assert_eq!(
            relative_to_file(&config, Path::new("gw.secret")),
            dir.path().join("conf").join("gw.secret")
        );
        assert_eq!(relative_to_file(&config, Path::new("/etc/x")), Path::new("/etc/x"));
        let here = std::env::current_dir().unwrap();
        assert_eq!(relative_to_file(Path::new("g.toml"), Path::new("s")), here.join("s"));
    }

    #[test]
    fn a_quoted_value_leaves_the_message() {
        assert_eq!(
            without_values("invalid type: string \"s3cr\"et\", expected a boolean"),
            "invalid type: a string, expected a boolean"
        );
        assert_eq!(without_values("unknown field `x`"), "unknown field `x`");
    }
}
