//! The audit trail: security events, written behind the request that caused them.
//!
//! Events go into a bounded channel in the order they happen and a writer task appends them in
//! batches, so neither an admin action nor a refused token request waits for the database. If
//! the database is down, the writer keeps its batch and retries; if the channel is full (a
//! flood), events are dropped and counted, never blocking the request path. Successful token
//! issuances are not events: they are counted per credential and minute (see `usage`).
//!
//! An event's text fields are typed: the client_id as a [`PresentedClientId`], the organization
//! and the actor as [`SafeText`]. Whatever a request brought, a record can hold no control
//! character and no unbounded text. The one text kept as it was said is a token hook's reason
//! for a refusal (`details.provider_reason`, at most 200 characters): an export shows what the
//! provider said, and JSON, the only form a record's details take, escapes what must be.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;
use tokenmint_core::{PresentedClientId, SafeText, UnixTime};
use tokenmint_store::{AuditRecord, Store};
use tokio::sync::mpsc;

/// The kinds of events recorded. The strings are the `kind` the admin API filters on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditKind {
    OrganizationCreated,
    OrganizationUpdated,
    CredentialCreated,
    CredentialUpdated,
    CredentialDeactivated,
    CredentialActivated,
    SecretRotated,
    SecretDeleted,
    TokensRevoked,
    TokenRevoked,
    TokenRefused,
    KeyRotated,
    KeyWithdrawn,
    SourceBlocked,
    AlertFired,
    PortalSignIn,
    PortalSignInFailed,
    PortalSignOut,
    UserCreated,
    UserDeactivated,
    UserReactivated,
    UserRoleChanged,
    /// A one-time password-reset code was issued for the user.
    UserPasswordReset,
    /// The user's password was changed (by the user, or with a reset code).
    UserPasswordChanged,
}

impl AuditKind {
    /// Every kind, for checking a filter and listing what can be asked for.
    pub const ALL: [Self; 24] = [
        Self::OrganizationCreated,
        Self::OrganizationUpdated,
        Self::CredentialCreated,
        Self::CredentialUpdated,
        Self::CredentialDeactivated,
        Self::CredentialActivated,
        Self::SecretRotated,
        Self::SecretDeleted,
        Self::TokensRevoked,
        Self::TokenRevoked,
        Self::TokenRefused,
        Self::KeyRotated,
        Self::KeyWithdrawn,
        Self::SourceBlocked,
        Self::AlertFired,
        Self::PortalSignIn,
        Self::PortalSignInFailed,
        Self::PortalSignOut,
        Self::UserCreated,
        Self::UserDeactivated,
        Self::UserReactivated,
        Self::UserRoleChanged,
        Self::UserPasswordReset,
        Self::UserPasswordChanged,
    ];

    /// The kind named `name` (its [`Self::as_str`]), if there is one.
    pub fn named(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::OrganizationCreated => "organization.created",
            Self::OrganizationUpdated => "organization.updated",
            Self::CredentialCreated => "credential.created",
            Self::CredentialUpdated => "credential.updated",
            Self::CredentialDeactivated => "credential.deactivated",
            Self::CredentialActivated => "credential.activated",
            Self::SecretRotated => "credential.secret_rotated",
            Self::SecretDeleted => "credential.secret_deleted",
            Self::TokensRevoked => "credential.tokens_revoked",
            Self::TokenRevoked => "token.revoked",
            Self::TokenRefused => "token.refused",
            Self::KeyRotated => "key.rotated",
            Self::KeyWithdrawn => "key.withdrawn",
            Self::SourceBlocked => "source.blocked",
            Self::AlertFired => "alert.fired",
            Self::PortalSignIn => "portal.sign_in",
            Self::PortalSignInFailed => "portal.sign_in_failed",
            Self::PortalSignOut => "portal.sign_out",
            Self::UserCreated => "user.created",
            Self::UserDeactivated => "user.deactivated",
            Self::UserReactivated => "user.reactivated",
            Self::UserRoleChanged => "user.role_changed",
            Self::UserPasswordReset => "user.password_reset",
            Self::UserPasswordChanged => "user.password_changed",
        }
    }
}

