//! Accepting connections: the hardened listener of `tokenmint-http` (TLS and its reload, header
//! and handshake deadlines, trusted proxies), with the server's own rule on top: no plain HTTP
//! on a public address unless the operator says why.

use crate::config::Config;
pub use tokenmint_http::listener::*;

/// Why the server refuses to start on the address it was given.
pub fn plain_http_refusal(config: &Config) -> Option<String> {
    let ip = config.listen.ip();
    if config.tls.is_some() || config.insecure_http || !config.trusted_proxies.is_empty() {
        return None;
    }
    if ip.is_loopback() {
        return None;
    }
    Some(format!(
        "refusing to serve plain HTTP on {}: client secrets and tokens would cross the network \
         unencrypted. Give --tls-cert and --tls-key to serve HTTPS; or --behind-proxy ADDR if a \
         TLS-terminating proxy at ADDR forwards to tokenmint; or --insecure-http to accept the risk \
         (for example on a private test network)",
        config.listen
    ))
}

/// The listener settings of the server's configuration.
pub fn listen_options(config: &Config) -> ListenOptions {
    ListenOptions {
        trusted_proxies: config.trusted_proxies.clone(),
        header_timeout: config.header_timeout,
    }
}
