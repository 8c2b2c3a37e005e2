//! `tokenmint credentials create/list/show/update/deactivate/activate/rotate-secret/...`.

use crate::admin_client::{AdminArgs, AdminClient, ApiRefusal, OutputFormat, segment};
use crate::exit::{self, Failure};
use crate::output;
use crate::settings::parse_duration;
use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::io::Write;
use std::process::ExitCode;
use tokenmint_client::text::printable;
use tokenmint_proto::Environment;
use tokenmint_proto::admin as dto;

#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Create a credential and print its client_id and secret (the secret is shown only now);
    /// with --public-key it also accepts private_key_jwt assertions, with --no-secret only
    /// those.
    Create(CreateArgs),
    /// List credentials, newest first (as the portal lists them).
    List(ListArgs),
    /// Show one credential.
    Show(TargetArgs),
    /// Change a credential's name, permissions, audiences, token lifetime, expiry, rate limit,
    /// custom claims or public keys.
    Update(UpdateArgs),
    /// Deactivate a credential: it gets no more tokens and its tokens are revoked.
    Deactivate(TargetArgs),
    /// Reactivate a deactivated credential.
    Activate(TargetArgs),
    /// Create a new secret, keeping the old ones working for an overlap.
    RotateSecret(RotateArgs),
    /// Delete one secret at once.
    DeleteSecret(DeleteSecretArgs),
    /// Revoke every token the credential has been issued so far.
    RevokeTokens(TargetArgs),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// A name that identifies the integration.
    #[arg(long)]
    name: String,
    /// The organization's slug (created if it does not exist).
    #[arg(long)]
    org: String,
    /// Data access: sandbox or production.
    #[arg(long, value_parser = parse_env)]
    environment: Environment,
    /// AREA:read or AREA:write (write includes read); repeatable.
    #[arg(long = "permission", value_name = "AREA:LEVEL")]
    permissions: Vec<String>,
    /// Expire the credential after this long (e.g. 90d).
    #[arg(long, value_name = "DURATION", conflicts_with = "never_expires")]
    expires_in: Option<String>,
    /// The credential never expires (the default).
    #[arg(long)]
    never_expires: bool,
    /// Lifetime of its tokens (default 1h).
    #[arg(long, value_name = "DURATION")]
    token_lifetime: Option<String>,
    /// An audience its tokens may be issued for; repeatable.
    #[arg(long = "audience", value_name = "AUD")]
    audiences: Vec<String>,
    /// Token requests per minute (default: the server's; 0: no limit).
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,
    /// A custom claim its tokens carry; VALUE is JSON when it parses as JSON, else a string
    /// (e.g. --claim tenant_id=t-42 --claim 'plan={"tier":"gold"}'); repeatable.
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_claim)]
    claims: Vec<(String, serde_json::Value)>,
    /// A public key (a PEM public key, a JWK or a JWK Set) whose private_key_jwt assertions
    /// (RFC 7523) authenticate the credential; repeatable.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<std::path::PathBuf>,
    /// Generate no client secret: the credential authenticates only with its public keys.
    #[arg(long, requires = "public_keys")]
    no_secret: bool,
}

/// The contents of `--public-key` files, each checked here so that a private key given by
/// mistake is refused before it leaves this machine.
fn read_public_keys(paths: &[std::path::PathBuf]) -> Result<Vec<String>> {
    paths
        .iter()
        .map(|p| {
            let text =
                tokenmint_http::config_file::read_text_limited(p, 64 * 1024, "--public-key")?;
            tokenmint_core::assertion::parse_public_keys(&text)
                .map_err(|e| anyhow::anyhow!("--public-key {}: {e}", p.display()))?;
            Ok(text)
        })
        .collect()
}

/// `--claim NAME=VALUE`, checked here so that a reserved name is refused before any request.
pub fn parse_claim(arg: &str) -> Result<(String, serde_json::Value), String> {
    tokenmint_core::claims::parse_assignment(arg)
}

