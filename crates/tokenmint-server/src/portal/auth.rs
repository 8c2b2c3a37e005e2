//! Signing in and out.
//!
//! Nothing a visitor sees tells whether an email has an account: an unknown email, a wrong
//! password and a deactivated user get the same message, the same status, and cost the same
//! Argon2id verification (an unknown email is checked against a dummy hash).
//!
//! Failed attempts are counted per account (the email as typed, lower-cased, whether or not it
//! exists, so the block itself reveals nothing) and per source IP. Past the threshold the
//! account or source is refused for a while with a message that says so and for how long;
//! the block holds even for the right password, which is what stops guessing. Every attempt
//! is in the audit trail. With `--redis` the counts and blocks are shared by every instance,
//! so a round-robin balancer does not multiply the attempts an attacker gets.

use super::html::{self, Esc, Nav, esc};
use super::session::PageQuery;
use super::session::{
    self, SESSION_COOKIE, SESSION_LIFETIME_SECS, SIGN_IN_COOKIE, hash_session_id, random_token,
};
use super::{PortalError, html_response};
use crate::audit::{AuditEvent, AuditKind};
use crate::extract::client_auth::peer_ip;
use crate::state::AppState;
use crate::users::{Password, verify_password};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::net::IpAddr;
use std::time::Duration;
use tokenmint_core::UnixTime;
use tokenmint_http::Limits;
use tokenmint_http::limits::{Counted, FailureCount};
use tokenmint_store::{PortalSession, UserStatus};

/// Failed sign-ins one account may have within [`WINDOW`] before it is blocked.
pub const FAILURES_PER_ACCOUNT: u32 = 5;
/// Failed sign-ins one source IP may have within [`WINDOW`] before it is blocked.
pub const FAILURES_PER_IP: u32 = 20;
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
pub const BLOCK_SECS: i64 = 15 * 60;

/// Counts failed sign-ins and sets blocks, in [`Limits`]: in this process, or shared by every
/// instance through Redis (with the same fallback to local counting as the token limits).
#[derive(Debug, Default)]
pub struct SignInThrottle;

/// What counting a failed sign-in did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Blocked {
    /// It blocked the account (the email tried) just now.
    pub account: bool,
    /// It blocked the source address just now.
    pub source: bool,
    /// It went over a limit, whichever instance set the block.
    pub over_limit: bool,
}

impl Blocked {
    /// Whether this failure set a block (on exactly one instance).
    pub fn newly(self) -> bool {
        self.account || self.source
    }
}

/// The longest email counted as typed; longer input is counted by its first 254 characters
/// (no address is longer), so an email cannot build an unbounded key.
const MAX_EMAIL_CHARS: usize = 254;

fn account_key(email: &str) -> String {
    let email: String = email.trim().chars().take(MAX_EMAIL_CHARS).collect();
    format!("si:acct:{}", email.to_lowercase())
}

fn ip_key(ip: IpAddr) -> String {
    format!("si:ip:{ip}")
}

/// Wrong current passwords given to the password-change form, counted apart as well: a sign-in
/// clears the account's count, and a session held by someone else must not get fresh guesses
/// each time its owner signs in. Only the current password proven right clears this one.
/// Seconds until the account, the source or `also` may try again, if any is blocked: one look
/// at the blocks (one Redis round trip) for them all.
async fn blocked_by(
    limits: &Limits,
    email: &str,
    ip: Option<IpAddr>,
    also: Option<&str>,
) -> Option<i64> {
    let account = account_key(email);
    let source = ip.map(ip_key);
    let mut keys = vec![account.as_str()];
    keys.extend(source.as_deref());
    keys.extend(also);
    let wait = limits.blocked_for(&keys).await?;
    Some(i64::try_from(wait.as_millis().div_ceil(1000)).unwrap_or(BLOCK_SECS).max(1))
}

/// Counts one failure against `key`, blocking it for [`BLOCK_SECS`] past `limit` in [`WINDOW`].
async fn count(limits: &Limits, key: &str, limit: u32) -> Counted {
    limits
        .count_failure(FailureCount {
            counter: key,
            limit,
            window: WINDOW,
            block: Some(key),
            block_for: Duration::from_secs(BLOCK_SECS.unsigned_abs()),
            reset: true,
        })
        .await
}

fn password_change_key(email: &str) -> String {
    format!("si:pwchange:{}", &account_key(email)["si:acct:".len()..])
}

impl SignInThrottle {
    pub fn new() -> Self {
        Self
    }

