//! The gateway's configuration: the TOML file of the contract's "Gateway" section, layered under
//! the command line's flags and `TOKENMINT_*` variables ([`Overrides`]), and validated once into
//! a [`GatewayConfig`].
//!
//! Everything is checked before the gateway starts or a reload is applied, so a typo never shows
//! up as a surprising runtime behaviour: unknown keys are refused, and each error names the key
//! (and the route) and says what would be accepted.

use http::HeaderName;
use reqwest::Url;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokenmint_client::SecretSource;
use tokenmint_http::config_file::{self, ConfigFileError};
use tokenmint_http::{DEFAULT_HEADER_TIMEOUT, TlsFiles};
use tokenmint_verify::{Algorithm, ClaimMapping, PrefixTable, ScopeRule};

/// The environment variable holding the feed credential's secret when no file is named.
pub const SECRET_ENV: &str = "TOKENMINT_CLIENT_SECRET";
/// Paths the gateway answers itself; no route may claim them.
pub const RESERVED_PATHS: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

const DEFAULT_LISTEN: &str = "127.0.0.1:9090";
const DEFAULT_REDIS_PREFIX: &str = "tokenmint:gateway:";
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);
const DEFAULT_VERIFIED_CACHE: usize = 10_000;
const DEFAULT_JWKS_REFETCH_COOLDOWN: Duration = Duration::from_secs(10);
const DEFAULT_ISSUER_RETRY_MAX: Duration = Duration::from_secs(30);

/// A configuration that cannot be used, with the key it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error(transparent)]
    File(#[from] ConfigFileError),
    #[error("invalid config file: {0}")]
    Syntax(String),
    #[error("invalid `{key}`: {message}")]
    Invalid { key: String, message: String },
}

fn invalid(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), message: message.into() }
}

/// Values given on the command line or in the environment; each beats the file's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    pub listen: Option<String>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub client_id: Option<String>,
    pub client_secret_file: Option<PathBuf>,
    pub token_url: Option<String>,
    pub redis: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

/// The TOML file as written. Unknown keys are errors, so a typo does not silently fall back to
/// a default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    /// `issuer = "URL"` (one tokenmint issuer) or `[[issuer]]` tables.
    issuer: Option<toml::Value>,
    mode: Option<String>,
    authz_source: Option<String>,
    audience: Option<String>,
    client_id: Option<String>,
    client_secret_file: Option<PathBuf>,
    token_url: Option<String>,
    follow_revocations: Option<bool>,
    redis: Option<String>,
    redis_prefix: Option<String>,
    connect_timeout: Option<String>,
    request_timeout: Option<String>,
    leeway: Option<String>,
    jwks_refetch_cooldown: Option<String>,
    issuer_retry_max: Option<String>,
    verified_cache: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    header_timeout: Option<String>,
    #[serde(default, rename = "route")]
    routes: Vec<FileRoute>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoute {
    path_prefix: Option<String>,
    upstream: Option<String>,
    sandbox_upstream: Option<String>,
    read_scope: Option<String>,
    write_scope: Option<String>,
    #[serde(default)]
    require_headers: Vec<String>,
    rate_limit_per_minute: Option<u32>,
    forward_authorization: Option<bool>,
    request_timeout: Option<String>,
    #[serde(default)]
    require_env: bool,
    #[serde(default)]
    require_org: bool,
    path_binding: Option<String>,
    #[serde(default)]
    forward_claims: Vec<String>,
}

/// One `[[issuer]]` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIssuer {
    url: String,
    audience: Option<String>,
    jwks_uri: Option<String>,
    token_types: Option<Vec<String>>,
    algorithms: Option<Vec<String>>,
    scope_claim: Option<String>,
    client_id_claim: Option<String>,
    env_claim: Option<String>,
    org_claim: Option<String>,
    revocation_feed: Option<bool>,
    revocation_feed_url: Option<String>,
}

/// One trusted issuer, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Compared exactly with the tokens' `iss`, trailing slash included.
    pub url: String,
    pub audience: Option<String>,
    /// Keys from here without discovery; default: the discovered `jwks_uri`.
    pub jwks_uri: Option<String>,
    pub token_types: Vec<String>,
    pub algorithms: Option<Vec<Algorithm>>,
    pub claims: ClaimMapping,
    /// `None`: follow the feed when the issuer advertises one (tokenmint issuers do).
    pub revocation_feed: Option<bool>,
    pub revocation_feed_url: Option<String>,
    /// Written as the shorthand `issuer = "URL"`, whose feed the top-level
    /// `follow_revocations` switches, rather than as an `[[issuer]]` table with
    /// `revocation_feed`: messages name the key of the form in use.
    pub shorthand: bool,
}

/// What the gateway does with a request that passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Forwards it to the route's upstream.
    #[default]
    Proxy,
    /// Answers an authorization subrequest about it: 200 with identity headers, or the refusal.
    Authz(AuthzSource),
}

/// Where an authorization subrequest names the request it asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthzSource {
    /// Exactly one of the nginx or the forward_auth header pairs; both at once are refused, so
    /// a client cannot add the pair its proxy does not set to describe another request.
    #[default]
    Auto,
    /// nginx `auth_request`: `X-Original-Method` and `X-Original-URI`.
    Nginx,
    /// Traefik and Caddy `forward_auth`: `X-Forwarded-Method` and `X-Forwarded-Uri`.
    ForwardAuth,
    /// Envoy's HTTP `ext_authz`: the subrequest's own method and path.
    Envoy,
}

/// A route's `path_binding`: path segments that must equal claims of the token, as in
/// HealthHero's `/api/v1/{client_id}/traversal`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathBinding {
    pub template: String,
    pub segments: Vec<BindingSegment>,
}

impl PathBinding {
    /// Whether `path` begins with the template's segments, each placeholder equal to the
    /// token's claim (the path segment percent-decoded, compared exactly).
    pub fn admits(
        &self,
        path: &tokenmint_verify::CanonicalPath<'_>,
        token: &tokenmint_verify::Claims,
    ) -> bool {
        let mut segments = path.segments();
        self.segments.iter().all(|expected| {
            let Some(actual) = segments.next() else { return false };
            match expected {
                BindingSegment::Literal(literal) => actual == literal,
                BindingSegment::Claim(name) => token
                    .named(name)
                    .is_some_and(|value| !value.is_empty() && percent_decoded(actual) == value),
            }
        })
    }
}

/// A canonical path segment with its escapes decoded (canonical escapes are valid UTF-8).
fn percent_decoded(segment: &str) -> std::borrow::Cow<'_, str> {
    if !segment.contains('%') {
        return std::borrow::Cow::Borrowed(segment);
    }
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (bytes.get(i + 1).and_then(|b| hex(*b)), bytes.get(i + 2).and_then(|b| hex(*b)))
        {
            out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingSegment {
    Literal(String),
    /// `client_id`, `sub`, `org` or `env`.
    Claim(String),
}

/// Where the gateway gets the token it reads the revocation feed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedCredentials {
    /// Client credentials with the `tokenmint:revocations` permission.
    Client {
        client_id: String,
        /// Read when a token is needed; its `Debug` never shows a secret value.
        secret: SecretSource,
        /// The token endpoint; default: discovered from the issuer's metadata.
        token_url: Option<String>,
    },
    /// `follow_revocations = false`: revoked tokens and deactivated credentials stay accepted
    /// until their tokens expire. Only for trials; the gateway warns at start.
    Disabled,
}

