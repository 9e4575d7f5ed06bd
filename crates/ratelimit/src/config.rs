//! Limits and the limiter's configuration: [`RateLimitConfig`] (the builder the limiter is
//! made from) and [`RateLimitSpec`] (the same as plain data, as a configuration file writes it).
//!
//! With the `serde` feature (default) [`Limits`], [`RateLimitSpec`] and the
//! [`KeyExtractor`] deserialize; unknown fields are errors.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use infergate_core::FailureMode;
use infergate_tokens::TokenCounter;

use crate::key::KeyExtractor;
use crate::store::Store;

/// The limits of one key (or one key and model). Every field is optional; an absent one does
/// not limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct Limits {
    /// Requests per minute.
    pub requests_per_minute: Option<u64>,
    /// Input plus output tokens per minute.
    pub tokens_per_minute: Option<u64>,
    /// Input (prompt) tokens per minute.
    pub input_tokens_per_minute: Option<u64>,
    /// Output (completion) tokens per minute.
    pub output_tokens_per_minute: Option<u64>,
    /// Input plus output tokens per UTC day.
    pub tokens_per_day: Option<u64>,
}

impl Limits {
    /// Fields of `over` replace those of `self` where set.
    #[must_use]
    pub fn merged(&self, over: &Self) -> Self {
        Self {
            requests_per_minute: over.requests_per_minute.or(self.requests_per_minute),
            tokens_per_minute: over.tokens_per_minute.or(self.tokens_per_minute),
            input_tokens_per_minute: over
                .input_tokens_per_minute
                .or(self.input_tokens_per_minute),
            output_tokens_per_minute: over
                .output_tokens_per_minute
                .or(self.output_tokens_per_minute),
            tokens_per_day: over.tokens_per_day.or(self.tokens_per_day),
        }
    }

    /// Whether any token limit is set (then prompts are counted and usage reconciled).
    pub fn has_token_limits(&self) -> bool {
        self.tokens_per_minute.is_some()
            || self.input_tokens_per_minute.is_some()
            || self.output_tokens_per_minute.is_some()
            || self.tokens_per_day.is_some()
    }

    /// Whether any limit is set.
    pub fn is_empty(&self) -> bool {
        self.requests_per_minute.is_none() && !self.has_token_limits()
    }
}

/// Configures a [`TokenRateLimiter`](crate::TokenRateLimiter).
#[derive(Clone)]
#[must_use]
pub struct RateLimitConfig {
    pub(crate) default: Limits,
    pub(crate) overrides: HashMap<String, Limits>,
    pub(crate) models: HashMap<String, Limits>,
    pub(crate) key: KeyExtractor,
    pub(crate) default_max_output_tokens: u64,
    pub(crate) failure_mode: FailureMode,
    pub(crate) refund_on_upstream_error: bool,
    pub(crate) store: Option<Arc<dyn Store>>,
    pub(crate) counter: Option<TokenCounter>,
}

impl std::fmt::Debug for RateLimitConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Override keys are raw tenant ids or API keys: not printed.
        f.debug_struct("RateLimitConfig")
            .field("default", &self.default)
            .field("overrides", &self.overrides.len())
            .field("models", &self.models)
            .field("key", &self.key)
            .field("default_max_output_tokens", &self.default_max_output_tokens)
            .field("failure_mode", &self.failure_mode)
            .field("refund_on_upstream_error", &self.refund_on_upstream_error)
            .field("store", &self.store)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RateLimitConfig {
    /// Limits that apply to every key unless overridden.
    pub fn new(default: Limits) -> Self {
        Self {
            default,
            overrides: HashMap::new(),
            models: HashMap::new(),
            key: KeyExtractor::default(),
            default_max_output_tokens: 1024,
            failure_mode: FailureMode::FailOpen,
            refund_on_upstream_error: true,
            store: None,
            counter: None,
        }
    }

    /// How the key is derived (default: the API key).
    pub fn key(mut self, key: KeyExtractor) -> Self {
        self.key = key;
        self
    }

    /// Limits for one key, given by its raw part values (e.g. `["acme"]` for a tenant header);
    /// set fields replace the defaults.
    pub fn override_key(mut self, raw_parts: &[&str], limits: Limits) -> Self {
        self.overrides
            .insert(crate::key::hash_parts(raw_parts), limits);
        self
    }

    /// Extra limits per key for one model (exact name), in buckets of their own.
    pub fn model(mut self, model: impl Into<String>, limits: Limits) -> Self {
        self.models.insert(model.into(), limits);
        self
    }

    /// Output tokens reserved when a request sets no `max_tokens` (default 1024).
    pub fn default_max_output_tokens(mut self, n: u64) -> Self {
        self.default_max_output_tokens = n;
        self
    }

    /// What happens when the store fails: `FailOpen` (default) falls back to an in-memory
    /// limiter, `FailClosed` answers 503.
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }

    /// Whether an upstream error (an error status, or no response) gives the tokens back
    /// (default true; the request still counts).
    pub fn refund_on_upstream_error(mut self, yes: bool) -> Self {
        self.refund_on_upstream_error = yes;
        self
    }

    /// Where bucket state lives (default: in memory).
    pub fn store(mut self, store: Arc<dyn Store>) -> Self {
        self.store = Some(store);
        self
    }

    /// The token counter (default: [`TokenCounter::shared`], the process-wide memo that the
    /// guardrail's token limit also uses; [`TokenCounter::private`] for a memo of its own).
    pub fn token_counter(mut self, counter: TokenCounter) -> Self {
        self.counter = Some(counter);
        self
    }

    /// A memo of its own remembering `n` message token counts, instead of the process-wide
    /// memo (whatever `n`): the same as `token_counter(TokenCounter::private(n))`.
    pub fn memo_capacity(self, n: u64) -> Self {
        self.token_counter(TokenCounter::private(n))
    }
}

