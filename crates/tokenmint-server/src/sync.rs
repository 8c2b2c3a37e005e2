//! Keeping this process's caches in step with the store.
//!
//! Every write, whichever process makes it, appends to the store's change log. This module
//! reads the log from where it last stopped and applies each change: a credential is dropped
//! from the cache, the key set is rebuilt, new revocations are loaded (and pushed to feed
//! streams). The same path serves writes made here (called right after them) and writes made
//! elsewhere (polled), so there is one way caches learn of changes, not two.

use crate::keyring;
use crate::state::AppState;
use tokenmint_store::{Entity, StoreError};

const PAGE: u32 = 500;

/// Reads and applies every change after the last one applied.
pub async fn sync_now(state: &AppState) -> Result<(), StoreError> {
    let mut last = state.sync_lock.lock().await;
    let mut keys_changed = false;
    let mut revocations_changed = false;
    loop {
        let changes = state.store.changes_after(*last, PAGE).await?;
        for c in &changes {
            match c.entity {
                // The credential's token-request limit keeps its state: an edit (even of the
                // limit itself) must not hand a client a fresh burst.
                Entity::Credential => state.credentials.invalidate(&c.key),
                Entity::Key => keys_changed = true,
                Entity::Revocation => revocations_changed = true,
                Entity::Organization => {}
            }
            *last = c.seq;
        }
        if changes.len() < PAGE as usize {
            break;
        }
    }
    if revocations_changed {
        load_revocations(state).await?;
    }
    if keys_changed {
        reload_keys(state).await?;
    }
    state.mark_synced();
    Ok(())
}

/// Loads feed entries newer than the newest one held.
pub async fn load_revocations(state: &AppState) -> Result<(), StoreError> {
    loop {
        let after = state.revocations.latest_cursor();
        let entries = state.store.list_revocations(after, PAGE, state.now()).await?;
        state.revocations.apply(&entries);
        if entries.len() < PAGE as usize {
            return Ok(());
        }
    }
}

/// Rebuilds the key set from the store.
pub async fn reload_keys(state: &AppState) -> Result<(), StoreError> {
    let records = state.store.list_keys().await?;
    let mut decrypted = state.decrypted.lock().await;
    let set = keyring::build(
        &records,
        state.now(),
        i64::from(state.config.max_token_lifetime),
        &state.config.master_key,
        &mut decrypted,
    )
    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    state.keys.store(set);
    Ok(())
}
