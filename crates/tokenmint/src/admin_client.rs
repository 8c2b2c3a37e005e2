//! The admin subcommands' HTTP client: obtains a token with the admin credential, then calls
//! `/admin/v1`, turning problem+json answers into readable errors.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Base URL of the tokenmint server.
    #[arg(
        long,
        env = "TOKENMINT_ENDPOINT",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub endpoint: String,
    /// The admin credential JSON that `tokenmint init` printed (or set TOKENMINT_CLIENT_ID and
    /// TOKENMINT_CLIENT_SECRET).
    #[arg(long, env = "TOKENMINT_ADMIN_CREDENTIALS", value_name = "FILE", global = true)]
    pub admin_credentials: Option<PathBuf>,
    /// Output format.
    #[arg(long, env = "TOKENMINT_OUTPUT", value_enum, default_value = "table", global = true)]
    pub output: OutputFormat,
}

#[derive(serde::Deserialize)]
struct CredentialFile {
    client_id: String,
    client_secret: String,
    #[serde(default)]
    token_endpoint: Option<String>,
}

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl AdminClient {
    pub async fn connect(args: &AdminArgs) -> Result<Self> {
        let base = args.endpoint.trim_end_matches('/').to_owned();
        let (client_id, client_secret, token_endpoint) = match &args.admin_credentials {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| {
                    format!("cannot read the admin credentials {}", path.display())
                })?;
                let f: CredentialFile = serde_json::from_str(&text).with_context(|| {
                    format!(
                        "{} is not the JSON `tokenmint init` prints (client_id, client_secret)",
                        path.display()
                    )
                })?;
                (f.client_id, f.client_secret, f.token_endpoint)
            }
            None => match (
                std::env::var("TOKENMINT_CLIENT_ID"),
                std::env::var("TOKENMINT_CLIENT_SECRET"),
            ) {
                (Ok(id), Ok(secret)) => (id, secret, None),
                _ => bail!(
                    "no admin credentials: pass --admin-credentials FILE (the JSON `tokenmint init` prints) or set \
                     TOKENMINT_CLIENT_ID and TOKENMINT_CLIENT_SECRET"
                ),
            },
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("tokenmint-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")?;
        // The server says where its token endpoint is; the file's copy may name another port.
        let discovered = discover_token_endpoint(&http, &base).await;
        let token_url =
            discovered.or(token_endpoint).unwrap_or_else(|| format!("{base}/oauth/token"));
        let res = http
            .post(&token_url)
            .basic_auth(url_form(&client_id), Some(url_form(&client_secret)))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", tokenmint_proto::system_scopes::ADMIN),
            ])
            .send()
            .await
            .with_context(|| format!("cannot reach the token endpoint {token_url}"))?;
        let status = res.status();
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        if !status.is_success() {
            let error = body.get("error").and_then(|v| v.as_str()).unwrap_or("error");
            let desc = body.get("error_description").and_then(|v| v.as_str()).unwrap_or("");
            bail!("the admin credential was refused ({status}): {error}: {desc}");
        }
        let token = body
            .get("access_token")
            .and_then(|v| v.as_str())
            .ok_or_else(|| anyhow!("the token endpoint answered without an access_token"))?
            .to_owned();
        Ok(Self { http, base, token })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin/v1{path}", self.base)
    }

    async fn finish<T: DeserializeOwned>(res: reqwest::Response) -> Result<T> {
        let status = res.status();
        if status.is_success() {
            let text = res.text().await?;
            let text = if text.is_empty() { "null".to_owned() } else { text };
            return serde_json::from_str(&text)
                .context("the server's answer was not the expected JSON");
        }
        let problem: serde_json::Value = res.json().await.unwrap_or_default();
        let title = problem.get("title").and_then(|v| v.as_str()).unwrap_or("request failed");
        let detail = problem.get("detail").and_then(|v| v.as_str()).unwrap_or("");
        let field = problem
            .get("field")
            .and_then(|v| v.as_str())
            .map(|f| format!(" (field: {f})"))
            .unwrap_or_default();
        bail!("{} {title}: {detail}{field}", status.as_u16())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let res = self
            .http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("request failed")?;
        Self::finish(res).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .context("request failed")?;
        Self::finish(res).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let res = self
            .http
            .patch(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .context("request failed")?;
        Self::finish(res).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        let res = self
            .http
            .delete(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .context("request failed")?;
        Self::finish::<serde_json::Value>(res).await.map(|_| ())
    }
}

async fn discover_token_endpoint(http: &reqwest::Client, base: &str) -> Option<String> {
    let res =
        http.get(format!("{base}/.well-known/oauth-authorization-server")).send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    let doc: serde_json::Value = res.json().await.ok()?;
    doc.get("token_endpoint")?.as_str().map(str::to_owned)
}

/// `application/x-www-form-urlencoded` encoding of one value; RFC 6749 §2.3.1 applies it to the
/// client id and secret before Basic encoding.
fn url_form(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(char::from(b))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes one URL path segment.
pub fn segment(s: &str) -> String {
    url_form(s).replace('+', "%20")
}
