//! Streamed responses: every text of every event is checked, deltas through per-channel
//! hold-back windows, whole texts (`*.done`, `response.completed`, ...) at once.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};

use infergate_core::pipeline::StreamStop;
use infergate_core::sse::SseEvent;
use infergate_core::{ApiKind, StreamEnd, StreamProcessor};
use serde_json::Value;

use crate::check::{Action, Check, Hit, Scan, run_checks};
use crate::json_text::{JsonState, json_safe};
use crate::locate::{ChanKey, Close, Kind, event_plan};
use crate::processor::Guardrail;

/// One text stream (a choice's content, a tool call's arguments, a thinking block, ...): the
/// text not yet released and the redactions decided in it. Offsets are absolute (from the
/// channel's first byte).
#[derive(Debug)]
struct Channel {
    /// JSON fragments (tool-call arguments): masks go inside its strings.
    json: bool,
    /// The text from `base` on.
    window: String,
    /// Absolute offset of `window[0]`.
    base: usize,
    /// Text before it is decided: it may be released (redacted as `spans` say).
    safe: usize,
    /// Decided redactions not yet wholly released (absolute, ordered).
    spans: Vec<Hit>,
    /// The JSON lexical state at `safe`.
    state: JsonState,
    /// Closed (its text was complete when last seen); new text reopens it.
    closed: bool,
    /// The last bytes (at most [`CONTEXT`]) released before `base`.
    tail: String,
}

/// How many bytes of decided text the detectors see before the undecided text (the PII
/// detectors look up to 48 bytes back for a phone word).
const CONTEXT: usize = 64;

/// The largest char boundary of `s` at or below `i`.
fn floor_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl Channel {
    fn end(&self) -> usize {
        self.base.saturating_add(self.window.len())
    }
}

/// A delta's text in its channel.
#[derive(Debug)]
struct Seg {
    key: ChanKey,
    start: usize,
    end: usize,
    ptr: String,
}

/// An event waiting for the text before it (or its own) to be decided.
#[derive(Debug)]
struct Held {
    event: SseEvent,
    /// A copy of the event's JSON being edited (redactions), made on the first edit; the
    /// event's own parse is shared and never changed in place.
    json: Option<Value>,
    /// Whether `json` was changed already (a whole text redacted).
    dirty: bool,
    segs: Vec<Seg>,
}

impl Held {
    /// An event with no text of its own (`[DONE]`, an event whose data is not JSON): held only
    /// to keep the order.
    fn untouched(event: SseEvent) -> Self {
        Self {
            event,
            json: None,
            dirty: false,
            segs: Vec::new(),
        }
    }
}

/// Streamed responses: the text of every delta goes into the window of its channel; events are
/// released in order once no check sees a possible match still forming in their text (at most
/// `hold_back` bytes a channel), so a match split across chunks is seen whole before any part of
/// it is sent. Whole texts carried by an event are checked at once. Block ends the stream with
/// an error event; Redact rewrites the released events' text.
pub(crate) struct WindowStream {
    guard: Guardrail,
    checks: Vec<Check>,
    api: ApiKind,
    cap: usize,
    held: VecDeque<Held>,
    chans: HashMap<ChanKey, Channel>,
    redacted: usize,
}

impl WindowStream {
    pub(crate) fn new(guard: Guardrail, checks: Vec<Check>, api: ApiKind, cap: usize) -> Self {
        Self {
            guard,
            checks,
            api,
            cap,
            held: VecDeque::new(),
            chans: HashMap::new(),
            redacted: 0,
        }
    }

