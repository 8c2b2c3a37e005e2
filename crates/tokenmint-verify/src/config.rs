//! Settings of a [`Verifier`](crate::Verifier) and of the revocation follower.

use crate::claims::ClaimMapping;
use jsonwebtoken::Algorithm;
use std::time::Duration;

/// How a [`Verifier`](crate::Verifier) trusts one issuer.
///
/// Start from [`VerifierConfig::new`]: the defaults are the ones a resource server should run
/// with, and each field says why it has its value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifierConfig {
    /// The issuer URL, compared byte for byte with the metadata's `issuer` (RFC 8414 §3.3) and
    /// with every token's `iss` (RFC 9068 §4): a trailing slash (Auth0's form) is kept and
    /// must be in the tokens too.
    pub issuer: String,
    /// The JWKS URL; when set, no discovery is made (and the revocation feed, if followed,
    /// needs [`FeedConfig::endpoint`]). Default: the metadata's `jwks_uri`.
    pub jwks_uri: Option<String>,
    /// Accepted JOSE `typ` values, compared case-insensitively with or without the
    /// `application/` prefix (RFC 7515 §4.1.9). Default `["at+jwt"]` (RFC 9068 §4); many
    /// issuers (Auth0, Okta, Entra ID, Keycloak) send `JWT`. An empty string admits a header
    /// without `typ`.
    pub token_types: Vec<String>,
    /// The JWS algorithms tokens may use. Default: the ones the metadata advertises, else each
    /// key's own `alg`. A key without `alg` is usable under every listed algorithm of its key
    /// type (RSA: RS256 when nothing is listed). `none` and HMAC are never accepted.
    pub algorithms: Option<Vec<Algorithm>>,
    /// Which claims hold the client, the scopes, the environment and the organization.
    pub claims: ClaimMapping,
    /// When set, tokens must list this value in `aud` (RFC 9068 §4, RFC 7519 §4.1.3).
    pub audience: Option<String>,
    /// Tolerated clock skew between issuer and verifier for `exp`, `nbf` and `iat`. Default
    /// 60 s: enough for hosts kept roughly in sync by NTP, short next to token lifetimes.
    pub leeway: Duration,
    /// Longest bearer token accepted, checked before any decoding. Default 8 KiB: tokenmint
    /// tokens are well under 1 KiB, and the bound keeps hashing and base64 work small for junk.
    pub max_token_bytes: usize,
    /// Longest encoded JOSE header accepted, checked before it is decoded. Default 1 KiB.
    pub max_header_bytes: usize,
    /// Freshness given to the JWKS when the response has no usable `Cache-Control: max-age`.
    /// Default 5 min.
    pub jwks_default_ttl: Duration,
    /// Lower bound on the JWKS freshness, whatever the issuer says: an issuer answering
    /// `max-age=0` or `no-store` still gets at most one scheduled fetch per this. Default 60 s.
    pub jwks_min_ttl: Duration,
    /// Upper bound on the JWKS freshness: a key removed from the JWKS stops being trusted at
    /// most this long after. Default 1 h.
    pub jwks_max_ttl: Duration,
    /// Minimum time between two JWKS fetches, so that tokens with made-up `kid`s cannot turn
    /// the verifier into a load generator against the issuer. Default 10 s.
    pub jwks_refetch_cooldown: Duration,
    /// How long the last good keys keep being used while the issuer cannot be reached. Past
    /// this every token is refused with 503 rather than trusting keys that may have been
    /// withdrawn. Default 12 h: an issuer outage must not take every API down with it, yet a
    /// withdrawn key must not stay trusted forever.
    pub jwks_max_staleness: Duration,
    /// Entries in the cache of already-verified tokens; 0 disables it. Default 10 000.
    pub verified_cache_capacity: usize,
    /// Timeout of one discovery, JWKS or feed-poll request. Default 5 s.
    pub http_timeout: Duration,
    /// Largest metadata, JWKS or feed-page body read. Default 1 MiB.
    pub max_document_bytes: usize,
}

