//! The tokenmint authorization server as a library: build an [`Application`] from a
//! [`Config`] and a store, then run it.
//!
//! The token endpoint is the hot path and is built to stay off the database: credentials come
//! from an in-memory cache that every change invalidates (in this process at once, in others
//! through the store's change log), signing keys are decrypted once and swapped atomically,
//! `last_used` times are written in batches, and rate limits are in-process atomics.

pub mod abuse;
pub mod alerts;
pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod cache;
pub mod clock;
pub mod config;
pub mod error;
pub mod extract;
pub mod hashing;
pub mod hook;
pub mod keyring;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod portal;
pub mod revocations;
pub mod routes;
pub mod service;
pub mod state;
pub mod sync;
pub mod transport;
pub mod usage;
pub mod users;

pub use app::Application;
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::Config;
pub use state::AppState;
