//! The domain of tokenmint, with no I/O.
//!
//! Everything here is a pure function of its inputs, and time is always an argument (`now`, in
//! Unix seconds), so the rules that decide who gets a token, with which scopes and audience, and
//! which key signs it, can be tested exhaustively without a clock, a database or a socket. The
//! server crate wires these pieces to HTTP and storage; the store crate persists them.

pub mod assertion;
pub mod claims;
pub mod credential;
pub mod crypto;
pub mod grant;
pub mod ids;
pub mod jwt;
pub mod keys;
pub mod request;
pub mod scope;
pub mod secret;

pub use claims::CustomClaims;
pub use credential::{Credential, CredentialStatus, StoredSecret};
pub use crypto::MasterKey;
pub use ids::{ClientId, OrgSlug, PresentedClientId, SafeText};
pub use scope::{Permissions, ProductAreas};
pub use secret::{ClientSecret, SecretHash, SecretHasher};
pub use tokenmint_proto::Environment;
/// The strict JSON reader every document a provider sends is read with (it lives with the wire
/// types, since the verifier reads token claims with it too).
pub use tokenmint_proto::json;

/// Unix time in whole seconds. Every rule that depends on time takes one of these.
pub type UnixTime = i64;
