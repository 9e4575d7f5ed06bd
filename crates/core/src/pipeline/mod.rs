//! The ordered processor pipeline, transport-agnostic.
//!
//! # Semantics
//!
//! - **Order.** Request phases run sequentially in the configured order; a mutation made by one
//!   processor is seen by the next. Response phases run in reverse order, and only for the
//!   processors whose request phase ran (like tower layers: the outer sees the inner's answer).
//! - **Decisions.** The first [`Decision::Reject`] or [`Decision::Respond`] stops the request
//!   phase; the rest are skipped. A decision is never "failed open".
//! - **Failures.** An error or a timeout is classified ([`FailureClass`]),
//!   traced, recorded in the [`PipelineReport`] response extension, and handled by the
//!   processor's [`FailureMode`]: `FailOpen` skips the processor (any change it made before
//!   failing stays), `FailClosed` answers with an OpenAI-shaped error (500, or 504 for a
//!   timeout).
//! - **Time.** Each processor's async phases have a timeout (its own, else the pipeline's
//!   default); each phase run of the pipeline has an overall deadline. A timer is armed only for
//!   a processor that does not finish on its first poll.
//! - **The commit point.** Until the response head is handed to the client, every failure can
//!   still become an error response. After it (a streamed body is flowing), nothing can change
//!   the status: a processor that stops the stream or fails — whatever its failure mode, since
//!   skipping a half-applied stream transformation would corrupt what the client already has —
//!   ends the stream cleanly with one SSE `event: error` in the API's error shape.
//!
//! The drivers: [`PipelineLayer`](crate::PipelineLayer) for tower, and any other that calls the
//! phase methods ([`Pipeline::prepare_bytes`], [`Pipeline::run_request`],
//! [`Pipeline::run_response_head`], [`Pipeline::run_response_body`],
//! [`Pipeline::stream_chain`]) itself, as the pingora adapter does.

mod bounded;
mod context;
mod processor;
mod record;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, header};
use tokio::time::Instant;

pub use context::{
    Exchange, FailureRecord, MODEL_NAME_HEADER, ParsedRequest, PipelineReport, RequestContext,
    ResponseBody, ResponseContext, RouteDecision,
};
pub use processor::{
    Decision, FailureMode, PhaseFuture, Phases, Processor, StreamEnd, StreamProcessor, StreamStop,
    continued,
};
pub use record::{StageOutcome, StagePhase, StageRecord};
pub use stream::StreamChain;

mod config;
pub use config::PipelineLimits;

use crate::body::{Body, CollectError, collect_limited};
use crate::error::{BoxError, FailureClass, ProcessorError, RejectKind, Rejection};
use crate::payload::{ApiKind, Payload, PayloadError};
use bounded::Bounded;

/// The default bound on a buffered request body: 2 MiB (as the WG proposal recommends).
pub const DEFAULT_MAX_REQUEST_BODY: usize = 2 * 1024 * 1024;
/// The default bound on a buffered non-streamed response body: 16 MiB.
pub const DEFAULT_MAX_RESPONSE_BODY: usize = 16 * 1024 * 1024;
/// The default deadline of one phase run of the pipeline: 30 s.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);

/// A processor in a pipeline, with the settings that apply to it there.
pub struct Stage {
    name: String,
    label: &'static str,
    processor: Box<dyn Processor>,
    mode: FailureMode,
    timeout: Option<Duration>,
    phases: Phases,
    /// The processor observes the other stages: its own are not recorded (it could not see
    /// them), nor timed.
    observes: bool,
}

impl Stage {
    /// A stage with the processor's own name, failure mode, timeout and phases.
    pub fn new(processor: impl Processor) -> Self {
        Self {
            name: processor.name().to_owned(),
            label: record::intern(processor.name()),
            mode: processor.failure_mode(),
            timeout: processor.timeout(),
            phases: processor.phases(),
            observes: processor.observes_stages(),
            processor: Box::new(processor),
        }
    }

