//! Client configuration: where the token endpoint is, how to authenticate to it, what to ask for,
//! and the named presets for the dialects tokenmint was designed from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use reqwest::Url;

use crate::error::Error;
use crate::secret::SecretString;

/// How the client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum AuthStyle {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1,
    /// `client_secret_basic`); the body is a form without credentials.
    Basic,
    /// `client_id` and `client_secret` in an `application/x-www-form-urlencoded` body
    /// (RFC 6749 §2.3.1, `client_secret_post`). The most widely accepted style, and the default.
    #[default]
    Post,
    /// Every parameter, credentials included, in an `application/json` body, as Auth0-style
    /// servers (Wealthyhood, Candid) expect.
    Json,
}

impl AuthStyle {
    /// The name used on the command line and in configuration files.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Basic => "basic",
            Self::Post => "post",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for AuthStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuthStyle {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "basic" | "client_secret_basic" => Ok(Self::Basic),
            "post" | "client_secret_post" => Ok(Self::Post),
            "json" => Ok(Self::Json),
            other => Err(Error::Config(format!(
                "unknown auth style {other:?}: expected basic, post or json"
            ))),
        }
    }
}

/// The token-endpoint dialects of the providers tokenmint was designed from. Each fixes the
/// path, the body format and whether `grant_type` is sent; see
/// [`ClientConfig::preset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// Wellhub: form `POST {base}/oauth/token` with the credentials in the body.
    Wellhub,
    /// WEX Health: form `POST {base}/authorize` with the credentials in the body.
    Wex,
    /// Wealthyhood: JSON `POST` to the full auth-endpoint URL given as `base`, with an
    /// `audience` the partner sets with [`ClientConfig::audience`].
    Wealthyhood,
    /// HealthHero: form `POST {base}/connect/token` with the credentials in the body.
    HealthHero,
    /// Candid Health: JSON `POST {base}/api/auth/v2/token` with no `grant_type`.
    Candid,
}

impl Preset {
    /// The token path appended to the base URL (empty: the base URL is the endpoint).
    pub const fn token_path(self) -> &'static str {
        match self {
            Self::Wellhub => "/oauth/token",
            Self::Wex => "/authorize",
            Self::Wealthyhood => "",
            Self::HealthHero => "/connect/token",
            Self::Candid => "/api/auth/v2/token",
        }
    }

    /// The authentication style the provider documents.
    pub const fn auth_style(self) -> AuthStyle {
        match self {
            Self::Wellhub | Self::Wex | Self::HealthHero => AuthStyle::Post,
            Self::Wealthyhood | Self::Candid => AuthStyle::Json,
        }
    }

    /// Whether the provider expects `grant_type=client_credentials`.
    pub const fn sends_grant_type(self) -> bool {
        !matches!(self, Self::Candid)
    }
}

/// Where the client secret comes from.
///
/// A file is re-read when its modification time or length changes (checked with a `stat` at
/// most every [`ClientConfig::secret_recheck_interval`], and at once after an `invalid_client`),
/// so a rotated secret is picked up without a restart. Trailing whitespace, such as the newline
/// most editors and `echo` add, is ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// The secret itself.
    Value(SecretString),
    /// An environment variable holding the secret, read on every token fetch.
    Env(String),
    /// A file holding the secret.
    File(PathBuf),
}

impl SecretSource {
    /// The secret itself.
    pub fn value(secret: impl Into<SecretString>) -> Self {
        Self::Value(secret.into())
    }

    /// An environment variable holding the secret.
    pub fn env(name: impl Into<String>) -> Self {
        Self::Env(name.into())
    }

    /// A file holding the secret.
    pub fn file(path: impl Into<PathBuf>) -> Self {
        Self::File(path.into())
    }
}

impl From<SecretString> for SecretSource {
    fn from(secret: SecretString) -> Self {
        Self::Value(secret)
    }
}

/// Where the token endpoint is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// The token endpoint's URL.
    TokenUrl(Url),
    /// An issuer whose metadata names the token endpoint: RFC 8414
    /// `/.well-known/oauth-authorization-server`, then OpenID Connect
    /// `/.well-known/openid-configuration`.
    Issuer(Url),
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TokenUrl(url) => write!(f, "{url}"),
            Self::Issuer(url) => write!(f, "issuer {url}"),
        }
    }
}

/// What a token is requested for: the parameters that shape it, and so key the cache.
///
/// Scopes are kept sorted and without duplicates (their order carries no meaning, RFC 6749 §3.3),
/// so `"b a"` and `"a b a"` share one cached token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenParams {
    scopes: Vec<String>,
    audience: Option<String>,
    resources: Vec<String>,
    extra: BTreeMap<String, String>,
}