impl VerifierConfig {
    /// Defaults for the issuer at `issuer` (no audience check).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            jwks_uri: None,
            token_types: vec![tokenmint_proto::ACCESS_TOKEN_TYP.to_owned()],
            algorithms: None,
            claims: ClaimMapping::default(),
            audience: None,
            leeway: Duration::from_secs(60),
            max_token_bytes: 8 * 1024,
            max_header_bytes: 1024,
            jwks_default_ttl: Duration::from_secs(300),
            jwks_min_ttl: Duration::from_secs(60),
            jwks_max_ttl: Duration::from_secs(3600),
            jwks_refetch_cooldown: Duration::from_secs(10),
            jwks_max_staleness: Duration::from_secs(12 * 3600),
            verified_cache_capacity: 10_000,
            http_timeout: Duration::from_secs(5),
            max_document_bytes: 1024 * 1024,
        }
    }

    /// Requires tokens to carry `audience` in `aud`.
    #[must_use]
    pub fn with_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = Some(audience.into());
        self
    }

    /// Reads the keys from `jwks_uri` without discovery.
    #[must_use]
    pub fn with_jwks_uri(mut self, jwks_uri: impl Into<String>) -> Self {
        self.jwks_uri = Some(jwks_uri.into());
        self
    }

    /// Accepts these `typ` values (see [`token_types`](Self::token_types)).
    #[must_use]
    pub fn with_token_types<S: Into<String>>(mut self, types: impl IntoIterator<Item = S>) -> Self {
        self.token_types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Accepts only these algorithms (see [`algorithms`](Self::algorithms)).
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = Some(algorithms.into_iter().collect());
        self
    }

    /// Reads the client, scopes, environment and organization from these claims.
    #[must_use]
    pub fn with_claims(mut self, claims: ClaimMapping) -> Self {
        self.claims = claims;
        self
    }

    /// Sets the tolerated clock skew.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the minimum time between two JWKS fetches.
    #[must_use]
    pub fn with_jwks_refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.jwks_refetch_cooldown = cooldown;
        self
    }

    /// Sets how long the last good keys stay in use while the issuer is unreachable.
    #[must_use]
    pub fn with_jwks_max_staleness(mut self, staleness: Duration) -> Self {
        self.jwks_max_staleness = staleness;
        self
    }

    /// Sets the size of the verified-token cache (0 disables it).
    #[must_use]
    pub fn with_verified_cache_capacity(mut self, capacity: usize) -> Self {
        self.verified_cache_capacity = capacity;
        self
    }
}

/// How the revocation follower reads the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FeedConfig {
    /// The feed URL; default: the metadata's `revocation_feed_endpoint`.
    pub endpoint: Option<String>,
    /// Follow the server-sent-events stream; when false (or when the stream cannot be opened)
    /// the feed is polled. Default true.
    pub stream: bool,
    /// Pause between two polls while the stream is not in use. Default 5 s, so a revocation
    /// reaches the verifier within seconds even without the stream.
    pub poll_interval: Duration,
    /// While polling, how often opening the stream is tried again. Default 30 s.
    pub stream_retry_interval: Duration,
    /// Entries asked for per poll request. Default 500; at most the feed's page size
    /// ([`tokenmint_proto::limits::REVOCATIONS_PAGE`], which the server refuses to exceed).
    pub page_limit: u32,
    /// A stream that sends nothing (not even a keep-alive comment) for this long is taken as
    /// dead and reopened. Default 60 s.
    pub stream_idle_timeout: Duration,
    /// Longest wait before reconnecting after failures (the wait doubles up to this). Default
    /// 30 s.
    pub max_backoff: Duration,
    /// Largest single SSE event accepted. Default 64 KiB.
    pub max_event_bytes: usize,
}

impl Default for FeedConfig {
    fn default() -> Self {
        Self {
            endpoint: None,
            stream: true,
            poll_interval: Duration::from_secs(5),
            stream_retry_interval: Duration::from_secs(30),
            page_limit: 500,
            stream_idle_timeout: Duration::from_secs(60),
            max_backoff: Duration::from_secs(30),
            max_event_bytes: 64 * 1024,
        }
    }
}

impl FeedConfig {
    /// Reads the feed at `endpoint` instead of the advertised one.
    #[must_use]
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Turns the SSE stream on or off (off: polling only).
    #[must_use]
    pub fn with_stream(mut self, stream: bool) -> Self {
        self.stream = stream;
        self
    }

    /// Sets the pause between two polls.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Sets the idle timeout of the stream.
    #[must_use]
    pub fn with_stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// Sets the longest wait between reconnection attempts.
    #[must_use]
    pub fn with_max_backoff(mut self, backoff: Duration) -> Self {
        self.max_backoff = backoff;
        self
    }
}
