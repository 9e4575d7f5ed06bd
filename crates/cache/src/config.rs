//! The cache's configuration: [`CacheConfig`] and [`SemanticConfig`] (the builders a
//! [`Cache`](crate::Cache) is made from) and [`CacheSpec`] (the same as plain data, as a
//! configuration file writes it).
//!
//! With the `serde` feature (default) [`CacheSpec`] and [`TenantScope`] deserialize; unknown
//! fields are errors.

use std::sync::Arc;
use std::time::Duration;

use infergate_core::FailureMode;
use infergate_embed::{Embedder, HashEmbedder};

use crate::key::TenantScope;
use crate::semantic::SemanticIndex;
use crate::store::{CacheStore, MemoryStore};

/// The semantic part of the cache.
#[derive(Debug, Clone)]
pub struct SemanticConfig {
    pub(crate) embedder: Arc<dyn Embedder>,
    pub(crate) threshold: f32,
    pub(crate) index: Arc<SemanticIndex>,
    pub(crate) nonzero_temperature: bool,
}

impl SemanticConfig {
    /// Semantic lookups with `embedder`, answering when the similarity reaches `threshold`
    /// (cosine; 0.95 is a cautious start).
    pub fn new(embedder: Arc<dyn Embedder>, threshold: f32) -> Self {
        Self {
            embedder,
            threshold,
            index: Arc::new(SemanticIndex::new(100_000)),
            nonzero_temperature: false,
        }
    }

    /// The index (to share it, or bound it differently).
    #[must_use]
    pub fn index(mut self, index: Arc<SemanticIndex>) -> Self {
        self.index = index;
        self
    }

    /// Whether requests with a temperature above 0 (or none given, which means 1) may be
    /// answered semantically (default: no — a sampled answer to a similar question is a guess).
    #[must_use]
    pub fn nonzero_temperature(mut self, yes: bool) -> Self {
        self.nonzero_temperature = yes;
        self
    }
}

/// Configures a [`Cache`](crate::Cache).
#[derive(Debug, Clone)]
#[must_use]
pub struct CacheConfig {
    pub(crate) store: Arc<dyn CacheStore>,
    pub(crate) ttl: Duration,
    pub(crate) tenant: TenantScope,
    pub(crate) secret: Vec<u8>,
    pub(crate) nonzero_temperature: bool,
    pub(crate) semantic: Option<SemanticConfig>,
    pub(crate) single_flight: Option<Duration>,
    pub(crate) failure_mode: FailureMode,
    pub(crate) exact_per_user: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            store: Arc::new(MemoryStore::default()),
            ttl: Duration::from_secs(3600),
            tenant: TenantScope::ApiKey,
            secret: b"infergate".to_vec(),
            nonzero_temperature: true,
            semantic: None,
            single_flight: Some(Duration::from_secs(120)),
            failure_mode: FailureMode::FailOpen,
            exact_per_user: false,
        }
    }
}

impl CacheConfig {
    /// Exact caching in memory, one hour, scoped by API key, single-flight on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where exact entries live (default: [`MemoryStore::default`]).
    pub fn store(mut self, store: Arc<dyn CacheStore>) -> Self {
        self.store = store;
        self
    }

    /// How long entries live (default one hour).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Who shares entries when a request carries no [`Principal`](infergate_core::Principal)
    /// (default: [`TenantScope::ApiKey`]). With a principal, its tenant always decides.
    pub fn tenant(mut self, scope: TenantScope) -> Self {
        self.tenant = scope;
        self
    }

    /// Whether exact entries are also scoped by the end user (the principal's user, or the
    /// body's `user` under the tenant), as semantic entries always are (default: no — the same
    /// request within one tenant gets the same answer). Single-flight follows the exact key.
    pub fn exact_per_user(mut self, yes: bool) -> Self {
        self.exact_per_user = yes;
        self
    }

    /// A secret mixed into every key (set the same one on replicas sharing a Redis store), so
    /// that nobody can compute another request's key.
    pub fn key_secret(mut self, secret: impl Into<Vec<u8>>) -> Self {
        self.secret = secret.into();
        self
    }

    /// Whether the exact cache answers requests with a temperature above 0 (default: yes — the
    /// request is the same, and a stored answer is one the model could have given).
    pub fn nonzero_temperature(mut self, yes: bool) -> Self {
        self.nonzero_temperature = yes;
        self
    }