/// An upstream base URL: scheme, authority and an optional path the request path is appended to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    base: Arc<str>,
}

impl Upstream {
    fn parse(key: &str, value: &str) -> Result<Self, ConfigError> {
        let url = Url::parse(value.trim()).map_err(|_| {
            invalid(key, format!("'{value}' is not a URL; use http://HOST:PORT or https://HOST"))
        })?;
        if !matches!(url.scheme(), "http" | "https")
            || url.host_str().is_none()
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
        {
            return Err(invalid(
                key,
                format!(
                    "'{value}' must be an http(s) URL with a host and no query, fragment or user"
                ),
            ));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self { base: base.into() })
    }

    /// The URL a request for `path` (canonical) and `query` is sent to.
    pub fn url_for(&self, path: &str, query: Option<&str>) -> String {
        let query_len = query.map_or(0, |q| q.len() + 1);
        let mut url = String::with_capacity(self.base.len() + path.len() + query_len);
        url.push_str(&self.base);
        url.push_str(path);
        if let Some(query) = query {
            url.push('?');
            url.push_str(query);
        }
        url
    }

    pub fn as_str(&self) -> &str {
        &self.base
    }
}

/// One `[[route]]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteConfig {
    /// Starts with `/`, no trailing `/` (except the root route `/`).
    pub path_prefix: String,
    pub upstream: Option<Upstream>,
    pub sandbox_upstream: Option<Upstream>,
    /// `read_scope` for GET, HEAD and OPTIONS, `write_scope` for the other methods; built once
    /// here so a request only looks it up.
    pub scopes: ScopeRule,
    pub require_headers: Vec<HeaderName>,
    /// Requests per minute per client; `None` (or 0 in the file) means no limit.
    pub rate_limit_per_minute: Option<u32>,
    pub forward_authorization: bool,
    pub request_timeout: Duration,
    /// Refuse tokens without `env` (by default they go to `upstream`).
    pub require_env: bool,
    /// Refuse tokens without `org`.
    pub require_org: bool,
    pub path_binding: Option<PathBinding>,
    /// Custom claims forwarded to the upstream, each with its header:
    /// `x-tokenmint-claim-<name>` ([`claim_header`]).
    pub forward_claims: Vec<(String, HeaderName)>,
}

/// The header a forwarded claim travels in: `x-tokenmint-claim-` and the claim's name in lower
/// case, with every character other than a letter, a digit or `-` as `-` (so `tenant_id` is
/// `x-tokenmint-claim-tenant-id`). It starts with `x-tokenmint-`, so whatever a caller sends
/// under that name is dropped before the gateway sets it.
pub fn claim_header(claim: &str) -> Option<HeaderName> {
    let mut name = String::with_capacity(18 + claim.len());
    name.push_str("x-tokenmint-claim-");
    name.extend(
        claim.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }),
    );
    HeaderName::from_bytes(name.as_bytes()).ok()
}

impl RouteConfig {
    /// Whether the canonical `path` falls under this route: the prefix matches whole path
    /// segments, so `/eligibility` covers `/eligibility` and `/eligibility/7` but not
    /// `/eligibility-admin`. Requests are routed by [`GatewayConfig::route_table`], which adds
    /// the letter-case rule.
    pub fn matches(&self, path: &tokenmint_verify::CanonicalPath<'_>) -> bool {
        path.is_under(&self.path_prefix)
    }

    /// Whether tokens of `env` may use this route: a route with upstreams serves the
    /// environments it has one for; a route without any (authz mode) serves both.
    pub fn serves(&self, env: tokenmint_proto::Environment) -> bool {
        use tokenmint_proto::Environment::{Production, Sandbox};
        match env {
            _ if self.upstream.is_none() && self.sandbox_upstream.is_none() => true,
            Production => self.upstream.is_some(),
            Sandbox => self.sandbox_upstream.is_some(),
        }
    }

    /// The upstream for a token of `env`; a token without `env` goes to `upstream`.
    pub fn upstream_for(&self, env: Option<tokenmint_proto::Environment>) -> Option<&Upstream> {
        match env {
            Some(tokenmint_proto::Environment::Sandbox) => self.sandbox_upstream.as_ref(),
            _ => self.upstream.as_ref(),
        }
    }
}

/// The whole configuration, validated, in two parts that say what a reload (SIGHUP) may
/// change: the [`StartupSettings`] are built into the running gateway once and need a
/// restart, the routes are swapped between two requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub startup: StartupSettings,
    /// Longest prefix first, so the first match is the most specific. A reload replaces them.
    pub routes: Vec<RouteConfig>,
}

/// The settings the gateway is built from at start: the listener, the verifiers and their
/// revocation feeds, the shared limits and the upstream connection pool. A reload that changes
/// one of them is refused (naming it), and the configuration in force stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartupSettings {
    pub listen: SocketAddr,
    /// The trusted issuers; a token is verified by the one its `iss` names.
    pub issuers: Vec<IssuerConfig>,
    pub mode: Mode,
    pub feed: FeedCredentials,
    pub redis: Option<String>,
    pub redis_prefix: String,
    pub connect_timeout: Duration,
    pub leeway: Duration,
    /// Shortest time between two JWKS fetches, so that tokens naming unknown keys cannot make
    /// the gateway hammer the issuer.
    pub jwks_refetch_cooldown: Duration,
    /// The longest pause between two attempts to load an issuer that could not be reached
    /// (its keys, or its revocation feed's first read); the pauses double up to it, jittered.
    pub issuer_retry_max: Duration,
    /// Entries of the verified-token cache; 0 turns it off (every request checks a signature).
    pub verified_cache: usize,
    /// Serve HTTPS with these PEM files (re-read when they change); plain HTTP without.
    pub tls: Option<TlsFiles>,
    /// How long a client may take to send a request's headers, or to start its next request on
    /// a kept-alive connection, before the connection is closed.
    pub header_timeout: Duration,
}

impl StartupSettings {
    /// The first setting that differs in `new`, by its key in the file; `None` when a reload
    /// to `new` can be applied. Compared by value, field by field.
    pub fn needs_restart_for(&self, new: &Self) -> Option<&'static str> {
        // Destructured without `..`: a setting added to this struct does not compile until it
        // is compared here, so none can be silently ignored by a reload.
        let Self {
            listen,
            issuers,
            mode,
            feed,
            redis,
            redis_prefix,
            connect_timeout,
            leeway,
            jwks_refetch_cooldown,
            issuer_retry_max,
            verified_cache,
            tls,
            header_timeout,
        } = self;
        let feed_key = match (feed, &new.feed) {
            (
                FeedCredentials::Client { client_id, secret, token_url },
                FeedCredentials::Client {
                    client_id: new_id,
                    secret: new_secret,
                    token_url: new_url,
                },
            ) => {
                if client_id != new_id {
                    "client_id"
                } else if secret != new_secret {
                    "client_secret_file"
                } else if token_url != new_url {
                    "token_url"
                } else {
                    ""
                }
            }
            (FeedCredentials::Disabled, FeedCredentials::Disabled) => "",
            _ => "follow_revocations",
        };
        let tls_key = match (tls, &new.tls) {
            (Some(old), Some(new)) if old.cert == new.cert && old.key != new.key => "tls_key",
            _ => "tls_cert",
        };
        [
            ("listen", *listen != new.listen),
            ("mode", *mode != new.mode),
            // Before the issuers: turning the feed off also turns each issuer's feed off, and
            // the setting the operator changed is the one to name.
            (feed_key, !feed_key.is_empty()),
            ("issuer", *issuers != new.issuers),
            ("redis", *redis != new.redis),
            ("redis_prefix", *redis_prefix != new.redis_prefix),
            ("connect_timeout", *connect_timeout != new.connect_timeout),
            ("leeway", *leeway != new.leeway),
            ("jwks_refetch_cooldown", *jwks_refetch_cooldown != new.jwks_refetch_cooldown),
            ("issuer_retry_max", *issuer_retry_max != new.issuer_retry_max),
            ("verified_cache", *verified_cache != new.verified_cache),
            (tls_key, *tls != new.tls),
            ("header_timeout", *header_timeout != new.header_timeout),
        ]
        .into_iter()
        .find_map(|(key, changed)| changed.then_some(key))
    }
}

