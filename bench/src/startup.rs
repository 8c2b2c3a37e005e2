//! Start-up time: from spawning the server to its first 200, polled every millisecond. The
//! figure includes opening the database, checking migrations, loading and decrypting the
//! signing keys and binding the port: everything a restart costs an operator.

use crate::ms;
use anyhow::{Result, bail};
use std::time::{Duration, Instant};

pub async fn time(url: &str, command: &[String]) -> Result<()> {
    let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_millis(200)).build()?;
    let start = Instant::now();
    let mut child = tokio::process::Command::new(&command[0])
        .args(&command[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = start + Duration::from_secs(30);
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            break;
        }
        if let Some(status) = child.try_wait()? {
            bail!("{} exited with {status} before answering", command[0]);
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = start.elapsed();
    child.start_kill()?;
    child.wait().await?;
    println!("startup_ms={}", ms(elapsed));
    Ok(())
}
