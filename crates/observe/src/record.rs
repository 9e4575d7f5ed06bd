//! One request's record: gathered by the processor on the request path (cheaply: no
//! formatting, no attribute sets), then handed whole to the telemetry thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use infergate_core::trace::{AttemptRecord, TraceContext};
use infergate_core::usage::Usage;
use infergate_core::{ApiKind, StageRecord};

/// How a request ended, for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// A whole answer (or a local one) was handed to the client.
    Answered,
    /// A stream ended normally.
    Completed,
    /// The client went away before the end.
    ClientGone,
    /// The upstream failed (an error instead of an answer, or mid-stream).
    UpstreamError,
    /// A processor stopped the stream.
    Stopped,
}

impl Ending {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Completed => "completed",
            Self::ClientGone => "client_gone",
            Self::UpstreamError => "upstream_error",
            Self::Stopped => "stopped",
        }
    }
}

/// A piece of a record's text (whose whole is at most [`MAX_TEXT`] bytes: two `u16`s, so
/// that the record stays a few cache lines, which go to the telemetry thread and back).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u16,
    len: u16,
}

/// The most text a record keeps: what a client or an upstream sends is not trusted to be
/// small, nor to repeat a field only once (a stream may restate its model in every event).
const MAX_TEXT: usize = u16::MAX as usize;

/// Captured content (opt-in), kept apart so that a record without it stays small.
#[derive(Debug, Default)]
pub(crate) struct Content {
    /// The request's body.
    pub(crate) input: Option<bytes::Bytes>,
    /// The answer's text.
    pub(crate) output: Option<String>,
}

/// The longest piece of text kept (a model name, a route, a principal id): what a client or
/// an upstream sends is not trusted to be small.
const MAX_PIECE: usize = 256;

/// One request, as the telemetry thread receives it. Its text lives in one buffer (one
/// allocation, freed by the telemetry thread as one), its lists in fixed arrays.
#[derive(Debug, Default)]
pub(crate) struct Record {
    pub(crate) text: String,
    /// The start, monotonic: the request path reads no wall clock (the telemetry thread
    /// derives it, without writing the record).
    pub(crate) started: Option<Instant>,
    pub(crate) duration: Duration,
    pub(crate) trace: Option<TraceContext>,
    pub(crate) remote_parent: Option<[u8; 8]>,
    pub(crate) attempts: Vec<AttemptRecord>,
    pub(crate) api: Option<ApiKind>,
    pub(crate) host: Option<Span>,
    pub(crate) path: Span,
    pub(crate) request_model: Option<Span>,
    pub(crate) response_model: Option<Span>,
    pub(crate) response_id: Option<Span>,
    pub(crate) stream: bool,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) status: u16,
    pub(crate) usage: Option<Usage>,
    pub(crate) usage_estimated: bool,
    pub(crate) finish_reasons: [Span; 4],
    pub(crate) n_finish: u8,
    pub(crate) ttft: Option<Duration>,
    pub(crate) tpot: Option<Duration>,
    pub(crate) principal: Option<Span>,
    pub(crate) tenant: Option<Span>,
    pub(crate) route: Option<Span>,
    pub(crate) backend: Option<Span>,
    pub(crate) attempt_count: Option<u32>,
    pub(crate) cache: Option<&'static str>,
    pub(crate) findings: [Span; 8],
    pub(crate) n_findings: u8,
    pub(crate) rejection: Option<&'static str>,
    pub(crate) rejected_by: Option<Span>,
    pub(crate) error_type: Option<&'static str>,
    pub(crate) cost_usd: Option<f64>,
    pub(crate) ratelimit_remaining_requests: Option<u64>,
    pub(crate) ratelimit_remaining_tokens: Option<u64>,
    pub(crate) stages: Vec<StageRecord>,
    pub(crate) stream_stopped_by: Option<Span>,
    pub(crate) ending: Option<Ending>,
    /// Opt-in captured content.
    pub(crate) content: Option<Box<Content>>,
}

impl Record {
    /// Empties the record, keeping its buffers' capacity (for reuse).
    pub(crate) fn clear(&mut self) {
        let mut text = std::mem::take(&mut self.text);
        let mut stages = std::mem::take(&mut self.stages);
        let mut attempts = std::mem::take(&mut self.attempts);
        text.clear();
        stages.clear();
        attempts.clear();
        *self = Self {
            text,
            attempts,
            stages,
            ..Self::default()
        };
    }

    /// Keeps `s` (at most [`MAX_PIECE`] bytes of it, cut at a character boundary; an empty
    /// piece once the record holds [`MAX_TEXT`] bytes).
    pub(crate) fn put(&mut self, s: &str) -> Span {
        let start = self.text.len();
        let mut end = s.len().min(MAX_PIECE).min(MAX_TEXT.saturating_sub(start));
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.text.push_str(&s[..end]);
        Span {
            start: u16::try_from(start).unwrap_or(u16::MAX),
            len: u16::try_from(end).unwrap_or(0),
        }
    }

    /// The captured content, made on first use.
    pub(crate) fn content_mut(&mut self) -> &mut Content {
        self.content.get_or_insert_default()
    }

