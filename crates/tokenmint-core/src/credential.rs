//! Credentials and their secrets, the rule that decides whether a presented secret
//! authenticates a client right now, and wholesale revocation of a credential's tokens.

use crate::claims::CustomClaims;
use crate::ids::{base62_fixed, push_random_base62};
use crate::scope::Permissions;
use crate::secret::SecretHash;
use crate::{ClientId, Environment, UnixTime};
pub use tokenmint_proto::admin::CredentialStatus;
use tokenmint_proto::feed::{TIMED_JTI_LEN, TIMED_JTI_TIME_LEN, cutoff_covers};
use tokenmint_proto::limits;

/// Default token lifetime: one hour, as in the Wellhub and Wealthyhood guides.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u32 = 3600;
/// Shortest token lifetime an admin may set.
pub const MIN_TOKEN_LIFETIME_SECS: u32 = limits::TOKEN_LIFETIME_MIN_SECS;
/// Longest name accepted for a credential, in characters as given.
pub const MAX_NAME_LEN: usize = limits::NAME_MAX_LEN;
/// Most audiences one credential may list.
pub const MAX_AUDIENCES: usize = limits::AUDIENCES_MAX;
/// Longest audience accepted, in characters as given.
pub const MAX_AUDIENCE_LEN: usize = limits::AUDIENCE_MAX_LEN;
/// Most secrets one credential may hold live at once (rotations with an overlap add one each).
pub const MAX_LIVE_SECRETS: usize = 5;

const MICROS: i64 = 1_000_000;

/// A token id that starts with its issue instant (microseconds since the epoch, base62, so ids
/// sort by issue time), followed by random characters: the form
/// [`tokenmint_proto::feed::cutoff_covers`] reads.
pub fn token_id(issued_micros: i64) -> String {
    let mut id = base62_fixed(u64::try_from(issued_micros).unwrap_or(0), TIMED_JTI_TIME_LEN);
    push_random_base62(&mut id, TIMED_JTI_LEN - TIMED_JTI_TIME_LEN);
    id
}

/// The instant a wholesale revocation of a credential's tokens cuts at: every token issued at
/// or before it is revoked, every token issued after it is not.
///
/// Kept to the microsecond because a token's `iat` has one-second resolution: an admin who
/// revokes (or narrows) at 12:00:00.400 must end the token issued at 12:00:00.100 without
/// ending the one issued at 12:00:00.700, and without dating that one in the future. Tokens
/// carry their issue instant in their `jti` ([`token_id`]) for this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RevocationCutoff(i64);

impl RevocationCutoff {
    /// Revokes every token issued up to and including `micros`.
    pub const fn at_micros(micros: i64) -> Self {
        Self(micros)
    }

    /// A cut-off of one-second resolution: tokens with an `iat` before `second` are revoked.
    pub const fn before_second(second: UnixTime) -> Self {
        Self(second.saturating_mul(MICROS).saturating_sub(1))
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// The feed's `issued_before`: tokens with an earlier `iat` are revoked whole seconds.
    pub const fn second(self) -> UnixTime {
        self.0.div_euclid(MICROS)
    }

    /// The feed's `issued_before_jti`: within [`Self::second`], tokens whose id sorts before
    /// this were issued before the cut-off.
    pub fn jti_boundary(self) -> String {
        base62_fixed(u64::try_from(self.0.saturating_add(1)).unwrap_or(0), TIMED_JTI_TIME_LEN)
    }

    /// Whether a token with this `iat` and `jti` was issued at or before the cut-off.
    pub fn covers(self, iat: UnixTime, jti: &str) -> bool {
        cutoff_covers(self.second(), Some(&self.jti_boundary()), iat, jti)
    }

    /// The cut-off of a revocation made at `now_micros`, after `previous`: never earlier than
    /// now, and always later than the previous one, because tokens issued since that one are
    /// dated just after it ([`Credential::new_token_id`]) even when the clock has not moved.
    pub fn next(previous: Option<Self>, now_micros: i64) -> Self {
        Self(previous.map_or(now_micros, |p| now_micros.max(p.0.saturating_add(1))))
    }
}

/// One of a credential's secrets, as stored: a hash, never the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    pub id: String,
    pub hash: SecretHash,
    pub hint: String,
    pub created_at: UnixTime,
    /// Set when a rotation gives the secret an overlap period; `None` never expires.
    pub expires_at: Option<UnixTime>,
    pub last_used_at: Option<UnixTime>,
}

impl StoredSecret {
    pub fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

/// How long a credential can administer the platform, as the no-lockout rule measures it.
/// Ordered: a credential that cannot administer now is below one that can until some instant,
/// which is below one that can with no end in sight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminHorizon {
    /// It cannot obtain an admin-API token now.
    Never,
    /// It can until this instant (its own expiry or its last secret's, whichever comes first).
    Until(UnixTime),
    /// It can, and nothing already scheduled will stop it.
    Indefinitely,
}

