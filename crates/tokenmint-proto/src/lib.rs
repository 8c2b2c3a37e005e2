//! Wire types of tokenmint: everything that crosses HTTP between the server, the gateway and
//! verifier, the client SDK and the CLI.
//!
//! They live in their own crate, free of any runtime or storage dependency, so that the verifier
//! and the client can share the server's exact shapes without pulling in the server. Field names
//! follow the RFCs they come from (6749, 7517, 7662, 8414, 9068, 9457); admin DTOs are tokenmint's
//! own and are described in the admin API's OpenAPI document.

pub mod admin;
pub mod claims;
pub mod clock;
pub mod error;
pub mod feed;
pub mod json;
pub mod jwks;
pub mod limits;
pub mod metadata;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod problem;
pub mod token;

pub use claims::{AccessTokenClaims, Audience, Environment};
pub use error::{OAuthError, OAuthErrorCode};
pub use problem::Problem;
pub use token::TokenResponse;

/// The media type of RFC 9457 problem details.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `typ` header of RFC 9068 access tokens.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// Scopes tokenmint reserves for itself; product areas cannot use the `tokenmint` name.
pub mod system_scopes {
    /// Platform administration: every organization, every credential, keys, revocation.
    pub const ADMIN: &str = "tokenmint:admin";
    /// Following the revocation feed (gateways and verifiers).
    pub const REVOCATIONS: &str = "tokenmint:revocations";
    /// Introspecting tokens issued to any client (resource servers).
    pub const INTROSPECT: &str = "tokenmint:introspect";
    /// All of them, in a stable order.
    pub const ALL: [&str; 3] = [ADMIN, REVOCATIONS, INTROSPECT];
    /// The reserved area name.
    pub const AREA: &str = "tokenmint";
}
