//! Alerts: rules over the security events, delivered to signed webhooks and to the log.
//!
//! Rules (thresholds in [`AlertConfig`]): repeated authentication failures for one credential;
//! any use of a deactivated or expired credential or of an expired secret (someone holds a
//! secret that should be dead); a credential used from a network it has not been used from
//! before; a credential hitting its rate limit again and again; a source blocked for brute
//! force. An alert for the same rule and subject fires at most once per cooldown.
//!
//! Delivery is a POST of JSON to each webhook with `Tokenmint-Signature: t=<unix>,v1=<hex>`,
//! HMAC-SHA-256 over `<unix>.<body>` with the configured secret (the scheme Stripe and GitHub
//! users know), retried with exponential backoff; every delivery, successful or given up, is
//! recorded (the failed ones are the dead-letter record).

use crate::audit::{AuditEvent, AuditKind, AuditLog};
use quick_cache::sync::Cache;
use serde::Serialize;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::UnixTime;
use tokenmint_core::ids::random_id;
use tokenmint_core::ratelimit::{Decision, RateLimiter};
use tokenmint_store::{AlertDelivery, Store};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    AuthFailures,
    DeactivatedCredentialUsed,
    ExpiredSecretUsed,
    NewNetwork,
    RateLimitedRepeatedly,
    SourceBlocked,
}

impl AlertKind {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AuthFailures => "auth_failures",
            Self::DeactivatedCredentialUsed => "deactivated_credential_used",
            Self::ExpiredSecretUsed => "expired_secret_used",
            Self::NewNetwork => "new_network",
            Self::RateLimitedRepeatedly => "rate_limited_repeatedly",
            Self::SourceBlocked => "source_blocked",
        }
    }
}

/// The webhook signing secret. Never printed.
#[derive(Clone)]
pub struct WebhookSecret(pub String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret([redacted])")
    }
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub webhooks: Vec<String>,
    pub secret: Option<WebhookSecret>,
    /// Rate-limit refusals of one credential within `rate_limit_window` that raise an alert.
    pub rate_limit_hits: u32,
    pub rate_limit_window: Duration,
    /// Minimum time between two alerts of the same rule about the same subject.
    pub cooldown: Duration,
    /// First delay between delivery attempts; it doubles each time.
    pub retry_base: Duration,
    pub max_attempts: u32,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            webhooks: vec![],
            secret: None,
            rate_limit_hits: 5,
            rate_limit_window: Duration::from_secs(600),
            cooldown: Duration::from_secs(900),
            retry_base: Duration::from_secs(1),
            max_attempts: 5,
        }
    }
}

/// One alert.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    pub at: UnixTime,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
}

impl Alert {
    pub fn new(kind: AlertKind, at: UnixTime, summary: impl Into<String>) -> Self {
        Self {
            id: random_id("alt_", 16),
            kind,
            at,
            summary: summary.into(),
            org: None,
            client_id: None,
            source_ip: None,
        }
    }

    fn subject(&self) -> String {
        format!(
            "{}|{}|{}",
            self.kind.as_str(),
            self.client_id.as_deref().unwrap_or(""),
            self.source_ip.as_deref().unwrap_or("")
        )
    }
}

enum Msg {
    Deliver(Alert),
    Network { client_id: String, org: String, network: String, ip: IpAddr, at: UnixTime },
}

/// The front side: rules are evaluated here, delivery happens in [`run_deliveries`].
pub struct Alerts {
    config: AlertConfig,
    tx: mpsc::Sender<Msg>,
    last_fired: Cache<String, UnixTime>,
    rate_limit_hits: RateLimiter,
    /// Hashes of (client_id, network) pairs already checked, so the database is asked once.
    networks_seen: Cache<u64, ()>,
}

impl fmt::Debug for Alerts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alerts")
            .field("webhooks", &self.config.webhooks.len())
            .finish_non_exhaustive()
    }
}

