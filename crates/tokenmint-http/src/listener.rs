//! Accepting connections: plain HTTP or TLS, with the limits a server facing the internet needs.
//!
//! The accept loop is ours rather than `axum::serve` because an authorization server (and the
//! gateway in front of an API) must bound what a hostile client can hold: headers must arrive
//! within a deadline (this also closes idle keep-alive connections and defeats slow-loris),
//! header blocks are capped in size and count, and a TLS handshake that never finishes is
//! dropped. TLS certificates are re-read when their files change, so a renewed certificate is
//! served without a restart; a broken renewal is logged and the previous certificate kept.
//!
//! Behind a reverse proxy, the client's address comes from `X-Forwarded-For`, but only when the
//! connection comes from one of the configured proxies; anyone else could write that header.

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tower::ServiceExt;

/// How long a client may take to send a request's headers: the server's and the gateway's
/// default.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// A certificate chain and its private key, as PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Largest header block accepted (request line included): far above any real token request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// Most header fields accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A TLS certificate or key that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the TLS certificate {path}: {reason}")]
    Certificate { path: String, reason: String },
    #[error("cannot read the TLS key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("the TLS key does not fit the certificate: {0}")]
    Mismatch(String),
}

/// The largest certificate chain file read.
const CERT_MAX_LEN: u64 = 1024 * 1024;
/// The largest private key file read.
const KEY_MAX_LEN: u64 = 64 * 1024;

/// Loads a certificate chain and its private key from PEM files.
pub fn load_certified_key(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let cert_err =
        |reason: String| TlsError::Certificate { path: files.cert.display().to_string(), reason };
    // Read with a limit first: `/dev/zero` or a FIFO named by mistake is refused, not read
    // into memory without end.
    let cert_pem = crate::config_file::read_limited(&files.cert, CERT_MAX_LEN, "the file")
        .map_err(|e| cert_err(e.to_string()))?;
    let key_pem =
        crate::config_file::read_limited(&files.key, KEY_MAX_LEN, "the file").map_err(|e| {
            TlsError::Key { path: files.key.display().to_string(), reason: e.to_string() }
        })?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if certs.is_empty() {
        return Err(cert_err("no PEM certificate in the file".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Key {
        path: files.key.display().to_string(),
        // The parser's messages name the PEM section, never key material.
        reason: e.to_string(),
    })?;
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    CertifiedKey::from_der(certs, key, &provider).map_err(|e| TlsError::Mismatch(e.to_string()))
}

/// Serves the certificate currently loaded; [`watch_certificate`] swaps it when the files change.
#[derive(Debug)]
pub struct ReloadingCert {
    current: arc_swap::ArcSwap<CertifiedKey>,
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The TLS side of the server: the acceptor and the certificate it serves.
#[derive(Clone)]
pub struct Tls {
    acceptor: tokio_rustls::TlsAcceptor,
    cert: Arc<ReloadingCert>,
    files: TlsFiles,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("files", &self.files).finish_non_exhaustive()
    }
}

impl Tls {
    pub fn new(files: &TlsFiles) -> Result<Self, TlsError> {
        let key = load_certified_key(files)?;
        let cert = Arc::new(ReloadingCert { current: arc_swap::ArcSwap::from_pointee(key) });
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Mismatch(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(cert.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            cert,
            files: files.clone(),
        })
    }

    /// Re-reads the files now; on failure the certificate in use stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        let key = load_certified_key(&self.files)?;
        self.cert.current.store(Arc::new(key));
        Ok(())
    }
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Polls the certificate and key files and reloads them when either changes.
pub async fn watch_certificate(
    tls: Tls,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stamp = |f: &TlsFiles| (modified(&f.cert), modified(&f.key));
    let mut seen = stamp(&tls.files);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let now = stamp(&tls.files);
        if now == seen {
            continue;
        }
        match tls.reload() {
            Ok(()) => {
                seen = now;
                tracing::info!(cert = %tls.files.cert.display(), "TLS certificate reloaded");
            }
            // A renewal may be half-written (certificate before key): try again next tick,
            // serving the previous certificate meanwhile.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate not reloaded; keeping the current one")
            }
        }
    }
}

