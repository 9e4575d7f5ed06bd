//! The guardrail processor.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use async_trait::async_trait;
use http::{HeaderValue, StatusCode};
use infergate_core::pipeline::StreamStop;
use infergate_core::sse::SseEvent;
use infergate_core::{
    ApiKind, Decision, FailureMode, Phases, Processor, ProcessorError, RejectKind, Rejection,
    RequestContext, ResponseBody, ResponseContext, StreamEnd, StreamProcessor,
};
use serde_json::Value;

use crate::check::{Action, Check, Detector, Hit, Scan, redact};

/// The response header that reports findings of `Annotate` (and `Redact`) checks.
pub const FINDINGS_HEADER: &str = "x-guardrail-findings";

/// Configures a [`Guardrail`].
#[derive(Debug, Clone)]
#[must_use]
pub struct GuardrailConfig {
    checks: Vec<Check>,
    moderations: Vec<crate::Moderation>,
    roles: Option<Vec<String>>,
    hold_back: usize,
    block_status: StatusCode,
}

impl Default for GuardrailConfig {
    fn default() -> Self {
        Self {
            checks: Vec::new(),
            moderations: Vec::new(),
            roles: None,
            hold_back: 64,
            block_status: StatusCode::BAD_REQUEST,
        }
    }
}

impl GuardrailConfig {
    /// No checks yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a check.
    pub fn check(mut self, check: Check) -> Self {
        self.checks.push(check);
        self
    }

    /// Adds an external moderation check (requests only; runs after the local checks).
    pub fn moderation(mut self, m: crate::Moderation) -> Self {
        self.moderations.push(m);
        self
    }

    /// Inspect only messages of these roles (default: every role, tool-call arguments and the
    /// system prompt included).
    pub fn roles<I, S>(mut self, roles: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.roles = Some(roles.into_iter().map(Into::into).collect());
        self
    }

    /// The most bytes of streamed text held back so that a match split across chunks is still
    /// caught before any of it is sent (default 64). Only text that may still grow into a match
    /// is held (the trailing word or number, an open deny-list phrase or PEM header; user
    /// regexes, whose shape is unknown, hold this many bytes), so ordinary text flows on at
    /// about one token's delay. Matches longer than this can leak their start.
    pub fn hold_back(mut self, bytes: usize) -> Self {
        self.hold_back = bytes;
        self
    }

    /// Whether text of `role` is inspected (embeddings input always is).
    fn role_ok(&self, role: &str) -> bool {
        self.roles
            .as_ref()
            .is_none_or(|r| r.iter().any(|x| x == role) || role == "input")
    }

    /// The status of a blocked request (default 400).
    pub fn block_status(mut self, status: StatusCode) -> Self {
        self.block_status = status;
        self
    }
}

/// Findings of a request (`check:label` → count), carried to its response and placed in the
/// response extensions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings(pub BTreeMap<String, usize>);

impl Findings {
    fn add(&mut self, check: &str, label: &str) {
        *self.0.entry(format!("{check}:{label}")).or_default() += 1;
    }

    fn header(&self) -> Option<HeaderValue> {
        if self.0.is_empty() {
            return None;
        }
        let s: Vec<String> = self.0.iter().map(|(k, n)| format!("{k}={n}")).collect();
        HeaderValue::from_str(&s.join(", ")).ok()
    }
}

/// Guardrail checks on requests and responses, streamed ones included: a [`Processor`] (or,
/// through [`GuardrailLayer`](crate::GuardrailLayer), a layer of its own).
#[derive(Debug, Clone)]
pub struct Guardrail {
    cfg: Arc<GuardrailConfig>,
}

impl Guardrail {
    /// A guardrail for `config`.
    pub fn new(config: GuardrailConfig) -> Self {
        Self {
            cfg: Arc::new(config),
        }
    }

    fn role_ok(&self, role: &str) -> bool {
        self.cfg.role_ok(role)
    }

    fn blocked(&self, check: &Check, label: &str) -> Rejection {
        Rejection::new(
            RejectKind::ContentBlocked,
            format!("blocked by guardrail check '{}' ({label})", check.name),
        )
        .with_status(self.cfg.block_status)
        .with_processor("guardrail")
    }
}

#[async_trait]
impl Processor for Guardrail {
    fn name(&self) -> &str {
        "guardrail"
    }

