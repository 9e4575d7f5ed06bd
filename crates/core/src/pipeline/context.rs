use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Uri, header};

use crate::FailureClass;
use crate::payload::{ApiKind, Payload};

/// The header that carries the model chosen for the upstream (Gateway API Inference Extension).
pub const MODEL_NAME_HEADER: &str = "x-gateway-model-name";

/// A routing decision made by a processor: which backend and which model. Carried into the
/// request extensions for the layers that pick the upstream.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RouteDecision {
    /// The backend's name.
    pub backend: Option<String>,
    /// The model to ask that backend for.
    pub model: Option<String>,
    /// Which rule or route decided (for explanations).
    pub rule: Option<String>,
    /// The similarity score, for semantic routes.
    pub score: Option<f32>,
}

impl RouteDecision {
    /// A decision for a backend, keeping the request's model.
    pub fn to_backend(backend: impl Into<String>) -> Self {
        Self {
            backend: Some(backend.into()),
            ..Self::default()
        }
    }
}

/// The buffered and parsed request, in the extensions of the request the pipeline forwards:
/// later layers (failover, auth, a second pipeline) read it instead of parsing again.
#[derive(Debug, Clone)]
pub struct ParsedRequest {
    /// The API of the request.
    pub api: ApiKind,
    /// The body as forwarded (re-serialised if a processor changed it).
    pub bytes: Bytes,
    /// The parsed payload (`None` for body-less requests).
    pub payload: Option<Arc<Payload>>,
}

/// One failure met while running the pipeline, as recorded in [`PipelineReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureRecord {
    /// The processor that failed.
    pub processor: String,
    /// The class of failure.
    pub class: FailureClass,
    /// Whether the failure was skipped (`FailOpen`) rather than turned into a rejection.
    pub skipped: bool,
}

/// Failures met by the pipeline for one request, in the response extensions when there were
/// any (they are also traced).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineReport {
    /// The failures, in the order they happened.
    pub failures: Vec<FailureRecord>,
}

/// The request as processors see it in the request phase: the head, the body bytes and the
/// parsed payload, per-request state, and the routing decision.
#[derive(Debug)]
pub struct RequestContext {
    pub(crate) head: http::request::Parts,
    pub(crate) api: ApiKind,
    pub(crate) raw: Bytes,
    pub(crate) payload: Option<Payload>,
    pub(crate) dirty: bool,
    pub(crate) state: http::Extensions,
    pub(crate) route: Option<RouteDecision>,
    pub(crate) report: PipelineReport,
    pub(crate) records: Vec<super::StageRecord>,
    pub(crate) ran: usize,
    /// Whether a processor that ran reads response bodies or events (set by the pipeline):
    /// the upstream is then offered only the codings that are cheap to decode.
    pub(crate) reads_response: bool,
    /// The pipeline's clock reading just before the current stage (when it records stages).
    pub(crate) clock: Option<Instant>,
}

impl RequestContext {
    /// A context for a request head and its already-parsed body (drivers and tests use this;
    /// [`Pipeline::prepare`](super::Pipeline::prepare) builds it from raw bytes).
    pub fn new(head: http::request::Parts, raw: Bytes, payload: Option<Payload>) -> Self {
        let api = payload
            .as_ref()
            .map_or_else(|| ApiKind::from_path(head.uri.path()), Payload::api);
        Self {
            head,
            api,
            raw,
            payload,
            dirty: false,
            state: http::Extensions::new(),
            route: None,
            report: PipelineReport::default(),
            records: Vec::new(),
            ran: 0,
            reads_response: true,
            clock: None,
        }
    }

    /// When the pipeline records stage timings (a processor
    /// [observes stages](super::Processor::observes_stages)): its clock reading just before this
    /// processor's phase began, which is also the previous stage's end. A stage-observing
    /// processor takes its time here instead of reading the clock again. `None` otherwise.
    pub fn phase_clock(&self) -> Option<Instant> {
        self.clock
    }

    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The URI.
    pub fn uri(&self) -> &Uri {
        &self.head.uri
    }

    /// Changes the URI (path rewriting).
    pub fn set_uri(&mut self, uri: Uri) {
        self.head.uri = uri;
    }

