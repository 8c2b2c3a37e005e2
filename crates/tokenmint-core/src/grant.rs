//! What an authenticated client gets: the scope, audience and lifetime of its token.

use crate::UnixTime;
use crate::credential::Credential;
use crate::scope::Permissions;
use std::borrow::Cow;
use thiserror::Error;
use tokenmint_proto::OAuthErrorCode;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GrantError {
    #[error("{0}")]
    InvalidScope(Cow<'static, str>),
    #[error("{0}")]
    InvalidTarget(Cow<'static, str>),
}

impl GrantError {
    pub fn oauth_code(&self) -> OAuthErrorCode {
        match self {
            Self::InvalidScope(_) => OAuthErrorCode::InvalidScope,
            Self::InvalidTarget(_) => OAuthErrorCode::InvalidTarget,
        }
    }
}

/// The audience a token is issued for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GrantedAudience<'a> {
    One(&'a str),
    /// The credential's audiences (borrowed), or the several a request named (owned).
    Many(Cow<'a, [String]>),
}

/// The decision for one token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant<'a> {
    /// Space-separated granted scopes, in the credential's canonical order.
    pub scope: Cow<'a, str>,
    pub audience: GrantedAudience<'a>,
    pub issued_at: UnixTime,
    pub expires_at: UnixTime,
}

impl Grant<'_> {
    pub fn expires_in(&self) -> u64 {
        u64::try_from(self.expires_at - self.issued_at).unwrap_or(0)
    }
}

/// Decides scope, audience and lifetime for an authenticated credential.
///
/// * `scope`: a space-separated subset of the credential's scopes; absent means all of them
///   (RFC 6749 §3.3 lets the server pick a default). Order and repetition do not matter.
/// * `audiences`: each must be one of the credential's audiences (RFC 8707 `invalid_target`),
///   or the issuer when the credential lists none (its tokens are for the issuer anyway); one
///   is the token's `aud` as a string, several as an array in the order asked; none means all
///   of the credential's, or the issuer when the credential lists none.
/// * Lifetime: the credential's, capped by `max_lifetime` and by the credential's own expiry.
pub fn decide<'a>(
    credential: &'a Credential,
    scope: Option<&str>,
    audiences: &[String],
    issuer: &'a str,
    cached_all_scopes: &'a str,
    max_lifetime: u32,
    now: UnixTime,
) -> Result<Grant<'a>, GrantError> {
    decide_for(
        Terms::of(credential),
        scope,
        audiences,
        issuer,
        cached_all_scopes,
        max_lifetime,
        now,
    )
}

/// What of a credential a grant depends on: what [`decide_for`] reads, so that a compact copy
/// of a credential (the server's cache entry) can be decided for without a whole one.
#[derive(Debug, Clone, Copy)]
pub struct Terms<'a> {
    pub permissions: &'a Permissions,
    pub audiences: &'a [String],
    pub token_lifetime_secs: u32,
    pub expires_at: Option<UnixTime>,
}

impl<'a> Terms<'a> {
    pub fn of(credential: &'a Credential) -> Self {
        Self {
            permissions: &credential.permissions,
            audiences: &credential.audiences,
            token_lifetime_secs: credential.token_lifetime_secs,
            expires_at: credential.expires_at,
        }
    }
}

