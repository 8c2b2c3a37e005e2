//! Configuration layering for `serve`, `init` and `migrate`: a flag beats its `TOKENMINT_*`
//! environment variable, which beats the TOML file (`--config`), which beats the default. Values
//! are validated once, with errors that name the setting in all three spellings and say what is
//! allowed.

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokenmint_core::MasterKey;
use tokenmint_core::keys::SigningAlgorithm;
use tokenmint_core::scope::ProductAreas;
use tokenmint_http::config_file;
use tokenmint_server::Config;

pub const DEFAULT_DATABASE: &str = "sqlite://tokenmint.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Options shared by every command that opens the database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// TOML configuration file; flags and TOKENMINT_* variables override it.
    #[arg(long, env = "TOKENMINT_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH (created on first start) or postgres://USER@HOST/DB. [default: sqlite://tokenmint.db]
    #[arg(long, env = "TOKENMINT_DATABASE", value_name = "URL")]
    pub database: Option<String>,
    /// File holding the 64-hex-character master key that encrypts signing keys and keys secret
    /// hashes (or set TOKENMINT_MASTER_KEY to the key itself). With SQLite and neither given,
    /// one is generated next to the database file.
    #[arg(long, env = "TOKENMINT_MASTER_KEY_FILE", value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Address to listen on. [default: 127.0.0.1:8080]
    #[arg(long, env = "TOKENMINT_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// The `iss` claim and base of every advertised URL. [default: http:// + the listen address]
    #[arg(long, env = "TOKENMINT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Path of the token endpoint; repeat for aliases (e.g. /authorize, /connect/token,
    /// /api/auth/v2/token). [default: /oauth/token]
    #[arg(
        long = "token-path",
        env = "TOKENMINT_TOKEN_PATH",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub token_paths: Vec<String>,
    /// Take a token request without grant_type as client_credentials (Candid's dialect).
    #[arg(long, env = "TOKENMINT_ALLOW_MISSING_GRANT_TYPE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub allow_missing_grant_type: Option<bool>,
    /// Algorithm of new signing keys: RS256, ES256 or EdDSA. [default: RS256]
    #[arg(long, env = "TOKENMINT_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// Token requests per minute per credential (0: no limit); a credential's own limit wins. [default: 100]
    #[arg(long, env = "TOKENMINT_TOKEN_RATE_LIMIT", value_name = "N")]
    pub token_rate_limit: Option<u32>,
    /// A product area whose permissions credentials can be given (AREA:read, AREA:write); repeatable.
    #[arg(
        long = "product-area",
        env = "TOKENMINT_PRODUCT_AREA",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub product_areas: Vec<String>,
    /// A custom claim that organization admins may set and remove on their credentials (the platform sets every other); repeatable.
    #[arg(
        long = "org-editable-claim",
        env = "TOKENMINT_ORG_EDITABLE_CLAIMS",
        value_name = "NAME",
        value_delimiter = ','
    )]
    pub org_editable_claims: Vec<String>,
    /// Longest lifetime any token may have. [default: 24h]
    #[arg(long, env = "TOKENMINT_MAX_TOKEN_LIFETIME", value_name = "DURATION")]
    pub max_token_lifetime: Option<String>,
    /// Age at which the signing key is replaced automatically; 0 turns rotation off. [default: 90d]
    #[arg(long, env = "TOKENMINT_KEY_ROTATION_INTERVAL", value_name = "DURATION")]
    pub key_rotation_interval: Option<String>,
    /// How long a new key is published before it signs. [default: 15m]
    #[arg(long, env = "TOKENMINT_KEY_PROPAGATION", value_name = "DURATION")]
    pub key_propagation: Option<String>,
    /// Where to write the admin credential when an empty database is initialised. [default: tokenmint-admin.json next to the database]
    #[arg(long, env = "TOKENMINT_ADMIN_CREDENTIAL_FILE", value_name = "FILE")]
    pub admin_credential_file: Option<PathBuf>,
    /// Webhook URL that receives security alerts (signed JSON POSTs); repeatable.
    #[arg(
        long = "alert-webhook",
        env = "TOKENMINT_ALERT_WEBHOOK",
        value_name = "URL",
        value_delimiter = ','
    )]
    pub alert_webhooks: Vec<String>,
    /// File holding the secret that signs alert webhooks (or set TOKENMINT_ALERT_WEBHOOK_SECRET).
    #[arg(long, env = "TOKENMINT_ALERT_WEBHOOK_SECRET_FILE", value_name = "FILE")]
    pub alert_webhook_secret_file: Option<PathBuf>,
    /// Deliver alerts to loopback, private and link-local webhook addresses too (refused by default).
    #[arg(long, env = "TOKENMINT_ALERT_WEBHOOK_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub alert_webhook_allow_private: Option<bool>,
    /// The provider's token hook: called at issuance with the credential, organization, scope
    /// and audience; its answer may add claims, narrow the scope or refuse.
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK", value_name = "URL")]
    pub token_hook: Option<String>,
    /// File holding the secret that signs token hook calls (or set TOKENMINT_TOKEN_HOOK_SECRET).
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_SECRET_FILE", value_name = "FILE")]
    pub token_hook_secret_file: Option<PathBuf>,
    /// Call the token hook without signing its calls, on purpose: the hook authenticates
    /// tokenmint another way (a private network, mutual TLS). Without it, a token hook needs
    /// a signing secret.
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_UNSIGNED", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub token_hook_unsigned: Option<bool>,
    /// How long one token hook call may take. [default: 2s]
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_TIMEOUT", value_name = "DURATION")]
    pub token_hook_timeout: Option<String>,
    /// When the token hook fails (timeout, error, unreadable answer): refuse the token request,
    /// or issue the token without the hook's claims. [default: refuse]
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_ON_FAILURE", value_name = "refuse|issue")]
    pub token_hook_on_failure: Option<String>,
    /// How long a token hook answer is reused for the same credential, scope and audience;
    /// 0 calls the hook for every token. [default: 60s]
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_CACHE_TTL", value_name = "DURATION")]
    pub token_hook_cache_ttl: Option<String>,
    /// Call a token hook at a loopback, private or link-local address (refused by default).
    #[arg(long, env = "TOKENMINT_TOKEN_HOOK_ALLOW_PRIVATE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub token_hook_allow_private: Option<bool>,
    /// How long audit records, token counts and alert deliveries are kept. [default: 90d]
    #[arg(long, env = "TOKENMINT_AUDIT_RETENTION", value_name = "DURATION")]
    pub audit_retention: Option<String>,
    /// Failed client authentications from one source IP, within the brute-force window, before
    /// the source is blocked. [default: 30]
    #[arg(long, env = "TOKENMINT_BRUTE_FORCE_IP_LIMIT", value_name = "N")]
    pub brute_force_ip_limit: Option<u32>,
    /// Failed authentications of one client_id, within the window, before an alert fires and the
    /// failing source is blocked for that client_id. [default: 10]
    #[arg(long, env = "TOKENMINT_BRUTE_FORCE_CLIENT_LIMIT", value_name = "N")]
    pub brute_force_client_limit: Option<u32>,
    /// The window failed authentications are counted over. [default: 5m]
    #[arg(long, env = "TOKENMINT_BRUTE_FORCE_WINDOW", value_name = "DURATION")]
    pub brute_force_window: Option<String>,
    /// How long a blocked source is refused. [default: 15m]
    #[arg(long, env = "TOKENMINT_BRUTE_FORCE_BLOCK", value_name = "DURATION")]
    pub brute_force_block: Option<String>,
    /// Redis URL (redis://HOST:PORT/DB) for token-request limits shared by every instance.
    #[arg(long, env = "TOKENMINT_REDIS", value_name = "URL")]
    pub redis: Option<String>,
    /// Prefix of the Redis keys tokenmint writes. [default: tokenmint:ratelimit:]
    #[arg(long, env = "TOKENMINT_REDIS_PREFIX", value_name = "PREFIX")]
    pub redis_prefix: Option<String>,
    /// How long known credentials keep getting tokens from the cache while the database is
    /// unreachable; after that, token requests get 503. [default: 10m]
    #[arg(long, env = "TOKENMINT_MAX_CACHE_STALENESS", value_name = "DURATION")]
    pub max_cache_staleness: Option<String>,
    /// Serve HTTPS with this PEM certificate chain (with --tls-key); re-read when it changes.
    #[arg(long, env = "TOKENMINT_TLS_CERT", value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "TOKENMINT_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP on a non-loopback address although nothing encrypts it.
    #[arg(long, env = "TOKENMINT_INSECURE_HTTP", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub insecure_http: Option<bool>,
    /// A TLS-terminating reverse proxy (address or CIDR, repeatable) whose X-Forwarded-For is
    /// believed; plain HTTP is then allowed on any address.
    #[arg(
        long = "behind-proxy",
        env = "TOKENMINT_BEHIND_PROXY",
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub behind_proxy: Vec<String>,
    /// Export request spans by OTLP/HTTP to this OpenTelemetry collector (base URL, such as
    /// http://127.0.0.1:4318; /v1/traces is appended). [default: no export]
    #[arg(long, env = "TOKENMINT_OTLP_ENDPOINT", value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Label the issued-token counter with the organization.
    #[arg(long, env = "TOKENMINT_METRICS_PER_ORG", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub metrics_per_org: Option<bool>,
    /// Do not apply database migrations at start (run `tokenmint migrate` instead).
    #[arg(long, env = "TOKENMINT_NO_MIGRATE", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub no_migrate: Option<bool>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// The issuer the printed token_endpoint is built from. [default: http://127.0.0.1:8080]
    #[arg(long, env = "TOKENMINT_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Algorithm of the first signing key: RS256, ES256 or EdDSA. [default: RS256]
    #[arg(long, env = "TOKENMINT_SIGNING_ALG", value_name = "ALG")]
    pub signing_alg: Option<String>,
    /// The token endpoint's path as `serve` is given it (repeatable, like serve's); the first
    /// one is printed in token_endpoint. [default: /oauth/token]
    #[arg(
        long = "token-path",
        env = "TOKENMINT_TOKEN_PATH",
        value_name = "PATH",
        value_delimiter = ','
    )]
    pub token_paths: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// The TOML file. Unknown keys are errors, so a typo does not silently fall back to a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    pub listen: Option<String>,
    pub database: Option<String>,
    pub issuer: Option<String>,
    #[serde(alias = "token_path")]
    pub token_paths: Option<Vec<String>>,
    pub allow_missing_grant_type: Option<bool>,
    pub signing_alg: Option<String>,
    pub token_rate_limit: Option<u32>,
    #[serde(alias = "product_area")]
    pub product_areas: Option<Vec<String>>,
    #[serde(alias = "org_editable_claim")]
    pub org_editable_claims: Option<Vec<String>>,
    pub master_key_file: Option<PathBuf>,
    pub max_token_lifetime: Option<String>,
    pub key_rotation_interval: Option<String>,
    pub key_propagation: Option<String>,
    pub admin_credential_file: Option<PathBuf>,
    pub no_migrate: Option<bool>,
    #[serde(alias = "alert_webhook")]
    pub alert_webhooks: Option<Vec<String>>,
    pub alert_webhook_secret_file: Option<PathBuf>,
    pub alert_webhook_allow_private: Option<bool>,
    pub token_hook: Option<String>,
    pub token_hook_secret_file: Option<PathBuf>,
    pub token_hook_unsigned: Option<bool>,
    pub token_hook_timeout: Option<String>,
    pub token_hook_on_failure: Option<String>,
    pub token_hook_cache_ttl: Option<String>,
    pub token_hook_allow_private: Option<bool>,
    pub audit_retention: Option<String>,
    pub brute_force_ip_limit: Option<u32>,
    pub brute_force_client_limit: Option<u32>,
    pub brute_force_window: Option<String>,
    pub brute_force_block: Option<String>,
    pub metrics_per_org: Option<bool>,
    pub redis: Option<String>,
    pub redis_prefix: Option<String>,
    pub max_cache_staleness: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub insecure_http: Option<bool>,
    pub behind_proxy: Option<Vec<String>>,
    pub otlp_endpoint: Option<String>,
}