/// Request parameters the client itself sets, which extra parameters must not override.
const RESERVED_PARAMS: [&str; 6] =
    ["grant_type", "client_id", "client_secret", "scope", "audience", "resource"];

impl TokenParams {
    /// No scope, audience, resource or extra parameter: the server's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds scopes; `scope` may hold several, separated by spaces.
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.scopes.extend(scope.as_ref().split_whitespace().map(str::to_owned));
        self.scopes.sort_unstable();
        self.scopes.dedup();
        self
    }

    /// Sets the `audience` parameter (Auth0 and compatible servers).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Adds an RFC 8707 `resource` indicator.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.resources.push(resource.into());
        self.resources.sort_unstable();
        self.resources.dedup();
        self
    }

    /// Adds a parameter the server's dialect needs beyond the standard ones.
    pub fn extra(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.extra.insert(name.into(), value.into());
        self
    }

    /// The scopes, sorted and deduplicated.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The space-separated scope parameter, if any scope is set.
    pub fn scope_param(&self) -> Option<String> {
        (!self.scopes.is_empty()).then(|| self.scopes.join(" "))
    }

    /// The audience, if set.
    pub fn audience_param(&self) -> Option<&str> {
        self.audience.as_deref()
    }

    /// The resource indicators, sorted and deduplicated.
    pub fn resources(&self) -> &[String] {
        &self.resources
    }

    /// The extra parameters, in name order.
    pub fn extra_params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.extra.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if let Some(name) = self.extra.keys().find(|k| RESERVED_PARAMS.contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "extra parameter {name:?} is set by the client itself; use the dedicated option"
            )));
        }
        Ok(())
    }
}

/// How the token endpoint is retried on 429, 5xx, timeouts and connection errors.
///
/// Delays grow exponentially from `base_delay` up to `max_delay`, with full jitter (a uniformly
/// random delay between zero and that bound) so that many clients failing together do not retry
/// together. A `Retry-After` from the server replaces the computed delay; one longer than
/// `max_retry_after` ends the retries at once rather than hammering the server early, and so
/// does a delay that would end after `give_up_after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Requests sent in all, the first included; at least 1.
    pub max_attempts: u32,
    /// The bound of the first backoff delay.
    pub base_delay: Duration,
    /// The largest backoff bound.
    pub max_delay: Duration,
    /// The longest `Retry-After` the client will wait for.
    pub max_retry_after: Duration,
    /// The longest one fetch may take, counted from its first request, waits included; `None`
    /// (the default) for no bound but the others. A retry whose delay would end later is not
    /// waited for: the fetch fails at once with the last error, which carries the server's
    /// `Retry-After`, instead of its caller timing out while it waits without knowing why.
    pub give_up_after: Option<Duration>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
            give_up_after: None,
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        Self { max_attempts: 1, ..Self::default() }
    }
}

/// How authenticated API requests are retried.
///
/// A 401 is retried exactly once with a new token, and only when the request body can be sent
/// again. 429 and 503 (and, when `retry_server_errors` is set, 500, 502 and 504) are retried up to
/// `max_retries` times after the server's `Retry-After` (or a jittered backoff when there is
/// none), as long as the wait is at most `max_wait` and the request is safe to repeat: an
/// idempotent method (RFC 9110 §9.2.2) or an `Idempotency-Key` header. Otherwise the response is
/// returned as it is, with a [`NotRetried`](crate::NotRetried) in its extensions saying why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRetryPolicy {
    /// Retries after 429/503 (and 500/502/504 when enabled); 0 turns them off.
    pub max_retries: u32,
    /// The longest wait before one retry.
    pub max_wait: Duration,
    /// Also retry 500, 502 and 504. Off by default: unlike 429 and 503, they do not promise the
    /// request was not processed.
    pub retry_server_errors: bool,
}

impl Default for ApiRetryPolicy {
    fn default() -> Self {
        Self { max_retries: 2, max_wait: Duration::from_secs(30), retry_server_errors: false }
    }
}

/// Everything a [`TokenClient`](crate::TokenClient) needs to know.
///
/// Built with [`ClientConfig::new`], [`ClientConfig::discover`] or [`ClientConfig::preset`] and
/// refined with the builder methods. `Debug` shows no secret.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub(crate) endpoint: Endpoint,
    pub(crate) client_id: String,
    pub(crate) secret: SecretSource,
    pub(crate) auth_style: AuthStyle,
    pub(crate) send_grant_type: bool,
    pub(crate) params: TokenParams,
    pub(crate) refresh_margin: Duration,
    pub(crate) default_lifetime: Duration,
    pub(crate) negative_cache_ttl: Duration,
    pub(crate) request_timeout: Duration,
    pub(crate) wait_timeout: Duration,
    pub(crate) secret_recheck_interval: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) api_retry: ApiRetryPolicy,
    /// Set: every token request is authenticated with a fresh `private_key_jwt` assertion.
    pub(crate) private_key: Option<std::sync::Arc<crate::assertion::PrivateKey>>,
}

