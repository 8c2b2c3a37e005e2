//! The server's configuration loader (`tokenmint::settings`): arbitrary TOML through
//! `parse_file`, and whatever parses through `resolve_serve`, which validates every setting the
//! way `tokenmint serve --config FILE` does. A configuration file is trusted input, but a typo
//! in it must produce an error that names the setting, never a panic at startup.
//!
//! The database and master key come from flags (which beat the file), so that resolving never
//! creates a key file or touches a real database; everything else comes from the fuzzed file.

#![no_main]

use clap::Parser;
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::LazyLock;
use tokenmint::settings::{self, ServeArgs};

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

struct Fixture {
    _dir: tempfile::TempDir,
    config: PathBuf,
    master_key: PathBuf,
    database: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot create a temporary directory: {e}"),
    };
    let master_key = dir.path().join("fuzz.master-key");
    if let Err(e) = std::fs::write(&master_key, format!("{}\n", "ab".repeat(32))) {
        panic!("cannot write the master key file: {e}");
    }
    Fixture {
        config: dir.path().join("tokenmint.toml"),
        database: format!("sqlite://{}", dir.path().join("fuzz.db").display()),
        master_key,
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if settings::parse_file(text).is_err() {
        return;
    }
    let fixture = &*FIXTURE;
    if std::fs::write(&fixture.config, text).is_err() {
        return;
    }
    let args = [
        "tokenmint".as_ref(),
        "--config".as_ref(),
        fixture.config.as_os_str(),
        "--master-key-file".as_ref(),
        fixture.master_key.as_os_str(),
        "--database".as_ref(),
        fixture.database.as_ref(),
    ];
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => panic!("the fixed flags must parse: {e}"),
    };
    if let Ok(resolved) = settings::resolve_serve(&cli.serve) {
        let config = &resolved.config;
        assert!(!config.token_paths.is_empty(), "no token endpoint path");
        assert!((60..=7 * 86_400).contains(&config.max_token_lifetime));
    }
});
