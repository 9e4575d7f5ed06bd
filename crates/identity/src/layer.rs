use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::Identity;

/// The identity processor as a tower layer of its own (a one-processor pipeline). To share one
/// parse of the request with other building blocks, put the [`Identity`] processor first in a
/// common [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct IdentityLayer {
    identity: Identity,
    inner: PipelineLayer,
}

impl IdentityLayer {
    /// A layer around `identity`.
    pub fn new(identity: Identity) -> Self {
        Self {
            inner: PipelineLayer::processor(identity.clone()),
            identity,
        }
    }

    /// The processor.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }
}

impl<S> Layer<S> for IdentityLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