    /// Seconds until this account or source may try again, if either is blocked.
    pub async fn blocked_for(
        &self,
        limits: &Limits,
        email: &str,
        ip: Option<IpAddr>,
    ) -> Option<i64> {
        blocked_by(limits, email, ip, None).await
    }

    /// Counts an attempt as a failure before its password is checked, so that attempts sent
    /// at once cannot all pass a check made before any of them was counted; says whether it
    /// went over a limit and blocked the account or the source just now. A success gives the
    /// count back ([`SignInThrottle::record_success`]).
    pub async fn record_attempt(
        &self,
        limits: &Limits,
        email: &str,
        ip: Option<IpAddr>,
    ) -> Blocked {
        let account = count(limits, &account_key(email), FAILURES_PER_ACCOUNT).await;
        let source = match ip {
            Some(ip) => count(limits, &ip_key(ip), FAILURES_PER_IP).await,
            None => Counted::default(),
        };
        Blocked {
            account: account.newly_blocked,
            source: source.newly_blocked,
            over_limit: account.over_limit || source.over_limit,
        }
    }

    /// [`SignInThrottle::blocked_for`] for the password-change form, whose own count of wrong
    /// current passwords a sign-in does not clear.
    pub async fn password_change_blocked_for(
        &self,
        limits: &Limits,
        email: &str,
        ip: Option<IpAddr>,
    ) -> Option<i64> {
        blocked_by(limits, email, ip, Some(&password_change_key(email))).await
    }

    /// [`SignInThrottle::record_attempt`] for the password-change form: counted with the
    /// account's sign-ins and in the form's own count.
    pub async fn record_password_change_attempt(
        &self,
        limits: &Limits,
        email: &str,
        ip: Option<IpAddr>,
    ) -> Blocked {
        let own = count(limits, &password_change_key(email), FAILURES_PER_ACCOUNT).await;
        let shared = self.record_attempt(limits, email, ip).await;
        Blocked {
            account: shared.account || own.newly_blocked,
            source: shared.source,
            over_limit: shared.over_limit || own.over_limit,
        }
    }

    /// The current password was proven right in the password-change form: both counts cleared.
    pub async fn record_password_change_success(
        &self,
        limits: &Limits,
        email: &str,
        ip: Option<IpAddr>,
    ) {
        limits.forget(&password_change_key(email)).await;
        self.record_success(limits, email, ip).await;
    }

    /// A successful sign-in clears the account's failures and gives back the source's count of
    /// this attempt (the source's earlier failures stay counted).
    pub async fn record_success(&self, limits: &Limits, email: &str, ip: Option<IpAddr>) {
        limits.forget(&account_key(email)).await;
        if let Some(ip) = ip {
            limits.refund_failure(&ip_key(ip), FAILURES_PER_IP, WINDOW).await;
        }
    }
}

const BAD_CREDENTIALS: &str = "The email or password is incorrect.";

/// The page of the portal a sign-in goes on to: `next` when it is a page of the portal's own
/// (a path under `/portal/` of printable ASCII, with no `//` or `\\` that a browser could read
/// as another site, no `.` or `..` segment, and not the sign-in or sign-out itself), else none
/// and the credentials list.
pub(super) fn return_path(next: Option<&str>) -> Option<&str> {
    let next = next?;
    let own = next.starts_with("/portal/")
        && next.len() <= 1024
        && next.bytes().all(|b| b.is_ascii_graphic())
        && !next.contains("//")
        // No `.` or `..` segment: a browser resolves them, and `/portal/../x` leaves the portal.
        && !next.split(['?', '#']).next().unwrap_or("").split('/').any(|seg| seg == "." || seg == "..")
        && !next.contains('\\')
        && !next.starts_with("/portal/sign-in")
        && !next.starts_with("/portal/sign-out");
    own.then_some(next)
}

/// The sign-in page's query: a notice to show, and the page to go on to.
#[derive(Debug, Default, serde::Deserialize)]
pub struct SignInQuery {
    pub done: Option<String>,
    pub next: Option<String>,
}

