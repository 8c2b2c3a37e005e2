//! The cheapest reverse proxy hyper makes: every request forwarded as it is to one upstream over
//! a pooled keep-alive client, on one thread, with no checks at all. It is the floor under any
//! gateway built on the same HTTP stack: a proxied request costs one more HTTP exchange, and the
//! harness shows how much of the gateway's cost is that exchange and how much its checks.

use anyhow::{Result, anyhow};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;

pub async fn serve(listen: SocketAddr, upstream: String) -> Result<()> {
    let upstream: Uri = upstream.parse().map_err(|e| anyhow!("upstream: {e}"))?;
    let authority =
        upstream.authority().cloned().ok_or_else(|| anyhow!("upstream needs a host"))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, hyper::body::Incoming> =
        Client::builder(TokioExecutor::new()).build(connector);
    let listener = tokio::net::TcpListener::bind(listen).await?;
    println!("listening={}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let client = client.clone();
        let authority = authority.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut request: Request<hyper::body::Incoming>| {
                let client = client.clone();
                let authority = authority.clone();
                async move {
                    let mut parts = request.uri().clone().into_parts();
                    parts.scheme = Some(hyper::http::uri::Scheme::HTTP);
                    parts.authority = Some(authority);
                    *request.uri_mut() = Uri::from_parts(parts)?;
                    match client.request(request).await {
                        Ok(response) => {
                            Ok::<_, anyhow::Error>(response.map(http_body_util::Either::Left))
                        }
                        Err(_) => {
                            let mut response = Response::new(http_body_util::Either::Right(
                                http_body_util::Empty::<bytes::Bytes>::new(),
                            ));
                            *response.status_mut() = StatusCode::BAD_GATEWAY;
                            Ok(response)
                        }
                    }
                }
            });
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}
