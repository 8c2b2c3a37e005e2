//! The one authorization policy: may this actor do this action to this target?
//!
//! Every decision of the admin API, the portal, the CLI's server side and the OAuth
//! introspection and revocation endpoints is made here, by [`may`], a pure function of its
//! three arguments: no I/O, no HTTP, no clock. Handlers and service operations load the target,
//! ask, and act on the answer; none of them decides a role on its own, so a rule cannot be
//! applied by one path and forgotten by another (which is how rotating a platform credential's
//! secret came to skip the check that editing it made).
//!
//! The rules:
//! - A credential acts through the admin API only with `tokenmint:admin`, and then as the
//!   platform. `tokenmint:revocations` (or admin) may follow the revocation feed. At the OAuth
//!   endpoints a client may introspect and revoke its own tokens; `tokenmint:introspect` or
//!   admin may introspect any token, admin may revoke any.
//! - A portal user acts within their organization: `viewer` reads, `admin` also changes;
//!   `platform` acts everywhere. Another organization's objects are "not found" to them, so
//!   their existence is not revealed.
//! - A credential holding any `tokenmint:*` scope is the platform's: an organization's admins
//!   and viewers may see it (it is listed with the others, and seeing its name, scopes and
//!   secret hints gives nothing away), but every change to it (editing, rotating or deleting a
//!   secret, deactivating, activating, revoking its tokens), and granting such a scope at all,
//!   is the platform's alone. So is creating or deactivating a `platform` user.
//! - Custom claims are statements the provider makes about a partner in every token (its
//!   tenant, its plan): setting them on a credential or an organization, and editing an
//!   organization at all, is the platform's alone; organization members only see them. The
//!   one exception is the platform's to make: claims it names with `serve
//!   --org-editable-claim` an organization's admins may set and remove on their organization's
//!   credentials (not on those holding `tokenmint:*` scopes), and no other claim.
//! - Public keys for `private_key_jwt` are managed like secrets: whoever may rotate a
//!   credential's secret may register keys on it, and whoever may delete its secret may remove
//!   one.
//! - Nobody locks themselves out: a credential cannot deactivate itself, revoke its own tokens,
//!   delete its own secret or remove its own public key, take `tokenmint:admin` or the admin
//!   API's audience away from itself or give itself an expiry, and a user cannot deactivate themselves, change their own role
//!   or reset their own password (conflict: their own password they change with the current
//!   one).
//! - Every user, viewers included, may change their own password, and nobody else's.
//! - That at least one working admin credential remains, and
//!   that the actor is still authorized when the write commits, is checked in the write's
//!   transaction (see `tokenmint_store::Guard`), where concurrent writes cannot slip between.

use tokenmint_proto::system_scopes;
use tokenmint_store::{GuardActor, UserRole};

/// Which of tokenmint's own scopes a credential actor holds right now: carried by its token (or
/// granted, for a client authenticating with its secret) and still granted to the credential.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SystemScopes {
    pub admin: bool,
    pub revocations: bool,
    pub introspect: bool,
}

impl SystemScopes {
    /// The system scopes among `held` (a token's or a credential's).
    pub fn from_fn(held: impl Fn(&str) -> bool) -> Self {
        Self {
            admin: held(system_scopes::ADMIN),
            revocations: held(system_scopes::REVOCATIONS),
            introspect: held(system_scopes::INTROSPECT),
        }
    }
}

/// Who is acting. Unauthenticated callers never get this far: they are answered 401 (admin
/// API, OAuth endpoints) or sent to sign in (portal) before the policy is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// A client credential, with an access token (admin API, revocation feed) or its secret
    /// (introspection, revocation).
    Credential {
        client_id: String,
        org: String,
        scopes: SystemScopes,
        /// The access token's `iat` and `jti`, re-checked for revocation at commit time.
        token: Option<(i64, String)>,
    },
    /// A signed-in portal user.
    User { id: String, email: String, org: String, role: UserRole },
}

impl Actor {
    /// How the audit trail names the actor: `credential:<client_id>` or `user:<email>`.
    pub fn principal(&self) -> String {
        match self {
            Self::Credential { client_id, .. } => format!("credential:{client_id}"),
            Self::User { email, .. } => format!("user:{email}"),
        }
    }