    /// Overrides the failure mode.
    #[must_use]
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.mode = mode;
        self
    }

    /// Overrides the timeout.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Overrides the name.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self.label = record::intern(&self.name);
        self
    }
}

impl std::fmt::Debug for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stage")
            .field("name", &self.name)
            .field("mode", &self.mode)
            .field("timeout", &self.timeout)
            .field("phases", &self.phases)
            .finish_non_exhaustive()
    }
}

/// Pipeline-wide settings.
#[derive(Debug, Clone)]
struct Config {
    max_request_body: usize,
    max_response_body: usize,
    deadline: Option<Duration>,
    default_timeout: Option<Duration>,
    max_event_size: usize,
    body_read_timeout: Option<Duration>,
}

/// Builds a [`Pipeline`].
#[derive(Debug)]
#[must_use]
pub struct PipelineBuilder {
    stages: Vec<Stage>,
    config: Config,
    record: bool,
}

impl PipelineBuilder {
    /// Appends a processor with its own settings.
    pub fn processor(self, processor: impl Processor) -> Self {
        self.stage(Stage::new(processor))
    }

    /// Appends a stage (a processor with overridden settings).
    pub fn stage(mut self, stage: Stage) -> Self {
        self.stages.push(stage);
        self
    }

    /// The request-body bound and the deadline of `limits` (a configuration's
    /// [`PipelineLimits`]).
    pub fn limits(self, limits: &PipelineLimits) -> Self {
        self.max_request_body(limits.max_request_body_bytes)
            .deadline(Some(limits.deadline()))
    }

    /// The bound on a buffered request body (default 2 MiB); over it the answer is 413, sent
    /// once the rest of an HTTP/1 body has been read and discarded (bounded: four times the
    /// limit more, 16 MiB at least, and 5 s within the body's read timeout) so that a client
    /// still writing gets the answer; not when the client waits for `100 Continue` and the
    /// declared length is over the bound.
    pub fn max_request_body(mut self, bytes: usize) -> Self {
        self.config.max_request_body = bytes;
        self
    }

    /// The bound on a buffered non-streamed response body (default 16 MiB), used only when a
    /// processor takes part in the whole-body phase.
    pub fn max_response_body(mut self, bytes: usize) -> Self {
        self.config.max_response_body = bytes;
        self
    }

    /// The overall deadline of one phase run (default 30 s); `None` for none.
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.config.deadline = deadline;
        self
    }

    /// The timeout of processors that declare none (default: none, the deadline bounds them).
    pub fn default_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.default_timeout = timeout;
        self
    }

    /// The time allowed to read a request body (default: the deadline, 30 s); past it the
    /// answer is 408 (a client that trickles its body cannot hold a connection for ever).
    pub fn body_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.config.body_read_timeout = timeout;
        self
    }

    /// The bound on one SSE event of a processed stream (default 1 MiB).
    pub fn max_event_size(mut self, bytes: usize) -> Self {
        self.config.max_event_size = bytes;
        self
    }

    /// Builds the pipeline.
    pub fn build(self) -> Pipeline {
        let mut phases = Phases::NONE;
        for s in &self.stages {
            phases = phases.union(s.phases);
        }
        let record = self.record || self.stages.iter().any(|s| s.processor.observes_stages());
        Pipeline {
            inner: Arc::new(Inner {
                stages: self.stages,
                config: self.config,
                phases,
                record,
            }),
        }
    }

    /// Records what each processor's phase came to and how long it took, for every request
    /// ([`Exchange::stage_records`]). On by itself when a processor
    /// [observes stages](Processor::observes_stages) (a telemetry processor; the phases of
    /// one that observes are not recorded); off by default, as it reads the clock once per
    /// processor and phase.
    pub fn record_stages(mut self, on: bool) -> Self {
        self.record = on;
        self
    }
}

struct Inner {
    stages: Vec<Stage>,
    config: Config,
    phases: Phases,
    record: bool,
}

