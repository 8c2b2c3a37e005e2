//! What the gateway forwards, where, and with which headers; what it refuses before the token
//! matters (routes, required headers, rate limits); and how it fails when the upstream does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use reqwest::Method;
use std::time::Duration;

#[tokio::test]
async fn a_valid_read_and_a_valid_write_reach_the_production_upstream() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:write"]).await;

    let read = setup.get("/eligibility/7?full=1", Some(&token)).await;
    assert_eq!(read.status, 200, "{read:?}");
    assert_eq!(read.body["upstream"], "production");
    assert_eq!(read.body["path"], "/eligibility/7");
    assert_eq!(read.body["query"], "full=1");

    let write = setup.send(Method::POST, "/eligibility", Some(&token), &[]).await;
    assert_eq!(write.status, 200, "{write:?}");
    assert_eq!(write.body["method"], "POST");
}

#[tokio::test]
async fn sandbox_tokens_go_to_the_sandbox_upstream_and_production_tokens_to_production() {
    let setup = Setup::start().await;
    let sandbox = setup.token("sandbox", &["eligibility:read"]).await;
    let production = setup.token("production", &["eligibility:read"]).await;
    let answer = setup.get("/eligibility", Some(&sandbox)).await;
    assert_eq!(answer.body["upstream"], "sandbox");
    assert_eq!(answer.forwarded("x-tokenmint-env"), Some("sandbox"));
    let answer = setup.get("/eligibility", Some(&production)).await;
    assert_eq!(answer.body["upstream"], "production");
    assert_eq!(answer.forwarded("x-tokenmint-env"), Some("production"));
}

#[tokio::test]
async fn a_route_without_an_upstream_for_the_tokens_environment_refuses_it() {
    let setup = Setup::start().await;
    let sandbox = setup.token("sandbox", &["billing:read"]).await;
    let answer = setup.get("/billing/invoices", Some(&sandbox)).await;
    answer.assert_problem(403);
    assert_eq!(answer.body["detail"], "this API does not serve sandbox credentials");
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer error=\"insufficient_scope\"")
    );
}

#[tokio::test]
async fn the_read_scope_does_not_allow_writes_and_the_missing_scope_is_named() {
    let setup = Setup::start().await;
    let reader = setup.token("production", &["eligibility:read"]).await;
    assert_eq!(setup.get("/eligibility", Some(&reader)).await.status, 200);
    for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
        let answer = setup.send(method, "/eligibility", Some(&reader), &[]).await;
        answer.assert_problem(403);
        assert_eq!(answer.body["required_scope"], "eligibility:write");
        assert!(answer.header("www-authenticate").unwrap().contains("scope=\"eligibility:write\""));
    }
    for method in [Method::HEAD, Method::OPTIONS] {
        let answer = setup.send(method, "/eligibility", Some(&reader), &[]).await;
        assert_eq!(answer.status, 200, "safe methods need the read scope only");
    }
}

#[tokio::test]
async fn the_longest_prefix_wins_and_unknown_paths_are_404() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    // /eligibility/members requires x-user-id; /eligibility does not.
    let answer = setup.get("/eligibility/members/1", Some(&token)).await;
    answer.assert_problem(400);
    assert_eq!(setup.get("/eligibility/other", Some(&token)).await.status, 200);
    // A prefix matches whole segments only.
    setup.get("/eligibility-admin", Some(&token)).await.assert_problem(404);
    setup.get("/nothing", None).await.assert_problem(404);
}

#[tokio::test]
async fn a_missing_required_header_is_a_400_that_names_it() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let answer = setup.get("/eligibility/members", Some(&token)).await;
    answer.assert_problem(400);
    assert_eq!(answer.body["field"], "x-user-id");
    assert_eq!(answer.body["detail"], "the x-user-id header is required");
    let answer = setup
        .send(Method::GET, "/eligibility/members", Some(&token), &[("X-User-Id", "u-1")])
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.forwarded("x-user-id"), Some("u-1"));
}

