//! The admin subcommands' HTTP client: obtains a token with the admin credential through the
//! client SDK (discovery, RFC 6749 §2.3.1 Basic credentials, retries, refresh on a 401), then
//! calls `/admin/v1`, turning problem+json answers into readable errors.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokenmint_client::text::printable;
use tokenmint_client::{AuthStyle, ClientConfig, ErrorKind, SecretString, TokenClient};

use crate::exit::{self, Failure};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// The API's JSON.
    Json,
    /// Shell assignments (`CLIENT_ID='tmc_…'`) of the answer's top-level fields, for
    /// `eval "$(tokenmint … --output env)"` in scripts.
    Env,
}

#[derive(Debug, Clone, Args)]
pub struct AdminArgs {
    /// Base URL of the tokenmint server. [default: the server named in the admin credential
    /// file that `serve` wrote, else http://127.0.0.1:8080]
    #[arg(long, env = "TOKENMINT_ENDPOINT", value_name = "URL", global = true)]
    pub endpoint: Option<String>,
    /// The admin credential JSON: the file `serve` wrote on its first start
    /// (tokenmint-admin.json next to the database) or what `tokenmint init` printed (or set
    /// TOKENMINT_CLIENT_ID and TOKENMINT_CLIENT_SECRET).
    #[arg(long, env = "TOKENMINT_ADMIN_CREDENTIALS", value_name = "FILE", global = true)]
    pub admin_credentials: Option<PathBuf>,
    /// Output format: `table`, `json`, or `env` (shell assignments such as `CLIENT_ID='tmc_…'`
    /// for `eval`).
    #[arg(
        long,
        env = "TOKENMINT_OUTPUT",
        value_enum,
        value_name = "FORMAT",
        default_value = "table",
        global = true
    )]
    pub output: OutputFormat,
    /// A TOML file of option values, keys named as the options with `_` for `-`
    /// (`endpoint = "https://auth.example.com"`, `org = "acme"`, `permission = ["claims:read"]`):
    /// at the top for every command, in a `[credentials]` or `[credentials.create]` table for
    /// those commands alone. A flag and a TOKENMINT_* variable beat it.
    #[arg(long, env = "TOKENMINT_CONFIG", value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// The file `serve` writes the admin credential to on its first start, next to its default
/// database in the working directory.
const DEFAULT_ADMIN_FILE: &str = "tokenmint-admin.json";

/// What to do when no admin credential was given, naming the file `serve` wrote when it is in
/// the working directory.
fn no_admin_credentials(default_file_here: bool) -> String {
    let mut message = format!(
        "no admin credentials: pass --admin-credentials FILE or set TOKENMINT_ADMIN_CREDENTIALS=FILE, \
         where FILE is what the server wrote on its first start ({DEFAULT_ADMIN_FILE} next to the \
         database, unless `tokenmint serve --admin-credential-file` named another) or the JSON \
         `tokenmint init` printed; or set TOKENMINT_CLIENT_ID and TOKENMINT_CLIENT_SECRET."
    );
    if default_file_here {
        message.push_str(&format!(
            " {DEFAULT_ADMIN_FILE} is in this directory: export \
             TOKENMINT_ADMIN_CREDENTIALS={DEFAULT_ADMIN_FILE}"
        ));
    }
    message
}

/// The server asked when neither `--endpoint` nor the credential file names one.
const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

#[derive(serde::Deserialize)]
struct CredentialFile {
    client_id: String,
    client_secret: String,
    /// The server's base URL (its issuer), written by `serve` since the file names it.
    #[serde(default)]
    endpoint: Option<String>,
    #[serde(default)]
    token_endpoint: Option<String>,
}

impl CredentialFile {
    /// The server the file's credential belongs to: its `endpoint`, or for a file written
    /// before it was recorded, the origin of its token endpoint (a server listening on another
    /// port is asked there, not at the default one).
    fn server(&self) -> Option<String> {
        if let Some(endpoint) = self.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
            return Some(endpoint.to_owned());
        }
        let url = reqwest::Url::parse(self.token_endpoint.as_deref()?).ok()?;
        let origin = url.origin();
        origin.is_tuple().then(|| origin.ascii_serialization())
    }
}

/// The server to ask: `--endpoint` (or TOKENMINT_ENDPOINT) when given, else the one the
/// credential file names, else the default.
fn choose_endpoint(given: Option<&str>, file: Option<&CredentialFile>) -> String {
    let chosen = match given.map(str::trim).filter(|g| !g.is_empty()) {
        Some(given) => given.to_owned(),
        None => file.and_then(CredentialFile::server).unwrap_or_else(|| DEFAULT_ENDPOINT.into()),
    };
    chosen.trim_end_matches('/').to_owned()
}

/// An admin operation waits this long for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// An admin operation waits this long for each answer (an audit export may take a while).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    tokens: TokenClient,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminClient").field("base", &self.base).finish_non_exhaustive()
    }
}

