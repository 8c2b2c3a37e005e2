//! Token endpoints that misbehave on purpose: tokens of another type, text that would drive a
//! terminal, answers that echo the request and with it the secret. What the SDK relays must be
//! safe to print, and every failure must say what kind it is.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::{MockServer, Recorded, Reply, form_encode};
use serde_json::json;
use tokenmint_client::{
    AuthStyle, ClientConfig, Error, ErrorKind, RetryPolicy, SecretString, TokenClient,
};

const CLIENT_ID: &str = "echo client";
/// A secret every encoding changes: space, plus, slash, percent, quote, non-ASCII.
const SECRET: &str = "s3 cr+t/%\"é-9f8e7d6c";

fn client(server: &MockServer, style: AuthStyle) -> TokenClient {
    let config =
        ClientConfig::new(&server.url("/oauth/token"), CLIENT_ID, SecretString::new(SECRET))
            .unwrap()
            .auth_style(style)
            .retry_policy(RetryPolicy::none());
    TokenClient::new(config).unwrap()
}

fn token_reply(token_type: &str) -> Reply {
    Reply::new(200, json!({"access_token": "tok", "token_type": token_type, "expires_in": 60}))
}

#[tokio::test]
async fn a_token_of_another_type_than_bearer_is_refused_not_sent_as_bearer() {
    for token_type in ["DPoP", "mac", "N_A", "Bearer-ish", "\u{1b}[2JDPoP"] {
        let server = MockServer::builder().start().await;
        server.state.script_token(token_reply(token_type));
        let error = client(&server, AuthStyle::Post).token().await.unwrap_err();
        assert!(matches!(error, Error::UnsupportedTokenType(_)), "{token_type}: {error:?}");
        assert_eq!(error.kind(), ErrorKind::InvalidResponse);
        let message = error.to_string();
        assert!(message.contains("only Bearer"), "{message}");
        assert!(!message.contains('\u{1b}'), "{message:?}");
    }
    for token_type in ["Bearer", "bearer", "BEARER"] {
        let server = MockServer::builder().start().await;
        server.state.script_token(token_reply(token_type));
        let token = client(&server, AuthStyle::Post).token().await.unwrap();
        assert_eq!(token.token_type(), token_type);
    }
}

/// An access token that is not visible ASCII (RFC 6750 b64token) would drive a terminal when
/// printed, or split the header a script builds from it: it is refused, and never quoted.
#[tokio::test]
async fn an_access_token_that_cannot_be_sent_in_a_header_is_refused() {
    for token in
        ["abc\u{1b}[2J\u{1b}]0;pwned\u{7}", "abc\r\nX-Evil: 1", "a b", "caf\u{e9}", "a\u{202e}b"]
    {
        let server = MockServer::builder().start().await;
        server.state.script_token(Reply::new(
            200,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 60}),
        ));
        let error = client(&server, AuthStyle::Post).token().await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidResponse, "{token:?}: {error:?}");
        let message = error.to_string();
        assert!(message.contains("the access token cannot be sent in a header"), "{message}");
        assert!(!message.contains("abc") && !message.contains("a b"), "{message}");
    }
    let server = MockServer::builder().start().await;
    server.state.script_token(Reply::new(
        200,
        json!({"access_token": "eyJ.a-b_c~d+e/f==!#$%", "token_type": "Bearer", "expires_in": 60}),
    ));
    client(&server, AuthStyle::Post).token().await.unwrap();
}

/// Text a hostile server puts where a message is expected.
const HOSTILE: &str =
    "bad\u{1b}]52;c;ZWNobyBwd25lZA==\u{7}\r\n2024-01-01 INFO forged line\u{9b}31m\u{202e}";

fn assert_printable(text: &str) {
    assert!(!text.chars().any(tokenmint_client::text::is_hazardous), "{text:?}");
}

#[tokio::test]
async fn server_text_in_errors_has_its_control_characters_made_visible() {
    let server = MockServer::builder().start().await;
    server.state.script_token(Reply::oauth_error(400, &format!("invalid_scope{HOSTILE}"), HOSTILE));
    let error = client(&server, AuthStyle::Post).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused);
    let message = error.to_string();
    assert_printable(&message);
    assert!(message.contains("\\u{1b}]52;c;") && message.contains("\\r\\n2024"), "{message}");

    let server = MockServer::builder().start().await;
    server.state.script_token(Reply {
        status: 502,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: HOSTILE.to_owned(),
    });
    let error = client(&server, AuthStyle::Post).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert_printable(&error.to_string());
}

