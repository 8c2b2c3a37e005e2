//! An OAuth 2.0 client-credentials client (RFC 6749 §4.4) for any authorization server.
//!
//! # Why
//!
//! Every partner of every API provider writes the same code: fetch a token, cache it, refresh it
//! a little before it expires, retry once on a 401, back off on a 429, never log the secret.
//! Most OAuth libraries leave the cache to the caller, hold a lock across the network fetch, log
//! the secret at debug level, or let a thousand concurrent callers fetch a thousand tokens. This
//! crate does the whole job once:
//!
//! - **One fetch at a time.** Callers without a usable token share a single request to the token
//!   endpoint (single flight), each waiting under its own deadline; a caller that gives up does
//!   not cancel the fetch for the others.
//! - **Reads take no lock.** A usable token is handed out with one atomic load.
//! - **Refresh ahead of expiry.** A token is refreshed in the background from a margin before it
//!   expires (60 s by default, at most half its lifetime) while callers keep using it; a failed
//!   refresh keeps the token that is still valid.
//! - **Polite retries.** 429, 5xx, timeouts and connection errors are retried with exponential
//!   backoff and full jitter, honouring `Retry-After` in both its forms; a short negative cache
//!   keeps a failing server from being hammered by every caller. RFC 6749 §5.2 errors such as
//!   `invalid_client` are not retried and come back as [`Error::OAuth`], carrying the server's
//!   `error` and `error_description`; [`Error::kind`] tells refusals from network failures,
//!   timeouts and broken answers.
//! - **Only what is safe to repeat is repeated.** API requests are retried after 429 and 503
//!   only when the method is idempotent (RFC 9110 §9.2.2) or the request carries an
//!   `Idempotency-Key`: a POST that may have been carried out is never sent twice. An answer
//!   returned unretried says why ([`NotRetried`]).
//! - **Secrets are types.** [`SecretString`] and [`AccessToken`] print as `[redacted]`, cannot
//!   be serialized, and never reach a log line or an error message. A server that echoes the
//!   request gets the secret masked in every encoding it was sent in (form, percent, base64 of
//!   HTTP Basic, JSON-escaped).
//! - **Server text is made safe to print.** `error_description` and error bodies reach the
//!   caller with control characters escaped ([`text::printable`]): no terminal escape sequence
//!   and no forged log line gets through.
//! - **Only Bearer tokens are used.** A token of another type (`DPoP`, `mac`) is refused as
//!   RFC 6749 §7.1 requires, never sent as a bearer token.
//! - **Every dialect.** HTTP Basic (with the RFC 6749 §2.3.1 form-encoding most clients get
//!   wrong, a space written `%20` so that percent-decoding servers such as authlib read it too),
//!   credentials in a form body, or an Auth0-style JSON body; `audience`, `resource`,
//!   `scope`, extra parameters, or no `grant_type` at all; discovery from an issuer (RFC 8414,
//!   then OpenID Connect); and a [`Preset`] for each provider tokenmint was designed from.
//! - **Rotation without restart.** A secret read from a file is re-read when the file changes.
//! - **Keys instead of secrets.** With [`ClientConfig::private_key`], every token request
//!   carries a fresh `private_key_jwt` assertion (RFC 7523) signed by the partner's private key,
//!   and no secret is sent at all.
//!
//! The cache lives in memory only: tokens are never written to disk.
//!
//! # Use
//!
//! Build a [`ClientConfig`], turn it into a [`TokenClient`], and either ask it for tokens or let
//! it authenticate requests: through the [`BearerAuth`] middleware for `reqwest-middleware`, or
//! [`TokenClient::send`]. Programs without an async runtime use [`BlockingTokenClient`].
//!
//! ```no_run
//! use tokenmint_client::{BearerAuth, ClientConfig, SecretSource, TokenClient};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let config = ClientConfig::new(
//!     "https://auth.example.com/oauth/token",
//!     "my-client-id",
//!     SecretSource::env("MY_CLIENT_SECRET"),
//! )?
//! .scope("eligibility:read");
//! let tokens = TokenClient::new(config)?;
//!
//! let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(BearerAuth::new(tokens.clone()))
//!     .build();
//! let response = api.get("https://api.example.com/eligibility").send().await?;
//! # Ok(()) }
//! ```
//!
//! # Provider dialects
//!
//! Each preset is one line. **Wellhub**: a form `POST /oauth/token` with the credentials in the
//! body.
//!
//! ```no_run
//! # use tokenmint_client::*;
//! # fn main() -> Result<(), Error> {
//! let config = ClientConfig::preset(
//!     Preset::Wellhub,
//!     "https://api.clients.wellhub.com",
//!     "my-client-id",
//!     SecretSource::env("WELLHUB_CLIENT_SECRET"),
//! )?;
//! # Ok(()) }
//! ```
//!
//! **WEX Health**: a form `POST /authorize`; the API answers an expired token with an
//! `application/problem+json` 401, which [`BearerAuth`] answers with one new token and one retry.
//!
//! ```no_run
//! # use tokenmint_client::*;
//! # fn main() -> Result<(), Error> {
//! let config = ClientConfig::preset(
//!     Preset::Wex,
//!     "https://platform.uat.benefits.wexglobal.com",
//!     "my-client-id",
//!     SecretSource::file("/run/secrets/wex-client-secret"),
//! )?;
//! # Ok(()) }
//! ```
//!
//! **Wealthyhood**: an Auth0-style JSON body with an `audience`; the base is the full
//! auth-endpoint URL Wealthyhood gives its partners.
//!
//! ```no_run
//! # use tokenmint_client::*;
//! # fn main() -> Result<(), Error> {
//! let config = ClientConfig::preset(
//!     Preset::Wealthyhood,
//!     "https://auth.example.com/oauth/token",
//!     "my-client-id",
//!     SecretSource::env("WEALTHYHOOD_CLIENT_SECRET"),
//! )?
//! .audience("https://api.sandbox.wealthyhood.com");
//! # Ok(()) }
//! ```
//!
//! **HealthHero**: a form `POST /connect/token` on the identity server.
//!
//! ```no_run
//! # use tokenmint_client::*;
//! # fn main() -> Result<(), Error> {
//! let config = ClientConfig::preset(
//!     Preset::HealthHero,
//!     "https://identity.example.com",
//!     "my-client-id",
//!     SecretSource::env("HEALTHHERO_CLIENT_SECRET"),
//! )?;
//! # Ok(()) }
//! ```
//!
//! **Candid Health**: a JSON `POST /api/auth/v2/token` without `grant_type`.
//!
//! ```no_run
//! # use tokenmint_client::*;
//! # fn main() -> Result<(), Error> {
//! let config = ClientConfig::preset(
//!     Preset::Candid,
//!     "https://api.joincandidhealth.com",
//!     "my-client-id",
//!     SecretString::new(std::env::var("CANDID_CLIENT_SECRET").unwrap_or_default()),
//! )?;
//! # Ok(()) }
//! ```
//!
//! Any other server: [`ClientConfig::new`] with a token URL, or [`ClientConfig::discover`] with
//! an issuer, and [`AuthStyle`], [`ClientConfig::audience`], [`ClientConfig::resource`],
//! [`ClientConfig::extra_param`] and [`ClientConfig::without_grant_type`] as the server needs.
//!
//! # Time
//!
//! Expiry is computed on the monotonic [`Clock`] the client is built with, and waits use
//! `tokio::time`; the default [`TokioClock`] follows `tokio::time::pause()`, so tests move across
//! a token's lifetime without sleeping.

mod api;
pub mod assertion;
pub mod blocking;
mod client;
mod clock;
mod config;
mod endpoint;
mod error;
mod file;
mod metrics;
mod retry;
mod secret;
mod source;
pub mod text;

pub use api::{BearerAuth, IDEMPOTENCY_KEY, NotRetried, is_safe_to_repeat};
pub use assertion::PrivateKey;
pub use blocking::{BlockingResponse, BlockingTokenClient};
pub use client::{Token, TokenClient, TokenClientBuilder};
pub use clock::{Clock, TokioClock};
pub use config::{
    ApiRetryPolicy, AuthStyle, ClientConfig, Endpoint, Preset, RetryPolicy, SecretSource,
    TokenParams,
};
pub use error::{Error, ErrorKind};
pub use metrics::{CountingMetrics, MetricEvent, Metrics, NoMetrics};
pub use secret::{AccessToken, SecretString};
