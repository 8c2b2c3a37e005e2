//! `tokenmint users create/list/deactivate/reactivate/update/reset-password`: portal users,
//! through the admin API.

use crate::admin_client::{AdminArgs, AdminClient, OutputFormat, segment};
use crate::cmd::credentials::print;
use crate::output;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand, ValueEnum};
use std::process::ExitCode;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a portal user, who signs in at /portal/ with this email and password.
    Create(CreateArgs),
    /// List portal users.
    List(ListArgs),
    /// Deactivate a portal user (their sessions and pending reset code end at once).
    Deactivate(DeactivateArgs),
    /// Reactivate a deactivated portal user, with their role and password as they were.
    Reactivate(DeactivateArgs),
    /// Change a portal user's role.
    Update(UpdateArgs),
    /// Issue a one-time code with which the user sets a new password at /portal/reset-password.
    /// The code is printed once; it works once, for 24 hours, and replaces any earlier code.
    ResetPassword(DeactivateArgs),
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The user's id (`usr_…`, see `users list`) or email.
    user: String,
    /// The new role (see `users create --help`).
    #[arg(long, value_enum)]
    role: Role,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Admin,
    Viewer,
    Platform,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The user's organization (its slug; created if it does not exist, and said so).
    #[arg(long)]
    org: String,
    /// The email the user signs in with.
    #[arg(long)]
    email: String,
    /// `admin` manages the organization's credentials and users (not those holding tokenmint:*
    /// scopes, which stay with the platform), `viewer` reads only, `platform` manages every
    /// organization and may be given only by the platform. The answer says what the role given
    /// allows.
    #[arg(long, value_enum, default_value = "admin")]
    role: Role,
    /// Read the password from standard input (first line). Without it, a password is generated
    /// and printed once.
    #[arg(long)]
    password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Only users of this organization.
    #[arg(long)]
    org: Option<String>,
}

/// One user, by id or email.
#[derive(Debug, Args)]
pub struct DeactivateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The user's id (`usr_…`, see `users list`) or email. By email, `reactivate` looks among
    /// deactivated users and the other commands at the active one.
    user: String,
}

/// The user named by id or email. By email, the one in the state the command acts on comes
/// first: an address has at most one active user and may have deactivated ones who held it
/// before, so `reactivate` looks among the deactivated and everything else at the active one.
/// `None` for an id the listing does not show (it holds at most 10,000 users): the server
/// judges that id itself.
async fn find_user(
    client: &AdminClient,
    user: &str,
    reactivating: bool,
) -> Result<Option<dto::User>> {
    let users = all_users(client, None).await?;
    if !user.contains('@') {
        return Ok(users.into_iter().find(|u| u.id == user));
    }
    let mut matching: Vec<dto::User> =
        users.into_iter().filter(|u| u.email.eq_ignore_ascii_case(user)).collect();
    let wanted = |u: &dto::User| (u.status == "active") != reactivating;
    matching.sort_by_key(|u| !wanted(u));
    let candidates: Vec<&str> =
        matching.iter().filter(|u| wanted(u)).map(|u| u.id.as_str()).collect();
    if candidates.len() > 1 {
        bail!(
            "{} deactivated users had the email {user}; name one by its id ({})",
            candidates.len(),
            candidates.join(", ")
        );
    }
    match matching.into_iter().next() {
        None => bail!("no user with the email {user}"),
        found => Ok(found),
    }
}

/// The id of the user named by id or email (see [`find_user`]).
async fn user_id(client: &AdminClient, user: &str) -> Result<String> {
    if !user.contains('@') {
        return Ok(user.to_owned());
    }
    Ok(find_user(client, user, false).await?.map(|u| u.id).unwrap_or_default())
}

fn role_dto(r: Role) -> dto::UserRole {
    match r {
        Role::Admin => dto::UserRole::Admin,
        Role::Viewer => dto::UserRole::Viewer,
        Role::Platform => dto::UserRole::Platform,
    }
}

#[derive(serde::Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    user: &'a dto::CreatedUser,
    /// Present only when the password was generated.
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
}

fn read_password() -> Result<String> {
    // A password is a line; far more is a file sent by mistake (`< /dev/zero`), not read whole.
    let input = tokenmint_http::config_file::read_at_most(std::io::stdin().lock(), 4096)
        .context("cannot read the password from stdin")?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--password-stdin: standard input holds more than 4 KiB, which no password is"
            )
        })?;
    let input = String::from_utf8(input)
        .map_err(|_| anyhow::anyhow!("--password-stdin: the password is not UTF-8 text"))?;
    let password = input.lines().next().unwrap_or("").to_owned();
    if password.is_empty() {
        bail!("--password-stdin: standard input held no password");
    }
    Ok(password)
}