/// Every form in which the secret went over the wire or may come back, computed here with the
/// encoders a server would use, not with the SDK's own.
fn leaked_forms() -> Vec<String> {
    let std = base64::engine::general_purpose::STANDARD;
    let pct = |v: &str| form_encode(v).replace('+', "%20");
    let json = serde_json::to_string(SECRET).unwrap();
    let json_twice = serde_json::to_string(&json[1..json.len() - 1]).unwrap();
    vec![
        json_twice[1..json_twice.len() - 1].to_owned(),
        SECRET.to_owned(),
        form_encode(SECRET),
        pct(SECRET),
        json[1..json.len() - 1].to_owned(),
        std.encode(format!("{CLIENT_ID}:{SECRET}")),
        std.encode(format!("{}:{}", pct(CLIENT_ID), pct(SECRET))),
        // What survives of the secret once the rest is masked must not be a usable part of it.
        SECRET[..8].to_owned(),
    ]
}

/// Echoes the request in the ways servers do: the raw body and header, the body as a JSON
/// string, and cut after a few hundred characters, as an excerpt would be.
fn echoes(request: &Recorded) -> Vec<Reply> {
    let raw = format!(
        "rejected {} with Authorization: {}",
        request.body,
        request.authorization.clone().unwrap_or_default()
    );
    let padded = format!("{}{raw}", "x".repeat(190));
    vec![
        Reply::oauth_error(400, "invalid_request", &raw),
        Reply::new(
            400,
            json!({"message": "bad request", "request": {"body": request.body, "authorization": request.authorization}}),
        ),
        Reply { status: 400, headers: vec![], body: raw.clone() },
        Reply { status: 400, headers: vec![], body: padded.clone() },
        Reply::oauth_error(400, "invalid_request", &padded),
    ]
}

#[tokio::test]
async fn a_server_echoing_the_request_never_gets_the_secret_printed_in_any_encoding() {
    for style in [AuthStyle::Basic, AuthStyle::Post, AuthStyle::Json] {
        for echo in 0..5 {
            let server = MockServer::builder()
                .validator(move |request| Err(echoes(request).swap_remove(echo)))
                .start()
                .await;
            let error = client(&server, style).token().await.unwrap_err();
            let printed = format!("{error} {error:?}");
            for form in leaked_forms() {
                assert!(!printed.contains(&form), "{style} echo {echo}: {form:?} in {printed}");
            }
            // The unpadded echoes quote the secret within the excerpt: the mask shows there.
            if echo < 3 {
                assert!(printed.contains("[redacted]"), "{style} echo {echo}: {printed}");
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_failure_says_what_kind_it_is() {
    let server = MockServer::builder().start().await;
    server.state.script_token(Reply::oauth_error(401, "invalid_client", "no"));
    let error = client(&server, AuthStyle::Basic).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Refused);

    server.state.script_token(Reply::oauth_error(503, "temporarily_unavailable", "later"));
    let error = client(&server, AuthStyle::Basic).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);

    server.state.script_token(Reply::new(429, json!({})).header("retry-after", "7200"));
    let error = client(&server, AuthStyle::Basic).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status);
    assert!(error.to_string().contains("asked to wait 7200 s"), "{error}");

    server.state.script_token(Reply { status: 200, headers: vec![], body: "<html>".into() });
    let error = client(&server, AuthStyle::Basic).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);

    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let config = ClientConfig::new(&format!("http://{closed}/token"), "id", SecretString::new("s"))
        .unwrap()
        .retry_policy(RetryPolicy::none());
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Network, "{error}");

    // A token endpoint that accepts the connection and never answers.
    server.state.close_gate();
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("s"))
        .unwrap()
        .request_timeout(Duration::from_secs(2))
        .retry_policy(RetryPolicy::none());
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");

    let config = ClientConfig::discover(&server.base_url(), "id", SecretString::new("s")).unwrap();
    server.state.open_gate();
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert!(matches!(error, Error::Discovery { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::Status, "{error}");

    let config =
        ClientConfig::new(&server.url("/oauth/token"), "", SecretString::new("s")).unwrap();
    assert_eq!(TokenClient::new(config).unwrap_err().kind(), ErrorKind::Local);
}

/// A valid JSON token response over the size limit is said to be too large, not "not JSON";
/// one just under the limit is read.
#[tokio::test]
async fn a_token_response_over_the_size_limit_is_said_to_be_too_large() {
    let server = MockServer::builder().start().await;
    let reply = |len: usize| {
        Reply::new(200, json!({"access_token": "t".repeat(len), "token_type": "Bearer"}))
    };
    server.state.script_token(reply(300 * 1024));
    let error = client(&server, AuthStyle::Post).token().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidResponse);
    let message = error.to_string();
    assert!(message.contains("the token response is larger than 262144 bytes"), "{message}");
    assert!(!message.contains("not JSON"), "{message}");
    server.state.script_token(reply(200 * 1024));
    let token = client(&server, AuthStyle::Post).token().await.unwrap();
    assert_eq!(token.token_type(), "Bearer");
}