pub fn load_file(path: Option<&Path>) -> Result<FileSettings> {
    let Some(path) = path else { return Ok(FileSettings::default()) };
    let text = config_file::read(path)?;
    let mut file = parse_named(&text)
        .map_err(|error| config_file::ConfigFileError::Syntax { path: path.to_owned(), error })?;
    // Paths in the file are the file's: relative ones are taken from its directory.
    for relative in [
        &mut file.master_key_file,
        &mut file.admin_credential_file,
        &mut file.alert_webhook_secret_file,
        &mut file.token_hook_secret_file,
        &mut file.tls_cert,
        &mut file.tls_key,
    ] {
        if let Some(p) = relative.as_mut() {
            *p = config_file::relative_to_file(path, p);
        }
    }
    Ok(file)
}

pub fn parse_file(text: &str) -> Result<FileSettings> {
    Ok(parse_named(text)?)
}

/// Parses `serve`'s file; a value of the wrong type names its setting the three ways a user
/// may give it, as every other setting error does, not only the file's key.
fn parse_named(text: &str) -> Result<FileSettings, config_file::SyntaxError> {
    let serve = ServeArgs::augment_args(clap::Command::new("serve"));
    let durations: Vec<String> = serve
        .get_arguments()
        .filter(|a| a.get_value_names().is_some_and(|names| names.iter().any(|n| n == "DURATION")))
        .filter_map(|a| a.get_long().map(|long| long.replace('-', "_")))
        .collect();
    let durations: Vec<&str> = durations.iter().map(String::as_str).collect();
    config_file::parse_typed(text, &durations, &|wrong| {
        setting_of_key(&wrong.key).unwrap_or_else(|| format!("`{}`", wrong.path))
    })
}