/// `--remove-claim NAME`.
pub fn parse_claim_name(arg: &str) -> Result<String, String> {
    tokenmint_core::claims::check_name(arg).map_err(|e| e.to_string())?;
    Ok(arg.to_owned())
}

/// The claims to set and the names to remove of `--claim` and `--remove-claim` flags, as the
/// update's body takes them; a name given to both is refused before any request.
pub fn claims_edit(
    claims: Vec<(String, serde_json::Value)>,
    remove: Vec<String>,
) -> Result<(Option<dto::Claims>, Option<Vec<String>>)> {
    tokenmint_core::claims::check_edit(claims.iter().map(|(name, _)| name), &remove)
        .map_err(|e| anyhow::anyhow!("invalid --claim and --remove-claim: {e}"))?;
    Ok((claims_body(claims)?, Some(remove).filter(|r| !r.is_empty())))
}

/// The claims of repeated `--claim` flags, or `None` for none. A name given twice is refused
/// before any request, as the admin API refuses a key given twice: which of the two was meant
/// is not for the CLI to pick.
pub fn claims_body(claims: Vec<(String, serde_json::Value)>) -> Result<Option<dto::Claims>> {
    let mut body = dto::Claims::new();
    for (name, value) in claims {
        if body.contains_key(&name) {
            anyhow::bail!("invalid --claim: '{name}' is given twice; give each claim once");
        }
        body.insert(name, value);
    }
    Ok((!body.is_empty()).then_some(body))
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// Only this organization's credentials (an organization that does not exist is an error).
    #[arg(long)]
    org: Option<String>,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The credential's client_id.
    client_id: String,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The credential's client_id (tmc_…).
    client_id: String,
    /// A new display name.
    #[arg(long)]
    name: Option<String>,
    /// Replace the permissions with these (repeatable).
    #[arg(long = "permission", value_name = "AREA:LEVEL", conflicts_with = "clear_permissions")]
    permissions: Vec<String>,
    /// Remove every permission.
    #[arg(long)]
    clear_permissions: bool,
    /// Replace the audiences with these (repeatable).
    #[arg(long = "audience", value_name = "AUD", conflicts_with = "clear_audiences")]
    audiences: Vec<String>,
    /// Remove every audience.
    #[arg(long)]
    clear_audiences: bool,
    /// The lifetime of the access tokens it gets from now on (e.g. 10m).
    #[arg(long, value_name = "DURATION")]
    token_lifetime: Option<String>,
    /// Expire the credential this long from now.
    #[arg(long, value_name = "DURATION", conflicts_with = "never_expires")]
    expires_in: Option<String>,
    /// Remove the expiry.
    #[arg(long)]
    never_expires: bool,
    /// Token requests per minute (0: no limit).
    #[arg(long, value_name = "N", conflicts_with = "default_rate_limit")]
    rate_limit: Option<u32>,
    /// Go back to the server's default limit.
    #[arg(long)]
    default_rate_limit: bool,
    /// Set a custom claim (NAME=VALUE; VALUE is JSON when it parses, else a string);
    /// repeatable. A change of the claims revokes the credential's older tokens.
    #[arg(long = "claim", value_name = "NAME=VALUE", value_parser = parse_claim)]
    claims: Vec<(String, serde_json::Value)>,
    /// Remove a custom claim; repeatable.
    #[arg(long = "remove-claim", value_name = "NAME", value_parser = parse_claim_name)]
    remove_claims: Vec<String>,
    /// Register another public key (a PEM public key, a JWK or a JWK Set) for private_key_jwt;
    /// repeatable.
    #[arg(long = "public-key", value_name = "FILE")]
    public_keys: Vec<std::path::PathBuf>,
    /// Remove a registered public key, by its kid or thumbprint (see `credentials show`);
    /// repeatable. Tokens obtained with it before stay valid until they expire (revoke them
    /// with `revoke-tokens` if the key leaked).
    #[arg(long = "remove-public-key", value_name = "KID", allow_hyphen_values = true)]
    remove_public_keys: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RotateArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The credential's client_id (tmc_…).
    client_id: String,
    /// How long the old secrets keep working (default 24h; 0 ends them now).
    #[arg(long, value_name = "DURATION")]
    overlap: Option<String>,
}

