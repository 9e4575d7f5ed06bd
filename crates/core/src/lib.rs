//! # infergate-core
//!
//! The core every infergate building block stands on: the ordered processor [`Pipeline`] with
//! failure modes (the WG AI Gateway payload-processing model), the lossless LLM
//! [`payload`] model, incremental [`sse`] decoding and encoding, bounded body buffering and the
//! one OpenAI-shaped error response.
//!
//! A [`Processor`] acts on the parsed request (inspect, mutate, reject, route) and on the
//! response (headers, a whole non-streamed body, or each SSE event of a stream). A
//! [`Pipeline`] runs processors in order with per-processor timeouts, an overall deadline and
//! each processor's [`FailureMode`]. [`PipelineLayer`] drives a pipeline as a tower `Layer`; a
//! pingora adapter drives the same pipeline through [`Pipeline`]'s phase methods.
//!
//! ```
//! use std::convert::Infallible;
//! use async_trait::async_trait;
//! use infergate_core::{Body, Decision, Phases, Pipeline, Processor, ProcessorError, RequestContext};
//! use tower::{Layer, ServiceExt};
//!
//! /// Rewrites every requested model to `gpt-4o-mini`.
//! #[derive(Debug)]
//! struct Downgrade;
//!
//! #[async_trait]
//! impl Processor for Downgrade {
//!     fn name(&self) -> &str { "downgrade" }
//!     fn phases(&self) -> Phases {
//!         Phases::REQUEST
//!     }
//!     async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
//!         if let Some(p) = cx.payload_mut() {
//!             p.set_model("gpt-4o-mini");
//!         }
//!         Ok(Decision::Continue)
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let pipeline = Pipeline::builder().processor(Downgrade).build();
//! // The upstream: here a closure that echoes the body it receives.
//! let upstream = tower::service_fn(|req: http::Request<Body>| async move {
//!     Ok::<_, Infallible>(http::Response::new(req.into_body()))
//! });
//! let svc = pipeline.layer().layer(upstream);
//! let req = http::Request::post("/v1/chat/completions")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"model":"gpt-4o","messages":[]}"#))
//!     .unwrap();
//! let resp = svc.oneshot(req).await.unwrap();
//! let body = http_body_util::BodyExt::collect(resp.into_body()).await.unwrap().to_bytes();
//! assert!(std::str::from_utf8(&body).unwrap().contains("gpt-4o-mini"));
//! # }
//! ```

pub mod body;
pub mod coding;
pub mod egress;
pub mod error;
pub mod hop;
pub mod layer;
pub mod payload;
pub mod pipeline;
pub mod principal;
pub mod sse;
pub mod trace;
pub mod usage;

pub use body::Body;

/// Runs `work` on the current tokio runtime without waiting for it (a store write, a
/// settlement: work a response must not wait for). Without a runtime it cannot run: logged as
/// `what` was not done.
pub fn spawn_background<F>(work: F, what: &'static str)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        h.spawn(work);
    } else {
        tracing::warn!(what, "no tokio runtime: not done");
    }
}
pub use error::{BoxError, FailureClass, ProcessorError, RejectKind, Rejection};
pub use layer::{PipelineBody, PipelineLayer, PipelineService};
pub use payload::{ApiKind, Payload};
pub use pipeline::{
    Decision, Exchange, FailureMode, MODEL_NAME_HEADER, Phases, Pipeline, PipelineBuilder,
    Processor, RequestContext, ResponseBody, ResponseContext, RouteDecision, Stage, StageOutcome,
    StagePhase, StageRecord, StreamEnd, StreamProcessor, StreamStop,
};
pub use principal::Principal;
