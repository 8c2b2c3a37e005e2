//! Test support shared by every crate whose tests need a real PostgreSQL: a database per test,
//! dropped afterwards.
//!
//! `TOKENMINT_TEST_POSTGRES` names the server (default `postgres://postgres@127.0.0.1:5432`).
//! Without a server, [`TestDatabase::create`] returns `None` and says why, so the test can skip,
//! unless `TOKENMINT_REQUIRE_SERVICES=1` (CI), which makes a missing server a failure.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test support"
)]

use sqlx::Connection;

/// The PostgreSQL server tests use, without a database name.
pub fn postgres_base_url() -> String {
    std::env::var("TOKENMINT_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Whether CI demands that the services be there.
pub fn services_required() -> bool {
    std::env::var("TOKENMINT_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

/// A database that exists for one test. Drop it with [`TestDatabase::drop_now`].
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
}

impl TestDatabase {
    pub async fn create() -> Option<Self> {
        let admin_url = format!("{}/postgres", postgres_base_url());
        let mut conn = match sqlx::PgConnection::connect(&admin_url).await {
            Ok(c) => c,
            Err(e) if !services_required() => {
                eprintln!(
                    "skipping: PostgreSQL is not reachable at {admin_url} ({e}); set TOKENMINT_TEST_POSTGRES"
                );
                return None;
            }
            Err(e) => {
                panic!("PostgreSQL is required (TOKENMINT_REQUIRE_SERVICES=1) but unreachable: {e}")
            }
        };
        let name =
            format!("tokenmint_test_{}", tokenmint_core::ids::random_id("", 12).to_lowercase());
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut conn).await.unwrap();
        let url = format!("{}/{name}", postgres_base_url());
        Some(Self { name, url })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub async fn drop_now(self) {
        let admin_url = format!("{}/postgres", postgres_base_url());
        let mut conn = sqlx::PgConnection::connect(&admin_url).await.unwrap();
        sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
            .execute(&mut conn)
            .await
            .unwrap();
    }
}
