//! Spans of one request record: the request's span (GenAI attributes, an event per processor
//! phase) and a child span per upstream attempt.

use std::time::{Duration, SystemTime};

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents};
use serde_json::json;

use crate::Redactor;
use crate::record::Record;
use crate::worker::{error_type, operation, span, span_context};

fn s(key: &'static str, v: &str) -> KeyValue {
    KeyValue::new(key, Value::String(v.to_owned().into()))
}

fn n(key: &'static str, v: u64) -> KeyValue {
    KeyValue::new(key, i64::try_from(v).unwrap_or(i64::MAX))
}

/// The name of a GenAI span: `{operation} {model}`.
fn name(op: &str, model: Option<&str>) -> String {
    match model {
        Some(m) => format!("{op} {m}"),
        None => op.to_owned(),
    }
}

/// The usage attributes (the conventions' names; cache and reasoning counts when present).
fn usage_attrs(r: &Record, out: &mut Vec<KeyValue>) {
    if let Some(u) = r.usage {
        out.push(n("gen_ai.usage.input_tokens", u.input_tokens));
        out.push(n("gen_ai.usage.output_tokens", u.output_tokens));
        if u.cache_read_input_tokens > 0 {
            out.push(n(
                "gen_ai.usage.cache_read.input_tokens",
                u.cache_read_input_tokens,
            ));
        }
        if u.cache_creation_input_tokens > 0 {
            out.push(n(
                "gen_ai.usage.cache_creation.input_tokens",
                u.cache_creation_input_tokens,
            ));
        }
        if u.reasoning_tokens > 0 {
            out.push(n(
                "gen_ai.usage.reasoning.output_tokens",
                u.reasoning_tokens,
            ));
        }
    }
}