/// [`decide`] for a credential's [`Terms`].
pub fn decide_for<'a>(
    credential: Terms<'a>,
    scope: Option<&str>,
    audiences: &[String],
    issuer: &'a str,
    cached_all_scopes: &'a str,
    max_lifetime: u32,
    now: UnixTime,
) -> Result<Grant<'a>, GrantError> {
    let scope = match scope {
        None => Cow::Borrowed(cached_all_scopes),
        Some(requested) => {
            let mut wanted: Vec<&str> = requested.split(' ').filter(|s| !s.is_empty()).collect();
            if let Some(bad) = wanted.iter().find(|s| !credential.permissions.allows_scope(s)) {
                let shown = crate::ids::echoed(bad, 100);
                return Err(GrantError::InvalidScope(Cow::Owned(format!(
                    "scope '{shown}' is not granted to this client; it may request: {}",
                    if cached_all_scopes.is_empty() { "no scopes" } else { cached_all_scopes }
                ))));
            }
            wanted.sort_unstable();
            wanted.dedup();
            Cow::Owned(wanted.join(" "))
        }
    };
    let allowed = |a: &String| -> Result<&'a String, GrantError> {
        credential.audiences.iter().find(|x| *x == a).ok_or_else(|| {
            let shown = crate::ids::echoed(a, 100);
            GrantError::InvalidTarget(Cow::Owned(format!(
                "the requested audience '{shown}' is not allowed for this client"
            )))
        })
    };
    let audience = match audiences {
        [] => match credential.audiences {
            [] => GrantedAudience::One(issuer),
            [one] => GrantedAudience::One(one.as_str()),
            many => GrantedAudience::Many(Cow::Borrowed(many)),
        },
        [one] if credential.audiences.is_empty() && one == issuer => GrantedAudience::One(issuer),
        [one] => GrantedAudience::One(allowed(one)?.as_str()),
        many => {
            for a in many {
                allowed(a)?;
            }
            GrantedAudience::Many(Cow::Owned(many.to_vec()))
        }
    };
    // Never dated in the future, even right after a revocation: the token's id, not its
    // `iat`, places it after a cut-off within the same second (see `Credential::new_token_id`).
    let issued_at = now;
    let lifetime = i64::from(credential.token_lifetime_secs.min(max_lifetime).max(1));
    let mut expires_at = issued_at + lifetime;
    if let Some(cred_exp) = credential.expires_at {
        expires_at = expires_at.min(cred_exp);
    }
    Ok(Grant { scope, audience, issued_at, expires_at })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::CredentialStatus;
    use crate::scope::{Permissions, ProductAreas};
    use crate::{ClientId, Environment};

    fn cred(audiences: &[&str]) -> Credential {
        let areas = ProductAreas::parse(&["eligibility", "billing"]).unwrap();
        Credential {
            client_id: ClientId::parse("tmc_a").unwrap(),
            name: "n".into(),
            org: "acme".into(),
            environment: Environment::Production,
            permissions: Permissions::parse(&["eligibility:write", "billing:read"], &areas, false)
                .unwrap(),
            audiences: audiences.iter().map(|s| (*s).to_owned()).collect(),
            token_lifetime_secs: 3600,
            rate_limit_per_minute: None,
            status: CredentialStatus::Active,
            expires_at: None,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: vec![],
            claims: crate::CustomClaims::default(),
            org_claims: crate::CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 1,
        }
    }

    const ALL: &str = "billing:read eligibility:read eligibility:write";

    #[test]
    fn no_scope_means_every_granted_scope() {
        let c = cred(&[]);
        let g = decide(&c, None, &[], "https://issuer", ALL, 86400, 100).unwrap();
        assert_eq!(g.scope, ALL);
        assert_eq!(g.audience, GrantedAudience::One("https://issuer"));
        assert_eq!(g.expires_in(), 3600);
    }

    #[test]
    fn a_scope_subset_is_granted_in_canonical_order() {
        let c = cred(&[]);
        let g = decide(
            &c,
            Some("eligibility:read  billing:read eligibility:read"),
            &[],
            "i",
            ALL,
            86400,
            0,
        )
        .unwrap();
        assert_eq!(g.scope, "billing:read eligibility:read");
    }

    #[test]
    fn a_scope_beyond_the_permissions_is_invalid_scope() {
        let c = cred(&[]);
        let e = decide(&c, Some("billing:write"), &[], "i", ALL, 86400, 0).unwrap_err();
        assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidScope);
        assert!(e.to_string().contains("billing:write"));
    }

    #[test]
    fn audiences_must_be_allowed_and_default_to_the_whole_list() {
        let c = cred(&["https://a", "https://b"]);
        let g = decide(&c, None, &["https://b".to_owned()], "i", ALL, 86400, 0).unwrap();
        assert_eq!(g.audience, GrantedAudience::One("https://b"));
        let g = decide(&c, None, &[], "i", ALL, 86400, 0).unwrap();
        assert!(matches!(g.audience, GrantedAudience::Many(ref l) if l.len() == 2));
        let e = decide(&c, None, &["https://c".to_owned()], "i", ALL, 86400, 0).unwrap_err();
        assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidTarget);
        let none = cred(&[]);
        assert!(decide(&none, None, &["https://a".to_owned()], "i", ALL, 86400, 0).is_err());
        // Tokens of a credential without audiences are for the issuer: asking for it is fine.
        let g = decide(&none, None, &["i".to_owned()], "i", ALL, 86400, 0).unwrap();
        assert_eq!(g.audience, GrantedAudience::One("i"));
        // A credential that lists audiences gets the issuer only when it lists the issuer.
        assert!(decide(&c, None, &["i".to_owned()], "i", ALL, 86400, 0).is_err());
    }

    #[test]
    fn several_requested_audiences_must_each_be_allowed_and_become_an_array() {
        let c = cred(&["https://a", "https://b", "https://c"]);
        let want = ["https://c".to_owned(), "https://a".to_owned()];
        let g = decide(&c, None, &want, "i", ALL, 86400, 0).unwrap();
        assert_eq!(g.audience, GrantedAudience::Many(Cow::Borrowed(&want[..])));
        // One outsider spoils the request, wherever it stands.
        for bad in [
            ["https://x".to_owned(), "https://a".to_owned()],
            ["https://a".to_owned(), "https://x".to_owned()],
        ] {
            let e = decide(&c, None, &bad, "i", ALL, 86400, 0).unwrap_err();
            assert_eq!(e.oauth_code(), OAuthErrorCode::InvalidTarget);
            assert!(e.to_string().contains("https://x"), "{e}");
        }
    }

    #[test]
    fn lifetime_is_capped_by_the_server_and_by_the_credential_expiry() {
        let mut c = cred(&[]);
        assert_eq!(decide(&c, None, &[], "i", ALL, 600, 0).unwrap().expires_in(), 600);
        c.expires_at = Some(100);
        assert_eq!(decide(&c, None, &[], "i", ALL, 86400, 0).unwrap().expires_at, 100);
    }

    #[test]
    fn a_token_right_after_a_revocation_is_issued_now_not_in_the_future() {
        let mut c = cred(&[]);
        c.tokens_revoked_before = Some(crate::credential::RevocationCutoff::at_micros(100_999_999));
        let g = decide(&c, None, &[], "i", ALL, 86400, 100).unwrap();
        assert_eq!(g.issued_at, 100);
    }
}
