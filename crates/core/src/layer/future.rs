use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::PipelineBody;

type BoxFuture<B, E> =
    Pin<Box<dyn Future<Output = Result<http::Response<PipelineBody<B>>, E>> + Send + 'static>>;

pin_project_lite::pin_project! {
    /// The response future of [`PipelineService`](super::PipelineService).
    ///
    /// The pipeline's phases are async and chained, so the state machine is the compiler's,
    /// boxed once per request.
    pub struct ResponseFuture<B, E> {
        #[pin]
        inner: BoxFuture<B, E>,
    }
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn new(inner: BoxFuture<B, E>) -> Self {
        Self { inner }
    }
}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<http::Response<PipelineBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
