//! What is on disk: no client secret and no private key, in any form, anywhere in the database
//! files; and last-used times written behind the hot path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use base64::Engine;
use common::spawn_app;
use serde_json::{Value, json};
use tokenmint_core::keys::KeyRecord;

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn the_database_files_hold_no_secret_and_no_private_key() {
    let mut app = spawn_app().await;
    let mut secrets = vec![app.admin_secret.clone()];
    for i in 0..3 {
        let (id, secret) = app
            .create_credential(
                json!({"name": format!("c{i}"), "org": "acme", "environment": "sandbox"}),
            )
            .await;
        secrets.push(secret.clone());
        app.token(&id, &secret).await;
        let r: Value = app
            .admin(reqwest::Method::POST, &format!("/credentials/{id}/secrets"), Some(json!({})))
            .await
            .json()
            .await
            .unwrap();
        secrets.push(r["client_secret"].as_str().unwrap().to_owned());
    }
    app.admin(reqwest::Method::POST, "/keys/rotate", Some(json!({"alg": "RS256"}))).await;
    // Private keys, decrypted with the master key, in every encoding they could leak in.
    let records: Vec<KeyRecord> = app.state.store.list_keys().await.unwrap();
    assert_eq!(records.len(), 2);
    let mut private = Vec::new();
    for r in &records {
        let pkcs8 = app
            .master_key
            .key_encryption()
            .open(&r.sealed_private, &KeyRecord::associated_data(&r.kid, r.alg))
            .unwrap();
        private.push(base64::engine::general_purpose::STANDARD.encode(&pkcs8).into_bytes());
        private.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&pkcs8).into_bytes());
        // The last 32 bytes of a PKCS#8 document are inside the private key material.
        private.push(pkcs8[pkcs8.len() - 32..].to_vec());
        private.push(pkcs8);
    }
    app.stop().await;
    let mut files = Vec::new();
    for entry in std::fs::read_dir(app.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.file_name().unwrap().to_string_lossy().starts_with("tokenmint.db") {
            files.push(std::fs::read(&path).unwrap());
        }
    }
    assert!(!files.is_empty());
    for bytes in &files {
        for s in &secrets {
            assert!(!contains(bytes, s.as_bytes()), "a client secret is in the database");
            assert!(
                !contains(bytes, &s.as_bytes()[4..24]),
                "part of a client secret is in the database"
            );
        }
        for p in &private {
            assert!(!contains(bytes, p), "private key material is in the database");
        }
    }
}

#[tokio::test]
async fn last_used_times_reach_the_database_after_the_response() {
    let mut app = spawn_app().await;
    let (id, secret) = app.sandbox_reader().await;
    app.token(&id, &secret).await;
    let before = app.state.store.get_credential(&id).await.unwrap().unwrap();
    assert_eq!(before.last_used_at, None, "the token endpoint does not write");
    app.stop().await;
    let after = app.state.store.get_credential(&id).await.unwrap().unwrap();
    assert_eq!(after.last_used_at, Some(tokenmint_server::Clock::now(app.clock.as_ref())));
    assert!(after.secrets[0].last_used_at.is_some());
}
