use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{BucketKind, BucketState, Charge, Reservation, Store, StoreError};
use crate::gcra::{DayWindow, Denied, Gcra, Micros};

/// Bucket state in this process: a sharded map of GCRA arrival times and day windows.
///
/// Reservations lock the shards they touch in index order, so a request's buckets are checked
/// and charged atomically without a global lock.
///
/// The number of keys is bounded ([`with_max_keys`](Self::with_max_keys), default 1,048,576),
/// however many distinct keys clients make up. Each shard keeps its keys in the order they
/// were last written; every write drops a couple of the oldest if they carry no information
/// any more (a bucket full again, a past day), and a shard at its bound evicts its least
/// recently written key. Both are O(1) amortised: nothing scans a shard on the request path.
/// An evicted key that comes back starts with a full bucket.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<Shard>>,
    base: Instant,
    max_keys_per_shard: usize,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Tat(Micros),
    Day(DayWindow),
}

impl Entry {
    /// Whether the entry says nothing a fresh one would not: a bucket full again, a day
    /// window of a past day or with nothing used.
    fn is_spent(self, now: Micros, today: u64) -> bool {
        match self {
            Self::Tat(t) => t <= now,
            Self::Day(d) => d.day != today || d.used == 0,
        }
    }
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    /// The write that put it last in the shard's order.
    stamp: u64,
}

/// One shard: its map and its keys in the order of their last write. A key written again is
/// pushed again; its earlier place in `order` goes stale (its stamp no longer matches) and is
/// skipped when reached, or dropped when `order` is compacted.
#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Arc<str>, Slot>,
    order: VecDeque<(Arc<str>, u64)>,
    next_stamp: u64,
}

/// Spent entries dropped from the front of a shard's order per write.
const SWEEP_PER_WRITE: usize = 2;

impl Shard {
    fn get(&self, key: &str) -> Option<Entry> {
        self.map.get(key).map(|s| s.entry)
    }

    fn is_current(&self, key: &str, stamp: u64) -> bool {
        self.map.get(key).is_some_and(|s| s.stamp == stamp)
    }

    /// Writes `entry` under `key`, keeping the shard within `max` keys.
    fn put(&mut self, key: &str, entry: Entry, max: usize, now: Micros, today: u64) {
        let stamp = self.next_stamp;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        let key: Arc<str> = if let Some((k, _)) = self.map.get_key_value(key) {
            k.clone()
        } else {
            // A new key: make room first (the least recently written goes).
            while self.map.len() >= max.max(1) {
                if !self.evict_front(None) {
                    break;
                }
            }
            Arc::from(key)
        };
        self.map.insert(key.clone(), Slot { entry, stamp });
        self.order.push_back((key, stamp));
        // Drop what carries no information any more, a little per write.
        for _ in 0..SWEEP_PER_WRITE {
            if !self.evict_front(Some((now, today))) {
                break;
            }
        }
        // Stale places (keys written again) are skipped lazily; when they outnumber the live
        // ones, compact: O(len) once per len writes.
        if self.order.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.order
                .retain(|(k, stamp)| map.get(&**k).is_some_and(|s| s.stamp == *stamp));
        }
    }

    /// Removes the first live key of the order (skipping stale places): any key when `spent`
    /// is `None`, else only if it is spent at `(now, today)`. Returns whether it removed one.
    fn evict_front(&mut self, spent: Option<(Micros, u64)>) -> bool {
        while let Some((key, stamp)) = self.order.front() {
            if !self.is_current(key, *stamp) {
                self.order.pop_front();
                continue;
            }
            if let Some((now, today)) = spent
                && !self
                    .map
                    .get(&**key)
                    .is_some_and(|s| s.entry.is_spent(now, today))
            {
                return false;
            }
            if let Some((key, _)) = self.order.pop_front() {
                self.map.remove(&*key);
            }
            return true;
        }
        false
    }
}

const SHARDS: usize = 16;

