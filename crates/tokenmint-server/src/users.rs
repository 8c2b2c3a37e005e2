//! Portal users: Argon2id password hashing and the user operations that the admin API (and so
//! the CLI) and the portal share, authorized by the one policy ([`crate::service::policy`]):
//! org admins manage their own organization's users, the platform manages everyone.
//!
//! Passwords are the one human-chosen secret tokenmint keeps, so they get a deliberately slow,
//! memory-hard hash (Argon2id with the `argon2` crate's defaults, which follow OWASP's
//! recommendation), computed on a small pool of threads of its own ([`crate::hashing`]) so it
//! never stalls the async workers and its memory stays bounded under a flood of sign-ins.
//! Client secrets are random and high-entropy and keep their fast keyed hash.
//!
//! A user's lifecycle: created with a password, deactivated (sessions and pending resets end
//! at once) and reactivated, given another role, their password reset by an administrator
//! with a one-time code, or changed by themselves with the current one. A deactivated user's
//! email can be given to a new user (a new person to tokenmint: new id, role and password);
//! the deactivated record stays for the audit trail and can be reactivated only while no
//! active user holds the address.
//!
//! Reset codes are random (190 bits), shown once to the administrator who asked, stored as
//! SHA-256 only, and work once, for [`RESET_CODE_TTL_SECS`], on any instance (they live in the
//! database); the user enters them at `/portal/reset-password` and never in a URL, so no
//! access log or `Referer` header can carry one.
//!
//! Like the rest of the service layer, these operations fail with a
//! [`ServiceError`](crate::service::ServiceError) and know no transport: the admin API's
//! answer is made from it in `crate::error`, and the portal shows a field's message on its
//! own forms.

use crate::audit::AuditKind;
use crate::service::{
    self, Action, Actor, ServiceError, Target, authorize, instant, policy, record,
};
use crate::state::AppState;
use std::fmt;
use tokenmint_core::ids::random_id;
use tokenmint_core::{OrgSlug, crypto};
use tokenmint_proto::admin as dto;
use tokenmint_store::{Organization, PasswordReset, PortalUser, StoreError, UserRole, UserStatus};

pub const MIN_PASSWORD_LEN: usize = tokenmint_proto::limits::PASSWORD_MIN_LEN;
pub const MAX_PASSWORD_LEN: usize = tokenmint_proto::limits::PASSWORD_MAX_LEN;
/// In characters as given (surrounding white space included).
pub const MAX_EMAIL_LEN: usize = tokenmint_proto::limits::EMAIL_MAX_LEN;
/// The one answer an organization's admin gets when an email cannot be given to a new user.
pub const EMAIL_NOT_ADDED: &str =
    "this email address cannot be added; check it, or use another address";
/// How long a password-reset code works.
pub const RESET_CODE_TTL_SECS: i64 = 24 * 3600;
/// Reset codes: a recognisable prefix and 32 base62 characters.
const RESET_CODE_PREFIX: &str = "tmr_";
const RESET_CODE_LEN: usize = 32;

