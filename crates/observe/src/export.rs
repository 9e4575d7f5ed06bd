//! OTLP exporters (the opentelemetry-otlp crate), built on the telemetry thread's runtime.

#[cfg(any(feature = "otlp-http", feature = "otlp-grpc"))]
use std::time::Duration;

use crate::TelemetryError;
use crate::config::{OtlpConfig, OtlpProtocol};
use crate::worker::{DynMetricExporter, DynSpanExporter};

/// Where spans go: the crate's own OTLP/HTTP sender (spans encoded straight into protobuf),
/// or an SDK exporter (given `SpanData`).
pub(crate) enum SpanOut {
    /// POSTs encoded `ExportTraceServiceRequest`s.
    #[cfg(feature = "otlp-http")]
    Http(Box<HttpOtlp>),
    /// An SDK exporter.
    #[cfg_attr(not(feature = "otlp-grpc"), allow(dead_code))]
    Sdk(Box<dyn DynSpanExporter>),
}

/// Where metrics go: the crate's own OTLP/HTTP sender (the plain aggregates encoded straight
/// into protobuf), or an SDK exporter (fed by the SDK's instruments).
pub(crate) enum MetricOut {
    /// POSTs encoded `ExportMetricsServiceRequest`s.
    #[cfg(feature = "otlp-http")]
    Http(Box<HttpOtlp>),
    /// An SDK exporter.
    #[cfg_attr(not(feature = "otlp-grpc"), allow(dead_code))]
    Sdk(Box<dyn DynMetricExporter>),
}

/// A span destination and a metric destination.
type Exporters = (SpanOut, MetricOut);

/// The OTLP span and metric exporters for `cfg`. Call inside a tokio runtime (gRPC needs one).
pub(crate) fn otlp(cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    match cfg.protocol {
        OtlpProtocol::Http => http(cfg),
        OtlpProtocol::Grpc => grpc(cfg),
    }
}

#[cfg(feature = "otlp-http")]
fn http(cfg: &OtlpConfig) -> Result<Exporters, TelemetryError> {
    let base = cfg.endpoint.trim_end_matches('/');
    let client = HyperClient::new(Duration::from_secs(10));
    let url = |path: &str| -> Result<http::Uri, TelemetryError> {
        format!("{base}{path}")
            .parse()
            .map_err(|e| TelemetryError::Config(format!("otlp endpoint '{base}': {e}")))
    };
    let mut header_map = http::HeaderMap::new();
    for (k, v) in &cfg.headers {
        let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) else {
            return Err(TelemetryError::Config(format!(
                "otlp header '{k}' is not a valid HTTP header"
            )));
        };
        header_map.insert(k, v);
    }
    let spans = SpanOut::Http(Box::new(HttpOtlp {
        client: client.clone(),
        url: url("/v1/traces")?,
        headers: header_map.clone(),
    }));
    let metrics = MetricOut::Http(Box::new(HttpOtlp {
        client,
        url: url("/v1/metrics")?,
        headers: header_map,
    }));
    Ok((spans, metrics))
}

/// An OTLP/HTTP sender: one POST of protobuf bytes per export.
#[cfg(feature = "otlp-http")]
pub(crate) struct HttpOtlp {
    client: HyperClient,
    url: http::Uri,
    headers: http::HeaderMap,
}

#[cfg(feature = "otlp-http")]
impl HttpOtlp {
    /// Sends one encoded export request.
    pub(crate) async fn send(&self, body: Vec<u8>) -> Result<(), String> {
        use opentelemetry_http::HttpClient as _;
        let mut req = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/x-protobuf")
            .body(bytes::Bytes::from(body))
            .map_err(|e| e.to_string())?;
        req.headers_mut().extend(self.headers.clone());
        let resp = self
            .client
            .send_bytes(req)
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(format!("the collector answered {}", resp.status()))
        }
    }
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
    Ok((
        SpanOut::Sdk(Box::new(spans)),
        MetricOut::Sdk(Box::new(metrics)),
    ))
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
