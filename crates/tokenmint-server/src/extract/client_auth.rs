//! Client authentication for the token, introspection and revocation endpoints: a client
//! secret (RFC 6749 §2.3.1), or a `private_key_jwt` assertion (RFC 7523 §2.2) signed by one of
//! the credential's registered keys, whose `jti` is then used up across every instance.

use crate::cache::CachedCredential;
use crate::error::OAuthFailure;
use crate::state::AppState;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use std::sync::Arc;
use tokenmint_core::SecretHash;
use tokenmint_core::assertion::{self, AssertionError, VerifiedAssertion};
use tokenmint_core::credential::AuthFailure;
use tokenmint_core::request::{
    self, BasicCredentials, BodyFormat, ClientAuthentication, ClientProof, EndpointParams,
};

/// A client whose secret matched, or whose assertion verified.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    pub credential: Arc<CachedCredential>,
    /// The secret that matched, or `key:` and the thumbprint of the key that verified.
    pub secret_id: String,
}

/// What the client presented, made ready to check.
enum Presented<'a> {
    Secret(SecretHash),
    Assertion(&'a str),
}

/// How a check came out: the secret's id, or the verified assertion.
enum Proven {
    Secret(String),
    Assertion(VerifiedAssertion),
}

/// Why a check refused: the reason for the audit trail, and for an assertion what to fix.
type Failure = (AuthFailure, Option<AssertionError>);

/// Reads and parses the body and the Basic header of an OAuth endpoint request.
///
/// The content type is checked before the body is read, and the body is read with a limit,
/// so an oversized or unsupported body costs nothing to refuse.
pub async fn read_params(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(EndpointParams, Option<BasicCredentials>, BodyFormat), OAuthFailure> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let format = request::body_format(content_type)?;
    let limit = state.config.max_body_bytes;
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| OAuthFailure::payload_too_large(limit))?;
    let params = EndpointParams::parse(format, &bytes)?;
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(v) => request::parse_basic(v.as_bytes())
            .map_err(|e| OAuthFailure { basic_challenge: true, ..OAuthFailure::from(e) })?,
        None => None,
    };
    Ok((params, basic, format))
}

/// The address of the peer, when the server runs with connection info (always, outside
/// in-process tests).
pub fn peer_ip(extensions: &axum::http::Extensions) -> Option<std::net::IpAddr> {
    extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip())
}

