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
//!
//! Webhook URLs are configured by the operator but still untrusted as destinations: a delivery
//! follows no redirect (a redirect would carry the alert, and with it the URL in `Referer`,
//! somewhere else), and loopback, private, link-local (cloud metadata at 169.254.169.254),
//! unique-local and other non-public addresses are refused, both when the server starts and
//! when each connection is made (the resolver re-checks what a name resolves to then, so a
//! name that later resolves to an internal address is caught: DNS rebinding), unless
//! `--alert-webhook-allow-private` says the receiver is meant to be internal. A URL may carry
//! credentials (user info, a token in the query): only its redacted form is ever logged or
//! stored.
//!
//! An alert's text is typed ([`SafeText`], [`PresentedClientId`]): a client_id holding a line
//! break or a terminal escape cannot forge a log line or reach a webhook as it was sent.
//!
//! Several instances see the same event (a brute force spread over them by a balancer, a
//! credential over its limit on all of them): the alert fires once. Before firing, an instance
//! claims the alert's rule and subject for the cooldown, in Redis (`SET NX PX`) when `--redis`
//! is given and answers, else in the database (a row per subject, see migration 0008); only
//! the instance that got the claim logs, audits and delivers it. A claim that cannot be made at
//! all (database down too) fires the alert anyway: a duplicate beats a lost alert. The count
//! behind "rate-limited repeatedly" is shared the same way as the brute-force counters.

use crate::audit::{AuditEvent, AuditKind, AuditLog};
use crate::cache::CachedCredential;
use quick_cache::sync::Cache;
use serde::Serialize;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_core::ids::random_id;
use tokenmint_core::{PresentedClientId, SafeText, UnixTime};
use tokenmint_http::Limits;
use tokenmint_http::limits::FailureCount;
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

/// A webhook URL. The URL itself is secret (it may hold credentials or a token in its query):
/// `Debug`, logs and the delivery record show only [`WebhookTarget::shown`].
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookTarget {
    url: reqwest::Url,
    shown: String,
}

/// A webhook URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error("'{0}' is not an http(s) URL with a host")]
    Invalid(String),
    #[error(
        "the alert webhook {shown} points at {addr}, a {kind} address: alerts are not sent to \
         internal targets; use a public receiver, or give --alert-webhook-allow-private if this \
         receiver is meant to be internal"
    )]
    Private { shown: String, addr: IpAddr, kind: &'static str },
}

impl WebhookTarget {
    pub fn parse(raw: &str) -> Result<Self, WebhookError> {
        let url =
            reqwest::Url::parse(raw.trim()).map_err(|_| WebhookError::Invalid(redact_text(raw)))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(WebhookError::Invalid(redact_text(raw)));
        }
        let shown = redact(&url);
        Ok(Self { url, shown })
    }

    /// The URL itself: for making requests only, never for logs.
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// The URL without its user info, query and fragment: safe to log and to store.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// The address in the URL, when it is an IP literal rather than a name.
    fn literal_ip(&self) -> Option<IpAddr> {
        // `host_str` writes an IPv6 literal in brackets; a domain never parses as an address.
        let host = self.url.host_str()?;
        host.trim_start_matches('[').trim_end_matches(']').parse().ok()
    }
}

impl fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookTarget({})", self.shown)
    }
}

fn redact(url: &reqwest::Url) -> String {
    let mut shown = format!("{}://", url.scheme());
    if !url.username().is_empty() || url.password().is_some() {
        shown.push_str("[redacted]@");
    }
    if let Some(host) = url.host_str() {
        shown.push_str(host);
    }
    if let Some(port) = url.port() {
        shown.push_str(&format!(":{port}"));
    }
    shown.push_str(url.path());
    if url.query().is_some() {
        shown.push_str("?[redacted]");
    }
    shown
}

/// What can be shown of a string that did not even parse as a URL: its scheme, if any.
fn redact_text(raw: &str) -> String {
    match raw.split_once("://") {
        Some((scheme, _)) if scheme.chars().all(|c| c.is_ascii_alphanumeric()) => {
            format!("{scheme}://[redacted]")
        }
        _ => "[redacted]".to_owned(),
    }
}