/// One member of an `X-Forwarded-For` list: an address, optionally in brackets (IPv6) and
/// with a port, as some proxies write it (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn forwarded_member(member: &str) -> Option<IpAddr> {
    if let Ok(ip) = member.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Some(rest) = member.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_ok =
            after.is_empty() || after.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
        return if port_ok {
            inside.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
        } else {
            None
        };
    }
    member.parse::<SocketAddr>().ok().filter(SocketAddr::is_ipv4).map(|a| a.ip())
}

/// The client's address as seen through the trusted proxies.
///
/// `field_lines` are the values of every `X-Forwarded-For` field line in the order received
/// (`None` for a line that is not visible ASCII). RFC 9110 §5.3 makes several lines one
/// comma-separated list, and each proxy appends the address it received the request from, so
/// the list is walked from the right: addresses of trusted proxies are stepped over, and the
/// first one that is not trusted is the client. Everything left of it was written by the client
/// (or by proxies nobody vouches for) and is ignored. A member that cannot be read stops the
/// walk at the nearest trusted hop: the answer is then an address a trusted proxy connected
/// from, never one an attacker wrote. Empty members are skipped (RFC 9110 §5.6.1).
pub fn forwarded_client<'a>(
    peer: IpAddr,
    field_lines: impl DoubleEndedIterator<Item = Option<&'a str>>,
    trusted: &[IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut nearest_trusted = peer;
    for line in field_lines.rev() {
        let Some(line) = line else { return nearest_trusted };
        for member in line.rsplit(',') {
            let member = member.trim_matches([' ', '\t']);
            if member.is_empty() {
                continue;
            }
            let Some(ip) = forwarded_member(member) else { return nearest_trusted };
            if !is_trusted(&ip) {
                return ip;
            }
            nearest_trusted = ip;
        }
    }
    nearest_trusted
}

/// [`forwarded_client`] over the `X-Forwarded-For` lines of a request's headers.
pub fn client_behind_proxies(peer: IpAddr, headers: &http::HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let lines = headers.get_all("x-forwarded-for").into_iter().map(|v| v.to_str().ok());
    forwarded_client(peer, lines, trusted)
}

/// What the accept loop needs to know besides the service: shared by the server and the
/// gateway, so both face hostile clients with the same limits.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// How long a client may take to send a request's headers (and to start the next one on a
    /// kept-alive connection).
    pub header_timeout: Duration,
}

impl Default for ListenOptions {
    fn default() -> Self {
        Self { trusted_proxies: Vec::new(), header_timeout: DEFAULT_HEADER_TIMEOUT }
    }
}

