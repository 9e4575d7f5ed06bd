use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;

use super::{RequestContext, ResponseBody, ResponseContext};
use crate::error::{ProcessorError, Rejection};
use crate::sse::SseEvent;

/// What happens when a processor fails or times out.
///
/// A rejection is a decision, not a failure: it always stops the pipeline, whatever the mode.
///
/// With the `serde` feature (default) it deserializes from `"fail_closed"` or `"fail_open"`.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum FailureMode {
    /// Reject the request with an error response (the default; for security processors).
    #[default]
    FailClosed,
    /// Skip the processor and go on (for optimisations: cache, enrichment, analytics).
    FailOpen,
}

/// The phases a processor takes part in. The pipeline calls a processor only in the phases it
/// declares, so a request-only processor costs nothing on the response path.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Phases(u8);

impl Phases {
    /// No phase.
    pub const NONE: Self = Self(0);
    /// The request phase ([`Processor::on_request`]).
    pub const REQUEST: Self = Self(1);
    /// The response-head phase ([`Processor::on_response`]).
    pub const RESPONSE: Self = Self(2);
    /// The whole-body phase for non-streamed responses ([`Processor::on_response_body`]).
    pub const RESPONSE_BODY: Self = Self(4);
    /// The per-event phase for streamed responses ([`Processor::on_stream`]).
    pub const RESPONSE_EVENTS: Self = Self(8);
    /// Every phase.
    pub const ALL: Self = Self(15);

    /// Whether every phase of `other` is in `self`.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of two sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::ops::BitOr for Phases {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Debug for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::REQUEST, "REQUEST"),
            (Self::RESPONSE, "RESPONSE"),
            (Self::RESPONSE_BODY, "RESPONSE_BODY"),
            (Self::RESPONSE_EVENTS, "RESPONSE_EVENTS"),
        ];
        let set: Vec<_> = names
            .iter()
            .filter(|(p, _)| self.contains(*p))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Phases({})", set.join(" | "))
    }
}

/// What a processor decided.
#[non_exhaustive]
#[derive(Debug)]
pub enum Decision {
    /// Go on to the next processor (and then the upstream).
    Continue,
    /// Answer with an error response; the rest of the pipeline is skipped. A decision, never
    /// "failed open".
    Reject(Rejection),
    /// Answer with this response instead of calling the upstream (a cache hit); the rest of the
    /// pipeline is skipped, and earlier processors see this response in their response phases.
    Respond(http::Response<crate::Body>),
}

impl From<Rejection> for Decision {
    fn from(r: Rejection) -> Self {
        Self::Reject(r)
    }
}

/// The future an async phase of a [`Processor`] returns (what its `async fn`s desugar to under
/// `#[async_trait]`).
pub type PhaseFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Decision, ProcessorError>> + Send + 'a>>;

/// A phase already done that continues, without allocating (the future is zero-sized): for a
/// processor whose phase has nothing to wait for. It does its work, then returns this from the
/// phase method written out without `async` (an `async fn` phase allocates its future on every
/// call).
///
/// ```
/// use async_trait::async_trait;
/// use infergate_core::pipeline::{PhaseFuture, continued};
/// use infergate_core::{Phases, Processor, RequestContext};
///
/// struct Tag;
///
/// #[async_trait]
/// impl Processor for Tag {
///     fn name(&self) -> &str {
///         "tag"
///     }
///     fn phases(&self) -> Phases {
///         Phases::REQUEST
///     }
///     fn on_request<'life0, 'life1, 'async_trait>(
///         &'life0 self,
///         cx: &'life1 mut RequestContext,
///     ) -> PhaseFuture<'async_trait>
///     where
///         'life0: 'async_trait,
///         'life1: 'async_trait,
///         Self: 'async_trait,
///     {
///         cx.headers_mut().insert("x-tagged", http::HeaderValue::from_static("1"));
///         continued()
///     }
/// }
/// ```
pub fn continued<'a>() -> PhaseFuture<'a> {
    Box::pin(Continued)
}

/// The zero-sized future of [`continued`].
struct Continued;

impl Future for Continued {
    type Output = Result<Decision, ProcessorError>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        Poll::Ready(Ok(Decision::Continue))
    }
}