impl GatewayConfig {
    /// Reads and validates the file at `path`, under `overrides`.
    /// Paths in the file (`client_secret_file`, `tls_cert`, `tls_key`) are taken from the
    /// file's directory when relative; paths given as flags, from the working directory.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Self, ConfigError> {
        let text = config_file::read(path)?;
        let mut file = parse_file(&text)
            .map_err(|error| ConfigFileError::Syntax { path: path.to_owned(), error })?;
        for relative in [&mut file.client_secret_file, &mut file.tls_cert, &mut file.tls_key] {
            if let Some(p) = relative.as_mut() {
                *p = config_file::relative_to_file(path, p);
            }
        }
        resolve(file, overrides)
    }

    /// Parses and validates a configuration text, under `overrides`.
    pub fn from_toml(text: &str, overrides: &Overrides) -> Result<Self, ConfigError> {
        let file = parse_file(text).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        resolve(file, overrides)
    }

    /// Stops a start whose feed secret file cannot be read, naming the file, rather than
    /// starting a gateway that answers 503 until someone reads its log.
    pub fn check_secret_file(&self) -> Result<(), ConfigError> {
        let FeedCredentials::Client { secret: SecretSource::File(path), .. } = &self.startup.feed
        else {
            return Ok(());
        };
        let shown = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let failed = |reason: String| {
            invalid("client_secret_file", format!("cannot read {}: {reason}", shown.display()))
        };
        let text = tokenmint_http::config_file::read_text_limited(path, 4096, "the file")
            .map_err(|e| failed(e.to_string()))?;
        if text.trim().is_empty() {
            return Err(failed("it is empty; write the feed credential's secret in it".into()));
        }
        Ok(())
    }

    /// The routes as the request path matches them: canonical prefixes, longest first, with
    /// the letter-case rule of [`PrefixTable`].
    pub fn route_table(&self) -> Result<PrefixTable<Arc<RouteConfig>>, ConfigError> {
        PrefixTable::new(self.routes.iter().map(|r| (r.path_prefix.clone(), Arc::new(r.clone()))))
            .map_err(|error| invalid("route.path_prefix", error.to_string()))
    }
}

/// The keys whose text is a duration, at the top and in `[[route]]`.
const DURATION_KEYS: [&str; 6] = [
    "connect_timeout",
    "request_timeout",
    "leeway",
    "jwks_refetch_cooldown",
    "issuer_retry_max",
    "header_timeout",
];

/// The file's text as written; a value of the wrong type is named with its table path.
fn parse_file(text: &str) -> Result<FileConfig, config_file::SyntaxError> {
    config_file::parse_typed(text, &DURATION_KEYS, &|wrong| format!("`{}`", wrong.path))
}

fn duration(key: &str, value: Option<&str>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(value) = value else { return Ok(default) };
    humantime::parse_duration(value.trim()).map_err(|_| {
        invalid(
            key,
            format!("'{value}' is not a duration; use a number with a unit, like 500ms, 5s or 1m"),
        )
    })
}

fn validate_issuer(key: &str, issuer: &str) -> Result<String, ConfigError> {
    let trimmed = issuer.trim();
    let url = Url::parse(trimmed).ok().filter(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.host_str().is_some()
            && u.query().is_none()
            && u.fragment().is_none()
    });
    if url.is_none() {
        return Err(invalid(
            key,
            format!(
                "'{issuer}' is not an absolute http(s) URL without query or fragment, like https://auth.example.com"
            ),
        ));
    }
    Ok(trimmed.to_owned())
}

