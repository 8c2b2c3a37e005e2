//! The JWKS cache: the issuer's public keys, kept fresh without a lock on the hot path.
//!
//! The keys live in an immutable [`KeySet`] behind an [`ArcSwap`]: a verification loads the
//! current set (an atomic pointer read) and looks the `kid` up in a plain `HashMap`. A refresh
//! builds a new set and swaps it in; readers never wait for it.
//!
//! Fetches happen in three cases, never more than once per `jwks_refetch_cooldown`:
//! - the set is past its freshness (`Cache-Control: max-age`, clamped to configured bounds):
//!   the next verification starts a fetch in the background and goes on with the current keys;
//! - a token names a `kid` the set does not know (a key rotation, RFC 7517 §4.5): the
//!   verification waits for a fetch. Every verification that needs one while it runs joins the
//!   same fetch, so a thousand requests with a new `kid` cost the issuer one request;
//! - the set is older than `jwks_max_staleness` (the issuer has been unreachable for that
//!   long): the verification waits for a fetch, and fails with 503 if it fails too.
//!
//! A failed fetch keeps the last good keys (logged, and counted in the metrics).

use crate::clock::Clock;
use crate::config::VerifierConfig;
use crate::error::{FetchError, VerifyError};
use crate::fetch::get_json;
use crate::metrics::Metrics;
use arc_swap::ArcSwap;
use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use http::{HeaderMap, header};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokenmint_proto::jwks::{Jwk, Jwks};

/// One public key, ready to verify signatures.
pub(crate) struct PublicKey {
    /// The algorithms this key may verify: the one its JWK declares (RFC 7517 §4.4), or for a
    /// key without `alg` those the issuer allows for its key type.
    pub(crate) algs: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
}

impl PublicKey {
    /// Whether a token signed with `alg` may be checked with this key (RFC 8725 §3.1: the
    /// algorithm is the key's, not the token's to choose).
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.algs.contains(&alg)
    }
}

/// An immutable snapshot of the issuer's keys.
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<PublicKey>>,
    /// When this set was fetched (clock time).
    fetched_at: Duration,
    /// Until when the issuer said it may be used without asking again.
    fresh_until: Duration,
}

impl KeySet {
    pub(crate) fn contains(&self, kid: &str) -> bool {
        self.keys.contains_key(kid)
    }

    pub(crate) fn get(&self, kid: &str) -> Option<&Arc<PublicKey>> {
        self.keys.get(kid)
    }

    /// The kids of the usable keys, sorted.
    pub(crate) fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }
}

/// The asymmetric JWS algorithms (RFC 7518 §3.1) a verifier may accept. HMAC is never on the
/// list: a verifier holds only public keys, and accepting `HS256` with one of them as the
/// secret is the classic key-confusion forgery. `none` is not an algorithm here at all.
pub(crate) fn asymmetric_alg(name: &str) -> Option<Algorithm> {
    let alg = match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    };
    Some(alg)
}

