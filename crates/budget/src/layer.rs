use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::{BudgetConfig, BudgetLimiter};

/// The budget limiter as a tower layer of its own (a one-processor pipeline). To share one
/// parse of the request with other building blocks, put the [`BudgetLimiter`] processor in a
/// common [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct BudgetLayer {
    limiter: BudgetLimiter,
    inner: PipelineLayer,
}

impl BudgetLayer {
    /// A layer for `config`, keeping spend in memory.
    pub fn new(config: BudgetConfig) -> Self {
        Self::from_limiter(BudgetLimiter::new(config))
    }

    /// A layer around a limiter built with its own store and clock.
    pub fn from_limiter(limiter: BudgetLimiter) -> Self {
        Self {
            inner: PipelineLayer::processor(limiter.clone()),
            limiter,
        }
    }

    /// The limiter (for [`BudgetLimiter::status`]).
    pub fn limiter(&self) -> &BudgetLimiter {
        &self.limiter
    }
}

impl<S> Layer<S> for BudgetLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