#[tokio::test]
async fn a_client_past_the_rate_limit_gets_429_with_retry_after_and_others_do_not() {
    let setup = Setup::start().await;
    let first = setup.token("production", &["billing:read"]).await;
    let second = setup.token("production", &["billing:read"]).await;
    for _ in 0..3 {
        assert_eq!(setup.get("/billing", Some(&first)).await.status, 200);
    }
    let limited = setup.get("/billing", Some(&first)).await;
    limited.assert_problem(429);
    let retry_after: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    // 3 a minute refill one every 20 s; the gateway's clock stands still during the test.
    assert_eq!(retry_after, 20);
    assert_eq!(setup.get("/billing", Some(&second)).await.status, 200, "limits are per client");

    // Once Retry-After has passed, one more request is admitted, and only one.
    setup.clock.advance(std::time::Duration::from_secs(19));
    setup.get("/billing", Some(&first)).await.assert_problem(429);
    setup.clock.advance(std::time::Duration::from_secs(1));
    assert_eq!(setup.get("/billing", Some(&first)).await.status, 200);
    setup.get("/billing", Some(&first)).await.assert_problem(429);
}

#[tokio::test]
async fn identity_headers_come_from_the_token_and_callers_cannot_spoof_them() {
    let setup = Setup::start().await;
    let (id, secret) = setup
        .server
        .credential("production", &["eligibility:read", "billing:read"], &[AUDIENCE])
        .await;
    let token = setup.server.token(&id, &secret).await;
    let spoofed = [
        ("x-tokenmint-client-id", "someone-else"),
        ("X-Tokenmint-Org", "other-org"),
        ("x-tokenmint-env", "production"),
        ("x-tokenmint-scope", "eligibility:admin"),
        ("x-tokenmint-admin", "true"),
    ];
    let answer = setup.send(Method::GET, "/eligibility", Some(&token), &spoofed).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.forwarded("x-tokenmint-client-id"), Some(id.as_str()));
    assert_eq!(answer.forwarded("x-tokenmint-org"), Some("acme"));
    assert_eq!(answer.forwarded("x-tokenmint-env"), Some("production"));
    let (_, claims) = decode(&token);
    assert_eq!(answer.forwarded("x-tokenmint-scope"), claims["scope"].as_str());
    assert_eq!(answer.forwarded("x-tokenmint-admin"), None);
    assert_eq!(answer.forwarded("authorization"), None, "not forwarded unless the route asks");
    assert!(answer.forwarded("x-forwarded-for").is_some());

    // /billing has forward_authorization = true.
    let answer = setup.get("/billing", Some(&token)).await;
    assert_eq!(answer.forwarded("authorization"), Some(format!("Bearer {token}").as_str()));
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let answer = setup
        .send(
            Method::GET,
            "/eligibility",
            Some(&token),
            &[
                ("connection", "keep-alive, x-secret-hop"),
                ("x-secret-hop", "1"),
                ("te", "trailers"),
            ],
        )
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.forwarded("x-secret-hop"), None);
    assert_eq!(answer.forwarded("te"), None);
}

/// Header names with `_` never reach the upstream (CGI, WSGI, PHP and Rack read them as the
/// `-` spelling: `X_Tokenmint_Scope` would be `HTTP_X_TOKENMINT_SCOPE`), and the `_` spelling
/// of a method-override header is judged like the header.
#[tokio::test]
async fn underscored_headers_are_dropped_and_their_override_spellings_need_the_write_scope() {
    let setup = Setup::start().await;
    let reader = setup.token("production", &["eligibility:read"]).await;
    let sent = [
        ("x_tokenmint_client_id", "tmc_victim"),
        ("X_Tokenmint_Scope", "billing:write"),
        ("x_original_url", "/eligibility/admin"),
        ("X_Real_IP", "6.6.6.6"),
        ("x_forwarded_host", "admin.internal"),
        ("some_header", "1"),
        ("x.tokenmint.scope", "billing:write"),
        ("x~original~url", "/eligibility/admin"),
        ("x.http.method.override", "DELETE"),
    ];
    let answer = setup.send(Method::GET, "/eligibility/7", Some(&reader), &sent).await;
    assert_eq!(answer.status, 200);
    for (name, _) in sent {
        assert_eq!(answer.forwarded(&name.to_ascii_lowercase()), None, "{name}");
    }
    for name in ["X_HTTP_METHOD_OVERRIDE", "x_http_method", "X_Method_Override"] {
        let answer =
            setup.send(Method::GET, "/eligibility/7", Some(&reader), &[(name, "DELETE")]).await;
        answer.assert_problem(403);
        assert_eq!(answer.body["required_scope"], "eligibility:write", "{name}");
    }
}

