use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::{Guardrail, GuardrailConfig};

/// The guardrail as a tower layer of its own (a one-processor pipeline). To share one parse of
/// the request with other building blocks, put the [`Guardrail`] processor in a common
/// [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct GuardrailLayer {
    inner: PipelineLayer,
}

impl GuardrailLayer {
    /// A layer for `config`.
    pub fn new(config: GuardrailConfig) -> Self {
        Self {
            inner: PipelineLayer::processor(Guardrail::new(config)),
        }
    }
}

impl<S> Layer<S> for GuardrailLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
