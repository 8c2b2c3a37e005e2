//! The SDK under a thundering herd: `callers` tasks ask one cold `TokenClient` for a token at
//! the same instant. The figure that matters is how many token requests reach the server (one,
//! if single flight works) and how long the callers wait for the first response.

use crate::{ms, quantile};
use anyhow::{Result, anyhow};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokenmint_client::{ClientConfig, CountingMetrics, MetricEvent, SecretSource, TokenClient};

pub async fn callers(
    token_url: &str,
    client_id: &str,
    secret_file: PathBuf,
    callers: usize,
) -> Result<()> {
    let metrics = Arc::new(CountingMetrics::new());
    let config = ClientConfig::new(token_url, client_id, SecretSource::file(secret_file))?;
    let client = TokenClient::builder(config).metrics(metrics.clone()).build()?;
    let barrier = Arc::new(tokio::sync::Barrier::new(callers + 1));
    let mut tasks = Vec::with_capacity(callers);
    for _ in 0..callers {
        let client = client.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let start = Instant::now();
            client.token().await.map(|_| start.elapsed())
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut waits: Vec<Duration> = Vec::with_capacity(callers);
    for task in tasks {
        waits.push(task.await?.map_err(|e| anyhow!("a caller got no token: {e}"))?);
    }
    let all = start.elapsed();
    waits.sort();

    // Once warm, a caller is served from memory: measure that too.
    let warm_calls: u32 = 100_000;
    let warm_start = Instant::now();
    for _ in 0..warm_calls {
        std::hint::black_box(client.token().await?);
    }
    let per_warm_call = warm_start.elapsed() / warm_calls;

    println!(
        "callers={callers} token_requests={} first_ms={} p50_ms={} max_ms={} all_ms={} cached_call_ns={}",
        metrics.get(MetricEvent::TokenRequest),
        ms(waits[0]),
        ms(quantile(&waits, 0.5)),
        ms(waits[waits.len() - 1]),
        ms(all),
        per_warm_call.as_nanos(),
    );
    Ok(())
}