    fn phases(&self) -> Phases {
        let response = self.cfg.checks.iter().any(|c| c.applies.response());
        if response {
            Phases::ALL
        } else {
            Phases::REQUEST | Phases::RESPONSE
        }
    }

    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let Some(payload) = cx.payload() else {
            return Ok(Decision::Continue);
        };
        let checks: Vec<&Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.request())
            .collect();
        if checks.is_empty() && self.cfg.moderations.is_empty() {
            return Ok(Decision::Continue);
        }
        #[cfg(feature = "tokens")]
        for c in &checks {
            if let Detector::MaxTokens(max) = c.detector {
                // The process-wide memo, shared with the rate limiter.
                let n = infergate_ratelimit::TokenCounter::shared().count_prompt(payload);
                if n > max {
                    let r = self
                        .blocked(c, &format!("prompt too long: {n} tokens, limit {max}"))
                        .with_code("prompt_too_long");
                    return Ok(Decision::Reject(r));
                }
            }
        }
        let mut findings = Findings::default();
        let mut inspected = String::new();
        let mut block: Option<Rejection> = None;
        let mut redact_needed = false;
        let mut chars = 0usize;
        payload.for_each_text(&mut |t| {
            if block.is_some() || !self.role_ok(t.role) {
                return;
            }
            chars += t.text.chars().count();
            if !self.cfg.moderations.is_empty() {
                if !inspected.is_empty() {
                    inspected.push('\n');
                }
                inspected.push_str(t.text);
            }
            let scan = Scan::new(t.text);
            for c in &checks {
                if let Detector::MaxChars(max) = c.detector {
                    if chars > max {
                        block = Some(
                            self.blocked(c, "prompt too long")
                                .with_code("prompt_too_long"),
                        );
                    }
                    continue;
                }
                // Injections come in through what users and tools write, not through the
                // operator's own system prompt ("You are a helpful assistant" reads like a
                // persona takeover) or the model's earlier answers.
                if matches!(c.detector, Detector::Injection { .. })
                    && !matches!(t.role, "user" | "tool" | "function" | "input")
                {
                    continue;
                }
                for h in c.find_in(&scan) {
                    match c.action {
                        Action::Block => {
                            block = Some(self.blocked(c, &h.label));
                            return;
                        }
                        Action::Redact => {
                            redact_needed = true;
                            findings.add(&c.name, &h.label);
                        }
                        Action::Annotate => findings.add(&c.name, &h.label),
                    }
                }
            }
        });
        if let Some(r) = block {
            tracing::info!(reason = r.message(), "guardrail blocked a request");
            return Ok(Decision::Reject(r));
        }
        for m in &self.cfg.moderations {
            match tokio::time::timeout(m.timeout, m.moderator.moderate(&inspected)).await {
                Ok(Ok(v)) if v.flagged => {
                    let label = if v.categories.is_empty() {
                        "flagged".to_owned()
                    } else {
                        v.categories.join("+")
                    };
                    return Ok(Decision::Reject(
                        Rejection::new(
                            RejectKind::ContentBlocked,
                            format!("blocked by moderation '{}' ({label})", m.name),
                        )
                        .with_status(self.cfg.block_status)
                        .with_processor("guardrail"),
                    ));
                }
                Ok(Ok(_)) => {}
                outcome => {
                    let why = match outcome {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("timed out after {:?}", m.timeout),
                    };
                    if m.failure_mode == FailureMode::FailOpen {
                        tracing::warn!(moderation = %m.name, error = %why, "moderation failed; failing open");
                        findings.add(&m.name, "unavailable");
                    } else {
                        tracing::warn!(moderation = %m.name, error = %why, "moderation failed; failing closed");
                        return Ok(Decision::Reject(
                            Rejection::new(
                                RejectKind::ExternalServiceFailed,
                                format!("moderation '{}' is unavailable", m.name),
                            )
                            .with_status(StatusCode::SERVICE_UNAVAILABLE)
                            .with_code("moderation_unavailable")
                            .with_processor("guardrail"),
                        ));
                    }
                }
            }
        }
        if redact_needed && let Some(p) = cx.payload_mut() {
            let cfg = self.cfg.clone();
            p.for_each_text_mut(&mut |role, _, text| {
                if !cfg.role_ok(role) {
                    return;
                }
                for c in cfg
                    .checks
                    .iter()
                    .filter(|c| c.applies.request() && c.action == Action::Redact)
                {
                    // Each redaction changes the text: a fresh scan per check.
                    let hits = c.find(text);
                    if !hits.is_empty() {
                        *text = redact(text, &hits);
                    }
                }
            });
        }
        if !findings.0.is_empty() {
            tracing::info!(findings = ?findings.0, "guardrail findings in a request");
            cx.state_mut().insert(findings);
        }
        Ok(Decision::Continue)
    }

    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        if let Some(h) = cx
            .exchange()
            .state()
            .get::<Findings>()
            .and_then(Findings::header)
        {
            cx.headers_mut().insert(FINDINGS_HEADER, h);
        }
        Ok(Decision::Continue)
    }

    async fn on_response_body(
        &self,
        cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        if !cx.status().is_success() {
            return Ok(Decision::Continue);
        }
        let api = cx.exchange().api();
        let checks: Vec<&Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.response())
            .collect();
        if checks.is_empty() {
            return Ok(Decision::Continue);
        }
        // First look (no changes), then redact if needed.
        let mut block = None;
        let mut redact_needed = false;
        let mut findings = Findings::default();
        if let Some(json) = body.json() {
            for text in response_texts(api, json) {
                let scan = Scan::new(text);
                for c in &checks {
                    for h in c.find_in(&scan) {
                        match c.action {
                            Action::Block => {
                                block.get_or_insert_with(|| self.blocked(c, &h.label));
                            }
                            Action::Redact => {
                                redact_needed = true;
                                findings.add(&c.name, &h.label);
                            }
                            Action::Annotate => findings.add(&c.name, &h.label),
                        }
                    }
                }
            }
        }
        if let Some(r) = block {
            tracing::info!(reason = r.message(), "guardrail blocked a response");
            return Ok(Decision::Reject(r));
        }
        if redact_needed && let Some(json) = body.json_mut() {
            for_each_response_text_mut(api, json, &mut |text| {
                for c in checks.iter().filter(|c| c.action == Action::Redact) {
                    let hits = c.find(text);
                    if !hits.is_empty() {
                        *text = redact(text, &hits);
                    }
                }
            });
        }
        if let Some(h) = findings.header() {
            cx.headers_mut().insert("x-guardrail-response-findings", h);
        }
        Ok(Decision::Continue)
    }

    fn on_stream(&self, cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        if !cx.status().is_success() {
            return None;
        }
        let checks: Vec<Check> = self
            .cfg
            .checks
            .iter()
            .filter(|c| c.applies.response() && c.action != Action::Annotate)
            .cloned()
            .collect();
        if checks.is_empty() {
            return None; // nothing to enforce: the stream passes untouched
        }
        Some(Box::new(WindowStream {
            guard: self.clone(),
            checks,
            api: cx.exchange().api(),
            held: VecDeque::new(),
            window: String::new(),
            redacted: 0,
        }))
    }
}

