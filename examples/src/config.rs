//! The gateway's config file (TOML). See `examples/gateway/infergate.toml` for a commented
//! sample.
//!
//! Each block's section is the block's own configuration type (`RouterSpec`, `GuardrailSpec`,
//! `CacheSpec`, `RateLimitSpec`, `BudgetSpec`, `FailoverConfig`, `ProviderSpec`, `IdentityConfig`,
//! `PipelineLimits`): the accepted fields and values are written once, in the block. What is
//! left here is the gateway's own: the server, the backends, the routes, and the checks that
//! span sections (every name a route, a group or the router uses must be a backend).

use std::collections::BTreeMap;
use std::path::Path;

use infergate::auth::ProviderSpec;
use infergate::budget::BudgetSpec;
use infergate::cache::CacheSpec;
use infergate::core::pipeline::PipelineLimits;
use infergate::failover::FailoverConfig;
use infergate::guardrail::GuardrailSpec;
use infergate::identity::IdentityConfig;
use infergate::ratelimit::RateLimitSpec;
use infergate::router::RouterSpec;
use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (overridden by `--listen`). Default `127.0.0.1:8080`.
    pub listen: Option<String>,
    /// `[pipeline]`: pipeline-wide limits.
    pub pipeline: PipelineLimits,
    /// `[server]`: the listening server's limits and timeouts.
    pub server: ServerConfig,
    /// `[backends.NAME]`: upstream backends by name.
    pub backends: BTreeMap<String, BackendConfig>,
    /// `[routes]`: which backend serves which endpoint.
    pub routes: RoutesConfig,
    /// `[ratelimit]`: the token rate limiter (absent: off).
    pub ratelimit: Option<RateLimitSpec>,
    /// `[budgets]`: dollar and token budgets, prices, the cost header (absent: off).
    pub budgets: Option<BudgetSpec>,
    /// `[guardrail]`: checks on requests and responses (absent: off).
    pub guardrail: Option<GuardrailSpec>,
    /// `[router]`: rules and semantic routes that pick the backend and the model (absent:
    /// off). A target's `backend` may name a failover group.
    pub router: Option<RouterSpec>,
    /// `[cache]`: the response cache (absent: off).
    pub cache: Option<CacheSpec>,
    /// `[failover.NAME]`: failover groups by name; a group's name can stand wherever a
    /// backend's can. Each member names a backend.
    pub failover: BTreeMap<String, FailoverConfig>,
    /// `[identity]`: client identity (absent: off, and every identity the other blocks see is
    /// whatever the client writes).
    pub identity: Option<IdentityConfig>,
    /// `[restrictions]`: deployment-wide backend label restrictions, label key → allowed
    /// value globs (`region = ["eu-west-1", "eu-central-1"]`). Every request, with a principal
    /// or without, goes only to backends whose `labels` match; a backend without the label is
    /// not allowed. A principal's own `allowed_labels` apply on top (see `docs/identity.md`).
    pub restrictions: BTreeMap<String, Vec<String>>,
    /// `[telemetry]`: metrics on an admin address (`GET /metrics`), OpenTelemetry spans and
    /// metrics over OTLP, the access log (absent: off).
    pub telemetry: Option<TelemetrySection>,
}

