//! HTML building blocks: escaping, the page layout and small components.
//!
//! Plain `format!` rendering instead of a template engine: the portal has a handful of pages,
//! and a few helpers keep it readable without another compile-time dependency. The one rule
//! that keeps it safe: every value that did not come from this file goes through [`Esc`]
//! (or [`esc`]), which escapes the five HTML-significant characters, so it is inert in text and
//! in double-quoted attributes alike.

use std::fmt::{self, Write};
use time::OffsetDateTime;
use time::macros::format_description;
use tokenmint_core::UnixTime;

/// Escapes its text for HTML text and double-quoted attribute values.
#[derive(Debug, Clone, Copy)]
pub struct Esc<'a>(pub &'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut last = 0;
        for (i, c) in self.0.char_indices() {
            let rep = match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => continue,
            };
            f.write_str(&self.0[last..i])?;
            f.write_str(rep)?;
            last = i + c.len_utf8();
        }
        f.write_str(&self.0[last..])
    }
}

pub fn esc(s: &str) -> String {
    Esc(s).to_string()
}

/// `2026-11-22 17:05 UTC`.
pub fn when(t: UnixTime) -> String {
    let fmt = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| d.format(&fmt).ok())
        .unwrap_or_else(|| t.to_string())
}

pub fn when_or(t: Option<UnixTime>, none: &str) -> String {
    t.map_or_else(|| none.to_owned(), when)
}

