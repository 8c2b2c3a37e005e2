//! The behaviour every [`Store`] must have, as a suite of checks that each backend's tests run
//! against a fresh, empty, migrated store (see `tests/sqlite.rs` and `tests/postgres.rs`).
//!
//! The checks panic on failure, like assertions in a test, because they are tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, reason = "a test suite")]

use crate::{
    AlertDelivery, AuditFilter, AuditRecord, CredentialFilter, CredentialSearch, CredentialState,
    Entity, Guard, GuardActor, NewRevocation, Organization, OrganizationRevocation,
    OrganizationUpdate, PasswordReset, PortalFlash, PortalSession, PortalUser, Refusal, Rotation,
    Store, StoreError, TokenCount, Usage, UserRole, UserStatus,
};
use tokenmint_core::credential::{Credential, CredentialStatus, RevocationCutoff, token_id};
use tokenmint_core::keys::{KeyRecord, SigningAlgorithm};
use tokenmint_core::scope::Permissions;
use tokenmint_core::{ClientId, CustomClaims, Environment, SecretHash, StoredSecret};
use tokenmint_proto::feed::Revocation;

/// Every check, by name, so a backend's test file can run them one by one.
pub const ALL: &[&str] = &[
    "meta_values_are_written_once",
    "organizations_are_unique_and_listed_in_pages",
    "credentials_round_trip_with_their_secrets",
    "creating_a_credential_creates_its_missing_organization",
    "duplicate_client_ids_conflict_and_leave_nothing_behind",
    "updates_check_the_revision",
    "rotation_expires_older_secrets_and_deletion_removes_one",
    "usage_only_moves_forward",
    "credentials_are_listed_in_pages_and_by_organization",
    "keys_are_inserted_once_per_pending_window_and_withdrawn_with_a_feed_entry",
    "revocations_form_a_feed_and_expire",
    "every_write_appears_in_the_change_log",
    "purge_removes_what_has_expired",
    "audit_records_are_appended_in_order_and_filtered",
    "token_counts_add_up_per_minute",
    "alert_deliveries_are_kept_newest_first",
    "networks_are_remembered_once_per_credential",
    "an_alert_is_claimed_once_per_window",
    "a_client_assertion_is_used_once_until_it_expires",
    "public_keys_round_trip_and_change_with_the_credential",
    "portal_users_are_unique_by_email_whatever_its_case",
    "portal_users_are_listed_by_organization_and_deactivated",
    "portal_sessions_expire_and_end_with_their_user",
    "a_deactivated_users_email_is_taken_by_a_new_user_and_reactivation_claims_it_back",
    "password_resets_work_once_until_they_expire_for_active_users",
    "roles_and_passwords_change_and_a_password_change_ends_the_other_sessions",
    "a_write_by_an_actor_no_longer_authorized_is_refused_and_changes_nothing",
    "a_write_that_would_leave_no_working_admin_is_refused_and_changes_nothing",
    "a_write_that_schedules_the_end_of_the_last_working_admin_is_refused",
    "two_admins_deactivating_each_other_at_once_leave_exactly_one",
    "rotations_moments_apart_and_beyond_the_live_secret_cap_are_refused",
    "concurrent_writers_of_every_kind_all_succeed",
    "claims_are_stored_and_an_organization_change_revokes_its_credentials_tokens",
    "credentials_are_searched_by_text_environment_and_state_in_pages_newest_first",
    "portal_flashes_are_taken_once_for_their_purpose_until_they_expire",
];

/// Runs the named check.
pub async fn run(name: &str, store: &dyn Store) {
    match name {
        "meta_values_are_written_once" => meta_values_are_written_once(store).await,
        "organizations_are_unique_and_listed_in_pages" => {
            organizations_are_unique_and_listed_in_pages(store).await
        }
        "credentials_round_trip_with_their_secrets" => {
            credentials_round_trip_with_their_secrets(store).await
        }
        "creating_a_credential_creates_its_missing_organization" => {
            creating_a_credential_creates_its_missing_organization(store).await
        }
        "duplicate_client_ids_conflict_and_leave_nothing_behind" => {
            duplicate_client_ids_conflict_and_leave_nothing_behind(store).await
        }
        "updates_check_the_revision" => updates_check_the_revision(store).await,
        "rotation_expires_older_secrets_and_deletion_removes_one" => {
            rotation_expires_older_secrets_and_deletion_removes_one(store).await
        }
        "usage_only_moves_forward" => usage_only_moves_forward(store).await,
        "credentials_are_listed_in_pages_and_by_organization" => {
            credentials_are_listed_in_pages_and_by_organization(store).await
        }
        "keys_are_inserted_once_per_pending_window_and_withdrawn_with_a_feed_entry" => {
            keys_are_inserted_once_per_pending_window_and_withdrawn_with_a_feed_entry(store).await
        }
        "revocations_form_a_feed_and_expire" => revocations_form_a_feed_and_expire(store).await,
        "every_write_appears_in_the_change_log" => {
            every_write_appears_in_the_change_log(store).await
        }
        "purge_removes_what_has_expired" => purge_removes_what_has_expired(store).await,
        "audit_records_are_appended_in_order_and_filtered" => {
            audit_records_are_appended_in_order_and_filtered(store).await
        }
        "token_counts_add_up_per_minute" => token_counts_add_up_per_minute(store).await,
        "alert_deliveries_are_kept_newest_first" => {
            alert_deliveries_are_kept_newest_first(store).await
        }
        "networks_are_remembered_once_per_credential" => {
            networks_are_remembered_once_per_credential(store).await
        }
        "an_alert_is_claimed_once_per_window" => an_alert_is_claimed_once_per_window(store).await,
        "a_client_assertion_is_used_once_until_it_expires" => {
            a_client_assertion_is_used_once_until_it_expires(store).await
        }
        "public_keys_round_trip_and_change_with_the_credential" => {
            public_keys_round_trip_and_change_with_the_credential(store).await
        }
        "portal_users_are_unique_by_email_whatever_its_case" => {
            portal_users_are_unique_by_email_whatever_its_case(store).await
        }
        "portal_users_are_listed_by_organization_and_deactivated" => {
            portal_users_are_listed_by_organization_and_deactivated(store).await
        }
        "portal_sessions_expire_and_end_with_their_user" => {
            portal_sessions_expire_and_end_with_their_user(store).await
        }
        "a_deactivated_users_email_is_taken_by_a_new_user_and_reactivation_claims_it_back" => {
            a_deactivated_users_email_is_taken_by_a_new_user_and_reactivation_claims_it_back(store)
                .await
        }
        "password_resets_work_once_until_they_expire_for_active_users" => {
            password_resets_work_once_until_they_expire_for_active_users(store).await
        }
        "roles_and_passwords_change_and_a_password_change_ends_the_other_sessions" => {
            roles_and_passwords_change_and_a_password_change_ends_the_other_sessions(store).await
        }
        "a_write_by_an_actor_no_longer_authorized_is_refused_and_changes_nothing" => {
            a_write_by_an_actor_no_longer_authorized_is_refused_and_changes_nothing(store).await
        }
        "a_write_that_would_leave_no_working_admin_is_refused_and_changes_nothing" => {
            a_write_that_would_leave_no_working_admin_is_refused_and_changes_nothing(store).await
        }
        "a_write_that_schedules_the_end_of_the_last_working_admin_is_refused" => {
            a_write_that_schedules_the_end_of_the_last_working_admin_is_refused(store).await
        }
        "two_admins_deactivating_each_other_at_once_leave_exactly_one" => {
            two_admins_deactivating_each_other_at_once_leave_exactly_one(store).await
        }
        "rotations_moments_apart_and_beyond_the_live_secret_cap_are_refused" => {
            rotations_moments_apart_and_beyond_the_live_secret_cap_are_refused(store).await
        }
        "concurrent_writers_of_every_kind_all_succeed" => {
            concurrent_writers_of_every_kind_all_succeed(store).await
        }
        "claims_are_stored_and_an_organization_change_revokes_its_credentials_tokens" => {
            claims_are_stored_and_an_organization_change_revokes_its_credentials_tokens(store).await
        }
        "credentials_are_searched_by_text_environment_and_state_in_pages_newest_first" => {
            credentials_are_searched_by_text_environment_and_state_in_pages_newest_first(store)
                .await
        }
        "portal_flashes_are_taken_once_for_their_purpose_until_they_expire" => {
            portal_flashes_are_taken_once_for_their_purpose_until_they_expire(store).await
        }
        other => panic!("unknown conformance check {other}"),
    }
}

fn sys(now: i64) -> Guard {
    Guard::system(now)
}

/// The admin API's audience in these checks (the issuer).
pub const ISSUER: &str = "https://auth.example.test";

/// A system write that must keep a working admin for [`ISSUER`].
fn keep(now: i64) -> Guard {
    Guard { keep_platform_admin: Some(ISSUER.into()), ..sys(now) }
}

fn rotation(secret: &StoredSecret, expire_others_at: Option<i64>) -> Rotation {
    Rotation { secret: secret.clone(), expire_others_at, max_live: 5, settle_secs: 0 }
}

fn org(slug: &str) -> Organization {
    Organization {
        slug: slug.into(),
        name: format!("{slug} Inc."),
        created_at: 100,
        claims: tokenmint_core::CustomClaims::default(),
    }
}

