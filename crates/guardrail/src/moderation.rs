//! External moderation: an async [`Moderator`] consulted with the request's text — after the
//! local Redact checks, so it sees the redacted text — with its own timeout and failure mode. An
//! answer in an unexpected shape is a failure under that mode, never "not flagged".

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use infergate_client::UpstreamClient;
use infergate_core::{Body, FailureMode};
use tower::ServiceExt;

/// A moderation verdict.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Whether the text is flagged.
    pub flagged: bool,
    /// The categories that fired.
    pub categories: Vec<String>,
}

/// Why a moderator gave no verdict.
#[derive(Debug, thiserror::Error)]
#[error("moderation failed: {0}")]
pub struct ModerationError(pub String);

/// An external moderation service.
#[async_trait]
pub trait Moderator: Send + Sync + std::fmt::Debug + 'static {
    /// Moderates `text`.
    async fn moderate(&self, text: &str) -> Result<Verdict, ModerationError>;
}

/// How a guardrail uses a moderator.
#[derive(Debug, Clone)]
pub struct Moderation {
    /// The check's name.
    pub name: String,
    /// The service.
    pub moderator: Arc<dyn Moderator>,
    /// Bound on one call (default 2 s).
    pub timeout: Duration,
    /// When the service fails, times out or answers in an unexpected shape (a 200 without
    /// `flagged`): `FailOpen` lets the request through (traces it and reports
    /// `name:unavailable` in the findings header), `FailClosed` (default) answers 503
    /// (`moderation_unavailable`).
    pub failure_mode: FailureMode,
}

impl Moderation {
    /// A moderation check with the defaults.
    pub fn new(name: impl Into<String>, moderator: impl Moderator) -> Self {
        Self {
            name: name.into(),
            moderator: Arc::new(moderator),
            timeout: Duration::from_secs(2),
            failure_mode: FailureMode::FailClosed,
        }
    }

    /// Sets the timeout.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// Sets the failure mode.
    #[must_use]
    pub fn failure_mode(mut self, m: FailureMode) -> Self {
        self.failure_mode = m;
        self
    }
}

async fn post_json(
    client: &UpstreamClient,
    path: &str,
    key: Option<&str>,
    body: serde_json::Value,
) -> Result<serde_json::Value, ModerationError> {
    let mut req = http::Request::post(path)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .map_err(|e| ModerationError(e.to_string()))?;
    if let Some(k) = key
        && let Ok(v) = http::HeaderValue::from_str(&format!("Bearer {k}"))
    {
        req.headers_mut().insert(http::header::AUTHORIZATION, v);
    }
    let resp = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| ModerationError(format!("{:?}", e.kind())))?;
    let status = resp.status();
    let bytes: Bytes = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .map_err(|e| ModerationError(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(ModerationError(format!("status {status}")));
    }
    serde_json::from_slice(&bytes).map_err(|e| ModerationError(e.to_string()))
}

/// An OpenAI-compatible `/v1/moderations` endpoint (OpenAI, or any service speaking it).
pub struct OpenAiModerator {
    client: UpstreamClient,
    api_key: Option<String>,
    model: String,
}

impl std::fmt::Debug for OpenAiModerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiModerator")
            .field("client", &self.client)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .finish()
    }
}

impl OpenAiModerator {
    /// A moderator at `base_url` (e.g. `https://api.openai.com`), with an optional API key.
    pub fn new(base_url: &str, api_key: Option<String>) -> Result<Self, ModerationError> {
        Ok(Self {
            client: UpstreamClient::builder()
                .no_request_timeout()
                .build(base_url)
                .map_err(|e| ModerationError(e.to_string()))?,
            api_key,
            model: "omni-moderation-latest".into(),
        })
    }

    /// The moderation model (default `omni-moderation-latest`).
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }
}

