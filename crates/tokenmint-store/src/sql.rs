//! [`SqlStore`]: the [`Store`] over SQLite or PostgreSQL through sqlx's `Any` driver.

use crate::{
    AlertDelivery, AuditFilter, AuditRecord, Change, CredentialFilter, CredentialSearch,
    CredentialState, Entity, Guard, GuardActor, NewRevocation, Organization, OrganizationUpdate,
    Paged, PasswordReset, PortalFlash, PortalSession, PortalUser, Refusal, Rotation, Store,
    StoreError, TokenCount, Usage, UserRole, UserStatus,
};
use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::credential::{AdminHorizon, Credential, CredentialStatus, RevocationCutoff};
use tokenmint_core::keys::{KeyRecord, SigningAlgorithm};
use tokenmint_core::scope::Permissions;
use tokenmint_core::{ClientId, CustomClaims, Environment, SecretHash, StoredSecret, UnixTime};
use tokenmint_proto::feed::{Revocation, RevocationEntry};

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// The SQL dialect behind a [`SqlStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// Recognises a database URL, or says what is accepted.
    pub fn from_url(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Backend(
                "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB".into(),
            ))
        }
    }
}

/// The store over a pool of connections.
#[derive(Debug, Clone)]
pub struct SqlStore {
    pool: AnyPool,
    dialect: Dialect,
    /// Kept for `LISTEN`, which needs a dedicated connection outside the pool.
    url: String,
    /// SQLite has one writer at a time. Writers of this process queue here, fairly, instead of
    /// retrying the database's lock (see [`SqlStore::begin`]).
    writer: Arc<tokio::sync::Mutex<()>>,
}

/// Held for the length of a write transaction on SQLite (see [`SqlStore::begin`]).
type WriterTurn = Option<tokio::sync::OwnedMutexGuard<()>>;

// The channel's name, spelled once for the listener and for the statement that notifies.
macro_rules! changes_channel {
    () => {
        "tokenmint_changes"
    };
}
/// The PostgreSQL channel every change-log write notifies.
const CHANGES_CHANNEL: &str = changes_channel!();
const NOTIFY_CHANGES: &str = concat!("NOTIFY ", changes_channel!());

/// Wakes up when another process (or this one) writes the change log.
#[derive(Debug)]
pub struct ChangeListener {
    listener: sqlx::postgres::PgListener,
}

impl ChangeListener {
    /// Waits for the next notification. After a lost connection it reconnects by itself and
    /// returns (the caller re-reads the log, so nothing missed while disconnected is lost).
    pub async fn recv(&mut self) -> Result<(), StoreError> {
        self.listener.recv().await.map(|_| ()).map_err(backend_err)
    }
}

/// How many more times a SQLite write waits for the write lock after its busy timeout ran out.
const SQLITE_BUSY_RETRIES: u32 = 6;

/// Whether `e` says the SQLite write lock (or a connection) could not be had in time: worth
/// waiting for, unlike every other error. SQLITE_BUSY (5) and SQLITE_LOCKED (6) come with
/// extended codes in the high bits (SQLITE_BUSY_RECOVERY is 261).
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(db) => {
            db.code().and_then(|c| c.parse::<u32>().ok()).is_some_and(|c| matches!(c & 0xff, 5 | 6))
        }
        _ => false,
    }
}

/// A database error as the store reports it, so that `?` converts every sqlx error in one way:
/// unavailable (worth retrying), a conflict, a missing reference, or a real failure.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        backend_err(e)
    }
}

fn backend_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        // A connection cut mid-conversation shows up as a protocol error or a dead worker.
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(db.message().to_owned())
        }
        sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
            StoreError::NotFound("referenced record")
        }
        sqlx::Error::Database(db) => {
            // SQLite's "database is locked" and PostgreSQL's connection-class errors are
            // transient; everything else is a real failure.
            let code = db.code().unwrap_or_default();
            if code == "5" || code == "6" || code.starts_with("08") || code == "57P01" {
                StoreError::Unavailable(db.message().to_owned())
            } else {
                StoreError::Backend(e.to_string())
            }
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Normalises a SQLite URL so that the file is created when missing.
fn sqlite_url(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}mode=rwc")
}

/// The file a SQLite URL names, if it names one (not `:memory:`).
fn sqlite_file(url: &str) -> Option<std::path::PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or("");
    (!path.is_empty() && !path.starts_with(":memory:")).then(|| path.into())
}

/// Creates a database file that does not exist yet readable by its owner alone (mode 0600 on
/// Unix): it holds secret hashes, encrypted signing keys and the audit trail, and SQLite gives
/// its journal files the database file's permissions. An existing file is left as it is.
fn create_private_file(path: &std::path::Path) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!("cannot create {}: {e}", path.display()))),
    }
}

