//! The processor: first in the pipeline, it sees the request before every other processor and
//! the response after them, and hands one record per request to the telemetry thread.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use http::HeaderMap;
use infergate_core::pipeline::{PhaseFuture, Phases, continued};
use infergate_core::sse::SseEvent;
use infergate_core::trace::{RequestTrace, TRACEPARENT, TraceContext};
use infergate_core::usage::{Usage, UsageBasis, UsageMeter};
use infergate_core::{
    ApiKind, Exchange, FailureMode, Principal, Processor, Rejection, RequestContext, ResponseBody,
    ResponseContext, StreamEnd, StreamProcessor, StreamStop,
};

use crate::extract;
use crate::record::{Ending, Flight, Record, Sink};

/// The telemetry processor, from [`Telemetry::processor`](crate::Telemetry::processor). Put
/// it **first** in the pipeline: it then sees every request (those refused by a later
/// processor included) and every response as the client gets it.
///
/// On the request path it only gathers: the clock, the trace context (an incoming
/// `traceparent` continued, a new one sent upstream), the request's model, and at the end the
/// response's status, usage, time to first token and what the other processors did. The
/// record goes whole to the telemetry thread, which builds spans, metrics and the access log.
/// It fails open (telemetry never refuses a request).
#[derive(Clone)]
pub struct Observe {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Observe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observe").finish_non_exhaustive()
    }
}

pub(crate) struct Shared {
    pub(crate) trust_traceparent: bool,
    /// Sampled when a random `u64` is below this (`u64::MAX`: always).
    pub(crate) sample_below: u64,
    pub(crate) capture_content: bool,
    pub(crate) sink: Arc<dyn Sink>,
}

/// The request's record in flight, in the exchange's state (taken by the response phase that
/// ends the request). The record moves, it is never copied: a clone of the state (none is made
/// on the pipeline's path) gets an empty slot, so a record is sent once at most.
struct Slot(Option<Flight>);

impl Clone for Slot {
    fn clone(&self) -> Self {
        Self(None)
    }
}

fn take(state: &mut http::Extensions) -> Option<Flight> {
    state.get_mut::<Slot>().and_then(|s| s.0.take())
}

impl Observe {
    fn sampled(&self, parent: Option<&TraceContext>) -> bool {
        match parent {
            Some(p) => p.is_sampled(),
            None => {
                self.shared.sample_below == u64::MAX
                    || u64::from_be_bytes(infergate_core::trace::new_span_id())
                        < self.shared.sample_below
            }
        }
    }
}

impl Observe {
    /// The request phase's work: the record started.
    fn begin(&self, cx: &mut RequestContext) {
        // The pipeline's reading just before this (first) stage: no clock read of its own. The
        // wall-clock start is derived from it on the telemetry thread.
        let started = cx.phase_clock().unwrap_or_else(Instant::now);
        let parent = if self.shared.trust_traceparent {
            cx.headers()
                .get(TRACEPARENT)
                .and_then(|v| v.to_str().ok())
                .and_then(TraceContext::parse)
        } else {
            None
        };
        let context = match &parent {
            Some(p) => p.child(),
            None => TraceContext::new_root(self.sampled(None)),
        };
        // Upstream sees this request's span as its parent (an egress layer that records
        // attempts replaces it with the attempt's span).
        context.inject(cx.headers_mut());
        let trace = RequestTrace::new(context);
        cx.extensions_mut().insert(trace.clone());
        let mut record = self.shared.sink.fresh();
        // The pipeline records into the recycled record's list (no allocation per request);
        // the list comes back whole at the end (`read_exchange`).
        cx.recycle_stage_records(&mut record.stages);
        let payload = cx.payload();
        record.trace = Some(context);
        record.remote_parent = parent.map(|p| p.span_id());
        record.api = Some(cx.api());
        record.stream = payload.is_some_and(infergate_core::Payload::is_stream);
        record.max_tokens = payload.and_then(infergate_core::Payload::max_output_tokens);
        record.path = record.put(cx.uri().path());
        let host = cx
            .headers()
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| cx.uri().host());
        if let Some(h) = host {
            record.host = Some(record.put(h));
        }
        if let Some(m) = payload.and_then(|p| p.model()) {
            record.request_model = Some(record.put(m));
        }
        if self.shared.capture_content {
            record.content_mut().input = Some(cx.raw_body().clone());
        }
        let flight = Flight {
            record: Some(record),
            started,
            first_token: None,
            last_token: None,
            trace: Some(trace),
            sink: Some(self.shared.sink.clone()),
        };
        cx.state_mut().insert(Slot(Some(flight)));
    }

    /// The whole-body phase's work: the record read from the answer and sent.
    fn end_answered(&self, cx: &mut ResponseContext<'_>, body: &mut ResponseBody) {
        let Some(mut flight) = take(cx.exchange_mut().state_mut()) else {
            return;
        };
        // The end: the pipeline's reading after the stages within this one.
        let now = cx.phase_clock();
        read_head(flight.rec(), cx);
        let api = cx.exchange().api();
        if let Some(v) = body.json() {
            let r = flight.rec();
            r.usage = Usage::from_response_json(api, v);
            extract::answer(api, v, r);
            if self.shared.capture_content {
                r.content_mut().output = extract::output_text(api, v);
            }
        }
        flight.finish_at(Ending::Answered, now);
    }
}