fn secret(id: &str, byte: u8, created_at: i64) -> StoredSecret {
    StoredSecret {
        id: id.into(),
        hash: SecretHash([byte; 32]),
        hint: "tms_abcd…".into(),
        created_at,
        expires_at: None,
        last_used_at: None,
    }
}

/// A credential fixture.
pub fn credential(client_id: &str, org: &str, created_at: i64) -> Credential {
    Credential {
        client_id: ClientId::parse(client_id).unwrap(),
        name: format!("{client_id} name"),
        org: org.into(),
        environment: Environment::Sandbox,
        permissions: Permissions::from_stored(&["eligibility:write", "billing:read"]),
        audiences: vec!["https://api.example.com".into()],
        token_lifetime_secs: 3600,
        rate_limit_per_minute: Some(50),
        status: CredentialStatus::Active,
        expires_at: Some(10_000),
        created_at,
        updated_at: created_at,
        last_used_at: None,
        tokens_revoked_before: None,
        secrets: vec![secret(&format!("{client_id}-s1"), 1, created_at)],
        claims: tokenmint_core::CustomClaims::default(),
        org_claims: tokenmint_core::CustomClaims::default(),
        public_keys: Vec::new(),
        revision: 1,
    }
}

fn key(kid: &str, activates_at: i64) -> KeyRecord {
    KeyRecord {
        kid: kid.into(),
        alg: SigningAlgorithm::ES256,
        sealed_private: vec![1, 2, 3, kid.len() as u8],
        created_at: activates_at,
        activates_at,
        withdrawn_at: None,
    }
}

async fn meta_values_are_written_once(s: &dyn Store) {
    assert_eq!(s.get_meta("k").await.unwrap(), None);
    assert!(s.put_meta_if_absent("k", "v1").await.unwrap());
    assert!(!s.put_meta_if_absent("k", "v2").await.unwrap());
    assert_eq!(s.get_meta("k").await.unwrap().as_deref(), Some("v1"));
}