/// `[telemetry]`: what the gateway says about what it does (see `docs/observability.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySection {
    /// Where `GET /metrics` (Prometheus text) is served: a separate admin address, loopback
    /// by default (`127.0.0.1:9464`); `off` for none.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// Export spans and metrics with OTLP to this collector (`http://host:4318` for HTTP,
    /// `http://host:4317` for gRPC); absent: no export.
    pub otlp_endpoint: Option<String>,
    /// `http` (protobuf, default) or `grpc`.
    #[serde(default)]
    pub otlp_protocol: infergate::observe::OtlpProtocol,
    /// Headers sent with every export (a hosted collector's key: `env:NAME` reads it from the
    /// environment).
    #[serde(default)]
    pub otlp_headers: BTreeMap<String, String>,
    /// How often metrics are exported, in milliseconds (default 10000).
    #[serde(default = "default_otlp_interval")]
    pub otlp_interval_ms: u64,
    /// The access log, one JSON line per request: `stdout`, `stderr`, a file path, or `off`
    /// (default `off`).
    #[serde(default)]
    pub access_log: Option<String>,
    /// The share of requests that went well written to the access log (default 1; refusals
    /// and failures always are).
    #[serde(default = "default_one")]
    pub access_log_sample: f64,
    /// The share of new traces recorded (default 1).
    #[serde(default = "default_one")]
    pub sample_ratio: f64,
    /// Continue a client's `traceparent` (default true).
    #[serde(default = "default_true")]
    pub trust_traceparent: bool,
    /// Label metrics with the principal's id (default true).
    #[serde(default = "default_true")]
    pub principal_label: bool,
    /// Record prompts and completions on spans, PII and secrets redacted first (default
    /// false).
    #[serde(default)]
    pub capture_content: bool,
    /// `service.name` (default `infergate`).
    #[serde(default = "default_service_name")]
    pub service_name: String,
}

fn default_admin_listen() -> String {
    "127.0.0.1:9464".to_owned()
}
fn default_otlp_interval() -> u64 {
    10_000
}
fn default_one() -> f64 {
    1.0
}
fn default_true() -> bool {
    true
}
fn default_service_name() -> String {
    "infergate".to_owned()
}

impl TelemetrySection {
    /// The telemetry configuration, with each backend's `gen_ai.provider.name` from its
    /// protocol and credentials.
    pub fn config(
        &self,
        backends: &BTreeMap<String, BackendConfig>,
    ) -> Result<infergate::observe::TelemetryConfig, ConfigError> {
        use infergate::observe::{AccessLogConfig, AccessLogSink, OtlpConfig, TelemetryConfig};
        use infergate::translate::layer::ProtocolName;
        let mut cfg = TelemetryConfig::new()
            .service_name(self.service_name.clone())
            .sample_ratio(self.sample_ratio)
            .trust_traceparent(self.trust_traceparent)
            .principal_label(self.principal_label)
            .capture_content(self.capture_content);
        match self.access_log.as_deref() {
            None | Some("off") => {}
            Some(sink) => {
                let sink = match sink {
                    "stdout" => AccessLogSink::Stdout,
                    "stderr" => AccessLogSink::Stderr,
                    path => AccessLogSink::File(path.into()),
                };
                cfg = cfg.access_log(AccessLogConfig::new(sink).sample(self.access_log_sample));
            }
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            let mut o = OtlpConfig::new(endpoint.clone())
                .protocol(self.otlp_protocol)
                .interval(std::time::Duration::from_millis(self.otlp_interval_ms));
            for (k, v) in &self.otlp_headers {
                let v = match v.strip_prefix("env:") {
                    Some(name) => std::env::var(name).map_err(|_| {
                        ConfigError::Routes(format!(
                            "telemetry.otlp_headers.{k}: the environment variable {name} is not set"
                        ))
                    })?,
                    None => v.clone(),
                };
                o = o.header(k.clone(), v);
            }
            cfg = cfg.otlp(o);
        }
        for (name, b) in backends {
            use infergate::auth::ProviderKind;
            let kind = b.auth.as_ref().map(|a| a.provider);
            let azure = matches!(kind, Some(ProviderKind::Azure | ProviderKind::AzureEntra));
            let vertex = matches!(
                kind,
                Some(ProviderKind::Vertex | ProviderKind::VertexMetadata)
            );
            let provider = match b.protocol {
                Some(ProtocolName::Anthropic) => "anthropic",
                Some(ProtocolName::Bedrock) => "aws.bedrock",
                Some(ProtocolName::Gemini) => "gcp.gemini",
                Some(ProtocolName::VertexGemini | ProtocolName::VertexAnthropic) => "gcp.vertex_ai",
                _ if azure => "azure.ai.openai",
                _ if vertex => "gcp.vertex_ai",
                _ => "openai",
            };
            cfg = cfg.provider(name.clone(), provider);
        }
        cfg.validate()
            .map_err(|e| ConfigError::Routes(format!("telemetry: {e}")))?;
        Ok(cfg)
    }
}

