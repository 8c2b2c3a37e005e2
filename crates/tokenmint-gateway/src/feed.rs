//! The gateway's own token for the revocation feed, from the client SDK.
//!
//! The SDK caches the token and renews it before it expires; this adapter hands it to the
//! verifier's follower and, when the feed refuses it, drops exactly that token from the SDK's
//! cache so the next request gets a new one.

use arc_swap::ArcSwapOption;
use std::sync::Arc;
use tokenmint_client::{Token, TokenClient};
use tokenmint_verify::{BearerToken, TokenSource, TokenSourceError};

#[derive(Debug)]
pub(crate) struct ClientTokenSource {
    client: TokenClient,
    /// The token handed out last, so `invalidate` can name it to the SDK.
    last: ArcSwapOption<Token>,
}

impl ClientTokenSource {
    pub(crate) fn new(client: TokenClient) -> Self {
        Self { client, last: ArcSwapOption::empty() }
    }
}

impl TokenSource for ClientTokenSource {
    async fn token(&self) -> Result<BearerToken, TokenSourceError> {
        let token = self.client.token().await.map_err(TokenSourceError::new)?;
        let bearer = BearerToken::new(token.access_token().secret());
        self.last.store(Some(Arc::new(token)));
        Ok(bearer)
    }

    async fn invalidate(&self, rejected: &BearerToken) {
        if let Some(token) = self.last.load_full()
            && token.access_token().secret() == rejected.expose()
        {
            self.client.invalidate(&token);
        }
    }
}
