//! The gateway's config file (TOML). See `examples/gateway/infergate.toml` for a commented
//! sample.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The whole config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on (overridden by `--listen`). Default `127.0.0.1:8080`.
    #[serde(default)]
    pub listen: Option<String>,
    /// Pipeline-wide limits.
    #[serde(default)]
    pub pipeline: PipelineConfig,
    /// The listening server's limits and timeouts.
    #[serde(default)]
    pub server: ServerConfig,
    /// Upstream backends by name.
    #[serde(default)]
    pub backends: BTreeMap<String, BackendConfig>,
    /// Which backend serves which endpoint.
    #[serde(default)]
    pub routes: RoutesConfig,
    /// The token rate limiter (absent: off).
    #[serde(default)]
    pub ratelimit: Option<RateLimitSection>,
    /// Guardrail checks (absent: off).
    #[serde(default)]
    pub guardrail: Option<GuardrailSection>,
    /// The router (absent: off).
    #[serde(default)]
    pub router: Option<RouterSection>,
    /// The response cache (absent: off).
    #[serde(default)]
    pub cache: Option<CacheSection>,
    /// Failover groups by name; a group's name can stand wherever a backend's can.
    #[serde(default)]
    pub failover: BTreeMap<String, FailoverSection>,
    /// Client identity (absent: off, and every identity the other blocks see is whatever the
    /// client writes). The identity crate's own configuration type, so that its accepted
    /// values are written in one place.
    #[serde(default)]
    pub identity: Option<infergate::identity::IdentityConfig>,
    /// `[restrictions]`: deployment-wide backend label restrictions, label key → allowed
    /// value globs (`region = ["eu-west-1", "eu-central-1"]`). Every request, with a principal
    /// or without, goes only to backends whose `labels` match; a backend without the label is
    /// not allowed. A principal's own `allowed_labels` apply on top (see `docs/identity.md`).
    #[serde(default)]
    pub restrictions: BTreeMap<String, Vec<String>>,
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

/// `[failover.NAME]`: a failover group over backends.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverSection {
    /// The backends, each with its tier, weight and model names.
    pub members: Vec<MemberSection>,
    /// Attempts per request, the first included (default 3).
    #[serde(default)]
    pub max_attempts: Option<usize>,
    /// Each attempt's bound on the time to the head and first body frame.
    #[serde(default)]
    pub attempt_timeout_ms: Option<u64>,
    /// The bound on all attempts together.
    #[serde(default)]
    pub deadline_ms: Option<u64>,
    /// The rest after a 429 without `Retry-After` (default 30000).
    #[serde(default)]
    pub cooldown_ms: Option<u64>,
    /// The upstream statuses retried on the next backend (default 429, 500, 502, 503, 504).
    #[serde(default)]
    pub retry_statuses: Option<Vec<u16>>,
    /// `weighted` (default) or `least_outstanding`.
    #[serde(default)]
    pub selection: Option<String>,
    /// `fail_fast` (default) or `try_soonest`.
    #[serde(default)]
    pub when_all_resting: Option<String>,
    /// Gateways a request may cross (default 3).
    #[serde(default)]
    pub max_hops: Option<u32>,
    /// Retries may add this share of the last 10 s of requests (plus 10/s); 0 turns the
    /// budget off (default 0.2).
    #[serde(default)]
    pub retry_budget_percent: Option<f32>,
    /// Failures in a row that eject a backend (default 5; 0 for never).
    #[serde(default)]
    pub consecutive_failures: Option<u32>,
    /// The error rate that ejects a backend (default 0.5; 0 for never).
    #[serde(default)]
    pub error_rate: Option<f32>,
    /// The first ejection's length (default 30000), doubled for each one in a row.
    #[serde(default)]
    pub ejection_ms: Option<u64>,
    /// The longest ejection (default 300000).
    #[serde(default)]
    pub max_ejection_ms: Option<u64>,
    /// The first backoff before a backend is retried within a request (default 25).
    #[serde(default)]
    pub backoff_ms: Option<u64>,
}

