//! Authenticated API requests: the [`BearerAuth`] middleware and [`TokenClient::send`].
//!
//! Both follow the same rules. The token goes into `Authorization: Bearer` (RFC 6750 §2.1). A
//! 401 means the API no longer accepts the token (expired early, revoked, keys rotated): the
//! token that was used is invalidated, a new one fetched and the request sent once more, and
//! only once, so a server that refuses every token cannot trap the client in a loop. The API
//! refused the request on its credentials before acting on it, so this holds for every method.
//!
//! 429 and 503 (and, when the policy says so, 500, 502 and 504) are retried after `Retry-After` only
//! when sending the request twice is safe: its method is idempotent (RFC 9110 §9.2.2: GET,
//! HEAD, OPTIONS, TRACE, PUT, DELETE), or it carries an `Idempotency-Key` header, with which the
//! server recognises the repeat. A POST answered 503 may have been carried out before the
//! failure; sending it again could place an order twice. A request is also only ever sent again
//! when its body can be replayed. Whenever an answer the policy would otherwise retry is
//! returned as it is, the response carries a [`NotRetried`] in its extensions saying why.

use std::time::Duration;

use http::Extensions;
use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
use reqwest::{Method, Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::client::{Token, TokenClient};
use crate::config::ApiRetryPolicy;
use crate::error::Error;
use crate::metrics::MetricEvent;
use crate::retry::{full_jitter, retry_after};

/// The bound of the first backoff delay when a 429/503 carries no `Retry-After`.
const API_BASE_DELAY: Duration = Duration::from_millis(500);

/// The request header of the IETF httpapi draft that makes a non-idempotent request safe to
/// repeat: the server carries out the first request with a given key and answers repeats with
/// the first outcome.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Why an answer that the [`ApiRetryPolicy`] would retry was returned instead.
///
/// [`BearerAuth`] and [`TokenClient::send`] put it in the extensions of such a response:
/// `response.extensions().get::<NotRetried>()`. A program can then tell its user why a 503
/// was final.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotRetried {
    /// The method is not idempotent (RFC 9110 §9.2.2) and the request has no
    /// `Idempotency-Key` header, so a repeat could carry the request out twice.
    NotIdempotent,
    /// The body is a stream that was consumed by the first attempt.
    BodyNotReplayable,
    /// The server asked for a longer pause than the policy's `max_wait`.
    WaitTooLong {
        /// What the server's `Retry-After` asked for.
        asked: Duration,
        /// The policy's `max_wait`.
        max_wait: Duration,
    },
    /// The policy's retries are used up (or it allows none).
    RetriesExhausted {
        /// How many retries were made.
        retries: u32,
    },
    /// The API answered 401 again to a token fetched anew after its first 401: the token is
    /// not what it accepts (scope, audience, issuer), and a third try would not change that.
    RefusedTwice,
}

/// Whether `request` may be sent twice: an idempotent method (RFC 9110 §9.2.2), or an
/// `Idempotency-Key` header.
pub fn is_safe_to_repeat(method: &Method, headers: &http::HeaderMap) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || headers.contains_key(IDEMPOTENCY_KEY)
}

/// A `reqwest-middleware` middleware that authenticates every request with a token from a
/// [`TokenClient`].
///
/// ```no_run
/// # async fn example(tokens: tokenmint_client::TokenClient) -> Result<(), Box<dyn std::error::Error>> {
/// use tokenmint_client::BearerAuth;
///
/// let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerAuth::new(tokens))
///     .build();
/// let consumer = api.get("https://api.example.com/v1/consumers/12345").send().await?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct BearerAuth {
    client: TokenClient,
    policy: ApiRetryPolicy,
}

impl BearerAuth {
    /// Authenticates with `client`, retrying per the client's [`ApiRetryPolicy`].
    pub fn new(client: TokenClient) -> Self {
        let policy = client.config().api_retry;
        Self { client, policy }
    }

    /// Uses `policy` instead of the client's.
    pub fn with_policy(mut self, policy: ApiRetryPolicy) -> Self {
        self.policy = policy;
        self
    }
}

#[async_trait::async_trait]
impl Middleware for BearerAuth {
    async fn handle(
        &self,
        req: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let mut request = req;
        let mut retries = Retries::new(&self.client, self.policy, &request);
        loop {
            let token = retries.token().await.map_err(reqwest_middleware::Error::middleware)?;
            let replay = request.try_clone();
            authorize(&mut request, &token).map_err(reqwest_middleware::Error::middleware)?;
            let response = next.clone().run(request, extensions).await?;
            match retries.after(&response, &token, replay) {
                Step::Retry(wait, replay) => {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    request = *replay;
                }
                Step::Return(note) => return Ok(noted(response, note)),
            }
        }
    }
}

impl TokenClient {
    /// Sends a request with a token, with the same 401 and 429/503 handling as
    /// [`BearerAuth`], without the middleware machinery.
    ///
    /// ```no_run
    /// # async fn example(tokens: tokenmint_client::TokenClient) -> Result<(), tokenmint_client::Error> {
    /// let http = reqwest::Client::new();
    /// let response = tokens.send(http.get("https://api.example.com/cash")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<Response, Error> {
        let (http, request) = request.build_split();
        self.execute(&http, request?).await
    }

    /// Like [`send`](Self::send), for a request already built.
    pub async fn execute(
        &self,
        http: &reqwest::Client,
        request: Request,
    ) -> Result<Response, Error> {
        let mut request = request;
        let mut retries = Retries::new(self, self.config().api_retry, &request);
        loop {
            let token = retries.token().await?;
            let replay = request.try_clone();
            authorize(&mut request, &token)?;
            let response = http.execute(request).await?;
            match retries.after(&response, &token, replay) {
                Step::Retry(wait, replay) => {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    request = *replay;
                }
                Step::Return(note) => return Ok(noted(response, note)),
            }
        }
    }
}

