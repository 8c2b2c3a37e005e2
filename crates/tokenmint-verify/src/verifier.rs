//! The verifier: from a bearer string to typed, trusted claims.

use crate::claims::{Claims, pick_issuer};
use crate::clock::{Clock, SystemClock, unix_seconds};
use crate::config::{FeedConfig, VerifierConfig};
use crate::discovery::discover;
use crate::error::{BuildError, FollowError, VerifyError};
use crate::follower::{FollowerParts, RevocationFollower};
use crate::jwks::{KeyStore, PublicKey, asymmetric_alg};
use crate::jws;
use crate::metrics::{Metrics, MetricsSnapshot};
use crate::revocation::RevocationList;
use crate::token_source::TokenSource;
use aws_lc_rs::digest;
use jsonwebtoken::Algorithm;
use reqwest::Url;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;
use tokenmint_proto::metadata::AuthorizationServerMetadata;

/// A token that passed every check: its claims, and the key that signed it.
///
/// Cheap to clone (one reference count). It dereferences to its [`Claims`]. The
/// token string itself is not kept, so it cannot leak through this value or its `Debug`.
#[derive(Clone)]
pub struct VerifiedToken(Arc<TokenInner>);

struct TokenInner {
    claims: Claims,
    kid: String,
    alg: Algorithm,
}

impl VerifiedToken {
    /// The token's claims.
    pub fn claims(&self) -> &Claims {
        &self.0.claims
    }

    /// The `kid` of the key that signed the token.
    pub fn kid(&self) -> &str {
        &self.0.kid
    }

    /// The JWS algorithm the token was signed with (`RS256`, `ES256`, `EdDSA`, …).
    pub fn algorithm(&self) -> Algorithm {
        self.0.alg
    }
}

impl Deref for VerifiedToken {
    type Target = Claims;

    fn deref(&self) -> &Claims {
        &self.0.claims
    }
}

impl fmt::Debug for VerifiedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedToken")
            .field("claims", &self.0.claims)
            .field("kid", &self.0.kid)
            .field("alg", &self.0.alg)
            .finish()
    }
}

/// SHA-256 of the token: the verified-token cache key. The cache never holds the token, and a
/// hash collision that would let one token pass for another is out of reach.
type TokenHash = [u8; 32];

