//! Storage for tokenmint: one [`Store`] trait, and [`SqlStore`], which implements it over
//! SQLite (the embedded default) and PostgreSQL (for several instances).
//!
//! Why one SQL implementation for two databases: the schema is deliberately plain (text,
//! 64-bit integers, bytes), so the same statements run on both through sqlx's `Any` driver.
//! The differences that remain (column types in migrations, how to serialise key rotation
//! between instances, change notifications) are decided once, by [`Dialect`], not in every
//! query. Both backends run the same [`conformance`] suite.
//!
//! Every write is one transaction that also appends to the `changes` log, which is how caches
//! in this and other processes learn what to drop, and, for revocations, to the `revocations`
//! feed that verifiers follow.

use async_trait::async_trait;
use std::fmt;
use thiserror::Error;
use tokenmint_core::credential::Credential;
use tokenmint_core::keys::KeyRecord;
use tokenmint_core::{CustomClaims, StoredSecret, UnixTime};
use tokenmint_proto::feed::{Revocation, RevocationEntry};

pub mod conformance;
mod sql;
#[doc(hidden)]
pub mod testing;

pub use sql::{ChangeListener, Dialect, SqlStore};

/// Errors from storage. Backend detail is kept for the log; callers match on the kind.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    /// A page cursor this store never handed out: a caller's mistake, not a conflict.
    #[error("the cursor is not one a listing returned; start again without one")]
    InvalidCursor,
    /// The database cannot be reached or is overloaded: worth retrying later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// Data that cannot be decoded: a bug or tampering, never user input.
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Backend(String),
    /// A guarded write was refused at commit time: nothing was written.
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// Why a guarded write was refused inside its transaction. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The acting credential or user lost the right to act (deactivated, expired, demoted, its
    /// tokens revoked) after the request was authorized and before it could commit.
    #[error(
        "{principal} is no longer authorized to make this change (it was deactivated, expired, \
         revoked or lost its role while the request was in progress); nothing was changed"
    )]
    ActorNoLongerAuthorized { principal: String },
    /// The write would leave no working platform-admin credential, now or later: it ends the
    /// last one, or brings forward the moment the last one stops working.
    #[error(
        "this change would leave no working credential holding tokenmint:admin (active, able \
         to get tokens for the admin API: no audiences or the issuer among them, and with a \
         live secret), now or once an expiry it sets or brings forward has passed, which would \
         lock every administrator out; create or reactivate another admin credential with no \
         expiry first; nothing was changed"
    )]
    LastPlatformAdmin,
    /// Another rotation of the same credential happened moments ago.
    #[error(
        "this credential's secret was rotated {seconds_ago} s ago; a second rotation within \
         {settle_secs} s is refused so that the secret handed out by the first keeps working; \
         retry in a few seconds, or delete the secret you want to end now"
    )]
    RotatedMomentsAgo { seconds_ago: i64, settle_secs: i64 },
    /// The credential holds as many live secrets as it may.
    #[error(
        "this credential already has {live} live secrets, the most it may hold; delete one first \
         (tokenmint credentials delete-secret CLIENT_ID SECRET_ID) or rotate with a shorter overlap"
    )]
    TooManyLiveSecrets { live: usize },
}

/// Who a guarded write acts for, re-checked at commit time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardActor {
    /// tokenmint itself (start-up, maintenance): nothing to re-check.
    System,
    /// A credential acting with an access token: at commit it must still be active, unexpired
    /// and hold `tokenmint:admin`, and the token (`iat`, `jti`) must not have been revoked.
    Credential { client_id: String, token: Option<(UnixTime, String)> },
    /// A portal user: at commit still active and still of this role.
    User { id: String, role: UserRole },
}

/// Conditions a write must still meet when it commits, checked inside its transaction, where
/// every other write to the same database is serialised with it (PostgreSQL: one advisory
/// lock; SQLite: one writer at a time), so no concurrent change can slip between the check
/// and the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guard {
    pub actor: GuardActor,
    pub now: UnixTime,
    /// `Some(audience)`: the admin API's audience (the issuer), and the write must not bring
    /// forward the moment the platform is left without a working admin credential, one that
    /// is active, unexpired, holds `tokenmint:admin`, gets tokens for that audience and has a
    /// live secret (see [`tokenmint_core::credential::AdminHorizon`]). While some admin works with no expiry at all, one
    /// must still do so after the write; a write that ends the last working one, or makes it
    /// expire sooner, is refused.
    pub keep_platform_admin: Option<String>,
}

