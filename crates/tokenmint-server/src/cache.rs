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
use tokenmint_core::credential::{AuthFailure, Credential, CredentialStatus, RevocationCutoff};
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
    /// For the token hook's request, which names the credential.
    name: Box<str>,
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

impl CachedSecret {
    fn is_live(&self, now: UnixTime) -> bool {
        self.expires_at.is_none_or(|t| now < t)
    }
}

impl CachedCredential {
    pub fn new(credential: Credential) -> Self {
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
            name: name.into(),
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
        self.expires_at.is_some_and(|t| now >= t)
    }

    /// [`Credential::authenticate`], on what is kept: every secret compared in constant time,
    /// then the status, the expiry and the matching secret's end, in that order. The matching
    /// secret's id is returned.
    pub fn authenticate(&self, presented: &SecretHash, now: UnixTime) -> Result<&str, AuthFailure> {
        let mut found: Option<&CachedSecret> = None;
        for s in &self.secrets {
            if s.hash.matches(presented) && found.is_none() {
                found = Some(s);
            }
        }
        let secret = found.ok_or(AuthFailure::WrongSecret)?;
        self.usable(now)?;
        if !secret.is_live(now) {
            return Err(AuthFailure::SecretExpired);
        }
        Ok(secret.id.as_str())
    }

    /// [`Credential::usable`]: the checks after a client proved it holds a registered key.
    pub fn usable(&self, now: UnixTime) -> Result<(), AuthFailure> {
        if self.status == CredentialStatus::Deactivated {
            return Err(AuthFailure::Deactivated);
        }
        if self.is_expired(now) {
            return Err(AuthFailure::CredentialExpired);
        }
        Ok(())
    }

    /// [`Credential::revokes_token`].
    pub fn revokes_token(&self, iat: UnixTime, jti: &str) -> bool {
        self.tokens_revoked_before.is_some_and(|c| c.covers(iat, jti))
    }

    /// [`Credential::new_token_id`].
    pub fn new_token_id(&self, now_micros: i64) -> String {
        let floor = self.tokens_revoked_before.map_or(i64::MIN, |c| c.micros().saturating_add(1));
        tokenmint_core::credential::token_id(now_micros.max(floor))
    }

    /// The credential as code that takes a whole [`Credential`] (the token hook) reads it:
    /// everything the entry keeps; the organization's claims are folded into `claims`, and
    /// what the entry does not keep (secrets, timestamps) is empty.
    pub fn to_credential(&self) -> Credential {
        Credential {
            client_id: self.client_id.clone(),
            name: self.name.to_string(),
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

pub struct CredentialCache {
    entries: Cache<Box<str>, Entry>,
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
            self.entries.insert(client_id.into(), loaded.clone());
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
            self.entries.insert(client_id.into(), loaded);
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
