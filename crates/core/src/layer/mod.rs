//! The tower driver of a [`Pipeline`](crate::Pipeline): [`PipelineLayer`] wraps any service
//! that takes `Request<Body>` and answers `Response<B>` for any body `B`.
//!
//! - the request body (any `http_body::Body`) is buffered up to the pipeline's bound and parsed
//!   once; the inner service receives a buffered, replayable [`Body`](crate::Body) and a
//!   [`ParsedRequest`](crate::pipeline::ParsedRequest) extension;
//! - the inner service's error type is unchanged: every policy outcome is a response;
//! - an SSE response passes through untouched unless a processor asked to see its events; a
//!   non-streamed one is buffered only when a processor takes part in the whole-body phase.
//!
//! ```
//! use infergate_core::{Body, Pipeline, PipelineLayer};
//! use tower::{Layer, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let upstream = tower::service_fn(|_req: http::Request<Body>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("{}")))
//! });
//! let svc = PipelineLayer::new(Pipeline::default()).layer(upstream);
//! let bad = http::Request::post("/v1/chat/completions").body(Body::from("{oops")).unwrap();
//! let resp = svc.oneshot(bad).await.unwrap();
//! assert_eq!(resp.status(), 400);
//! # }
//! ```

mod body;
mod future;
#[allow(clippy::module_inception)]
mod layer;
mod service;

pub use body::PipelineBody;
pub use future::ResponseFuture;
pub use layer::PipelineLayer;
pub use service::PipelineService;
