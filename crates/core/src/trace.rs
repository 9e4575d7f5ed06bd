//! W3C Trace Context for one request, and the upstream attempts made for it.
//!
//! A telemetry processor puts a [`RequestTrace`] in the request's extensions; the egress layers
//! that send attempts (failover) give each attempt a span id, send it upstream in `traceparent`
//! and record how the attempt went ([`RequestTrace::begin_attempt`]). Without a
//! `RequestTrace` nothing is recorded and no header is touched.
//!
//! ```
//! use infergate_core::trace::{RequestTrace, TraceContext};
//!
//! let parent = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
//! let trace = RequestTrace::new(parent.child());
//! let mut headers = http::HeaderMap::new();
//! let attempt = trace.begin_attempt("primary", &mut headers);
//! let sent = TraceContext::parse(headers["traceparent"].to_str().unwrap()).unwrap();
//! assert_eq!(sent.trace_id(), parent.trace_id());
//! attempt.end(Some(200), "answer");
//! assert_eq!(trace.attempts()[0].backend, "primary");
//! ```

use std::cell::Cell;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};

/// The `traceparent` header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// A span's place in a trace: the trace id, the span id and whether it is sampled (W3C Trace
/// Context, version `00`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    sampled: bool,
}

impl std::fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.traceparent())
    }
}

impl TraceContext {
    /// A new trace: random ids.
    pub fn new_root(sampled: bool) -> Self {
        let hi = random_u64();
        let lo = random_u64();
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&hi.to_be_bytes());
        trace_id[8..].copy_from_slice(&lo.to_be_bytes());
        Self {
            trace_id,
            span_id: new_span_id(),
            sampled,
        }
    }

    /// A child span in the same trace: a new span id.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: new_span_id(),
            ..*self
        }
    }

    /// Parses a `traceparent` value. Strict: version `00` exactly 55 characters of lowercase
    /// hex (a later version: its first 55 characters, then `-`), ids not all zero. `None` for
    /// anything else (the request then starts a new trace).
    pub fn parse(value: &str) -> Option<Self> {
        let b = value.as_bytes();
        if b.len() < 55 || b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return None;
        }
        let version = hex_byte(b[0], b[1])?;
        if version == 0xff
            || (version == 0 && b.len() != 55)
            || (version > 0 && b.len() > 55 && b[55] != b'-')
        {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, out) in trace_id.iter_mut().enumerate() {
            *out = hex_byte(b[3 + 2 * i], b[4 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, out) in span_id.iter_mut().enumerate() {
            *out = hex_byte(b[36 + 2 * i], b[37 + 2 * i])?;
        }
        let flags = hex_byte(b[53], b[54])?;
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            sampled: flags & 1 == 1,
        })
    }

    /// The `traceparent` value for this span.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&self.traceparent_bytes()).into_owned()
    }

    fn traceparent_bytes(&self) -> [u8; 55] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = *b"00-00000000000000000000000000000000-0000000000000000-00";
        for (i, b) in self.trace_id.iter().enumerate() {
            out[3 + 2 * i] = HEX[usize::from(b >> 4)];
            out[4 + 2 * i] = HEX[usize::from(b & 15)];
        }
        for (i, b) in self.span_id.iter().enumerate() {
            out[36 + 2 * i] = HEX[usize::from(b >> 4)];
            out[37 + 2 * i] = HEX[usize::from(b & 15)];
        }
        if self.sampled {
            out[54] = b'1';
        }
        out
    }

    /// The trace id.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The span id.
    pub fn span_id(&self) -> [u8; 8] {
        self.span_id
    }

    /// Whether the trace is sampled.
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// Sets `traceparent` in `headers` to this span.
    pub fn inject(&self, headers: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_bytes(&self.traceparent_bytes()) {
            headers.insert(TRACEPARENT, v);
        }
    }
}

fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    fn nib(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            _ => None,
        }
    }
    Some(nib(hi)? << 4 | nib(lo)?)
}

thread_local! {
    static RNG: Cell<u64> = Cell::new(RandomState::new().hash_one(Instant::now()) | 1);
}

