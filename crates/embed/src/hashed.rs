//! The built-in embedder: hashed features, TF-IDF weights, L2-normalised.

use std::cell::RefCell;
use std::sync::Arc;

use async_trait::async_trait;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::{EmbedError, Embedder};

/// Hashed word, word-bigram and character n-gram features with TF-IDF weights (signed feature
/// hashing into [`HashEmbedder::dim`] buckets, sublinear term frequency), L2-normalised.
///
/// Deterministic, needs no model and no download, about a microsecond per short text. Lower
/// case and ASCII punctuation are folded; character n-grams (3 to 5, word-bounded) make it
/// robust to inflections and typos ("flight", "flights", "fligth"). Fit it on the texts it will
/// compare (a router fits it on its routes' utterances) so that rare, telling features weigh more
/// than common ones; unfitted, every feature weighs the same.
#[derive(Debug, Clone)]
pub struct HashEmbedder {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    dim: usize,
    word_weight: f32,
    bigram_weight: f32,
    char_weight: f32,
    /// Inverse document frequency per bucket (empty: unfitted).
    idf: Vec<f32>,
    /// `(w, ln(1 + w))` for the three feature weights.
    ln1p_weights: [(f32, f32); 3],
    name: String,
}

impl Inner {
    /// A feature's weight, signed by its hash's top bit (signed hashing: collisions cancel out
    /// on average instead of piling up).
    fn signed_weight(&self, h: u64, kind: u64) -> f32 {
        let w = match kind {
            WORD => self.word_weight,
            BIGRAM => self.bigram_weight,
            _ => self.char_weight,
        };
        if h >> 63 == 0 { w } else { -w }
    }
}

/// Configures a [`HashEmbedder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HashEmbedderBuilder {
    dim: usize,
    word_weight: f32,
    bigram_weight: f32,
    char_weight: f32,
}

impl Default for HashEmbedderBuilder {
    fn default() -> Self {
        Self {
            dim: 2048,
            word_weight: 1.0,
            bigram_weight: 0.5,
            char_weight: 0.35,
        }
    }
}

impl HashEmbedderBuilder {
    /// Vector dimension (hash buckets; default 2048; between 16 and 2^24).
    pub fn dim(mut self, dim: usize) -> Self {
        self.dim = dim.clamp(16, 1 << 24);
        self
    }

    /// Weights of whole words, word bigrams and character n-grams (default 1.0, 0.5, 0.35).
    pub fn weights(mut self, word: f32, bigram: f32, char_ngram: f32) -> Self {
        self.word_weight = word;
        self.bigram_weight = bigram;
        self.char_weight = char_ngram;
        self
    }

    /// An embedder with uniform feature weights.
    pub fn build(self) -> HashEmbedder {
        self.make(Vec::new())
    }

    /// An embedder whose feature weights are the inverse document frequencies over `corpus`.
    pub fn fit<I, S>(self, corpus: I) -> HashEmbedder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut df = vec![0u32; self.dim];
        let mut n = 0u32;
        let mut seen = Vec::new();
        for text in corpus {
            n += 1;
            seen.clear();
            features(text.as_ref(), &mut |h, _| {
                seen.push((h % self.dim as u64) as usize);
            });
            seen.sort_unstable();
            seen.dedup();
            for &b in &seen {
                df[b] += 1;
            }
        }
        let idf = df
            .iter()
            .map(|&d| ((1.0 + n as f32) / (1.0 + d as f32)).ln() + 1.0)
            .collect();
        self.make(idf)
    }

    fn make(self, idf: Vec<f32>) -> HashEmbedder {
        let name = format!(
            "infergate-hash-{}-{}-{}-{}{}",
            self.dim,
            self.word_weight,
            self.bigram_weight,
            self.char_weight,
            if idf.is_empty() { "" } else { "-idf" }
        );
        HashEmbedder {
            inner: Arc::new(Inner {
                dim: self.dim,
                word_weight: self.word_weight,
                bigram_weight: self.bigram_weight,
                char_weight: self.char_weight,
                ln1p_weights: [self.word_weight, self.bigram_weight, self.char_weight]
                    .map(|w| (w.abs(), w.abs().ln_1p())),
                name: if idf.is_empty() {
                    name
                } else {
                    // Different corpora give different vectors: name them apart.
                    let mut h = 0u64;
                    for x in &idf {
                        h = h.rotate_left(5) ^ u64::from(x.to_bits());
                    }
                    format!("{name}-{h:016x}")
                },
                idf,
            }),
        }
    }
}

