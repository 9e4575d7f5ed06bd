//! The semantic index: per scope, the vectors of cached requests' last user messages, in an
//! inverted-file (IVF) index once a scope is large.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use infergate_embed::dot;

/// Entries a scope holds before it is clustered (below it, search is exhaustive).
const TRAIN_AT: usize = 2048;
/// Clusters of a trained scope.
const LISTS: usize = 256;
/// Clusters searched per query.
const PROBES: usize = 8;
/// k-means iterations when training.
const ITERATIONS: usize = 4;
/// Idle scopes dropped per insert (besides those evicted for room).
const SWEEP_PER_INSERT: usize = 2;

/// Vectors of cached requests, grouped by semantic scope (tenant, model, system prompt, earlier
/// conversation, parameters): a query is only ever compared with entries of its own scope.
///
/// A small scope is searched exhaustively (eight-lane dot products over contiguous vectors).
/// When a scope reaches 2,048 entries it is clustered once (k-means, 256 clusters, trained on
/// those entries); from then on each entry goes to its nearest cluster and a query searches
/// the 8 clusters nearest to it — about 3 % of the entries, so an approximate search: a
/// near-duplicate that falls in an unsearched cluster is a miss, never a wrong answer (the
/// threshold still applies).
///
/// **Bounds.** Every scope keeps its newest `max_per_scope` entries; all scopes together keep
/// at most [`max_entries`](Self::max_entries) (default 100,000: the least recently used
/// scope gives up its oldest entries first) in at most [`max_scopes`](Self::max_scopes)
/// (default 10,000: the least recently used scope goes); an entry older than the
/// [`ttl`](Self::ttl) (default a day) is never answered and is dropped, and so is a scope
/// nobody used for that long. Eviction is O(1) amortised: nothing scans the index.
///
/// **Clustering is off the request path and outside the lookups' lock.** The insert that
/// reaches the threshold copies the scope's entries and hands the k-means to tokio's blocking
/// pool (run in place only without a tokio runtime); lookups and inserts go on meanwhile, and
/// the finished clusters are swapped in under a brief write lock of that one scope (entries
/// added meanwhile go to their nearest cluster then). Lookups take a scope's read lock only,
/// and the index-wide lock for a moment to find the scope.
#[derive(Debug)]
pub struct SemanticIndex {
    scopes: Mutex<Scopes>,
    /// Entries in all scopes.
    total: AtomicUsize,
    max_per_scope: usize,
    max_scopes: usize,
    max_entries: usize,
    ttl: Duration,
}

type ScopeRef = Arc<RwLock<Scope>>;

/// The scopes and their order of last use. A scope used again is pushed again; its earlier
/// place in `lru` goes stale (its stamp no longer matches) and is skipped or compacted away.
#[derive(Debug, Default)]
struct Scopes {
    map: HashMap<u128, Slot>,
    lru: VecDeque<(u128, u64)>,
    next_stamp: u64,
}

#[derive(Debug)]
struct Slot {
    scope: ScopeRef,
    stamp: u64,
    used: Instant,
}

#[derive(Debug, Default)]
struct List {
    vectors: Vec<f32>,
    keys: Vec<u128>,
    ids: Vec<u64>,
}

#[derive(Debug, Default)]
struct Scope {
    dim: usize,
    /// `LISTS * dim` once trained; empty before (one list, searched whole).
    centroids: Vec<f32>,
    lists: Vec<List>,
    /// Entry id -> (list, position).
    place: HashMap<u64, (usize, usize)>,
    /// Entry ids, oldest first, with their insertion time.
    order: VecDeque<(u64, Instant)>,
    next_id: u64,
    /// A clustering of this scope is under way.
    training: bool,
    /// The scope was evicted: inserts that still hold it do nothing.
    removed: bool,
}

/// What clustering works on: a copy of a scope's entries.
struct Snapshot {
    dim: usize,
    vectors: Vec<f32>,
    ids: Vec<u64>,
}

/// The result of clustering: centroids and the cluster of each snapshot entry.
struct Trained {
    centroids: Vec<f32>,
    assign: HashMap<u64, usize>,
}