/// Why an address is no place for an alert, or `None` for a public one.
pub fn non_public_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private")
            } else if v4.is_link_local() {
                Some("link-local (cloud metadata)")
            } else if v4.is_unspecified() || o[0] == 0 {
                Some("unspecified")
            } else if o[0] == 100 && (o[1] & 0xC0) == 64 {
                Some("shared (carrier-grade NAT)")
            } else if o[0] == 192 && o[1] == 0 && o[2] == 0 {
                Some("IETF protocol assignment")
            } else if matches!([o[0], o[1], o[2]], [192, 0, 2] | [198, 51, 100] | [203, 0, 113]) {
                Some("documentation")
            } else if matches!(
                [o[0], o[1], o[2]],
                [192, 88, 99] | [192, 31, 196] | [192, 52, 193] | [192, 175, 48]
            ) {
                // 6to4 relay anycast, AS112, AMT, AS112 direct delegation (RFC 7526, 7534,
                // 7450, 7535): special-use, no webhook lives there.
                Some("special-use")
            } else if o[0] == 198 && (o[1] & 0xFE) == 18 {
                Some("benchmarking")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_kind(IpAddr::V4(v4));
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if (s[0] & 0xFE00) == 0xFC00 {
                Some("unique-local")
            } else if (s[0] & 0xFFC0) == 0xFE80 || (s[0] & 0xFFC0) == 0xFEC0 {
                Some("link-local")
            } else if v6.is_multicast() {
                Some("multicast or reserved")
            } else if s[0] == 0x64 && s[1] == 0xFF9B && s[2..6] == [0, 0, 0, 0] {
                // NAT64 (RFC 6052 well-known prefix): the IPv4 address inside decides.
                non_public_kind(IpAddr::V4(v4_from(s[6], s[7])))
            } else if s[0] == 0x64 && s[1] == 0xFF9B && s[2] == 1 {
                // RFC 8215: NAT64 prefixes for one network's own use, which may embed any
                // internal address anywhere in the rest.
                Some("local-use NAT64")
            } else if s[0] == 0x2002 {
                // 6to4 (RFC 3056): a relay delivers to the IPv4 address in bits 16 to 48.
                non_public_kind(IpAddr::V4(v4_from(s[1], s[2])))
                    .map(|_| "6to4 of a non-public IPv4")
            } else if s[0] == 0x2001 && s[1] == 0 {
                // Teredo (RFC 4380): the server's IPv4 address, then the client's, inverted.
                let server = v4_from(s[2], s[3]);
                let client = v4_from(!s[6], !s[7]);
                (non_public_kind(IpAddr::V4(server)).is_some()
                    || non_public_kind(IpAddr::V4(client)).is_some())
                .then_some("Teredo of a non-public IPv4")
            } else if s[..4] == [0, 0, 0, 0] && s[4] == 0xFFFF && s[5] == 0 {
                // IPv4-translated (SIIT, RFC 2765 `::ffff:0:a.b.c.d`): the IPv4 address
                // inside decides, as for IPv4-mapped.
                non_public_kind(IpAddr::V4(v4_from(s[6], s[7])))
            } else if s[0] == 0x0100 && s[1..4] == [0, 0, 0] {
                Some("discard-only")
            } else if s[0] == 0x2001 && s[1] < 0x0200 {
                // The rest of 2001::/23, IETF protocol assignments (RFC 2928): benchmarking
                // 2001:2::/48, AMT, AS112, ORCHID and ORCHIDv2 (2001:10::/28, 2001:20::/28).
                Some("IETF protocol assignment")
            } else if s[0] == 0x2620 && s[1] == 0x004F && s[2] == 0x8000 {
                Some("special-use (AS112)")
            } else if s[0] == 0x5F00 {
                Some("special-use (SRv6 SIDs)")
            } else if s[0] == 0x2001 && s[1] == 0x0DB8 || s[0] == 0x3FFF && s[1] < 0x1000 {
                // 2001:db8::/32 and 3fff::/20 (RFC 9637).
                Some("documentation")
            } else if s[0] == 0 && s[1..6] == [0, 0, 0, 0, 0] {
                Some("IPv4-compatible (deprecated)")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address held by two 16-bit groups of an IPv6 address.
fn v4_from(high: u16, low: u16) -> std::net::Ipv4Addr {
    let [a, b] = high.to_be_bytes();
    let [c, d] = low.to_be_bytes();
    std::net::Ipv4Addr::new(a, b, c, d)
}

/// Resolves webhook hosts and keeps only public addresses, so a name that resolves (now, not
/// only at start-up) to an internal address is never connected to.
#[derive(Debug)]
struct PublicOnlyResolver;

impl reqwest::dns::Resolve for PublicOnlyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> =
                found.iter().copied().filter(|a| non_public_kind(a.ip()).is_none()).collect();
            if public.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| non_public_kind(a.ip()).map(|k| format!("{} ({k})", a.ip())))
                    .unwrap_or_else(|| "no address".to_owned());
                let e = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!("refused: {host} resolves to {why}, not a public address"),
                );
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: reqwest::dns::Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client of deliveries: no redirects, no proxy from the environment (the address
/// check must apply to the receiver itself), and the public-only resolver unless allowed.
pub fn delivery_client(allow_private: bool) -> reqwest::Client {
    outbound_client(
        allow_private,
        Duration::from_secs(10),
        concat!("tokenmint-alerts/", env!("CARGO_PKG_VERSION")),
    )
}

/// An HTTP client for URLs the operator configures (alert webhooks, the token hook), with the
/// rules of [`delivery_client`] and this overall `timeout`.
pub fn outbound_client(
    allow_private: bool,
    timeout: Duration,
    user_agent: &'static str,
) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .no_proxy()
        .user_agent(user_agent);
    if !allow_private {
        builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
    }
    builder.build().unwrap_or_default()
}

