//! `last_used` bookkeeping and per-minute token counts, off the hot path.
//!
//! The token endpoint drops a note into a bounded channel (never waiting); a background task
//! folds the notes into the latest time per secret and the number of tokens per credential and
//! minute, and writes both every few seconds. If the channel is full, notes are dropped: a slightly stale `last_used` is
//! better than a slower token endpoint.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::UnixTime;
use tokenmint_store::{Store, Usage};
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct UsageRecorder {
    tx: mpsc::Sender<Usage>,
}

impl UsageRecorder {
    pub fn record(&self, client_id: &str, secret_id: &str, at: UnixTime) {
        let _ = self.tx.try_send(Usage {
            client_id: client_id.to_owned(),
            secret_id: secret_id.to_owned(),
            at,
        });
    }
}

/// The receiving half, run by [`run_flusher`].
#[derive(Debug)]
pub struct UsageQueue {
    rx: mpsc::Receiver<Usage>,
}

pub fn channel(capacity: usize) -> (UsageRecorder, UsageQueue) {
    let (tx, rx) = mpsc::channel(capacity);
    (UsageRecorder { tx }, UsageQueue { rx })
}

/// What the flusher has folded and not written yet.
#[derive(Debug, Default)]
struct Pending {
    last_used: HashMap<(String, String), UnixTime>,
    counts: HashMap<(String, UnixTime), i64>,
}

impl Pending {
    fn add(&mut self, u: Usage) {
        let minute = u.at - u.at.rem_euclid(60);
        *self.counts.entry((u.client_id.clone(), minute)).or_insert(0) += 1;
        let slot = self.last_used.entry((u.client_id, u.secret_id)).or_insert(u.at);
        *slot = (*slot).max(u.at);
    }
}

async fn flush(store: &dyn Store, pending: &mut Pending) {
    if !pending.counts.is_empty() {
        let counts: Vec<tokenmint_store::TokenCount<'_>> = pending
            .counts
            .iter()
            .map(|((client_id, minute), count)| tokenmint_store::TokenCount {
                client_id,
                minute: *minute,
                count: *count,
            })
            .collect();
        match store.add_token_counts(&counts).await {
            // Emptied and given back: a burst of 100,000 credentials would otherwise keep its
            // table (several MB) for the life of the process.
            Ok(()) => pending.counts = HashMap::new(),
            Err(e) => tracing::warn!(error = %e, "could not record token counts; will retry"),
        }
    }
    flush_last_used(store, &mut pending.last_used).await;
}

async fn flush_last_used(store: &dyn Store, pending: &mut HashMap<(String, String), UnixTime>) {
    if pending.is_empty() {
        return;
    }
    let batch: Vec<Usage> = std::mem::take(pending)
        .into_iter()
        .map(|((client_id, secret_id), at)| Usage { client_id, secret_id, at })
        .collect();
    if let Err(e) = store.record_usage(&batch).await {
        tracing::warn!(error = %e, entries = batch.len(), "could not record last-used times; they will be late");
    }
}

/// Folds and writes usage until `stop` turns true, then writes what is left.
pub async fn run_flusher(
    mut queue: UsageQueue,
    store: Arc<dyn Store>,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            msg = queue.rx.recv() => match msg {
                Some(u) => pending.add(u),
                None => break,
            },
            _ = tick.tick() => flush(store.as_ref(), &mut pending).await,
            _ = stop.changed() => break,
        }
    }
    while let Ok(u) = queue.rx.try_recv() {
        pending.add(u);
    }
    flush(store.as_ref(), &mut pending).await;
}