#[async_trait]
impl Processor for Observe {
    fn name(&self) -> &str {
        "telemetry"
    }

    fn failure_mode(&self) -> FailureMode {
        FailureMode::FailOpen
    }

    fn phases(&self) -> Phases {
        Phases::ALL
    }

    fn observes_stages(&self) -> bool {
        true
    }

    // The phases do their work before returning an already-finished future (nothing to wait
    // for: no allocation per phase, unlike an `async fn`'s future).
    fn on_request<'life0, 'life1, 'async_trait>(
        &'life0 self,
        cx: &'life1 mut RequestContext,
    ) -> PhaseFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        self.begin(cx);
        continued()
    }

    fn on_response<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        cx: &'life1 mut ResponseContext<'life2>,
    ) -> PhaseFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        Self: 'async_trait,
    {
        // The status only: the rest is read once, at the body or the stream (or, for an answer
        // no later phase sees, when the record is dropped).
        let status = cx.status().as_u16();
        if let Some(Slot(Some(fl))) = cx.exchange_mut().state_mut().get_mut::<Slot>() {
            fl.rec().status = status;
        }
        continued()
    }

    fn on_response_body<'life0, 'life1, 'life2, 'life3, 'async_trait>(
        &'life0 self,
        cx: &'life1 mut ResponseContext<'life2>,
        body: &'life3 mut ResponseBody,
    ) -> PhaseFuture<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
        'life3: 'async_trait,
        Self: 'async_trait,
    {
        self.end_answered(cx, body);
        continued()
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        let mut flight = take(cx.exchange_mut().state_mut())?;
        read_head(flight.rec(), cx);
        let api = cx.exchange().api();
        let input_estimate = 0;
        Some(Box::new(ObserveStream {
            flight,
            meter: UsageMeter::new(api),
            api,
            input_estimate,
            capture: self.shared.capture_content,
            text: String::new(),
        }))
    }

    fn on_upstream_error(&self, exchange: &mut Exchange) {
        if let Some(mut flight) = take(exchange.state_mut()) {
            read_exchange(flight.rec(), exchange);
            flight.rec().status = 502;
            flight.rec().error_type = Some("upstream_error");
            flight.finish(Ending::UpstreamError);
        }
    }
}

/// What the exchange says: the principal, the route, what the processors did.
fn read_exchange(r: &mut Record, exchange: &mut Exchange) {
    if r.principal.is_none()
        && let Some(p) = Principal::from_extensions(exchange.state())
    {
        r.principal = Some(r.put(p.id()));
        r.tenant = Some(r.put(p.tenant()));
    }
    if r.route.is_none()
        && let Some(route) = exchange.route()
        && let Some(name) = route.rule.as_deref().or(route.backend.as_deref())
    {
        r.route = Some(r.put(name));
    }
    if r.backend.is_none()
        && let Some(b) = exchange.route().and_then(|x| x.backend.as_deref())
    {
        r.backend = Some(r.put(b));
    }
    // The exchange's list is taken whole (its later phases fill the record's emptied one).
    if r.stages.is_empty() {
        exchange.swap_stage_records(&mut r.stages);
    } else {
        r.stages.extend_from_slice(exchange.stage_records());
        exchange.clear_stage_records();
    }
}

/// What the response head says, as the client gets it (every other processor has run).
fn read_head(r: &mut Record, cx: &mut ResponseContext<'_>) {
    read_exchange(r, cx.exchange_mut());
    r.status = cx.status().as_u16();
    read_headers(r, cx.headers());
    if let Some(rej) = cx.extensions().get::<Rejection>() {
        read_rejection(r, rej);
    }
}

