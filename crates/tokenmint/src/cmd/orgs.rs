//! `tokenmint orgs create/list`.

use crate::admin_client::{AdminArgs, AdminClient, ApiRefusal, segment};
use crate::cmd::credentials::print;
use crate::exit::{self, Failure};
use crate::output;
use anyhow::Result;
use clap::{Args, Subcommand};
use std::process::ExitCode;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization.
    Create(CreateArgs),
    /// List organizations.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Short identifier: lower-case letters, digits and '-'.
    slug: String,
    /// Display name (default: the slug).
    #[arg(long)]
    name: Option<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    admin: AdminArgs,
}

pub async fn run(cmd: OrgsCommand) -> Result<ExitCode> {
    match cmd {
        OrgsCommand::Create(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let slug = a.slug.clone();
            let org: dto::Organization = client
                .post("/organizations", &dto::CreateOrganization { slug: a.slug, name: a.name })
                .await
                .map_err(|e| match e.downcast_ref::<ApiRefusal>() {
                    Some(refusal) if refusal.status == 409 => {
                        anyhow::Error::new(Failure::new(exit::FAILURE, refusal.message.clone()).hint(
                            format!(
                                "`tokenmint orgs list` shows it; `tokenmint credentials create --org {slug}` \
                                 creates the organization when it is missing, so nothing else is needed"
                            ),
                        ))
                    }
                    _ => e,
                })?;
            print(a.admin.output, &org, || {
                output::fields(&[("slug", org.slug.clone()), ("name", org.name.clone())])?;
                Ok(())
            })
        }
        OrgsCommand::List(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let path = match &cursor {
                    Some(c) => format!("/organizations?limit=500&cursor={}", segment(c)),
                    None => "/organizations?limit=500".to_owned(),
                };
                let page: dto::Page<dto::Organization> = client.get(&path).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print(a.admin.output, &items, || {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|o| {
                        vec![o.slug.clone(), o.name.clone(), output::when(Some(o.created_at), "")]
                    })
                    .collect();
                output::table(&["SLUG", "NAME", "CREATED"], &rows)?;
                Ok(())
            })
        }
    }
}
