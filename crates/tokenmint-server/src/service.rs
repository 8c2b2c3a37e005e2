//! Credential and organization operations, shared by the admin API, the portal and start-up.
//!
//! Each operation asks the one authorization policy ([`policy::may`]) before acting (and, for a
//! change, again with what the change would make of its target), validates its input, writes
//! through the store in one transaction that re-checks the actor and the platform's last admin
//! ([`Guard`]), then syncs this process's caches from the change log, so that the change is in
//! force for the very next token request.
//!
//! The layer knows no transport: an operation fails with a [`ServiceError`], which says what
//! went wrong in the domain's terms, never with a status code or a page. Its callers answer one
//! failure in their own ways (the admin API with a problem body, a portal form with a message
//! next to the field), and [`crate::error`] is the one place a `ServiceError` becomes an HTTP
//! answer; so nothing here imports `axum`, `http` or `crate::error`.

mod error;
pub mod policy;

pub use error::ServiceError;
pub use policy::{Action, Actor, AdminLoss, CredentialRef, Denied, Needs, SystemScopes, Target};

use crate::audit::{AuditEvent, AuditKind};
use crate::state::AppState;
use crate::sync::sync_now;
use time::OffsetDateTime;
use tokenmint_core::assertion::{self, ClientKey};
use tokenmint_core::credential::{
    Credential, CredentialStatus, DEFAULT_TOKEN_LIFETIME_SECS, MAX_AUDIENCE_LEN, MAX_AUDIENCES,
    MAX_LIVE_SECRETS, MAX_NAME_LEN, MIN_TOKEN_LIFETIME_SECS, RevocationCutoff,
};
use tokenmint_core::ids::random_id;
use tokenmint_core::scope::Permissions;
use tokenmint_core::{ClientId, ClientSecret, CustomClaims, OrgSlug, StoredSecret, UnixTime};
use tokenmint_proto::admin as dto;
use tokenmint_proto::feed::Revocation;
use tokenmint_store::{
    CredentialFilter, Guard, NewRevocation, Organization, OrganizationRevocation,
    OrganizationUpdate, Refusal, Rotation, StoreError,
};

/// Default overlap of a rotation: the old secret keeps working for a day.
pub const DEFAULT_ROTATION_OVERLAP_SECS: u64 = 86_400;
/// Longest overlap or expiry accepted (ten years).
pub const MAX_DURATION_SECS: u64 = tokenmint_proto::limits::DURATION_MAX_SECS;

/// Rotations of one credential less than this far apart are refused: a concurrent second
/// rotation would end (or cut short) the secret the first one just handed out.
pub const ROTATION_SETTLE_SECS: i64 = 5;

/// Asks the policy, and turns a refusal into a [`ServiceError`]. `what` names the target's kind
/// for "not found".
pub fn authorize(
    actor: &Actor,
    action: Action,
    target: &Target<'_>,
    what: &'static str,
) -> Result<(), ServiceError> {
    policy::may(actor, action, target).map_err(|d| ServiceError::denied(d, what))
}

/// Which organization a list covers: the one asked for, or, when none is, every organization
/// if the policy lets the actor list across them, else the actor's own.
pub fn list_scope(
    actor: &Actor,
    action: Action,
    org: Option<String>,
) -> Result<Option<String>, ServiceError> {
    match org {
        Some(o) => {
            authorize(actor, action, &Target::Org(&o), "organization")?;
            Ok(Some(o))
        }
        None if policy::may(actor, action, &Target::Platform).is_ok() => Ok(None),
        None => {
            let own = actor.org().to_owned();
            authorize(actor, action, &Target::Org(&own), "organization")?;
            Ok(Some(own))
        }
    }
}

/// What the store re-checks when the actor's write commits. With `keep_platform_admin`, the
/// write must not bring forward the moment the platform is left without a working admin
/// credential for the admin API, whose audience is the issuer.
pub fn guard(state: &AppState, actor: &Actor, keep_platform_admin: bool) -> Guard {
    Guard {
        actor: actor.guard_actor(),
        now: state.now(),
        keep_platform_admin: keep_platform_admin.then(|| state.issuer.clone()),
    }
}

/// A credential as the policy sees it.
pub fn credential_ref(c: &Credential) -> CredentialRef<'_> {
    CredentialRef {
        org: &c.org,
        client_id: Some(c.client_id.as_str()),
        system_scopes: c.permissions.has_system_scopes(),
        loses_admin: None,
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
        claims: c.claims.to_map(),
        public_keys: c.public_keys.iter().map(key_view).collect(),
    }
}