/// A password in memory: never printed.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Hashes a password with Argon2id and a fresh random salt, as a PHC string, with this
/// thread's reused memory ([`crate::hashing`]).
pub fn hash_password_blocking(password: &Password) -> Result<String, ServiceError> {
    crate::hashing::hash(password.expose().as_bytes())
        .map_err(|e| ServiceError::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a PHC string; a malformed hash never matches.
pub fn verify_password_blocking(hash: &str, password: &Password) -> bool {
    crate::hashing::verify(hash, password.expose().as_bytes())
}

/// Hashes on the password threads ([`crate::hashing`]), which bound the memory hashing takes.
pub async fn hash_password(password: Password) -> Result<String, ServiceError> {
    crate::hashing::passwords()
        .run(move || hash_password_blocking(&password))
        .await
        .ok_or_else(|| ServiceError::Internal("the password-hashing threads stopped".into()))?
}

/// Checks on the password threads ([`crate::hashing`]); if they stopped, nothing matches.
pub async fn verify_password(hash: String, password: Password) -> bool {
    crate::hashing::passwords()
        .run(move || verify_password_blocking(&hash, &password))
        .await
        .unwrap_or(false)
}

/// Checks the shape of an email address: what a person can type, not full RFC 5322.
pub fn validate_email(email: &str) -> Result<String, ServiceError> {
    if let Some(c) = tokenmint_core::ids::find_hidden_char(email) {
        return Err(ServiceError::invalid(
            "email",
            crate::service::hidden_char_message("the email address", &c),
        ));
    }
    let too_long = email.chars().count() > MAX_EMAIL_LEN;
    let email = email.trim();
    let ok = !too_long
        && !email.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(email.to_owned())
    } else {
        Err(ServiceError::invalid("email", "enter an email address like name@example.com"))
    }
}

/// What is recorded, in place of an email that was typed but is not one.
pub const NOT_AN_EMAIL: &str = "[not an email: redacted]";

/// A typed email as it may be written down (audit trail, alerts, logs): the address when it has
/// the [shape of one](validate_email), escaped as [`SafeText`](tokenmint_core::SafeText); a
/// client secret typed there redacted as a presented client id's is; anything else (a password
/// typed into the wrong field) only as [`NOT_AN_EMAIL`].
pub fn recorded_email(typed: &str) -> String {
    if let Some(redacted) = tokenmint_core::ids::redacted_secret(typed) {
        return redacted;
    }
    match validate_email(typed) {
        Ok(email) => tokenmint_core::SafeText::bounded(&email, MAX_EMAIL_LEN).into_string(),
        Err(_) => NOT_AN_EMAIL.to_owned(),
    }
}

pub fn validate_password(password: &Password) -> Result<(), ServiceError> {
    let n = password.expose().chars().count();
    if (MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&n) {
        Ok(())
    } else {
        Err(ServiceError::invalid(
            "password",
            format!("the password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters"),
        ))
    }
}

pub fn role_to_dto(r: UserRole) -> dto::UserRole {
    match r {
        UserRole::Admin => dto::UserRole::Admin,
        UserRole::Viewer => dto::UserRole::Viewer,
        UserRole::Platform => dto::UserRole::Platform,
    }
}

fn role_from_dto(r: dto::UserRole) -> UserRole {
    match r {
        dto::UserRole::Admin => UserRole::Admin,
        dto::UserRole::Viewer => UserRole::Viewer,
        dto::UserRole::Platform => UserRole::Platform,
    }
}

pub fn user_view(u: &PortalUser) -> dto::User {
    dto::User {
        id: u.id.clone(),
        org: u.org.clone(),
        email: u.email.clone(),
        role: role_to_dto(u.role),
        status: u.status.as_str().to_owned(),
        created_at: instant(u.created_at),
        last_sign_in_at: u.last_sign_in_at.map(instant),
    }
}

/// The actor a signed-in portal user acts as.
pub fn actor_for(u: &PortalUser) -> Actor {
    Actor::User { id: u.id.clone(), email: u.email.clone(), org: u.org.clone(), role: u.role }
}

fn user_not_found() -> ServiceError {
    ServiceError::not_found("user")
}

/// What a role allows, said plainly, for the answer to creating a user (the API's and the
/// CLI's): a user made for the organization that holds the platform-admin credentials is not,
/// by being there, a platform administrator.
pub fn role_grants(role: UserRole, org: &str) -> String {
    match role {
        UserRole::Platform => "platform: manages every organization, including the credentials \
                               holding tokenmint:* scopes and the platform users"
            .to_owned(),
        UserRole::Admin => {
            let mut text = format!(
                "admin of organization '{org}': manages its credentials and users; credentials \
                 holding tokenmint:* scopes and platform users stay with the platform"
            );
            if org == crate::bootstrap::PLATFORM_ORG {
                text.push_str(
                    "; this is not a platform role: it cannot touch this organization's \
                     platform-admin credentials (only --role platform, given by the platform, can)",
                );
            }
            text
        }
        UserRole::Viewer => format!(
            "viewer of organization '{org}': reads its credentials, users and audit log, changes \
             nothing"
        ),
    }
}

pub async fn create_user(
    state: &AppState,
    actor: &Actor,
    input: dto::CreateUser,
) -> Result<dto::CreatedUser, ServiceError> {
    let slug = OrgSlug::parse(input.org.trim())
        .map_err(|e| ServiceError::invalid("org", e.to_string()))?;
    let role = role_from_dto(input.role.unwrap_or(dto::UserRole::Admin));
    let target = Target::User { org: slug.as_str(), id: None, role };
    authorize(actor, Action::CreateUser, &target, "organization")?;
    let email = validate_email(&input.email)?;
    let password = Password::new(input.password);
    validate_password(&password)?;
    let password_hash = hash_password(password).await?;
    let now = state.now();
    let guard = service::guard(state, actor, false);
    let may_create_org = policy::may(actor, Action::CreateOrganization, &Target::Platform).is_ok();
    let mut organization_created = false;
    if may_create_org && state.store.get_organization(slug.as_str()).await?.is_none() {
        // The platform may name a new organization, as when it creates a credential; the
        // answer says so, since a mistyped slug would otherwise go unnoticed.
        let org = Organization {
            slug: slug.to_string(),
            name: slug.to_string(),
            created_at: now,
            claims: tokenmint_core::CustomClaims::default(),
        };
        match state.store.create_organization(&org, &guard).await {
            Ok(()) => organization_created = true,
            // Created by someone else in between: it existed, as far as this request goes.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let user = PortalUser {
        id: random_id("usr_", 16),
        org: slug.to_string(),
        email,
        role,
        password_hash,
        status: UserStatus::Active,
        created_at: now,
        updated_at: now,
        last_sign_in_at: None,
    };
    // Emails are unique across organizations (a user signs in with the email alone). Someone
    // who may list every user learns that the email is taken; an organization's admin gets one
    // neutral answer, word for word the same whether an active user of their organization or
    // of another holds the address, which never names or hints at another organization.
    let sees_everyone = policy::may(actor, Action::ListUsers, &Target::Platform).is_ok();
    state.store.create_user(&user, &guard).await.map_err(|e| match e {
        StoreError::NotFound(_) => {
            ServiceError::invalid("org", format!("organization '{slug}' does not exist"))
        }
        StoreError::Conflict(_) if sees_everyone => {
            ServiceError::Conflict("a user with this email already exists".into())
        }
        StoreError::Conflict(_) => ServiceError::Conflict(EMAIL_NOT_ADDED.into()),
        other => other.into(),
    })?;
    let principal = actor.principal();
    tracing::info!(user_id = %user.id, org = %user.org, actor = %principal, "portal user created");
    record(
        state,
        actor,
        AuditKind::UserCreated,
        &user.org,
        None,
        serde_json::json!({"user_id": user.id, "email": user.email, "role": user.role.as_str()}),
    );
    Ok(dto::CreatedUser {
        role_grants: role_grants(user.role, &user.org),
        user: user_view(&user),
        organization_created,
    })
}

/// Loads a user and asks the policy whether `actor` may do `action` to them; a user the actor
/// may not see is "not found", exactly like one that does not exist.
pub async fn check_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
    action: Action,
) -> Result<PortalUser, ServiceError> {
    let Some(user) = state.store.get_user(id).await? else {
        authorize(actor, action, &Target::Missing, "user")?;
        return Err(user_not_found());
    };
    let target = Target::User { org: &user.org, id: Some(&user.id), role: user.role };
    authorize(actor, action, &target, "user")?;
    Ok(user)
}

pub async fn reactivate_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<dto::User, ServiceError> {
    let user = check_user(state, actor, id, Action::ReactivateUser).await?;
    if user.status != UserStatus::Active {
        state
            .store
            .set_user_status(id, UserStatus::Active, &service::guard(state, actor, false))
            .await?;
        let principal = actor.principal();
        tracing::info!(user_id = id, actor = %principal, "portal user reactivated");
        record(
            state,
            actor,
            AuditKind::UserReactivated,
            &user.org,
            None,
            serde_json::json!({"user_id": user.id, "email": user.email}),
        );
    }
    let updated = state.store.get_user(id).await?.ok_or_else(user_not_found)?;
    Ok(user_view(&updated))
}

pub async fn update_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
    input: dto::UpdateUser,
) -> Result<dto::User, ServiceError> {
    let user = check_user(state, actor, id, Action::ChangeUserRole).await?;
    if let Some(role) = input.role.map(role_from_dto).filter(|r| *r != user.role) {
        // The role given is a target too: an organization's admin cannot make a platform user.
        let target = Target::User { org: &user.org, id: Some(&user.id), role };
        authorize(actor, Action::ChangeUserRole, &target, "user")?;
        state.store.set_user_role(id, role, &service::guard(state, actor, false)).await?;
        let principal = actor.principal();
        tracing::info!(user_id = id, actor = %principal, role = role.as_str(), "portal user role changed");
        record(
            state,
            actor,
            AuditKind::UserRoleChanged,
            &user.org,
            None,
            serde_json::json!({"user_id": user.id, "email": user.email,
                "from": user.role.as_str(), "to": role.as_str()}),
        );
    }
    let updated = state.store.get_user(id).await?.ok_or_else(user_not_found)?;
    Ok(user_view(&updated))
}

