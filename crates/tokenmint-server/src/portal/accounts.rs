//! The portal's people pages: the organization's users (add, change the role, reset the
//! password, deactivate after a confirmation, reactivate), the signed-in user's own account
//! (change the password with the current one), and the public page where a user sets a new
//! password with a one-time reset code.
//!
//! As on every page, the handlers call the same operations as the admin API
//! ([`crate::users`]), which ask the one policy; a page asks it too, only to decide which
//! forms to show. Every form ends on a page that says what happened: a redirect with a
//! success-message id. A secret made by a form (a new user's password, a reset code) goes to the
//! page that shows it in a sealed one-time flash ([`super::put_flash`]), as a credential's new
//! secret does: a reload of that page neither shows it again nor makes another.

use super::html::{self, Esc, Nav, copyable, esc, field_error, invalid_attrs, notice, when_or};
use super::pages::{authorize, csrf_field, page, page_with, see_other};
use super::session::PageQuery;
use super::session::{self, Posted, SIGN_IN_COOKIE, SignedIn, random_token};
use super::{Done, Flash, PortalError, html_response};
use crate::service::{Action, ServiceError, Target};
use crate::state::AppState;
use crate::users::{self, Password};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::fmt::Write;
use tokenmint_proto::admin as dto;
use tokenmint_store::{UserRole, UserStatus};

type PageResult = Result<Response, PortalError>;

fn role_from_dto(r: dto::UserRole) -> UserRole {
    match r {
        dto::UserRole::Admin => UserRole::Admin,
        dto::UserRole::Viewer => UserRole::Viewer,
        dto::UserRole::Platform => UserRole::Platform,
    }
}

fn role_label(r: UserRole) -> &'static str {
    match r {
        UserRole::Admin => "Admin",
        UserRole::Viewer => "Viewer",
        UserRole::Platform => "Platform",
    }
}

fn status_badge(active: bool) -> &'static str {
    if active {
        r#"<span class="badge badge-ok">Active</span>"#
    } else {
        r#"<span class="badge badge-off">Deactivated</span>"#
    }
}

/// The roles a user may be given from the portal: a platform user is made by the platform
/// through the admin API or the CLI.
/// Short labels, so that a phone's select shows its whole choice; [`ROLES_HINT`] says what each
/// may do.
const ROLE_CHOICES: &[(&str, &str, UserRole)] =
    &[("viewer", "Viewer", UserRole::Viewer), ("admin", "Admin", UserRole::Admin)];

/// What the roles offered may do, under the role select.
const ROLES_HINT: &str = r#"<p class="hint" id="role-hint">Viewers see credentials, users and the audit log; admins also generate and change credentials and manage users.</p>"#;

