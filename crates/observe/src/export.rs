//! OTLP exporters (the opentelemetry-otlp crate), built on the telemetry thread's runtime.

#[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
use std::time::Duration;

use crate::TelemetryError;
use crate::config::{OtlpConfig, OtlpProtocol};
use crate::worker::{DynMetricExporter, DynSpanExporter};

/// A span exporter and a metric exporter.
type Exporters = (Box<dyn DynSpanExporter>, Box<dyn DynMetricExporter>);

/// The OTLP span and metric exporters for `cfg`. Call inside a tokio runtime (gRPC needs one).
pub(crate) fn otlp(cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    match cfg.protocol {
        OtlpProtocol::Http => http(cfg),
        OtlpProtocol::Grpc => grpc(cfg),
    }
}

#[cfg(feature = "otlp-http")]
fn http(cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
    let base = cfg.endpoint.trim_end_matches('/');
    let headers: std::collections::HashMap<String, String> = cfg
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let client = HyperClient::new(Duration::from_secs(10));
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client.clone())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_headers(headers.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/metrics"))
        .with_headers(headers)
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok((Box::new(spans), Box::new(metrics)))
}

#[cfg(not(feature = "otlp-http"))]
fn http(_cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    Err(TelemetryError::Config(
        "OTLP over HTTP needs infergate-observe's `otlp-http` feature".to_owned(),
    ))
}

#[cfg(feature = "otlp-grpc")]
fn grpc(cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    use opentelemetry_otlp::{WithExportConfig, WithTonicConfig};
    let mut headers = http::HeaderMap::new();
    for (k, v) in &cfg.headers {
        let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) else {
            return Err(TelemetryError::Config(format!(
                "otlp header '{k}' is not a valid gRPC metadata entry"
            )));
        };
        headers.insert(k, v);
    }
    let meta = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(cfg.endpoint.clone())
        .with_metadata(meta.clone())
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_tonic()
        .with_endpoint(cfg.endpoint.clone())
        .with_metadata(meta)
        .with_timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok((Box::new(spans), Box::new(metrics)))
}

#[cfg(not(feature = "otlp-grpc"))]
fn grpc(_cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    Err(TelemetryError::Config(
        "OTLP over gRPC needs infergate-observe's `otlp-grpc` feature".to_owned(),
    ))
}

/// The HTTP client of the OTLP/HTTP exporters: hyper, rustls with the webpki roots, a
/// timeout per export, answers bounded to 4 MiB.
#[cfg(feature = "otlp-http")]
#[derive(Debug, Clone)]
struct HyperClient {
    client: hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        http_body_util::Full<bytes::Bytes>,
    >,
    timeout: Duration,
}

#[cfg(feature = "otlp-http")]
impl HyperClient {
    fn new(timeout: Duration) -> Self {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build(https);
        Self { client, timeout }
    }
}

#[cfg(feature = "otlp-http")]
#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for HyperClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        use http_body_util::BodyExt;
        let (parts, body) = request.into_parts();
        let req = http::Request::from_parts(parts, http_body_util::Full::new(body));
        let work = async {
            let resp = self.client.request(req).await?;
            let (parts, body) = resp.into_parts();
            let body = http_body_util::Limited::new(body, 4 << 20)
                .collect()
                .await?
                .to_bytes();
            Ok::<_, opentelemetry_http::HttpError>(http::Response::from_parts(parts, body))
        };
        tokio::time::timeout(self.timeout, work)
            .await
            .map_err(|_| "the OTLP collector did not answer in time")?
    }
}
