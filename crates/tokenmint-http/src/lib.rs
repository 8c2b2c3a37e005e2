//! The HTTP pieces the tokenmint server and the gateway share.
//!
//! Both face hostile clients on the open network, so both accept connections through the same
//! hardened [`listener`] (TLS with certificate reload, deadlines for headers and handshakes,
//! caps on header size and count, `X-Forwarded-For` believed only from trusted proxies), and
//! both count requests with the same [`ratelimit`] (GCRA, in-process) and [`limits`] (the same
//! algorithm shared through Redis, falling back to the in-process one).
//!
//! Both also read a TOML [`config_file`] the same guarded way.
//!
//! Time is an argument here: the limiters read a [`Clock`] they are given, so tests move a
//! [`ManualClock`] instead of waiting. This crate knows nothing of storage or the portal, so the
//! gateway can be built without them.

pub mod config_file;
pub mod limits;
pub mod listener;
pub mod ratelimit;

pub use limits::Limits;
pub use listener::{DEFAULT_HEADER_TIMEOUT, ListenOptions, Tls, TlsError, TlsFiles};
pub use ratelimit::{Decision, RateLimiter};
pub use tokenmint_proto::clock::{Clock, ManualClock, SystemClock};