/// The rate limiter's configuration as plain data (a config file's `[ratelimit]`); every field
/// is optional. [`RateLimitSpec::build`] makes the [`RateLimitConfig`] (connecting nothing
/// yet: a Redis store connects on first use).
///
/// Its `Debug` shows neither the override keys (raw tenant ids or API keys) nor a password in
/// the Redis URL.
#[derive(Clone, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct RateLimitSpec {
    /// What the key is made of, in order (default `["api_key"]`; see [`KeyPart`]).
    ///
    /// [`KeyPart`]: crate::KeyPart
    pub key: KeyExtractor,
    /// The default limits of every key.
    pub limits: Limits,
    /// Per-key limits, by raw key value (parts joined with `|`: the tenant id, …).
    pub overrides: BTreeMap<String, Limits>,
    /// Extra limits per key for one model (exact name), in buckets of their own.
    pub models: BTreeMap<String, Limits>,
    /// Output tokens reserved when a request sets no `max_tokens` (default 1024).
    pub default_max_output_tokens: Option<u64>,
    /// When the store fails: `fail_open` (default: a local limiter) or `fail_closed` (503).
    pub failure_mode: Option<FailureMode>,
    /// Share buckets between replicas through this Redis (`redis://127.0.0.1:6379`; feature
    /// `redis`).
    pub redis_url: Option<String>,
    /// Share buckets between replicas through this Redis Cluster (its seed nodes; feature
    /// `redis`).
    pub redis_cluster: Option<Vec<String>>,
    /// Whether an upstream error gives the tokens back (default true).
    pub refund_on_upstream_error: Option<bool>,
}

impl std::fmt::Debug for RateLimitSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimitSpec")
            .field("key", &self.key)
            .field("limits", &self.limits)
            .field("overrides", &self.overrides.len())
            .field("models", &self.models)
            .field("default_max_output_tokens", &self.default_max_output_tokens)
            .field("failure_mode", &self.failure_mode)
            .field("redis_url", &self.redis_url.as_ref().map(|_| "…"))
            .field("redis_cluster", &self.redis_cluster.as_ref().map(Vec::len))
            .field("refund_on_upstream_error", &self.refund_on_upstream_error)
            .finish()
    }
}

/// Why a [`RateLimitSpec`] cannot be built.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// `redis_url` is not a Redis URL.
    #[error("redis_url: {0}")]
    Redis(String),
    /// `redis_url` without the `redis` feature.
    #[error("redis_url: this build has no Redis store (feature `redis`)")]
    NoRedis,
}

impl RateLimitSpec {
    /// The limiter's configuration: the in-memory store, or the Redis one when `redis_url` is
    /// set.
    pub fn build(&self) -> Result<RateLimitConfig, SpecError> {
        let mut cfg = RateLimitConfig::new(self.limits.clone()).key(self.key.clone());
        for (raw, limits) in &self.overrides {
            let parts: Vec<&str> = raw.split('|').collect();
            cfg = cfg.override_key(&parts, limits.clone());
        }
        for (model, limits) in &self.models {
            cfg = cfg.model(model.clone(), limits.clone());
        }
        if let Some(n) = self.default_max_output_tokens {
            cfg = cfg.default_max_output_tokens(n);
        }
        if let Some(m) = self.failure_mode {
            cfg = cfg.failure_mode(m);
        }
        if let Some(r) = self.refund_on_upstream_error {
            cfg = cfg.refund_on_upstream_error(r);
        }
        match (&self.redis_url, &self.redis_cluster) {
            (Some(_), Some(_)) => {
                return Err(SpecError::Redis(
                    "give redis_url (one server) or redis_cluster (seed nodes), not both".into(),
                ));
            }
            (Some(url), None) => cfg = cfg.store(redis_store(url, None)?),
            (None, Some(nodes)) => cfg = cfg.store(redis_store("", Some(nodes))?),
            (None, None) => {}
        }
        Ok(cfg)
    }
}

#[cfg(feature = "redis")]
fn redis_store(url: &str, cluster: Option<&Vec<String>>) -> Result<Arc<dyn Store>, SpecError> {
    let config = match cluster {
        Some(nodes) => crate::store::RedisStoreConfig::cluster(nodes.clone()),
        None => crate::store::RedisStoreConfig::new(url),
    };
    let store = crate::store::RedisStore::new(config).map_err(|e| SpecError::Redis(e.0))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_url: &str, _cluster: Option<&Vec<String>>) -> Result<Arc<dyn Store>, SpecError> {
    Err(SpecError::NoRedis)
}
