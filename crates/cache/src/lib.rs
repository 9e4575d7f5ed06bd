//! The response cache: exact and semantic, tenant-scoped, streams teed on a miss and replayed
//! on a hit, single-flight, in memory or Redis.
//!
//! ```
//! use infergate_cache::{CacheConfig, CacheLayer};
//! use tower::Layer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = infergate_client::UpstreamClient::new("http://127.0.0.1:9").unwrap();
//! // Exact cache in memory: one hour, scoped by the client's API key, single-flight on.
//! let svc = CacheLayer::new(CacheConfig::new()).layer(upstream.into_proxy());
//! # let _ = svc;
//! # }
//! ```
//!
//! - **Keys.** The exact key hashes a canonical form of the request — every field but
//!   `stream`, `stream_options`, `user`, `metadata`, `store`, `service_tier`,
//!   `prompt_cache_key` and `safety_identifier`, object keys sorted so that field order never
//!   matters — with a key secret, the API, and the tenant (a SHA-256 of the API key, of a
//!   configured header, or nobody's, [`TenantScope`]). Tenants never share entries unless
//!   configured to.
//! - **Streams both ways.** One stored answer serves both: a stored completion is replayed as a
//!   valid SSE stream (with the usage chunk when the request asks for it), and a streamed miss
//!   is assembled into a completion. On a miss the stream is teed: the client gets each event as
//!   it arrives; the entry is stored only if the stream completed normally.
//! - **Semantic** ([`SemanticConfig`]): the embedding of the last user message, compared only
//!   with entries of the same scope — tenant, model, system prompt, the rest of the conversation
//!   and every parameter — so that two conversations sharing a last message never collide. A
//!   hit says its similarity (`x-cache-similarity`). Off by default for temperature > 0.
//! - **Policy.** Only 200 answers are stored; `Cache-Control: no-store` (do not store) and
//!   `no-cache` (do not answer from the cache) are honoured, and `x-infergate-cache: bypass`
//!   skips it; TTL per entry; bounds on entries and bytes; `x-cache: HIT | MISS | BYPASS`.
//! - **Single-flight.** Concurrent identical requests wait for the first one's answer instead of
//!   all going upstream. A streaming follower of a streaming first request gets its stream as
//!   it is produced (what was sent so far, then live); the others get the answer when it is
//!   complete. If the first request fails, the followers go upstream themselves.
//! - **Stores.** [`MemoryStore`] (quick_cache: bounded by entries and bytes, TTL per entry) by
//!   default; [`RedisStore`] (feature `redis`) shares exact
//!   entries between replicas. The semantic index lives in each process (it holds vectors and
//!   the exact keys of their answers; with Redis, a semantic hit on one replica can answer with
//!   an entry another replica stored). A store failure follows the failure mode: `FailOpen` by
//!   default — a cache outage never fails a request.
//!
//! **Place it after the guardrail and before the rate limiter**: request checks still see every
//! request (a similar request must not slip past them through a semantic hit), and a hit spends
//! no provider tokens because the rate limiter never sees it.
//!
//! ## Configuration as data
//!
//! [`CacheSpec`] is the whole configuration as plain data (with the `serde` feature, default,
//! it deserializes; unknown fields and values are errors); [`CacheSpec::build`] makes the
//! [`CacheConfig`] with its store and, when asked, the semantic cache.

mod answer;
pub mod calibrate;
mod canon;
mod config;
mod key;
mod layer;
mod processor;
mod semantic;
mod store;

pub use answer::Answer;
pub use config::{CacheConfig, CacheSpec, SemanticConfig, SpecError};
pub use key::{TenantScope, TenantScopeError};
pub use layer::CacheLayer;
pub use processor::{BYPASS_HEADER, CACHE_HEADER, Cache, SIMILARITY_HEADER};
pub use semantic::SemanticIndex;
#[cfg(feature = "redis")]
pub use store::RedisStore;
pub use store::{CacheStore, MemoryStore, StoreError};