/// A registered public key as the admin API shows it.
pub fn key_view(k: &ClientKey) -> dto::PublicKeyInfo {
    dto::PublicKeyInfo {
        kid: k.kid.clone(),
        kty: k.kty().to_owned(),
        crv: k.crv().map(str::to_owned),
        alg: k.alg.clone(),
        thumbprint: k.thumbprint(),
    }
}

/// Reads uploaded keys (each a PEM public key, a JWK or a JWK Set), each with the number of
/// the upload it came from (1-based), for the messages.
fn parse_keys(uploads: &[String]) -> Result<Vec<(usize, ClientKey)>, ServiceError> {
    let mut parsed = Vec::new();
    for (i, text) in uploads.iter().enumerate() {
        let keys = assertion::parse_public_keys(text)
            .map_err(|e| ServiceError::invalid("public_keys", format!("key {}: {e}", i + 1)))?;
        parsed.extend(keys.into_iter().map(|k| (i + 1, k)));
    }
    Ok(parsed)
}

/// Adds parsed keys to `keys`, refusing a duplicate (by thumbprint or kid) and more than
/// [`assertion::MAX_KEYS`].
fn add_keys(keys: &mut Vec<ClientKey>, parsed: &[(usize, ClientKey)]) -> Result<(), ServiceError> {
    for (upload, k) in parsed {
        let thumbprint = k.thumbprint();
        if keys
            .iter()
            .any(|have| have.thumbprint() == thumbprint || (k.kid.is_some() && have.kid == k.kid))
        {
            return Err(ServiceError::invalid(
                "public_keys",
                format!(
                    "key {upload}: a key with this {} is already registered",
                    if k.kid.is_some() { "kid or thumbprint" } else { "thumbprint" }
                ),
            ));
        }
        keys.push(k.clone());
    }
    if keys.len() > assertion::MAX_KEYS {
        return Err(ServiceError::invalid(
            "public_keys",
            format!("a credential holds at most {} public keys", assertion::MAX_KEYS),
        ));
    }
    Ok(())
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
        claims: o.claims.to_map(),
    }
}

/// A name is judged as given (its length, its characters), then trimmed: the bound the
/// OpenAPI document states (`maxLength`, `pattern`) is this one exactly.
pub(crate) fn validate_name(name: &str) -> Result<String, ServiceError> {
    let too_long = name.chars().count() > MAX_NAME_LEN;
    if let Some(c) = tokenmint_core::ids::find_hidden_char(name) {
        return Err(ServiceError::invalid("name", hidden_char_message("the name", &c)));
    }
    let name = name.trim();
    if name.is_empty() || too_long {
        return Err(ServiceError::invalid(
            "name",
            format!("the name must be 1 to {MAX_NAME_LEN} characters, without control characters"),
        ));
    }
    Ok(name.to_owned())
}

/// Why text holding a [hidden character](tokenmint_core::ids::is_hidden_char) is refused: it
/// names the character (`U+202E`), which the sender may not see.
pub(crate) fn hidden_char_message(what: &str, c: &str) -> String {
    format!(
        "{what} holds the character {c}: a control character, a line separator or an invisible \
         formatting character (such as a bidirectional override or a zero-width space), which \
         could make it display as other text; type it without that character"
    )
}