/// A credential: what a partner's system authenticates as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub client_id: ClientId,
    pub name: String,
    /// The owning organization's slug.
    pub org: String,
    pub environment: Environment,
    pub permissions: Permissions,
    pub audiences: Vec<String>,
    pub token_lifetime_secs: u32,
    pub rate_limit_per_minute: Option<u32>,
    pub status: CredentialStatus,
    pub expires_at: Option<UnixTime>,
    pub created_at: UnixTime,
    pub updated_at: UnixTime,
    pub last_used_at: Option<UnixTime>,
    /// Tokens issued at or before this are revoked (deactivation, "revoke all tokens", a
    /// narrower grant).
    pub tokens_revoked_before: Option<RevocationCutoff>,
    pub secrets: Vec<StoredSecret>,
    /// Claims the provider puts on this credential's tokens.
    pub claims: CustomClaims,
    /// The organization's claims, as read with the credential (the store joins them in; an
    /// update of the credential never writes them). The credential's own win on a clash.
    pub org_claims: CustomClaims,
    /// Public keys whose `private_key_jwt` assertions authenticate the credential (RFC 7523).
    pub public_keys: Vec<crate::assertion::ClientKey>,
    /// Storage revision, for optimistic concurrency: an update names the revision it read.
    pub revision: i64,
}

/// Why a client failed to authenticate. Every variant is answered with the same
/// `invalid_client` response; the variant exists for the audit log and metrics only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthFailure {
    UnknownClient,
    WrongSecret,
    Deactivated,
    CredentialExpired,
    SecretExpired,
    MissingCredentials,
    /// A `private_key_jwt` assertion that failed its checks (the detail is the assertion
    /// error's reason).
    InvalidAssertion,
}

impl AuthFailure {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UnknownClient => "unknown_client",
            Self::WrongSecret => "wrong_secret",
            Self::Deactivated => "deactivated",
            Self::CredentialExpired => "credential_expired",
            Self::SecretExpired => "secret_expired",
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidAssertion => "invalid_assertion",
        }
    }

    pub const ALL: [AuthFailure; 7] = [
        Self::UnknownClient,
        Self::WrongSecret,
        Self::Deactivated,
        Self::CredentialExpired,
        Self::SecretExpired,
        Self::MissingCredentials,
        Self::InvalidAssertion,
    ];
}

/// The rules that decide whether a credential may act, written once for every form that holds
/// one: the stored [`Credential`] and the token path's compact cache entry call these.
pub mod standing {
    use super::{AuthFailure, CredentialStatus, RevocationCutoff, SecretHash, UnixTime, token_id};

    pub fn is_expired(expires_at: Option<UnixTime>, now: UnixTime) -> bool {
        expires_at.is_some_and(|t| now >= t)
    }

    /// Status, then expiry: what a client that proved it holds a secret or a key is told.
    pub fn usable(
        status: CredentialStatus,
        expires_at: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<(), AuthFailure> {
        if status == CredentialStatus::Deactivated {
            return Err(AuthFailure::Deactivated);
        }
        if is_expired(expires_at, now) {
            return Err(AuthFailure::CredentialExpired);
        }
        Ok(())
    }

    /// Of `secrets` (each its hash and its end), the one `presented` matches: every secret is
    /// compared, matching or not, in constant time each, so the time taken says nothing about
    /// which one (if any) matched. The secret is checked before the status, so a deactivated
    /// credential only reports "deactivated" (to the audit log) to someone who holds its secret.
    ///
    /// The secrets are any sequence, not a slice, so that a compact form may keep one in place
    /// and the others elsewhere.
    pub fn authenticate<'a, S: 'a>(
        secrets: impl IntoIterator<Item = &'a S>,
        parts: impl Fn(&S) -> (&SecretHash, Option<UnixTime>),
        presented: &SecretHash,
        status: CredentialStatus,
        expires_at: Option<UnixTime>,
        now: UnixTime,
    ) -> Result<&'a S, AuthFailure> {
        let mut found: Option<&S> = None;
        for s in secrets {
            if parts(s).0.matches(presented) && found.is_none() {
                found = Some(s);
            }
        }
        let secret = found.ok_or(AuthFailure::WrongSecret)?;
        usable(status, expires_at, now)?;
        if parts(secret).1.is_some_and(|end| now >= end) {
            return Err(AuthFailure::SecretExpired);
        }
        Ok(secret)
    }

