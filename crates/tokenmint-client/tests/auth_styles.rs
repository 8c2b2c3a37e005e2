//! Every authentication style, checked by a server that accepts exactly what the style must send.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::Router;
use axum::routing::get;
use common::{MockServer, conformance, expect_basic, expect_json, expect_post, form_encode};
use serde_json::json;
use tokenmint_client::{AuthStyle, ClientConfig, Endpoint, SecretString, TokenClient, TokenParams};

/// An id and a secret with every character RFC 6749 §2.3.1 form-encoding changes.
const AWKWARD_ID: &str = "partner:one+two three%41";
const AWKWARD_SECRET: &str = "s3:cr+et /%zz=é";

/// Plain percent-decoding, as authlib's `unquote` reads Basic credentials: `+` stays a plus.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3)) {
            (b'%', Some(hex)) => {
                out.push(u8::from_str_radix(std::str::from_utf8(hex).unwrap(), 16).unwrap());
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn basic_auth_encodes_id_and_secret_so_form_and_percent_decoders_both_read_them() {
    let server =
        MockServer::builder().validator(expect_basic(AWKWARD_ID, AWKWARD_SECRET)).start().await;
    let token = conformance::fetch_token(
        &server.url("/oauth/token"),
        AWKWARD_ID,
        AWKWARD_SECRET,
        AuthStyle::Basic,
    )
    .await;
    assert_eq!(token.access_token().secret(), "tok-1");

    // The exact bytes, not only what a lenient decoder makes of them.
    let request = server.state.last_token_request();
    // Form-encoded as RFC 6749 §2.3.1 says, except that a space is `%20`: a form decoder reads
    // it as a space just as it reads `+`, and a plain percent decoder reads only `%20` so.
    let expected =
        format!("{}:{}", "partner%3Aone%2Btwo%20three%2541", "s3%3Acr%2Bet%20%2F%25zz%3D%C3%A9");
    assert_eq!(
        form_encode(AWKWARD_ID).replace('+', "%20")
            + ":"
            + &form_encode(AWKWARD_SECRET).replace('+', "%20"),
        expected
    );
    let header = request.authorization.unwrap();
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(header.strip_prefix("Basic ").unwrap())
        .unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    assert_eq!(decoded, expected);
    let (id, secret) = decoded.split_once(':').unwrap();
    assert_eq!(
        (percent_decode(id).as_str(), percent_decode(secret).as_str()),
        (AWKWARD_ID, AWKWARD_SECRET)
    );
    assert_eq!(request.body, "grant_type=client_credentials");
}

#[tokio::test]
async fn post_auth_sends_the_credentials_in_the_form_body_only() {
    let server =
        MockServer::builder().validator(expect_post(AWKWARD_ID, AWKWARD_SECRET)).start().await;
    conformance::fetch_token(
        &server.url("/oauth/token"),
        AWKWARD_ID,
        AWKWARD_SECRET,
        AuthStyle::Post,
    )
    .await;
    let request = server.state.last_token_request();
    assert_eq!(request.content_type.as_deref(), Some("application/x-www-form-urlencoded"));
    assert_eq!(
        request.form(),
        vec![
            ("grant_type".to_owned(), "client_credentials".to_owned()),
            ("client_id".to_owned(), AWKWARD_ID.to_owned()),
            ("client_secret".to_owned(), AWKWARD_SECRET.to_owned()),
        ]
    );
}

#[tokio::test]
async fn json_auth_sends_one_json_object_with_every_parameter() {
    let server =
        MockServer::builder().validator(expect_json(AWKWARD_ID, AWKWARD_SECRET)).start().await;
    let config = ClientConfig::new(
        &server.url("/oauth/token"),
        AWKWARD_ID,
        SecretString::new(AWKWARD_SECRET),
    )
    .unwrap()
    .auth_style(AuthStyle::Json)
    .audience("https://api.example.com")
    .scope("orders:write cash:read")
    .resource("https://r2.example")
    .resource("https://r1.example")
    .extra_param("organization", "org_1");
    TokenClient::new(config).unwrap().token().await.unwrap();
    let body = server.state.last_token_request().json().unwrap();
    assert_eq!(
        serde_json::Value::Object(body),
        json!({
            "grant_type": "client_credentials",
            "client_id": AWKWARD_ID,
            "client_secret": AWKWARD_SECRET,
            "audience": "https://api.example.com",
            "scope": "cash:read orders:write",
            "resource": ["https://r1.example", "https://r2.example"],
            "organization": "org_1",
        })
    );
}

#[tokio::test]
async fn each_style_is_refused_by_a_server_expecting_another() {
    let server = MockServer::builder().validator(expect_basic("id", "secret")).start().await;
    for style in [AuthStyle::Post, AuthStyle::Json] {
        let config =
            ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
                .unwrap()
                .auth_style(style);
        let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
        assert!(error.status().is_some_and(|s| s.is_client_error()), "{style}: {error}");
    }
}

#[tokio::test]
async fn a_wrong_secret_is_invalid_client_in_every_style() {
    for (style, validator) in [
        (AuthStyle::Basic, expect_basic("id", "secret")),
        (AuthStyle::Post, expect_post("id", "secret")),
        (AuthStyle::Json, expect_json("id", "secret")),
    ] {
        let server = MockServer::builder().validator(validator).start().await;
        conformance::wrong_secret_is_invalid_client(&server.url("/oauth/token"), "id", style).await;
    }
}

#[tokio::test]
async fn form_parameters_carry_scope_audience_resources_and_extras() {
    let server = MockServer::builder().validator(expect_post("id", "secret")).start().await;
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
        .unwrap()
        .scope("b a b")
        .audience("aud")
        .resource("https://r.example")
        .extra_param("tenant", "t1");
    TokenClient::new(config).unwrap().token().await.unwrap();
    let form = server.state.last_token_request().form();
    let value = |name: &str| {
        form.iter().filter(|(k, _)| k == name).map(|(_, v)| v.clone()).collect::<Vec<_>>()
    };
    assert_eq!(value("scope"), ["a b"]);
    assert_eq!(value("audience"), ["aud"]);
    assert_eq!(value("resource"), ["https://r.example"]);
    assert_eq!(value("tenant"), ["t1"]);
}

#[tokio::test]
async fn no_grant_type_is_sent_when_the_dialect_has_none() {
    let server = MockServer::builder().start().await;
    let config = ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret"))
        .unwrap()
        .without_grant_type();
    TokenClient::new(config).unwrap().token().await.unwrap();
    let request = server.state.last_token_request();
    assert_eq!(request.form_value("grant_type"), None);
    assert_eq!(request.form_value("client_id").as_deref(), Some("id"));
}

#[tokio::test]
async fn different_parameters_get_different_tokens_and_equal_ones_share_one() {
    let server = MockServer::builder().start().await;
    let config =
        ClientConfig::new(&server.url("/oauth/token"), "id", SecretString::new("secret")).unwrap();
    let client = TokenClient::new(config).unwrap();
    let read = client.token_with(&TokenParams::new().scope("a:read b:read")).await.unwrap();
    let same = client.token_with(&TokenParams::new().scope("b:read a:read a:read")).await.unwrap();
    let other = client.token_with(&TokenParams::new().scope("a:read").audience("x")).await.unwrap();
    let default = client.token().await.unwrap();
    assert_eq!(read.access_token(), same.access_token());
    assert_ne!(read.access_token(), other.access_token());
    assert_ne!(default.access_token(), read.access_token());
    assert_eq!(server.state.token_count(), 3);
}

/// Serves `metadata` (with `issuer` filled in) at `path` on a fresh port; returns the issuer URL.
async fn metadata_server(
    path: &'static str,
    issuer_path: &str,
    named_issuer: Option<&str>,
    token_endpoint: String,
) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}{issuer_path}", listener.local_addr().unwrap());
    let body =
        json!({ "issuer": named_issuer.unwrap_or(&issuer), "token_endpoint": token_endpoint });
    let router = Router::new().route(path, get(move || async move { axum::Json(body) }));
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (issuer, server)
}