/// The first non-public address `target` is, or resolves to now, with its kind. A name that
/// does not resolve now is let through with a warning (DNS may come up later); the resolver of
/// [`outbound_client`] checks it again at every connection.
pub async fn non_public_target(target: &WebhookTarget) -> Option<(IpAddr, &'static str)> {
    let port = target.url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match target.literal_ip() {
        Some(ip) => vec![ip],
        None => {
            let host = target.url.host_str().unwrap_or_default().to_owned();
            match tokio::net::lookup_host((host.as_str(), port)).await {
                Ok(found) => found.map(|a| a.ip()).collect(),
                Err(e) => {
                    tracing::warn!(target = target.shown(), error = %e, "outbound host does not resolve now; it is checked again at each connection");
                    return None;
                }
            }
        }
    };
    addrs.iter().find_map(|a| non_public_kind(*a).map(|k| (*a, k)))
}

/// Checks every webhook's destination at start-up: an IP literal or a name that resolves to a
/// non-public address is refused. A name that does not resolve now is let through with a
/// warning (DNS may come up later); the resolver checks it again at every connection.
pub async fn check_targets(config: &AlertConfig) -> Result<(), WebhookError> {
    if config.allow_private_targets {
        return Ok(());
    }
    for target in &config.webhooks {
        if let Some((addr, kind)) = non_public_target(target).await {
            return Err(WebhookError::Private { shown: target.shown.clone(), addr, kind });
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
pub struct AlertConfig {
    pub webhooks: Vec<WebhookTarget>,
    /// Deliver to loopback, private and link-local receivers too (`--alert-webhook-allow-private`).
    pub allow_private_targets: bool,
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
            allow_private_targets: false,
            secret: None,
            rate_limit_hits: 5,
            rate_limit_window: Duration::from_secs(600),
            cooldown: Duration::from_secs(900),
            retry_base: Duration::from_secs(1),
            max_attempts: 5,
        }
    }
}

/// One alert. Its text is typed: whatever went into the summary was escaped on the way in.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: String,
    pub kind: AlertKind,
    pub at: UnixTime,
    pub summary: SafeText,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org: Option<SafeText>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<PresentedClientId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
}

