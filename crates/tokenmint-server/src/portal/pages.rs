//! The portal's pages: the organization's API OAuth credentials (list, generate, view, edit,
//! rotate, deactivate), its users and its audit log.
//!
//! Each handler calls the same operation as the admin API with the signed-in user as the
//! actor, and that operation asks the one policy ([`crate::service::policy`]); a page asks it
//! too, only to decide which forms to show, and a handler asks before reading a form, so that a
//! refused user learns nothing from how their input was judged. Credentials of another
//! organization are "not found".

use super::html::{
    self, Esc, Nav, bar_chart, copyable, esc, field_error, invalid_attrs, when, when_or,
};
use super::session::PageQuery;
use super::session::{Posted, SignedIn};
use super::{Flash, PortalError, html_response};
use crate::service::{self, Action, CredentialRef, ServiceError, Target};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use std::fmt::Write;
use tokenmint_core::credential::CredentialStatus;
use tokenmint_core::scope::AccessLevel;
use tokenmint_proto::Environment;
use tokenmint_proto::admin as dto;
use tokenmint_store::Refusal;

type PageResult = Result<Response, PortalError>;

/// A page of organization `org` (the user's own, or the one a platform user works in: the
/// header names it and the navigation stays in it).
pub(super) fn page(who: &SignedIn, org: &str, title: &str, nav: Nav, body: &str) -> Response {
    page_with(StatusCode::OK, who, org, title, nav, body)
}

pub(super) fn page_with(
    status: StatusCode,
    who: &SignedIn,
    org: &str,
    title: &str,
    nav: Nav,
    body: &str,
) -> Response {
    let query = org_query(who, org);
    html_response(status, html::layout(title, Some(who.viewer(org, &query)), nav, body))
}

pub(super) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// A new credential of organization `org`, of the kind the portal generates (no system
/// scopes: the form offers product areas only).
fn new_credential_target(org: &str) -> Target<'_> {
    Target::Credential(CredentialRef {
        org,
        client_id: None,
        system_scopes: false,
        loses_admin: None,
    })
}

/// Asks the policy before a form is shown or read.
pub(super) fn authorize(
    who: &SignedIn,
    action: Action,
    target: &Target<'_>,
) -> Result<(), PortalError> {
    Ok(service::authorize(&who.actor, action, target, "page")?)
}

/// The organization a page works in: the user's own, or the one chosen in the organization
/// picker, carried as `?org=SLUG` on pages and a hidden `org` field on forms (stateless: any
/// instance serves the next page, and a link names what it shows). Whether the user may work
/// there is not decided here: reading the organization asks the policy, which lets `platform`
/// users read every organization and answers "not found" to anyone else for any organization
/// but their own, as for one that does not exist.
pub(super) async fn working_org(
    state: &AppState,
    who: &SignedIn,
    asked: &str,
) -> Result<String, PortalError> {
    let asked = asked.trim();
    if asked.is_empty() || asked == who.user.org {
        return Ok(who.user.org.clone());
    }
    Ok(service::get_organization(state, &who.actor, asked).await?.slug)
}

/// `?org=SLUG` for links that stay in the organization `org`: empty in the user's own.
pub(super) fn org_query(who: &SignedIn, org: &str) -> String {
    if org == who.user.org {
        String::new()
    } else {
        format!("?org={}", super::accounts::urlencoding(org))
    }
}

/// Whose page it is, as HTML: "your organization", or the one a platform user works in.
pub(super) fn whose(who: &SignedIn, org: &str) -> String {
    if org == who.user.org {
        "your organization".to_owned()
    } else {
        format!("the organization <strong>{}</strong>", Esc(org))
    }
}

/// The hidden `org` field of a form acting in `org` (none in the user's own).
pub(super) fn org_field(who: &SignedIn, org: &str) -> String {
    if org == who.user.org {
        String::new()
    } else {
        format!(r#"<input type="hidden" name="org" value="{}">"#, Esc(org))
    }
}

/// The organization picker for users the policy lets list every organization (`platform`):
/// every organization by name, choosing one shows the page `path` in it. Empty for others.
pub(super) async fn org_picker(
    state: &AppState,
    who: &SignedIn,
    org: &str,
    path: &str,
) -> Result<String, PortalError> {
    if !who.may(Action::ListOrganizations, &Target::Platform) {
        return Ok(String::new());
    }
    let mut orgs = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page =
            service::list_organizations(state, &who.actor, cursor.as_deref(), Some(500)).await?;
        orgs.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    orgs.sort_by_cached_key(|o| (o.name.to_lowercase(), o.slug.clone()));
    let mut options = String::new();
    for o in &orgs {
        let sel = if o.slug == org { " selected" } else { "" };
        let _ = write!(
            options,
            r#"<option value="{slug}"{sel}>{name} ({slug})</option>"#,
            slug = esc(&o.slug),
            name = esc(&o.name),
        );
    }
    Ok(format!(
        r#"<form method="get" action="{path}" class="card filters org-picker" aria-label="Organization">
<div class="filter-grid"><div class="field grow"><label for="org-picker">Organization</label><select id="org-picker" name="org">{options}</select></div></div>
<div class="actions"><button type="submit" class="btn">Show</button></div>
</form>"#,
        path = esc(path),
    ))
}

pub(super) fn csrf_field(who: &SignedIn) -> String {
    format!(r#"<input type="hidden" name="csrf" value="{}">"#, Esc(&who.session.csrf_secret))
}

pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    Ok(match super::session::current(&state, &headers).await? {
        Some(_) => see_other("/portal/credentials"),
        None => see_other("/portal/sign-in"),
    })
}

// ---------------------------------------------------------------------------------------------
// Credentials

fn env_label(e: Environment) -> &'static str {
    match e {
        Environment::Production => "Production",
        Environment::Sandbox => "Sandbox",
    }
}

fn status_badge(status: CredentialStatus, expires_at: Option<i64>, now: i64) -> &'static str {
    if status == CredentialStatus::Deactivated {
        r#"<span class="badge badge-off">Deactivated</span>"#
    } else if expires_at.is_some_and(|t| t <= now) {
        r#"<span class="badge badge-warn">Expired</span>"#
    } else {
        r#"<span class="badge badge-ok">Active</span>"#
    }
}

fn level_label(level: Option<AccessLevel>) -> &'static str {
    match level {
        None => "No access",
        Some(AccessLevel::Read) => "Read",
        Some(AccessLevel::Write) => "Read & write",
    }
}

/// How many credentials a page of the list shows.
const PAGE_SIZE: u32 = 20;

/// The list's search, filters and page, as the form and its links send them. Empty values are
/// "any".
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct ListQuery {
    /// A name (part of it, any case) or a client ID (its start).
    q: String,
    /// `production` or `sandbox`.
    env: String,
    /// `active`, `expired` or `deactivated`.
    status: String,
    /// The cursor of the page to show.
    after: String,
    /// The organization chosen in the picker (see [`working_org`]).
    org: String,
}

impl ListQuery {
    fn filtered(&self) -> bool {
        !(self.q.trim().is_empty() && self.env.is_empty() && self.status.is_empty())
    }

    /// The query string of this search, at page `after` (the first page without one).
    fn link(&self, after: Option<&str>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("org", self.org.trim()),
            ("q", self.q.trim()),
            ("env", &self.env),
            ("status", &self.status),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", super::accounts::urlencoding(v)));
            }
        }
        if let Some(a) = after {
            parts.push(format!("after={}", super::accounts::urlencoding(a)));
        }
        if parts.is_empty() {
            "/portal/credentials".to_owned()
        } else {
            format!("/portal/credentials?{}", parts.join("&"))
        }
    }
}