fn resolve(file: FileConfig, overrides: &Overrides) -> Result<GatewayConfig, ConfigError> {
    let listen_text =
        overrides.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let listen = listen_text.trim().parse().map_err(|_| {
        invalid("listen", format!("'{listen_text}' is not IP:PORT; use e.g. 127.0.0.1:9090"))
    })?;
    let audience = overrides.audience.clone().or(file.audience).map(|a| a.trim().to_owned());
    if audience.as_deref().is_some_and(str::is_empty) {
        return Err(invalid("audience", "is empty; remove it or set the API's audience"));
    }
    let follow = file.follow_revocations.unwrap_or(true);
    let issuers = match (overrides.issuer.clone(), file.issuer) {
        (Some(url), _) | (None, Some(toml::Value::String(url))) => {
            // The shorthand: one tokenmint issuer, whose URL never ends in a slash.
            let url = validate_issuer("issuer", &url)?.trim_end_matches('/').to_owned();
            vec![IssuerConfig {
                url,
                audience: audience.clone(),
                jwks_uri: None,
                token_types: vec![tokenmint_proto::ACCESS_TOKEN_TYP.to_owned()],
                algorithms: None,
                claims: ClaimMapping::default(),
                revocation_feed: Some(follow),
                revocation_feed_url: None,
                shorthand: true,
            }]
        }
        (None, Some(toml::Value::Array(tables))) => {
            let mut issuers = Vec::with_capacity(tables.len());
            for (index, table) in tables.into_iter().enumerate() {
                let fields = match &table {
                    toml::Value::Table(fields) => Some(fields.clone()),
                    _ => None,
                };
                let file_issuer: FileIssuer = table.try_into().map_err(|e: toml::de::Error| {
                    let wrong = fields
                        .as_ref()
                        .and_then(|f| config_file::wrongly_typed::<FileIssuer>(f, &[]));
                    match wrong {
                        Some(wrong) => ConfigError::Syntax(
                            wrong.message(&format!("`issuer[{index}].{}`", wrong.path)),
                        ),
                        None => invalid(format!("issuer[{index}]"), e.message()),
                    }
                })?;
                let issuer = resolve_issuer(index, file_issuer, audience.as_deref(), follow)?;
                if issuers.iter().any(|i: &IssuerConfig| i.url == issuer.url) {
                    return Err(invalid(
                        format!("issuer[{index}].url"),
                        format!("'{}' is listed twice", issuer.url),
                    ));
                }
                issuers.push(issuer);
            }
            if issuers.is_empty() {
                return Err(invalid("issuer", "no [[issuer]] given"));
            }
            issuers
        }
        (None, Some(_)) => {
            return Err(invalid(
                "issuer",
                "use issuer = \"URL\" for one tokenmint issuer, or [[issuer]] tables",
            ));
        }
        (None, None) => {
            return Err(invalid(
                "issuer",
                "missing; set the authorization server's URL, e.g. https://auth.example.com, or \
                 list [[issuer]] tables",
            ));
        }
    };
    let mode = match file.mode.as_deref().map(str::trim) {
        None | Some("proxy") => {
            if file.authz_source.is_some() {
                return Err(invalid("authz_source", "applies only with mode = \"authz\""));
            }
            Mode::Proxy
        }
        Some("authz") => Mode::Authz(match file.authz_source.as_deref().map(str::trim) {
            None | Some("auto") => AuthzSource::Auto,
            Some("nginx") => AuthzSource::Nginx,
            Some("forward_auth") => AuthzSource::ForwardAuth,
            Some("envoy") => AuthzSource::Envoy,
            Some(other) => {
                return Err(invalid(
                    "authz_source",
                    format!("'{other}' is not one of auto, nginx, forward_auth, envoy"),
                ));
            }
        }),
        Some(other) => {
            return Err(invalid("mode", format!("'{other}' is not \"proxy\" or \"authz\"")));
        }
    };

    let needs_feed_credentials = issuers.iter().any(|i| i.revocation_feed == Some(true));
    let client_id = overrides.client_id.clone().or(file.client_id);
    let feed = match client_id {
        None if needs_feed_credentials => {
            return Err(invalid(
                "client_id",
                "missing; the gateway follows the revocation feed with a credential that has the \
                 tokenmint:revocations permission (set client_id, and client_secret_file or \
                 TOKENMINT_CLIENT_SECRET), or set follow_revocations = false",
            ));
        }
        None => FeedCredentials::Disabled,
        Some(_) if !follow => FeedCredentials::Disabled,
        Some(client_id) => {
            let file_path = overrides.client_secret_file.clone().or(file.client_secret_file);
            let secret = match file_path {
                Some(path) => SecretSource::file(path),
                None if std::env::var_os(SECRET_ENV).is_some() => SecretSource::env(SECRET_ENV),
                None => {
                    return Err(invalid(
                        "client_secret_file",
                        format!(
                            "missing; name a file holding the secret of {client_id}, or set {SECRET_ENV}"
                        ),
                    ));
                }
            };
            let token_url = overrides.token_url.clone().or(file.token_url);
            if let Some(url) = &token_url
                && !Url::parse(url).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
            {
                return Err(invalid("token_url", format!("'{url}' is not an http(s) URL")));
            }
            FeedCredentials::Client { client_id, secret, token_url }
        }
    };

    let redis = overrides.redis.clone().or(file.redis);
    if let Some(r) = &redis
        && !(r.starts_with("redis://") || r.starts_with("rediss://") || r.starts_with("unix://"))
    {
        return Err(invalid("redis", "use redis://HOST:PORT/DB, or rediss://… for TLS"));
    }
    let connect_timeout =
        duration("connect_timeout", file.connect_timeout.as_deref(), DEFAULT_CONNECT_TIMEOUT)?;
    let request_timeout =
        duration("request_timeout", file.request_timeout.as_deref(), DEFAULT_REQUEST_TIMEOUT)?;
    for (key, value) in [("connect_timeout", connect_timeout), ("request_timeout", request_timeout)]
    {
        if value.is_zero() {
            return Err(invalid(key, "must be above zero"));
        }
    }
    let leeway = duration("leeway", file.leeway.as_deref(), DEFAULT_LEEWAY)?;
    let header_timeout =
        duration("header_timeout", file.header_timeout.as_deref(), DEFAULT_HEADER_TIMEOUT)?;
    if header_timeout.is_zero() {
        return Err(invalid("header_timeout", "must be above zero"));
    }
    let tls = match (
        overrides.tls_cert.clone().or(file.tls_cert),
        overrides.tls_key.clone().or(file.tls_key),
    ) {
        (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
        (None, None) => None,
        (Some(_), None) => return Err(invalid("tls_key", "missing; tls_cert needs its key")),
        (None, Some(_)) => {
            return Err(invalid("tls_cert", "missing; tls_key needs its certificate"));
        }
    };
    let jwks_refetch_cooldown = duration(
        "jwks_refetch_cooldown",
        file.jwks_refetch_cooldown.as_deref(),
        DEFAULT_JWKS_REFETCH_COOLDOWN,
    )?;
    if jwks_refetch_cooldown < Duration::from_secs(1) {
        return Err(invalid(
            "jwks_refetch_cooldown",
            "at least 1s, so that made-up key ids cannot turn the gateway against the issuer",
        ));
    }
    let issuer_retry_max =
        duration("issuer_retry_max", file.issuer_retry_max.as_deref(), DEFAULT_ISSUER_RETRY_MAX)?;
    if issuer_retry_max < Duration::from_millis(100) || issuer_retry_max > Duration::from_secs(600)
    {
        return Err(invalid(
            "issuer_retry_max",
            "between 100ms and 10m: shorter would hammer an issuer that is down, longer leaves \
             the gateway refusing tokens long after the issuer is back",
        ));
    }
    if leeway > Duration::from_secs(600) {
        return Err(invalid("leeway", "at most 10m: a larger clock skew is a broken clock"));
    }

    if file.routes.is_empty() {
        return Err(invalid("route", "no [[route]] given; the gateway would refuse every request"));
    }
    let mut routes = Vec::with_capacity(file.routes.len());
    for (index, route) in file.routes.into_iter().enumerate() {
        let route = resolve_route(index, route, request_timeout)?;
        if let Some(other) =
            routes.iter().find(|r: &&RouteConfig| r.path_prefix == route.path_prefix)
        {
            return Err(invalid(
                format!("route[{index}].path_prefix"),
                format!("'{}' is already the prefix of another route", other.path_prefix),
            ));
        }
        routes.push(route);
    }
    routes.sort_by_key(|r| std::cmp::Reverse(r.path_prefix.len()));
    // Prefixes that differ only in letter case would make the case rule ambiguous.
    PrefixTable::new(routes.iter().map(|r| (r.path_prefix.clone(), ())))
        .map_err(|error| invalid("route.path_prefix", error.to_string()))?;

    if mode == Mode::Proxy
        && let Some(route) =
            routes.iter().find(|r| r.upstream.is_none() && r.sandbox_upstream.is_none())
    {
        return Err(invalid(
            format!("route {}", route.path_prefix),
            "missing upstream; set upstream (production tokens), sandbox_upstream (sandbox \
             tokens) or both; only mode = \"authz\" routes go without",
        ));
    }

    let startup = StartupSettings {
        listen,
        issuers,
        mode,
        feed,
        redis,
        redis_prefix: file.redis_prefix.unwrap_or_else(|| DEFAULT_REDIS_PREFIX.to_owned()),
        connect_timeout,
        leeway,
        jwks_refetch_cooldown,
        issuer_retry_max,
        verified_cache: file.verified_cache.unwrap_or(DEFAULT_VERIFIED_CACHE),
        tls,
        header_timeout,
    };
    Ok(GatewayConfig { startup, routes })
}

fn resolve_route(
    index: usize,
    route: FileRoute,
    default_timeout: Duration,
) -> Result<RouteConfig, ConfigError> {
    let key = |name: &str| format!("route[{index}].{name}");
    let prefix = route.path_prefix.ok_or_else(|| {
        invalid(key("path_prefix"), "missing; set the path this route serves, like /eligibility")
    })?;
    let path_prefix = tokenmint_verify::validate_prefix(&prefix)
        .map_err(|error| invalid(key("path_prefix"), error.to_string()))?;
    if let Some(reserved) = RESERVED_PATHS
        .iter()
        .find(|r| path_prefix == **r || path_prefix.starts_with(&format!("{r}/")))
    {
        return Err(invalid(
            key("path_prefix"),
            format!("'{path_prefix}' is the gateway's own {reserved}; choose another prefix"),
        ));
    }
    let upstream =
        route.upstream.as_deref().map(|u| Upstream::parse(&key("upstream"), u)).transpose()?;
    let sandbox_upstream = route
        .sandbox_upstream
        .as_deref()
        .map(|u| Upstream::parse(&key("sandbox_upstream"), u))
        .transpose()?;
    let scope = |name: &str, value: Option<String>, example: &str| {
        let value = value.unwrap_or_default();
        let value = value.trim();
        if value.is_empty() || value.contains(char::is_whitespace) || !value.is_ascii() {
            return Err(invalid(
                key(name),
                format!("missing or not one scope; set the scope the methods need, like {example}"),
            ));
        }
        Ok(value.to_owned())
    };
    let read_scope =
        scope("read_scope", route.read_scope, "eligibility:read (GET, HEAD, OPTIONS)")?;
    let write_scope = scope("write_scope", route.write_scope, "eligibility:write (other methods)")?;
    let mut require_headers = Vec::with_capacity(route.require_headers.len());
    for name in &route.require_headers {
        let header = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| {
            invalid(key("require_headers"), format!("'{name}' is not an HTTP header name"))
        })?;
        if header.as_str().starts_with("x-tokenmint-") || header == http::header::AUTHORIZATION {
            return Err(invalid(
                key("require_headers"),
                format!("'{name}' is set or checked by the gateway itself"),
            ));
        }
        require_headers.push(header);
    }
    let mut forward_claims: Vec<(String, HeaderName)> = Vec::new();
    for claim in &route.forward_claims {
        let header = claim_header(claim).filter(|_| !claim.is_empty() && claim.len() <= 128);
        let Some(header) = header else {
            return Err(invalid(
                key("forward_claims"),
                format!("'{claim}' is not a claim name: use 1 to 128 characters"),
            ));
        };
        if let Some((other, _)) = forward_claims.iter().find(|(_, h)| *h == header) {
            return Err(invalid(
                key("forward_claims"),
                format!("'{claim}' and '{other}' would both travel in the header {header}"),
            ));
        }
        forward_claims.push((claim.clone(), header));
    }
    let request_timeout =
        duration(&key("request_timeout"), route.request_timeout.as_deref(), default_timeout)?;
    if request_timeout.is_zero() {
        return Err(invalid(key("request_timeout"), "must be above zero"));
    }
    Ok(RouteConfig {
        path_prefix,
        upstream,
        sandbox_upstream,
        scopes: ScopeRule::ReadWrite { read: read_scope.into(), write: write_scope.into() },
        require_headers,
        rate_limit_per_minute: route.rate_limit_per_minute.filter(|n| *n > 0),
        forward_authorization: route.forward_authorization.unwrap_or(false),
        request_timeout,
        require_env: route.require_env,
        require_org: route.require_org,
        path_binding: route
            .path_binding
            .map(|t| parse_binding(&t))
            .transpose()
            .map_err(|message| invalid(key("path_binding"), message))?,
        forward_claims,
    })
}