/// RFC 9112 §3.2: one `Host`, a host and an optional port; anything else is a 400, so the
/// caller cannot write into the `Forwarded` and `X-Forwarded-Host` the gateway sends on. An
/// HTTP/1.1 request needs one; an authority in the request target wins over it (§3.2.2).
#[tokio::test]
async fn a_missing_repeated_or_malformed_host_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let addr = setup.gateway.trim_start_matches("http://").to_owned();
    // (status, the X-Forwarded-Host the upstream saw)
    let send = |line: String, hosts: Vec<String>| {
        let (addr, token) = (addr.clone(), token.clone());
        async move {
            let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let mut request = format!("{line}\r\n");
            for host in hosts {
                request.push_str(&format!("Host: {host}\r\n"));
            }
            request
                .push_str(&format!("Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"));
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut response = Vec::new();
            stream.read_to_end(&mut response).await.unwrap();
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
            let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
            let host = serde_json::from_str::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v["headers"]["x-forwarded-host"].as_str().map(str::to_owned));
            (status, host)
        }
    };
    let origin_form = || "GET /eligibility/7 HTTP/1.1".to_owned();
    let status = |hosts: Vec<String>| {
        let send = &send;
        async move { send(origin_form(), hosts).await.0 }
    };
    assert_eq!(send(origin_form(), vec![addr.clone()]).await, (200, Some(addr.clone())));
    for hosts in [
        vec![],
        vec![addr.clone(), "evil.example".to_owned()],
        vec![addr.clone(), addr.clone()],
        vec!["x\"injected;for=1.2.3.4".to_owned()],
        vec!["evil.example@x".to_owned()],
        vec!["x/../eligibility".to_owned()],
        vec!["a:+80".to_owned()],
        vec!["a:0x50".to_owned()],
        vec!["a:99999".to_owned()],
        vec![format!("{addr},evil.example")],
        vec!["*".to_owned()],
        vec!["a:".to_owned()],
    ] {
        assert_eq!(status(hosts.clone()).await, 400, "{hosts:?}");
    }
    // HTTP/1.0 has no Host requirement: nothing is forwarded for it.
    assert_eq!(send("GET /eligibility/7 HTTP/1.0".to_owned(), vec![]).await, (200, None));
    // The absolute form's authority is the host; the Host line is ignored.
    let absolute = "GET http://api.example:8443/eligibility/7 HTTP/1.1".to_owned();
    assert_eq!(
        send(absolute.clone(), vec!["evil.example".to_owned()]).await,
        (200, Some("api.example:8443".to_owned()))
    );
    let userinfo = "GET http://user@api.example/eligibility/7 HTTP/1.1".to_owned();
    assert_eq!(send(userinfo, vec![addr.clone()]).await.0, 400);
}

async fn raw_get(setup: &Setup, path: &str, token: &str) -> u16 {
    raw_request(setup.gateway.trim_start_matches("http://"), "GET", path, token).await.0
}

