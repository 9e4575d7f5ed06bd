use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::{Cache, CacheConfig};

/// The cache as a tower layer of its own (a one-processor pipeline). To share one parse of the
/// request with other building blocks, put the [`Cache`] processor in a common
/// [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct CacheLayer {
    inner: PipelineLayer,
}

impl CacheLayer {
    /// A layer for `config`.
    pub fn new(config: CacheConfig) -> Self {
        Self {
            inner: PipelineLayer::processor(Cache::new(config)),
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