/// The receiving side.
pub struct AlertQueue {
    rx: mpsc::Receiver<Msg>,
}

impl fmt::Debug for AlertQueue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AlertQueue")
    }
}

pub fn channel(config: AlertConfig) -> (Alerts, AlertQueue) {
    let (tx, rx) = mpsc::channel(4096);
    (
        Alerts {
            config,
            tx,
            last_fired: Cache::new(10_000),
            rate_limit_hits: RateLimiter::new(10_000),
            networks_seen: Cache::new(200_000),
        },
        AlertQueue { rx },
    )
}

/// The network an address belongs to for the "new network" rule: the /24 of an IPv4 address,
/// the /48 of an IPv6 one (a site).
pub fn network_of(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
        }
    }
}

impl Alerts {
    /// Fires an alert unless the same rule fired for the same subject within the cooldown.
    pub fn fire(&self, alert: Alert, audit: &AuditLog) {
        let subject = alert.subject();
        let cooldown = i64::try_from(self.config.cooldown.as_secs()).unwrap_or(900);
        if self.last_fired.get(&subject).is_some_and(|t| alert.at - t < cooldown) {
            return;
        }
        self.last_fired.insert(subject, alert.at);
        tracing::warn!(
            alert = alert.kind.as_str(),
            client_id = alert.client_id.as_deref().unwrap_or(""),
            source_ip = alert.source_ip.as_deref().unwrap_or(""),
            summary = %alert.summary,
            "security alert"
        );
        let mut event = AuditEvent::new(AuditKind::AlertFired)
            .actor("system")
            .reason(alert.kind.as_str())
            .details(serde_json::json!({"alert_id": alert.id, "summary": alert.summary}));
        event.org = alert.org.clone();
        event.client_id = alert.client_id.clone();
        event.source_ip = alert.source_ip.as_deref().and_then(|s| s.parse().ok());
        audit.record(event, alert.at);
        if !self.config.webhooks.is_empty() && self.tx.try_send(Msg::Deliver(alert)).is_err() {
            tracing::error!("alert queue full: an alert was logged but not delivered");
        }
    }

    /// Called when a credential's request is refused by its rate limit.
    pub fn on_rate_limited(&self, client_id: &str, org: &str, now: UnixTime, audit: &AuditLog) {
        let hits = self.rate_limit_hits.check_quota(
            client_id,
            self.config.rate_limit_hits,
            self.config.rate_limit_window,
        );
        if matches!(hits, Decision::Limited { .. }) {
            let mut a = Alert::new(
                AlertKind::RateLimitedRepeatedly,
                now,
                format!(
                    "credential {client_id} keeps hitting its token-request limit; it may not be caching tokens, or its secret may be in the wrong hands"
                ),
            );
            a.client_id = Some(client_id.to_owned());
            a.org = Some(org.to_owned());
            self.fire(a, audit);
        }
    }

    /// Called after a successful authentication: checks the source network, at most once per
    /// (credential, network) pair per process.
    pub fn on_use(&self, client_id: &str, org: &str, ip: Option<IpAddr>, now: UnixTime) {
        let Some(ip) = ip else { return };
        let network = network_of(ip);
        let mut h = std::collections::hash_map::DefaultHasher::new();
        client_id.hash(&mut h);
        network.hash(&mut h);
        let key = h.finish();
        if self.networks_seen.get(&key).is_some() {
            return;
        }
        self.networks_seen.insert(key, ());
        let _ = self.tx.try_send(Msg::Network {
            client_id: client_id.to_owned(),
            org: org.to_owned(),
            network,
            ip,
            at: now,
        });
    }
}