pub(crate) fn validate_audiences(list: &[String]) -> Result<Vec<String>, ServiceError> {
    if list.len() > MAX_AUDIENCES {
        return Err(ServiceError::invalid(
            "audiences",
            format!("at most {MAX_AUDIENCES} audiences"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for a in list {
        if let Some(c) = tokenmint_core::ids::find_hidden_char(a) {
            let shown: String =
                a.chars().filter(|&c| !tokenmint_core::ids::is_hidden_char(c)).take(60).collect();
            return Err(ServiceError::invalid(
                "audiences",
                hidden_char_message(&format!("audience '{shown}'"), &c),
            ));
        }
        // Judged as given for the length, then trimmed (as the document's pattern says).
        let too_long = a.chars().count() > MAX_AUDIENCE_LEN;
        let a = a.trim();
        if a.is_empty() || too_long || a.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ServiceError::invalid(
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

fn parse_claims(field: &'static str, claims: &dto::Claims) -> Result<CustomClaims, ServiceError> {
    CustomClaims::parse(claims.clone()).map_err(|e| ServiceError::invalid(field, e.to_string()))
}

/// What a claims edit is about, for the policy: the credential, and whether every claim it
/// sets or removes is one the platform lets organization admins edit
/// (`serve --org-editable-claim`).
pub fn claims_target<'a>(
    state: &AppState,
    credential: CredentialRef<'a>,
    set: Option<&dto::Claims>,
    remove: Option<&[String]>,
) -> Target<'a> {
    let editable = &state.config.org_editable_claims;
    let mut names = set.into_iter().flat_map(|c| c.keys()).chain(remove.into_iter().flatten());
    let org_editable = names.all(|n| editable.iter().any(|e| e == n));
    Target::Claims { credential, org_editable }
}

/// Refuses an edit that both sets and removes one claim.
fn check_claims_edit(
    set: Option<&dto::Claims>,
    remove: Option<&[String]>,
) -> Result<(), ServiceError> {
    tokenmint_core::claims::check_edit(
        set.into_iter().flat_map(|c| c.keys()),
        remove.unwrap_or_default(),
    )
    .map_err(|e| ServiceError::invalid("remove_claims", e.to_string()))
}

/// Applies a claims edit (`set`, then `remove`) to `current`.
fn edit_claims(
    current: &CustomClaims,
    set: Option<&dto::Claims>,
    remove: Option<&[String]>,
) -> Result<CustomClaims, ServiceError> {
    let set = set.map(|c| parse_claims("claims", c)).transpose()?.unwrap_or_default();
    current
        .edited(&set, remove.unwrap_or_default())
        .map_err(|e| ServiceError::invalid("claims", e.to_string()))
}

pub(crate) fn validate_lifetime(state: &AppState, secs: u32) -> Result<u32, ServiceError> {
    let max = state.config.max_token_lifetime;
    if !(MIN_TOKEN_LIFETIME_SECS..=max).contains(&secs) {
        return Err(ServiceError::invalid(
            "token_lifetime_seconds",
            format!(
                "the token lifetime must be between {MIN_TOKEN_LIFETIME_SECS} and {max} seconds"
            ),
        ));
    }
    Ok(secs)
}

fn validate_expiry(
    now: UnixTime,
    secs: u64,
    field: &'static str,
) -> Result<UnixTime, ServiceError> {
    if secs == 0 || secs > MAX_DURATION_SECS {
        return Err(ServiceError::invalid(
            field,
            format!("must be between 1 and {MAX_DURATION_SECS} seconds"),
        ));
    }
    Ok(now + secs as i64)
}

fn validate_rate_limit(n: u32) -> Result<u32, ServiceError> {
    use tokenmint_proto::limits::RATE_LIMIT_MAX_PER_MINUTE;
    if n > RATE_LIMIT_MAX_PER_MINUTE {
        return Err(ServiceError::invalid(
            "rate_limit_per_minute",
            format!("at most {RATE_LIMIT_MAX_PER_MINUTE} per minute (0 turns the limit off)"),
        ));
    }
    Ok(n)
}

/// Parses permissions, system scopes included: whether the actor may grant those is the
/// policy's decision, made on the result.
fn parse_permissions(state: &AppState, items: &[String]) -> Result<Permissions, ServiceError> {
    Permissions::parse(items, &state.config.product_areas, true)
        .map_err(|e| ServiceError::invalid("permissions", e.to_string()))
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
) -> Result<dto::CreatedCredential, ServiceError> {
    create_credential_with_keys(state, actor, input.into()).await
}

/// Creates a credential, with public keys for `private_key_jwt` when given, and without a
/// secret when asked (it must then have keys, or nothing could authenticate as it).
pub async fn create_credential_with_keys(
    state: &AppState,
    actor: &Actor,
    new: dto::NewCredential,
) -> Result<dto::CreatedCredential, ServiceError> {
    let dto::NewCredential { credential: input, public_keys: uploads, no_secret } = new;
    let slug = OrgSlug::parse(input.org.trim())
        .map_err(|e| ServiceError::invalid("org", e.to_string()))?;
    let permissions = parse_permissions(state, &input.permissions)?;
    let target = CredentialRef {
        org: slug.as_str(),
        client_id: None,
        system_scopes: permissions.has_system_scopes(),
        loses_admin: None,
    };
    authorize(actor, Action::CreateCredential, &Target::Credential(target), "organization")?;
    if input.claims.as_ref().is_some_and(|c| !c.is_empty()) {
        let claims = claims_target(state, target, input.claims.as_ref(), None);
        authorize(actor, Action::EditClaims, &claims, "organization")?;
    }
    let now = state.now();
    let name = validate_name(&input.name)?;
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
    let claims = input.claims.as_ref().map(|c| parse_claims("claims", c)).transpose()?;
    let claims = claims.unwrap_or_default();
    let mut public_keys = Vec::new();
    add_keys(&mut public_keys, &parse_keys(&uploads)?)?;
    if no_secret && public_keys.is_empty() {
        return Err(ServiceError::invalid(
            "no_secret",
            "a credential without a secret needs at least one public key (public_keys)",
        ));
    }
    let (secret, stored) = if no_secret {
        (None, None)
    } else {
        let (secret, stored) = new_secret(now, &state.hasher);
        (Some(secret), Some(stored))
    };
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
        secrets: stored.into_iter().collect(),
        claims,
        org_claims: CustomClaims::default(),
        public_keys,
        revision: 1,
    };
    let org = Organization {
        slug: slug.to_string(),
        name: slug.to_string(),
        created_at: now,
        claims: CustomClaims::default(),
    };
    // Whoever may create organizations may name a new one here; anyone else needs it to exist.
    let may_create_org = policy::may(actor, Action::CreateOrganization, &Target::Platform).is_ok();
    let org_arg = may_create_org.then_some(&org);
    let organization_created = state
        .store
        .create_credential(&credential, org_arg, &guard(state, actor, false))
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => {
                ServiceError::invalid("org", format!("organization '{slug}' does not exist"))
            }
            other => other.into(),
        })?;
    after_write(state).await;
    let principal = actor.principal();
    tracing::info!(client_id = %credential.client_id, org = %credential.org, actor = %principal, "credential created");
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
            "claims": credential.claims.to_map(),
            "public_keys": credential.public_keys.iter().map(ClientKey::thumbprint).collect::<Vec<_>>(),
            "no_secret": no_secret,
        }),
    );
    Ok(dto::CreatedCredential {
        client_id: credential.client_id.to_string(),
        client_secret: secret.map(|s| s.expose().to_owned()).unwrap_or_default(),
        token_endpoint: state.token_endpoint.clone(),
        credential: view(&credential),
        organization_created,
    })
}