fn parse_binding(template: &str) -> Result<PathBinding, String> {
    let explain = "like /api/v1/{client_id}/traversal: literal segments and {client_id}, {sub}, \
                   {org} or {env}";
    let Some(rest) = template.strip_prefix('/') else {
        return Err(format!("'{template}' must start with /, {explain}"));
    };
    let mut segments = Vec::new();
    for segment in rest.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            if !matches!(name, "client_id" | "sub" | "org" | "env") {
                return Err(format!(
                    "'{{{name}}}' is not a claim a path can be bound to; {explain}"
                ));
            }
            segments.push(BindingSegment::Claim(name.to_owned()));
        } else {
            tokenmint_verify::validate_prefix(&format!("/{segment}"))
                .ok()
                .filter(|p| p.len() > 1)
                .ok_or_else(|| {
                    format!("'{segment}' in '{template}' is not a plain segment, {explain}")
                })?;
            segments.push(BindingSegment::Literal(segment.to_owned()));
        }
    }
    if !segments.iter().any(|s| matches!(s, BindingSegment::Claim(_))) {
        return Err(format!("'{template}' binds no claim; {explain}"));
    }
    Ok(PathBinding { template: template.to_owned(), segments })
}

fn resolve_issuer(
    index: usize,
    file: FileIssuer,
    default_audience: Option<&str>,
    follow: bool,
) -> Result<IssuerConfig, ConfigError> {
    let key = |name: &str| format!("issuer[{index}].{name}");
    // Exactly as written: Auth0's `https://tenant.auth0.com/` keeps its slash.
    let url = validate_issuer(&key("url"), &file.url)?;
    if let Some(uri) = &file.jwks_uri
        && !Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(invalid(key("jwks_uri"), format!("'{uri}' is not an http(s) URL")));
    }
    if let Some(uri) = &file.revocation_feed_url
        && !Url::parse(uri).is_ok_and(|u| matches!(u.scheme(), "http" | "https"))
    {
        return Err(invalid(key("revocation_feed_url"), format!("'{uri}' is not an http(s) URL")));
    }
    let token_types =
        file.token_types.unwrap_or_else(|| vec![tokenmint_proto::ACCESS_TOKEN_TYP.to_owned()]);
    if token_types.is_empty() {
        return Err(invalid(
            key("token_types"),
            "is empty; list the accepted typ values, like [\"at+jwt\", \"JWT\"]",
        ));
    }
    let algorithms = match file.algorithms {
        None => None,
        Some(names) => {
            let mut algorithms = Vec::with_capacity(names.len());
            for name in names {
                let alg = match name.as_str() {
                    "RS256" => Algorithm::RS256,
                    "RS384" => Algorithm::RS384,
                    "RS512" => Algorithm::RS512,
                    "PS256" => Algorithm::PS256,
                    "PS384" => Algorithm::PS384,
                    "PS512" => Algorithm::PS512,
                    "ES256" => Algorithm::ES256,
                    "ES384" => Algorithm::ES384,
                    "EdDSA" => Algorithm::EdDSA,
                    _ => {
                        return Err(invalid(
                            key("algorithms"),
                            format!(
                                "'{name}' is not accepted; use RS256/384/512, PS256/384/512, ES256, ES384 or EdDSA (never none or HMAC)"
                            ),
                        ));
                    }
                };
                algorithms.push(alg);
            }
            if algorithms.is_empty() {
                return Err(invalid(key("algorithms"), "is empty; remove it or list algorithms"));
            }
            Some(algorithms)
        }
    };
    let claim = |name: &str, value: Option<String>, default: &str| -> Result<String, ConfigError> {
        let value = value.unwrap_or_else(|| default.to_owned());
        if value.trim().is_empty() {
            return Err(invalid(key(name), "is empty; name the claim"));
        }
        Ok(value)
    };
    let mut claims = ClaimMapping::default()
        .with_scope_claim(claim("scope_claim", file.scope_claim, "scope")?)
        .with_client_id_claim(claim("client_id_claim", file.client_id_claim, "client_id")?);
    claims.env_claim = claim("env_claim", file.env_claim, "env")?;
    claims.org_claim = claim("org_claim", file.org_claim, "org")?;
    if file.revocation_feed == Some(true) && !follow {
        return Err(invalid(
            key("revocation_feed"),
            "is true while follow_revocations = false; choose one",
        ));
    }
    let audience =
        file.audience.map(|a| a.trim().to_owned()).or(default_audience.map(str::to_owned));
    Ok(IssuerConfig {
        url,
        audience,
        jwks_uri: file.jwks_uri,
        token_types,
        algorithms,
        claims,
        revocation_feed: if follow { file.revocation_feed } else { Some(false) },
        revocation_feed_url: file.revocation_feed_url,
        shorthand: false,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
        issuer = "http://127.0.0.1:8080/"
        follow_revocations = false

        [[route]]
        path_prefix = "/eligibility"
        upstream = "http://127.0.0.1:7000"
        sandbox_upstream = "http://127.0.0.1:7001/base/"
        read_scope = "eligibility:read"
        write_scope = "eligibility:write"
        require_headers = ["X-User-Id"]
        rate_limit_per_minute = 600

        [[route]]
        path_prefix = "/eligibility/admin/"
        upstream = "http://127.0.0.1:7002"
        read_scope = "eligibility:admin"
        write_scope = "eligibility:admin"
    "#;

    fn error_of(text: &str) -> String {
        GatewayConfig::from_toml(text, &Overrides::default()).unwrap_err().to_string()
    }

    /// The file is read through the shared guarded reader, on start and on reload alike: no
    /// endless or blocking file, and a parse error says where, never what the line holds.
    #[test]
    fn the_file_is_read_guarded_and_a_parse_error_shows_no_text() {
        let said = GatewayConfig::load(Path::new("/dev/zero"), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(said.contains("/dev/zero is not a regular file"), "{said}");
        let said = error_of("client_secret = \"tms_SECRET\n[[route]]\n");
        assert!(said.starts_with("invalid config file: line 1, column "), "{said}");
        assert!(!said.contains("SECRET"), "{said}");
        let said = error_of("client_secret = \"tms_SECRET\"\n");
        assert!(said.contains("line 1, column 1: unknown field `client_secret`"), "{said}");
        assert!(!said.contains("SECRET"), "{said}");
    }

    #[test]
    fn the_contract_example_parses_with_its_defaults() {
        let config = GatewayConfig::from_toml(MINIMAL, &Overrides::default()).unwrap();
        assert_eq!(config.startup.listen.to_string(), DEFAULT_LISTEN);
        assert_eq!(config.startup.issuers[0].url, "http://127.0.0.1:8080");
        assert_eq!(config.startup.feed, FeedCredentials::Disabled);
        assert_eq!(config.routes[0].path_prefix, "/eligibility/admin", "longest prefix first");
        let route = &config.routes[1];
        assert_eq!(route.require_headers, [HeaderName::from_static("x-user-id")]);
        assert_eq!(route.rate_limit_per_minute, Some(600));
        assert!(!route.forward_authorization);
        assert_eq!(route.request_timeout, DEFAULT_REQUEST_TIMEOUT);
        assert_eq!(
            route.sandbox_upstream.as_ref().unwrap().url_for("/eligibility", Some("x=1")),
            "http://127.0.0.1:7001/base/eligibility?x=1"
        );
    }

    #[test]
    fn forwarded_claims_get_their_headers_and_clashing_names_are_refused() {
        let with = |list: &str| {
            MINIMAL.replace("rate_limit_per_minute = 600", &format!("forward_claims = {list}"))
        };
        let config = GatewayConfig::from_toml(
            &with(r#"["tenant_id", "https://example.com/Plan"]"#),
            &Overrides::default(),
        )
        .unwrap();
        let names: Vec<(&str, &str)> = config.routes[1]
            .forward_claims
            .iter()
            .map(|(claim, header)| (claim.as_str(), header.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("tenant_id", "x-tokenmint-claim-tenant-id"),
                ("https://example.com/Plan", "x-tokenmint-claim-https---example-com-plan"),
            ]
        );
        assert!(config.routes[0].forward_claims.is_empty());
        let e = error_of(&with(r#"["tenant_id", "tenant-id"]"#));
        assert!(e.contains("forward_claims") && e.contains("both travel"), "{e}");
        let e = error_of(&with(r#"[""]"#));
        assert!(e.contains("forward_claims"), "{e}");
    }

    #[test]
    fn overrides_beat_the_file() {
        let overrides = Overrides {
            listen: Some("0.0.0.0:1".into()),
            issuer: Some("https://auth.example.com".into()),
            ..Overrides::default()
        };
        let config = GatewayConfig::from_toml(MINIMAL, &overrides).unwrap();
        assert_eq!(config.startup.listen.to_string(), "0.0.0.0:1");
        assert_eq!(config.startup.issuers[0].url, "https://auth.example.com");
    }

    #[test]
    fn errors_name_the_key_and_what_is_allowed() {
        let e = error_of(&MINIMAL.replace("rate_limit_per_minute", "rate_limit"));
        assert!(e.contains("rate_limit"), "{e}");
        let e = error_of(&MINIMAL.replace("read_scope = \"eligibility:admin\"", ""));
        assert!(e.contains("route[1].read_scope") && e.contains("like"), "{e}");
        let e = error_of(&MINIMAL.replace("http://127.0.0.1:7002", "ftp://x"));
        assert!(e.contains("route[1].upstream") && e.contains("http(s)"), "{e}");
        let e = error_of(&MINIMAL.replace("\"/eligibility/admin/\"", "\"/metrics\""));
        assert!(e.contains("path_prefix") && e.contains("gateway's own"), "{e}");
        let e = error_of(&MINIMAL.replace("\"/eligibility/admin/\"", "\"/eligibility\""));
        assert!(e.contains("already the prefix"), "{e}");
        let e = error_of(&MINIMAL.replace("follow_revocations = false", ""));
        assert!(e.contains("`client_id`") && e.contains("tokenmint:revocations"), "{e}");
        let e = error_of("issuer = \"auth.example.com\"");
        assert!(e.contains("`issuer`"), "{e}");
        let e = error_of(&MINIMAL.replace("X-User-Id", "x-tokenmint-org"));
        assert!(e.contains("require_headers"), "{e}");
    }

    /// Every key of the file given a value of the wrong type: the message names the key with
    /// its table path, says in words what to write, gives an example, and quotes no value.
    #[test]
    fn every_wrongly_typed_key_is_named_with_what_to_write() {
        let text = "SECRETTEXT";
        let top = [
            ("listen", "47095", "text in double quotes"),
            ("mode", "1", "text in double quotes"),
            ("authz_source", "true", "text in double quotes"),
            ("audience", "[\"a\"]", "text in double quotes"),
            ("client_id", "7", "text in double quotes"),
            ("client_secret_file", "7", "text in double quotes"),
            ("token_url", "7", "text in double quotes"),
            ("follow_revocations", "\"SECRETTEXT\"", "true or false"),
            ("redis", "7", "text in double quotes"),
            ("redis_prefix", "7", "text in double quotes"),
            ("connect_timeout", "5", "connect_timeout = \"5s\""),
            ("request_timeout", "30", "request_timeout = \"30s\""),
            ("leeway", "60", "leeway = \"60s\""),
            ("jwks_refetch_cooldown", "10", "jwks_refetch_cooldown = \"10s\""),
            ("issuer_retry_max", "30", "issuer_retry_max = \"30s\""),
            ("header_timeout", "true", "header_timeout = \"30s\""),
            ("verified_cache", "\"SECRETTEXT\"", "a whole number"),
            ("tls_cert", "7", "text in double quotes"),
            ("tls_key", "7", "text in double quotes"),
        ];
        for (key, value, words) in top {
            let base = MINIMAL.replace(&format!("{key} = false"), "");
            let e = error_of(&format!("{key} = {value}\n{base}"));
            assert!(e.contains(&format!("invalid `{key}`: expected ")), "{key}: {e}");
            assert!(e.contains(words) && e.contains("line 1, column "), "{key}: {e}");
            assert!(!e.contains(text) && !e.contains("invalid type"), "{key}: {e}");
        }
        let route = [
            ("path_prefix", "7", "text in double quotes"),
            ("upstream", "7", "text in double quotes"),
            ("sandbox_upstream", "7", "text in double quotes"),
            ("read_scope", "7", "text in double quotes"),
            ("write_scope", "7", "text in double quotes"),
            ("require_headers", "\"x-user-id\"", "require_headers = [\""),
            ("rate_limit_per_minute", "\"600\"", "a whole number, not text"),
            ("forward_authorization", "\"yes\"", "true or false, not text"),
            ("request_timeout", "30", "request_timeout = \"30s\""),
            ("require_env", "1", "true or false, not a number"),
            ("require_org", "\"SECRETTEXT\"", "true or false"),
            ("path_binding", "[\"/a\"]", "text in double quotes, not a list"),
            ("forward_claims", "\"SECRETTEXT\"", "a list, not text"),
        ];
        for (key, value, words) in route {
            let prefix = if key == "path_prefix" { "" } else { "path_prefix = \"/c\"\n" };
            let e = error_of(&format!("{MINIMAL}\n[[route]]\n{prefix}{key} = {value}\n"));
            assert!(e.contains(&format!("invalid `route[2].{key}`: expected ")), "{key}: {e}");
            assert!(e.contains(words), "{key}: {e}");
            assert!(!e.contains(text) && !e.contains("sequence") && !e.contains("u32"), "{e}");
        }
        let issuer = [
            ("url", "7", "text in double quotes"),
            ("audience", "7", "text in double quotes"),
            ("jwks_uri", "7", "text in double quotes"),
            ("token_types", "\"at+jwt\"", "a list, not text"),
            ("algorithms", "\"RS256\"", "a list, not text"),
            ("scope_claim", "7", "text in double quotes"),
            ("client_id_claim", "7", "text in double quotes"),
            ("env_claim", "7", "text in double quotes"),
            ("org_claim", "7", "text in double quotes"),
            ("revocation_feed", "\"SECRETTEXT\"", "true or false"),
            ("revocation_feed_url", "7", "text in double quotes"),
        ];
        let routes = MINIMAL.replace("issuer = \"http://127.0.0.1:8080/\"", "");
        for (key, value, words) in issuer {
            let url = if key == "url" { String::new() } else { "url = \"https://a\"\n".into() };
            let e = error_of(&format!("{routes}\n[[issuer]]\n{url}{key} = {value}\n"));
            assert!(e.contains(&format!("invalid `issuer[0].{key}`: expected ")), "{key}: {e}");
            assert!(e.contains(words), "{key}: {e}");
            assert!(!e.contains(text), "{e}");
        }
        let e =
            error_of(&MINIMAL.replace("[[route]]", "[route]").replacen("[route]", "[[route]]", 1));
        assert!(e.contains("invalid config file: line "), "{e}");
        let e = error_of(
            "issuer = \"http://a\"\nfollow_revocations = false\n[route]\npath_prefix = \"/a\"\n",
        );
        assert!(e.contains("invalid `route`: expected a list of [[route]] tables"), "{e}");
        assert!(e.contains("write [[route]] (an array of tables"), "{e}");
    }

    /// Paths in the file are taken from the file's directory, and a feed secret file that
    /// cannot be read stops the start, naming the file where it was looked for.
    #[test]
    fn paths_in_the_file_are_the_files_and_an_unreadable_secret_stops_the_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("conf")).unwrap();
        let path = dir.path().join("conf").join("gateway.toml");
        let text = MINIMAL.replace(
            "follow_revocations = false",
            "client_id = \"tm_gw\"\nclient_secret_file = \"gw.secret\"\ntls_cert = \"c.pem\"\ntls_key = \"k/k.pem\"",
        );
        std::fs::write(&path, &text).unwrap();
        let config = GatewayConfig::load(&path, &Overrides::default()).unwrap();
        let expected = dir.path().join("conf").join("gw.secret");
        assert!(matches!(
            &config.startup.feed,
            FeedCredentials::Client { secret: SecretSource::File(p), .. } if *p == expected
        ));
        let tls = config.startup.tls.clone().unwrap();
        assert_eq!(tls.cert, dir.path().join("conf/c.pem"));
        assert_eq!(tls.key, dir.path().join("conf/k/k.pem"));
        let e = config.check_secret_file().unwrap_err().to_string();
        assert!(
            e.contains("`client_secret_file`") && e.contains(&expected.display().to_string()),
            "{e}"
        );
        std::fs::write(&expected, "\n").unwrap();
        let e = config.check_secret_file().unwrap_err().to_string();
        assert!(e.contains("is empty"), "{e}");
        std::fs::write(&expected, "tms_x\n").unwrap();
        config.check_secret_file().unwrap();
        // A flag's path stays the working directory's.
        let overrides =
            Overrides { client_secret_file: Some("flag.secret".into()), ..Overrides::default() };
        let config = GatewayConfig::load(&path, &overrides).unwrap();
        assert!(matches!(
            &config.startup.feed,
            FeedCredentials::Client { secret: SecretSource::File(p), .. } if *p == Path::new("flag.secret")
        ));
    }

    #[test]
    fn the_issuer_retry_pause_defaults_to_30s_and_is_bounded() {
        let config = GatewayConfig::from_toml(MINIMAL, &Overrides::default()).unwrap();
        assert_eq!(config.startup.issuer_retry_max, Duration::from_secs(30));
        let with = |value: &str| {
            MINIMAL.replace(
                "follow_revocations = false",
                &format!("follow_revocations = false\nissuer_retry_max = \"{value}\""),
            )
        };
        let config = GatewayConfig::from_toml(&with("200ms"), &Overrides::default()).unwrap();
        assert_eq!(config.startup.issuer_retry_max, Duration::from_millis(200));
        for bad in ["10ms", "1h", "soon"] {
            let e = error_of(&with(bad));
            assert!(e.contains("`issuer_retry_max`"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_route_cannot_claim_the_readiness_path() {
        let e = error_of(&MINIMAL.replace("\"/eligibility/admin/\"", "\"/readyz\""));
        assert!(e.contains("path_prefix") && e.contains("gateway's own /readyz"), "{e}");
    }

    #[test]
    fn prefixes_match_whole_segments() {
        let config = GatewayConfig::from_toml(MINIMAL, &Overrides::default()).unwrap();
        let route = &config.routes[1];
        let path = |p| tokenmint_verify::CanonicalPath::parse(p).unwrap();
        assert!(route.matches(&path("/eligibility")));
        assert!(route.matches(&path("/eligibility/7")));
        assert!(!route.matches(&path("/eligibility-admin")));
        assert!(!route.matches(&path("/other")));
    }

    #[test]
    fn prefixes_must_be_canonical_and_differ_in_more_than_letter_case() {
        for prefix in ["/a/../b", "/a%2fb", "/a;b", "/a//b", "eligibility"] {
            let e = error_of(&MINIMAL.replace("\"/eligibility/admin/\"", &format!("{prefix:?}")));
            assert!(e.contains("path_prefix") && e.contains("canonical"), "{prefix}: {e}");
        }
        let e = error_of(&MINIMAL.replace("\"/eligibility/admin/\"", "\"/Eligibility\""));
        assert!(e.contains("letter case"), "{e}");
    }

    #[test]
    fn the_feed_secret_comes_from_a_file_and_never_shows_in_debug() {
        let text = MINIMAL.replace(
            "follow_revocations = false",
            "client_id = \"tm_gw\"\nclient_secret_file = \"/run/secrets/gw\"",
        );
        let config = GatewayConfig::from_toml(&text, &Overrides::default()).unwrap();
        assert!(matches!(
            &config.startup.feed,
            FeedCredentials::Client { client_id, secret: SecretSource::File(_), .. } if client_id == "tm_gw"
        ));
    }

    /// Every key given, so each restart rule can change exactly one of them.
    const FULL: &str = r#"
        listen = "127.0.0.1:9090"
        issuer = "http://127.0.0.1:8080"
        client_id = "tm_gw"
        client_secret_file = "/run/secrets/gw"
        redis = "redis://127.0.0.1:6379/0"
        redis_prefix = "gw:"
        connect_timeout = "5s"
        request_timeout = "30s"
        leeway = "60s"
        jwks_refetch_cooldown = "10s"
        issuer_retry_max = "30s"
        verified_cache = 100
        tls_cert = "/etc/gw/cert.pem"
        tls_key = "/etc/gw/key.pem"
        header_timeout = "30s"

        [[route]]
        path_prefix = "/eligibility"
        upstream = "http://127.0.0.1:7000"
        read_scope = "eligibility:read"
        write_scope = "eligibility:write"
    "#;

    /// What a reload from [`FULL`] to `FULL` with `from` replaced by `to` is told.
    fn reload_verdict(from: &str, to: &str) -> Option<&'static str> {
        assert!(FULL.contains(from), "{from}");
        let old = GatewayConfig::from_toml(FULL, &Overrides::default()).unwrap();
        let new = GatewayConfig::from_toml(&FULL.replace(from, to), &Overrides::default()).unwrap();
        assert_ne!(old, new, "the edit changes the configuration");
        old.startup.needs_restart_for(&new.startup)
    }

    /// One test per setting the running gateway is built from: changing it alone is refused
    /// by a reload, naming the key.
    macro_rules! needs_restart {
        ($($name:ident: $key:literal, $from:literal => $to:literal;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(reload_verdict($from, $to), Some($key));
            }
        )*};
    }

    needs_restart! {
        a_new_listen_address_needs_a_restart:
            "listen", "listen = \"127.0.0.1:9090\"" => "listen = \"127.0.0.1:9091\"";
        another_issuer_needs_a_restart:
            "issuer", "issuer = \"http://127.0.0.1:8080\"" => "issuer = \"http://127.0.0.1:8081\"";
        another_audience_needs_a_restart:
            "issuer", "listen = \"127.0.0.1:9090\"" => "listen = \"127.0.0.1:9090\"\naudience = \"https://api\"";
        another_mode_needs_a_restart:
            "mode", "listen = \"127.0.0.1:9090\"" => "listen = \"127.0.0.1:9090\"\nmode = \"authz\"";
        another_feed_client_needs_a_restart:
            "client_id", "client_id = \"tm_gw\"" => "client_id = \"tm_other\"";
        another_feed_secret_file_needs_a_restart:
            "client_secret_file", "/run/secrets/gw" => "/run/secrets/other";
        another_feed_token_url_needs_a_restart:
            "token_url", "client_id = \"tm_gw\"" => "client_id = \"tm_gw\"\ntoken_url = \"https://auth/token\"";
        turning_the_feed_off_needs_a_restart:
            "follow_revocations", "client_id = \"tm_gw\"" => "client_id = \"tm_gw\"\nfollow_revocations = false";
        another_redis_needs_a_restart:
            "redis", "6379/0" => "6379/1";
        another_redis_prefix_needs_a_restart:
            "redis_prefix", "\"gw:\"" => "\"gw2:\"";
        another_connect_timeout_needs_a_restart:
            "connect_timeout", "connect_timeout = \"5s\"" => "connect_timeout = \"6s\"";
        another_leeway_needs_a_restart:
            "leeway", "leeway = \"60s\"" => "leeway = \"30s\"";
        another_jwks_refetch_cooldown_needs_a_restart:
            "jwks_refetch_cooldown", "\"10s\"" => "\"20s\"";
        another_issuer_retry_max_needs_a_restart:
            "issuer_retry_max", "issuer_retry_max = \"30s\"" => "issuer_retry_max = \"5s\"";
        another_verified_cache_needs_a_restart:
            "verified_cache", "verified_cache = 100" => "verified_cache = 0";
        another_tls_certificate_needs_a_restart:
            "tls_cert", "/etc/gw/cert.pem" => "/etc/gw/other.pem";
        another_tls_key_needs_a_restart:
            "tls_key", "/etc/gw/key.pem" => "/etc/gw/other-key.pem";
        another_header_timeout_needs_a_restart:
            "header_timeout", "header_timeout = \"30s\"" => "header_timeout = \"10s\"";
    }

    #[test]
    fn routes_and_their_settings_reload_without_a_restart() {
        let new_route = "\n[[route]]\npath_prefix = \"/billing\"\nupstream = \"http://127.0.0.1:7001\"\nread_scope = \"billing:read\"\nwrite_scope = \"billing:write\"\n";
        let with_route = format!("write_scope = \"eligibility:write\"{new_route}");
        let edits = [
            ("eligibility:read\"", "eligibility:list\""),
            ("http://127.0.0.1:7000", "http://127.0.0.1:7009"),
            (
                "write_scope = \"eligibility:write\"",
                "write_scope = \"eligibility:write\"\nrate_limit_per_minute = 5",
            ),
            // The default request timeout is a route setting too.
            ("request_timeout = \"30s\"", "request_timeout = \"5s\""),
            ("write_scope = \"eligibility:write\"", with_route.as_str()),
        ];
        for (from, to) in edits {
            assert_eq!(reload_verdict(from, to), None, "{from} -> {to}");
        }
    }

    #[test]
    fn an_unchanged_configuration_reloads() {
        let config = GatewayConfig::from_toml(FULL, &Overrides::default()).unwrap();
        assert_eq!(config.startup.needs_restart_for(&config.clone().startup), None);
    }
}