/// The default bound on the keys of a [`MemoryStore`].
pub const DEFAULT_MAX_KEYS: usize = 1 << 20;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store holding at most [`DEFAULT_MAX_KEYS`] keys.
    pub fn new() -> Self {
        Self::with_max_keys(DEFAULT_MAX_KEYS)
    }

    /// An empty store holding at most about `max_keys` keys (rounded up to a multiple of its
    /// 16 shards; at least one per shard).
    pub fn with_max_keys(max_keys: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            base: Instant::now(),
            max_keys_per_shard: max_keys.div_ceil(SHARDS).max(1),
        }
    }

    /// The number of keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| Self::lock(s).map.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound on the number of keys.
    pub fn max_keys(&self) -> usize {
        self.max_keys_per_shard * SHARDS
    }

    fn lock(shard: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
        shard
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now(&self) -> Micros {
        // Offset so that "0" (a fresh bucket) is always in the past.
        u64::try_from(self.base.elapsed().as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(crate::gcra::DAY)
    }

    fn wall() -> Micros {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }

    fn shard_of(key: &str) -> usize {
        (xxhash_rust::xxh3::xxh3_64(key.as_bytes()) % SHARDS as u64) as usize
    }

    fn locked_apply<R>(
        &self,
        keys: &[&str],
        f: impl FnOnce(&mut [&mut Shard], &[usize]) -> R,
    ) -> R {
        let idx: Vec<usize> = keys.iter().map(|k| Self::shard_of(k)).collect();
        let mut order: Vec<usize> = idx.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<_> = order.iter().map(|&i| Self::lock(&self.shards[i])).collect();
        // Position of each key's shard among the guards.
        let pos: Vec<usize> = idx
            .iter()
            .map(|i| order.binary_search(i).unwrap_or(0))
            .collect();
        let mut shards: Vec<&mut Shard> = guards.iter_mut().map(|g| &mut **g).collect();
        f(&mut shards, &pos)
    }
}

fn micros(d: Micros) -> Duration {
    Duration::from_micros(d)
}

#[async_trait]
impl Store for MemoryStore {
    async fn reserve(&self, charges: &[Charge]) -> Result<Reservation, StoreError> {
        Ok(self.reserve_sync(charges))
    }

    async fn adjust(&self, adjustments: &[Charge]) -> Result<(), StoreError> {
        self.adjust_sync(adjustments);
        Ok(())
    }

    fn adjust_now(&self, adjustments: &[Charge]) -> bool {
        self.adjust_sync(adjustments);
        true
    }
}

impl MemoryStore {
    /// [`Store::reserve`] without the async wrapper.
    pub fn reserve_sync(&self, charges: &[Charge]) -> Reservation {
        let now = self.now();
        let wall = Self::wall();
        let keys: Vec<&str> = charges.iter().map(|c| c.key.as_str()).collect();
        self.locked_apply(&keys, |maps, pos| {
            let mut new_entries = Vec::with_capacity(charges.len());
            let mut states = Vec::with_capacity(charges.len());
            let mut before = Vec::with_capacity(charges.len());
            let mut denied = None;
            let mut retry_after = None;
            for (i, c) in charges.iter().enumerate() {
                let map = &maps[pos[i]];
                let n = c.amount.max(0).unsigned_abs();
                let (res, state) = match c.kind {
                    BucketKind::Rate { limit, .. } => {
                        let g = Gcra {
                            limit,
                            period: c.kind.period_micros(),
                        };
                        // A key charged twice in one request sees its first charge.
                        let tat = new_entries
                            .iter()
                            .rev()
                            .find_map(|(k, e): &(usize, Entry)| match e {
                                Entry::Tat(t) if keys[*k] == c.key => Some(*t),
                                _ => None,
                            })
                            .or_else(|| match map.get(&c.key) {
                                Some(Entry::Tat(t)) => Some(t),
                                _ => None,
                            })
                            .unwrap_or(0);
                        before.push(BucketState {
                            limit,
                            remaining: g.remaining(tat, now),
                            reset: micros(g.reset(tat, now)),
                        });
                        match g.reserve(tat, now, n) {
                            Ok(t) => (
                                Ok(Entry::Tat(t)),
                                BucketState {
                                    limit,
                                    remaining: g.remaining(t, now),
                                    reset: micros(g.reset(t, now)),
                                },
                            ),
                            Err(d) => (
                                Err(d),
                                BucketState {
                                    limit,
                                    remaining: g.remaining(tat, now),
                                    reset: micros(g.reset(tat, now)),
                                },
                            ),
                        }
                    }
                    BucketKind::Daily { limit } => {
                        let w = match map.get(&c.key) {
                            Some(Entry::Day(w)) => w,
                            _ => DayWindow::default(),
                        };
                        let reset = micros(crate::gcra::DAY - wall % crate::gcra::DAY);
                        before.push(BucketState {
                            limit,
                            remaining: limit.saturating_sub(w.current(wall).used),
                            reset,
                        });
                        match w.reserve(limit, wall, n) {
                            Ok(w2) => (
                                Ok(Entry::Day(w2)),
                                BucketState {
                                    limit,
                                    remaining: limit.saturating_sub(w2.used),
                                    reset,
                                },
                            ),
                            Err(d) => (
                                Err(d),
                                BucketState {
                                    limit,
                                    remaining: limit.saturating_sub(w.current(wall).used),
                                    reset,
                                },
                            ),
                        }
                    }
                };
                states.push(state);
                match res {
                    Ok(e) => new_entries.push((i, e)),
                    Err(d) => {
                        if denied.is_none() {
                            denied = Some(i);
                            retry_after = match d {
                                Denied::RetryAfter(us) => Some(micros(us)),
                                Denied::TooLarge => None,
                            };
                        }
                    }
                }
            }
            let admitted = denied.is_none();
            // A denied request changed nothing: report the buckets as they are.
            let states = if admitted { states } else { before };
            if admitted {
                let today = wall / crate::gcra::DAY;
                for (i, e) in new_entries {
                    maps[pos[i]].put(&charges[i].key, e, self.max_keys_per_shard, now, today);
                }
            }
            Reservation {
                admitted,
                denied,
                retry_after,
                states,
            }
        })
    }

    /// [`Store::adjust`] without the async wrapper.
    pub fn adjust_sync(&self, adjustments: &[Charge]) {
        let now = self.now();
        let wall = Self::wall();
        let keys: Vec<&str> = adjustments.iter().map(|c| c.key.as_str()).collect();
        let today = wall / crate::gcra::DAY;
        let max = self.max_keys_per_shard;
        self.locked_apply(&keys, |maps, pos| {
            for (i, c) in adjustments.iter().enumerate() {
                if c.amount == 0 {
                    continue;
                }
                let shard = &mut *maps[pos[i]];
                let entry = match c.kind {
                    BucketKind::Rate { limit, .. } => {
                        let g = Gcra {
                            limit,
                            period: c.kind.period_micros(),
                        };
                        let tat = match shard.get(&c.key) {
                            Some(Entry::Tat(t)) => t,
                            _ => 0,
                        };
                        Entry::Tat(g.adjust(tat, now, c.amount))
                    }
                    BucketKind::Daily { .. } => {
                        let w = match shard.get(&c.key) {
                            Some(Entry::Day(w)) => w,
                            _ => DayWindow::default(),
                        };
                        Entry::Day(w.adjust(wall, c.amount))
                    }
                };
                shard.put(&c.key, entry, max, now, today);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(key: &str, limit: u64, amount: i64) -> Charge {
        Charge {
            key: key.into(),
            kind: BucketKind::Rate {
                limit,
                period: Duration::from_secs(60),
            },
            amount,
        }
    }

    #[test]
    fn all_or_nothing_across_buckets() {
        let s = MemoryStore::new();
        let r = s.reserve_sync(&[rate("req", 10, 1), rate("tok", 100, 80)]);
        assert!(r.admitted);
        // The token bucket denies: the request bucket must not be charged.
        let r = s.reserve_sync(&[rate("req", 10, 1), rate("tok", 100, 80)]);
        assert!(!r.admitted);
        assert_eq!(r.denied, Some(1));
        assert!(r.retry_after.is_some());
        assert_eq!(r.states[0].remaining, 9, "request bucket untouched");
        // A request larger than the bucket never fits.
        let r = s.reserve_sync(&[rate("tok", 100, 101)]);
        assert_eq!(r.retry_after, None);
        // Refund and retry.
        s.adjust_sync(&[rate("tok", 100, -80)]);
        assert!(s.reserve_sync(&[rate("tok", 100, 80)]).admitted);
    }

    fn daily(key: &str, limit: u64, amount: i64) -> Charge {
        Charge {
            key: key.into(),
            kind: BucketKind::Daily { limit },
            amount,
        }
    }

    fn order_len(s: &MemoryStore) -> usize {
        s.shards
            .iter()
            .map(|m| MemoryStore::lock(m).order.len())
            .sum()
    }

    #[test]
    fn a_million_distinct_keys_stay_within_the_bound() {
        let s = MemoryStore::with_max_keys(4096);
        assert_eq!(s.max_keys(), 4096);
        // A bucket that stays busy: its state must survive as long as it is written.
        let hot = Charge {
            key: "hot".into(),
            // A year's period: it refills by nothing measurable while the test runs.
            kind: BucketKind::Rate {
                limit: 1_000_000,
                period: Duration::from_secs(365 * 86_400),
            },
            amount: 1,
        };
        for i in 0..1_000_000u32 {
            let key = format!("churn-{i}");
            let c = if i % 2 == 0 {
                rate(&key, 100, 90)
            } else {
                daily(&key, 100, 90)
            };
            assert!(s.reserve_sync(&[c]).admitted);
            if i % 64 == 0 {
                assert!(s.reserve_sync(std::slice::from_ref(&hot)).admitted);
                s.adjust_sync(&[rate(&key, 100, -10)]);
            }
            if i % 100_000 == 0 {
                assert!(s.len() <= s.max_keys(), "{i}: {} keys", s.len());
                assert!(order_len(&s) <= 2 * s.max_keys() + SHARDS * 65);
            }
        }
        assert!(s.len() <= s.max_keys(), "{} keys", s.len());
        assert!(order_len(&s) <= 2 * s.max_keys() + SHARDS * 65);
        // The hot key kept its state: 1,000,000 / 64 reservations of 1 are visible.
        let r = s.reserve_sync(&[rate("hot", 1_000_000, 1)]);
        assert!(
            r.states[0].remaining < 1_000_000 - 15_000,
            "{:?}",
            r.states[0]
        );
        // A recent key is still there and still limited.
        let r = s.reserve_sync(&[rate("churn-999998", 100, 90)]);
        assert!(!r.admitted);
        // Lookups keep working for anything new.
        assert!(s.reserve_sync(&[rate("fresh", 100, 90)]).admitted);
    }

    #[test]
    fn spent_buckets_are_dropped_as_the_store_is_written() {
        let s = MemoryStore::new();
        // Zero-cost charges leave buckets that are full at once: they carry nothing.
        for i in 0..10_000 {
            s.reserve_sync(&[rate(&format!("k{i}"), 100, 0)]);
        }
        assert!(s.len() <= 2 * SHARDS, "{} keys kept", s.len());
        // Live buckets stay.
        for i in 0..100 {
            s.reserve_sync(&[rate(&format!("live{i}"), 100, 50)]);
        }
        for i in 0..100 {
            let r = s.reserve_sync(&[rate(&format!("live{i}"), 100, 0)]);
            assert_eq!(r.states[0].remaining, 50);
        }
    }

    #[test]
    fn a_tiny_bound_still_serves() {
        let s = MemoryStore::with_max_keys(0);
        assert_eq!(s.max_keys(), SHARDS);
        for i in 0..1000 {
            let r = s.reserve_sync(&[rate(&format!("a{i}"), 10, 1), rate(&format!("b{i}"), 10, 1)]);
            assert!(r.admitted);
        }
        assert!(s.len() <= SHARDS);
    }

    #[test]
    fn concurrent_reservations_never_overshoot() {
        let s = std::sync::Arc::new(MemoryStore::new());
        let admitted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                let admitted = admitted.clone();
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if s.reserve_sync(&[rate("k", 10_000, 7)]).admitted {
                            admitted.fetch_add(7, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let total = admitted.load(std::sync::atomic::Ordering::Relaxed);
        // 10k burst plus whatever refilled while the threads ran (a few ms: at most a few
        // hundred tokens on any machine this test runs on).
        assert!((10_000 - 7..=11_000).contains(&total), "{total}");
    }
}