impl Scope {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn nearest_lists(&self, v: &[f32], n: usize) -> Vec<usize> {
        if self.centroids.is_empty() || self.dim == 0 {
            return vec![0];
        }
        let mut sims: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, c)| (dot(v, c), i))
            .collect();
        let n = n.min(sims.len()).max(1);
        sims.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        sims[..n].iter().map(|s| s.1).collect()
    }

    fn push(&mut self, vector: &[f32], key: u128, now: Instant) {
        let list = self.nearest_lists(vector, 1)[0];
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let l = &mut self.lists[list];
        l.vectors.extend_from_slice(vector);
        l.keys.push(key);
        l.ids.push(id);
        self.place.insert(id, (list, l.ids.len() - 1));
        self.order.push_back((id, now));
    }

    /// Removes the oldest entry; returns whether there was one.
    fn evict_oldest(&mut self) -> bool {
        let Some((id, _)) = self.order.pop_front() else {
            return false;
        };
        let Some((list, pos)) = self.place.remove(&id) else {
            return true;
        };
        let dim = self.dim;
        let l = &mut self.lists[list];
        let Some(last) = l.ids.len().checked_sub(1) else {
            return true;
        };
        if pos != last {
            let moved = l.ids[last];
            l.ids.swap(pos, last);
            l.keys.swap(pos, last);
            for j in 0..dim {
                l.vectors.swap(pos * dim + j, last * dim + j);
            }
            self.place.insert(moved, (list, pos));
        }
        l.ids.pop();
        l.keys.pop();
        l.vectors.truncate(last * dim);
        true
    }

    /// The oldest id still answered at `now` (older ones have expired).
    fn first_live(&self, now: Instant, ttl: Duration) -> u64 {
        let Some(oldest) = now.checked_sub(ttl) else {
            return 0;
        };
        let i = self.order.partition_point(|(_, born)| *born < oldest);
        self.order.get(i).map_or(self.next_id, |(id, _)| *id)
    }

    /// Whether this scope should be clustered now; if so, marks it and copies its entries.
    fn training_job(&mut self, max_per_scope: usize) -> Option<Snapshot> {
        if self.training
            || !self.centroids.is_empty()
            || self.len() < TRAIN_AT
            || max_per_scope <= TRAIN_AT
        {
            return None;
        }
        self.training = true;
        let mut snap = Snapshot {
            dim: self.dim,
            vectors: Vec::with_capacity(self.len() * self.dim),
            ids: Vec::with_capacity(self.len()),
        };
        for l in &self.lists {
            snap.vectors.extend_from_slice(&l.vectors);
            snap.ids.extend_from_slice(&l.ids);
        }
        Some(snap)
    }

    /// Swaps in finished clusters: every entry still here goes to its cluster (entries added
    /// since the snapshot to their nearest one).
    fn install(&mut self, trained: Trained) {
        self.training = false;
        if self.removed || trained.centroids.is_empty() || self.dim == 0 {
            return;
        }
        let dim = self.dim;
        let k = trained.centroids.len() / dim;
        let old = std::mem::take(&mut self.lists);
        self.centroids = trained.centroids;
        self.lists = (0..k).map(|_| List::default()).collect();
        self.place.clear();
        for l in old {
            for (i, v) in l.vectors.chunks_exact(dim).enumerate() {
                let id = l.ids[i];
                let list = match trained.assign.get(&id) {
                    Some(&c) if c < k => c,
                    _ => self.nearest_lists(v, 1)[0],
                };
                let dst = &mut self.lists[list];
                dst.vectors.extend_from_slice(v);
                dst.keys.push(l.keys[i]);
                dst.ids.push(id);
                self.place.insert(id, (list, dst.ids.len() - 1));
            }
        }
    }
}

impl Snapshot {
    /// k-means, seeded with evenly spaced entries. Holds no lock.
    fn cluster(self) -> Trained {
        self.cluster_with(&|| {})
    }

