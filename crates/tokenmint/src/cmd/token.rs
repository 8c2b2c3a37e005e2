//! `tokenmint token`: fetches an access token with the client SDK and prints it. Also the client
//! options `tokenmint call` shares, and what their failures tell the user.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, ValueEnum};
use tokenmint_client::{
    AuthStyle, ClientConfig, ErrorKind, PrivateKey, RetryPolicy, SecretSource, TokenClient,
};

use crate::exit::{self, Failure};

/// How to reach and authenticate to a token endpoint: any OAuth 2.0 server, not only tokenmint.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The token endpoint URL, e.g. https://auth.example.com/oauth/token (or give --issuer).
    #[arg(long, env = "TOKENMINT_TOKEN_URL", value_name = "URL")]
    pub token_url: Option<String>,
    /// The authorization server's issuer URL; the token endpoint is read from its metadata
    /// (RFC 8414, then OpenID Connect discovery) instead of being given with --token-url.
    #[arg(long, env = "TOKENMINT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Which of the two came from the environment rather than a flag; see
    /// [`ClientArgs::note_sources`].
    #[arg(skip)]
    pub from_env: EndpointSources,
    /// When the command started, for what is left of --timeout; see
    /// [`ClientArgs::note_sources`].
    #[arg(skip)]
    pub started: Option<std::time::Instant>,
    /// The client id.
    #[arg(long, env = "TOKENMINT_CLIENT_ID", value_name = "ID")]
    pub client_id: String,
    /// A file holding the client secret. Without it the secret is read from
    /// TOKENMINT_CLIENT_SECRET; it is never taken as a flag value, which other users could read
    /// in the process list.
    #[arg(long, env = "TOKENMINT_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Authenticate with a private_key_jwt assertion (RFC 7523) signed by this private key (PEM,
    /// or a private JWK of an RSA, EC or Ed25519 key) instead of a secret: a fresh assertion, valid
    /// 60 s, for every token request.
    #[arg(
        long,
        env = "TOKENMINT_PRIVATE_KEY",
        value_name = "FILE",
        conflicts_with = "client_secret_file"
    )]
    pub private_key: Option<PathBuf>,
    /// Client authentication: `basic` (HTTP Basic), `post` (form body) or `json` (JSON body, as
    /// Auth0-style servers expect).
    #[arg(long, env = "TOKENMINT_AUTH", value_enum, value_name = "STYLE", default_value = "post")]
    pub auth: AuthArg,
    /// The `audience` to request.
    #[arg(long, env = "TOKENMINT_AUDIENCE", value_name = "AUD")]
    pub audience: Option<String>,
    /// A resource the token is for (RFC 8707 resource indicator, an absolute URI); repeatable.
    #[arg(
        long = "resource",
        env = "TOKENMINT_RESOURCE",
        value_name = "URI",
        value_delimiter = ','
    )]
    pub resources: Vec<String>,
    /// The scopes to request, space-separated.
    #[arg(long, env = "TOKENMINT_SCOPE", value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Send no `grant_type` (for servers that take every request as client credentials).
    #[arg(long, env = "TOKENMINT_NO_GRANT_TYPE")]
    pub no_grant_type: bool,
    /// The longest the token fetch may take, retries included; for `call`, also the longest
    /// wait for the API's answer and between two pieces of its body (e.g. 30s, 2m).
    #[arg(long, env = "TOKENMINT_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = positive_duration)]
    pub timeout: Duration,
    /// The longest wait for a connection (TCP and TLS) to any server (e.g. 10s).
    #[arg(long, env = "TOKENMINT_CONNECT_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = positive_duration)]
    pub connect_timeout: Duration,
    /// A TOML file of option values, keys named as the options with `_` for `-`
    /// (`token_url = "https://auth.example.com/oauth/token"`, `client_id = "…"`, `scope = "…"`):
    /// at the top, or in a `[token]` or `[call]` table for that command alone. A flag and a
    /// TOKENMINT_* variable beat it. Never put the secret in it: name a --client-secret-file.
    #[arg(long, env = "TOKENMINT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

enum Endpoint<'a> {
    TokenUrl(&'a str),
    Issuer(&'a str),
}

/// A duration such as `30s`, `1m 30s` or `500ms`, more than zero.
fn positive_duration(value: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(value)
        .map_err(|e| format!("{e} (write it as 30s, 2m or 500ms)"))?;
    if duration.is_zero() {
        return Err("must be more than zero".to_owned());
    }
    Ok(duration)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthArg {
    Basic,
    Post,
    Json,
}

impl From<AuthArg> for AuthStyle {
    fn from(arg: AuthArg) -> Self {
        match arg {
            AuthArg::Basic => Self::Basic,
            AuthArg::Post => Self::Post,
            AuthArg::Json => Self::Json,
        }
    }
}

/// The environment variable the secret comes from when no file is named.
pub const SECRET_ENV: &str = "TOKENMINT_CLIENT_SECRET";

/// Where `--token-url` and `--issuer` came from, weakest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    #[default]
    File,
    Variable,
    Flag,
}

/// Where each of `--token-url` and `--issuer` came from.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointSources {
    pub token_url: Source,
    pub issuer: Source,
}