/// Authenticates a client by its id and secret.
///
/// Every outcome costs the same work but one, so timing tells an attacker only what the
/// answer already does: the secret is hashed and checked once (against a stand-in when the id
/// is unknown), and every *refused* authentication reads the credential from the store once,
/// whether the id is unknown, never seen before, or known with a wrong secret. An accepted one
/// is served from memory. The read is not wasted: a credential created, or a secret rotated, on
/// another instance a moment ago (before the change log reached this one) is found by it and
/// accepted. A source that failed too often is refused before any of that (brute-force
/// protection), and every failure is counted. When the store cannot be read, every refusal of a
/// possible client id is a 503 alike, cached or not. The error carries the refusal's reason for
/// metrics and the audit trail.
pub async fn authenticate_client(
    state: &AppState,
    auth: &ClientAuthentication,
    ip: Option<std::net::IpAddr>,
) -> Result<AuthenticatedClient, (&'static str, OAuthFailure)> {
    let basic = auth.method == request::AuthMethod::Basic;
    let now = state.now();
    if let Some(wait) = state.abuse.blocked_for(&state.limits, ip, &auth.client_id).await {
        let mut f = OAuthFailure::rate_limited(wait);
        f.description = "too many failed authentications from this source; retry after the number of seconds in \
                         Retry-After"
            .into();
        return Err(("blocked", f));
    }
    if !state.cache_is_fresh() {
        // The database has been unreachable for too long to trust what is cached.
        return Err(("unavailable", OAuthFailure::unavailable()));
    }
    let presented = match &auth.proof {
        ClientProof::Secret(secret) => Presented::Secret(state.hasher.hash(secret)),
        ClientProof::Assertion(a) => Presented::Assertion(a.expose()),
    };
    // An id that cannot be a credential's is never looked up: nothing could be found, so no
    // store read can tell anything, and none is spent on made-up input.
    let lookup = auth.client_id.client_id().is_some();
    let id = auth.client_id.as_str();
    let mut read_store = false;
    let mut entry = match lookup.then(|| state.credentials.cached(id)).flatten() {
        Some(e) => e,
        None if lookup => {
            read_store = true;
            state.metrics.client_auth_store_reads.inc();
            match state.credentials.get(state.store.as_ref(), id).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::warn!(error = %e, "credential lookup failed");
                    // Counted like every refusal, so that a cached id (whose wrong secret is
                    // counted below) is not told apart by when it gets blocked.
                    on_failure(state, auth, ip, AuthFailure::UnknownClient, None, now).await;
                    return Err(("unavailable", OAuthFailure::unavailable()));
                }
            }
        }
        None => None,
    };
    let mut result = check(state, entry.as_deref(), &presented, now);
    if result.is_err() && lookup && !read_store {
        // The refusal came from memory: ask the store once, as a lookup that missed would
        // have, and believe it over the cache. One index probe answers whether the cached
        // entry is current, existing id or not; only a changed credential is read in full.
        state.metrics.client_auth_store_reads.inc();
        let epoch = state.credentials.epoch();
        let cached_revision = entry.as_ref().map(|c| c.revision());
        let reread = match with_timeout(state.store.credential_revision(id)).await {
            Ok(revision) if revision == cached_revision => Ok(()),
            Ok(_) => with_timeout(state.store.get_credential(id)).await.map(|fresh| {
                let fresh = fresh.map(|c| state.credentials.entry(c));
                state.credentials.refresh(id, fresh.clone(), epoch);
                entry = fresh;
                result = check(state, entry.as_deref(), &presented, now);
            }),
            Err(e) => Err(e),
        };
        if let Err(e) = reread {
            // Down: a lookup that missed the cache is answered 503 now, so this refusal must be
            // too, or a 401 here against a 503 there would tell cached (existing) ids from
            // unknown ones. The failure still counts against the source and the client.
            tracing::warn!(error = %e, "credential re-read failed");
            if let Err((reason, _)) = result {
                on_failure(state, auth, ip, reason, entry.as_deref(), now).await;
                return Err(("unavailable", OAuthFailure::unavailable()));
            }
        }
    }
    match (result, entry) {
        (Ok(Proven::Secret(secret_id)), Some(credential)) => {
            Ok(AuthenticatedClient { credential, secret_id })
        }
        (Ok(Proven::Assertion(verified)), Some(credential)) => {
            // Single use, checked last: only an assertion that passed every other check uses
            // up its jti, so a refused one cannot be made to spoil a good one's.
            let id = credential.client_id();
            match use_once(state, &id, &verified, now).await {
                Ok(true) => Ok(AuthenticatedClient {
                    credential,
                    secret_id: format!("key:{}", verified.key_thumbprint),
                }),
                Ok(false) => {
                    let reason = AuthFailure::InvalidAssertion;
                    on_failure(state, auth, ip, reason, Some(credential.as_ref()), now).await;
                    let e = AssertionError::Replayed;
                    Err((e.reason(), OAuthFailure::invalid_client_because(e.to_string())))
                }
                Err(()) => Err(("unavailable", OAuthFailure::unavailable())),
            }
        }
        (Err((reason, assertion_error)), entry) => {
            on_failure(state, auth, ip, reason, entry.as_deref(), now).await;
            Err(match assertion_error {
                // What the assertion's form alone shows, or what only the key's holder can
                // have caused, is said; whatever would tell which ids or keys exist is answered
                // as an unknown client_id is.
                Some(e) if !e.tells_about_the_client() => {
                    (e.reason(), OAuthFailure::invalid_client_because(e.to_string()))
                }
                Some(e) if entry.is_some() => (e.reason(), OAuthFailure::invalid_client(basic)),
                _ => (reason.as_str(), refused_client(auth, basic)),
            })
        }
        (Ok(_), None) => Err(("unknown_client", refused_client(auth, basic))),
    }
}

/// `invalid_client` for a client that was not found, saying so when the client_id sent looks
/// like a client secret (the two fields swapped): that is told by what was sent alone, not by
/// which credentials exist. In printable ASCII, as RFC 6749 §5.2 wants `error_description`.
fn refused_client(auth: &ClientAuthentication, basic: bool) -> OAuthFailure {
    let mut f = OAuthFailure::invalid_client(basic);
    if auth.client_id.is_secret() {
        f.description = "Client authentication failed: the client_id looks like a client secret (tms_...), not a \
                         client_id (tmc_...); send the client_id and the client_secret each in its own field, and \
                         rotate the secret if it may have been seen"
            .into();
    }
    f
}

/// Uses up an assertion's `jti` until the assertion expires, across every instance: in Redis
/// (`SET NX PX`) when it is configured and answers, else in the store. `Err` when neither can
/// answer: an assertion whose single use cannot be enforced is not accepted.
async fn use_once(
    state: &AppState,
    client_id: &str,
    verified: &VerifiedAssertion,
    now: tokenmint_core::UnixTime,
) -> Result<bool, ()> {
    let key = assertion::replay_key(client_id, &verified.jti);
    let until = assertion::remember_until(verified.exp);
    let ttl = std::time::Duration::from_secs(u64::try_from(until - now).unwrap_or(1).max(1));
    if let Some(first) = state.limits.claim_once(&format!("jti:{key}"), ttl).await {
        return Ok(first);
    }
    match with_timeout(state.store.use_client_assertion(&key, until, now)).await {
        Ok(first) => Ok(first),
        Err(e) => {
            tracing::warn!(error = %e, "cannot record a client assertion's use; refusing it");
            Err(())
        }
    }
}

