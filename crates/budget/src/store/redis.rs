use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use infergate_redis::{Redis, RedisConfig};

use super::{BudgetStore, Hold, StoreError, Verdict};
use crate::Span;

/// Checks every hold of one hash slot and, only if each has room, charges them all.
/// Per key, ARGV holds: kind (`f` fixed period, `s` sliding window), limit, amount, ttl (ms),
/// slot, slots. Returns {admitted, refused (1-based, 0 if none), then each key's spend}.
const RESERVE: &str = r"
local n = #KEYS
local used = {}
local refused = 0
for i = 1, n do
  local b = (i - 1) * 6
  local kind = ARGV[b + 1]
  local limit = tonumber(ARGV[b + 2])
  local amount = tonumber(ARGV[b + 3])
  local u = 0
  if kind == 'f' then
    u = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    local first = tonumber(ARGV[b + 5]) - tonumber(ARGV[b + 6]) + 1
    local all = redis.call('HGETALL', KEYS[i])
    for j = 1, #all, 2 do
      if tonumber(all[j]) < first then
        redis.call('HDEL', KEYS[i], all[j])
      else
        u = u + tonumber(all[j + 1])
      end
    end
  end
  used[i] = u
  if refused == 0 and u + amount > limit then refused = i end
end
if refused == 0 then
  for i = 1, n do
    local b = (i - 1) * 6
    if ARGV[b + 1] == 'f' then
      redis.call('INCRBY', KEYS[i], ARGV[b + 3])
    else
      redis.call('HINCRBY', KEYS[i], ARGV[b + 5], ARGV[b + 3])
    end
    redis.call('PEXPIRE', KEYS[i], ARGV[b + 4])
    used[i] = used[i] + tonumber(ARGV[b + 3])
  end
end
local res = {refused == 0 and 1 or 0, refused}
for i = 1, n do res[#res + 1] = used[i] end
return res
";

/// Adds each delta (negative: gives back; a spend never goes below zero).
/// Per key, ARGV holds: kind, delta, ttl (ms), slot.
const ADJUST: &str = r"
for i = 1, #KEYS do
  local b = (i - 1) * 4
  if ARGV[b + 1] == 'f' then
    if redis.call('INCRBY', KEYS[i], ARGV[b + 2]) < 0 then redis.call('SET', KEYS[i], 0) end
  else
    if redis.call('HINCRBY', KEYS[i], ARGV[b + 4], ARGV[b + 2]) < 0 then
      redis.call('HSET', KEYS[i], ARGV[b + 4], 0)
    end
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[b + 3])
end
return 1
";

/// Each key's spend. Per key, ARGV holds: kind, slot, slots.
const SPENT: &str = r"
local res = {}
for i = 1, #KEYS do
  local b = (i - 1) * 3
  local u = 0
  if ARGV[b + 1] == 'f' then
    u = tonumber(redis.call('GET', KEYS[i]) or '0')
  else
    local first = tonumber(ARGV[b + 2]) - tonumber(ARGV[b + 3]) + 1
    local all = redis.call('HGETALL', KEYS[i])
    for j = 1, #all, 2 do
      if tonumber(all[j]) >= first then u = u + tonumber(all[j + 1]) end
    end
  end
  res[i] = u
end
return res
";

