//! Many credentials through the admin API, for the memory figures: created the way an admin
//! creates them (so every row, audit record and index is real), then each used once so that the
//! server's credential cache holds them all.

use crate::{fetch_token, http_client};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use futures_util::stream;
use std::io::Write;
use std::path::Path;
use std::time::Instant;
use tokenmint_proto::Environment;
use tokenmint_proto::admin::{CreateCredential, CreatedCredential};

pub async fn create(
    endpoint: &str,
    admin_credentials: &Path,
    count: usize,
    concurrency: usize,
    out: &Path,
) -> Result<()> {
    let admin: serde_json::Value = serde_json::from_slice(
        &std::fs::read(admin_credentials)
            .with_context(|| format!("reading {}", admin_credentials.display()))?,
    )?;
    let (Some(id), Some(secret)) = (admin["client_id"].as_str(), admin["client_secret"].as_str())
    else {
        bail!("{} holds no client_id and client_secret", admin_credentials.display());
    };
    let http = http_client()?;
    let token = fetch_token(&http, &format!("{endpoint}/oauth/token"), id, secret).await?;
    let url = format!("{endpoint}/admin/v1/credentials");
    let start = Instant::now();
    let created: Vec<Result<CreatedCredential>> = stream::iter(0..count)
        .map(|i| {
            let http = http.clone();
            let (url, token) = (&url, &token);
            async move {
                let body = CreateCredential {
                    name: format!("bench credential {i}"),
                    org: format!("bench-{}", i % 100),
                    environment: Environment::Production,
                    permissions: vec!["eligibility:read".to_owned()],
                    audiences: Vec::new(),
                    expires_in_seconds: None,
                    token_lifetime_seconds: None,
                    rate_limit_per_minute: None,
                    claims: None,
                };
                let response = http.post(url).bearer_auth(token).json(&body).send().await?;
                let status = response.status();
                if !status.is_success() {
                    // The server's problem detail says what was wrong with the request.
                    let detail = response.text().await.unwrap_or_default();
                    bail!("creating a credential was refused with {status}: {detail}");
                }
                Ok(response.json::<CreatedCredential>().await?)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    // Every secret the server handed out is written, even when some creations failed: those
    // credentials exist, and their secrets are shown only once.
    let mut made = 0usize;
    let mut first_error = None;
    for c in created {
        match c {
            Ok(c) => {
                writeln!(file, "{} {}", c.client_id, c.client_secret)?;
                made += 1;
            }
            Err(e) => first_error = first_error.or(Some(e)),
        }
    }
    file.flush()?;
    if let Some(e) = first_error {
        bail!(
            "{} of {count} credentials were not created ({made} written to {}); the first error: {e:#}",
            count - made,
            out.display()
        );
    }
    println!(
        "created={made} seconds={:.1} per_s={:.0}",
        elapsed.as_secs_f64(),
        made as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

pub async fn use_all(endpoint: &str, file: &Path, concurrency: usize) -> Result<()> {
    let text = std::fs::read_to_string(file)?;
    let pairs: Vec<(&str, &str)> = text
        .lines()
        .map(|l| l.split_once(' ').ok_or_else(|| anyhow!("malformed line in {}", file.display())))
        .collect::<Result<_>>()?;
    let http = http_client()?;
    let token_url = format!("{endpoint}/oauth/token");
    let start = Instant::now();
    let results: Vec<Result<String>> = stream::iter(pairs.iter())
        .map(|(id, secret)| {
            let http = http.clone();
            let token_url = &token_url;
            async move { fetch_token(&http, token_url, id, secret).await }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let elapsed = start.elapsed();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        bail!("{failed} of {} token requests failed, for example: {e}", results.len());
    }
    println!(
        "tokens={} seconds={:.1} per_s={:.0}",
        results.len(),
        elapsed.as_secs_f64(),
        results.len() as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