    /// The text of a piece.
    pub(crate) fn get(&self, span: Span) -> &str {
        let start = usize::from(span.start);
        self.text
            .get(start..start.saturating_add(usize::from(span.len)))
            .unwrap_or("")
    }

    /// The text of an optional piece.
    pub(crate) fn opt(&self, span: Option<Span>) -> Option<&str> {
        span.map(|s| self.get(s))
    }

    /// The finish reasons.
    pub(crate) fn finish_reasons(&self) -> impl Iterator<Item = &str> + Clone {
        self.finish_reasons[..usize::from(self.n_finish)]
            .iter()
            .map(|s| self.get(*s))
    }

    /// Adds a finish reason (each once, at most four).
    pub(crate) fn add_finish_reason(&mut self, reason: &str) {
        if reason.is_empty()
            || usize::from(self.n_finish) >= self.finish_reasons.len()
            || self.finish_reasons().any(|r| r == reason)
        {
            return;
        }
        let s = self.put(reason);
        self.finish_reasons[usize::from(self.n_finish)] = s;
        self.n_finish += 1;
    }

    /// The guardrail checks that fired.
    pub(crate) fn findings(&self) -> impl Iterator<Item = &str> + Clone {
        self.findings[..usize::from(self.n_findings)]
            .iter()
            .map(|s| self.get(*s))
    }

    /// Adds a check that fired (each once, at most eight).
    pub(crate) fn add_finding(&mut self, check: &str) {
        if check.is_empty()
            || usize::from(self.n_findings) >= self.findings.len()
            || self.findings().any(|c| c == check)
        {
            return;
        }
        let s = self.put(check);
        self.findings[usize::from(self.n_findings)] = s;
        self.n_findings += 1;
    }
}

/// Where the record goes when it is done (exactly once: on [`Flight::finish`] or on drop).
pub(crate) trait Sink: Send + Sync + 'static {
    /// An empty record to fill (a reused one when there is one).
    fn fresh(&self) -> Box<Record>;
    /// Hands a finished record over.
    fn send(&self, record: Box<Record>);
}

/// A request in flight: its record so far, its clock, and where it goes.
pub(crate) struct Flight {
    pub(crate) record: Option<Box<Record>>,
    pub(crate) started: Instant,
    pub(crate) first_token: Option<Instant>,
    pub(crate) last_token: Option<Instant>,
    pub(crate) trace: Option<infergate_core::trace::RequestTrace>,
    pub(crate) sink: Option<Arc<dyn Sink>>,
}

impl std::fmt::Debug for Flight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flight")
            .field("done", &self.record.is_none())
            .finish_non_exhaustive()
    }
}

impl Flight {
    /// The record being gathered (an empty one once sent).
    pub(crate) fn rec(&mut self) -> &mut Record {
        self.record.get_or_insert_default()
    }

    /// Ends the record now and sends it.
    pub(crate) fn finish(&mut self, ending: Ending) {
        self.finish_at(ending, None);
    }

    /// Ends the record at `now` (the pipeline's clock reading, when there is one: else the
    /// clock is read) and sends it.
    pub(crate) fn finish_at(&mut self, ending: Ending, now: Option<Instant>) {
        let (Some(sink), Some(mut record)) = (self.sink.take(), self.record.take()) else {
            return;
        };
        let now = now.unwrap_or_else(Instant::now);
        let r = &mut *record;
        r.started = Some(self.started);
        r.duration = now.saturating_duration_since(self.started);
        if let Some(t) = self.trace.take() {
            r.attempts.extend(t.attempts());
        }
        if r.ending.is_none() {
            r.ending = Some(ending);
        }
        if let Some(first) = self.first_token {
            r.ttft = Some(first.saturating_duration_since(self.started));
            let out = r.usage.map_or(0, |u| u.output_tokens);
            if out > 1
                && let Some(last) = self.last_token
            {
                let span = last.saturating_duration_since(first);
                let per = span.as_secs_f64() / (out - 1) as f64;
                r.tpot = Some(Duration::from_secs_f64(per));
            }
        }
        sink.send(record);
    }
}

impl Drop for Flight {
    fn drop(&mut self) {
        // A request whose end no phase saw (a path that answers without the response phases
        // finishing): recorded with what is known, never lost.
        self.finish(Ending::Answered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An upstream restating a field in every event cannot grow a record past its bound; the
    /// pieces kept before it still read back.
    #[test]
    fn a_record_keeps_at_most_its_bound_of_text() {
        let mut r = Record::default();
        let first = r.put("gpt-4o");
        let long = "é".repeat(200); // 400 bytes, cut at a character boundary
        for _ in 0..1000 {
            let s = r.put(&long);
            assert!(r.get(s).chars().all(|c| c == 'é'));
        }
        assert!(r.text.len() <= MAX_TEXT);
        assert_eq!(r.get(first), "gpt-4o");
        let more = r.put("more");
        assert!("more".starts_with(r.get(more)));
        assert!(r.text.len() <= MAX_TEXT);
    }
}
