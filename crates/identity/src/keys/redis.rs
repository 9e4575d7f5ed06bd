//! The Redis key store: keys shared by replicas, cached locally.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use redis::AsyncCommands as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{
    Clock, KeyAdmin, KeyEntry, KeyHasher, KeyRecord, KeyStore, Lookup, SystemClock, new_record,
};
use crate::config::{PrincipalSpec, RedisStoreConfig, Secret};
use crate::error::StoreError;

/// Keys in Redis (`<prefix>:key:<id>` holds the JSON [`KeyRecord`], the set `<prefix>:ids`
/// every id), shared by every replica.
///
/// **Revocation bound**: a key read from Redis is trusted locally for `cache_ttl_ms` (default
/// 5 s); a revocation written by any replica (or the key tool) is therefore seen by every
/// replica within `cache_ttl_ms` plus one Redis round trip. The replica that revokes sees it at
/// once.
///
/// **Floods**: malformed keys never get here. Unknown key ids are remembered as unknown for
/// `negative_ttl_ms` (at most `negative_capacity` of them), and key ids in neither cache may
/// cost a Redis lookup only within a token bucket (`miss_burst`, refilled at
/// `misses_per_second`): beyond it they are refused without asking Redis
/// ([`Lookup::Throttled`]). A flood of N distinct invalid keys over T seconds costs Redis at
/// most `miss_burst + misses_per_second × T` lookups, whatever N. Known keys (even stale in the
/// cache) are refreshed outside that budget, so a flood does not lock out real clients whose
/// key is cached; a real key used for the first time during a flood may be refused until the
/// flood passes.
///
/// A Redis failure is an error (the processor fails closed: 502), never an open door.
pub struct RedisKeyStore {
    client: redis::Client,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    config: RedisStoreConfig,
    hasher: KeyHasher,
    clock: Arc<dyn Clock>,
    cache: Mutex<Caches>,
    lookups: AtomicU64,
}

impl std::fmt::Debug for RedisKeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the client: its connection info may hold the Redis password.
        let (known, unknown) = {
            let c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            (c.known.len(), c.unknown.len())
        };
        f.debug_struct("RedisKeyStore")
            .field("config", &self.config)
            .field("hasher", &self.hasher)
            .field("cached_keys", &known)
            .field("cached_unknown_ids", &unknown)
            .field("redis_lookups", &self.redis_lookups())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Caches {
    known: HashMap<String, (Instant, Arc<KeyEntry>)>,
    unknown: HashMap<String, Instant>,
    tokens: f64,
    refilled: Instant,
}

impl RedisKeyStore {
    /// A store on `config.url` (connected on first use), hashing new keys with `hasher`.
    pub fn new(config: RedisStoreConfig, hasher: KeyHasher) -> Result<Self, StoreError> {
        Self::with_clock(config, hasher, Arc::new(SystemClock))
    }

    /// The same, with `clock` timing the caches and the lookup budget.
    pub fn with_clock(
        config: RedisStoreConfig,
        hasher: KeyHasher,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(config.url.as_str())
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        let now = clock.now();
        Ok(Self {
            client,
            conn: tokio::sync::Mutex::new(None),
            cache: Mutex::new(Caches {
                known: HashMap::new(),
                unknown: HashMap::new(),
                tokens: f64::from(config.miss_burst),
                refilled: now,
            }),
            config,
            hasher,
            clock,
            lookups: AtomicU64::new(0),
        })
    }

    /// How many key lookups this store sent to Redis so far.
    pub fn redis_lookups(&self) -> u64 {
        self.lookups.load(Ordering::Relaxed)
    }

    /// Forgets every cached key and unknown id (the next lookups ask Redis).
    pub fn clear_cache(&self) {
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        c.known.clear();
        c.unknown.clear();
    }

    fn key(&self, id: &str) -> String {
        format!("{}:key:{id}", self.config.prefix)
    }

