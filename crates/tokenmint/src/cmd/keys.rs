//! `tokenmint keys list/rotate/withdraw`.

use crate::admin_client::{AdminArgs, AdminClient, segment};
use crate::cmd::credentials::print;
use crate::output;
use crate::settings::parse_duration;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::process::ExitCode;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the published and pending signing keys.
    List(ListArgs),
    /// Create a new signing key; it is published first and signs after the propagation delay.
    Rotate(RotateArgs),
    /// Withdraw a key (suspected compromise): unpublished at once, its tokens refused.
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Algorithm of the new key: RS256, ES256 or EdDSA (default: the server's).
    #[arg(long)]
    alg: Option<String>,
    /// How long the key is published before it signs (default: the server's; 0: at once).
    #[arg(long, value_name = "DURATION")]
    propagation: Option<String>,
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The key id.
    kid: String,
}

fn table(keys: &[dto::SigningKey]) -> Result<()> {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.kid.clone(),
                k.alg.clone(),
                format!("{:?}", k.state).to_lowercase(),
                output::when(Some(k.activates_at), ""),
                output::when(k.unpublish_at, "-"),
            ]
        })
        .collect();
    output::table(&["KID", "ALG", "STATE", "SIGNS FROM", "UNPUBLISHED AT"], &rows)?;
    Ok(())
}

pub async fn run(cmd: KeysCommand) -> Result<ExitCode> {
    match cmd {
        KeysCommand::List(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let keys: Vec<dto::SigningKey> = client.get("/keys").await?;
            print(a.admin.output, &keys, || table(&keys))
        }
        KeysCommand::Rotate(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let propagation = a
                .propagation
                .as_deref()
                .map(|p| parse_duration("propagation", p).map(|d| d.as_secs()))
                .transpose()?;
            let body = dto::RotateKey { alg: a.alg, propagation_seconds: propagation };
            let keys: Vec<dto::SigningKey> = client.post("/keys/rotate", &body).await?;
            print(a.admin.output, &keys, || table(&keys))
        }
        KeysCommand::Withdraw(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let keys: Vec<dto::SigningKey> = client
                .post(&format!("/keys/{}/withdraw", segment(&a.kid)), &serde_json::json!({}))
                .await?;
            print(a.admin.output, &keys, || table(&keys))
        }
    }
}
