//! # infergate-observe
//!
//! Telemetry for LLM traffic, driven by the infergate pipeline: OpenTelemetry spans and
//! metrics following the **GenAI semantic conventions v1.41.1** ([`SEMCONV_VERSION`]), a
//! Prometheus scrape endpoint, OTLP export (HTTP and gRPC), and a JSON access log.
//!
//! ```
//! use infergate_core::{Body, Pipeline};
//! use infergate_observe::{Telemetry, TelemetryConfig};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let telemetry = Telemetry::new(TelemetryConfig::new()).unwrap();
//! // First in the pipeline: it sees every request and every answer as the client gets it.
//! let pipeline = Pipeline::builder().processor(telemetry.processor()).build();
//! let upstream = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
//!         r#"{"id":"c1","model":"gpt-4o-mini","choices":[{"finish_reason":"stop","message":{"content":"Hi"}}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#,
//!     )))
//! });
//! let svc = pipeline.layer().layer(upstream);
//! let req = http::Request::post("/v1/chat/completions")
//!     .body(Body::from(r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hi"}]}"#))
//!     .unwrap();
//! svc.oneshot(req).await.unwrap();
//! telemetry.flush().await;
//! let text = telemetry.prometheus_text();
//! assert!(text.contains(r#"gen_ai_client_token_usage_sum{gen_ai_operation_name="chat",gen_ai_provider_name="openai",gen_ai_request_model="gpt-4o-mini",gen_ai_response_model="gpt-4o-mini",gen_ai_token_type="input"} 12"#));
//! # }
//! ```
//!
//! ## What is recorded
//!
//! - **One span per request** (kind `SERVER`, named `{gen_ai.operation.name}
//!   {gen_ai.request.model}`) with the conventions' attributes (`gen_ai.operation.name`,
//!   `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`,
//!   `gen_ai.response.id`, `gen_ai.response.finish_reasons`, `gen_ai.usage.input_tokens`,
//!   `gen_ai.usage.output_tokens`, `gen_ai.usage.cache_read.input_tokens`,
//!   `gen_ai.usage.cache_creation.input_tokens`, `gen_ai.usage.reasoning.output_tokens`,
//!   `server.address`, `error.type`) and infergate's own (`infergate.principal`, `.route`,
//!   `.backend`, `.cache`, `.cost_usd`, …); an event per processor phase (what it came to, how
//!   long it took); a `CLIENT` child span per upstream attempt, whose id is sent upstream in
//!   W3C `traceparent`. An incoming `traceparent` is continued.
//! - **Metrics**: `gen_ai.client.token.usage`, `gen_ai.client.operation.duration`,
//!   `gen_ai.server.request.duration`, `gen_ai.server.time_to_first_token`,
//!   `gen_ai.server.time_per_output_token` (the conventions' buckets), and `infergate.*`:
//!   requests, tokens by type, processor decisions and durations, cache lookups, guardrail
//!   findings, rejections, failover attempts, backend up, cost, rate limit remaining.
//! - **Usage exactly once**, from the answer's usage record — also when the client went away
//!   mid-stream (then what was seen, marked `infergate.usage.estimated`), never from a
//!   cancelled context.
//! - **No content** unless the operator opts in ([`TelemetryConfig::capture_content`]); then
//!   through a [redactor](TelemetryBuilder::redactor) first. Client keys never: principals by id.
//!
//! ## Cost
//!
//! The processor only gathers (a clock read per processor phase, the trace context, a few
//! strings) and sends one record per request to the telemetry thread over a bounded queue
//! (never waiting: a full queue drops and counts). Attributes, spans, metric aggregation,
//! the access log and export all happen on that thread.

mod access_log;
mod agg;
mod config;
mod export;
mod extract;
mod keys;
mod metrics;
#[cfg(feature = "otlp-http")]
mod otlp;
mod processor;
mod prometheus;
mod record;
mod spans;
mod telemetry;
mod worker;

use std::sync::Arc;

pub use config::{
    AccessLogConfig, AccessLogSink, OtlpConfig, OtlpProtocol, SEMCONV_SCHEMA_URL, SEMCONV_VERSION,
    TelemetryConfig,
};
pub use processor::Observe;
pub use prometheus::CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;
pub use telemetry::{Telemetry, TelemetryBuilder};

/// A function that redacts text before it is recorded (opt-in content capture).
pub type Redactor = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Why telemetry could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A configuration value is out of range or needs a feature that is off.
    #[error("telemetry configuration: {0}")]
    Config(String),
    /// An OTLP exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Exporter(String),
    /// The thread, the runtime or the access log file could not be made.
    #[error("telemetry: {0}")]
    Io(#[from] std::io::Error),
}
