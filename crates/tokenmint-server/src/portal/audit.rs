//! The audit page: the organization's security events, newest first, filtered by event kind,
//! credential, actor and date range in the store's query, in pages of [`PAGE`] with a stable
//! cursor (the last event's sequence number), so every record can be reached however many
//! arrive, and the newest are always on the first page.
//!
//! Events are shown in words: kinds and refusal reasons by their names, actors by the
//! credential's name or the user's email. The filter form is a plain GET form (no script).

use super::PortalError;
use super::html::{self, Esc, Nav, esc};
use super::pages::{authorize, page};
use super::session::PageQuery;
use super::session::SignedIn;
use crate::service::{self, Action, Target};
use crate::state::AppState;
use axum::extract::State;
use axum::response::Response;
use std::collections::HashMap;
use std::fmt::Write;
use time::macros::format_description;
use tokenmint_store::AuditFilter;

/// Events per page.
pub const PAGE: u32 = 50;

/// Every event kind the trail records, with its name on the page.
pub const KINDS: &[(&str, &str)] = &[
    ("credential.created", "Credential generated"),
    ("credential.updated", "Credential edited"),
    ("credential.deactivated", "Credential deactivated"),
    ("credential.activated", "Credential reactivated"),
    ("credential.secret_rotated", "Secret rotated"),
    ("credential.secret_deleted", "Secret deleted"),
    ("credential.tokens_revoked", "Tokens revoked"),
    ("token.refused", "Token request refused"),
    ("token.revoked", "Token revoked"),
    ("portal.sign_in", "Signed in"),
    ("portal.sign_in_failed", "Sign-in failed"),
    ("portal.sign_out", "Signed out"),
    ("user.created", "User added"),
    ("user.deactivated", "User deactivated"),
    ("user.reactivated", "User reactivated"),
    ("user.role_changed", "User's role changed"),
    ("user.password_reset", "Password reset code issued"),
    ("user.password_changed", "Password changed"),
    ("organization.created", "Organization created"),
    ("organization.updated", "Organization updated"),
    ("key.rotated", "Signing key rotated"),
    ("key.withdrawn", "Signing key withdrawn"),
    ("source.blocked", "Source blocked"),
    ("alert.fired", "Alert raised"),
];

/// Why requests were refused, in words.
const REASONS: &[(&str, &str)] = &[
    ("wrong_secret", "Wrong secret"),
    ("bad_current_password", "Wrong current password"),
    ("hook_denied", "Refused by the token hook"),
    ("hook_unavailable", "Token hook unavailable"),
    ("hook_malformed", "Token hook answer unusable"),
    ("unknown_client", "Unknown client ID"),
    ("deactivated", "Credential deactivated"),
    ("credential_expired", "Credential expired"),
    ("secret_expired", "Secret expired"),
    ("missing_credentials", "No client credentials sent"),
    ("too_many_failures", "Too many failed attempts"),
    ("too_many_portal_sign_in_failures", "Too many failed sign-ins"),
    ("bad_credentials", "Wrong email or password"),
    ("throttled", "Sign-in paused after failures"),
    ("rate_limited", "Rate limit exceeded"),
    ("invalid_scope", "Scope not granted"),
    ("invalid_target", "Audience not granted"),
    ("invalid_request", "Malformed request"),
    ("unsupported_grant_type", "Unsupported grant type"),
    ("server_error", "Server error"),
];

pub fn kind_label(kind: &str) -> String {
    KINDS.iter().find(|(k, _)| *k == kind).map_or_else(|| words(kind), |(_, l)| (*l).to_owned())
}

pub fn reason_label(reason: &str) -> String {
    REASONS
        .iter()
        .find(|(r, _)| *r == reason)
        .map_or_else(|| words(reason), |(_, l)| (*l).to_owned())
}

