use infergate_core::{PipelineLayer, PipelineService};
use tower::Layer;

use crate::{RateLimitConfig, TokenRateLimiter};

/// The token rate limiter as a tower layer of its own (a one-processor pipeline). To share one
/// parse of the request with other building blocks, put the [`TokenRateLimiter`] processor in a
/// common [`Pipeline`](infergate_core::Pipeline) instead.
#[derive(Debug, Clone)]
pub struct TokenRateLimitLayer {
    limiter: TokenRateLimiter,
    inner: PipelineLayer,
}

impl TokenRateLimitLayer {
    /// A layer for `config`.
    pub fn new(config: RateLimitConfig) -> Self {
        let limiter = TokenRateLimiter::new(config);
        Self {
            inner: PipelineLayer::processor(limiter.clone()),
            limiter,
        }
    }

    /// The limiter (to subscribe to settlements).
    pub fn limiter(&self) -> &TokenRateLimiter {
        &self.limiter
    }
}

impl<S> Layer<S> for TokenRateLimitLayer {
    type Service = PipelineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.inner.layer(inner)
    }
}
