use std::time::Duration;

use async_trait::async_trait;
use infergate_redis::{Redis, RedisConfig};

use super::{BucketKind, BucketState, Charge, Reservation, Store, StoreError};

/// Checks every bucket of a request and, only if all fit, charges them all: one atomic script.
/// Time comes from the Redis server (`TIME`), so replicas with skewed clocks agree.
/// Per bucket, ARGV holds: kind (`r` rate, `d` daily), limit, period (µs), amount.
/// Returns {admitted, denied_index (1-based, 0 if none), retry_after_us (-1: never),
///          then per bucket: remaining, reset_us}.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local day = math.floor(tonumber(t[1]) / 86400)
local DAYUS = 86400000000
local n = #KEYS
local new = {}
local ttls = {}
local out = {}
local pre = {}
local denied = 0
local retry = 0
for i = 1, n do
  local kind = ARGV[(i - 1) * 4 + 1]
  local limit = tonumber(ARGV[(i - 1) * 4 + 2])
  local period = tonumber(ARGV[(i - 1) * 4 + 3])
  local amount = tonumber(ARGV[(i - 1) * 4 + 4])
  if kind == 'r' then
    local tat = new[KEYS[i]] or tonumber(redis.call('GET', KEYS[i]) or '0')
    local cost = math.floor(amount * period / limit)
    local base = math.max(tat, now)
    local nt = base + cost
    local ok = amount <= limit and cost <= period and (nt - now) <= period
    local function state(dst, cur)
      local used = math.max(cur - now, 0)
      local rem = 0
      if used < period then rem = math.min(math.floor((period - used) * limit / period), limit) end
      dst[#dst + 1] = rem
      dst[#dst + 1] = used
    end
    state(pre, tat)
    state(out, ok and nt or tat)
    if ok then
      new[KEYS[i]] = nt
      ttls[KEYS[i]] = math.max(math.ceil((nt - now) / 1000), 1000)
    elseif denied == 0 then
      denied = i
      if amount > limit or cost > period then retry = -1 else retry = nt - now - period end
    end
  else
    local k = KEYS[i] .. ':' .. day
    local used = new[k] or tonumber(redis.call('GET', k) or '0')
    local ok = used + amount <= limit
    local cur = ok and (used + amount) or used
    pre[#pre + 1] = math.max(limit - used, 0)
    pre[#pre + 1] = DAYUS - (now % DAYUS)
    out[#out + 1] = math.max(limit - cur, 0)
    out[#out + 1] = DAYUS - (now % DAYUS)
    if ok then
      new[k] = used + amount
      ttls[k] = 2 * 86400000
    elseif denied == 0 then
      denied = i
      if amount > limit then retry = -1 else retry = DAYUS - (now % DAYUS) end
    end
  end
end
if denied == 0 then
  for k, v in pairs(new) do
    redis.call('SET', k, string.format('%.0f', v), 'PX', ttls[k])
  end
end
local res = {denied == 0 and 1 or 0, denied, retry}
local states = denied == 0 and out or pre
for _, v in ipairs(states) do res[#res + 1] = v end
return res
";

/// Applies charges (positive) and refunds (negative) to every bucket of a request.
const ADJUST: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local day = math.floor(tonumber(t[1]) / 86400)
for i = 1, #KEYS do
  local kind = ARGV[(i - 1) * 4 + 1]
  local limit = tonumber(ARGV[(i - 1) * 4 + 2])
  local period = tonumber(ARGV[(i - 1) * 4 + 3])
  local delta = tonumber(ARGV[(i - 1) * 4 + 4])
  if kind == 'r' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    local nt
    if delta >= 0 then
      nt = math.max(tat, now) + math.floor(delta * period / limit)
    else
      nt = math.max(tat - math.floor(-delta * period / limit), now)
    end
    redis.call('SET', KEYS[i], string.format('%.0f', nt), 'PX', math.max(math.ceil((nt - now) / 1000), 1000))
  else
    local k = KEYS[i] .. ':' .. day
    local v = redis.call('INCRBY', k, delta)
    if v < 0 then redis.call('SET', k, 0) end
    redis.call('PEXPIRE', k, 2 * 86400000)
  end
end
return 1
";

/// Settings of a [`RedisStore`]. Its `Debug` hides a password in the URL.
///
/// With the `serde` feature (default) it deserializes from `url` and, optionally, `prefix`,
/// `timeout_ms` and `reconnect_ms`; unknown fields are errors.
#[derive(Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(from = "raw::RedisStoreConfig")
)]
pub struct RedisStoreConfig {
    /// `redis://host:port/db` (one server; ignored when `cluster` is set).
    pub url: String,
    /// The seed nodes of a Redis Cluster (empty: one server at `url`). Every script's keys
    /// share the request's hash tag, so they sit in one slot.
    pub cluster: Vec<String>,
    /// Prefix of every key (default `infergate:rl:`).
    pub prefix: String,
    /// Bound on each command (default 200 ms): past it the store has failed, and the
    /// limiter's failure mode decides.
    pub timeout: Duration,
    /// How often a missing connection is retried (default 1 s).
    pub reconnect_every: Duration,
}

impl std::fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `redis://user:password@host`: only what follows the `@` is shown.
        let url = infergate_redis::hide_password(&self.url);
        let cluster: Vec<String> = self
            .cluster
            .iter()
            .map(|u| infergate_redis::hide_password(u))
            .collect();
        f.debug_struct("RedisStoreConfig")
            .field("url", &url)
            .field("cluster", &cluster)
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("reconnect_every", &self.reconnect_every)
            .finish()
    }
}

#[cfg(feature = "serde")]
mod raw {
    use std::time::Duration;

    /// The written shape: durations in milliseconds.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RedisStoreConfig {
        #[serde(default)]
        url: String,
        #[serde(default)]
        cluster: Vec<String>,
        #[serde(default)]
        prefix: Option<String>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        #[serde(default)]
        reconnect_ms: Option<u64>,
    }

    impl From<RedisStoreConfig> for super::RedisStoreConfig {
        fn from(r: RedisStoreConfig) -> Self {
            let mut c = Self::new(r.url);
            c.cluster = r.cluster;
            if let Some(p) = r.prefix {
                c.prefix = p;
            }
            if let Some(ms) = r.timeout_ms {
                c.timeout = Duration::from_millis(ms);
            }
            if let Some(ms) = r.reconnect_ms {
                c.reconnect_every = Duration::from_millis(ms);
            }
            c
        }
    }
}

impl RedisStoreConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            cluster: Vec::new(),
            prefix: "infergate:rl:".into(),
            timeout: Duration::from_millis(200),
            reconnect_every: Duration::from_secs(1),
        }
    }

    /// Defaults for a Redis Cluster with these seed nodes.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            cluster: nodes.into_iter().map(Into::into).collect(),
            ..Self::new("")
        }
    }

    fn redis(&self) -> RedisConfig {
        let c = if self.cluster.is_empty() {
            RedisConfig::new(self.url.clone())
        } else {
            RedisConfig::cluster(self.cluster.clone())
        };
        c.timeout(self.timeout)
            .reconnect_every(self.reconnect_every)
    }
}