fn role_options(current: UserRole) -> String {
    ROLE_CHOICES
        .iter()
        .map(|(value, label, role)| {
            let sel = if *role == current { " selected" } else { "" };
            format!(r#"<option value="{value}"{sel}>{label}</option>"#)
        })
        .collect()
}

fn user_path(id: &str) -> String {
    format!("/portal/users/{}", urlencoding(id))
}

/// Percent-encodes everything but unreserved characters: for a path segment (ids are `usr_`
/// and base62, but escaped all the same) or a query value.
pub(super) fn urlencoding(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The list and adding a user

async fn render_users(
    state: &AppState,
    who: &SignedIn,
    org: &str,
    done: Option<&str>,
    flash: Option<Flash>,
    form_email: &str,
    error: Option<(&str, String)>,
) -> PageResult {
    let org = super::pages::working_org(state, who, org).await?;
    let list = users::list_users(state, &who.actor, Some(org.clone())).await?;
    let mut body = format!(
        r#"<div class="page-head"><div><h1>Users</h1><p class="muted">People of {whose} who sign in to this portal.</p></div></div>"#,
        whose = super::pages::whose(who, &org),
    );
    body.push_str(&super::pages::org_picker(state, who, &org, "/portal/users").await?);
    body.push_str(&notice(done));
    if let Some(Flash::Password { email, password }) = &flash {
        let _ = write!(
            body,
            r#"<section class="card reveal"><h2>User added</h2><div class="alert alert-warn" role="alert"><strong>Give this password to {email} securely.</strong> It will not be shown again.</div><dl class="kv"><dt>Email</dt><dd><code>{email}</code></dd><dt>Password</dt><dd>{pw}</dd></dl></section>"#,
            email = esc(email),
            pw = copyable("new-password", password, "password"),
        );
    }
    body.push_str(r#"<div class="card table-card"><table class="table responsive"><thead><tr><th scope="col">Email</th><th scope="col">Role</th><th scope="col">Status</th><th scope="col">Last sign-in</th></tr></thead><tbody>"#);
    for u in &list {
        let you = if u.id == who.user.id { r#" <span class="badge">You</span>"# } else { "" };
        let _ = write!(
            body,
            r#"<tr><td data-label="Email"><a href="{href}">{email}</a>{you}</td><td data-label="Role">{role}</td><td data-label="Status">{status}</td><td data-label="Last sign-in">{last}</td></tr>"#,
            href = esc(&user_path(&u.id)),
            email = esc(&u.email),
            role = role_label(role_from_dto(u.role)),
            status = status_badge(u.status == "active"),
            last = html::when_cell(u.last_sign_in_at.map(|t| t.unix_timestamp()), "Never"),
        );
    }
    body.push_str("</tbody></table></div>");
    let new_user = Target::User { org: &org, id: None, role: UserRole::Viewer };
    // The form adds to the organization shown: the user's own, or the one a platform user
    // chose in the picker (a hidden field names it; the policy decides again on submit).
    if who.may(Action::CreateUser, &new_user) {
        let email_err = error.as_ref().map(|(_, m)| m.as_str());
        let into = if org == who.user.org { String::new() } else { format!(" to {}", esc(&org)) };
        let _ = write!(
            body,
            r#"<section class="card"><h2>Add a user{into}</h2>
<form method="post" action="/portal/users" class="stack">
{csrf}{org_field}
<div class="field"><label for="email">Email</label><input id="email" name="email" type="email" required value="{email}"{inv}>{err}</div>
<div class="field"><label for="role">Role</label><select id="role" name="role" aria-describedby="role-hint">{roles}</select>{ROLES_HINT}</div>
<p class="hint">A password is generated and shown once.</p>
<div class="actions"><button type="submit" class="btn btn-primary">Add user</button></div>
</form></section>"#,
            csrf = csrf_field(who),
            org_field = super::pages::org_field(who, &org),
            email = esc(form_email),
            inv = invalid_attrs("email", email_err),
            err = field_error("email", email_err),
            roles = role_options(UserRole::Viewer),
        );
    }
    let status = match &error {
        Some(("conflict", _)) => StatusCode::CONFLICT,
        Some(_) => StatusCode::UNPROCESSABLE_ENTITY,
        None => StatusCode::OK,
    };
    Ok(page_with(status, who, &org, "Users", Nav::Users, &body))
}

/// The users page's query: a notice to show, and the organization chosen in the picker (see
/// [`super::pages::working_org`]).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct UsersQuery {
    done: Option<String>,
    org: String,
}

pub async fn list_users(
    State(state): State<AppState>,
    who: SignedIn,
    PageQuery(q): PageQuery<UsersQuery>,
) -> PageResult {
    let flash = super::take_flash(&state, &who.session.id_hash, super::FlashFor::Password).await?;
    render_users(&state, &who, &q.org, q.done.as_deref(), flash, "", None).await
}

pub async fn create_user(State(state): State<AppState>, posted: Posted) -> PageResult {
    let Posted { who, fields, .. } = posted;
    // A role the form does not offer is a bad request, never quietly another role.
    let role = match fields.get("role") {
        Some("admin") => UserRole::Admin,
        Some("viewer") | None => UserRole::Viewer,
        Some(_) => return Err(PortalError::BadRequest("choose Admin or Viewer".into())),
    };
    // The organization the form was shown for: the user's own unless a platform user chose
    // another (an org the policy does not let them read is a 404, as on the page).
    let org = super::pages::working_org(&state, &who, &fields.text("org")).await?;
    authorize(&who, Action::CreateUser, &Target::User { org: &org, id: None, role })?;
    let email = fields.text("email");
    let role = match role {
        UserRole::Admin => dto::UserRole::Admin,
        _ => dto::UserRole::Viewer,
    };
    let password = tokenmint_core::ids::random_id("", 20);
    let input = dto::CreateUser {
        org: org.clone(),
        email: email.clone(),
        role: Some(role),
        password: password.clone(),
    };
    match users::create_user(&state, &who.actor, input).await {
        Ok(created) => {
            let flash = Flash::Password { email: created.user.email, password };
            super::put_flash(&state, &who.session.id_hash, &flash).await?;
            let back = super::pages::org_query(&who, &org);
            let sep = if back.is_empty() { '?' } else { '&' };
            Ok(see_other(&format!("/portal/users{back}{sep}done=user-added")))
        }
        Err(ServiceError::Invalid { message, .. }) => {
            render_users(&state, &who, &org, None, None, &email, Some(("email", message))).await
        }
        // The email is taken; the operation's words say nothing about where.
        Err(ServiceError::Conflict(message)) => {
            render_users(&state, &who, &org, None, None, &email, Some(("conflict", message))).await
        }
        Err(e) => Err(e.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// One user

fn target(u: &tokenmint_store::PortalUser) -> Target<'_> {
    Target::User { org: &u.org, id: Some(&u.id), role: u.role }
}

/// The panel that shows a reset code, once.
fn reset_code_panel(email: &str, code: &str, reset_url: &str, expires_at: i64) -> String {
    format!(
        r#"<section class="card reveal" aria-labelledby="reset-title"><h2 id="reset-title">Password reset code</h2>
<div class="alert alert-warn" role="alert"><strong>Give this code to {email} securely.</strong> It will not be shown again. It works once, until {until}; a newer code replaces it.</div>
<dl class="kv"><dt>Code</dt><dd>{code}</dd><dt>Where</dt><dd>{url}</dd></dl>
<p class="hint">They open the address, enter the code and choose a new password. Every session of theirs then ends.</p></section>"#,
        email = esc(email),
        until = html::when(expires_at),
        code = copyable("reset-code", code, "reset code"),
        url = copyable("reset-url", reset_url, "address"),
    )
}

/// A user's page: their details and what the viewer may do to them, and above the details the
/// reset code this session just generated for them, taken from its one-time flash.
async fn render_user(state: &AppState, who: &SignedIn, id: &str, done: Option<&str>) -> PageResult {
    let u = users::check_user(state, &who.actor, id, Action::ListUsers).await?;
    let flash = super::take_flash(
        state,
        &who.session.id_hash,
        super::FlashFor::ResetCode { user_id: u.id.as_str() },
    )
    .await?;
    let t = target(&u);
    let active = u.status == UserStatus::Active;
    let href = esc(&user_path(&u.id));
    let mut body = format!(
        r#"<div class="page-head"><div><p class="crumbs"><a href="{back}">Users</a></p><h1 class="wrap-anywhere">{heading}</h1></div><div>{badge}</div></div>"#,
        // Back to the list of the user's organization, which a platform user may have chosen.
        back = esc(&format!("/portal/users{}", super::pages::org_query(who, &u.org))),
        heading = html::email_html(&u.email),
        badge = status_badge(active),
    );
    body.push_str(&notice(done));
    if let Some(Flash::ResetCode { email, code, reset_url, expires_at, .. }) = &flash {
        body.push_str(&reset_code_panel(email, code, reset_url, *expires_at));
    }
    let _ = write!(
        body,
        r#"<section class="card"><h2>Details</h2><dl class="kv"><dt>Email</dt><dd>{email}</dd><dt>Role</dt><dd>{role}</dd><dt>Status</dt><dd>{status}</dd><dt>Added</dt><dd>{created}</dd><dt>Last sign-in</dt><dd>{last}</dd></dl></section>"#,
        email = esc(&u.email),
        role = role_label(u.role),
        status = if active { "Active" } else { "Deactivated" },
        created = html::when(u.created_at),
        last = when_or(u.last_sign_in_at, "Never"),
    );
    if active && u.role != UserRole::Platform && who.may(Action::ChangeUserRole, &t) {
        let _ = write!(
            body,
            r#"<section class="card"><h2>Role</h2><form method="post" action="{href}/role" class="stack">{csrf}
<div class="field"><label for="role">Role</label><select id="role" name="role" aria-describedby="role-hint">{roles}</select>{ROLES_HINT}</div>
<div class="actions"><button type="submit" class="btn btn-primary">Change role</button></div></form></section>"#,
            csrf = csrf_field(who),
            roles = role_options(u.role),
        );
    }
    if active && who.may(Action::ResetUserPassword, &t) {
        let _ = write!(
            body,
            r#"<section class="card"><h2>Reset password</h2><p class="muted">Generates a one-time code, shown once, with which {email} sets a new password at <code>{url}</code>. Their current password keeps working until then; the code works once, for 24 hours.</p>
<form method="post" action="{href}/reset-password">{csrf}<button type="submit" class="btn">Generate reset code</button></form></section>"#,
            email = esc(&u.email),
            url = esc(&users::reset_url(state)),
            csrf = csrf_field(who),
        );
    }
    if u.id == who.user.id {
        body.push_str(r#"<section class="card"><p class="muted">This is you: change your password on <a href="/portal/account">your account page</a>.</p></section>"#);
    }
    if active && who.may(Action::DeactivateUser, &t) {
        let _ = write!(
            body,
            r#"<section class="card danger"><h2>Deactivate</h2><p class="muted">The user is signed out at once and can no longer sign in. You can reactivate them later.</p><a class="btn btn-danger" href="{href}/deactivate">Deactivate user</a></section>"#
        );
    }
    if !active && who.may(Action::ReactivateUser, &t) {
        let _ = write!(
            body,
            r#"<section class="card"><h2>Reactivate</h2><p class="muted">The user can sign in again, with their role and password as they were.</p><form method="post" action="{href}/reactivate">{csrf}<button type="submit" class="btn">Reactivate user</button></form></section>"#,
            csrf = csrf_field(who),
        );
    }
    Ok(page(who, &u.org, &u.email, Nav::Users, &body))
}

pub async fn show_user(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
    PageQuery(q): PageQuery<Done>,
) -> PageResult {
    render_user(&state, &who, &id, q.done.as_deref()).await
}

pub async fn confirm_deactivate_user(
    State(state): State<AppState>,
    who: SignedIn,
    Path(id): Path<String>,
) -> PageResult {
    let u = users::check_user(&state, &who.actor, &id, Action::DeactivateUser).await?;
    let body = format!(
        r#"<section class="card narrow danger"><h1>Deactivate {email}?</h1>
<p>They are signed out at once and can no longer sign in. Their pending password-reset code stops working. You can reactivate them later.</p>
<form method="post" action="{href}/deactivate" class="actions">
{csrf}
<button type="submit" class="btn btn-danger">Yes, deactivate</button>
<a class="btn btn-quiet" href="{href}">Cancel</a>
</form></section>"#,
        email = html::email_html(&u.email),
        href = esc(&user_path(&u.id)),
        csrf = csrf_field(&who),
    );
    Ok(page(&who, &u.org, "Deactivate user", Nav::Users, &body))
}

pub async fn deactivate_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    let u = users::deactivate_user(&state, &posted.who.actor, &id).await?;
    Ok(see_other(&format!("{}?done=user-deactivated", user_path(&u.id))))
}

pub async fn reactivate_user(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    let u = users::reactivate_user(&state, &posted.who.actor, &id).await?;
    Ok(see_other(&format!("{}?done=user-reactivated", user_path(&u.id))))
}

pub async fn change_role(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    let Posted { who, fields, .. } = posted;
    users::check_user(&state, &who.actor, &id, Action::ChangeUserRole).await?;
    let role = match fields.get("role") {
        Some("admin") => dto::UserRole::Admin,
        Some("viewer") => dto::UserRole::Viewer,
        _ => return Err(PortalError::BadRequest("choose Admin or Viewer".into())),
    };
    let u =
        users::update_user(&state, &who.actor, &id, dto::UpdateUser { role: Some(role) }).await?;
    Ok(see_other(&format!("{}?done=role-changed", user_path(&u.id))))
}

/// Generates a reset code and redirects to the user's page, which shows it once: the code
/// travels in the session's sealed one-time flash, so reloading that page neither shows it
/// again nor issues another, and the POST's answer holds nothing to re-submit.
pub async fn reset_password(
    State(state): State<AppState>,
    Path(id): Path<String>,
    posted: Posted,
) -> PageResult {
    let who = posted.who;
    let reset = users::reset_password(&state, &who.actor, &id).await?;
    let flash = Flash::ResetCode {
        user_id: reset.user.id.clone(),
        email: reset.user.email,
        code: reset.code,
        reset_url: reset.reset_url,
        expires_at: reset.expires_at.unix_timestamp(),
    };
    super::put_flash(&state, &who.session.id_hash, &flash).await?;
    Ok(see_other(&user_path(&reset.user.id)))
}

// ---------------------------------------------------------------------------------------------
// One's own account

fn own_target(who: &SignedIn) -> Target<'_> {
    Target::User { org: &who.user.org, id: Some(&who.user.id), role: who.user.role }
}

fn account_body(who: &SignedIn, done: Option<&str>, error: Option<(&str, &str)>) -> String {
    let err = |f: &str| error.filter(|(field, _)| *field == f).map(|(_, m)| m);
    format!(
        r#"<div class="page-head"><div><h1>Your account</h1><p class="muted">How you sign in to this portal.</p></div></div>
{notice}
<section class="card"><h2>Details</h2><dl class="kv"><dt>Email</dt><dd class="wrap-anywhere">{email}</dd><dt>Organization</dt><dd>{org}</dd><dt>Role</dt><dd>{role}</dd></dl></section>
<section class="card"><h2>Change password</h2>
<form method="post" action="/portal/account" class="stack">
{csrf}
<input type="text" name="username" autocomplete="username" value="{email}" hidden>
<div class="field"><label for="current_password">Current password</label><input id="current_password" name="current_password" type="password" autocomplete="current-password" required{cur_inv}>{cur_err}</div>
<div class="field"><label for="new_password">New password</label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="{min}" maxlength="{max}" required{new_inv}><p class="hint">{min} to {max} characters.</p>{new_err}</div>
<div class="field"><label for="confirm_password">New password again</label><input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required{conf_inv}>{conf_err}</div>
<p class="hint">Your other sessions are signed out; this one stays.</p>
<div class="actions"><button type="submit" class="btn btn-primary">Change password</button></div>
</form></section>"#,
        notice = notice(done),
        email = esc(&who.user.email),
        org = esc(&who.user.org),
        role = role_label(who.user.role),
        csrf = csrf_field(who),
        min = users::MIN_PASSWORD_LEN,
        max = users::MAX_PASSWORD_LEN,
        cur_inv = invalid_attrs("current_password", err("current_password")),
        cur_err = field_error("current_password", err("current_password")),
        new_inv = invalid_attrs("new_password", err("new_password")),
        new_err = field_error("new_password", err("new_password")),
        conf_inv = invalid_attrs("confirm_password", err("confirm_password")),
        conf_err = field_error("confirm_password", err("confirm_password")),
    )
}

pub async fn account(who: SignedIn, PageQuery(q): PageQuery<Done>) -> PageResult {
    authorize(&who, Action::ChangeOwnPassword, &own_target(&who))?;
    let body = account_body(&who, q.done.as_deref(), None);
    Ok(page(&who, &who.user.org, "Your account", Nav::Account, &body))
}

pub async fn change_password(State(state): State<AppState>, posted: Posted) -> PageResult {
    let Posted { who, fields, ip } = posted;
    authorize(&who, Action::ChangeOwnPassword, &own_target(&who))?;
    let new = fields.text("new_password");
    let answer = |status: StatusCode, field: &str, message: &str| {
        Ok(page_with(
            status,
            &who,
            &who.user.org,
            "Your account",
            Nav::Account,
            &account_body(&who, None, Some((field, message))),
        ))
    };
    let refuse =
        |field: &str, message: &str| answer(StatusCode::UNPROCESSABLE_ENTITY, field, message);
    if new != fields.text("confirm_password") {
        return refuse("confirm_password", "The two new passwords differ.");
    }
    // The current password is a guess like a sign-in's, by whoever holds the session: counted
    // and blocked with the account's sign-in failures, before it is checked, so that a session
    // left open or stolen cannot try passwords without limit.
    let throttle = &state.portal.throttle;
    let paused = |wait: i64| {
        let minutes = (wait + 59) / 60;
        // Said of attempts in general: the pause may be this account's or this network's.
        let message = format!(
            "Too many failed attempts. For your security, password changes are paused: try \
             again in {minutes} minute{}.",
            if minutes == 1 { "" } else { "s" }
        );
        let mut res = answer(StatusCode::TOO_MANY_REQUESTS, "current_password", &message)?;
        res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        Ok(res)
    };
    // Every refused try is audited, as every throttled sign-in is.
    if let Some(wait) =
        throttle.password_change_blocked_for(&state.limits, &who.user.email, ip).await
    {
        super::auth::audit_wrong_password(&state, &who, ip, "throttled");
        return paused(wait);
    }
    let counted = throttle.record_password_change_attempt(&state.limits, &who.user.email, ip).await;
    if counted.over_limit {
        super::auth::audit_wrong_password(&state, &who, ip, "throttled");
        if counted.newly() {
            // The block is the sign-in's: audited and alerted as one.
            let org = Some(who.user.org.clone());
            super::auth::on_blocked(&state, ip, &who.user.email, org, counted, state.now()).await;
        }
        return paused(super::auth::BLOCK_SECS);
    }
    let result = users::change_own_password(
        &state,
        &who.actor,
        Password::new(fields.text("current_password")),
        Password::new(new),
        &who.session.id_hash,
    )
    .await;
    match result {
        Ok(()) => {
            throttle.record_password_change_success(&state.limits, &who.user.email, ip).await;
            Ok(see_other("/portal/account?done=password-changed"))
        }
        Err(ServiceError::Invalid { field, message }) => {
            if field == "current_password" {
                super::auth::audit_wrong_password(&state, &who, ip, "bad_current_password");
                refuse("current_password", &capitalized(&message))
            } else {
                // The current password was right: the guess is given back.
                throttle.record_password_change_success(&state.limits, &who.user.email, ip).await;
                refuse("new_password", &capitalized(&message))
            }
        }
        Err(e) => Err(e.into()),
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect::<String>() + ".",
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Setting a password with a reset code (no session)

/// The reset form, in two steps. Without `email` it asks for the code only; once the code is
/// known good, it asks for the new password, showing the account's email in a read-only
/// `autocomplete="username"` field, so that password managers save the new password under the
/// right account (a signed-out page knows the account only from its code). The code travels to
/// the second step in the form, as it did in the first.
fn reset_form(token: &str, code: &str, email: Option<&str>, error: Option<(&str, &str)>) -> String {
    let err = |f: &str| error.filter(|(field, _)| *field == f).map(|(_, m)| m);
    let fields = match email {
        None => format!(
            r#"<p class="muted">Enter the reset code an administrator of your organization gave you.</p>
  <form method="post" action="/portal/reset-password" class="stack">
    <input type="hidden" name="csrf" value="{token}">
    <div class="field"><label for="code">Reset code</label><input id="code" name="code" type="text" autocomplete="one-time-code" spellcheck="false" required value="{code}"{code_inv}>{code_err}</div>
    <button type="submit" class="btn btn-primary btn-block">Continue</button>
  </form>"#,
            token = Esc(token),
            code = Esc(code),
            code_inv = invalid_attrs("code", err("code")),
            code_err = field_error("code", err("code")),
        ),
        Some(email) => format!(
            r#"<p class="muted">Choose the new password of your account.</p>
  <form method="post" action="/portal/reset-password" class="stack">
    <input type="hidden" name="csrf" value="{token}">
    <input type="hidden" name="code" value="{code}">
    <div class="field"><label for="username">Email</label><input id="username" name="username" type="email" autocomplete="username" value="{email}" readonly></div>
    <div class="field"><label for="new_password">New password</label><input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="{min}" maxlength="{max}" required{new_inv}><p class="hint">{min} to {max} characters.</p>{new_err}</div>
    <div class="field"><label for="confirm_password">New password again</label><input id="confirm_password" name="confirm_password" type="password" autocomplete="new-password" required{conf_inv}>{conf_err}</div>
    <button type="submit" class="btn btn-primary btn-block">Set password</button>
  </form>"#,
            token = Esc(token),
            code = Esc(code),
            email = Esc(email),
            min = users::MIN_PASSWORD_LEN,
            max = users::MAX_PASSWORD_LEN,
            new_inv = invalid_attrs("new_password", err("new_password")),
            new_err = field_error("new_password", err("new_password")),
            conf_inv = invalid_attrs("confirm_password", err("confirm_password")),
            conf_err = field_error("confirm_password", err("confirm_password")),
        ),
    };
    let body = format!(
        r#"<section class="card narrow">
  <p class="brand big"><span class="logo" aria-hidden="true">◆</span> tokenmint</p>
  <h1>Set a new password</h1>
  {fields}
  <p class="hint"><a href="/portal/sign-in">Back to sign in</a></p>
</section>"#
    );
    html::layout("Set a new password", None, Nav::None, &body)
}

/// The reset form with a fresh double-submit token (as the sign-in form: there is no session).
fn render_reset(
    state: &AppState,
    status: StatusCode,
    code: &str,
    email: Option<&str>,
    error: Option<(&str, &str)>,
) -> Response {
    let token = random_token();
    let mut res = html_response(status, reset_form(&token, code, email, error));
    if let Ok(v) = HeaderValue::from_str(&session::cookie(state, SIGN_IN_COOKIE, &token, 3600)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

pub async fn reset_page(State(state): State<AppState>) -> Response {
    render_reset(&state, StatusCode::OK, "", None, None)
}

/// Both steps of the reset form: the code alone (answered with the password step, naming the
/// account), or the code with the new password (which sets it).
pub async fn redeem_reset(State(state): State<AppState>, req: Request) -> PageResult {
    let fields = session::read_signed_out_form(req, &state).await?;
    let code: String = fields.text("code").trim().chars().take(64).collect();
    let code_refused = |message: &str| {
        let error = Some(("code", message));
        Ok(render_reset(&state, StatusCode::UNPROCESSABLE_ENTITY, &code, None, error))
    };
    let user = match users::check_reset_code(&state, &code).await {
        Ok(user) => user,
        Err(ServiceError::Invalid { message, .. }) => return code_refused(&capitalized(&message)),
        Err(e) => return Err(e.into()),
    };
    let Some(new) = fields.get("new_password").map(str::to_owned) else {
        return Ok(render_reset(&state, StatusCode::OK, &code, Some(&user.email), None));
    };
    let refuse = |field: &str, message: &str| {
        let error = Some((field, message));
        Ok(render_reset(&state, StatusCode::UNPROCESSABLE_ENTITY, &code, Some(&user.email), error))
    };
    if new != fields.text("confirm_password") {
        return refuse("confirm_password", "The two new passwords differ.");
    }
    match users::redeem_reset_code(&state, &code, Password::new(new)).await {
        Ok(_) => {
            let mut res = see_other("/portal/sign-in?done=password-set");
            if let Ok(v) = HeaderValue::from_str(&session::cookie(&state, SIGN_IN_COOKIE, "", 0)) {
                res.headers_mut().append(header::SET_COOKIE, v);
            }
            Ok(res.into_response())
        }
        // Used or replaced since it was checked above.
        Err(ServiceError::Invalid { field, message }) if field == "code" => {
            code_refused(&capitalized(&message))
        }
        Err(ServiceError::Invalid { message, .. }) => {
            refuse("new_password", &capitalized(&message))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_escaped() {
        assert_eq!(user_path("usr_AZaz09"), "/portal/users/usr_AZaz09");
        assert_eq!(user_path("a/b?c"), "/portal/users/a%2Fb%3Fc");
    }

    #[test]
    fn the_portal_offers_no_platform_role() {
        assert!(ROLE_CHOICES.iter().all(|(_, _, r)| *r != UserRole::Platform));
        assert!(role_options(UserRole::Admin).contains(r#"value="admin" selected"#));
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(
            capitalized("the current password is not right"),
            "The current password is not right."
        );
    }
}