/// A code nobody named yet, as words: `dpop_proof_invalid` → `Dpop proof invalid`.
fn words(code: &str) -> String {
    let text = code.replace(['_', '.'], " ");
    let mut c = text.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The page's query: the filters and the cursor.
#[derive(Debug, Default, serde::Deserialize)]
pub struct AuditQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    client: String,
    #[serde(default)]
    actor: String,
    /// `YYYY-MM-DD`, from the start of that day (UTC).
    #[serde(default)]
    from: String,
    /// `YYYY-MM-DD`, to the end of that day (UTC).
    #[serde(default)]
    to: String,
    /// Events before this sequence number (the next page), as the page's link wrote it: read
    /// by the page, so that a damaged link is told on a page of the portal.
    #[serde(default)]
    before: String,
    /// The organization chosen in the picker (see [`super::pages::working_org`]).
    #[serde(default)]
    org: String,
}

fn day_start(s: &str) -> Result<Option<i64>, PortalError> {
    if s.is_empty() {
        return Ok(None);
    }
    time::Date::parse(s, format_description!("[year]-[month]-[day]"))
        .map(|d| Some(d.midnight().assume_utc().unix_timestamp()))
        .map_err(|_| {
            PortalError::BadRequest(format!("the date '{s}' is not a date like 2026-11-30"))
        })
}