/// An ordered list of processors with their failure modes and timeouts. Cheap to clone (one
/// `Arc`). See the [module docs](self) for the semantics.
#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline")
            .field("stages", &self.inner.stages)
            .field("config", &self.inner.config)
            .finish()
    }
}

impl Default for Pipeline {
    fn default() -> Self {
        Self::builder().build()
    }
}

/// What the request phase decided.
#[non_exhaustive]
#[derive(Debug)]
pub enum RequestOutcome {
    /// Forward the request upstream.
    Forward,
    /// Answer with this response (a rejection or a processor's own answer); run the response
    /// phases on it for the processors that ran.
    Respond(http::Response<Body>),
}

impl Pipeline {
    /// Starts building a pipeline.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder {
            stages: Vec::new(),
            record: false,
            config: Config {
                max_request_body: DEFAULT_MAX_REQUEST_BODY,
                max_response_body: DEFAULT_MAX_RESPONSE_BODY,
                deadline: Some(DEFAULT_DEADLINE),
                default_timeout: None,
                max_event_size: crate::sse::DEFAULT_MAX_EVENT_SIZE,
                body_read_timeout: Some(DEFAULT_DEADLINE),
            },
        }
    }

    /// The tower layer that drives this pipeline.
    pub fn layer(&self) -> crate::PipelineLayer {
        crate::PipelineLayer::new(self.clone())
    }

    /// The number of processors.
    pub fn len(&self) -> usize {
        self.inner.stages.len()
    }

    /// Whether the pipeline has no processor.
    pub fn is_empty(&self) -> bool {
        self.inner.stages.is_empty()
    }

    /// The bound on a buffered request body.
    pub fn max_request_body(&self) -> usize {
        self.inner.config.max_request_body
    }

    /// Buffers (bounded) and parses a request body into a [`RequestContext`]; a failure is the
    /// rejection to answer with (413, 415, 400).
    pub async fn prepare<B>(
        &self,
        head: http::request::Parts,
        body: B,
    ) -> Result<RequestContext, Rejection>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<BoxError>,
    {
        // Parsed once: a pipeline further out already did it.
        if let Some(parsed) = head.extensions.get::<ParsedRequest>() {
            let hint = body.size_hint();
            if hint.exact() == Some(parsed.bytes.len() as u64) {
                let raw = parsed.bytes.clone();
                let payload = parsed.payload.as_deref().cloned();
                return Ok(RequestContext::new(head, raw, payload));
            }
        }
        if !has_body(&head) {
            return Ok(RequestContext::new(head, Bytes::new(), None));
        }
        check_content_type(&head.headers)?;
        let limit = self.inner.config.max_request_body;
        let mut body = std::pin::pin!(body);
        // Declared too long: refused before a byte is read.
        let declared_over = body.size_hint().lower() > limit as u64;
        let reading = Instant::now();
        let collect = collect_limited(body.as_mut(), limit);
        let collected = match self.inner.config.body_read_timeout {
            Some(t) => tokio::time::timeout(t, collect).await.map_err(|_| {
                Rejection::new(
                    RejectKind::InvalidRequest,
                    format!(
                        "the request body did not arrive within {} ms",
                        t.as_millis()
                    ),
                )
                .with_status(http::StatusCode::REQUEST_TIMEOUT)
                .with_code("request_timeout")
            })?,
            None => collect.await,
        };
        if let Err(CollectError::TooLarge { limit }) = collected {
            // A client that waits for `100 Continue` and was refused before anything was read
            // has sent nothing: reading would ask it for the body only to throw it away, while
            // the 413 alone stops it. HTTP/2 ends the stream itself after the answer
            // (RST_STREAM NO_ERROR), with nothing lost.
            let waits = declared_over
                && head
                    .headers
                    .get(header::EXPECT)
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
            if !waits && head.version < http::Version::HTTP_2 {
                // Within what is left of the time allowed to read the body, 5 s at most.
                let left = self
                    .inner
                    .config
                    .body_read_timeout
                    .map_or(DRAIN_TIME, |t| t.saturating_sub(reading.elapsed()))
                    .min(DRAIN_TIME);
                drain(body, limit, left).await;
            }
            return Err(too_large(limit));
        }
        let bytes = collected.map_err(|e| match e {
            CollectError::TooLarge { limit } => too_large(limit),
            e => Rejection::new(
                RejectKind::InvalidRequest,
                format!("the request body could not be read: {e}"),
            ),
        })?;
        self.prepare_bytes(head, bytes)
    }

    /// Parses an already buffered request body (pingora buffers it in its body filter).
    pub fn prepare_bytes(
        &self,
        head: http::request::Parts,
        bytes: Bytes,
    ) -> Result<RequestContext, Rejection> {
        if bytes.len() > self.inner.config.max_request_body {
            return Err(too_large(self.inner.config.max_request_body));
        }
        if bytes.is_empty() && !has_body(&head) {
            return Ok(RequestContext::new(head, bytes, None));
        }
        check_content_type(&head.headers)?;
        let api = ApiKind::from_path(head.uri.path());
        let payload = Payload::parse(api, &bytes).map_err(|e| match e {
            PayloadError::InvalidUtf8 { .. } => {
                Rejection::new(RejectKind::InvalidEncoding, e.to_string())
            }
            PayloadError::Syntax(_) => Rejection::new(RejectKind::MalformedBody, e.to_string()),
            PayloadError::Shape(_) => Rejection::new(RejectKind::InvalidRequest, e.to_string()),
        })?;
        Ok(RequestContext::new(head, bytes, Some(payload)))
    }

    /// Runs the request phase: every processor in order, until one decides.
    pub async fn run_request(&self, cx: &mut RequestContext) -> RequestOutcome {
        if !self.inner.phases.contains(Phases::REQUEST) {
            cx.ran = self.inner.stages.len();
            cx.reads_response = self.reads_any_response(cx.ran);
            return RequestOutcome::Forward;
        }
        let (deadline, mut clock) = self.phase_start();
        for (i, stage) in self.inner.stages.iter().enumerate() {
            cx.ran = i + 1;
            if !stage.phases.contains(Phases::REQUEST) {
                continue;
            }
            cx.clock = clock.before(stage);
            let res = Bounded::new(
                stage.processor.on_request(cx),
                self.timeout_of(stage),
                deadline,
            )
            .await;
            let settled = Self::settle(stage, res, &mut cx.report);
            if let Some(elapsed) = clock.after(stage) {
                cx.records
                    .push(record_of(stage, StagePhase::Request, &settled, elapsed));
            }
            match settled {
                Settled::Skipped(_) | Settled::Decided(Decision::Continue) => {}
                Settled::Decided(Decision::Reject(r)) => {
                    cx.ran = i;
                    let r = named(r, stage);
                    tracing::info!(processor = %stage.name, kind = ?r.kind(), "request rejected");
                    return RequestOutcome::Respond(self.error_response(cx.api, r));
                }
                Settled::Decided(Decision::Respond(resp)) => {
                    cx.ran = i;
                    return RequestOutcome::Respond(resp);
                }
                Settled::Failed(r, _) => {
                    cx.ran = i;
                    return RequestOutcome::Respond(self.error_response(cx.api, r));
                }
            }
        }
        cx.reads_response = self.reads_any_response(cx.ran);
        RequestOutcome::Forward
    }

    /// Runs the response-head phase in reverse order over the processors that ran. When a
    /// processor replaces the response, `head` is updated in place and the new body returned;
    /// processors further out then see the replacement.
    pub async fn run_response_head(
        &self,
        exchange: &mut Exchange,
        head: &mut http::response::Parts,
    ) -> Option<Body> {
        if !self.inner.phases.contains(Phases::RESPONSE) {
            return None;
        }
        let (deadline, mut clock) = self.phase_start();
        let mut replaced = None;
        for stage in self.inner.stages[..exchange.ran].iter().rev() {
            if !stage.phases.contains(Phases::RESPONSE) {
                continue;
            }
            let res = {
                let mut cx = ResponseContext::new(head, exchange);
                cx.clock = clock.before(stage);
                Bounded::new(
                    stage.processor.on_response(&mut cx),
                    self.timeout_of(stage),
                    deadline,
                )
                .await
            };
            let elapsed = clock.after(stage);
            let Some(resp) =
                self.replacement(stage, res, exchange, StagePhase::ResponseHead, elapsed)
            else {
                continue;
            };
            let (parts, body) = resp.into_parts();
            *head = parts;
            replaced = Some(body);
        }
        replaced
    }

    /// Whether a non-streamed response should be buffered for the whole-body phase.
    pub fn wants_response_body(&self, exchange: &Exchange, head: &http::response::Parts) -> bool {
        self.inner.phases.contains(Phases::RESPONSE_BODY)
            && !context::is_event_stream(&head.headers)
            && self.inner.stages[..exchange.ran]
                .iter()
                .any(|s| s.phases.contains(Phases::RESPONSE_BODY))
    }

    /// Whether a processor among the first `ran` takes part in the whole-body or the stream
    /// phase (so an answer may have to be decoded for it).
    fn reads_any_response(&self, ran: usize) -> bool {
        self.inner.stages[..ran].iter().any(|s| {
            s.phases.contains(Phases::RESPONSE_BODY) || s.phases.contains(Phases::RESPONSE_EVENTS)
        })
    }

    /// Whether an SSE response would be run through a stream chain (some processor that ran
    /// takes part in the stream phase).
    pub fn wants_stream(&self, exchange: &Exchange) -> bool {
        self.inner.phases.contains(Phases::RESPONSE_EVENTS)
            && self.inner.stages[..exchange.ran]
                .iter()
                .any(|s| s.phases.contains(Phases::RESPONSE_EVENTS))
    }

    /// Whether a processor that ran reads this response's body (the whole body or its events),
    /// so that the body must be decoded for it.
    pub fn reads_response_body(&self, exchange: &Exchange, head: &http::response::Parts) -> bool {
        if context::is_event_stream(&head.headers) {
            self.wants_stream(exchange)
        } else {
            self.wants_response_body(exchange, head)
        }
    }

    /// The response body cannot be read by the processors that want it (a content coding core
    /// cannot decode): a failure of each of them, handled by its failure mode. Returns the
    /// error response when one of them fails closed; `None` when all fail open (the body then
    /// passes on uninspected, and the skip is logged and recorded).
    pub fn unreadable_body(
        &self,
        exchange: &mut Exchange,
        head: &http::response::Parts,
        class: FailureClass,
        reason: &str,
    ) -> Option<http::Response<Body>> {
        let phase = if context::is_event_stream(&head.headers) {
            Phases::RESPONSE_EVENTS
        } else {
            Phases::RESPONSE_BODY
        };
        let mut closed = None;
        for stage in self.inner.stages[..exchange.ran].iter().rev() {
            if !stage.phases.contains(phase) {
                continue;
            }
            let skipped = stage.mode == FailureMode::FailOpen;
            tracing::warn!(
                processor = %stage.name,
                failure_mode = ?stage.mode,
                reason,
                "{}",
                if skipped {
                    "response body unreadable; failing open (passed on uninspected)"
                } else {
                    "response body unreadable; failing closed"
                }
            );
            exchange.report.failures.push(FailureRecord {
                processor: stage.name.clone(),
                class,
                skipped,
            });
            if !skipped && closed.is_none() {
                closed = Some(stage.name.clone());
            }
        }
        let name = closed?;
        let rej = Rejection::new(
            RejectKind::UpstreamFailed,
            format!("the upstream answer could not be read by processor '{name}': {reason}"),
        )
        .with_processor(name);
        Some(self.error_response(exchange.api, rej))
    }

    /// The bound on a buffered response body.
    pub fn max_response_body(&self) -> usize {
        self.inner.config.max_response_body
    }

    /// Runs the whole-body phase in reverse order; returns the final body (`head` is updated in
    /// place when a processor replaces the response).
    pub async fn run_response_body(
        &self,
        exchange: &mut Exchange,
        head: &mut http::response::Parts,
        bytes: Bytes,
    ) -> Body {
        let (deadline, mut clock) = self.phase_start();
        let mut body = ResponseBody::new(bytes);
        for stage in self.inner.stages[..exchange.ran].iter().rev() {
            if !stage.phases.contains(Phases::RESPONSE_BODY) {
                continue;
            }
            let res = {
                let mut cx = ResponseContext::new(head, exchange);
                cx.clock = clock.before(stage);
                Bounded::new(
                    stage.processor.on_response_body(&mut cx, &mut body),
                    self.timeout_of(stage),
                    deadline,
                )
                .await
            };
            let elapsed = clock.after(stage);
            let Some(resp) =
                self.replacement(stage, res, exchange, StagePhase::ResponseBody, elapsed)
            else {
                continue;
            };
            let (parts, new_body) = resp.into_parts();
            *head = parts;
            // A replacement ends the phase: the processors further out see its head only.
            return new_body;
        }
        let bytes = body.into_bytes();
        head.headers
            .insert(header::CONTENT_LENGTH, http::HeaderValue::from(bytes.len()));
        Body::full(bytes)
    }

    /// For an SSE response: the per-event chain of the processors that ran and want the stream,
    /// or `None` to let it pass untouched.
    pub fn stream_chain(
        &self,
        exchange: &mut Exchange,
        head: &mut http::response::Parts,
    ) -> Option<StreamChain> {
        if !self.inner.phases.contains(Phases::RESPONSE_EVENTS)
            || !context::is_event_stream(&head.headers)
        {
            return None;
        }
        let api = exchange.api;
        let mut stages = Vec::new();
        let ran = exchange.ran;
        let mut cx = ResponseContext::new(head, exchange);
        for stage in self.inner.stages[..ran].iter().rev() {
            if !stage.phases.contains(Phases::RESPONSE_EVENTS) {
                continue;
            }
            if let Some(p) = stage.processor.on_stream(&mut cx) {
                stages.push((stage.name.clone(), p));
            }
        }
        if stages.is_empty() {
            return None;
        }
        // The body is rewritten: its length is no longer known.
        head.headers.remove(header::CONTENT_LENGTH);
        Some(StreamChain::new(
            api,
            self.inner.config.max_event_size,
            stages,
        ))
    }

    /// Tells the processors that ran that the upstream failed without a response.
    pub fn upstream_failed(&self, exchange: &mut Exchange) {
        for stage in self.inner.stages[..exchange.ran].iter().rev() {
            stage.processor.on_upstream_error(exchange);
        }
    }

    /// The error response for a rejection, in the shape of the request's API.
    pub fn error_response(&self, api: ApiKind, rejection: Rejection) -> http::Response<Body> {
        error_response(api, rejection)
    }

    /// A phase's deadline and its stage clock, from one clock read (tokio's: the deadline
    /// follows a paused test clock, as its timer does).
    fn phase_start(&self) -> (Option<Instant>, StageClock) {
        let now = (self.inner.record || self.inner.config.deadline.is_some()).then(Instant::now);
        let deadline = self.inner.config.deadline.zip(now).map(|(d, t)| t + d);
        let last = if self.inner.record {
            now.map(Instant::into_std)
        } else {
            None
        };
        (
            deadline,
            StageClock {
                on: self.inner.record,
                last,
            },
        )
    }

    fn timeout_of(&self, stage: &Stage) -> Option<Duration> {
        stage.timeout.or(self.inner.config.default_timeout)
    }

    /// A response phase's outcome: the response that replaces the current one, if any.
    fn replacement(
        &self,
        stage: &Stage,
        res: Result<Result<Decision, ProcessorError>, bounded::Elapsed>,
        exchange: &mut Exchange,
        phase: StagePhase,
        elapsed: Option<Duration>,
    ) -> Option<http::Response<Body>> {
        let settled = Self::settle(stage, res, &mut exchange.report);
        if let Some(e) = elapsed {
            exchange.records.push(record_of(stage, phase, &settled, e));
        }
        match settled {
            Settled::Skipped(_) | Settled::Decided(Decision::Continue) => None,
            // In a response phase, a body that does not parse is the upstream's, not the
            // client's: 502, not 400.
            Settled::Failed(r, _) if r.kind() == RejectKind::MalformedBody => Some(
                self.error_response(
                    exchange.api,
                    Rejection::new(
                        RejectKind::UpstreamFailed,
                        format!(
                            "processor '{}' could not read the upstream answer",
                            stage.name
                        ),
                    )
                    .with_processor(stage.name.clone()),
                ),
            ),
            Settled::Decided(Decision::Reject(r)) => {
                Some(self.error_response(exchange.api, named(r, stage)))
            }
            Settled::Decided(Decision::Respond(resp)) => Some(resp),
            Settled::Failed(r, _) => Some(self.error_response(exchange.api, r)),
        }
    }

    fn settle(
        stage: &Stage,
        res: Result<Result<Decision, ProcessorError>, bounded::Elapsed>,
        report: &mut PipelineReport,
    ) -> Settled {
        let (class, deadline, message) = match res {
            Ok(Ok(d)) => return Settled::Decided(d),
            Ok(Err(e)) => (e.class(), false, e.to_string()),
            Err(el) => (
                FailureClass::Timeout,
                el.by_deadline,
                if el.by_deadline {
                    "the pipeline deadline passed".to_owned()
                } else {
                    "timed out".to_owned()
                },
            ),
        };
        let skipped = stage.mode == FailureMode::FailOpen;
        tracing::warn!(
            processor = %stage.name,
            class = %class,
            failure_mode = ?stage.mode,
            error = %message,
            "{}",
            if skipped { "processor failed; failing open (skipped)" } else { "processor failed; failing closed" }
        );
        report.failures.push(FailureRecord {
            processor: stage.name.clone(),
            class,
            skipped,
        });
        if skipped {
            return Settled::Skipped(class);
        }
        let kind = if deadline {
            RejectKind::DeadlineExceeded
        } else {
            class.reject_kind()
        };
        let msg = match class {
            FailureClass::Timeout if deadline => format!(
                "the gateway's processing deadline passed while '{}' was running",
                stage.name
            ),
            FailureClass::Timeout => format!("processor '{}' timed out", stage.name),
            FailureClass::ExternalService => format!(
                "processor '{}' could not reach a service it depends on",
                stage.name
            ),
            _ => format!("processor '{}' failed", stage.name),
        };
        Settled::Failed(
            Rejection::new(kind, msg).with_processor(stage.name.clone()),
            class,
        )
    }
}

