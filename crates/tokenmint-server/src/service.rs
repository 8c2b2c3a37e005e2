//! Credential and organization operations, shared by the admin API, the portal and start-up.
//!
//! Each operation validates its input, writes through the store in one transaction, then
//! syncs this process's caches from the change log, so that the change is in force for the
//! very next token request.

use crate::audit::{AuditEvent, AuditKind};
use crate::error::ApiError;
use crate::state::AppState;
use crate::sync::sync_now;
use time::OffsetDateTime;
use tokenmint_core::credential::{
    Credential, CredentialStatus, DEFAULT_TOKEN_LIFETIME_SECS, MAX_AUDIENCE_LEN, MAX_AUDIENCES,
    MAX_NAME_LEN, MIN_TOKEN_LIFETIME_SECS,
};
use tokenmint_core::ids::random_id;
use tokenmint_core::scope::Permissions;
use tokenmint_core::{ClientId, ClientSecret, OrgSlug, StoredSecret, UnixTime};
use tokenmint_proto::admin as dto;
use tokenmint_proto::feed::Revocation;
use tokenmint_store::{CredentialFilter, NewRevocation, Organization, StoreError};

/// Default overlap of a rotation: the old secret keeps working for a day.
pub const DEFAULT_ROTATION_OVERLAP_SECS: u64 = 86_400;
/// Longest overlap or expiry accepted (ten years).
pub const MAX_DURATION_SECS: u64 = 10 * 366 * 86_400;

/// Who is acting, for authorization decisions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// The platform admin: every organization, system scopes.
    Platform { principal: String },
    /// An organization admin (portal user or org-scoped caller).
    OrgAdmin { principal: String, org: String },
    /// Read-only member of an organization.
    OrgViewer { principal: String, org: String },
}

impl Actor {
    pub fn principal(&self) -> &str {
        match self {
            Self::Platform { principal }
            | Self::OrgAdmin { principal, .. }
            | Self::OrgViewer { principal, .. } => principal,
        }
    }

    pub fn is_platform(&self) -> bool {
        matches!(self, Self::Platform { .. })
    }

    /// Whether the actor may read the organization's data.
    pub fn can_read(&self, org: &str) -> bool {
        match self {
            Self::Platform { .. } => true,
            Self::OrgAdmin { org: o, .. } | Self::OrgViewer { org: o, .. } => o == org,
        }
    }

    /// Whether the actor may change the organization's data.
    pub fn can_write(&self, org: &str) -> bool {
        match self {
            Self::Platform { .. } => true,
            Self::OrgAdmin { org: o, .. } => o == org,
            Self::OrgViewer { .. } => false,
        }
    }

    pub(crate) fn require_read(&self, org: &str) -> Result<(), ApiError> {
        // Another organization's credential is reported as missing, not as forbidden, so that
        // its existence is not revealed.
        if self.can_read(org) { Ok(()) } else { Err(ApiError::not_found("credential")) }
    }

    pub(crate) fn require_write(&self, org: &str) -> Result<(), ApiError> {
        self.require_read(org)?;
        if self.can_write(org) {
            Ok(())
        } else {
            Err(ApiError::Forbidden { scope: "organization admin".into() })
        }
    }
}

pub fn instant(t: UnixTime) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// The admin API's view of a credential.
pub fn view(c: &Credential) -> dto::Credential {
    dto::Credential {
        client_id: c.client_id.to_string(),
        name: c.name.clone(),
        org: c.org.clone(),
        environment: c.environment,
        permissions: c.permissions.to_strings(),
        scopes: c.permissions.scopes(),
        audiences: c.audiences.clone(),
        token_lifetime_seconds: c.token_lifetime_secs,
        rate_limit_per_minute: c.rate_limit_per_minute,
        status: c.status,
        expires_at: c.expires_at.map(instant),
        created_at: instant(c.created_at),
        updated_at: instant(c.updated_at),
        last_used_at: c.last_used_at.map(instant),
        secrets: c.secrets.iter().map(secret_view).collect(),
    }
}

pub fn secret_view(s: &StoredSecret) -> dto::SecretInfo {
    dto::SecretInfo {
        id: s.id.clone(),
        hint: s.hint.clone(),
        created_at: instant(s.created_at),
        expires_at: s.expires_at.map(instant),
        last_used_at: s.last_used_at.map(instant),
    }
}