    /// The organization the actor belongs to.
    pub fn org(&self) -> &str {
        match self {
            Self::Credential { org, .. } | Self::User { org, .. } => org,
        }
    }

    /// What the store re-checks at commit time (see `tokenmint_store::Guard`).
    pub fn guard_actor(&self) -> GuardActor {
        match self {
            Self::Credential { client_id, token, .. } => {
                GuardActor::Credential { client_id: client_id.clone(), token: token.clone() }
            }
            Self::User { id, role, .. } => GuardActor::User { id: id.clone(), role: *role },
        }
    }
}

/// Everything an actor can ask to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    ListOrganizations,
    ReadOrganization,
    CreateOrganization,
    /// Renaming an organization or changing its custom claims.
    EditOrganization,
    /// Setting or removing a credential's custom claims (asked besides `CreateCredential` or
    /// `EditCredential` when a request carries claims).
    EditClaims,
    ListCredentials,
    ReadCredential,
    CreateCredential,
    EditCredential,
    DeactivateCredential,
    ActivateCredential,
    RotateSecret,
    DeleteSecret,
    /// Registering public keys for `private_key_jwt` on a credential.
    AddPublicKeys,
    /// Removing a registered public key.
    RemovePublicKey,
    RevokeCredentialTokens,
    ListUsers,
    CreateUser,
    DeactivateUser,
    ReactivateUser,
    ChangeUserRole,
    /// Issue a one-time code with which the user sets a new password.
    ResetUserPassword,
    /// A signed-in user changes their own password (with their current one).
    ChangeOwnPassword,
    ReadAudit,
    ReadAlerts,
    ReadKeys,
    RotateKey,
    WithdrawKey,
    FollowRevocations,
    IntrospectToken,
    RevokeToken,
}

impl Action {
    pub const ALL: [Action; 31] = [
        Self::ListOrganizations,
        Self::ReadOrganization,
        Self::CreateOrganization,
        Self::EditOrganization,
        Self::EditClaims,
        Self::ListCredentials,
        Self::ReadCredential,
        Self::CreateCredential,
        Self::EditCredential,
        Self::DeactivateCredential,
        Self::ActivateCredential,
        Self::RotateSecret,
        Self::DeleteSecret,
        Self::AddPublicKeys,
        Self::RemovePublicKey,
        Self::RevokeCredentialTokens,
        Self::ListUsers,
        Self::CreateUser,
        Self::DeactivateUser,
        Self::ReactivateUser,
        Self::ChangeUserRole,
        Self::ResetUserPassword,
        Self::ChangeOwnPassword,
        Self::ReadAudit,
        Self::ReadAlerts,
        Self::ReadKeys,
        Self::RotateKey,
        Self::WithdrawKey,
        Self::FollowRevocations,
        Self::IntrospectToken,
        Self::RevokeToken,
    ];

    /// Whether the action only reads.
    pub const fn is_read(self) -> bool {
        matches!(
            self,
            Self::ListOrganizations
                | Self::ReadOrganization
                | Self::ListCredentials
                | Self::ReadCredential
                | Self::ListUsers
                | Self::ReadAudit
                | Self::ReadAlerts
                | Self::ReadKeys
                | Self::FollowRevocations
                | Self::IntrospectToken
        )
    }

    /// Actions on the platform as a whole, never on one organization's objects.
    const fn is_platform_wide(self) -> bool {
        matches!(
            self,
            Self::ListOrganizations
                | Self::CreateOrganization
                | Self::EditOrganization
                | Self::EditClaims
                | Self::ReadAlerts
                | Self::ReadKeys
                | Self::RotateKey
                | Self::WithdrawKey
                | Self::FollowRevocations
        )
    }
}

/// A credential an action is about (existing, or about to be created).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialRef<'a> {
    pub org: &'a str,
    /// `None` for one about to be created.
    pub client_id: Option<&'a str>,
    /// It holds a `tokenmint:*` scope, before or after the change.
    pub system_scopes: bool,
    /// How the change would end or shorten its use of the admin API, if it would.
    pub loses_admin: Option<AdminLoss>,
}

/// How a change to a credential ends, or schedules the end of, its use of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminLoss {
    /// `tokenmint:admin` is taken away.
    Scope,
    /// Its audiences no longer include the admin API's (the issuer).
    Audience,
    /// It is given an expiry, or an earlier one.
    Expiry,
}

