use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use http::{HeaderValue, Request, Response};
use infergate_core::pipeline::ParsedRequest;
use infergate_core::{ApiKind, Body, MODEL_NAME_HEADER, Payload};
use tower::Service;
use tower::util::BoxCloneSyncService;

pub(crate) use infergate_core::egress::Upstream;

/// One backend: a name, a priority tier (lower first), a weight within its tier, the model
/// names it knows the requested models by, and the service that reaches it.
///
/// The service is the backend's whole per-backend stack — its client behind its own
/// credentials layer (so that each attempt is signed for the backend it goes to), and whatever
/// else belongs to that backend alone (a protocol translation, say).
pub struct Backend {
    pub(crate) name: String,
    pub(crate) tier: u32,
    pub(crate) weight: u32,
    models: HashMap<String, String>,
    any_model: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) service: Upstream,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("name", &self.name)
            .field("tier", &self.tier)
            .field("weight", &self.weight)
            .field("models", &self.models)
            .field("any_model", &self.any_model)
            .field("labels", &self.labels)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend in tier 0 with weight 1.
    pub fn new<S>(name: impl Into<String>, service: S) -> Self
    where
        S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        Self {
            name: name.into(),
            tier: 0,
            weight: 1,
            models: HashMap::new(),
            any_model: None,
            labels: BTreeMap::new(),
            service: BoxCloneSyncService::new(service),
        }
    }

    /// A backend that another driver reaches (see [`Failover::attempts`](crate::Failover::attempts)):
    /// called as a tower service it answers 502.
    pub fn external(name: impl Into<String>) -> Self {
        Self::new(
            name,
            tower::service_fn(|_req: Request<Body>| async {
                Ok::<_, Infallible>(
                    infergate_core::Rejection::new(
                        infergate_core::RejectKind::UpstreamUnavailable,
                        "this backend is reached by another driver",
                    )
                    .with_status(http::StatusCode::BAD_GATEWAY)
                    .into_response(),
                )
            }),
        )
    }

    /// Its priority tier (lower is tried first).
    #[must_use]
    pub fn tier(mut self, tier: u32) -> Self {
        self.tier = tier;
        self
    }

    /// Its weight within its tier (at least 1).
    #[must_use]
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight.max(1);
        self
    }

    /// Requests for model `from` ask this backend for `to` (e.g. `gpt-4o` → an Azure
    /// deployment's name, or `claude-sonnet-4` → a Bedrock model id).
    #[must_use]
    pub fn map_model(mut self, from: impl Into<String>, to: impl Into<String>) -> Self {
        self.models.insert(from.into(), to.into());
        self
    }

    /// Requests for any model not mapped with [`map_model`](Self::map_model) ask this backend
    /// for `model`.
    #[must_use]
    pub fn model(mut self, model: impl Into<String>) -> Self {
        self.any_model = Some(model.into());
        self
    }

    /// Adds a label (`region` = `eu-west-1`, `provider`, `data_residency`, …): a principal's
    /// [`allowed_labels`](infergate_core::Principal::allowed_labels) and the policy's
    /// [`restrict`](crate::FailoverPolicy::restrict) decide from them whether a request may go
    /// here.
    #[must_use]
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its labels.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// Rewrites the request's `model` (JSON body and `x-gateway-model-name`) for this backend,
    /// through the pipeline's parsed request (`ParsedRequest` in the extensions: the body is not
    /// parsed again, and re-serialised only when the model changes, once per attempt); without
    /// one, a buffered JSON body is parsed here. A body with no `model` passes unchanged.
    pub(crate) fn rewrite_model(&self, parts: &mut http::request::Parts, body: Body) -> Body {
        if self.models.is_empty() && self.any_model.is_none() {
            return body;
        }
        let parsed = parts.extensions.get::<ParsedRequest>();
        let mut payload = if let Some(p) = parsed.and_then(|p| p.payload.as_deref()) {
            p.clone()
        } else {
            let Some(bytes) = body.as_bytes() else {
                return body;
            };
            let api = ApiKind::from_path(parts.uri.path());
            let Ok(p) = Payload::parse(api, bytes) else {
                return body;
            };
            p
        };
        let Some(from) = payload.model() else {
            return body;
        };
        let Some(to) = self.models.get(from).or(self.any_model.as_ref()) else {
            return body;
        };
        if to == from {
            return body;
        }
        let to = to.clone();
        if let Ok(v) = HeaderValue::from_str(&to) {
            parts.headers.insert(MODEL_NAME_HEADER, v);
        }
        payload.set_model(to);
        let Ok(out) = payload.to_bytes() else {
            return body;
        };
        parts
            .headers
            .insert(http::header::CONTENT_LENGTH, out.len().into());
        // Later layers (the auth injector, a signer) read the request as it now is.
        let api = parsed.map_or_else(|| ApiKind::from_path(parts.uri.path()), |p| p.api);
        parts.extensions.insert(ParsedRequest {
            api,
            bytes: out.clone(),
            payload: Some(std::sync::Arc::new(payload)),
        });
        Body::full(out)
    }
}
