//! RFC 8414 authorization server metadata.

use serde::{Deserialize, Serialize};

/// The discovery document at `/.well-known/oauth-authorization-server` (RFC 8414), and with the
/// members OpenID Connect Discovery 1.0 adds, at `/.well-known/openid-configuration`. Only
/// members tokenmint actually supports are listed.
///
/// The client SDK reads other servers' documents with it too, so only what RFC 8414 §2 requires
/// of every server (`issuer`) and what a client-credentials client cannot do without
/// (`token_endpoint`) are required; the optional members default when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizationServerMetadata {
    pub issuer: String,
    pub token_endpoint: String,
    /// Optional in RFC 8414 §2 (a server that signs nothing has no keys to publish); tokenmint
    /// always publishes it.
    #[serde(default)]
    pub jwks_uri: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_types_supported: Vec<String>,
    /// The algorithms `private_key_jwt` client assertions may be signed with (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// The same for assertions at the introspection endpoint (RFC 8414 §2: required when its
    /// methods include `private_key_jwt`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// The same for assertions at the revocation endpoint (RFC 8414 §2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// OpenID Connect Discovery 1.0 §3 (REQUIRED there, meaningless in RFC 8414 documents).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_types_supported: Vec<String>,
    /// OpenID Connect Discovery 1.0 §3 (REQUIRED there, and must include RS256).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// tokenmint extension: the authenticated revocation feed verifiers follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_feed_endpoint: Option<String>,
    /// tokenmint extension: the access-token signing algorithms in use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub access_token_signing_alg_values_supported: Vec<String>,
}