/// Attaches the reason an answer was not retried, if there is one.
fn noted(mut response: Response, note: Option<NotRetried>) -> Response {
    if let Some(note) = note {
        response.extensions_mut().insert(note);
    }
    response
}

/// Puts the token into the request. The header is marked sensitive so that it is left out of
/// `Debug` output of the request by reqwest and hyper.
fn authorize(request: &mut Request, token: &Token) -> Result<(), Error> {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.access_token().secret()))
        .map_err(|_| {
            Error::InvalidResponse("the access token cannot be sent in a header".to_owned())
        })?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}

/// What to do with an answer.
enum Step {
    /// Send the request again after the wait (boxed: a request is large, an answer small).
    Retry(Duration, Box<Request>),
    /// Hand the answer to the caller, with the reason it was not retried if the policy would
    /// have retried it.
    Return(Option<NotRetried>),
}

/// The retry state of one API request.
struct Retries<'a> {
    client: &'a TokenClient,
    policy: ApiRetryPolicy,
    safe_to_repeat: bool,
    unauthorized_retried: bool,
    rate_limited_retries: u32,
}

impl<'a> Retries<'a> {
    fn new(client: &'a TokenClient, policy: ApiRetryPolicy, request: &Request) -> Self {
        Self {
            client,
            policy,
            safe_to_repeat: is_safe_to_repeat(request.method(), request.headers()),
            unauthorized_retried: false,
            rate_limited_retries: 0,
        }
    }

    async fn token(&self) -> Result<Token, Error> {
        self.client.token().await
    }

    /// Whether to send the request again (`replay` is its copy, `None` when the body cannot be
    /// replayed) or to return `response`.
    fn after(&mut self, response: &Response, token: &Token, replay: Option<Request>) -> Step {
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            if self.unauthorized_retried {
                return Step::Return(Some(NotRetried::RefusedTwice));
            }
            let Some(replay) = replay else {
                return Step::Return(Some(NotRetried::BodyNotReplayable));
            };
            self.unauthorized_retried = true;
            // Only the token that was refused is dropped; if another request already replaced
            // it, the next `token()` returns the replacement without a new fetch.
            self.client.invalidate(token);
            self.client.metrics().record(MetricEvent::ApiUnauthorizedRetry);
            tracing::debug!(url = %response.url(), "API answered 401; retrying once with a new token");
            return Step::Retry(Duration::ZERO, Box::new(replay));
        }
        if !retryable(status, &self.policy) {
            return Step::Return(None);
        }
        if !self.safe_to_repeat {
            tracing::debug!(url = %response.url(), %status, "not idempotent and no Idempotency-Key; not retrying");
            return Step::Return(Some(NotRetried::NotIdempotent));
        }
        let Some(replay) = replay else {
            return Step::Return(Some(NotRetried::BodyNotReplayable));
        };
        if self.rate_limited_retries >= self.policy.max_retries {
            return Step::Return(Some(NotRetried::RetriesExhausted {
                retries: self.rate_limited_retries,
            }));
        }
        let wait = retry_after(response.headers(), self.client.clock().system_time())
            .unwrap_or_else(|| {
                full_jitter(API_BASE_DELAY, self.policy.max_wait, self.rate_limited_retries)
            });
        if wait > self.policy.max_wait {
            tracing::debug!(url = %response.url(), %status, ?wait, "Retry-After exceeds the bound; not retrying");
            return Step::Return(Some(NotRetried::WaitTooLong {
                asked: wait,
                max_wait: self.policy.max_wait,
            }));
        }
        self.rate_limited_retries += 1;
        self.client.metrics().record(MetricEvent::ApiRateLimitedRetry);
        tracing::debug!(url = %response.url(), %status, ?wait, "API asked to retry later");
        Step::Retry(wait, Box::new(replay))
    }
}

/// Whether an answer with this status may succeed when sent again: 429 and 503 say so; 500, 502
/// and 504 are transient failures, retried when the policy allows. Other 5xx answers (501 Not
/// Implemented, 505 HTTP Version Not Supported, …) answer the same way every time.
fn retryable(status: StatusCode, policy: &crate::ApiRetryPolicy) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::SERVICE_UNAVAILABLE
        || (policy.retry_server_errors
            && matches!(
                status,
                StatusCode::INTERNAL_SERVER_ERROR
                    | StatusCode::BAD_GATEWAY
                    | StatusCode::GATEWAY_TIMEOUT
            ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_answers_that_may_change_are_retried() {
        let strict = crate::ApiRetryPolicy::default();
        let lenient = crate::ApiRetryPolicy { retry_server_errors: true, ..strict };
        for code in 100..600u16 {
            let status = StatusCode::from_u16(code).unwrap();
            let always = matches!(code, 429 | 503);
            assert_eq!(retryable(status, &strict), always, "{code}");
            assert_eq!(
                retryable(status, &lenient),
                always || matches!(code, 500 | 502 | 504),
                "{code}"
            );
        }
    }
}