impl SqlStore {
    /// Connects, applies pending migrations when `migrate` is set, and checks the schema.
    pub async fn connect(url: &str, migrate: bool) -> Result<Self, StoreError> {
        let dialect = Dialect::from_url(url)?;
        sqlx::any::install_default_drivers();
        let url = match dialect {
            Dialect::Sqlite => {
                let url = sqlite_url(url);
                if url.contains("mode=rwc")
                    && let Some(file) = sqlite_file(&url)
                {
                    create_private_file(&file)?;
                }
                url
            }
            Dialect::Postgres => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 10,
            })
            .acquire_timeout(Duration::from_secs(5));
        let options = if dialect == Dialect::Sqlite {
            options.after_connect(|conn, _| {
                Box::pin(async move {
                    // FULL: an acknowledged admin write survives power loss, not only a crash.
                    for pragma in [
                        "PRAGMA foreign_keys = ON",
                        "PRAGMA busy_timeout = 5000",
                        "PRAGMA synchronous = FULL",
                        // 128 KiB of page cache per connection, not SQLite's 2 MB: the
                        // token path reads credentials from tokenmint's own cache, so pages
                        // are read once per credential and the operating system caches the
                        // file anyway; four connections filled to 2 MB were 8 MB of a server
                        // holding 100,000 credentials, and at 512 KiB still 2.8 MB of its
                        // heap (heaptrack).
                        "PRAGMA cache_size = -128",
                    ] {
                        conn.execute(pragma).await?;
                    }
                    Ok(())
                })
            })
        } else {
            options
        };
        let pool = options.connect(&url).await.map_err(|e| match e {
            sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => {
                StoreError::Unavailable(e.to_string())
            }
            other => StoreError::Backend(other.to_string()),
        })?;
        if dialect == Dialect::Sqlite {
            // WAL lets readers proceed while a write commits; it is a property of the file.
            pool.execute("PRAGMA journal_mode = WAL").await?;
        }
        let store = Self { pool, dialect, url, writer: Arc::new(tokio::sync::Mutex::new(())) };
        if migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Applies pending migrations. Safe while older instances serve: migrations only add.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => &SQLITE_MIGRATIONS,
            Dialect::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))
    }

    /// Closes every connection (tests and shutdown).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a write transaction. Bind the result as `let (_turn, mut tx)`, so that the
    /// transaction is finished (or its rollback queued) before the turn is given back.
    ///
    /// On PostgreSQL, every write transaction first takes one transaction-scoped advisory
    /// lock. Writes are rare (admin actions), and serialising them makes identity values
    /// commit in order, so a reader of the change log or the revocation feed that has seen
    /// sequence number N can never later find an N-1 that committed late. It also makes
    /// check-then-write statements atomic across instances: one pending key at a time, and
    /// the [`Guard`] checks (the actor still authorized, an admin left) that run inside the
    /// transaction.
    ///
    /// On SQLite the same serialisation comes from the database having one writer: the
    /// transaction starts with `BEGIN IMMEDIATE`, which takes the write lock at once (waiting
    /// for it through the busy timeout). A plain `BEGIN` would read first and fail with
    /// "database is locked" when it later tried to write after another writer committed in
    /// between, and that error cannot be waited out. Writers of this process also take turns
    /// on a mutex, so they queue in order instead of polling the lock.
    async fn begin(&self) -> Result<(WriterTurn, Transaction<'static, Any>), StoreError> {
        match self.dialect {
            Dialect::Postgres => {
                let mut tx = self.pool.begin().await?;
                sqlx::query("SELECT pg_advisory_xact_lock(7340021)").execute(&mut *tx).await?;
                Ok((None, tx))
            }
            Dialect::Sqlite => self.begin_sqlite().await,
        }
    }

    /// One page of credentials with their secrets, from the ids a page query found (one more
    /// than `limit` when another page follows), in `order` (the page query's own, so the cursor
    /// of the last item continues it).
    async fn credential_page(
        &self,
        ids: Vec<String>,
        limit: u32,
        order: &str,
    ) -> Result<Paged<Credential>, StoreError> {
        if ids.is_empty() {
            return Ok(Paged { items: vec![], next: None });
        }
        let has_more = ids.len() > limit as usize;
        let ids = &ids[..ids.len().min(limit as usize)];
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS}, {SECRET_COLUMNS} FROM {CREDENTIAL_FROM} \
             LEFT JOIN credential_secrets s ON s.client_id = c.client_id \
             WHERE c.client_id IN ({}) ORDER BY {order}, s.created_at, s.id",
            placeholders.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for id in ids {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await?;
        let items = fold_credentials(&rows)?;
        let next = if has_more {
            items.last().map(|c| format!("{}.{}", c.created_at, c.client_id))
        } else {
            None
        };
        Ok(Paged { items, next })
    }

    /// Starts a write transaction that needs no ordering with the admin writes (audit records,
    /// counters, networks): on PostgreSQL a plain transaction, on SQLite the same single
    /// writer as [`SqlStore::begin`], since SQLite has no other kind.
    async fn begin_unordered(&self) -> Result<(WriterTurn, Transaction<'static, Any>), StoreError> {
        match self.dialect {
            Dialect::Postgres => Ok((None, self.pool.begin().await?)),
            Dialect::Sqlite => self.begin_sqlite().await,
        }
    }

    /// One statement as a write transaction of its own (see [`SqlStore::begin_unordered`]).
    async fn write_one<'q>(
        &self,
        query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        let (_turn, mut tx) = self.begin_unordered().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Records `key` in `table` (with `stamp`) unless it is there already, after dropping the
    /// rows stamped at or before `purge_before`; whether this call recorded it. Of two
    /// transactions inserting the same key, PostgreSQL makes the second wait for the first and
    /// then do nothing; SQLite has one writer anyway: so exactly one caller gets `true`, on
    /// every instance.
    async fn claim_once(
        &self,
        table: &OnceTable,
        key: &str,
        stamp: UnixTime,
        purge_before: UnixTime,
    ) -> Result<bool, StoreError> {
        let OnceTable { table, key_column, stamp_column } = table;
        let (_turn, mut tx) = self.begin_unordered().await?;
        sqlx::query(&format!("DELETE FROM {table} WHERE {stamp_column} <= $1"))
            .bind(purge_before)
            .execute(&mut *tx)
            .await?;
        let claimed = sqlx::query(&format!(
            "INSERT INTO {table} ({key_column}, {stamp_column}) VALUES ($1, $2) \
             ON CONFLICT ({key_column}) DO NOTHING"
        ))
        .bind(key)
        .bind(stamp)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok(claimed)
    }

    /// The single writer's turn and transaction. Another process (a second instance on the
    /// same file, an admin command) may hold the write lock for longer than the busy timeout,
    /// and a connection may be slow to come while readers hold them all: the turn then waits
    /// and tries again, with a doubling pause, for up to [`SQLITE_BUSY_RETRIES`] more times
    /// (about 35 seconds of busy timeouts and pauses), so that a burst of writes waits its turn
    /// instead of losing records to "database is locked".
    async fn begin_sqlite(&self) -> Result<(WriterTurn, Transaction<'static, Any>), StoreError> {
        let turn = self.writer.clone().lock_owned().await;
        let mut pause = Duration::from_millis(20);
        let mut retries = 0;
        loop {
            match self.pool.begin_with("BEGIN IMMEDIATE").await {
                Ok(tx) => return Ok((Some(turn), tx)),
                Err(e) if retries < SQLITE_BUSY_RETRIES && is_busy(&e) => {
                    retries += 1;
                    tracing::debug!(retries, error = %e, "SQLite write lock busy; waiting for it");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(backend_err(e)),
            }
        }
    }
}

