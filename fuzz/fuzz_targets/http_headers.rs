//! `Authorization` header handling on both sides: the resource server's bearer token extraction
//! (`tokenmint_verify::bearer_token`) and the authorization server's HTTP Basic client
//! credentials (`tokenmint_core::request::parse_basic`).
//!
//! Each input line is one `Authorization` header value; several lines make several headers, as
//! a client or a proxy may send. Lines that are not valid header values are dropped, as hyper
//! drops them before any handler runs. Besides "no panic", the target checks that an extracted
//! bearer token is a non-empty RFC 6750 b64token taken from the header itself.

#![no_main]

use http::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

fn is_b64token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

fuzz_target!(|data: &[u8]| {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n').take(8) {
        // Basic parsing takes raw bytes: the server hands it the header's bytes unchecked.
        if let Ok(Some(basic)) = tokenmint_core::request::parse_basic(line) {
            assert!(!basic.client_id.is_empty(), "Basic credentials with an empty client_id");
        }
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(AUTHORIZATION, value);
        }
    }
    let count = headers.get_all(AUTHORIZATION).iter().count();
    match tokenmint_verify::bearer_token(&headers) {
        Ok(Some(token)) => {
            assert_eq!(count, 1, "a token was taken from {count} Authorization headers");
            assert!(!token.is_empty() && token.bytes().all(is_b64token_char), "bad token {token:?}");
            assert!(!token.starts_with('='), "a token of padding only");
            let header = headers.get(AUTHORIZATION).map(HeaderValue::as_bytes).unwrap_or_default();
            assert!(
                header.windows(token.len()).any(|w| w == token.as_bytes()),
                "the token is not part of the header"
            );
        }
        Ok(None) => {}
        Err(rejection) => {
            // A refusal must render as a response without panicking.
            let _ = (rejection.status(), rejection.www_authenticate(), rejection.problem());
        }
    }
});