/// Loads a credential and asks the policy whether `actor` may do `action` to it. A missing one
/// is asked about too, so an actor who may not act on credentials at all is refused the same
/// way whether or not the id exists.
async fn load_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    action: Action,
) -> Result<Credential, ServiceError> {
    let found = if ClientId::parse(client_id).is_ok() {
        state.store.get_credential(client_id).await?
    } else {
        None
    };
    match found {
        Some(c) => {
            authorize(actor, action, &Target::Credential(credential_ref(&c)), "credential")?;
            Ok(c)
        }
        None => {
            authorize(actor, action, &Target::Missing, "credential")?;
            Err(ServiceError::not_found("credential"))
        }
    }
}

/// Asks the policy whether `actor` may do `action` to the credential, before a form about it is
/// read or shown.
pub async fn check_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    action: Action,
) -> Result<Credential, ServiceError> {
    load_credential(state, actor, client_id, action).await
}

/// Loads a credential the actor may read.
pub async fn get_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
) -> Result<Credential, ServiceError> {
    load_credential(state, actor, client_id, Action::ReadCredential).await
}

/// The page size asked for (`field`), or the default: one beyond the list's maximum, or 0, is
/// refused rather than cut down, as the OpenAPI document's `minimum` and `maximum` say.
pub fn page_size(
    field: &'static str,
    asked: Option<u32>,
    size: tokenmint_proto::limits::PageSize,
) -> Result<u32, ServiceError> {
    match asked {
        None => Ok(size.default),
        Some(n) if (1..=size.max).contains(&n) => Ok(n),
        Some(n) => Err(ServiceError::invalid(
            field,
            format!("{field} must be 1 to {} (default {}), not {n}", size.max, size.default),
        )),
    }
}

pub async fn list_credentials(
    state: &AppState,
    actor: &Actor,
    org: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
) -> Result<dto::Page<dto::Credential>, ServiceError> {
    let org = list_scope(actor, Action::ListCredentials, org)?;
    let limit = page_size("limit", limit, tokenmint_proto::limits::CREDENTIALS_PAGE)?;
    let filter = CredentialFilter { org, after: cursor, limit };
    let page = state.store.list_credentials(&filter).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            ServiceError::invalid("cursor", "the cursor is invalid; start again without it")
        }
        other => other.into(),
    })?;
    Ok(dto::Page { items: page.items.iter().map(view).collect(), next_cursor: page.next })
}

/// A change to make to a credential: it edits the copy it is given (at `now`, microseconds)
/// and returns the feed entry to append with it, if any.
type Change<'a> =
    dyn FnMut(&mut Credential, i64, u32) -> Result<Option<NewRevocation>, ServiceError> + Send + 'a;