/// Re-checks, inside the write's transaction, that the actor may still act (see [`Guard`]).
async fn check_actor(tx: &mut Transaction<'static, Any>, guard: &Guard) -> Result<(), StoreError> {
    let refused = |principal: String| {
        Err(StoreError::Refused(Refusal::ActorNoLongerAuthorized { principal }))
    };
    match &guard.actor {
        GuardActor::System => Ok(()),
        GuardActor::Credential { client_id, token } => {
            let sql = format!(
                "SELECT {CREDENTIAL_COLUMNS} FROM {CREDENTIAL_FROM} WHERE c.client_id = $1"
            );
            let row = sqlx::query(&sql).bind(client_id).fetch_optional(&mut **tx).await?;
            let still = match row {
                Some(row) => {
                    let c = credential_from_row(&row)?;
                    c.status == CredentialStatus::Active
                        && !c.is_expired(guard.now)
                        && c.permissions.is_platform_admin()
                        && token.as_ref().is_none_or(|(iat, jti)| !c.revokes_token(*iat, jti))
                }
                None => false,
            };
            if still { Ok(()) } else { refused(format!("credential {client_id}")) }
        }
        GuardActor::User { id, role } => {
            let row = sqlx::query("SELECT email, role, status FROM portal_users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            let Some(row) = row else { return refused(format!("user {id}")) };
            let email: String = row.try_get("email")?;
            let current: String = row.try_get("role")?;
            let status: String = row.try_get("status")?;
            if status == UserStatus::Active.as_str() && current == role.as_str() {
                Ok(())
            } else {
                refused(format!("user {email}"))
            }
        }
    }
}

/// How long the platform keeps a working admin credential from `now` on: the furthest
/// [`AdminHorizon`] of the credentials holding `tokenmint:admin` for the admin API's audience.
async fn admin_horizon(
    tx: &mut Transaction<'static, Any>,
    now: UnixTime,
    admin_audience: &str,
) -> Result<AdminHorizon, StoreError> {
    // The LIKE only narrows the rows read; the decision is made on the parsed credentials.
    let sql = format!(
        "SELECT {CREDENTIAL_COLUMNS}, {SECRET_COLUMNS} FROM {CREDENTIAL_FROM} \
         LEFT JOIN credential_secrets s ON s.client_id = c.client_id \
         WHERE c.status = 'active' AND c.permissions LIKE '%tokenmint:admin%' \
         ORDER BY c.client_id, s.created_at, s.id"
    );
    let rows = sqlx::query(&sql).fetch_all(&mut **tx).await?;
    Ok(fold_credentials(&rows)?
        .iter()
        .map(|c| c.admin_horizon(now, admin_audience))
        .max()
        .unwrap_or(AdminHorizon::Never))
}

/// The guard's checks before a write: the actor may still act; and, when the write must keep
/// a platform admin, how long one works now (for [`guard_after`]).
async fn guard_before(
    tx: &mut Transaction<'static, Any>,
    guard: &Guard,
) -> Result<AdminHorizon, StoreError> {
    check_actor(tx, guard).await?;
    match &guard.keep_platform_admin {
        Some(audience) => admin_horizon(tx, guard.now, audience).await,
        None => Ok(AdminHorizon::Never),
    }
}

/// The guard's check after a write: refused when the write brought forward the moment the
/// platform is left without a working admin (ending the last one now is the nearest case).
/// A write that leaves the horizon where it was passes, so a platform whose admins already
/// expire is never stuck: adding an admin with no expiry is always possible.
async fn guard_after(
    tx: &mut Transaction<'static, Any>,
    guard: &Guard,
    before: AdminHorizon,
) -> Result<(), StoreError> {
    if let Some(audience) = &guard.keep_platform_admin
        && admin_horizon(tx, guard.now, audience).await? < before
    {
        return Err(StoreError::Refused(Refusal::LastPlatformAdmin));
    }
    Ok(())
}

async fn log_change(
    tx: &mut Transaction<'static, Any>,
    entity: Entity,
    key: &str,
    at: UnixTime,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO changes (entity, key, at) VALUES ($1, $2, $3)")
        .bind(entity.as_str())
        .bind(key)
        .bind(at)
        .execute(&mut **tx)
        .await?;
    if tx.backend_name() == "PostgreSQL" {
        // Delivered to every listening instance when (and only if) the transaction commits;
        // PostgreSQL folds repeats within one transaction into one notification.
        (&mut **tx).execute(NOTIFY_CHANGES).await?;
    }
    Ok(())
}

fn revocation_columns(r: &Revocation) -> (&'static str, &str, Option<i64>, Option<&str>) {
    match r {
        Revocation::Token { jti } => ("token", jti.as_str(), None, None),
        Revocation::Credential { client_id, issued_before, issued_before_jti } => {
            ("credential", client_id.as_str(), Some(*issued_before), issued_before_jti.as_deref())
        }
        Revocation::Key { kid } => ("key", kid.as_str(), None, None),
    }
}

async fn append_revocation(
    tx: &mut Transaction<'static, Any>,
    r: &NewRevocation,
    now: UnixTime,
) -> Result<i64, StoreError> {
    let (kind, subject, issued_before, issued_before_jti) = revocation_columns(&r.revocation);
    let row = sqlx::query(
        "INSERT INTO revocations (kind, subject, issued_before, issued_before_jti, expires_at, \
         created_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq",
    )
    .bind(kind)
    .bind(subject)
    .bind(issued_before)
    .bind(issued_before_jti)
    .bind(r.expires_at)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    let seq: i64 = row.try_get(0)?;
    log_change(tx, Entity::Revocation, &seq.to_string(), now).await?;
    Ok(seq)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

const CREDENTIAL_COLUMNS: &str = "c.client_id, c.org, c.name, c.environment, c.permissions, c.audiences, \
     c.token_lifetime_secs, c.rate_limit_per_minute, c.status, c.expires_at, c.created_at, c.updated_at, \
     c.last_used_at, c.tokens_revoked_before, c.tokens_revoked_through_us, c.revision, c.claims, \
     c.public_keys, o.claims AS org_claims";

/// Credentials with their organization, whose claims every token of theirs carries.
const CREDENTIAL_FROM: &str = "credentials c LEFT JOIN organizations o ON o.slug = c.org";

const SECRET_COLUMNS: &str = "s.id AS s_id, s.hash AS s_hash, s.hint AS s_hint, s.created_at AS s_created_at, \
     s.expires_at AS s_expires_at, s.last_used_at AS s_last_used_at";

fn credential_from_row(row: &AnyRow) -> Result<Credential, StoreError> {
    let get_s = |c: &str| row.try_get::<String, _>(c).map_err(backend_err);
    let get_i = |c: &str| row.try_get::<i64, _>(c).map_err(backend_err);
    let get_oi = |c: &str| row.try_get::<Option<i64>, _>(c).map_err(backend_err);
    let client_id = ClientId::parse(&get_s("client_id")?).map_err(|_| corrupt("client_id"))?;
    let environment: Environment =
        get_s("environment")?.parse().map_err(|_| corrupt("environment"))?;
    let permissions_text = get_s("permissions")?;
    let permissions: Vec<&str> = permissions_text.split(' ').filter(|s| !s.is_empty()).collect();
    let audiences: Vec<String> =
        serde_json::from_str(&get_s("audiences")?).map_err(|_| corrupt("audiences"))?;
    let status = match get_s("status")?.as_str() {
        "active" => CredentialStatus::Active,
        "deactivated" => CredentialStatus::Deactivated,
        _ => return Err(corrupt("status")),
    };
    let credential = Credential {
        client_id,
        name: get_s("name")?,
        org: get_s("org")?,
        environment,
        permissions: Permissions::from_stored(&permissions),
        audiences,
        token_lifetime_secs: u32::try_from(get_i("token_lifetime_secs")?)
            .map_err(|_| corrupt("token lifetime"))?,
        rate_limit_per_minute: get_oi("rate_limit_per_minute")?.and_then(|v| u32::try_from(v).ok()),
        status,
        expires_at: get_oi("expires_at")?,
        created_at: get_i("created_at")?,
        updated_at: get_i("updated_at")?,
        last_used_at: get_oi("last_used_at")?,
        // The microsecond cut-off when this release wrote it, else an older release's
        // whole-second one.
        tokens_revoked_before: match get_oi("tokens_revoked_through_us")? {
            Some(us) => Some(RevocationCutoff::at_micros(us)),
            None => get_oi("tokens_revoked_before")?.map(RevocationCutoff::before_second),
        },
        secrets: Vec::new(),
        claims: CustomClaims::from_stored(&get_s("claims")?).map_err(|_| corrupt("claims"))?,
        org_claims: match row.try_get::<Option<String>, _>("org_claims")? {
            Some(text) => CustomClaims::from_stored(&text).map_err(|_| corrupt("org claims"))?,
            None => CustomClaims::default(),
        },
        public_keys: tokenmint_core::assertion::keys_from_stored(&get_s("public_keys")?)
            .map_err(|_| corrupt("public keys"))?,
        revision: get_i("revision")?,
    };
    Ok(credential)
}

fn secret_from_row(row: &AnyRow) -> Result<Option<StoredSecret>, StoreError> {
    let Some(id) = row.try_get::<Option<String>, _>("s_id")? else {
        return Ok(None);
    };
    let hash: Vec<u8> = row.try_get("s_hash")?;
    Ok(Some(StoredSecret {
        id,
        hash: SecretHash::from_slice(&hash).ok_or_else(|| corrupt("secret hash"))?,
        hint: row.try_get("s_hint")?,
        created_at: row.try_get("s_created_at")?,
        expires_at: row.try_get("s_expires_at")?,
        last_used_at: row.try_get("s_last_used_at")?,
    }))
}

/// Folds joined credential+secret rows (ordered by credential) into credentials.
fn fold_credentials(rows: &[AnyRow]) -> Result<Vec<Credential>, StoreError> {
    let mut out: Vec<Credential> = Vec::new();
    for row in rows {
        let id: String = row.try_get("client_id")?;
        let same = out.last().is_some_and(|c| c.client_id.as_str() == id);
        if !same {
            out.push(credential_from_row(row)?);
        }
        if let (Some(s), Some(c)) = (secret_from_row(row)?, out.last_mut()) {
            c.secrets.push(s);
        }
    }
    Ok(out)
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let alg: String = row.try_get("alg")?;
    Ok(KeyRecord {
        kid: row.try_get("kid")?,
        alg: alg.parse::<SigningAlgorithm>().map_err(|_| corrupt("key algorithm"))?,
        sealed_private: row.try_get("sealed_private")?,
        created_at: row.try_get("created_at")?,
        activates_at: row.try_get("activates_at")?,
        withdrawn_at: row.try_get("withdrawn_at")?,
    })
}

fn org_from_row(row: &AnyRow) -> Result<Organization, StoreError> {
    Ok(Organization {
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
        claims: CustomClaims::from_stored(&row.try_get::<String, _>("claims")?)
            .map_err(|_| corrupt("organization claims"))?,
    })
}

fn permissions_text(c: &Credential) -> String {
    c.permissions.to_strings().join(" ")
}

fn audiences_text(c: &Credential) -> String {
    serde_json::to_string(&c.audiences).unwrap_or_else(|_| "[]".into())
}

/// The cut-off as the two columns hold it: older releases read `tokens_revoked_before`
/// ("`iat` before this second"), which covers the whole cut-off second, so they never keep a
/// token this release revokes.
fn cutoff_columns(c: &Credential) -> (Option<i64>, Option<i64>) {
    match c.tokens_revoked_before {
        Some(cut) => (Some(cut.second().saturating_add(1)), Some(cut.micros())),
        None => (None, None),
    }
}

async fn insert_secret(
    tx: &mut Transaction<'static, Any>,
    client_id: &str,
    s: &StoredSecret,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO credential_secrets (id, client_id, hash, hint, created_at, expires_at, last_used_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&s.id)
    .bind(client_id)
    .bind(s.hash.0.to_vec())
    .bind(&s.hint)
    .bind(s.created_at)
    .bind(s.expires_at)
    .bind(s.last_used_at)
    .execute(&mut **tx)
    .await
    ?;
    Ok(())
}

const USER_COLUMNS: &str =
    "id, org, email, role, password_hash, status, created_at, updated_at, last_sign_in_at";

fn user_from_row(row: &AnyRow) -> Result<PortalUser, StoreError> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    Ok(PortalUser {
        id: row.try_get("id")?,
        org: row.try_get("org")?,
        email: row.try_get("email")?,
        role: UserRole::parse(&role).ok_or_else(|| corrupt("user role"))?,
        password_hash: row.try_get("password_hash")?,
        status: UserStatus::parse(&status).ok_or_else(|| corrupt("user status"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_sign_in_at: row.try_get("last_sign_in_at")?,
    })
}

/// Frees an email key held by a deactivated user, so that a new user (or a reactivated one)
/// can take it. The old record keeps its email for the audit trail under a key no address can
/// have (`<` is refused in emails), unique by its id.
async fn release_email(tx: &mut Transaction<'static, Any>, key: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE portal_users SET email_key = '<' || id || '>' || email_key \
         WHERE email_key = $1 AND status = 'deactivated'",
    )
    .bind(key)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Ends a user's sessions (but `keep`, an id hash) and drops their pending password resets.
async fn end_sessions(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
    keep: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM portal_sessions WHERE user_id = $1 AND id_hash <> $2")
        .bind(user_id)
        .bind(keep.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
    drop_password_resets(tx, user_id).await
}

/// Voids a user's pending password-reset codes.
async fn drop_password_resets(
    tx: &mut Transaction<'static, Any>,
    user_id: &str,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM password_resets WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The form of an email that uniqueness and look-ups use.
fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn parse_cursor(after: &str) -> Option<(i64, &str)> {
    let (t, id) = after.split_once('.')?;
    Some((t.parse().ok()?, id))
}

/// A table of keys that may be recorded once each (see [`SqlStore::claim_once`]).
struct OnceTable {
    table: &'static str,
    key_column: &'static str,
    stamp_column: &'static str,
}

/// Alerts fired, by subject, until their window passes.
const ALERT_CLAIMS: OnceTable =
    OnceTable { table: "alert_claims", key_column: "subject_hash", stamp_column: "fired_at" };
/// Client assertions used, by client and `jti`, until they expire.
const USED_ASSERTIONS: OnceTable = OnceTable {
    table: "used_client_assertions",
    key_column: "replay_key",
    stamp_column: "expires_at",
};

/// Where a page of credentials starts: the `(created_at, client_id)` of the cursor `after`, or
/// `start` (with an empty id) for the first page.
fn credential_cursor(after: Option<&str>, start: i64) -> Result<(i64, String), StoreError> {
    match after.map(parse_cursor) {
        Some(Some((t, id))) => Ok((t, id.to_owned())),
        Some(None) => Err(StoreError::InvalidCursor),
        None => Ok((start, String::new())),
    }
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.dialect {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }

    async fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT value FROM meta WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<String, _>(0).map_err(backend_err)).transpose()
    }

    async fn put_meta_if_absent(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let done = self
            .write_one(
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(key)
                .bind(value),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn create_organization(
        &self,
        org: &Organization,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let horizon_before = guard_before(&mut tx, guard).await?;
        sqlx::query(
            "INSERT INTO organizations (slug, name, created_at, claims) VALUES ($1, $2, $3, $4)",
        )
        .bind(&org.slug)
        .bind(&org.name)
        .bind(org.created_at)
        .bind(org.claims.to_stored())
        .execute(&mut *tx)
        .await
        .map_err(|e| match backend_err(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!(
                "organization '{0}' already exists (creating a credential with org \
                     '{0}' creates it when it is missing); GET /admin/v1/organizations/{0} \
                     shows it, and PATCH it (`tokenmint orgs update {0}`) to change it",
                org.slug
            )),
            other => other,
        })?;
        log_change(&mut tx, Entity::Organization, &org.slug, org.created_at).await?;
        guard_after(&mut tx, guard, horizon_before).await?;
        Ok(tx.commit().await?)
    }

    async fn get_organization(&self, slug: &str) -> Result<Option<Organization>, StoreError> {
        let row =
            sqlx::query("SELECT slug, name, created_at, claims FROM organizations WHERE slug = $1")
                .bind(slug)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(org_from_row).transpose()
    }

    async fn list_organizations(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Paged<Organization>, StoreError> {
        let limit = limit.clamp(1, 1000);
        let rows = sqlx::query(
            "SELECT slug, name, created_at, claims FROM organizations WHERE slug > $1 ORDER BY slug LIMIT $2",
        )
        .bind(after.unwrap_or(""))
        .bind(i64::from(limit) + 1)
        .fetch_all(&self.pool)
        .await
        ?;
        let mut items = rows.iter().map(org_from_row).collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|o| o.slug.clone())
        } else {
            None
        };
        Ok(Paged { items, next })
    }

    async fn update_organization(
        &self,
        u: &OrganizationUpdate,
        guard: &Guard,
    ) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let done = sqlx::query("UPDATE organizations SET name = $1, claims = $2 WHERE slug = $3")
            .bind(&u.name)
            .bind(u.claims.to_stored())
            .bind(&u.slug)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound("organization"));
        }
        log_change(&mut tx, Entity::Organization, &u.slug, u.at).await?;
        let Some(revoke) = u.revoke else {
            tx.commit().await?;
            return Ok(0);
        };
        let rows = sqlx::query(
            "SELECT client_id, tokens_revoked_before, tokens_revoked_through_us FROM credentials \
             WHERE org = $1 ORDER BY client_id",
        )
        .bind(&u.slug)
        .fetch_all(&mut *tx)
        .await?;
        for row in &rows {
            let client_id: String = row.try_get("client_id")?;
            let through: Option<i64> = row.try_get("tokens_revoked_through_us")?;
            let before: Option<i64> = row.try_get("tokens_revoked_before")?;
            let previous = match through {
                Some(us) => Some(RevocationCutoff::at_micros(us)),
                None => before.map(RevocationCutoff::before_second),
            };
            // The same cut-off and feed entry as a change of one credential's grant.
            let cut = RevocationCutoff::next(previous, revoke.now_micros);
            sqlx::query(
                "UPDATE credentials SET tokens_revoked_before = $1, tokens_revoked_through_us = $2, \
                 updated_at = $3, revision = revision + 1 WHERE client_id = $4",
            )
            .bind(cut.second().saturating_add(1))
            .bind(cut.micros())
            .bind(u.at)
            .bind(&client_id)
            .execute(&mut *tx)
            .await
            ?;
            let entry = NewRevocation {
                revocation: Revocation::Credential {
                    client_id: client_id.clone(),
                    issued_before: cut.second(),
                    issued_before_jti: Some(cut.jti_boundary()),
                },
                expires_at: cut.second() + 1 + i64::from(revoke.max_token_lifetime_secs) + 60,
            };
            append_revocation(&mut tx, &entry, u.at).await?;
            log_change(&mut tx, Entity::Credential, &client_id, u.at).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    async fn create_credential(
        &self,
        c: &Credential,
        org: Option<&Organization>,
        guard: &Guard,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let mut org_created = false;
        if let Some(org) = org {
            let inserted = sqlx::query(
                "INSERT INTO organizations (slug, name, created_at, claims) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (slug) DO NOTHING",
            )
            .bind(&org.slug)
            .bind(&org.name)
            .bind(org.created_at)
            .bind(org.claims.to_stored())
            .execute(&mut *tx)
            .await
            ?;
            if inserted.rows_affected() == 1 {
                org_created = true;
                log_change(&mut tx, Entity::Organization, &org.slug, org.created_at).await?;
            }
        }
        let (revoked_before, revoked_through_us) = cutoff_columns(c);
        sqlx::query(
            "INSERT INTO credentials (client_id, org, name, environment, permissions, audiences, \
             token_lifetime_secs, rate_limit_per_minute, status, expires_at, created_at, updated_at, \
             last_used_at, tokens_revoked_before, tokens_revoked_through_us, claims, public_keys, \
             revision) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, 1)",
        )
        .bind(c.client_id.as_str())
        .bind(&c.org)
        .bind(&c.name)
        .bind(c.environment.as_str())
        .bind(permissions_text(c))
        .bind(audiences_text(c))
        .bind(i64::from(c.token_lifetime_secs))
        .bind(c.rate_limit_per_minute.map(i64::from))
        .bind(c.status.as_str())
        .bind(c.expires_at)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.last_used_at)
        .bind(revoked_before)
        .bind(revoked_through_us)
        .bind(c.claims.to_stored())
        .bind(tokenmint_core::assertion::keys_to_stored(&c.public_keys))
        .execute(&mut *tx)
        .await
        .map_err(|e| match backend_err(e) {
            StoreError::NotFound(_) => StoreError::NotFound("organization"),
            other => other,
        })?;
        for s in &c.secrets {
            insert_secret(&mut tx, c.client_id.as_str(), s).await?;
        }
        log_change(&mut tx, Entity::Credential, c.client_id.as_str(), c.updated_at).await?;
        tx.commit().await?;
        Ok(org_created)
    }

    async fn get_credential(&self, client_id: &str) -> Result<Option<Credential>, StoreError> {
        let sql = format!(
            "SELECT {CREDENTIAL_COLUMNS}, {SECRET_COLUMNS} FROM {CREDENTIAL_FROM} \
             LEFT JOIN credential_secrets s ON s.client_id = c.client_id \
             WHERE c.client_id = $1 ORDER BY s.created_at, s.id"
        );
        let rows = sqlx::query(&sql).bind(client_id).fetch_all(&self.pool).await?;
        Ok(fold_credentials(&rows)?.into_iter().next())
    }

    async fn credential_revision(&self, client_id: &str) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT revision FROM credentials WHERE client_id = $1")
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| r.try_get::<i64, _>(0).map_err(backend_err)).transpose()
    }

    async fn list_credentials(
        &self,
        f: &CredentialFilter,
    ) -> Result<Paged<Credential>, StoreError> {
        let limit = f.limit.clamp(1, 1000);
        let (after_t, after_id) = credential_cursor(f.after.as_deref(), i64::MIN)?;
        // The cursor as one row comparison, which both databases answer from the
        // (created_at, client_id) index. Written as `created_at > $2 OR (created_at = $2 AND
        // client_id > $3)`, PostgreSQL filtered every row before the cursor instead: reading
        // 100,000 credentials a page at a time took quadratic time (415 ms for the 360th page of
        // 250, 3 ms now).
        let page_sql = format!(
            "SELECT client_id FROM credentials c WHERE ($1 = '' OR c.org = $1) \
             AND (c.created_at, c.client_id) > ($2, $3) \
             ORDER BY c.created_at, c.client_id LIMIT {}",
            i64::from(limit) + 1
        );
        let ids: Vec<String> = sqlx::query(&page_sql)
            .bind(f.org.as_deref().unwrap_or(""))
            .bind(after_t)
            .bind(&after_id)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0).map_err(backend_err))
            .collect::<Result<_, _>>()?;
        self.credential_page(ids, limit, "c.created_at, c.client_id").await
    }

    async fn update_credential(
        &self,
        c: &Credential,
        revocation: Option<&NewRevocation>,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let horizon_before = guard_before(&mut tx, guard).await?;
        let (revoked_before, revoked_through_us) = cutoff_columns(c);
        let done = sqlx::query(
            "UPDATE credentials SET name = $1, permissions = $2, audiences = $3, \
             token_lifetime_secs = $4, rate_limit_per_minute = $5, status = $6, expires_at = $7, \
             updated_at = $8, tokens_revoked_before = $9, tokens_revoked_through_us = $10, \
             claims = $11, public_keys = $12, revision = revision + 1 \
             WHERE client_id = $13 AND revision = $14",
        )
        .bind(&c.name)
        .bind(permissions_text(c))
        .bind(audiences_text(c))
        .bind(i64::from(c.token_lifetime_secs))
        .bind(c.rate_limit_per_minute.map(i64::from))
        .bind(c.status.as_str())
        .bind(c.expires_at)
        .bind(c.updated_at)
        .bind(revoked_before)
        .bind(revoked_through_us)
        .bind(c.claims.to_stored())
        .bind(tokenmint_core::assertion::keys_to_stored(&c.public_keys))
        .bind(c.client_id.as_str())
        .bind(c.revision)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            let exists = sqlx::query("SELECT 1 FROM credentials WHERE client_id = $1")
                .bind(c.client_id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            return Err(match exists {
                Some(_) => {
                    StoreError::Conflict("the credential was changed concurrently; retry".into())
                }
                None => StoreError::NotFound("credential"),
            });
        }
        if let Some(r) = revocation {
            append_revocation(&mut tx, r, c.updated_at).await?;
        }
        log_change(&mut tx, Entity::Credential, c.client_id.as_str(), c.updated_at).await?;
        guard_after(&mut tx, guard, horizon_before).await?;
        Ok(tx.commit().await?)
    }

    async fn add_secret(
        &self,
        client_id: &str,
        rotation: &Rotation,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let now = guard.now;
        let (_turn, mut tx) = self.begin().await?;
        let horizon_before = guard_before(&mut tx, guard).await?;
        let touched = sqlx::query(
            "UPDATE credentials SET updated_at = $1, revision = revision + 1 WHERE client_id = $2",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        if touched.rows_affected() != 1 {
            return Err(StoreError::NotFound("credential"));
        }
        // Decided here, where rotations of every instance are serialised: a concurrent
        // rotation has either committed (and is seen) or waits for this one.
        let rows = sqlx::query(
            "SELECT created_at, expires_at FROM credential_secrets WHERE client_id = $1",
        )
        .bind(client_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut secrets = Vec::with_capacity(rows.len());
        for r in &rows {
            let created: i64 = r.try_get("created_at")?;
            let expires: Option<i64> = r.try_get("expires_at")?;
            secrets.push((created, expires));
        }
        if secrets.len() > 1
            && let Some(newest) = secrets.iter().map(|(c, _)| *c).max()
            && now - newest < rotation.settle_secs
        {
            return Err(StoreError::Refused(Refusal::RotatedMomentsAgo {
                seconds_ago: (now - newest).max(0),
                settle_secs: rotation.settle_secs,
            }));
        }
        let live_after = secrets
            .iter()
            .filter(|(_, expires)| {
                let end = match (*expires, rotation.expire_others_at) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                end.is_none_or(|t| now < t)
            })
            .count();
        if live_after + 1 > rotation.max_live {
            return Err(StoreError::Refused(Refusal::TooManyLiveSecrets { live: live_after }));
        }
        if let Some(t) = rotation.expire_others_at {
            sqlx::query(
                "UPDATE credential_secrets SET expires_at = $1 \
                 WHERE client_id = $2 AND (expires_at IS NULL OR expires_at > $1)",
            )
            .bind(t)
            .bind(client_id)
            .execute(&mut *tx)
            .await?;
        }
        insert_secret(&mut tx, client_id, &rotation.secret).await?;
        log_change(&mut tx, Entity::Credential, client_id, now).await?;
        guard_after(&mut tx, guard, horizon_before).await?;
        Ok(tx.commit().await?)
    }

    async fn delete_secret(
        &self,
        client_id: &str,
        secret_id: &str,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let now = guard.now;
        let (_turn, mut tx) = self.begin().await?;
        let horizon_before = guard_before(&mut tx, guard).await?;
        let done = sqlx::query("DELETE FROM credential_secrets WHERE client_id = $1 AND id = $2")
            .bind(client_id)
            .bind(secret_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound("secret"));
        }
        sqlx::query(
            "UPDATE credentials SET updated_at = $1, revision = revision + 1 WHERE client_id = $2",
        )
        .bind(now)
        .bind(client_id)
        .execute(&mut *tx)
        .await?;
        log_change(&mut tx, Entity::Credential, client_id, now).await?;
        guard_after(&mut tx, guard, horizon_before).await?;
        Ok(tx.commit().await?)
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        if usage.is_empty() {
            return Ok(());
        }
        // Deliberately not logged as changes: last-used times must not invalidate caches.
        let (_turn, mut tx) = self.begin().await?;
        for u in usage {
            sqlx::query(
                "UPDATE credentials SET last_used_at = $1 WHERE client_id = $2 \
                 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(u.at)
            .bind(&u.client_id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE credential_secrets SET last_used_at = $1 WHERE id = $2 AND client_id = $3 \
                 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(u.at)
            .bind(&u.secret_id)
            .bind(&u.client_id)
            .execute(&mut *tx)
            .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn insert_key(
        &self,
        key: &KeyRecord,
        unless_pending_after: Option<UnixTime>,
        guard: &Guard,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let done = sqlx::query(
            "INSERT INTO signing_keys (kid, alg, sealed_private, created_at, activates_at, withdrawn_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE NOT EXISTS (\
               SELECT 1 FROM signing_keys WHERE withdrawn_at IS NULL AND activates_at > $7)",
        )
        .bind(&key.kid)
        .bind(key.alg.as_str())
        .bind(key.sealed_private.clone())
        .bind(key.created_at)
        .bind(key.activates_at)
        .bind(key.withdrawn_at)
        .bind(unless_pending_after.unwrap_or(i64::MAX))
        .execute(&mut *tx)
        .await
        ?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        log_change(&mut tx, Entity::Key, &key.kid, key.created_at).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_keys(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT kid, alg, sealed_private, created_at, activates_at, withdrawn_at FROM signing_keys \
             ORDER BY activates_at, created_at, kid",
        )
        .fetch_all(&self.pool)
        .await
        ?;
        rows.iter().map(key_from_row).collect()
    }

    async fn withdraw_key(
        &self,
        kid: &str,
        revocation: &NewRevocation,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let now = guard.now;
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let done = sqlx::query(
            "UPDATE signing_keys SET withdrawn_at = $1 WHERE kid = $2 AND withdrawn_at IS NULL",
        )
        .bind(now)
        .bind(kid)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Err(StoreError::NotFound("signing key"));
        }
        append_revocation(&mut tx, revocation, now).await?;
        log_change(&mut tx, Entity::Key, kid, now).await?;
        Ok(tx.commit().await?)
    }

    async fn delete_keys(&self, kids: &[String]) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        for kid in kids {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(kid)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx.commit().await?)
    }

    async fn add_revocation(
        &self,
        revocation: &NewRevocation,
        now: UnixTime,
    ) -> Result<i64, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let seq = append_revocation(&mut tx, revocation, now).await?;
        tx.commit().await?;
        Ok(seq)
    }

    async fn list_revocations(
        &self,
        after: i64,
        limit: u32,
        now: UnixTime,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, kind, subject, issued_before, issued_before_jti, expires_at FROM revocations \
             WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
        )
        .bind(after)
        .bind(now)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await
        ?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let subject: String = r.try_get("subject")?;
                let revocation = match kind.as_str() {
                    "token" => Revocation::Token { jti: subject },
                    "credential" => Revocation::Credential {
                        client_id: subject,
                        issued_before: r
                            .try_get::<Option<i64>, _>("issued_before")?
                            .ok_or_else(|| corrupt("issued_before"))?,
                        issued_before_jti: r.try_get::<Option<String>, _>("issued_before_jti")?,
                    },
                    "key" => Revocation::Key { kid: subject },
                    _ => return Err(corrupt("revocation kind")),
                };
                Ok(RevocationEntry {
                    cursor: r.try_get("seq")?,
                    revocation,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    async fn latest_revocation(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM revocations")
            .fetch_one(&self.pool)
            .await?;
        row.try_get::<i64, _>(0).map_err(backend_err)
    }

    async fn changes_after(&self, seq: i64, limit: u32) -> Result<Vec<Change>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, entity, key FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(i64::from(limit.clamp(1, 10_000)))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let entity: String = r.try_get("entity")?;
                Ok(Change {
                    seq: r.try_get("seq")?,
                    entity: Entity::parse(&entity).ok_or_else(|| corrupt("change entity"))?,
                    key: r.try_get("key")?,
                })
            })
            .collect()
    }

    async fn latest_change(&self) -> Result<i64, StoreError> {
        let row =
            sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM changes").fetch_one(&self.pool).await?;
        row.try_get::<i64, _>(0).map_err(backend_err)
    }

    async fn purge(&self, now: UnixTime, keep_until: UnixTime) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let mut n = 0;
        for (sql, t) in [
            ("DELETE FROM revocations WHERE expires_at <= $1", now),
            ("DELETE FROM changes WHERE at < $1", keep_until),
            (
                "DELETE FROM credential_secrets WHERE expires_at IS NOT NULL AND expires_at < $1",
                keep_until,
            ),
        ] {
            n += sqlx::query(sql).bind(t).execute(&mut *tx).await?.rows_affected();
        }
        tx.commit().await?;
        Ok(n)
    }

    async fn append_audit(&self, records: &[AuditRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // Not ordered with the admin writes: audit records are ordered by their own
        // sequence, and nobody follows this table by cursor while it is written.
        let (_turn, mut tx) = self.begin_unordered().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO audit_events (at, kind, org, client_id, actor, source_ip, reason, details) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(r.at)
            .bind(&r.kind)
            .bind(r.org.as_deref())
            .bind(r.client_id.as_deref())
            .bind(r.actor.as_deref())
            .bind(r.source_ip.as_deref())
            .bind(r.reason.as_deref())
            .bind(r.details.to_string())
            .execute(&mut *tx)
            .await
            ?;
        }
        Ok(tx.commit().await?)
    }

    async fn list_audit(&self, f: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        // One statement for every filter: an empty value means "any". The order decides which
        // records a limit keeps, so a newest-first page holds the newest records that match,
        // however many older ones there are.
        let order = if f.newest_first { "DESC" } else { "ASC" };
        let sql = format!(
            "SELECT seq, at, kind, org, client_id, actor, source_ip, reason, details FROM audit_events \
             WHERE seq > $1 AND seq < $2 AND at >= $3 AND at <= $4 \
             AND ($5 = '' OR org = $5) AND ($6 = '' OR client_id = $6) AND ($7 = '' OR kind = $7) \
             AND ($8 = '' OR actor = $8) \
             ORDER BY seq {order} LIMIT $9"
        );
        let rows = sqlx::query(&sql)
            .bind(f.after.unwrap_or(0))
            .bind(f.before.unwrap_or(i64::MAX))
            .bind(f.since.unwrap_or(i64::MIN))
            .bind(f.until.unwrap_or(i64::MAX))
            .bind(f.org.as_deref().unwrap_or(""))
            .bind(f.client_id.as_deref().unwrap_or(""))
            .bind(f.kind.as_deref().unwrap_or(""))
            .bind(f.actor.as_deref().unwrap_or(""))
            .bind(i64::from(f.limit.clamp(1, 10_000)))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let details: String = r.try_get("details")?;
                Ok(AuditRecord {
                    seq: r.try_get("seq")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    org: r.try_get("org")?,
                    client_id: r.try_get("client_id")?,
                    actor: r.try_get("actor")?,
                    source_ip: r.try_get("source_ip")?,
                    reason: r.try_get("reason")?,
                    details: serde_json::from_str(&details)
                        .map_err(|_| corrupt("audit details"))?,
                })
            })
            .collect()
    }

    async fn purge_audit(&self, before: UnixTime) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin_unordered().await?;
        let mut n = sqlx::query("DELETE FROM audit_events WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM token_counts WHERE minute < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        n += sqlx::query("DELETE FROM alert_deliveries WHERE at < $1")
            .bind(before)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    async fn add_token_counts(&self, counts: &[TokenCount<'_>]) -> Result<(), StoreError> {
        if counts.is_empty() {
            return Ok(());
        }
        let (_turn, mut tx) = self.begin_unordered().await?;
        for c in counts {
            sqlx::query(
                "INSERT INTO token_counts (client_id, minute, count) VALUES ($1, $2, $3) \
                 ON CONFLICT (client_id, minute) DO UPDATE SET count = token_counts.count + excluded.count",
            )
            .bind(c.client_id)
            .bind(c.minute)
            .bind(c.count)
            .execute(&mut *tx)
            .await
            ?;
        }
        Ok(tx.commit().await?)
    }

    async fn token_counts(
        &self,
        client_id: &str,
        since: UnixTime,
    ) -> Result<Vec<(UnixTime, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT minute, count FROM token_counts WHERE client_id = $1 AND minute >= $2 ORDER BY minute",
        )
        .bind(client_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        ?;
        rows.iter().map(|r| Ok((r.try_get("minute")?, r.try_get("count")?))).collect()
    }

    async fn record_alert_delivery(&self, d: &AlertDelivery) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query(
                "INSERT INTO alert_deliveries (id, at, kind, target, payload, attempts, status, \
                 last_error) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(&d.id)
            .bind(d.at)
            .bind(&d.kind)
            .bind(&d.target)
            .bind(&d.payload)
            .bind(d.attempts)
            .bind(if d.delivered { "delivered" } else { "failed" })
            .bind(d.last_error.as_deref()),
        )
        .await?;
        Ok(())
    }

    async fn list_alert_deliveries(&self, limit: u32) -> Result<Vec<AlertDelivery>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, kind, target, payload, attempts, status, last_error FROM alert_deliveries \
             ORDER BY at DESC, id LIMIT $1",
        )
        .bind(i64::from(limit.clamp(1, 1000)))
        .fetch_all(&self.pool)
        .await
        ?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(AlertDelivery {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    target: r.try_get("target")?,
                    payload: r.try_get("payload")?,
                    attempts: r.try_get("attempts")?,
                    delivered: status == "delivered",
                    last_error: r.try_get("last_error")?,
                })
            })
            .collect()
    }

    async fn claim_alert(
        &self,
        subject_hash: &str,
        at: UnixTime,
        window_secs: i64,
    ) -> Result<bool, StoreError> {
        let purge_before = at.saturating_sub(window_secs.max(1));
        self.claim_once(&ALERT_CLAIMS, subject_hash, at, purge_before).await
    }

    async fn use_client_assertion(
        &self,
        replay_key: &str,
        expires_at: UnixTime,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        self.claim_once(&USED_ASSERTIONS, replay_key, expires_at, now).await
    }

    async fn remember_network(
        &self,
        client_id: &str,
        network: &str,
        at: UnixTime,
    ) -> Result<(bool, i64), StoreError> {
        let (_turn, mut tx) = self.begin_unordered().await?;
        if self.dialect == Dialect::Postgres {
            // Count and insert as one step per credential: two instances recording its first
            // two networks at once would otherwise each count none and both take theirs for the
            // first, and the new-network alert would never fire. (SQLite has one writer.)
            sqlx::query("SELECT pg_advisory_xact_lock(7340022, hashtext($1))")
                .bind(client_id)
                .execute(&mut *tx)
                .await?;
        }
        let known = sqlx::query("SELECT COUNT(*) FROM credential_networks WHERE client_id = $1")
            .bind(client_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get::<i64, _>(0)?;
        let inserted = sqlx::query(
            "INSERT INTO credential_networks (client_id, network, first_seen) VALUES ($1, $2, $3) \
             ON CONFLICT (client_id, network) DO NOTHING",
        )
        .bind(client_id)
        .bind(network)
        .bind(at)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        tx.commit().await?;
        Ok((inserted, if inserted { known } else { known - 1 }))
    }

    async fn create_user(&self, u: &PortalUser, guard: &Guard) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        release_email(&mut tx, &email_key(&u.email)).await?;
        sqlx::query(
            "INSERT INTO portal_users (id, org, email, email_key, role, password_hash, status, \
             created_at, updated_at, last_sign_in_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&u.id)
        .bind(&u.org)
        .bind(&u.email)
        .bind(email_key(&u.email))
        .bind(u.role.as_str())
        .bind(&u.password_hash)
        .bind(u.status.as_str())
        .bind(u.created_at)
        .bind(u.updated_at)
        .bind(u.last_sign_in_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match backend_err(e) {
            StoreError::Conflict(_) => {
                StoreError::Conflict("a user with this email already exists".into())
            }
            StoreError::NotFound(_) => StoreError::NotFound("organization"),
            other => other,
        })?;
        Ok(tx.commit().await?)
    }

    async fn get_user(&self, id: &str) -> Result<Option<PortalUser>, StoreError> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM portal_users WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<PortalUser>, StoreError> {
        let row =
            sqlx::query(&format!("SELECT {USER_COLUMNS} FROM portal_users WHERE email_key = $1"))
                .bind(email_key(email))
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, org: Option<&str>) -> Result<Vec<PortalUser>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM portal_users WHERE ($1 = '' OR org = $1) \
             ORDER BY org, LOWER(email), id LIMIT 10000"
        ))
        .bind(org.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn set_user_status(
        &self,
        id: &str,
        status: UserStatus,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let now = guard.now;
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let row = sqlx::query("SELECT email, status FROM portal_users WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("user"))?;
        let email: String = row.try_get("email")?;
        let was: String = row.try_get("status")?;
        if status == UserStatus::Active && was != UserStatus::Active.as_str() {
            // Claims the email back; another deactivated holder releases it, an active one
            // keeps it (the unique key refuses the update).
            let key = email_key(&email);
            release_email(&mut tx, &key).await?;
            sqlx::query("UPDATE portal_users SET email_key = $1 WHERE id = $2")
                .bind(&key)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(|e| match backend_err(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(
                        "another user has this email address now; deactivate that user first"
                            .into(),
                    ),
                    other => other,
                })?;
        }
        sqlx::query("UPDATE portal_users SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if status == UserStatus::Deactivated {
            end_sessions(&mut tx, id, None).await?;
        }
        Ok(tx.commit().await?)
    }

    async fn set_user_role(
        &self,
        id: &str,
        role: UserRole,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let n = sqlx::query("UPDATE portal_users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(guard.now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("user"));
        }
        // A reset code was issued by someone allowed to reset the user *as they were*: once
        // the role changes (say to `platform`, which its issuer may not touch) it is void.
        drop_password_resets(&mut tx, id).await?;
        Ok(tx.commit().await?)
    }

    async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        keep_session: Option<&str>,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        let n = sqlx::query(
            "UPDATE portal_users SET password_hash = $1, updated_at = $2 WHERE id = $3",
        )
        .bind(password_hash)
        .bind(guard.now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Err(StoreError::NotFound("user"));
        }
        end_sessions(&mut tx, id, keep_session).await?;
        Ok(tx.commit().await?)
    }

    async fn create_password_reset(
        &self,
        r: &PasswordReset,
        guard: &Guard,
    ) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        check_actor(&mut tx, guard).await?;
        // A newer code replaces the older one.
        drop_password_resets(&mut tx, &r.user_id).await?;
        sqlx::query(
            "INSERT INTO password_resets (code_hash, user_id, created_at, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.code_hash)
        .bind(&r.user_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match backend_err(e) {
            StoreError::NotFound(_) => StoreError::NotFound("user"),
            other => other,
        })?;
        Ok(tx.commit().await?)
    }

    async fn find_password_reset(
        &self,
        code_hash: &str,
        now: UnixTime,
    ) -> Result<Option<PortalUser>, StoreError> {
        let columns = USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>();
        let row = sqlx::query(&format!(
            "SELECT {} FROM password_resets r JOIN portal_users u ON u.id = r.user_id \
             WHERE r.code_hash = $1 AND r.expires_at > $2 AND u.status = 'active'",
            columns.join(", ")
        ))
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn redeem_password_reset(
        &self,
        code_hash: &str,
        password_hash: &str,
        now: UnixTime,
    ) -> Result<PortalUser, StoreError> {
        let (_turn, mut tx) = self.begin().await?;
        let row = sqlx::query(
            "SELECT r.user_id FROM password_resets r JOIN portal_users u ON u.id = r.user_id \
             WHERE r.code_hash = $1 AND r.expires_at > $2 AND u.status = 'active'",
        )
        .bind(code_hash)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or(StoreError::NotFound("password reset"))?;
        let user_id: String = row.try_get("user_id")?;
        sqlx::query("UPDATE portal_users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(&user_id)
            .execute(&mut *tx)
            .await?;
        end_sessions(&mut tx, &user_id, None).await?;
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM portal_users WHERE id = $1"))
            .bind(&user_id)
            .fetch_one(&mut *tx)
            .await?;
        let user = user_from_row(&row)?;
        tx.commit().await?;
        Ok(user)
    }

    async fn record_sign_in(&self, id: &str, at: UnixTime) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query("UPDATE portal_users SET last_sign_in_at = $1 WHERE id = $2")
                .bind(at)
                .bind(id),
        )
        .await?;
        Ok(())
    }

    async fn create_session(&self, s: &PortalSession) -> Result<(), StoreError> {
        self.write_one(
            sqlx::query(
                "INSERT INTO portal_sessions (id_hash, user_id, csrf_secret, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&s.id_hash)
            .bind(&s.user_id)
            .bind(&s.csrf_secret)
            .bind(s.created_at)
            .bind(s.expires_at),
        )
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => StoreError::NotFound("user"),
            other => other,
        })?;
        Ok(())
    }

    async fn get_session(
        &self,
        id_hash: &str,
        now: UnixTime,
    ) -> Result<Option<PortalSession>, StoreError> {
        let row = sqlx::query(
            "SELECT id_hash, user_id, csrf_secret, created_at, expires_at FROM portal_sessions \
             WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(PortalSession {
                id_hash: r.try_get("id_hash")?,
                user_id: r.try_get("user_id")?,
                csrf_secret: r.try_get("csrf_secret")?,
                created_at: r.try_get("created_at")?,
                expires_at: r.try_get("expires_at")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.write_one(sqlx::query("DELETE FROM portal_sessions WHERE id_hash = $1").bind(id_hash))
            .await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: UnixTime) -> Result<u64, StoreError> {
        Ok(self
            .write_one(sqlx::query("DELETE FROM portal_sessions WHERE expires_at <= $1").bind(now))
            .await?
            .rows_affected())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn listen_changes(&self) -> Result<Option<ChangeListener>, StoreError> {
        if self.dialect != Dialect::Postgres {
            return Ok(None);
        }
        let mut listener = sqlx::postgres::PgListener::connect(&self.url).await?;
        listener.listen(CHANGES_CHANNEL).await?;
        Ok(Some(ChangeListener { listener }))
    }

    async fn search_credentials(
        &self,
        f: &CredentialSearch,
    ) -> Result<Paged<Credential>, StoreError> {
        let limit = f.limit.clamp(1, 1000);
        // Newest first: the cursor is the last row's (created_at, client_id), and the next page
        // starts strictly before it.
        let (before_t, before_id) = credential_cursor(f.after.as_deref(), i64::MAX)?;
        let text = f.text.as_deref().map(str::trim).unwrap_or("");
        let state = f.state.map_or("", CredentialState::as_str);
        // Every parameter appears in the statement whether its condition applies or not, so
        // that PostgreSQL can type each of them.
        let page_sql = format!(
            "SELECT c.client_id FROM credentials c WHERE ($1 = '' OR c.org = $1) \
             AND (c.created_at, c.client_id) < ($2, $3) \
             AND ($4 = '' OR c.environment = $4) \
             AND ($5 = '' \
               OR ($5 = 'deactivated' AND c.status = 'deactivated') \
               OR ($5 = 'active' AND c.status = 'active' \
                   AND (c.expires_at IS NULL OR c.expires_at > $6)) \
               OR ($5 = 'expired' AND c.status = 'active' AND c.expires_at <= $6)) \
             AND ($7 = '' OR LOWER(c.name) LIKE $8 ESCAPE '\\' \
               OR c.client_id LIKE $9 ESCAPE '\\') \
             ORDER BY c.created_at DESC, c.client_id DESC LIMIT {}",
            i64::from(limit) + 1
        );
        let ids: Vec<String> = sqlx::query(&page_sql)
            .bind(f.org.as_deref().unwrap_or(""))
            .bind(before_t)
            .bind(before_id)
            .bind(f.environment.map(|e| e.to_string()).unwrap_or_default())
            .bind(state)
            .bind(f.now)
            .bind(text.to_owned())
            .bind(format!("%{}%", like_literal(&text.to_ascii_lowercase())))
            .bind(format!("{}%", like_literal(text)))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|r| r.try_get::<String, _>(0).map_err(backend_err))
            .collect::<Result<_, _>>()?;
        self.credential_page(ids, limit, "c.created_at DESC, c.client_id DESC").await
    }

    async fn put_portal_flash(&self, flash: &PortalFlash, now: UnixTime) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_unordered().await?;
        sqlx::query("DELETE FROM portal_flashes WHERE session_hash = $1 OR expires_at <= $2")
            .bind(&flash.session_hash)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO portal_flashes (session_hash, purpose, sealed, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&flash.session_hash)
        .bind(&flash.purpose)
        .bind(flash.sealed.clone())
        .bind(flash.expires_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| match backend_err(e) {
            StoreError::NotFound(_) => StoreError::NotFound("session"),
            other => other,
        })?;
        tx.commit().await?;
        Ok(())
    }

    async fn take_portal_flash(
        &self,
        session_hash: &str,
        purpose: &str,
        now: UnixTime,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        // One statement deletes and returns: two instances asked at once cannot both get it.
        let (_turn, mut tx) = self.begin_unordered().await?;
        let row = sqlx::query(
            "DELETE FROM portal_flashes WHERE session_hash = $1 AND purpose = $2 \
             AND expires_at > $3 RETURNING sealed",
        )
        .bind(session_hash)
        .bind(purpose)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        row.map(|r| r.try_get::<Vec<u8>, _>(0).map_err(backend_err)).transpose()
    }
}

