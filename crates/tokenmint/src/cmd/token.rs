//! `tokenmint token`: fetches an access token with the client SDK and prints it. Also the client
//! options `tokenmint call` shares.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use tokenmint_client::{AuthStyle, ClientConfig, SecretSource, TokenClient};

/// How to reach and authenticate to a token endpoint: any OAuth 2.0 server, not only tokenmint.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// The token endpoint URL, e.g. https://auth.example.com/oauth/token.
    #[arg(long, env = "TOKENMINT_TOKEN_URL", value_name = "URL")]
    pub token_url: String,
    /// The client id.
    #[arg(long, env = "TOKENMINT_CLIENT_ID", value_name = "ID")]
    pub client_id: String,
    /// A file holding the client secret. Without it the secret is read from
    /// TOKENMINT_CLIENT_SECRET; it is never taken as a flag value, which other users could read
    /// in the process list.
    #[arg(long, env = "TOKENMINT_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Client authentication: `basic` (HTTP Basic), `post` (form body) or `json` (JSON body, as
    /// Auth0-style servers expect).
    #[arg(long, env = "TOKENMINT_AUTH", value_enum, default_value = "post")]
    pub auth: AuthArg,
    /// The `audience` to request.
    #[arg(long, env = "TOKENMINT_AUDIENCE", value_name = "AUD")]
    pub audience: Option<String>,
    /// The scopes to request, space-separated.
    #[arg(long, env = "TOKENMINT_SCOPE", value_name = "SCOPE")]
    pub scope: Option<String>,
    /// Send no `grant_type` (for servers that take every request as client credentials).
    #[arg(long, env = "TOKENMINT_NO_GRANT_TYPE")]
    pub no_grant_type: bool,
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

impl ClientArgs {
    pub fn config(&self) -> Result<ClientConfig> {
        let secret = match &self.client_secret_file {
            Some(path) => SecretSource::file(path),
            None if std::env::var_os(SECRET_ENV).is_some() => SecretSource::env(SECRET_ENV),
            None => bail!("no client secret: set {SECRET_ENV} or pass --client-secret-file FILE"),
        };
        let mut config = ClientConfig::new(&self.token_url, self.client_id.clone(), secret)
            .with_context(|| format!("invalid --token-url '{}'", self.token_url))?
            .auth_style(self.auth.into())
            .send_grant_type(!self.no_grant_type);
        if let Some(audience) = &self.audience {
            config = config.audience(audience.clone());
        }
        if let Some(scope) = &self.scope {
            config = config.scope(scope);
        }
        Ok(config)
    }

    pub fn client(&self) -> Result<TokenClient> {
        Ok(TokenClient::new(self.config()?)?)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TokenOutput {
    /// The access token alone.
    #[value(alias = "table")]
    Token,
    /// The whole token response.
    Json,
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(flatten)]
    pub client: ClientArgs,
    /// `json` prints the whole token response instead of the token alone.
    #[arg(long, env = "TOKENMINT_OUTPUT", value_enum, default_value = "token")]
    pub output: TokenOutput,
}

pub async fn run(args: TokenArgs) -> Result<ExitCode> {
    let client = args.client.client()?;
    let token = client.token().await?;
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