/// The setting a key of `serve`'s file is, named the three ways (`--listen (TOKENMINT_LISTEN,
/// `listen` in the config file)`), the key in the spelling
/// the file used (a repeatable setting's key may be singular or plural).
fn setting_of_key(key: &str) -> Option<String> {
    let serve = ServeArgs::augment_args(clap::Command::new("serve"));
    let flag = key.replace('_', "-");
    let arg = serve.get_arguments().find(|a| {
        a.get_long().is_some_and(|long| long == flag || flag.strip_suffix('s') == Some(long))
    })?;
    let env = arg.get_env().and_then(|e| e.to_str()).unwrap_or_default();
    Some(format!("--{} ({env}, `{key}` in the config file)", arg.get_long().unwrap_or_default()))
}

/// The OpenTelemetry collector `serve` exports to, if any. Resolved apart from the rest because
/// logging starts before the server's settings are read.
pub fn serve_otlp_endpoint(args: &ServeArgs) -> Result<Option<String>> {
    let from_file =
        || -> Result<Option<String>> { Ok(load_file(args.db.config.as_deref())?.otlp_endpoint) };
    let Some(url) =
        args.otlp_endpoint.clone().map(Ok).or_else(|| from_file().transpose()).transpose()?
    else {
        return Ok(None);
    };
    match reqwest::Url::parse(&url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Some(url)),
        _ => Err(anyhow!(
            "invalid {}: '{url}'; give the collector's base URL, such as http://127.0.0.1:4318",
            setting("otlp-endpoint")
        )),
    }
}

/// Repeatable flags whose config-file key is the plural (`product_areas = [...]`; the singular
/// is accepted too, but the documented key is the one to name).
const PLURAL_FILE_KEYS: [&str; 3] = ["token-path", "product-area", "alert-webhook"];

/// Names a setting the three ways a user may have given it.
/// An HMAC key for signed outbound calls (alert webhooks, the token hook): read from the file
/// the setting names, else from the environment variable `env`; at least 16 characters.
fn signing_secret(
    name: &str,
    path: Option<std::path::PathBuf>,
    env: &str,
) -> Result<Option<String>> {
    let secret = match path {
        Some(path) => Some(
            tokenmint_http::config_file::read_text_limited(&path, 4096, &setting(name))?
                .trim()
                .to_owned(),
        ),
        None => std::env::var(env).ok(),
    };
    if secret.as_deref().is_some_and(|s| s.len() < 16) {
        bail!("invalid {} (or {env}): use at least 16 characters", setting(name));
    }
    Ok(secret)
}

fn setting(flag: &str) -> String {
    let env = format!("TOKENMINT_{}", flag.to_ascii_uppercase().replace('-', "_"));
    let mut key = flag.replace('-', "_");
    if PLURAL_FILE_KEYS.contains(&flag) {
        key.push('s');
    }
    format!("--{flag} ({env}, `{key}` in the config file)")
}

/// An admin command's duration (as `credentials create` takes them): an error names the flag
/// alone; when the value came from a variable or the config file, the command has already said
/// so (`tokenmint credentials create --expires-in` notes where it was taken from).
pub fn parse_duration(flag: &str, value: &str) -> Result<Duration> {
    read_duration(&format!("--{flag}"), value)
}