/// One unit of the ordered pipeline (the WG AI Gateway payload-processing model).
///
/// Every phase method has a default that does nothing, so a processor implements only its
/// phases, and says which in [`Processor::phases`] (required: the pipeline skips the others).
///
/// The request phase runs in pipeline order; the response phases run in reverse order, and only
/// for processors whose request phase ran. Async phases are bounded by the processor's
/// [`timeout`](Processor::timeout) and the pipeline's deadline; the per-event stream phase is
/// synchronous (so that it can run inside pingora's synchronous body filters) and must be cheap.
#[async_trait]
pub trait Processor: Send + Sync + 'static {
    /// The name used in traces, rejections and reports.
    fn name(&self) -> &str;

    /// What happens when this processor fails or times out. Default: `FailClosed`.
    fn failure_mode(&self) -> FailureMode {
        FailureMode::FailClosed
    }

    /// How long each async phase may take. `None` uses the pipeline's default timeout.
    fn timeout(&self) -> Option<Duration> {
        None
    }

    /// The phases this processor takes part in: the pipeline calls it in these only. There is
    /// no default, because the costly choice must be a deliberate one: a processor that takes
    /// part in [`Phases::RESPONSE_BODY`] makes every non-streamed answer buffered, and one in
    /// [`Phases::RESPONSE_EVENTS`] makes every stream decoded event by event.
    fn phases(&self) -> Phases;

    /// The request phase: inspect or mutate the parsed request and its headers, store per-request
    /// state, set a routing decision, or answer early.
    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let _ = cx;
        Ok(Decision::Continue)
    }

    /// The response-head phase: inspect or change the status and headers, or replace the
    /// response.
    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        let _ = cx;
        Ok(Decision::Continue)
    }

    /// The whole-body phase, for non-streamed responses: the body is buffered (bounded) only
    /// when some processor takes part in this phase.
    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        let _ = (cx, body);
        Ok(Decision::Continue)
    }

    /// For a streamed (SSE) response: the per-event processor for this response, or `None` to
    /// let the stream pass untouched.
    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        let _ = cx;
        None
    }

    /// Called (in reverse order) when the upstream failed with an error instead of a response,
    /// so that processors can release what they hold (a rate-limit reservation, a single-flight
    /// slot).
    fn on_upstream_error(&self, exchange: &mut super::Exchange) {
        let _ = exchange;
    }

    /// Whether this processor reads what the other processors' phases came to
    /// ([`Exchange::stage_records`](super::Exchange::stage_records)): a pipeline holding one
    /// records them for every request. Its own phases are not recorded (nor timed: it could
    /// not see them). Default: `false`.
    fn observes_stages(&self) -> bool {
        false
    }
}

#[async_trait]
impl<P: Processor + ?Sized> Processor for std::sync::Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn failure_mode(&self) -> FailureMode {
        (**self).failure_mode()
    }
    fn timeout(&self) -> Option<Duration> {
        (**self).timeout()
    }
    fn phases(&self) -> Phases {
        (**self).phases()
    }
    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        (**self).on_request(cx).await
    }
    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        (**self).on_response(cx).await
    }
    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        (**self).on_response_body(cx, body).await
    }
    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        (**self).on_stream(cx)
    }
    fn on_upstream_error(&self, exchange: &mut super::Exchange) {
        (**self).on_upstream_error(exchange);
    }
    fn observes_stages(&self) -> bool {
        (**self).observes_stages()
    }
}

/// How a stream ended, as told to [`StreamProcessor::on_end`].
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamEnd {
    /// The upstream finished the stream normally.
    Completed,
    /// The upstream failed mid-stream, or sent a broken stream.
    UpstreamError,
    /// The client went away before the end (the body was dropped).
    ClientGone,
    /// A processor stopped the stream (a block or a failure); an error event was sent.
    Stopped,
}

/// Why a stream processor stops the stream.
#[non_exhaustive]
#[derive(Debug)]
pub enum StreamStop {
    /// A decision (a guardrail block): the client gets this rejection as an SSE error event.
    Reject(Rejection),
    /// A failure. Past the commit point both failure modes end the stream with an error event.
    Fail(ProcessorError),
}

impl From<Rejection> for StreamStop {
    fn from(r: Rejection) -> Self {
        Self::Reject(r)
    }
}

impl From<ProcessorError> for StreamStop {
    fn from(e: ProcessorError) -> Self {
        Self::Fail(e)
    }
}

/// Per-response, per-event processing of an SSE stream. Synchronous by design: it runs inside
/// `poll_frame` (tower) or pingora's synchronous body filter, and must not block.
pub trait StreamProcessor: Send + 'static {
    /// Takes one event and pushes zero or more events to `out` (push it back unchanged to pass
    /// it on; hold it back by keeping it and pushing it later).
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop>;

    /// The stream ended; push anything still held back. Called exactly once, also when the
    /// client goes away (from the body's drop) and when the stream is stopped.
    fn on_end(&mut self, end: StreamEnd, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let _ = (end, out);
        Ok(())
    }

    /// The stream is being stopped, by this rejection (its
    /// [`processor`](Rejection::processor) names who stopped it): told to every stream
    /// processor of the chain just before [`on_end`](Self::on_end) with
    /// [`StreamEnd::Stopped`]. Default: nothing.
    fn on_stopped(&mut self, rejection: &Rejection) {
        let _ = rejection;
    }
}
