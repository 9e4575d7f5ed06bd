//! # infergate-ratelimit
//!
//! Token and request rate limits for LLM traffic, as an infergate [`Processor`] and a tower
//! layer, [`TokenRateLimitLayer`].
//!
//! ```
//! use infergate_core::Body;
//! use infergate_ratelimit::{Limits, RateLimitConfig, TokenRateLimitLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let limits = Limits { requests_per_minute: Some(60), tokens_per_minute: Some(10_000), ..Limits::default() };
//! let layer = TokenRateLimitLayer::new(RateLimitConfig::new(limits));
//! let upstream = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(
//!         r#"{"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#,
//!     )))
//! });
//! let svc = layer.layer(upstream);
//! let req = http::Request::post("/v1/chat/completions")
//!     .header("authorization", "Bearer sk-demo")
//!     .body(Body::from(r#"{"model":"gpt-4o-mini","max_tokens":50,"messages":[{"role":"user","content":"Hi"}]}"#))
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! assert_eq!(resp.headers()["x-ratelimit-limit-tokens"], "10000");
//! # }
//! ```
//!
//! ## How it counts
//!
//! - **Admission** reserves an estimate before the call: the prompt counted with tiktoken-rs in
//!   the model's encoding (`o200k_base` for gpt-4o, gpt-4.1, gpt-5 and the o-series,
//!   `cl100k_base` for gpt-4 and gpt-3.5; other providers' models are counted with `o200k_base`
//!   as an approximation) plus `max_completion_tokens`/`max_tokens`/`max_output_tokens` (a
//!   configured default when absent). Every bucket of the request (requests, tokens, input,
//!   output, per day; per key and per key+model) is checked and charged at once, all or nothing;
//!   if one has no room the answer is 429 with `Retry-After` and OpenAI's `x-ratelimit-*`
//!   headers, which admitted responses carry too.
//! - **Reconciliation** charges the real `usage` and gives back the rest: from the body of a
//!   non-streamed response; from the final usage chunk of an OpenAI stream (asked for upstream
//!   with `stream_options.include_usage` when the client did not, and then removed from what the
//!   client receives, `"usage":null` fields included); from Anthropic's `message_start` and
//!   `message_delta`; from the Responses API's `response.completed`. A stream cut short (the
//!   client went away, the upstream failed) is charged its input estimate plus one output token
//!   per content delta received. An upstream error refunds the tokens (configurable).
//! - **Counting cost**: each message's count is memoised by a 128-bit hash of its text, so a
//!   conversation resent every turn costs only its new message (see `docs/benchmarks.md`).
//!
//! ## Why not governor
//!
//! governor's GCRA cannot give cells back and admits one quota at a time. A token limit must
//! *reserve* an estimate, *refund* or *charge* the difference later, and admit a request only if
//! every one of its buckets (requests and tokens) has room — so a request denied for tokens must
//! not have spent a request slot. The crate therefore implements GCRA itself ([`gcra`]): one
//! number per bucket (the theoretical arrival time), reserve, adjust in both directions, and the
//! same arithmetic in the Redis script, so the in-memory and shared limiters behave alike.
//!
//! ## Stores and failures
//!
//! [`MemoryStore`] (default) keeps buckets in this process. `RedisStore` (feature `redis`)
//! shares them between replicas: one Lua script checks and reserves every bucket of a request
//! atomically (server time, so replicas agree), another applies settlements. When Redis fails,
//! the configured [`FailureMode`](infergate_core::FailureMode) decides: `FailOpen` (default)
//! falls back to a local in-memory limiter, `FailClosed` answers 503; the connection recovers
//! by itself.
//!
//! ## Configuration as data
//!
//! [`RateLimitSpec`] is the whole configuration as plain data (with the `serde` feature,
//! default, it deserializes, as do [`Limits`] and the [`KeyExtractor`]; unknown fields and
//! values are errors); [`RateLimitSpec::build`] makes the [`RateLimitConfig`].
//!
//! [`Processor`]: infergate_core::Processor

pub mod config;
pub mod count;
pub mod gcra;
pub mod key;
mod layer;
mod processor;
pub mod store;

pub use config::{Limits, RateLimitConfig, RateLimitSpec, SpecError};
pub use count::{Encoding, TokenCounter};
pub use key::{KeyExtractor, KeyPart, KeyPartError};
pub use layer::TokenRateLimitLayer;
pub use processor::{SettledBy, Settlement, TokenRateLimiter};
pub use store::{MemoryStore, Store};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreConfig};
