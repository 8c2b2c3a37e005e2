//! First start: checking the master key, creating the first signing key and the platform
//! admin credential. Used by `tokenmint init` and by `serve` on an empty database.

use crate::keyring::{KeyRingError, new_key_record};
use thiserror::Error;
use tokenmint_core::credential::{Credential, CredentialStatus, DEFAULT_TOKEN_LIFETIME_SECS};
use tokenmint_core::ids::random_id;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::Permissions;
use tokenmint_core::{
    ClientId, ClientSecret, Environment, MasterKey, SecretHasher, StoredSecret, UnixTime,
};
use tokenmint_proto::admin::CreatedCredential;
use tokenmint_proto::system_scopes;
use tokenmint_store::{Organization, Store, StoreError};

/// The organization the platform admin credentials belong to.
pub const PLATFORM_ORG: &str = "platform";
const META_MASTER_KEY_CHECK: &str = "master_key_check";
const META_INITIALIZED: &str = "initialized_at";

#[derive(Debug, Error)]
pub enum BootstrapError {
    #[error(
        "the master key does not match the one this database was created with; give the original with \
         --master-key-file or TOKENMINT_MASTER_KEY"
    )]
    WrongMasterKey,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Keys(#[from] KeyRingError),
}

/// Records the master key's check value on first use, and refuses a different key after.
pub async fn check_master_key(store: &dyn Store, master: &MasterKey) -> Result<(), BootstrapError> {
    let check = master.check_value();
    if store.put_meta_if_absent(META_MASTER_KEY_CHECK, &check).await? {
        return Ok(());
    }
    match store.get_meta(META_MASTER_KEY_CHECK).await? {
        Some(stored) if stored == check => Ok(()),
        _ => Err(BootstrapError::WrongMasterKey),
    }
}

/// Creates the first signing key if there is none; returns whether one was created.
pub async fn ensure_signing_key(
    store: &dyn Store,
    master: &MasterKey,
    alg: SigningAlgorithm,
    now: UnixTime,
) -> Result<bool, BootstrapError> {
    if !store.list_keys().await?.is_empty() {
        return Ok(false);
    }
    let master = master.clone();
    let record = tokio::task::spawn_blocking(move || new_key_record(&master, alg, now, now))
        .await
        .map_err(|e| StoreError::Backend(e.to_string()))??;
    // Conditional on nothing pending: two instances starting at once create one key between them
    // at most per instant, and either key works.
    Ok(store.insert_key(&record, Some(now), &tokenmint_store::Guard::system(now)).await?)
}

/// Whether `serve` has already initialised this database.
pub async fn is_initialized(store: &dyn Store) -> Result<bool, BootstrapError> {
    Ok(store.get_meta(META_INITIALIZED).await?.is_some())
}

/// Creates a new platform-admin credential and returns it with its secret (shown once).
pub async fn create_admin_credential(
    store: &dyn Store,
    master: &MasterKey,
    token_endpoint: &str,
    now: UnixTime,
) -> Result<CreatedCredential, BootstrapError> {
    let hasher = SecretHasher::new(master);
    let secret = ClientSecret::generate();
    let stored = StoredSecret {
        id: random_id("sec_", 16),
        hash: hasher.hash(&secret),
        hint: secret.hint(),
        created_at: now,
        expires_at: None,
        last_used_at: None,
    };
    let credential = Credential {
        client_id: ClientId::generate(),
        name: "platform admin".to_owned(),
        org: PLATFORM_ORG.to_owned(),
        environment: Environment::Production,
        permissions: Permissions::from_stored(&[
            system_scopes::ADMIN,
            system_scopes::REVOCATIONS,
            system_scopes::INTROSPECT,
        ]),
        audiences: vec![],
        token_lifetime_secs: DEFAULT_TOKEN_LIFETIME_SECS,
        rate_limit_per_minute: None,
        status: CredentialStatus::Active,
        expires_at: None,
        created_at: now,
        updated_at: now,
        last_used_at: None,
        tokens_revoked_before: None,
        secrets: vec![stored],
        claims: tokenmint_core::CustomClaims::default(),
        org_claims: tokenmint_core::CustomClaims::default(),
        public_keys: Vec::new(),
        revision: 1,
    };
    let org = Organization {
        slug: PLATFORM_ORG.to_owned(),
        name: "Platform administrators".to_owned(),
        created_at: now,
        claims: tokenmint_core::CustomClaims::default(),
    };
    let organization_created = store
        .create_credential(&credential, Some(&org), &tokenmint_store::Guard::system(now))
        .await?;
    store.put_meta_if_absent(META_INITIALIZED, &now.to_string()).await?;
    Ok(CreatedCredential {
        client_id: credential.client_id.to_string(),
        client_secret: secret.expose().to_owned(),
        token_endpoint: token_endpoint.to_owned(),
        credential: crate::service::view(&credential),
        organization_created,
    })
}