impl Guard {
    /// For writes tokenmint makes on its own behalf.
    pub fn system(now: UnixTime) -> Self {
        Self { actor: GuardActor::System, now, keep_platform_admin: None }
    }
}

/// A new secret and what happens to the others (rotation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub secret: StoredSecret,
    /// Every other secret that would outlive this gets it as its expiry (the overlap).
    pub expire_others_at: Option<UnixTime>,
    /// Refused when the credential would hold more live secrets than this.
    pub max_live: usize,
    /// Refused when the credential's newest secret came from a rotation less than this long
    /// ago (so concurrent rotations never end each other's new secrets).
    pub settle_secs: i64,
}

/// An organization row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    pub slug: String,
    pub name: String,
    pub created_at: UnixTime,
    /// Claims every token of the organization's credentials carries (unless the credential
    /// sets the same name).
    pub claims: CustomClaims,
}

/// A change to an organization ([`Store::update_organization`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrganizationUpdate {
    pub slug: String,
    pub name: String,
    pub claims: CustomClaims,
    pub at: UnixTime,
    /// Set when what the organization's tokens say changes: every token of every credential
    /// of the organization issued up to then is revoked, as by [`Store::update_credential`]
    /// with a feed entry per credential.
    pub revoke: Option<OrganizationRevocation>,
}

/// The revocation an organization change makes of its credentials' tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrganizationRevocation {
    /// The instant of the change, in microseconds: each credential's cut-off is this, or just
    /// after its previous one.
    pub now_micros: i64,
    /// The longest token lifetime: feed entries are kept until every token they cover expired.
    pub max_token_lifetime_secs: u32,
}

/// Which credentials to list, and where the page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CredentialFilter {
    pub org: Option<String>,
    /// Opaque cursor from a previous page.
    pub after: Option<String>,
    pub limit: u32,
}

/// Which credentials of the list a search keeps, by what the portal shows as their status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialState {
    /// Active and not expired.
    Active,
    /// Active, but its expiry has passed.
    Expired,
    Deactivated,
}

impl CredentialState {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "expired" => Some(Self::Expired),
            "deactivated" => Some(Self::Deactivated),
            _ => None,
        }
    }
}

/// A search of the credential list: every condition given must hold. Newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialSearch {
    pub org: Option<String>,
    /// Kept when the name contains it (ASCII letters compared without case) or the client ID
    /// starts with it. Empty or `None`: no condition.
    pub text: Option<String>,
    pub environment: Option<tokenmint_core::Environment>,
    pub state: Option<CredentialState>,
    /// The moment `state` is judged at (expiry).
    pub now: UnixTime,
    /// Opaque cursor from a previous page of the same search.
    pub after: Option<String>,
    pub limit: u32,
}

/// Something the portal shows once on a session's next page, sealed by the caller (the store
/// never sees it in clear).
#[derive(Clone, PartialEq, Eq)]
pub struct PortalFlash {
    /// The session it belongs to (its id hash); it is deleted with the session.
    pub session_hash: String,
    /// What it is for (`secret:<client_id>`, `password`): a page takes only its own kind.
    pub purpose: String,
    pub sealed: Vec<u8>,
    pub expires_at: UnixTime,
}

impl fmt::Debug for PortalFlash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalFlash")
            .field("purpose", &self.purpose)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A page of results with the cursor of the next page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

/// A feed entry to append in the same transaction as a credential or key change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRevocation {
    pub revocation: Revocation,
    pub expires_at: UnixTime,
}

/// That a credential or one of its secrets was used, for `last_used` times. Recorded in
/// batches, off the token endpoint's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    pub client_id: String,
    pub secret_id: String,
    pub at: UnixTime,
}

/// One security event of the audit trail. Append-only: nothing updates or deletes a record
/// except the retention purge.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Position in the trail (0 before it is stored).
    pub seq: i64,
    pub at: UnixTime,
    /// `credential.created`, `token.refused`, ... (see the server's audit module).
    pub kind: String,
    pub org: Option<String>,
    pub client_id: Option<String>,
    /// Who acted: `credential:<client_id>`, `user:<email>`, `system`.
    pub actor: Option<String>,
    pub source_ip: Option<String>,
    pub reason: Option<String>,
    pub details: serde_json::Value,
}

