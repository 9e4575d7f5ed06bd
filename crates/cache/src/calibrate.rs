//! The semantic cache's threshold, chosen for a false-hit rate instead of guessed: pairs of
//! texts labelled "the same question" (a hit would be right) or "not the same" (a hit would
//! answer with another question's answer) are embedded, and the threshold is the lowest
//! similarity at which at most the given share of the "not the same" pairs would hit.
//!
//! ```
//! use infergate_cache::calibrate::{ParaphrasePair, threshold_for};
//!
//! // Similarities of labelled pairs (from `calibrate`, or computed elsewhere).
//! let same = [0.97, 0.93, 0.91, 0.88, 0.80];
//! let other = [0.90, 0.72, 0.65, 0.51, 0.40, 0.33, 0.30, 0.21, 0.15, 0.10];
//! let c = threshold_for(&same, &other, 0.0);
//! assert!(c.threshold > 0.90 && c.threshold <= 0.91);
//! assert_eq!(c.false_hit_rate, 0.0);
//! assert_eq!(c.hit_rate, 0.6); // 0.97, 0.93 and 0.91 still hit
//! # let _ = ParaphrasePair::new("a", "b", true);
//! ```
//!
//! Public labelled pairs: the STS Benchmark (Cer et al., SemEval 2017; 8,628 sentence pairs
//! scored 0–5 by annotators), read by [`read_sts_benchmark`]: a score of 4 or more counts as the
//! same question, under 3 as not the same, and the band between is left out.

use infergate_embed::{EmbedError, Embedder, cosine};

/// Two texts and whether a cached answer to one is a right answer to the other.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ParaphrasePair {
    /// One text.
    pub a: String,
    /// The other.
    pub b: String,
    /// True when they ask the same thing.
    pub same: bool,
}

impl ParaphrasePair {
    /// A labelled pair.
    pub fn new(a: impl Into<String>, b: impl Into<String>, same: bool) -> Self {
        Self {
            a: a.into(),
            b: b.into(),
            same,
        }
    }
}

/// The STS Benchmark's score from which a pair counts as the same question.
pub const STS_SAME_FROM: f32 = 4.0;
/// The score under which a pair counts as not the same.
pub const STS_OTHER_BELOW: f32 = 3.0;

/// Reads the STS Benchmark's tab-separated files (`sts-train.csv`, `sts-dev.csv`,
/// `sts-test.csv`: genre, file, year, id, score, sentence 1, sentence 2, sometimes more
/// columns after): a score ≥ [`STS_SAME_FROM`] is the same question, < [`STS_OTHER_BELOW`] not
/// the same; the pairs between, and lines that are not of that shape, are skipped.
/// `genres`, when given, keeps only those genres (`main-forums` is the closest to chat).
pub fn read_sts_benchmark(text: &str, genres: Option<&[&str]>) -> Vec<ParaphrasePair> {
    text.lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let (genre, score, a, b) = (*f.first()?, f.get(4)?, f.get(5)?, f.get(6)?);
            if genres.is_some_and(|g| !g.contains(&genre)) {
                return None;
            }
            let score: f32 = score.trim().parse().ok()?;
            let same = if score >= STS_SAME_FROM {
                true
            } else if score < STS_OTHER_BELOW {
                false
            } else {
                return None;
            };
            Some(ParaphrasePair::new(*a, *b, same))
        })
        .collect()
}

/// A threshold and what it does on the pairs it was chosen on (or measured on).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct SemanticCalibration {
    /// The similarity from which the cache answers.
    pub threshold: f32,
    /// Share of same-question pairs that hit at the threshold.
    pub hit_rate: f64,
    /// Share of not-the-same pairs that hit at the threshold (a wrong answer served).
    pub false_hit_rate: f64,
    /// Same-question pairs counted.
    pub same_pairs: usize,
    /// Not-the-same pairs counted.
    pub other_pairs: usize,
}

/// The lowest threshold at which at most `max_false_hits` (a share, 0–1) of the `other`
/// similarities reach it, with the rates it gives. With no `other` pairs, the threshold is
/// the lowest `same` similarity.
pub fn threshold_for(same: &[f32], other: &[f32], max_false_hits: f64) -> SemanticCalibration {
    let mut sorted: Vec<f32> = other.iter().copied().filter(|s| s.is_finite()).collect();
    sorted.sort_by(|a, b| b.total_cmp(a));
    // At most `allowed` of them may reach the threshold: just above the next one.
    let allowed = (max_false_hits.clamp(0.0, 1.0) * sorted.len() as f64).floor() as usize;
    let threshold = match sorted.get(allowed) {
        Some(&s) => next_up(s),
        None => same
            .iter()
            .copied()
            .filter(|s| s.is_finite())
            .fold(f32::INFINITY, f32::min)
            .min(1.0),
    };
    rates_at(same, other, threshold)
}