/// Bucket state in Redis, shared by every replica. One atomic Lua script checks and reserves
/// every bucket of a request all-or-nothing; another applies charges and refunds.
///
/// The connection is a redis-rs `ConnectionManager`, which reconnects by itself; when Redis is
/// down at start-up, connecting is retried at most every `reconnect_every` on use. A request
/// made while Redis is unreachable fails fast with a [`StoreError`] (bounded by `timeout`).
pub struct RedisStore {
    redis: Redis,
    config: RedisStoreConfig,
    reserve: redis::Script,
    adjust: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: not printed.
        f.debug_struct("RedisStore")
            .field("prefix", &self.config.prefix)
            .field("cluster", &!self.config.cluster.is_empty())
            .field("timeout", &self.config.timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `config` (connects lazily; one server or a cluster).
    pub fn new(config: RedisStoreConfig) -> Result<Self, StoreError> {
        if config.prefix.contains(['{', '}']) {
            return Err(StoreError(
                "the key prefix must not contain braces (they choose the cluster slot)".into(),
            ));
        }
        let redis = Redis::new(config.redis())
            .map_err(|e| StoreError(format!("invalid Redis URL: {e}")))?;
        Ok(Self {
            redis,
            config,
            reserve: redis::Script::new(RESERVE),
            adjust: redis::Script::new(ADJUST),
        })
    }

    fn invocation<'a>(
        &self,
        script: &'a redis::Script,
        charges: &[Charge],
    ) -> redis::ScriptInvocation<'a> {
        let mut inv = script.prepare_invoke();
        for c in charges {
            // A hash tag keeps a request's keys in one cluster slot when they share a scope.
            inv.key(format!("{}{}", self.config.prefix, c.key));
            let (kind, period) = match c.kind {
                BucketKind::Rate { .. } => ("r", c.kind.period_micros()),
                BucketKind::Daily { .. } => ("d", crate::gcra::DAY),
            };
            inv.arg(kind).arg(c.kind.limit()).arg(period).arg(c.amount);
        }
        inv
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &redis::Script,
        charges: &[Charge],
    ) -> Result<T, StoreError> {
        let inv = self.invocation(script, charges);
        self.redis
            .invoke(&inv)
            .await
            .map_err(|e| StoreError(e.to_string()))
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn reserve(&self, charges: &[Charge]) -> Result<Reservation, StoreError> {
        let v: Vec<i64> = self.run(&self.reserve, charges).await?;
        if v.len() != 3 + 2 * charges.len() {
            return Err(StoreError(
                "unexpected reply from the reserve script".into(),
            ));
        }
        let admitted = v[0] == 1;
        let states = charges
            .iter()
            .enumerate()
            .map(|(i, c)| BucketState {
                limit: c.kind.limit(),
                remaining: v[3 + 2 * i].max(0).unsigned_abs(),
                reset: Duration::from_micros(v[4 + 2 * i].max(0).unsigned_abs()),
            })
            .collect();
        Ok(Reservation {
            admitted,
            denied: (!admitted).then(|| (v[1] - 1).max(0).unsigned_abs() as usize),
            retry_after: (!admitted && v[2] >= 0)
                .then(|| Duration::from_micros(v[2].unsigned_abs())),
            states,
        })
    }

    async fn adjust(&self, adjustments: &[Charge]) -> Result<(), StoreError> {
        let adjustments: Vec<Charge> = adjustments
            .iter()
            .filter(|c| c.amount != 0)
            .cloned()
            .collect();
        if adjustments.is_empty() {
            return Ok(());
        }
        let _: i64 = self.run(&self.adjust, &adjustments).await?;
        Ok(())
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    #[test]
    fn the_config_deserializes_and_hides_the_password() {
        let c: RedisStoreConfig =
            serde_json::from_str(r#"{"url":"redis://u:hunter2@127.0.0.1:6379/0","timeout_ms":50}"#)
                .unwrap();
        assert_eq!(c.timeout, Duration::from_millis(50));
        assert_eq!(c.prefix, "infergate:rl:");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("127.0.0.1:6379"),
            "{shown}"
        );
        assert!(serde_json::from_str::<RedisStoreConfig>(r#"{"url":"x","timeout":1}"#).is_err());
    }
}