/// Which audit records to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub org: Option<String>,
    pub client_id: Option<String>,
    pub kind: Option<String>,
    /// Who acted, exactly as recorded (`credential:<client_id>`, `user:<email>`).
    pub actor: Option<String>,
    pub since: Option<UnixTime>,
    pub until: Option<UnixTime>,
    /// Records after this `seq`.
    pub after: Option<i64>,
    /// Records before this `seq` (the cursor of a newest-first page).
    pub before: Option<i64>,
    /// Newest first instead of oldest first: the limit then keeps the newest records.
    pub newest_first: bool,
    pub limit: u32,
}

/// Tokens issued to one credential in one minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCount<'a> {
    pub client_id: &'a str,
    /// Unix time of the minute's start.
    pub minute: UnixTime,
    pub count: i64,
}

/// An attempt to deliver an alert, kept as the delivery log and dead-letter record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertDelivery {
    pub id: String,
    pub at: UnixTime,
    pub kind: String,
    pub target: String,
    pub payload: String,
    pub attempts: i64,
    pub delivered: bool,
    pub last_error: Option<String>,
}

/// A portal user's role within their organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// Manages the organization's credentials and users.
    Admin,
    /// Reads the organization's credentials and audit trail, changes nothing.
    Viewer,
    /// Manages every organization.
    Platform,
}

impl UserRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Viewer => "viewer",
            Self::Platform => "platform",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "viewer" => Some(Self::Viewer),
            "platform" => Some(Self::Platform),
            _ => None,
        }
    }
}

/// Whether a portal user may sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserStatus {
    Active,
    Deactivated,
}

impl UserStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "deactivated" => Some(Self::Deactivated),
            _ => None,
        }
    }
}

/// A person who signs in to the portal.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalUser {
    pub id: String,
    pub org: String,
    /// As the user typed it; unique whatever its case.
    pub email: String,
    pub role: UserRole,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub status: UserStatus,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_sign_in_at: Option<UnixTime>,
}

/// The password hash stays out of logs: it is an offline-guessing target.
impl fmt::Debug for PortalUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalUser")
            .field("id", &self.id)
            .field("org", &self.org)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// A signed-in browser. Only the SHA-256 of the cookie's session id is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PortalSession {
    /// Lower-case hex SHA-256 of the session id.
    pub id_hash: String,
    pub user_id: String,
    /// The secret every form of this session carries (synchronizer token).
    pub csrf_secret: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl fmt::Debug for PortalSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PortalSession")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A pending password reset. Only the SHA-256 of its one-time code is stored.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordReset {
    /// Lower-case hex SHA-256 of the code.
    pub code_hash: String,
    pub user_id: String,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
}

impl fmt::Debug for PasswordReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordReset")
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a change-log row is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Credential,
    Key,
    Revocation,
    Organization,
}

impl Entity {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Credential => "credential",
            Self::Key => "key",
            Self::Revocation => "revocation",
            Self::Organization => "organization",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "credential" => Some(Self::Credential),
            "key" => Some(Self::Key),
            "revocation" => Some(Self::Revocation),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub seq: i64,
    pub entity: Entity,
    pub key: String,
}