/// Budget spend in Redis or a Redis Cluster, shared by every replica.
///
/// Every key of one subject carries the same hash tag (`{…}`), so one subject's budgets sit in
/// one cluster slot and one atomic script reserves them. A request touching subjects in several
/// slots (a principal, its team, a global budget) is reserved slot by slot; if one refuses or
/// fails, what the others reserved is given back — all or nothing, by compensation. On one
/// server every hold of a request goes in one script. A `CROSSSLOT` or any other error is a
/// [`StoreError`], which the limiter's failure mode handles: never a silent local fallback.
///
/// Bounds (see `docs/budgets.md`): an adjustment that fails leaves the reservation charged
/// (never an under-charge); a master that dies before replicating a write loses what it
/// acknowledged in that window.
pub struct RedisStore {
    redis: Redis,
    prefix: String,
    reserve: redis::Script,
    adjust: redis::Script,
    spent: redis::Script,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("redis", &self.redis)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store on `config` (one server or a cluster; connects on first use), keys prefixed
    /// `infergate:`.
    pub fn new(config: RedisConfig) -> Result<Self, StoreError> {
        Ok(Self {
            redis: Redis::new(config).map_err(|e| StoreError::Unavailable(e.to_string()))?,
            prefix: "infergate:".into(),
            reserve: redis::Script::new(RESERVE),
            adjust: redis::Script::new(ADJUST),
            spent: redis::Script::new(SPENT),
        })
    }

    /// Another key prefix (no braces: they would choose the cluster slot).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Result<Self, StoreError> {
        let prefix = prefix.into();
        if prefix.contains(['{', '}']) {
            return Err(StoreError::Unavailable(
                "the key prefix must not contain braces (they choose the cluster slot)".into(),
            ));
        }
        self.prefix = prefix;
        Ok(self)
    }

    fn key(&self, hold: &Hold) -> String {
        format!("{}{}", self.prefix, hold.key)
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        inv: &redis::ScriptInvocation<'_>,
    ) -> Result<T, StoreError> {
        self.redis
            .invoke(inv)
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))
    }

    /// Holds grouped by hash slot (by hash tag on a cluster; one group on one server).
    fn groups<'h>(&self, holds: &'h [Hold]) -> Vec<Vec<(usize, &'h Hold)>> {
        if !self.redis.config().is_cluster() {
            return vec![holds.iter().enumerate().collect()];
        }
        let mut by_tag: BTreeMap<&str, Vec<(usize, &Hold)>> = BTreeMap::new();
        for (i, h) in holds.iter().enumerate() {
            by_tag.entry(hash_tag(&h.key)).or_default().push((i, h));
        }
        by_tag.into_values().collect()
    }

    async fn reserve_group(&self, group: &[(usize, &Hold)]) -> Result<Vec<i64>, StoreError> {
        let mut inv = self.reserve.prepare_invoke();
        let now = SystemTime::now();
        for (_, h) in group {
            inv.key(self.key(h));
            let (kind, slot, slots) = shape(&h.span);
            inv.arg(kind)
                .arg(h.limit)
                .arg(h.amount)
                .arg(ttl_ms(&h.span, now))
                .arg(slot)
                .arg(slots);
        }
        let v: Vec<i64> = self.run(&inv).await?;
        if v.len() != 2 + group.len() {
            return Err(StoreError::Unavailable(
                "unexpected reply from the reserve script".into(),
            ));
        }
        Ok(v)
    }

    async fn adjust_holds(&self, adjustments: &[(Hold, i64)]) -> Result<(), StoreError> {
        let holds: Vec<Hold> = adjustments.iter().map(|(h, _)| h.clone()).collect();
        let now = SystemTime::now();
        for group in self.groups(&holds) {
            let mut inv = self.adjust.prepare_invoke();
            for (i, h) in &group {
                inv.key(self.key(h));
                let (kind, slot, _) = shape(&h.span);
                inv.arg(kind)
                    .arg(adjustments[*i].1)
                    .arg(ttl_ms(&h.span, now))
                    .arg(slot);
            }
            let _: i64 = self.run(&inv).await?;
        }
        Ok(())
    }
}

/// The hash tag of a key (the text in its first `{…}`), or the whole key.
fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|a| key[a + 1..].find('}').map(|b| &key[a + 1..a + 1 + b]))
        .filter(|t| !t.is_empty())
        .unwrap_or(key)
}

