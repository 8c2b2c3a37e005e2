//! Keeping this process's caches in step with the store.
//!
//! Every write, whichever process makes it, appends to the store's change log. This module
//! reads the log from where it last stopped and applies each change: a credential is dropped
//! from the cache, the key set is rebuilt, new revocations are loaded (and pushed to feed
//! streams). The same path serves writes made here (called right after them) and writes made
//! elsewhere (polled), so there is one way caches learn of changes, not two.

use crate::keyring;
use crate::state::AppState;
use tokenmint_store::{CredentialFilter, Entity, StoreError};

const PAGE: u32 = 500;
/// The most changed credentials one sync reads back into a cache that keeps every credential
/// ([`keeps_every_credential`]); more (a bulk change) are loaded on their next request.
const RELOAD_AT_MOST: usize = 1000;
/// How many credentials the preload reads at a time. A page of full credentials (names,
/// secrets' records, claims as read) is freed once made into entries, but the memory it took
/// stays with the process: smaller pages keep that down (250 credentials are about 0.8 MB
/// read, against 3.5 MB for 1,000), at one more database round trip per 250.
const PRELOAD_PAGE: u32 = 250;

/// Whether this instance keeps every credential in its cache: over a database shared by
/// several instances (PostgreSQL), so that each serves every credential while the database is
/// unreachable ([`preload_credentials`]). With SQLite, one instance, the cache fills as
/// requests come.
pub fn keeps_every_credential(state: &AppState) -> bool {
    state.config.database_url.starts_with("postgres")
}

/// Reads and applies every change after the last one applied.
pub async fn sync_now(state: &AppState) -> Result<(), StoreError> {
    let mut last = state.sync_lock.lock().await;
    let mut keys_changed = false;
    let mut revocations_changed = false;
    let mut changed_credentials = Vec::new();
    loop {
        let changes = state.store.changes_after(*last, PAGE).await?;
        for c in &changes {
            match c.entity {
                // The credential's token-request limit keeps its state: an edit (even of the
                // limit itself) must not hand a client a fresh burst.
                Entity::Credential => {
                    state.credentials.invalidate(&c.key);
                    if changed_credentials.len() <= RELOAD_AT_MOST {
                        changed_credentials.push(c.key.clone());
                    }
                }
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
    if keeps_every_credential(state) && changed_credentials.len() <= RELOAD_AT_MOST {
        reload_credentials(state, changed_credentials).await;
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

/// Reads changed credentials back into the cache (they were invalidated just before, under
/// the sync lock, so no other invalidation comes between). A read that fails leaves the rest
/// to be loaded on their next request, as without this.
async fn reload_credentials(state: &AppState, mut ids: Vec<String>) {
    ids.sort_unstable();
    ids.dedup();
    let epoch = state.credentials.epoch();
    for id in ids {
        match state.store.get_credential(&id).await {
            Ok(Some(credential)) => {
                let entry = state.credentials.entry(credential);
                state.credentials.refresh(&id, Some(entry), epoch);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(error = %e, "changed credentials not read back; loaded on use");
                return;
            }
        }
    }
}

/// Loads every credential into the cache, a page at a time, up to `room` of them; how many.
///
/// For a database shared by several instances (PostgreSQL): a cache filled only by the
/// requests that reached this instance serves, while the database is unreachable, only the
/// credentials that happened to come here, and behind a round-robin balancer that is a third
/// of them with three instances. Loaded at start, every instance serves every credential
/// through an outage. A page read while a change invalidated entries is not kept (it may hold
/// what the change replaced); its credentials are loaded on their first request, as before.
pub async fn preload_credentials(state: &AppState, room: usize) -> Result<usize, StoreError> {
    let mut after = None;
    let mut loaded = 0;
    while loaded < room {
        let epoch = state.credentials.epoch();
        let filter = CredentialFilter { org: None, after: after.take(), limit: PRELOAD_PAGE };
        let page = state.store.list_credentials(&filter).await?;
        for credential in page.items {
            let id = credential.client_id.to_string();
            if state.credentials.peek(&id).is_none() {
                let entry = state.credentials.entry(credential);
                state.credentials.refresh(&id, Some(entry), epoch);
            }
            loaded += 1;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    Ok(loaded)
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
