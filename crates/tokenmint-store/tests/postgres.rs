//! The storage conformance suite on PostgreSQL: each check gets its own database, dropped
//! afterwards.
//!
//! Uses `TOKENMINT_TEST_POSTGRES` (default `postgres://postgres@127.0.0.1:5432`). Without a
//! server the checks are skipped with a message, unless `TOKENMINT_REQUIRE_SERVICES=1` (set
//! by CI), which turns a missing server into a failure.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

use tokenmint_store::testing::TestDatabase;
use tokenmint_store::{SqlStore, conformance};

async fn run(name: &str) {
    let Some(db) = TestDatabase::create().await else { return };
    let store = SqlStore::connect(db.url(), true).await.unwrap();
    conformance::run(name, &store).await;
    store.close().await;
    db.drop_now().await;
}

macro_rules! checks {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                run(stringify!($name)).await;
            }
        )*

        #[test]
        fn every_conformance_check_runs_on_postgres() {
            let here = [$(stringify!($name)),*];
            assert_eq!(here.len(), conformance::ALL.len());
            for name in conformance::ALL {
                assert!(here.contains(name), "{name} is not run on PostgreSQL");
            }
        }
    };
}

checks!(
    meta_values_are_written_once,
    organizations_are_unique_and_listed_in_pages,
    credentials_round_trip_with_their_secrets,
    creating_a_credential_creates_its_missing_organization,
    duplicate_client_ids_conflict_and_leave_nothing_behind,
    updates_check_the_revision,
    rotation_expires_older_secrets_and_deletion_removes_one,
    usage_only_moves_forward,
    credentials_are_listed_in_pages_and_by_organization,
    keys_are_inserted_once_per_pending_window_and_withdrawn_with_a_feed_entry,
    revocations_form_a_feed_and_expire,
    every_write_appears_in_the_change_log,
    purge_removes_what_has_expired,
    audit_records_are_appended_in_order_and_filtered,
    token_counts_add_up_per_minute,
    alert_deliveries_are_kept_newest_first,
    networks_are_remembered_once_per_credential,
    portal_users_are_unique_by_email_whatever_its_case,
    portal_users_are_listed_by_organization_and_deactivated,
    portal_sessions_expire_and_end_with_their_user,
);

#[tokio::test]
async fn concurrent_conditional_key_inserts_store_exactly_one() {
    use tokenmint_core::keys::{KeyRecord, SigningAlgorithm};
    use tokenmint_store::Store;
    let Some(db) = TestDatabase::create().await else { return };
    let a = SqlStore::connect(db.url(), true).await.unwrap();
    let b = SqlStore::connect(db.url(), false).await.unwrap();
    let key = |kid: &str| KeyRecord {
        kid: kid.into(),
        alg: SigningAlgorithm::ES256,
        sealed_private: vec![1],
        created_at: 0,
        activates_at: 100,
        withdrawn_at: None,
    };
    let mut handles = Vec::new();
    for i in 0..8 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let k = key(&format!("k{i}"));
        handles.push(tokio::spawn(async move { s.insert_key(&k, Some(10)).await.unwrap() }));
    }
    let mut inserted = 0;
    for h in handles {
        inserted += usize::from(h.await.unwrap());
    }
    assert_eq!(inserted, 1);
    assert_eq!(a.list_keys().await.unwrap().len(), 1);
    a.close().await;
    b.close().await;
    db.drop_now().await;
}

#[tokio::test]
async fn a_change_made_by_one_process_wakes_the_listener_of_another() {
    use tokenmint_store::Store;
    let Some(db) = TestDatabase::create().await else { return };
    let a = SqlStore::connect(db.url(), true).await.unwrap();
    let b = SqlStore::connect(db.url(), false).await.unwrap();
    let mut listener = b.listen_changes().await.unwrap().expect("PostgreSQL pushes changes");
    let org =
        tokenmint_store::Organization { slug: "acme".into(), name: "Acme".into(), created_at: 1 };
    a.create_organization(&org).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(5), listener.recv())
        .await
        .expect("woken")
        .unwrap();
    assert!(b.changes_after(0, 10).await.unwrap().iter().any(|c| c.key == "acme"));
    drop(listener);
    a.close().await;
    b.close().await;
    db.drop_now().await;
}
