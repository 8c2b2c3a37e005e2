//! Request and response bodies of the admin REST API (`/admin/v1`).
//!
//! Durations are whole seconds; instants are RFC 3339 strings. Secrets appear in exactly two
//! types, [`CreatedCredential`] and [`RotatedSecret`], which are answered once and never stored.

use crate::Environment;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[cfg(feature = "openapi")]
use utoipa::ToSchema;

/// Whether a credential may obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CredentialStatus {
    Active,
    Deactivated,
}

impl CredentialStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }
}

/// An organization: the customer of the provider that owns credentials and portal users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Organization {
    /// Short stable identifier used in URLs, the CLI (`--org`) and the `org` claim.
    pub slug: String,
    pub name: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// Custom claims every token of the organization's credentials carries, unless the
    /// credential sets the same name.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub claims: Claims,
}

/// Custom claims: names chosen by the provider, JSON values. A name is 1 to 128 printable
/// ASCII characters without spaces, quotes or backslashes and is never one of the registered
/// or tokenmint claims (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `jti`, `scope`, `scp`,
/// `client_id`, `cid`, `appid`, `azp`, `cnf`, `act`, `may_act`, `auth_time`, `acr`, `amr`,
/// `nonce`, `sid`, `typ`, `env`, `org`, in any case, nor anything starting with `tokenmint`);
/// a value is not null and at most 1024 bytes as JSON; at most 20 claims and 2048 bytes per
/// credential or organization.
pub type Claims = serde_json::Map<String, serde_json::Value>;

/// Body of `PATCH /admin/v1/organizations/{slug}`: every field is optional; absent fields keep
/// their value. A change of the claims revokes every token the organization's credentials
/// hold (new tokens carry the new claims).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateOrganization {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::optional_name))]
    pub name: Option<String>,
    /// Claims to set (added, or replacing the claim of the same name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub claims: Option<Claims>,
    /// Names of claims to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_claims: Option<Vec<String>>,
}

/// Body of `POST /admin/v1/organizations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateOrganization {
    /// 1 to 63 characters: lower-case letters, digits and `-`, starting with a letter or digit.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::slug))]
    pub slug: String,
    /// Display name; defaults to the slug.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::optional_name))]
    pub name: Option<String>,
}

/// A client secret as the API shows it: never the secret itself, only a hint to recognise it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SecretInfo {
    pub id: String,
    /// The secret's first characters, enough to tell two secrets apart.
    pub hint: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    /// When the secret stops working (set when a rotation leaves it an overlap); null: never.
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
}

/// A public key registered on a credential for `private_key_jwt` client authentication
/// (RFC 7523): what identifies it, never more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PublicKeyInfo {
    /// The key's `kid`, when it has one; assertions name it in their header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// The curve of an EC or OKP key: `P-256`, `P-384` or `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// The one algorithm the key is registered for, when its JWK named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alg: Option<String>,
    /// The JWK thumbprint (RFC 7638, SHA-256, base64url); it names the key when it has no kid.
    pub thumbprint: String,
}

/// Body of `POST /admin/v1/credentials/{client_id}/public-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AddPublicKeys {
    /// Each a PEM public key, a JWK or a JWK Set, as text. Private keys are refused.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::public_keys))]
    pub keys: Vec<String>,
}

/// A credential as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Credential {
    pub client_id: String,
    pub name: String,
    /// The owning organization's slug.
    pub org: String,
    pub environment: Environment,
    /// As granted: `AREA:read` or `AREA:write` (and any `tokenmint:*` system scope).
    pub permissions: Vec<String>,
    /// What a token may carry: the permissions with `write` expanded to include `read`.
    pub scopes: Vec<String>,
    /// Audiences a token request may ask for; the first is used when none is asked for.
    pub audiences: Vec<String>,
    pub token_lifetime_seconds: u32,
    /// Token requests per minute; null: the server's default.
    pub rate_limit_per_minute: Option<u32>,
    pub status: CredentialStatus,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub last_used_at: Option<OffsetDateTime>,
    pub secrets: Vec<SecretInfo>,
    /// The credential's own custom claims. Its tokens carry its organization's claims
    /// overridden by these.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub claims: Claims,
    /// Public keys whose `private_key_jwt` assertions authenticate the credential.
    #[serde(default)]
    pub public_keys: Vec<PublicKeyInfo>,
}

