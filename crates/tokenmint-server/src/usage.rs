//! `last_used` bookkeeping and per-minute token counts, off the hot path.
//!
//! The token endpoint notes each token in the credential's cache entry: the count of the
//! current minute and the secret's last-used time are atomics there
//! ([`crate::cache::CachedCredential`]), so a hundred thousand credentials in use cost no table
//! of client ids beside the cache. An entry that has something to write is put on a list once
//! (not once per token); a background task takes the list every few seconds, takes each entry's
//! usage (atomically, so a token noted meanwhile is taken now or on the next round, never
//! twice) and writes it in batches.
//!
//! What an entry cannot hold is kept beside it: the tokens of an earlier minute that a later
//! minute pushed out before they were written, the last-used times of keys
//! (`private_key_jwt`), which are not secrets of the entry, and a last-used time outside what
//! an entry holds (seconds in 32 bits, 1970 to 2106). An entry dropped from the cache
//! (changed, invalidated) while it has usage to write stays on the list until it is written.
//!
//! Counts that the store refused are kept and written with the next round; last-used times
//! that it refused are given up (a slightly stale `last_used` is better than a slower token
//! endpoint), as before.

use crate::cache::CachedCredential;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use tokenmint_core::UnixTime;
use tokenmint_store::{Store, TokenCount, Usage};

/// Entries written per store call: bounds what a round holds in memory at once.
const BATCH: usize = 2048;

/// What the token endpoint notes usage through.
#[derive(Debug, Clone)]
pub struct UsageRecorder {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    /// Entries with usage to write, each once ([`CachedCredential::list`]).
    listed: Mutex<Vec<Arc<CachedCredential>>>,
    loose: Mutex<Loose>,
}

/// Usage that no entry holds.
#[derive(Debug, Default)]
struct Loose {
    /// Tokens of an earlier minute, pushed out of an entry by a later one: (entry, minute's
    /// start, count).
    pushed_out: Vec<(Arc<CachedCredential>, UnixTime, i64)>,
    /// Last-used times of what is not a secret of the entry (keys), by (client id, id).
    last_used: HashMap<(String, String), UnixTime>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl UsageRecorder {
    /// Notes a token issued at `at` to `credential`, authenticated by `secret_id`.
    pub fn record(&self, credential: &Arc<CachedCredential>, secret_id: &str, at: UnixTime) {
        if let Some((minute, count)) = credential.note_token(at) {
            lock(&self.shared.loose).pushed_out.push((credential.clone(), minute, count));
        }
        if !credential.note_secret(secret_id, at) {
            let mut loose = lock(&self.shared.loose);
            let slot = loose
                .last_used
                .entry((String::from(credential.client_id()), secret_id.to_owned()))
                .or_insert(at);
            *slot = (*slot).max(at);
        }
        // After the notes: the flusher unlists an entry before it takes, so a note it does not
        // take lists the entry again.
        if credential.list() {
            lock(&self.shared.listed).push(credential.clone());
        }
    }
}

/// The taking half, run by [`run_flusher`].
#[derive(Debug)]
pub struct UsageQueue {
    shared: Arc<Shared>,
    /// Entries taken from the list and not yet taken from.
    taking: Vec<Arc<CachedCredential>>,
    /// Counts the store refused, to write with the next round.
    retry: HashMap<(String, UnixTime), i64>,
}

/// The recorder and its queue. Nothing needs a capacity: an entry is listed at most once.
pub fn channel() -> (UsageRecorder, UsageQueue) {
    let shared = Arc::new(Shared::default());
    (
        UsageRecorder { shared: shared.clone() },
        UsageQueue { shared, taking: Vec::new(), retry: HashMap::new() },
    )
}

/// One store call's worth of usage.
#[derive(Debug, Default, PartialEq)]
struct Batch {
    /// Tokens per (client id, minute's start).
    counts: HashMap<(String, UnixTime), i64>,
    /// The latest use per (client id, secret id).
    last_used: Vec<Usage>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.counts.is_empty() && self.last_used.is_empty()
    }

    fn count(&mut self, client_id: &str, minute: UnixTime, n: i64) {
        *self.counts.entry((client_id.to_owned(), minute)).or_insert(0) += n;
    }
}

impl UsageQueue {
    /// Starts a round: takes the list, and what no entry holds, as the round's first batch.
    fn start_round(&mut self) -> Batch {
        let mut listed = std::mem::take(&mut *lock(&self.shared.listed));
        // Taken in the order listed.
        listed.reverse();
        self.taking = listed;
        let loose = std::mem::take(&mut *lock(&self.shared.loose));
        let mut batch = Batch { counts: std::mem::take(&mut self.retry), last_used: Vec::new() };
        for (entry, minute, n) in loose.pushed_out {
            batch.count(&entry.client_id(), minute, n);
        }
        batch.last_used = loose
            .last_used
            .into_iter()
            .map(|((client_id, secret_id), at)| Usage { client_id, secret_id, at })
            .collect();
        batch
    }