/// The assistant text of a non-streamed response.
fn response_texts(api: ApiKind, v: &Value) -> Vec<&str> {
    fn push<'a>(out: &mut Vec<&'a str>, v: Option<&'a Value>) {
        if let Some(Value::String(s)) = v {
            out.push(s.as_str());
        }
    }
    let mut out = Vec::new();
    match api {
        ApiKind::AnthropicMessages => {
            for b in v["content"].as_array().into_iter().flatten() {
                push(&mut out, b.get("text"));
            }
        }
        ApiKind::Responses => {
            for item in v["output"].as_array().into_iter().flatten() {
                for c in item["content"].as_array().into_iter().flatten() {
                    push(&mut out, c.get("text"));
                }
            }
        }
        _ => {
            for ch in v["choices"].as_array().into_iter().flatten() {
                push(&mut out, ch.pointer("/message/content"));
                for tc in ch
                    .pointer("/message/tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    push(&mut out, tc.pointer("/function/arguments"));
                }
            }
        }
    }
    out
}

fn for_each_response_text_mut(api: ApiKind, v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    let mut apply = |v: Option<&mut Value>| {
        if let Some(Value::String(s)) = v {
            f(s);
        }
    };
    match api {
        ApiKind::AnthropicMessages => {
            for b in v["content"].as_array_mut().into_iter().flatten() {
                apply(b.get_mut("text"));
            }
        }
        ApiKind::Responses => {
            for item in v["output"].as_array_mut().into_iter().flatten() {
                for c in item["content"].as_array_mut().into_iter().flatten() {
                    apply(c.get_mut("text"));
                }
            }
        }
        _ => {
            for ch in v["choices"].as_array_mut().into_iter().flatten() {
                apply(ch.pointer_mut("/message/content"));
            }
        }
    }
}

/// Where the text of a stream event lives, by API.
fn delta_pointer(api: ApiKind, v: &Value) -> Option<&'static str> {
    match api {
        ApiKind::AnthropicMessages => (v.pointer("/delta/type").and_then(Value::as_str)
            == Some("text_delta"))
        .then_some("/delta/text"),
        ApiKind::Responses => (v.get("type").and_then(Value::as_str)
            == Some("response.output_text.delta"))
        .then_some("/delta"),
        _ => v
            .pointer("/choices/0/delta/content")
            .is_some_and(Value::is_string)
            .then_some("/choices/0/delta/content"),
    }
}

