//! The semantic index: per scope, the vectors of cached requests' last user messages.

use std::collections::HashMap;
use std::sync::RwLock;

use infergate_embed::dot;

/// Vectors of cached requests, grouped by semantic scope (tenant, model, system prompt, earlier
/// conversation, parameters): a query is only ever compared with entries of its own scope.
/// Brute force over a contiguous array per scope (eight-lane dot products); bounded by a total
/// entry count, each scope keeping its newest entries.
#[derive(Debug)]
pub struct SemanticIndex {
    scopes: RwLock<HashMap<u128, Scope>>,
    max_per_scope: usize,
}

#[derive(Debug, Default)]
struct Scope {
    dim: usize,
    vectors: Vec<f32>,
    keys: Vec<u128>,
    /// Next slot to overwrite once full.
    next: usize,
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
        if s.dim != query.len() || s.keys.is_empty() {
            return None;
        }
        let mut best = (0usize, f32::MIN);
        for (i, v) in s.vectors.chunks_exact(s.dim).enumerate() {
            let d = dot(query, v);
            if d > best.1 {
                best = (i, d);
            }
        }
        Some((s.keys[best.0], best.1))
    }

    /// Adds an entry: `vector` (normalised) answered by the exact entry `key`.
    pub fn insert(&self, scope: u128, vector: &[f32], key: u128) {
        let Ok(mut scopes) = self.scopes.write() else {
            return;
        };
        let s = scopes.entry(scope).or_insert_with(|| Scope {
            dim: vector.len(),
            ..Scope::default()
        });
        if s.dim != vector.len() {
            return;
        }
        if s.keys.len() < self.max_per_scope {
            s.vectors.extend_from_slice(vector);
            s.keys.push(key);
        } else {
            let i = s.next % self.max_per_scope;
            s.vectors[i * s.dim..(i + 1) * s.dim].copy_from_slice(vector);
            s.keys[i] = key;
            s.next = i + 1;
        }
    }

    /// Entries in all scopes.
    pub fn len(&self) -> usize {
        self.scopes
            .read()
            .map(|s| s.values().map(|x| x.keys.len()).sum())
            .unwrap_or(0)
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