    /// The next batch of the round: the usage of up to [`BATCH`] listed entries, taken from
    /// them; empty when the round is over.
    fn next_batch(&mut self) -> Batch {
        let mut batch = Batch::default();
        let start = self.taking.len().saturating_sub(BATCH);
        for entry in self.taking.drain(start..) {
            entry.unlist();
            if let Some((minute, n)) = entry.take_tokens() {
                batch.count(&entry.client_id(), minute, n);
            }
            for (secret_id, at) in entry.take_last_used() {
                batch.last_used.push(Usage {
                    client_id: String::from(entry.client_id()),
                    secret_id: String::from(secret_id),
                    at,
                });
            }
        }
        if self.taking.is_empty() {
            // A burst of 100,000 credentials would otherwise keep the list's room.
            self.taking = Vec::new();
        }
        batch
    }

    /// Whether the recorders are all gone.
    fn closed(&self) -> bool {
        Arc::strong_count(&self.shared) == 1
    }
}

async fn write(store: &dyn Store, queue: &mut UsageQueue, batch: Batch) {
    if !batch.counts.is_empty() {
        let counts: Vec<TokenCount<'_>> = batch
            .counts
            .iter()
            .map(|((client_id, minute), count)| TokenCount {
                client_id,
                minute: *minute,
                count: *count,
            })
            .collect();
        if let Err(e) = store.add_token_counts(&counts).await {
            tracing::warn!(error = %e, "could not record token counts; will retry");
            drop(counts);
            for (key, n) in batch.counts {
                *queue.retry.entry(key).or_insert(0) += n;
            }
        }
    }
    if !batch.last_used.is_empty()
        && let Err(e) = store.record_usage(&batch.last_used).await
    {
        tracing::warn!(error = %e, entries = batch.last_used.len(), "could not record last-used times; they will be late");
    }
}

/// Writes everything noted so far.
async fn flush(store: &dyn Store, queue: &mut UsageQueue) {
    let mut batch = queue.start_round();
    loop {
        if !batch.is_empty() {
            write(store, queue, batch).await;
        }
        if queue.taking.is_empty() {
            break;
        }
        batch = queue.next_batch();
    }
}

