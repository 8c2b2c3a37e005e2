//! `tokenmint serve`.

use crate::settings::{self, ServeArgs};
use anyhow::{Context, Result};
use std::process::ExitCode;
use std::sync::Arc;
use tokenmint_server::Application;
use tokenmint_server::app::{FirstStart, StartError};
use tokenmint_store::SqlStore;

pub async fn run(args: ServeArgs) -> Result<ExitCode> {
    let s = settings::resolve_serve(&args)?;
    // Taken over before the listener exists: from the moment a client can connect, a SIGHUP
    // reloads instead of ending the process as its default action would.
    let hangups = hangup_signals();
    let redacted = settings::redact_url(&s.config.database_url);
    let store = SqlStore::connect(&s.config.database_url, s.migrate)
        .await
        .with_context(|| format!("cannot open the database {redacted}"))?;
    let admin_file = s.config.admin_credential_file.clone();
    let mut app = Application::build(s.config, Arc::new(store)).await.map_err(|e| match e {
        StartError::Bind { addr, source } => anyhow::Error::new(crate::exit::listen_failure(
            addr,
            &source,
            "--listen (TOKENMINT_LISTEN, `listen` in the config file)",
        )),
        other => other.into(),
    })?;
    let issuer = app.state().issuer.clone();
    if let Some(FirstStart::Initialized(created)) = app.take_first_start() {
        // `endpoint` is the server the admin commands ask when given this file and no
        // --endpoint: the one that wrote it, on whatever port it listens.
        let body = serde_json::json!({
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "endpoint": issuer,
            "token_endpoint": created.token_endpoint,
        });
        let path = admin_file.unwrap_or_else(|| "tokenmint-admin.json".into());
        let path = unique_path(&path);
        settings::write_private_file(&path, format!("{body:#}\n").as_bytes())
            .with_context(|| format!("cannot write the admin credential to {}", path.display()))?;
        eprintln!(
            "tokenmint: initialised an empty database; the platform-admin credential is in {} (mode 0600). \
             The admin commands take it as `tokenmint credentials list --admin-credentials {}`",
            path.display(),
            path.display()
        );
    }
    let state = app.state().clone();
    reload_on_hangup(hangups, app.reloader());
    tracing::info!(
        addr = %app.local_addr()?,
        issuer = %state.issuer,
        database = %redacted,
        signing_alg = %state.keys.load().signing.alg(),
        "tokenmint listening"
    );
    app.run_until_stopped(async {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing requests in flight");
    })
    .await?;
    tracing::info!("tokenmint stopped");
    Ok(ExitCode::SUCCESS)
}

/// `path`, or `path` with a numeric suffix when it exists: an earlier credential file is never
/// overwritten.
fn unique_path(path: &std::path::Path) -> std::path::PathBuf {
    if !path.exists() {
        return path.to_path_buf();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("tokenmint-admin");
    for i in 1.. {
        let candidate = path.with_file_name(format!("{stem}-{i}.json"));
        if !candidate.exists() {
            return candidate;
        }
    }
    path.to_path_buf()
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = ();

#[cfg(unix)]
fn hangup_signals() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGHUP; reload by restarting");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangup_signals() -> Hangups {}

/// Every SIGHUP reloads the TLS files and the database state; the reloader logs the outcome.
#[cfg(unix)]
fn reload_on_hangup(hangups: Hangups, reloader: tokenmint_server::app::Reloader) {
    if let Some(mut hangups) = hangups {
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                reloader.reload().await;
            }
        });
    }
}

#[cfg(not(unix))]
fn reload_on_hangup(_hangups: Hangups, _reloader: tokenmint_server::app::Reloader) {}

/// Resolves on ctrl-c or SIGTERM. The caller says it is shutting down, so that the line is
/// logged under the target of the program stopping (the server's or the gateway's).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