/// Turns one JWK into a verification key, or says why it is skipped. `allowed` is the
/// issuer's list of algorithms, when it has one.
fn usable_key(jwk: &Jwk, allowed: Option<&[Algorithm]>) -> Result<PublicKey, &'static str> {
    if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
        return Err("not a signature key");
    }
    let permitted = |alg: &Algorithm| allowed.is_none_or(|list| list.contains(alg));
    let algs: Vec<Algorithm> = match jwk.alg.as_deref() {
        Some(name) => {
            let alg = asymmetric_alg(name).ok_or("algorithm not accepted")?;
            if !permitted(&alg) {
                return Err("algorithm not allowed for the issuer");
            }
            vec![alg]
        }
        // Without `alg` the key's type and curve bound the choice: a curve admits a single
        // algorithm; an RSA key admits the RSA algorithms the issuer allows (RS256 when it
        // lists none, the algorithm every issuer that omits `alg` uses, Entra ID among them).
        None => match (jwk.kty.as_str(), jwk.crv.as_deref()) {
            ("EC", Some("P-256")) => vec![Algorithm::ES256],
            ("EC", Some("P-384")) => vec![Algorithm::ES384],
            ("OKP", Some("Ed25519")) => vec![Algorithm::EdDSA],
            ("RSA", _) => match allowed {
                None => vec![Algorithm::RS256],
                Some(list) => {
                    list.iter().copied().filter(|a| a.family() == AlgorithmFamily::Rsa).collect()
                }
            },
            _ => return Err("no alg member and the key type does not imply one"),
        }
        .into_iter()
        .filter(permitted)
        .collect(),
    };
    let Some(&first) = algs.first() else {
        return Err("none of the issuer's algorithms fits the key");
    };
    fn part(value: &Option<String>) -> Result<&str, &'static str> {
        value.as_deref().ok_or("a key parameter is missing")
    }
    let key = match first.family() {
        AlgorithmFamily::Rsa if jwk.kty == "RSA" => {
            DecodingKey::from_rsa_components(part(&jwk.n)?, part(&jwk.e)?)
        }
        AlgorithmFamily::Ec if jwk.kty == "EC" => {
            let curve = if first == Algorithm::ES256 { "P-256" } else { "P-384" };
            if jwk.crv.as_deref() != Some(curve) {
                return Err("curve does not match the algorithm");
            }
            DecodingKey::from_ec_components(part(&jwk.x)?, part(&jwk.y)?)
        }
        AlgorithmFamily::Ed if jwk.kty == "OKP" => {
            if jwk.crv.as_deref() != Some("Ed25519") {
                return Err("curve does not match the algorithm");
            }
            DecodingKey::from_ed_components(part(&jwk.x)?)
        }
        _ => return Err("key type does not match the algorithm"),
    }
    .map_err(|_| "key parameters are not valid base64url")?;
    Ok(PublicKey { algs, key })
}

pub(crate) fn key_set(
    jwks: &Jwks,
    advertised: Option<&[Algorithm]>,
    now: Duration,
    ttl: Duration,
) -> KeySet {
    let mut keys = HashMap::with_capacity(jwks.keys.len());
    for jwk in &jwks.keys {
        let Some(kid) = jwk.kid.as_deref() else {
            tracing::debug!("skipping a JWK without kid: tokens must name their key");
            continue;
        };
        match usable_key(jwk, advertised) {
            Ok(key) => {
                if keys.contains_key(kid) {
                    // Two keys under one kid: a token naming it would be ambiguous. Keep the
                    // first, as most verifiers do, and make it visible.
                    tracing::warn!(kid, "the JWKS lists this kid twice; using the first key");
                } else {
                    keys.insert(kid.to_owned(), Arc::new(key));
                }
            }
            Err(reason) => tracing::debug!(kid, reason, "skipping JWK"),
        }
    }
    KeySet { keys, fetched_at: now, fresh_until: now.saturating_add(ttl) }
}

/// The freshness lifetime the response grants (RFC 9111 §4.2.1): `max-age` minus `Age`;
/// zero for `no-store`/`no-cache`; `None` when the response says nothing.
pub(crate) fn freshness(headers: &HeaderMap) -> Option<Duration> {
    let mut max_age: Option<u64> = None;
    for value in headers.get_all(header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',').map(str::trim) {
            if directive.eq_ignore_ascii_case("no-store")
                || directive.eq_ignore_ascii_case("no-cache")
            {
                max_age = Some(0);
            } else if let Some((name, arg)) = directive.split_once('=')
                && name.trim().eq_ignore_ascii_case("max-age")
                && let Ok(secs) = arg.trim().trim_matches('"').parse::<u64>()
            {
                // With several max-age directives the smallest is the safe reading.
                max_age = Some(max_age.map_or(secs, |m| m.min(secs)));
            }
        }
    }
    let age = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    max_age.map(|m| Duration::from_secs(m.saturating_sub(age)))
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

type SharedRefresh = Shared<BoxFuture<'static, ()>>;

#[derive(Default)]
struct RefreshSlot {
    /// The fetch under way, which late comers join instead of starting their own.
    inflight: Option<SharedRefresh>,
    /// When the last fetch started, for the cooldown.
    last_attempt: Option<Duration>,
}

