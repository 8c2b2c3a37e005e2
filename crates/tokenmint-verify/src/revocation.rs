//! The revocations a verifier knows about, checked on every request.
//!
//! Like the keys, the set is immutable behind an [`ArcSwap`]: a check is an atomic load and at
//! most three hash lookups, and never waits for the follower writing new entries. Writers copy
//! the set, change the copy and swap it in; they are rare (a revocation is an admin action) and
//! batched (a poll page or a network chunk of the stream at a time), so copying stays cheap
//! next to what it buys on the hot path.
//!
//! Each entry is kept until its `expires_at` plus the verifier's leeway: `expires_at` is when
//! the last token it covers expires, and the verifier accepts a token up to `leeway` past its
//! `exp`, so dropping the entry at `expires_at` exactly would let a revoked token back in for
//! that margin.

use crate::claims::Claims;
use crate::error::RevocationKind;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use tokenmint_proto::feed::{Revocation, RevocationEntry, cutoff_covers};

#[derive(Debug, Clone)]
struct Cutoff {
    /// Tokens with `iat` strictly before this are revoked, and those of that second that the
    /// boundary places before the cut-off (`tokenmint_proto::feed::cutoff_covers`).
    issued_before: (i64, Option<String>),
    expires_at: i64,
}

#[derive(Debug, Clone, Default)]
struct RevocationSet {
    /// jti → expires_at
    tokens: HashMap<String, i64>,
    /// client_id → cutoff
    credentials: HashMap<String, Cutoff>,
    /// kid → expires_at
    keys: HashMap<String, i64>,
}

impl RevocationSet {
    fn len(&self) -> usize {
        self.tokens.len() + self.credentials.len() + self.keys.len()
    }

    fn has_dead_entries(&self, horizon: i64) -> bool {
        self.tokens.values().any(|&e| e <= horizon)
            || self.credentials.values().any(|c| c.expires_at <= horizon)
            || self.keys.values().any(|&e| e <= horizon)
    }

    fn prune(&mut self, horizon: i64) {
        self.tokens.retain(|_, e| *e > horizon);
        self.credentials.retain(|_, c| c.expires_at > horizon);
        self.keys.retain(|_, e| *e > horizon);
    }
}

/// Revoked tokens, credentials and keys, each kept only as long as it can matter.
#[derive(Debug)]
pub struct RevocationList {
    current: ArcSwap<RevocationSet>,
    /// The feed position up to which entries have been applied.
    cursor: AtomicI64,
    /// Serialises writers so that two batches never overwrite each other's copy.
    writer: Mutex<()>,
    grace_secs: i64,
    metrics: Arc<Metrics>,
}

impl RevocationList {
    pub(crate) fn new(grace_secs: i64, metrics: Arc<Metrics>) -> Self {
        Self {
            current: ArcSwap::from_pointee(RevocationSet::default()),
            cursor: AtomicI64::new(0),
            writer: Mutex::new(()),
            grace_secs,
            metrics,
        }
    }

    /// Which revocation, if any, covers a token with these claims signed by `kid`, at `now`
    /// (Unix seconds).
    pub fn check(&self, claims: &Claims, kid: &str, now: i64) -> Option<RevocationKind> {
        let set = self.current.load();
        let live = |expires_at: i64| expires_at.saturating_add(self.grace_secs) > now;
        if claims.jti.as_ref().is_some_and(|jti| set.tokens.get(jti).is_some_and(|&e| live(e))) {
            return Some(RevocationKind::Token);
        }
        // A token without `iat` cannot show it was issued after the cut-off: it is covered.
        if set.credentials.get(&claims.client_id).is_some_and(|c| {
            let (second, boundary) = &c.issued_before;
            live(c.expires_at)
                && claims.iat.is_none_or(|iat| {
                    cutoff_covers(
                        *second,
                        boundary.as_deref(),
                        iat,
                        claims.jti.as_deref().unwrap_or(""),
                    )
                })
        }) {
            return Some(RevocationKind::Credential);
        }
        if set.keys.get(kid).is_some_and(|&e| live(e)) {
            return Some(RevocationKind::Key);
        }
        None
    }

    /// Applies feed entries (in any order, repeats allowed) and drops the ones that can no
    /// longer matter at `now` (Unix seconds).
    pub fn apply(&self, entries: &[RevocationEntry], now: i64) {
        let horizon = now.saturating_sub(self.grace_secs);
        let _writing = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        if entries.is_empty() && !current.has_dead_entries(horizon) {
            return;
        }
        let mut next = RevocationSet::clone(&current);
        next.prune(horizon);
        for entry in entries {
            self.cursor.fetch_max(entry.cursor, Ordering::SeqCst);
            if entry.expires_at <= horizon {
                continue;
            }
            match &entry.revocation {
                Revocation::Token { jti } => {
                    let e = next.tokens.entry(jti.clone()).or_insert(entry.expires_at);
                    *e = (*e).max(entry.expires_at);
                }
                // Two cutoffs for one credential merge into the wider one: the later
                // `issued_before` covers every token the earlier one did (a boundary within a
                // second covers more than none, and a later one more than an earlier one).
                Revocation::Credential { client_id, issued_before, issued_before_jti } => {
                    let cutoff = Cutoff {
                        issued_before: (*issued_before, issued_before_jti.clone()),
                        expires_at: entry.expires_at,
                    };
                    next.credentials
                        .entry(client_id.clone())
                        .and_modify(|c| {
                            c.issued_before =
                                c.issued_before.clone().max(cutoff.issued_before.clone());
                            c.expires_at = c.expires_at.max(cutoff.expires_at);
                        })
                        .or_insert(cutoff);
                }
                Revocation::Key { kid } => {
                    let e = next.keys.entry(kid.clone()).or_insert(entry.expires_at);
                    *e = (*e).max(entry.expires_at);
                }
            }
        }
        let applied = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        self.metrics.revocations_applied.fetch_add(applied, Ordering::Relaxed);
        let live = u64::try_from(next.len()).unwrap_or(u64::MAX);
        self.metrics.revocations_live.store(live, Ordering::Relaxed);
        self.current.store(Arc::new(next));
    }