#[async_trait]
impl Moderator for OpenAiModerator {
    async fn moderate(&self, text: &str) -> Result<Verdict, ModerationError> {
        let v = post_json(
            &self.client,
            "/v1/moderations",
            self.api_key.as_deref(),
            serde_json::json!({"model": self.model, "input": text}),
        )
        .await?;
        openai_verdict(&v)
    }
}

/// The verdict of an OpenAI `/v1/moderations` answer: flagged when any result is. An answer in
/// another shape (no `results`, an empty list, a result without a boolean `flagged`) is an
/// error, never "not flagged".
fn openai_verdict(v: &serde_json::Value) -> Result<Verdict, ModerationError> {
    let results = v
        .get("results")
        .and_then(serde_json::Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ModerationError("unexpected answer: no results".into()))?;
    let mut verdict = Verdict::default();
    for r in results {
        let flagged = r
            .get("flagged")
            .and_then(serde_json::Value::as_bool)
            .ok_or_else(|| {
                ModerationError("unexpected answer: a result without `flagged`".into())
            })?;
        verdict.flagged |= flagged;
        for (k, _) in r
            .get("categories")
            .and_then(serde_json::Value::as_object)
            .into_iter()
            .flatten()
            .filter(|(_, v)| v.as_bool() == Some(true))
        {
            if !verdict.categories.contains(k) {
                verdict.categories.push(k.clone());
            }
        }
    }
    Ok(verdict)
}

/// A generic webhook: `POST {url}` with `{"input": text}`, answering
/// `{"flagged": bool, "categories": [..]}`.
#[derive(Debug)]
pub struct WebhookModerator {
    client: UpstreamClient,
    path: String,
}

impl WebhookModerator {
    /// A webhook at `url`.
    pub fn new(url: &str) -> Result<Self, ModerationError> {
        let uri: http::Uri = url
            .parse()
            .map_err(|e: http::uri::InvalidUri| ModerationError(e.to_string()))?;
        let base = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("http"),
            uri.authority().map_or("", http::uri::Authority::as_str)
        );
        Ok(Self {
            client: UpstreamClient::builder()
                .no_request_timeout()
                .build(&base)
                .map_err(|e| ModerationError(e.to_string()))?,
            path: uri.path_and_query().map_or("/", |p| p.as_str()).to_owned(),
        })
    }
}

#[async_trait]
impl Moderator for WebhookModerator {
    async fn moderate(&self, text: &str) -> Result<Verdict, ModerationError> {
        let v = post_json(
            &self.client,
            &self.path,
            None,
            serde_json::json!({"input": text}),
        )
        .await?;
        webhook_verdict(&v)
    }
}

/// The verdict of a webhook answer; without a boolean `flagged` it is an error, never "not
/// flagged".
fn webhook_verdict(v: &serde_json::Value) -> Result<Verdict, ModerationError> {
    let flagged = v
        .get("flagged")
        .and_then(serde_json::Value::as_bool)
        .ok_or_else(|| ModerationError("unexpected answer: no boolean `flagged`".into()))?;
    Ok(Verdict {
        flagged,
        categories: v
            .get("categories")
            .and_then(serde_json::Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answers_in_an_unexpected_shape_are_errors() {
        for bad in [
            json!({}),
            json!({"results": []}),
            json!({"results": [{"categories": {}}]}),
            json!({"results": [{"flagged": "yes"}]}),
            json!({"id": "x", "flagged": true}),
        ] {
            assert!(openai_verdict(&bad).is_err(), "{bad}");
        }
        let v = openai_verdict(&json!({"results": [{"flagged": false}, {"flagged": true,
            "categories": {"violence": true, "hate": false}}]}))
        .unwrap();
        assert!(v.flagged);
        assert_eq!(v.categories, ["violence"]);
        for bad in [
            json!({}),
            json!({"flagged": null}),
            json!({"results": [{"flagged": true}]}),
        ] {
            assert!(webhook_verdict(&bad).is_err(), "{bad}");
        }
        assert!(!webhook_verdict(&json!({"flagged": false})).unwrap().flagged);
    }
}
