//! Revoked token ids in memory, for introspection and for authenticating admin requests, and
//! the broadcast that wakes revocation-feed streams.
//!
//! Credential-wide revocations live on the credential itself (`tokens_revoked_before`) and
//! withdrawn keys leave the key set, so only single-token revocations need a set here.

use std::collections::HashMap;
use std::sync::RwLock;
use tokenmint_core::UnixTime;
use tokenmint_proto::feed::{Revocation, RevocationEntry};
use tokio::sync::broadcast;

#[derive(Debug)]
pub struct RevocationSet {
    /// jti -> when the entry may be forgotten.
    tokens: RwLock<HashMap<String, UnixTime>>,
    latest_cursor: std::sync::atomic::AtomicI64,
    feed: broadcast::Sender<RevocationEntry>,
}

impl Default for RevocationSet {
    fn default() -> Self {
        Self::new()
    }
}

impl RevocationSet {
    pub fn new() -> Self {
        let (feed, _) = broadcast::channel(1024);
        Self { tokens: RwLock::new(HashMap::new()), latest_cursor: 0.into(), feed }
    }

    /// Applies entries read from the store (in cursor order); returns how many were new.
    pub fn apply(&self, entries: &[RevocationEntry]) -> usize {
        use std::sync::atomic::Ordering;
        let mut fresh = 0;
        for e in entries {
            if e.cursor <= self.latest_cursor.load(Ordering::Acquire) {
                continue;
            }
            if let Revocation::Token { jti } = &e.revocation
                && let Ok(mut t) = self.tokens.write()
            {
                t.insert(jti.clone(), e.expires_at);
            }
            self.latest_cursor.fetch_max(e.cursor, Ordering::AcqRel);
            // Nobody listening is fine: streams subscribe when they open.
            let _ = self.feed.send(e.clone());
            fresh += 1;
        }
        fresh
    }

    pub fn is_token_revoked(&self, jti: &str) -> bool {
        self.tokens.read().map(|t| t.contains_key(jti)).unwrap_or(false)
    }

    pub fn latest_cursor(&self) -> i64 {
        self.latest_cursor.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Forgets entries whose tokens have all expired.
    pub fn prune(&self, now: UnixTime) {
        if let Ok(mut t) = self.tokens.write() {
            t.retain(|_, exp| *exp > now);
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<RevocationEntry> {
        self.feed.subscribe()
    }
}