    /// The request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The request headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.head.headers
    }

    /// The request extensions (forwarded to the inner service).
    pub fn extensions(&self) -> &http::Extensions {
        &self.head.extensions
    }

    /// The request extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.head.extensions
    }

    /// The API of the request.
    pub fn api(&self) -> ApiKind {
        self.api
    }

    /// The parsed payload.
    pub fn payload(&self) -> Option<&Payload> {
        self.payload.as_ref()
    }

    /// The parsed payload, to change; the body is re-serialised once after the request phase.
    pub fn payload_mut(&mut self) -> Option<&mut Payload> {
        self.dirty = true;
        self.payload.as_mut()
    }

    /// The body bytes as received (before any change).
    pub fn raw_body(&self) -> &Bytes {
        &self.raw
    }

    /// Per-request state that processors keep between the request and response phases (not
    /// forwarded upstream).
    pub fn state(&self) -> &http::Extensions {
        &self.state
    }

    /// Per-request state, to change.
    pub fn state_mut(&mut self) -> &mut http::Extensions {
        &mut self.state
    }

    /// Hands the pipeline `buf` to record this request's stages into, the records so far moved
    /// to its front, and leaves in `buf` the pipeline's former list, emptied: a telemetry
    /// processor recycling the list of an earlier request makes recording allocate nothing
    /// (see [`Exchange::swap_stage_records`] for taking them back at the end).
    pub fn recycle_stage_records(&mut self, buf: &mut Vec<super::StageRecord>) {
        buf.clear();
        buf.append(&mut self.records);
        std::mem::swap(&mut self.records, buf);
    }

    /// The routing decision so far.
    pub fn route(&self) -> Option<&RouteDecision> {
        self.route.as_ref()
    }

    /// Sets the routing decision. When it names a model, the payload's `model` is rewritten
    /// and the `x-gateway-model-name` header set.
    pub fn set_route(&mut self, route: RouteDecision) {
        if let Some(m) = &route.model {
            if let Ok(v) = HeaderValue::from_str(m) {
                self.head.headers.insert(MODEL_NAME_HEADER, v);
            }
            if let Some(p) = self.payload.as_mut()
                && p.model() != Some(m.as_str())
            {
                p.set_model(m.clone());
                self.dirty = true;
            }
        }
        self.route = Some(route);
    }

    /// Ends the request without forwarding it (the pipeline answered): the [`Exchange`] for
    /// the response phases of the processors that ran.
    pub fn into_exchange(self) -> Exchange {
        let payload = self.payload.map(Arc::new);
        Exchange::new(
            self.api,
            &self.head,
            payload,
            self.state,
            self.route,
            self.ran,
            self.report,
            self.records,
        )
    }

    /// Ends the request phase: re-serialises the payload if it changed, fixes `content-length`,
    /// and returns the request to forward with the [`Exchange`] that follows it to the response.
    pub fn into_request(mut self) -> (http::Request<crate::Body>, Exchange) {
        let bytes = if self.dirty {
            match self.payload.as_ref().map(Payload::to_bytes) {
                Some(Ok(b)) => b,
                _ => self.raw.clone(),
            }
        } else {
            self.raw.clone()
        };
        let payload = self.payload.map(Arc::new);
        let bodyless = crate::hop::is_bodyless(&self.head.method);
        let bytes = if bodyless { Bytes::new() } else { bytes };
        let headers = &mut self.head.headers;
        crate::hop::strip_hop_by_hop(headers);
        if bodyless {
            // A declared body that is not forwarded must not be announced either: the upstream
            // would wait for it and the pooled connection would be poisoned.
            headers.remove(header::CONTENT_LENGTH);
        } else {
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        }
        // Offer upstream only the codings core can decode (crate::coding).
        let accept = if self.reads_response {
            crate::coding::upstream_accept_encoding_to_decode(headers.get(header::ACCEPT_ENCODING))
        } else {
            crate::coding::upstream_accept_encoding(headers.get(header::ACCEPT_ENCODING))
        };
        headers.insert(header::ACCEPT_ENCODING, accept);
        if let Some(route) = &self.route {
            self.head.extensions.insert(route.clone());
        }
        self.head.extensions.insert(ParsedRequest {
            api: self.api,
            bytes: bytes.clone(),
            payload: payload.clone(),
        });
        let exchange = Exchange::new(
            self.api,
            &self.head,
            payload,
            self.state,
            self.route,
            self.ran,
            self.report,
            self.records,
        );
        (
            http::Request::from_parts(self.head, crate::Body::full(bytes)),
            exchange,
        )
    }
}

/// What follows one request from its request phase to the end of its response: the request's
/// API, method, URI and payload, the processors' per-request state and the routing decision.
#[derive(Debug)]
pub struct Exchange {
    pub(crate) api: ApiKind,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) payload: Option<Arc<Payload>>,
    pub(crate) state: http::Extensions,
    pub(crate) route: Option<RouteDecision>,
    /// How many processors ran their request phase (response phases run for these).
    pub(crate) ran: usize,
    pub(crate) report: PipelineReport,
    pub(crate) records: Vec<super::StageRecord>,
}

impl Exchange {
    #[allow(clippy::too_many_arguments)]
    fn new(
        api: ApiKind,
        head: &http::request::Parts,
        payload: Option<Arc<Payload>>,
        state: http::Extensions,
        route: Option<RouteDecision>,
        ran: usize,
        report: PipelineReport,
        records: Vec<super::StageRecord>,
    ) -> Self {
        Self {
            api,
            method: head.method.clone(),
            uri: head.uri.clone(),
            payload,
            state,
            route,
            ran,
            report,
            records,
        }
    }

    /// What each processor's phases came to so far, in the order they ran (empty unless the
    /// pipeline records stages: [`PipelineBuilder::record_stages`](super::PipelineBuilder::record_stages)).
    pub fn stage_records(&self) -> &[super::StageRecord] {
        &self.records
    }

