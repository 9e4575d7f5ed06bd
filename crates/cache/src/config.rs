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

use crate::calibrate::SemanticCalibration;
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
    /// Turns the semantic cache on with this similarity threshold (or give
    /// `semantic_max_false_hits` instead: not both).
    pub semantic_threshold: Option<f32>,
    /// The semantic cache's embedder: `builtin` (default; hashed n-grams), `static` (distilled
    /// from MiniLM, `semantic_embedder_dir`) or `minilm` (feature `candle`,
    /// `semantic_embedder_dir`).
    pub semantic_embedder: Option<String>,
    /// The `static` or `minilm` embedder's weights directory.
    pub semantic_embedder_dir: Option<String>,
    /// Whether the semantic cache answers requests with temperature > 0 (default false).
    pub semantic_nonzero_temperature: Option<bool>,
    /// Turns the semantic cache on with a threshold **chosen at start-up** for this false-hit
    /// rate (a share, e.g. 0.01) on `semantic_calibration_pairs`, instead of a given
    /// `semantic_threshold`; see [`crate::calibrate`]. Needs [`CacheSpec::build_calibrated`].
    pub semantic_max_false_hits: Option<f64>,
    /// Labelled pairs for `semantic_max_false_hits`, in the STS Benchmark's tab-separated
    /// shape (`bash scripts/fetch_stsb.sh` fetches the public one; a deployment's own pairs
    /// of real questions are better).
    pub semantic_calibration_pairs: Option<String>,
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
            .field("semantic_max_false_hits", &self.semantic_max_false_hits)
            .field(
                "semantic_calibration_pairs",
                &self.semantic_calibration_pairs,
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
    /// The semantic threshold cannot be calibrated as configured.
    #[error("semantic_max_false_hits: {0}")]
    Calibration(String),
}

impl CacheSpec {
    /// The cache's configuration, with the semantic threshold calibrated first when
    /// `semantic_max_false_hits` asks for it (the pairs embedded once, at start-up), and what
    /// the calibration measured on its pairs.
    pub async fn build_calibrated(
        &self,
    ) -> Result<(CacheConfig, Option<SemanticCalibration>), SpecError> {
        let Some(max) = self.semantic_max_false_hits else {
            return Ok((self.build()?, None));
        };
        if self.semantic_threshold.is_some() {
            return Err(SpecError::Calibration(
                "give semantic_threshold or semantic_max_false_hits, not both".into(),
            ));
        }
        if !(0.0..=1.0).contains(&max) {
            return Err(SpecError::Calibration(format!(
                "{max} is not a share between 0 and 1"
            )));
        }
        let path = self.semantic_calibration_pairs.as_deref().ok_or_else(|| {
            SpecError::Calibration("semantic_calibration_pairs is required".into())
        })?;
        let text = std::fs::read_to_string(path).map_err(|e| {
            SpecError::Calibration(format!(
                "semantic_calibration_pairs {path}: {e} (bash scripts/fetch_stsb.sh fetches the \
                 public STS Benchmark)"
            ))
        })?;
        let pairs = crate::calibrate::read_sts_benchmark(&text, None);
        if !pairs.iter().any(|p| p.same) || !pairs.iter().any(|p| !p.same) {
            return Err(SpecError::Calibration(format!(
                "{path}: no labelled pairs of both kinds (tab-separated, the score in the fifth \
                 column and the two texts after it)"
            )));
        }
        let embedder = self.semantic_embedder_of()?;
        let cal = crate::calibrate::calibrate(&*embedder, &pairs, max)
            .await
            .map_err(|e| SpecError::Calibration(e.to_string()))?;
        if cal.hit_rate == 0.0 || cal.threshold > 1.0 {
            // A threshold nothing reaches: a cache that never answers, silently.
            return Err(SpecError::Calibration(format!(
                "at {max} the threshold ({:.4}) leaves no same-question pair a hit: the pairs \
                 cannot tell the two kinds apart with this embedder",
                cal.threshold
            )));
        }
        let cfg = self.build_with(Some((embedder, cal.threshold)))?;
        Ok((cfg, Some(cal)))
    }