async fn all_users(client: &AdminClient, org: Option<&str>) -> Result<Vec<dto::User>> {
    let path = match org {
        Some(o) => format!("/users?org={}", segment(o)),
        None => "/users".to_owned(),
    };
    client.get(&path).await
}

pub async fn run(cmd: UsersCommand) -> Result<ExitCode> {
    match cmd {
        UsersCommand::Create(a) => {
            let (password, generated) = if a.password_stdin {
                (read_password()?, false)
            } else {
                (tokenmint_core::ids::random_id("", 20), true)
            };
            let role = role_dto(a.role);
            let client = AdminClient::connect(&a.admin).await?;
            let created: dto::CreatedUser = client
                .post(
                    "/users",
                    &dto::CreateUser {
                        org: a.org,
                        email: a.email,
                        role: Some(role),
                        password: password.clone(),
                    },
                )
                .await?;
            if created.organization_created {
                // On stderr in both formats, worded as `credentials create` words it: stdout
                // stays the user alone.
                eprintln!(
                    "Created the organization '{}', which did not exist; `tokenmint orgs list` shows it.",
                    tokenmint_client::text::printable(&created.user.org)
                );
            }
            let shown = generated.then_some(password.as_str());
            let user = &created.user;
            print(a.admin.output, &Created { user: &created, password: shown }, || {
                let mut rows = vec![
                    ("id", user.id.clone()),
                    ("org", user.org.clone()),
                    ("email", user.email.clone()),
                    ("role", format!("{:?}", user.role).to_lowercase()),
                    ("grants", created.role_grants.clone()),
                ];
                if let Some(p) = shown {
                    rows.push(("password", p.to_owned()));
                }
                output::fields(&rows)?;
                if shown.is_some() {
                    eprintln!("The password is shown this once; give it to the user securely.");
                }
                Ok(())
            })
        }
        UsersCommand::List(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let users = all_users(&client, a.org.as_deref()).await?;
            print(a.admin.output, &users, || {
                let rows: Vec<Vec<String>> = users
                    .iter()
                    .map(|u| {
                        vec![
                            u.id.clone(),
                            u.org.clone(),
                            u.email.clone(),
                            format!("{:?}", u.role).to_lowercase(),
                            u.status.clone(),
                            output::when(u.last_sign_in_at, "never"),
                        ]
                    })
                    .collect();
                output::table(&["ID", "ORG", "EMAIL", "ROLE", "STATUS", "LAST SIGN-IN"], &rows)?;
                Ok(())
            })
        }
        UsersCommand::Deactivate(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let id = user_id(&client, &a.user).await?;
            let user: dto::User = client
                .post(&format!("/users/{}/deactivate", segment(&id)), &serde_json::json!({}))
                .await?;
            if a.admin.output != OutputFormat::Table {
                return print(a.admin.output, &user, || Ok(()));
            }
            println!("deactivated {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Reactivate(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let id = match find_user(&client, &a.user, true).await? {
                Some(u) if u.status == "active" && a.admin.output != OutputFormat::Json => {
                    println!("{} ({}) is already active; nothing changed", u.email, u.id);
                    return Ok(ExitCode::SUCCESS);
                }
                Some(u) => u.id,
                None => a.user.clone(),
            };
            let user: dto::User = client
                .post(&format!("/users/{}/reactivate", segment(&id)), &serde_json::json!({}))
                .await?;
            if a.admin.output == OutputFormat::Json {
                return print(a.admin.output, &user, || Ok(()));
            }
            println!("reactivated {} ({})", user.email, user.id);
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::Update(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let id = user_id(&client, &a.user).await?;
            let user: dto::User = client
                .patch(
                    &format!("/users/{}", segment(&id)),
                    &dto::UpdateUser { role: Some(role_dto(a.role)) },
                )
                .await?;
            if a.admin.output == OutputFormat::Json {
                return print(a.admin.output, &user, || Ok(()));
            }
            println!(
                "{} ({}) is now {}",
                user.email,
                user.id,
                format!("{:?}", user.role).to_lowercase()
            );
            Ok(ExitCode::SUCCESS)
        }
        UsersCommand::ResetPassword(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let id = user_id(&client, &a.user).await?;
            let reset: dto::PasswordReset = client
                .post(&format!("/users/{}/reset-password", segment(&id)), &serde_json::json!({}))
                .await?;
            print(a.admin.output, &reset, || {
                output::fields(&[
                    ("id", reset.user.id.clone()),
                    ("email", reset.user.email.clone()),
                    ("code", reset.code.clone()),
                    ("reset_url", reset.reset_url.clone()),
                    ("expires", output::when(Some(reset.expires_at), "never")),
                ])?;
                eprintln!(
                    "The code is shown this once; give it to the user securely. They enter it \
                     at the address above with a new password."
                );
                Ok(())
            })
        }
    }
}
