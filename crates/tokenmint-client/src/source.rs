//! Reading the client secret from where the configuration says it is.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use crate::clock::Clock;
use crate::config::SecretSource;
use crate::error::Error;
use crate::secret::SecretString;

/// Yields the current client secret.
///
/// Only the token-fetch task calls it, so there is no contention; the mutex guards plain data and
/// is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct SecretReader {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Value(SecretString),
    Env(String),
    File { path: PathBuf, interval: Duration, state: Mutex<Option<FileState>> },
}

#[derive(Debug, Clone)]
struct FileState {
    modified: Option<SystemTime>,
    len: u64,
    checked_at: Instant,
    secret: SecretString,
}

impl SecretReader {
    pub(crate) fn new(source: &SecretSource, interval: Duration) -> Self {
        let kind = match source {
            SecretSource::Value(secret) => Kind::Value(secret.clone()),
            SecretSource::Env(name) => Kind::Env(name.clone()),
            SecretSource::File(path) => {
                Kind::File { path: path.clone(), interval, state: Mutex::new(None) }
            }
        };
        Self { kind }
    }

    /// Whether the secret can change while the program runs.
    pub(crate) fn can_change(&self) -> bool {
        !matches!(self.kind, Kind::Value(_))
    }

    /// The current secret. With `recheck`, a secret file is examined now rather than after the
    /// recheck interval (used after the server answered `invalid_client`).
    pub(crate) async fn get(
        &self,
        clock: &Arc<dyn Clock>,
        recheck: bool,
    ) -> Result<SecretString, Error> {
        match &self.kind {
            Kind::Value(secret) => Ok(secret.clone()),
            Kind::Env(name) => match std::env::var(name) {
                Ok(value) if !value.is_empty() => Ok(SecretString::new(value)),
                Ok(_) => Err(Error::Secret(format!("environment variable {name} is empty"))),
                Err(_) => Err(Error::Secret(format!("environment variable {name} is not set"))),
            },
            Kind::File { path, interval, state } => {
                let now = clock.now();
                let cached = state.lock().unwrap_or_else(PoisonError::into_inner).clone();
                if let Some(cached) = &cached
                    && !recheck
                    && now.saturating_duration_since(cached.checked_at) < *interval
                {
                    return Ok(cached.secret.clone());
                }
                let fresh = read_if_changed(path, cached, now).await?;
                let secret = fresh.secret.clone();
                *state.lock().unwrap_or_else(PoisonError::into_inner) = Some(fresh);
                Ok(secret)
            }
        }
    }
}

/// A `stat` decides whether the file is read again: rotating a secret changes the file's
/// modification time or length, and reading a file on every token fetch is needless I/O.
async fn read_if_changed(
    path: &Path,
    cached: Option<FileState>,
    now: Instant,
) -> Result<FileState, Error> {
    let meta = tokio::fs::metadata(path)
        .await
        .map_err(|e| Error::Secret(format!("cannot read {}: {e}", path.display())))?;
    let modified = meta.modified().ok();
    if let Some(cached) = cached
        && cached.modified == modified
        && cached.len == meta.len()
        && modified.is_some()
    {
        return Ok(FileState { checked_at: now, ..cached });
    }
    // A secret is a line; the file is read off the runtime's threads.
    let owned = path.to_owned();
    let text = tokio::task::spawn_blocking(move || {
        crate::file::read_small(&owned, SECRET_MAX_LEN, "secret")
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|read| read)
    .map_err(|reason| Error::Secret(format!("cannot read {}: {reason}", path.display())))?;
    let trimmed = text.trim_end();
    if trimmed.is_empty() {
        return Err(Error::Secret(format!("{} is empty", path.display())));
    }
    tracing::debug!(path = %path.display(), "client secret file read");
    Ok(FileState { modified, len: meta.len(), checked_at: now, secret: SecretString::new(trimmed) })
}

/// The largest secret file read.
const SECRET_MAX_LEN: u64 = 4096;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::TokioClock;

    #[tokio::test(start_paused = true)]
    async fn a_rotated_secret_file_is_picked_up_after_the_recheck_interval() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "first\n").unwrap();
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let reader = SecretReader::new(&SecretSource::file(&path), Duration::from_secs(10));
        assert_eq!(reader.get(&clock, false).await.unwrap().expose_secret(), "first");

        std::fs::write(&path, "second-and-longer").unwrap();
        // Within the interval the cached value is used without touching the disk.
        assert_eq!(reader.get(&clock, false).await.unwrap().expose_secret(), "first");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert_eq!(reader.get(&clock, false).await.unwrap().expose_secret(), "second-and-longer");

        std::fs::write(&path, "third").unwrap();
        assert_eq!(reader.get(&clock, true).await.unwrap().expose_secret(), "third");
    }

    #[tokio::test]
    async fn a_missing_secret_names_its_source_but_no_value() {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let reader = SecretReader::new(
            &SecretSource::env("TOKENMINT_CLIENT_TEST_SURELY_UNSET"),
            Duration::ZERO,
        );
        let err = reader.get(&clock, false).await.unwrap_err();
        assert!(err.to_string().contains("TOKENMINT_CLIENT_TEST_SURELY_UNSET"));
        let reader = SecretReader::new(&SecretSource::file("/nonexistent/secret"), Duration::ZERO);
        assert!(matches!(reader.get(&clock, false).await, Err(Error::Secret(_))));
    }
}