#[tokio::test]
async fn paths_with_dot_segments_are_refused_before_routing() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    assert_eq!(raw_get(&setup, "/eligibility/x", &token).await, 200);
    for path in [
        "/eligibility/../billing",
        "/eligibility/%2e%2e/billing",
        "/eligibility/.%2E/billing",
        "/eligibility%2F..%2Fbilling",
    ] {
        assert_eq!(raw_get(&setup, path, &token).await, 400, "{path}");
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_and_a_slow_one_a_504() {
    let down = closed_port().await;
    let extra = format!(
        r#"
[[route]]
path_prefix = "/down"
upstream = "http://{down}"
read_scope = "eligibility:read"
write_scope = "eligibility:write"

[[route]]
path_prefix = "/impatient"
upstream = "PRODUCTION_URL"
read_scope = "eligibility:read"
write_scope = "eligibility:write"
request_timeout = "300ms"
"#
    );
    // The slow route points at the production echo server, which sleeps 2 s on /slow.
    let setup = Setup::start_with(&extra).await;
    let token = setup.token("production", &["eligibility:read"]).await;

    let answer = setup.get("/down/x", Some(&token)).await;
    answer.assert_problem(502);
    assert_eq!(answer.body["detail"], "the API behind the gateway is unavailable");

    let started = std::time::Instant::now();
    let answer = setup.get("/impatient/slow", Some(&token)).await;
    answer.assert_problem(504);
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[tokio::test]
async fn large_bodies_stream_through_in_both_directions() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:write"]).await;
    const SIZE: usize = 64 * 1024 * 1024;

    // Upload: 64 MiB in 1 MiB chunks, counted by the upstream as they arrive.
    let chunks = futures_util::stream::iter(
        (0..SIZE / (1 << 20)).map(|_| Ok::<_, std::io::Error>(vec![b'u'; 1 << 20])),
    );
    let response = setup
        .http
        .post(setup.url("/eligibility/upload"))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["body_len"], SIZE);

    // Download: 64 MiB.
    let response = setup
        .http
        .get(setup.url(&format!("/eligibility/large?{SIZE}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = response.bytes_stream();
    let mut received = 0;
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        received += chunk.unwrap().len();
    }
    assert_eq!(received, SIZE);
}

#[tokio::test]
async fn bodies_are_not_buffered_by_the_gateway() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:write"]).await;

    // Download: the first chunk arrives before the upstream has produced the second.
    let started = std::time::Instant::now();
    let response =
        setup.http.get(setup.url("/eligibility/drip")).bearer_auth(&token).send().await.unwrap();
    let mut stream = response.bytes_stream();
    let first = futures_util::StreamExt::next(&mut stream).await.unwrap().unwrap();
    assert_eq!(&first[..], b"first");
    assert!(started.elapsed() < Duration::from_millis(800), "{:?}", started.elapsed());

    // Upload: the upstream answers after the first chunk, while the rest has not been sent;
    // a buffering gateway would wait for a body that never ends.
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    let body = futures_util::stream::unfold((0, Some(released)), |(n, released)| async move {
        match n {
            0 => Some((Ok::<_, std::io::Error>(vec![b'a'; 1000]), (1, released))),
            _ => {
                let _ = released?.await;
                None
            }
        }
    });
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        setup
            .http
            .post(setup.url("/eligibility/first-chunk"))
            .bearer_auth(&token)
            .body(reqwest::Body::wrap_stream(body))
            .send(),
    )
    .await
    .expect("the upstream answered before the upload ended")
    .unwrap();
    assert_eq!(answer.status(), 200);
    let _ = release.send(());
}