impl AdminClient {
    /// Reads the admin credential and obtains a token with it, so that a refused or unreachable
    /// server is reported before any work is done.
    pub async fn connect(args: &AdminArgs) -> Result<Self> {
        let (client_id, client_secret, token_endpoint, base) = match &args.admin_credentials {
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
                let base = choose_endpoint(args.endpoint.as_deref(), Some(&f));
                (f.client_id, SecretString::new(f.client_secret), f.token_endpoint, base)
            }
            None => match (
                std::env::var("TOKENMINT_CLIENT_ID").ok().filter(|v| !v.is_empty()),
                std::env::var("TOKENMINT_CLIENT_SECRET").ok().filter(|v| !v.is_empty()),
            ) {
                (Some(id), Some(secret)) => {
                    let base = choose_endpoint(args.endpoint.as_deref(), None);
                    (id, SecretString::new(secret), None, base)
                }
                _ => bail!("{}", no_admin_credentials(Path::new(DEFAULT_ADMIN_FILE).is_file())),
            },
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("tokenmint-cli/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            // The admin token travels in every request: it must not follow a redirect elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("cannot build the HTTP client")?;
        let token_client = |config: ClientConfig| {
            TokenClient::builder(
                config
                    .auth_style(AuthStyle::Basic)
                    .scope(tokenmint_proto::system_scopes::ADMIN)
                    .request_timeout(READ_TIMEOUT),
            )
            .http_client(http.clone())
            .build()
        };
        let endpoint_error = |e: tokenmint_client::Error| {
            anyhow::Error::new(e).context(format!("invalid --endpoint '{base}'"))
        };

        // The server says where its token endpoint is (the credential file's copy may name
        // another port); a server whose metadata cannot be read or names another issuer (one
        // reached through a proxy) is asked at the file's endpoint, else at the default path.
        // The admin API accepts tokens for the issuer alone, so the token is asked for it by
        // name: a credential that lists other audiences too would otherwise get all of them.
        let discovered = ClientConfig::discover(&base, client_id.clone(), client_secret.clone())
            .map_err(endpoint_error)?
            .audience(base.clone());
        let tokens = token_client(discovered)?;
        let tokens = match tokens.token().await {
            Ok(_) => tokens,
            Err(tokenmint_client::Error::Discovery { kind, .. })
                if !matches!(kind, ErrorKind::Network | ErrorKind::Timeout) =>
            {
                let url = token_endpoint.unwrap_or_else(|| format!("{base}/oauth/token"));
                let config = ClientConfig::new(&url, client_id, client_secret)
                    .with_context(|| format!("invalid token_endpoint '{url}'"))?;
                let tokens = token_client(config)?;
                tokens.token().await.map_err(|e| admin_token_failure(e, &base))?;
                tokens
            }
            Err(e) => return Err(admin_token_failure(e, &base).into()),
        };
        Ok(Self { http, base, tokens })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/admin/v1{path}", self.base)
    }

    /// Sends with the admin token: a 401 gets a new token and one retry; 429 and 503 are
    /// retried only for reads and other idempotent requests.
    async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response> {
        match self.tokens.send(request).await {
            Ok(response) => Ok(response),
            Err(tokenmint_client::Error::Request(e)) => {
                let what =
                    if e.is_timeout() { "did not answer in time" } else { "could not be reached" };
                Err(anyhow::Error::new(tokenmint_client::Error::Request(e))
                    .context(format!("the admin API at {} {what}", self.base)))
            }
            Err(e) => Err(admin_token_failure(e, &self.base).into()),
        }
    }

    async fn finish<T: DeserializeOwned>(res: reqwest::Response, path: &str) -> Result<T> {
        let status = res.status();
        if status.is_success() {
            let text = res.text().await?;
            let text = if text.is_empty() { "null".to_owned() } else { text };
            return serde_json::from_str(&text)
                .context("the server's answer was not the expected JSON");
        }
        let body = res.bytes().await.unwrap_or_default();
        let Ok(problem) = serde_json::from_slice::<tokenmint_proto::Problem>(&body) else {
            bail!("{status}: the server answered without a problem+json body");
        };
        let detail =
            problem.detail.as_deref().map(|d| format!(": {}", printable(d))).unwrap_or_default();
        let field = problem
            .field
            .as_deref()
            .map(|f| format!(" (field: {})", printable(f)))
            .unwrap_or_default();
        Err(ApiRefusal {
            status: status.as_u16(),
            message: format!("{} {}{detail}{field}", status.as_u16(), printable(&problem.title)),
            hint: (status == reqwest::StatusCode::NOT_FOUND).then(|| not_found_hint(path)),
        }
        .into())
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let res = self.send(self.http.get(self.url(path))).await?;
        Self::finish(res, path).await
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let res = self.send(self.http.post(self.url(path)).json(body)).await?;
        Self::finish(res, path).await
    }

    pub async fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        let res = self.send(self.http.patch(self.url(path)).json(body)).await?;
        Self::finish(res, path).await
    }