fn sign_in_form(
    token: &str,
    email: &str,
    error: Option<&str>,
    done: Option<&str>,
    next: Option<&str>,
) -> String {
    let alert = match error {
        Some(e) => format!(r#"<div class="alert alert-error" role="alert">{}</div>"#, esc(e)),
        None => html::notice(done),
    };
    let body = format!(
        r#"<section class="card narrow signin">
  <p class="brand big"><span class="logo" aria-hidden="true">◆</span> tokenmint</p>
  <h1>Sign in</h1>
  <p class="muted">Manage your organization's API OAuth credentials.</p>
  {alert}
  <form method="post" action="/portal/sign-in" class="stack">
    <input type="hidden" name="csrf" value="{token}">{next}
    <div class="field">
      <label for="email">Email</label>
      <input id="email" name="email" type="email" autocomplete="username" required value="{email}" autofocus>
    </div>
    <div class="field">
      <label for="password">Password</label>
      <input id="password" name="password" type="password" autocomplete="current-password" required>
    </div>
    <button type="submit" class="btn btn-primary btn-block">Sign in</button>
  </form>
  <p class="hint">Forgot your password? Ask an administrator of your organization for a reset code, then <a href="/portal/reset-password">set a new password</a>.</p>
</section>"#,
        token = Esc(token),
        email = Esc(email),
        next = return_path(next)
            .map(|n| format!(r#"<input type="hidden" name="next" value="{}">"#, Esc(n)))
            .unwrap_or_default(),
    );
    html::layout("Sign in", None, Nav::None, &body)
}

/// Renders the sign-in form with a fresh double-submit token, keeping the page to go on to.
fn render_sign_in(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    next: Option<&str>,
) -> Response {
    render_sign_in_with(state, status, email, error, None, next)
}

fn render_sign_in_with(
    state: &AppState,
    status: StatusCode,
    email: &str,
    error: Option<&str>,
    done: Option<&str>,
    next: Option<&str>,
) -> Response {
    let token = random_token();
    let mut res = html_response(status, sign_in_form(&token, email, error, done, next));
    if let Ok(v) = HeaderValue::from_str(&session::cookie(state, SIGN_IN_COOKIE, &token, 3600)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    PageQuery(q): PageQuery<SignInQuery>,
) -> Result<Response, PortalError> {
    let next = return_path(q.next.as_deref());
    if session::current(&state, &headers).await?.is_some() {
        return Ok(Redirect::to(next.unwrap_or("/portal/credentials")).into_response());
    }
    Ok(render_sign_in_with(&state, StatusCode::OK, "", None, q.done.as_deref(), next))
}

pub async fn sign_in(State(state): State<AppState>, req: Request) -> Result<Response, PortalError> {
    let ip = peer_ip(req.extensions());
    let fields = session::read_signed_out_form(req, &state).await?;
    let email: String = fields.text("email").trim().chars().take(254).collect();
    let password = Password::new(fields.text("password"));
    let next = fields.get("next").map(str::to_owned);
    let next = return_path(next.as_deref());
    let now = state.now();

    if let Some(wait) = state.portal.throttle.blocked_for(&state.limits, &email, ip).await {
        // Answered without touching the database: a blocked attacker's flood must stay cheap.
        // (The failures that led here, and the block, are in the organization's trail.)
        state.audit.record(
            AuditEvent::new(AuditKind::PortalSignInFailed)
                .ip(ip)
                .reason("throttled")
                .details(serde_json::json!({"email": crate::users::recorded_email(&email)})),
            now,
        );
        return Ok(paused(&state, &email, wait, next));
    }

    // Counted before the password is checked (a success gives it back): attempts sent at once
    // each take their place in the count, so no more than the limit are ever checked.
    let counted = state.portal.throttle.record_attempt(&state.limits, &email, ip).await;
    let user = if email.is_empty() { None } else { state.store.find_user_by_email(&email).await? };
    // The organization of the account tried, when there is one: its admins see the failures.
    let org = user.as_ref().map(|u| u.org.clone());
    if counted.over_limit {
        state.audit.record(
            with_org(AuditEvent::new(AuditKind::PortalSignInFailed), org.clone())
                .ip(ip)
                .reason("throttled")
                .details(serde_json::json!({"email": crate::users::recorded_email(&email)})),
            now,
        );
        if counted.newly() {
            on_blocked(&state, ip, &email, org, counted, now).await;
        }
        return Ok(paused(&state, &email, BLOCK_SECS, next));
    }
    // The same verification whether or not the user exists.
    let hash = match &user {
        Some(u) => u.password_hash.clone(),
        None => state.portal.dummy_hash().await,
    };
    state.metrics.portal_password_checks.inc();
    let password_ok = verify_password(hash, password).await;
    let user = user.filter(|u| password_ok && u.status == UserStatus::Active);

    let Some(user) = user else {
        state.audit.record(
            with_org(AuditEvent::new(AuditKind::PortalSignInFailed), org.clone())
                .ip(ip)
                .reason("bad_credentials")
                .details(serde_json::json!({"email": crate::users::recorded_email(&email)})),
            now,
        );
        let shown = ip.map_or_else(|| "-".to_owned(), |ip| ip.to_string());
        tracing::info!(ip = %shown, "portal sign-in refused");
        let refused = Some(BAD_CREDENTIALS);
        return Ok(render_sign_in(&state, StatusCode::UNAUTHORIZED, &email, refused, next));
    };

    state.portal.throttle.record_success(&state.limits, &email, ip).await;
    let id = random_token();
    let session = PortalSession {
        id_hash: hash_session_id(&id),
        user_id: user.id.clone(),
        csrf_secret: random_token(),
        created_at: now,
        expires_at: now + SESSION_LIFETIME_SECS,
    };
    state.store.create_session(&session).await?;
    if let Err(e) = state.store.record_sign_in(&user.id, now).await {
        tracing::warn!(error = %e, "could not record the sign-in time");
    }
    let mut event = AuditEvent::new(AuditKind::PortalSignIn)
        .actor(format!("user:{}", user.email))
        .org(user.org.clone())
        .ip(ip);
    event = event.details(serde_json::json!({"user_id": user.id}));
    state.audit.record(event, now);
    tracing::info!(user_id = %user.id, "portal sign-in");

    let mut res = Redirect::to(next.unwrap_or("/portal/credentials")).into_response();
    let h = res.headers_mut();
    if let Ok(v) =
        HeaderValue::from_str(&session::cookie(&state, SESSION_COOKIE, &id, SESSION_LIFETIME_SECS))
    {
        h.append(header::SET_COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&session::cookie(&state, SIGN_IN_COOKIE, "", 0)) {
        h.append(header::SET_COOKIE, v);
    }
    Ok(res)
}

/// A wrong current password given to change one's own password (or one refused unchecked,
/// `throttled`): audited as a failed sign-in of that account, which is what it guesses.
pub(super) fn audit_wrong_password(
    state: &AppState,
    who: &super::session::SignedIn,
    ip: Option<IpAddr>,
    reason: &'static str,
) {
    let email = tokenmint_core::SafeText::bounded(&who.user.email, 254);
    state.audit.record(
        AuditEvent::new(AuditKind::PortalSignInFailed)
            .actor(who.actor.principal())
            .org(who.user.org.clone())
            .ip(ip)
            .reason(reason)
            .details(serde_json::json!({"email": email, "during": "password_change"})),
        state.now(),
    );
    tracing::info!(user_id = %who.user.id, reason, "portal password change refused");
}

/// An account or source just crossed its threshold: audit it and raise an alert, as for
/// client authentication.
/// The sign-in page saying that signing in is paused, for `wait` seconds.
fn paused(state: &AppState, email: &str, wait: i64, next: Option<&str>) -> Response {
    let minutes = (wait + 59) / 60;
    let message = format!(
        "Too many sign-in attempts. For your security, signing in is paused: try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    );
    let mut res = render_sign_in(state, StatusCode::TOO_MANY_REQUESTS, email, Some(&message), next);
    res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
    res
}

fn with_org(event: AuditEvent, org: Option<String>) -> AuditEvent {
    match org {
        Some(org) => event.org(org),
        None => event,
    }
}

/// Audits and alerts a block, naming what is paused: the account tried (with its
/// organization, whose admins then see it), the source address, or both.
pub(super) async fn on_blocked(
    state: &AppState,
    ip: Option<IpAddr>,
    email: &str,
    org: Option<String>,
    blocked: Blocked,
    now: UnixTime,
) {
    use crate::alerts::{Alert, AlertKind};
    state.metrics.sources_blocked.inc();
    let email = crate::users::recorded_email(email);
    let source = ip.map_or_else(|| "an unknown source".to_owned(), |i| i.to_string());
    let what = match (blocked.account, blocked.source) {
        (true, true) => format!("for {email} and for every account from {source}"),
        (true, false) => format!("for {email} (the failures came from {source})"),
        _ => format!("for every account from {source}"),
    };
    let mut event = with_org(AuditEvent::new(AuditKind::SourceBlocked), org.clone())
        .actor("system")
        .ip(ip)
        .reason("too_many_portal_sign_in_failures");
    if blocked.account {
        event = event.details(serde_json::json!({"email": email.clone()}));
    }
    state.audit.record(event, now);
    let mut alert = Alert::new(
        AlertKind::SourceBlocked,
        now,
        tokenmint_core::SafeText::composed(&format!(
            "portal sign-in paused {what} after repeated failures"
        )),
    );
    alert.source_ip = ip;
    alert.org = org.map(Into::into);
    state.alerts.fire(alert, &state.audit).await;
}

pub async fn sign_out(
    State(state): State<AppState>,
    posted: session::Posted,
) -> Result<Response, PortalError> {
    let who = posted.who;
    // The session's one-time flash, if any, goes with it (its row references the session's).
    state.store.delete_session(&who.session.id_hash).await?;
    state.audit.record(
        AuditEvent::new(AuditKind::PortalSignOut)
            .actor(who.actor.principal())
            .org(who.user.org.clone()),
        state.now(),
    );
    let mut res = Redirect::to("/portal/sign-in?done=signed-out").into_response();
    if let Ok(v) = HeaderValue::from_str(&session::cookie(&state, SESSION_COOKIE, "", 0)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_goes_on_only_to_a_page_of_the_portals_own() {
        for own in [
            "/portal/users",
            "/portal/audit?org=acme&kind=token.refused",
            "/portal/credentials/tmc_1?org=a%20b",
        ] {
            assert_eq!(return_path(Some(own)), Some(own));
        }
        for elsewhere in [
            "https://evil.example/portal/",
            "//evil.example/portal/",
            "/portal//evil.example",
            "/portal/\\evil.example",
            "/\\evil.example/portal/",
            "/portal/sign-in",
            "/portal/sign-in?next=/portal/users",
            "/portal/sign-out",
            "/admin/v1/credentials",
            "/portal",
            "/portal/a b",
            "/portal/x\r\nSet-Cookie: a=b",
            "/portal/é",
            "javascript:alert(1)",
            "/portal/../../healthz",
            "/portal/./users/../..",
            "/portal/..",
            "",
        ] {
            assert_eq!(return_path(Some(elsewhere)), None, "{elsewhere:?}");
        }
        assert_eq!(return_path(Some(&format!("/portal/{}", "a".repeat(1100)))), None);
        assert_eq!(return_path(None), None);
    }
    use std::sync::Arc;
    use tokenmint_http::ManualClock;

    fn limits() -> (Limits, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(Duration::from_secs(1_765_000_000)));
        (Limits::local(clock.clone()), clock)
    }

    #[tokio::test]
    async fn an_account_is_blocked_after_its_failures_whatever_the_case_of_the_email() {
        let t = SignInThrottle::new();
        let (l, clock) = limits();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for i in 0..FAILURES_PER_ACCOUNT {
            let email = if i % 2 == 0 { "a@x.test" } else { "A@X.test" };
            assert!(!t.record_attempt(&l, email, Some(ip)).await.newly());
        }
        let blocked = t.record_attempt(&l, "a@x.test", Some(ip)).await;
        assert_eq!(blocked, Blocked { account: true, source: false, over_limit: true });
        assert_eq!(t.blocked_for(&l, "A@x.test", None).await, Some(BLOCK_SECS));
        assert_eq!(t.blocked_for(&l, "b@x.test", None).await, None);
        clock.advance(Duration::from_secs(BLOCK_SECS.unsigned_abs()));
        assert_eq!(t.blocked_for(&l, "a@x.test", None).await, None);
    }

    #[tokio::test]
    async fn a_source_is_blocked_after_failures_on_many_accounts() {
        let t = SignInThrottle::new();
        let (l, _) = limits();
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        for i in 0..FAILURES_PER_IP {
            t.record_attempt(&l, &format!("u{i}@x.test"), Some(ip)).await;
        }
        let blocked = t.record_attempt(&l, "new@x.test", Some(ip)).await;
        assert_eq!(blocked, Blocked { account: false, source: true, over_limit: true });
        assert!(t.blocked_for(&l, "other@x.test", Some(ip)).await.is_some());
        let elsewhere: IpAddr = "192.0.2.10".parse().unwrap();
        assert!(t.blocked_for(&l, "other@x.test", Some(elsewhere)).await.is_none());
    }

    #[tokio::test]
    async fn a_success_clears_the_account_failures() {
        let t = SignInThrottle::new();
        let (l, _) = limits();
        for _ in 0..FAILURES_PER_ACCOUNT {
            t.record_attempt(&l, "c@x.test", None).await;
        }
        t.record_success(&l, "C@x.test", None).await;
        for _ in 0..FAILURES_PER_ACCOUNT {
            assert!(!t.record_attempt(&l, "c@x.test", None).await.newly());
        }
        assert!(t.record_attempt(&l, "c@x.test", None).await.account);
    }
}