/// One pass over the response headers (cheaper than a lookup per name): what the other
/// processors and the egress layers said.
fn read_headers(r: &mut Record, h: &HeaderMap) {
    /// A header the record reads.
    enum Said {
        Backend,
        Attempts,
        Route,
        Cache,
        Findings,
        Cost,
        RemainingRequests,
        RemainingTokens,
    }
    for (name, value) in h {
        let name = name.as_str();
        if !name.starts_with("x-") {
            continue;
        }
        // The name first: the value is checked only for the headers read.
        let said = match name {
            "x-infergate-backend" => Said::Backend,
            "x-infergate-attempts" => Said::Attempts,
            "x-infergate-route" => Said::Route,
            "x-cache" => Said::Cache,
            "x-guardrail-findings" => Said::Findings,
            "x-infergate-cost-usd" => Said::Cost,
            "x-ratelimit-remaining-requests" => Said::RemainingRequests,
            "x-ratelimit-remaining-tokens" => Said::RemainingTokens,
            _ => continue,
        };
        let Ok(v) = value.to_str() else { continue };
        match said {
            Said::Backend => r.backend = Some(r.put(v)),
            Said::Attempts => r.attempt_count = v.parse().ok(),
            Said::Route => r.route = Some(r.put(v)),
            Said::Cache => {
                r.cache = Some(if v.eq_ignore_ascii_case("hit") {
                    "hit"
                } else if v.eq_ignore_ascii_case("miss") {
                    "miss"
                } else if v.eq_ignore_ascii_case("bypass") {
                    "bypass"
                } else {
                    "other"
                });
            }
            Said::Findings => extract::finding_checks(v, r),
            Said::Cost => {
                r.cost_usd = v.parse::<f64>().ok().filter(|c| c.is_finite() && *c >= 0.0);
            }
            Said::RemainingRequests => r.ratelimit_remaining_requests = v.parse().ok(),
            Said::RemainingTokens => r.ratelimit_remaining_tokens = v.parse().ok(),
        }
    }
}

fn read_rejection(r: &mut Record, rej: &Rejection) {
    r.rejection = Some(rej.kind().code());
    if r.rejected_by.is_none()
        && let Some(p) = rej.processor()
    {
        r.rejected_by = Some(r.put(p));
    }
}

/// Per-event: the time to first token, the usage, the answer's model and finish reasons.
struct ObserveStream {
    flight: Flight,
    meter: UsageMeter,
    api: ApiKind,
    input_estimate: u64,
    capture: bool,
    text: String,
}

impl StreamProcessor for ObserveStream {
    fn on_event(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let before = self.meter.deltas();
        self.meter.observe(&ev);
        if self.meter.deltas() > before {
            let now = Instant::now();
            if self.flight.first_token.is_none() {
                self.flight.first_token = Some(now);
            }
            self.flight.last_token = Some(now);
            if self.capture {
                extract::delta_text(self.api, &ev, &mut self.text);
            }
        }
        extract::event(self.api, &ev, self.flight.rec());
        out.push(ev);
        Ok(())
    }

    fn on_stopped(&mut self, rejection: &Rejection) {
        let r = self.flight.rec();
        read_rejection(r, rejection);
        r.stream_stopped_by = rejection.processor().map(|p| r.put(p));
        r.error_type = Some(rejection.kind().code());
    }

    fn on_end(&mut self, end: StreamEnd, _out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let ending = match end {
            StreamEnd::Completed => Ending::Completed,
            StreamEnd::ClientGone => Ending::ClientGone,
            StreamEnd::UpstreamError => Ending::UpstreamError,
            _ => Ending::Stopped,
        };
        let (usage, basis) = self
            .meter
            .settle(ending == Ending::Completed, self.input_estimate);
        let r = self.flight.rec();
        // Usage is recorded however the stream ended: the provider's numbers when it
        // finished, else what was seen (marked as an estimate).
        if self.meter.usage().is_some() || self.meter.deltas() > 0 {
            r.usage = Some(usage);
            r.usage_estimated = basis == UsageBasis::Estimate;
        }
        if ending == Ending::UpstreamError && r.error_type.is_none() {
            r.error_type = Some("upstream_error");
        }
        if self.capture && !self.text.is_empty() {
            r.content_mut().output = Some(std::mem::take(&mut self.text));
        }
        self.flight.finish(ending);
        Ok(())
    }
}
