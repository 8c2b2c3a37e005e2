//! The presets against mock servers shaped like each provider's guide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{MockServer, Recorded, Reply, expect_json, expect_post};
use serde_json::json;
use tokenmint_client::{BearerAuth, ClientConfig, Preset, SecretSource, SecretString, TokenClient};

/// Candid Health: `POST /api/auth/v2/token` takes JSON or a form, answers 415 to any other
/// content type, and is sent no `grant_type`.
fn candid_validator(
    client_id: &'static str,
    secret: &'static str,
) -> impl Fn(&Recorded) -> Result<(), Reply> {
    move |request: &Recorded| {
        let (id, sec, grant_type) = match request.content_type.as_deref() {
            Some("application/json") => {
                let body = request
                    .json()
                    .ok_or_else(|| Reply::new(422, json!({"error": "UnprocessableEntity"})))?;
                let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
                (text("client_id"), text("client_secret"), body.get("grant_type").cloned())
            }
            Some(ct) if ct.starts_with("application/x-www-form-urlencoded") => (
                request.form_value("client_id"),
                request.form_value("client_secret"),
                request.form_value("grant_type").map(serde_json::Value::from),
            ),
            _ => {
                return Err(Reply::new(
                    415,
                    json!({"error": "InvalidContentTypeError", "message": "Content-Type must be application/json or application/x-www-form-urlencoded"}),
                ));
            }
        };
        if grant_type.is_some() {
            return Err(Reply::new(
                422,
                json!({"error": "UnprocessableEntity", "message": "unexpected grant_type"}),
            ));
        }
        if id.as_deref() != Some(client_id) || sec.as_deref() != Some(secret) {
            return Err(Reply::oauth_error(401, "invalid_client", "Client authentication failed"));
        }
        Ok(())
    }
}

#[tokio::test]
async fn candid_preset_posts_json_without_grant_type_and_gets_a_five_hour_token() {
    let server = MockServer::builder()
        .token_path("/api/auth/v2/token")
        .validator(candid_validator("candid-id", "candid-secret"))
        .expires_in(Some(json!(18_000)), Duration::from_secs(18_000))
        .start()
        .await;
    let config = ClientConfig::preset(
        Preset::Candid,
        &server.base_url(),
        "candid-id",
        SecretString::new("candid-secret"),
    )
    .unwrap();
    let token = TokenClient::new(config).unwrap().token().await.unwrap();
    assert_eq!(token.expires_in(), Some(Duration::from_secs(18_000)));
    let request = server.state.last_token_request();
    assert_eq!(request.path, "/api/auth/v2/token");
    assert_eq!(request.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::Value::Object(request.json().unwrap()),
        json!({ "client_id": "candid-id", "client_secret": "candid-secret" })
    );
}

#[tokio::test]
async fn candid_mock_refuses_other_content_types_with_415() {
    // Proves the mock is as strict as the guide, so the test above could fail.
    let server = MockServer::builder()
        .token_path("/api/auth/v2/token")
        .validator(candid_validator("candid-id", "candid-secret"))
        .start()
        .await;
    let response = reqwest::Client::new()
        .post(server.url("/api/auth/v2/token"))
        .header("content-type", "text/plain")
        .body("client_id=candid-id&client_secret=candid-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    // And it refuses a grant_type, which the preset must not send.
    let config = ClientConfig::preset(
        Preset::Candid,
        &server.base_url(),
        "candid-id",
        SecretString::new("candid-secret"),
    )
    .unwrap()
    .send_grant_type(true);
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(422));
}

#[tokio::test]
async fn candid_unexpected_error_bodies_surface_with_status_and_excerpt() {
    let server = MockServer::builder().token_path("/api/auth/v2/token").start().await;
    server.state.script_token(Reply {
        status: 415,
        headers: vec![("content-type".into(), "text/plain".into())],
        body: "Invalid Content Type".into(),
    });
    let config =
        ClientConfig::preset(Preset::Candid, &server.base_url(), "id", SecretString::new("secret"))
            .unwrap();
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    assert_eq!(error.status().map(|s| s.as_u16()), Some(415));
    assert!(error.to_string().contains("Invalid Content Type"), "{error}");
    assert_eq!(server.state.token_count(), 1, "a 415 is not retried");
}

fn wex_validator() -> impl Fn(&Recorded) -> Result<(), Reply> {
    let post = expect_post("wex-partner", "wex-secret");
    move |request: &Recorded| {
        if request.path != "/authorize" {
            return Err(Reply::new(404, json!({})));
        }
        post(request)
    }
}