/// Applies `change` to a fresh copy of the credential and stores it, retrying if another writer
/// got there first. The policy is asked about the credential as it is, then again about what
/// the change makes of it (a grant of a system scope, the loss of `tokenmint:admin`); the store
/// re-checks the actor and the platform's last admin when the write commits.
async fn modify(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    action: Action,
    change: &mut Change<'_>,
) -> Result<Credential, ServiceError> {
    for attempt in 0..3 {
        let current = load_credential(state, actor, client_id, action).await?;
        let now_micros = state.clock.now_micros();
        let mut next = current.clone();
        let revocation = change(&mut next, now_micros, state.config.max_token_lifetime)?;
        let after = CredentialRef {
            system_scopes: current.permissions.has_system_scopes()
                || next.permissions.has_system_scopes(),
            loses_admin: admin_loss(&current, &next, &state.issuer),
            ..credential_ref(&current)
        };
        authorize(actor, action, &Target::Credential(after), "credential")?;
        next.updated_at = now_micros.div_euclid(1_000_000);
        let guard = guard(state, actor, current.permissions.is_platform_admin());
        match state.store.update_credential(&next, revocation.as_ref(), &guard).await {
            Ok(()) => {
                after_write(state).await;
                return Ok(next);
            }
            Err(StoreError::Conflict(_)) if attempt < 2 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ServiceError::Conflict("the credential is being changed concurrently; retry".into()))
}

/// How a change takes an admin credential's use of the admin API away, or schedules its end.
fn admin_loss(current: &Credential, next: &Credential, issuer: &str) -> Option<AdminLoss> {
    if !current.permissions.is_platform_admin() {
        None
    } else if !next.permissions.is_platform_admin() {
        Some(AdminLoss::Scope)
    } else if current.reaches_audience(issuer) && !next.reaches_audience(issuer) {
        Some(AdminLoss::Audience)
    } else if next.expires_at.is_some_and(|n| current.expires_at.is_none_or(|c| n < c)) {
        Some(AdminLoss::Expiry)
    } else {
        None
    }
}

/// Whether `next` may do anything `current` could not: a scope or an audience taken away.
/// A credential without audiences gets tokens for the issuer, so giving it its first audience
/// takes the issuer away.
fn narrows(current: &Credential, next: &Credential) -> bool {
    let scopes = next.permissions.scopes();
    let lost_scope = current.permissions.scopes().iter().any(|s| !scopes.contains(s));
    let lost_audience = current.audiences.iter().any(|a| !next.audiences.contains(a))
        || (current.audiences.is_empty() && !next.audiences.is_empty());
    lost_scope || lost_audience
}

pub async fn update_credential(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::UpdateCredential,
) -> Result<dto::Credential, ServiceError> {
    // Refuse an actor who may not edit this credential before saying anything about the input.
    let current = load_credential(state, actor, client_id, Action::EditCredential).await?;
    if input.claims.is_some() || input.remove_claims.is_some() {
        let target = claims_target(
            state,
            credential_ref(&current),
            input.claims.as_ref(),
            input.remove_claims.as_deref(),
        );
        authorize(actor, Action::EditClaims, &target, "credential")?;
    }
    if input.expires_in_seconds.is_some() && input.never_expires == Some(true) {
        return Err(ServiceError::invalid(
            "never_expires",
            "give either expires_in_seconds or never_expires, not both",
        ));
    }
    if input.rate_limit_per_minute.is_some() && input.clear_rate_limit == Some(true) {
        return Err(ServiceError::invalid(
            "clear_rate_limit",
            "give either rate_limit_per_minute or clear_rate_limit, not both",
        ));
    }
    let name = input.name.as_deref().map(validate_name).transpose()?;
    let permissions =
        input.permissions.as_deref().map(|p| parse_permissions(state, p)).transpose()?;
    let audiences = input.audiences.as_deref().map(validate_audiences).transpose()?;
    let lifetime = input.token_lifetime_seconds.map(|l| validate_lifetime(state, l)).transpose()?;
    let rate_limit = input.rate_limit_per_minute.map(validate_rate_limit).transpose()?;
    if let Some(remove) = &input.remove_claims {
        for name in remove {
            tokenmint_core::claims::check_name(name)
                .map_err(|e| ServiceError::invalid("remove_claims", e.to_string()))?;
        }
    }
    check_claims_edit(input.claims.as_ref(), input.remove_claims.as_deref())?;
    // Checked on its own before the write, so that a refusal names the claims, not the edit.
    input.claims.as_ref().map(|c| parse_claims("claims", c)).transpose()?;
    let mut narrowed = false;
    let mut claims_changed = false;
    let c = modify(state, actor, client_id, Action::EditCredential, &mut |c, now_micros, max| {
        let before = c.clone();
        let now = now_micros.div_euclid(1_000_000);
        if let Some(n) = &name {
            c.name = n.clone();
        }
        if let Some(p) = &permissions {
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
        if input.claims.is_some() || input.remove_claims.is_some() {
            c.claims =
                edit_claims(&c.claims, input.claims.as_ref(), input.remove_claims.as_deref())?;
        }
        // A narrower grant is a revocation: tokens issued before it carry what was taken away,
        // so they go the way of a deactivation's, through the same feed entry. A wider grant
        // takes nothing away and revokes nothing. Any change of the claims is a revocation too:
        // older tokens state what is no longer true of the partner.
        narrowed = narrows(&before, c);
        claims_changed = before.claims != c.claims;
        Ok((narrowed || claims_changed).then(|| revoke_all(c, now_micros, max)))
    })
    .await?;
    let principal = actor.principal();
    tracing::info!(client_id, actor = %principal, narrowed, claims_changed, "credential updated");
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
            "claims": c.claims.to_map(),
            "tokens_revoked": narrowed || claims_changed,
        }),
    );
    Ok(view(&c))
}

