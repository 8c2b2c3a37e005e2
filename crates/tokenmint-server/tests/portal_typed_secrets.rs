//! A password or a client secret typed into the portal sign-in form's email field (the fields
//! swapped, as people and password managers do) is never written down: the failed sign-in's
//! audit record keeps an email only when what was typed is one, and a secret only redacted.
//!
//! The test installs the process-wide log subscriber, so it is the only test in this binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::browser::Browser;
use common::{LogCapture, spawn_app};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_password_or_secret_typed_as_the_email_is_not_kept_in_the_audit_trail_or_logs() {
    let capture = LogCapture::install();
    let app = spawn_app().await;
    let (_id, secret) = app.sandbox_reader().await;

    let password = "a long passphrase nobody should read";
    let generated = "PtMJtPZH0adnzP7mcwYj";
    let mut b = Browser::new(&app);
    for typed in [password, generated, secret.as_str()] {
        let res = b.try_sign_in(typed, "ada@initech.example").await;
        assert_eq!(res.status, 401, "{}", res.body);
    }
    // A real address, mistyped password: the address is still recorded.
    assert_eq!(b.try_sign_in("nobody@acme.test", "wrong password").await.status, 401);

    let start = Instant::now();
    let audit = loop {
        let audit: Value = app
            .admin(Method::GET, "/audit?kind=portal.sign_in_failed&limit=100", None)
            .await
            .json()
            .await
            .unwrap();
        let items = audit["items"].as_array().unwrap().clone();
        if items.len() >= 4 {
            break items;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{} audit records", items.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let emails: Vec<&str> = audit.iter().map(|e| e["details"]["email"].as_str().unwrap()).collect();
    assert!(emails.contains(&"nobody@acme.test"), "{emails:?}");
    assert_eq!(
        emails.iter().filter(|e| **e == "[not an email: redacted]").count(),
        2,
        "{emails:?}"
    );
    assert!(
        emails.iter().any(|e| e.starts_with("tms_") && e.ends_with("[redacted]")),
        "{emails:?}"
    );

    let all_audit = app.admin(Method::GET, "/audit?limit=1000", None).await.text().await.unwrap();
    let logs = capture.text() + &capture.json();
    for (place, text) in [("the audit trail", all_audit.as_str()), ("the logs", logs.as_str())] {
        for kept in [password, generated, &secret[8..], &secret[4..20]] {
            assert!(!text.contains(kept), "{kept:?} is in {place}");
        }
    }
}
