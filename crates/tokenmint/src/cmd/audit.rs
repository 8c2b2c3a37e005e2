//! `tokenmint audit export`: the audit trail as JSON Lines, for a SIEM or an archive.

use crate::admin_client::{AdminArgs, AdminClient, segment};
use crate::exit::{self, Failure};
use anyhow::{Result, anyhow};
use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print audit events as JSON Lines (one event per line, oldest first).
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Only this organization's events.
    #[arg(long)]
    org: Option<String>,
    /// Only events about this credential.
    #[arg(long)]
    client_id: Option<String>,
    /// Only events of this kind (e.g. token.refused, credential.created).
    #[arg(long)]
    kind: Option<String>,
    /// Events since this long ago (e.g. 24h) or since an RFC 3339 instant.
    #[arg(long, value_name = "DURATION|INSTANT")]
    since: Option<String>,
    /// Events until this RFC 3339 instant.
    #[arg(long, value_name = "INSTANT")]
    until: Option<String>,
}

fn instant(flag: &str, value: &str) -> Result<String> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(value, &Rfc3339) {
        return Ok(t.format(&Rfc3339)?);
    }
    let ago = humantime::parse_duration(value)
        .map_err(|_| anyhow!("--{flag} '{value}': give a duration like 24h or an RFC 3339 instant like 2026-11-01T00:00:00Z"))?;
    Ok(ago_from(flag, value, ago, time::OffsetDateTime::now_utc())?.format(&Rfc3339)?)
}

/// The instant `ago` before `now`. One before the year 1 (which RFC 3339 cannot write, and the
/// date type cannot hold far enough back) is a usage error naming the longest duration taken.
fn ago_from(
    flag: &str,
    value: &str,
    ago: std::time::Duration,
    now: time::OffsetDateTime,
) -> Result<time::OffsetDateTime, Failure> {
    let earliest = time::macros::datetime!(0001-01-01 0:00 UTC);
    time::Duration::try_from(ago)
        .ok()
        .and_then(|d| now.checked_sub(d))
        .filter(|t| *t >= earliest)
        .ok_or_else(|| {
            Failure::new(
                exit::USAGE,
                format!(
                    "--{flag} {value} reaches back before the year 1; give at most {}d, or an RFC 3339 instant",
                    (now - earliest).whole_days()
                ),
            )
            .hint(format!("--{flag} 36500d reaches back 100 years"))
        })
}

pub async fn run(cmd: AuditCommand) -> Result<ExitCode> {
    let AuditCommand::Export(a) = cmd;
    // The times first: a usage error is told before any credential or server is needed.
    let since = a.since.as_deref().map(|s| instant("since", s)).transpose()?;
    let until = a.until.as_deref().map(|u| instant("until", u)).transpose()?;
    let client = AdminClient::connect(&a.admin).await?;
    // A misspelt organization would export nothing, read as "nothing happened": named instead.
    if let Some(org) = &a.org {
        super::credentials::organization_exists(&client, org).await?;
    }
    // The largest page the server serves: it refuses a larger one.
    let mut query = format!("limit={}", tokenmint_proto::limits::AUDIT_PAGE.max);
    for (key, value) in
        [("org", a.org.clone()), ("client_id", a.client_id.clone()), ("kind", a.kind.clone())]
    {
        if let Some(v) = value {
            query.push_str(&format!("&{key}={}", segment(&v)));
        }
    }
    if let Some(s) = &since {
        query.push_str(&format!("&since={}", segment(s)));
    }
    if let Some(u) = &until {
        query.push_str(&format!("&until={}", segment(u)));
    }
    let mut out = std::io::stdout().lock();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/audit?{query}&cursor={}", segment(c)),
            None => format!("/audit?{query}"),
        };
        let page: dto::Page<dto::AuditEvent> = client.get(&path).await?;
        for event in &page.items {
            // One event a line, whatever its text holds: the characters a line-oriented
            // reader takes for a line break (U+2028, U+0085) are written as JSON escapes.
            let line = serde_json::to_string(event)?;
            writeln!(out, "{}", tokenmint_core::ids::escape_unsafe_in_json(&line))?;
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duration_reaching_before_the_year_1_is_a_usage_error() {
        let now = time::macros::datetime!(2026-12-08 0:00 UTC);
        let day = std::time::Duration::from_secs(86_400);
        let most = (now - time::macros::datetime!(0001-01-01 0:00 UTC)).whole_days();
        let most = u32::try_from(most).unwrap();
        assert_eq!(ago_from("since", "x", day * most, now).unwrap().year(), 1);
        for ago in [day * (most + 1), day * 99_999_999, std::time::Duration::MAX] {
            let e = ago_from("since", "x", ago, now).unwrap_err();
            assert_eq!(e.code, exit::USAGE);
            assert!(e.message.contains(&format!("give at most {most}d")), "{}", e.message);
        }
    }
}
