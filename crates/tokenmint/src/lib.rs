//! The library side of the `tokenmint` binary: the configuration loader of `serve`, `init` and
//! `migrate`, so that it can be driven from outside the program (the configuration fuzz target
//! feeds it arbitrary TOML). The program itself lives in `main.rs` and its `cmd/` modules.

pub mod settings;
pub mod telemetry;