/// The rates of a given threshold on labelled similarities.
pub fn rates_at(same: &[f32], other: &[f32], threshold: f32) -> SemanticCalibration {
    let share = |v: &[f32]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().filter(|&&s| s >= threshold).count() as f64 / v.len() as f64
        }
    };
    SemanticCalibration {
        threshold,
        hit_rate: share(same),
        false_hit_rate: share(other),
        same_pairs: same.len(),
        other_pairs: other.len(),
    }
}

/// The similarities of labelled pairs under `embedder`: (same-question ones, the others).
pub async fn similarities(
    embedder: &dyn Embedder,
    pairs: &[ParaphrasePair],
) -> Result<(Vec<f32>, Vec<f32>), EmbedError> {
    let (mut same, mut other) = (Vec::new(), Vec::new());
    for chunk in pairs.chunks(32) {
        let texts: Vec<String> = chunk
            .iter()
            .flat_map(|p| [p.a.clone(), p.b.clone()])
            .collect();
        let v = embedder.embed(&texts).await?;
        for (p, ab) in chunk.iter().zip(v.chunks(2)) {
            if let [a, b] = ab {
                let s = cosine(a, b);
                if p.same {
                    same.push(s);
                } else {
                    other.push(s);
                }
            }
        }
    }
    Ok((same, other))
}

/// Embeds the pairs and chooses the threshold for `max_false_hits` (see [`threshold_for`]).
pub async fn calibrate(
    embedder: &dyn Embedder,
    pairs: &[ParaphrasePair],
    max_false_hits: f64,
) -> Result<SemanticCalibration, EmbedError> {
    let (same, other) = similarities(embedder, pairs).await?;
    Ok(threshold_for(&same, &other, max_false_hits))
}

/// The smallest `f32` above `x` (for x in the similarities' range).
fn next_up(x: f32) -> f32 {
    if x.is_nan() || x == f32::INFINITY {
        return x;
    }
    if x == 0.0 {
        return f32::from_bits(1);
    }
    let bits = x.to_bits();
    f32::from_bits(if x > 0.0 { bits + 1 } else { bits - 1 })
}

#[cfg(test)]
#[allow(clippy::float_cmp)] // rates of whole counts, compared exactly
mod tests {
    use super::*;

    #[test]
    fn at_most_the_allowed_share_of_other_pairs_hit() {
        let other: Vec<f32> = (0..100).map(|i| i as f32 / 100.0).collect();
        let same = [0.99, 0.985, 0.9, 0.5];
        for (max, want) in [(0.0, 0), (0.01, 1), (0.05, 5), (0.2, 20)] {
            let c = threshold_for(&same, &other, max);
            let hits = other.iter().filter(|&&s| s >= c.threshold).count();
            assert_eq!(hits, want, "max {max}");
            assert!((c.false_hit_rate - want as f64 / 100.0).abs() < 1e-9);
        }
        let c = threshold_for(&same, &other, 0.0);
        assert!(c.threshold > 0.99 && c.threshold < 0.9901);
        assert_eq!(c.hit_rate, 0.0);
        let c = threshold_for(&same, &other, 0.1);
        assert_eq!(c.hit_rate, 0.75);
    }

    #[test]
    fn ties_and_odd_values_do_not_let_more_through() {
        let other = [0.8, 0.8, 0.8, f32::NAN, 0.1];
        let c = threshold_for(&[0.9], &other, 0.3);
        assert_eq!(c.false_hit_rate, 0.0);
        assert!(c.threshold > 0.8);
        // No other pairs: the lowest same-question similarity.
        let c = threshold_for(&[0.9, 0.7], &[], 0.01);
        assert_eq!(c.threshold, 0.7);
        assert_eq!(c.hit_rate, 1.0);
    }

    #[test]
    fn sts_lines_are_read_by_score() {
        let text = "main-forums\tanswers-forums\t2015\t0001\t4.2\tHow do I pay?\tHow can I pay?\n\
                    main-news\theadlines\t2016\t0002\t1.0\tA cat sleeps.\tMarkets fall.\n\
                    main-news\theadlines\t2016\t0003\t3.5\tIn between.\tSkipped.\n\
                    main-news\theadlines\t2016\t0004\t0.4\tx\ty\textra\tcolumns\n\
                    not a line of the benchmark\n";
        let all = read_sts_benchmark(text, None);
        assert_eq!(
            all,
            vec![
                ParaphrasePair::new("How do I pay?", "How can I pay?", true),
                ParaphrasePair::new("A cat sleeps.", "Markets fall.", false),
                ParaphrasePair::new("x", "y", false),
            ]
        );
        assert_eq!(read_sts_benchmark(text, Some(&["main-forums"])).len(), 1);
    }
}
