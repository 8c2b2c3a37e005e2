//! The credential cache that keeps the token endpoint off the database.
//!
//! Entries are loaded on first use and then served from memory; unknown client ids are cached
//! too (as `None`), so a flood of made-up ids costs one lookup each, not one per request. Every
//! change to a credential invalidates its entry: at once when the change is made in this
//! process, through the change log when another process makes it.
//!
//! A lookup that misses reads the store while an invalidation may be racing it; the
//! `epoch` counter makes the loser of that race drop its (possibly stale) result instead of
//! caching it.

use quick_cache::sync::Cache;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokenmint_core::credential::Credential;
use tokenmint_store::{Store, StoreError};

/// A credential as the hot path wants it: with its full scope string computed once.
#[derive(Debug)]
pub struct CachedCredential {
    pub credential: Credential,
    /// Every scope the credential may request, space-separated: the default grant.
    pub all_scopes: String,
    /// The custom claims of its tokens: the organization's, overridden by its own.
    pub claims: tokenmint_core::CustomClaims,
    /// The same as JSON object members, serialised once here rather than per token.
    pub claims_json: String,
}

impl CachedCredential {
    pub fn new(mut credential: Credential) -> Self {
        // Entries live as long as the cache keeps them, up to one per credential: vectors
        // grown row by row would keep room for four secrets where one or two are used.
        credential.secrets.shrink_to_fit();
        credential.audiences.shrink_to_fit();
        let all_scopes = credential.permissions.scopes().join(" ");
        let claims = credential.token_claims();
        let claims_json = claims.json_members();
        Self { credential, all_scopes, claims, claims_json }
    }
}

type Entry = Option<Arc<CachedCredential>>;

pub struct CredentialCache {
    entries: Cache<String, Entry>,
    epoch: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl std::fmt::Debug for CredentialCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialCache").field("len", &self.entries.len()).finish_non_exhaustive()
    }
}

impl CredentialCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: Cache::new(capacity.max(16)),
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The credential with this id, from memory when possible.
    pub async fn get(&self, store: &dyn Store, client_id: &str) -> Result<Entry, StoreError> {
        if let Some(e) = self.entries.get(client_id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded =
            store.get_credential(client_id).await?.map(|c| Arc::new(CachedCredential::new(c)));
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.entries.insert(client_id.to_owned(), loaded.clone());
        }
        Ok(loaded)
    }

    /// A cached entry, counted as a hit, or `None` (not counted) when the store must be asked.
    pub fn cached(&self, client_id: &str) -> Option<Entry> {
        let e = self.entries.get(client_id)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(e)
    }

    /// Replaces an entry with what was just read from the store, unless an invalidation raced
    /// the read (`epoch` is [`Self::epoch`] from before it).
    pub fn refresh(&self, client_id: &str, loaded: Entry, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.entries.insert(client_id.to_owned(), loaded);
        }
    }

    /// The invalidation counter, read before a store read that [`Self::refresh`] will store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Returns a cached entry without touching the store.
    pub fn peek(&self, client_id: &str) -> Option<Entry> {
        self.entries.get(client_id)
    }

    pub fn invalidate(&self, client_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(client_id);
    }

    pub fn clear(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// (hits, misses) since start.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits.load(Ordering::Relaxed), self.misses.load(Ordering::Relaxed))
    }
}
