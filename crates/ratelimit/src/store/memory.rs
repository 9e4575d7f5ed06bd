use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{BucketKind, BucketState, Charge, Reservation, Store, StoreError};
use crate::gcra::{DayWindow, Denied, Gcra, Micros};

/// Bucket state in this process: a sharded map of GCRA arrival times and day windows.
///
/// Reservations lock the shards they touch in index order, so a request's buckets are checked
/// and charged atomically without a global lock.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Vec<Mutex<HashMap<String, Entry>>>,
    base: Instant,
    max_keys_per_shard: usize,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    Tat(Micros),
    Day(DayWindow),
}

const SHARDS: usize = 16;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            base: Instant::now(),
            max_keys_per_shard: 65_536,
        }
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
        f: impl FnOnce(&mut [&mut HashMap<String, Entry>], &[usize]) -> R,
    ) -> R {
        let idx: Vec<usize> = keys.iter().map(|k| Self::shard_of(k)).collect();
        let mut order: Vec<usize> = idx.clone();
        order.sort_unstable();
        order.dedup();
        let mut guards: Vec<_> = order
            .iter()
            .map(|&i| {
                self.shards[i]
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
            })
            .collect();
        // Position of each key's shard among the guards.
        let pos: Vec<usize> = idx
            .iter()
            .map(|i| order.binary_search(i).unwrap_or(0))
            .collect();
        let mut maps: Vec<&mut HashMap<String, Entry>> =
            guards.iter_mut().map(|g| &mut **g).collect();
        f(&mut maps, &pos)
    }

    fn evict_if_full(&self, map: &mut HashMap<String, Entry>, now: Micros, wall: Micros) {
        if map.len() < self.max_keys_per_shard {
            return;
        }
        let today = wall / crate::gcra::DAY;
        // Buckets that are full again carry no information.
        map.retain(|_, e| match e {
            Entry::Tat(t) => *t > now,
            Entry::Day(d) => d.day == today && d.used > 0,
        });
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
                                Some(Entry::Tat(t)) => Some(*t),
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
                            Some(Entry::Day(w)) => *w,
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
                for (i, e) in new_entries {
                    let map = &mut *maps[pos[i]];
                    map.insert(charges[i].key.clone(), e);
                }
                for m in maps.iter_mut() {
                    self.evict_if_full(m, now, wall);
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
        self.locked_apply(&keys, |maps, pos| {
            for (i, c) in adjustments.iter().enumerate() {
                if c.amount == 0 {
                    continue;
                }
                let map = &mut *maps[pos[i]];
                match c.kind {
                    BucketKind::Rate { limit, .. } => {
                        let g = Gcra {
                            limit,
                            period: c.kind.period_micros(),
                        };
                        let tat = match map.get(&c.key) {
                            Some(Entry::Tat(t)) => *t,
                            _ => 0,
                        };
                        map.insert(c.key.clone(), Entry::Tat(g.adjust(tat, now, c.amount)));
                    }
                    BucketKind::Daily { .. } => {
                        let w = match map.get(&c.key) {
                            Some(Entry::Day(w)) => *w,
                            _ => DayWindow::default(),
                        };
                        map.insert(c.key.clone(), Entry::Day(w.adjust(wall, c.amount)));
                    }
                }
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