    fn ids(&self) -> String {
        format!("{}:ids", self.config.prefix)
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms.max(1))
    }

    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let cfg = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout()))
            .set_response_timeout(Some(self.timeout()))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = tokio::time::timeout(
            self.timeout() * 2,
            ConnectionManager::new_with_config(self.client.clone(), cfg),
        )
        .await
        .map_err(|_| StoreError::Redis("connection timed out".into()))?
        .map_err(|e| StoreError::Redis(format!("connection failed: {e}")))?;
        *guard = Some(conn.clone());
        Ok(conn)
    }

    async fn fetch(&self, id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let mut conn = self.conn().await?;
        self.lookups.fetch_add(1, Ordering::Relaxed);
        let raw: Option<String> = tokio::time::timeout(self.timeout(), conn.get(self.key(id)))
            .await
            .map_err(|_| StoreError::Redis("lookup timed out".into()))?
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        raw.map(|s| parse_record(id, &s)).transpose()
    }

    async fn put(&self, record: &KeyRecord, add_id: bool) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Record {
            place: record.key_id.clone(),
            message: e.to_string(),
        })?;
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        pipe.atomic().set(self.key(&record.key_id), json).ignore();
        if add_id {
            pipe.sadd(self.ids(), &record.key_id).ignore();
        }
        tokio::time::timeout(self.timeout(), pipe.query_async::<()>(&mut conn))
            .await
            .map_err(|_| StoreError::Redis("write timed out".into()))?
            .map_err(|e| StoreError::Redis(e.to_string()))
    }

    fn remember(&self, id: &str, found: Option<&Arc<KeyEntry>>) {
        let now = self.clock.now();
        let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(e) = found {
            c.unknown.remove(id);
            let cap = self.config.cache_capacity.max(1);
            if c.known.len() >= cap && !c.known.contains_key(id) {
                let ttl = Duration::from_millis(self.config.cache_ttl_ms);
                c.known
                    .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
                if c.known.len() >= cap {
                    c.known.clear();
                }
            }
            c.known.insert(id.to_owned(), (now, e.clone()));
            return;
        }
        c.known.remove(id);
        let cap = self.config.negative_capacity;
        if cap == 0 {
            return;
        }
        if c.unknown.len() >= cap && !c.unknown.contains_key(id) {
            let ttl = Duration::from_millis(self.config.negative_ttl_ms);
            c.unknown
                .retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if c.unknown.len() >= cap {
                // Full of live entries: drop an arbitrary one (the lookup budget still bounds
                // what Redis sees).
                if let Some(k) = c.unknown.keys().next().cloned() {
                    c.unknown.remove(&k);
                }
            }
        }
        c.unknown.insert(id.to_owned(), now);
    }
}

fn parse_record(id: &str, s: &str) -> Result<KeyRecord, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Record {
        place: format!("redis key {id}"),
        message: super::json_error(&e),
    })
}

enum Cached {
    Fresh(Arc<KeyEntry>),
    Unknown,
    /// Known before (stale): refresh without spending the budget.
    Stale,
    Miss,
    Throttled,
}

#[async_trait]
impl KeyStore for RedisKeyStore {
    async fn lookup(&self, key_id: &str) -> Result<Lookup, StoreError> {
        let state = {
            let now = self.clock.now();
            let mut c = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
            let ttl = Duration::from_millis(self.config.cache_ttl_ms);
            let neg_ttl = Duration::from_millis(self.config.negative_ttl_ms);
            if let Some((at, e)) = c.known.get(key_id) {
                if now.saturating_duration_since(*at) < ttl {
                    Cached::Fresh(e.clone())
                } else {
                    Cached::Stale
                }
            } else if c
                .unknown
                .get(key_id)
                .is_some_and(|at| now.saturating_duration_since(*at) < neg_ttl)
            {
                Cached::Unknown
            } else {
                let elapsed = now.saturating_duration_since(c.refilled).as_secs_f64();
                c.refilled = now;
                c.tokens = (c.tokens + elapsed * f64::from(self.config.misses_per_second))
                    .min(f64::from(self.config.miss_burst));
                if c.tokens >= 1.0 {
                    c.tokens -= 1.0;
                    Cached::Miss
                } else {
                    Cached::Throttled
                }
            }
        };
        match state {
            Cached::Fresh(e) => Ok(Lookup::Found(e)),
            Cached::Unknown => Ok(Lookup::NotFound),
            Cached::Throttled => Ok(Lookup::Throttled),
            Cached::Stale | Cached::Miss => {
                if let Some(record) = self.fetch(key_id).await? {
                    let entry = Arc::new(KeyEntry::new(record)?);
                    self.remember(key_id, Some(&entry));
                    Ok(Lookup::Found(entry))
                } else {
                    self.remember(key_id, None);
                    Ok(Lookup::NotFound)
                }
            }
        }
    }
}

#[async_trait]
impl KeyAdmin for RedisKeyStore {
    async fn create(
        &self,
        principal: PrincipalSpec,
        expires_at: Option<SystemTime>,
    ) -> Result<(Secret, KeyRecord), StoreError> {
        let (key, record) = new_record(principal, expires_at, &self.hasher)?;
        self.put(&record, true).await?;
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .unknown
            .remove(&record.key_id);
        Ok((key, record))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let mut conn = self.conn().await?;
        let mut ids: Vec<String> = tokio::time::timeout(self.timeout(), conn.smembers(self.ids()))
            .await
            .map_err(|_| StoreError::Redis("list timed out".into()))?
            .map_err(|e| StoreError::Redis(e.to_string()))?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let keys: Vec<String> = chunk.iter().map(|id| self.key(id)).collect();
            let raws: Vec<Option<String>> = tokio::time::timeout(self.timeout(), conn.mget(keys))
                .await
                .map_err(|_| StoreError::Redis("list timed out".into()))?
                .map_err(|e| StoreError::Redis(e.to_string()))?;
            for (id, raw) in chunk.iter().zip(raws) {
                if let Some(raw) = raw {
                    out.push(parse_record(id, &raw)?);
                }
            }
        }
        Ok(out)
    }

    async fn revoke(&self, key_id: &str) -> Result<(), StoreError> {
        let mut record = self.fetch(key_id).await?.ok_or(StoreError::NotFound)?;
        record.revoked = true;
        self.put(&record, false).await?;
        let entry = Arc::new(KeyEntry::new(record)?);
        self.remember(key_id, Some(&entry));
        Ok(())
    }
}
