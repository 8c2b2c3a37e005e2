//! The resource-server side of tokenmint: verifying access tokens where they are used.
//!
//! A [`Verifier`] trusts one issuer, tokenmint or any other (Auth0, Entra ID, Keycloak, Okta,
//! node-oidc-provider, …). It discovers the issuer's metadata (RFC 8414 or OpenID Connect
//! Discovery) or reads a configured `jwks_uri`, keeps its JWKS (RFC 7517) cached, and checks
//! JWT access tokens: the signature with only the algorithms the issuer allows (a key without
//! `alg` under those of its key type; never `none` or HMAC), `typ` against the accepted types,
//! `iss` exactly as configured, `aud` and the validity period with a clock leeway. A
//! [`ClaimMapping`] says where the client, the scopes (a `scope` string or an `scp` array),
//! the environment and the organization are; the result is one [`Claims`] shape. [`Issuers`]
//! puts several verifiers behind one call. Tokens already verified are remembered by
//! their SHA-256, so a token presented again costs no signature check; revocations are looked
//! up on every request.
//!
//! Revocation of stateless JWTs comes from the issuer's revocation feed, followed in the
//! background ([`Verifier::follow_revocations`]) over server-sent events with a polling
//! fallback; the follower authenticates with a token from a [`TokenSource`].
//!
//! Request paths are judged in one spelling: [`CanonicalPath`] refuses every spelling that web
//! servers read differently (encoded separators, dot and empty segments, matrix parameters,
//! double encoding, …) and [`PrefixTable`] matches route prefixes with a letter-case rule, so
//! the path that picks a rule is the path the service acts on.
//!
//! For HTTP services: [`VerifyLayer`] (tower) authenticates requests, [`RequireScope`] checks
//! scopes per route, handlers extract [`VerifiedToken`] (axum), and refusals are
//! [`Rejection`]s answered as RFC 9457 problem details with RFC 6750 challenges.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use tokenmint_verify::{RequireScope, VerifiedToken, Verifier, VerifierConfig, VerifyLayer};
//!
//! async fn read(token: VerifiedToken) -> String {
//!     format!("hello {} of {}", token.client_id, token.org.as_deref().unwrap_or("no organization"))
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = VerifierConfig::new("https://auth.example.com").with_audience("https://api.example.com");
//! let verifier = Verifier::builder(config).build().await?;
//! let app: Router = Router::new()
//!     .route("/eligibility", get(read).route_layer(RequireScope::new("eligibility:read")))
//!     .layer(VerifyLayer::new(verifier));
//! # let _ = app; Ok(()) }
//! ```
//!
//! Where the issuer cannot be reached at run time, [`OfflineVerifier`] runs the same checks
//! against a JWKS the caller holds, synchronously and without revocations.
//!
//! Nothing here keeps global state: metrics are counters owned by each verifier
//! ([`Verifier::metrics`]), and time comes from the [`Clock`] given to the builder.

mod claims;
mod clock;
mod config;
mod discovery;
mod error;
mod fetch;
mod follower;
mod jwks;
mod jws;
mod layer;
mod metrics;
mod offline;
mod path;
mod rejection;
mod revocation;
mod sse;
mod token_source;
mod verifier;

pub use claims::{ClaimMapping, Claims};
pub use claims::{pick_issuer, read_issuer};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{FeedConfig, VerifierConfig};
pub use error::{
    BuildError, ClaimProblem, ErrorChain, FetchError, FollowError, RejectReason, RevocationKind,
    TokenClaim, VerifyError,
};
pub use follower::{FeedStart, RevocationFollower};
pub use layer::{RequireScope, RequireScopeService, VerifyLayer, VerifyService, authenticate};
pub use metrics::MetricsSnapshot;
pub use offline::OfflineVerifier;
pub use path::{CanonicalPath, PathError, PrefixError, PrefixTable, validate_prefix};
pub use rejection::{
    METHOD_OVERRIDE_HEADERS, METHOD_OVERRIDE_PARAMETERS, Rejection, ScopeRule, bearer_token,
    overrides_to_unsafe_method, query_overrides_to_unsafe_method,
};
pub use revocation::RevocationList;
pub use token_source::{BearerToken, StaticToken, TokenSource, TokenSourceError};
/// The claim types a verified token is made of, so users need not depend on tokenmint-proto.
pub use tokenmint_proto::{Audience, Environment};
pub use verifier::{Issuers, VerifiedToken, Verifier, VerifierBuilder};

/// The algorithm type of [`VerifiedToken::algorithm`].
pub use jsonwebtoken::Algorithm;