pub fn org_view(o: &Organization) -> dto::Organization {
    dto::Organization {
        slug: o.slug.clone(),
        name: o.name.clone(),
        created_at: instant(o.created_at),
    }
}

fn validate_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control)
    {
        return Err(ApiError::validation(
            "name",
            format!("the name must be 1 to {MAX_NAME_LEN} characters, without control characters"),
        ));
    }
    Ok(name.to_owned())
}

fn validate_audiences(list: &[String]) -> Result<Vec<String>, ApiError> {
    if list.len() > MAX_AUDIENCES {
        return Err(ApiError::validation(
            "audiences",
            format!("at most {MAX_AUDIENCES} audiences"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        let a = a.trim();
        if a.is_empty()
            || a.len() > MAX_AUDIENCE_LEN
            || a.chars().any(|c| c.is_control() || c == ' ')
        {
            return Err(ApiError::validation(
                "audiences",
                format!(
                    "audience '{}' is invalid: use 1 to {MAX_AUDIENCE_LEN} characters without spaces",
                    a.chars().take(60).collect::<String>()
                ),
            ));
        }
        if !out.iter().any(|x| x == a) {
            out.push(a.to_owned());
        }
    }
    Ok(out)
}

fn validate_lifetime(state: &AppState, secs: u32) -> Result<u32, ApiError> {
    let max = state.config.max_token_lifetime;
    if !(MIN_TOKEN_LIFETIME_SECS..=max).contains(&secs) {
        return Err(ApiError::validation(
            "token_lifetime_seconds",
            format!(
                "the token lifetime must be between {MIN_TOKEN_LIFETIME_SECS} and {max} seconds"
            ),
        ));
    }
    Ok(secs)
}

fn validate_expiry(now: UnixTime, secs: u64, field: &'static str) -> Result<UnixTime, ApiError> {
    if secs == 0 || secs > MAX_DURATION_SECS {
        return Err(ApiError::validation(
            field,
            format!("must be between 1 and {MAX_DURATION_SECS} seconds"),
        ));
    }
    Ok(now + secs as i64)
}

fn validate_rate_limit(n: u32) -> Result<u32, ApiError> {
    if n > 1_000_000 {
        return Err(ApiError::validation(
            "rate_limit_per_minute",
            "at most 1000000 per minute (0 turns the limit off)",
        ));
    }
    Ok(n)
}

fn parse_permissions(
    state: &AppState,
    items: &[String],
    actor: &Actor,
) -> Result<Permissions, ApiError> {
    Permissions::parse(items, &state.config.product_areas, actor.is_platform())
        .map_err(|e| ApiError::validation("permissions", e.to_string()))
}

fn new_secret(
    now: UnixTime,
    hasher: &tokenmint_core::SecretHasher,
) -> (ClientSecret, StoredSecret) {
    let secret = ClientSecret::generate();
    let stored = StoredSecret {
        id: random_id("sec_", 16),
        hash: hasher.hash(&secret),
        hint: secret.hint(),
        created_at: now,
        expires_at: None,
        last_used_at: None,
    };
    (secret, stored)
}

/// Records an admin action in the audit trail, with the acting principal.
pub(crate) fn record(
    state: &AppState,
    actor: &Actor,
    kind: AuditKind,
    org: &str,
    client_id: Option<&str>,
    details: serde_json::Value,
) {
    let mut event = AuditEvent::new(kind).actor(actor.principal()).org(org).details(details);
    if let Some(c) = client_id {
        event = event.client(tokenmint_core::PresentedClientId::parse(c));
    }
    state.audit.record(event, state.now());
}

/// Syncs caches after a write; a failure here only delays propagation, the write stands.
pub(crate) async fn after_write(state: &AppState) {
    if let Err(e) = sync_now(state).await {
        tracing::warn!(error = %e, "could not refresh caches after a write; the periodic sync will");
    }
}

pub async fn create_credential(
    state: &AppState,
    actor: &Actor,
    input: dto::CreateCredential,
) -> Result<dto::CreatedCredential, ApiError> {
    let slug =
        OrgSlug::parse(input.org.trim()).map_err(|e| ApiError::validation("org", e.to_string()))?;
    actor
        .require_write(slug.as_str())
        .map_err(|_| ApiError::Forbidden { scope: "organization admin".into() })?;
    let now = state.now();
    let name = validate_name(&input.name)?;
    let permissions = parse_permissions(state, &input.permissions, actor)?;
    let audiences = validate_audiences(&input.audiences)?;
    let lifetime = match input.token_lifetime_seconds {
        Some(explicit) => validate_lifetime(state, explicit)?,
        None => DEFAULT_TOKEN_LIFETIME_SECS.min(state.config.max_token_lifetime),
    };
    let expires_at = input
        .expires_in_seconds
        .map(|s| validate_expiry(now, s, "expires_in_seconds"))
        .transpose()?;
    let rate_limit = input.rate_limit_per_minute.map(validate_rate_limit).transpose()?;
    let (secret, stored) = new_secret(now, &state.hasher);
    let credential = Credential {
        client_id: ClientId::generate(),
        name,
        org: slug.to_string(),
        environment: input.environment,
        permissions,
        audiences,
        token_lifetime_secs: lifetime,
        rate_limit_per_minute: rate_limit,
        status: CredentialStatus::Active,
        expires_at,
        created_at: now,
        updated_at: now,
        last_used_at: None,
        tokens_revoked_before: None,
        secrets: vec![stored],
        revision: 1,
    };
    let org = Organization { slug: slug.to_string(), name: slug.to_string(), created_at: now };
    // Org admins cannot create organizations; only the platform creates them on the fly.
    let org_arg = if actor.is_platform() { Some(&org) } else { None };
    state.store.create_credential(&credential, org_arg).await.map_err(|e| match e {
        StoreError::NotFound(_) => {
            ApiError::validation("org", format!("organization '{slug}' does not exist"))
        }
        other => other.into(),
    })?;
    after_write(state).await;
    tracing::info!(client_id = %credential.client_id, org = %credential.org, actor = actor.principal(), "credential created");
    record(
        state,
        actor,
        AuditKind::CredentialCreated,
        &credential.org,
        Some(credential.client_id.as_str()),
        serde_json::json!({
            "name": credential.name,
            "environment": credential.environment,
            "permissions": credential.permissions.to_strings(),
            "expires_at": credential.expires_at,
        }),
    );
    Ok(dto::CreatedCredential {
        client_id: credential.client_id.to_string(),
        client_secret: secret.expose().to_owned(),
        token_endpoint: state.token_endpoint.clone(),
        credential: view(&credential),
    })
}

/// Loads a credential the actor may read.
pub async fn get_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
) -> Result<Credential, ApiError> {
    let c = state
        .store
        .get_credential(client_id)
        .await?
        .ok_or_else(|| ApiError::not_found("credential"))?;
    actor.require_read(&c.org)?;
    Ok(c)
}

pub async fn list_credentials(
    state: &AppState,
    actor: &Actor,
    org: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
) -> Result<dto::Page<dto::Credential>, ApiError> {
    let org = match actor {
        Actor::Platform { .. } => org,
        Actor::OrgAdmin { org: own, .. } | Actor::OrgViewer { org: own, .. } => {
            if org.as_ref().is_some_and(|o| o != own) {
                return Ok(dto::Page { items: vec![], next_cursor: None });
            }
            Some(own.clone())
        }
    };
    let filter = CredentialFilter { org, after: cursor, limit: limit.unwrap_or(100).clamp(1, 500) };
    let page = state.store.list_credentials(&filter).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            ApiError::validation("cursor", "the cursor is invalid; start again without it")
        }
        other => other.into(),
    })?;
    Ok(dto::Page { items: page.items.iter().map(view).collect(), next_cursor: page.next })
}

