//! Thresholds that calibrate themselves from the routes' own utterances.
//!
//! Each utterance plays both parts. As an **in-route** query it is scored against its own
//! route with itself left out (a paraphrase the route has not seen). As an **out-of-route**
//! query it is scored against the *other* routes only (its own route taken away: a request no
//! route covers, as close to the covered ones as real out-of-scope requests come). The
//! threshold is the score that best separates the two (the highest balanced accuracy: the mean
//! of the in-route pass rate and the out-of-route refusal rate).

use infergate_embed::dot;

use crate::Match;

/// What calibration found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The threshold every route without one of its own uses.
    pub threshold: f32,
    /// The in-route queries that reach it (leave-one-out), 0..1.
    pub in_route_pass: f32,
    /// The out-of-route queries it refuses, 0..1.
    pub out_of_route_refused: f32,
    /// How many utterances were scored as queries.
    pub queries: usize,
}

/// Most similarity computations calibration spends on `nearest` matching (queries are
/// sampled evenly past this).
const NEAREST_BUDGET: usize = 4_000_000;

/// Calibrates from `vectors` (per route, its utterances' L2-normalised vectors) for
/// `matching`. `None` with fewer than two routes or fewer than two utterances in all.
pub fn calibrate(vectors: &[Vec<Vec<f32>>], matching: Match) -> Option<Calibration> {
    if vectors.len() < 2 {
        return None;
    }
    let dim = vectors.iter().flatten().next()?.len();
    // Per route: the sum of its vectors, and its normalised centroid.
    let sums: Vec<Vec<f32>> = vectors
        .iter()
        .map(|vs| {
            let mut s = vec![0.0f32; dim];
            for v in vs {
                for (a, b) in s.iter_mut().zip(v) {
                    *a += b;
                }
            }
            s
        })
        .collect();
    let centroids: Vec<Vec<f32>> = sums
        .iter()
        .map(|s| {
            let mut c = s.clone();
            infergate_embed::normalize(&mut c);
            c
        })
        .collect();
    let total: usize = vectors.iter().map(Vec::len).sum();
    let mut pos = Vec::with_capacity(total);
    let mut neg = Vec::with_capacity(total);
    match matching {
        Match::Centroid => {
            for (r, vs) in vectors.iter().enumerate() {
                let ss = dot(&sums[r], &sums[r]);
                for u in vs {
                    // Own route without u: (S − u)·u / |S − u|.
                    if vs.len() >= 2 {
                        let us = dot(u, &sums[r]);
                        let uu = dot(u, u);
                        let norm = (ss - 2.0 * us + uu).max(0.0).sqrt();
                        if norm > 0.0 {
                            pos.push((us - uu) / norm);
                        }
                    }
                    let best = centroids
                        .iter()
                        .enumerate()
                        .filter(|(o, _)| *o != r)
                        .map(|(_, c)| dot(u, c))
                        .fold(f32::NEG_INFINITY, f32::max);
                    neg.push(best);
                }
            }
        }
        Match::Nearest { k } => {
            let stride = (total.saturating_mul(total) / NEAREST_BUDGET).max(1);
            let mut n = 0usize;
            for (r, vs) in vectors.iter().enumerate() {
                for (i, u) in vs.iter().enumerate() {
                    n += 1;
                    if !n.is_multiple_of(stride) {
                        continue;
                    }
                    let top = |sims: &mut Vec<f32>| -> Option<f32> {
                        if sims.is_empty() {
                            return None;
                        }
                        let k = k.clamp(1, sims.len());
                        sims.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
                        Some(sims[..k].iter().sum::<f32>() / k as f32)
                    };
                    let mut own: Vec<f32> = vs
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, v)| dot(u, v))
                        .collect();
                    if let Some(s) = top(&mut own) {
                        pos.push(s);
                    }
                    let best = vectors
                        .iter()
                        .enumerate()
                        .filter(|(o, _)| *o != r)
                        .filter_map(|(_, ws)| top(&mut ws.iter().map(|w| dot(u, w)).collect()))
                        .fold(f32::NEG_INFINITY, f32::max);
                    neg.push(best);
                }
            }
        }
    }
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let (threshold, pass, refused) = separate(&mut pos, &mut neg);
    Some(Calibration {
        threshold,
        in_route_pass: pass,
        out_of_route_refused: refused,
        queries: neg.len(),
    })
}

/// The threshold with the highest balanced accuracy between `pos` (should reach it) and
/// `neg` (should not), placed halfway into the gap below it, with its pass and refusal rates.
fn separate(pos: &mut [f32], neg: &mut [f32]) -> (f32, f32, f32) {
    pos.sort_by(f32::total_cmp);
    neg.sort_by(f32::total_cmp);
    let (np, nn) = (pos.len() as f32, neg.len() as f32);
    let mut best = (f32::NEG_INFINITY, 0.0f32, 0.0f32, 0.0f32);
    // Candidate thresholds: every score; at t, pass = #pos ≥ t, refused = #neg < t.
    let mut cands: Vec<f32> = pos.iter().chain(neg.iter()).copied().collect();
    cands.sort_by(f32::total_cmp);
    cands.dedup();
    let (mut i, mut j) = (0usize, 0usize);
    for t in cands {
        while i < pos.len() && pos[i] < t {
            i += 1;
        }
        while j < neg.len() && neg[j] < t {
            j += 1;
        }
        let pass = (pos.len() - i) as f32 / np;
        let refused = j as f32 / nn;
        let score = pass + refused;
        if score > best.0 {
            // Halfway between the highest refused out-of-route score and this one (the
            // lowest passing score): the widest margin on both sides.
            let below = if j > 0 { neg[j - 1] } else { t };
            best = (score, f32::midpoint(below, t), pass, refused);
        }
    }
    (best.1, best.2, best.3)
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // rates of 0 or 1 are exact
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let mut v = v.to_vec();
        infergate_embed::normalize(&mut v);
        v
    }

    #[test]
    fn separates_two_clusters() {
        let a = vec![
            unit(&[1.0, 0.1, 0.0]),
            unit(&[1.0, 0.0, 0.1]),
            unit(&[1.0, 0.05, 0.05]),
        ];
        let b = vec![
            unit(&[0.0, 1.0, 0.1]),
            unit(&[0.1, 1.0, 0.0]),
            unit(&[0.05, 1.0, 0.05]),
        ];
        let c = calibrate(&[a, b], Match::Centroid).unwrap();
        assert!(c.threshold > 0.2 && c.threshold < 0.99, "{c:?}");
        assert_eq!(c.in_route_pass, 1.0);
        assert_eq!(c.out_of_route_refused, 1.0);
        assert_eq!(c.queries, 6);
        let n = calibrate(
            &[
                vec![unit(&[1.0, 0.1, 0.0]), unit(&[1.0, 0.0, 0.1])],
                vec![unit(&[0.0, 1.0, 0.1]), unit(&[0.1, 1.0, 0.0])],
            ],
            Match::Nearest { k: 1 },
        )
        .unwrap();
        assert_eq!((n.in_route_pass, n.out_of_route_refused), (1.0, 1.0));
    }

    #[test]
    fn one_route_cannot_calibrate() {
        assert!(calibrate(&[vec![vec![1.0, 0.0]]], Match::Centroid).is_none());
    }
}