    /// Drops entries that can no longer matter at `now`.
    pub fn prune(&self, now: i64) {
        self.apply(&[], now);
    }

    /// Records that the feed has been read up to `cursor` (a page's `next_cursor`).
    pub fn advance_cursor(&self, cursor: i64) {
        self.cursor.fetch_max(cursor, Ordering::SeqCst);
    }

    /// The feed position to resume after.
    pub fn cursor(&self) -> i64 {
        self.cursor.load(Ordering::SeqCst)
    }

    /// Entries currently held.
    pub fn len(&self) -> usize {
        self.current.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokenmint_proto::{Audience, Environment};

    fn claims(jti: &str, client_id: &str, iat: i64) -> Claims {
        Claims {
            iss: "https://issuer.example".into(),
            sub: Some(client_id.into()),
            client_id: client_id.into(),
            aud: Audience::One("api".into()),
            iat: Some(iat),
            exp: iat + 3600,
            nbf: None,
            jti: Some(jti.into()),
            scope: String::new(),
            env: Some(Environment::Sandbox),
            org: Some("acme".into()),
            extra: Default::default(),
        }
    }

    fn entry(cursor: i64, revocation: Revocation, expires_at: i64) -> RevocationEntry {
        RevocationEntry { cursor, revocation, expires_at }
    }

    fn list() -> RevocationList {
        RevocationList::new(60, Arc::new(Metrics::default()))
    }

    #[test]
    fn a_credential_cutoff_revokes_only_tokens_issued_before_it() {
        let list = list();
        let revocation = Revocation::Credential {
            client_id: "c1".into(),
            issued_before: 1_000,
            issued_before_jti: None,
        };
        list.apply(&[entry(1, revocation, 5_000)], 900);
        assert_eq!(
            list.check(&claims("a", "c1", 999), "k", 1_000),
            Some(RevocationKind::Credential)
        );
        assert_eq!(list.check(&claims("b", "c1", 1_000), "k", 1_000), None);
        assert_eq!(list.check(&claims("c", "c2", 10), "k", 1_000), None);
    }

    #[test]
    fn two_cutoffs_for_one_credential_merge_into_the_wider_one() {
        let list = list();
        let cutoff = |issued_before| Revocation::Credential {
            client_id: "c1".into(),
            issued_before,
            issued_before_jti: None,
        };
        let (early, late) = (cutoff(1_000), cutoff(2_000));
        list.apply(&[entry(2, late, 6_000), entry(1, early, 5_000)], 900);
        assert_eq!(
            list.check(&claims("a", "c1", 1_500), "k", 5_500),
            Some(RevocationKind::Credential)
        );
        assert_eq!(list.cursor(), 2);
    }

    #[test]
    fn a_cutoff_within_a_second_revokes_the_earlier_tokens_of_that_second_only() {
        let list = list();
        // Timed ids: ten base62 digits of the issue time in microseconds, then random ones.
        let early = "0000000100abcdefghijklmn";
        let late = "0000000200abcdefghijklmn";
        let revocation = Revocation::Credential {
            client_id: "c1".into(),
            issued_before: 1_000,
            issued_before_jti: Some("0000000150".into()),
        };
        list.apply(&[entry(1, revocation, 5_000)], 900);
        assert_eq!(
            list.check(&claims(early, "c1", 1_000), "k", 1_000),
            Some(RevocationKind::Credential)
        );
        assert_eq!(list.check(&claims(late, "c1", 1_000), "k", 1_000), None);
        // A later cut-off without a boundary does not undo the earlier one's.
        let wider = Revocation::Credential {
            client_id: "c1".into(),
            issued_before: 1_000,
            issued_before_jti: None,
        };
        list.apply(&[entry(2, wider, 5_000)], 900);
        assert_eq!(
            list.check(&claims(early, "c1", 1_000), "k", 1_000),
            Some(RevocationKind::Credential)
        );
    }

    #[test]
    fn entries_are_kept_through_the_leeway_after_expiry_and_then_dropped() {
        let list = list();
        list.apply(&[entry(1, Revocation::Token { jti: "j".into() }, 1_000)], 900);
        list.apply(&[entry(2, Revocation::Key { kid: "k".into() }, 5_000)], 900);
        // Past expires_at but within the 60 s leeway: a token could still pass `exp`.
        assert_eq!(list.check(&claims("j", "c", 0), "other", 1_030), Some(RevocationKind::Token));
        assert_eq!(list.len(), 2);
        list.prune(1_061);
        assert_eq!(list.len(), 1);
        assert_eq!(list.check(&claims("j", "c", 0), "other", 1_061), None);
        assert_eq!(list.check(&claims("x", "c", 0), "k", 1_061), Some(RevocationKind::Key));
    }

    #[test]
    fn entries_already_dead_on_arrival_are_not_stored() {
        let list = list();
        list.apply(&[entry(7, Revocation::Token { jti: "j".into() }, 100)], 1_000);
        assert!(list.is_empty());
        assert_eq!(list.cursor(), 7);
    }
}