/// `[server]`: how the gateway's own server guards itself against slow or greedy clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Time allowed for a request's headers, in milliseconds (default 30000). It also bounds
    /// how long an idle kept-alive HTTP/1 connection waits for its next request.
    #[serde(default = "default_header_timeout")]
    pub header_read_timeout_ms: u64,
    /// Time allowed for a request's body, in milliseconds (default: the pipeline deadline).
    #[serde(default)]
    pub body_read_timeout_ms: Option<u64>,
    /// The most connections served at once (default 10000); more wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// The most bytes of request headers (default 65536); more is refused (431).
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// HTTP/2: the most concurrent streams per connection (default 256).
    #[serde(default = "default_h2_streams")]
    pub http2_max_concurrent_streams: u32,
    /// HTTP/2: idle connections are pinged at this interval, and closed when a ping is not
    /// answered within it, in milliseconds (default 30000).
    #[serde(default = "default_header_timeout")]
    pub http2_keep_alive_ms: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_ms: default_header_timeout(),
            body_read_timeout_ms: None,
            max_connections: default_max_connections(),
            max_header_bytes: default_max_header_bytes(),
            http2_max_concurrent_streams: default_h2_streams(),
            http2_keep_alive_ms: default_header_timeout(),
        }
    }
}

fn default_header_timeout() -> u64 {
    30_000
}

fn default_max_connections() -> usize {
    10_000
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_h2_streams() -> u32 {
    256
}

/// One upstream.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Base URL, e.g. `https://api.openai.com/v1`, or `mock` for the embedded mock provider.
    pub url: String,
    /// Connect timeout in milliseconds (default 10000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Time to the response head in milliseconds (default 600000; 0 for none).
    #[serde(default)]
    pub request_timeout_ms: Option<u64>,
    /// `[backends.NAME.auth]`: the provider credentials the gateway injects (absent: none;
    /// clients' own keys pass). Keys are written `env:NAME`, `file:PATH` (re-read when it
    /// changes) or `inline:VALUE`; several are used in turn.
    #[serde(default)]
    pub auth: Option<ProviderSpec>,
    /// For an embedded mock (`mock` or `mock:NAME`, which starts a mock of its own): the
    /// failure it injects into every answer (`503`, `429; retry-after=3`, `reset`, `hang`,
    /// `disconnect:2`), to try failover out.
    #[serde(default)]
    pub mock_failure: Option<String>,
    /// TLS to this upstream (absent: the web PKI roots, TLS 1.2 or later).
    #[serde(default)]
    pub tls: Option<TlsSection>,
    /// Speak HTTP/2 without negotiation (h2c) to a plain-HTTP upstream (default false; over
    /// TLS, HTTP/2 is negotiated by ALPN anyway).
    #[serde(default)]
    pub http2: Option<bool>,
    /// Labels for restrictions (`labels = { region = "eu-west-1", provider = "azure" }`):
    /// `[restrictions]` and a principal's `allowed_labels` decide from them whether a request
    /// may go to this backend.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The protocol this backend speaks (`openai`, `openai-responses`, `anthropic`, `bedrock`,
    /// `gemini`, `vertex-gemini`, `vertex-anthropic`). Set, a client calling another API is
    /// translated to it and back (docs/translation.md); absent, requests pass as they are.
    #[serde(default)]
    pub protocol: Option<infergate::translate::layer::ProtocolName>,
    /// For the Vertex protocols: `vertex = { project = "…", location = "us-central1" }`.
    #[serde(default)]
    pub vertex: Option<infergate::translate::layer::VertexLocation>,
    /// Fields whose documented lossy mapping to this backend's protocol is accepted (e.g.
    /// `["seed", "logit_bias"]`; `["*"]` for all); any other field it cannot represent is a 400
    /// naming it.
    #[serde(default)]
    pub lossy: Vec<String>,
}

