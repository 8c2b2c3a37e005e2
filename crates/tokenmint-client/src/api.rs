//! Authenticated API requests: the [`BearerAuth`] middleware and [`TokenClient::send`].
//!
//! Both follow the same rules. The token goes into `Authorization: Bearer` (RFC 6750 §2.1). A
//! 401 means the API no longer accepts the token (expired early, revoked, keys rotated): the
//! token that was used is invalidated, a new one fetched and the request sent once more, and
//! only once, so a server that refuses every token cannot trap the client in a loop. 429 and
//! 503 are retried after `Retry-After` when the wait is within bounds. A request is only ever
//! sent again when its body can be replayed.

use std::time::Duration;

use http::Extensions;
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{Request, Response, StatusCode};
use reqwest_middleware::{Middleware, Next};

use crate::client::{Token, TokenClient};
use crate::config::ApiRetryPolicy;
use crate::error::Error;
use crate::metrics::MetricEvent;
use crate::retry::{full_jitter, retry_after};

/// The bound of the first backoff delay when a 429/503 carries no `Retry-After`.
const API_BASE_DELAY: Duration = Duration::from_millis(500);

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
        let mut retries = Retries::new(&self.client, self.policy);
        loop {
            let token = retries.token().await.map_err(reqwest_middleware::Error::middleware)?;
            let replay = request.try_clone();
            authorize(&mut request, &token).map_err(reqwest_middleware::Error::middleware)?;
            let response = next.clone().run(request, extensions).await?;
            match (retries.after(&response, &token, replay.is_some()), replay) {
                (Some(wait), Some(replay)) => {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    request = replay;
                }
                _ => return Ok(response),
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
        let mut retries = Retries::new(self, self.config().api_retry);
        loop {
            let token = retries.token().await?;
            let replay = request.try_clone();
            authorize(&mut request, &token)?;
            let response = http.execute(request).await?;
            match (retries.after(&response, &token, replay.is_some()), replay) {
                (Some(wait), Some(replay)) => {
                    drop(response);
                    tokio::time::sleep(wait).await;
                    request = replay;
                }
                _ => return Ok(response),
            }
        }
    }
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

/// The retry state of one API request.
struct Retries<'a> {
    client: &'a TokenClient,
    policy: ApiRetryPolicy,
    unauthorized_retried: bool,
    rate_limited_retries: u32,
}

impl<'a> Retries<'a> {
    fn new(client: &'a TokenClient, policy: ApiRetryPolicy) -> Self {
        Self { client, policy, unauthorized_retried: false, rate_limited_retries: 0 }
    }

    async fn token(&self) -> Result<Token, Error> {
        self.client.token().await
    }

    /// How long to wait before sending the request again, or `None` to return the response.
    fn after(&mut self, response: &Response, token: &Token, replayable: bool) -> Option<Duration> {
        let status = response.status();
        if !replayable {
            return None;
        }
        if status == StatusCode::UNAUTHORIZED {
            if self.unauthorized_retried {
                return None;
            }
            self.unauthorized_retried = true;
            // Only the token that was refused is dropped; if another request already replaced
            // it, the next `token()` returns the replacement without a new fetch.
            self.client.invalidate(token);
            self.client.metrics().record(MetricEvent::ApiUnauthorizedRetry);
            tracing::debug!(url = %response.url(), "API answered 401; retrying once with a new token");
            return Some(Duration::ZERO);
        }
        let retryable = status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::SERVICE_UNAVAILABLE
            || (self.policy.retry_server_errors && status.is_server_error());
        if !retryable || self.rate_limited_retries >= self.policy.max_retries {
            return None;
        }
        let wait = retry_after(response.headers(), self.client.clock().system_time())
            .unwrap_or_else(|| {
                full_jitter(API_BASE_DELAY, self.policy.max_wait, self.rate_limited_retries)
            });
        if wait > self.policy.max_wait {
            tracing::debug!(url = %response.url(), %status, ?wait, "Retry-After exceeds the bound; not retrying");
            return None;
        }
        self.rate_limited_retries += 1;
        self.client.metrics().record(MetricEvent::ApiRateLimitedRetry);
        tracing::debug!(url = %response.url(), %status, ?wait, "API asked to retry later");
        Some(wait)
    }
}
