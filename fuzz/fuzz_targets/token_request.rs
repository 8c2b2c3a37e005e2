//! Token, introspection and revocation request parsing (`tokenmint_core::request`), driven the
//! way the server drives it: a `Content-Type` header, an `Authorization` header and a body,
//! all attacker-controlled.
//!
//! Input layout, so that seeds stay readable: the first line is the `Content-Type` value, the
//! second the `Authorization` value (an empty line means the header is absent), the rest is the
//! body. Besides "no panic", the target checks what the endpoints rely on: accepted parameters
//! respect the length limits, and an accepted client authentication names a client.

#![no_main]

use libfuzzer_sys::fuzz_target;
use tokenmint_core::request::{self, EndpointParams, MAX_PARAM_LEN};

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fn check_limits(p: &EndpointParams) {
    for value in [
        &p.grant_type,
        &p.client_id,
        &p.scope,
        &p.audience,
        &p.resource,
        &p.token,
        &p.token_type_hint,
    ]
    .into_iter()
    .flatten()
    {
        assert!(value.len() <= MAX_PARAM_LEN, "a parameter over the length limit was accepted");
    }
}

fuzz_target!(|data: &[u8]| {
    let (content_type, rest) = split_line(data);
    let (authorization, body) = split_line(rest);

    // Both parsers see every body, whatever the header says: the server picks one by header,
    // an attacker picks the header.
    if let Ok(p) = EndpointParams::from_form(body) {
        check_limits(&p);
    }
    if let Ok(p) = EndpointParams::from_json(body) {
        check_limits(&p);
    }

    let content_type = std::str::from_utf8(content_type).ok().filter(|s| !s.is_empty());
    let Ok(format) = request::body_format(content_type) else { return };
    let Ok(params) = EndpointParams::parse(format, body) else { return };
    let basic = if authorization.is_empty() {
        None
    } else {
        match request::parse_basic(authorization) {
            Ok(basic) => basic,
            Err(e) => {
                // Every refusal maps to an OAuth error code without panicking.
                let _ = e.oauth_code();
                return;
            }
        }
    };
    if let Some(b) = &basic {
        assert!(!b.client_id.is_empty(), "Basic credentials with an empty client_id");
    }

    for allow_missing_grant_type in [false, true] {
        match request::token_request(params.clone(), basic.clone(), format, allow_missing_grant_type)
        {
            Ok(req) => {
                assert!(!req.auth.client_id.as_str().is_empty() || basic.is_none());
                assert!(!req.auth.client_id.as_str().chars().any(char::is_control));
                if let Some(scope) = &req.scope {
                    assert!(scope.len() <= MAX_PARAM_LEN);
                }
            }
            Err(e) => {
                let _ = (e.oauth_code(), e.to_string());
            }
        }
    }
    let mut params = params;
    let _ = request::client_authentication(&mut params, basic, format);
});