/// A setting's duration (flag, environment variable or config key): an error names all three.
fn parse_setting_duration(flag: &str, value: &str) -> Result<Duration> {
    read_duration(&setting(flag), value)
}

/// `value` as a duration; an error says what is wrong with the setting named `named`.
fn read_duration(named: &str, value: &str) -> Result<Duration> {
    if value.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    // A year is 365 days and a month 30, as people (and the portal's expiry choices) count
    // them, not humantime's 365.25 and 30.44 days, which would end a credential made at 05:42
    // a year later at 11:42.
    let trimmed = value.trim();
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 {
        let days_per = match trimmed[digits..].trim() {
            "y" | "yr" | "yrs" | "year" | "years" => Some(365),
            "M" | "mo" | "month" | "months" => Some(30),
            _ => None,
        };
        if let (Some(per), Ok(n)) = (days_per, trimmed[..digits].parse::<u64>())
            && let Some(secs) = n.checked_mul(per * 86_400)
        {
            return Ok(Duration::from_secs(secs));
        }
    }
    humantime::parse_duration(trimmed).map_err(|_| {
        anyhow!("invalid {named}: '{value}' is not a duration; use a number with a unit, like 90s, 15m, 1h or 30d")
    })
}

fn parse_alg(value: Option<&str>) -> Result<SigningAlgorithm> {
    match value {
        None => Ok(SigningAlgorithm::RS256),
        Some(v) => v.parse().map_err(|_| {
            anyhow!("invalid {}: '{v}'; allowed: RS256, ES256, EdDSA", setting("signing-alg"))
        }),
    }
}

fn validate_issuer(issuer: &str) -> Result<String> {
    let trimmed = issuer.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed.len() > "https://".len()
        && !trimmed.contains(['?', '#', ' ']);
    if !ok {
        bail!(
            "invalid {}: '{issuer}'; use an absolute http(s) URL without query or fragment, like https://auth.example.com",
            setting("issuer")
        );
    }
    Ok(trimmed.to_owned())
}

/// The database URL and the master key, resolved for any command.
#[derive(Debug)]
pub struct Database {
    pub url: String,
    pub master_key: MasterKey,
}

/// For `sqlite://PATH` URLs, the database file's path.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest.contains(":memory:") {
        return None;
    }
    Some(PathBuf::from(rest))
}

fn sibling(db: &Path, name: &str) -> PathBuf {
    db.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from(name), |p| p.join(name))
}

pub fn resolve_database(args: &DatabaseArgs, file: &FileSettings) -> Result<Database> {
    let url = args
        .database
        .clone()
        .or_else(|| file.database.clone())
        .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        bail!(
            "invalid {}: '{}'; use sqlite://PATH or postgres://USER@HOST/DB",
            setting("database"),
            redact_url(&url)
        );
    }
    let key_file = args.master_key_file.clone().or_else(|| file.master_key_file.clone());
    let master_key = if let Some(path) = key_file {
        let text = tokenmint_http::config_file::read_text_limited(
            &path,
            4096,
            "the master key file (--master-key-file)",
        )?;
        MasterKey::from_hex(&text)
            .map_err(|e| anyhow!("master key file {}: {e}", path.display()))?
    } else if let Ok(hex) = std::env::var("TOKENMINT_MASTER_KEY") {
        MasterKey::from_hex(&hex).map_err(|e| anyhow!("TOKENMINT_MASTER_KEY: {e}"))?
    } else if let Some(db) = sqlite_path(&url) {
        load_or_create_key_file(&sibling(&db, &key_file_name(&db)))?
    } else {
        bail!(
            "a master key is required with PostgreSQL, and every instance sharing the database needs the same one: \
             give --master-key-file FILE or TOKENMINT_MASTER_KEY (generate one with: openssl rand -hex 32)"
        );
    };
    Ok(Database { url, master_key })
}

fn key_file_name(db: &Path) -> String {
    let stem = db.file_stem().and_then(|s| s.to_str()).unwrap_or("tokenmint");
    format!("{stem}.master-key")
}

/// Reads the generated master key, or creates it (mode 0600) on first start.
fn load_or_create_key_file(path: &Path) -> Result<MasterKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => MasterKey::from_hex(&text)
            .map_err(|e| anyhow!("master key file {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = MasterKey::generate();
            write_private_file(path, format!("{}\n", key.to_hex()).as_bytes())
                .with_context(|| format!("cannot create the master key file {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "generated a new master key; back it up: without it the signing keys and client secrets in the database are unusable"
            );
            Ok(key)
        }
        Err(e) => Err(anyhow!("cannot read the master key file {}: {e}", path.display())),
    }
}

/// Creates a file readable by its owner only; never overwrites one.
pub fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

/// A URL with any password replaced, for messages.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Everything `serve` needs, validated.
#[derive(Debug)]
pub struct ServeSettings {
    pub config: Config,
    pub migrate: bool,
}

