//! The storage conformance suite on SQLite, one fresh database file per check.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use tokenmint_store::{SqlStore, conformance};

async fn run(name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqlStore::connect(&url, true).await.unwrap();
    conformance::run(name, &store).await;
    store.close().await;
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
        fn every_conformance_check_runs_on_sqlite() {
            let here = [$(stringify!($name)),*];
            assert_eq!(here.len(), conformance::ALL.len());
            for name in conformance::ALL {
                assert!(here.contains(name), "{name} is not run on SQLite");
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
async fn reopening_a_database_keeps_its_data_and_migrations_are_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqlStore::connect(&url, true).await.unwrap();
    conformance::run("meta_values_are_written_once", &store).await;
    store.close().await;
    let again = SqlStore::connect(&url, true).await.unwrap();
    use tokenmint_store::Store;
    assert_eq!(again.get_meta("k").await.unwrap().as_deref(), Some("v1"));
}

#[tokio::test]
async fn sqlite_has_no_change_listener_and_is_polled_instead() {
    use tokenmint_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store = SqlStore::connect(&url, true).await.unwrap();
    assert!(store.listen_changes().await.unwrap().is_none());
}