/// `[backends.NAME.tls]`: how the gateway verifies (and presents itself to) an upstream over
/// TLS (the egress proposal's TLS policy and certificate-authority control).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM bundles of CA certificates to trust.
    #[serde(default)]
    pub ca_files: Vec<String>,
    /// Whether the web PKI roots are trusted beside them (default true; false: only the
    /// bundles above).
    #[serde(default)]
    pub web_pki_roots: Option<bool>,
    /// A client certificate chain (PEM) for mTLS, with `client_key_file`.
    #[serde(default)]
    pub client_cert_file: Option<String>,
    /// The client certificate's private key (PEM).
    #[serde(default)]
    pub client_key_file: Option<String>,
    /// The name sent as SNI and verified in the upstream's certificate, in place of the URL's
    /// host.
    #[serde(default)]
    pub server_name: Option<String>,
    /// The lowest TLS version: `"1.2"` (default) or `"1.3"`.
    #[serde(default)]
    pub min_version: Option<TlsMinVersion>,
}

/// The lowest TLS version to an upstream.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum TlsMinVersion {
    /// TLS 1.2 (the default).
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3.
    #[serde(rename = "1.3")]
    Tls13,
}

/// Which backend serves which endpoint; each defaults to the only backend when there is one.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutesConfig {
    /// `/v1/chat/completions`, `/v1/responses` and `/v1/models`.
    #[serde(default)]
    pub chat: Option<String>,
    /// `/v1/embeddings`.
    #[serde(default)]
    pub embeddings: Option<String>,
    /// `/v1/messages` (Anthropic).
    #[serde(default)]
    pub messages: Option<String>,
}

/// Why a config could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The path.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid.
    #[error("invalid config file {path}: {message}")]
    Invalid {
        /// The path.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A route names a backend that does not exist, or none can be chosen.
    #[error("{0}")]
    Routes(String),
}

/// A TOML error as line, column, the key's path and the message, without the offending line or
/// any value from the file (a config may hold an inline key): quoted values are replaced by
/// `…`; names in backticks are kept when they are keys (unknown, missing or duplicate fields)
/// or the allowed values of an unknown one.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|span| {
        let start = span.start.min(text.len());
        let before = &text[..start];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        match key_path(text, start) {
            Some(path) => format!("line {line}, column {col}, {path}: "),
            None => format!("line {line}, column {col}: "),
        }
    });
    let msg = e.message();
    let keys_ok = [
        "unknown field",
        "missing field",
        "duplicate key",
        "duplicate field",
    ]
    .iter()
    .any(|p| msg.starts_with(p));
    // `unknown variant `X`, expected one of `a`, `b``: only X is the file's.
    let variant = msg.starts_with("unknown variant");
    let mut groups = 0;
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some('`') if keys_ok || (variant && groups > 1) => out.push(c),
            Some(_) => {
                if !out.ends_with('…') {
                    out.push('…');
                }
            }
            None => {
                out.push(c);
                if c == '"' || c == '\'' || c == '`' {
                    quote = Some(c);
                    groups += usize::from(c == '`');
                }
            }
        }
    }
    format!("{}{}", at.unwrap_or_default(), out.trim_end())
}

/// The dotted path of the key whose value starts at `offset`: the table header above it and
/// the key before the `=` (quoted names, which may be a tenant id or a key, shown as `"…"`).
fn key_path(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
    let header = text[..line_end]
        .lines()
        .rev()
        .map(str::trim_start)
        .find(|l| l.starts_with('['))
        .and_then(|l| l.trim_start_matches('[').split(']').next())
        .map(str::trim);
    let key = text[line_start..offset]
        .trim_end()
        .strip_suffix('=')
        .map(str::trim_end)
        .map(|p| {
            let from = p
                .rfind(|c: char| c.is_whitespace() || c == '{' || c == ',')
                .map_or(0, |i| i + 1);
            &p[from..]
        })
        .filter(|k| !k.is_empty());
    let path = match (header, key) {
        (Some(h), Some(k)) => format!("{h}.{k}"),
        (Some(h), None) => h.to_owned(),
        (None, Some(k)) => k.to_owned(),
        (None, None) => return None,
    };
    Some(hide_quoted(&path))
}