/// A random `u64` (a per-thread generator seeded from the OS's randomness; for ids, not keys).
fn random_u64() -> u64 {
    RNG.with(|s| {
        // splitmix64
        let x = s.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(x);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// A new span id (never zero).
pub fn new_span_id() -> [u8; 8] {
    let mut id = random_u64();
    if id == 0 {
        id = 1;
    }
    id.to_be_bytes()
}

/// One attempt sent upstream for a request.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The backend's name.
    pub backend: String,
    /// The attempt's span id (sent upstream in `traceparent`).
    pub span_id: [u8; 8],
    /// When it started.
    pub start: SystemTime,
    /// How long until its answer's head (or its failure).
    pub elapsed: Duration,
    /// The status answered, if any.
    pub status: Option<u16>,
    /// What it came to: `answer`, `status` (a retryable status), `connect`, `timeout`,
    /// `reset`, or `cancelled` (dropped unreported: the request went away).
    pub outcome: &'static str,
}

/// The trace of one request: its span's context and the upstream attempts made for it. Cheap
/// to clone (the attempts are shared), so it travels in request extensions to every attempt.
#[derive(Debug, Clone)]
pub struct RequestTrace {
    context: TraceContext,
    attempts: Arc<Mutex<Vec<AttemptRecord>>>,
}

impl RequestTrace {
    /// The trace of a request whose own span is `context`.
    pub fn new(context: TraceContext) -> Self {
        Self {
            context,
            attempts: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// The request span's context.
    pub fn context(&self) -> &TraceContext {
        &self.context
    }

    /// Starts an attempt on `backend`: a child span of the request's, sent upstream in
    /// `traceparent` (set in `headers`). Report its end with [`AttemptSpan::end`].
    pub fn begin_attempt(&self, backend: &str, headers: &mut HeaderMap) -> AttemptSpan {
        let span = self.context.child();
        span.inject(headers);
        AttemptSpan {
            trace: self.clone(),
            backend: backend.to_owned(),
            span_id: span.span_id,
            start: SystemTime::now(),
            started: Instant::now(),
            done: false,
        }
    }

    /// The attempts recorded so far, in order.
    pub fn attempts(&self) -> Vec<AttemptRecord> {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn push(&self, record: AttemptRecord) {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(record);
    }
}

/// An attempt in flight, from [`RequestTrace::begin_attempt`]. Dropped without
/// [`end`](Self::end), it is recorded as `cancelled`.
#[derive(Debug)]
pub struct AttemptSpan {
    trace: RequestTrace,
    backend: String,
    span_id: [u8; 8],
    start: SystemTime,
    started: Instant,
    done: bool,
}

impl AttemptSpan {
    /// Records how the attempt went: the status answered, if any, and what it came to.
    pub fn end(mut self, status: Option<u16>, outcome: &'static str) {
        self.record(status, outcome);
    }

    fn record(&mut self, status: Option<u16>, outcome: &'static str) {
        if self.done {
            return;
        }
        self.done = true;
        self.trace.push(AttemptRecord {
            backend: std::mem::take(&mut self.backend),
            span_id: self.span_id,
            start: self.start,
            elapsed: self.started.elapsed(),
            status,
            outcome,
        });
    }
}

impl Drop for AttemptSpan {
    fn drop(&mut self) {
        self.record(None, "cancelled");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_round_trips_and_bad_ones_are_refused() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceContext::parse(v).unwrap();
        assert_eq!(t.traceparent(), v);
        assert!(t.is_sampled());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
        ] {
            assert!(TraceContext::parse(bad).is_none(), "{bad}");
        }
        // A later version: the known prefix, then more fields.
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-what";
        assert!(!TraceContext::parse(later).unwrap().is_sampled());
    }

    #[test]
    fn ids_differ_and_children_keep_the_trace() {
        let a = TraceContext::new_root(true);
        let b = TraceContext::new_root(true);
        assert_ne!(a.trace_id(), b.trace_id());
        let c = a.child();
        assert_eq!(c.trace_id(), a.trace_id());
        assert_ne!(c.span_id(), a.span_id());
    }

    #[test]
    fn a_dropped_attempt_is_recorded_as_cancelled() {
        let trace = RequestTrace::new(TraceContext::new_root(true));
        drop(trace.begin_attempt("b", &mut HeaderMap::new()));
        let a = trace.attempts();
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].outcome, "cancelled");
    }
}