/// One member of a failover group.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberSection {
    /// The backend's name under `[backends]`.
    pub backend: String,
    /// Its priority tier (lower first; default 0).
    #[serde(default)]
    pub tier: Option<u32>,
    /// Its weight within its tier (default 1).
    #[serde(default)]
    pub weight: Option<u32>,
    /// The model every request asks this backend for.
    #[serde(default)]
    pub model: Option<String>,
    /// Requested model → this backend's name for it.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

/// `[cache]`: the response cache.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheSection {
    /// Entry lifetime in seconds (default 3600).
    #[serde(default)]
    pub ttl_secs: Option<u64>,
    /// In-memory bound on entries (default 100,000).
    #[serde(default)]
    pub max_entries: Option<u64>,
    /// In-memory bound on bytes (default 256 MiB).
    #[serde(default)]
    pub max_bytes: Option<u64>,
    /// `api_key` (default), `header:NAME` or `shared`: who shares entries when there is no
    /// `[identity]` (client-asserted). With identity on, the principal's tenant always decides.
    #[serde(default)]
    pub tenant: Option<String>,
    /// Scope exact entries (and single-flight) by the end user too: the principal's user, or
    /// the body's `user` under the tenant (default false; semantic entries always are).
    #[serde(default)]
    pub exact_per_user: Option<bool>,
    /// A secret mixed into keys (the same on replicas sharing Redis).
    #[serde(default)]
    pub key_secret: Option<String>,
    /// Share exact entries between replicas through Redis.
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Whether the exact cache answers requests with temperature > 0 (default true).
    #[serde(default)]
    pub nonzero_temperature: Option<bool>,
    /// Concurrent identical requests wait for the first (default true).
    #[serde(default)]
    pub single_flight: Option<bool>,
    /// How long they wait, in milliseconds (default 120000).
    #[serde(default)]
    pub single_flight_wait_ms: Option<u64>,
    /// Turns the semantic cache on with this similarity threshold (built-in embedder).
    #[serde(default)]
    pub semantic_threshold: Option<f32>,
    /// Whether the semantic cache answers requests with temperature > 0 (default false).
    #[serde(default)]
    pub semantic_nonzero_temperature: Option<bool>,
}