    /// [`cluster`](Self::cluster), calling `mid_way` after the first iteration (tests).
    fn cluster_with(self, mid_way: &dyn Fn()) -> Trained {
        let dim = self.dim;
        let vectors = &self.vectors;
        let n = self.ids.len();
        let k = LISTS.min(n);
        if k == 0 || dim == 0 {
            return Trained {
                centroids: Vec::new(),
                assign: HashMap::new(),
            };
        }
        let mut centroids: Vec<f32> = (0..k)
            .flat_map(|i| {
                vectors[(i * n / k) * dim..(i * n / k + 1) * dim]
                    .iter()
                    .copied()
            })
            .collect();
        let mut assign = vec![0usize; n];
        for iteration in 0..ITERATIONS {
            for (i, v) in vectors.chunks_exact(dim).enumerate() {
                let mut best = (f32::MIN, 0);
                for (c, cv) in centroids.chunks_exact(dim).enumerate() {
                    let d = dot(v, cv);
                    if d > best.0 {
                        best = (d, c);
                    }
                }
                assign[i] = best.1;
            }
            let mut sums = vec![0.0f32; k * dim];
            let mut counts = vec![0usize; k];
            for (i, v) in vectors.chunks_exact(dim).enumerate() {
                counts[assign[i]] += 1;
                for (s, x) in sums[assign[i] * dim..(assign[i] + 1) * dim]
                    .iter_mut()
                    .zip(v)
                {
                    *s += x;
                }
            }
            for c in 0..k {
                if counts[c] > 0 {
                    let s = &mut sums[c * dim..(c + 1) * dim];
                    infergate_embed::normalize(s);
                    centroids[c * dim..(c + 1) * dim].copy_from_slice(s);
                }
            }
            if iteration == 0 {
                mid_way();
            }
        }
        Trained {
            centroids,
            assign: self.ids.iter().copied().zip(assign).collect(),
        }
    }
}

fn read(s: &ScopeRef) -> RwLockReadGuard<'_, Scope> {
    s.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write(s: &ScopeRef) -> RwLockWriteGuard<'_, Scope> {
    s.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Scopes {
    fn touch(&mut self, id: u128, now: Instant) -> Option<ScopeRef> {
        let stamp = self.next_stamp;
        let slot = self.map.get_mut(&id)?;
        self.next_stamp = self.next_stamp.wrapping_add(1);
        slot.stamp = stamp;
        slot.used = now;
        let scope = slot.scope.clone();
        self.lru.push_back((id, stamp));
        if self.lru.len() > 2 * self.map.len() + 64 {
            let map = &self.map;
            self.lru
                .retain(|(id, stamp)| map.get(id).is_some_and(|s| s.stamp == *stamp));
        }
        Some(scope)
    }

    /// The least recently used scope other than `keep`, with its last use.
    fn least_recent(&mut self, keep: Option<u128>) -> Option<(u128, Instant)> {
        while let Some(&(id, stamp)) = self.lru.front() {
            match self.map.get(&id) {
                Some(s) if s.stamp == stamp => {
                    if Some(id) == keep {
                        // `keep` was just used, so it is the only scope left in the order.
                        return None;
                    }
                    return Some((id, s.used));
                }
                _ => {
                    self.lru.pop_front();
                }
            }
        }
        None
    }
}