/// A dense accumulator and a bitmap of the buckets touched, both all zeros between calls.
#[derive(Default)]
struct Scratch {
    acc: Vec<f32>,
    touched: Vec<u64>,
}

thread_local! {
    /// Each thread's scratch for [`HashEmbedder::embed_sparse_one`].
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// Feature kinds, as hash seeds.
const WORD: u64 = 1;
const BIGRAM: u64 = 2;
const CHARS: u64 = 3;

/// Calls `f(hash, kind)` for every feature of `text`.
fn features(text: &str, f: &mut dyn FnMut(u64, u64)) {
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .collect();
    let mut buf = String::new();
    let mut bounds: Vec<usize> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        f(xxh3_64_with_seed(w.as_bytes(), WORD), WORD);
        if let Some(next) = words.get(i + 1) {
            buf.clear();
            buf.push_str(w);
            buf.push(' ');
            buf.push_str(next);
            f(xxh3_64_with_seed(buf.as_bytes(), BIGRAM), BIGRAM);
        }
        // Character n-grams of " word ", 3 to 5 characters: slices of one padded copy (the
        // bytes of each n-gram, as before, without building a string for each).
        buf.clear();
        buf.push(' ');
        buf.push_str(w);
        buf.push(' ');
        if buf.is_ascii() {
            // One byte a character: the n-grams are plain windows.
            for n in 3..=5 {
                for g in buf.as_bytes().windows(n) {
                    f(xxh3_64_with_seed(g, CHARS), CHARS);
                }
            }
            continue;
        }
        bounds.clear();
        bounds.extend(buf.char_indices().map(|(i, _)| i));
        bounds.push(buf.len());
        let chars = bounds.len() - 1;
        for n in 3..=5 {
            for start in 0..chars.saturating_sub(n - 1) {
                let g = &buf.as_bytes()[bounds[start]..bounds[start + n]];
                f(xxh3_64_with_seed(g, CHARS), CHARS);
            }
        }
    }
}

impl HashEmbedder {
    /// Configure one.
    pub fn builder() -> HashEmbedderBuilder {
        HashEmbedderBuilder::default()
    }

    /// The vector of one text (synchronous; [`Embedder::embed`] maps this over a batch).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0.0f32; self.inner.dim];
        for (i, x) in self.embed_sparse_one(text) {
            v[i as usize] = x;
        }
        v
    }

    /// The vector of one text as its non-zero entries `(index, value)`, sorted by index: the
    /// same numbers as [`HashEmbedder::embed_one`] without the dense vector (a short query
    /// touches a few hundred of the 2048 buckets).
    pub fn embed_sparse_one(&self, text: &str) -> Vec<(u32, f32)> {
        let d = &self.inner;
        // Features are summed into a dense accumulator in text order (the additions of a dense
        // pass, so the same bits), kept per thread with a bitmap of the buckets touched; the
        // bitmap is read in index order, and both are zeroed again as they are read.
        SCRATCH.with(|cell| {
            let mut owned = Scratch::default();
            let mut borrowed = cell.try_borrow_mut();
            let scratch: &mut Scratch = match borrowed.as_deref_mut() {
                Ok(s) => s,
                Err(_) => &mut owned,
            };
            let Scratch { acc, touched } = scratch;
            if acc.len() < d.dim {
                acc.resize(d.dim, 0.0);
                touched.resize(d.dim.div_ceil(64), 0);
            }
            // `h % dim` is a mask for a power of two (the default): no division per feature.
            let mask = d.dim.is_power_of_two().then(|| d.dim as u64 - 1);
            // The bitmap words touched lie in `lo..hi` (a short text in a large space reads
            // only that range).
            let (mut lo, mut hi) = (usize::MAX, 0);
            features(text, &mut |h, kind| {
                let x = d.signed_weight(h, kind);
                let bucket = match mask {
                    Some(m) => (h & m) as usize,
                    None => (h % d.dim as u64) as usize,
                };
                touched[bucket / 64] |= 1 << (bucket % 64);
                lo = lo.min(bucket / 64);
                hi = hi.max(bucket / 64 + 1);
                acc[bucket] += x;
            });
            let mut out: Vec<(u32, f32)> = Vec::new();
            for (i, word) in touched.iter_mut().enumerate().take(hi).skip(lo) {
                let mut bits = std::mem::take(word);
                while bits != 0 {
                    let b = i * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    out.push((b as u32, std::mem::take(&mut acc[b])));
                }
            }
            self.finish(out)
        })
    }

    /// Sublinear term frequency, IDF and L2 normalisation of the summed features.
    fn finish(&self, mut out: Vec<(u32, f32)>) -> Vec<(u32, f32)> {
        let d = &self.inner;
        out.retain(|e| e.1 != 0.0);
        let mut norm = 0.0f32;
        for (b, x) in &mut out {
            // Sublinear term frequency, keeping the sign; ln(1 + w) of a lone feature's weight
            // is precomputed (most buckets hold one feature).
            let a = x.abs();
            let l = d
                .ln1p_weights
                .iter()
                .find(|(w, _)| w.to_bits() == a.to_bits())
                .map_or_else(|| a.ln_1p(), |(_, l)| *l);
            *x = x.signum() * (1.0 + l) * d.idf.get(*b as usize).copied().unwrap_or(1.0);
            norm += *x * *x;
        }
        let norm = norm.sqrt();
        if norm > 0.0 {
            for (_, x) in &mut out {
                *x /= norm;
            }
        }
        out
    }
}