/// Accepts connections until `shutdown` resolves, then lets the connections in flight finish.
pub async fn serve<F>(
    listener: TcpListener,
    app: Router,
    options: &ListenOptions,
    tls: Option<Tls>,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let trusted: Arc<[IpNet]> = options.trusted_proxies.clone().into();
    let header_timeout = options.header_timeout;
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let trusted = trusted.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let service = app.map_request(move |mut req: http::Request<hyper::body::Incoming>| {
                let client = if trusted.is_empty() {
                    peer
                } else {
                    let ip = client_behind_proxies(peer.ip(), req.headers(), &trusted);
                    SocketAddr::new(ip, peer.port())
                };
                req.extensions_mut().insert(ConnectInfo(client));
                req
            });
            let service = TowerToHyperService::new(service);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .max_buf_size(MAX_HEADER_BYTES.max(8192))
                .max_headers(MAX_HEADERS)
                .keep_alive(true);
            let result = match tls {
                None => watcher.watch(builder.serve_connection(TokioIo::new(tcp), service)).await,
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await
                }
            };
            if let Err(e) = result {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    struct Pem {
        cert: String,
        key: String,
        der: Vec<u8>,
    }

    fn new_pem() -> Pem {
        let c = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        Pem { cert: c.cert.pem(), key: c.signing_key.serialize_pem(), der: c.cert.der().to_vec() }
    }

    fn served(tls: &Tls) -> Vec<u8> {
        tls.cert.current.load().cert[0].to_vec()
    }

    /// Lets the watcher run after the paused clock moved past its next tick.
    async fn tick(every: Duration) {
        tokio::time::advance(every).await;
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_renewal_keeps_the_certificate_in_use_until_a_good_one_arrives() {
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles { cert: dir.path().join("cert.pem"), key: dir.path().join("key.pem") };
        let first = new_pem();
        std::fs::write(&files.cert, &first.cert).unwrap();
        std::fs::write(&files.key, &first.key).unwrap();
        let tls = Tls::new(&files).unwrap();
        let every = Duration::from_secs(10);
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let watcher = tokio::spawn(watch_certificate(tls.clone(), every, stopped));
        tick(every).await;
        assert_eq!(served(&tls), first.der);

        // Half a renewal (garbage, or a certificate without its key) is not applied, tick
        // after tick.
        std::fs::write(
            &files.cert,
            "-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        tick(every).await;
        assert_eq!(served(&tls), first.der);
        let second = new_pem();
        std::fs::write(&files.cert, &second.cert).unwrap();
        tick(every).await;
        tick(every).await;
        assert_eq!(served(&tls), first.der, "the new certificate does not fit the old key");
        assert!(matches!(tls.reload(), Err(TlsError::Mismatch(_))));

        // The key arrives: the renewal is served from the next tick on.
        std::fs::write(&files.key, &second.key).unwrap();
        tick(every).await;
        assert_eq!(served(&tls), second.der);

        stop.send(true).unwrap();
        watcher.await.unwrap();
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(peer: &str, lines: &[&str], trusted: &[IpNet]) -> IpAddr {
        forwarded_client(ip(peer), lines.iter().map(|l| Some(*l)), trusted)
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let client = ip("203.0.113.7");
        assert_eq!(walk("10.0.0.5", &["203.0.113.7"], &trusted), client);
        // A client's own forged entry sits left of what the proxies appended.
        assert_eq!(walk("10.0.0.5", &["1.2.3.4, 203.0.113.7, 10.0.0.7"], &trusted), client);
        assert_eq!(walk("198.51.100.9", &["203.0.113.7"], &trusted), ip("198.51.100.9"));
        assert_eq!(walk("10.0.0.5", &[], &trusted), ip("10.0.0.5"));
        assert_eq!(walk("10.0.0.5", &["garbage"], &trusted), ip("10.0.0.5"));
    }

    #[test]
    fn every_field_line_counts_and_the_last_one_is_the_nearest_proxy() {
        // HAProxy's `option forwardfor` adds its own line after the client's.
        let trusted: Vec<IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert_eq!(walk("127.0.0.1", &["6.6.6.6", "192.0.2.44"], &trusted), ip("192.0.2.44"));
        assert_eq!(
            walk("127.0.0.1", &["6.6.6.6, 127.0.0.1", "192.0.2.44"], &trusted),
            ip("192.0.2.44")
        );
        // Two trusted hops, then the client.
        let two: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(
            walk("10.0.0.1", &["6.6.6.6", "192.0.2.44", "10.0.0.2"], &two),
            ip("192.0.2.44")
        );
    }

    #[test]
    fn a_malformed_member_stops_the_walk_at_the_nearest_trusted_hop() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(walk("10.0.0.1", &["6.6.6.6, bogus, 10.0.0.9"], &trusted), ip("10.0.0.9"));
        assert_eq!(walk("10.0.0.1", &["6.6.6.6", "unknown"], &trusted), ip("10.0.0.1"));
        let unreadable = [Some("6.6.6.6"), None];
        assert_eq!(
            forwarded_client(ip("10.0.0.1"), unreadable.into_iter(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn members_with_ports_brackets_and_empty_elements_are_read() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        assert_eq!(walk("10.0.0.1", &["192.0.2.1:4711"], &trusted), ip("192.0.2.1"));
        assert_eq!(walk("10.0.0.1", &["[2001:db8::1]:4711"], &trusted), ip("2001:db8::1"));
        assert_eq!(walk("10.0.0.1", &["[2001:db8::1]"], &trusted), ip("2001:db8::1"));
        assert_eq!(walk("10.0.0.1", &["2001:db8::2"], &trusted), ip("2001:db8::2"));
        assert_eq!(walk("10.0.0.1", &["192.0.2.1 , , "], &trusted), ip("192.0.2.1"));
        assert_eq!(walk("10.0.0.1", &["[2001:db8::1]:x"], &trusted), ip("10.0.0.1"));
    }

    /// A member of a generated list: an address (trusted or not, maybe with a port) or junk.
    fn member() -> impl Strategy<Value = String> {
        prop_oneof![
            (0u8..4).prop_map(|n| format!("10.0.0.{n}")),
            (0u8..4).prop_map(|n| format!("192.0.2.{n}")),
            (0u8..4, 1u16..).prop_map(|(n, p)| format!("192.0.2.{n}:{p}")),
            (0u16..4).prop_map(|n| format!("[2001:db8::{n}]")),
            "[ -~]{0,12}",
            Just(String::new()),
        ]
    }

    /// What the right-to-left walk must answer, written as plainly as possible: the members of
    /// every line in order, then from the right, skip trusted addresses.
    fn expected(peer: IpAddr, lines: &[String], trusted: &[IpNet]) -> IpAddr {
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
        if !is_trusted(&peer) {
            return peer;
        }
        let members: Vec<&str> = lines
            .iter()
            .flat_map(|l| l.split(','))
            .map(|m| m.trim_matches([' ', '\t']))
            .filter(|m| !m.is_empty())
            .collect();
        let mut answer = peer;
        for m in members.iter().rev() {
            match forwarded_member(m) {
                Some(ip) if is_trusted(&ip) => answer = ip,
                Some(ip) => return ip,
                None => return answer,
            }
        }
        answer
    }

    proptest! {
        #[test]
        fn the_walk_never_answers_an_address_left_of_an_untrusted_hop(
            peer_trusted in any::<bool>(),
            lines in proptest::collection::vec(
                proptest::collection::vec(member(), 0..4).prop_map(|m| m.join(",")), 0..5),
        ) {
            let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
            let peer = if peer_trusted { ip("10.0.0.200") } else { ip("198.51.100.1") };
            let got = forwarded_client(peer, lines.iter().map(|l| Some(l.as_str())), &trusted);
            prop_assert_eq!(got, expected(peer, &lines, &trusted));
            // Whatever a client writes left of the proxies' own entries cannot be the answer:
            // prepend anything to the first line and the result stays.
            let mut forged = lines.clone();
            if forged.is_empty() { forged.push(String::new()); }
            forged.insert(0, "6.6.6.6, 7.7.7.7".to_owned());
            let with_forgery = forwarded_client(peer, forged.iter().map(|l| Some(l.as_str())), &trusted);
            let proxies_wrote_an_untrusted_address = lines
                .iter()
                .flat_map(|l| l.split(','))
                .map(|m| m.trim_matches([' ', '\t']))
                .filter(|m| !m.is_empty())
                .any(|m| forwarded_member(m).is_none_or(|a| !trusted.iter().any(|n| n.contains(&a))));
            if proxies_wrote_an_untrusted_address || !peer_trusted {
                prop_assert_eq!(with_forgery, got);
            }
            // The answer is the peer, an address from the lines, never something else.
            prop_assert!(got == peer || lines.iter().any(|l| l.split(',').any(|m| forwarded_member(m.trim_matches([' ', '\t'])) == Some(got))));
        }
    }
}