#[derive(Debug, Args)]
pub struct DeleteSecretArgs {
    #[command(flatten)]
    admin: AdminArgs,
    /// The credential's client_id (tmc_…).
    client_id: String,
    /// The secret's id (see `credentials show`).
    secret_id: String,
}

fn parse_env(s: &str) -> Result<Environment, String> {
    s.parse().map_err(|e: tokenmint_proto::claims::UnknownEnvironment| e.to_string())
}

fn secs(flag: &str, v: &Option<String>) -> Result<Option<u64>> {
    v.as_deref().map(|d| parse_duration(flag, d).map(|d| d.as_secs())).transpose()
}

fn lifetime(v: &Option<String>) -> Result<Option<u32>> {
    match secs("token-lifetime", v)? {
        Some(s) => match u32::try_from(s) {
            Ok(s) => Ok(Some(s)),
            Err(_) => bail!("--token-lifetime is too long"),
        },
        None => Ok(None),
    }
}

/// Claims as `name=json` pairs, one per line (`output::fields` aligns the lines).
pub fn claims_text(claims: &dto::Claims) -> String {
    if claims.is_empty() {
        return "(none)".into();
    }
    // A claim may hold any text but control characters (an org admin sets some): line
    // separators and bidi controls are shown escaped, so what the terminal shows is the value.
    claims
        .iter()
        .map(|(k, v)| format!("{}={}", printable(k), printable(&v.to_string())))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Registered keys, one per line: kid, type, algorithm and RFC 7638 thumbprint.
fn public_keys_text(keys: &[dto::PublicKeyInfo]) -> String {
    if keys.is_empty() {
        return "(none)".into();
    }
    keys.iter()
        .map(|k| {
            let kind = match &k.crv {
                Some(crv) => format!("{} {crv}", k.kty),
                None => k.kty.clone(),
            };
            format!(
                "{} {kind}{} thumbprint {}",
                printable(k.kid.as_deref().unwrap_or("(no kid)")),
                k.alg.as_deref().map(|a| format!(" {a}")).unwrap_or_default(),
                k.thumbprint
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One secret: id, hint, creation and when it stops working (or stopped, once past `now`).
fn secret_line(s: &dto::SecretInfo, now: time::OffsetDateTime) -> String {
    let ends = match s.expires_at {
        Some(at) if at <= now => format!("expired {}", output::when(Some(at), "")),
        at => format!("expires {}", output::when(at, "never")),
    };
    format!("{} {} (created {}, {ends})", s.id, s.hint, output::when(Some(s.created_at), ""))
}

fn show(c: &dto::Credential) -> Result<()> {
    let now = time::OffsetDateTime::now_utc();
    let secrets = c.secrets.iter().map(|s| secret_line(s, now)).collect::<Vec<_>>().join("\n");
    output::fields(&[
        ("client_id", c.client_id.clone()),
        ("name", c.name.clone()),
        ("org", c.org.clone()),
        ("environment", c.environment.to_string()),
        ("status", c.status.as_str().to_owned()),
        (
            "permissions",
            if c.permissions.is_empty() { "(none)".into() } else { c.permissions.join(" ") },
        ),
        (
            "audiences",
            if c.audiences.is_empty() { "(issuer)".into() } else { c.audiences.join(" ") },
        ),
        ("token lifetime", format!("{}s", c.token_lifetime_seconds)),
        ("claims", claims_text(&c.claims)),
        (
            "rate limit",
            c.rate_limit_per_minute.map_or("server default".into(), |n| format!("{n}/min")),
        ),
        ("expires", output::when(c.expires_at, "never")),
        ("created", output::when(Some(c.created_at), "")),
        ("last used", output::when(c.last_used_at, "never")),
        ("secrets", if secrets.is_empty() { "(none)".into() } else { secrets }),
        ("public keys", public_keys_text(&c.public_keys)),
    ])?;
    Ok(())
}

/// Fails, naming the organization, when `org` does not exist: the listings (credentials, users,
/// audit) answer an unknown organization with an empty list, as they do one without entries.
pub(crate) async fn organization_exists(client: &AdminClient, org: &str) -> Result<()> {
    match client.get::<dto::Organization>(&format!("/organizations/{}", segment(org))).await {
        Ok(_) => Ok(()),
        Err(e) => match e.downcast_ref::<ApiRefusal>() {
            Some(refusal) if refusal.status == 404 => Err(anyhow::Error::new(
                Failure::new(exit::FAILURE, format!("no organization '{}' exists", printable(org)))
                    .hint("`tokenmint orgs list` shows the organizations and their slugs"),
            )),
            // Not allowed to read organizations: the empty listing is all there is to say.
            Some(_) => Ok(()),
            None => Err(e),
        },
    }
}

pub fn print<T: serde::Serialize>(
    format: OutputFormat,
    value: &T,
    table: impl FnOnce() -> Result<()>,
) -> Result<ExitCode> {
    match format {
        OutputFormat::Json => output::json(value)?,
        OutputFormat::Env => output::env(value)?,
        OutputFormat::Table => table()?,
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(cmd: CredentialsCommand) -> Result<ExitCode> {
    match cmd {
        CredentialsCommand::Create(a) => {
            let claims = claims_body(a.claims)?;
            let client = AdminClient::connect(&a.admin).await?;
            let body = dto::NewCredential {
                credential: dto::CreateCredential {
                    name: a.name,
                    org: a.org,
                    environment: a.environment,
                    permissions: a.permissions,
                    audiences: a.audiences,
                    expires_in_seconds: secs("expires-in", &a.expires_in)?,
                    token_lifetime_seconds: lifetime(&a.token_lifetime)?,
                    rate_limit_per_minute: a.rate_limit,
                    claims,
                },
                public_keys: read_public_keys(&a.public_keys)?,
                no_secret: a.no_secret,
            };
            let created: dto::CreatedCredential = client.post("/credentials", &body).await?;
            if created.organization_created {
                // On stderr in both formats: stdout stays the credential alone.
                let _ = writeln!(
                    std::io::stderr(),
                    "Created the organization '{}', which did not exist; `tokenmint orgs list` shows it.",
                    printable(&created.credential.org)
                );
            }
            if created.credential.permissions.is_empty() {
                // Allowed (a credential may be made first and given access later, as an
                // organization's admin does in the portal), but said: its tokens carry no scope.
                let _ = writeln!(
                    std::io::stderr(),
                    "Note: the credential has no permissions, so its tokens carry no scope and \
                     every scoped API refuses them; give it some with `tokenmint credentials \
                     update {} --permission AREA:LEVEL`.",
                    printable(&created.client_id)
                );
            }
            print(a.admin.output, &created, || {
                if created.client_secret.is_empty() {
                    output::fields(&[
                        ("client_id", created.client_id.clone()),
                        ("client_secret", "(none: private_key_jwt only)".into()),
                        ("token_endpoint", created.token_endpoint.clone()),
                        ("public keys", public_keys_text(&created.credential.public_keys)),
                    ])?;
                    return Ok(());
                }
                output::fields(&[
                    ("client_id", created.client_id.clone()),
                    ("client_secret", created.client_secret.clone()),
                    ("token_endpoint", created.token_endpoint.clone()),
                ])?;
                let _ = writeln!(
                    std::io::stderr(),
                    "Store the client secret now: it will not be shown again."
                );
                Ok(())
            })
        }
        CredentialsCommand::List(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let mut items = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut path =
                    format!("/credentials?limit={}", tokenmint_proto::limits::CREDENTIALS_PAGE.max);
                if let Some(o) = &a.org {
                    path.push_str(&format!("&org={}", segment(o)));
                }
                if let Some(c) = &cursor {
                    path.push_str(&format!("&cursor={}", segment(c)));
                }
                let page: dto::Page<dto::Credential> = client.get(&path).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            // The admin API pages oldest first (its cursor follows creation); every page is
            // read before anything is printed, so the newest-first order of the portal costs
            // only this sort (by creation, then client_id, as the portal's query orders).
            items.sort_by(|x, y| (y.created_at, &y.client_id).cmp(&(x.created_at, &x.client_id)));
            if items.is_empty() {
                if let Some(org) = &a.org {
                    organization_exists(&client, org).await?;
                }
                if a.admin.output == OutputFormat::Table {
                    match &a.org {
                        Some(org) => {
                            println!("The organization '{}' has no credentials.", printable(org))
                        }
                        None => println!("There are no credentials."),
                    }
                    return Ok(ExitCode::SUCCESS);
                }
            }
            print(a.admin.output, &items, || {
                let rows: Vec<Vec<String>> = items
                    .iter()
                    .map(|c| {
                        vec![
                            c.client_id.clone(),
                            c.name.clone(),
                            c.org.clone(),
                            c.environment.to_string(),
                            c.status.as_str().to_owned(),
                            c.permissions.join(" "),
                            output::when(c.expires_at, "never"),
                            output::when(c.last_used_at, "never"),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "CLIENT ID",
                        "NAME",
                        "ORG",
                        "ENV",
                        "STATUS",
                        "PERMISSIONS",
                        "EXPIRES",
                        "LAST USED",
                    ],
                    &rows,
                )?;
                Ok(())
            })
        }
        CredentialsCommand::Show(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let c: dto::Credential =
                client.get(&format!("/credentials/{}", segment(&a.client_id))).await?;
            print(a.admin.output, &c, || show(&c))
        }
        CredentialsCommand::Update(a) => {
            let (claims, remove_claims) = claims_edit(a.claims, a.remove_claims)?;
            let client = AdminClient::connect(&a.admin).await?;
            let body = dto::UpdateCredential {
                name: a.name,
                permissions: if a.clear_permissions {
                    Some(vec![])
                } else {
                    Some(a.permissions).filter(|p| !p.is_empty())
                },
                audiences: if a.clear_audiences {
                    Some(vec![])
                } else {
                    Some(a.audiences).filter(|p| !p.is_empty())
                },
                token_lifetime_seconds: lifetime(&a.token_lifetime)?,
                expires_in_seconds: secs("expires-in", &a.expires_in)?,
                never_expires: a.never_expires.then_some(true),
                rate_limit_per_minute: a.rate_limit,
                clear_rate_limit: a.default_rate_limit.then_some(true),
                claims,
                remove_claims,
            };
            let keys = read_public_keys(&a.public_keys)?;
            let edits_keys = !keys.is_empty() || !a.remove_public_keys.is_empty();
            if body == dto::UpdateCredential::default() && !edits_keys {
                bail!(
                    "nothing to update: give at least one of --name, --permission, --clear-permissions, --audience, --clear-audiences, --token-lifetime, --expires-in, --never-expires, --rate-limit, --default-rate-limit, --claim, --remove-claim, --public-key, --remove-public-key"
                );
            }
            let id = segment(&a.client_id);
            if body != dto::UpdateCredential::default() {
                let _: dto::Credential = client.patch(&format!("/credentials/{id}"), &body).await?;
            }
            // New keys first: a credential without a secret may swap its only key in one go.
            if !keys.is_empty() {
                let add = dto::AddPublicKeys { keys };
                let _: dto::Credential =
                    client.post(&format!("/credentials/{id}/public-keys"), &add).await?;
            }
            for kid in &a.remove_public_keys {
                client.delete(&format!("/credentials/{id}/public-keys/{}", segment(kid))).await?;
            }
            let c: dto::Credential = client.get(&format!("/credentials/{id}")).await?;
            print(a.admin.output, &c, || show(&c))
        }
        CredentialsCommand::Deactivate(a) => status(a, "deactivate").await,
        CredentialsCommand::Activate(a) => status(a, "activate").await,
        CredentialsCommand::RotateSecret(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let body = dto::RotateSecret { overlap_seconds: secs("overlap", &a.overlap)? };
            let r: dto::RotatedSecret = client
                .post(&format!("/credentials/{}/secrets", segment(&a.client_id)), &body)
                .await?;
            print(a.admin.output, &r, || {
                output::fields(&[
                    ("client_id", r.client_id.clone()),
                    ("client_secret", r.client_secret.clone()),
                    ("old secrets expire", output::when(Some(r.previous_secrets_expire_at), "")),
                ])?;
                let _ = writeln!(
                    std::io::stderr(),
                    "Store the new client secret now: it will not be shown again."
                );
                Ok(())
            })
        }
        CredentialsCommand::DeleteSecret(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            client
                .delete(&format!(
                    "/credentials/{}/secrets/{}",
                    segment(&a.client_id),
                    segment(&a.secret_id)
                ))
                .await?;
            let done = serde_json::json!({"client_id": a.client_id, "deleted_secret": a.secret_id});
            print(a.admin.output, &done, || {
                println!("deleted secret {} of {}", a.secret_id, a.client_id);
                Ok(())
            })
        }
        CredentialsCommand::RevokeTokens(a) => {
            let client = AdminClient::connect(&a.admin).await?;
            let r: dto::TokensRevoked = client
                .post(
                    &format!("/credentials/{}/revoke-tokens", segment(&a.client_id)),
                    &serde_json::json!({}),
                )
                .await?;
            print(a.admin.output, &r, || {
                println!(
                    "revoked every token of {} issued before {}",
                    r.client_id,
                    output::when(Some(r.issued_before), "")
                );
                Ok(())
            })
        }
    }
}

async fn status(a: TargetArgs, action: &str) -> Result<ExitCode> {
    let client = AdminClient::connect(&a.admin).await?;
    let c: dto::Credential = client
        .post(&format!("/credentials/{}/{action}", segment(&a.client_id)), &serde_json::json!({}))
        .await?;
    print(a.admin.output, &c, || show(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn claims_show_line_separators_and_bidi_controls_escaped() {
        let claims: dto::Claims =
            [("file".to_owned(), serde_json::json!("\u{202e}gnp.exe\u{2028}x"))]
                .into_iter()
                .collect();
        let text = claims_text(&claims);
        assert!(!text.contains('\u{202e}') && !text.contains('\u{2028}'), "{text:?}");
        assert!(text.contains("\\u{202e}gnp.exe"), "{text}");
    }

    #[test]
    fn a_secret_says_whether_it_expires_or_has_expired() {
        let secret = |expires_at| dto::SecretInfo {
            id: "sec_1".into(),
            hint: "tms_ab…".into(),
            created_at: datetime!(2026-12-01 10:00 UTC),
            expires_at,
            last_used_at: None,
        };
        let now = datetime!(2026-12-07 12:00 UTC);
        let line = secret_line(&secret(None), now);
        assert!(line.ends_with("expires never)"), "{line}");
        let line = secret_line(&secret(Some(datetime!(2026-12-08 12:00 UTC))), now);
        assert!(line.contains(", expires 2026-12-08"), "{line}");
        let line = secret_line(&secret(Some(datetime!(2026-12-06 12:00 UTC))), now);
        assert!(line.contains(", expired 2026-12-06"), "{line}");
    }
}
