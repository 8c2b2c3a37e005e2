//! `tokenmint init` and `tokenmint migrate`.

use crate::settings::{self, InitArgs, MigrateArgs};
use anyhow::{Context, Result};
use std::io::Write;
use std::process::ExitCode;
use tokenmint_server::bootstrap;
use tokenmint_store::SqlStore;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub async fn run(args: InitArgs) -> Result<ExitCode> {
    let s = settings::resolve_init(&args)?;
    let store = SqlStore::connect(&s.db.url, true)
        .await
        .with_context(|| format!("cannot open the database {}", settings::redact_url(&s.db.url)))?;
    bootstrap::check_master_key(&store, &s.db.master_key).await?;
    if bootstrap::ensure_signing_key(&store, &s.db.master_key, s.signing_alg, now()).await? {
        tracing::info!(alg = %s.signing_alg, "created the first signing key");
    }
    let path =
        s.token_paths.first().map_or(tokenmint_server::config::DEFAULT_TOKEN_PATH, String::as_str);
    let token_endpoint = format!("{}{path}", s.issuer);
    let created =
        bootstrap::create_admin_credential(&store, &s.db.master_key, &token_endpoint, now())
            .await?;
    let out = serde_json::json!({
        "client_id": created.client_id,
        "client_secret": created.client_secret,
        "endpoint": s.issuer,
        "token_endpoint": created.token_endpoint,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{out:#}")?;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn migrate(args: MigrateArgs) -> Result<ExitCode> {
    let file = settings::load_file(args.db.config.as_deref())?;
    let url = args
        .db
        .database
        .clone()
        .or(file.database)
        .unwrap_or_else(|| settings::DEFAULT_DATABASE.to_owned());
    let store = SqlStore::connect(&url, true)
        .await
        .with_context(|| format!("cannot migrate the database {}", settings::redact_url(&url)))?;
    store.close().await;
    eprintln!("tokenmint: the database schema is up to date");
    Ok(ExitCode::SUCCESS)
}
