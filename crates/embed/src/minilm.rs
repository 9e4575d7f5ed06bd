//! all-MiniLM-L6-v2 (a 6-layer BERT sentence encoder, 384 dimensions) run locally with candle.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use tokenizers::Tokenizer;

use crate::{EmbedError, Embedder, normalize};

/// Longest input, in tokens (sentence-transformers' `max_seq_length` for this model).
const MAX_TOKENS: usize = 256;

/// all-MiniLM-L6-v2 from a directory holding `model.safetensors`, `tokenizer.json` and
/// `config.json` (no hub access: see the crate README for where the weights come from), on the
/// CPU. Sentence vectors are the mean of the token vectors under the attention mask,
/// L2-normalised, as sentence-transformers computes them. Batches run on the blocking pool.
#[derive(Clone)]
pub struct MiniLm {
    inner: Arc<Inner>,
}

struct Inner {
    model: BertModel,
    tokenizer: Tokenizer,
    dim: usize,
}

impl std::fmt::Debug for MiniLm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MiniLm")
            .field("dim", &self.inner.dim)
            .finish_non_exhaustive()
    }
}

fn model_err(e: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(e.to_string())
}

impl MiniLm {
    /// Loads the model from `dir`.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        Self::load_with_max_tokens(dir, MAX_TOKENS)
    }

    /// Loads the model from `dir`, reading at most `max_tokens` tokens of each text (the
    /// default is 256; fewer cost less — the cost grows with the length — and read less).
    pub fn load_with_max_tokens(
        dir: impl AsRef<Path>,
        max_tokens: usize,
    ) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        let read = |name: &str| {
            std::fs::read(dir.join(name))
                .map_err(|e| EmbedError::Model(format!("{}: {e}", dir.join(name).display())))
        };
        let config: Config = serde_json::from_slice(&read("config.json")?).map_err(model_err)?;
        let mut tokenizer = Tokenizer::from_bytes(read("tokenizer.json")?).map_err(model_err)?;
        // The shipped tokenizer pads every input to 128 tokens and cuts at 128; pad a batch only
        // to its longest input instead (the attention mask makes padding inert, so the vectors
        // are the same, and short texts cost far less), and cut at 256 tokens as
        // sentence-transformers does for this model.
        tokenizer.with_padding(Some(tokenizers::PaddingParams::default()));
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: max_tokens.max(2).min(config.max_position_embeddings),
                ..Default::default()
            }))
            .map_err(model_err)?;
        let vb = VarBuilder::from_buffered_safetensors(
            read("model.safetensors")?,
            DType::F32,
            &Device::Cpu,
        )
        .map_err(model_err)?;
        let model = BertModel::load(vb, &config).map_err(model_err)?;
        Ok(Self {
            inner: Arc::new(Inner {
                dim: config.hidden_size,
                model,
                tokenizer,
            }),
        })
    }

    /// Embeds `texts` on the current thread.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let inner = &self.inner;
        let enc = inner
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(model_err)?;
        let ids: Vec<Vec<u32>> = enc.iter().map(|e| e.get_ids().to_vec()).collect();
        let mask: Vec<Vec<u32>> = enc
            .iter()
            .map(|e| e.get_attention_mask().to_vec())
            .collect();
        let dev = Device::Cpu;
        let ids = Tensor::new(ids, &dev).map_err(model_err)?;
        let mask = Tensor::new(mask, &dev).map_err(model_err)?;
        let types = ids.zeros_like().map_err(model_err)?;
        let hidden = inner
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(model_err)?;
        // Mean over the tokens the mask keeps.
        let m = mask
            .to_dtype(DType::F32)
            .and_then(|m| m.unsqueeze(2))
            .map_err(model_err)?;
        let summed = hidden
            .broadcast_mul(&m)
            .and_then(|t| t.sum(1))
            .map_err(model_err)?;
        let counts = m
            .sum(1)
            .and_then(|c| c.clamp(1e-9, f64::MAX))
            .map_err(model_err)?;
        let mean = summed.broadcast_div(&counts).map_err(model_err)?;
        let mut out: Vec<Vec<f32>> = mean.to_vec2().map_err(model_err)?;
        for v in &mut out {
            normalize(v);
        }
        Ok(out)
    }
}

impl MiniLm {
    /// The vocabulary, token `i` at index `i`.
    pub fn vocabulary(&self) -> Vec<String> {
        let vocab = self.inner.tokenizer.get_vocab(true);
        let mut tokens = vec![String::new(); vocab.len()];
        for (t, id) in vocab {
            if let Some(slot) = tokens.get_mut(id as usize) {
                *slot = t;
            }
        }
        tokens
    }

    /// The model's output for each token alone (`[CLS] token [SEP]`, mean-pooled, not
    /// normalised): the distillation's raw token vectors.
    pub fn token_vectors(&self, ids: &[u32]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let tk = &self.inner.tokenizer;
        let (Some(cls), Some(sep)) = (tk.token_to_id("[CLS]"), tk.token_to_id("[SEP]")) else {
            return Err(EmbedError::Model("the tokenizer has no [CLS]/[SEP]".into()));
        };
        let dev = Device::Cpu;
        let rows: Vec<Vec<u32>> = ids.iter().map(|id| vec![cls, *id, sep]).collect();
        let ids = Tensor::new(rows, &dev).map_err(model_err)?;
        let mask = ids.ones_like().map_err(model_err)?;
        let types = ids.zeros_like().map_err(model_err)?;
        let hidden = self
            .inner
            .model
            .forward(&ids, &types, Some(&mask))
            .map_err(model_err)?;
        let mean = hidden.mean(1).map_err(model_err)?;
        mean.to_vec2().map_err(model_err)
    }
}

#[async_trait]
impl Embedder for MiniLm {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let this = self.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || this.embed_blocking(&texts))
            .await
            .map_err(model_err)?
    }

    fn dim(&self) -> usize {
        self.inner.dim
    }

    fn name(&self) -> &str {
        "all-MiniLM-L6-v2"
    }
}