fn shape(span: &Span) -> (&'static str, u64, u64) {
    match span {
        Span::Fixed { .. } => ("f", 0, 0),
        Span::Sliding { slot, slots, .. } => ("s", *slot, u64::from(*slots)),
    }
}

/// How long a key must live: to its period's end, or its window, plus a margin for late
/// adjustments.
fn ttl_ms(span: &Span, now: SystemTime) -> u64 {
    let rest = match span {
        Span::Fixed { ends, .. } => ends.duration_since(now).unwrap_or_default(),
        Span::Sliding {
            slots, slot_len, ..
        } => *slot_len * (*slots + 1),
    };
    u64::try_from((rest + Duration::from_secs(3600)).as_millis()).unwrap_or(u64::MAX)
}

#[async_trait]
impl BudgetStore for RedisStore {
    async fn reserve(&self, holds: &[Hold]) -> Result<Verdict, StoreError> {
        let mut spent = vec![0u64; holds.len()];
        let mut done: Vec<(Hold, i64)> = Vec::new();
        for group in self.groups(holds) {
            let v = match self.reserve_group(&group).await {
                Ok(v) => v,
                Err(e) => {
                    self.undo(&done).await;
                    return Err(e);
                }
            };
            for (k, (i, _)) in group.iter().enumerate() {
                spent[*i] = v[2 + k].max(0).unsigned_abs();
            }
            if v[0] != 1 {
                self.undo(&done).await;
                let refused = usize::try_from(v[1] - 1)
                    .ok()
                    .and_then(|k| group.get(k))
                    .map(|(i, _)| *i);
                return Ok(Verdict {
                    admitted: false,
                    spent,
                    refused,
                });
            }
            for (_, h) in &group {
                done.push(((*h).clone(), -i64::try_from(h.amount).unwrap_or(i64::MAX)));
            }
        }
        Ok(Verdict {
            admitted: true,
            spent,
            refused: None,
        })
    }

    async fn adjust(&self, adjustments: &[(Hold, i64)]) -> Result<(), StoreError> {
        let adjustments: Vec<(Hold, i64)> = adjustments
            .iter()
            .filter(|(_, d)| *d != 0)
            .cloned()
            .collect();
        if adjustments.is_empty() {
            return Ok(());
        }
        self.adjust_holds(&adjustments).await
    }

    async fn spent(&self, holds: &[Hold]) -> Result<Vec<u64>, StoreError> {
        let mut out = vec![0u64; holds.len()];
        for group in self.groups(holds) {
            let mut inv = self.spent.prepare_invoke();
            for (_, h) in &group {
                inv.key(self.key(h));
                let (kind, slot, slots) = shape(&h.span);
                inv.arg(kind).arg(slot).arg(slots);
            }
            let v: Vec<i64> = self.run(&inv).await?;
            for (k, (i, _)) in group.iter().enumerate() {
                out[*i] = v.get(k).copied().unwrap_or(0).max(0).unsigned_abs();
            }
        }
        Ok(out)
    }
}

impl RedisStore {
    /// Gives back what earlier slots reserved for a request that did not go through. If that
    /// fails too, the reservation stays charged (the safe side) and a warning says so.
    async fn undo(&self, done: &[(Hold, i64)]) {
        if done.is_empty() {
            return;
        }
        if let Err(e) = self.adjust_holds(done).await {
            tracing::warn!(processor = "budget", error = %e,
                "a partial reservation could not be given back: it stays charged");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_tags_and_prefixes() {
        assert_eq!(hash_tag("infergate:ig:budget:{abc}:daily:d1"), "abc");
        assert_eq!(hash_tag("plain"), "plain");
        assert_eq!(hash_tag("a{}b"), "a{}b");
        let s = RedisStore::new(RedisConfig::cluster(["redis://u:hunter2@127.0.0.1:7000"]))
            .expect("a store");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("127.0.0.1:7000"),
            "{shown}"
        );
        assert!(s.prefix("x{y}:").is_err());
    }
}