/// What an action is done to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target<'a> {
    /// The platform as a whole: keys, alerts, the revocation feed, every organization, and
    /// lists across organizations.
    Platform,
    /// One organization: what is listed in it, created in it, or read about it.
    Org(&'a str),
    Credential(CredentialRef<'a>),
    /// A portal user (existing, or about to be created with `role`).
    User {
        org: &'a str,
        id: Option<&'a str>,
        role: UserRole,
    },
    /// Custom claims being set or removed on a credential (with [`Action::EditClaims`]):
    /// `org_editable` when every claim touched is one the platform lets organization admins
    /// edit (`serve --org-editable-claim`).
    Claims {
        credential: CredentialRef<'a>,
        org_editable: bool,
    },
    /// An access token, by the client and organization it was issued to.
    Token {
        client_id: &'a str,
        org: &'a str,
    },
    /// Something that does not exist. An actor who could see it if it did is told "not
    /// found"; one who could not is refused exactly as for an object that exists, so the
    /// answer never tells which ids exist.
    Missing,
}

/// What a refused actor would need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// An OAuth scope on the access token.
    Scope(&'static str),
    /// A portal role: `organization admin` or `platform`.
    Role(&'static str),
}

/// Why an action is refused, and how to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// Answer as if the target did not exist (another organization's object).
    NotFound,
    /// Forbidden: why, and what would be needed.
    Forbidden { reason: &'static str, needs: Needs },
    /// The action would lock the actor out (the platform-wide lockout is the store's check).
    Conflict { reason: &'static str },
}

const ORG_ADMIN: &str = "organization admin";
const OWN_PASSWORD_ONLY: &str =
    "a user changes only their own password; an administrator resets other users' passwords";
const PLATFORM: &str = "platform";

/// The one decision: may `actor` do `action` to `target`?
pub fn may(actor: &Actor, action: Action, target: &Target<'_>) -> Result<(), Denied> {
    match actor {
        Actor::Credential { client_id, scopes, .. } => {
            credential_may(client_id, *scopes, action, target)
        }
        Actor::User { id, org, .. } if action == Action::ChangeOwnPassword => {
            let target_org = match target {
                Target::User { id: Some(t), .. } if t == id => return Ok(()),
                Target::Org(o) | Target::User { org: o, .. } | Target::Token { org: o, .. } => *o,
                Target::Credential(c) | Target::Claims { credential: c, .. } => c.org,
                Target::Platform => org.as_str(),
                Target::Missing => return Err(Denied::NotFound),
            };
            // Like every other action, another organization's objects are not found.
            if target_org == org {
                Err(Denied::Forbidden { reason: OWN_PASSWORD_ONLY, needs: Needs::Role(ORG_ADMIN) })
            } else {
                Err(Denied::NotFound)
            }
        }
        Actor::User { id, org, role, .. } => match role {
            UserRole::Platform => platform_may(None, Some(id), action, target),
            UserRole::Admin => member_may(org, id, true, action, target),
            UserRole::Viewer => member_may(org, id, false, action, target),
        },
    }
}

fn credential_may(
    client_id: &str,
    scopes: SystemScopes,
    action: Action,
    target: &Target<'_>,
) -> Result<(), Denied> {
    let own_token = matches!(target, Target::Token { client_id: c, .. } if *c == client_id);
    match action {
        Action::IntrospectToken => {
            // RFC 7662 §2.2: a token the caller may not see is simply inactive.
            if own_token || scopes.introspect || scopes.admin {
                Ok(())
            } else {
                Err(Denied::NotFound)
            }
        }
        Action::RevokeToken => {
            if own_token || scopes.admin {
                Ok(())
            } else {
                Err(Denied::Forbidden {
                    reason: "the token was not issued to this client",
                    needs: Needs::Scope(system_scopes::ADMIN),
                })
            }
        }
        Action::ChangeOwnPassword => Err(Denied::Forbidden {
            reason: "only a signed-in portal user changes their own password",
            needs: Needs::Role(ORG_ADMIN),
        }),
        Action::FollowRevocations if scopes.revocations || scopes.admin => Ok(()),
        Action::FollowRevocations => Err(Denied::Forbidden {
            reason: "following the revocation feed needs the scope tokenmint:revocations",
            needs: Needs::Scope(system_scopes::REVOCATIONS),
        }),
        _ if scopes.admin => platform_may(Some(client_id), None, action, target),
        _ => Err(Denied::Forbidden {
            reason: "the admin API needs an access token with the scope tokenmint:admin",
            needs: Needs::Scope(system_scopes::ADMIN),
        }),
    }
}

/// The platform may do everything, except lock itself out.
fn platform_may(
    own_credential: Option<&str>,
    own_user: Option<&str>,
    action: Action,
    target: &Target<'_>,
) -> Result<(), Denied> {
    match target {
        Target::Missing => Err(Denied::NotFound),
        Target::Credential(c) if c.client_id.is_some() && c.client_id == own_credential => {
            let reason = match action {
                Action::DeactivateCredential => {
                    "a credential cannot deactivate itself: that would lock its caller out; use \
                     another admin credential"
                }
                Action::RevokeCredentialTokens => {
                    "a credential cannot revoke its own tokens: that would lock its caller out; \
                     use another admin credential"
                }
                Action::DeleteSecret => {
                    "a credential cannot delete a secret of its own: that could lock its caller \
                     out; use another admin credential"
                }
                Action::RemovePublicKey => {
                    "a credential cannot remove a public key of its own: that could lock its \
                     caller out; use another admin credential"
                }
                Action::EditCredential => match c.loses_admin {
                    Some(AdminLoss::Scope) => {
                        "a credential cannot take tokenmint:admin away from itself: that would \
                         lock its caller out; use another admin credential"
                    }
                    Some(AdminLoss::Audience) => {
                        "a credential cannot narrow its own audiences to exclude the issuer, the \
                         admin API's audience: its caller would get no admin token again; list \
                         the issuer among them too, or use another admin credential"
                    }
                    Some(AdminLoss::Expiry) => {
                        "a credential cannot give itself an expiry (or an earlier one): its \
                         caller would be locked out when it passes; use another admin credential"
                    }
                    None => return Ok(()),
                },
                _ => return Ok(()),
            };
            Err(Denied::Conflict { reason })
        }
        Target::User { id: Some(id), .. } if Some(*id) == own_user => self_user(action),
        _ => Ok(()),
    }
}

/// An organization's admin (`write`) or viewer, in organization `own`.
fn member_may(
    own: &str,
    own_id: &str,
    write: bool,
    action: Action,
    target: &Target<'_>,
) -> Result<(), Denied> {
    if matches!(action, Action::IntrospectToken | Action::RevokeToken) {
        return Err(Denied::Forbidden {
            reason: "only clients introspect and revoke tokens, with their own credentials",
            needs: Needs::Scope(system_scopes::INTROSPECT),
        });
    }
    if let (Action::EditClaims, Target::Claims { credential, org_editable }) = (action, target) {
        return member_edits_claims(own, write, credential, *org_editable);
    }
    if action.is_platform_wide() || matches!(target, Target::Platform) {
        return Err(Denied::Forbidden {
            reason: "only platform administrators may do this",
            needs: Needs::Role(PLATFORM),
        });
    }
    let org = match target {
        Target::Org(o) | Target::User { org: o, .. } | Target::Token { org: o, .. } => *o,
        Target::Credential(c) | Target::Claims { credential: c, .. } => c.org,
        Target::Platform | Target::Missing => return Err(Denied::NotFound),
    };
    if org != own {
        return Err(Denied::NotFound);
    }
    if action.is_read() {
        return Ok(());
    }
    if !write {
        return Err(Denied::Forbidden {
            reason: "viewers can read but not change anything; ask an administrator of your \
                     organization",
            needs: Needs::Role(ORG_ADMIN),
        });
    }
    match target {
        Target::Credential(c) if c.system_scopes => Err(Denied::Forbidden {
            reason: "credentials holding tokenmint:* scopes are managed by the platform \
                     administrators only",
            needs: Needs::Role(PLATFORM),
        }),
        Target::User { role: UserRole::Platform, .. } => Err(Denied::Forbidden {
            reason: "only platform administrators create or change platform users",
            needs: Needs::Role(PLATFORM),
        }),
        Target::User { id: Some(id), .. } if *id == own_id => self_user(action),
        _ => Ok(()),
    }
}

/// An organization's admin (`write`) or viewer setting or removing custom claims: only on
/// their organization's credentials, only those without system scopes, and only the claims the
/// platform made editable by organization admins.
fn member_edits_claims(
    own: &str,
    write: bool,
    credential: &CredentialRef<'_>,
    org_editable: bool,
) -> Result<(), Denied> {
    if credential.org != own {
        return Err(Denied::NotFound);
    }
    if !write {
        return Err(Denied::Forbidden {
            reason: "viewers can read but not change anything; ask an administrator of your \
                     organization",
            needs: Needs::Role(ORG_ADMIN),
        });
    }
    if credential.system_scopes {
        return Err(Denied::Forbidden {
            reason: "credentials holding tokenmint:* scopes are managed by the platform \
                     administrators only",
            needs: Needs::Role(PLATFORM),
        });
    }
    if !org_editable {
        return Err(Denied::Forbidden {
            reason: "this claim is set by the platform administrators; organization admins edit \
                     only the claims the platform names with serve --org-editable-claim",
            needs: Needs::Role(PLATFORM),
        });
    }
    Ok(())
}

/// What a user may do to their own user: not lock themselves out (deactivating themselves,
/// changing their own role), and not set their password without the current one (a reset).
fn self_user(action: Action) -> Result<(), Denied> {
    let reason = match action {
        Action::DeactivateUser => "you cannot deactivate yourself: ask another administrator",
        Action::ChangeUserRole => "you cannot change your own role: ask another administrator",
        Action::ResetUserPassword => {
            "you cannot reset your own password: change it on your account page, with your \
             current password"
        }
        _ => return Ok(()),
    };
    Err(Denied::Conflict { reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(org: &str, role: UserRole) -> Actor {
        Actor::User { id: "usr_me".into(), email: "me@x.test".into(), org: org.into(), role }
    }

    fn credential(scopes: SystemScopes) -> Actor {
        Actor::Credential {
            client_id: "tmc_me".into(),
            org: "platform".into(),
            scopes,
            token: None,
        }
    }

    fn cred<'a>(org: &'a str, id: &'a str, system: bool) -> Target<'a> {
        Target::Credential(CredentialRef {
            org,
            client_id: Some(id),
            system_scopes: system,
            loses_admin: None,
        })
    }

    #[test]
    fn an_organization_admin_changes_nothing_that_holds_a_system_scope() {
        let admin = user("acme", UserRole::Admin);
        for action in Action::ALL.into_iter().filter(|a| !a.is_read()) {
            let r = may(&admin, action, &cred("acme", "tmc_x", true));
            assert!(matches!(r, Err(Denied::Forbidden { .. })), "{action:?}: {r:?}");
        }
        assert_eq!(may(&admin, Action::ReadCredential, &cred("acme", "tmc_x", true)), Ok(()));
        assert_eq!(may(&admin, Action::RotateSecret, &cred("acme", "tmc_x", false)), Ok(()));
    }

    #[test]
    fn another_organizations_objects_and_missing_ones_are_not_found_to_members() {
        for role in [UserRole::Admin, UserRole::Viewer] {
            let member = user("acme", role);
            for action in Action::ALL.into_iter().filter(|a| !a.is_platform_wide()) {
                for target in [
                    cred("globex", "tmc_x", false),
                    Target::Org("globex"),
                    Target::User { org: "globex", id: Some("usr_x"), role: UserRole::Viewer },
                    Target::Missing,
                ] {
                    let r = may(&member, action, &target);
                    if matches!(action, Action::IntrospectToken | Action::RevokeToken) {
                        assert!(matches!(r, Err(Denied::Forbidden { .. })));
                    } else {
                        assert_eq!(r, Err(Denied::NotFound), "{role:?} {action:?} {target:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_credential_without_the_admin_scope_is_refused_alike_whether_the_target_exists_or_not() {
        for scopes in [
            SystemScopes::default(),
            SystemScopes { introspect: true, ..Default::default() },
            SystemScopes { revocations: true, ..Default::default() },
        ] {
            let actor = credential(scopes);
            for action in Action::ALL {
                if matches!(
                    action,
                    Action::IntrospectToken | Action::RevokeToken | Action::FollowRevocations
                ) {
                    continue;
                }
                let existing = may(&actor, action, &cred("acme", "tmc_x", false));
                assert!(matches!(existing, Err(Denied::Forbidden { .. })), "{action:?}");
                assert_eq!(existing, may(&actor, action, &Target::Missing), "{action:?}");
            }
        }
    }

    #[test]
    fn nobody_locks_themselves_out() {
        let admin = credential(SystemScopes { admin: true, ..Default::default() });
        let me = cred("platform", "tmc_me", true);
        for action in [
            Action::DeactivateCredential,
            Action::RevokeCredentialTokens,
            Action::DeleteSecret,
            Action::RemovePublicKey,
        ] {
            assert!(matches!(may(&admin, action, &me), Err(Denied::Conflict { .. })));
        }
        for loss in [AdminLoss::Scope, AdminLoss::Audience, AdminLoss::Expiry] {
            let dropping = Target::Credential(CredentialRef {
                org: "platform",
                client_id: Some("tmc_me"),
                system_scopes: true,
                loses_admin: Some(loss),
            });
            assert!(matches!(
                may(&admin, Action::EditCredential, &dropping),
                Err(Denied::Conflict { .. })
            ));
            // Another credential may be changed so: the store keeps the last working admin.
            let other = Target::Credential(CredentialRef {
                org: "platform",
                client_id: Some("tmc_other"),
                system_scopes: true,
                loses_admin: Some(loss),
            });
            assert_eq!(may(&admin, Action::EditCredential, &other), Ok(()));
        }
        assert_eq!(may(&admin, Action::EditCredential, &me), Ok(()));
        assert_eq!(may(&admin, Action::RotateSecret, &me), Ok(()));
        assert_eq!(may(&admin, Action::AddPublicKeys, &me), Ok(()));
        for role in [UserRole::Admin, UserRole::Platform] {
            let me = Target::User { org: "acme", id: Some("usr_me"), role: UserRole::Admin };
            assert!(matches!(
                may(&user("acme", role), Action::DeactivateUser, &me),
                Err(Denied::Conflict { .. })
            ));
        }
    }

    #[test]
    fn only_the_platform_sets_custom_claims_or_edits_an_organization() {
        for action in [Action::EditClaims, Action::EditOrganization] {
            for role in [UserRole::Admin, UserRole::Viewer] {
                for target in [cred("acme", "tmc_x", false), Target::Org("acme")] {
                    let r = may(&user("acme", role), action, &target);
                    assert!(
                        matches!(r, Err(Denied::Forbidden { .. })),
                        "{role:?} {action:?}: {r:?}"
                    );
                }
            }
            assert_eq!(may(&user("p", UserRole::Platform), action, &Target::Org("acme")), Ok(()));
            let admin = credential(SystemScopes { admin: true, ..Default::default() });
            assert_eq!(may(&admin, action, &cred("acme", "tmc_x", false)), Ok(()));
            let plain = credential(SystemScopes { introspect: true, ..Default::default() });
            assert!(may(&plain, action, &Target::Org("acme")).is_err());
        }
        // Members still read them: reading a credential or an organization is unchanged.
        let admin = user("acme", UserRole::Admin);
        assert_eq!(may(&admin, Action::ReadCredential, &cred("acme", "tmc_x", false)), Ok(()));
        assert_eq!(may(&admin, Action::ReadOrganization, &Target::Org("acme")), Ok(()));
    }

    #[test]
    fn every_user_changes_their_own_password_and_nobody_elses() {
        for role in [UserRole::Viewer, UserRole::Admin, UserRole::Platform] {
            let me = user("acme", role);
            for (target, ok) in [
                (Target::User { org: "acme", id: Some("usr_me"), role }, true),
                (Target::User { org: "acme", id: Some("usr_x"), role: UserRole::Viewer }, false),
                (Target::User { org: "globex", id: Some("usr_y"), role: UserRole::Viewer }, false),
                (Target::Org("acme"), false),
                (Target::Missing, false),
            ] {
                assert_eq!(
                    may(&me, Action::ChangeOwnPassword, &target).is_ok(),
                    ok,
                    "{role:?} {target:?}"
                );
            }
        }
        let admin = credential(SystemScopes { admin: true, ..Default::default() });
        let someone = Target::User { org: "acme", id: Some("usr_x"), role: UserRole::Viewer };
        assert!(may(&admin, Action::ChangeOwnPassword, &someone).is_err());
        assert_eq!(may(&admin, Action::ResetUserPassword, &someone), Ok(()));
    }

    #[test]
    fn nobody_changes_their_own_role_or_resets_their_own_password() {
        for role in [UserRole::Admin, UserRole::Platform] {
            let me = Target::User { org: "acme", id: Some("usr_me"), role };
            for action in [Action::ChangeUserRole, Action::ResetUserPassword] {
                assert!(
                    matches!(may(&user("acme", role), action, &me), Err(Denied::Conflict { .. })),
                    "{role:?} {action:?}"
                );
            }
            assert_eq!(may(&user("acme", role), Action::ReactivateUser, &me), Ok(()));
        }
    }

    #[test]
    fn organization_admins_manage_their_users_lifecycle_but_not_platform_users() {
        let admin = user("acme", UserRole::Admin);
        let viewer = user("acme", UserRole::Viewer);
        for action in [Action::ReactivateUser, Action::ChangeUserRole, Action::ResetUserPassword] {
            let plain = Target::User { org: "acme", id: Some("usr_x"), role: UserRole::Viewer };
            let platform =
                Target::User { org: "acme", id: Some("usr_p"), role: UserRole::Platform };
            assert_eq!(may(&admin, action, &plain), Ok(()), "{action:?}");
            assert!(matches!(may(&admin, action, &platform), Err(Denied::Forbidden { .. })));
            assert!(matches!(may(&viewer, action, &plain), Err(Denied::Forbidden { .. })));
        }
    }

    #[test]
    fn clients_see_their_own_tokens_and_privileged_clients_more() {
        let own = Target::Token { client_id: "tmc_me", org: "platform" };
        let other = Target::Token { client_id: "tmc_x", org: "acme" };
        let plain = credential(SystemScopes::default());
        assert_eq!(may(&plain, Action::IntrospectToken, &own), Ok(()));
        assert_eq!(may(&plain, Action::RevokeToken, &own), Ok(()));
        assert_eq!(may(&plain, Action::IntrospectToken, &other), Err(Denied::NotFound));
        assert!(may(&plain, Action::RevokeToken, &other).is_err());
        let introspector = credential(SystemScopes { introspect: true, ..Default::default() });
        assert_eq!(may(&introspector, Action::IntrospectToken, &other), Ok(()));
        assert!(may(&introspector, Action::RevokeToken, &other).is_err());
        let admin = credential(SystemScopes { admin: true, ..Default::default() });
        assert_eq!(may(&admin, Action::RevokeToken, &other), Ok(()));
    }

    #[test]
    fn organization_admins_edit_only_the_claims_the_platform_made_editable() {
        let claims = |org, system, org_editable| Target::Claims {
            credential: CredentialRef {
                org,
                client_id: Some("tmc_x"),
                system_scopes: system,
                loses_admin: None,
            },
            org_editable,
        };
        let admin = user("acme", UserRole::Admin);
        let viewer = user("acme", UserRole::Viewer);
        let platform = user("p", UserRole::Platform);
        let api = credential(SystemScopes { admin: true, ..Default::default() });
        let forbidden = |r: Result<(), Denied>| matches!(r, Err(Denied::Forbidden { .. }));
        // (actor, org, system scopes, editable) -> allowed?
        assert_eq!(may(&admin, Action::EditClaims, &claims("acme", false, true)), Ok(()));
        assert!(forbidden(may(&admin, Action::EditClaims, &claims("acme", false, false))));
        assert!(forbidden(may(&admin, Action::EditClaims, &claims("acme", true, true))));
        assert_eq!(
            may(&admin, Action::EditClaims, &claims("other", false, true)),
            Err(Denied::NotFound)
        );
        assert!(forbidden(may(&viewer, Action::EditClaims, &claims("acme", false, true))));
        for org_editable in [true, false] {
            for system in [true, false] {
                let t = claims("acme", system, org_editable);
                assert_eq!(may(&platform, Action::EditClaims, &t), Ok(()));
                assert_eq!(may(&api, Action::EditClaims, &t), Ok(()));
            }
        }
        // The exception covers a credential's claims only: an organization's stay the platform's.
        assert!(forbidden(may(&admin, Action::EditClaims, &Target::Org("acme"))));
        assert!(forbidden(may(&admin, Action::EditClaims, &cred("acme", "tmc_x", false))));
    }
}