/// Text to match literally in a LIKE pattern: its wildcards and the escape are escaped.
fn like_literal(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use sqlx::Connection;

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_is_readable_by_its_owner_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let store = SqlStore::connect(&format!("sqlite://{}", path.display()), true).await.unwrap();
        store.close().await;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        // An existing file keeps the permissions its owner gave it.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let store = SqlStore::connect(&format!("sqlite:{}", path.display()), true).await.unwrap();
        store.close().await;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("sqlite://a/b.db?mode=rwc"), Some("a/b.db".into()));
    }

    /// The error a writer gets when another holds the write lock past its busy timeout is the
    /// one [`SqlStore::begin_sqlite`] waits out; other errors are not.
    #[tokio::test]
    async fn a_held_write_lock_is_told_apart_from_other_errors() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let mut holder = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut holder).await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut holder).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut holder).await.unwrap();
        let mut writer = sqlx::SqliteConnection::connect(&url).await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 0").execute(&mut writer).await.unwrap();
        let busy = sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.unwrap_err();
        assert!(is_busy(&busy), "{busy}");
        let other = sqlx::query("SELECT * FROM missing").execute(&mut writer).await.unwrap_err();
        assert!(!is_busy(&other), "{other}");
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut writer).await.unwrap();
    }
}