/// Writes usage every `every` until `stop` turns true (or every recorder is gone), then
/// writes what is left.
pub async fn run_flusher(
    mut queue: UsageQueue,
    store: Arc<dyn Store>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                flush(store.as_ref(), &mut queue).await;
                if queue.closed() {
                    break;
                }
            }
            _ = stop.changed() => break,
        }
    }
    flush(store.as_ref(), &mut queue).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::CredentialCache;
    use tokenmint_core::credential::{Credential, CredentialStatus, StoredSecret};
    use tokenmint_core::{ClientId, Environment, Permissions, SecretHash};

    const FIRST: &str = "sec_0000000000000001";
    const SECOND: &str = "sec_0000000000000002";

    fn credential(id: &str) -> Credential {
        let secret = |id: &str, b: u8| StoredSecret {
            id: id.into(),
            hash: SecretHash([b; 32]),
            hint: "tms_a…".into(),
            created_at: 1,
            expires_at: None,
            last_used_at: None,
        };
        Credential {
            client_id: ClientId::parse(id).unwrap(),
            name: "HR sync".into(),
            org: "acme".into(),
            environment: Environment::Sandbox,
            permissions: Permissions::from_stored(&["billing:read"]),
            audiences: vec!["https://api.example.com".into()],
            token_lifetime_secs: 600,
            rate_limit_per_minute: None,
            status: CredentialStatus::Active,
            expires_at: None,
            created_at: 1,
            updated_at: 2,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: vec![secret(FIRST, 1), secret(SECOND, 2)],
            claims: tokenmint_core::CustomClaims::default(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 1,
        }
    }

    /// Everything a round takes: tokens per (client, minute), latest use per (client, secret).
    #[derive(Debug, Default, PartialEq)]
    struct Written {
        counts: HashMap<(String, UnixTime), i64>,
        last_used: HashMap<(String, String), UnixTime>,
    }

    impl Written {
        fn add(&mut self, batch: Batch) {
            for (key, n) in batch.counts {
                *self.counts.entry(key).or_insert(0) += n;
            }
            for u in batch.last_used {
                let slot = self.last_used.entry((u.client_id, u.secret_id)).or_insert(u.at);
                *slot = (*slot).max(u.at);
            }
        }

        fn tokens(&self) -> i64 {
            self.counts.values().sum()
        }
    }

    /// One flusher round, as [`flush`] takes it, without the store.
    fn round(queue: &mut UsageQueue, written: &mut Written) {
        written.add(queue.start_round());
        while !queue.taking.is_empty() {
            written.add(queue.next_batch());
        }
    }

    #[test]
    fn usage_is_written_once_across_rounds_and_a_change_of_the_credential() {
        let (recorder, mut queue) = channel();
        let cache = CredentialCache::new(100);
        let old = cache.entry(credential("tmc_a"));
        cache.refresh("tmc_a", Some(old.clone()), cache.epoch());
        let mut written = Written::default();
        recorder.record(&old, FIRST, 600);
        recorder.record(&old, FIRST, 610);
        round(&mut queue, &mut written);
        round(&mut queue, &mut written);
        assert_eq!(written.tokens(), 2, "a second round finds nothing new");
        recorder.record(&old, SECOND, 615);
        // Changed: the cache drops the entry and reads the credential again; a request that
        // still holds the old entry notes its token there, the next ones note theirs in the
        // new entry.
        cache.invalidate("tmc_a");
        let new = cache.entry(credential("tmc_a"));
        cache.refresh("tmc_a", Some(new.clone()), cache.epoch());
        recorder.record(&old, FIRST, 616);
        recorder.record(&new, FIRST, 617);
        recorder.record(&new, "key:NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs", 618);
        drop(old);
        round(&mut queue, &mut written);
        recorder.record(&new, SECOND, 661);
        round(&mut queue, &mut written);
        let expected = Written {
            counts: [(("tmc_a".to_owned(), 600), 6), (("tmc_a".to_owned(), 660), 1)].into(),
            last_used: [
                (("tmc_a".to_owned(), FIRST.to_owned()), 617),
                (("tmc_a".to_owned(), SECOND.to_owned()), 661),
                (
                    (
                        "tmc_a".to_owned(),
                        "key:NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".to_owned(),
                    ),
                    618,
                ),
            ]
            .into(),
        };
        assert_eq!(written, expected);
        assert!(queue.shared.listed.lock().unwrap().is_empty());
    }

    #[test]
    fn a_later_minute_does_not_lose_the_earlier_one() {
        let (recorder, mut queue) = channel();
        let e = Arc::new(CachedCredential::new(credential("tmc_a")));
        for at in [59, 60, 60, 121, 30] {
            recorder.record(&e, FIRST, at);
        }
        let mut written = Written::default();
        round(&mut queue, &mut written);
        let counts: HashMap<_, _> = [
            (("tmc_a".to_owned(), 0), 2),
            (("tmc_a".to_owned(), 60), 2),
            (("tmc_a".to_owned(), 120), 1),
        ]
        .into();
        assert_eq!(written.counts, counts);
        assert_eq!(written.last_used[&("tmc_a".to_owned(), FIRST.to_owned())], 121);
    }

    #[test]
    fn concurrent_tokens_are_each_counted_exactly_once() {
        const THREADS: usize = 4;
        const TOKENS: usize = 20_000;
        let (recorder, mut queue) = channel();
        let entries: Vec<Arc<CachedCredential>> = (0..3)
            .map(|i| Arc::new(CachedCredential::new(credential(&format!("tmc_{i}")))))
            .collect();
        let done = std::sync::atomic::AtomicUsize::new(0);
        let mut written = Written::default();
        std::thread::scope(|s| {
            for t in 0..THREADS {
                let (recorder, entries, done) = (&recorder, &entries, &done);
                s.spawn(move || {
                    for i in 0..TOKENS {
                        // Minutes move on as the tokens go, so entries push minutes out too.
                        let at = i64::try_from(i / 1000 * 60 + t).unwrap();
                        recorder.record(
                            &entries[i % 3],
                            if i % 2 == 0 { FIRST } else { SECOND },
                            at,
                        );
                    }
                    done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
            // The flusher takes rounds while the tokens are noted.
            while done.load(std::sync::atomic::Ordering::SeqCst) < THREADS {
                round(&mut queue, &mut written);
            }
        });
        round(&mut queue, &mut written);
        assert_eq!(written.tokens(), i64::try_from(THREADS * TOKENS).unwrap());
        for minute in 0..20 {
            let per_minute: i64 =
                written.counts.iter().filter(|((_, m), _)| *m == minute * 60).map(|(_, n)| n).sum();
            assert_eq!(per_minute, i64::try_from(THREADS * 1000).unwrap(), "minute {minute}");
        }
        let last = 19 * 60 + i64::try_from(THREADS - 1).unwrap();
        assert_eq!(written.last_used[&("tmc_0".to_owned(), FIRST.to_owned())], last);
    }
}
