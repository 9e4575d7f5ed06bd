//! # infergate
//!
//! Embeddable AI-gateway building blocks for Rust: tower `Layer`s that platform teams compose
//! into their own hyper, axum or pingora server to govern traffic to LLM APIs
//! (OpenAI-compatible, Anthropic, Bedrock, Vertex, Azure, self-hosted vLLM).
//!
//! Everything stands on [`core`]: an ordered processor [`Pipeline`](core::Pipeline) with
//! `FailOpen`/`FailClosed` failure modes and per-processor timeouts (the Kubernetes WG AI
//! Gateway payload-processing model), a lossless payload model, incremental SSE, and one
//! OpenAI-shaped error response.
//!
//! ```
//! use infergate::core::{Body, Pipeline, PipelineLayer};
//! use tower::ServiceBuilder;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = infergate::client::UpstreamClient::new("http://127.0.0.1:9").unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(PipelineLayer::new(Pipeline::default()))
//!     .service(upstream.into_proxy());
//! # let _ = svc;
//! # }
//! ```
//!
//! ## Features
//!
//! | feature  | default | crate              | what                                                        |
//! |----------|---------|--------------------|-------------------------------------------------------------|
//! | (always) | yes     | `infergate-core`   | Pipeline, processors, payload model, SSE, errors            |
//! | `client` | yes     | `infergate-client` | pooled upstream client (HTTP/1.1, HTTP/2, rustls, timeouts) |
//! | `tokens` | yes     | `infergate-tokens` | token counting with tiktoken, the process-wide memo         |
//! | `ratelimit` | yes  | `infergate-ratelimit` | token and request rate limits, reserve then reconcile    |
//! | `redis`  | no      | ratelimit, cache, identity, budget | Redis stores for the rate limiter, the cache, API keys and budgets |
//! | `guardrail` | yes  | `infergate-guardrail` | PII, secrets, deny lists: block, redact, annotate; streams too |
//! | `router` | yes     | `infergate-router` | model aliases, globs, header/keyword rules, semantic routes |
//! | `embed`  | yes (router) | `infergate-embed` | embedders: built-in hashed TF-IDF, OpenAI-compatible, cache |
//! | `cache`  | yes     | `infergate-cache`  | exact and semantic response cache, streams replayed, single-flight |
//! | `auth`   | yes     | `infergate-auth`   | provider credentials: OpenAI, Azure, Anthropic, SigV4 (Bedrock); rotation |
//! | `failover` | yes   | `infergate-failover` | priority tiers, retries, cooldowns, passive health, body replay, never after the first byte |
//! | `identity` | no    | `infergate-identity` | client API keys and JWTs turned into a `Principal` every block keys off |
//! | `translate` | yes  | `infergate-translate` | protocol translation per backend: OpenAI Chat/Responses, Anthropic, Bedrock, Gemini |
//! | `budget` | yes     | `infergate-budget` | dollar and token budgets: prices per model, reserve then reconcile, Redis Cluster |
//! | `candle` | no      | `infergate-embed`  | local all-MiniLM-L6-v2 with candle (a long build)           |
//! | `mock`   | no      | `infergate-mock`   | mock LLM provider for tests, benchmarks and demos           |
//! | `full`   | no      | all of the above but `candle` |                                                  |
//!
//! The pingora adapter (`infergate-pingora`) is a crate of its own, outside this one, so that
//! nobody builds pingora without asking for it.

pub use infergate_core as core;

#[cfg(feature = "client")]
pub use infergate_client as client;

#[cfg(feature = "mock")]
pub use infergate_mock as mock;

#[cfg(feature = "tokens")]
pub use infergate_tokens as tokens;

#[cfg(feature = "translate")]
pub use infergate_translate as translate;

#[cfg(feature = "budget")]
pub use infergate_budget as budget;

#[cfg(feature = "observe")]
pub use infergate_observe as observe;
#[cfg(feature = "ratelimit")]
pub use infergate_ratelimit as ratelimit;

#[cfg(feature = "guardrail")]
pub use infergate_guardrail as guardrail;

#[cfg(feature = "embed")]
pub use infergate_embed as embed;

#[cfg(feature = "router")]
pub use infergate_router as router;

#[cfg(feature = "cache")]
pub use infergate_cache as cache;

#[cfg(feature = "auth")]
pub use infergate_auth as auth;
#[cfg(feature = "failover")]
pub use infergate_failover as failover;

#[cfg(feature = "identity")]
pub use infergate_identity as identity;