/// Timing and size settings the key store copies from the [`VerifierConfig`].
#[derive(Debug, Clone, Copy)]
struct Settings {
    default_ttl: Duration,
    min_ttl: Duration,
    max_ttl: Duration,
    cooldown: Duration,
    max_staleness: Duration,
    http_timeout: Duration,
    max_bytes: usize,
}

pub(crate) struct KeyStore {
    jwks_uri: String,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    metrics: Arc<Metrics>,
    /// The algorithms the metadata advertises; `None` when it lists none, in which case the
    /// algorithms the JWKS keys declare are the allowed ones.
    advertised: Option<Vec<Algorithm>>,
    settings: Settings,
    current: ArcSwap<KeySet>,
    /// Taken only to start or join a fetch, never to read keys.
    refresh: Mutex<RefreshSlot>,
    /// Clock milliseconds after which the next verification starts a background refresh.
    next_refresh_ms: AtomicU64,
    /// Set while the last fetch failed, so stale use can be counted.
    stale: AtomicBool,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = self.current.load();
        f.debug_struct("KeyStore")
            .field("jwks_uri", &self.jwks_uri)
            .field("kids", &set.kids())
            .field("advertised", &self.advertised)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// Fetches the JWKS a first time; fails if that fetch fails.
    pub(crate) async fn load(
        jwks_uri: String,
        http: reqwest::Client,
        clock: Arc<dyn Clock>,
        metrics: Arc<Metrics>,
        advertised: Option<Vec<Algorithm>>,
        config: &VerifierConfig,
    ) -> Result<Arc<Self>, FetchError> {
        let settings = Settings {
            default_ttl: config.jwks_default_ttl,
            min_ttl: config.jwks_min_ttl,
            max_ttl: config.jwks_max_ttl.max(config.jwks_min_ttl),
            cooldown: config.jwks_refetch_cooldown,
            max_staleness: config.jwks_max_staleness,
            http_timeout: config.http_timeout,
            max_bytes: config.max_document_bytes,
        };
        let store = Self {
            jwks_uri,
            http,
            clock,
            metrics,
            advertised,
            settings,
            current: ArcSwap::from_pointee(KeySet {
                keys: HashMap::new(),
                fetched_at: Duration::ZERO,
                fresh_until: Duration::ZERO,
            }),
            refresh: Mutex::new(RefreshSlot::default()),
            next_refresh_ms: AtomicU64::new(u64::MAX),
            stale: AtomicBool::new(false),
        };
        let started = store.clock.now();
        store.slot().last_attempt = Some(started);
        Metrics::incr(&store.metrics.jwks_fetches);
        let set = store.fetch().await?;
        if set.keys.is_empty() {
            tracing::warn!(jwks_uri = %store.jwks_uri, "the JWKS has no usable key yet");
        }
        store.install(set);
        Ok(Arc::new(store))
    }

    /// Whether tokens may use `alg` at all: one of the algorithms the issuer advertises (when
    /// it lists none, every key's own algorithm is checked after lookup instead).
    pub(crate) fn advertises(&self, alg: Algorithm) -> bool {
        self.advertised.as_ref().is_none_or(|list| list.contains(&alg))
    }

    /// Whether `kid` is still among trusted keys, without waiting for anything: the check a
    /// cached token passes again on every use. It also starts a due background refresh, so a
    /// verifier that only sees cached tokens still notices keys leaving the JWKS.
    pub(crate) fn check_published(self: &Arc<Self>, kid: &str) -> Result<(), VerifyError> {
        let now = self.clock.now();
        self.refresh_if_due(now);
        let set = self.current.load();
        if now.saturating_sub(set.fetched_at) > self.settings.max_staleness {
            return Err(VerifyError::KeysUnavailable);
        }
        if set.contains(kid) { Ok(()) } else { Err(VerifyError::UnknownKey) }
    }