/// Storage of everything tokenmint keeps.
///
/// Implementations must make each method atomic: a crash leaves either all of a method's
/// writes or none. The conformance suite ([`conformance`]) defines the behaviour.
#[async_trait]
pub trait Store: Send + Sync + fmt::Debug + 'static {
    /// `sqlite` or `postgres`, for logs and metrics.
    fn backend(&self) -> &'static str;

    /// Reads a metadata value (schema facts, the master key check value).
    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Writes a metadata value unless the key already exists; returns whether it was written.
    async fn put_meta_if_absent(&self, key: &str, value: &str) -> Result<bool, StoreError>;

    /// Creates an organization; `Conflict` if the slug exists.
    async fn create_organization(
        &self,
        org: &Organization,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    async fn get_organization(&self, slug: &str) -> Result<Option<Organization>, StoreError>;
    /// Organizations ordered by slug, starting after `after`.
    async fn list_organizations(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Paged<Organization>, StoreError>;

    /// Changes an organization's name and claims, and revokes its credentials' tokens as
    /// [`OrganizationUpdate::revoke`] says, in one transaction; returns how many credentials'
    /// tokens were revoked. `NotFound` if there is no such organization.
    async fn update_organization(
        &self,
        update: &OrganizationUpdate,
        guard: &Guard,
    ) -> Result<u64, StoreError>;

    /// Stores a new credential with its secrets, creating its organization first when `org`
    /// is given and does not exist; answers whether it created the organization. `Conflict` if
    /// the client_id exists.
    async fn create_credential(
        &self,
        credential: &Credential,
        org: Option<&Organization>,
        guard: &Guard,
    ) -> Result<bool, StoreError>;
    async fn get_credential(&self, client_id: &str) -> Result<Option<Credential>, StoreError>;
    /// A credential's revision, or `None` when there is no such credential: one index probe,
    /// whether the credential exists or not (client authentication relies on that to cost the
    /// same for unknown and known ids).
    async fn credential_revision(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.get_credential(client_id).await?.map(|c| c.revision))
    }
    async fn list_credentials(
        &self,
        filter: &CredentialFilter,
    ) -> Result<Paged<Credential>, StoreError>;
    /// Replaces a credential's mutable fields (not its secrets) if its stored revision is still
    /// `credential.revision` (the one it was read at), bumping it; `Conflict` otherwise,
    /// `NotFound` if it is gone. An optional feed entry is appended in the same transaction.
    async fn update_credential(
        &self,
        credential: &Credential,
        revocation: Option<&NewRevocation>,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Adds a secret (rotation), with the limits of [`Rotation`] checked in the transaction.
    async fn add_secret(
        &self,
        client_id: &str,
        rotation: &Rotation,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Deletes one secret; `NotFound` if the credential has no such secret.
    async fn delete_secret(
        &self,
        client_id: &str,
        secret_id: &str,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Records uses; times only move forward. Unknown ids are ignored.
    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError>;

    /// Stores a signing key. With `unless_pending_after = Some(now)`, stores it only if no
    /// other non-withdrawn key activates after `now`, atomically across every instance sharing
    /// the database; returns whether it was stored.
    async fn insert_key(
        &self,
        key: &KeyRecord,
        unless_pending_after: Option<UnixTime>,
        guard: &Guard,
    ) -> Result<bool, StoreError>;
    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError>;
    /// Marks a key withdrawn and appends its feed entry.
    async fn withdraw_key(
        &self,
        kid: &str,
        revocation: &NewRevocation,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Deletes keys that no longer need to be published.
    async fn delete_keys(&self, kids: &[String]) -> Result<(), StoreError>;

    /// Appends a feed entry on its own (a single revoked token).
    async fn add_revocation(
        &self,
        revocation: &NewRevocation,
        now: UnixTime,
    ) -> Result<i64, StoreError>;
    /// Live feed entries after `after`, oldest first.
    async fn list_revocations(
        &self,
        after: i64,
        limit: u32,
        now: UnixTime,
    ) -> Result<Vec<RevocationEntry>, StoreError>;
    /// The newest feed cursor (0 when empty).
    async fn latest_revocation(&self) -> Result<i64, StoreError>;

    /// Change-log rows after `seq`, oldest first.
    async fn changes_after(&self, seq: i64, limit: u32) -> Result<Vec<Change>, StoreError>;
    async fn latest_change(&self) -> Result<i64, StoreError>;

    /// Appends audit records, in order, in one transaction.
    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError>;
    /// Audit records matching the filter, oldest first.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;
    /// Deletes audit records and token counts older than `before`; returns how many went.
    async fn purge_audit(&self, before: UnixTime) -> Result<u64, StoreError>;
    /// Adds to the per-minute token counts.
    async fn add_token_counts(&self, counts: &[TokenCount<'_>]) -> Result<(), StoreError>;
    /// A credential's per-minute counts since `since`, oldest first.
    async fn token_counts(
        &self,
        client_id: &str,
        since: UnixTime,
    ) -> Result<Vec<(UnixTime, i64)>, StoreError>;
    /// Records an alert delivery (delivered or given up).
    async fn record_alert_delivery(&self, delivery: &AlertDelivery) -> Result<(), StoreError>;
    /// Claims the firing of the alert `subject_hash` (its rule and subject, hashed) at `at`:
    /// `true` when no claim of it is younger than `window_secs`, for exactly one of several
    /// instances claiming the same alert at once. Expired claims are deleted on the way.
    async fn claim_alert(
        &self,
        subject_hash: &str,
        at: UnixTime,
        window_secs: i64,
    ) -> Result<bool, StoreError>;
    /// Records the single use of a `private_key_jwt` assertion (by its replay key, a hash of the
    /// client and the `jti`) until `expires_at`: `true` for exactly one of any number of callers
    /// on any instance, `false` for every later one while the record lives. Records expired at
    /// `now` are deleted on the way.
    async fn use_client_assertion(
        &self,
        replay_key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError>;
    /// Alert deliveries, newest first.
    async fn list_alert_deliveries(&self, limit: u32) -> Result<Vec<AlertDelivery>, StoreError>;
    /// Remembers that a credential was used from a network; returns whether it was new, and
    /// how many networks the credential had before.
    async fn remember_network(
        &self,
        client_id: &str,
        network: &str,
        at: UnixTime,
    ) -> Result<(bool, i64), StoreError>;

    /// Creates a portal user; `Conflict` if the email (whatever its case) is taken by an
    /// active user, `NotFound` if the organization does not exist. A deactivated user holding
    /// the email releases it (and keeps their record, for the audit trail): the new user is a
    /// new person to tokenmint, with their own id, role and password.
    async fn create_user(&self, user: &PortalUser, guard: &Guard) -> Result<(), StoreError>;
    async fn get_user(&self, id: &str) -> Result<Option<PortalUser>, StoreError>;
    /// Looks a user up by email, whatever its case.
    async fn find_user_by_email(&self, email: &str) -> Result<Option<PortalUser>, StoreError>;
    /// Users of one organization (or all), ordered by organization and email.
    async fn list_users(&self, org: Option<&str>) -> Result<Vec<PortalUser>, StoreError>;
    /// Changes a user's status; deactivating also ends every session of the user and its
    /// pending password resets. Reactivating claims the user's email again: `Conflict` when
    /// another user has taken it since. `NotFound` if there is no such user.
    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Changes a user's role. `NotFound` if there is no such user.
    async fn set_user_role(
        &self,
        id: &str,
        role: UserRole,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Replaces a user's password hash, ends every session of the user except `keep_session`
    /// (an id hash) and drops its pending password resets. `NotFound` if there is no such user.
    async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// Stores a password reset, replacing the user's earlier ones. `NotFound` if there is no
    /// such user.
    async fn create_password_reset(
        &self,
        reset: &PasswordReset,
        guard: &Guard,
    ) -> Result<(), StoreError>;
    /// The active user a reset code (by its hash) is for, if the code is pending at `now`.
    async fn find_password_reset(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<PortalUser>, StoreError>;
    /// Uses a reset code once, atomically: if it is pending at `now` and its user active, sets
    /// the user's password hash, ends the user's sessions and drops every pending reset of the
    /// user, and returns the user; otherwise `NotFound` and nothing changes.
    async fn redeem_password_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: UnixTime,
    ) -> Result<PortalUser, StoreError>;
    /// Records a successful sign-in.
    async fn record_sign_in(&self, id: &str, at: UnixTime) -> Result<(), StoreError>;
    async fn create_session(&self, session: &PortalSession) -> Result<(), StoreError>;
    /// The session with this id hash, unless it has expired at `now`.
    async fn get_session(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<PortalSession>, StoreError>;
    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Deletes sessions expired at `now`; returns how many went.
    async fn purge_sessions(&self, now: UnixTime) -> Result<u64, StoreError>;

    /// Deletes expired feed entries, and change-log rows and secrets older than `keep_until`.
    async fn purge(&self, now: UnixTime, keep_until: UnixTime) -> Result<u64, StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    /// A listener woken whenever any process writes the change log, where the backend can push
    /// (PostgreSQL `LISTEN`); `None` where changes must be polled (SQLite).
    async fn listen_changes(&self) -> Result<Option<ChangeListener>, StoreError>;

    /// Credentials matching a search, newest first, in pages: `Conflict` for a cursor that is
    /// not one this method returned.
    async fn search_credentials(
        &self,
        search: &CredentialSearch,
    ) -> Result<Paged<Credential>, StoreError>;

    /// Stores a session's flash, replacing its earlier one; expired flashes of every session
    /// go at the same time. `NotFound` if the session does not exist.
    async fn put_portal_flash(&self, flash: &PortalFlash, now: UnixTime) -> Result<(), StoreError>;

    /// Takes the session's flash if it is for `purpose` and has not expired at `now`: it is
    /// deleted in the same statement, so that across every instance exactly one caller gets it.
    async fn take_portal_flash(
        &self,
        session_hash: &str,
        purpose: &str,
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError>;
}
