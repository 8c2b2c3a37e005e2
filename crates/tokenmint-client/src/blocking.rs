//! A blocking facade for programs without an async runtime.
//!
//! [`BlockingTokenClient`] owns a small tokio runtime (one worker thread) on which the
//! [`TokenClient`] runs. The worker thread is what lets a background refresh finish while the
//! program is busy elsewhere; every method blocks the calling thread until its answer is ready.
//! Calling it from inside an async runtime would deadlock that runtime, so it refuses with
//! [`Error::BlockingInAsyncContext`] instead.

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::api::NotRetried;
use crate::client::{Token, TokenClient};
use crate::config::{ClientConfig, TokenParams};
use crate::error::Error;

/// A [`TokenClient`] for synchronous code.
///
/// ```no_run
/// use tokenmint_client::{BlockingTokenClient, ClientConfig, Preset, SecretSource};
///
/// let config = ClientConfig::preset(
///     Preset::HealthHero,
///     "https://identity.example.com",
///     "my-client-id",
///     SecretSource::env("HEALTHHERO_CLIENT_SECRET"),
/// )?;
/// let tokens = BlockingTokenClient::new(config)?;
/// let token = tokens.token()?;
/// let response = tokens.send(reqwest::Client::new().get("https://api.example.com/api/v1/traversal"))?;
/// println!("{} {}", response.status, String::from_utf8_lossy(&response.body));
/// # Ok::<(), tokenmint_client::Error>(())
/// ```
#[derive(Debug)]
pub struct BlockingTokenClient {
    client: TokenClient,
    /// `Option` only so that `Drop` can take it out and shut it down without blocking.
    runtime: Option<tokio::runtime::Runtime>,
}

/// A response read in full by [`BlockingTokenClient::send`].
#[derive(Debug, Clone)]
pub struct BlockingResponse {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The response body.
    pub body: Vec<u8>,
    /// Why an answer the retry policy would retry was returned as it is; see [`NotRetried`].
    pub not_retried: Option<NotRetried>,
}

impl BlockingTokenClient {
    /// Builds the client and its runtime.
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        Self::from_builder(TokenClient::builder(config))
    }

    /// Builds the client from a [`TokenClientBuilder`](crate::TokenClientBuilder), for a
    /// custom HTTP client, clock or metrics.
    pub fn from_builder(builder: crate::TokenClientBuilder) -> Result<Self, Error> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tokenmint-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Config(format!("cannot start the client runtime: {e}")))?;
        Ok(Self { client: builder.build()?, runtime: Some(runtime) })
    }

    fn block_on<T>(&self, future: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(Error::BlockingInAsyncContext);
        }
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => Err(Error::Aborted),
        }
    }

    /// See [`TokenClient::token`].
    pub fn token(&self) -> Result<Token, Error> {
        self.block_on(self.client.token())
    }

    /// See [`TokenClient::token_with`].
    pub fn token_with(&self, params: &TokenParams) -> Result<Token, Error> {
        self.block_on(self.client.token_with(params))
    }

    /// See [`TokenClient::invalidate`].
    pub fn invalidate(&self, token: &Token) {
        self.client.invalidate(token);
    }

    /// See [`TokenClient::send`]; the body is read in full.
    pub fn send(&self, request: reqwest::RequestBuilder) -> Result<BlockingResponse, Error> {
        self.block_on(async {
            let response = self.client.send(request).await?;
            let status = response.status();
            let headers = response.headers().clone();
            let not_retried = response.extensions().get::<NotRetried>().copied();
            let body = response.bytes().await?.to_vec();
            Ok(BlockingResponse { status, headers, body, not_retried })
        })
    }

    /// The async client inside, sharing the same cache.
    pub fn client(&self) -> &TokenClient {
        &self.client
    }
}

impl Drop for BlockingTokenClient {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks stop, which panics inside another runtime;
        // shutting it down in the background does neither.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