/// Applies `change` to a fresh copy of the credential and stores it, retrying once if another
/// writer got there first.
async fn modify<F>(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    mut change: F,
) -> Result<Credential, ApiError>
where
    F: FnMut(&mut Credential, UnixTime) -> Result<Option<NewRevocation>, ApiError>,
{
    for attempt in 0..3 {
        let current = get_credential(state, actor, client_id).await?;
        actor.require_write(&current.org)?;
        let now = state.now();
        let mut next = current.clone();
        let revocation = change(&mut next, now)?;
        next.updated_at = now;
        match state.store.update_credential(&next, revocation.as_ref()).await {
            Ok(()) => {
                after_write(state).await;
                return Ok(next);
            }
            Err(StoreError::Conflict(_)) if attempt < 2 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the credential is being changed concurrently; retry".into()))
}

pub async fn update_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::UpdateCredential,
) -> Result<dto::Credential, ApiError> {
    if input.expires_in_seconds.is_some() && input.never_expires == Some(true) {
        return Err(ApiError::validation(
            "never_expires",
            "give either expires_in_seconds or never_expires, not both",
        ));
    }
    if input.rate_limit_per_minute.is_some() && input.clear_rate_limit == Some(true) {
        return Err(ApiError::validation(
            "clear_rate_limit",
            "give either rate_limit_per_minute or clear_rate_limit, not both",
        ));
    }
    let name = input.name.as_deref().map(validate_name).transpose()?;
    let permissions =
        input.permissions.as_deref().map(|p| parse_permissions(state, p, actor)).transpose()?;
    let audiences = input.audiences.as_deref().map(validate_audiences).transpose()?;
    let lifetime = input.token_lifetime_seconds.map(|l| validate_lifetime(state, l)).transpose()?;
    let rate_limit = input.rate_limit_per_minute.map(validate_rate_limit).transpose()?;
    let c = modify(state, actor, client_id, |c, now| {
        if let Some(n) = &name {
            c.name = n.clone();
        }
        if let Some(p) = &permissions {
            // An org admin must not strip system scopes a platform admin granted, nor add any.
            if !actor.is_platform() && c.permissions.has_system_scopes() {
                return Err(ApiError::Forbidden {
                    scope: tokenmint_proto::system_scopes::ADMIN.into(),
                });
            }
            c.permissions = p.clone();
        }
        if let Some(a) = &audiences {
            c.audiences = a.clone();
        }
        if let Some(l) = lifetime {
            c.token_lifetime_secs = l;
        }
        if let Some(secs) = input.expires_in_seconds {
            c.expires_at = Some(validate_expiry(now, secs, "expires_in_seconds")?);
        }
        if input.never_expires == Some(true) {
            c.expires_at = None;
        }
        if let Some(r) = rate_limit {
            c.rate_limit_per_minute = Some(r);
        }
        if input.clear_rate_limit == Some(true) {
            c.rate_limit_per_minute = None;
        }
        Ok(None)
    })
    .await?;
    tracing::info!(client_id, actor = actor.principal(), "credential updated");
    record(
        state,
        actor,
        AuditKind::CredentialUpdated,
        &c.org,
        Some(client_id),
        serde_json::json!({
            "name": c.name,
            "permissions": c.permissions.to_strings(),
            "audiences": c.audiences,
            "token_lifetime_seconds": c.token_lifetime_secs,
            "expires_at": c.expires_at,
            "rate_limit_per_minute": c.rate_limit_per_minute,
        }),
    );
    Ok(view(&c))
}

/// Marks every token of the credential issued up to now as revoked, and publishes it.
fn revoke_all(c: &mut Credential, now: UnixTime, max_lifetime: u32) -> NewRevocation {
    // `iat` has one-second resolution: revoke the current second too. New tokens are then
    // issued with an `iat` no earlier than this instant (see the token endpoint).
    let before = now + 1;
    c.tokens_revoked_before = Some(c.tokens_revoked_before.map_or(before, |t| t.max(before)));
    NewRevocation {
        revocation: Revocation::Credential {
            client_id: c.client_id.to_string(),
            issued_before: before,
        },
        expires_at: before + i64::from(max_lifetime) + 60,
    }
}

/// A caller acting on its own credential could lock itself (often the only platform admin)
/// out with one request; that needs another credential.
fn refuse_self_lockout(actor: &Actor, client_id: &str, what: &str) -> Result<(), ApiError> {
    if actor.principal().strip_prefix("credential:") == Some(client_id) {
        return Err(ApiError::Conflict(format!(
            "a credential cannot {what} itself: that would lock its caller out; \
             use another admin credential"
        )));
    }
    Ok(())
}

pub async fn set_status(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    status: CredentialStatus,
) -> Result<dto::Credential, ApiError> {
    if status == CredentialStatus::Deactivated {
        refuse_self_lockout(actor, client_id, "deactivate")?;
    }
    let max = state.config.max_token_lifetime;
    let c = modify(state, actor, client_id, |c, now| {
        if c.status == status {
            return Ok(None);
        }
        c.status = status;
        Ok(match status {
            CredentialStatus::Deactivated => Some(revoke_all(c, now, max)),
            CredentialStatus::Active => None,
        })
    })
    .await?;
    tracing::info!(
        client_id,
        status = status.as_str(),
        actor = actor.principal(),
        "credential status changed"
    );
    let kind = match status {
        CredentialStatus::Deactivated => AuditKind::CredentialDeactivated,
        CredentialStatus::Active => AuditKind::CredentialActivated,
    };
    record(state, actor, kind, &c.org, Some(client_id), serde_json::Value::Null);
    Ok(view(&c))
}

pub async fn revoke_tokens(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
) -> Result<dto::TokensRevoked, ApiError> {
    refuse_self_lockout(actor, client_id, "revoke the tokens of")?;
    let max = state.config.max_token_lifetime;
    let c = modify(state, actor, client_id, |c, now| Ok(Some(revoke_all(c, now, max)))).await?;
    tracing::info!(client_id, actor = actor.principal(), "all tokens of the credential revoked");
    record(
        state,
        actor,
        AuditKind::TokensRevoked,
        &c.org,
        Some(client_id),
        serde_json::json!({"issued_before": c.tokens_revoked_before}),
    );
    Ok(dto::TokensRevoked {
        client_id: client_id.to_owned(),
        issued_before: instant(c.tokens_revoked_before.unwrap_or(0)),
    })
}

pub async fn rotate_secret(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::RotateSecret,
) -> Result<dto::RotatedSecret, ApiError> {
    let c = get_credential(state, actor, client_id).await?;
    actor.require_write(&c.org)?;
    let overlap = input.overlap_seconds.unwrap_or(DEFAULT_ROTATION_OVERLAP_SECS);
    if overlap > MAX_DURATION_SECS {
        return Err(ApiError::validation(
            "overlap_seconds",
            format!("at most {MAX_DURATION_SECS} seconds"),
        ));
    }
    let now = state.now();
    let old_expire = now + overlap as i64;
    let (secret, stored) = new_secret(now, &state.hasher);
    state.store.add_secret(client_id, &stored, Some(old_expire), now).await?;
    after_write(state).await;
    tracing::info!(
        client_id,
        overlap_seconds = overlap,
        actor = actor.principal(),
        "secret rotated"
    );
    record(
        state,
        actor,
        AuditKind::SecretRotated,
        &c.org,
        Some(client_id),
        serde_json::json!({"secret_id": stored.id, "hint": stored.hint, "previous_secrets_expire_at": old_expire}),
    );
    Ok(dto::RotatedSecret {
        client_id: client_id.to_owned(),
        client_secret: secret.expose().to_owned(),
        secret: secret_view(&stored),
        previous_secrets_expire_at: instant(old_expire),
    })
}

pub async fn delete_secret(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    secret_id: &str,
) -> Result<(), ApiError> {
    refuse_self_lockout(actor, client_id, "delete a secret of")?;
    let c = get_credential(state, actor, client_id).await?;
    actor.require_write(&c.org)?;
    state.store.delete_secret(client_id, secret_id, state.now()).await?;
    after_write(state).await;
    tracing::info!(client_id, secret_id, actor = actor.principal(), "secret deleted");
    record(
        state,
        actor,
        AuditKind::SecretDeleted,
        &c.org,
        Some(client_id),
        serde_json::json!({"secret_id": secret_id}),
    );
    Ok(())
}

pub async fn create_organization(
    state: &AppState,
    actor: &Actor,
    input: dto::CreateOrganization,
) -> Result<dto::Organization, ApiError> {
    if !actor.is_platform() {
        return Err(ApiError::Forbidden { scope: tokenmint_proto::system_scopes::ADMIN.into() });
    }
    let slug = OrgSlug::parse(input.slug.trim())
        .map_err(|e| ApiError::validation("slug", e.to_string()))?;
    let name = match input.name.as_deref() {
        Some(n) => validate_name(n)
            .map_err(|_| ApiError::validation("name", "the name must be 1 to 200 characters"))?,
        None => slug.to_string(),
    };
    let org = Organization { slug: slug.to_string(), name, created_at: state.now() };
    state.store.create_organization(&org).await?;
    record(
        state,
        actor,
        AuditKind::OrganizationCreated,
        &org.slug,
        None,
        serde_json::json!({"name": org.name}),
    );
    Ok(org_view(&org))
}