fn token_hash(token: &str) -> TokenHash {
    let digest = digest::digest(&digest::SHA256, token.as_bytes());
    let mut hash = [0; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Verifies tokenmint access tokens (RFC 9068 JWTs) for one issuer.
///
/// Cheap to clone: clones share keys, caches, revocations and metrics. Build one per issuer
/// with [`Verifier::builder`], then call [`verify`](Self::verify) or install
/// [`VerifyLayer`](crate::VerifyLayer).
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: VerifierConfig,
    leeway_secs: i64,
    /// `None` when the keys come from a configured `jwks_uri` without discovery.
    metadata: Option<AuthorizationServerMetadata>,
    /// Followers watch this channel and stop when it closes, that is when the last clone of
    /// the verifier is dropped: following revocations for nobody would be a leak.
    alive: tokio::sync::watch::Sender<()>,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    keys: Arc<KeyStore>,
    revocations: Arc<RevocationList>,
    cache: Option<quick_cache::sync::Cache<TokenHash, VerifiedToken>>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("issuer", &self.inner.config.issuer)
            .field("audience", &self.inner.config.audience)
            .field("keys", &self.inner.keys)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Verifier`]: discovery and the first JWKS fetch happen in [`build`](Self::build).
#[derive(Debug)]
#[must_use]
pub struct VerifierBuilder {
    config: VerifierConfig,
    clock: Arc<dyn Clock>,
    http: Option<reqwest::Client>,
}

impl VerifierBuilder {
    /// Uses `clock` for every time comparison (tests pass a [`ManualClock`](crate::ManualClock)).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Uses this HTTP client for discovery, JWKS and the feed (custom TLS roots, proxies).
    /// Its own timeouts apply on top of the configured `http_timeout`; it should not follow
    /// redirects.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Fetches the issuer's metadata and keys, and returns a ready verifier.
    ///
    /// Fails when the issuer cannot be reached now: a service should not start accepting
    /// requests it has no way to judge. Once built, the verifier rides out issuer outages on
    /// its cached keys.
    pub async fn build(self) -> Result<Verifier, BuildError> {
        let config = self.config;
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .connect_timeout(config.http_timeout)
                // Discovery, keys and feed URLs are trusted configuration; a redirect would let
                // whoever answers there send the verifier elsewhere for its keys.
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(BuildError::HttpClient)?,
        };
        if config.algorithms.as_ref().is_some_and(Vec::is_empty) {
            return Err(BuildError::NoUsableAlgorithm { advertised: Vec::new() });
        }
        let (metadata, jwks_uri) = match &config.jwks_uri {
            Some(uri) => {
                let url = Url::parse(uri).map_err(|_| BuildError::InvalidJwksUri {
                    url: uri.clone(),
                    reason: "not a URL",
                })?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(BuildError::InvalidJwksUri {
                        url: uri.clone(),
                        reason: "the scheme must be https (or http for local testing)",
                    });
                }
                (None, uri.clone())
            }
            None => {
                let metadata =
                    discover(&http, &config.issuer, config.http_timeout, config.max_document_bytes)
                        .await?;
                let jwks_uri = metadata.jwks_uri.clone();
                (Some(metadata), jwks_uri)
            }
        };

        // The configured algorithms, else the ones the issuer advertises, bound what tokens
        // may use; when there are none, the keys' own `alg` members are the list (see
        // `jwks::usable_key`).
        let advertised_names = metadata
            .as_ref()
            .map(|m| m.access_token_signing_alg_values_supported.clone())
            .unwrap_or_default();
        let advertised = match &config.algorithms {
            Some(algorithms) => Some(algorithms.clone()),
            None if advertised_names.is_empty() => None,
            None => {
                let algs: Vec<Algorithm> =
                    advertised_names.iter().filter_map(|a| asymmetric_alg(a)).collect();
                if algs.is_empty() {
                    return Err(BuildError::NoUsableAlgorithm { advertised: advertised_names });
                }
                Some(algs)
            }
        };
        if let Some(list) = &advertised
            && let Some(bad) = list.iter().find(|a| asymmetric_alg(&format!("{a:?}")).is_none())
        {
            return Err(BuildError::NoUsableAlgorithm { advertised: vec![format!("{bad:?}")] });
        }

        let metrics = Arc::new(Metrics::default());
        let keys = KeyStore::load(
            jwks_uri.clone(),
            http.clone(),
            Arc::clone(&self.clock),
            Arc::clone(&metrics),
            advertised,
            &config,
        )
        .await
        .map_err(|source| BuildError::Jwks { url: jwks_uri.clone(), source })?;

        let leeway_secs = i64::try_from(config.leeway.as_secs()).unwrap_or(i64::MAX);
        let revocations = Arc::new(RevocationList::new(leeway_secs, Arc::clone(&metrics)));
        let cache = (config.verified_cache_capacity > 0)
            .then(|| quick_cache::sync::Cache::new(config.verified_cache_capacity));
        Ok(Verifier {
            inner: Arc::new(Inner {
                config,
                leeway_secs,
                metadata,
                alive: tokio::sync::watch::Sender::new(()),
                http,
                clock: self.clock,
                metrics,
                keys,
                revocations,
                cache,
            }),
        })
    }
}

impl Verifier {
    /// Starts building a verifier for `config.issuer`.
    pub fn builder(config: VerifierConfig) -> VerifierBuilder {
        VerifierBuilder { config, clock: Arc::new(SystemClock), http: None }
    }

    /// Checks `token` (the bearer string, without `Bearer `) and returns its claims.
    ///
    /// A token seen before and still cached costs a hash and a few lookups; a new one costs a
    /// signature check, and at worst waits for a JWKS fetch when it names an unknown key.
    /// Revocations are checked every time.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let result = self.verify_inner(token).await;
        match &result {
            Ok(_) => Metrics::incr(&self.inner.metrics.accepted),
            Err(error) => {
                self.inner.metrics.reject(error.reason());
                tracing::debug!(reason = error.reason().as_str(), "access token refused");
            }
        }
        result
    }

    async fn verify_inner(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let inner = &*self.inner;
        if token.len() > inner.config.max_token_bytes {
            return Err(VerifyError::TooLarge);
        }
        let now = unix_seconds(inner.clock.now());

        let hash = inner.cache.as_ref().map(|_| token_hash(token));
        if let (Some(cache), Some(hash)) = (&inner.cache, &hash)
            && let Some(hit) = cache.get(hash)
        {
            return match self.still_valid(&hit, now) {
                Ok(()) => {
                    Metrics::incr(&inner.metrics.cache_hits);
                    Ok(hit)
                }
                Err(error) => {
                    // Expired, revoked or its key withdrawn: it can never pass again.
                    cache.remove(hash);
                    Err(error)
                }
            };
        }

        let parsed = jws::parse(token, inner.config.max_header_bytes, &inner.config.token_types)?;
        // Checked before the key lookup so that a token with an algorithm the issuer does not
        // use cannot trigger a JWKS fetch.
        if !inner.keys.advertises(parsed.alg) {
            return Err(VerifyError::AlgorithmNotAllowed);
        }
        let key = inner.keys.key(&parsed.kid).await?;
        // RFC 8725 §3.1: the algorithm is the key's, not the token's to choose. Together with
        // the HMAC-free list in `asymmetric_alg`, this is what stops alg confusion.
        if !key.allows(parsed.alg) {
            return Err(VerifyError::KeyAlgorithmMismatch);
        }
        Metrics::incr(&inner.metrics.signature_checks);
        let verified = check_signed(parsed, &key, &inner.config, inner.leeway_secs, now)?;
        if let Some(kind) = inner.revocations.check(&verified, verified.kid(), now) {
            return Err(VerifyError::Revoked(kind));
        }
        if let (Some(cache), Some(hash)) = (&inner.cache, hash) {
            cache.insert(hash, verified.clone());
        }
        Ok(verified)
    }

    /// The checks a cached token must pass again on every use.
    fn still_valid(&self, token: &VerifiedToken, now: i64) -> Result<(), VerifyError> {
        let inner = &*self.inner;
        if now >= token.exp.saturating_add(inner.leeway_secs) {
            return Err(VerifyError::Expired);
        }
        if let Some(kind) = inner.revocations.check(token, token.kid(), now) {
            return Err(VerifyError::Revoked(kind));
        }
        inner.keys.check_published(token.kid())
    }

    /// Starts following the issuer's revocation feed in a background task, authenticating
    /// with tokens from `source`. The task runs as long as this verifier (any clone of it)
    /// lives, whether the returned handle is kept or not; [`RevocationFollower::stop`] stops
    /// it earlier.
    pub fn follow_revocations<T: TokenSource>(
        &self,
        source: T,
        config: FeedConfig,
    ) -> Result<RevocationFollower, FollowError> {
        let inner = &*self.inner;
        let endpoint = config
            .endpoint
            .clone()
            .or_else(|| inner.metadata.as_ref().and_then(|m| m.revocation_feed_endpoint.clone()))
            .ok_or(FollowError::NoFeedEndpoint)?;
        let invalid = || FollowError::InvalidEndpoint { url: endpoint.clone() };
        let feed = Url::parse(&endpoint).map_err(|_| invalid())?;
        let mut stream = feed.clone();
        stream.path_segments_mut().map_err(|()| invalid())?.pop_if_empty().push("stream");
        let parts = FollowerParts {
            feed,
            stream,
            http: inner.http.clone(),
            http_timeout: inner.config.http_timeout,
            max_page_bytes: inner.config.max_document_bytes,
            list: Arc::clone(&inner.revocations),
            clock: Arc::clone(&inner.clock),
            metrics: Arc::clone(&inner.metrics),
            verifier_alive: inner.alive.subscribe(),
        };
        Ok(crate::follower::spawn(parts, source, config))
    }

    /// The revocations known to this verifier, for inspection or to apply entries obtained
    /// some other way.
    pub fn revocations(&self) -> &RevocationList {
        &self.inner.revocations
    }

    /// Fetches the JWKS now, unless a fetch is under way (then waits for it) or one started
    /// within the refetch cooldown.
    pub async fn refresh_keys(&self) {
        self.inner.keys.refresh().await;
    }

    /// The issuer's metadata, as discovered; `None` when the keys come from a configured
    /// `jwks_uri`.
    pub fn metadata(&self) -> Option<&AuthorizationServerMetadata> {
        self.inner.metadata.as_ref()
    }

    /// Whether the issuer advertises a revocation feed (tokenmint issuers do).
    pub fn has_revocation_feed(&self) -> bool {
        self.metadata().is_some_and(|m| m.revocation_feed_endpoint.is_some())
    }

    pub(crate) fn count_rejection(&self, error: VerifyError) {
        self.inner.metrics.reject(error.reason());
    }

    /// The configuration this verifier runs with.
    pub fn config(&self) -> &VerifierConfig {
        &self.inner.config
    }

    /// The verifier's counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// The current time of the verifier's clock, in Unix seconds.
    pub fn now(&self) -> i64 {
        unix_seconds(self.inner.clock.now())
    }
}

/// What follows the key lookup, shared by [`Verifier`] and
/// [`OfflineVerifier`](crate::OfflineVerifier): the key must allow the token's algorithm, the
/// signature must hold, then the claims must pass [`check_claims`].
pub(crate) fn check_signed(
    parsed: jws::Parsed<'_>,
    key: &PublicKey,
    config: &VerifierConfig,
    leeway_secs: i64,
    now: i64,
) -> Result<VerifiedToken, VerifyError> {
    // RFC 8725 §3.1: the algorithm is the key's, not the token's to choose. Together with
    // the HMAC-free list in `asymmetric_alg`, this is what stops alg confusion.
    if !key.allows(parsed.alg) {
        return Err(VerifyError::KeyAlgorithmMismatch);
    }
    // jsonwebtoken checks the key family against the algorithm, decodes the signature and
    // runs aws-lc-rs; the header and claims checks around it are ours.
    let valid = jsonwebtoken::crypto::verify(
        parsed.signature,
        parsed.signing_input.as_bytes(),
        &key.key,
        parsed.alg,
    )
    .unwrap_or(false);
    if !valid {
        return Err(VerifyError::BadSignature);
    }
    let claims = crate::claims::decode(parsed.payload, &config.claims)?;
    check_claims(&claims, &config.issuer, config.audience.as_deref(), leeway_secs, now)?;
    Ok(VerifiedToken(Arc::new(TokenInner { claims, kid: parsed.kid, alg: parsed.alg })))
}

/// RFC 9068 §4 and RFC 7519 §4.1: issuer, audience and validity period.
fn check_claims(
    claims: &Claims,
    issuer: &str,
    audience: Option<&str>,
    leeway: i64,
    now: i64,
) -> Result<(), VerifyError> {
    // Byte for byte: `https://login.example.com/` and `https://login.example.com` are two
    // issuers.
    if claims.iss != issuer {
        return Err(VerifyError::WrongIssuer);
    }
    if let Some(audience) = audience
        && !claims.aud.contains(audience)
    {
        return Err(VerifyError::WrongAudience);
    }
    // §4.1.4: not accepted on or after `exp`.
    if now >= claims.exp.saturating_add(leeway) {
        return Err(VerifyError::Expired);
    }
    // §4.1.5: not accepted before `nbf`; and a token issued in the future is as suspect.
    let horizon = now.saturating_add(leeway);
    if claims.nbf.is_some_and(|nbf| nbf > horizon) || claims.iat.is_some_and(|iat| iat > horizon) {
        return Err(VerifyError::NotYetValid);
    }
    Ok(())
}

/// The verifiers of several issuers: a token goes to the one whose issuer URL its `iss` names
/// exactly, and is then checked by it in full (`iss` included).
///
/// Cheap to clone. With one issuer, nothing is peeked: the token goes straight to it.
#[derive(Debug, Clone)]
pub struct Issuers {
    verifiers: Arc<[Verifier]>,
}

impl Issuers {
    /// Fails when two verifiers are for the same issuer URL, or when there is none.
    pub fn new(verifiers: Vec<Verifier>) -> Result<Self, BuildError> {
        if verifiers.is_empty() {
            return Err(BuildError::InvalidIssuer {
                issuer: String::new(),
                reason: "no issuer is configured",
            });
        }
        for (i, v) in verifiers.iter().enumerate() {
            if verifiers[..i].iter().any(|w| w.config().issuer == v.config().issuer) {
                return Err(BuildError::DuplicateIssuer(v.config().issuer.clone()));
            }
        }
        Ok(Self { verifiers: verifiers.into() })
    }

    /// Verifies `token` with the verifier of the issuer it names.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, VerifyError> {
        let first = &self.verifiers[0];
        if self.verifiers.len() == 1 {
            return first.verify(token).await;
        }
        if token.len() > first.config().max_token_bytes {
            first.count_rejection(VerifyError::TooLarge);
            return Err(VerifyError::TooLarge);
        }
        let iss = match pick_issuer(token) {
            Ok(iss) => iss,
            Err(e) => {
                first.count_rejection(e);
                return Err(e);
            }
        };
        match self.verifiers.iter().find(|v| v.config().issuer == iss) {
            Some(verifier) => verifier.verify(token).await,
            None => {
                first.count_rejection(VerifyError::WrongIssuer);
                Err(VerifyError::WrongIssuer)
            }
        }
    }

    /// The verifiers, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Verifier> {
        self.verifiers.iter()
    }

    /// The verifier of `issuer`, compared exactly.
    pub fn get(&self, issuer: &str) -> Option<&Verifier> {
        self.verifiers.iter().find(|v| v.config().issuer == issuer)
    }
}