/// Body of `POST /admin/v1/credentials`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::name))]
    pub name: String,
    /// The organization's slug; the organization is created if it does not exist yet.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::slug))]
    pub org: String,
    pub environment: Environment,
    #[serde(default)]
    pub permissions: Vec<String>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::audiences))]
    pub audiences: Vec<String>,
    /// Seconds until the credential expires; absent or null: it never expires.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::expires_in_seconds))]
    pub expires_in_seconds: Option<u64>,
    /// Lifetime of the tokens it obtains; default 3600.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::token_lifetime_seconds))]
    pub token_lifetime_seconds: Option<u32>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::rate_limit_per_minute))]
    pub rate_limit_per_minute: Option<u32>,
    /// Custom claims its tokens carry (see the `Claims` limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub claims: Option<Claims>,
}

/// Body of `POST /admin/v1/credentials`: a [`CreateCredential`] and, beside its members, the
/// credential's public keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct NewCredential {
    #[serde(flatten)]
    pub credential: CreateCredential,
    /// Public keys for `private_key_jwt` client authentication (RFC 7523): each a PEM public
    /// key, a JWK or a JWK Set, as text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::optional_public_keys))]
    pub public_keys: Vec<String>,
    /// `true`: no client secret is generated; the credential authenticates only with its
    /// public keys (which it must then have).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_secret: bool,
}

impl From<CreateCredential> for NewCredential {
    fn from(credential: CreateCredential) -> Self {
        Self { credential, public_keys: Vec::new(), no_secret: false }
    }
}

// By hand: serde's `flatten` cannot be combined with `deny_unknown_fields`, and an unknown
// member must stay an error. The key members are taken out, and the rest must be exactly a
// `CreateCredential`.
impl<'de> Deserialize<'de> for NewCredential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut members = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        let public_keys = match members.remove("public_keys") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(v) => serde_json::from_value(v).map_err(|e| {
                D::Error::custom(format!("public_keys: {e} (an array of key texts)"))
            })?,
        };
        let no_secret = match members.remove("no_secret") {
            None | Some(serde_json::Value::Null) => false,
            Some(serde_json::Value::Bool(b)) => b,
            Some(_) => return Err(D::Error::custom("no_secret must be true or false")),
        };
        let credential =
            serde_json::from_value(serde_json::Value::Object(members)).map_err(D::Error::custom)?;
        Ok(Self { credential, public_keys, no_secret })
    }
}

/// Answer to a credential creation: the only time the secret is shown.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedCredential {
    pub client_id: String,
    /// Empty (and absent from the JSON) for a credential created with `no_secret`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub client_secret: String,
    pub token_endpoint: String,
    pub credential: Credential,
    /// True when the credential's organization did not exist and was created with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub organization_created: bool,
}

impl std::fmt::Debug for CreatedCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedCredential")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("token_endpoint", &self.token_endpoint)
            .field("credential", &self.credential)
            .field("organization_created", &self.organization_created)
            .finish()
    }
}

/// Body of `PATCH /admin/v1/credentials/{client_id}`: every field is optional; absent fields
/// keep their value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateCredential {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::optional_name))]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::optional_audiences))]
    pub audiences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::token_lifetime_seconds))]
    pub token_lifetime_seconds: Option<u32>,
    /// Seconds from now until the credential expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::expires_in_seconds))]
    pub expires_in_seconds: Option<u64>,
    /// `true` removes the expiry. Cannot be combined with `expires_in_seconds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub never_expires: Option<bool>,
    /// Token requests per minute; `0` turns the limit off for this credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::rate_limit_per_minute))]
    pub rate_limit_per_minute: Option<u32>,
    /// `true` goes back to the server's default limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_rate_limit: Option<bool>,
    /// Custom claims to set (added, or replacing the claim of the same name). A change of the
    /// claims revokes the credential's older tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub claims: Option<Claims>,
    /// Names of custom claims to remove.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove_claims: Option<Vec<String>>,
}

/// Body of `POST /admin/v1/credentials/{client_id}/secrets` (rotate).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateSecret {
    /// How long the existing secrets keep working, in seconds; default 86400 (24 h); 0 ends
    /// them at once.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::overlap_seconds))]
    pub overlap_seconds: Option<u64>,
}

/// Answer to a rotation: the new secret, shown this once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct RotatedSecret {
    pub client_id: String,
    pub client_secret: String,
    pub secret: SecretInfo,
    /// When the secrets that existed before the rotation stop working.
    #[serde(with = "time::serde::rfc3339")]
    pub previous_secrets_expire_at: OffsetDateTime,
}

impl std::fmt::Debug for RotatedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatedSecret")
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("secret", &self.secret)
            .field("previous_secrets_expire_at", &self.previous_secrets_expire_at)
            .finish()
    }
}