/// An instant for a table cell, as HTML: the day never broken, the time beside it or under it
/// when the column is narrow, so that a long name in the same row cannot squeeze a date into
/// three lines. `none` when there is no instant.
pub fn when_cell(t: Option<UnixTime>, none: &str) -> String {
    match t.map(when) {
        Some(text) => match text.split_once(' ') {
            // One element: a phone's card row (a flex box) keeps day and time together.
            Some((day, time)) => {
                format!(r#"<span><span class="nowrap">{day}</span> {}</span>"#, esc(time))
            }
            None => esc(&text),
        },
        None => esc(none),
    }
}

/// An email address as HTML that a narrow heading breaks before its `@` or after a dot, never
/// in the middle of a name (unless a single name is wider than the page).
pub fn email_html(email: &str) -> String {
    let mut out = String::with_capacity(email.len() + 16);
    for c in email.chars() {
        match c {
            '@' => out.push_str("<wbr>@"),
            '.' => out.push_str(".<wbr>"),
            c => out.push_str(&esc(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

/// Who is looking at the page, for the header and the navigation.
#[derive(Debug, Clone, Copy)]
pub struct Viewer<'a> {
    pub email: &'a str,
    /// The organization the page works in: the user's own, or the one a platform user chose
    /// in the organization picker. The header names it, and the navigation stays in it.
    pub org: &'a str,
    /// `?org=SLUG` when [`Self::org`] is not the user's own (empty otherwise), added to the
    /// navigation's links so that they stay in the organization being looked at.
    pub org_query: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
}

/// Which navigation entry is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Credentials,
    Users,
    Audit,
    Account,
    None,
}

/// A whole page. `body` is trusted HTML built by this module's callers.
pub fn layout(title: &str, viewer: Option<Viewer<'_>>, nav: Nav, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · tokenmint</title>
<link rel="icon" href="/portal/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/portal/static/portal.css">
<script src="/portal/static/portal.js" defer></script>
</head>
<body>
"#,
        title = Esc(title)
    );
    match viewer {
        Some(v) => {
            let item = |n: Nav, href: &str, label: &str| {
                let current = if n == nav { r#" aria-current="page""# } else { "" };
                // Your account is the user's own, in no organization but theirs.
                let query = if n == Nav::Account { "" } else { v.org_query };
                format!(
                    r#"<li><a href="{href}{query}"{current}>{label}</a></li>"#,
                    query = Esc(query)
                )
            };
            let _ = write!(
                out,
                r##"<a class="skip" href="#main">Skip to content</a>
<header class="topbar">
  <a class="brand" href="/portal/"><span class="logo" aria-hidden="true">◆</span> tokenmint</a>
  <div class="who">
    <span class="org">{org}</span>
    <span class="email">{email}</span>
    <span class="badge">{role}</span>
    <form method="post" action="/portal/sign-out" class="inline">
      <input type="hidden" name="csrf" value="{csrf}">
      <button type="submit" class="btn btn-quiet">Sign out</button>
    </form>
  </div>
</header>
<div class="shell">
<nav class="sidenav" aria-label="Settings">
  <p class="navhead">Settings</p>
  <ul>
    {c}
    {u}
    {a}
    {me}
  </ul>
</nav>
<main id="main" class="content">
{body}
</main>
</div>
"##,
                org = Esc(v.org),
                email = Esc(v.email),
                role = Esc(v.role),
                csrf = Esc(v.csrf),
                c = item(Nav::Credentials, "/portal/credentials", "API OAuth credentials"),
                u = item(Nav::Users, "/portal/users", "Users"),
                a = item(Nav::Audit, "/portal/audit", "Audit log"),
                me = item(Nav::Account, "/portal/account", "Your account"),
            );
        }
        None => {
            let _ = write!(
                out,
                r#"<main id="main" class="centered">
{body}
</main>
"#
            );
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The success messages a page shows after a form, named by a fixed id that the form's
/// redirect puts in the `done` query parameter. Only these texts can appear (nothing of the
/// URL reaches the page), and nothing is kept between the two requests, so the message shows
/// whichever instance serves the page. A new secret's message is not here: it comes with the
/// secret, in the one-time flash (see [`super::Flash`]), so that a reload shows neither.
pub const NOTICES: &[(&str, &str)] = &[
    ("saved", "Changes saved."),
    ("secret-deleted", "Secret deleted: it no longer obtains tokens."),
    (
        "credential-deactivated",
        "Credential deactivated: it obtains no more tokens, and its tokens stop working.",
    ),
    ("credential-activated", "Credential reactivated: it can obtain tokens again."),
    ("key-added", "Public key registered: assertions signed with its private key are accepted."),
    (
        "key-removed",
        "Public key removed: assertions signed with it are refused. Tokens obtained with it before \
         stay valid until they expire.",
    ),
    ("user-added", "User added."),
    ("user-deactivated", "User deactivated: their sessions have ended."),
    (
        "user-reactivated",
        "User reactivated: they sign in with their previous password, or reset it.",
    ),
    ("role-changed", "Role changed."),
    ("password-changed", "Your password was changed. Your other sessions were signed out."),
    ("password-set", "Your new password is set. Sign in with it."),
    ("signed-out", "You are signed out."),
];

/// The success message named by `done`, or nothing for no or an unknown id.
pub fn notice(done: Option<&str>) -> String {
    match done.and_then(|d| NOTICES.iter().find(|(id, _)| *id == d)) {
        Some((_, text)) => {
            format!(r#"<div class="alert alert-ok" role="status" id="notice">{}</div>"#, esc(text))
        }
        None => String::new(),
    }
}

/// The error message under a field, or nothing.
pub fn field_error(id: &str, message: Option<&str>) -> String {
    match message {
        Some(m) => {
            format!(r#"<p class="field-error" id="{}-error" role="alert">{}</p>"#, esc(id), esc(m))
        }
        None => String::new(),
    }
}

/// `aria-invalid` and `aria-describedby` for a field with an error.
pub fn invalid_attrs(id: &str, message: Option<&str>) -> String {
    match message {
        Some(_) => format!(r#" aria-invalid="true" aria-describedby="{}-error""#, esc(id)),
        None => String::new(),
    }
}

/// A value with a copy button; `id` names the element the button copies.
pub fn copyable(id: &str, value: &str, label: &str) -> String {
    format!(
        r#"<div class="copyable"><code id="{id}">{value}</code><button type="button" class="btn btn-small" data-copy="{id}" aria-label="Copy {label}">Copy</button></div>"#,
        id = esc(id),
        value = esc(value),
        label = esc(label),
    )
}

/// Tokens per day as a small bar chart, drawn as inline SVG (no script, no external image).
/// The first and last days are labelled in HTML under the drawing, not as SVG text: the
/// drawing scales with its width (to about half on a 390 px phone), and its text would shrink
/// with it below reading size, while HTML text keeps the page's font size.
pub fn bar_chart(days: &[(String, i64)]) -> String {
    let width = 560.0_f64;
    let height = 120.0_f64;
    let n = days.len().max(1) as f64;
    let max = days.iter().map(|(_, c)| *c).max().unwrap_or(0).max(1) as f64;
    let slot = width / n;
    let bar = (slot * 0.7).max(2.0);
    let total: i64 = days.iter().map(|(_, c)| *c).sum();
    let mut out = format!(
        r#"<div class="chart-box"><svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="chart-title"><title id="chart-title">Tokens issued per day: {total} in the last {n} days</title>"#,
        n = days.len(),
    );
    for (i, (day, count)) in days.iter().enumerate() {
        let h = if *count > 0 { ((*count as f64) / max * height).max(2.0) } else { 1.0 };
        let x = i as f64 * slot + (slot - bar) / 2.0;
        let y = height - h;
        let class = if *count > 0 { "bar" } else { "bar empty" };
        let _ = write!(
            out,
            r#"<rect class="{class}" x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{h:.1}" rx="2"><title>{day}: {count} tokens</title></rect>"#,
            day = esc(day),
        );
    }
    out.push_str("</svg>");
    if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
        let _ = write!(
            out,
            r#"<p class="chart-axis"><span>{first}</span><span>{last}</span></p>"#,
            first = esc(first),
            last = esc(last),
        );
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_makes_markup_and_attribute_breakouts_inert() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
        );
        assert_eq!(esc("a & b's"), "a &amp; b&#39;s");
        assert_eq!(esc("plain é"), "plain é");
    }

    #[test]
    fn an_email_breaks_only_at_its_at_sign_and_dots_and_stays_escaped() {
        assert_eq!(email_html("a.b@acme.test"), "a.<wbr>b<wbr>@acme.<wbr>test");
        assert_eq!(email_html("<x>@y"), "&lt;x&gt;<wbr>@y");
    }

    #[test]
    fn a_dates_day_is_never_broken() {
        assert_eq!(
            when_cell(Some(1_700_000_000), "Never"),
            r#"<span><span class="nowrap">2023-11-14</span> 22:13 UTC</span>"#
        );
        assert_eq!(when_cell(None, "Never"), "Never");
    }

    #[test]
    fn only_known_notices_are_shown_and_nothing_of_the_url() {
        assert!(notice(Some("saved")).contains("Changes saved."));
        assert_eq!(notice(Some("<script>")), "");
        assert_eq!(notice(None), "");
    }

    #[test]
    fn the_chart_has_one_bar_per_day_and_a_text_alternative() {
        let svg = bar_chart(&[("2026-11-01".into(), 0), ("2026-11-02".into(), 7)]);
        assert_eq!(svg.matches("<rect").count(), 2);
        assert!(svg.contains("7 in the last 2 days"));
        assert!(!svg.contains("<text"), "labels in HTML, at the page's font size");
        assert!(svg.contains("<span>2026-11-01</span><span>2026-11-02</span>"));
        assert!(!svg.contains("style="), "inline styles would break the CSP");
    }
}
