//! Credentials and their secrets, and the rule that decides whether a presented secret
//! authenticates a client right now.

use crate::scope::Permissions;
use crate::secret::SecretHash;
use crate::{ClientId, Environment, UnixTime};
pub use tokenmint_proto::admin::CredentialStatus;

/// Default token lifetime: one hour, as in the Wellhub and Wealthyhood guides.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u32 = 3600;
/// Shortest token lifetime an admin may set.
pub const MIN_TOKEN_LIFETIME_SECS: u32 = 60;
/// Longest name accepted for a credential.
pub const MAX_NAME_LEN: usize = 200;
/// Most audiences one credential may list.
pub const MAX_AUDIENCES: usize = 20;
/// Longest audience accepted.
pub const MAX_AUDIENCE_LEN: usize = 512;

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
    /// Tokens with an `iat` before this are revoked (deactivation, "revoke all tokens").
    pub tokens_revoked_before: Option<UnixTime>,
    pub secrets: Vec<StoredSecret>,
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
        }
    }

    pub const ALL: [AuthFailure; 6] = [
        Self::UnknownClient,
        Self::WrongSecret,
        Self::Deactivated,
        Self::CredentialExpired,
        Self::SecretExpired,
        Self::MissingCredentials,
    ];
}

impl Credential {
    pub fn is_expired(&self, now: UnixTime) -> bool {
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// Checks a presented secret's hash against every stored secret.
    ///
    /// All secrets are compared, matching or not, in constant time each, so the time taken
    /// says nothing about which secret (if any) matched. The secret is checked before the
    /// status, so a deactivated credential only reports "deactivated" (to the audit log)
    /// to someone who holds its secret.
    pub fn authenticate(
        &self,
        presented: &SecretHash,
        now: UnixTime,
    ) -> Result<&StoredSecret, AuthFailure> {
        let mut found: Option<&StoredSecret> = None;
        for s in &self.secrets {
            if s.hash.matches(presented) && found.is_none() {
                found = Some(s);
            }
        }
        let secret = found.ok_or(AuthFailure::WrongSecret)?;
        if self.status == CredentialStatus::Deactivated {
            return Err(AuthFailure::Deactivated);
        }
        if self.is_expired(now) {
            return Err(AuthFailure::CredentialExpired);
        }
        if !secret.is_live(now) {
            return Err(AuthFailure::SecretExpired);
        }
        Ok(secret)
    }

    /// Whether a token of this credential issued at `iat` has been revoked wholesale.
    pub fn revokes_issued_at(&self, iat: UnixTime) -> bool {
        self.tokens_revoked_before.is_some_and(|t| iat < t)
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
            revision: 1,
        }
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
    fn wholesale_revocation_covers_tokens_issued_before_the_instant() {
        let mut c = credential();
        assert!(!c.revokes_issued_at(10));
        c.tokens_revoked_before = Some(11);
        assert!(c.revokes_issued_at(10));
        assert!(!c.revokes_issued_at(11));
    }
}