/// Builds the request's spans into `out`.
pub(crate) fn build(
    r: &Record,
    provider: &str,
    providers: &std::collections::BTreeMap<String, String>,
    scope: &InstrumentationScope,
    redactor: Option<&Redactor>,
    out: &mut Vec<SpanData>,
) {
    let Some(trace) = r.trace else { return };
    let start = r.start.unwrap_or_else(SystemTime::now);
    let end = start + r.duration;
    let op = operation(r);
    let err = error_type(r);
    let mut a: Vec<KeyValue> = Vec::with_capacity(32);
    a.push(KeyValue::new("gen_ai.operation.name", op));
    a.push(s("gen_ai.provider.name", provider));
    if let Some(m) = r.opt(r.request_model) {
        a.push(s("gen_ai.request.model", m));
    }
    if r.stream {
        a.push(KeyValue::new("gen_ai.request.stream", true));
    }
    if let Some(mt) = r.max_tokens {
        a.push(n("gen_ai.request.max_tokens", mt));
    }
    if let Some(m) = r.opt(r.response_model) {
        a.push(s("gen_ai.response.model", m));
    }
    if let Some(id) = r.opt(r.response_id) {
        a.push(s("gen_ai.response.id", id));
    }
    if r.n_finish > 0 {
        a.push(KeyValue::new(
            "gen_ai.response.finish_reasons",
            Value::Array(opentelemetry::Array::String(
                r.finish_reasons().map(|f| f.to_owned().into()).collect(),
            )),
        ));
    }
    usage_attrs(r, &mut a);
    if let Some(t) = r.ttft {
        a.push(KeyValue::new(
            "gen_ai.response.time_to_first_chunk",
            t.as_secs_f64(),
        ));
    }
    if let Some(h) = r.opt(r.host) {
        let (host, port) = split_host(h);
        a.push(s("server.address", host));
        if let Some(p) = port {
            a.push(KeyValue::new("server.port", i64::from(p)));
        }
    }
    a.push(KeyValue::new(
        "http.response.status_code",
        i64::from(r.status),
    ));
    a.push(s("url.path", r.get(r.path)));
    if let Some(e) = &err {
        a.push(s("error.type", e));
    }
    if let Some(p) = r.opt(r.principal) {
        a.push(s("infergate.principal", p));
    }
    if let Some(t) = r.opt(r.tenant) {
        a.push(s("infergate.tenant", t));
    }
    if let Some(x) = r.opt(r.route) {
        a.push(s("infergate.route", x));
    }
    if let Some(b) = r.opt(r.backend) {
        a.push(s("infergate.backend", b));
    }
    if let Some(c) = r.attempt_count {
        a.push(KeyValue::new("infergate.attempts", i64::from(c)));
    }
    if let Some(c) = r.cache {
        a.push(KeyValue::new("infergate.cache", c));
    }
    if r.n_findings > 0 {
        a.push(KeyValue::new(
            "infergate.guardrail.checks",
            Value::Array(opentelemetry::Array::String(
                r.findings().map(|f| f.to_owned().into()).collect(),
            )),
        ));
    }
    if let Some(k) = r.rejection {
        a.push(KeyValue::new("infergate.rejection.reason", k));
    }
    if let Some(p) = r.opt(r.rejected_by) {
        a.push(s("infergate.rejection.processor", p));
    }
    if let Some(c) = r.cost_usd {
        a.push(KeyValue::new("infergate.cost_usd", c));
    }
    if r.usage.is_some() {
        a.push(KeyValue::new(
            "infergate.usage.estimated",
            r.usage_estimated,
        ));
    }
    if let Some(e) = r.ending {
        a.push(KeyValue::new("infergate.end", e.as_str()));
    }
    if let Some(redact) =
        redactor.filter(|_| r.input_content.is_some() || r.output_content.is_some())
    {
        content(r, redact, &mut a);
    } else if r.input_content.is_some() || r.output_content.is_some() {
        // Content capture without a redactor: recorded as given (the operator opted in).
        content(
            r,
            &(std::sync::Arc::new(|t: &str| t.to_owned()) as Redactor),
            &mut a,
        );
    }
    // One event per processor phase: what it came to and how long it took.
    let mut events = SpanEvents::default();
    let mut offset = Duration::ZERO;
    for st in &r.stages {
        let at = match st.phase {
            infergate_core::StagePhase::Request => start + offset,
            _ => end,
        };
        if st.phase == infergate_core::StagePhase::Request {
            offset += st.elapsed;
        }
        let mut ea = vec![
            KeyValue::new("infergate.processor", st.processor),
            KeyValue::new("infergate.phase", st.phase.as_str()),
            KeyValue::new("infergate.decision", st.outcome.as_str()),
            KeyValue::new("infergate.duration_s", st.elapsed.as_secs_f64()),
        ];
        if let infergate_core::StageOutcome::Rejected(k) = st.outcome {
            ea.push(KeyValue::new("infergate.reason", k.code()));
        }
        events.events.push(opentelemetry::trace::Event::new(
            "infergate.processor",
            at,
            ea,
            0,
        ));
    }
    if let Some(by) = r.opt(r.stream_stopped_by) {
        events.events.push(opentelemetry::trace::Event::new(
            "infergate.processor",
            end,
            vec![
                s("infergate.processor", by),
                KeyValue::new("infergate.phase", "stream"),
                KeyValue::new("infergate.decision", "reject"),
            ],
            0,
        ));
    }
    let status = if r.status >= 500 || r.error_type.is_some() {
        Status::error(err.as_deref().unwrap_or("error").to_owned())
    } else {
        Status::Unset
    };
    let parent = r.remote_parent.map_or(SpanId::INVALID, SpanId::from_bytes);
    out.push(span(
        span_context(&trace, trace.span_id()),
        parent,
        r.remote_parent.is_some(),
        SpanKind::Server,
        name(op, r.opt(r.request_model)),
        start,
        end,
        a,
        events,
        status,
        scope,
    ));
    // A child span per upstream attempt (the span id sent upstream in `traceparent`).
    let answered = r.attempts.iter().rposition(|x| x.outcome == "answer");
    for (i, at) in r.attempts.iter().enumerate() {
        let mut aa = vec![
            KeyValue::new("gen_ai.operation.name", op),
            s(
                "gen_ai.provider.name",
                providers.get(&at.backend).map_or(provider, String::as_str),
            ),
            s("server.address", &at.backend),
            s("infergate.backend", &at.backend),
            KeyValue::new("infergate.attempt.outcome", at.outcome),
            KeyValue::new(
                "infergate.attempt",
                i64::try_from(i + 1).unwrap_or(i64::MAX),
            ),
        ];
        if let Some(m) = r.opt(r.request_model) {
            aa.push(s("gen_ai.request.model", m));
        }
        if let Some(code) = at.status {
            aa.push(KeyValue::new("http.response.status_code", i64::from(code)));
        }
        let failed = at.outcome != "answer" || at.status.is_some_and(|c| c >= 500);
        if failed {
            let e = match at.status {
                Some(c) => c.to_string(),
                None => at.outcome.to_owned(),
            };
            aa.push(s("error.type", &e));
        }
        if Some(i) == answered {
            if let Some(m) = r.opt(r.response_model) {
                aa.push(s("gen_ai.response.model", m));
            }
            usage_attrs(r, &mut aa);
        }
        out.push(span(
            span_context(&trace, at.span_id),
            SpanId::from_bytes(trace.span_id()),
            false,
            SpanKind::Client,
            name(op, r.opt(r.request_model)),
            at.start,
            at.start + at.elapsed,
            aa,
            SpanEvents::default(),
            if failed {
                Status::error(at.outcome)
            } else {
                Status::Unset
            },
            scope,
        ));
    }
}

/// Opt-in content: the request's messages and the answer's text, through the redactor.
fn content(r: &Record, redact: &Redactor, a: &mut Vec<KeyValue>) {
    if let Some(raw) = &r.input_content
        && let Ok(v) = serde_json::from_slice::<serde_json::Value>(raw)
    {
        let msgs = v
            .get("messages")
            .or_else(|| v.get("input"))
            .cloned()
            .unwrap_or(serde_json::Value::Null);
        if !msgs.is_null() {
            a.push(s("gen_ai.input.messages", &redact(&msgs.to_string())));
        }
        if let Some(sys) = v.get("system").or_else(|| v.get("instructions")) {
            a.push(s("gen_ai.system_instructions", &redact(&sys.to_string())));
        }
    }
    if let Some(text) = &r.output_content {
        let msg = json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": redact(text)}],
            "finish_reason": r.finish_reasons().next(),
        }]);
        a.push(s("gen_ai.output.messages", &msg.to_string()));
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