    /// Decides what it can of the channel's undecided text (`last`: all of it).
    fn flush(&mut self, key: ChanKey, last: bool) -> Result<(), StreamStop> {
        let cap = self.cap;
        let Some(ch) = self.chans.get_mut(&key) else {
            return Ok(());
        };
        let from = ch.safe.saturating_sub(ch.base).min(ch.window.len());
        let Some(sub) = ch.window.get(from..) else {
            return Ok(());
        };
        let mut safe = sub.len();
        let mut found: Vec<Hit> = Vec::new();
        // The detectors see a little of the decided text before as context (a phone word
        // before a short number); findings that start in it were decided already.
        let before = &ch.window[..from];
        let context: Cow<'_, str> = if before.len() >= CONTEXT || ch.tail.is_empty() {
            Cow::Borrowed(&before[floor_boundary(before, before.len().saturating_sub(CONTEXT))..])
        } else {
            Cow::Owned(format!("{}{before}", ch.tail))
        };
        let scanned: Cow<'_, str> = if context.is_empty() {
            Cow::Borrowed(sub)
        } else {
            Cow::Owned(format!("{context}{sub}"))
        };
        let skip = context.len();
        let scan = Scan::new(&scanned);
        for c in &self.checks {
            if !last {
                safe = safe.min(c.stream_hold(sub, cap));
            }
            for mut h in c.find_in(&scan) {
                if h.start < skip {
                    continue;
                }
                h.start -= skip;
                h.end -= skip;
                if !last && c.hit_may_vanish(sub, &h) {
                    safe = safe.min(h.start);
                    continue;
                }
                match c.action {
                    Action::Block => {
                        return Err(StreamStop::Reject(self.guard.blocked(c, &h.label)));
                    }
                    Action::Redact => found.push(h),
                    Action::Annotate => {}
                }
            }
        }
        safe = safe.max(sub.len().saturating_sub(cap));
        found.sort_by_key(|h| (h.start, std::cmp::Reverse(h.end)));
        let mut spans: Vec<Hit> = Vec::with_capacity(found.len());
        for h in found {
            if spans.last().is_none_or(|l| h.start >= l.end) {
                spans.push(h);
            }
        }
        if ch.json {
            // Only the undecided text is classified: linear over the stream.
            json_safe(sub, ch.state, &mut spans, 0);
        }
        // Never release part of a redaction.
        for s in &spans {
            if s.start < safe && s.end > safe {
                safe = s.start;
            }
        }
        while safe > 0 && !sub.is_char_boundary(safe) {
            safe -= 1;
        }
        if ch.json {
            ch.state.advance(&sub.as_bytes()[..safe]);
        }
        let at = ch.safe;
        for mut s in spans.into_iter().filter(|s| s.end <= safe) {
            s.start = s.start.saturating_add(at);
            s.end = s.end.saturating_add(at);
            ch.spans.push(s);
        }
        ch.safe = at.saturating_add(safe);
        Ok(())
    }

    /// Closes channels: all their text is decided.
    fn close(&mut self, close: Close) -> Result<(), StreamStop> {
        let mut keys: Vec<ChanKey> = self
            .chans
            .keys()
            .filter(|k| match close {
                Close::A(a) => k.a == a,
                Close::All => true,
            })
            .copied()
            .collect();
        keys.sort_unstable();
        for k in keys {
            self.flush(k, true)?;
            if let Some(ch) = self.chans.get_mut(&k) {
                ch.closed = true;
            }
        }
        Ok(())
    }

    /// Releases the events whose text is decided, in order.
    fn release(&mut self, out: &mut Vec<SseEvent>) {
        // Per channel, how far its text went out (a few channels at most: a linear list).
        let mut released: Vec<(ChanKey, usize)> = Vec::new();
        while let Some(front) = self.held.front() {
            let ready = front
                .segs
                .iter()
                .all(|s| self.chans.get(&s.key).is_none_or(|ch| ch.safe >= s.end));
            if !ready {
                break;
            }
            let Some(mut h) = self.held.pop_front() else {
                break;
            };
            let mut dirty = h.dirty;
            for seg in &h.segs {
                let Some(ch) = self.chans.get(&seg.key) else {
                    continue;
                };
                match released.iter_mut().find(|(k, _)| *k == seg.key) {
                    Some((_, to)) => *to = (*to).max(seg.end),
                    None => released.push((seg.key, seg.end)),
                }
                let (a, b) = (seg.start, seg.end);
                let touching = ch.spans.iter().filter(|s| s.start < b && s.end > a);
                let mut text = String::new();
                let mut pos = a;
                let mut touched = false;
                let local = |i: usize| i.saturating_sub(ch.base).min(ch.window.len());
                for s in touching {
                    touched = true;
                    if s.start >= pos {
                        text.push_str(ch.window.get(local(pos)..local(s.start)).unwrap_or(""));
                        text.push_str(&s.mask);
                        self.redacted = self.redacted.saturating_add(1);
                    }
                    pos = s.end.min(b).max(pos);
                }
                if !touched {
                    continue;
                }
                if pos < b {
                    text.push_str(ch.window.get(local(pos)..local(b)).unwrap_or(""));
                }
                if h.json.is_none() {
                    h.json = h.event.json().cloned();
                }
                if let Some(slot) = h.json.as_mut().and_then(|j| j.pointer_mut(&seg.ptr)) {
                    *slot = Value::String(text);
                    dirty = true;
                }
            }
            if dirty && let Some(j) = h.json.take() {
                h.event.set_json(j);
            }
            out.push(h.event);
        }
        for (key, to) in released {
            let Some(ch) = self.chans.get_mut(&key) else {
                continue;
            };
            let n = to.saturating_sub(ch.base).min(ch.window.len());
            if n == 0 {
                continue;
            }
            if !ch.window.is_char_boundary(n) {
                continue;
            }
            // Keep the last bytes released as context for the detectors.
            if n >= CONTEXT {
                ch.tail.clear();
                ch.tail
                    .push_str(&ch.window[floor_boundary(&ch.window, n - CONTEXT)..n]);
            } else {
                ch.tail.push_str(&ch.window[..n]);
                let cut = ch.tail.len().saturating_sub(CONTEXT);
                let cut = floor_boundary(&ch.tail, cut);
                ch.tail.drain(..cut);
            }
            ch.window.drain(..n);
            ch.base = ch.base.saturating_add(n);
            let base = ch.base;
            ch.spans.retain(|s| s.end > base);
        }
    }

    /// Forgets closed channels with nothing left in them.
    fn prune(&mut self) {
        if self.held.is_empty() {
            self.chans
                .retain(|_, ch| !(ch.closed && ch.window.is_empty() && ch.safe >= ch.end()));
        }
    }

    fn hold(&mut self, held: Held, out: &mut Vec<SseEvent>) {
        if self.held.is_empty() && held.segs.is_empty() {
            let mut h = held;
            if h.dirty
                && let Some(j) = h.json.take()
            {
                h.event.set_json(j);
            }
            out.push(h.event);
        } else {
            self.held.push_back(held);
        }
        self.release(out);
    }
}

