//! `tokenmint orgs create/list/show/update`.

use crate::admin_client::{AdminArgs, AdminClient, ApiRefusal, segment};
use crate::cmd::credentials::{claims_edit, claims_text, parse_claim, parse_claim_name, print};
use crate::exit::{self, Failure};
use crate::output;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::process::ExitCode;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization.
    Create(CreateArgs),
    /// List organizations.
    List(ListArgs),
    /// Show one organization.
    Show(ShowArgs),
    /// Change an organization's display name or custom claims.
    Update(UpdateArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The organization's slug.
    slug: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The organization's slug.
    slug: String,
    /// A new display name.
    #[arg(long)]
    name: Option<String>,
    /// Set a custom claim every token of the organization's credentials carries (unless the
    /// credential sets the same name): NAME=VALUE, VALUE JSON when it parses, else a string;
    /// repeatable. A change of the claims revokes every token of the organization's
    /// credentials.
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_claim)]
    claims: Vec<(String, serde_json::Value)>,
    /// Remove a custom claim; repeatable.
    #[arg(long = "remove-claim", value_name = "NAME", value_parser = parse_claim_name)]
    remove_claims: Vec<String>,
}

fn show(org: &dto::Organization) -> Result<()> {
    Ok(output::fields(&[
        ("slug", org.slug.clone()),
        ("name", org.name.clone()),
        ("created", output::when(Some(org.created_at), "")),
        ("claims", claims_text(&org.claims)),
    ])?)
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
            print(a.admin.output, &org, || show(&org))
        }
        OrgsCommand::Show(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let org: dto::Organization =
                client.get(&format!("/organizations/{}", segment(&a.slug))).await?;
            print(a.admin.output, &org, || show(&org))
        }
        OrgsCommand::Update(a) => {
            let (claims, remove_claims) = claims_edit(a.claims, a.remove_claims)?;
            let body = dto::UpdateOrganization { name: a.name, claims, remove_claims };
            if body == dto::UpdateOrganization::default() {
                bail!("nothing to update: give at least one of --name, --claim, --remove-claim");
            }
            let client = AdminClient::connect(&a.admin).await?;
            let org: dto::Organization =
                client.patch(&format!("/organizations/{}", segment(&a.slug)), &body).await?;
            print(a.admin.output, &org, || show(&org))
        }
        OrgsCommand::List(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let max = tokenmint_proto::limits::ORGANIZATIONS_PAGE.max;
                let path = match &cursor {
                    Some(c) => format!("/organizations?limit={max}&cursor={}", segment(c)),
                    None => format!("/organizations?limit={max}"),
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