async fn wex_server() -> MockServer {
    MockServer::builder()
        .token_path("/authorize")
        .validator(wex_validator())
        .expires_in(Some(json!(600)), Duration::from_secs(600))
        .token_prefix("wex")
        .start()
        .await
}

#[tokio::test]
async fn wex_preset_posts_a_form_to_authorize_and_calls_the_api() {
    let server = wex_server().await;
    let config = ClientConfig::preset(
        Preset::Wex,
        &server.base_url(),
        "wex-partner",
        SecretString::new("wex-secret"),
    )
    .unwrap();
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(TokenClient::new(config).unwrap()))
        .build();
    let response = api.get(server.url("/api/v1/consumers/12345")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let request = server.state.last_token_request();
    assert_eq!(request.path, "/authorize");
    assert_eq!(
        request.body,
        "grant_type=client_credentials&client_id=wex-partner&client_secret=wex-secret"
    );
}

#[tokio::test]
async fn wex_problem_json_401_gets_one_new_token_and_one_retry() {
    let server = wex_server().await;
    let config = ClientConfig::preset(
        Preset::Wex,
        &server.base_url(),
        "wex-partner",
        SecretString::new("wex-secret"),
    )
    .unwrap();
    let api = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(TokenClient::new(config).unwrap()))
        .build();
    server.state.script_api(Reply::problem(
        401,
        "Unauthorized",
        "The request requires user authentication.",
    ));
    let response = api.get(server.url("/api/v1/consumers/12345")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.state.token_count(), 2);
    let used: Vec<_> = server
        .state
        .api_requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.bearer().unwrap().to_owned())
        .collect();
    assert_eq!(used, ["wex-1", "wex-2"]);
}

#[tokio::test]
async fn wex_invalid_client_surfaces_the_servers_error_and_description() {
    let server = wex_server().await;
    let config = ClientConfig::preset(
        Preset::Wex,
        &server.base_url(),
        "wex-partner",
        SecretString::new("not-it"),
    )
    .unwrap();
    let error = TokenClient::new(config).unwrap().token().await.unwrap_err();
    match &error {
        tokenmint_client::Error::OAuth { status, error, description, .. } => {
            assert_eq!(status.as_u16(), 401);
            assert_eq!(error, "invalid_client");
            assert_eq!(description.as_deref(), Some("Client authentication failed"));
        }
        other => panic!("expected an OAuth error, got {other:?}"),
    }
    assert_eq!(server.state.token_count(), 1, "invalid_client is not retried");
}

#[tokio::test]
async fn wellhub_preset_posts_a_form_to_oauth_token() {
    let server = MockServer::builder()
        .token_path("/oauth/token")
        .validator(expect_post("wh-id", "wh-secret"))
        .start()
        .await;
    let config = ClientConfig::preset(
        Preset::Wellhub,
        &server.base_url(),
        "wh-id",
        SecretString::new("wh-secret"),
    )
    .unwrap();
    TokenClient::new(config).unwrap().token().await.unwrap();
    assert_eq!(server.state.last_token_request().path, "/oauth/token");
}

#[tokio::test]
async fn healthhero_preset_posts_a_form_to_connect_token() {
    let server = MockServer::builder()
        .token_path("/connect/token")
        .validator(expect_post("hh-id", "hh-secret"))
        .start()
        .await;
    let config = ClientConfig::preset(
        Preset::HealthHero,
        &server.base_url(),
        "hh-id",
        SecretString::new("hh-secret"),
    )
    .unwrap();
    TokenClient::new(config).unwrap().token().await.unwrap();
    assert_eq!(server.state.last_token_request().path, "/connect/token");
}

#[tokio::test]
async fn wealthyhood_preset_posts_json_with_an_audience() {
    let json = expect_json("wh-id", "wh-secret");
    let server = MockServer::builder()
        .token_path("/oauth/token")
        .validator(move |request: &Recorded| {
            json(request)?;
            match request.json().unwrap().get("audience") {
                Some(aud) if aud == "https://api.sandbox.wealthyhood.com" => Ok(()),
                _ => Err(Reply::oauth_error(403, "access_denied", "Service not found")),
            }
        })
        .start()
        .await;
    let config = ClientConfig::preset(
        Preset::Wealthyhood,
        &server.url("/oauth/token"),
        "wh-id",
        SecretSource::value(SecretString::new("wh-secret")),
    )
    .unwrap()
    .audience("https://api.sandbox.wealthyhood.com");
    let client = TokenClient::new(config).unwrap();
    let response = client
        .send(reqwest::Client::new().get(server.url("/api/cash")).header("x-user-id", "user-12345"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let api = server.state.api_requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(api.bearer(), Some("tok-1"));
}