fn reset_code_hash(code: &str) -> String {
    crypto::sha256(code.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where a user enters a reset code.
pub fn reset_url(state: &AppState) -> String {
    format!("{}/portal/reset-password", state.issuer.trim_end_matches('/'))
}

/// Issues a one-time password-reset code for an active user, replacing any earlier one. The
/// user's current password keeps working until the code is used.
pub async fn reset_password(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<dto::PasswordReset, ServiceError> {
    let user = check_user(state, actor, id, Action::ResetUserPassword).await?;
    if user.status != UserStatus::Active {
        return Err(ServiceError::Conflict(
            "this user is deactivated: reactivate them first, then reset their password".into(),
        ));
    }
    let now = state.now();
    let code = random_id(RESET_CODE_PREFIX, RESET_CODE_LEN);
    let reset = PasswordReset {
        code_hash: reset_code_hash(&code),
        user_id: user.id.clone(),
        created_at: now,
        expires_at: now + RESET_CODE_TTL_SECS,
    };
    state.store.create_password_reset(&reset, &service::guard(state, actor, false)).await?;
    let principal = actor.principal();
    tracing::info!(user_id = id, actor = %principal, "password reset code issued");
    record(
        state,
        actor,
        AuditKind::UserPasswordReset,
        &user.org,
        None,
        serde_json::json!({"user_id": user.id, "email": user.email}),
    );
    Ok(dto::PasswordReset {
        user: user_view(&user),
        code,
        reset_url: reset_url(state),
        expires_at: instant(reset.expires_at),
    })
}

/// A signed-in user changes their own password, proving the current one. Their other
/// sessions end; `keep_session` (the session asking, by its id hash) stays.
pub async fn change_own_password(
    state: &AppState,
    actor: &Actor,
    current: Password,
    new: Password,
    keep_session: &str,
) -> Result<(), ServiceError> {
    let Actor::User { id, .. } = actor else {
        authorize(actor, Action::ChangeOwnPassword, &Target::Missing, "user")?;
        return Err(user_not_found());
    };
    let user = check_user(state, actor, id, Action::ChangeOwnPassword).await?;
    if !verify_password(user.password_hash.clone(), current).await {
        return Err(ServiceError::invalid("current_password", "the current password is not right"));
    }
    validate_password(&new)?;
    let hash = hash_password(new).await?;
    state
        .store
        .set_user_password(
            &user.id,
            &hash,
            Some(keep_session),
            &service::guard(state, actor, false),
        )
        .await?;
    tracing::info!(user_id = %user.id, "portal user changed their password");
    record(
        state,
        actor,
        AuditKind::UserPasswordChanged,
        &user.org,
        None,
        serde_json::json!({"user_id": user.id, "by": "user"}),
    );
    Ok(())
}

fn invalid_code() -> ServiceError {
    ServiceError::invalid(
        "code",
        "this code is not valid: it may be mistyped, used already, replaced by a newer one or \
         expired; ask an administrator of your organization for a new one",
    )
}

/// Whether a reset code is pending, for the page that asks for the new password.
pub async fn check_reset_code(state: &AppState, code: &str) -> Result<PortalUser, ServiceError> {
    let code = code.trim();
    if !code.starts_with(RESET_CODE_PREFIX) || code.len() > 64 {
        return Err(invalid_code());
    }
    state
        .store
        .find_password_reset(&reset_code_hash(code), state.now())
        .await?
        .ok_or_else(invalid_code)
}

/// Sets a new password with a reset code, once. Every session of the user ends.
pub async fn redeem_reset_code(
    state: &AppState,
    code: &str,
    new: Password,
) -> Result<PortalUser, ServiceError> {
    check_reset_code(state, code).await?;
    validate_password(&new)?;
    let hash = hash_password(new).await?;
    let user = match state
        .store
        .redeem_password_reset(&reset_code_hash(code.trim()), &hash, state.now())
        .await
    {
        Ok(u) => u,
        // Used or replaced between the check and now.
        Err(StoreError::NotFound(_)) => return Err(invalid_code()),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(user_id = %user.id, "portal user set a password with a reset code");
    let actor = actor_for(&user);
    record(
        state,
        &actor,
        AuditKind::UserPasswordChanged,
        &user.org,
        None,
        serde_json::json!({"user_id": user.id, "by": "reset_code"}),
    );
    Ok(user)
}

pub async fn list_users(
    state: &AppState,
    actor: &Actor,
    org: Option<String>,
) -> Result<Vec<dto::User>, ServiceError> {
    let org = service::list_scope(actor, Action::ListUsers, org)?;
    let users = state.store.list_users(org.as_deref()).await?;
    Ok(users.iter().map(user_view).collect())
}

pub async fn deactivate_user(
    state: &AppState,
    actor: &Actor,
    id: &str,
) -> Result<dto::User, ServiceError> {
    let user = check_user(state, actor, id, Action::DeactivateUser).await?;
    if user.status != UserStatus::Deactivated {
        state
            .store
            .set_user_status(id, UserStatus::Deactivated, &service::guard(state, actor, false))
            .await?;
        let principal = actor.principal();
        tracing::info!(user_id = id, actor = %principal, "portal user deactivated");
        record(
            state,
            actor,
            AuditKind::UserDeactivated,
            &user.org,
            None,
            serde_json::json!({"user_id": user.id, "email": user.email}),
        );
    }
    let updated = state.store.get_user(id).await?.ok_or_else(user_not_found)?;
    Ok(user_view(&updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hash_is_argon2id_and_verifies_only_the_same_password() {
        let pw = Password::new("correct horse battery");
        let hash = hash_password_blocking(&pw).unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password_blocking(&hash, &pw));
        assert!(!verify_password_blocking(&hash, &Password::new("correct horse battery!")));
        assert!(!verify_password_blocking("not a hash", &pw));
        assert_ne!(hash, hash_password_blocking(&pw).unwrap(), "salted");
        assert_eq!(format!("{pw:?}"), "Password(<redacted>)");
    }

    #[test]
    fn emails_are_checked_for_their_shape() {
        assert_eq!(validate_email("  Ada@Example.com ").unwrap(), "Ada@Example.com");
        for bad in ["", "ada", "@example.com", "ada@", "a b@example.com", "a@b@c", "<a@b>"] {
            assert!(validate_email(bad).is_err(), "{bad}");
        }
        // Shows as `ada@example.com`: refused, naming the character.
        for bad in ["\u{202e}moc.elpmaxe@ada", "ada\u{200b}@example.com", "ada@example.com\u{feff}"]
        {
            let Err(ServiceError::Invalid { field, message }) = validate_email(bad) else {
                panic!("{bad:?} was taken");
            };
            assert_eq!(field, "email");
            assert!(message.contains("U+"), "{message}");
        }
    }
}