    /// Adds the semantic cache.
    pub fn semantic(mut self, semantic: SemanticConfig) -> Self {
        self.semantic = Some(semantic);
        self
    }

    /// Concurrent identical requests wait up to `wait` for the first one's answer instead of
    /// going upstream (`None`: off). Default: on, two minutes.
    pub fn single_flight(mut self, wait: Option<Duration>) -> Self {
        self.single_flight = wait;
        self
    }

    /// What a store failure does (default `FailOpen`: the request goes upstream as a miss).
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }
}

/// The cache's configuration as plain data (a config file's `[cache]`); every field is
/// optional. [`CacheSpec::build`] makes the [`CacheConfig`]: the in-memory store, or Redis
/// with `redis_url`, and the semantic cache with the built-in embedder when
/// `semantic_threshold` is set.
///
/// Its `Debug` shows neither the key secret nor the Redis URL.
#[derive(Clone, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct CacheSpec {
    /// Entry lifetime in seconds (default 3600).
    pub ttl_secs: Option<u64>,
    /// In-memory bound on entries (default 100 000).
    pub max_entries: Option<u64>,
    /// In-memory bound on bytes (default 256 MiB).
    pub max_bytes: Option<u64>,
    /// `api_key` (default), `header:NAME` or `shared`: who shares entries when a request
    /// carries no principal. With one, the principal's tenant always decides.
    pub tenant: TenantScope,
    /// Scope exact entries (and single-flight) by the end user too (default false; semantic
    /// entries always are).
    pub exact_per_user: Option<bool>,
    /// A secret mixed into keys (the same on replicas sharing Redis).
    pub key_secret: Option<String>,
    /// Share exact entries between replicas through Redis (feature `redis`).
    pub redis_url: Option<String>,
    /// Share exact entries through this Redis Cluster (its seed nodes; feature `redis`).
    pub redis_cluster: Option<Vec<String>>,
    /// Whether the exact cache answers requests with temperature > 0 (default true).
    pub nonzero_temperature: Option<bool>,
    /// Concurrent identical requests wait for the first (default true).
    pub single_flight: Option<bool>,
    /// How long they wait, in milliseconds (default 120000).
    pub single_flight_wait_ms: Option<u64>,
    /// Turns the semantic cache on with this similarity threshold.
    pub semantic_threshold: Option<f32>,
    /// The semantic cache's embedder: `builtin` (default; hashed n-grams), `static` (distilled
    /// from MiniLM, `semantic_embedder_dir`) or `minilm` (feature `candle`,
    /// `semantic_embedder_dir`).
    pub semantic_embedder: Option<String>,
    /// The `static` or `minilm` embedder's weights directory.
    pub semantic_embedder_dir: Option<String>,
    /// Whether the semantic cache answers requests with temperature > 0 (default false).
    pub semantic_nonzero_temperature: Option<bool>,
}

impl std::fmt::Debug for CacheSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "…");
        f.debug_struct("CacheSpec")
            .field("ttl_secs", &self.ttl_secs)
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .field("tenant", &self.tenant)
            .field("exact_per_user", &self.exact_per_user)
            .field("key_secret", &hidden(&self.key_secret))
            .field("redis_url", &hidden(&self.redis_url))
            .field("redis_cluster", &self.redis_cluster.as_ref().map(Vec::len))
            .field("nonzero_temperature", &self.nonzero_temperature)
            .field("single_flight", &self.single_flight)
            .field("single_flight_wait_ms", &self.single_flight_wait_ms)
            .field("semantic_threshold", &self.semantic_threshold)
            .field("semantic_embedder", &self.semantic_embedder)
            .field("semantic_embedder_dir", &self.semantic_embedder_dir)
            .field(
                "semantic_nonzero_temperature",
                &self.semantic_nonzero_temperature,
            )
            .finish()
    }
}

/// Why a [`CacheSpec`] cannot be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `redis_url` is not a Redis URL.
    #[error("redis_url: {0}")]
    Redis(String),
    /// `redis_url` without the `redis` feature.
    #[error("redis_url: this build has no Redis store (feature `redis`)")]
    NoRedis,
    /// The semantic cache's embedder cannot be made.
    #[error("semantic_embedder: {0}")]
    Embedder(String),
}