    /// The cache's configuration (a `semantic_max_false_hits` needs
    /// [`build_calibrated`](Self::build_calibrated)).
    pub fn build(&self) -> Result<CacheConfig, SpecError> {
        if self.semantic_max_false_hits.is_some() {
            return Err(SpecError::Calibration(
                "a calibrated threshold is chosen by build_calibrated".into(),
            ));
        }
        if self.semantic_calibration_pairs.is_some() {
            return Err(SpecError::Calibration(
                "semantic_calibration_pairs is read only with semantic_max_false_hits".into(),
            ));
        }
        let semantic = match self.semantic_threshold {
            Some(t) => Some((self.semantic_embedder_of()?, t)),
            None => None,
        };
        self.build_with(semantic)
    }

    fn build_with(
        &self,
        semantic: Option<(Arc<dyn Embedder>, f32)>,
    ) -> Result<CacheConfig, SpecError> {
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
        if let Some((embedder, t)) = semantic {
            cfg = cfg.semantic(
                SemanticConfig::new(embedder, t)
                    .nonzero_temperature(self.semantic_nonzero_temperature.unwrap_or(false)),
            );
        }
        Ok(cfg)
    }

    /// The semantic cache's embedder, as `semantic_embedder` names it.
    fn semantic_embedder_of(&self) -> Result<Arc<dyn Embedder>, SpecError> {
        let dir = || {
            self.semantic_embedder_dir.as_deref().ok_or_else(|| {
                SpecError::Embedder("semantic_embedder_dir is required by this embedder".into())
            })
        };
        Ok(match self.semantic_embedder.as_deref() {
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
        })
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

    #[tokio::test]
    #[allow(clippy::float_cmp)] // the threshold handed on, and a rate of whole counts
    async fn a_threshold_is_calibrated_for_the_false_hit_rate_asked() {
        let dir = std::env::temp_dir().join(format!("infergate-cal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pairs.tsv");
        let mut lines = Vec::new();
        let same = [
            ("how do i reset my password", "how can i reset my password"),
            (
                "what is the capital of france",
                "what's the capital of france",
            ),
            ("cancel my order please", "please cancel my order"),
        ];
        let other = [
            (
                "how do i reset my password",
                "how do i change my email address",
            ),
            (
                "what is the capital of france",
                "what is the capital of spain",
            ),
            ("cancel my order please", "track my order please"),
            ("book a flight to paris", "book a hotel in paris"),
        ];
        for (i, (a, b)) in same.iter().enumerate() {
            lines.push(format!("main-forums\tx\t2015\t{i}\t4.6\t{a}\t{b}"));
        }
        for (i, (a, b)) in other.iter().enumerate() {
            lines.push(format!("main-forums\tx\t2015\t{i}\t1.2\t{a}\t{b}"));
        }
        std::fs::write(&path, lines.join("\n")).unwrap();
        let spec: CacheSpec = serde_json::from_value(serde_json::json!({
            "semantic_max_false_hits": 0.0,
            "semantic_calibration_pairs": path.to_str().unwrap(),
        }))
        .unwrap();
        // The plain build refuses rather than silently using no threshold.
        assert!(matches!(spec.build(), Err(SpecError::Calibration(_))));
        let (cfg, cal) = spec.build_calibrated().await.unwrap();
        let cal = cal.unwrap();
        assert_eq!(cal.false_hit_rate, 0.0);
        assert_eq!((cal.same_pairs, cal.other_pairs), (3, 4));
        let semantic = cfg.semantic.unwrap();
        assert_eq!(semantic.threshold, cal.threshold);
        // Every "other" pair is below it.
        let e = HashEmbedder::default();
        for (a, b) in other {
            let v = e.embed(&[a.to_owned(), b.to_owned()]).await.unwrap();
            assert!(infergate_embed::cosine(&v[0], &v[1]) < cal.threshold);
        }
        // Both kinds are needed, and a threshold given as well is a contradiction.
        std::fs::write(&path, "main-forums\tx\t2015\t0\t4.6\ta\tb\n").unwrap();
        assert!(spec.build_calibrated().await.is_err());
        let both: CacheSpec = serde_json::from_value(serde_json::json!({
            "semantic_threshold": 0.9,
            "semantic_max_false_hits": 0.01,
            "semantic_calibration_pairs": path.to_str().unwrap(),
        }))
        .unwrap();
        assert!(both.build_calibrated().await.is_err());
        std::fs::remove_dir_all(&dir).ok();
    }
}