fn query_string(q: &AuditQuery, before: Option<i64>) -> String {
    let before = before.map(|b| b.to_string()).unwrap_or_default();
    [
        ("org", q.org.trim()),
        ("kind", q.kind.as_str()),
        ("client", &q.client),
        ("actor", &q.actor),
        ("from", &q.from),
        ("to", &q.to),
        ("before", &before),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", super::accounts::urlencoding(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// Sorts a filter's options as people look for them: by the text shown, ignoring case (then
/// by value, so that two equal names keep one order).
fn human_order(options: &mut [(String, String)]) {
    options.sort_by_cached_key(|(value, text)| (text.to_lowercase(), value.clone()));
}

fn select(id: &str, label: &str, any: &str, current: &str, options: &[(String, String)]) -> String {
    let mut out = format!(
        r#"<div class="field"><label for="{id}">{label}</label><select id="{id}" name="{id}"><option value="">{any}</option>"#
    );
    for (value, text) in options {
        let sel = if value == current { " selected" } else { "" };
        let _ = write!(out, r#"<option value="{}"{sel}>{}</option>"#, Esc(value), Esc(text));
    }
    out.push_str("</select></div>");
    out
}

pub async fn audit_log(
    State(state): State<AppState>,
    who: SignedIn,
    PageQuery(q): PageQuery<AuditQuery>,
) -> Result<Response, PortalError> {
    let org = super::pages::working_org(&state, &who, &q.org).await?;
    authorize(&who, Action::ReadAudit, &Target::Org(&org))?;
    let since = day_start(&q.from)?;
    let until = day_start(&q.to)?.map(|t| t + 86_399);
    if let (Some(from), Some(to)) = (since, until)
        && from > to
    {
        return Err(PortalError::BadRequest(format!(
            "From ({}) is after To ({}): swap the two dates",
            q.from, q.to
        )));
    }
    let before = match q.before.trim() {
        "" => None,
        b => Some(b.parse::<i64>().map_err(|_| {
            PortalError::BadRequest(
                "the page link is damaged: start again from the newest events".into(),
            )
        })?),
    };
    // A kind the list does not offer matches nothing: said, rather than "No events match".
    if !q.kind.is_empty() && crate::audit::AuditKind::named(&q.kind).is_none() {
        return Err(PortalError::BadRequest(format!(
            "there is no event kind '{}': choose one from the Event list",
            q.kind.chars().filter(|c| !c.is_control()).take(64).collect::<String>()
        )));
    }
    // Names for the organization's credentials and users, for the filters and the table.
    let credentials =
        service::list_credentials(&state, &who.actor, Some(org.clone()), None, Some(500)).await?;
    let users = crate::users::list_users(&state, &who.actor, Some(org.clone())).await?;
    let names: HashMap<String, String> =
        credentials.items.iter().map(|c| (c.client_id.clone(), c.name.clone())).collect();
    // Who did it, as HTML: a client ID in a `code.id` that never breaks inside.
    let actor_cell = |actor: &str| -> String {
        match actor.split_once(':') {
            // Named with its id: two credentials may share a name.
            Some(("credential", id)) => match names.get(id) {
                Some(name) => {
                    format!(r#"<span>{} <code class="id">{}</code></span>"#, esc(name), esc(id))
                }
                None => format!(r#"<span>Credential <code class="id">{}</code></span>"#, esc(id)),
            },
            Some(("user", email)) => esc(email),
            _ if actor == "system" => "tokenmint".to_owned(),
            _ => esc(actor),
        }
    };

    let mut records = state
        .store
        .list_audit(&AuditFilter {
            org: Some(org.clone()),
            kind: Some(q.kind.clone()).filter(|k| !k.is_empty()),
            client_id: Some(q.client.clone()).filter(|c| !c.is_empty()),
            actor: Some(q.actor.clone()).filter(|a| !a.is_empty()),
            since,
            until,
            before,
            newest_first: true,
            limit: PAGE + 1,
            ..Default::default()
        })
        .await?;
    let older = if records.len() > PAGE as usize {
        records.truncate(PAGE as usize);
        records.last().map(|r| r.seq)
    } else {
        None
    };

    let kinds: Vec<(String, String)> =
        KINDS.iter().map(|(k, l)| ((*k).to_owned(), (*l).to_owned())).collect();
    let mut creds: Vec<(String, String)> = credentials
        .items
        .iter()
        .map(|c| (c.client_id.clone(), format!("{} ({})", c.name, c.client_id)))
        .collect();
    human_order(&mut creds);
    let mut actors: Vec<(String, String)> =
        users.iter().map(|u| (format!("user:{}", u.email), u.email.clone())).collect();
    actors.extend(credentials.items.iter().map(|c| {
        let label = format!("{} ({}, credential)", c.name, c.client_id);
        (format!("credential:{}", c.client_id), label)
    }));
    human_order(&mut actors);

    let mut body = format!(
        r#"<div class="page-head"><div><h1>Audit log</h1><p class="muted">Security events of {whose}, newest first.</p></div></div>"#,
        whose = super::pages::whose(&who, &org),
    );
    body.push_str(&super::pages::org_picker(&state, &who, &org, "/portal/audit").await?);
    let _ = write!(
        body,
        r#"<form method="get" action="/portal/audit" class="card filters" role="search" aria-label="Filter events">
{org_field}<div class="filter-grid">{kind}{cred}{actor}
<div class="field"><label for="from">From</label><input id="from" name="from" type="date" value="{from}"></div>
<div class="field"><label for="to">To</label><input id="to" name="to" type="date" value="{to}"></div></div>
<div class="actions"><button type="submit" class="btn btn-primary">Filter</button><a class="btn btn-quiet" href="/portal/audit{clear}">Clear</a></div>
</form>"#,
        org_field = super::pages::org_field(&who, &org),
        clear = esc(&super::pages::org_query(&who, &org)),
        kind = select("kind", "Event", "All events", &q.kind, &kinds),
        cred = select("client", "Credential", "All credentials", &q.client, &creds),
        actor = select("actor", "By", "Anyone", &q.actor, &actors),
        from = esc(&q.from),
        to = esc(&q.to),
    );
    if records.is_empty() {
        body.push_str(r#"<section class="card"><p class="muted">No events match.</p></section>"#);
    } else {
        body.push_str(r#"<div class="card table-card"><table class="table responsive audit"><thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">By</th><th scope="col">About</th><th scope="col">Source IP</th><th scope="col">Reason</th></tr></thead><tbody>"#);
        for r in &records {
            let client = r.client_id.as_deref().map(|c| match names.get(c) {
                Some(name) => {
                    format!(r#"<span>{} <code class="id">{}</code></span>"#, esc(name), esc(c))
                }
                None => format!(r#"<code class="id">{}</code>"#, esc(c)),
            });
            // Without a credential, the user the event is about (a user's lifecycle, a
            // failed sign-in), as its record names them.
            let about = client.or_else(|| {
                r.details.get("email").and_then(serde_json::Value::as_str).map(|email| {
                    format!(r#"<span><span class="nowrap">{}</span> (user)</span>"#, esc(email))
                })
            });
            let _ = write!(
                body,
                r#"<tr><td data-label="When">{at}</td><td data-label="Event">{kind}</td><td data-label="By">{actor}</td><td data-label="About">{about}</td><td data-label="Source IP" class="ip">{ip}</td><td data-label="Reason" class="reason">{reason}</td></tr>"#,
                // The date stays whole; the time goes under it when the column is narrow.
                at = html::when_cell(Some(r.at), ""),
                kind = esc(&kind_label(&r.kind)),
                actor = r.actor.as_deref().map(actor_cell).unwrap_or_default(),
                about = about.unwrap_or_default(),
                ip = esc(r.source_ip.as_deref().unwrap_or("")),
                reason = esc(&r.reason.as_deref().map(reason_label).unwrap_or_default()),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    let mut nav = String::new();
    if before.is_some() {
        let _ = write!(
            nav,
            r#"<a class="btn" href="/portal/audit?{}">Newest events</a>"#,
            esc(&query_string(&q, None))
        );
    }
    if let Some(seq) = older {
        let _ = write!(
            nav,
            r#"<a class="btn" rel="next" href="/portal/audit?{}">Older events</a>"#,
            esc(&query_string(&q, Some(seq)))
        );
    }
    if !nav.is_empty() {
        let _ = write!(body, r#"<nav class="actions pager" aria-label="Pages">{nav}</nav>"#);
    }
    Ok(page(&who, &org, "Audit log", Nav::Audit, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_read_as_words() {
        assert_eq!(kind_label("organization.created"), "Organization created");
        assert_eq!(kind_label("organization.updated"), "Organization updated");
        assert_eq!(reason_label("wrong_secret"), "Wrong secret");
        assert_eq!(reason_label("dpop_proof_invalid"), "Dpop proof invalid");
        assert_eq!(kind_label("some.new_kind"), "Some new kind");
    }

    #[test]
    fn filter_options_are_in_the_order_of_their_names_whatever_the_case() {
        let mut options: Vec<(String, String)> = [
            ("user:zoe@acme.test", "zoe@acme.test"),
            ("credential:tmc_b", "billing sync (credential)"),
            ("user:Adam@acme.test", "Adam@acme.test"),
            ("credential:tmc_a", "Payroll (credential)"),
        ]
        .iter()
        .map(|(v, t)| ((*v).to_owned(), (*t).to_owned()))
        .collect();
        human_order(&mut options);
        let shown: Vec<&str> = options.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            shown,
            [
                "Adam@acme.test",
                "billing sync (credential)",
                "Payroll (credential)",
                "zoe@acme.test"
            ]
        );
    }

    #[test]
    fn the_page_names_every_kind_the_trail_records_and_no_other() {
        let mut listed: Vec<&str> = KINDS.iter().map(|(k, _)| *k).collect();
        let mut recorded: Vec<&str> =
            crate::audit::AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        listed.sort_unstable();
        recorded.sort_unstable();
        assert_eq!(listed, recorded);
    }

    #[test]
    fn dates_are_checked_and_the_cursor_keeps_the_filters() {
        assert_eq!(day_start("1970-01-02").unwrap(), Some(86_400));
        assert!(day_start("yesterday").is_err());
        let q = AuditQuery { kind: "token.refused".into(), ..Default::default() };
        assert_eq!(query_string(&q, Some(7)), "kind=token.refused&before=7");
    }
}