impl CacheSpec {
    /// The cache's configuration.
    pub fn build(&self) -> Result<CacheConfig, SpecError> {
        let wait = Duration::from_millis(self.single_flight_wait_ms.unwrap_or(120_000));
        let mut cfg = CacheConfig::new()
            .ttl(Duration::from_secs(self.ttl_secs.unwrap_or(3600)))
            .tenant(self.tenant.clone())
            .nonzero_temperature(self.nonzero_temperature.unwrap_or(true))
            .exact_per_user(self.exact_per_user.unwrap_or(false))
            .single_flight(self.single_flight.unwrap_or(true).then_some(wait));
        if let Some(s) = &self.key_secret {
            cfg = cfg.key_secret(s.as_bytes().to_vec());
        }
        cfg = match (&self.redis_url, &self.redis_cluster) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Redis(
                    "give redis_url (one server) or redis_cluster (seed nodes), not both".into(),
                ));
            }
            (Some(url), None) => cfg.store(redis_store(url, None)?),
            (None, Some(nodes)) => cfg.store(redis_store("", Some(nodes))?),
            (None, None) => cfg.store(Arc::new(MemoryStore::new(
                self.max_entries.unwrap_or(100_000),
                self.max_bytes.unwrap_or(256 * 1024 * 1024),
            ))),
        };
        if let Some(t) = self.semantic_threshold {
            let dir = || {
                self.semantic_embedder_dir.as_deref().ok_or_else(|| {
                    SpecError::Embedder("semantic_embedder_dir is required by this embedder".into())
                })
            };
            let embedder: Arc<dyn Embedder> = match self.semantic_embedder.as_deref() {
                None | Some("builtin") => Arc::new(HashEmbedder::default()),
                Some("static") => Arc::new(
                    infergate_embed::StaticEmbedder::load(dir()?)
                        .map_err(|e| SpecError::Embedder(e.to_string()))?,
                ),
                #[cfg(feature = "candle")]
                Some("minilm") => Arc::new(infergate_embed::CachedEmbedder::new(
                    infergate_embed::MiniLm::load(dir()?)
                        .map_err(|e| SpecError::Embedder(e.to_string()))?,
                    100_000,
                )),
                Some(other) => {
                    return Err(SpecError::Embedder(format!(
                        "unknown semantic_embedder '{other}' (builtin, static, or minilm with the \
                         candle feature)"
                    )));
                }
            };
            cfg = cfg.semantic(
                SemanticConfig::new(embedder, t)
                    .nonzero_temperature(self.semantic_nonzero_temperature.unwrap_or(false)),
            );
        }
        Ok(cfg)
    }
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, cluster: Option<&Vec<String>>) -> Result<Arc<dyn CacheStore>, SpecError> {
    let store = match cluster {
        Some(nodes) => crate::store::RedisStore::with_config(
            infergate_redis::RedisConfig::cluster(nodes.clone())
                .timeout(std::time::Duration::from_millis(200)),
        ),
        None => crate::store::RedisStore::new(url),
    }
    .map_err(|e| SpecError::Redis(e.to_string()))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_store(
    _url: &str,
    _cluster: Option<&Vec<String>>,
) -> Result<Arc<dyn CacheStore>, SpecError> {
    Err(SpecError::NoRedis)
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn a_spec_deserializes_and_builds() {
        let s: CacheSpec = serde_json::from_str(
            r#"{"ttl_secs":5,"tenant":"header:x-tenant-id","semantic_threshold":0.9,"key_secret":"k"}"#,
        )
        .unwrap();
        assert_eq!(
            s.tenant,
            TenantScope::Header(http::HeaderName::from_static("x-tenant-id"))
        );
        assert!(!format!("{s:?}").contains("\"k\""));
        let c = s.build().unwrap();
        assert_eq!(c.ttl, Duration::from_secs(5));
        assert!(c.semantic.is_some());
    }

    #[test]
    fn unknown_fields_and_values_are_refused_without_the_value() {
        assert!(serde_json::from_str::<CacheSpec>(r#"{"ttl":5}"#).is_err());
        let e = serde_json::from_str::<CacheSpec>(r#"{"tenant":"sk-secret"}"#).unwrap_err();
        assert!(!e.to_string().contains("sk-secret"), "{e}");
        assert!(e.to_string().contains("header:NAME"), "{e}");
    }
}
