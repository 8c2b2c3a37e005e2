//! The discovery documents as a Python client sees them: authlib's RFC 8414 and OpenID Connect
//! Discovery validators accept both documents of a live server, and each lists exactly what
//! tokenmint supports (no response type, grant or authentication method it does not offer).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::print_stderr)]

mod common;

use common::spawn_app;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authlib_validates_both_discovery_documents_of_a_live_server() {
    let app = spawn_app().await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/authlib/validate.sh");
    let base = app.base.clone();
    let out =
        tokio::task::spawn_blocking(move || Command::new("bash").arg(&script).arg(&base).output())
            .await
            .unwrap();
    let out = match out {
        Ok(out) => out,
        Err(e) => {
            eprintln!("SKIPPED authlib validation: cannot run bash: {e}");
            return;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(3) {
        eprintln!("SKIPPED authlib validation: authlib cannot be installed: {stderr}");
        return;
    }
    assert!(out.status.success(), "authlib refused the metadata: {stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "valid");
}

#[tokio::test]
async fn each_discovery_document_advertises_only_what_is_supported() {
    let app = spawn_app().await;
    let get = |path: &'static str| {
        let url = app.url(path);
        let http = app.http.clone();
        async move { http.get(url).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let oauth = get("/.well-known/oauth-authorization-server").await;
    let oidc = get("/.well-known/openid-configuration").await;
    for m in [&oauth, &oidc] {
        // No authorization endpoint, so no browser flow: the one response type is `none`.
        assert!(m.get("authorization_endpoint").is_none());
        assert_eq!(m["response_types_supported"], json!(["none"]));
        assert_eq!(m["grant_types_supported"], json!(["client_credentials"]));
        assert!(m.get("userinfo_endpoint").is_none());
    }
    // The OpenID members appear in the OpenID document only.
    assert!(oauth.get("subject_types_supported").is_none());
    assert!(oauth.get("id_token_signing_alg_values_supported").is_none());
    assert_eq!(oidc["subject_types_supported"], json!(["public"]));
    assert_eq!(oidc["id_token_signing_alg_values_supported"], json!(["RS256"]));
    // Otherwise the two agree member for member.
    let mut rest = oidc.as_object().unwrap().clone();
    rest.remove("subject_types_supported");
    rest.remove("id_token_signing_alg_values_supported");
    assert_eq!(Value::Object(rest), oauth);
}
