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
    an_alert_is_claimed_once_per_window,
    a_client_assertion_is_used_once_until_it_expires,
    public_keys_round_trip_and_change_with_the_credential,
    portal_users_are_unique_by_email_whatever_its_case,
    portal_users_are_listed_by_organization_and_deactivated,
    portal_sessions_expire_and_end_with_their_user,
    a_deactivated_users_email_is_taken_by_a_new_user_and_reactivation_claims_it_back,
    password_resets_work_once_until_they_expire_for_active_users,
    roles_and_passwords_change_and_a_password_change_ends_the_other_sessions,
    a_write_by_an_actor_no_longer_authorized_is_refused_and_changes_nothing,
    a_write_that_would_leave_no_working_admin_is_refused_and_changes_nothing,
    a_write_that_schedules_the_end_of_the_last_working_admin_is_refused,
    two_admins_deactivating_each_other_at_once_leave_exactly_one,
    rotations_moments_apart_and_beyond_the_live_secret_cap_are_refused,
    concurrent_writers_of_every_kind_all_succeed,
    claims_are_stored_and_an_organization_change_revokes_its_credentials_tokens,
    credentials_are_searched_by_text_environment_and_state_in_pages_newest_first,
    portal_flashes_are_taken_once_for_their_purpose_until_they_expire,
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
        handles.push(tokio::spawn(async move {
            s.insert_key(&k, Some(10), &tokenmint_store::Guard::system(0)).await.unwrap()
        }));
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
    let org = tokenmint_store::Organization {
        slug: "acme".into(),
        name: "Acme".into(),
        created_at: 1,
        claims: Default::default(),
    };
    a.create_organization(&org, &tokenmint_store::Guard::system(0)).await.unwrap();
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

/// Two processes, each acting for one of the only two admins, take the other out of service at
/// the same moment, by each way the no-lockout rule covers: deactivating it, giving it an
/// expiry, narrowing it to another audience. Exactly one may; the platform keeps an admin that
/// works indefinitely.
#[tokio::test]
async fn two_processes_ending_each_others_admin_at_once_leave_exactly_one() {
    use tokenmint_core::credential::{AdminHorizon, Credential, CredentialStatus};
    use tokenmint_store::{Guard, GuardActor, Store, StoreError};
    let Some(db) = TestDatabase::create().await else { return };
    let a = SqlStore::connect(db.url(), true).await.unwrap();
    let b = SqlStore::connect(db.url(), false).await.unwrap();
    let org = tokenmint_store::Organization {
        slug: "platform".into(),
        name: "Platform".into(),
        created_at: 1,
        claims: Default::default(),
    };
    a.create_organization(&org, &Guard::system(1)).await.unwrap();
    let changes: [fn(&mut Credential); 3] = [
        |c| c.status = CredentialStatus::Deactivated,
        |c| c.expires_at = Some(206),
        |c| c.audiences = vec!["https://api.example.com".into()],
    ];
    for round in 0..12 {
        let change = changes[round % changes.len()];
        let (x, y) = (format!("tmc_x{round}"), format!("tmc_y{round}"));
        for id in [&x, &y] {
            let c = conformance::admin_credential(id, 100);
            a.create_credential(&c, None, &Guard::system(100)).await.unwrap();
        }
        let end = |store: SqlStore, actor: String, target: String| async move {
            let mut t = store.get_credential(&target).await.unwrap().unwrap();
            change(&mut t);
            let guard = Guard {
                actor: GuardActor::Credential { client_id: actor, token: None },
                now: 200,
                keep_platform_admin: Some(conformance::ISSUER.into()),
            };
            store.update_credential(&t, None, &guard).await
        };
        let one = tokio::spawn(end(a.clone(), x.clone(), y.clone()));
        let two = tokio::spawn(end(b.clone(), y.clone(), x.clone()));
        let (one, two) = (one.await.unwrap(), two.await.unwrap());
        assert_eq!([&one, &two].iter().filter(|r| r.is_ok()).count(), 1, "{one:?} {two:?}");
        assert!([&one, &two].iter().any(|r| matches!(r, Err(StoreError::Refused(_)))));
        let mut left = 0;
        for id in [&x, &y] {
            let c = b.get_credential(id).await.unwrap().unwrap();
            if c.admin_horizon(200, conformance::ISSUER) == AdminHorizon::Indefinitely {
                left += 1;
                let mut retire = c;
                retire.status = CredentialStatus::Deactivated;
                a.update_credential(&retire, None, &Guard::system(200)).await.unwrap();
            }
        }
        assert_eq!(left, 1, "round {round}");
    }
    a.close().await;
    b.close().await;
    db.drop_now().await;
}
