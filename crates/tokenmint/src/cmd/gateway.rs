//! `tokenmint gateway`: the validating reverse proxy (see the tokenmint-gateway crate).
//!
//! Routes come from the TOML file only; the other settings can also be given as flags or
//! `TOKENMINT_*` variables, which beat the file. SIGHUP reads the file again (with the same
//! flags and variables on top) and swaps the routes without dropping a connection.

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokenmint_gateway::{Gateway, GatewayConfig, GatewayHandle, Overrides, SystemClock};

#[derive(Debug, Clone, Args)]
pub struct GatewayArgs {
    /// The gateway's TOML file: listen, issuer, audience, the feed credential and the
    /// [[route]] tables (path_prefix, upstream, sandbox_upstream, read_scope, write_scope,
    /// require_headers, rate_limit_per_minute, forward_authorization, request_timeout).
    /// Re-read on SIGHUP.
    #[arg(long, env = "TOKENMINT_CONFIG", value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on. [default: 127.0.0.1:9090]
    #[arg(long, env = "TOKENMINT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The authorization server's issuer URL: discovery, JWKS and the revocation feed come from it.
    #[arg(long, env = "TOKENMINT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// The audience tokens must carry in `aud`. [default: none checked]
    #[arg(long, env = "TOKENMINT_AUDIENCE", value_name = "AUD")]
    pub audience: Option<String>,
    /// The client id the gateway reads the revocation feed with (it needs the
    /// tokenmint:revocations permission).
    #[arg(long, env = "TOKENMINT_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// A file holding that client's secret. Without it the secret is read from
    /// TOKENMINT_CLIENT_SECRET; it is never taken as a flag value.
    #[arg(long, env = "TOKENMINT_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// The token endpoint for the feed credential. [default: from the issuer's metadata]
    #[arg(long, env = "TOKENMINT_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// Redis URL (redis://HOST:PORT/DB) for rate limits shared by several gateways.
    #[arg(long, env = "TOKENMINT_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (re-read when the file changes).
    #[arg(long, env = "TOKENMINT_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TOKENMINT_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl GatewayArgs {
    fn overrides(&self) -> Overrides {
        Overrides {
            listen: self.listen.clone(),
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            client_id: self.client_id.clone(),
            client_secret_file: self.client_secret_file.clone(),
            token_url: self.token_url.clone(),
            redis: self.redis.clone(),
            tls_cert: self.tls_cert.clone(),
            tls_key: self.tls_key.clone(),
        }
    }
}

pub async fn run(args: GatewayArgs) -> Result<ExitCode> {
    let overrides = args.overrides();
    let config = GatewayConfig::load(&args.config, &overrides)
        .and_then(|config| config.check_secret_file().map(|()| config))
        .with_context(|| format!("invalid gateway configuration {}", args.config.display()))?;
    let routes = config.routes.len();
    let issuers: Vec<String> = config.startup.issuers.iter().map(|i| i.url.clone()).collect();
    let mode = match config.startup.mode {
        tokenmint_gateway::Mode::Proxy => "proxy",
        _ => "authz",
    };
    let gateway = Gateway::build(config, Arc::new(SystemClock)).await.map_err(|e| match e {
        tokenmint_gateway::StartError::Listen { addr, source } => {
            anyhow::Error::new(crate::exit::listen_failure(
                addr,
                &source,
                "--listen (TOKENMINT_LISTEN, `listen` in the gateway's config file)",
            ))
        }
        other => other.into(),
    })?;
    tracing::info!(
        addr = %gateway.local_addr()?,
        issuers = %issuers.join(" "),
        mode,
        routes,
        "tokenmint gateway listening"
    );
    reload_on_sighup(gateway.handle(), args.config.clone(), overrides);
    gateway
        .run_until_stopped(async {
            crate::cmd::serve::shutdown_signal().await;
            tracing::info!("tokenmint gateway shutting down: finishing requests in flight");
        })
        .await?;
    tracing::info!("tokenmint gateway stopped");
    Ok(ExitCode::SUCCESS)
}

/// Re-reads the configuration on every SIGHUP; `reload_file` logs the outcome.
#[cfg(unix)]
fn reload_on_sighup(handle: GatewayHandle, path: PathBuf, overrides: Overrides) {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    // The outcome is logged by reload_file; a refused reload keeps the old routes.
                    let _ = handle.reload_file(&path, &overrides);
                }
            });
        }
        Err(error) => tracing::warn!(%error, "cannot listen for SIGHUP; reload by restarting"),
    }
}

#[cfg(not(unix))]
fn reload_on_sighup(_handle: GatewayHandle, _path: PathBuf, _overrides: Overrides) {}
