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
    let failed = |reason: String| ConfigFileError::Read { path: path.to_owned(), reason };
    let not_a_file = |kind| ConfigFileError::NotAFile { path: path.to_owned(), kind };
    // Checked before opening: opening a FIFO waits for a writer.
    let metadata = std::fs::metadata(path).map_err(|e| failed(e.to_string()))?;
    if let Some(kind) = kind_of(metadata.file_type()) {
        return Err(not_a_file(kind));
    }
    let file = std::fs::File::open(path).map_err(|e| failed(e.to_string()))?;
    // And again on what was opened, in case the path changed in between.
    let metadata = file.metadata().map_err(|e| failed(e.to_string()))?;
    if let Some(kind) = kind_of(metadata.file_type()) {
        return Err(not_a_file(kind));
    }
    let mut bytes = Vec::new();
    file.take(MAX_LEN + 1).read_to_end(&mut bytes).map_err(|e| failed(e.to_string()))?;
    if bytes.len() as u64 > MAX_LEN {
        return Err(ConfigFileError::TooLarge { path: path.to_owned() });
    }
    String::from_utf8(bytes).map_err(|_| failed("it is not UTF-8 text".into()))
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

    #[test]
    fn a_quoted_value_leaves_the_message() {
        assert_eq!(
            without_values("invalid type: string \"s3cr\"et\", expected a boolean"),
            "invalid type: a string, expected a boolean"
        );
        assert_eq!(without_values("unknown field `x`"), "unknown field `x`");
    }
}