pub fn resolve_serve(args: &ServeArgs) -> Result<ServeSettings> {
    let file = load_file(args.db.config.as_deref())?;
    let listen_text = args
        .listen
        .clone()
        .or_else(|| file.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        anyhow!(
            "invalid {}: '{listen_text}'; use IP:PORT, like 127.0.0.1:8080 or 0.0.0.0:8080",
            setting("listen")
        )
    })?;
    let issuer = args
        .issuer
        .clone()
        .or_else(|| file.issuer.clone())
        .map(|i| validate_issuer(&i))
        .transpose()?;
    let token_paths = resolve_token_paths(&args.token_paths, &file)?;
    let areas = if !args.product_areas.is_empty() {
        args.product_areas.clone()
    } else {
        file.product_areas.clone().unwrap_or_default()
    };
    let product_areas = ProductAreas::parse(&areas)
        .map_err(|e| anyhow!("invalid {}: {e}", setting("product-area")))?;
    let org_editable_claims = resolve_org_editable_claims(&args.org_editable_claims, &file)?;
    let signing_alg = parse_alg(args.signing_alg.as_deref().or(file.signing_alg.as_deref()))?;
    let duration = |flag: &str,
                    cli: &Option<String>,
                    file: &Option<String>,
                    default: Duration|
     -> Result<Duration> {
        match cli.as_ref().or(file.as_ref()) {
            Some(v) => parse_setting_duration(flag, v),
            None => Ok(default),
        }
    };
    let max_lifetime = duration(
        "max-token-lifetime",
        &args.max_token_lifetime,
        &file.max_token_lifetime,
        Duration::from_secs(86_400),
    )?;
    if !(60..=7 * 86_400).contains(&max_lifetime.as_secs()) {
        bail!("invalid {}: must be between 1m and 7d", setting("max-token-lifetime"));
    }
    let rotation = duration(
        "key-rotation-interval",
        &args.key_rotation_interval,
        &file.key_rotation_interval,
        Duration::from_secs(90 * 86_400),
    )?;
    if !rotation.is_zero() && rotation < Duration::from_secs(3600) {
        bail!(
            "invalid {}: use at least 1h, or 0 to turn automatic rotation off",
            setting("key-rotation-interval")
        );
    }
    let propagation = duration(
        "key-propagation",
        &args.key_propagation,
        &file.key_propagation,
        Duration::from_secs(15 * 60),
    )?;
    if propagation > Duration::from_secs(30 * 86_400) {
        bail!("invalid {}: at most 30d", setting("key-propagation"));
    }
    let audit_retention = duration(
        "audit-retention",
        &args.audit_retention,
        &file.audit_retention,
        Duration::from_secs(90 * 86_400),
    )?;
    if audit_retention < Duration::from_secs(86_400) {
        bail!("invalid {}: keep the audit trail at least 1d", setting("audit-retention"));
    }
    let alert_webhooks = if !args.alert_webhooks.is_empty() {
        args.alert_webhooks.clone()
    } else {
        file.alert_webhooks.clone().unwrap_or_default()
    };
    let alert_webhooks = alert_webhooks
        .iter()
        .map(|url| tokenmint_server::alerts::WebhookTarget::parse(url))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow::anyhow!("invalid {}: {e}; use an http(s) URL", setting("alert-webhook"))
        })?;
    let secret = signing_secret(
        "alert-webhook-secret-file",
        args.alert_webhook_secret_file.clone().or_else(|| file.alert_webhook_secret_file.clone()),
        "TOKENMINT_ALERT_WEBHOOK_SECRET",
    )?;
    let token_hook = match args.token_hook.clone().or_else(|| file.token_hook.clone()) {
        None => None,
        Some(url) => {
            let target = tokenmint_server::alerts::WebhookTarget::parse(&url).map_err(|e| {
                anyhow!("invalid {}: {e}; use an http(s) URL", setting("token-hook"))
            })?;
            let mut hook = tokenmint_server::hook::HookConfig::new(target);
            hook.allow_private =
                args.token_hook_allow_private.or(file.token_hook_allow_private).unwrap_or(false);
            hook.timeout = duration(
                "token-hook-timeout",
                &args.token_hook_timeout,
                &file.token_hook_timeout,
                hook.timeout,
            )?;
            if hook.timeout.is_zero() || hook.timeout > Duration::from_secs(30) {
                bail!("invalid {}: use a duration from 1ms to 30s", setting("token-hook-timeout"));
            }
            hook.cache_ttl = duration(
                "token-hook-cache-ttl",
                &args.token_hook_cache_ttl,
                &file.token_hook_cache_ttl,
                hook.cache_ttl,
            )?;
            if hook.cache_ttl > Duration::from_secs(3600) {
                bail!(
                    "invalid {}: at most 1h (0 calls the hook for every token)",
                    setting("token-hook-cache-ttl")
                );
            }
            if let Some(policy) =
                args.token_hook_on_failure.as_ref().or(file.token_hook_on_failure.as_ref())
            {
                hook.on_failure = policy
                    .parse()
                    .map_err(|e| anyhow!("invalid {}: {e}", setting("token-hook-on-failure")))?;
            }
            let secret = signing_secret(
                "token-hook-secret-file",
                args.token_hook_secret_file.clone().or_else(|| file.token_hook_secret_file.clone()),
                "TOKENMINT_TOKEN_HOOK_SECRET",
            )?;
            hook.secret = secret.map(tokenmint_server::alerts::WebhookSecret);
            hook.unsigned = args.token_hook_unsigned.or(file.token_hook_unsigned).unwrap_or(false);
            match (&hook.secret, hook.unsigned) {
                (None, false) => bail!(
                    "the token hook has no signing secret, so it could not tell tokenmint's calls \
                     from anyone else's: give {} (or TOKENMINT_TOKEN_HOOK_SECRET) and check the \
                     Tokenmint-Signature header in the hook, or give {} if the hook \
                     authenticates tokenmint another way (a private network, mutual TLS)",
                    setting("token-hook-secret-file"),
                    setting("token-hook-unsigned")
                ),
                (Some(_), true) => bail!(
                    "give either {} or {}, not both",
                    setting("token-hook-secret-file"),
                    setting("token-hook-unsigned")
                ),
                _ => {}
            }
            Some(hook)
        }
    };
    let brute_force = tokenmint_server::abuse::BruteForceConfig {
        failures_per_ip: args
            .brute_force_ip_limit
            .or(file.brute_force_ip_limit)
            .unwrap_or(30)
            .max(1),
        failures_per_client: args
            .brute_force_client_limit
            .or(file.brute_force_client_limit)
            .unwrap_or(10)
            .max(1),
        window: duration(
            "brute-force-window",
            &args.brute_force_window,
            &file.brute_force_window,
            Duration::from_secs(300),
        )?,
        block_for: duration(
            "brute-force-block",
            &args.brute_force_block,
            &file.brute_force_block,
            Duration::from_secs(900),
        )?,
    };
    if brute_force.window.is_zero() || brute_force.block_for.is_zero() {
        bail!(
            "invalid {} or {}: use a duration above zero",
            setting("brute-force-window"),
            setting("brute-force-block")
        );
    }
    let redis = args.redis.clone().or_else(|| file.redis.clone());
    if let Some(r) = &redis
        && !(r.starts_with("redis://") || r.starts_with("rediss://") || r.starts_with("unix://"))
    {
        bail!(
            "invalid {}: '{}'; use redis://HOST:PORT/DB or rediss://… for TLS",
            setting("redis"),
            redact_url(r)
        );
    }
    let max_cache_staleness = duration(
        "max-cache-staleness",
        &args.max_cache_staleness,
        &file.max_cache_staleness,
        Duration::from_secs(600),
    )?;
    let tls = match (
        args.tls_cert.clone().or_else(|| file.tls_cert.clone()),
        args.tls_key.clone().or_else(|| file.tls_key.clone()),
    ) {
        (Some(cert), Some(key)) => Some(tokenmint_server::config::TlsFiles { cert, key }),
        (None, None) => None,
        _ => bail!(
            "{} and {} go together: give both files, or neither to serve plain HTTP",
            setting("tls-cert"),
            setting("tls-key")
        ),
    };
    let proxies = if args.behind_proxy.is_empty() {
        file.behind_proxy.clone().unwrap_or_default()
    } else {
        args.behind_proxy.clone()
    };
    let trusted_proxies = proxies
        .iter()
        .map(|p| {
            let p = p.trim();
            p.parse::<ipnet::IpNet>()
                .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    anyhow!(
                        "invalid {}: '{p}'; use an IP address or a CIDR range such as 10.0.0.0/8",
                        setting("behind-proxy")
                    )
                })
        })
        .collect::<Result<Vec<_>>>()?;
    // Last, once every other setting is known to be right: on a first start this creates the
    // master key file, which a start refused for another setting would leave behind.
    let db = resolve_database(&args.db, &file)?;
    let admin_credential_file =
        args.admin_credential_file.clone().or_else(|| file.admin_credential_file.clone()).or_else(
            || {
                Some(sqlite_path(&db.url).map_or_else(
                    || PathBuf::from("tokenmint-admin.json"),
                    |p| sibling(&p, "tokenmint-admin.json"),
                ))
            },
        );
    let mut config = Config::new(db.url, db.master_key);
    config.tls = tls;
    config.insecure_http = args.insecure_http.or(file.insecure_http).unwrap_or(false);
    config.trusted_proxies = trusted_proxies;
    config.redis_url = redis;
    if let Some(p) = args.redis_prefix.clone().or_else(|| file.redis_prefix.clone()) {
        config.redis_prefix = p;
    }
    config.max_cache_staleness = max_cache_staleness;
    config.alerts.webhooks = alert_webhooks;
    config.alerts.allow_private_targets =
        args.alert_webhook_allow_private.or(file.alert_webhook_allow_private).unwrap_or(false);
    config.alerts.secret = secret.map(tokenmint_server::alerts::WebhookSecret);
    config.audit_retention = audit_retention;
    config.token_hook = token_hook;
    config.brute_force = brute_force;
    config.metrics_per_org = args.metrics_per_org.or(file.metrics_per_org).unwrap_or(false);
    config.listen = listen;
    config.issuer = issuer;
    config.token_paths = token_paths;
    config.allow_missing_grant_type =
        args.allow_missing_grant_type.or(file.allow_missing_grant_type).unwrap_or(false);
    config.signing_alg = signing_alg;
    config.token_rate_limit = args.token_rate_limit.or(file.token_rate_limit).unwrap_or(100);
    config.product_areas = product_areas;
    config.org_editable_claims = org_editable_claims;
    config.max_token_lifetime = u32::try_from(max_lifetime.as_secs()).unwrap_or(86_400);
    config.key_rotation_interval = rotation;
    config.key_propagation = propagation;
    config.admin_credential_file = admin_credential_file;
    Ok(ServeSettings { config, migrate: !args.no_migrate.or(file.no_migrate).unwrap_or(false) })
}

