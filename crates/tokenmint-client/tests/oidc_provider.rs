//! Against an OAuth 2.0 server tokenmint did not write: node-oidc-provider, installed from npm
//! and started by `tests/oidc-provider/start.sh`.
//!
//! Skips, saying why, when Node.js or npm is missing or the package cannot be installed (no
//! registry access); everywhere else it runs for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

use common::{conformance, interop};
use tokenmint_client::{AuthStyle, ClientConfig, SecretString, TokenClient, TokenParams};

const POST_CLIENT: (&str, &str) = ("post-client", "post secret+with:odd%chars");
const BASIC_CLIENT: (&str, &str) = ("basic:client id", "basic secret+with:odd%chars");
/// The first start includes `npm install`.
const START_TIMEOUT: Duration = Duration::from_secs(300);

fn start() -> Result<interop::Peer, String> {
    interop::start("tests/oidc-provider/start.sh", &["node", "npm"], START_TIMEOUT)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_oidc_provider_issues_tokens_with_post_and_basic_auth() {
    let provider = match tokio::task::spawn_blocking(start).await.unwrap() {
        Ok(provider) => provider,
        Err(reason) => {
            eprintln!("SKIPPED node_oidc_provider test: {reason}");
            return;
        }
    };
    let token_url = format!("{}/token", provider.issuer);

    let (id, secret) = POST_CLIENT;
    let token = conformance::fetch_token(&token_url, id, secret, AuthStyle::Post).await;
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Some(Duration::from_secs(600)));
    assert!(!token.access_token().secret().is_empty());

    // HTTP Basic with an id and a secret that only work when form-encoded per RFC 6749 §2.3.1.
    let (id, secret) = BASIC_CLIENT;
    let token = conformance::fetch_token(&token_url, id, secret, AuthStyle::Basic).await;
    assert!(!token.access_token().secret().is_empty());

    conformance::wrong_secret_is_invalid_client(&token_url, POST_CLIENT.0, AuthStyle::Post).await;
    conformance::wrong_secret_is_invalid_client(&token_url, BASIC_CLIENT.0, AuthStyle::Basic).await;

    // Discovery from the issuer, and scopes granted as asked.
    let config =
        ClientConfig::discover(&provider.issuer, POST_CLIENT.0, SecretString::new(POST_CLIENT.1))
            .unwrap();
    let client = TokenClient::new(config).unwrap();
    let token = client.token_with(&TokenParams::new().scope("api:write api:read")).await.unwrap();
    let mut granted: Vec<_> = token.scope().unwrap_or_default().split(' ').collect();
    granted.sort_unstable();
    assert_eq!(granted, ["api:read", "api:write"]);

    // node-oidc-provider drops a scope the client may not have rather than refusing it; the
    // token it issues then does not carry that scope.
    let token = client.token_with(&TokenParams::new().scope("admin")).await.unwrap();
    assert!(!token.scope().unwrap_or_default().contains("admin"));
}
