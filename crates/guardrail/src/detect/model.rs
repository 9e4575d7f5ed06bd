//! The learned prompt-injection detector: a logistic-regression head over sentence vectors,
//! trained by `examples/train_injection.rs` on the public labelled data (weights in
//! `models/`, with the data's and the script's fingerprints).

use std::collections::BTreeMap;
use std::sync::Arc;

use infergate_embed::{EmbedError, Embedder};

/// How the injection check decides.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum InjectionMode {
    /// The scored rules only ([`injection_score`](crate::detect::injection_score)).
    #[default]
    Rules,
    /// The learned head only.
    Model,
    /// A finding when the rules or the head says so (more recall).
    Either,
    /// A finding only when both say so (more precision).
    Both,
}

impl InjectionMode {
    /// The mode's name in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rules => "rules",
            Self::Model => "model",
            Self::Either => "either",
            Self::Both => "both",
        }
    }
}

/// Why a head could not be loaded.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The file is not a head.
    #[error("injection head: {0}")]
    Invalid(String),
    /// The head and the embedder disagree.
    #[error(
        "injection head '{head}' is for {want}-dimensional vectors of '{want_model}', but the embedder '{got_model}' gives {got}"
    )]
    Mismatch {
        /// The head's name.
        head: String,
        /// The head's dimension.
        want: usize,
        /// The head's embedder.
        want_model: String,
        /// The embedder's dimension.
        got: usize,
        /// The embedder's name.
        got_model: String,
    },
}

/// A logistic-regression head: `p = σ(w·v + b)` over an embedder's sentence vectors, with a
/// threshold per mode chosen on the validation split (precision ≥ 0.95).
#[derive(Debug, Clone)]
pub struct InjectionHead {
    name: String,
    embedder: String,
    weights: Vec<f32>,
    bias: f32,
    thresholds: BTreeMap<String, f32>,
    max_tokens: Option<usize>,
}

/// The head trained on all-MiniLM-L6-v2 vectors.
const MINILM_HEAD: &str = include_str!("../../models/injection-minilm.json");
/// The head trained on the static embedder's vectors (`scripts/distill_static.sh`).
const STATIC_HEAD: &str = include_str!("../../models/injection-static.json");

impl InjectionHead {
    /// The shipped head for all-MiniLM-L6-v2 (`MiniLm`), trained on the first 96 tokens of
    /// each text ([`max_tokens`](Self::max_tokens)): pair it with
    /// `MiniLm::load_with_max_tokens(dir, 96)` (as `InjectionModelSpec::build` does), or its
    /// scores drift.
    pub fn minilm() -> Self {
        Self::from_json(MINILM_HEAD).unwrap_or_else(|_| Self::empty("all-MiniLM-L6-v2", 384))
    }

    /// The shipped head for the static embedder distilled from MiniLM (`StaticEmbedder`).
    pub fn static_minilm() -> Self {
        Self::from_json(STATIC_HEAD).unwrap_or_else(|_| Self::empty("static-minilm-l6-v2-256", 256))
    }

    fn empty(embedder: &str, dim: usize) -> Self {
        Self {
            name: "empty".into(),
            embedder: embedder.into(),
            weights: vec![0.0; dim],
            bias: -10.0,
            thresholds: BTreeMap::new(),
            max_tokens: None,
        }
    }

