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
//!
//! An entry is compact ([`CachedCredential`]): with 100,000 credentials in use, the cache is
//! most of the server's memory.

use quick_cache::sync::Cache;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use tokenmint_core::assertion::ClientKey;
use tokenmint_core::credential::{
    AuthFailure, Credential, CredentialStatus, RevocationCutoff, standing,
};
use tokenmint_core::grant::Terms;
use tokenmint_core::{ClientId, Environment, Permissions, SecretHash, UnixTime};
use tokenmint_store::{Store, StoreError};

/// A credential as the token path wants it, and nothing more: one is kept for every credential
/// in use, so every byte counts a hundred thousand times.
///
/// What many credentials share (the organization, and the permissions with their scope string
/// and audiences) is shared, not copied; lists are boxed slices without spare capacity; what
/// the token path never reads (timestamps, secret hints, the organization's claims apart from
/// their effect) is not kept. Admin and portal paths read credentials from the store, never
/// from here.
#[derive(Debug)]
pub struct CachedCredential {
    pub client_id: ClientId,
    /// The owning organization's slug, shared by its credentials.
    pub org: Arc<str>,
    pub environment: Environment,
    pub status: CredentialStatus,
    pub token_lifetime_secs: u32,
    pub rate_limit_per_minute: Option<u32>,
    pub expires_at: Option<UnixTime>,
    /// Tokens issued at or before this are revoked.
    pub tokens_revoked_before: Option<RevocationCutoff>,
    /// Storage revision: what the entry was read at.
    pub revision: i64,
    /// Permissions, scopes and audiences, shared by every credential that has the same.
    grants: Arc<Grants>,
    secrets: Box<[CachedSecret]>,
    /// Public keys whose `private_key_jwt` assertions authenticate the credential.
    pub public_keys: Box<[ClientKey]>,
    /// For the token hook's request, which names the credential; kept only by a cache whose
    /// server has a hook ([`CredentialCache::without_names`]).
    name: Option<Box<str>>,
    /// The custom claims of its tokens: the organization's, overridden by its own.
    pub claims: tokenmint_core::CustomClaims,
    /// The same as JSON object members, serialised once here rather than per token.
    pub claims_json: String,
}

/// What credentials with the same permissions and audiences share.
#[derive(Debug)]
struct Grants {
    permissions: Permissions,
    /// Every scope the permissions allow, space-separated: the default grant.
    all_scopes: Box<str>,
    audiences: Box<[String]>,
}

/// A secret as authentication needs it: its hash, its end, and the id that usage is noted
/// under; never its hint or timestamps.
#[derive(Debug)]
struct CachedSecret {
    hash: SecretHash,
    expires_at: Option<UnixTime>,
    id: SecretId,
}

/// A secret's id: held in place when it is as short as generated ids are (`sec_` and 16
/// characters), which spares a heap block per secret.
#[derive(Debug)]
enum SecretId {
    Inline { len: u8, bytes: [u8; 22] },
    Boxed(Box<str>),
}