fn list_filters(q: &ListQuery) -> String {
    let options = |current: &str, all: &str, choices: &[(&str, &str)]| {
        let mut out = format!(r#"<option value="">{all}</option>"#);
        for (value, label) in choices {
            let sel = if current == *value { " selected" } else { "" };
            let _ = write!(out, r#"<option value="{value}"{sel}>{label}</option>"#);
        }
        out
    };
    format!(
        r#"<form method="get" action="/portal/credentials" class="card filters" role="search" aria-label="Search credentials">
{org}<div class="filter-grid">
<div class="field grow"><label for="q">Search</label><input id="q" name="q" type="search" maxlength="200" value="{q}" placeholder="Name or client ID"></div>
<div class="field"><label for="env">Data access</label><select id="env" name="env">{env}</select></div>
<div class="field"><label for="status">Status</label><select id="status" name="status">{status}</select></div>
</div>
<div class="actions"><button type="submit" class="btn btn-primary">Search</button><a class="btn btn-quiet" href="{clear}">Clear</a></div>
</form>"#,
        org = if q.org.trim().is_empty() {
            String::new()
        } else {
            format!(r#"<input type="hidden" name="org" value="{}">"#, esc(q.org.trim()))
        },
        clear = esc(&ListQuery { org: q.org.clone(), ..ListQuery::default() }.link(None)),
        q = esc(&q.q),
        env = options(&q.env, "All", &[("production", "Production"), ("sandbox", "Sandbox")]),
        status = options(
            &q.status,
            "Any status",
            &[("active", "Active"), ("expired", "Expired"), ("deactivated", "Deactivated")]
        ),
    )
}

pub async fn list_credentials(
    State(state): State<AppState>,
    who: SignedIn,
    PageQuery(q): PageQuery<ListQuery>,
) -> PageResult {
    let environment = match q.env.as_str() {
        "" => None,
        "production" => Some(Environment::Production),
        "sandbox" => Some(Environment::Sandbox),
        _ => {
            return Err(PortalError::BadRequest(
                "choose the data access to list: production, sandbox, or nothing for both".into(),
            ));
        }
    };
    let status = match q.status.as_str() {
        "" => None,
        s => Some(tokenmint_store::CredentialState::parse(s).ok_or_else(|| {
            PortalError::BadRequest(
                "choose the status to list: active, expired, deactivated, or nothing for any"
                    .into(),
            )
        })?),
    };
    let search = service::CredentialSearchInput {
        text: Some(q.q.clone()),
        environment,
        state: status,
        after: Some(q.after.clone()).filter(|a| !a.is_empty()),
        limit: PAGE_SIZE,
    };
    let org = working_org(&state, &who, &q.org).await?;
    let list =
        match service::search_credentials(&state, &who.actor, Some(org.clone()), search).await {
            Ok(list) => list,
            Err(ServiceError::Invalid { message, .. }) => {
                return Err(PortalError::BadRequest(message));
            }
            Err(e) => return Err(e.into()),
        };
    let now = state.now();
    let mut body = String::new();
    let may_generate = who.may(Action::CreateCredential, &new_credential_target(&org));
    let generate = match (may_generate, no_product_areas(&state)) {
        (false, _) => String::new(),
        (true, false) => format!(
            r#"<a class="btn btn-primary" href="/portal/credentials/new{}">Generate credential</a>"#,
            esc(&org_query(&who, &org))
        ),
        // The form could not succeed: the button says so instead of leading to it.
        (true, true) => {
            r#"<button type="button" class="btn btn-primary" disabled aria-describedby="no-product-areas">Generate credential</button>"#.to_owned()
        }
    };
    let _ = write!(
        body,
        r#"<div class="page-head"><div><h1>API OAuth credentials</h1>
<p class="muted">Client credentials your integrations use to request access tokens from <code>{token}</code>.</p></div>{generate}</div>"#,
        token = esc(&state.token_endpoint),
    );
    body.push_str(&org_picker(&state, &who, &org, "/portal/credentials").await?);
    if may_generate && no_product_areas(&state) {
        body.push_str(NO_PRODUCT_AREAS);
    }
    if list.items.is_empty() && !q.filtered() && q.after.is_empty() {
        let action = if may_generate {
            generate.as_str()
        } else {
            r#"<p class="muted">Ask an administrator of your organization to generate one.</p>"#
        };
        let _ = write!(
            body,
            r#"<section class="card empty-state">
<svg class="empty-art" viewBox="0 0 64 64" aria-hidden="true"><circle cx="24" cy="32" r="12" class="art-ring"/><rect x="34" y="29" width="24" height="6" rx="3" class="art-bar"/><rect x="48" y="35" width="5" height="9" rx="2" class="art-bar"/></svg>
<h2>No credentials yet</h2>
<p class="muted">Generate a credential to give an integration its Client ID and Secret.</p>
{action}
</section>"#
        );
        return Ok(page(&who, &org, "API OAuth credentials", Nav::Credentials, &body));
    }
    body.push_str(&list_filters(&q));
    if list.items.is_empty() {
        let _ = write!(
            body,
            r#"<section class="card" id="no-match"><p class="muted">No credentials match. Change the search or <a href="{all}">show them all</a>.</p></section>"#,
            all = esc(&ListQuery { org: q.org.clone(), ..ListQuery::default() }.link(None)),
        );
    } else {
        body.push_str(
            r#"<div class="card table-card"><div class="table-scroll"><table class="table responsive credentials">
<thead><tr><th scope="col">Name</th><th scope="col">Client ID</th><th scope="col">Data access</th><th scope="col">Status</th><th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Last used</th></tr></thead><tbody>"#,
        );
        // The listed views carry everything the table shows: no second read per credential.
        for c in &list.items {
            let ts = |t: Option<time::OffsetDateTime>| t.map(time::OffsetDateTime::unix_timestamp);
            let expires_at = ts(c.expires_at);
            let _ = write!(
                body,
                r#"<tr><td data-label="Name"><a href="/portal/credentials/{id}">{name}</a></td><td data-label="Client ID"><code class="id">{id}</code></td><td data-label="Data access">{env}</td><td data-label="Status">{status}</td><td data-label="Created">{created}</td><td data-label="Expires">{expires}</td><td data-label="Last used">{used}</td></tr>"#,
                id = esc(&c.client_id),
                name = esc(&c.name),
                env = env_label(c.environment),
                status = status_badge(c.status, expires_at, now),
                created = html::when_cell(Some(c.created_at.unix_timestamp()), ""),
                expires = html::when_cell(expires_at, "Never"),
                used = html::when_cell(ts(c.last_used_at), "Never"),
            );
        }
        body.push_str("</tbody></table></div></div>");
    }
    let mut pager = String::new();
    if !q.after.is_empty() {
        let _ = write!(pager, r#"<a class="btn" href="{}">First page</a>"#, esc(&q.link(None)));
    }
    if let Some(next) = &list.next_cursor {
        let _ = write!(
            pager,
            r#"<a class="btn" rel="next" href="{}">Next page</a>"#,
            esc(&q.link(Some(next)))
        );
    }
    if !pager.is_empty() {
        let _ = write!(body, r#"<nav class="actions pager" aria-label="Pages">{pager}</nav>"#);
    }
    Ok(page(&who, &org, "API OAuth credentials", Nav::Credentials, &body))
}

/// What the generate form shows: the values typed so far and the errors by field.
#[derive(Debug, Default)]
struct CredentialForm {
    /// The organization it is generated in.
    org: String,
    name: String,
    environment: String,
    expiration: String,
    levels: Vec<(String, String)>,
    errors: Vec<(&'static str, String)>,
}

impl CredentialForm {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str())
    }

    fn level(&self, area: &str) -> &str {
        self.levels.iter().find(|(a, _)| a == area).map_or("none", |(_, l)| l.as_str())
    }
}

const EXPIRATIONS: &[(&str, &str, Option<u64>)] = &[
    ("30d", "30 days", Some(30 * 86_400)),
    ("90d", "90 days", Some(90 * 86_400)),
    ("180d", "180 days", Some(180 * 86_400)),
    ("365d", "1 year", Some(365 * 86_400)),
    ("never", "Never expire", None),
];

/// Whether the server was started without `--product-area`: then no credential can be given
/// any access, and generating one cannot succeed.
fn no_product_areas(state: &AppState) -> bool {
    state.config.product_areas.names().is_empty()
}

/// Why no credential can be generated on a server without product areas, and what the operator
/// does about it; the disabled Generate buttons point at it (`aria-describedby`).
const NO_PRODUCT_AREAS: &str = r#"<p class="alert alert-warn" id="no-product-areas">This server offers no product areas yet, so no credential can be given access to any, and none can be generated. The platform operator adds them by starting the server with <code>--product-area NAME</code> (once per area, for example <code>tokenmint serve --product-area eligibility</code>).</p>"#;

/// One select per product area, named after the area.
fn permission_controls(
    state: &AppState,
    level_of: &dyn Fn(&str) -> String,
    error: Option<&str>,
) -> String {
    if no_product_areas(state) {
        // Nothing to choose from: say why the form cannot be used and who can change that,
        // rather than refusing a submission nobody could get right.
        let mut out = String::from(r#"<fieldset class="fieldset"><legend>Permissions</legend>"#);
        out.push_str(NO_PRODUCT_AREAS);
        out.push_str(&field_error("permissions", error));
        out.push_str("</fieldset>");
        return out;
    }
    let mut out = String::from(
        r#"<fieldset class="fieldset"><legend>Permissions</legend><p class="hint">Choose the access level for each product area.</p><div class="perm-grid">"#,
    );
    for area in state.config.product_areas.names() {
        let current = level_of(area);
        let id = format!("perm-{area}");
        let _ = write!(
            out,
            r#"<div class="field"><label for="{id}">{area}</label><select id="{id}" name="perm.{area}">"#,
            id = esc(&id),
            area = esc(area)
        );
        for (value, label) in [("none", "No access"), ("read", "Read"), ("write", "Read & write")] {
            let sel = if current == value { " selected" } else { "" };
            let _ = write!(out, r#"<option value="{value}"{sel}>{label}</option>"#);
        }
        out.push_str("</select></div>");
    }
    out.push_str("</div>");
    out.push_str(&field_error("permissions", error));
    out.push_str("</fieldset>");
    out
}

/// The per-area selects as permission strings and levels, with the message for a level no
/// select offers. An area the form did not send takes `unsent`'s level (none for a new
/// credential, the current one for an edit); an unknown level is refused, never read as "no
/// access", which would remove a permission (and revoke tokens) nobody chose to remove.
fn read_permissions(
    state: &AppState,
    fields: &super::session::Fields,
    unsent: &dyn Fn(&str) -> &'static str,
) -> (Vec<String>, Vec<(String, String)>, Option<String>) {
    let mut perms = Vec::new();
    let mut levels = Vec::new();
    let mut error = None;
    for area in state.config.product_areas.names() {
        let level = match fields.get(&format!("perm.{area}")) {
            Some(level @ ("none" | "read" | "write")) => level,
            None => unsent(area),
            Some(_) => {
                error.get_or_insert_with(|| {
                    format!("Choose No access, Read or Read & write for {area}.")
                });
                "none"
            }
        };
        if level != "none" {
            perms.push(format!("{area}:{level}"));
        }
        levels.push((area.clone(), level.to_owned()));
    }
    (perms, levels, error)
}

fn generate_form(state: &AppState, who: &SignedIn, f: &CredentialForm) -> String {
    let radio = |name: &str, value: &str, label: &str, current: &str| {
        let id = format!("{name}-{value}");
        let checked = if current == value { " checked" } else { "" };
        format!(
            r#"<label class="choice" for="{id}"><input type="radio" id="{id}" name="{name}" value="{value}"{checked}> <span>{label}</span></label>"#
        )
    };
    let env = if f.environment.is_empty() { "sandbox" } else { f.environment.as_str() };
    let exp = if f.expiration.is_empty() { "90d" } else { f.expiration.as_str() };
    let mut expirations = String::new();
    for (value, label, _) in EXPIRATIONS {
        expirations.push_str(&radio("expiration", value, label, exp));
    }
    format!(
        r#"<div class="page-head"><div><p class="crumbs"><a href="{back}">API OAuth credentials</a></p><h1>Generate credential</h1></div></div>
<form method="post" action="/portal/credentials" class="card stack form-card" novalidate>
{csrf}{org}
<div class="field">
  <label for="name">Credential name</label>
  <input id="name" name="name" type="text" maxlength="200" required value="{name}" placeholder="e.g. HR system sync"{name_invalid}>
  <p class="hint">To recognise the integration later.</p>
  {name_error}
</div>
<fieldset class="fieldset" role="radiogroup" aria-labelledby="env-legend">
  <legend id="env-legend">Data access</legend>
  <div class="choices">{prod}{sandbox}</div>
  <p class="hint">Production for live data, Sandbox for testing.</p>
  {env_error}
</fieldset>
<fieldset class="fieldset" role="radiogroup" aria-labelledby="exp-legend">
  <legend id="exp-legend">Credential expiration</legend>
  <div class="choices">{expirations}</div>
  {exp_error}
</fieldset>
{perms}
<div class="actions"><button type="submit" class="btn btn-primary"{disabled}>Generate credential</button><a class="btn btn-quiet" href="{back}">Cancel</a></div>
</form>"#,
        back = esc(&format!("/portal/credentials{}", org_query(who, &f.org))),
        disabled = if no_product_areas(state) {
            r#" disabled aria-describedby="no-product-areas""#
        } else {
            ""
        },
        csrf = csrf_field(who),
        org = org_field(who, &f.org),
        name = esc(&f.name),
        name_invalid = invalid_attrs("name", f.error("name")),
        name_error = field_error("name", f.error("name")),
        prod = radio("environment", "production", "Production", env),
        sandbox = radio("environment", "sandbox", "Sandbox", env),
        env_error = field_error("environment", f.error("environment")),
        exp_error = field_error("expiration", f.error("expiration")),
        perms = permission_controls(state, &|a| f.level(a).to_owned(), f.error("permissions")),
    )
}

/// The query of the Generate page: the organization chosen in the picker.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub struct OrgQuery {
    org: String,
}

pub async fn new_credential(
    State(state): State<AppState>,
    who: SignedIn,
    PageQuery(q): PageQuery<OrgQuery>,
) -> PageResult {
    let org = working_org(&state, &who, &q.org).await?;
    authorize(&who, Action::CreateCredential, &new_credential_target(&org))?;
    let form = CredentialForm { org, ..CredentialForm::default() };
    let body = generate_form(&state, &who, &form);
    Ok(page(&who, &form.org, "Generate credential", Nav::Credentials, &body))
}

pub async fn create_credential(State(state): State<AppState>, posted: Posted) -> PageResult {
    let Posted { who, fields, .. } = posted;
    let org = working_org(&state, &who, &fields.text("org")).await?;
    authorize(&who, Action::CreateCredential, &new_credential_target(&org))?;
    let (permissions, levels, unreadable) = read_permissions(&state, &fields, &|_| "none");
    let mut form = CredentialForm {
        org,
        name: fields.text("name"),
        environment: fields.text("environment"),
        expiration: fields.text("expiration"),
        levels,
        errors: vec![],
    };
    let environment = match form.environment.as_str() {
        "production" => Some(Environment::Production),
        "sandbox" => Some(Environment::Sandbox),
        _ => None,
    };
    if environment.is_none() {
        form.errors.push(("environment", "Choose Production or Sandbox.".into()));
    }
    let expiration = EXPIRATIONS.iter().find(|(v, _, _)| *v == form.expiration);
    if expiration.is_none() {
        form.errors.push(("expiration", "Choose a duration or Never expire.".into()));
    }
    if form.name.trim().is_empty() {
        form.errors.push(("name", "Enter a name for the credential.".into()));
    }
    if let Some(message) = unreadable {
        form.errors.push(("permissions", message));
    } else if permissions.is_empty() {
        let message = if no_product_areas(&state) {
            "This server offers no product areas: start it with --product-area NAME first."
        } else {
            "Give access to at least one product area."
        };
        form.errors.push(("permissions", message.into()));
    }
    let result = match (environment, expiration, form.errors.is_empty()) {
        (Some(environment), Some((_, _, secs)), true) => Some(
            service::create_credential(
                &state,
                &who.actor,
                dto::CreateCredential {
                    name: form.name.clone(),
                    org: form.org.clone(),
                    environment,
                    permissions,
                    audiences: vec![],
                    expires_in_seconds: *secs,
                    token_lifetime_seconds: None,
                    rate_limit_per_minute: None,
                    claims: None,
                },
            )
            .await,
        ),
        _ => None,
    };
    match result {
        Some(Ok(created)) => {
            let flash = Flash::Secret {
                client_id: created.client_id.clone(),
                secret: created.client_secret,
                rotated: false,
            };
            super::put_flash(&state, &who.session.id_hash, &flash).await?;
            // No `done` in the URL: the flash says "generated" with the secret, once, so a
            // reload shows neither.
            Ok(see_other(&format!("/portal/credentials/{}", created.client_id)))
        }
        Some(Err(ServiceError::Invalid { field, message })) => {
            let field = match field.as_ref() {
                "name" => "name",
                "permissions" => "permissions",
                "expires_in_seconds" => "expiration",
                _ => "name",
            };
            form.errors.push((field, message));
            let body = generate_form(&state, &who, &form);
            Ok(page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &who,
                &form.org,
                "Generate credential",
                Nav::Credentials,
                &body,
            ))
        }
        Some(Err(e)) => Err(e.into()),
        None => {
            let body = generate_form(&state, &who, &form);
            Ok(page_with(
                StatusCode::UNPROCESSABLE_ENTITY,
                &who,
                &form.org,
                "Generate credential",
                Nav::Credentials,
                &body,
            ))
        }
    }
}

fn secret_panel(client_id: &str, secret: &str, rotated: bool) -> String {
    let title = if rotated { "Your new client secret" } else { "Save your client secret" };
    format!(
        r#"<section class="card reveal" aria-labelledby="reveal-title">
<h2 id="reveal-title">{title}</h2>
<div class="alert alert-warn" role="alert"><strong>Copy the secret now.</strong> It will not be shown again: tokenmint keeps only a hash of it. If it is lost, rotate the secret.</div>
<dl class="kv">
<dt>Client ID</dt><dd>{cid}</dd>
<dt>Secret</dt><dd>{sec}</dd>
</dl>
</section>"#,
        cid = copyable("new-client-id", client_id, "Client ID"),
        sec = copyable("new-client-secret", secret, "Secret"),
    )
}

/// A claim's value as the portal shows it in a field, such that reading the field back (by
/// `claims::parse_value_text`, as the CLI reads `--claim`) gives the same value: a string as it
/// is when it reads back as itself, else (the empty string, `"123"`, `"[draft]"`, any other
/// value) as JSON. An empty field means "remove", so an empty string is shown as `""`.
fn claim_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s)
            if !s.trim().is_empty()
                && s.trim() == s
                && tokenmint_core::claims::parse_value_text("claim", s).as_ref() == Ok(value) =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// The custom claims the credential's tokens carry. The platform sets them; those it lets
/// organization admins edit are marked.
fn claims_list(c: &tokenmint_core::Credential, org_editable: &[String]) -> String {
    let claims = c.token_claims();
    if claims.is_empty() {
        return r#"<span class="muted" id="claims">None</span>"#.to_owned();
    }
    let items: String = claims
        .iter()
        .map(|(name, value)| {
            let from = if c.claims.get(name).is_none() { " (organization)" } else { "" };
            format!(
                "<li><code>{}</code> = <code>{}</code>{from}</li>",
                esc(name),
                esc(&value.to_string())
            )
        })
        .collect();
    let note = if org_editable.is_empty() {
        "Set by the platform administrators.".to_owned()
    } else {
        format!(
            "Set by the platform administrators; organization admins may edit {}.",
            org_editable
                .iter()
                .map(|n| format!("<code>{}</code>", esc(n)))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(r#"<ul class="plain claims" id="claims">{items}</ul><p class="muted">{note}</p>"#)
}

/// One input per claim the platform lets organization admins edit: empty removes the claim.
fn claim_inputs(
    c: &tokenmint_core::Credential,
    org_editable: &[String],
    posted: Option<&super::session::Fields>,
    error: Option<&str>,
) -> String {
    if org_editable.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        r#"<fieldset class="fieldset"><legend>Token claims</legend><p class="hint">Values are JSON when they parse as JSON, else text. Leave a value empty to remove the claim. A change revokes the tokens issued before it.</p>"#,
    );
    for (i, name) in org_editable.iter().enumerate() {
        let value = match posted.and_then(|p| p.get(&format!("claim.{name}"))) {
            Some(sent) => sent.to_owned(),
            None => c.claims.get(name).map(claim_text).unwrap_or_default(),
        };
        let _ = write!(
            out,
            r#"<div class="field"><label for="claim-{i}"><code>{name}</code></label><input id="claim-{i}" name="claim.{name}" type="text" spellcheck="false" value="{value}"></div>"#,
            name = esc(name),
            value = esc(&value),
        );
    }
    out.push_str(&field_error("claims", error));
    out.push_str("</fieldset>");
    out
}

fn audiences_list(audiences: &[String]) -> String {
    if audiences.is_empty() {
        return r#"<span class="muted">Any (tokens name the issuer unless the client asks for an audience)</span>"#.to_owned();
    }
    let items: String =
        audiences.iter().map(|a| format!("<li><code>{}</code></li>", esc(a))).collect();
    format!(r#"<ul class="plain">{items}</ul>"#)
}

/// Seconds as people say them, with the exact figure.
fn duration_label(secs: u64) -> String {
    let words = match secs {
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3_600 == 0 => plural(s / 3_600, "hour"),
        s if s % 60 == 0 => plural(s / 60, "minute"),
        s => return plural(s, "second"),
    };
    format!("{words} ({secs} s)")
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 { format!("1 {unit}") } else { format!("{n} {unit}s") }
}

fn rate_limit_label(own: Option<u32>, server_default: u32) -> String {
    match own {
        Some(0) => "No limit".to_owned(),
        Some(n) => format!("{n} tokens per minute"),
        None if server_default == 0 => "Server default (no limit)".to_owned(),
        None => format!("Server default ({server_default} tokens per minute)"),
    }
}

/// The expiry choices of the edit form: keep the current one, or set a new one from now;
/// `chosen` is the one selected (keep when it is none of them).
fn expiry_options(current: Option<i64>, chosen: Option<&str>) -> String {
    let keep = match current {
        Some(t) => format!("Keep: expires {}", when(t)),
        None => "Keep: never expires".to_owned(),
    };
    let chosen = chosen.filter(|c| EXPIRATIONS.iter().any(|(value, _, _)| value == c));
    let selected = |value: &str| if chosen == Some(value) { " selected" } else { "" };
    let mut out = format!(
        r#"<option value="keep"{sel}>{}</option>"#,
        esc(&keep),
        sel = if chosen.is_none() { " selected" } else { "" }
    );
    for (value, label, _) in EXPIRATIONS {
        let label =
            if *value == "never" { "Never expire".to_owned() } else { format!("{label} from now") };
        let _ =
            write!(out, r#"<option value="{value}"{sel}>{label}</option>"#, sel = selected(value));
    }
    out
}

/// The credential's page. After a refused edit, `edit_errors` name each field and say why,
/// and `posted` holds the edit form as it was sent: the form shows it again as typed (not the
/// stored values), so that correcting one field loses nothing written in the others.
async fn render_credential(
    state: &AppState,
    who: &SignedIn,
    client_id: &str,
    edit_errors: Vec<(&str, String)>,
    posted: Option<&super::session::Fields>,
    done: Option<&str>,
) -> PageResult {
    let c = service::get_credential(state, &who.actor, client_id).await?;
    let now = state.now();
    let flash = super::take_flash(
        state,
        &who.session.id_hash,
        super::FlashFor::Secret { client_id: c.client_id.as_str() },
    )
    .await?;
    let activity = crate::routes::admin::audit::activity(state, client_id, 14, now).await?;
    let id = esc(c.client_id.as_str());
    let mut body = String::new();
    let _ = write!(
        body,
        r#"<div class="page-head"><div><p class="crumbs"><a href="{back}">API OAuth credentials</a></p><h1>{name}</h1></div><div>{status}</div></div>"#,
        // Back to the list of the credential's organization, which a platform user may have
        // chosen in the picker.
        back = esc(&format!("/portal/credentials{}", org_query(who, &c.org))),
        name = esc(&c.name),
        status = status_badge(c.status, c.expires_at, now),
    );
    body.push_str(&html::notice(done));
    if let Some(Flash::Secret { rotated, .. }) = &flash {
        // Said with the secret it comes with, from the same one-time flash: gone on reload.
        let said = if *rotated { "Secret rotated." } else { "Credential generated." };
        let _ =
            write!(body, r#"<div class="alert alert-ok" role="status" id="notice">{said}</div>"#);
    }
    if let Some((field, message)) = edit_errors.first() {
        // The refused field may be far down the page (a phone shows it 2,000 px below): say
        // so at the top, with a link to the first; each field says its own under it.
        let message = match edit_errors.len() {
            1 => message.clone(),
            n => format!("{n} fields need correcting, each said under it. The first: {message}"),
        };
        let _ = write!(
            body,
            r##"<div class="alert alert-error" role="alert" id="form-error">Not saved: {message} <a href="#{field}-error">Go to the field</a></div>"##,
            message = esc(&message),
            field = esc(field),
        );
    }
    if let Some(Flash::Refused { message, .. }) = &flash {
        let _ = write!(
            body,
            r#"<div class="alert alert-error" role="alert" id="refused">{}</div>"#,
            esc(message)
        );
    }
    if let Some(Flash::Secret { client_id, secret, rotated }) = &flash {
        body.push_str(&secret_panel(client_id, secret, *rotated));
    }
    let perms: Vec<String> = state
        .config
        .product_areas
        .names()
        .iter()
        .map(|a| {
            format!(
                "<li><span>{}</span> <strong>{}</strong></li>",
                esc(a),
                level_label(c.permissions.level(a))
            )
        })
        .collect();
    let target = Target::Credential(service::credential_ref(&c));
    let may_delete_secret = who.may(Action::DeleteSecret, &target);
    let secrets: Vec<String> = c
        .secrets
        .iter()
        .map(|s| {
            // Only a secret a rotation gave an end may be deleted here: the current one is
            // replaced by rotating, so the page never offers to leave a credential without one.
            let delete = if may_delete_secret && !is_current_secret(s) {
                format!(
                    r#" <a class="btn btn-quiet btn-small" href="/portal/credentials/{id}/secrets/{sid}/delete">Delete</a>"#,
                    sid = esc(&s.id),
                )
            } else {
                String::new()
            };
            format!(
                "<li><code>{}</code> created {}{}{delete}</li>",
                esc(&s.hint),
                when(s.created_at),
                s.expires_at
                    .map(|e| {
                        let tense = if e <= now { "stopped" } else { "stops" };
                        format!(", {tense} working {}", when(e))
                    })
                    .unwrap_or_else(|| " (current)".to_owned())
            )
        })
        .collect();
    let _ = write!(
        body,
        r#"<section class="card"><h2>Details</h2><dl class="kv">
<dt>Client ID</dt><dd>{cid}</dd>
<dt>Data access</dt><dd>{env}</dd>
<dt>Permissions</dt><dd><ul class="plain perms">{perms}</ul></dd>
<dt>Scopes</dt><dd><code>{scopes}</code></dd>
<dt>Audiences</dt><dd id="audiences">{audiences}</dd>
<dt>Token lifetime</dt><dd id="token-lifetime">{lifetime}</dd>
<dt>Rate limit</dt><dd id="rate-limit">{rate}</dd>
<dt>Created</dt><dd>{created}</dd>
<dt>Expires</dt><dd id="expires">{expires}</dd>
<dt>Last used</dt><dd>{used}</dd>
<dt>Secrets</dt><dd><ul class="plain" id="secrets">{secrets}</ul></dd>
<dt>Token claims</dt><dd>{claims}</dd>
</dl></section>"#,
        cid = copyable("client-id", c.client_id.as_str(), "Client ID"),
        env = env_label(c.environment),
        perms = perms.join(""),
        scopes = esc(&c.permissions.scopes().join(" ")),
        audiences = audiences_list(&c.audiences),
        lifetime = duration_label(u64::from(c.token_lifetime_secs)),
        rate = rate_limit_label(c.rate_limit_per_minute, state.config.token_rate_limit),
        created = when(c.created_at),
        expires = when_or(c.expires_at, "Never"),
        used = when_or(c.last_used_at, "Never"),
        secrets = secrets.join(""),
        claims = claims_list(&c, &state.config.org_editable_claims),
    );

    // Activity: tokens per day and recent refusals.
    let days: Vec<(String, i64)> =
        activity.tokens_per_day.iter().map(|d| (d.day.clone(), d.tokens)).collect();
    let mut failures = String::new();
    if activity.recent_failures.is_empty() {
        failures.push_str(r#"<p class="muted">No failed authentications in this period.</p>"#);
    } else {
        failures.push_str(r#"<table class="table compact"><thead><tr><th scope="col">When</th><th scope="col">Reason</th><th scope="col">Source IP</th></tr></thead><tbody>"#);
        for f in &activity.recent_failures {
            let _ = write!(
                failures,
                r#"<tr><td>{}</td><td>{}</td><td class="ip">{}</td></tr>"#,
                when(f.at.unix_timestamp()),
                esc(&f.reason.as_deref().map(super::audit::reason_label).unwrap_or_default()),
                esc(f.source_ip.as_deref().unwrap_or("")),
            );
        }
        failures.push_str("</tbody></table>");
    }
    let _ = write!(
        body,
        r#"<section class="card"><h2>Recent activity</h2><h3>Tokens issued per day</h3>{chart}<h3>Recent authentication failures</h3>{failures}</section>"#,
        chart = bar_chart(&days),
    );

    if who.may(Action::EditCredential, &target) {
        let err =
            |field: &str| edit_errors.iter().find(|(f, _)| *f == field).map(|(_, m)| m.as_str());
        // What was sent, where the form was sent; else the credential as stored.
        let sent = |field: &str| posted.and_then(|p| p.get(field));
        let claims_target =
            Target::Claims { credential: service::credential_ref(&c), org_editable: true };
        let claim_fields = if who.may(Action::EditClaims, &claims_target) {
            claim_inputs(&c, &state.config.org_editable_claims, posted, err("claims"))
        } else {
            String::new()
        };
        let _ = write!(
            body,
            r#"<section class="card"><h2>Edit</h2>
<form method="post" action="/portal/credentials/{id}" class="stack" novalidate>
{csrf}
<div class="field"><label for="name">Credential name</label><input id="name" name="name" type="text" maxlength="200" required value="{name}"{name_invalid}>{name_error}</div>
{perms}
<div class="field"><label for="audiences-input">Audiences</label><textarea id="audiences-input" name="audiences" rows="3" spellcheck="false"{aud_invalid}>{audiences}</textarea><p class="hint">The APIs tokens may be requested for, one URL or name per line. Empty: any, and tokens name the issuer unless the client asks for one. Removing one revokes the tokens issued before.</p>{aud_error}</div>
<div class="field-row">
<div class="field"><label for="token-lifetime-input">Token lifetime (seconds)</label><input id="token-lifetime-input" name="token_lifetime" type="number" inputmode="numeric" min="{min_life}" max="{max_life}" required value="{lifetime}"{life_invalid}><p class="hint">Between {min_life} and {max_life}.</p>{life_error}</div>
<div class="field"><label for="rate-limit-input">Rate limit (tokens per minute)</label><input id="rate-limit-input" name="rate_limit" type="number" inputmode="numeric" min="0" max="1000000" value="{rate}"{rate_invalid}><p class="hint">Empty: the server's default ({default_rate}). 0: no limit.</p>{rate_error}</div>
</div>
<div class="field"><label for="expiry-input">Expiry</label><select id="expiry-input" name="expiry"{exp_invalid}>{expiry}</select>{exp_error}</div>
{claim_fields}
<div class="actions"><button type="submit" class="btn btn-primary">Save changes</button></div>
</form></section>"#,
            csrf = csrf_field(who),
            name = esc(sent("name").unwrap_or(&c.name)),
            name_invalid = invalid_attrs("name", err("name")),
            name_error = field_error("name", err("name")),
            perms = permission_controls(
                state,
                &|a| match sent(&format!("perm.{a}")) {
                    Some(level) => level.to_owned(),
                    None => c.permissions.level(a).map_or("none", AccessLevel::as_str).to_owned(),
                },
                err("permissions")
            ),
            audiences =
                esc(&sent("audiences").map_or_else(|| c.audiences.join("\n"), str::to_owned)),
            aud_invalid = invalid_attrs("audiences", err("audiences")),
            aud_error = field_error("audiences", err("audiences")),
            min_life = tokenmint_core::credential::MIN_TOKEN_LIFETIME_SECS,
            max_life = state.config.max_token_lifetime,
            lifetime = esc(&sent("token_lifetime")
                .map_or_else(|| c.token_lifetime_secs.to_string(), str::to_owned)),
            life_invalid = invalid_attrs("token_lifetime", err("token_lifetime")),
            life_error = field_error("token_lifetime", err("token_lifetime")),
            rate = esc(&sent("rate_limit").map_or_else(
                || c.rate_limit_per_minute.map(|r| r.to_string()).unwrap_or_default(),
                str::to_owned
            )),
            default_rate = match state.config.token_rate_limit {
                0 => "no limit".to_owned(),
                n => format!("{n} tokens per minute"),
            },
            rate_invalid = invalid_attrs("rate_limit", err("rate_limit")),
            rate_error = field_error("rate_limit", err("rate_limit")),
            expiry = expiry_options(c.expires_at, sent("expiry")),
            exp_invalid = invalid_attrs("expiry", err("expiry")),
            exp_error = field_error("expiry", err("expiry")),
        );
    }
    let key_error = edit_errors.iter().find(|(f, _)| *f == "public_key");
    body.push_str(&public_keys_card(who, &c, &target, key_error));
    if who.may(Action::RotateSecret, &target) {
        let _ = write!(
            body,
            r#"<section class="card"><h2>Rotate secret</h2>
<p class="muted">Generates a new secret, shown once. Choose how long the current secret keeps working, so your integration can switch without downtime.</p>
<form method="post" action="/portal/credentials/{id}/rotate" class="stack">
{csrf}
<div class="field"><label for="overlap">Current secret keeps working for</label>
<select id="overlap" name="overlap"><option value="0">Stop it now</option><option value="3600">1 hour</option><option value="86400" selected>24 hours</option><option value="604800">7 days</option></select></div>
<div class="actions"><button type="submit" class="btn">Rotate secret</button></div>
</form></section>"#,
            csrf = csrf_field(who),
        );
    }
    if c.status == CredentialStatus::Active && who.may(Action::DeactivateCredential, &target) {
        let _ = write!(
            body,
            r#"<section class="card danger"><h2>Deactivate</h2><p class="muted">The credential stops obtaining tokens at once, and its tokens are revoked.</p><a class="btn btn-danger" href="/portal/credentials/{id}/deactivate">Deactivate credential</a></section>"#
        );
    }
    if c.status == CredentialStatus::Deactivated && who.may(Action::ActivateCredential, &target) {
        let _ = write!(
            body,
            r#"<section class="card"><h2>Reactivate</h2><form method="post" action="/portal/credentials/{id}/activate">{csrf}<button type="submit" class="btn">Reactivate credential</button></form></section>"#,
            csrf = csrf_field(who),
        );
    }
    if c.permissions.has_system_scopes() && !who.may(Action::EditCredential, &target) {
        body.push_str(
            r#"<section class="card"><p class="muted">This credential holds tokenmint:* scopes: only platform administrators can change it.</p></section>"#,
        );
    }
    let status =
        if edit_errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    Ok(page_with(status, who, &c.org, &c.name, Nav::Credentials, &body))
}

/// The credential's registered public keys (for `private_key_jwt`), each with a link to remove
/// it, and a form to register another: what the admin API's public-keys routes do, for those the
/// policy lets do it.
fn public_keys_card(
    who: &SignedIn,
    c: &tokenmint_core::Credential,
    target: &Target,
    error: Option<&(&str, String)>,
) -> String {
    let may_add = who.may(Action::AddPublicKeys, target);
    let may_remove = who.may(Action::RemovePublicKey, target);
    if c.public_keys.is_empty() && !may_add {
        return String::new();
    }
    let id = esc(c.client_id.as_str());
    let mut card = String::from(
        r#"<section class="card" id="public-keys"><h2>Public keys</h2><p class="muted">An integration holding the private key of a key registered here authenticates with a signed assertion (private_key_jwt) instead of a secret; the private key never leaves it.</p>"#,
    );
    if c.public_keys.is_empty() {
        card.push_str(r#"<p class="muted">No public keys registered.</p>"#);
    } else {
        card.push_str(r#"<ul class="plain keys">"#);
        for key in &c.public_keys {
            let info = service::key_view(key);
            let kind = match &info.crv {
                Some(crv) => format!("{} {crv}", info.kty),
                None => info.kty.clone(),
            };
            let remove = if may_remove {
                format!(
                    r#" <a class="btn btn-quiet" href="/portal/credentials/{id}/public-keys/{thumb}/remove">Remove</a>"#,
                    thumb = esc(&info.thumbprint),
                )
            } else {
                String::new()
            };
            let _ = write!(
                card,
                r#"<li><span>{kind}{kid}</span> <span class="muted">thumbprint</span> <code>{thumb}</code>{remove}</li>"#,
                kind = esc(&kind),
                kid = info.kid.as_deref().map(|k| format!(", kid {}", esc(k))).unwrap_or_default(),
                thumb = esc(&info.thumbprint),
            );
        }
        card.push_str("</ul>");
    }
    if may_add {
        let message = match error {
            Some((field, m)) if *field == "public_key" => Some(m.as_str()),
            _ => None,
        };
        let _ = write!(
            card,
            r#"<form method="post" action="/portal/credentials/{id}/public-keys" class="stack" novalidate>
{csrf}
<div class="field"><label for="public-key-input">Register a public key</label><textarea id="public-key-input" name="public_key" rows="5" spellcheck="false"{invalid}></textarea><p class="hint">A PEM public key (<code>openssl pkey -in key.pem -pubout</code>), a JWK or a JWK Set: RSA of 2048 bits or more, EC P-256 or P-384, or Ed25519. Never paste a private key.</p>{field_error}</div>
<div class="actions"><button type="submit" class="btn">Register key</button></div>
</form>"#,
            csrf = csrf_field(who),
            invalid = invalid_attrs("public_key", message),
            field_error = field_error("public_key", message),
        );
    }
    card.push_str("</section>");
    card
}

pub async fn add_public_key(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted,
) -> PageResult {
    let Posted { who, fields, .. } = posted;
    let text = fields.text("public_key");
    let refused = |message: String| ("public_key", message);
    let error = if text.trim().is_empty() {
        refused("Paste a public key: PEM, JWK or JWK Set.".to_owned())
    } else {
        let input = dto::AddPublicKeys { keys: vec![text] };
        match service::add_public_keys(&state, &who.actor, &client_id, input).await {
            Ok(_) => {
                return Ok(see_other(&format!(
                    "/portal/credentials/{client_id}?done=key-added#public-keys"
                )));
            }
            Err(ServiceError::Invalid { message, .. } | ServiceError::Conflict(message)) => {
                refused(message)
            }
            Err(e) => return Err(e.into()),
        }
    };
    render_credential(&state, &who, &client_id, vec![error], None, None).await
}

/// Removing a key breaks every integration that signs with it: asked first.
pub async fn confirm_remove_public_key(
    State(state): State<AppState>,
    who: SignedIn,
    Path((client_id, key)): Path<(String, String)>,
) -> PageResult {
    let c =
        service::check_credential(&state, &who.actor, &client_id, Action::RemovePublicKey).await?;
    if !c.public_keys.iter().any(|k| k.is_named(&key)) {
        return Err(ServiceError::not_found("public key").into());
    }
    let body = format!(
        r#"<section class="card narrow danger"><h1>Remove this public key from “{name}”?</h1>
<p>Integrations signing with the key whose thumbprint is <code>{key}</code> will no longer obtain tokens. Tokens they obtained before stay valid until they expire.</p>
<form method="post" action="/portal/credentials/{id}/public-keys/{key}/remove" class="actions">
{csrf}
<button type="submit" class="btn btn-danger">Yes, remove the key</button>
<a class="btn btn-quiet" href="/portal/credentials/{id}#public-keys">Cancel</a>
</form></section>"#,
        name = esc(&c.name),
        id = esc(c.client_id.as_str()),
        key = esc(&key),
        csrf = csrf_field(&who),
    );
    Ok(page(&who, &c.org, "Remove public key", Nav::Credentials, &body))
}

pub async fn remove_public_key(
    State(state): State<AppState>,
    Path((client_id, key)): Path<(String, String)>,
    posted: Posted,
) -> PageResult {
    let who = posted.who;
    match service::remove_public_key(&state, &who.actor, &client_id, &key).await {
        Ok(()) => {
            Ok(see_other(&format!("/portal/credentials/{client_id}?done=key-removed#public-keys")))
        }
        Err(ServiceError::Conflict(message)) => {
            render_credential(&state, &who, &client_id, vec![("public_key", message)], None, None)
                .await
        }
        Err(e) => Err(e.into()),
    }
}

pub async fn show_credential(
    State(state): State<AppState>,
    who: SignedIn,
    Path(client_id): Path<String>,
    PageQuery(q): PageQuery<super::Done>,
) -> PageResult {
    render_credential(&state, &who, &client_id, vec![], None, q.done.as_deref()).await
}

pub async fn update_credential(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted,
) -> PageResult {
    let Posted { who, fields, .. } = posted;
    let current =
        service::check_credential(&state, &who.actor, &client_id, Action::EditCredential).await?;
    let input = match edit_input(&state, &current, &fields) {
        Ok(input) => input,
        Err(errors) => {
            return render_credential(&state, &who, &client_id, errors, Some(&fields), None).await;
        }
    };
    match service::update_credential(&state, &who.actor, &client_id, input).await {
        Ok(_) => Ok(see_other(&format!("/portal/credentials/{client_id}?done=saved"))),
        Err(ServiceError::Invalid { field, message }) => {
            let field = match field.as_ref() {
                "permissions" => "permissions",
                "audiences" => "audiences",
                "token_lifetime_seconds" => "token_lifetime",
                "rate_limit_per_minute" => "rate_limit",
                "expires_in_seconds" | "never_expires" => "expiry",
                "claims" | "remove_claims" => "claims",
                _ => "name",
            };
            let error = vec![(field, message)];
            render_credential(&state, &who, &client_id, error, Some(&fields), None).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Reads the edit form into the admin API's update, with only what differs from the credential
/// as it is: an unchanged field is not sent, so it neither revokes nor asks the policy anything.
/// Every field the form or the credential's rules refuse is answered at once, each with its
/// field and a message, so that one submission shows everything to correct.
fn edit_input(
    state: &AppState,
    current: &tokenmint_core::Credential,
    fields: &super::session::Fields,
) -> Result<dto::UpdateCredential, Vec<(&'static str, String)>> {
    let mut errors: Vec<(&'static str, String)> = Vec::new();
    // An area the form did not send keeps its level.
    let current_level =
        |area: &str| current.permissions.level(area).map_or("none", AccessLevel::as_str);
    let (mut permissions, _, unreadable) = read_permissions(state, fields, &current_level);
    if let Some(message) = unreadable {
        errors.push(("permissions", message));
    }
    // The form offers the product areas only: a credential's tokenmint:* scopes (which only the
    // platform may edit) are kept as they are, not dropped because no select showed them.
    permissions.extend(
        current.permissions.to_strings().into_iter().filter(|p| p.starts_with("tokenmint:")),
    );
    let mut refused = |field: &'static str, e: ServiceError| match e {
        ServiceError::Invalid { message, .. } => errors.push((field, message)),
        other => errors.push((field, other.to_string())),
    };
    let name = fields.text("name");
    if let Err(e) = service::validate_name(&name) {
        refused("name", e);
    }
    let mut input = dto::UpdateCredential {
        name: Some(name),
        permissions: Some(permissions),
        ..Default::default()
    };
    if let Some(text) = fields.get("audiences") {
        let audiences: Vec<String> =
            text.lines().map(str::trim).filter(|a| !a.is_empty()).map(str::to_owned).collect();
        if audiences != current.audiences {
            if let Err(e) = service::validate_audiences(&audiences) {
                refused("audiences", e);
            }
            input.audiences = Some(audiences);
        }
    }
    if let Some(text) = fields.get("token_lifetime") {
        match text.trim().parse::<u32>() {
            Ok(secs) => {
                if let Err(e) = service::validate_lifetime(state, secs) {
                    refused("token_lifetime", e);
                }
                if secs != current.token_lifetime_secs {
                    input.token_lifetime_seconds = Some(secs);
                }
            }
            Err(_) => errors.push((
                "token_lifetime",
                "Enter the token lifetime as a whole number of seconds.".to_owned(),
            )),
        }
    }
    if let Some(text) = fields.get("rate_limit") {
        let wanted = match text.trim() {
            "" => Ok(None),
            t => t.parse::<u32>().map(Some),
        };
        match wanted {
            Ok(wanted) if wanted != current.rate_limit_per_minute => match wanted {
                Some(n) => input.rate_limit_per_minute = Some(n),
                None => input.clear_rate_limit = Some(true),
            },
            Ok(_) => {}
            Err(_) => errors.push((
                "rate_limit",
                "Enter the rate limit as a whole number of tokens per minute (0: no limit), or \
                 leave it empty for the server's default."
                    .to_owned(),
            )),
        }
    }
    match fields.get("expiry") {
        None | Some("keep") => {}
        Some("never") => {
            if current.expires_at.is_some() {
                input.never_expires = Some(true);
            }
        }
        Some(v) => match EXPIRATIONS.iter().find(|(value, _, _)| *value == v) {
            Some((_, _, Some(secs))) => input.expires_in_seconds = Some(*secs),
            _ => errors.push(("expiry", "Choose one of the offered expiries.".to_owned())),
        },
    }
    // Every claim field is read, not only those the form shows: whether the user may edit
    // that claim is the policy's decision (asked by the update), never the form's.
    let mut set = dto::Claims::new();
    let mut remove = Vec::new();
    let mut claim_error = None;
    for (key, text) in &fields.0 {
        let Some(name) = key.strip_prefix("claim.") else { continue };
        // ASCII spaces only: a value of NEL or a no-break space alone is a value (refused as a
        // control character, or kept), never an empty field that removes the claim.
        let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
        let now = current.claims.get(name);
        if text.is_empty() {
            if now.is_some() {
                remove.push(name.to_owned());
            }
        } else if now.map(claim_text).as_deref() != Some(text) {
            // Read as the CLI reads `--claim NAME=VALUE`: JSON when it is JSON, else the
            // text as a string; text written as JSON that does not read is refused.
            match tokenmint_core::claims::parse_value_text(name, text) {
                Ok(value) => {
                    set.insert(name.to_owned(), value);
                }
                Err(e) => {
                    claim_error.get_or_insert_with(|| format!("{e}."));
                }
            }
        }
    }
    if let Some(message) = claim_error {
        errors.push(("claims", message));
    }
    if !set.is_empty() {
        input.claims = Some(set);
    }
    if !remove.is_empty() {
        input.remove_claims = Some(remove);
    }
    if errors.is_empty() { Ok(input) } else { Err(errors) }
}

pub async fn rotate_secret(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted,
) -> PageResult {
    let Posted { who, fields, .. } = posted;
    let c = service::check_credential(&state, &who.actor, &client_id, Action::RotateSecret).await?;
    let overlap = match fields.get("overlap") {
        Some(v @ ("0" | "3600" | "86400" | "604800")) => v.parse::<u64>().ok(),
        _ => {
            return Err(PortalError::BadRequest(
                "choose how long the current secret keeps working".into(),
            ));
        }
    };
    if overlap == Some(0) && fields.get("confirm") != Some("yes") {
        return Ok(confirm_rotate_now(&who, &c.org, &client_id));
    }
    let outcome = service::rotate_secret_or_refusal(
        &state,
        &who.actor,
        &client_id,
        dto::RotateSecret { overlap_seconds: overlap },
    )
    .await;
    let refused = match outcome {
        Ok(Ok(rotated)) => Ok(rotated),
        // The store's text names the CLI's command; the portal says what to do on this page.
        Ok(Err(Refusal::TooManyLiveSecrets { live })) => Err(format!(
            "This credential already has {live} live secrets, the most it may hold. Delete one \
             it no longer needs (Delete, next to it under Secrets), or rotate with “Stop it now”, \
             which ends the others at once."
        )),
        Ok(Err(other)) => Err(sentence(&other.to_string())),
        Err(ServiceError::Conflict(why)) => Err(sentence(&why)),
        Err(e) => return Err(e.into()),
    };
    let rotated = match refused {
        Ok(rotated) => rotated,
        Err(why) => {
            // Answered with a redirect like a success, so a reload cannot send the rotation
            // again once the refusal's reason has passed.
            let message = format!("The secret was not rotated: {why}");
            let flash = Flash::Refused { client_id: client_id.clone(), message };
            super::put_flash(&state, &who.session.id_hash, &flash).await?;
            return Ok(see_other(&format!("/portal/credentials/{client_id}#refused")));
        }
    };
    let flash = Flash::Secret {
        client_id: client_id.clone(),
        secret: rotated.client_secret,
        rotated: true,
    };
    super::put_flash(&state, &who.session.id_hash, &flash).await?;
    Ok(see_other(&format!("/portal/credentials/{client_id}")))
}

/// Whether `secret` is the credential's current one: the one no rotation has given an end.
fn is_current_secret(secret: &tokenmint_core::StoredSecret) -> bool {
    secret.expires_at.is_none()
}

/// The credential's secret `secret_id` that the portal may delete: an old one, which a
/// rotation gave an end. The current secret is refused with what to do instead.
fn old_secret<'c>(
    c: &'c tokenmint_core::Credential,
    secret_id: &str,
) -> Result<&'c tokenmint_core::StoredSecret, PortalError> {
    let secret = c
        .secrets
        .iter()
        .find(|s| s.id == secret_id)
        .ok_or_else(|| ServiceError::not_found("secret"))?;
    if is_current_secret(secret) {
        return Err(ServiceError::Conflict(
            "This is the credential's current secret: rotate it to replace it, or deactivate the \
             credential to stop it obtaining tokens."
                .to_owned(),
        )
        .into());
    }
    Ok(secret)
}

/// Deleting an old secret ends it at once, before the end its rotation gave it: asked first.
pub async fn confirm_delete_secret(
    State(state): State<AppState>,
    who: SignedIn,
    Path((client_id, secret_id)): Path<(String, String)>,
) -> PageResult {
    let c = service::check_credential(&state, &who.actor, &client_id, Action::DeleteSecret).await?;
    let secret = old_secret(&c, &secret_id)?;
    let now = state.now();
    let ends = match secret.expires_at {
        Some(t) if t > now => format!(
            " Integrations still using it stop obtaining tokens now instead of {}.",
            when(t)
        ),
        _ => " It has already stopped working.".to_owned(),
    };
    let body = format!(
        r#"<section class="card narrow danger"><h1>Delete the secret <code>{hint}</code> of “{name}”?</h1>
<p>The secret created {created} is deleted.{ends} The current secret keeps working.</p>
<form method="post" action="/portal/credentials/{id}/secrets/{sid}/delete" class="actions">
{csrf}
<button type="submit" class="btn btn-danger">Yes, delete the secret</button>
<a class="btn btn-quiet" href="/portal/credentials/{id}#secrets">Cancel</a>
</form></section>"#,
        hint = esc(&secret.hint),
        name = esc(&c.name),
        created = when(secret.created_at),
        ends = esc(&ends),
        id = esc(c.client_id.as_str()),
        sid = esc(&secret.id),
        csrf = csrf_field(&who),
    );
    Ok(page(&who, &c.org, "Delete secret", Nav::Credentials, &body))
}

pub async fn delete_secret(
    State(state): State<AppState>,
    Path((client_id, secret_id)): Path<(String, String)>,
    posted: Posted,
) -> PageResult {
    let who = posted.who;
    let c = service::check_credential(&state, &who.actor, &client_id, Action::DeleteSecret).await?;
    old_secret(&c, &secret_id)?;
    service::delete_secret(&state, &who.actor, &client_id, &secret_id).await?;
    Ok(see_other(&format!("/portal/credentials/{client_id}?done=secret-deleted#secrets")))
}

/// The service's lower-case reason as a sentence; the CLI's command names it gives are kept.
fn sentence(reason: &str) -> String {
    let mut chars = reason.chars();
    let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
    out.push_str(chars.as_str());
    if !out.ends_with('.') {
        out.push('.');
    }
    out
}

/// Ending the current secret at once breaks every integration still using it: asked first.
fn confirm_rotate_now(who: &SignedIn, org: &str, client_id: &str) -> Response {
    let body = format!(
        r#"<section class="card narrow danger"><h1>Stop the current secret now?</h1>
<p>A new secret is generated and shown once, and the current secret stops working at once: integrations still using it fail to obtain tokens until they have the new one.</p>
<form method="post" action="/portal/credentials/{id}/rotate" class="actions">
{csrf}
<input type="hidden" name="overlap" value="0">
<input type="hidden" name="confirm" value="yes">
<button type="submit" class="btn btn-danger">Yes, rotate and stop it now</button>
<a class="btn btn-quiet" href="/portal/credentials/{id}">Cancel</a>
</form></section>"#,
        id = esc(client_id),
        csrf = csrf_field(who),
    );
    page(who, org, "Rotate secret", Nav::Credentials, &body)
}

pub async fn confirm_deactivate(
    State(state): State<AppState>,
    who: SignedIn,
    Path(client_id): Path<String>,
) -> PageResult {
    let c = service::check_credential(&state, &who.actor, &client_id, Action::DeactivateCredential)
        .await?;
    let body = format!(
        r#"<section class="card narrow danger"><h1>Deactivate “{name}”?</h1>
<p>Integrations using Client ID <code>{id}</code> will no longer obtain tokens, and the tokens they hold stop working. You can reactivate the credential later.</p>
<form method="post" action="/portal/credentials/{id}/deactivate" class="actions">
{csrf}
<button type="submit" class="btn btn-danger">Yes, deactivate</button>
<a class="btn btn-quiet" href="/portal/credentials/{id}">Cancel</a>
</form></section>"#,
        name = esc(&c.name),
        id = esc(c.client_id.as_str()),
        csrf = csrf_field(&who),
    );
    Ok(page(&who, &c.org, "Deactivate credential", Nav::Credentials, &body))
}

pub async fn deactivate_credential(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted,
) -> PageResult {
    service::set_status(&state, &posted.who.actor, &client_id, CredentialStatus::Deactivated)
        .await?;
    Ok(see_other(&format!("/portal/credentials/{client_id}?done=credential-deactivated")))
}

pub async fn activate_credential(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    posted: Posted,
) -> PageResult {
    service::set_status(&state, &posted.who.actor, &client_id, CredentialStatus::Active).await?;
    Ok(see_other(&format!("/portal/credentials/{client_id}?done=credential-activated")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_expiration_choice_has_a_label_and_never_has_no_duration() {
        assert!(
            EXPIRATIONS
                .iter()
                .any(|(v, l, s)| *v == "never" && *l == "Never expire" && s.is_none())
        );
        assert!(EXPIRATIONS.iter().filter(|(v, _, _)| *v != "never").all(|(_, _, s)| s.is_some()));
    }

    #[test]
    fn access_levels_read_as_people_say_them() {
        assert_eq!(level_label(None), "No access");
        assert_eq!(level_label(Some(AccessLevel::Write)), "Read & write");
    }
}