impl Alert {
    pub fn new(kind: AlertKind, at: UnixTime, summary: impl Into<SafeText>) -> Self {
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

    /// What the cooldown is kept for: what the alert is about. A credential's alerts are about
    /// the credential, from whichever source (an attack from 60 addresses is one alert, not
    /// 60); a blocked source is about the source, whichever client ids it tried; a new network
    /// is about the credential and the address seen.
    fn subject(&self) -> String {
        let client = self.client_id.as_ref().map_or("", PresentedClientId::as_str);
        let source = self.source_ip.map(|i| i.to_string()).unwrap_or_default();
        let (client, source) = match self.kind {
            AlertKind::AuthFailures
            | AlertKind::DeactivatedCredentialUsed
            | AlertKind::ExpiredSecretUsed
            | AlertKind::RateLimitedRepeatedly => (client, String::new()),
            AlertKind::SourceBlocked => ("", source),
            AlertKind::NewNetwork => (client, source),
        };
        format!("{}|{client}|{source}", self.kind.as_str())
    }
}

enum Msg {
    Deliver(Alert),
    Network { client_id: PresentedClientId, org: String, network: String, ip: IpAddr, at: UnixTime },
}

/// How long an alert waits for its claim in the database before firing anyway.
const CLAIM_TIMEOUT: Duration = Duration::from_secs(2);

/// The front side: rules are evaluated here, delivery happens in [`run_deliveries`].
pub struct Alerts {
    config: AlertConfig,
    tx: mpsc::Sender<Msg>,
    /// What this instance fired last, per subject: repeats within the cooldown stop here,
    /// without asking Redis or the database.
    last_fired: Cache<String, UnixTime>,
    /// Where the shared counts and claims are kept (Redis, when configured).
    shared: Arc<Limits>,
    /// Where claims go without Redis.
    store: Arc<dyn Store>,
    /// Hashes of (client_id, network) pairs already checked, so the database is asked once,
    /// for credentials used from more than one network: the network a credential was last used
    /// from is in its cache entry ([`CachedCredential::swap_network`]), which is all most
    /// credentials need.
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

/// The alert rules and their queue; counts and claims are shared through `shared` (Redis, when
/// configured) or `store`.
pub fn channel(
    config: AlertConfig,
    shared: Arc<Limits>,
    store: Arc<dyn Store>,
) -> (Alerts, AlertQueue) {
    let (tx, rx) = mpsc::channel(4096);
    (
        Alerts {
            config,
            tx,
            last_fired: Cache::new(10_000),
            shared,
            store,
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

/// [`network_of`] as a number, never 0: the /24 of an IPv4 address or the /48 of an IPv6
/// one, tagged with the family.
pub fn network_key(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            (1 << 62) | u64::from(o[0]) << 16 | u64::from(o[1]) << 8 | u64::from(o[2])
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            (2 << 62) | u64::from(s[0]) << 32 | u64::from(s[1]) << 16 | u64::from(s[2])
        }
    }
}

impl Alerts {
    /// Fires an alert unless the same rule fired for the same subject within the cooldown, on
    /// this instance or any other.
    pub async fn fire(&self, alert: Alert, audit: &AuditLog) {
        let subject = alert.subject();
        let cooldown = i64::try_from(self.config.cooldown.as_secs()).unwrap_or(900);
        if self.last_fired.get(&subject).is_some_and(|t| alert.at - t < cooldown) {
            return;
        }
        self.last_fired.insert(subject.clone(), alert.at);
        if !self.claim(&subject, alert.at, cooldown).await {
            tracing::debug!(alert = alert.kind.as_str(), "alert already fired by another instance");
            return;
        }
        tracing::warn!(
            alert = alert.kind.as_str(),
            client_id = alert.client_id.as_ref().map_or("", PresentedClientId::as_str),
            source_ip = alert.source_ip.map(|i| i.to_string()).unwrap_or_default(),
            summary = alert.summary.as_str(),
            "security alert"
        );
        let mut event = AuditEvent::new(AuditKind::AlertFired)
            .actor("system")
            .reason(alert.kind.as_str())
            .details(serde_json::json!({"alert_id": alert.id, "summary": alert.summary}));
        event.org = alert.org.clone();
        event.client_id = alert.client_id.clone();
        event.source_ip = alert.source_ip;
        audit.record(event, alert.at);
        if !self.config.webhooks.is_empty() && self.tx.try_send(Msg::Deliver(alert)).is_err() {
            tracing::error!("alert queue full: an alert was logged but not delivered");
        }
    }

    /// Whether this instance is the one to fire the alert `subject` at `at` (see the module
    /// documentation).
    async fn claim(&self, subject: &str, at: UnixTime, cooldown: i64) -> bool {
        // The subject holds a client_id as presented: hashed, it makes a key of fixed length.
        let hash: String = tokenmint_core::crypto::sha256(subject.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(won) =
            self.shared.claim_once(&format!("alert:{hash}"), self.config.cooldown).await
        {
            return won;
        }
        match tokio::time::timeout(CLAIM_TIMEOUT, self.store.claim_alert(&hash, at, cooldown)).await
        {
            Ok(Ok(won)) => won,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot claim an alert in the database; it fires here, perhaps on another instance too");
                true
            }
            Err(_) => {
                tracing::warn!(
                    "claiming an alert in the database timed out; it fires here, perhaps on another instance too"
                );
                true
            }
        }
    }

    /// Called when a credential's request is refused by its rate limit.
    pub async fn on_rate_limited(
        &self,
        client_id: &str,
        org: &str,
        now: UnixTime,
        audit: &AuditLog,
    ) {
        let hits = self
            .shared
            .count_failure(FailureCount {
                counter: &format!("al:rl:{client_id}"),
                limit: self.config.rate_limit_hits,
                window: self.config.rate_limit_window,
                block: None,
                block_for: Duration::ZERO,
                reset: false,
            })
            .await;
        if hits.over_limit {
            let mut a = Alert::new(
                AlertKind::RateLimitedRepeatedly,
                now,
                SafeText::composed(&format!(
                    "credential {client_id} keeps hitting its token-request limit; it may not be caching tokens, or its secret may be in the wrong hands"
                )),
            );
            a.client_id = Some(PresentedClientId::parse(client_id));
            a.org = Some(org.into());
            self.fire(a, audit).await;
        }
    }

    /// Called after a successful authentication: checks the source network, at most once per
    /// (credential, network) pair per process (and once more after the credential changed).
    pub fn on_use(&self, credential: &CachedCredential, ip: Option<IpAddr>, now: UnixTime) {
        let Some(ip) = ip else { return };
        let network = network_key(ip);
        let before = credential.swap_network(network);
        if before == network {
            return;
        }
        let client_id = credential.client_id();
        let client_id = client_id.as_str();
        let seen = |network: u64| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            client_id.hash(&mut h);
            network.hash(&mut h);
            h.finish()
        };
        if before != 0 {
            // A second network: from now on the pairs are remembered here.
            self.networks_seen.insert(seen(before), ());
            let key = seen(network);
            if self.networks_seen.get(&key).is_some() {
                return;
            }
            self.networks_seen.insert(key, ());
        }
        let _ = self.tx.try_send(Msg::Network {
            client_id: PresentedClientId::parse(client_id),
            org: credential.org().to_owned(),
            network: network_of(ip),
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
    let http = delivery_client(alerts.config.allow_private_targets);
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
                match store.remember_network(client_id.as_str(), &network, at).await {
                    Ok((true, before)) if before > 0 => {
                        let mut a = Alert::new(
                            AlertKind::NewNetwork,
                            at,
                            SafeText::composed(&format!(
                                "credential {client_id} was used from {network}, a network it had not been used from"
                            )),
                        );
                        a.client_id = Some(client_id);
                        a.org = Some(org.into());
                        a.source_ip = Some(ip);
                        alerts.fire(a, &audit).await;
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

/// One POST of an alert: `Ok` on a 2xx answer, else why not (never the URL itself, and a
/// redirect is an answer like any other: it is not followed).
pub async fn send_once(
    http: &reqwest::Client,
    target: &WebhookTarget,
    allow_private: bool,
    secret: Option<&WebhookSecret>,
    body: &str,
) -> Result<(), String> {
    if !allow_private && let Some(kind) = target.literal_ip().and_then(non_public_kind) {
        return Err(format!("refused: a {kind} address"));
    }
    let t = now_unix();
    let mut req = http
        .post(target.url.clone())
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(secret) = secret {
        req = req.header("tokenmint-signature", signature(secret, t, body));
    }
    match req.send().await {
        Ok(res) if res.status().is_success() => Ok(()),
        Ok(res) => Err(format!("HTTP {}", res.status().as_u16())),
        Err(e) if e.is_timeout() => Err("timeout".to_owned()),
        Err(e) => {
            // The resolver's refusal is the one error worth its words; the rest would only
            // repeat the URL.
            let mut source: Option<&dyn std::error::Error> = Some(&e);
            while let Some(err) = source {
                let text = err.to_string();
                if text.starts_with("refused: ") {
                    return Err(text);
                }
                source = err.source();
            }
            Err("connection failed".to_owned())
        }
    }
}

async fn deliver(
    http: reqwest::Client,
    config: AlertConfig,
    store: Arc<dyn Store>,
    target: WebhookTarget,
    alert: Alert,
) {
    let body = serde_json::to_string(&alert).unwrap_or_default();
    let mut last_error = None;
    let mut attempts = 0;
    let mut delay = config.retry_base;
    while attempts < config.max_attempts.max(1) {
        attempts += 1;
        match send_once(&http, &target, config.allow_private_targets, config.secret.as_ref(), &body)
            .await
        {
            Ok(()) => {
                last_error = None;
                break;
            }
            // A refused destination stays refused: no retry.
            Err(e) if e.starts_with("refused: ") => {
                last_error = Some(e);
                break;
            }
            Err(e) => last_error = Some(e),
        }
        if attempts < config.max_attempts {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    let delivered = last_error.is_none();
    if !delivered {
        tracing::error!(
            webhook = target.shown(),
            alert = alert.kind.as_str(),
            attempts,
            error = last_error.as_deref().unwrap_or(""),
            "alert delivery failed; kept as a dead letter"
        );
    }
    let record = AlertDelivery {
        id: alert.id.clone() + "-" + &random_id("", 6),
        at: alert.at,
        kind: alert.kind.as_str().to_owned(),
        target: target.shown().to_owned(),
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
    fn tunnel_and_translation_addresses_are_judged_by_the_ipv4_address_they_carry() {
        let kind = |ip: &str| non_public_kind(ip.parse().unwrap());
        // Each wraps a public IPv4 address (8.8.8.8, or Teredo's public server and client).
        for public in [
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:0:4136:e378:8000:63bf:f7f7:f7f7",
            "::ffff:0:808:808",
        ] {
            assert_eq!(kind(public), None, "{public}");
        }
        for internal in [
            "64:ff9b::a00:1",
            "64:ff9b:1::808:808",
            "2002:a00:1::1",
            "2002:6440:1::1",
            "2001:0:a00:1::1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:db8::1",
            "::ffff:0:7f00:1",
            "::ffff:0:a9fe:a9fe",
            "::ffff:0:a00:1",
            "100::1",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "2001:3::1",
            "3fff::1",
            "3fff:fff::1",
            "2620:4f:8000::1",
            "5f00::1",
            "192.0.2.45",
            "198.51.100.1",
            "203.0.113.1",
            "192.88.99.1",
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
        ] {
            assert!(kind(internal).is_some(), "{internal}");
        }
    }

    /// A credential as the cache holds it.
    fn entry(cache: &crate::cache::CredentialCache, id: &str) -> Arc<CachedCredential> {
        use tokenmint_core::credential::{Credential, CredentialStatus};
        cache.entry(Credential {
            client_id: tokenmint_core::ClientId::parse(id).unwrap(),
            name: "HR sync".into(),
            org: "acme".into(),
            environment: tokenmint_core::Environment::Sandbox,
            permissions: tokenmint_core::Permissions::from_stored(&["billing:read"]),
            audiences: Vec::new(),
            token_lifetime_secs: 600,
            rate_limit_per_minute: None,
            status: CredentialStatus::Active,
            expires_at: None,
            created_at: 1,
            updated_at: 1,
            last_used_at: None,
            tokens_revoked_before: None,
            secrets: Vec::new(),
            claims: tokenmint_core::CustomClaims::default(),
            org_claims: tokenmint_core::CustomClaims::default(),
            public_keys: Vec::new(),
            revision: 1,
        })
    }

    #[tokio::test]
    async fn each_network_of_a_credential_is_checked_once() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> =
            Arc::new(tokenmint_store::SqlStore::connect(&url, true).await.unwrap());
        let clock = Arc::new(tokenmint_http::ManualClock::new(Duration::from_secs(1_765_000_000)));
        let (alerts, mut queue) =
            channel(AlertConfig::default(), Arc::new(Limits::local(clock)), store);
        let mut checked = || {
            let mut networks = Vec::new();
            while let Ok(Msg::Network { client_id, network, .. }) = queue.rx.try_recv() {
                networks.push(format!("{} {network}", client_id.as_str()));
            }
            networks
        };
        let cache = crate::cache::CredentialCache::new(16);
        let a = entry(&cache, "tmc_a");
        cache.refresh("tmc_a", Some(a.clone()), cache.epoch());
        let home: IpAddr = "192.0.2.7".parse().unwrap();
        let away: IpAddr = "2001:db8:1:2::9".parse().unwrap();
        alerts.on_use(&a, Some("192.0.2.200".parse().unwrap()), 1);
        alerts.on_use(&a, Some(home), 2);
        assert_eq!(checked(), ["tmc_a 192.0.2.0/24"]);
        alerts.on_use(&a, Some(away), 3);
        alerts.on_use(&a, Some(home), 4);
        alerts.on_use(&a, Some(away), 5);
        assert_eq!(checked(), ["tmc_a 2001:db8:1::/48"], "each pair once");
        // A change of the credential keeps what was seen.
        cache.invalidate("tmc_a");
        let changed = entry(&cache, "tmc_a");
        alerts.on_use(&changed, Some(away), 6);
        alerts.on_use(&changed, Some(home), 7);
        alerts.on_use(&a, None, 8);
        assert_eq!(checked(), Vec::<String>::new());
        let b = entry(&cache, "tmc_b");
        alerts.on_use(&b, Some(home), 9);
        assert_eq!(checked(), ["tmc_b 192.0.2.0/24"], "another credential is checked on its own");
        assert_ne!(network_key(home), network_key("192.0.3.7".parse().unwrap()));
        assert_ne!(network_key("0.0.0.1".parse().unwrap()), network_key("::1".parse().unwrap()));
    }

    #[test]
    fn a_credentials_alert_is_one_whatever_the_source_and_a_sources_one_whatever_the_client() {
        let alert = |kind, client: &str, ip: &str| {
            let mut a = Alert::new(kind, 0, SafeText::new("s"));
            a.client_id = Some(PresentedClientId::parse(client));
            a.source_ip = Some(ip.parse().unwrap());
            a.subject()
        };
        for kind in [
            AlertKind::AuthFailures,
            AlertKind::DeactivatedCredentialUsed,
            AlertKind::ExpiredSecretUsed,
            AlertKind::RateLimitedRepeatedly,
        ] {
            assert_eq!(alert(kind, "tmc_a", "198.51.100.1"), alert(kind, "tmc_a", "203.0.113.9"));
            assert_ne!(alert(kind, "tmc_a", "198.51.100.1"), alert(kind, "tmc_b", "198.51.100.1"));
        }
        let blocked = AlertKind::SourceBlocked;
        assert_eq!(
            alert(blocked, "tmc_a", "198.51.100.1"),
            alert(blocked, "tmc_b", "198.51.100.1")
        );
        assert_ne!(alert(blocked, "tmc_a", "198.51.100.1"), alert(blocked, "tmc_a", "203.0.113.9"));
        let new = AlertKind::NewNetwork;
        assert_ne!(alert(new, "tmc_a", "198.51.100.1"), alert(new, "tmc_a", "203.0.113.9"));
        assert_ne!(alert(blocked, "tmc_a", "198.51.100.1"), alert(new, "tmc_a", "198.51.100.1"));
    }

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