impl StreamProcessor for WindowStream {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        if event.is_done() {
            self.close(Close::All)?;
            self.hold(Held::untouched(event), out);
            self.prune();
            return Ok(());
        }
        // The event's shared parse (the processors before and after this one read the same);
        // an edit works on a copy, made only when a text is redacted.
        let Some(v) = event.json() else {
            self.hold(Held::untouched(event), out);
            return Ok(());
        };
        let plan = event_plan(self.api, v);
        // Deltas into their channels.
        let mut segs = Vec::with_capacity(plan.deltas.len());
        let mut touched: Vec<ChanKey> = Vec::new();
        for (key, ptr) in plan.deltas {
            let Some(text) = v.pointer(&ptr).and_then(Value::as_str) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            if !self.chans.contains_key(&key) {
                // A choice moving on to another kind of text (reasoning → content → tool
                // calls, one tool call → the next) has finished the one before.
                if matches!(self.api, ApiKind::ChatCompletions | ApiKind::Other) {
                    let siblings: Vec<ChanKey> = self
                        .chans
                        .keys()
                        .filter(|k| k.a == key.a)
                        .copied()
                        .collect();
                    for k in siblings {
                        self.flush(k, true)?;
                    }
                }
                self.chans.insert(
                    key,
                    Channel {
                        json: key.kind.json(),
                        window: String::new(),
                        base: 0,
                        safe: 0,
                        spans: Vec::new(),
                        state: JsonState::default(),
                        closed: false,
                        tail: String::new(),
                    },
                );
            }
            let Some(ch) = self.chans.get_mut(&key) else {
                continue;
            };
            let start = ch.end();
            ch.closed = false;
            ch.window.push_str(text);
            segs.push(Seg {
                key,
                start,
                end: ch.end(),
                ptr,
            });
            if !touched.contains(&key) {
                touched.push(key);
            }
        }
        for k in touched {
            self.flush(k, false)?;
        }
        for c in &plan.close {
            self.close(*c)?;
        }
        // Whole texts: checked and redacted at once, as their deltas were.
        let mut edited: Option<Value> = None;
        for loc in &plan.full {
            let Some(text) = v.pointer(&loc.ptr).and_then(Value::as_str) else {
                continue;
            };
            if text.is_empty() {
                continue;
            }
            let checks = self.checks.iter();
            match run_checks(checks, text, loc.kind == Kind::Json, &mut |_, _| {}) {
                Err((c, label)) => {
                    return Err(StreamStop::Reject(self.guard.blocked(c, &label)));
                }
                Ok(Some(new)) => {
                    let copy = edited.get_or_insert_with(|| v.clone());
                    if let Some(slot) = copy.pointer_mut(&loc.ptr) {
                        *slot = Value::String(new);
                        self.redacted = self.redacted.saturating_add(1);
                    }
                }
                Ok(None) => {}
            }
        }
        let dirty = edited.is_some();
        self.hold(
            Held {
                event,
                json: edited,
                dirty,
                segs,
            },
            out,
        );
        if !plan.close.is_empty() {
            self.prune();
        }
        Ok(())
    }

    fn on_end(&mut self, end: StreamEnd, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        match end {
            StreamEnd::Completed | StreamEnd::UpstreamError => {
                self.close(Close::All)?;
                self.release(out);
                if self.redacted > 0 {
                    tracing::info!(
                        redacted = self.redacted,
                        "guardrail redacted a streamed response"
                    );
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use infergate_core::sse::json_parse_count;

    use super::*;
    use crate::GuardrailConfig;
    use crate::detect::{EntityKind, PiiDetector};
    use crate::{Detector, check::Action};

    fn stream() -> WindowStream {
        let check = Check::new(
            "pii",
            Detector::Pii(PiiDetector::new().entities([EntityKind::Email])),
            Action::Redact,
        );
        let guard = Guardrail::new(GuardrailConfig::new().check(check.clone()));
        WindowStream::new(guard, vec![check], ApiKind::ChatCompletions, 64)
    }

    fn chunk(text: &str) -> SseEvent {
        SseEvent::data(
            serde_json::json!({"choices":[{"index":0,"delta":{"content":text}}]}).to_string(),
        )
    }

    #[test]
    fn reads_the_events_shared_parse_and_hands_it_on() {
        let mut s = stream();
        let mut out = Vec::new();
        let before = json_parse_count();
        for text in ["Hello, ", "write to ", "ann@example.com", " today."] {
            let ev = chunk(text);
            // A processor before this one read the event's JSON already.
            assert!(ev.json().is_some());
            s.on_event(ev, &mut out).unwrap();
        }
        s.on_event(SseEvent::data("[DONE]"), &mut out).unwrap();
        s.on_end(StreamEnd::Completed, &mut out).unwrap();
        // One parse per JSON event (the earlier processor's), and none for `[DONE]` here.
        assert_eq!(json_parse_count() - before, 4);
        let text: String = out
            .iter()
            .filter(|e| !e.is_done())
            .filter_map(SseEvent::json)
            .filter_map(|v| {
                v.pointer("/choices/0/delta/content")?
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert!(!text.contains("ann@example.com"), "{text}");
        // Redacted or not, every event goes on with its parse (the redacted ones with the new
        // text): the processors after this one parse nothing again.
        assert_eq!(json_parse_count() - before, 4);
        assert!(
            out.iter()
                .filter(|e| !e.is_done())
                .all(SseEvent::is_json_parsed)
        );
    }
}