/// Revokes every token of the credential issued up to `now_micros`, and publishes it.
fn revoke_all(c: &mut Credential, now_micros: i64, max_lifetime: u32) -> NewRevocation {
    let cutoff = RevocationCutoff::next(c.tokens_revoked_before, now_micros);
    c.tokens_revoked_before = Some(cutoff);
    NewRevocation {
        revocation: Revocation::Credential {
            client_id: c.client_id.to_string(),
            issued_before: cutoff.second(),
            issued_before_jti: Some(cutoff.jti_boundary()),
        },
        expires_at: cutoff.second() + 1 + i64::from(max_lifetime) + 60,
    }
}

pub async fn set_status(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    status: CredentialStatus,
) -> Result<dto::Credential, ServiceError> {
    let action = match status {
        CredentialStatus::Deactivated => Action::DeactivateCredential,
        CredentialStatus::Active => Action::ActivateCredential,
    };
    let c = modify(state, actor, client_id, action, &mut |c, now_micros, max| {
        if c.status == status {
            return Ok(None);
        }
        c.status = status;
        Ok(match status {
            CredentialStatus::Deactivated => Some(revoke_all(c, now_micros, max)),
            CredentialStatus::Active => None,
        })
    })
    .await?;
    let principal = actor.principal();
    tracing::info!(
        client_id,
        status = status.as_str(),
        actor = %principal,
        "credential status changed"
    );
    let kind = match status {
        CredentialStatus::Deactivated => AuditKind::CredentialDeactivated,
        CredentialStatus::Active => AuditKind::CredentialActivated,
    };
    record(state, actor, kind, &c.org, Some(client_id), serde_json::Value::Null);
    Ok(view(&c))
}