    /// Whether a token with this `iat` and `jti` is revoked by the credential's cut-off.
    pub fn revokes_token(cutoff: Option<RevocationCutoff>, iat: UnixTime, jti: &str) -> bool {
        cutoff.is_some_and(|c| c.covers(iat, jti))
    }

    /// The id of a token issued now (`now_micros`): its issue instant, but never at or before
    /// the cut-off, so that a token issued in the same microsecond as a revocation, after it,
    /// is not revoked by it. Only the id moves; `iat` stays `now`.
    pub fn new_token_id(cutoff: Option<RevocationCutoff>, now_micros: i64) -> String {
        let floor = cutoff.map_or(i64::MIN, |c| c.micros().saturating_add(1));
        token_id(now_micros.max(floor))
    }
}

impl Credential {
    pub fn is_expired(&self, now: UnixTime) -> bool {
        standing::is_expired(self.expires_at, now)
    }

    /// Checks a presented secret's hash against every stored secret (see
    /// [`standing::authenticate`]).
    pub fn authenticate(
        &self,
        presented: &SecretHash,
        now: UnixTime,
    ) -> Result<&StoredSecret, AuthFailure> {
        standing::authenticate(
            &self.secrets,
            |s| (&s.hash, s.expires_at),
            presented,
            self.status,
            self.expires_at,
            now,
        )
    }

    /// The checks after a client proved it holds one of the credential's registered keys: as
    /// for a secret, the status and expiry are told (to the audit log) only to the key holder.
    pub fn usable(&self, now: UnixTime) -> Result<(), AuthFailure> {
        standing::usable(self.status, self.expires_at, now)
    }

    /// Whether a token of this credential with this `iat` and `jti` has been revoked wholesale.
    pub fn revokes_token(&self, iat: UnixTime, jti: &str) -> bool {
        standing::revokes_token(self.tokens_revoked_before, iat, jti)
    }

    /// The id of a token issued now (see [`standing::new_token_id`]).
    pub fn new_token_id(&self, now_micros: i64) -> String {
        standing::new_token_id(self.tokens_revoked_before, now_micros)
    }

    /// Whether the credential gets tokens for `audience` when it asks for none: it lists no
    /// audiences (its tokens are then for the issuer) or lists this one.
    pub fn reaches_audience(&self, audience: &str) -> bool {
        self.audiences.is_empty() || self.audiences.iter().any(|a| a == audience)
    }

    /// How long, from `now`, the credential can administer an API whose audience is
    /// `admin_audience` (the admin API's is the issuer): it must be active, unexpired, hold
    /// `tokenmint:admin`, be able to get a token for that audience, and have a live secret.
    /// Its horizon ends at its own expiry or when its last live secret expires.
    pub fn admin_horizon(&self, now: UnixTime, admin_audience: &str) -> AdminHorizon {
        if self.status != CredentialStatus::Active
            || self.is_expired(now)
            || !self.permissions.is_platform_admin()
            || !self.reaches_audience(admin_audience)
        {
            return AdminHorizon::Never;
        }
        // The latest end among the live secrets; `None` inside is "never expires".
        let Some(secrets_end) =
            self.secrets.iter().filter(|s| s.is_live(now)).map(|s| s.expires_at).max_by(|a, b| {
                match (a, b) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            })
        else {
            return AdminHorizon::Never;
        };
        match (self.expires_at, secrets_end) {
            (None, None) => AdminHorizon::Indefinitely,
            (Some(t), None) | (None, Some(t)) => AdminHorizon::Until(t),
            (Some(a), Some(b)) => AdminHorizon::Until(a.min(b)),
        }
    }

    /// The custom claims of this credential's tokens: the organization's, overridden by its own.
    pub fn token_claims(&self) -> CustomClaims {
        CustomClaims::overlay(&self.org_claims, &self.claims)
    }