impl SemanticIndex {
    /// The default bound on the number of scopes.
    pub const DEFAULT_MAX_SCOPES: usize = 10_000;
    /// The default bound on the entries of all scopes together.
    pub const DEFAULT_MAX_ENTRIES: usize = 100_000;
    /// The default lifetime of an entry (and of a scope nobody looks up or adds to).
    pub const DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);

    /// An index keeping at most `max_per_scope` entries in each scope, and the default bounds
    /// on scopes ([`DEFAULT_MAX_SCOPES`](Self::DEFAULT_MAX_SCOPES)), entries
    /// ([`DEFAULT_MAX_ENTRIES`](Self::DEFAULT_MAX_ENTRIES)) and age
    /// ([`DEFAULT_TTL`](Self::DEFAULT_TTL)).
    pub fn new(max_per_scope: usize) -> Self {
        Self {
            scopes: Mutex::new(Scopes::default()),
            total: AtomicUsize::new(0),
            max_per_scope: max_per_scope.max(1),
            max_scopes: Self::DEFAULT_MAX_SCOPES,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            ttl: Self::DEFAULT_TTL,
        }
    }

    /// At most `n` scopes (at least 1); the least recently used goes first.
    #[must_use]
    pub fn max_scopes(mut self, n: usize) -> Self {
        self.max_scopes = n.max(1);
        self
    }

    /// At most `n` entries in all scopes together (at least 1); the least recently used
    /// scope gives up its oldest entries first.
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Entries older than `ttl` are never answered (and dropped), and scopes unused for that
    /// long go.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Scopes> {
        self.scopes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most similar entry of `scope` to `query` (normalised) and its similarity.
    pub fn nearest(&self, scope: u128, query: &[f32]) -> Option<(u128, f32)> {
        self.nearest_at(scope, query, Instant::now())
    }

    fn nearest_at(&self, scope: u128, query: &[f32], now: Instant) -> Option<(u128, f32)> {
        if query.is_empty() {
            return None;
        }
        let handle = self.lock().touch(scope, now)?;
        let s = read(&handle);
        if s.removed || s.dim != query.len() || s.len() == 0 {
            return None;
        }
        let first_live = s.first_live(now, self.ttl);
        let mut best: Option<(u128, f32)> = None;
        for li in s.nearest_lists(query, PROBES) {
            let Some(l) = s.lists.get(li) else { continue };
            for (i, v) in l.vectors.chunks_exact(s.dim).enumerate() {
                if l.ids[i] < first_live {
                    continue;
                }
                let d = dot(query, v);
                if best.is_none_or(|b| d > b.1) {
                    best = Some((l.keys[i], d));
                }
            }
        }
        best
    }

    /// Adds an entry: `vector` (normalised) answered by the exact entry `key`.
    pub fn insert(&self, scope: u128, vector: &[f32], key: u128) {
        if let Some(job) = self.insert_at(scope, vector, key, Instant::now()) {
            spawn_clustering(job);
        }
    }

    /// Removes a scope whole, under the caller's lock of the index.
    fn remove_scope(&self, scopes: &mut Scopes, id: u128) {
        if let Some(slot) = scopes.map.remove(&id) {
            let mut s = write(&slot.scope);
            s.removed = true;
            self.total.fetch_sub(s.len(), Ordering::Relaxed);
        }
    }

    /// Inserts; returns the clustering to run, if this insert calls for one.
    fn insert_at(
        &self,
        scope: u128,
        vector: &[f32],
        key: u128,
        now: Instant,
    ) -> Option<(ScopeRef, Snapshot)> {
        if vector.is_empty() {
            return None;
        }
        let handle = {
            let mut scopes = self.lock();
            // Scopes nobody used for a TTL go, a couple per insert.
            for _ in 0..SWEEP_PER_INSERT {
                match scopes.least_recent(None) {
                    Some((id, used)) if now.saturating_duration_since(used) > self.ttl => {
                        self.remove_scope(&mut scopes, id);
                    }
                    _ => break,
                }
            }
            let handle = if let Some(h) = scopes.touch(scope, now) {
                h
            } else {
                while scopes.map.len() >= self.max_scopes {
                    let Some((id, _)) = scopes.least_recent(None) else {
                        break;
                    };
                    self.remove_scope(&mut scopes, id);
                }
                let h: ScopeRef = Arc::new(RwLock::new(Scope {
                    dim: vector.len(),
                    lists: vec![List::default()],
                    ..Scope::default()
                }));
                scopes.map.insert(
                    scope,
                    Slot {
                        scope: h.clone(),
                        stamp: 0,
                        used: now,
                    },
                );
                scopes.touch(scope, now);
                h
            };
            // Room in the whole index: the least recently used other scope gives up its
            // oldest entries (and goes when it has none left).
            while self.total.load(Ordering::Relaxed) >= self.max_entries {
                let Some((id, _)) = scopes.least_recent(Some(scope)) else {
                    break;
                };
                let Some(slot) = scopes.map.get(&id) else {
                    break;
                };
                let emptied = {
                    let mut s = write(&slot.scope);
                    if s.evict_oldest() {
                        self.total.fetch_sub(1, Ordering::Relaxed);
                    }
                    s.len() == 0
                };
                if emptied {
                    self.remove_scope(&mut scopes, id);
                }
            }
            handle
        };
        let mut s = write(&handle);
        if s.removed || s.dim != vector.len() {
            return None;
        }
        // Expired entries go; then room within the scope (and within the whole index, when
        // this is the only scope left).
        let first_live = s.first_live(now, self.ttl);
        while s.order.front().is_some_and(|(id, _)| *id < first_live) && s.evict_oldest() {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        let bound = self.max_per_scope.min(self.max_entries);
        while (s.len() >= bound || self.total.load(Ordering::Relaxed) >= self.max_entries)
            && s.evict_oldest()
        {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        s.push(vector, key, now);
        self.total.fetch_add(1, Ordering::Relaxed);
        let job = s.training_job(bound)?;
        drop(s);
        Some((handle, job))
    }

    /// Entries in all scopes.
    pub fn len(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The number of scopes.
    pub fn scopes(&self) -> usize {
        self.lock().map.len()
    }
}

/// Runs a clustering off the caller's path: on tokio's blocking pool, or in place without a
/// runtime.
fn spawn_clustering((scope, snapshot): (ScopeRef, Snapshot)) {
    let run = move || {
        let trained = snapshot.cluster();
        write(&scope).install(trained);
    };
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => {
            rt.spawn_blocking(run);
        }
        Err(_) => run(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rnd_vecs(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                let mut v: Vec<f32> = (0..dim)
                    .map(|_| {
                        s ^= s << 13;
                        s ^= s >> 7;
                        s ^= s << 17;
                        (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
                    })
                    .collect();
                infergate_embed::normalize(&mut v);
                v
            })
            .collect()
    }

    /// Inserts, running any clustering in place.
    fn insert(idx: &SemanticIndex, scope: u128, v: &[f32], key: u128) {
        if let Some((s, job)) = idx.insert_at(scope, v, key, Instant::now()) {
            write(&s).install(job.cluster());
        }
    }

    fn is_trained(idx: &SemanticIndex, scope: u128) -> bool {
        let scopes = idx.lock();
        let s = read(&scopes.map[&scope].scope);
        !s.centroids.is_empty()
    }

    #[test]
    fn finds_near_duplicates_before_and_after_clustering_and_evicts_the_oldest() {
        let dim = 32;
        let idx = SemanticIndex::new(5000);
        let vs = rnd_vecs(4000, dim, 7);
        for (i, v) in vs.iter().enumerate() {
            insert(&idx, 1, v, i as u128);
        }
        assert_eq!(idx.len(), 4000);
        assert!(is_trained(&idx, 1));
        // A slightly perturbed copy of each of 200 entries finds its original.
        let noise = rnd_vecs(200, dim, 99);
        let mut found = 0;
        for (i, n) in noise.iter().enumerate() {
            let mut q: Vec<f32> = vs[i * 20]
                .iter()
                .zip(n)
                .map(|(a, b)| a + 0.05 * b)
                .collect();
            infergate_embed::normalize(&mut q);
            if idx
                .nearest(1, &q)
                .is_some_and(|(k, s)| k == (i * 20) as u128 && s > 0.9)
            {
                found += 1;
            }
        }
        assert!(found >= 190, "recall {found}/200");
        // Other scopes see nothing.
        assert!(idx.nearest(2, &vs[0]).is_none());
        // Bounded: the oldest go first.
        let small = SemanticIndex::new(10);
        for (i, v) in vs.iter().take(15).enumerate() {
            small.insert(1, v, i as u128);
        }
        assert_eq!(small.len(), 10);
        assert_eq!(small.nearest(1, &vs[14]).map(|r| r.0), Some(14));
        assert_ne!(small.nearest(1, &vs[0]).map(|r| r.0), Some(0));
    }

    #[test]
    fn scopes_and_entries_stay_within_their_bounds_and_lookups_keep_working() {
        let dim = 16;
        let vs = rnd_vecs(64, dim, 3);
        let idx = SemanticIndex::new(100).max_scopes(50).max_entries(1000);
        // A scope per conversation prefix, forever: 20,000 of them.
        for conv in 0..20_000u128 {
            for (j, v) in vs.iter().take(3).enumerate() {
                idx.insert(conv, v, conv * 10 + j as u128);
            }
            assert!(idx.scopes() <= 50);
            assert!(idx.len() <= 1000);
        }
        assert_eq!(idx.scopes(), 50);
        assert_eq!(idx.len(), 150);
        // The newest scopes answer; the oldest are gone.
        assert_eq!(idx.nearest(19_999, &vs[2]).map(|r| r.0), Some(199_992));
        assert!(idx.nearest(0, &vs[0]).is_none());
        // Big scopes: the entry bound holds across them, the least recently used giving way.
        let idx = SemanticIndex::new(400).max_scopes(50).max_entries(1000);
        for round in 0..10u128 {
            for scope in 0..10u128 {
                for (j, v) in vs.iter().enumerate() {
                    idx.insert(scope, v, round * 1000 + scope * 100 + j as u128);
                    assert!(idx.len() <= 1000, "{}", idx.len());
                }
            }
        }
        assert_eq!(idx.len(), 1000);
        assert!(idx.nearest(9, &vs[63]).is_some());
        // Keeping a scope in use keeps it.
        let idx = SemanticIndex::new(10).max_scopes(5);
        idx.insert(7, &vs[0], 70);
        for scope in 100..200u128 {
            assert_eq!(idx.nearest(7, &vs[0]).map(|r| r.0), Some(70));
            idx.insert(scope, &vs[1], scope);
        }
    }

    #[test]
    fn entries_and_scopes_expire() {
        let dim = 8;
        let vs = rnd_vecs(4, dim, 11);
        let idx = SemanticIndex::new(100).ttl(Duration::from_secs(60));
        let t0 = Instant::now();
        assert!(idx.insert_at(1, &vs[0], 10, t0).is_none());
        let t1 = t0 + Duration::from_secs(30);
        assert!(idx.insert_at(1, &vs[1], 11, t1).is_none());
        assert_eq!(idx.nearest_at(1, &vs[0], t1).map(|r| r.0), Some(10));
        // Past the first entry's TTL: never answered, though still held.
        let t2 = t0 + Duration::from_secs(61);
        assert_eq!(idx.nearest_at(1, &vs[0], t2).map(|r| r.0), Some(11));
        // The next insert drops it.
        idx.insert_at(1, &vs[2], 12, t2);
        assert_eq!(idx.len(), 2);
        // A scope nobody uses for a TTL goes with the next insert elsewhere.
        let t3 = t2 + Duration::from_secs(61);
        idx.insert_at(2, &vs[3], 20, t3);
        assert_eq!(idx.scopes(), 1);
        assert_eq!(idx.len(), 1);
        assert!(idx.nearest_at(1, &vs[2], t3).is_none());
        // A TTL too long for the clock expires nothing.
        let forever = SemanticIndex::new(10).ttl(Duration::MAX);
        forever.insert(1, &vs[0], 1);
        assert_eq!(forever.nearest(1, &vs[0]).map(|r| r.0), Some(1));
    }

    #[test]
    fn a_lookup_during_clustering_answers_and_inserts_meanwhile_are_kept() {
        let dim = 16;
        let vs = rnd_vecs(TRAIN_AT + 100, dim, 5);
        let idx = Arc::new(SemanticIndex::new(10_000));
        let mut job = None;
        for (i, v) in vs.iter().take(TRAIN_AT).enumerate() {
            job = idx.insert_at(1, v, i as u128, Instant::now());
        }
        let (scope, snapshot) = job.expect("the insert that reaches the threshold clusters");
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let worker = std::thread::spawn(move || {
            let trained = snapshot.cluster_with(&|| {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
            });
            write(&scope).install(trained);
        });
        // The clustering is under way (and holds no lock): lookups answer, inserts go in, and
        // the same scope is not clustered twice.
        started_rx.recv().unwrap();
        assert!(!is_trained(&idx, 1));
        for i in [0, 500, TRAIN_AT - 1] {
            assert_eq!(idx.nearest(1, &vs[i]).map(|r| r.0), Some(i as u128));
        }
        for (i, v) in vs.iter().enumerate().skip(TRAIN_AT) {
            assert!(idx.insert_at(1, v, i as u128, Instant::now()).is_none());
        }
        go_tx.send(()).unwrap();
        worker.join().unwrap();
        assert!(is_trained(&idx, 1));
        assert_eq!(idx.len(), TRAIN_AT + 100);
        // Entries from before and during the clustering are all found.
        for i in [0, 500, TRAIN_AT - 1, TRAIN_AT, TRAIN_AT + 99] {
            assert_eq!(idx.nearest(1, &vs[i]).map(|r| r.0), Some(i as u128), "{i}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn clustering_runs_in_the_background_under_tokio() {
        let dim = 16;
        let vs = rnd_vecs(TRAIN_AT + 1, dim, 9);
        let idx = SemanticIndex::new(10_000);
        for (i, v) in vs.iter().enumerate() {
            idx.insert(1, v, i as u128);
            // Lookups answer whether or not the clustering has finished.
            assert_eq!(idx.nearest(1, v).map(|r| r.0), Some(i as u128));
        }
        assert_eq!(idx.len(), TRAIN_AT + 1);
    }

    #[test]
    fn odd_vectors_are_ignored() {
        let idx = SemanticIndex::new(10);
        idx.insert(1, &[], 1);
        assert!(idx.is_empty());
        assert!(idx.nearest(1, &[]).is_none());
        idx.insert(1, &[1.0, 0.0], 2);
        // Another dimension in the same scope: ignored, never a panic.
        idx.insert(1, &[1.0, 0.0, 0.0], 3);
        assert!(idx.nearest(1, &[1.0, 0.0, 0.0]).is_none());
        assert_eq!(idx.nearest(1, &[f32::NAN, 1.0]).map(|r| r.0), Some(2));
        assert_eq!(idx.len(), 1);
    }
}