    /// A head from the JSON `train_injection` writes (`dim`, `weights`, `bias`, `thresholds`,
    /// `embedder`, `name`).
    pub fn from_json(json: &str) -> Result<Self, HeadError> {
        let v: serde_json::Value =
            serde_json::from_str(json).map_err(|e| HeadError::Invalid(e.to_string()))?;
        let weights: Vec<f32> = v
            .get("weights")
            .and_then(serde_json::Value::as_array)
            .ok_or_else(|| HeadError::Invalid("no weights".into()))?
            .iter()
            .map(|w| w.as_f64().map(|x| x as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| HeadError::Invalid("a weight is not a number".into()))?;
        let bias = v
            .get("bias")
            .and_then(serde_json::Value::as_f64)
            .ok_or_else(|| HeadError::Invalid("no bias".into()))? as f32;
        let thresholds = v
            .get("thresholds")
            .and_then(serde_json::Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, t)| Some((k.clone(), t.as_f64()? as f32)))
                    .collect()
            })
            .unwrap_or_default();
        if weights.is_empty() || !weights.iter().all(|w| w.is_finite()) || !bias.is_finite() {
            return Err(HeadError::Invalid("weights must be finite numbers".into()));
        }
        Ok(Self {
            name: v["name"].as_str().unwrap_or("injection").to_owned(),
            embedder: v["embedder"].as_str().unwrap_or_default().to_owned(),
            weights,
            bias,
            thresholds,
            max_tokens: v
                .get("max_tokens")
                .and_then(serde_json::Value::as_u64)
                .and_then(|n| usize::try_from(n).ok()),
        })
    }

    /// How many tokens of a text the embedder read when the head was trained (`max_tokens`
    /// in its JSON; `None`: the embedder's default). Embed with the same, or the scores drift.
    pub fn max_tokens(&self) -> Option<usize> {
        self.max_tokens
    }

    /// The probability that a text whose sentence vector is `v` is an injection.
    pub fn score(&self, v: &[f32]) -> f32 {
        let z = infergate_embed::dot(&self.weights, v) + self.bias;
        1.0 / (1.0 + (-z).exp())
    }

    /// The threshold chosen for `mode` on the validation split (0.5 when the head has none).
    pub fn threshold(&self, mode: InjectionMode) -> f32 {
        self.thresholds.get(mode.as_str()).copied().unwrap_or(0.5)
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.weights.len()
    }

    /// The embedder the head was trained on.
    pub fn embedder(&self) -> &str {
        &self.embedder
    }

    /// The head's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// An embedder with the head trained on its vectors. Cheap to clone.
#[derive(Debug, Clone)]
pub struct InjectionModel {
    embedder: Arc<dyn Embedder>,
    head: Arc<InjectionHead>,
    sync: bool,
}

impl InjectionModel {
    /// Pairs `embedder` with `head`; their dimensions must agree (and a head trained on
    /// another embedder's vectors is refused by name when the names differ).
    pub fn new(embedder: Arc<dyn Embedder>, head: InjectionHead) -> Result<Self, HeadError> {
        if embedder.dim() != head.dim()
            || (!head.embedder.is_empty() && head.embedder != embedder.name())
        {
            return Err(HeadError::Mismatch {
                head: head.name.clone(),
                want: head.dim(),
                want_model: head.embedder.clone(),
                got: embedder.dim(),
                got_model: embedder.name().to_owned(),
            });
        }
        Ok(Self {
            sync: embedder.embed_dense("").is_some(),
            embedder,
            head: Arc::new(head),
        })
    }

    /// Whether `other` is this model (the same embedder and head).
    pub fn same_as(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.head, &other.head) && Arc::ptr_eq(&self.embedder, &other.embedder)
    }

    /// The head.
    pub fn head(&self) -> &InjectionHead {
        &self.head
    }

    /// Whether scores come synchronously (a static embedder: microseconds, on the calling
    /// thread) rather than through [`InjectionModel::score`].
    pub fn is_sync(&self) -> bool {
        self.sync
    }

    /// The score of `text` now, when the embedder is synchronous.
    pub fn score_now(&self, text: &str) -> Option<f32> {
        if !self.sync {
            return None;
        }
        self.embedder.embed_dense(text).map(|v| self.head.score(&v))
    }

    /// The scores of `texts` (one batch through the embedder; a model such as MiniLM runs on
    /// the blocking pool, off the async executor).
    pub async fn score(&self, texts: &[String]) -> Result<Vec<f32>, EmbedError> {
        if let Some(scores) = texts
            .iter()
            .map(|t| self.score_now(t))
            .collect::<Option<Vec<f32>>>()
        {
            return Ok(scores);
        }
        let vs = self.embedder.embed(texts).await?;
        Ok(vs.iter().map(|v| self.head.score(v)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minilm_head_says_how_many_tokens_it_was_trained_on() {
        // Loaded with the same (`InjectionModelSpec::build`): 96 tokens keep MiniLM within
        // its time budget on long prompts.
        assert_eq!(InjectionHead::minilm().max_tokens(), Some(96));
        assert_eq!(InjectionHead::static_minilm().max_tokens(), None);
    }

    #[test]
    fn the_shipped_heads_parse_and_have_a_threshold_per_mode() {
        for (h, dim) in [(MINILM_HEAD, 384), (STATIC_HEAD, 256)] {
            let head = InjectionHead::from_json(h).expect("a shipped head parses");
            assert_eq!(head.dim(), dim);
            for m in [
                InjectionMode::Model,
                InjectionMode::Either,
                InjectionMode::Both,
            ] {
                let t = head.threshold(m);
                assert!(t > 0.0 && t < 1.0, "{m:?}: {t}");
            }
        }
    }
}