enum Settled {
    /// Failed open: skipped.
    Skipped(FailureClass),
    Decided(Decision),
    Failed(Rejection, FailureClass),
}

/// A phase's stage timings: one clock read per stage recorded (a stage's end is the next
/// one's start). A stage that observes stages is neither timed nor recorded: the clock is not
/// read after it, and is read again before the next recorded stage only if one comes.
struct StageClock {
    /// Whether the pipeline records stages.
    on: bool,
    /// The last reading, if it is still the current time (nothing ran since).
    last: Option<std::time::Instant>,
}

impl StageClock {
    /// Before `stage` runs: the reading it starts at (taken now if the last one is stale and
    /// the stage is timed), for [`RequestContext::phase_clock`].
    fn before(&mut self, stage: &Stage) -> Option<std::time::Instant> {
        if self.on && self.last.is_none() && !stage.observes {
            self.last = Some(std::time::Instant::now());
        }
        self.last
    }

    /// After `stage` ran: how long it took, if it is recorded.
    fn after(&mut self, stage: &Stage) -> Option<Duration> {
        if !self.on {
            return None;
        }
        if stage.observes {
            self.last = None;
            return None;
        }
        let start = self.last?;
        let now = std::time::Instant::now();
        self.last = Some(now);
        Some(now.saturating_duration_since(start))
    }
}