#[tokio::test]
async fn healthz_and_metrics_are_served_by_the_gateway() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    setup.get("/eligibility", Some(&token)).await;
    setup.get("/eligibility", None).await;
    let health = setup.http.get(setup.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = setup.http.get(setup.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics
            .contains("tokenmint_gateway_requests_total{route=\"/eligibility\",status=\"200\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "tokenmint_gateway_refusals_total{route=\"/eligibility\",reason=\"missing_token\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("tokenmint_gateway_tokens_accepted_total 1"), "{metrics}");
    assert!(metrics.contains("tokenmint_gateway_revocation_feed_up 1"), "{metrics}");
    assert!(!metrics.contains(&token));
}

/// A method-override header makes a GET a write to an upstream that honours it, so the scope is
/// judged by the method asked for too, in proxy and in authz mode; a write token's overrides
/// pass on untouched.
#[tokio::test]
async fn a_method_override_to_a_write_needs_the_write_scope_in_both_modes() {
    let setup = Setup::start().await;
    let reader = setup.token("production", &["eligibility:read"]).await;
    let writer = setup.token("production", &["eligibility:write"]).await;
    let overrides = ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"];
    for name in overrides {
        for value in ["DELETE", "put", "GET, POST", ""] {
            let answer =
                setup.send(Method::GET, "/eligibility/7", Some(&reader), &[(name, value)]).await;
            answer.assert_problem(403);
            assert_eq!(answer.body["required_scope"], "eligibility:write", "{name}: {value}");
            let answer =
                setup.send(Method::GET, "/eligibility/7", Some(&writer), &[(name, value)]).await;
            assert_eq!(answer.status, 200, "{name}: {value}");
            assert_eq!(answer.forwarded(&name.to_ascii_lowercase()), Some(value));
        }
        let answer =
            setup.send(Method::GET, "/eligibility/7", Some(&reader), &[(name, "GET")]).await;
        assert_eq!(answer.status, 200, "an override to a read is a read");
    }

    let authz = Setup::start_configured("mode = \"authz\"", "").await;
    let reader = authz.token("production", &["eligibility:read"]).await;
    let writer = authz.token("production", &["eligibility:write"]).await;
    for name in overrides {
        let ask =
            [("x-original-method", "GET"), ("x-original-uri", "/eligibility/7"), (name, "DELETE")];
        let answer = authz.send(Method::GET, "/_auth", Some(&reader), &ask).await;
        answer.assert_problem(403);
        assert_eq!(answer.body["required_scope"], "eligibility:write");
        assert_eq!(authz.send(Method::GET, "/_auth", Some(&writer), &ask).await.status, 200);
        let forward_auth = [
            ("x-forwarded-method", "HEAD"),
            ("x-forwarded-uri", "/eligibility/7"),
            (name, "PATCH"),
        ];
        authz.send(Method::GET, "/_auth", Some(&reader), &forward_auth).await.assert_problem(403);
    }
}

/// A method-override query parameter (`?_method=DELETE`, Rails, Laravel, Express) is a write
/// to an upstream that honours it too: judged like the headers, in proxy and in authz mode.
#[tokio::test]
async fn a_method_override_parameter_to_a_write_needs_the_write_scope_in_both_modes() {
    let setup = Setup::start().await;
    let reader = setup.token("production", &["eligibility:read"]).await;
    let writer = setup.token("production", &["eligibility:write"]).await;
    for query in ["_method=DELETE", "a=1&_METHOD=put", "%5Fmethod=PATCH", "_HttpMethod=DELETE"] {
        let path = format!("/eligibility/7?{query}");
        let answer = setup.send(Method::GET, &path, Some(&reader), &[]).await;
        answer.assert_problem(403);
        assert_eq!(answer.body["required_scope"], "eligibility:write", "{query}");
        let answer = setup.send(Method::GET, &path, Some(&writer), &[]).await;
        assert_eq!(answer.status, 200, "{query}");
    }
    let answer = setup.send(Method::GET, "/eligibility/7?_method=GET", Some(&reader), &[]).await;
    assert_eq!(answer.status, 200, "an override to a read is a read");

    let authz = Setup::start_configured("mode = \"authz\"", "").await;
    let reader = authz.token("production", &["eligibility:read"]).await;
    for ask in [
        [("x-original-method", "GET"), ("x-original-uri", "/eligibility/7?_method=DELETE")],
        [("x-forwarded-method", "GET"), ("x-forwarded-uri", "/eligibility/7?x=1&_method=put#f")],
    ] {
        let answer = authz.send(Method::GET, "/_auth", Some(&reader), &ask).await;
        answer.assert_problem(403);
        assert_eq!(answer.body["required_scope"], "eligibility:write");
    }
    let ask = [("x-original-method", "GET"), ("x-original-uri", "/eligibility/7?method=DELETE")];
    assert_eq!(authz.send(Method::GET, "/_auth", Some(&reader), &ask).await.status, 200);
}

/// What a caller says about earlier hops (`Forwarded`, `X-Forwarded-Host`, `-Port`, `-Prefix`,
/// `-Server`, `X-Real-IP`), about its address, user or client certificate as a CDN or an
/// authenticating proxy would, never reaches the upstream: the gateway states `Forwarded`,
/// `X-Forwarded-Host` and `X-Forwarded-Proto` itself.
#[tokio::test]
async fn a_callers_forwarding_headers_are_replaced_by_the_gateways_own() {
    let setup = Setup::start().await;
    let token = setup.token("production", &["eligibility:read"]).await;
    let forged = [
        ("forwarded", "for=10.0.0.1;host=admin.internal;proto=https"),
        ("x-forwarded-host", "admin.internal"),
        ("x-forwarded-port", "443"),
        ("x-forwarded-prefix", "/admin"),
        ("x-forwarded-server", "admin.internal"),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-ssl", "on"),
        ("front-end-https", "on"),
        ("x-url-scheme", "https"),
        ("x-forwarded-scheme", "https"),
        ("x-host", "admin.internal"),
        ("x-original-url", "/eligibility/admin"),
        ("x-rewrite-url", "/eligibility/admin"),
        ("x-original-uri", "/eligibility/admin"),
        ("x-original-method", "DELETE"),
        ("x-forwarded-uri", "/eligibility/admin"),
        ("x-forwarded-method", "DELETE"),
        ("x-envoy-original-path", "/eligibility/admin"),
        ("proxy", "http://attacker.example:8080"),
        ("true-client-ip", "forged"),
        ("cf-connecting-ip", "forged"),
        ("x-client-ip", "forged"),
        ("client-ip", "forged"),
        ("x-cluster-client-ip", "forged"),
        ("fastly-client-ip", "forged"),
        ("x-proxyuser-ip", "forged"),
        ("x-remote-addr", "forged"),
        ("x-remote-ip", "forged"),
        ("x-originating-ip", "forged"),
        ("remote-addr", "forged"),
        ("remote-user", "forged"),
        ("x-remote-user", "forged"),
        ("x-forwarded-user", "forged"),
        ("x-forwarded-email", "forged"),
        ("x-forwarded-preferred-username", "forged"),
        ("x-forwarded-groups", "forged"),
        ("x-forwarded-access-token", "forged"),
        ("x-auth-request-user", "forged"),
        ("x-auth-request-email", "forged"),
        ("x-auth-request-preferred-username", "forged"),
        ("x-auth-request-groups", "forged"),
        ("x-auth-request-access-token", "forged"),
        ("x-forwarded-path", "forged"),
        ("x-original-path", "forged"),
        ("x-original-host", "forged"),
        ("x-forwarded-client-cert", "forged"),
        ("x-ssl-client-cert", "forged"),
        ("ssl-client-cert", "forged"),
        ("x-client-cert", "forged"),
        ("x-arr-clientcert", "forged"),
        ("x-ssl-client-dn", "forged"),
        ("x-ssl-client-verify", "forged"),
    ];
    let answer = setup.send(Method::GET, "/eligibility", Some(&token), &forged).await;
    assert_eq!(answer.status, 200);
    let host = setup.gateway.trim_start_matches("http://").to_owned();
    assert_eq!(
        answer.forwarded("forwarded"),
        Some(format!("for=127.0.0.1;host=\"{host}\";proto=http").as_str())
    );
    assert_eq!(answer.forwarded("x-forwarded-host"), Some(host.as_str()));
    assert_eq!(answer.forwarded("x-forwarded-proto"), Some("http"));
    for name in [
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-forwarded-server",
        "x-real-ip",
        "x-forwarded-ssl",
        "front-end-https",
        "x-url-scheme",
        "x-forwarded-scheme",
        "x-host",
        "x-original-url",
        "x-rewrite-url",
        "x-original-uri",
        "x-original-method",
        "x-forwarded-uri",
        "x-forwarded-method",
        "x-envoy-original-path",
        "proxy",
        "true-client-ip",
        "cf-connecting-ip",
        "x-client-ip",
        "client-ip",
        "x-cluster-client-ip",
        "fastly-client-ip",
        "x-proxyuser-ip",
        "x-remote-addr",
        "x-remote-ip",
        "x-originating-ip",
        "remote-addr",
        "remote-user",
        "x-remote-user",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-forwarded-preferred-username",
        "x-forwarded-groups",
        "x-forwarded-access-token",
        "x-auth-request-user",
        "x-auth-request-email",
        "x-auth-request-preferred-username",
        "x-auth-request-groups",
        "x-auth-request-access-token",
        "x-forwarded-path",
        "x-original-path",
        "x-original-host",
        "x-forwarded-client-cert",
        "x-ssl-client-cert",
        "ssl-client-cert",
        "x-client-cert",
        "x-arr-clientcert",
        "x-ssl-client-dn",
        "x-ssl-client-verify",
    ] {
        assert_eq!(answer.forwarded(name), None, "{name}");
    }
    // Several Forwarded lines are all replaced.
    let answer = setup
        .send(
            Method::GET,
            "/eligibility",
            Some(&token),
            &[("forwarded", "for=a"), ("forwarded", "for=b")],
        )
        .await;
    assert!(!answer.forwarded("forwarded").unwrap().contains("for=a"));
    // X-Forwarded-For is one list over all its field lines: none is lost, the caller is last.
    let answer = setup
        .send(
            Method::GET,
            "/eligibility",
            Some(&token),
            &[("x-forwarded-for", "203.0.113.1"), ("x-forwarded-for", "203.0.113.2, 10.0.0.3")],
        )
        .await;
    assert_eq!(
        answer.forwarded("x-forwarded-for"),
        Some("203.0.113.1, 203.0.113.2, 10.0.0.3, 127.0.0.1")
    );
}
