use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::Router;

/// The router as a tower layer of its own (a one-processor pipeline). To share one parse of
/// the request with other building blocks, put the [`Router`] processor in a common
/// [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct RouterLayer {
    inner: PipelineLayer,
}

impl RouterLayer {
    /// A layer around `router` (built with [`Router::build`]).
    pub fn new(router: Router) -> Self {
        Self {
            inner: PipelineLayer::processor(router),
        }
    }
}

impl<S> Layer<S> for RouterLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
