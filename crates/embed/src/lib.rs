//! Text embeddings for infergate's semantic router and response cache.
//!
//! ```
//! use infergate_embed::{Embedder, HashEmbedder, cosine};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), infergate_embed::EmbedError> {
//! // The built-in embedder: no model, no download, deterministic. Fitting it on a corpus gives
//! // rare features more weight (TF-IDF); unfitted, every feature weighs the same.
//! let e = HashEmbedder::builder().fit(["book a flight to paris", "what is my balance"]);
//! let v = e
//!     .embed(&["book me a flight to rome".into(), "how much money do i have".into()])
//!     .await?;
//! let q = e.embed(&["flights to berlin".into()]).await?;
//! assert!(cosine(&q[0], &v[0]) > cosine(&q[0], &v[1]));
//! # Ok(())
//! # }
//! ```
//!
//! - [`HashEmbedder`]: hashed word and character n-gram features with TF-IDF weights,
//!   L2-normalised — the embedded default.
//! - [`OpenAiEmbedder`]: any OpenAI-compatible `/v1/embeddings` (OpenAI, vLLM, TEI, Ollama, the
//!   mock provider).
//! - [`StaticEmbedder`]: static token vectors distilled from all-MiniLM-L6-v2 (the Model2Vec
//!   method; `scripts/distill_static.sh`): microseconds per text, synchronous.
//! - `MiniLm` (feature `candle`): all-MiniLM-L6-v2 from a local directory, run with candle.
//! - [`CachedEmbedder`]: a bounded cache in front of any of them, keyed by a hash of the text.

mod cache;
#[cfg(feature = "candle")]
pub mod distill;
mod hashed;
#[cfg(feature = "candle")]
mod minilm;
mod openai;
mod static_model;

use std::sync::Arc;

use async_trait::async_trait;

pub use cache::CachedEmbedder;
pub use hashed::{HashEmbedder, HashEmbedderBuilder};
#[cfg(feature = "candle")]
pub use minilm::MiniLm;
pub use openai::OpenAiEmbedder;
pub use static_model::{
    STATIC_CONFIG_FILE, STATIC_VECTORS_FILE, STATIC_VOCAB_FILE, StaticEmbedder,
};

/// Why texts could not be embedded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The embedding service could not be reached or answered with an error.
    #[error("embedding service failed: {0}")]
    Upstream(String),
    /// The service's answer was not what the API promises.
    #[error("invalid embedding response: {0}")]
    InvalidResponse(String),
    /// A local model could not be loaded or run.
    #[error("embedding model: {0}")]
    Model(String),
}

/// Turns texts into vectors; one call embeds a batch.
#[async_trait]
pub trait Embedder: Send + Sync + std::fmt::Debug {
    /// One vector per text, in order, each of [`Embedder::dim`] numbers.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// The vector of one text as its non-zero entries `(index, value)` sorted by index, when
    /// this embedder computes it synchronously and it is sparse (the built-in
    /// [`HashEmbedder`]): a caller on the request path scores it against dense vectors without
    /// a dense allocation or an `await`. `None` (the default): use [`Embedder::embed`].
    fn embed_sparse(&self, _text: &str) -> Option<Vec<(u32, f32)>> {
        None
    }

    /// The dense vector of one text, when this embedder computes it synchronously in
    /// microseconds (the [`StaticEmbedder`]): request-path callers skip the `await` and the
    /// blocking pool. `None` (the default): use [`Embedder::embed`].
    fn embed_dense(&self, _text: &str) -> Option<Vec<f32>> {
        None
    }

    /// The vectors' dimension.
    fn dim(&self) -> usize;

    /// A stable name for the model (it keys caches: vectors of different models never mix).
    fn name(&self) -> &str;
}

#[async_trait]
impl<E: Embedder + ?Sized> Embedder for Arc<E> {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        (**self).embed(texts).await
    }
    fn embed_sparse(&self, text: &str) -> Option<Vec<(u32, f32)>> {
        (**self).embed_sparse(text)
    }
    fn embed_dense(&self, text: &str) -> Option<Vec<f32>> {
        (**self).embed_dense(text)
    }
    fn dim(&self) -> usize {
        (**self).dim()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
}

/// The cosine similarity of two vectors (their dot product when both are L2-normalised, as
/// every embedder here returns them). 0 when either is all zeros.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// The dot product of two vectors of the same length (eight independent sums, which the
/// compiler turns into SIMD; a single running sum cannot be reordered and stays scalar).
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Scales `v` to unit length (left as is when all zeros).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        for x in v {
            *x /= n;
        }
    }
}