/// Delivers alerts and checks networks until `stop`.
pub async fn run_deliveries(
    mut queue: AlertQueue,
    alerts: Arc<Alerts>,
    audit: Arc<AuditLog>,
    store: Arc<dyn Store>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .user_agent(concat!("tokenmint-alerts/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default();
    let mut inflight = tokio::task::JoinSet::new();
    loop {
        let msg = tokio::select! {
            m = queue.rx.recv() => match m { Some(m) => m, None => break },
            _ = stop.changed() => break,
        };
        match msg {
            Msg::Deliver(alert) => {
                for target in alerts.config.webhooks.clone() {
                    inflight.spawn(deliver(
                        http.clone(),
                        alerts.config.clone(),
                        store.clone(),
                        target,
                        alert.clone(),
                    ));
                }
            }
            Msg::Network { client_id, org, network, ip, at } => {
                match store.remember_network(&client_id, &network, at).await {
                    Ok((true, before)) if before > 0 => {
                        let mut a = Alert::new(
                            AlertKind::NewNetwork,
                            at,
                            format!(
                                "credential {client_id} was used from {network}, a network it had not been used from"
                            ),
                        );
                        a.client_id = Some(client_id);
                        a.org = Some(org);
                        a.source_ip = Some(ip.to_string());
                        alerts.fire(a, &audit);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot record the network a credential was used from")
                    }
                }
            }
        }
        while inflight.try_join_next().is_some() {}
    }
    // Deliveries under way get a moment to finish; retries do not outlive the process.
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while inflight.join_next().await.is_some() {}
    })
    .await;
}

/// The `Tokenmint-Signature` header value for `body` sent at `t`.
pub fn signature(secret: &WebhookSecret, t: UnixTime, body: &str) -> String {
    let mac = tokenmint_core::crypto::hmac_sha256_hex(
        secret.0.as_bytes(),
        format!("{t}.{body}").as_bytes(),
    );
    format!("t={t},v1={mac}")
}

async fn deliver(
    http: reqwest::Client,
    config: AlertConfig,
    store: Arc<dyn Store>,
    target: String,
    alert: Alert,
) {
    let body = serde_json::to_string(&alert).unwrap_or_default();
    let mut last_error = None;
    let mut attempts = 0;
    let mut delay = config.retry_base;
    while attempts < config.max_attempts.max(1) {
        attempts += 1;
        let t = now_unix();
        let mut req =
            http.post(&target).header("content-type", "application/json").body(body.clone());
        if let Some(secret) = &config.secret {
            req = req.header("tokenmint-signature", signature(secret, t, &body));
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {
                last_error = None;
                break;
            }
            Ok(res) => last_error = Some(format!("HTTP {}", res.status().as_u16())),
            Err(e) => {
                last_error = Some(if e.is_timeout() {
                    "timeout".to_owned()
                } else {
                    "connection failed".to_owned()
                })
            }
        }
        if attempts < config.max_attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    let delivered = last_error.is_none();
    if !delivered {
        tracing::error!(target = %target, alert = alert.kind.as_str(), attempts, "alert delivery failed; kept as a dead letter");
    }
    let record = AlertDelivery {
        id: alert.id.clone() + "-" + &random_id("", 6),
        at: alert.at,
        kind: alert.kind.as_str().to_owned(),
        target,
        payload: body,
        attempts: i64::from(attempts),
        delivered,
        last_error,
    };
    if let Err(e) = store.record_alert_delivery(&record).await {
        tracing::warn!(error = %e, "cannot record an alert delivery");
    }
}

fn now_unix() -> UnixTime {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_are_the_site_an_address_belongs_to() {
        assert_eq!(network_of("192.0.2.77".parse().unwrap()), "192.0.2.0/24");
        assert_eq!(network_of("2001:db8:abcd:12::1".parse().unwrap()), "2001:db8:abcd::/48");
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let s = WebhookSecret("whsec".into());
        let a = signature(&s, 100, "{}");
        assert!(a.starts_with("t=100,v1="));
        assert_ne!(a, signature(&s, 101, "{}"));
        assert_ne!(a, signature(&s, 100, "{ }"));
        assert!(!format!("{s:?}").contains("whsec"));
    }
}