/// The record of one stage's phase, from how it settled.
fn record_of(
    stage: &Stage,
    phase: StagePhase,
    settled: &Settled,
    elapsed: Duration,
) -> StageRecord {
    let outcome = match settled {
        Settled::Skipped(c) => StageOutcome::FailedOpen(*c),
        Settled::Decided(Decision::Continue) => StageOutcome::Continued,
        Settled::Decided(Decision::Reject(r)) => StageOutcome::Rejected(r.kind()),
        Settled::Decided(Decision::Respond(_)) => StageOutcome::Responded,
        Settled::Failed(_, c) => StageOutcome::FailedClosed(*c),
    };
    StageRecord::new(stage.label, phase, outcome, elapsed)
}

fn named(r: Rejection, stage: &Stage) -> Rejection {
    if r.processor().is_some() {
        r
    } else {
        r.with_processor(stage.name.clone())
    }
}

/// The longest an oversized request body is read after the limit, to be discarded.
const DRAIN_TIME: Duration = Duration::from_secs(5);

/// Reads and discards the rest of an oversized request body before the 413 goes out, as a web
/// server's lingering close: a gateway that answers and closes while the client is still
/// writing makes the client's next write fail (a broken pipe, a reset that discards the answer)
/// and the client never sees why. Bounded: four times the limit more (16 MiB at least) and
/// `time`; a body declared longer than that, or one that keeps coming, is not read (the answer
/// then races the client's writes, as it must).
async fn drain<B>(mut body: std::pin::Pin<&mut B>, limit: usize, time: Duration)
where
    B: http_body::Body<Data = Bytes>,
{
    use http_body_util::BodyExt;
    let bound = (limit as u64).saturating_mul(4).max(16 << 20);
    if body.is_end_stream() || body.size_hint().lower() > bound {
        return;
    }
    let read = async {
        let mut seen = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                seen = seen.saturating_add(data.len() as u64);
                if seen > bound {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(time, read).await;
}

fn too_large(limit: usize) -> Rejection {
    Rejection::new(
        RejectKind::BodyTooLarge,
        format!("the request body is larger than the gateway's limit of {limit} bytes"),
    )
}

/// The error response for `rejection`, in the error shape of `api` (Anthropic's for
/// `/v1/messages`, OpenAI's otherwise), with the rejection in its extensions.
pub fn error_response(api: ApiKind, rejection: Rejection) -> http::Response<Body> {
    if api.is_anthropic() {
        let body = Body::from(rejection.to_anthropic_json().to_string());
        let mut resp: http::Response<Body> = rejection.clone().into_response();
        *resp.body_mut() = body;
        resp
    } else {
        rejection.into_response()
    }
}

pub(crate) fn is_event_stream_head(head: &http::response::Parts) -> bool {
    context::is_event_stream(&head.headers)
}

fn has_body(head: &http::request::Parts) -> bool {
    // GET, HEAD, OPTIONS and DELETE are forwarded without a body (crate::hop::is_bodyless):
    // a body they declare is not read, parsed or checked.
    if crate::hop::is_bodyless(&head.method) {
        return false;
    }
    let len = head
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    len != Some(0)
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let Some(ct) = headers.get(header::CONTENT_TYPE) else {
        return Ok(()); // absent: treated as JSON, as every SDK sends JSON
    };
    let ok = ct.to_str().is_ok_and(|ct| {
        let mime = ct.split(';').next().unwrap_or("").trim();
        mime.eq_ignore_ascii_case("application/json")
            || mime.len() > 5 && mime[mime.len() - 5..].eq_ignore_ascii_case("+json")
    });
    if ok {
        Ok(())
    } else {
        Err(Rejection::new(
            RejectKind::UnsupportedMediaType,
            "the request body must be JSON (content-type: application/json)",
        ))
    }
}