struct Held {
    event: SseEvent,
    /// The event's text in the window: start and end byte offsets (equal for events without
    /// text, which keep their place in the order).
    range: (usize, usize),
    json: Option<(Value, &'static str)>,
}

/// Streamed responses: the text of every event goes into a window; events are released once
/// no check sees a possible match still forming in their text (at most `hold_back` bytes are
/// held), so a match split across chunks is seen whole before any part of it is sent. Block ends the stream with an error
/// event; Redact rewrites the released events' text.
struct WindowStream {
    guard: Guardrail,
    checks: Vec<Check>,
    api: ApiKind,
    held: VecDeque<Held>,
    window: String,
    redacted: usize,
}

impl WindowStream {
    fn flush(&mut self, out: &mut Vec<SseEvent>, last: bool) -> Result<(), StreamStop> {
        let len = self.window.len();
        let cap = self.guard.cfg.hold_back;
        let mut spans: Vec<Hit> = Vec::new();
        // Hold back only what may still become (or extend) a match, and never more than `cap`.
        let mut safe = len;
        let scan = Scan::new(&self.window);
        for c in &self.checks {
            if !last {
                safe = safe.min(c.stream_hold(&self.window, cap));
            }
            for h in c.find_in(&scan) {
                if !last && c.hit_may_vanish(&self.window, &h) {
                    safe = safe.min(h.start);
                    continue;
                }
                match c.action {
                    Action::Block => {
                        return Err(StreamStop::Reject(self.guard.blocked(c, &h.label)));
                    }
                    Action::Redact => spans.push(h),
                    Action::Annotate => {}
                }
            }
        }
        spans.sort_by_key(|h| h.start);
        safe = safe.max(len.saturating_sub(cap));
        // Never release part of a redaction.
        for s in &spans {
            if s.start < safe && s.end > safe {
                safe = s.start;
            }
        }
        let mut released_to = 0;
        while let Some(h) = self.held.front() {
            if h.range.1 > safe || (h.range.0 == h.range.1 && h.range.0 > safe) {
                break;
            }
            let Some(mut h) = self.held.pop_front() else {
                break;
            };
            let (a, b) = h.range;
            released_to = b;
            if let Some((mut json, ptr)) = h.json.take() {
                let touched = spans.iter().any(|s| s.start < b && s.end > a);
                if touched {
                    let mut text = String::new();
                    let mut pos = a;
                    for s in spans.iter().filter(|s| s.start < b && s.end > a) {
                        if s.start >= pos {
                            text.push_str(&self.window[pos..s.start]);
                            text.push_str(&s.mask);
                            self.redacted += 1;
                        }
                        pos = s.end.min(b).max(pos);
                    }
                    if pos < b {
                        text.push_str(&self.window[pos..b]);
                    }
                    if let Some(slot) = json.pointer_mut(ptr) {
                        *slot = Value::String(text);
                        h.event.set_data(json.to_string());
                    }
                }
            }
            out.push(h.event);
        }
        if released_to > 0 {
            self.window.drain(..released_to);
            for h in &mut self.held {
                h.range.0 -= released_to;
                h.range.1 -= released_to;
            }
        }
        Ok(())
    }
}

impl StreamProcessor for WindowStream {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        let parsed = event
            .data_str()
            .filter(|d| !d.trim().is_empty() && !event.is_done())
            .and_then(|d| serde_json::from_str::<Value>(d).ok());
        let with_text = parsed.and_then(|v| {
            let ptr = delta_pointer(self.api, &v)?;
            let text = v.pointer(ptr)?.as_str()?.to_owned();
            Some((v, ptr, text))
        });
        let pos = self.window.len();
        match with_text {
            None if self.held.is_empty() => {
                out.push(event);
                Ok(())
            }
            None => {
                self.held.push_back(Held {
                    event,
                    range: (pos, pos),
                    json: None,
                });
                Ok(())
            }
            Some((v, ptr, text)) => {
                self.window.push_str(&text);
                self.held.push_back(Held {
                    event,
                    range: (pos, self.window.len()),
                    json: Some((v, ptr)),
                });
                self.flush(out, false)
            }
        }
    }

    fn on_end(&mut self, end: StreamEnd, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        match end {
            StreamEnd::Completed | StreamEnd::UpstreamError => {
                let r = self.flush(out, true);
                if self.redacted > 0 {
                    tracing::info!(
                        redacted = self.redacted,
                        "guardrail redacted a streamed response"
                    );
                }
                r
            }
            _ => Ok(()),
        }
    }
}
