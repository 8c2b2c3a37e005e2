//! Many writers on one SQLite file lose nothing: every audit record and every new-network
//! record of a burst of concurrent writes from several handles (as several processes on one
//! file would be) is there afterwards, even while another connection holds the write lock when
//! the burst starts. "database is locked" is waited out, never returned.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use sqlx::Connection;
use std::sync::Arc;
use tokenmint_store::{AuditFilter, AuditRecord, SqlStore, Store};

const HANDLES: usize = 4;
const WRITERS: usize = 200;

fn record(i: usize) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at: 1_000 + i64::try_from(i).unwrap(),
        kind: "token.refused".into(),
        org: Some("acme".into()),
        client_id: Some(format!("tmc_{i}")),
        actor: None,
        source_ip: Some("192.0.2.7".into()),
        reason: Some("wrong_secret".into()),
        details: serde_json::json!({"i": i}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_on_one_sqlite_file_lose_no_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let url = format!("sqlite://{}", path.display());
    let first = SqlStore::connect(&url, true).await.unwrap();
    let mut stores = vec![Arc::new(first)];
    for _ in 1..HANDLES {
        stores.push(Arc::new(SqlStore::connect(&url, false).await.unwrap()));
    }

    // Another process's transaction holds the write lock as the burst begins.
    let mut outsider =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut outsider).await.unwrap();

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..WRITERS {
        let store = stores[i % HANDLES].clone();
        tasks.spawn(async move {
            if i % 2 == 0 {
                store.append_audit(&[record(i)]).await.map(|_| ())
            } else {
                let network = format!("10.{}.{}.0/24", i / 256, i % 256);
                store.remember_network("tmc_many", &network, 1_000).await.map(|(new, _)| {
                    assert!(new, "{network} was new");
                })
            }
        });
    }
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    sqlx::query("COMMIT").execute(&mut outsider).await.unwrap();

    let mut failed = Vec::new();
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.unwrap() {
            failed.push(e.to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{} writes failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );

    let audit = stores[1]
        .list_audit(&AuditFilter {
            kind: Some("token.refused".into()),
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), WRITERS / 2, "audit records");
    // Remembering a known network answers how many others the credential has.
    let (new, others) = stores[2].remember_network("tmc_many", "10.0.1.0/24", 2_000).await.unwrap();
    assert!(!new);
    assert_eq!(others + 1, i64::try_from(WRITERS / 2).unwrap(), "network records");
    for s in stores {
        s.close().await;
    }
}