/// Answer to `POST /admin/v1/credentials/{client_id}/revoke-tokens`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct TokensRevoked {
    pub client_id: String,
    /// Tokens issued before this instant are refused.
    #[serde(with = "time::serde::rfc3339")]
    pub issued_before: OffsetDateTime,
}

/// Lifecycle of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    /// Published in the JWKS, not signing yet, so verifiers learn it first.
    Pending,
    /// Signing new tokens.
    Active,
    /// Replaced; still published until every token it signed has expired.
    Retired,
}

/// A signing key as the admin API shows it (public information only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    pub state: KeyState,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub activates_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub retired_at: Option<OffsetDateTime>,
    /// When the key leaves the JWKS.
    #[serde(with = "time::serde::rfc3339::option")]
    pub unpublish_at: Option<OffsetDateTime>,
}

/// Body of `POST /admin/v1/keys/rotate`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RotateKey {
    /// Algorithm of the new key; default: the server's `--signing-alg`.
    #[serde(default)]
    pub alg: Option<String>,
    /// Seconds the new key is published before it signs; default: the server's propagation
    /// delay. 0 makes it sign at once (verifiers with a cached JWKS refetch on the unknown kid).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::propagation_seconds))]
    pub propagation_seconds: Option<u64>,
}

/// A page of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One record of the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AuditEvent {
    /// Position in the trail; pass the last one as `cursor` to continue.
    pub seq: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// For example `credential.created`, `credential.secret_rotated`, `token.refused`,
    /// `source.blocked`, `alert.fired`, `key.rotated`, `portal.sign_in_failed`.
    pub kind: String,
    pub org: Option<String>,
    pub client_id: Option<String>,
    /// Who acted: `credential:<client_id>`, `user:<email>` or `system`.
    pub actor: Option<String>,
    pub source_ip: Option<String>,
    /// Why, for refusals and alerts (`wrong_secret`, `rate_limited`, ...).
    pub reason: Option<String>,
    /// Event-specific details, null for events that have none; never a secret.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub details: serde_json::Value,
}

/// An attempt to deliver an alert to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct AlertDelivery {
    pub id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    pub kind: String,
    pub target: String,
    pub attempts: i64,
    pub delivered: bool,
    pub last_error: Option<String>,
    /// The JSON that was sent.
    pub payload: String,
}

/// Tokens issued on one day (UTC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct DailyCount {
    /// `YYYY-MM-DD`.
    pub day: String,
    pub tokens: i64,
}

/// A credential's recent activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CredentialActivity {
    pub client_id: String,
    /// One entry per day of the period, oldest first, days without tokens included.
    pub tokens_per_day: Vec<DailyCount>,
    /// The most recent refused requests that named this credential, newest first.
    pub recent_failures: Vec<AuditEvent>,
}

/// A portal user's role within their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Manages the organization's credentials and users.
    Admin,
    /// Reads only.
    Viewer,
    /// Manages every organization.
    Platform,
}

/// A person who signs in to the portal at `/portal/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct User {
    pub id: String,
    pub org: String,
    pub email: String,
    pub role: UserRole,
    /// `active` or `deactivated`.
    pub status: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_sign_in_at: Option<OffsetDateTime>,
}

/// Answer to `POST /admin/v1/users`: the user, and what the role given allows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct CreatedUser {
    #[serde(flatten)]
    pub user: User,
    /// What the role allows in this organization, in words; it says so when a role in the
    /// organization of the platform-admin credentials is not a platform role.
    pub role_grants: String,
    /// True when the user's organization did not exist and was created with them.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub organization_created: bool,
}

/// Body of `PATCH /admin/v1/users/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    /// The new role; `platform` may be given (or taken) only by the platform.
    #[serde(default)]
    pub role: Option<UserRole>,
}

/// Answer to `POST /admin/v1/users/{id}/reset-password`: a one-time code, shown this once.
/// The user enters it at `reset_url` with a new password; it works once, until `expires_at`,
/// and a newer code replaces it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
pub struct PasswordReset {
    pub user: User,
    pub code: String,
    /// Where the user enters the code: the portal's reset page.
    pub reset_url: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordReset")
            .field("user", &self.user)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Body of `POST /admin/v1/users`.
///
/// The password is chosen by whoever creates the user (the CLI generates one when none is
/// given) and is only ever stored as an Argon2id hash.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::slug))]
    pub org: String,
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::email))]
    pub email: String,
    /// Default `admin`.
    #[serde(default)]
    pub role: Option<UserRole>,
    /// 12 to 256 characters.
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::password))]
    pub password: String,
}

impl std::fmt::Debug for CreateUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUser")
            .field("org", &self.org)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("password", &"<redacted>")
            .finish()
    }
}
