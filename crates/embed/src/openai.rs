//! An OpenAI-compatible `/v1/embeddings` client.

use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::BodyExt;
use infergate_client::UpstreamClient;
use infergate_core::Body;
use tower::ServiceExt;

use crate::{EmbedError, Embedder};

/// Embeddings from any OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, vLLM, TEI,
/// Ollama, the mock provider), on infergate's pooled HTTP client. Long batches are split into
/// requests of at most [`OpenAiEmbedder::batch_size`] inputs.
#[derive(Clone)]
pub struct OpenAiEmbedder {
    client: UpstreamClient,
    model: String,
    api_key: Option<String>,
    dim: usize,
    batch: usize,
    name: String,
}

impl fmt::Debug for OpenAiEmbedder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiEmbedder")
            .field("base_url", self.client.base_url())
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl OpenAiEmbedder {
    /// Embeddings of `model` (whose vectors have `dim` numbers) from `client`'s base URL.
    pub fn new(client: UpstreamClient, model: impl Into<String>, dim: usize) -> Self {
        let model = model.into();
        Self {
            name: format!("openai:{}:{model}", client.base_url()),
            client,
            model,
            api_key: None,
            dim,
            batch: 256,
        }
    }

    /// Sends `Authorization: Bearer <key>` (never printed by `Debug`).
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Inputs per request (default 256).
    #[must_use]
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    async fn call(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let body = serde_json::json!({"model": self.model, "input": texts});
        let mut req = http::Request::post("/v1/embeddings")
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::full(Bytes::from(body.to_string())))
            .map_err(|e| EmbedError::Upstream(e.to_string()))?;
        if let Some(k) = &self.api_key {
            let v = http::HeaderValue::from_str(&format!("Bearer {k}"))
                .map_err(|_| EmbedError::Upstream("the API key is not a valid header".into()))?;
            req.headers_mut().insert(http::header::AUTHORIZATION, v);
        }
        let resp = self
            .client
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| EmbedError::Upstream(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| EmbedError::Upstream(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.pointer("/error/message")?.as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(EmbedError::Upstream(format!("status {status} {detail}")));
        }
        let v: EmbeddingsResponse = serde_json::from_slice(&bytes)
            .map_err(|e| EmbedError::InvalidResponse(e.to_string()))?;
        let mut out: Vec<Option<Vec<f32>>> = vec![None; texts.len()];
        for d in v.data {
            if d.embedding.len() != self.dim {
                return Err(EmbedError::InvalidResponse(format!(
                    "a vector of {} numbers, expected {}",
                    d.embedding.len(),
                    self.dim
                )));
            }
            let slot = out
                .get_mut(d.index)
                .ok_or_else(|| EmbedError::InvalidResponse(format!("index {}", d.index)))?;
            *slot = Some(d.embedding);
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| EmbedError::InvalidResponse("a vector is missing".into())))
            .collect()
    }
}

#[derive(serde::Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingData>,
}

#[derive(serde::Deserialize)]
struct EmbeddingData {
    index: usize,
    embedding: Vec<f32>,
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.batch) {
            out.extend(self.call(chunk).await?);
        }
        Ok(out)
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn name(&self) -> &str {
        &self.name
    }
}
