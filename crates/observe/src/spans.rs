//! Spans of one request record: the request's span (GenAI attributes, an event per processor
//! phase) and a child span per upstream attempt.

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use serde_json::json;

use crate::Redactor;
use crate::record::Record;
use crate::worker::{error_type, operation};

/// How a span is written: one description of a request's spans ([`describe`]), written
/// either as the SDK's `SpanData` (for exporters of one's own) or straight into OTLP
/// protobuf bytes (the built-in OTLP/HTTP exporter: no attribute objects, no allocation per
/// attribute). Attributes after [`event`](Self::event) belong to that event until the next
/// event or [`end`](Self::end).
pub(crate) trait SpanWriter {
    /// Starts a span.
    fn begin(&mut self, head: &Head<'_>);
    /// A string attribute.
    fn str(&mut self, key: &'static str, v: &str);
    /// An integer attribute.
    fn int(&mut self, key: &'static str, v: i64);
    /// A floating-point attribute.
    fn float(&mut self, key: &'static str, v: f64);
    /// A boolean attribute.
    fn flag(&mut self, key: &'static str, v: bool);
    /// A string-array attribute.
    fn strs<'a>(&mut self, key: &'static str, v: impl Iterator<Item = &'a str> + Clone);
    /// Starts an event of the span.
    fn event(&mut self, name: &'static str, at: Nanos);
    /// An `infergate.processor` event: what a processor's phase came to (`names`: processor,
    /// phase, decision; all process-wide), why it rejected, and how long it took.
    fn stage_event(
        &mut self,
        at: Nanos,
        names: [&'static str; 3],
        reason: Option<&'static str>,
        duration_s: f64,
    ) {
        self.event(STAGE_EVENT, at);
        self.str(STAGE_PROCESSOR, names[0]);
        self.str(STAGE_PHASE, names[1]);
        self.str(STAGE_DECISION, names[2]);
        if let Some(r) = reason {
            self.str(STAGE_REASON, r);
        }
        self.float(STAGE_DURATION, duration_s);
    }
    /// Ends the span (with an error status and its message, or unset).
    fn end(&mut self, error: Option<&str>);
}

/// A processor-phase event's name and attribute keys (one spelling for every writer).
pub(crate) const STAGE_EVENT: &str = "infergate.processor";
pub(crate) const STAGE_PROCESSOR: &str = "infergate.processor";
pub(crate) const STAGE_PHASE: &str = "infergate.phase";
pub(crate) const STAGE_DECISION: &str = "infergate.decision";
pub(crate) const STAGE_REASON: &str = "infergate.reason";
pub(crate) const STAGE_DURATION: &str = "infergate.duration_s";

/// A time as nanoseconds since the Unix epoch (OTLP's; span times are computed in it, not
/// converted from `SystemTime` per event).
pub(crate) type Nanos = u64;

/// `t` in [`Nanos`] (0 before the epoch, saturated far after it).
pub(crate) fn nanos(t: SystemTime) -> Nanos {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, ns)
}

fn ns(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// A [`Nanos`] as a `SystemTime` (for the SDK's `SpanData`).
fn system_time(t: Nanos) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(t)
}

/// The fixed part of a span.
pub(crate) struct Head<'a> {
    pub(crate) trace_id: [u8; 16],
    pub(crate) span_id: [u8; 8],
    /// The parent span, and whether it is remote (came in a `traceparent`).
    pub(crate) parent: Option<([u8; 8], bool)>,
    pub(crate) sampled: bool,
    /// A server span (the request's) or a client span (an upstream attempt).
    pub(crate) server: bool,
    /// `{operation} {model}` make the name.
    pub(crate) op: &'static str,
    pub(crate) model: Option<&'a str>,
    pub(crate) start: Nanos,
    pub(crate) end: Nanos,
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The usage attributes (the conventions' names; cache and reasoning counts when present).
fn usage_attrs(r: &Record, w: &mut impl SpanWriter) {
    if let Some(u) = r.usage {
        w.int("gen_ai.usage.input_tokens", n(u.input_tokens));
        w.int("gen_ai.usage.output_tokens", n(u.output_tokens));
        if u.cache_read_input_tokens > 0 {
            w.int(
                "gen_ai.usage.cache_read.input_tokens",
                n(u.cache_read_input_tokens),
            );
        }
        if u.cache_creation_input_tokens > 0 {
            w.int(
                "gen_ai.usage.cache_creation.input_tokens",
                n(u.cache_creation_input_tokens),
            );
        }
        if u.reasoning_tokens > 0 {
            w.int(
                "gen_ai.usage.reasoning.output_tokens",
                n(u.reasoning_tokens),
            );
        }
    }
}

/// Writes the request's spans: the request's own (its attributes and an event per processor
/// phase) and a child per upstream attempt.
pub(crate) fn describe(
    r: &Record,
    start: SystemTime,
    provider: &str,
    providers: &std::collections::BTreeMap<String, String>,
    redactor: Option<&Redactor>,
    w: &mut impl SpanWriter,
) {
    let Some(trace) = r.trace else { return };
    let start = nanos(start);
    let end = start.saturating_add(ns(r.duration));
    let op = operation(r);
    let err = error_type(r);
    let model = r.opt(r.request_model);
    w.begin(&Head {
        trace_id: trace.trace_id(),
        span_id: trace.span_id(),
        parent: r.remote_parent.map(|p| (p, true)),
        sampled: trace.is_sampled(),
        server: true,
        op,
        model,
        start,
        end,
    });
    w.str("gen_ai.operation.name", op);
    w.str("gen_ai.provider.name", provider);
    if let Some(m) = model {
        w.str("gen_ai.request.model", m);
    }
    if r.stream {
        w.flag("gen_ai.request.stream", true);
    }
    if let Some(mt) = r.max_tokens {
        w.int("gen_ai.request.max_tokens", n(mt));
    }
    if let Some(m) = r.opt(r.response_model) {
        w.str("gen_ai.response.model", m);
    }
    if let Some(id) = r.opt(r.response_id) {
        w.str("gen_ai.response.id", id);
    }
    if r.n_finish > 0 {
        w.strs("gen_ai.response.finish_reasons", r.finish_reasons());
    }
    usage_attrs(r, w);
    if let Some(t) = r.ttft {
        w.float("gen_ai.response.time_to_first_chunk", t.as_secs_f64());
    }
    if let Some(h) = r.opt(r.host) {
        let (host, port) = split_host(h);
        w.str("server.address", host);
        if let Some(p) = port {
            w.int("server.port", i64::from(p));
        }
    }
    w.int("http.response.status_code", i64::from(r.status));
    w.str("url.path", r.get(r.path));
    if let Some(e) = &err {
        w.str("error.type", e);
    }
    if let Some(p) = r.opt(r.principal) {
        w.str("infergate.principal", p);
    }
    if let Some(t) = r.opt(r.tenant) {
        w.str("infergate.tenant", t);
    }
    if let Some(x) = r.opt(r.route) {
        w.str("infergate.route", x);
    }
    if let Some(b) = r.opt(r.backend) {
        w.str("infergate.backend", b);
    }
    if let Some(c) = r.attempt_count {
        w.int("infergate.attempts", i64::from(c));
    }
    if let Some(c) = r.cache {
        w.str("infergate.cache", c);
    }
    if r.n_findings > 0 {
        w.strs("infergate.guardrail.checks", r.findings());
    }
    if let Some(k) = r.rejection {
        w.str("infergate.rejection.reason", k);
    }
    if let Some(p) = r.opt(r.rejected_by) {
        w.str("infergate.rejection.processor", p);
    }
    if let Some(c) = r.cost_usd {
        w.float("infergate.cost_usd", c);
    }
    if r.usage.is_some() {
        w.flag("infergate.usage.estimated", r.usage_estimated);
    }
    if let Some(e) = r.ending {
        w.str("infergate.end", e.as_str());
    }
    if r.content.is_some() {
        // Without a redactor, content is recorded as given (the operator opted in).
        content(r, redactor, w);
    }
    // One event per processor phase: what it came to and how long it took.
    let mut offset: Nanos = 0;
    for st in &r.stages {
        let at = match st.phase {
            infergate_core::StagePhase::Request => start.saturating_add(offset),
            _ => end,
        };
        if st.phase == infergate_core::StagePhase::Request {
            offset = offset.saturating_add(ns(st.elapsed));
        }
        let reason = match st.outcome {
            infergate_core::StageOutcome::Rejected(k) => Some(k.code()),
            _ => None,
        };
        w.stage_event(
            at,
            [st.processor, st.phase.as_str(), st.outcome.as_str()],
            reason,
            st.elapsed.as_secs_f64(),
        );
    }
    if let Some(by) = r.opt(r.stream_stopped_by) {
        w.event(STAGE_EVENT, end);
        w.str(STAGE_PROCESSOR, by);
        w.str(STAGE_PHASE, "stream");
        w.str(STAGE_DECISION, "reject");
    }
    let failed = r.status >= 500 || r.error_type.is_some();
    w.end(failed.then(|| err.as_deref().unwrap_or("error")));
    // A child span per upstream attempt (the span id sent upstream in `traceparent`).
    let answered = r.attempts.iter().rposition(|x| x.outcome == "answer");
    for (i, at) in r.attempts.iter().enumerate() {
        w.begin(&Head {
            trace_id: trace.trace_id(),
            span_id: at.span_id,
            parent: Some((trace.span_id(), false)),
            sampled: trace.is_sampled(),
            server: false,
            op,
            model,
            start: nanos(at.start),
            end: nanos(at.start).saturating_add(ns(at.elapsed)),
        });
        w.str("gen_ai.operation.name", op);
        w.str(
            "gen_ai.provider.name",
            providers.get(&at.backend).map_or(provider, String::as_str),
        );
        w.str("server.address", &at.backend);
        w.str("infergate.backend", &at.backend);
        w.str("infergate.attempt.outcome", at.outcome);
        w.int(
            "infergate.attempt",
            i64::try_from(i + 1).unwrap_or(i64::MAX),
        );
        if let Some(m) = model {
            w.str("gen_ai.request.model", m);
        }
        if let Some(code) = at.status {
            w.int("http.response.status_code", i64::from(code));
        }
        let failed = at.outcome != "answer" || at.status.is_some_and(|c| c >= 500);
        if failed {
            match at.status {
                Some(c) => w.str("error.type", &c.to_string()),
                None => w.str("error.type", at.outcome),
            }
        }
        if Some(i) == answered {
            if let Some(m) = r.opt(r.response_model) {
                w.str("gen_ai.response.model", m);
            }
            usage_attrs(r, w);
        }
        w.end(failed.then_some(at.outcome));
    }
}

/// Writes spans as the SDK's `SpanData`, for exporters of one's own.
pub(crate) struct SdkWriter<'a> {
    pub(crate) out: &'a mut Vec<SpanData>,
    pub(crate) scope: &'a InstrumentationScope,
    span: Option<SpanData>,
    event: Option<opentelemetry::trace::Event>,
}

impl<'a> SdkWriter<'a> {
    pub(crate) fn new(out: &'a mut Vec<SpanData>, scope: &'a InstrumentationScope) -> Self {
        Self {
            out,
            scope,
            span: None,
            event: None,
        }
    }

    fn push(&mut self, kv: KeyValue) {
        if let Some(e) = &mut self.event {
            e.attributes.push(kv);
        } else if let Some(s) = &mut self.span {
            s.attributes.push(kv);
        }
    }

    fn close_event(&mut self) {
        if let (Some(e), Some(s)) = (self.event.take(), &mut self.span) {
            s.events.events.push(e);
        }
    }
}

impl SpanWriter for SdkWriter<'_> {
    fn begin(&mut self, h: &Head<'_>) {
        let context = SpanContext::new(
            TraceId::from_bytes(h.trace_id),
            SpanId::from_bytes(h.span_id),
            if h.sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::default()
            },
            false,
            TraceState::NONE,
        );
        self.span = Some(SpanData {
            span_context: context,
            parent_span_id: h
                .parent
                .map_or(SpanId::INVALID, |p| SpanId::from_bytes(p.0)),
            parent_span_is_remote: h.parent.is_some_and(|p| p.1),
            span_kind: if h.server {
                SpanKind::Server
            } else {
                SpanKind::Client
            },
            name: Cow::Owned(match h.model {
                Some(m) => format!("{} {m}", h.op),
                None => h.op.to_owned(),
            }),
            start_time: system_time(h.start),
            end_time: system_time(h.end),
            attributes: Vec::with_capacity(32),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: self.scope.clone(),
        });
    }
    fn str(&mut self, key: &'static str, v: &str) {
        self.push(KeyValue::new(key, Value::String(v.to_owned().into())));
    }
    fn int(&mut self, key: &'static str, v: i64) {
        self.push(KeyValue::new(key, v));
    }
    fn float(&mut self, key: &'static str, v: f64) {
        self.push(KeyValue::new(key, v));
    }
    fn flag(&mut self, key: &'static str, v: bool) {
        self.push(KeyValue::new(key, v));
    }
    fn strs<'b>(&mut self, key: &'static str, v: impl Iterator<Item = &'b str> + Clone) {
        self.push(KeyValue::new(
            key,
            Value::Array(opentelemetry::Array::String(
                v.map(|x| x.to_owned().into()).collect(),
            )),
        ));
    }
    fn event(&mut self, name: &'static str, at: Nanos) {
        self.close_event();
        self.event = Some(opentelemetry::trace::Event::new(
            name,
            system_time(at),
            Vec::new(),
            0,
        ));
    }
    fn end(&mut self, error: Option<&str>) {
        self.close_event();
        if let Some(mut s) = self.span.take() {
            if let Some(e) = error {
                s.status = Status::error(e.to_owned());
            }
            self.out.push(s);
        }
    }
}

/// Opt-in content: the request's messages and the answer's text, through the redactor.
fn content(r: &Record, redact: Option<&Redactor>, w: &mut impl SpanWriter) {
    let redact = |t: &str| match redact {
        Some(f) => f(t),
        None => t.to_owned(),
    };
    let Some(c) = &r.content else { return };
    if let Some(raw) = &c.input
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw)
    {
        let msgs = v
            .get("messages")
            .or_else(|| v.get("input"))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if !msgs.is_null() {
            w.str("gen_ai.input.messages", &redact(&msgs.to_string()));
        }
        if let Some(sys) = v.get("system").or_else(|| v.get("instructions")) {
            w.str("gen_ai.system_instructions", &redact(&sys.to_string()));
        }
    }
    if let Some(text) = &c.output {
        let msg = json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": redact(text)}],
            "finish_reason": r.finish_reasons().next(),
        }]);
        w.str("gen_ai.output.messages", &msg.to_string());
    }
}

/// `host[:port]` (IPv6 literals in brackets).
fn split_host(h: &str) -> (&str, Option<u16>) {
    if let Some(rest) = h.strip_prefix('[') {
        if let Some((host, tail)) = rest.split_once(']') {
            return (host, tail.strip_prefix(':').and_then(|p| p.parse().ok()));
        }
        return (h, None);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, port.parse().ok()),
        _ => (h, None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_split() {
        assert_eq!(super::split_host("a.b:8080"), ("a.b", Some(8080)));
        assert_eq!(super::split_host("a.b"), ("a.b", None));
        assert_eq!(super::split_host("[::1]:80"), ("::1", Some(80)));
    }
}