async fn organizations_are_unique_and_listed_in_pages(s: &dyn Store) {
    for slug in ["c", "a", "b"] {
        s.create_organization(&org(slug), &sys(100)).await.unwrap();
    }
    assert!(matches!(
        s.create_organization(&org("a"), &sys(100)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_organization("b").await.unwrap(), Some(org("b")));
    assert_eq!(s.get_organization("zz").await.unwrap(), None);
    let p1 = s.list_organizations(None, 2).await.unwrap();
    assert_eq!(p1.items.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    let p2 = s.list_organizations(p1.next.as_deref(), 2).await.unwrap();
    assert_eq!(p2.items.iter().map(|o| o.slug.as_str()).collect::<Vec<_>>(), ["c"]);
    assert_eq!(p2.next, None);
}

async fn credentials_round_trip_with_their_secrets(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    let mut c = credential("tmc_one", "acme", 100);
    c.secrets.push(secret("tmc_one-s2", 2, 101));
    c.secrets[1].expires_at = Some(5000);
    s.create_credential(&c, None, &sys(100)).await.unwrap();
    let back = s.get_credential("tmc_one").await.unwrap().unwrap();
    assert_eq!(back, c);
    assert_eq!(s.get_credential("tmc_none").await.unwrap(), None);
    assert_eq!(s.credential_revision("tmc_one").await.unwrap(), Some(back.revision));
    assert_eq!(s.credential_revision("tmc_none").await.unwrap(), None);
    // A credential without secrets still reads back.
    let mut bare = credential("tmc_bare", "acme", 100);
    bare.secrets.clear();
    bare.expires_at = None;
    bare.rate_limit_per_minute = None;
    s.create_credential(&bare, None, &sys(100)).await.unwrap();
    assert_eq!(s.get_credential("tmc_bare").await.unwrap().unwrap(), bare);
}

async fn creating_a_credential_creates_its_missing_organization(s: &dyn Store) {
    let c = credential("tmc_x", "newco", 100);
    assert!(matches!(s.create_credential(&c, None, &sys(100)).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.get_credential("tmc_x").await.unwrap(), None);
    assert!(s.create_credential(&c, Some(&org("newco")), &sys(100)).await.unwrap(), "created");
    assert!(s.get_organization("newco").await.unwrap().is_some());
    // An existing organization is left alone.
    let c2 = credential("tmc_y", "newco", 101);
    let mut renamed = org("newco");
    renamed.name = "Other".into();
    assert!(!s.create_credential(&c2, Some(&renamed), &sys(100)).await.unwrap(), "not created");
    assert_eq!(s.get_organization("newco").await.unwrap().unwrap().name, "newco Inc.");
}

async fn duplicate_client_ids_conflict_and_leave_nothing_behind(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_dup", "acme", 100), None, &sys(100)).await.unwrap();
    let mut again = credential("tmc_dup", "acme", 200);
    again.secrets = vec![secret("other-secret", 9, 200)];
    assert!(matches!(
        s.create_credential(&again, None, &sys(100)).await,
        Err(StoreError::Conflict(_))
    ));
    let back = s.get_credential("tmc_dup").await.unwrap().unwrap();
    assert_eq!(back.created_at, 100);
    assert_eq!(back.secrets.len(), 1);
    assert_eq!(back.secrets[0].id, "tmc_dup-s1");
    // The half of the failed write that touched another table is not there either.
    let mut clash = credential("tmc_new", "acme", 300);
    clash.secrets = vec![secret("tmc_dup-s1", 5, 300)];
    assert!(s.create_credential(&clash, None, &sys(100)).await.is_err());
    assert_eq!(s.get_credential("tmc_new").await.unwrap(), None);
}

async fn updates_check_the_revision(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    let c = credential("tmc_u", "acme", 100);
    s.create_credential(&c, None, &sys(100)).await.unwrap();
    let mut changed = c.clone();
    changed.name = "renamed".into();
    changed.status = CredentialStatus::Deactivated;
    changed.tokens_revoked_before = Some(RevocationCutoff::at_micros(150_250_000));
    changed.updated_at = 150;
    changed.permissions = Permissions::from_stored(&["billing:write"]);
    changed.audiences = vec![];
    changed.expires_at = None;
    changed.rate_limit_per_minute = None;
    let rev = NewRevocation {
        revocation: Revocation::Credential {
            client_id: "tmc_u".into(),
            issued_before: 150,
            issued_before_jti: Some(RevocationCutoff::at_micros(150_250_000).jti_boundary()),
        },
        expires_at: 150 + 3600,
    };
    s.update_credential(&changed, Some(&rev), &sys(0)).await.unwrap();
    changed.revision = 2;
    assert_eq!(s.get_credential("tmc_u").await.unwrap().unwrap(), changed);
    // A stale revision is refused and nothing changes.
    let mut stale = changed.clone();
    stale.name = "stale".into();
    stale.revision = 1;
    assert!(matches!(
        s.update_credential(&stale, None, &sys(0)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_credential("tmc_u").await.unwrap().unwrap().name, "renamed");
    stale.revision = 2;
    s.update_credential(&stale, None, &sys(0)).await.unwrap();
    let gone = credential("tmc_gone", "acme", 1);
    assert!(matches!(
        s.update_credential(&gone, None, &sys(0)).await,
        Err(StoreError::NotFound(_))
    ));
    let feed = s.list_revocations(0, 10, 0).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].revocation, rev.revocation);
}

async fn rotation_expires_older_secrets_and_deletion_removes_one(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_r", "acme", 100), None, &sys(100)).await.unwrap();
    s.add_secret("tmc_r", &rotation(&secret("s2", 2, 200), Some(500)), &sys(200)).await.unwrap();
    let c = s.get_credential("tmc_r").await.unwrap().unwrap();
    assert_eq!(c.secrets.len(), 2);
    assert_eq!(c.secrets[0].expires_at, Some(500));
    assert_eq!(c.secrets[1].expires_at, None);
    assert_eq!(c.updated_at, 200);
    // A second rotation never extends an earlier, shorter overlap.
    s.add_secret("tmc_r", &rotation(&secret("s3", 3, 300), Some(900)), &sys(300)).await.unwrap();
    let c = s.get_credential("tmc_r").await.unwrap().unwrap();
    assert_eq!(
        c.secrets.iter().map(|x| x.expires_at).collect::<Vec<_>>(),
        [Some(500), Some(900), None]
    );
    s.delete_secret("tmc_r", "s2", &sys(310)).await.unwrap();
    assert!(matches!(
        s.delete_secret("tmc_r", "s2", &sys(311)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.add_secret("tmc_none", &rotation(&secret("s9", 9, 1), None), &sys(1)).await,
        Err(StoreError::NotFound(_))
    ));
    let c = s.get_credential("tmc_r").await.unwrap().unwrap();
    assert_eq!(c.secrets.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["tmc_r-s1", "s3"]);
}

async fn usage_only_moves_forward(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_use", "acme", 100), None, &sys(100)).await.unwrap();
    let u = |at| Usage { client_id: "tmc_use".into(), secret_id: "tmc_use-s1".into(), at };
    s.record_usage(&[u(300), u(200)]).await.unwrap();
    s.record_usage(&[Usage { client_id: "tmc_unknown".into(), secret_id: "x".into(), at: 1 }])
        .await
        .unwrap();
    let c = s.get_credential("tmc_use").await.unwrap().unwrap();
    assert_eq!(c.last_used_at, Some(300));
    assert_eq!(c.secrets[0].last_used_at, Some(300));
}

async fn credentials_are_listed_in_pages_and_by_organization(s: &dyn Store) {
    s.create_organization(&org("a"), &sys(100)).await.unwrap();
    s.create_organization(&org("b"), &sys(100)).await.unwrap();
    for i in 0..5 {
        let o = if i % 2 == 0 { "a" } else { "b" };
        s.create_credential(&credential(&format!("tmc_{i}"), o, 100 + i / 2), None, &sys(100))
            .await
            .unwrap();
    }
    let mut seen = vec![];
    let mut after = None;
    loop {
        let page = s
            .list_credentials(&CredentialFilter { org: None, after: after.clone(), limit: 2 })
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        assert!(page.items.iter().all(|c| c.secrets.len() == 1));
        seen.extend(page.items.into_iter().map(|c| c.client_id.into_string()));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(seen, ["tmc_0", "tmc_1", "tmc_2", "tmc_3", "tmc_4"]);
    let forged = CredentialFilter { org: None, after: Some("garbage".into()), limit: 2 };
    assert!(matches!(s.list_credentials(&forged).await, Err(StoreError::InvalidCursor)));
    let only_a = s
        .list_credentials(&CredentialFilter { org: Some("a".into()), after: None, limit: 10 })
        .await
        .unwrap();
    assert_eq!(
        only_a.items.iter().map(|c| c.client_id.as_str()).collect::<Vec<_>>(),
        ["tmc_0", "tmc_2", "tmc_4"]
    );
    assert_eq!(only_a.next, None);
}

async fn keys_are_inserted_once_per_pending_window_and_withdrawn_with_a_feed_entry(s: &dyn Store) {
    assert!(s.insert_key(&key("k1", 0), Some(0), &sys(0)).await.unwrap());
    assert!(s.insert_key(&key("k2", 100), Some(10), &sys(0)).await.unwrap());
    // k2 is pending after 10: a second conditional insert in that window is refused.
    assert!(!s.insert_key(&key("k3", 200), Some(20), &sys(0)).await.unwrap());
    // An unconditional insert is not.
    assert!(s.insert_key(&key("k4", 300), None, &sys(0)).await.unwrap());
    let keys = s.list_keys().await.unwrap();
    assert_eq!(keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(), ["k1", "k2", "k4"]);
    assert_eq!(keys[0], key("k1", 0));
    let rev = NewRevocation { revocation: Revocation::Key { kid: "k4".into() }, expires_at: 9999 };
    s.withdraw_key("k4", &rev, &sys(50)).await.unwrap();
    assert!(matches!(s.withdraw_key("k4", &rev, &sys(51)).await, Err(StoreError::NotFound(_))));
    assert_eq!(s.list_keys().await.unwrap()[2].withdrawn_at, Some(50));
    assert_eq!(s.list_revocations(0, 10, 0).await.unwrap()[0].revocation, rev.revocation);
    s.delete_keys(&["k1".into()]).await.unwrap();
    assert_eq!(s.list_keys().await.unwrap().len(), 2);
}

async fn revocations_form_a_feed_and_expire(s: &dyn Store) {
    assert_eq!(s.latest_revocation().await.unwrap(), 0);
    let t = |jti: &str, exp| NewRevocation {
        revocation: Revocation::Token { jti: jti.into() },
        expires_at: exp,
    };
    let c1 = s.add_revocation(&t("j1", 100), 10).await.unwrap();
    let c2 = s.add_revocation(&t("j2", 300), 11).await.unwrap();
    let c3 = s.add_revocation(&t("j3", 200), 12).await.unwrap();
    assert!(c1 < c2 && c2 < c3);
    assert_eq!(s.latest_revocation().await.unwrap(), c3);
    let all = s.list_revocations(0, 10, 50).await.unwrap();
    assert_eq!(all.iter().map(|e| e.cursor).collect::<Vec<_>>(), [c1, c2, c3]);
    let after = s.list_revocations(c1, 10, 150).await.unwrap();
    assert_eq!(after.iter().map(|e| e.cursor).collect::<Vec<_>>(), [c2, c3]);
    let limited = s.list_revocations(0, 1, 150).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].cursor, c2);
    assert_eq!(s.list_revocations(0, 10, 250).await.unwrap().len(), 1);
}

async fn every_write_appears_in_the_change_log(s: &dyn Store) {
    let start = s.latest_change().await.unwrap();
    s.create_credential(&credential("tmc_c", "logco", 100), Some(&org("logco")), &sys(100))
        .await
        .unwrap();
    s.add_secret("tmc_c", &rotation(&secret("s2", 2, 101), None), &sys(101)).await.unwrap();
    s.insert_key(&key("kc", 0), None, &sys(0)).await.unwrap();
    s.add_revocation(
        &NewRevocation { revocation: Revocation::Token { jti: "j".into() }, expires_at: 500 },
        102,
    )
    .await
    .unwrap();
    let changes = s.changes_after(start, 100).await.unwrap();
    let kinds: Vec<(Entity, &str)> = changes.iter().map(|c| (c.entity, c.key.as_str())).collect();
    assert_eq!(kinds[0], (Entity::Organization, "logco"));
    assert_eq!(kinds[1], (Entity::Credential, "tmc_c"));
    assert_eq!(kinds[2], (Entity::Credential, "tmc_c"));
    assert_eq!(kinds[3], (Entity::Key, "kc"));
    assert_eq!(kinds[4].0, Entity::Revocation);
    assert!(changes.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(s.latest_change().await.unwrap(), changes.last().unwrap().seq);
    // Usage is not a change: caches must not churn on every token.
    let before = s.latest_change().await.unwrap();
    s.record_usage(&[Usage { client_id: "tmc_c".into(), secret_id: "s2".into(), at: 200 }])
        .await
        .unwrap();
    assert_eq!(s.latest_change().await.unwrap(), before);
}

async fn purge_removes_what_has_expired(s: &dyn Store) {
    s.create_credential(&credential("tmc_p", "pco", 100), Some(&org("pco")), &sys(100))
        .await
        .unwrap();
    s.add_secret("tmc_p", &rotation(&secret("s2", 2, 150), Some(200)), &sys(150)).await.unwrap();
    s.add_revocation(
        &NewRevocation { revocation: Revocation::Token { jti: "old".into() }, expires_at: 300 },
        150,
    )
    .await
    .unwrap();
    s.add_revocation(
        &NewRevocation { revocation: Revocation::Token { jti: "new".into() }, expires_at: 900 },
        150,
    )
    .await
    .unwrap();
    assert!(s.purge(400, 250).await.unwrap() >= 2);
    let feed = s.list_revocations(0, 10, 0).await.unwrap();
    assert_eq!(feed.len(), 1);
    assert_eq!(feed[0].revocation, Revocation::Token { jti: "new".into() });
    let c = s.get_credential("tmc_p").await.unwrap().unwrap();
    assert_eq!(c.secrets.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["s2"]);
    s.ping().await.unwrap();
}

fn audit(at: i64, kind: &str, org: Option<&str>, client: Option<&str>) -> AuditRecord {
    AuditRecord {
        seq: 0,
        at,
        kind: kind.into(),
        org: org.map(String::from),
        client_id: client.map(String::from),
        actor: Some("credential:tmc_admin".into()),
        source_ip: Some("192.0.2.7".into()),
        reason: None,
        details: serde_json::json!({"n": at}),
    }
}

async fn audit_records_are_appended_in_order_and_filtered(s: &dyn Store) {
    s.append_audit(&[
        audit(10, "credential.created", Some("acme"), Some("tmc_a")),
        AuditRecord {
            actor: Some("user:ada@acme.test".into()),
            ..audit(11, "token.refused", Some("acme"), Some("tmc_a"))
        },
        audit(12, "credential.created", Some("other"), Some("tmc_b")),
    ])
    .await
    .unwrap();
    s.append_audit(&[]).await.unwrap();
    let all = s.list_audit(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.iter().map(|r| r.at).collect::<Vec<_>>(), [10, 11, 12]);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert_eq!(all[0].details, serde_json::json!({"n": 10}));
    assert_eq!(all[0].source_ip.as_deref(), Some("192.0.2.7"));
    let acme = s
        .list_audit(&AuditFilter { org: Some("acme".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(acme.len(), 2);
    let kind = s
        .list_audit(&AuditFilter {
            kind: Some("credential.created".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(kind.len(), 2);
    let client = s
        .list_audit(&AuditFilter {
            client_id: Some("tmc_b".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(client.len(), 1);
    let window = s
        .list_audit(&AuditFilter {
            since: Some(11),
            until: Some(11),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(window.len(), 1);
    let page = s
        .list_audit(&AuditFilter { after: Some(all[0].seq), limit: 1, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].at, 11);
    // Newest first, by actor, and in pages whose cursor is the last seq seen.
    let newest = s
        .list_audit(&AuditFilter { newest_first: true, limit: 2, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(newest.iter().map(|r| r.at).collect::<Vec<_>>(), [12, 11]);
    let older = s
        .list_audit(&AuditFilter {
            newest_first: true,
            before: Some(newest[1].seq),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(older.iter().map(|r| r.at).collect::<Vec<_>>(), [10]);
    let by = s
        .list_audit(&AuditFilter {
            actor: Some("user:ada@acme.test".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(by.iter().map(|r| r.at).collect::<Vec<_>>(), [11]);
    assert_eq!(s.purge_audit(11).await.unwrap(), 1);
    assert_eq!(
        s.list_audit(&AuditFilter { limit: 10, ..Default::default() }).await.unwrap().len(),
        2
    );
}

async fn token_counts_add_up_per_minute(s: &dyn Store) {
    let c = |minute, count| TokenCount { client_id: "tmc_a", minute, count };
    s.add_token_counts(&[c(60, 2), c(120, 1)]).await.unwrap();
    s.add_token_counts(&[c(60, 3), TokenCount { client_id: "tmc_b", minute: 60, count: 9 }])
        .await
        .unwrap();
    assert_eq!(s.token_counts("tmc_a", 0).await.unwrap(), [(60, 5), (120, 1)]);
    assert_eq!(s.token_counts("tmc_a", 100).await.unwrap(), [(120, 1)]);
    assert_eq!(s.token_counts("tmc_b", 0).await.unwrap(), [(60, 9)]);
}

async fn alert_deliveries_are_kept_newest_first(s: &dyn Store) {
    for (i, delivered) in [(1, true), (2, false)] {
        s.record_alert_delivery(&AlertDelivery {
            id: format!("d{i}"),
            at: i,
            kind: "auth_failures".into(),
            target: "https://hooks.example.com/x".into(),
            payload: "{}".into(),
            attempts: i,
            delivered,
            last_error: (!delivered).then(|| "HTTP 500".into()),
        })
        .await
        .unwrap();
    }
    let list = s.list_alert_deliveries(10).await.unwrap();
    assert_eq!(list.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["d2", "d1"]);
    assert!(!list[0].delivered);
    assert_eq!(list[0].last_error.as_deref(), Some("HTTP 500"));
}

async fn networks_are_remembered_once_per_credential(s: &dyn Store) {
    assert_eq!(s.remember_network("tmc_a", "192.0.2.0/24", 1).await.unwrap(), (true, 0));
    assert_eq!(s.remember_network("tmc_a", "192.0.2.0/24", 2).await.unwrap(), (false, 0));
    assert_eq!(s.remember_network("tmc_a", "198.51.100.0/24", 3).await.unwrap(), (true, 1));
    assert_eq!(s.remember_network("tmc_b", "192.0.2.0/24", 4).await.unwrap(), (true, 0));
    // A credential's first two networks seen at the same moment (two instances, two
    // connections): one of them is the first, the other is new beside it, never both first.
    for round in 0..20 {
        let client = format!("tmc_race{round}");
        let (one, other) = tokio::join!(
            s.remember_network(&client, "192.0.2.0/24", 5),
            s.remember_network(&client, "198.51.100.0/24", 5)
        );
        let mut seen = [one.unwrap(), other.unwrap()];
        seen.sort();
        assert_eq!(seen, [(true, 0), (true, 1)], "round {round}");
    }
}

async fn an_alert_is_claimed_once_per_window(s: &dyn Store) {
    assert!(s.claim_alert("h1", 1_000, 900).await.unwrap());
    assert!(!s.claim_alert("h1", 1_000, 900).await.unwrap(), "the same alert at once");
    assert!(!s.claim_alert("h1", 1_899, 900).await.unwrap(), "within the window");
    assert!(s.claim_alert("h2", 1_001, 900).await.unwrap(), "another alert");
    assert!(s.claim_alert("h1", 1_900, 900).await.unwrap(), "the window is over");
    assert!(!s.claim_alert("h1", 1_901, 900).await.unwrap());
}

async fn a_client_assertion_is_used_once_until_it_expires(s: &dyn Store) {
    assert!(s.use_client_assertion("k1", 1_300, 1_000).await.unwrap());
    assert!(!s.use_client_assertion("k1", 1_300, 1_000).await.unwrap(), "a replay at once");
    assert!(!s.use_client_assertion("k1", 1_300, 1_299).await.unwrap(), "before it expires");
    assert!(s.use_client_assertion("k2", 1_300, 1_000).await.unwrap(), "another assertion");
    // Past its expiry the record goes (the assertion itself is refused as expired by then).
    assert!(s.use_client_assertion("k1", 1_600, 1_300).await.unwrap());
    // Many callers at once: exactly one wins.
    let tries = (0..8).map(|_| s.use_client_assertion("k3", 2_000, 1_000));
    let won = futures_util::future::join_all(tries).await;
    assert_eq!(won.iter().filter(|w| matches!(w, Ok(true))).count(), 1, "{won:?}");
    assert!(won.iter().all(Result::is_ok));
}

async fn public_keys_round_trip_and_change_with_the_credential(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    let jwk = r#"{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k1","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        {"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}"#;
    let keys = tokenmint_core::assertion::parse_public_keys(jwk).unwrap();
    let mut c = credential("tmc_keys", "acme", 100);
    c.secrets.clear();
    c.public_keys = keys.clone();
    s.create_credential(&c, None, &sys(100)).await.unwrap();
    let back = s.get_credential("tmc_keys").await.unwrap().unwrap();
    assert_eq!(back.public_keys, keys);
    assert!(back.secrets.is_empty());
    let mut next = back.clone();
    next.public_keys.remove(0);
    s.update_credential(&next, None, &sys(101)).await.unwrap();
    let after = s.get_credential("tmc_keys").await.unwrap().unwrap();
    assert_eq!(after.public_keys, keys[1..]);
}

fn user(id: &str, org: &str, email: &str, role: UserRole) -> PortalUser {
    PortalUser {
        id: id.into(),
        org: org.into(),
        email: email.into(),
        role,
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".into(),
        status: UserStatus::Active,
        created_at: 10,
        updated_at: 10,
        last_sign_in_at: None,
    }
}

async fn portal_users_are_unique_by_email_whatever_its_case(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    let ada = user("usr_1", "acme", "Ada@Example.com", UserRole::Admin);
    s.create_user(&ada, &sys(0)).await.unwrap();
    assert_eq!(s.get_user("usr_1").await.unwrap().as_ref(), Some(&ada));
    assert_eq!(s.find_user_by_email("ada@example.COM").await.unwrap().as_ref(), Some(&ada));
    assert_eq!(s.find_user_by_email("bob@example.com").await.unwrap(), None);
    let twin = user("usr_2", "acme", "ADA@example.com", UserRole::Viewer);
    assert!(matches!(s.create_user(&twin, &sys(0)).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.get_user("usr_2").await.unwrap(), None);
    let orphan = user("usr_3", "nowhere", "c@example.com", UserRole::Viewer);
    assert!(matches!(s.create_user(&orphan, &sys(0)).await, Err(StoreError::NotFound(_))));
    s.record_sign_in("usr_1", 42).await.unwrap();
    assert_eq!(s.get_user("usr_1").await.unwrap().unwrap().last_sign_in_at, Some(42));
    // The hash is kept out of Debug output.
    assert!(!format!("{ada:?}").contains("argon2"));
}

async fn portal_users_are_listed_by_organization_and_deactivated(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_organization(&org("globex"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "zed@acme.test", UserRole::Viewer), &sys(0)).await.unwrap();
    s.create_user(&user("u2", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    s.create_user(&user("u3", "globex", "hank@globex.test", UserRole::Platform), &sys(0))
        .await
        .unwrap();
    let acme = s.list_users(Some("acme")).await.unwrap();
    assert_eq!(acme.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["u2", "u1"]);
    assert_eq!(s.list_users(None).await.unwrap().len(), 3);
    assert_eq!(s.list_users(Some("initech")).await.unwrap(), []);
    s.set_user_status("u1", UserStatus::Deactivated, &sys(50)).await.unwrap();
    let u1 = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u1.status, u1.updated_at), (UserStatus::Deactivated, 50));
    assert_eq!(u1.role, UserRole::Viewer);
    assert!(matches!(
        s.set_user_status("nobody", UserStatus::Deactivated, &sys(50)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn portal_sessions_expire_and_end_with_their_user(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    let session = |id: &str, expires_at| PortalSession {
        id_hash: id.into(),
        user_id: "u1".into(),
        csrf_secret: format!("csrf-{id}"),
        created_at: 100,
        expires_at,
    };
    s.create_session(&session("h1", 200)).await.unwrap();
    s.create_session(&session("h2", 300)).await.unwrap();
    s.create_session(&session("h3", 400)).await.unwrap();
    assert_eq!(s.get_session("h1", 150).await.unwrap(), Some(session("h1", 200)));
    assert_eq!(s.get_session("h1", 200).await.unwrap(), None, "expired at its expiry");
    assert_eq!(s.get_session("nope", 150).await.unwrap(), None);
    assert!(matches!(
        s.create_session(&PortalSession { user_id: "ghost".into(), ..session("h9", 500) }).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.purge_sessions(250).await.unwrap(), 1);
    s.delete_session("h2").await.unwrap();
    assert_eq!(s.get_session("h2", 150).await.unwrap(), None);
    assert!(s.get_session("h3", 150).await.unwrap().is_some());
    s.set_user_status("u1", UserStatus::Deactivated, &sys(160)).await.unwrap();
    assert_eq!(s.get_session("h3", 150).await.unwrap(), None, "deactivation ends sessions");
    assert!(!format!("{:?}", session("h1", 1)).contains("csrf-"));
}

async fn a_deactivated_users_email_is_taken_by_a_new_user_and_reactivation_claims_it_back(
    s: &dyn Store,
) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_organization(&org("globex"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "Amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    s.set_user_status("u1", UserStatus::Deactivated, &sys(10)).await.unwrap();
    // Another organization may now give the address to a new user.
    s.create_user(&user("u2", "globex", "amy@ACME.test", UserRole::Viewer), &sys(20))
        .await
        .unwrap();
    assert_eq!(s.find_user_by_email("amy@acme.test").await.unwrap().unwrap().id, "u2");
    let old = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!((old.email.as_str(), old.status), ("Amy@acme.test", UserStatus::Deactivated));
    // The old user cannot come back while the new one holds the address...
    assert!(matches!(
        s.set_user_status("u1", UserStatus::Active, &sys(30)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.get_user("u1").await.unwrap().unwrap().status, UserStatus::Deactivated);
    // ...and can once the new one is deactivated in turn.
    s.set_user_status("u2", UserStatus::Deactivated, &sys(40)).await.unwrap();
    s.set_user_status("u1", UserStatus::Active, &sys(50)).await.unwrap();
    assert_eq!(s.find_user_by_email("AMY@acme.test").await.unwrap().unwrap().id, "u1");
    assert_eq!(s.list_users(None).await.unwrap().len(), 2);
    // An active holder keeps the address.
    assert!(matches!(
        s.create_user(&user("u3", "globex", "amy@acme.test", UserRole::Viewer), &sys(60)).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn password_resets_work_once_until_they_expire_for_active_users(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    let reset = |code: &str, expires_at| PasswordReset {
        code_hash: code.into(),
        user_id: "u1".into(),
        created_at: 100,
        expires_at,
    };
    s.create_password_reset(&reset("c1", 200), &sys(100)).await.unwrap();
    assert!(!format!("{:?}", reset("c1", 200)).contains("c1"));
    assert_eq!(s.find_password_reset("c1", 150).await.unwrap().unwrap().id, "u1");
    assert_eq!(s.find_password_reset("c1", 200).await.unwrap(), None, "expired at its expiry");
    // A newer code replaces the older one.
    s.create_password_reset(&reset("c2", 300), &sys(110)).await.unwrap();
    assert_eq!(s.find_password_reset("c1", 150).await.unwrap(), None);
    s.create_session(&PortalSession {
        id_hash: "h1".into(),
        user_id: "u1".into(),
        csrf_secret: "x".into(),
        created_at: 100,
        expires_at: 900,
    })
    .await
    .unwrap();
    assert!(matches!(
        s.redeem_password_reset("c2", "new-hash", 300).await,
        Err(StoreError::NotFound(_))
    ));
    let u = s.redeem_password_reset("c2", "new-hash", 250).await.unwrap();
    assert_eq!((u.id.as_str(), u.password_hash.as_str()), ("u1", "new-hash"));
    assert_eq!(s.get_session("h1", 250).await.unwrap(), None, "a reset ends every session");
    // Once only.
    assert!(matches!(
        s.redeem_password_reset("c2", "other-hash", 260).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(s.get_user("u1").await.unwrap().unwrap().password_hash, "new-hash");
    // A role change voids pending codes: they were issued for the user as they were.
    s.create_password_reset(&reset("c5", 900), &sys(290)).await.unwrap();
    assert_eq!(s.find_password_reset("c5", 295).await.unwrap().unwrap().id, "u1");
    s.set_user_role("u1", UserRole::Platform, &sys(296)).await.unwrap();
    assert_eq!(s.find_password_reset("c5", 297).await.unwrap(), None, "role change voids it");
    assert!(matches!(
        s.redeem_password_reset("c5", "other-hash", 298).await,
        Err(StoreError::NotFound(_))
    ));
    s.set_user_role("u1", UserRole::Admin, &sys(299)).await.unwrap();
    // Not for a deactivated user, and deactivation drops pending codes.
    s.create_password_reset(&reset("c3", 900), &sys(300)).await.unwrap();
    s.set_user_status("u1", UserStatus::Deactivated, &sys(310)).await.unwrap();
    s.set_user_status("u1", UserStatus::Active, &sys(320)).await.unwrap();
    assert!(matches!(
        s.redeem_password_reset("c3", "other-hash", 330).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        s.create_password_reset(
            &PasswordReset { user_id: "ghost".into(), ..reset("c4", 900) },
            &sys(300)
        )
        .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn roles_and_passwords_change_and_a_password_change_ends_the_other_sessions(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Viewer), &sys(0)).await.unwrap();
    s.set_user_role("u1", UserRole::Admin, &sys(10)).await.unwrap();
    let u = s.get_user("u1").await.unwrap().unwrap();
    assert_eq!((u.role, u.updated_at), (UserRole::Admin, 10));
    assert!(matches!(
        s.set_user_role("nobody", UserRole::Admin, &sys(10)).await,
        Err(StoreError::NotFound(_))
    ));
    for id in ["h1", "h2"] {
        s.create_session(&PortalSession {
            id_hash: id.into(),
            user_id: "u1".into(),
            csrf_secret: "x".into(),
            created_at: 100,
            expires_at: 900,
        })
        .await
        .unwrap();
    }
    s.set_user_password("u1", "new-hash", Some("h1"), &sys(200)).await.unwrap();
    assert_eq!(s.get_user("u1").await.unwrap().unwrap().password_hash, "new-hash");
    assert!(s.get_session("h1", 250).await.unwrap().is_some(), "the changing session stays");
    assert_eq!(s.get_session("h2", 250).await.unwrap(), None);
    assert!(matches!(
        s.set_user_password("nobody", "h", None, &sys(200)).await,
        Err(StoreError::NotFound(_))
    ));
}

/// A platform-admin credential fixture (no expiry, no audiences, one live secret).
pub fn admin_credential(client_id: &str, created_at: i64) -> Credential {
    let mut c = credential(client_id, "platform", created_at);
    c.permissions = Permissions::from_stored(&["tokenmint:admin"]);
    c.audiences = vec![];
    c.expires_at = None;
    c
}

fn acting(client_id: &str, now: i64) -> Guard {
    Guard {
        actor: GuardActor::Credential { client_id: client_id.into(), token: None },
        now,
        keep_platform_admin: None,
    }
}

fn refused(r: Result<(), StoreError>) -> Refusal {
    match r {
        Err(StoreError::Refused(why)) => why,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

async fn a_write_by_an_actor_no_longer_authorized_is_refused_and_changes_nothing(s: &dyn Store) {
    s.create_organization(&org("platform"), &sys(100)).await.unwrap();
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&admin_credential("tmc_a", 100), None, &sys(100)).await.unwrap();
    s.create_credential(&admin_credential("tmc_b", 100), None, &sys(100)).await.unwrap();
    let target = credential("tmc_t", "acme", 100);
    s.create_credential(&target, None, &sys(100)).await.unwrap();
    let mut renamed = target.clone();
    renamed.name = "renamed".into();
    // Still authorized: the write goes through.
    s.update_credential(&renamed, None, &acting("tmc_a", 200)).await.unwrap();
    renamed.revision = 2;

    // Deactivated, expired, or without tokenmint:admin: refused.
    let mut b = s.get_credential("tmc_b").await.unwrap().unwrap();
    b.status = CredentialStatus::Deactivated;
    s.update_credential(&b, None, &sys(200)).await.unwrap();
    renamed.name = "by a deactivated admin".into();
    let why = refused(s.update_credential(&renamed, None, &acting("tmc_b", 200)).await);
    assert!(matches!(why, Refusal::ActorNoLongerAuthorized { .. }), "{why:?}");
    assert!(why.to_string().contains("nothing was changed"), "{why}");
    let mut a = s.get_credential("tmc_a").await.unwrap().unwrap();
    a.expires_at = Some(300);
    s.update_credential(&a, None, &sys(200)).await.unwrap();
    assert!(matches!(
        refused(s.update_credential(&renamed, None, &acting("tmc_a", 300)).await),
        Refusal::ActorNoLongerAuthorized { .. }
    ));
    // Every guarded kind of write re-checks the actor.
    let guard = acting("tmc_b", 200);
    let rot = rotation(&secret("s2", 2, 200), None);
    assert!(matches!(s.add_secret("tmc_t", &rot, &guard).await, Err(StoreError::Refused(_))));
    assert!(matches!(
        s.delete_secret("tmc_t", "tmc_t-s1", &guard).await,
        Err(StoreError::Refused(_))
    ));
    let other = credential("tmc_o", "acme", 200);
    assert!(matches!(s.create_credential(&other, None, &guard).await, Err(StoreError::Refused(_))));
    assert!(matches!(s.create_organization(&org("x"), &guard).await, Err(StoreError::Refused(_))));
    let u = user("u9", "acme", "u9@acme.test", UserRole::Viewer);
    assert!(matches!(s.create_user(&u, &guard).await, Err(StoreError::Refused(_))));
    let rev = NewRevocation { revocation: Revocation::Key { kid: "k".into() }, expires_at: 999 };
    s.insert_key(&key("k", 0), None, &sys(0)).await.unwrap();
    assert!(matches!(s.withdraw_key("k", &rev, &guard).await, Err(StoreError::Refused(_))));
    assert!(matches!(s.insert_key(&key("k2", 0), None, &guard).await, Err(StoreError::Refused(_))));
    let t = s.get_credential("tmc_t").await.unwrap().unwrap();
    assert_eq!((t.name.as_str(), t.secrets.len()), ("renamed", 1));
    assert_eq!(s.get_credential("tmc_o").await.unwrap(), None);
    assert_eq!(s.get_organization("x").await.unwrap(), None);
    assert_eq!(s.get_user("u9").await.unwrap(), None);

    // A token revoked after it authorized the request no longer acts.
    let mut a = s.get_credential("tmc_a").await.unwrap().unwrap();
    a.expires_at = None;
    a.tokens_revoked_before = Some(RevocationCutoff::at_micros(200_500_000));
    s.update_credential(&a, None, &sys(200)).await.unwrap();
    let with_token = |micros: i64| Guard {
        actor: GuardActor::Credential {
            client_id: "tmc_a".into(),
            token: Some((micros / 1_000_000, token_id(micros))),
        },
        now: 201,
        keep_platform_admin: None,
    };
    assert!(matches!(
        refused(s.update_credential(&renamed, None, &with_token(200_100_000)).await),
        Refusal::ActorNoLongerAuthorized { .. }
    ));
    s.update_credential(&renamed, None, &with_token(200_900_000)).await.unwrap();

    // A user: deactivated or given another role since.
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    let as_admin = Guard {
        actor: GuardActor::User { id: "u1".into(), role: UserRole::Admin },
        now: 300,
        keep_platform_admin: None,
    };
    let as_viewer = Guard {
        actor: GuardActor::User { id: "u1".into(), role: UserRole::Viewer },
        ..as_admin.clone()
    };
    s.create_user(&user("u2", "acme", "bo@acme.test", UserRole::Viewer), &as_admin).await.unwrap();
    assert!(matches!(
        refused(s.set_user_status("u2", UserStatus::Deactivated, &as_viewer).await),
        Refusal::ActorNoLongerAuthorized { .. }
    ));
    s.set_user_status("u1", UserStatus::Deactivated, &sys(300)).await.unwrap();
    assert!(matches!(
        refused(s.set_user_status("u2", UserStatus::Deactivated, &as_admin).await),
        Refusal::ActorNoLongerAuthorized { .. }
    ));
    assert_eq!(s.get_user("u2").await.unwrap().unwrap().status, UserStatus::Active);
}

async fn a_write_that_would_leave_no_working_admin_is_refused_and_changes_nothing(s: &dyn Store) {
    s.create_organization(&org("platform"), &sys(100)).await.unwrap();
    s.create_credential(&admin_credential("tmc_a", 100), None, &sys(100)).await.unwrap();
    s.create_credential(&admin_credential("tmc_b", 100), None, &sys(100)).await.unwrap();
    // With two admins, one may go.
    let mut b = s.get_credential("tmc_b").await.unwrap().unwrap();
    b.status = CredentialStatus::Deactivated;
    s.update_credential(&b, None, &keep(200)).await.unwrap();
    // The last one may not, by any path: deactivation, losing the scope, expiry, its last secret.
    let a = s.get_credential("tmc_a").await.unwrap().unwrap();
    let mut off = a.clone();
    off.status = CredentialStatus::Deactivated;
    let mut demoted = a.clone();
    demoted.permissions = Permissions::from_stored(&["tokenmint:introspect"]);
    let mut expiring = a.clone();
    expiring.expires_at = Some(200);
    for change in [&off, &demoted, &expiring] {
        let why = refused(s.update_credential(change, None, &keep(200)).await);
        assert_eq!(why, Refusal::LastPlatformAdmin);
        assert!(why.to_string().contains("another admin credential"), "{why}");
    }
    assert_eq!(
        refused(s.delete_secret("tmc_a", "tmc_a-s1", &keep(200)).await),
        Refusal::LastPlatformAdmin
    );
    let ends_now = rotation(&secret("s2", 2, 200), Some(200));
    let mut ends_now_expired = ends_now.clone();
    ends_now_expired.secret.expires_at = Some(200);
    assert_eq!(
        refused(s.add_secret("tmc_a", &ends_now_expired, &keep(200)).await),
        Refusal::LastPlatformAdmin
    );
    assert_eq!(s.get_credential("tmc_a").await.unwrap().unwrap(), a, "nothing changed");
    // A rotation that leaves a live secret is fine, and so is reactivating the other admin.
    s.add_secret("tmc_a", &ends_now, &keep(200)).await.unwrap();
    let mut b = s.get_credential("tmc_b").await.unwrap().unwrap();
    b.status = CredentialStatus::Active;
    s.update_credential(&b, None, &keep(200)).await.unwrap();
    let a = s.get_credential("tmc_a").await.unwrap().unwrap();
    let mut off = a.clone();
    off.status = CredentialStatus::Deactivated;
    s.update_credential(&off, None, &keep(200)).await.unwrap();
}

async fn a_write_that_schedules_the_end_of_the_last_working_admin_is_refused(s: &dyn Store) {
    s.create_organization(&org("platform"), &sys(100)).await.unwrap();
    s.create_credential(&admin_credential("tmc_a", 100), None, &sys(100)).await.unwrap();
    let a = s.get_credential("tmc_a").await.unwrap().unwrap();
    let last_admin = |r: Result<(), StoreError>| assert_eq!(refused(r), Refusal::LastPlatformAdmin);

    // The only admin cannot be narrowed away from the admin API's audience, given an expiry,
    // however distant, or left with secrets that all expire.
    let mut elsewhere = a.clone();
    elsewhere.audiences = vec!["https://api.example.com".into()];
    let mut expiring = a.clone();
    expiring.expires_at = Some(200 + 10 * 366 * 86_400);
    for change in [&elsewhere, &expiring] {
        last_admin(s.update_credential(change, None, &keep(200)).await);
    }
    let mut also_issuer = a.clone();
    also_issuer.audiences = vec!["https://api.example.com".into(), ISSUER.into()];
    s.update_credential(&also_issuer, None, &keep(200)).await.unwrap();
    let a = s.get_credential("tmc_a").await.unwrap().unwrap();
    // A rotation whose new secret expires too (a rotation never makes one; a stored one might).
    let mut expiring_secret = rotation(&secret("s2", 2, 200), Some(300));
    expiring_secret.secret.expires_at = Some(400);
    last_admin(s.add_secret("tmc_a", &expiring_secret, &keep(200)).await);
    // A rotation with an overlap keeps the new secret: fine; deleting the new one then is not.
    s.add_secret("tmc_a", &rotation(&secret("s2", 2, 200), Some(300)), &keep(200)).await.unwrap();
    last_admin(s.delete_secret("tmc_a", "s2", &keep(200)).await);
    let a2 = s.get_credential("tmc_a").await.unwrap().unwrap();
    assert_eq!((&a2.audiences, a2.expires_at, a2.secrets.len()), (&a.audiences, None, 2));

    // An admin restricted to another audience does not count: with one beside it, the working
    // one still may not go.
    let mut other = admin_credential("tmc_o", 100);
    other.audiences = vec!["https://api.example.com".into()];
    s.create_credential(&other, None, &sys(100)).await.unwrap();
    let mut off = a2.clone();
    off.status = CredentialStatus::Deactivated;
    last_admin(s.update_credential(&off, None, &keep(200)).await);

    // Two admins setting each other's expiry: the first may, the second may not.
    s.create_credential(&admin_credential("tmc_b", 100), None, &sys(100)).await.unwrap();
    let mut b = s.get_credential("tmc_b").await.unwrap().unwrap();
    b.expires_at = Some(206);
    s.update_credential(&b, None, &keep(200)).await.unwrap();
    let mut a3 = s.get_credential("tmc_a").await.unwrap().unwrap();
    a3.expires_at = Some(206);
    last_admin(s.update_credential(&a3, None, &keep(200)).await);

    // Once every admin expires (a platform stored that way), no write brings the end nearer,
    // but one that keeps it, or pushes it back, passes.
    let mut a4 = s.get_credential("tmc_a").await.unwrap().unwrap();
    a4.expires_at = Some(500);
    s.update_credential(&a4, None, &sys(200)).await.unwrap();
    let mut b = s.get_credential("tmc_b").await.unwrap().unwrap();
    b.expires_at = Some(400);
    s.update_credential(&b, None, &keep(200)).await.unwrap();
    let mut a5 = s.get_credential("tmc_a").await.unwrap().unwrap();
    a5.expires_at = Some(450);
    last_admin(s.update_credential(&a5, None, &keep(200)).await);
    a5.expires_at = Some(600);
    s.update_credential(&a5, None, &keep(200)).await.unwrap();
    assert_eq!(s.get_credential("tmc_a").await.unwrap().unwrap().expires_at, Some(600));
}

async fn two_admins_deactivating_each_other_at_once_leave_exactly_one(s: &dyn Store) {
    s.create_organization(&org("platform"), &sys(100)).await.unwrap();
    for round in 0..10 {
        let (a, b) = (format!("tmc_a{round}"), format!("tmc_b{round}"));
        s.create_credential(&admin_credential(&a, 100), None, &sys(100)).await.unwrap();
        s.create_credential(&admin_credential(&b, 100), None, &sys(100)).await.unwrap();
        // No other admin: only the guards stand between the two and a locked-out platform.
        let deactivate = async |actor: &str, target: &str| {
            let mut t = s.get_credential(target).await.unwrap().unwrap();
            t.status = CredentialStatus::Deactivated;
            let guard = Guard { keep_platform_admin: Some(ISSUER.into()), ..acting(actor, 200) };
            s.update_credential(&t, None, &guard).await
        };
        let (x, y) = tokio::join!(deactivate(&a, &b), deactivate(&b, &a));
        let outcomes = [&x, &y];
        assert_eq!(outcomes.iter().filter(|r| r.is_ok()).count(), 1, "round {round}: {x:?} {y:?}");
        let loser = outcomes.iter().find(|r| r.is_err()).unwrap();
        assert!(matches!(loser, Err(StoreError::Refused(_))), "{loser:?}");
        let left = [
            s.get_credential(&a).await.unwrap().unwrap().status,
            s.get_credential(&b).await.unwrap().unwrap().status,
        ];
        assert_eq!(
            left.iter().filter(|st| **st == CredentialStatus::Active).count(),
            1,
            "round {round}"
        );
        // Retire the survivor so the next round starts with two fresh admins only.
        let survivor = if left[0] == CredentialStatus::Active { &a } else { &b };
        let mut c = s.get_credential(survivor).await.unwrap().unwrap();
        c.status = CredentialStatus::Deactivated;
        s.update_credential(&c, None, &sys(200)).await.unwrap();
    }
}

async fn rotations_moments_apart_and_beyond_the_live_secret_cap_are_refused(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_r", "acme", 100), None, &sys(100)).await.unwrap();
    let rot = |id: &str, now: i64, overlap: Option<i64>| Rotation {
        secret: secret(id, 7, now),
        expire_others_at: overlap.map(|o| now + o),
        max_live: 3,
        settle_secs: 5,
    };
    // Right after creation a rotation is fine; a second one within the settle time is not.
    s.add_secret("tmc_r", &rot("s2", 100, Some(0)), &sys(100)).await.unwrap();
    let why = refused(s.add_secret("tmc_r", &rot("s3", 104, Some(0)), &sys(104)).await);
    assert_eq!(why, Refusal::RotatedMomentsAgo { seconds_ago: 4, settle_secs: 5 });
    assert!(why.to_string().contains("delete the secret"), "{why}");
    // The secret the first rotation handed out still works.
    let c = s.get_credential("tmc_r").await.unwrap().unwrap();
    assert_eq!(c.live_secrets(104), 1);
    assert!(c.secrets.iter().any(|x| x.id == "s2" && x.is_live(104)));
    // Rotations with an overlap add live secrets up to the cap.
    s.add_secret("tmc_r", &rot("s3", 110, Some(86_400)), &sys(110)).await.unwrap();
    s.add_secret("tmc_r", &rot("s4", 120, Some(86_400)), &sys(120)).await.unwrap();
    let why = refused(s.add_secret("tmc_r", &rot("s5", 130, Some(86_400)), &sys(130)).await);
    assert_eq!(why, Refusal::TooManyLiveSecrets { live: 3 });
    assert!(why.to_string().contains("delete one first"), "{why}");
    // Ending the others at once makes room.
    s.add_secret("tmc_r", &rot("s5", 130, Some(0)), &sys(130)).await.unwrap();
    assert_eq!(s.get_credential("tmc_r").await.unwrap().unwrap().live_secrets(130), 1);
}

async fn concurrent_writers_of_every_kind_all_succeed(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_w", "acme", 100), None, &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    let writers = (0..64).map(|i| async move {
        let at = 1_000 + i;
        match i % 6 {
            0 => s.remember_network("tmc_w", &format!("10.0.{i}.0/24"), at).await.map(|_| ()),
            1 => {
                let r = AuditRecord {
                    seq: 0,
                    at,
                    kind: "token.refused".into(),
                    org: Some("acme".into()),
                    client_id: Some("tmc_w".into()),
                    actor: None,
                    source_ip: None,
                    reason: Some("wrong_secret".into()),
                    details: serde_json::Value::Null,
                };
                s.append_audit(&[r]).await
            }
            2 => {
                s.add_token_counts(&[TokenCount { client_id: "tmc_w", minute: at, count: 1 }]).await
            }
            3 => {
                let u = Usage { client_id: "tmc_w".into(), secret_id: "tmc_w-s1".into(), at };
                s.record_usage(&[u]).await
            }
            4 => {
                s.create_session(&PortalSession {
                    id_hash: format!("h{i}"),
                    user_id: "u1".into(),
                    csrf_secret: "c".into(),
                    created_at: at,
                    expires_at: at + 60,
                })
                .await
            }
            _ => {
                s.record_alert_delivery(&AlertDelivery {
                    id: format!("a{i}"),
                    at,
                    kind: "source_blocked".into(),
                    target: "log".into(),
                    payload: "{}".into(),
                    attempts: 1,
                    delivered: true,
                    last_error: None,
                })
                .await
            }
        }
    });
    let results = futures_util::future::join_all(writers).await;
    let failed: Vec<_> = results.iter().filter(|r| r.is_err()).collect();
    assert!(failed.is_empty(), "{} of {} writes failed: {failed:?}", failed.len(), results.len());
    let networks = (0..64).filter(|i| i % 6 == 0).count();
    let (new, known) = s.remember_network("tmc_w", "192.0.2.0/24", 9_999).await.unwrap();
    assert!(new);
    assert_eq!(known, i64::try_from(networks).unwrap());
}

fn claims(json: serde_json::Value) -> CustomClaims {
    match json {
        serde_json::Value::Object(m) => CustomClaims::parse(m).unwrap(),
        other => panic!("not an object: {other}"),
    }
}

async fn claims_are_stored_and_an_organization_change_revokes_its_credentials_tokens(
    s: &dyn Store,
) {
    let mut acme = org("acme");
    acme.claims = claims(serde_json::json!({"tenant": "acme-1", "plan": "basic"}));
    s.create_organization(&acme, &sys(100)).await.unwrap();
    s.create_organization(&org("other"), &sys(100)).await.unwrap();
    assert_eq!(s.get_organization("acme").await.unwrap().unwrap(), acme);
    let mut a = credential("tmc_a", "acme", 100);
    a.claims = claims(serde_json::json!({"plan": "gold", "seats": [1, 2]}));
    s.create_credential(&a, None, &sys(100)).await.unwrap();
    let b = credential("tmc_b", "acme", 100);
    s.create_credential(&b, None, &sys(100)).await.unwrap();
    s.create_credential(&credential("tmc_c", "other", 100), None, &sys(100)).await.unwrap();

    let got = s.get_credential("tmc_a").await.unwrap().unwrap();
    assert_eq!(got.claims, a.claims);
    assert_eq!(got.org_claims, acme.claims, "the organization's claims are read with it");
    assert_eq!(
        got.token_claims().to_stored(),
        r#"{"plan":"gold","seats":[1,2],"tenant":"acme-1"}"#
    );
    let filter = CredentialFilter { limit: 10, ..Default::default() };
    let listed = s.list_credentials(&filter).await.unwrap();
    assert_eq!(listed.items.iter().find(|c| c.client_id.as_str() == "tmc_a").unwrap(), &got);

    // A credential update writes its own claims, never the organization's.
    let mut edited = got.clone();
    edited.claims = CustomClaims::default();
    edited.org_claims = CustomClaims::default();
    s.update_credential(&edited, None, &sys(110)).await.unwrap();
    let got = s.get_credential("tmc_a").await.unwrap().unwrap();
    assert!(got.claims.is_empty());
    assert_eq!(got.org_claims, acme.claims);

    // A rename alone revokes nothing.
    let latest = s.latest_revocation().await.unwrap();
    let rename = OrganizationUpdate {
        slug: "acme".into(),
        name: "Acme".into(),
        claims: acme.claims.clone(),
        at: 120,
        revoke: None,
    };
    assert_eq!(s.update_organization(&rename, &sys(120)).await.unwrap(), 0);
    assert_eq!(s.latest_revocation().await.unwrap(), latest);
    assert_eq!(s.get_organization("acme").await.unwrap().unwrap().name, "Acme");

    // A claim change revokes every token of every credential of the organization, and only
    // of that organization, each with its feed entry and change-log row.
    let before = s.latest_change().await.unwrap();
    let change = OrganizationUpdate {
        claims: claims(serde_json::json!({"tenant": "acme-2"})),
        at: 130,
        revoke: Some(OrganizationRevocation {
            now_micros: 130_000_000,
            max_token_lifetime_secs: 3600,
        }),
        ..rename
    };
    assert_eq!(s.update_organization(&change, &sys(130)).await.unwrap(), 2);
    for id in ["tmc_a", "tmc_b"] {
        let c = s.get_credential(id).await.unwrap().unwrap();
        assert_eq!(c.org_claims, change.claims);
        assert_eq!(c.tokens_revoked_before, Some(RevocationCutoff::at_micros(130_000_000)));
        assert!(c.revokes_token(130, &token_id(129_999_999)));
        assert!(!c.revokes_token(130, &token_id(130_000_001)));
    }
    assert_eq!(s.get_credential("tmc_c").await.unwrap().unwrap().tokens_revoked_before, None);
    let feed = s.list_revocations(latest, 10, 130).await.unwrap();
    let revoked: Vec<&Revocation> = feed.iter().map(|e| &e.revocation).collect();
    assert_eq!(revoked.len(), 2);
    assert!(revoked.iter().all(|r| matches!(r, Revocation::Credential { .. })));
    let changed = s.changes_after(before, 20).await.unwrap();
    for key in ["acme", "tmc_a", "tmc_b"] {
        assert!(changed.iter().any(|c| c.key == key), "{key} in the change log");
    }
    // A second change at the same instant still cuts after the first.
    assert_eq!(s.update_organization(&change, &sys(130)).await.unwrap(), 2);
    let c = s.get_credential("tmc_a").await.unwrap().unwrap();
    assert_eq!(c.tokens_revoked_before, Some(RevocationCutoff::at_micros(130_000_001)));

    let missing = OrganizationUpdate { slug: "nope".into(), ..change };
    assert!(matches!(
        s.update_organization(&missing, &sys(140)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn credentials_are_searched_by_text_environment_and_state_in_pages_newest_first(
    s: &dyn Store,
) {
    s.create_organization(&org("a"), &sys(100)).await.unwrap();
    s.create_organization(&org("b"), &sys(100)).await.unwrap();
    // 0..12 in "a", created one second apart; every third is production; 4 is deactivated,
    // 5 expired at 500; names "Sync 50%_i" carry LIKE's wildcards.
    for i in 0..12i64 {
        let mut c = credential(&format!("tmc_a{i:02}"), "a", 100 + i);
        c.name = if i % 2 == 0 { format!("HR Sync 50%_{i}") } else { format!("Billing {i}") };
        if i % 3 == 0 {
            c.environment = Environment::Production;
        }
        c.expires_at = if i == 5 { Some(500) } else { None };
        if i == 4 {
            c.status = CredentialStatus::Deactivated;
        }
        s.create_credential(&c, None, &sys(100)).await.unwrap();
    }
    s.create_credential(&credential("tmc_b00", "b", 100), None, &sys(100)).await.unwrap();
    let search = |text: &str, after: Option<String>, limit| CredentialSearch {
        org: Some("a".into()),
        text: Some(text.into()),
        environment: None,
        state: None,
        now: 1_000,
        after,
        limit,
    };
    let ids = |p: &crate::Paged<Credential>| {
        p.items.iter().map(|c| c.client_id.as_str().to_owned()).collect::<Vec<_>>()
    };

    // Every credential of the organization, newest first, in pages of 5, none twice.
    let mut seen = vec![];
    let mut after = None;
    loop {
        let page = s.search_credentials(&search("", after.clone(), 5)).await.unwrap();
        assert!(page.items.len() <= 5);
        assert!(page.items.iter().all(|c| c.secrets.len() == 1), "secrets come along");
        seen.extend(ids(&page));
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let all: Vec<String> = (0..12).rev().map(|i| format!("tmc_a{i:02}")).collect();
    assert_eq!(seen, all);

    // Name, whatever its case, and the wildcards are literal; or the client ID's start.
    let hr = s.search_credentials(&search("hr sync", None, 50)).await.unwrap();
    assert_eq!(ids(&hr), ["tmc_a10", "tmc_a08", "tmc_a06", "tmc_a04", "tmc_a02", "tmc_a00"]);
    let literal = s.search_credentials(&search("50%_1", None, 50)).await.unwrap();
    assert_eq!(ids(&literal), ["tmc_a10"], "% and _ match only themselves");
    assert!(s.search_credentials(&search("50_", None, 50)).await.unwrap().items.is_empty());
    let by_id = s.search_credentials(&search("tmc_a0", None, 50)).await.unwrap();
    assert_eq!(by_id.items.len(), 10);
    let other_org = s.search_credentials(&search("tmc_b", None, 50)).await.unwrap();
    assert!(other_org.items.is_empty(), "another organization's credentials stay out");

    // Environment and state, combined with text and pages.
    let prod =
        CredentialSearch { environment: Some(Environment::Production), ..search("", None, 2) };
    let first = s.search_credentials(&prod).await.unwrap();
    assert_eq!(ids(&first), ["tmc_a09", "tmc_a06"]);
    let second = s
        .search_credentials(&CredentialSearch { after: first.next.clone(), ..prod.clone() })
        .await
        .unwrap();
    assert_eq!(ids(&second), ["tmc_a03", "tmc_a00"]);
    assert_eq!(second.next, None);
    let state = |st| CredentialSearch { state: Some(st), ..search("", None, 50) };
    let off = s.search_credentials(&state(CredentialState::Deactivated)).await.unwrap();
    assert_eq!(ids(&off), ["tmc_a04"]);
    let expired = s.search_credentials(&state(CredentialState::Expired)).await.unwrap();
    assert_eq!(ids(&expired), ["tmc_a05"]);
    let active = s.search_credentials(&state(CredentialState::Active)).await.unwrap();
    assert_eq!(active.items.len(), 10);
    let before_expiry = CredentialSearch { now: 400, ..state(CredentialState::Active) };
    assert_eq!(s.search_credentials(&before_expiry).await.unwrap().items.len(), 11);
    let billing_active =
        CredentialSearch { text: Some("BILLING".into()), ..state(CredentialState::Active) };
    assert_eq!(
        ids(&s.search_credentials(&billing_active).await.unwrap()),
        ["tmc_a11", "tmc_a09", "tmc_a07", "tmc_a03", "tmc_a01"]
    );

    // Every organization when none is given; a cursor this method never made is refused.
    let everywhere = CredentialSearch { org: None, ..search("", None, 50) };
    assert_eq!(s.search_credentials(&everywhere).await.unwrap().items.len(), 13);
    assert!(matches!(
        s.search_credentials(&search("", Some("not-a-cursor".into()), 5)).await,
        Err(StoreError::InvalidCursor)
    ));
}

async fn portal_flashes_are_taken_once_for_their_purpose_until_they_expire(s: &dyn Store) {
    s.create_organization(&org("acme"), &sys(100)).await.unwrap();
    s.create_user(&user("u1", "acme", "amy@acme.test", UserRole::Admin), &sys(0)).await.unwrap();
    for id in ["h1", "h2"] {
        s.create_session(&PortalSession {
            id_hash: id.into(),
            user_id: "u1".into(),
            csrf_secret: "c".into(),
            created_at: 100,
            expires_at: 10_000,
        })
        .await
        .unwrap();
    }
    let flash = |session: &str, purpose: &str, sealed: &[u8], expires_at| PortalFlash {
        session_hash: session.into(),
        purpose: purpose.into(),
        sealed: sealed.to_vec(),
        expires_at,
    };
    s.put_portal_flash(&flash("h1", "secret:tmc_1", b"one", 400), 100).await.unwrap();
    // Another purpose, another session, or an expired flash: nothing taken, nothing lost.
    assert_eq!(s.take_portal_flash("h1", "secret:tmc_2", 150).await.unwrap(), None);
    assert_eq!(s.take_portal_flash("h2", "secret:tmc_1", 150).await.unwrap(), None);
    assert_eq!(
        s.take_portal_flash("h1", "secret:tmc_1", 150).await.unwrap(),
        Some(b"one".to_vec())
    );
    assert_eq!(s.take_portal_flash("h1", "secret:tmc_1", 150).await.unwrap(), None, "taken once");

    // A newer flash replaces the session's earlier one.
    s.put_portal_flash(&flash("h1", "secret:tmc_1", b"old", 400), 100).await.unwrap();
    s.put_portal_flash(&flash("h1", "password", b"new", 400), 110).await.unwrap();
    assert_eq!(s.take_portal_flash("h1", "secret:tmc_1", 150).await.unwrap(), None);
    assert_eq!(s.take_portal_flash("h1", "password", 150).await.unwrap(), Some(b"new".to_vec()));

    s.put_portal_flash(&flash("h1", "password", b"late", 400), 100).await.unwrap();
    assert_eq!(s.take_portal_flash("h1", "password", 400).await.unwrap(), None, "expired");

    // Concurrent takers: exactly one gets it.
    s.put_portal_flash(&flash("h2", "password", b"race", 400), 100).await.unwrap();
    let (a, b) = tokio::join!(
        s.take_portal_flash("h2", "password", 150),
        s.take_portal_flash("h2", "password", 150)
    );
    let got: Vec<_> = [a.unwrap(), b.unwrap()].into_iter().flatten().collect();
    assert_eq!(got, [b"race".to_vec()]);

    // It goes with its session, and needs one.
    s.put_portal_flash(&flash("h1", "password", b"gone", 400), 100).await.unwrap();
    s.delete_session("h1").await.unwrap();
    assert_eq!(s.take_portal_flash("h1", "password", 150).await.unwrap(), None);
    assert!(matches!(
        s.put_portal_flash(&flash("h1", "password", b"x", 400), 100).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(!format!("{:?}", flash("h1", "password", b"SEALED", 400)).contains("SEALED"));
}
