//! Bounded JSON fetches shared by discovery, the JWKS cache and the feed poller.

use crate::error::FetchError;
use bytes::{Bytes, BytesMut};
use http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// A JSON document and the response headers it came with.
pub(crate) struct Fetched<T> {
    pub(crate) body: T,
    pub(crate) headers: HeaderMap,
}

/// Sends `request` and parses a 200 JSON body of at most `max_bytes`, within `timeout`
/// overall (connecting, waiting and reading).
pub(crate) async fn get_json<T: DeserializeOwned>(
    request: reqwest::RequestBuilder,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Fetched<T>, FetchError> {
    let work = async {
        let response = request.header(header::ACCEPT, "application/json").send().await?;
        if response.status() != StatusCode::OK {
            return Err(FetchError::Status(response.status()));
        }
        let headers = response.headers().clone();
        let body = read_limited(response, max_bytes).await?;
        Ok(Fetched { body: serde_json::from_slice(&body)?, headers })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| FetchError::Timeout)?
}

/// Reads a body chunk by chunk, giving up as soon as it grows past `max_bytes` so a hostile or
/// broken server cannot make the verifier buffer an unbounded response.
pub(crate) async fn read_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Bytes, FetchError> {
    if response.content_length().is_some_and(|len| len > max_bytes as u64) {
        return Err(FetchError::TooLarge { limit: max_bytes });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max_bytes {
            return Err(FetchError::TooLarge { limit: max_bytes });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}
