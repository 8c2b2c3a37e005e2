//! OpenTelemetry export of the server's request spans, for operators who follow requests across
//! services in a tracing backend (Jaeger, Tempo, Honeycomb, an OpenTelemetry Collector).
//!
//! The spans are the ones the logs already carry (`request` with method, path and request id,
//! and the events inside it), so what is exported is exactly what is logged: never a secret or a
//! token. They leave in batches over OTLP/HTTP with protobuf bodies, from the exporter's own
//! thread, so the token endpoint never waits for the collector; a collector that is down costs
//! a dropped batch and a log line, not a slower server.
//!
//! The exporter's HTTP client is the process's reqwest client run on the process's tokio
//! runtime, rather than a second HTTP stack pulled in for this alone.

use anyhow::{Context, Result};
use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::time::Duration;

/// The running exporter; [`Telemetry::shutdown`] sends what is still buffered.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Telemetry {
    /// Exports spans to `endpoint` (the collector's base URL; `/v1/traces` is appended) as
    /// `service_name`, sending requests on `runtime`.
    pub fn start(
        endpoint: &str,
        service_name: &'static str,
        runtime: tokio::runtime::Handle,
    ) -> Result<(Self, SdkTracer)> {
        let url = format!("{}/v1/traces", endpoint.trim_end_matches('/'));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .context("cannot build the OpenTelemetry exporter's HTTP client")?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url)
            .with_http_client(OnRuntime { http, runtime })
            .build()
            .context("cannot start the OpenTelemetry exporter")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                Resource::builder_empty()
                    .with_service_name(service_name)
                    .with_attribute(opentelemetry::KeyValue::new(
                        "service.version",
                        env!("CARGO_PKG_VERSION"),
                    ))
                    .build(),
            )
            .build();
        let tracer = provider.tracer("tokenmint");
        Ok((Self { provider }, tracer))
    }

    /// Exports the spans still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "OpenTelemetry exporter did not shut down cleanly");
        }
    }
}

/// The exporter runs on a thread of its own, outside the runtime reqwest needs: each request is
/// spawned onto the runtime and awaited from there.
#[derive(Debug)]
struct OnRuntime {
    http: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OnRuntime {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let http = self.http.clone();
        let sent = self.runtime.spawn(async move {
            let (parts, body) = request.into_parts();
            let response = http
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut out = http::Response::new(Bytes::new());
            *out.status_mut() = response.status();
            *out.headers_mut() = response.headers().clone();
            *out.body_mut() = response.bytes().await?;
            Ok::<_, reqwest::Error>(out)
        });
        Ok(sent.await??)
    }
}