/// A backend and, optionally, the model to ask it for.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// The backend's name (a key of `[backends]`).
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[router]`: rules and semantic routes that pick the backend and the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterSection {
    /// `builtin` (hashed n-gram TF-IDF fitted on the utterances; default) or `openai` (an
    /// OpenAI-compatible `/v1/embeddings`: `embedder_url`, `embedder_model`, `embedder_dim`).
    #[serde(default)]
    pub embedder: Option<String>,
    /// For `openai`: the base URL (`mock` for the embedded mock provider).
    #[serde(default)]
    pub embedder_url: Option<String>,
    /// For `openai`: the model.
    #[serde(default)]
    pub embedder_model: Option<String>,
    /// For `openai`: the vector dimension.
    #[serde(default)]
    pub embedder_dim: Option<usize>,
    /// `last_user` (default), `conversation` or `system`.
    #[serde(default)]
    pub query: Option<String>,
    /// `centroid` (default) or `nearest` (with `nearest_k`, default 5).
    #[serde(default)]
    pub matching: Option<String>,
    /// For `nearest`: how many utterances.
    #[serde(default)]
    pub nearest_k: Option<usize>,
    /// Whether the chosen model replaces the request's `model` (default true).
    #[serde(default)]
    pub rewrite_model: Option<bool>,
    /// Whether responses carry `x-infergate-route` (default false).
    #[serde(default)]
    pub explain: Option<bool>,
    /// Where requests go when nothing matches (default: the endpoint's backend).
    #[serde(default)]
    pub default: Option<TargetSection>,
    /// Model aliases: `name` -> target.
    #[serde(default)]
    pub aliases: Vec<AliasSection>,
    /// Model globs: `pattern` -> target.
    #[serde(default)]
    pub globs: Vec<GlobSection>,
    /// Header matches.
    #[serde(default)]
    pub headers: Vec<HeaderRuleSection>,
    /// Keyword rules.
    #[serde(default)]
    pub keywords: Vec<KeywordSection>,
    /// Semantic routes.
    #[serde(default)]
    pub semantic: Vec<SemanticSection>,
}

/// `[[router.aliases]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AliasSection {
    /// The model name clients send.
    pub name: String,
    /// The backend it goes to.
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[[router.globs]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobSection {
    /// A model-name pattern (`*`, `?`).
    pub pattern: String,
    /// The backend it goes to.
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[[router.headers]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderRuleSection {
    /// The header's name.
    pub name: String,
    /// Its value (absent: any value).
    #[serde(default)]
    pub value: Option<String>,
    /// The backend it goes to.
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[[router.keywords]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeywordSection {
    /// The rule's name.
    pub name: String,
    /// Words or phrases (whole words, any case).
    pub words: Vec<String>,
    /// The backend it goes to.
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[[router.semantic]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SemanticSection {
    /// The route's name.
    pub name: String,
    /// Example utterances.
    pub utterances: Vec<String>,
    /// The least similarity at which this route may win (default 0.5).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// The backend it goes to.
    pub backend: String,
    /// The model to ask for (default: the requested one).
    #[serde(default)]
    pub model: Option<String>,
}

/// `[guardrail]`: checks on requests and responses.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardrailSection {
    /// Bytes of streamed text held back to catch matches split across chunks (default 64).
    #[serde(default)]
    pub hold_back_bytes: Option<usize>,
    /// Inspect only these roles (default: all).
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The checks, in order.
    #[serde(default)]
    pub checks: Vec<CheckSection>,
    /// External moderation services, consulted on requests after the checks.
    #[serde(default)]
    pub moderations: Vec<ModerationSection>,
}

/// `[[guardrail.moderations]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModerationSection {
    /// The name reported in rejections.
    pub name: String,
    /// `openai` (an OpenAI-compatible `/v1/moderations`) or `webhook`.
    pub kind: String,
    /// Base URL (`openai`) or full URL (`webhook`); `mock` for the embedded mock provider.
    pub url: String,
    /// The environment variable holding the API key (`openai`).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Bound on one call, in milliseconds (default 2000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// `fail_closed` (default: 503) or `fail_open`.
    #[serde(default)]
    pub failure_mode: Option<FailureModeName>,
}

/// `[[guardrail.checks]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSection {
    /// The check's name.
    pub name: String,
    /// `pii`, `secrets`, `deny_list`, `regex`, `max_chars`, `max_tokens` or `injection`.
    pub detector: String,
    /// `block`, `redact` or `annotate`.
    pub action: String,
    /// `request`, `response` or `both` (default).
    #[serde(default)]
    pub applies: Option<String>,
    /// For `pii`: the entities (default all): email, phone, credit_card, iban, us_ssn, ipv4, ipv6.
    #[serde(default)]
    pub entities: Option<Vec<String>>,
    /// For `deny_list`: the words and phrases.
    #[serde(default)]
    pub terms: Option<Vec<String>>,
    /// For `regex`: name -> pattern.
    #[serde(default)]
    pub patterns: Option<BTreeMap<String, String>>,
    /// For `max_chars`: the limit.
    #[serde(default)]
    pub max_chars: Option<usize>,
    /// For `max_tokens`: the limit (prompt tokens, tiktoken).
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// A mask for every finding.
    #[serde(default)]
    pub mask: Option<String>,
    /// For `injection`: the score threshold (default 2.0).
    #[serde(default)]
    pub threshold: Option<f32>,
}

/// `[ratelimit]`: the token rate limiter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    /// What the key is made of, in order: `api_key`, `user`, `model`, `tenant`, `team`,
    /// `key_id`, `header:NAME`. With `[identity]` they resolve to the principal (`api_key` is
    /// its key id, `header:NAME` its tenant, `user` its user); without, they are what the
    /// client sends (client-asserted).
    #[serde(default = "default_key")]
    pub key: Vec<String>,
    /// The default limits of every key.
    #[serde(default)]
    pub limits: infergate::ratelimit::Limits,
    /// Per-key limits, by raw key value (parts joined with `|`): the tenant id, ...
    #[serde(default)]
    pub overrides: BTreeMap<String, infergate::ratelimit::Limits>,
    /// Extra limits per key for one model.
    #[serde(default)]
    pub models: BTreeMap<String, infergate::ratelimit::Limits>,
    /// Output tokens reserved when a request sets no max_tokens (default 1024).
    #[serde(default)]
    pub default_max_output_tokens: Option<u64>,
    /// `fail_open` (default: fall back to a local limiter) or `fail_closed` (503) when Redis
    /// fails.
    #[serde(default)]
    pub failure_mode: Option<FailureModeName>,
    /// Share buckets between replicas through this Redis (`redis://127.0.0.1:6379`).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Whether an upstream error gives the tokens back (default true).
    #[serde(default)]
    pub refund_on_upstream_error: Option<bool>,
}

fn default_key() -> Vec<String> {
    vec!["api_key".into()]
}

/// A failure mode, as written in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureModeName {
    /// Skip or fall back.
    FailOpen,
    /// Refuse.
    FailClosed,
}

impl From<FailureModeName> for infergate::core::FailureMode {
    fn from(m: FailureModeName) -> Self {
        match m {
            FailureModeName::FailOpen => Self::FailOpen,
            FailureModeName::FailClosed => Self::FailClosed,
        }
    }
}

/// Pipeline-wide limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    /// Bound on a buffered request body, in bytes (default 2 MiB).
    #[serde(default = "default_body")]
    pub max_request_body_bytes: usize,
    /// Overall deadline of one phase of the pipeline, in milliseconds (default 30000).
    #[serde(default = "default_deadline")]
    pub deadline_ms: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            max_request_body_bytes: default_body(),
            deadline_ms: default_deadline(),
        }
    }
}

fn default_body() -> usize {
    2 * 1024 * 1024
}

fn default_deadline() -> u64 {
    30_000
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
    /// The provider credentials the gateway injects (absent: none; clients' own keys pass).
    #[serde(default)]
    pub auth: Option<AuthSection>,
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
    /// The lowest TLS version: `1.2` (default) or `1.3`.
    #[serde(default)]
    pub min_version: Option<String>,
}

/// `[backends.NAME.auth]`: provider credentials. Keys are written `env:NAME`, `file:PATH`
/// (re-read when it changes) or `inline:VALUE`; several are used in turn.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    /// `openai`, `azure`, `azure_entra`, `anthropic`, `bedrock`, `vertex` or
    /// `vertex_metadata`.
    pub provider: String,
    /// For `openai`, `azure`, `anthropic`: the keys.
    #[serde(default)]
    pub keys: Vec<String>,
    /// Keep a client's own key when it sends one (bring your own key).
    #[serde(default)]
    pub passthrough: bool,
    /// For `azure`: `api-version` added to the query.
    #[serde(default)]
    pub api_version: Option<String>,
    /// For `anthropic`: the default `anthropic-version`.
    #[serde(default)]
    pub anthropic_version: Option<String>,
    /// For `bedrock`: the region.
    #[serde(default)]
    pub region: Option<String>,
    /// For `bedrock`: the signing name (default `bedrock`).
    #[serde(default)]
    pub service: Option<String>,
    /// For `bedrock`: `env` (default), `file:PATH` (with `profile`), or `static` with
    /// `access_key_id` and `secret_access_key` (a key source) and `session_token`.
    #[serde(default)]
    pub aws_credentials: Option<String>,
    /// For `bedrock` with a credentials file: the profile (default `default`).
    #[serde(default)]
    pub profile: Option<String>,
    /// For `bedrock` `static`: the access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// For `bedrock` `static`: the secret access key (a key source).
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// For `vertex`: the service-account JSON key file.
    #[serde(default)]
    pub service_account_file: Option<String>,
    /// For `vertex_metadata`: the metadata server (default `http://metadata.google.internal`).
    #[serde(default)]
    pub metadata_url: Option<String>,
    /// For `azure_entra`: the authority (default `https://login.microsoftonline.com`).
    #[serde(default)]
    pub authority: Option<String>,
    /// For `azure_entra`: the tenant.
    #[serde(default)]
    pub tenant: Option<String>,
    /// For `azure_entra`: the client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// For `azure_entra`: the client secret (a key source).
    #[serde(default)]
    pub client_secret: Option<String>,
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

/// A TOML error as line, column and message, without the offending line or any value from
/// the file (a config may hold an inline key): quoted values are replaced by `…`, and names
/// in backticks are kept only when they are keys (unknown, missing or duplicate fields).
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|span| {
        let before = &text[..span.start.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("line {line}, column {col}: ")
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
    let mut out = String::with_capacity(msg.len());
    let mut quote: Option<char> = None;
    for c in msg.chars() {
        match quote {
            Some(q) if c == q => {
                out.push(c);
                quote = None;
            }
            Some('`') if keys_ok => out.push(c),
            Some(_) => {
                if !out.ends_with('…') {
                    out.push('…');
                }
            }
            None => {
                out.push(c);
                if c == '"' || c == '\'' || c == '`' {
                    quote = Some(c);
                }
            }
        }
    }
    format!("{}{}", at.unwrap_or_default(), out.trim_end())
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

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = toml::from_str(text).map_err(|e| ConfigError::Invalid {
            path: "<text>".into(),
            message: describe_toml_error(text, &e),
        })?;
        for (what, route) in [
            ("chat", &cfg.routes.chat),
            ("embeddings", &cfg.routes.embeddings),
            ("messages", &cfg.routes.messages),
        ] {
            if let Some(name) = route
                && !cfg.has_target(name)
            {
                return Err(ConfigError::Routes(format!(
                    "routes.{what} names backend '{name}', which is not defined under [backends] or [failover]"
                )));
            }
        }
        for (name, g) in &cfg.failover {
            if cfg.backends.contains_key(name) {
                return Err(ConfigError::Routes(format!(
                    "failover.{name}: a backend has the same name"
                )));
            }
            if g.members.is_empty() {
                return Err(ConfigError::Routes(format!("failover.{name}: no members")));
            }
            for m in &g.members {
                if !cfg.backends.contains_key(&m.backend) {
                    return Err(ConfigError::Routes(format!(
                        "failover.{name}: member '{}' is not defined under [backends]",
                        m.backend
                    )));
                }
            }
            for (key, value, allowed) in [
                (
                    "selection",
                    &g.selection,
                    &["weighted", "least_outstanding"],
                ),
                (
                    "when_all_resting",
                    &g.when_all_resting,
                    &["fail_fast", "try_soonest"],
                ),
            ] {
                if let Some(v) = value
                    && !allowed.contains(&v.as_str())
                {
                    return Err(ConfigError::Routes(format!(
                        "failover.{name}.{key}: the value is not one of {allowed:?}"
                    )));
                }
            }
        }
        for (name, b) in &cfg.backends {
            if let Some(f) = &b.mock_failure {
                if !b.url.starts_with("mock") {
                    return Err(ConfigError::Routes(format!(
                        "backends.{name}.mock_failure is for embedded mocks (url = \"mock:NAME\")"
                    )));
                }
                if infergate::mock::Failure::parse(f).is_none() {
                    return Err(ConfigError::Routes(format!(
                        "backends.{name}.mock_failure: cannot parse the value (e.g. 503, \"429; retry-after=3\", reset, hang, disconnect:2)"
                    )));
                }
            }
        }
        if let Some(g) = &cfg.guardrail {
            for c in &g.checks {
                crate::gateway::build_check(c).map_err(ConfigError::Routes)?;
            }
        }
        if let Some(rl) = &cfg.ratelimit {
            infergate::ratelimit::KeyExtractor::parse(&rl.key)
                .map_err(|e| ConfigError::Routes(format!("ratelimit.{e}")))?;
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