fn parse_url(what: &str, url: &str) -> Result<Url, Error> {
    let parsed =
        Url::parse(url).map_err(|e| Error::Config(format!("{what} {url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(Error::Config(format!("{what} {url:?} must be an http or https URL")));
    }
    Ok(parsed)
}

impl ClientConfig {
    /// A client of the token endpoint at `token_url`, with `post` authentication and
    /// `grant_type=client_credentials`.
    pub fn new(
        token_url: &str,
        client_id: impl Into<String>,
        secret: impl Into<SecretSource>,
    ) -> Result<Self, Error> {
        Ok(Self::with_endpoint(
            Endpoint::TokenUrl(parse_url("token URL", token_url)?),
            client_id.into(),
            secret.into(),
        ))
    }

    /// A client that finds the token endpoint in the metadata of `issuer` (RFC 8414, falling
    /// back to OpenID Connect discovery) on first use.
    pub fn discover(
        issuer: &str,
        client_id: impl Into<String>,
        secret: impl Into<SecretSource>,
    ) -> Result<Self, Error> {
        Ok(Self::with_endpoint(
            Endpoint::Issuer(parse_url("issuer", issuer)?),
            client_id.into(),
            secret.into(),
        ))
    }

    /// A client speaking one provider's dialect: `base_url` is the provider's API host (for
    /// [`Preset::Wealthyhood`], its full auth-endpoint URL), and the preset adds the token path,
    /// the body format and the `grant_type` rule.
    pub fn preset(
        preset: Preset,
        base_url: &str,
        client_id: impl Into<String>,
        secret: impl Into<SecretSource>,
    ) -> Result<Self, Error> {
        let path = preset.token_path();
        let url = if path.is_empty() {
            base_url.to_owned()
        } else {
            format!("{}{path}", base_url.trim_end_matches('/'))
        };
        let mut config = Self::new(&url, client_id, secret)?;
        config.auth_style = preset.auth_style();
        config.send_grant_type = preset.sends_grant_type();
        Ok(config)
    }

    fn with_endpoint(endpoint: Endpoint, client_id: String, secret: SecretSource) -> Self {
        Self {
            endpoint,
            client_id,
            secret,
            auth_style: AuthStyle::default(),
            send_grant_type: true,
            params: TokenParams::default(),
            refresh_margin: Duration::from_secs(60),
            default_lifetime: Duration::from_secs(300),
            negative_cache_ttl: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            wait_timeout: Duration::from_secs(60),
            secret_recheck_interval: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            api_retry: ApiRetryPolicy::default(),
            private_key: None,
        }
    }

    /// Authenticates with `private_key_jwt` (RFC 7523 §2.2) instead of a secret: each token
    /// request carries a fresh assertion signed by `key` (a random `jti`, valid 60 s, for the
    /// issuer when the endpoint was discovered, else for the token endpoint's URL), sent in the
    /// form body (a JSON body with [`AuthStyle::Json`]). The secret source is then never read.
    pub fn private_key(mut self, key: crate::assertion::PrivateKey) -> Self {
        self.private_key = Some(std::sync::Arc::new(key));
        self
    }

    /// Sets how the client authenticates; see [`AuthStyle`].
    pub fn auth_style(mut self, style: AuthStyle) -> Self {
        self.auth_style = style;
        self
    }

    /// Sends no `grant_type` parameter, for servers (Candid) that take every token request as
    /// client credentials and reject the parameter.
    pub fn without_grant_type(mut self) -> Self {
        self.send_grant_type = false;
        self
    }

    /// Sets whether `grant_type=client_credentials` is sent (the default).
    pub fn send_grant_type(mut self, send: bool) -> Self {
        self.send_grant_type = send;
        self
    }

    /// Adds default scopes (space-separated) to every token request.
    pub fn scope(mut self, scope: impl AsRef<str>) -> Self {
        self.params = self.params.scope(scope);
        self
    }

    /// Sets the default `audience`.
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.params = self.params.audience(audience);
        self
    }

    /// Adds a default RFC 8707 `resource`.
    pub fn resource(mut self, resource: impl Into<String>) -> Self {
        self.params = self.params.resource(resource);
        self
    }

    /// Adds a default extra parameter.
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.params = self.params.extra(name, value);
        self
    }

    /// Replaces the default token parameters.
    pub fn params(mut self, params: TokenParams) -> Self {
        self.params = params;
        self
    }

    /// How long before expiry a background refresh starts (default 60 s). Never more than half
    /// a token's lifetime is used, so short-lived tokens are not refreshed constantly.
    pub fn refresh_margin(mut self, margin: Duration) -> Self {
        self.refresh_margin = margin;
        self
    }

    /// The lifetime assumed when a response has no `expires_in` (default 5 minutes). RFC 6749
    /// §5.1 only recommends the field; a short guess costs an early refresh, a long one would
    /// cost 401s.
    pub fn default_lifetime(mut self, lifetime: Duration) -> Self {
        self.default_lifetime = lifetime;
        self
    }

    /// How long a failed fetch is remembered (default 5 s; longer when the server sent a
    /// `Retry-After`, up to [`RetryPolicy::max_retry_after`]): callers arriving meanwhile get the
    /// same error without a new request, so a failing server is not hammered by every caller.
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_cache_ttl = ttl;
        self
    }

    /// The timeout of one request to the token endpoint (default 30 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// How long [`TokenClient::token`](crate::TokenClient::token) waits for a fetch before it
    /// gives up (default 60 s). Giving up does not cancel the fetch for other callers.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = timeout;
        self
    }

    /// How often a secret file is checked for changes (default 10 s).
    pub fn secret_recheck_interval(mut self, interval: Duration) -> Self {
        self.secret_recheck_interval = interval;
        self
    }

    /// Sets the token-endpoint retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Sets the API retry policy used by [`BearerAuth`](crate::BearerAuth) and
    /// [`TokenClient::send`](crate::TokenClient::send).
    pub fn api_retry_policy(mut self, policy: ApiRetryPolicy) -> Self {
        self.api_retry = policy;
        self
    }

    /// Where the token endpoint is.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The client id (not a secret).
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The default token parameters.
    pub fn token_params(&self) -> &TokenParams {
        &self.params
    }

    pub(crate) fn validate(&self) -> Result<(), Error> {
        if self.client_id.is_empty() {
            return Err(Error::Config("the client id is empty".to_owned()));
        }
        if self.retry.max_attempts == 0 {
            return Err(Error::Config("retry max_attempts must be at least 1".to_owned()));
        }
        self.params.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_build_each_providers_token_url() {
        let cases = [
            (
                Preset::Wellhub,
                "https://api.clients.wellhub.com/",
                "https://api.clients.wellhub.com/oauth/token",
            ),
            (
                Preset::Wex,
                "https://platform.uat.benefits.wexglobal.com",
                "https://platform.uat.benefits.wexglobal.com/authorize",
            ),
            (
                Preset::Wealthyhood,
                "https://auth.example/oauth/token",
                "https://auth.example/oauth/token",
            ),
            (Preset::HealthHero, "https://id.example", "https://id.example/connect/token"),
            (
                Preset::Candid,
                "https://api.joincandidhealth.com",
                "https://api.joincandidhealth.com/api/auth/v2/token",
            ),
        ];
        for (preset, base, expected) in cases {
            let config = ClientConfig::preset(preset, base, "id", SecretString::new("s")).unwrap();
            assert_eq!(config.endpoint, Endpoint::TokenUrl(Url::parse(expected).unwrap()));
            assert_eq!(config.auth_style, preset.auth_style());
            assert_eq!(config.send_grant_type, preset != Preset::Candid);
        }
    }

    #[test]
    fn scopes_are_sorted_and_deduplicated() {
        let a = TokenParams::new().scope("b a").scope("a");
        let b = TokenParams::new().scope("a  b");
        assert_eq!(a, b);
        assert_eq!(a.scope_param().as_deref(), Some("a b"));
    }

    #[test]
    fn extra_params_may_not_override_reserved_ones() {
        let params = TokenParams::new().extra("client_secret", "x");
        assert!(matches!(params.validate(), Err(Error::Config(_))));
        assert!(TokenParams::new().extra("organization", "x").validate().is_ok());
    }

    #[test]
    fn auth_style_parses_cli_names() {
        assert_eq!("basic".parse::<AuthStyle>().unwrap(), AuthStyle::Basic);
        assert_eq!("POST".parse::<AuthStyle>().unwrap(), AuthStyle::Post);
        assert_eq!("json".parse::<AuthStyle>().unwrap(), AuthStyle::Json);
        assert!("digest".parse::<AuthStyle>().is_err());
    }

    #[test]
    fn non_http_urls_are_rejected() {
        assert!(ClientConfig::new("ftp://x/token", "id", SecretString::new("s")).is_err());
        assert!(ClientConfig::new("not a url", "id", SecretString::new("s")).is_err());
    }

    #[test]
    fn debug_of_a_config_shows_no_secret() {
        let config =
            ClientConfig::new("https://x/token", "id", SecretString::new("hunter2")).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
    }
}