    /// The key named `kid`, fetching the JWKS when it is unknown or too old (see module docs).
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<PublicKey>, VerifyError> {
        let now = self.clock.now();
        {
            let set = self.current.load();
            if now.saturating_sub(set.fetched_at) <= self.settings.max_staleness {
                self.refresh_if_due(now);
                if let Some(key) = set.keys.get(kid) {
                    if self.stale.load(Ordering::Relaxed) {
                        Metrics::incr(&self.metrics.jwks_stale_uses);
                    }
                    return Ok(Arc::clone(key));
                }
            }
        }
        // An unknown kid or keys too old to trust: wait for (or join) a fetch.
        if let Some(refresh) = self.start_refresh() {
            refresh.await;
        }
        let set = self.current.load();
        if self.clock.now().saturating_sub(set.fetched_at) > self.settings.max_staleness {
            return Err(VerifyError::KeysUnavailable);
        }
        set.keys.get(kid).cloned().ok_or(VerifyError::UnknownKey)
    }

    /// Fetches now unless a fetch is under way (then waits for it) or the cooldown forbids it.
    pub(crate) async fn refresh(self: &Arc<Self>) {
        if let Some(refresh) = self.start_refresh() {
            refresh.await;
        }
    }

    /// Hot-path check: two atomic operations, and a background fetch at most once per due time.
    fn refresh_if_due(self: &Arc<Self>, now: Duration) {
        let due = self.next_refresh_ms.load(Ordering::Relaxed);
        let now_ms = millis(now);
        if now_ms < due {
            return;
        }
        // Only the verification that wins the exchange starts the fetch; the others see the
        // new due time and go on.
        let next = now_ms.saturating_add(millis(self.settings.cooldown));
        if self
            .next_refresh_ms
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            // Not awaited: the fetch runs in its own task while this verification goes on.
            drop(self.start_refresh());
        }
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, RefreshSlot> {
        // The slot holds no invariant a panic could break halfway, so a poisoned lock is fine.
        self.refresh.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a fetch, or returns the one under way, or `None` inside the cooldown.
    fn start_refresh(self: &Arc<Self>) -> Option<SharedRefresh> {
        let mut slot = self.slot();
        if let Some(inflight) = &slot.inflight {
            return Some(inflight.clone());
        }
        let now = self.clock.now();
        if slot.last_attempt.is_some_and(|last| now < last.saturating_add(self.settings.cooldown)) {
            Metrics::incr(&self.metrics.jwks_refetches_suppressed);
            return None;
        }
        slot.last_attempt = Some(now);
        let store = Arc::clone(self);
        // The fetch runs in its own task so that a waiter giving up (its client went away)
        // cannot cancel it for everyone else; the guard reopens the slot even if it panics.
        let task = tokio::spawn(async move {
            let _reopen = ReopenSlot(Arc::clone(&store));
            store.refresh_now().await;
        });
        let shared = async move {
            // A panicked fetch changed nothing; waiters then look at the keys they had.
            let _ = task.await;
        }
        .boxed()
        .shared();
        slot.inflight = Some(shared.clone());
        Some(shared)
    }

    async fn refresh_now(&self) {
        Metrics::incr(&self.metrics.jwks_fetches);
        match self.fetch().await {
            Ok(set) => {
                tracing::debug!(jwks_uri = %self.jwks_uri, keys = set.keys.len(), "JWKS refreshed");
                self.install(set);
            }
            Err(error) => {
                Metrics::incr(&self.metrics.jwks_fetch_failures);
                self.stale.store(true, Ordering::Relaxed);
                let now = self.clock.now();
                let age = now.saturating_sub(self.current.load().fetched_at);
                tracing::warn!(
                    jwks_uri = %self.jwks_uri,
                    error = %crate::ErrorChain(&error),
                    keys_age_secs = age.as_secs(),
                    max_staleness_secs = self.settings.max_staleness.as_secs(),
                    "JWKS refresh failed; still using the last good keys"
                );
                self.next_refresh_ms
                    .store(millis(now.saturating_add(self.settings.cooldown)), Ordering::Relaxed);
            }
        }
    }

    fn install(&self, set: KeySet) {
        self.next_refresh_ms.store(millis(set.fresh_until), Ordering::Relaxed);
        self.current.store(Arc::new(set));
        self.stale.store(false, Ordering::Relaxed);
    }

    async fn fetch(&self) -> Result<KeySet, FetchError> {
        let request = self.http.get(&self.jwks_uri);
        let fetched =
            get_json::<Jwks>(request, self.settings.http_timeout, self.settings.max_bytes).await?;
        let ttl = freshness(&fetched.headers)
            .unwrap_or(self.settings.default_ttl)
            .clamp(self.settings.min_ttl, self.settings.max_ttl);
        Ok(key_set(&fetched.body, self.advertised.as_deref(), self.clock.now(), ttl))
    }
}

/// Clears the in-flight marker when a fetch task ends, however it ends.
struct ReopenSlot(Arc<KeyStore>);

impl Drop for ReopenSlot {
    fn drop(&mut self) {
        self.0.slot().inflight = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn freshness_reads_max_age_among_other_directives() {
        let h = headers(&[("cache-control", "public, max-age=300, must-revalidate")]);
        assert_eq!(freshness(&h), Some(Duration::from_secs(300)));
    }

    #[test]
    fn freshness_subtracts_the_age_a_cache_reports() {
        let h = headers(&[("cache-control", "max-age=300"), ("age", "100")]);
        assert_eq!(freshness(&h), Some(Duration::from_secs(200)));
    }

    #[test]
    fn freshness_is_zero_for_no_store_and_absent_without_directive() {
        assert_eq!(freshness(&headers(&[("cache-control", "no-store")])), Some(Duration::ZERO));
        assert_eq!(freshness(&headers(&[("cache-control", "public")])), None);
        assert_eq!(freshness(&HeaderMap::new()), None);
    }

    fn jwk(kty: &str, alg: Option<&str>, crv: Option<&str>) -> Jwk {
        Jwk {
            kty: kty.to_owned(),
            kid: Some("k".to_owned()),
            alg: alg.map(str::to_owned),
            use_: None,
            n: Some("AQAB".to_owned()),
            e: Some("AQAB".to_owned()),
            crv: crv.map(str::to_owned),
            x: Some("AQAB".to_owned()),
            y: Some("AQAB".to_owned()),
        }
    }

    #[test]
    fn a_jwk_declaring_an_hmac_or_none_algorithm_is_never_usable() {
        assert!(usable_key(&jwk("oct", Some("HS256"), None), None).is_err());
        assert!(usable_key(&jwk("RSA", Some("HS256"), None), None).is_err());
        assert!(usable_key(&jwk("RSA", Some("none"), None), None).is_err());
    }

    #[test]
    fn a_jwk_whose_type_contradicts_its_algorithm_is_skipped() {
        assert!(usable_key(&jwk("EC", Some("RS256"), Some("P-256")), None).is_err());
        assert!(usable_key(&jwk("RSA", Some("ES256"), None), None).is_err());
        assert!(usable_key(&jwk("EC", Some("ES256"), Some("P-384")), None).is_err());
        assert!(usable_key(&jwk("OKP", Some("EdDSA"), Some("X25519")), None).is_err());
    }

    #[test]
    fn a_jwk_without_alg_is_usable_under_the_issuers_algorithms_for_its_type() {
        let algs =
            |jwk: Jwk, allowed: Option<&[Algorithm]>| usable_key(&jwk, allowed).map(|k| k.algs);
        assert_eq!(algs(jwk("EC", None, Some("P-256")), None), Ok(vec![Algorithm::ES256]));
        assert_eq!(algs(jwk("RSA", None, None), None), Ok(vec![Algorithm::RS256]));
        assert_eq!(
            algs(
                jwk("RSA", None, None),
                Some(&[Algorithm::PS256, Algorithm::ES256, Algorithm::RS384])
            ),
            Ok(vec![Algorithm::PS256, Algorithm::RS384])
        );
        assert!(usable_key(&jwk("RSA", None, None), Some(&[Algorithm::ES256])).is_err());
        assert!(usable_key(&jwk("EC", None, Some("P-256")), Some(&[Algorithm::RS256])).is_err());
        assert!(usable_key(&jwk("oct", None, None), None).is_err());
    }

    #[test]
    fn a_jwk_whose_algorithm_the_issuer_does_not_advertise_is_skipped() {
        let rsa = jwk("RSA", Some("RS256"), None);
        assert!(usable_key(&rsa, Some(&[Algorithm::ES256])).is_err());
        assert!(usable_key(&rsa, Some(&[Algorithm::RS256])).is_ok());
    }
}