#[tokio::test]
async fn discovery_reads_rfc_8414_metadata_and_falls_back_to_openid_configuration() {
    let cases = [
        ("/.well-known/oauth-authorization-server", ""),
        ("/.well-known/openid-configuration", ""),
        ("/.well-known/oauth-authorization-server/tenant", "/tenant"),
        ("/tenant/.well-known/openid-configuration", "/tenant"),
    ];
    for (path, issuer_path) in cases {
        let tokens = MockServer::builder().validator(expect_post("id", "secret")).start().await;
        let (issuer, server) =
            metadata_server(path, issuer_path, None, tokens.url("/oauth/token")).await;
        let config = ClientConfig::discover(&issuer, "id", SecretString::new("secret")).unwrap();
        assert!(matches!(config.endpoint(), Endpoint::Issuer(_)));
        let token = TokenClient::new(config).unwrap().token().await.unwrap();
        assert_eq!(token.access_token().secret(), "tok-1", "metadata at {path}");
        server.abort();
    }
}

#[tokio::test]
async fn discovery_refuses_metadata_naming_another_issuer() {
    let tokens = MockServer::builder().start().await;
    let (issuer, server) = metadata_server(
        "/.well-known/oauth-authorization-server",
        "",
        Some("https://attacker.example"),
        tokens.url("/oauth/token"),
    )
    .await;
    let config = ClientConfig::discover(&issuer, "id", SecretString::new("secret")).unwrap();
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert!(matches!(error, tokenmint_client::Error::Discovery { .. }), "{error}");
    assert_eq!(tokens.state.token_count(), 0);
    server.abort();
}
