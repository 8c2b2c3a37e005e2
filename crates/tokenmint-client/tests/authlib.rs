//! Against authlib, the Python OAuth library, whose server reads HTTP Basic credentials with
//! plain percent-decoding: a space the client form-encodes as `+` arrives as a plus there, and
//! the client is refused. Installed from PyPI into a virtual environment under `target/` and
//! started by `tests/authlib/start.sh`.
//!
//! Skips, saying why, when Python is missing or the packages cannot be installed (no registry
//! access); everywhere else it runs for real.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use std::time::Duration;

use common::{conformance, interop};
use tokenmint_client::{AuthStyle, ClientConfig, SecretString, TokenClient, TokenParams};

/// The clients of `tests/authlib/server.py`: a space, a plus, a colon and a percent sign in each
/// id and secret.
const BASIC_CLIENT: (&str, &str) = ("basic client:1", "basic secret+with:odd%chars");
const POST_CLIENT: (&str, &str) = ("post client+2", "post secret+with:odd%chars");
/// The first start includes `pip install`.
const START_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_accepts_basic_credentials_with_spaces_and_plus_signs() {
    let start = || interop::start("tests/authlib/start.sh", &["python3"], START_TIMEOUT);
    let authlib = match tokio::task::spawn_blocking(start).await.unwrap() {
        Ok(peer) => peer,
        Err(reason) => {
            eprintln!("SKIPPED authlib test: {reason}");
            return;
        }
    };
    let token_url = format!("{}/oauth/token", authlib.issuer);

    let (id, secret) = BASIC_CLIENT;
    let token = conformance::fetch_token(&token_url, id, secret, AuthStyle::Basic).await;
    assert_eq!(token.token_type(), "Bearer");
    assert_eq!(token.expires_in(), Some(Duration::from_secs(600)));

    let (id, secret) = POST_CLIENT;
    conformance::fetch_token(&token_url, id, secret, AuthStyle::Post).await;

    conformance::wrong_secret_is_invalid_client(&token_url, BASIC_CLIENT.0, AuthStyle::Basic).await;
    conformance::wrong_secret_is_invalid_client(&token_url, POST_CLIENT.0, AuthStyle::Post).await;

    // Discovery from the issuer, and the scopes authlib grants.
    let config =
        ClientConfig::discover(&authlib.issuer, BASIC_CLIENT.0, SecretString::new(BASIC_CLIENT.1))
            .unwrap()
            .auth_style(AuthStyle::Basic);
    let client = TokenClient::new(config).unwrap();
    let token = client.token_with(&TokenParams::new().scope("api:read")).await.unwrap();
    assert_eq!(token.scope(), Some("api:read"));
}
