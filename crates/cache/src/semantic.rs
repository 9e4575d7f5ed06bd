//! The semantic index: per scope, the vectors of cached requests' last user messages, in an
//! inverted-file (IVF) index once a scope is large.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;

use infergate_embed::dot;

/// Entries a scope holds before it is clustered (below it, search is exhaustive).
const TRAIN_AT: usize = 2048;
/// Clusters of a trained scope.
const LISTS: usize = 256;
/// Clusters searched per query.
const PROBES: usize = 8;
/// k-means iterations when training.
const ITERATIONS: usize = 4;

/// Vectors of cached requests, grouped by semantic scope (tenant, model, system prompt, earlier
/// conversation, parameters): a query is only ever compared with entries of its own scope.
///
/// A small scope is searched exhaustively (eight-lane dot products over contiguous vectors).
/// When a scope reaches 2,048 entries it is clustered once (k-means, 256 clusters, trained on
/// those entries); from then on each entry goes to its nearest cluster and a query searches
/// the 8 clusters nearest to it — about 3 % of the entries, so an approximate search: a
/// near-duplicate that falls in an unsearched cluster is a miss, never a wrong answer (the
/// threshold still applies). Each scope keeps its newest `max_per_scope` entries.
#[derive(Debug)]
pub struct SemanticIndex {
    scopes: RwLock<HashMap<u128, Scope>>,
    max_per_scope: usize,
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
    order: VecDeque<u64>,
    next_id: u64,
}

impl Scope {
    fn len(&self) -> usize {
        self.order.len()
    }

    fn nearest_lists(&self, v: &[f32], n: usize) -> Vec<usize> {
        if self.centroids.is_empty() {
            return vec![0];
        }
        let mut sims: Vec<(f32, usize)> = self
            .centroids
            .chunks_exact(self.dim)
            .enumerate()
            .map(|(i, c)| (dot(v, c), i))
            .collect();
        let n = n.min(sims.len());
        sims.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0));
        sims[..n].iter().map(|s| s.1).collect()
    }

    fn push(&mut self, vector: &[f32], key: u128) {
        let list = self.nearest_lists(vector, 1)[0];
        let id = self.next_id;
        self.next_id += 1;
        let l = &mut self.lists[list];
        l.vectors.extend_from_slice(vector);
        l.keys.push(key);
        l.ids.push(id);
        self.place.insert(id, (list, l.ids.len() - 1));
        self.order.push_back(id);
    }

    fn evict_oldest(&mut self) {
        let Some(id) = self.order.pop_front() else {
            return;
        };
        let Some((list, pos)) = self.place.remove(&id) else {
            return;
        };
        let dim = self.dim;
        let l = &mut self.lists[list];
        let last = l.ids.len() - 1;
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
    }

    /// Clusters the entries (k-means, seeded with evenly spaced entries) and redistributes
    /// them.
    fn train(&mut self) {
        let dim = self.dim;
        let all = std::mem::take(&mut self.lists);
        let (mut vectors, mut keys, mut ids) = (Vec::new(), Vec::new(), Vec::new());
        for l in all {
            vectors.extend(l.vectors);
            keys.extend(l.keys);
            ids.extend(l.ids);
        }
        let n = keys.len();
        let k = LISTS.min(n);
        let mut centroids: Vec<f32> = (0..k)
            .flat_map(|i| vectors[(i * n / k) * dim..(i * n / k + 1) * dim].to_vec())
            .collect();
        let mut assign = vec![0usize; n];
        for _ in 0..ITERATIONS {
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
        }
        self.centroids = centroids;
        self.lists = (0..k).map(|_| List::default()).collect();
        self.place.clear();
        for (i, v) in vectors.chunks_exact(dim).enumerate() {
            let list = assign[i];
            let l = &mut self.lists[list];
            l.vectors.extend_from_slice(v);
            l.keys.push(keys[i]);
            l.ids.push(ids[i]);
            self.place.insert(ids[i], (list, l.ids.len() - 1));
        }
    }
}

impl SemanticIndex {
    /// An index keeping at most `max_per_scope` entries in each scope.
    pub fn new(max_per_scope: usize) -> Self {
        Self {
            scopes: RwLock::new(HashMap::new()),
            max_per_scope: max_per_scope.max(1),
        }
    }

    /// The most similar entry of `scope` to `query` (normalised) and its similarity.
    pub fn nearest(&self, scope: u128, query: &[f32]) -> Option<(u128, f32)> {
        let scopes = self.scopes.read().ok()?;
        let s = scopes.get(&scope)?;
        if s.dim != query.len() || s.len() == 0 {
            return None;
        }
        let mut best: Option<(u128, f32)> = None;
        for li in s.nearest_lists(query, PROBES) {
            let l = &s.lists[li];
            for (i, v) in l.vectors.chunks_exact(s.dim).enumerate() {
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
        let Ok(mut scopes) = self.scopes.write() else {
            return;
        };
        let s = scopes.entry(scope).or_insert_with(|| Scope {
            dim: vector.len(),
            lists: vec![List::default()],
            ..Scope::default()
        });
        if s.dim != vector.len() {
            return;
        }
        while s.len() >= self.max_per_scope {
            s.evict_oldest();
        }
        s.push(vector, key);
        if s.centroids.is_empty() && s.len() >= TRAIN_AT && self.max_per_scope > TRAIN_AT {
            s.train();
        }
    }

    /// Entries in all scopes.
    pub fn len(&self) -> usize {
        self.scopes
            .read()
            .map_or(0, |s| s.values().map(Scope::len).sum())
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

    #[test]
    fn finds_near_duplicates_before_and_after_clustering_and_evicts_the_oldest() {
        let dim = 32;
        let idx = SemanticIndex::new(5000);
        let vs = rnd_vecs(4000, dim, 7);
        for (i, v) in vs.iter().enumerate() {
            idx.insert(1, v, i as u128);
        }
        assert_eq!(idx.len(), 4000);
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
}