    pub async fn delete(&self, path: &str) -> Result<()> {
        let res = self.send(self.http.delete(self.url(path))).await?;
        Self::finish::<serde_json::Value>(res, path).await.map(|_| ())
    }
}

/// An error answer of the admin API, kept typed so that a command can add a hint for a status
/// it understands (a 409 from `orgs create`, say).
#[derive(Debug)]
pub struct ApiRefusal {
    pub status: u16,
    pub message: String,
    /// What to do about it, when the answer alone does not say (see [`crate::exit::hint_of`]).
    pub hint: Option<String>,
}

/// What to run to find the right name after a 404 from the admin API at `path`: the listing of
/// what the path names.
fn not_found_hint(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let mut segments = path.trim_start_matches('/').split('/');
    let (kind, named) = (segments.next().unwrap_or(""), segments.next().is_some());
    let listing = match kind {
        "credentials" if named => {
            "`tokenmint credentials list` shows the client ids you can manage"
        }
        "users" if named => "`tokenmint users list` shows the users and their ids",
        "keys" if named => "`tokenmint keys list` shows the signing keys and their ids",
        // An organization named in the path, or the organization filter of a listing (the
        // only thing a listing can fail to find).
        _ => "`tokenmint orgs list` shows the organizations and their slugs",
    };
    format!("{listing}; ids and slugs are matched exactly")
}

impl std::fmt::Display for ApiRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiRefusal {}

/// A failure to get the admin token, with the exit status of its kind and a hint naming the
/// admin commands' own settings.
fn admin_token_failure(error: tokenmint_client::Error, base: &str) -> Failure {
    let code = exit::for_kind(error.kind());
    let failure = Failure::new(
        code,
        format!("the admin credential did not get a token: {}", exit::with_causes(&error)),
    );
    match error.kind() {
        ErrorKind::Refused => failure.hint(
            "check --admin-credentials (TOKENMINT_ADMIN_CREDENTIALS), or TOKENMINT_CLIENT_ID and \
             TOKENMINT_CLIENT_SECRET: the credential must be active and hold tokenmint:admin",
        ),
        ErrorKind::Network | ErrorKind::Timeout => failure.hint(format!(
            "check --endpoint ({base}, or TOKENMINT_ENDPOINT) and that `tokenmint serve` is running"
        )),
        _ => failure,
    }
}

/// Percent-encodes one URL path segment or query value (RFC 3986 unreserved characters stay).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(endpoint: Option<&str>, token_endpoint: Option<&str>) -> CredentialFile {
        CredentialFile {
            client_id: "tmc_x".into(),
            client_secret: "s".into(),
            endpoint: endpoint.map(str::to_owned),
            token_endpoint: token_endpoint.map(str::to_owned),
        }
    }

    #[test]
    fn a_not_found_answer_names_the_listing_of_what_was_not_found() {
        assert!(not_found_hint("/credentials/tmc_x/rotate").contains("credentials list"));
        assert!(not_found_hint("/users/usr_1").contains("users list"));
        assert!(not_found_hint("/keys/k1/withdraw").contains("keys list"));
        assert!(not_found_hint("/organizations/acme").contains("orgs list"));
        // A listing finds nothing only when its organization filter names none.
        assert!(not_found_hint("/users?org=acme").contains("orgs list"));
        assert!(not_found_hint("/audit?limit=10&org=acme").contains("orgs list"));
    }

    #[test]
    fn the_admin_commands_ask_the_server_the_credential_file_names_unless_told_another() {
        let written =
            file(Some("http://127.0.0.1:9000/"), Some("http://127.0.0.1:9000/oauth/token"));
        assert_eq!(choose_endpoint(None, Some(&written)), "http://127.0.0.1:9000");
        assert_eq!(
            choose_endpoint(Some("https://auth.example.com/"), Some(&written)),
            "https://auth.example.com",
            "--endpoint wins"
        );
        // A file written before `endpoint` was recorded: its token endpoint's origin, whatever
        // the token path.
        let older = file(None, Some("http://127.0.0.1:9100/connect/token"));
        assert_eq!(choose_endpoint(None, Some(&older)), "http://127.0.0.1:9100");
        assert_eq!(choose_endpoint(None, Some(&file(None, None))), DEFAULT_ENDPOINT);
        assert_eq!(choose_endpoint(None, Some(&file(None, Some("not a url")))), DEFAULT_ENDPOINT);
        assert_eq!(choose_endpoint(Some("  "), None), DEFAULT_ENDPOINT);
        assert_eq!(choose_endpoint(None, None), DEFAULT_ENDPOINT);
    }
}