    /// Forgets the stage records so far (a telemetry processor that copied them); later
    /// phases add new ones.
    pub fn clear_stage_records(&mut self) {
        self.records.clear();
    }

    /// Swaps the stage records so far with `other` (a telemetry processor takes them whole and
    /// leaves an emptied list of its own for the later phases).
    pub fn swap_stage_records(&mut self, other: &mut Vec<super::StageRecord>) {
        std::mem::swap(&mut self.records, other);
    }

    /// The API of the request.
    pub fn api(&self) -> ApiKind {
        self.api
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request URI.
    pub fn uri(&self) -> &Uri {
        &self.uri
    }

    /// The request payload as forwarded.
    pub fn payload(&self) -> Option<&Payload> {
        self.payload.as_deref()
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.payload.as_deref().is_some_and(Payload::is_stream)
    }

    /// Per-request state kept by processors.
    pub fn state(&self) -> &http::Extensions {
        &self.state
    }

    /// Per-request state, to change.
    pub fn state_mut(&mut self) -> &mut http::Extensions {
        &mut self.state
    }

    /// The routing decision.
    pub fn route(&self) -> Option<&RouteDecision> {
        self.route.as_ref()
    }

    /// Failures recorded so far.
    pub fn report(&self) -> &PipelineReport {
        &self.report
    }
}

/// The response as processors see it in the response phases.
#[derive(Debug)]
pub struct ResponseContext<'a> {
    pub(crate) head: &'a mut http::response::Parts,
    pub(crate) exchange: &'a mut Exchange,
    pub(crate) clock: Option<Instant>,
}

impl<'a> ResponseContext<'a> {
    /// A context over a response head and its exchange (for drivers).
    pub fn new(head: &'a mut http::response::Parts, exchange: &'a mut Exchange) -> Self {
        Self {
            head,
            exchange,
            clock: None,
        }
    }

    /// When the pipeline records stage timings: its clock reading just before this
    /// processor's phase began (see [`RequestContext::phase_clock`]). `None` otherwise, and in
    /// [`Processor::on_stream`](super::Processor::on_stream).
    pub fn phase_clock(&self) -> Option<Instant> {
        self.clock
    }

    /// The status.
    pub fn status(&self) -> http::StatusCode {
        self.head.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.head.headers
    }

    /// The response headers, to change.
    pub fn headers_mut(&mut self) -> &mut HeaderMap {
        &mut self.head.headers
    }

    /// The response extensions (a rejection's [`Rejection`](crate::Rejection) is there).
    pub fn extensions(&self) -> &http::Extensions {
        &self.head.extensions
    }

    /// The response extensions, to change.
    pub fn extensions_mut(&mut self) -> &mut http::Extensions {
        &mut self.head.extensions
    }

    /// Whether the response is an SSE stream (`content-type: text/event-stream`).
    pub fn is_event_stream(&self) -> bool {
        is_event_stream(&self.head.headers)
    }

    /// The exchange: request information and per-request state.
    pub fn exchange(&self) -> &Exchange {
        self.exchange
    }

    /// The exchange, to change its state.
    pub fn exchange_mut(&mut self) -> &mut Exchange {
        self.exchange
    }
}

pub(crate) fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .get(..17)
                .is_some_and(|p| p.eq_ignore_ascii_case("text/event-stream"))
        })
}

/// A whole non-streamed response body, for the whole-body phase. The JSON is parsed at most
/// once, on first use, and shared by the processors.
#[derive(Debug)]
pub struct ResponseBody {
    bytes: Bytes,
    json: Option<serde_json::Value>,
    parsed: bool,
    dirty: bool,
}

impl ResponseBody {
    /// A body from its bytes.
    pub fn new(bytes: Bytes) -> Self {
        Self {
            bytes,
            json: None,
            parsed: false,
            dirty: false,
        }
    }

    /// The bytes (as received, or as last set with [`ResponseBody::set_bytes`]).
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// Replaces the bytes.
    pub fn set_bytes(&mut self, bytes: Bytes) {
        self.bytes = bytes;
        self.json = None;
        self.parsed = false;
        self.dirty = false;
    }

    /// The body as JSON, parsed on first use; `None` if it is not JSON.
    pub fn json(&mut self) -> Option<&serde_json::Value> {
        self.parse();
        self.json.as_ref()
    }

    /// The body as JSON, to change; it is re-serialised at the end of the phase.
    pub fn json_mut(&mut self) -> Option<&mut serde_json::Value> {
        self.parse();
        self.dirty = self.json.is_some();
        self.json.as_mut()
    }

    fn parse(&mut self) {
        if !self.parsed {
            self.parsed = true;
            self.json = serde_json::from_slice(&self.bytes).ok();
        }
    }

    /// The final bytes.
    pub fn into_bytes(self) -> Bytes {
        match (self.dirty, self.json) {
            (true, Some(v)) => serde_json::to_vec(&v).map_or(self.bytes, Bytes::from),
            _ => self.bytes,
        }
    }
}