/// One event, as the code that saw it describes it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    pub kind: AuditKind,
    pub org: Option<SafeText>,
    pub client_id: Option<PresentedClientId>,
    pub actor: Option<SafeText>,
    pub source_ip: Option<IpAddr>,
    pub reason: Option<&'static str>,
    pub details: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: AuditKind) -> Self {
        Self {
            kind,
            org: None,
            client_id: None,
            actor: None,
            source_ip: None,
            reason: None,
            details: serde_json::Value::Null,
        }
    }

    #[must_use]
    pub fn org(mut self, org: impl Into<SafeText>) -> Self {
        self.org = Some(org.into());
        self
    }

    #[must_use]
    pub fn client(mut self, client_id: impl Into<PresentedClientId>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    #[must_use]
    pub fn actor(mut self, actor: impl Into<SafeText>) -> Self {
        self.actor = Some(actor.into());
        self
    }

    #[must_use]
    pub fn ip(mut self, ip: Option<IpAddr>) -> Self {
        self.source_ip = ip;
        self
    }

    #[must_use]
    pub fn reason(mut self, reason: &'static str) -> Self {
        self.reason = Some(reason);
        self
    }

    #[must_use]
    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }
}

/// The sending side, shared by every request.
#[derive(Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<AuditRecord>,
    dropped: AtomicU64,
    /// Unix time of the oldest event not yet written, 0 when none: the write lag.
    oldest_pending: Arc<AtomicI64>,
}

/// The receiving side, run by [`run_writer`].
#[derive(Debug)]
pub struct AuditQueue {
    rx: mpsc::Receiver<AuditRecord>,
    oldest_pending: Arc<AtomicI64>,
}

pub fn channel(capacity: usize) -> (AuditLog, AuditQueue) {
    let (tx, rx) = mpsc::channel(capacity);
    let oldest = Arc::new(AtomicI64::new(0));
    (
        AuditLog { tx, dropped: AtomicU64::new(0), oldest_pending: oldest.clone() },
        AuditQueue { rx, oldest_pending: oldest },
    )
}

impl AuditLog {
    pub fn record(&self, event: AuditEvent, now: UnixTime) {
        let record = AuditRecord {
            seq: 0,
            at: now,
            kind: event.kind.as_str().to_owned(),
            org: event.org.map(SafeText::into_string),
            client_id: event.client_id.map(|c| c.as_str().to_owned()),
            actor: event.actor.map(SafeText::into_string),
            source_ip: event.source_ip.map(|ip| ip.to_string()),
            reason: event.reason.map(str::to_owned),
            details: event.details,
        };
        let _ = self.oldest_pending.compare_exchange(0, now, Ordering::AcqRel, Ordering::Acquire);
        if self.tx.try_send(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Seconds the oldest unwritten event has waited (0 when everything is written).
    pub fn lag(&self, now: UnixTime) -> i64 {
        match self.oldest_pending.load(Ordering::Acquire) {
            0 => 0,
            t => (now - t).max(0),
        }
    }
}

const BATCH: usize = 512;

/// Writes events in order until `stop`, then writes what is left.
pub async fn run_writer(
    mut queue: AuditQueue,
    store: Arc<dyn Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut batch: Vec<AuditRecord> = Vec::with_capacity(BATCH);
    let mut retry = tokio::time::interval(Duration::from_secs(2));
    retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        if batch.len() < BATCH {
            let room = BATCH - batch.len();
            tokio::select! {
                n = queue.rx.recv_many(&mut batch, room) => {
                    if n == 0 { break; }
                }
                _ = retry.tick(), if !batch.is_empty() => {}
                _ = stop.changed() => break,
            }
        } else {
            tokio::select! {
                _ = retry.tick() => {}
                _ = stop.changed() => break,
            }
        }
        match store.append_audit(&batch).await {
            Ok(()) => {
                batch.clear();
                if queue.rx.is_empty() {
                    queue.oldest_pending.store(0, Ordering::Release);
                }
                if failing {
                    tracing::info!("audit trail writable again");
                    failing = false;
                }
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, pending = batch.len(), "cannot write the audit trail; will retry");
                    failing = true;
                }
            }
        }
    }
    while let Ok(r) = queue.rx.try_recv() {
        batch.push(r);
    }
    if let Err(e) = store.append_audit(&batch).await {
        tracing::error!(error = %e, lost = batch.len(), "audit events could not be written at shutdown");
    }
}