    /// Secrets that still authenticate at `now`.
    pub fn live_secrets(&self, now: UnixTime) -> usize {
        self.secrets.iter().filter(|s| s.is_live(now)).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(id: &str, byte: u8, expires_at: Option<i64>) -> StoredSecret {
        StoredSecret {
            id: id.into(),
            hash: SecretHash([byte; 32]),
            hint: "tms_abcd…".into(),
            created_at: 0,
            expires_at,
            last_used_at: None,
        }
    }

    pub(crate) fn credential() -> Credential {
        Credential {
            client_id: ClientId::parse("tmc_test").unwrap(),
            name: "HR sync".into(),
            org: "acme".into(),
            environment: Environment::Sandbox,
            permissions: Permissions::default(),
            audiences: vec![],
            token_lifetime_secs: 3600,
            rate_limit_per_minute: None,
            status: CredentialStatus::Active,
            expires_at: Some(1000),
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: vec![secret("old", 1, Some(500)), secret("new", 2, None)],
            claims: CustomClaims::default(),
            org_claims: CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 1,
        }
    }

    #[test]
    fn an_admin_horizon_ends_with_the_credential_its_last_secret_or_its_reach() {
        let iss = "https://auth.example.test";
        let mut c = credential();
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Never, "not an admin");
        c.permissions = Permissions::from_stored(&["tokenmint:admin"]);
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Until(1000));
        c.expires_at = None;
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Indefinitely);
        c.secrets[1].expires_at = Some(700);
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Until(700), "the later secret counts");
        assert_eq!(c.admin_horizon(600, iss), AdminHorizon::Until(700));
        assert_eq!(c.admin_horizon(700, iss), AdminHorizon::Never, "no live secret");
        c.secrets[1].expires_at = None;
        c.audiences = vec!["https://api.example.com".into()];
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Never, "cannot reach the admin API");
        c.audiences.push(iss.into());
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Indefinitely);
        c.status = CredentialStatus::Deactivated;
        assert_eq!(c.admin_horizon(0, iss), AdminHorizon::Never);
        assert!(AdminHorizon::Never < AdminHorizon::Until(i64::MIN));
        assert!(AdminHorizon::Until(i64::MAX) < AdminHorizon::Indefinitely);
    }

    #[test]
    fn both_secrets_work_during_the_overlap_and_the_old_one_stops_after() {
        let c = credential();
        assert_eq!(c.authenticate(&SecretHash([1; 32]), 499).unwrap().id, "old");
        assert_eq!(c.authenticate(&SecretHash([2; 32]), 499).unwrap().id, "new");
        assert_eq!(c.authenticate(&SecretHash([1; 32]), 500), Err(AuthFailure::SecretExpired));
    }

    #[test]
    fn wrong_secret_deactivation_and_expiry_are_told_apart_for_the_audit_log() {
        let mut c = credential();
        assert_eq!(c.authenticate(&SecretHash([9; 32]), 1), Err(AuthFailure::WrongSecret));
        assert_eq!(c.authenticate(&SecretHash([2; 32]), 1000), Err(AuthFailure::CredentialExpired));
        c.status = CredentialStatus::Deactivated;
        assert_eq!(c.authenticate(&SecretHash([2; 32]), 1), Err(AuthFailure::Deactivated));
        // Without the secret, a deactivated credential looks like any wrong secret.
        assert_eq!(c.authenticate(&SecretHash([9; 32]), 1), Err(AuthFailure::WrongSecret));
    }

    #[test]
    fn wholesale_revocation_covers_tokens_issued_up_to_the_microsecond_and_no_later() {
        let mut c = credential();
        let issued_at = |micros: i64| (micros.div_euclid(MICROS), token_id(micros));
        let (iat, early) = issued_at(10_400_000);
        assert!(!c.revokes_token(iat, &early));
        c.tokens_revoked_before = Some(RevocationCutoff::at_micros(10_400_000));
        assert!(c.revokes_token(iat, &early));
        let (earlier_second, older) = issued_at(9_999_999);
        assert!(c.revokes_token(earlier_second, &older));
        let (same_second, later) = issued_at(10_400_001);
        assert_eq!(same_second, iat);
        assert!(!c.revokes_token(same_second, &later));
        // A token issued in the same microsecond, after the cut-off, is dated after it.
        let next = c.new_token_id(10_400_000);
        assert!(!c.revokes_token(10, &next));
        assert!(c.new_token_id(20_000_000).starts_with(&token_id(20_000_000)[..10]));
    }

    #[test]
    fn token_ids_sort_by_issue_time_and_have_the_timed_form() {
        let a = token_id(1_700_000_000_000_001);
        let b = token_id(1_700_000_000_000_002);
        assert!(a < b);
        assert!(tokenmint_proto::feed::is_timed_jti(&a));
        assert_ne!(token_id(5), token_id(5), "random after the time");
    }

    #[test]
    fn a_second_resolution_cutoff_revokes_the_seconds_before_it() {
        let c = RevocationCutoff::before_second(11);
        assert_eq!(c.second(), 10);
        assert!(c.covers(9, "legacy-random-id"));
        assert!(c.covers(10, &token_id(10_999_999)));
        assert!(!c.covers(11, &token_id(11_000_000)));
        // A later revocation, even at the same instant, covers what the earlier one let through.
        let first = RevocationCutoff::next(None, 20_000_000);
        let issued_between = Credential { tokens_revoked_before: Some(first), ..credential() }
            .new_token_id(20_000_000);
        let second = RevocationCutoff::next(Some(first), 20_000_000);
        assert!(!first.covers(20, &issued_between));
        assert!(second.covers(20, &issued_between));
        assert_eq!(RevocationCutoff::next(Some(second), 30_000_000).micros(), 30_000_000);
    }
}