/// `path` with every quoted part replaced by `"…"`.
fn hide_quoted(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut quote: Option<char> = None;
    for c in path.chars() {
        match quote {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                quote = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '\'' {
                    quote = Some(c);
                }
            }
        }
    }
    out
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Invalid { message, .. } => ConfigError::Invalid {
                path: path.display().to_string(),
                message,
            },
            e => e,
        })
    }

    /// Parses and validates config text: each block's section by the block's own type, then
    /// every name a route, a failover group or the router uses.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: "<text>".into(),
            message: describe_toml_error(text, &e),
        })?;
        let fail = |m: String| Err(ConfigError::Routes(m));
        for (what, route) in [
            ("chat", &cfg.routes.chat),
            ("embeddings", &cfg.routes.embeddings),
            ("messages", &cfg.routes.messages),
        ] {
            if let Some(name) = route
                && !cfg.has_target(name)
            {
                return fail(format!(
                    "routes.{what} names backend '{name}', which is not defined under [backends] or [failover]"
                ));
            }
        }
        for (name, g) in &cfg.failover {
            if cfg.backends.contains_key(name) {
                return fail(format!("failover.{name}: a backend has the same name"));
            }
            if g.members.is_empty() {
                return fail(format!("failover.{name}: no members"));
            }
            if let Some(m) = g
                .members
                .iter()
                .find(|m| !cfg.backends.contains_key(&m.backend))
            {
                return fail(format!(
                    "failover.{name}: member '{}' is not defined under [backends]",
                    m.backend
                ));
            }
        }
        if let Some(t) = cfg
            .router
            .iter()
            .flat_map(RouterSpec::targets)
            .find(|t| !cfg.has_target(&t.backend))
        {
            return fail(format!("router: unknown backend '{}'", t.backend));
        }
        for (name, b) in &cfg.backends {
            if let Some(f) = &b.mock_failure {
                if !b.url.starts_with("mock") {
                    return fail(format!(
                        "backends.{name}.mock_failure is for embedded mocks (url = \"mock:NAME\")"
                    ));
                }
                if infergate::mock::Failure::parse(f).is_none() {
                    return fail(format!(
                        "backends.{name}.mock_failure: cannot parse the value (e.g. 503, \"429; retry-after=3\", reset, hang, disconnect:2)"
                    ));
                }
            }
        }
        Ok(cfg)
    }

    /// Whether `name` is a backend or a failover group.
    pub fn has_target(&self, name: &str) -> bool {
        self.backends.contains_key(name) || self.failover.contains_key(name)
    }

    /// The backend for an endpoint: the configured one, else the only one.
    pub fn backend_for(&self, route: Option<&String>) -> Option<String> {
        route.cloned().or_else(|| {
            if self.backends.len() == 1 {
                self.backends.keys().next().cloned()
            } else {
                None
            }
        })
    }

    /// The labels of a backend, or of every member of a failover group.
    pub fn labels_of(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        match self.failover.get(name) {
            Some(g) => g
                .members
                .iter()
                .filter_map(|m| self.backends.get(&m.backend).map(|b| &b.labels))
                .collect(),
            None => self
                .backends
                .get(name)
                .map(|b| &b.labels)
                .into_iter()
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_config_parses() {
        let text = include_str!("../gateway/infergate.toml");
        let cfg = Config::parse(text).unwrap();
        assert!(cfg.backends.contains_key("mock"));
    }

    #[test]
    fn unknown_backends_and_fields_are_refused() {
        assert!(Config::parse("[routes]\nchat = \"nope\"").is_err());
        assert!(Config::parse("lisen = \"x\"").is_err());
    }
}
