//! Configuration: what is recorded and where it goes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The version of the OpenTelemetry semantic conventions for generative AI implemented.
pub const SEMCONV_VERSION: &str = "1.41.1";

/// The schema URL of that version.
pub const SEMCONV_SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.41.1";

/// What telemetry records and where it sends it. Every field has a default (metrics and spans
/// on, everything sampled, no content, no access log, no OTLP export).
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
#[non_exhaustive]
pub struct TelemetryConfig {
    /// `service.name` of the resource (default `infergate`).
    pub service_name: String,
    /// Record metrics (default on).
    pub metrics: bool,
    /// Record spans (default on).
    pub traces: bool,
    /// The share of new traces whose spans are recorded, 0 to 1 (default 1). A request that
    /// arrives in a trace follows its parent's sampling flag (when `trust_traceparent`).
    pub sample_ratio: f64,
    /// Continue the trace of an incoming `traceparent` (default on). Off: every request starts
    /// a trace of its own and the client's header is replaced.
    pub trust_traceparent: bool,
    /// Label metrics with the principal's id (never its key) (default on). Off for
    /// deployments with very many principals.
    pub principal_label: bool,
    /// Record prompt and completion content on spans (`gen_ai.input.messages`,
    /// `gen_ai.output.messages`); default off. When on, the text goes through the configured
    /// redactor first.
    pub capture_content: bool,
    /// The access log: one JSON line per request (default none).
    pub access_log: Option<AccessLogConfig>,
    /// Export spans and metrics with OTLP (default none).
    pub otlp: Option<OtlpConfig>,
    /// Records waiting for the telemetry thread at most (default 65,536); past it, records
    /// are dropped and counted (`infergate.telemetry.dropped`), never waited for.
    pub queue: usize,
    /// `gen_ai.provider.name` per backend name (`openai`, `anthropic`, `aws.bedrock`,
    /// `gcp.gemini`, `gcp.vertex_ai`, `azure.ai.openai`, …). A backend not named here gets
    /// the client API's provider (`anthropic` for `/v1/messages`, `openai` otherwise).
    pub providers: BTreeMap<String, String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            service_name: "infergate".to_owned(),
            metrics: true,
            traces: true,
            sample_ratio: 1.0,
            trust_traceparent: true,
            principal_label: true,
            capture_content: false,
            access_log: None,
            otlp: None,
            queue: 65_536,
            providers: BTreeMap::new(),
        }
    }
}

impl TelemetryConfig {
    /// The defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `service.name`.
    #[must_use]
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.service_name = name.into();
        self
    }

    /// Turns metrics on or off.
    #[must_use]
    pub fn metrics(mut self, on: bool) -> Self {
        self.metrics = on;
        self
    }

    /// Turns spans on or off.
    #[must_use]
    pub fn traces(mut self, on: bool) -> Self {
        self.traces = on;
        self
    }

    /// The share of new traces recorded.
    #[must_use]
    pub fn sample_ratio(mut self, ratio: f64) -> Self {
        self.sample_ratio = ratio;
        self
    }

    /// Whether an incoming `traceparent` is continued.
    #[must_use]
    pub fn trust_traceparent(mut self, on: bool) -> Self {
        self.trust_traceparent = on;
        self
    }

    /// Whether metrics carry the principal's id.
    #[must_use]
    pub fn principal_label(mut self, on: bool) -> Self {
        self.principal_label = on;
        self
    }

    /// Whether content is recorded on spans (opt-in).
    #[must_use]
    pub fn capture_content(mut self, on: bool) -> Self {
        self.capture_content = on;
        self
    }

    /// The access log.
    #[must_use]
    pub fn access_log(mut self, log: AccessLogConfig) -> Self {
        self.access_log = Some(log);
        self
    }

    /// OTLP export.
    #[must_use]
    pub fn otlp(mut self, otlp: OtlpConfig) -> Self {
        self.otlp = Some(otlp);
        self
    }

    /// The provider of a backend.
    #[must_use]
    pub fn provider(mut self, backend: impl Into<String>, provider: impl Into<String>) -> Self {
        self.providers.insert(backend.into(), provider.into());
        self
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), crate::TelemetryError> {
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(crate::TelemetryError::Config(format!(
                "sample_ratio must be between 0 and 1, not {}",
                self.sample_ratio
            )));
        }
        if self.queue == 0 {
            return Err(crate::TelemetryError::Config(
                "queue must be at least 1".to_owned(),
            ));
        }
        if let Some(a) = &self.access_log
            && !(0.0..=1.0).contains(&a.sample)
        {
            return Err(crate::TelemetryError::Config(format!(
                "access_log.sample must be between 0 and 1, not {}",
                a.sample
            )));
        }
        if let Some(o) = &self.otlp
            && !(o.endpoint.starts_with("http://") || o.endpoint.starts_with("https://"))
        {
            return Err(crate::TelemetryError::Config(format!(
                "otlp.endpoint must be an http:// or https:// URL, not '{}'",
                o.endpoint
            )));
        }
        Ok(())
    }
}

/// Where access log lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum AccessLogSink {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// The access log: where, and which share of requests.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct AccessLogConfig {
    /// Where lines go.
    pub sink: AccessLogSink,
    /// The share of requests logged, 0 to 1 (default 1). Requests that were refused or
    /// failed are always logged.
    #[cfg_attr(feature = "serde", serde(default = "one"))]
    pub sample: f64,
}

#[cfg(feature = "serde")]
fn one() -> f64 {
    1.0
}

impl AccessLogConfig {
    /// Every request to `sink`.
    pub fn new(sink: AccessLogSink) -> Self {
        Self { sink, sample: 1.0 }
    }

    /// Logs this share of the requests that went well (refusals and failures always).
    #[must_use]
    pub fn sample(mut self, share: f64) -> Self {
        self.sample = share;
        self
    }
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
#[non_exhaustive]
pub enum OtlpProtocol {
    /// OTLP/HTTP with protobuf bodies (feature `otlp-http`); the endpoint is the collector's
    /// base URL (`http://host:4318`), `/v1/traces` and `/v1/metrics` are appended.
    #[default]
    Http,
    /// OTLP/gRPC (feature `otlp-grpc`); the endpoint is `http://host:4317`.
    Grpc,
}

/// Where OTLP goes. `Debug` names the headers, never their values.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The collector's URL.
    pub endpoint: String,
    /// The transport (default HTTP).
    #[cfg_attr(feature = "serde", serde(default))]
    pub protocol: OtlpProtocol,
    /// Headers sent with every export (an API key of a hosted collector).
    #[cfg_attr(feature = "serde", serde(default))]
    pub headers: BTreeMap<String, String>,
    /// How often metrics are exported, in milliseconds (default 10,000); spans are sent in
    /// batches at least this often.
    #[cfg_attr(feature = "serde", serde(default = "default_interval_ms"))]
    pub interval_ms: u64,
}

impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("interval_ms", &self.interval_ms)
            .finish()
    }
}

#[cfg(feature = "serde")]
fn default_interval_ms() -> u64 {
    10_000
}

impl OtlpConfig {
    /// Export to `endpoint` over OTLP/HTTP every 10 s.
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol: OtlpProtocol::Http,
            headers: BTreeMap::new(),
            interval_ms: 10_000,
        }
    }

    /// The transport.
    #[must_use]
    pub fn protocol(mut self, protocol: OtlpProtocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// The export interval.
    #[must_use]
    pub fn interval(mut self, every: Duration) -> Self {
        self.interval_ms = u64::try_from(every.as_millis()).unwrap_or(u64::MAX).max(1);
        self
    }

    /// A header sent with every export.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}