impl SecretId {
    fn new(id: String) -> Self {
        let mut bytes = [0u8; 22];
        match (bytes.get_mut(..id.len()), u8::try_from(id.len())) {
            (Some(slot), Ok(len)) => {
                slot.copy_from_slice(id.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Boxed(id.into_boxed_str()),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str`, so a `str`: the fallback is never taken.
            Self::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Self::Boxed(b) => b,
        }
    }
}

impl CachedCredential {
    pub fn new(credential: Credential) -> Self {
        Self::compact(credential, true)
    }

    /// The entry of a credential, with its name or without.
    pub fn compact(credential: Credential, keep_name: bool) -> Self {
        let claims = credential.token_claims();
        let claims_json = claims.json_members();
        let Credential {
            client_id,
            name,
            org,
            environment,
            permissions,
            audiences,
            token_lifetime_secs,
            rate_limit_per_minute,
            status,
            expires_at,
            tokens_revoked_before,
            secrets,
            public_keys,
            revision,
            ..
        } = credential;
        let secrets = secrets
            .into_iter()
            .map(|s| CachedSecret {
                hash: s.hash,
                expires_at: s.expires_at,
                id: SecretId::new(s.id),
            })
            .collect();
        let (org, grants) = shared().intern(org, permissions, audiences);
        Self {
            client_id,
            org,
            environment,
            status,
            token_lifetime_secs,
            rate_limit_per_minute,
            expires_at,
            tokens_revoked_before,
            revision,
            grants,
            secrets,
            public_keys: public_keys.into_boxed_slice(),
            name: keep_name.then(|| name.into_boxed_str()),
            claims,
            claims_json,
        }
    }

    pub fn permissions(&self) -> &Permissions {
        &self.grants.permissions
    }

    /// Every scope the credential may request, space-separated: the default grant.
    pub fn all_scopes(&self) -> &str {
        &self.grants.all_scopes
    }

    pub fn audiences(&self) -> &[String] {
        &self.grants.audiences
    }

    /// What a grant is decided on.
    pub fn terms(&self) -> Terms<'_> {
        Terms {
            permissions: &self.grants.permissions,
            audiences: &self.grants.audiences,
            token_lifetime_secs: self.token_lifetime_secs,
            expires_at: self.expires_at,
        }
    }

    pub fn is_expired(&self, now: UnixTime) -> bool {
        standing::is_expired(self.expires_at, now)
    }

    /// [`Credential::authenticate`], on what is kept, by the same rules; the matching secret's
    /// id is returned.
    pub fn authenticate(&self, presented: &SecretHash, now: UnixTime) -> Result<&str, AuthFailure> {
        standing::authenticate(
            &self.secrets,
            |s| (&s.hash, s.expires_at),
            presented,
            self.status,
            self.expires_at,
            now,
        )
        .map(|s| s.id.as_str())
    }

    /// [`Credential::usable`].
    pub fn usable(&self, now: UnixTime) -> Result<(), AuthFailure> {
        standing::usable(self.status, self.expires_at, now)
    }

    /// [`Credential::revokes_token`].
    pub fn revokes_token(&self, iat: UnixTime, jti: &str) -> bool {
        standing::revokes_token(self.tokens_revoked_before, iat, jti)
    }

    /// [`Credential::new_token_id`].
    pub fn new_token_id(&self, now_micros: i64) -> String {
        standing::new_token_id(self.tokens_revoked_before, now_micros)
    }

    /// The credential as code that takes a whole [`Credential`] (the token hook) reads it:
    /// everything the entry keeps; the organization's claims are folded into `claims`, and
    /// what the entry does not keep (secrets, timestamps, the name in a cache without names)
    /// is empty.
    pub fn to_credential(&self) -> Credential {
        Credential {
            client_id: self.client_id.clone(),
            name: self.name.as_deref().unwrap_or_default().to_owned(),
            org: self.org.to_string(),
            environment: self.environment,
            permissions: self.grants.permissions.clone(),
            audiences: self.grants.audiences.to_vec(),
            token_lifetime_secs: self.token_lifetime_secs,
            rate_limit_per_minute: self.rate_limit_per_minute,
            status: self.status,
            expires_at: self.expires_at,
            created_at: 0,
            updated_at: 0,
            last_used_at: None,
            tokens_revoked_before: self.tokens_revoked_before,
            secrets: Vec::new(),
            claims: self.claims.clone(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: self.public_keys.to_vec(),
            revision: self.revision,
        }
    }
}

/// The values cached credentials share, one of each: organization slugs, and permissions with
/// their audiences. Values no entry holds any more are dropped whenever the tables have
/// doubled since the last sweep, so the tables stay within twice what is in use.
#[derive(Default)]
struct Shared {
    orgs: HashMap<Box<str>, Arc<str>>,
    grants: HashMap<GrantsKey, Arc<Grants>>,
    swept_at: usize,
}

/// Permissions as text (their canonical form), and audiences.
type GrantsKey = (Box<str>, Box<[String]>);

fn shared() -> std::sync::MutexGuard<'static, Shared> {
    static SHARED: OnceLock<Mutex<Shared>> = OnceLock::new();
    SHARED.get_or_init(Mutex::default).lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn intern(
        &mut self,
        org: String,
        permissions: Permissions,
        audiences: Vec<String>,
    ) -> (Arc<str>, Arc<Grants>) {
        if self.orgs.len() + self.grants.len() >= (self.swept_at * 2).max(1024) {
            self.orgs.retain(|_, v| Arc::strong_count(v) > 1);
            self.grants.retain(|_, v| Arc::strong_count(v) > 1);
            self.swept_at = self.orgs.len() + self.grants.len();
        }
        let org = match self.orgs.get(org.as_str()) {
            Some(o) => o.clone(),
            None => {
                let o: Arc<str> = org.as_str().into();
                self.orgs.insert(org.into_boxed_str(), o.clone());
                o
            }
        };
        let audiences: Box<[String]> =
            audiences.into_iter().map(|a| a.into_boxed_str().into_string()).collect();
        let key = (permissions.to_string().into_boxed_str(), audiences);
        let grants = match self.grants.get(&key) {
            Some(g) => g.clone(),
            None => {
                let g = Arc::new(Grants {
                    all_scopes: permissions.scopes().join(" ").into_boxed_str(),
                    permissions,
                    audiences: key.1.clone(),
                });
                self.grants.insert(key, g.clone());
                g
            }
        };
        (org, grants)
    }
}

type Entry = Option<Arc<CachedCredential>>;

/// What the cache holds under a client id's hash: the credential, or the id that was looked up
/// and not found. Either names its client id, which a lookup compares with the one asked for.
#[derive(Clone)]
enum Slot {
    Known(Arc<CachedCredential>),
    Unknown(Arc<String>),
}

/// Entries are keyed by a hash of the client id under a key random to the process, not by the
/// id: an entry holds its id already, and a second copy as the key would cost a heap block per
/// entry. Two ids whose hashes collide (by chance only: the key is secret) take turns in one
/// slot, each lookup of the other one a miss; never does one id get the other's entry.
pub struct CredentialCache {
    entries: Cache<u64, Slot>,
    hasher: std::hash::RandomState,
    keep_names: bool,
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
            hasher: std::hash::RandomState::new(),
            keep_names: true,
            epoch: AtomicU64::new(0),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// A cache whose entries leave out the credentials' names, which only the token hook's
    /// request reads: for a server without a hook.
    pub fn without_names(self) -> Self {
        Self { keep_names: false, ..self }
    }

    /// The entry of a credential just read from the store, as this cache keeps them.
    pub fn entry(&self, credential: Credential) -> Arc<CachedCredential> {
        Arc::new(CachedCredential::compact(credential, self.keep_names))
    }

    /// The credential with this id, from memory when possible.
    pub async fn get(&self, store: &dyn Store, client_id: &str) -> Result<Entry, StoreError> {
        if let Some(e) = self.lookup(client_id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(e);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let epoch = self.epoch.load(Ordering::Acquire);
        let loaded = store.get_credential(client_id).await?.map(|c| self.entry(c));
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.insert(client_id, loaded.clone());
        }
        Ok(loaded)
    }

    /// A cached entry, counted as a hit, or `None` (not counted) when the store must be asked.
    pub fn cached(&self, client_id: &str) -> Option<Entry> {
        let e = self.lookup(client_id)?;
        self.hits.fetch_add(1, Ordering::Relaxed);
        Some(e)
    }

    /// Replaces an entry with what was just read from the store, unless an invalidation raced
    /// the read (`epoch` is [`Self::epoch`] from before it).
    pub fn refresh(&self, client_id: &str, loaded: Entry, epoch: u64) {
        if self.epoch.load(Ordering::Acquire) == epoch {
            self.insert(client_id, loaded);
        }
    }

    /// The invalidation counter, read before a store read that [`Self::refresh`] will store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Returns a cached entry without touching the store.
    pub fn peek(&self, client_id: &str) -> Option<Entry> {
        self.lookup(client_id)
    }

    fn key(&self, client_id: &str) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, client_id)
    }

    /// The entry of exactly this id, if cached.
    fn lookup(&self, client_id: &str) -> Option<Entry> {
        match self.entries.get(&self.key(client_id))? {
            Slot::Known(c) if c.client_id.as_str() == client_id => Some(Some(c)),
            Slot::Unknown(id) if id.as_str() == client_id => Some(None),
            _ => None,
        }
    }

    fn insert(&self, client_id: &str, entry: Entry) {
        let slot = match entry {
            Some(c) => Slot::Known(c),
            None => Slot::Unknown(Arc::new(client_id.to_owned())),
        };
        self.entries.insert(self.key(client_id), slot);
    }

    pub fn invalidate(&self, client_id: &str) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.entries.remove(&self.key(client_id));
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokenmint_core::StoredSecret;

    fn credential(id: &str, org: &str) -> Credential {
        Credential {
            client_id: ClientId::parse(id).unwrap(),
            name: "HR sync".into(),
            org: org.into(),
            environment: Environment::Sandbox,
            permissions: Permissions::from_stored(&["billing:write"]),
            audiences: vec!["https://api.example.com".into()],
            token_lifetime_secs: 600,
            rate_limit_per_minute: Some(5),
            status: CredentialStatus::Active,
            expires_at: Some(1000),
            created_at: 1,
            updated_at: 2,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: vec![
                StoredSecret {
                    id: "sec_0123456789abcdef".into(),
                    hash: SecretHash([1; 32]),
                    hint: "tms_a…".into(),
                    created_at: 1,
                    expires_at: Some(500),
                    last_used_at: None,
                },
                StoredSecret {
                    id: "a-secret-id-longer-than-any-generated-one".into(),
                    hash: SecretHash([2; 32]),
                    hint: "tms_b…".into(),
                    created_at: 1,
                    expires_at: None,
                    last_used_at: None,
                },
            ],
            claims: tokenmint_core::CustomClaims::default(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 3,
        }
    }

    #[test]
    fn an_entry_authenticates_and_grants_as_its_credential_does() {
        let c = credential("tmc_a", "acme");
        let e = CachedCredential::new(c.clone());
        for (hash, now) in
            [([1; 32], 499), ([1; 32], 500), ([2; 32], 999), ([3; 32], 1), ([2; 32], 1000)]
        {
            let h = SecretHash(hash);
            assert_eq!(e.authenticate(&h, now), c.authenticate(&h, now).map(|s| s.id.as_str()));
        }
        assert_eq!(e.all_scopes(), "billing:read billing:write");
        assert_eq!(e.permissions(), &c.permissions);
        assert_eq!(e.audiences(), c.audiences.as_slice());
        assert_eq!(e.revision, 3);
        let view = e.to_credential();
        assert_eq!((view.name.as_str(), view.org.as_str()), ("HR sync", "acme"));
    }

    #[test]
    fn the_name_the_token_hook_is_told_is_kept_unless_the_cache_keeps_no_names() {
        let c = credential("tmc_a", "acme");
        let named = CredentialCache::new(16).entry(c.clone()).to_credential();
        assert_eq!(named.name, "HR sync");
        let unnamed = CredentialCache::new(16).without_names().entry(c).to_credential();
        assert_eq!((unnamed.name.as_str(), unnamed.org.as_str()), ("", "acme"));
    }

    #[test]
    fn credentials_alike_share_their_org_and_grants() {
        let a = CachedCredential::new(credential("tmc_a", "acme"));
        let b = CachedCredential::new(credential("tmc_b", "acme"));
        assert!(Arc::ptr_eq(&a.org, &b.org));
        assert!(Arc::ptr_eq(&a.grants, &b.grants));
        let mut other = credential("tmc_c", "acme");
        other.audiences.push("https://other.example.com".into());
        assert!(!Arc::ptr_eq(&a.grants, &CachedCredential::new(other).grants));
    }

    #[test]
    fn a_lookup_answers_only_for_the_id_it_asks_for() {
        let cache = CredentialCache::new(100);
        let a = Arc::new(CachedCredential::new(credential("tmc_a", "acme")));
        cache.refresh("tmc_a", Some(a), cache.epoch());
        cache.refresh("tmc_unknown", None, cache.epoch());
        assert_eq!(cache.peek("tmc_a").unwrap().unwrap().client_id.as_str(), "tmc_a");
        assert!(cache.peek("tmc_unknown").unwrap().is_none(), "cached as unknown");
        assert!(cache.peek("tmc_b").is_none(), "not cached at all");
        cache.invalidate("tmc_a");
        assert!(cache.peek("tmc_a").is_none());
        assert_eq!(cache.len(), 1);
    }
}
