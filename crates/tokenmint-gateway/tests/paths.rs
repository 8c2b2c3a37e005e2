//! The canonical request path through the running gateway: every spelling of the review's
//! prefix-escape finding is routed to the guarded route or refused with a 400 that says why,
//! and what reaches the upstream is the canonical path the route was chosen by.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// `/files` needs `files:read`; `/files/private` needs `files:write`.
pub const FILES_ROUTES: &str = r#"
[[route]]
path_prefix = "/files"
upstream = "PRODUCTION_URL"
read_scope = "files:read"
write_scope = "files:write"

[[route]]
path_prefix = "/files/private"
upstream = "PRODUCTION_URL"
read_scope = "files:write"
write_scope = "files:write"
"#;

async fn get(setup: &Setup, path: &str, token: &str) -> (u16, String) {
    raw_request(setup.gateway.trim_start_matches("http://"), "GET", path, token).await
}

#[tokio::test]
async fn each_spelling_of_the_prefix_escape_is_routed_to_the_guarded_route_or_refused() {
    let setup = Setup::start_with(FILES_ROUTES).await;
    let reader = setup.token("production", &["files:read"]).await;
    assert_eq!(get(&setup, "/files/x", &reader).await.0, 200);
    assert_eq!(get(&setup, "/files/private/x", &reader).await.0, 403);

    // Decoded to /files/private/x: the guarded route's scope applies.
    for path in ["/files/%70rivate/x", "/files/priv%61te/x", "/files/%70%72%69%76%61%74%65"] {
        let (status, body) = get(&setup, path, &reader).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert!(body.contains("files:write"), "{path}: {body}");
    }
    // Spellings an upstream could read as /files/private: refused, saying why.
    let refused = [
        ("/files//private/x", "empty segments"),
        ("/files/private;x=1/y", "matrix parameters"),
        ("/files;x=1/private/y", "matrix parameters"),
        ("/files/private%3Bx=1", "matrix parameters"),
        ("/files/Private/x", "letter case"),
        ("/FILES/private/x", "letter case"),
        ("/files/PRIVATE", "letter case"),
        ("/files/private%00", "NUL"),
        ("/files/private%00/x", "NUL"),
        ("/files/private%20", "end with a dot or a space"),
        ("/files/private%20/x", "end with a dot or a space"),
        ("/files/private./x", "end with a dot or a space"),
        ("/files/x/../private", ". or .. segments"),
        ("/files/x/%2E%2e/private", ". or .. segments"),
        ("/files%2Fprivate", "encoded slash"),
        ("/files/%5Cprivate", "encoded slash"),
        ("/files/%2570rivate", "double encoding"),
        ("/files/%zz", "two hexadecimal digits"),
    ];
    for (path, reason) in refused {
        let (status, body) = get(&setup, path, &reader).await;
        assert_eq!(status, 400, "{path}: {body}");
        let problem: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["field"], "path", "{path}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(reason), "{path}: {detail}");
    }
}

#[tokio::test]
async fn the_upstream_receives_the_canonical_path_and_the_query_untouched() {
    let setup = Setup::start_with(FILES_ROUTES).await;
    let reader = setup.token("production", &["files:read"]).await;
    let (status, body) = get(&setup, "/files/%78%7e%41/a%3fb%c3%a9?q=%2e%2e/x;y", &reader).await;
    assert_eq!(status, 200, "{body}");
    let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed["path"], "/files/x~A/a%3Fb%C3%A9");
    assert_eq!(echoed["query"], "q=%2e%2e/x;y");
}

#[tokio::test]
async fn a_writer_reaches_the_guarded_route_under_any_spelling_that_decodes_to_it() {
    let setup = Setup::start_with(FILES_ROUTES).await;
    let writer = setup.token("production", &["files:write"]).await;
    for path in ["/files/private/x", "/files/%70rivate/x", "/files/priv%61te/x"] {
        let (status, body) = get(&setup, path, &writer).await;
        assert_eq!(status, 200, "{path}: {body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["path"], "/files/private/x");
    }
}