impl Default for HashEmbedder {
    fn default() -> Self {
        Self::builder().build()
    }
}

#[async_trait]
impl Embedder for HashEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn embed_sparse(&self, text: &str) -> Option<Vec<(u32, f32)>> {
        Some(self.embed_sparse_one(text))
    }

    fn dim(&self) -> usize {
        self.inner.dim
    }

    fn name(&self) -> &str {
        &self.inner.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosine;

    #[test]
    fn deterministic_normalised_and_meaningful() {
        let e = HashEmbedder::default();
        let a = e.embed_one("Book a flight to Paris");
        assert_eq!(a, e.embed_one("book a flight to paris!"));
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4);
        let b = e.embed_one("book flights to paris");
        let c = e.embed_one("what is the weather tomorrow");
        assert!(cosine(&a, &b) > cosine(&a, &c) + 0.2);
        assert!(e.embed_one("").iter().all(|x| *x == 0.0));
    }

    /// The dense computation the sparse one replaced: the same numbers, bit for bit.
    fn dense_reference(e: &HashEmbedder, text: &str) -> Vec<f32> {
        let d = &e.inner;
        let mut tf = vec![0.0f32; d.dim];
        features(text, &mut |h, kind| {
            tf[(h % d.dim as u64) as usize] += d.signed_weight(h, kind);
        });
        for (i, x) in tf.iter_mut().enumerate() {
            if *x != 0.0 {
                let s = x.signum() * (1.0 + x.abs().ln_1p());
                *x = s * d.idf.get(i).copied().unwrap_or(1.0);
            }
        }
        crate::normalize(&mut tf);
        tf
    }

    #[test]
    fn sparse_equals_the_dense_computation() {
        let fitted =
            HashEmbedder::builder().fit(["book a flight", "pay my invoice", "héllo wörld"]);
        let small = HashEmbedder::builder().dim(16).build();
        for e in [HashEmbedder::default(), fitted, small] {
            for t in [
                "What is the capital of France? Question number 12. Answer in one word.",
                "flight flight flight to paris paris",
                "Ünïcödé ß straße — 東京 へ 行く",
                "",
                "a",
            ] {
                assert_eq!(e.embed_one(t), dense_reference(&e, t), "{t}");
            }
        }
    }

    #[test]
    fn fitting_names_the_embedder_apart() {
        let a = HashEmbedder::builder().fit(["a b", "c d"]);
        let b = HashEmbedder::builder().fit(["a b", "e f"]);
        assert_ne!(a.name(), b.name());
        assert_ne!(HashEmbedder::default().name(), a.name());
    }
}