/// The first instant a cut-off leaves alone (RFC 3339 with microseconds).
fn after_cutoff(cutoff: Option<RevocationCutoff>) -> OffsetDateTime {
    let micros = cutoff.map_or(0, |c| c.micros().saturating_add(1));
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

pub async fn revoke_tokens(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
) -> Result<dto::TokensRevoked, ServiceError> {
    let c = modify(state, actor, client_id, Action::RevokeCredentialTokens, &mut |c, now, max| {
        Ok(Some(revoke_all(c, now, max)))
    })
    .await?;
    let principal = actor.principal();
    tracing::info!(client_id, actor = %principal, "all tokens of the credential revoked");
    let issued_before = after_cutoff(c.tokens_revoked_before);
    record(
        state,
        actor,
        AuditKind::TokensRevoked,
        &c.org,
        Some(client_id),
        serde_json::json!({
            "issued_before": c.tokens_revoked_before.map(|t| t.second() + 1),
            "cutoff_micros": c.tokens_revoked_before.map(RevocationCutoff::micros),
        }),
    );
    Ok(dto::TokensRevoked { client_id: client_id.to_owned(), issued_before })
}

pub async fn rotate_secret(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::RotateSecret,
) -> Result<dto::RotatedSecret, ServiceError> {
    rotate_secret_or_refusal(state, actor, client_id, input)
        .await?
        .map_err(|why| ServiceError::from(StoreError::Refused(why)))
}

/// [`rotate_secret`], with the store's refusal (a rotation moments ago, too many live secrets)
/// kept typed, for a caller that says in its own words what to do about it: the refusal's
/// text names the CLI's commands, which the portal offers as buttons.
pub async fn rotate_secret_or_refusal(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::RotateSecret,
) -> Result<Result<dto::RotatedSecret, Refusal>, ServiceError> {
    let c = load_credential(state, actor, client_id, Action::RotateSecret).await?;
    let overlap = input.overlap_seconds.unwrap_or(DEFAULT_ROTATION_OVERLAP_SECS);
    if overlap > MAX_DURATION_SECS {
        return Err(ServiceError::invalid(
            "overlap_seconds",
            format!("at most {MAX_DURATION_SECS} seconds"),
        ));
    }
    let now = state.now();
    let old_expire = now + overlap as i64;
    let (secret, stored) = new_secret(now, &state.hasher);
    let rotation = Rotation {
        secret: stored.clone(),
        expire_others_at: Some(old_expire),
        max_live: MAX_LIVE_SECRETS,
        settle_secs: ROTATION_SETTLE_SECS,
    };
    let guard = guard(state, actor, c.permissions.is_platform_admin());
    match state.store.add_secret(client_id, &rotation, &guard).await {
        Ok(()) => {}
        Err(StoreError::Refused(
            why @ (Refusal::RotatedMomentsAgo { .. } | Refusal::TooManyLiveSecrets { .. }),
        )) => return Ok(Err(why)),
        Err(e) => return Err(e.into()),
    }
    after_write(state).await;
    let principal = actor.principal();
    tracing::info!(
        client_id,
        overlap_seconds = overlap,
        actor = %principal,
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
    Ok(Ok(dto::RotatedSecret {
        client_id: client_id.to_owned(),
        client_secret: secret.expose().to_owned(),
        secret: secret_view(&stored),
        previous_secrets_expire_at: instant(old_expire),
    }))
}

pub async fn delete_secret(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    secret_id: &str,
) -> Result<(), ServiceError> {
    let c = load_credential(state, actor, client_id, Action::DeleteSecret).await?;
    let guard = guard(state, actor, c.permissions.is_platform_admin());
    state.store.delete_secret(client_id, secret_id, &guard).await?;
    after_write(state).await;
    let principal = actor.principal();
    tracing::info!(client_id, secret_id, actor = %principal, "secret deleted");
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

/// Registers more public keys on a credential. Nothing is revoked: a new key takes nothing
/// away.
pub async fn add_public_keys(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    input: dto::AddPublicKeys,
) -> Result<dto::Credential, ServiceError> {
    if input.keys.is_empty() {
        return Err(ServiceError::invalid("keys", "give at least one key"));
    }
    // Read once; checked against the credential's keys in the write, which authorizes first.
    let parsed = parse_keys(&input.keys)?;
    let c = modify(state, actor, client_id, Action::AddPublicKeys, &mut |c, _, _| {
        add_keys(&mut c.public_keys, &parsed)?;
        Ok(None)
    })
    .await?;
    let principal = actor.principal();
    tracing::info!(client_id, actor = %principal, "public keys registered");
    record(
        state,
        actor,
        AuditKind::CredentialUpdated,
        &c.org,
        Some(client_id),
        serde_json::json!({
            "public_keys": c.public_keys.iter().map(ClientKey::thumbprint).collect::<Vec<_>>(),
        }),
    );
    Ok(view(&c))
}

/// Removes a registered public key (by kid or thumbprint). As with deleting a secret, tokens
/// obtained with the key before stay valid until they expire (revoke them with
/// `revoke-tokens` when the key leaked): a key removed is a credential the partner no longer
/// presents, not a narrower grant. A credential without a secret keeps at least one key.
pub async fn remove_public_key(
    state: &AppState,
    actor: &Actor,
    client_id: &str,
    key_id: &str,
) -> Result<(), ServiceError> {
    let c = modify(state, actor, client_id, Action::RemovePublicKey, &mut |c, _, _| {
        let before = c.public_keys.len();
        c.public_keys.retain(|k| !k.is_named(key_id));
        if c.public_keys.len() == before {
            return Err(ServiceError::not_found("public key"));
        }
        if c.public_keys.is_empty() && c.secrets.is_empty() {
            return Err(ServiceError::Conflict(
                "this is the credential's last public key and it has no secret: nothing could \
                 authenticate as it; register another key first, or deactivate the credential"
                    .into(),
            ));
        }
        Ok(None)
    })
    .await?;
    let principal = actor.principal();
    tracing::info!(client_id, key_id, actor = %principal, "public key removed");
    record(
        state,
        actor,
        AuditKind::CredentialUpdated,
        &c.org,
        Some(client_id),
        serde_json::json!({"removed_public_key": key_id}),
    );
    Ok(())
}

pub async fn create_organization(
    state: &AppState,
    actor: &Actor,
    input: dto::CreateOrganization,
) -> Result<dto::Organization, ServiceError> {
    authorize(actor, Action::CreateOrganization, &Target::Platform, "organization")?;
    let slug = OrgSlug::parse(input.slug.trim())
        .map_err(|e| ServiceError::invalid("slug", e.to_string()))?;
    let name = match input.name.as_deref() {
        Some(n) => validate_name(n)?,
        None => slug.to_string(),
    };
    let org = Organization {
        slug: slug.to_string(),
        name,
        created_at: state.now(),
        claims: CustomClaims::default(),
    };
    state.store.create_organization(&org, &guard(state, actor, false)).await?;
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

pub async fn list_organizations(
    state: &AppState,
    actor: &Actor,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<dto::Page<dto::Organization>, ServiceError> {
    authorize(actor, Action::ListOrganizations, &Target::Platform, "organization")?;
    let limit = page_size("limit", limit, tokenmint_proto::limits::ORGANIZATIONS_PAGE)?;
    let page = state.store.list_organizations(cursor, limit).await?;
    Ok(dto::Page { items: page.items.iter().map(org_view).collect(), next_cursor: page.next })
}

pub async fn get_organization(
    state: &AppState,
    actor: &Actor,
    slug: &str,
) -> Result<dto::Organization, ServiceError> {
    match state.store.get_organization(slug).await? {
        Some(org) => {
            authorize(actor, Action::ReadOrganization, &Target::Org(&org.slug), "organization")?;
            Ok(org_view(&org))
        }
        None => {
            authorize(actor, Action::ReadOrganization, &Target::Missing, "organization")?;
            Err(ServiceError::not_found("organization"))
        }
    }
}

pub async fn update_organization(
    state: &AppState,
    actor: &Actor,
    slug: &str,
    input: dto::UpdateOrganization,
) -> Result<dto::Organization, ServiceError> {
    let current = match state.store.get_organization(slug).await? {
        Some(org) => {
            authorize(actor, Action::EditOrganization, &Target::Org(&org.slug), "organization")?;
            org
        }
        None => {
            authorize(actor, Action::EditOrganization, &Target::Missing, "organization")?;
            return Err(ServiceError::not_found("organization"));
        }
    };
    let name = input.name.as_deref().map(validate_name).transpose()?;
    if let Some(remove) = &input.remove_claims {
        for n in remove {
            tokenmint_core::claims::check_name(n)
                .map_err(|e| ServiceError::invalid("remove_claims", e.to_string()))?;
        }
    }
    check_claims_edit(input.claims.as_ref(), input.remove_claims.as_deref())?;
    let claims =
        edit_claims(&current.claims, input.claims.as_ref(), input.remove_claims.as_deref())?;
    let claims_changed = claims != current.claims;
    let now_micros = state.clock.now_micros();
    let now = now_micros.div_euclid(1_000_000);
    let update = OrganizationUpdate {
        slug: current.slug.clone(),
        name: name.unwrap_or_else(|| current.name.clone()),
        claims,
        at: now,
        // Every token of the organization's credentials states the old claims: revoke them
        // all, as a change of one credential's claims revokes its own.
        revoke: claims_changed.then_some(OrganizationRevocation {
            now_micros,
            max_token_lifetime_secs: state.config.max_token_lifetime,
        }),
    };
    let revoked = state.store.update_organization(&update, &guard(state, actor, false)).await?;
    after_write(state).await;
    let principal = actor.principal();
    tracing::info!(org = %update.slug, actor = %principal, claims_changed, revoked, "organization updated");
    record(
        state,
        actor,
        AuditKind::OrganizationUpdated,
        &update.slug,
        None,
        serde_json::json!({
            "name": update.name,
            "claims": update.claims.to_map(),
            "credentials_revoked": revoked,
        }),
    );
    let org = Organization {
        slug: update.slug,
        name: update.name,
        created_at: current.created_at,
        claims: update.claims,
    };
    Ok(org_view(&org))
}

/// Credentials of one organization (or of every one, for the platform) matching a search,
/// newest first, in pages: the portal's list.
pub async fn search_credentials(
    state: &AppState,
    actor: &Actor,
    org: Option<String>,
    search: CredentialSearchInput,
) -> Result<dto::Page<dto::Credential>, ServiceError> {
    let org = list_scope(actor, Action::ListCredentials, org)?;
    let text = search.text.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    if text.as_ref().is_some_and(|t| t.chars().count() > 200 || t.chars().any(char::is_control)) {
        return Err(ServiceError::invalid(
            "q",
            "search for at most 200 characters of a name or client ID, without control characters",
        ));
    }
    let filter = tokenmint_store::CredentialSearch {
        org,
        text,
        environment: search.environment,
        state: search.state,
        now: state.now(),
        after: search.after,
        limit: search.limit.clamp(1, 500),
    };
    let page = state.store.search_credentials(&filter).await.map_err(|e| match e {
        StoreError::InvalidCursor => ServiceError::invalid(
            "after",
            "the page link is invalid; start again from the first page",
        ),
        other => other.into(),
    })?;
    Ok(dto::Page { items: page.items.iter().map(view).collect(), next_cursor: page.next })
}

/// What [`search_credentials`] looks for (see [`tokenmint_store::CredentialSearch`]).
#[derive(Debug, Clone, Default)]
pub struct CredentialSearchInput {
    pub text: Option<String>,
    pub environment: Option<tokenmint_proto::Environment>,
    pub state: Option<tokenmint_store::CredentialState>,
    pub after: Option<String>,
    pub limit: u32,
}