/// The custom claims organization admins may edit, flag over environment over file; each must
/// be a name a claim may have (not a registered or tokenmint claim).
fn resolve_org_editable_claims(cli: &[String], file: &FileSettings) -> Result<Vec<String>> {
    let names = if cli.is_empty() {
        file.org_editable_claims.clone().unwrap_or_default()
    } else {
        cli.to_vec()
    };
    let mut out: Vec<String> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        tokenmint_core::claims::check_name(name).map_err(|e| {
            // Named by hand: its variable is the plural, as a comma-separated list.
            anyhow!(
                "invalid --org-editable-claim (TOKENMINT_ORG_EDITABLE_CLAIMS, \
                 `org_editable_claims` in the config file): {e}; name a custom claim such as \
                 tenant_id"
            )
        })?;
        if !out.iter().any(|n| n == name) {
            out.push(name.to_owned());
        }
    }
    Ok(out)
}

/// The token endpoint's paths, flag over environment over file over `/oauth/token`, each
/// checked: `serve` routes them and `init` prints the first as the admin's token endpoint, so
/// both read them the same way.
fn resolve_token_paths(cli: &[String], file: &FileSettings) -> Result<Vec<String>> {
    let token_paths = if !cli.is_empty() {
        cli.to_vec()
    } else {
        file.token_paths
            .clone()
            .unwrap_or_else(|| vec![tokenmint_server::config::DEFAULT_TOKEN_PATH.to_owned()])
    };
    let reserved = [
        "/.well-known",
        "/admin",
        "/portal",
        "/oauth/introspect",
        "/oauth/revoke",
        "/healthz",
        "/readyz",
        "/metrics",
        "/pem",
    ];
    let mut seen: Vec<&String> = Vec::new();
    for p in &token_paths {
        let valid = p.starts_with('/')
            && p.len() > 1
            && !p.contains(['?', '#', ' ', '{', '}', '*'])
            && !p.ends_with('/');
        if !valid || reserved.iter().any(|r| p == r || p.starts_with(&format!("{r}/"))) {
            bail!(
                "invalid {}: '{p}'; use an absolute path like /oauth/token, not one of tokenmint's own paths",
                setting("token-path")
            );
        }
        if seen.contains(&p) {
            bail!("invalid {}: '{p}' is given twice", setting("token-path"));
        }
        seen.push(p);
    }
    Ok(token_paths)
}