/// Checks the presented secret against the credential, or against a stand-in when there is
/// none, so the work is the same; or checks the assertion against the credential's keys, or
/// against none for an unknown client (which costs a signature check all the same).
fn check(
    state: &AppState,
    entry: Option<&CachedCredential>,
    presented: &Presented<'_>,
    now: tokenmint_core::UnixTime,
) -> Result<Proven, Failure> {
    state.metrics.client_auth_secret_checks.inc();
    match (presented, entry) {
        (Presented::Secret(hash), Some(cached)) => cached
            .authenticate(hash, now)
            .map(|id| Proven::Secret(String::from(id)))
            .map_err(|f| (f, None)),
        (Presented::Secret(hash), None) => {
            let _ = std::hint::black_box(hash.matches(&DUMMY_HASH));
            Err((AuthFailure::UnknownClient, None))
        }
        (Presented::Assertion(a), Some(cached)) => {
            let c = cached;
            let audiences = &state.assertion_audiences;
            let verified = assertion::verify(a, &c.client_id(), c.public_keys(), audiences, now)
                .map_err(|e| (AuthFailure::InvalidAssertion, Some(e)))?;
            c.usable(now).map_err(|f| (f, None))?;
            Ok(Proven::Assertion(verified))
        }
        // Checked with no keys: the same header checks and one signature check against a
        // stand-in key, as a known client's assertion that no key verifies.
        (Presented::Assertion(a), None) => {
            let error = assertion::verify(a, "", &[], &state.assertion_audiences, now).err();
            Err((AuthFailure::UnknownClient, error))
        }
    }
}

/// Counts a failure for brute-force protection and raises the alerts it calls for.
async fn on_failure(
    state: &AppState,
    auth: &ClientAuthentication,
    ip: Option<std::net::IpAddr>,
    reason: AuthFailure,
    entry: Option<&CachedCredential>,
    now: tokenmint_core::UnixTime,
) {
    use crate::alerts::{Alert, AlertKind};
    let org = entry.map(CachedCredential::org);
    let client_id = &auth.client_id;
    let outcome = state.abuse.record_failure(&state.limits, ip, client_id).await;
    // The summaries interpolate the presented client_id, escaped already.
    let alert = |kind, summary: String| {
        let mut a = Alert::new(kind, now, tokenmint_core::SafeText::composed(&summary));
        a.client_id = Some(client_id.clone());
        a.org = org.map(Into::into);
        a.source_ip = ip;
        a
    };
    if outcome.source_blocked {
        state.metrics.sources_blocked.inc();
        let mut event = crate::audit::AuditEvent::new(crate::audit::AuditKind::SourceBlocked)
            .actor("system")
            .ip(ip)
            .reason("too_many_failures");
        event.client_id = Some(client_id.clone());
        state.audit.record(event, now);
        let a = alert(
            AlertKind::SourceBlocked,
            format!(
                "source {} blocked after repeated failed authentications",
                ip.map(|i| i.to_string()).unwrap_or_default()
            ),
        );
        state.alerts.fire(a, &state.audit).await;
    }
    if outcome.client_threshold_reached {
        let a = alert(
            AlertKind::AuthFailures,
            format!("repeated failed authentications for client {client_id}"),
        );
        state.alerts.fire(a, &state.audit).await;
    }
    match reason {
        AuthFailure::Deactivated | AuthFailure::CredentialExpired => {
            let a = alert(
                AlertKind::DeactivatedCredentialUsed,
                format!(
                    "the correct secret of {} credential {client_id} was used",
                    if reason == AuthFailure::Deactivated { "deactivated" } else { "expired" }
                ),
            );
            state.alerts.fire(a, &state.audit).await;
        }
        AuthFailure::SecretExpired => {
            let a = alert(
                AlertKind::ExpiredSecretUsed,
                format!("an expired secret of credential {client_id} was used"),
            );
            state.alerts.fire(a, &state.audit).await;
        }
        _ => {}
    }
}

static DUMMY_HASH: SecretHash = SecretHash([0u8; 32]);

/// How long a refusal waits for its re-read: a database that slow is in trouble, and the
/// answer from memory is a refusal anyway.
const REREAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

async fn with_timeout<T>(
    read: impl Future<Output = Result<T, tokenmint_store::StoreError>>,
) -> Result<T, tokenmint_store::StoreError> {
    tokio::time::timeout(REREAD_TIMEOUT, read).await.unwrap_or_else(|_| {
        Err(tokenmint_store::StoreError::Unavailable("the credential re-read timed out".into()))
    })
}
