//! Reading the answer: its model, id and finish reasons, from a whole body or from stream
//! events (the events' shared parse, and only for the events that can carry them).

use infergate_core::ApiKind;
use infergate_core::sse::SseEvent;
use serde_json::Value;

use crate::record::Record;

fn put(r: &mut Record, v: &Value, key: &str) -> Option<crate::record::Span> {
    v.get(key).and_then(Value::as_str).map(|s| r.put(s))
}

fn push_reason(r: &mut Record, reason: &str) {
    r.add_finish_reason(reason);
}

/// A whole answer's model, id and finish reasons.
pub(crate) fn answer(api: ApiKind, v: &Value, r: &mut Record) {
    r.response_model = put(r, v, "model");
    r.response_id = put(r, v, "id");
    match api {
        ApiKind::AnthropicMessages => {
            if let Some(s) = v.get("stop_reason").and_then(Value::as_str) {
                push_reason(r, s);
            }
        }
        ApiKind::Responses => {
            if let Some(s) = v.get("status").and_then(Value::as_str) {
                push_reason(r, s);
            }
        }
        _ => {
            if let Some(choices) = v.get("choices").and_then(Value::as_array) {
                for c in choices.iter().take(64) {
                    if let Some(s) = c.get("finish_reason").and_then(Value::as_str) {
                        push_reason(r, s);
                    }
                }
            }
        }
    }
}

/// One stream event: the model and id (once), finish reasons. Parses only events that can
/// carry them (and those are parsed by the usage meter anyway).
pub(crate) fn event(api: ApiKind, ev: &SseEvent, r: &mut Record) {
    match api {
        ApiKind::AnthropicMessages => match ev.event_type() {
            Some("message_start") => {
                if let Some(m) = ev.json().and_then(|v| v.get("message")) {
                    r.response_model = put(r, m, "model");
                    r.response_id = put(r, m, "id");
                }
            }
            Some("message_delta") => {
                if let Some(s) = ev
                    .json()
                    .and_then(|v| v.pointer("/delta/stop_reason"))
                    .and_then(Value::as_str)
                {
                    push_reason(r, s);
                }
            }
            _ => {}
        },
        ApiKind::Responses => {
            if let Some(
                "response.created"
                | "response.completed"
                | "response.incomplete"
                | "response.failed",
            ) = ev.event_type()
                && let Some(resp) = ev.json().and_then(|v| v.get("response"))
            {
                r.response_model = put(r, resp, "model");
                r.response_id = put(r, resp, "id");
                if ev.event_type() != Some("response.created")
                    && let Some(s) = resp.get("status").and_then(Value::as_str)
                {
                    push_reason(r, s);
                }
            }
        }
        _ => {
            let Some(data) = ev.data_str() else { return };
            let first = r.response_model.is_none() && data.starts_with('{');
            let reason = data.contains("\"finish_reason\":\"");
            if !first && !reason {
                return;
            }
            let Some(v) = ev.json() else { return };
            if first {
                r.response_model = put(r, v, "model");
                r.response_id = put(r, v, "id");
            }
            if reason && let Some(choices) = v.get("choices").and_then(Value::as_array) {
                for c in choices.iter().take(64) {
                    if let Some(s) = c.get("finish_reason").and_then(Value::as_str) {
                        push_reason(r, s);
                    }
                }
            }
        }
    }
}

/// The guardrail checks named in an `x-guardrail-findings` header (`check:label=n, …`),
/// each once; never the matched text (the header has none).
pub(crate) fn finding_checks(header: &str, r: &mut Record) {
    for item in header.split(',').take(64) {
        let name = item.trim();
        let name = name.split('=').next().unwrap_or("");
        let check = name.split(':').next().unwrap_or("").trim();
        r.add_finding(check);
    }
}

/// The text of a whole answer (for opt-in content capture).
pub(crate) fn output_text(api: ApiKind, v: &Value) -> Option<String> {
    let mut out = String::new();
    match api {
        ApiKind::AnthropicMessages => {
            for b in v
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = b.get("text").and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
        }
        ApiKind::Responses => {
            for item in v
                .get("output")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                for c in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(t) = c.get("text").and_then(Value::as_str) {
                        out.push_str(t);
                    }
                }
            }
        }
        _ => {
            for c in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = c.pointer("/message/content").and_then(Value::as_str) {
                    out.push_str(t);
                }
            }
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Appends a content delta's text (for opt-in content capture of streams).
pub(crate) fn delta_text(api: ApiKind, ev: &SseEvent, out: &mut String) {
    let Some(v) = ev.json() else { return };
    let t = match api {
        ApiKind::AnthropicMessages => v.pointer("/delta/text"),
        ApiKind::Responses => v.get("delta"),
        _ => v.pointer("/choices/0/delta/content"),
    };
    if let Some(t) = t.and_then(Value::as_str)
        && out.len() < 1 << 20
    {
        out.push_str(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finding_checks_are_named_once() {
        let mut r = Record::default();
        finding_checks(
            "pii:email=2, pii:phone=1, injection:ignore_previous=1",
            &mut r,
        );
        assert_eq!(r.findings().collect::<Vec<_>>(), vec!["pii", "injection"]);
        let mut r = Record::default();
        finding_checks("", &mut r);
        assert_eq!(r.findings().count(), 0);
    }
}