/// Settings of `init`.
#[derive(Debug)]
pub struct InitSettings {
    pub db: Database,
    pub issuer: String,
    pub signing_alg: SigningAlgorithm,
    /// The token endpoint's paths as `serve` would route them; the first is printed.
    pub token_paths: Vec<String>,
}

pub fn resolve_init(args: &InitArgs) -> Result<InitSettings> {
    let file = load_file(args.db.config.as_deref())?;
    let db = resolve_database(&args.db, &file)?;
    let issuer = match args.issuer.clone().or_else(|| file.issuer.clone()) {
        Some(i) => validate_issuer(&i)?,
        None => {
            format!("http://{}", file.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.to_owned()))
        }
    };
    let signing_alg = parse_alg(args.signing_alg.as_deref().or(file.signing_alg.as_deref()))?;
    let token_paths = resolve_token_paths(&args.token_paths, &file)?;
    Ok(InitSettings { db, issuer, signing_alg, token_paths })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn years_and_months_are_calendar_days_not_averages() {
        let days = |v: &str| parse_duration("expires-in", v).unwrap().as_secs() / 86_400;
        assert_eq!(parse_duration("expires-in", "1y").unwrap().as_secs(), 365 * 86_400);
        assert_eq!(days("2 years"), 730);
        assert_eq!(days("3M"), 90);
        assert_eq!(days("1month"), 30);
        assert_eq!(days("90d"), 90);
        assert_eq!(parse_duration("expires-in", "15m").unwrap().as_secs(), 900, "m is minutes");
        assert!(parse_duration("expires-in", "1 fortnight").is_err());
    }

    /// `serve`, `init` and `migrate` read their file through the guarded reader: nothing
    /// endless, and a parse error names the file, line and column but shows no secret.
    #[test]
    fn the_serve_file_is_read_guarded_and_errors_show_no_text() {
        let e = load_file(Some(Path::new("/dev/zero"))).unwrap_err().to_string();
        assert!(e.contains("/dev/zero is not a regular file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.toml");
        for text in
            ["master_key = \"SECRETKEY\" !\n", "listen = \"x\"\nredis = \"redis://:SECRETPW@h\n"]
        {
            std::fs::write(&path, text).unwrap();
            let e = format!("{:#}", load_file(Some(&path)).unwrap_err());
            assert!(e.contains("serve.toml, line "), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }

    /// A value of the wrong type in `serve`'s file names its setting the three ways, for every
    /// key of the file (the plural and singular spellings of repeatable ones), and shows no
    /// text of the file.
    #[test]
    fn a_wrongly_typed_value_names_its_setting_three_ways() {
        let keys = [
            "listen",
            "token_rate_limit",
            "product_areas",
            "product_area",
            "behind_proxy",
            "org_editable_claims",
            "insecure_http",
            "master_key_file",
            "brute_force_ip_limit",
        ];
        for key in keys {
            // A table fits none of the settings.
            let text = format!("# a comment\n{key} = {{ secret = \"SECRETVALUE\" }}\n");
            let e = format!("{:#}", parse_file(&text).unwrap_err());
            assert!(e.contains(&format!("`{key}` in the config file")), "{e}");
            assert!(e.contains("TOKENMINT_") && e.contains(" (") && e.contains("--"), "{e}");
            assert!(!e.contains("SECRETVALUE"), "{e}");
        }
        let e = parse_file("token_rate_limit = \"many\"").unwrap_err().to_string();
        assert!(e.contains("invalid --token-rate-limit (TOKENMINT_TOKEN_RATE_LIMIT, `token_rate_limit` in the config file)"), "{e}");
        assert!(e.contains("expected a whole number") && e.contains("line 1"), "{e}");
        assert!(!e.contains("many"), "{e}");
        let e = parse_file("org_editable_claims = 5").unwrap_err().to_string();
        assert!(e.contains("--org-editable-claim (TOKENMINT_ORG_EDITABLE_CLAIMS"), "{e}");
        // Every key the file takes (serde lists them when refusing an unknown one) is named by
        // a flag of `serve` with a variable.
        let listed = parse_file("no_such_key = 1").unwrap_err().to_string();
        let keys: Vec<&str> = listed.split('`').skip(3).step_by(2).collect();
        assert!(keys.len() > 40 && keys.contains(&"otlp_endpoint"), "{listed}");
        for key in keys {
            let named = setting_of_key(key).unwrap_or_else(|| panic!("{key} names no flag"));
            assert!(named.contains("TOKENMINT_"), "{named}");
        }
    }

    /// A duration given as a number says to write it as text with a unit.
    #[test]
    fn a_duration_given_as_a_number_says_to_write_it_with_a_unit() {
        let keys = [
            ("max_token_lifetime", "invalid --max-token-lifetime (TOKENMINT_"),
            ("key_propagation", "invalid --key-propagation (TOKENMINT_"),
            ("brute_force_window", "invalid --brute-force-window (TOKENMINT_"),
        ];
        for (key, named) in keys {
            let e = parse_file(&format!("{key} = 3600\n")).unwrap_err().to_string();
            assert!(e.contains(named), "{e}");
            assert!(e.contains("expected a duration") && e.contains("not a number"), "{e}");
            assert!(e.contains(&format!("{key} = \"3600s\"")), "{e}");
        }
        let e = parse_file("insecure_http = \"yes\"\n").unwrap_err().to_string();
        assert!(e.contains("expected true or false, not text"), "{e}");
    }

    /// Paths in serve's file are taken from the file's directory.
    #[test]
    fn paths_in_the_serve_file_are_the_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        let path = dir.path().join("conf").join("serve.toml");
        std::fs::write(
            &path,
            "master_key_file = \"mk\"\nadmin_credential_file = \"admin.json\"\n\
             alert_webhook_secret_file = \"a.secret\"\ntoken_hook_secret_file = \"/abs/h\"\n\
             tls_cert = \"tls/c.pem\"\ntls_key = \"tls/k.pem\"\n",
        )
        .unwrap();
        let file = load_file(Some(&path)).unwrap();
        let conf = dir.path().join("conf");
        assert_eq!(file.master_key_file, Some(conf.join("mk")));
        assert_eq!(file.admin_credential_file, Some(conf.join("admin.json")));
        assert_eq!(file.alert_webhook_secret_file, Some(conf.join("a.secret")));
        assert_eq!(file.token_hook_secret_file, Some(PathBuf::from("/abs/h")));
        assert_eq!(file.tls_cert, Some(conf.join("tls/c.pem")));
        assert_eq!(file.tls_key, Some(conf.join("tls/k.pem")));
    }

    #[test]
    fn unknown_config_keys_are_refused_by_name() {
        let e = parse_file("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("listen_addr"), "{e}");
    }

    #[test]
    fn config_files_take_arrays_and_aliases() {
        let f = parse_file("product_areas = [\"eligibility\"]\ntoken_path = [\"/authorize\"]\nallow_missing_grant_type = true\n").unwrap();
        assert_eq!(f.product_areas.unwrap(), ["eligibility"]);
        assert_eq!(f.token_paths.unwrap(), ["/authorize"]);
        assert_eq!(f.allow_missing_grant_type, Some(true));
    }

    #[test]
    fn repeatable_settings_are_named_by_their_documented_plural_file_key() {
        assert!(setting("product-area").contains("`product_areas` in the config file"));
        assert!(setting("token-path").contains("`token_paths` in the config file"));
        assert!(setting("alert-webhook").contains("`alert_webhooks` in the config file"));
        assert!(setting("listen").contains("`listen` in the config file"));
    }

    #[test]
    fn org_editable_claims_come_from_the_flag_else_the_file_and_reserved_names_are_refused() {
        let file = parse_file("org_editable_claims = [\"plan\"]\n").unwrap();
        assert_eq!(resolve_org_editable_claims(&[], &file).unwrap(), ["plan"]);
        let cli = ["tenant".to_owned(), " tenant ".to_owned(), "region".to_owned()];
        assert_eq!(resolve_org_editable_claims(&cli, &file).unwrap(), ["tenant", "region"]);
        let e = resolve_org_editable_claims(&["sub".to_owned()], &file).unwrap_err().to_string();
        assert!(e.contains("--org-editable-claim") && e.contains("TOKENMINT_ORG_EDITABLE_CLAIMS"));
        assert!(e.contains("sub"), "{e}");
    }

    #[test]
    fn durations_name_the_setting_when_wrong() {
        assert_eq!(parse_duration("key-propagation", "15m").unwrap(), Duration::from_secs(900));
        // A command's flag is named alone: it has no variable or config key.
        let e = parse_duration("max-token-lifetime", "9x").unwrap_err().to_string();
        assert!(e.contains("invalid --max-token-lifetime: '9x'"), "{e}");
        assert!(!e.contains("TOKENMINT_") && !e.contains("config file"), "{e}");
        let e = parse_setting_duration("key-propagation", "soon").unwrap_err().to_string();
        assert!(
            e.contains("--key-propagation")
                && e.contains("TOKENMINT_KEY_PROPAGATION")
                && e.contains("key_propagation"),
            "{e}"
        );
    }

    #[test]
    fn sqlite_paths_are_found_in_every_url_spelling() {
        assert_eq!(sqlite_path("sqlite://tokenmint.db"), Some(PathBuf::from("tokenmint.db")));
        assert_eq!(
            sqlite_path("sqlite:///var/lib/t.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/t.db"))
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn passwords_in_database_urls_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn the_alert_webhook_allow_private_setting_is_read_from_the_file() {
        let f = parse_file(
            "alert_webhooks = [\"http://10.0.0.5/hook\"]\nalert_webhook_allow_private = true\n",
        )
        .unwrap();
        assert_eq!(f.alert_webhook_allow_private, Some(true));
    }

    #[test]
    fn issuers_must_be_absolute_urls() {
        assert_eq!(
            validate_issuer("https://auth.example.com/").unwrap(),
            "https://auth.example.com"
        );
        assert!(validate_issuer("auth.example.com").is_err());
    }
}