impl ClientArgs {
    /// Records where `--token-url` and `--issuer` came from. `TOKENMINT_ISSUER` is also the
    /// server's and the verifier's setting, so it is often set in a shell where a token is
    /// fetched from an explicit `--token-url`: a flag beats the environment, which beats the
    /// config file, as everywhere else.
    pub fn note_sources(&mut self, matches: &ArgMatches) {
        self.started = Some(std::time::Instant::now());
        let source = |id: &str| match matches.value_source(id) {
            Some(ValueSource::CommandLine) => Source::Flag,
            Some(ValueSource::EnvVariable) => Source::Variable,
            _ => Source::File,
        };
        self.from_env =
            EndpointSources { token_url: source("token_url"), issuer: source("issuer") };
    }

    /// The token endpoint or the issuer to discover it from. The one from the stronger source
    /// wins; from the environment or the file alike, the token URL is the more specific.
    fn endpoint(&self) -> Result<Endpoint<'_>, Failure> {
        match (&self.token_url, &self.issuer) {
            (Some(url), None) => Ok(Endpoint::TokenUrl(url)),
            (None, Some(issuer)) => Ok(Endpoint::Issuer(issuer)),
            (Some(url), Some(issuer)) => {
                let EndpointSources { token_url, issuer: issuer_from } = self.from_env;
                if token_url == Source::Flag && issuer_from == Source::Flag {
                    Err(Failure::new(
                        exit::USAGE,
                        "--token-url and --issuer cannot be used together: give one of them",
                    ))
                } else if issuer_from > token_url {
                    Ok(Endpoint::Issuer(issuer))
                } else {
                    Ok(Endpoint::TokenUrl(url))
                }
            }
            (None, None) => Err(Failure::new(
                exit::USAGE,
                "no token endpoint: give --token-url URL or --issuer URL (or set \
                 TOKENMINT_TOKEN_URL or TOKENMINT_ISSUER)",
            )),
        }
    }

    pub fn config(&self) -> Result<ClientConfig> {
        let key = match &self.private_key {
            Some(path) => Some(
                PrivateKey::from_file(path)
                    .with_context(|| format!("--private-key {}", path.display()))?,
            ),
            None => None,
        };
        let secret = match (&self.client_secret_file, &key) {
            // Never read: the assertion authenticates.
            (_, Some(_)) => SecretSource::value(""),
            (Some(path), None) => SecretSource::file(path),
            (None, None) if std::env::var_os(SECRET_ENV).is_some() => SecretSource::env(SECRET_ENV),
            (None, None) => bail!(
                "no client secret: set {SECRET_ENV}, pass --client-secret-file FILE, or \
                 authenticate with --private-key FILE"
            ),
        };
        let id = self.client_id.clone();
        let config = match self.endpoint()? {
            // A malformed URL is a mistake in what was typed: exit 2, as `call` gives for its.
            Endpoint::TokenUrl(url) => ClientConfig::new(url, id, secret).map_err(|e| {
                Failure::new(exit::USAGE, format!("invalid --token-url '{url}': {e}")).hint(
                    "give an http:// or https:// URL with a host, like \
                     https://auth.example.com/oauth/token",
                )
            })?,
            Endpoint::Issuer(issuer) => ClientConfig::discover(issuer, id, secret).map_err(|e| {
                Failure::new(exit::USAGE, format!("invalid --issuer '{issuer}': {e}"))
                    .hint("give an http:// or https:// URL with a host, like https://auth.example.com")
            })?,
        };
        let mut config = config
            .auth_style(self.auth.into())
            .send_grant_type(!self.no_grant_type)
            .request_timeout(self.timeout)
            .wait_timeout(self.timeout)
            // A pause longer than the whole fetch may take, or than what is left of it, fails at
            // once, saying how long the server asked for, instead of ending in a timeout that
            // hides it.
            .retry_policy(RetryPolicy {
                max_retry_after: self.timeout,
                give_up_after: Some(self.timeout),
                ..RetryPolicy::default()
            });
        if let Some(audience) = &self.audience {
            config = config.audience(audience.clone());
        }
        for resource in &self.resources {
            config = config.resource(resource.clone());
        }
        if let Some(scope) = &self.scope {
            config = config.scope(scope);
        }
        if let Some(key) = key {
            config = config.private_key(key);
        }
        Ok(config)
    }

    /// The HTTP client for the token endpoint and discovery. It follows no redirect: a
    /// redirected token request would carry the credentials wherever the redirect points.
    pub fn http_client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .user_agent(concat!("tokenmint/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("cannot build the HTTP client")
    }

    pub fn client(&self) -> Result<TokenClient> {
        Ok(TokenClient::builder(self.config()?).http_client(self.http_client()?).build()?)
    }

    /// Where the token comes from, for messages.
    fn endpoint_flag(&self) -> &'static str {
        match self.endpoint() {
            Ok(Endpoint::Issuer(_)) => "--issuer",
            _ => "--token-url",
        }
    }

    /// What a failure to get a token means for the user, with the exit status of its kind and a
    /// hint that names this command's settings.
    pub fn token_failure(&self, error: tokenmint_client::Error) -> Failure {
        let code = exit::for_kind(error.kind());
        if let (Some(wait), Some(status)) = (error.retry_after(), error.status())
            && (status.as_u16() == 429 || status.is_server_error())
            && self.started.map_or(Duration::ZERO, |t| t.elapsed()).saturating_add(wait)
                > self.timeout
        {
            // The fetch stopped at once rather than wait past --timeout (see `config`): say how
            // long the server asked for, which a timeout would hide.
            return Failure::new(
                code,
                format!(
                    "no access token: {}; that is more than --timeout {} allows",
                    exit::with_causes(&error),
                    exit::duration(self.timeout)
                ),
            )
            .hint(format!(
                "try again in {} s, or give a --timeout longer than the wait",
                wait.as_secs()
            ));
        }
        let failure = Failure::new(code, format!("no access token: {}", exit::with_causes(&error)));
        let endpoint = self.endpoint_flag();
        let hint = match (error.kind(), error.oauth_error(), error.status().map(|s| s.as_u16())) {
            (ErrorKind::Refused, Some("invalid_client"), _) => Some(format!(
                "check --client-id, the secret ({SECRET_ENV} or --client-secret-file) and \
                 whether the server expects --auth basic, post or json (now {})",
                AuthStyle::from(self.auth)
            )),
            (ErrorKind::Refused, Some("invalid_scope"), _) => {
                Some("check --scope against what the client may ask for".to_owned())
            }
            (ErrorKind::Refused, Some("invalid_target"), _) => {
                Some("check --audience and --resource against the client's audiences".to_owned())
            }
            (ErrorKind::Refused, Some("unsupported_grant_type" | "invalid_request"), _) => {
                Some(format!(
                    "check --auth (basic, post or json; now {}) and, for servers that take every \
                     request as client credentials, --no-grant-type",
                    AuthStyle::from(self.auth)
                ))
            }
            (ErrorKind::Status, _, Some(404 | 405)) => {
                Some(format!("check {endpoint}: the server has no token endpoint there"))
            }
            (ErrorKind::Status, _, Some(415)) => Some(format!(
                "the server does not take this body format: try another --auth (now {})",
                AuthStyle::from(self.auth)
            )),
            (ErrorKind::Network, _, _) => {
                Some(format!("check {endpoint} and that the server is running"))
            }
            (ErrorKind::Timeout, _, _) => Some(format!(
                "nothing within --timeout {} (connecting: --connect-timeout {})",
                exit::duration(self.timeout),
                exit::duration(self.connect_timeout)
            )),
            (ErrorKind::InvalidResponse, _, _) if self.endpoint_flag() == "--issuer" => {
                Some("check --issuer: it must be the issuer the server's metadata names".to_owned())
            }
            _ => None,
        };
        match hint {
            Some(hint) => failure.hint(hint),
            None => failure,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenOutput {
    #[value(alias = "table")]
    Token,
    Json,
}

#[derive(Debug, Args)]
#[command(after_help = exit::HELP)]
pub struct TokenArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// `token` prints the access token alone; `json` prints the whole token response.
    #[arg(
        long,
        env = "TOKENMINT_TOKEN_OUTPUT",
        value_enum,
        value_name = "FORMAT",
        default_value = "token"
    )]
    pub output: TokenOutput,
}

pub async fn run(args: TokenArgs) -> Result<ExitCode> {
    let client = args.client.client()?;
    let token = client.token().await.map_err(|e| args.client.token_failure(e))?;
    // Printing the token is this command's whole purpose; it goes to stdout only.
    match args.output {
        TokenOutput::Token => {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", token.access_token().secret())?;
        }
        TokenOutput::Json => crate::output::json(token.expose_response())?,
    }
    Ok(ExitCode::SUCCESS)
}
