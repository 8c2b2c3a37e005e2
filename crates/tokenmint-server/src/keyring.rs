//! The signing keys in memory: decrypted once, swapped atomically when the set changes.
//!
//! The token endpoint loads the current [`KeySet`] with one atomic read (`ArcSwap`), so key
//! rotation never blocks or slows issuance. The set is rebuilt when the store's keys change and
//! whenever the lifecycle moves on (a pending key activates, a retired one is unpublished).

use arc_swap::ArcSwap;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use thiserror::Error;
use tokenmint_core::crypto::KeyEncryption;
use tokenmint_core::keys::{self, KeyError, KeyRecord, KeyStatus, PublicKey, SigningKey};
use tokenmint_core::{MasterKey, UnixTime};
use tokenmint_proto::admin::KeyState;
use tokenmint_proto::jwks::Jwks;

#[derive(Debug, Error)]
pub enum KeyRingError {
    #[error(
        "no signing key is stored; run `tokenmint init` or start `tokenmint serve` once against this database"
    )]
    NoKeys,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Seal(#[from] tokenmint_core::crypto::SealError),
}

/// Everything derived from the stored keys at one instant.
#[derive(Debug)]
pub struct KeySet {
    pub signing: Arc<SigningKey>,
    /// Public keys of every published key (pending, active, retired), for our own verification.
    pub public_keys: Vec<PublicKey>,
    /// The serialised JWKS document, served as is.
    pub jwks_json: Bytes,
    /// The active key as PEM.
    pub pem: Bytes,
    pub statuses: Vec<KeyStatus>,
    /// The algorithms of every published key.
    pub algorithms: Vec<&'static str>,
    /// When the active key started signing.
    pub active_since: UnixTime,
    /// The instant at which the lifecycle next changes, if any: rebuild then.
    pub next_transition: Option<UnixTime>,
}

/// Decrypted keys by kid, so a rebuild does not decrypt again.
#[derive(Debug, Default)]
pub struct Decrypted(HashMap<String, Arc<SigningKey>>);

impl Decrypted {
    fn get_or_open(
        &mut self,
        rec: &KeyRecord,
        enc: &KeyEncryption,
    ) -> Result<Arc<SigningKey>, KeyRingError> {
        if let Some(k) = self.0.get(&rec.kid) {
            return Ok(k.clone());
        }
        let pkcs8 =
            enc.open(&rec.sealed_private, &KeyRecord::associated_data(&rec.kid, rec.alg))?;
        let key = Arc::new(SigningKey::from_pkcs8(&rec.kid, rec.alg, &pkcs8)?);
        self.0.insert(rec.kid.clone(), key.clone());
        Ok(key)
    }
}

/// Builds the key set at `now` from the stored records.
pub fn build(
    records: &[KeyRecord],
    now: UnixTime,
    max_token_lifetime: i64,
    master: &MasterKey,
    cache: &mut Decrypted,
) -> Result<KeySet, KeyRingError> {
    let statuses = keys::lifecycle(records, now, max_token_lifetime);
    let enc = master.key_encryption();
    let by_kid: HashMap<&str, &KeyRecord> = records.iter().map(|r| (r.kid.as_str(), r)).collect();
    let mut signing = None;
    let mut published = Vec::with_capacity(statuses.len());
    for s in &statuses {
        let Some(rec) = by_kid.get(s.kid.as_str()) else { continue };
        let key = cache.get_or_open(rec, &enc)?;
        if s.state == KeyState::Active {
            signing = Some(key.clone());
        }
        published.push(key);
    }
    let signing = signing.ok_or(KeyRingError::NoKeys)?;
    let active_since = by_kid.get(signing.kid()).map_or(now, |r| r.activates_at.min(now));
    // Drop decrypted keys that are no longer published.
    cache.0.retain(|kid, _| statuses.iter().any(|s| &s.kid == kid));
    let jwks = Jwks { keys: published.iter().map(|k| k.jwk()).collect() };
    let jwks_json = Bytes::from(serde_json::to_vec(&jwks).unwrap_or_default());
    let pem = Bytes::from(signing.public_pem()?);
    let mut algorithms: Vec<&'static str> = published.iter().map(|k| k.alg().as_str()).collect();
    algorithms.sort_unstable();
    algorithms.dedup();
    let next_transition = records
        .iter()
        .filter(|r| r.withdrawn_at.is_none() && r.activates_at > now)
        .map(|r| r.activates_at)
        .chain(statuses.iter().filter_map(|s| s.unpublish_at))
        .min();
    Ok(KeySet {
        public_keys: published.iter().map(|k| k.public_key()).collect(),
        signing,
        jwks_json,
        pem,
        statuses,
        algorithms,
        active_since,
        next_transition,
    })
}

/// The current key set, readable without a lock.
#[derive(Debug)]
pub struct KeyRing {
    current: ArcSwap<KeySet>,
}

impl KeyRing {
    pub fn new(set: KeySet) -> Self {
        Self { current: ArcSwap::from_pointee(set) }
    }

    pub fn load(&self) -> arc_swap::Guard<Arc<KeySet>> {
        self.current.load()
    }

    pub fn load_full(&self) -> Arc<KeySet> {
        self.current.load_full()
    }

    pub fn store(&self, set: KeySet) {
        self.current.store(Arc::new(set));
    }
}

/// Generates a key and seals it for storage.
pub fn new_key_record(
    master: &MasterKey,
    alg: keys::SigningAlgorithm,
    now: UnixTime,
    activates_at: UnixTime,
) -> Result<KeyRecord, KeyRingError> {
    let generated = keys::GeneratedKey::generate(alg)?;
    // Keys are ordered by (activates_at, created_at, kid), in seconds; two keys made within the
    // same second (a rotation right after start-up, two rotations in a row) would otherwise be
    // ordered by their random ids, and the older one could stay the signing key. A kid that
    // starts with the creation time in microseconds sorts them as they were made, the same way
    // on every instance.
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let kid = format!("{micros:014x}{}", generated.kid);
    let sealed =
        master.key_encryption().seal(&generated.pkcs8, &KeyRecord::associated_data(&kid, alg))?;
    Ok(KeyRecord {
        kid,
        alg,
        sealed_private: sealed,
        created_at: now,
        activates_at,
        withdrawn_at: None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokenmint_core::keys::SigningAlgorithm;

    #[test]
    fn of_two_keys_made_in_the_same_second_the_later_one_signs() {
        let master = MasterKey::generate();
        for _ in 0..20 {
            let first = new_key_record(&master, SigningAlgorithm::ES256, 1_000, 1_000).unwrap();
            let second = new_key_record(&master, SigningAlgorithm::ES256, 1_000, 1_000).unwrap();
            let statuses = keys::lifecycle(&[second.clone(), first.clone()], 1_000, 3_600);
            let active = statuses.iter().find(|s| s.state == KeyState::Active).unwrap();
            assert_eq!(active.kid, second.kid);
        }
    }
}
