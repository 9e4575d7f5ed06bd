//! A bounded embedding cache keyed by a hash of the text.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{EmbedError, Embedder};

/// A bounded cache (moka, by entry count) in front of an embedder, keyed by a 128-bit hash of
/// the model name and the text: repeated texts (a conversation's earlier turns, popular
/// questions) are embedded once. Only the texts missing from the cache go to the embedder, in
/// one batch.
#[derive(Debug, Clone)]
pub struct CachedEmbedder<E> {
    inner: E,
    cache: moka::future::Cache<u128, Arc<Vec<f32>>>,
}

impl<E: Embedder> CachedEmbedder<E> {
    /// Caches up to `capacity` vectors of `inner`.
    pub fn new(inner: E, capacity: u64) -> Self {
        Self {
            inner,
            cache: moka::future::Cache::new(capacity),
        }
    }

    /// The embedder behind the cache.
    pub fn inner(&self) -> &E {
        &self.inner
    }

    fn key(&self, text: &str) -> u128 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(self.inner.name().as_bytes());
        h.update(&[0]);
        h.update(text.as_bytes());
        h.digest128()
    }
}

#[async_trait]
impl<E: Embedder> Embedder for CachedEmbedder<E> {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let keys: Vec<u128> = texts.iter().map(|t| self.key(t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = Vec::with_capacity(texts.len());
        let mut missing = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let hit = self.cache.get(k).await;
            if hit.is_none() {
                missing.push(i);
            }
            out.push(hit.map(|v| v.as_ref().clone()));
        }
        if !missing.is_empty() {
            let batch: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
            let vectors = self.inner.embed(&batch).await?;
            if vectors.len() != batch.len() {
                return Err(EmbedError::InvalidResponse(format!(
                    "{} vectors for {} texts",
                    vectors.len(),
                    batch.len()
                )));
            }
            for (&i, v) in missing.iter().zip(vectors) {
                self.cache.insert(keys[i], Arc::new(v.clone())).await;
                out[i] = Some(v);
            }
        }
        Ok(out.into_iter().map(Option::unwrap_or_default).collect())
    }

    fn embed_sparse(&self, text: &str) -> Option<Vec<(u32, f32)>> {
        // A sparse embedder is cheaper than the cache in front of it.
        self.inner.embed_sparse(text)
    }

    fn embed_dense(&self, text: &str) -> Option<Vec<f32>> {
        // So is a synchronous dense one.
        self.inner.embed_dense(text)
    }

    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn name(&self) -> &str {
        self.inner.name()
    }
}
