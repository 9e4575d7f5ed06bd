use bytes::{Bytes, BytesMut};

use super::{StreamEnd, StreamProcessor, StreamStop};
use crate::error::{RejectKind, Rejection};
use crate::payload::ApiKind;
use crate::sse::{DEFAULT_MAX_EVENT_SIZE, SseDecoder, SseError, SseEvent, error_event};

/// The per-event chain of one streamed response: decodes SSE chunks, passes every event
/// through the stream processors (in reverse pipeline order), and encodes what comes out.
///
/// Synchronous: the tower driver calls it from `poll_frame`, the pingora driver from its
/// synchronous body filter. Once a processor stops the stream, the chain emits one SSE error
/// event and [`StreamChain::is_stopped`] turns true: the driver ends the body there.
///
/// Each event is decoded once and handed from one processor to the next as the same value,
/// with its lazily parsed JSON ([`SseEvent::json`]): however many processors read an event's
/// JSON, it is parsed once (unless one of them replaces the data with
/// [`SseEvent::set_data`]; [`SseEvent::set_json`] keeps the parse).
///
/// ```
/// use infergate_core::pipeline::{StreamChain, StreamStop};
/// use infergate_core::sse::SseEvent;
/// use infergate_core::{ApiKind, StreamProcessor};
///
/// /// Counts the content deltas it sees.
/// struct Deltas(usize);
/// impl StreamProcessor for Deltas {
///     fn on_event(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
///         if ev.json().and_then(|v| v.pointer("/choices/0/delta/content")).is_some() {
///             self.0 += 1;
///         }
///         out.push(ev);
///         Ok(())
///     }
/// }
///
/// let mut chain = StreamChain::with_processors(
///     ApiKind::ChatCompletions,
///     vec![("deltas".to_owned(), Box::new(Deltas(0)) as Box<dyn StreamProcessor>)],
/// );
/// let chunk = b"data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\n";
/// assert_eq!(&chain.on_chunk(chunk)[..], &chunk[..]); // unmodified: the same bytes
/// ```
pub struct StreamChain {
    api: ApiKind,
    decoder: SseDecoder,
    stages: Vec<(String, Box<dyn StreamProcessor>)>,
    cur: Vec<SseEvent>,
    next: Vec<SseEvent>,
    ended: bool,
    stopped: bool,
}

impl std::fmt::Debug for StreamChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamChain")
            .field("api", &self.api)
            .field(
                "stages",
                &self.stages.iter().map(|s| &s.0).collect::<Vec<_>>(),
            )
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl StreamChain {
    pub(crate) fn new(
        api: ApiKind,
        max_event_size: usize,
        stages: Vec<(String, Box<dyn StreamProcessor>)>,
    ) -> Self {
        Self {
            api,
            decoder: SseDecoder::with_max_event_size(max_event_size),
            stages,
            cur: Vec::new(),
            next: Vec::new(),
            ended: false,
            stopped: false,
        }
    }

    /// A chain of `processors` (in the order they see each event) for a stream of `api`, with
    /// the default bound on an event's size ([`DEFAULT_MAX_EVENT_SIZE`]): for tests,
    /// benchmarks and drivers that build the stream phase themselves (a
    /// [`Pipeline`](crate::Pipeline) builds its own with
    /// [`Pipeline::stream_chain`](crate::Pipeline::stream_chain)).
    pub fn with_processors(
        api: ApiKind,
        processors: Vec<(String, Box<dyn StreamProcessor>)>,
    ) -> Self {
        Self::new(api, DEFAULT_MAX_EVENT_SIZE, processors)
    }

    /// Whether a processor stopped the stream (an error event was emitted).
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }

    /// Whether the chain has ended (on_end was delivered).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Processes one chunk from the upstream; returns the bytes to send to the client (possibly
    /// empty while an event is incomplete or held back).
    pub fn on_chunk(&mut self, chunk: &[u8]) -> Bytes {
        if self.ended {
            return Bytes::new();
        }
        let mut events = std::mem::take(&mut self.cur);
        if let Err(e) = self.decoder.decode(chunk, &mut events) {
            self.cur = events;
            return self.broken(&e);
        }
        let mut out = BytesMut::new();
        self.run(events, &mut out);
        out.freeze()
    }

    /// The upstream ended (`end` is `Completed` or `UpstreamError`); flushes what the
    /// processors held back, and for an upstream error appends an error event.
    pub fn on_end(&mut self, end: StreamEnd) -> Bytes {
        if self.ended {
            return Bytes::new();
        }
        let mut out = BytesMut::new();
        let mut events = std::mem::take(&mut self.cur);
        let end = match self.decoder.finish(&mut events) {
            Ok(()) => end,
            Err(SseError::Truncated { .. }) => {
                tracing::warn!(api = ?self.api, "upstream SSE stream ended mid-event");
                StreamEnd::UpstreamError
            }
            Err(e) => {
                self.cur = events;
                return self.broken(&e);
            }
        };
        self.run(events, &mut out);
        if self.ended {
            return out.freeze();
        }
        // Whatever could not be decoded is passed on unchanged: nothing is lost.
        let rest = self.decoder.take_remaining();
        self.finish_stages(end, &mut out);
        out.extend_from_slice(&rest);
        if end == StreamEnd::UpstreamError && !self.stopped {
            let rej = Rejection::new(
                RejectKind::UpstreamFailed,
                "the upstream stream failed before it was complete",
            );
            if !rest.is_empty() {
                out.extend_from_slice(b"\n\n");
            }
            error_event(self.api, &rej).encode_into(&mut out);
        }
        out.freeze()
    }

    /// The client went away: tells every processor (no output is possible).
    pub fn on_client_gone(&mut self) {
        if !self.ended {
            let mut sink = BytesMut::new();
            self.finish_stages(StreamEnd::ClientGone, &mut sink);
        }
    }

    fn broken(&mut self, e: &SseError) -> Bytes {
        tracing::warn!(error = %e, api = ?self.api, "upstream sent a broken SSE stream");
        let rej = Rejection::new(RejectKind::UpstreamFailed, e.to_string());
        let mut out = BytesMut::new();
        self.stop(&rej, &mut out);
        out.freeze()
    }

    fn run(&mut self, mut events: Vec<SseEvent>, out: &mut BytesMut) {
        // A stage that stops ends the stream at the event that stopped it: what it released
        // before that still goes through the later stages and out, then the error event.
        let mut stopped_by = None;
        for (name, stage) in &mut self.stages {
            self.next.clear();
            let mut stopped_here = false;
            for ev in events.drain(..) {
                if stopped_here {
                    continue;
                }
                if let Err(stop) = stage.on_event(ev, &mut self.next) {
                    stopped_here = true;
                    let rej = stop_rejection(name, stop);
                    stopped_by.get_or_insert(rej);
                }
            }
            std::mem::swap(&mut events, &mut self.next);
        }
        for ev in events.drain(..) {
            ev.encode_into(out);
        }
        self.cur = events;
        if let Some(rej) = stopped_by {
            self.next.clear();
            self.stop(&rej, out);
        }
    }

    fn stop(&mut self, rej: &Rejection, out: &mut BytesMut) {
        self.stopped = true;
        for (_, stage) in &mut self.stages {
            stage.on_stopped(rej);
        }
        self.finish_stages(StreamEnd::Stopped, &mut BytesMut::new());
        error_event(self.api, rej).encode_into(out);
    }

    fn finish_stages(&mut self, end: StreamEnd, out: &mut BytesMut) {
        self.ended = true;
        // Each stage flushes what it held; that flows through the later stages' on_event only
        // while the stream is still healthy.
        let n = self.stages.len();
        for i in 0..n {
            let mut flushed = Vec::new();
            let (name, stage) = &mut self.stages[i];
            if let Err(stop) = stage.on_end(end, &mut flushed) {
                if end == StreamEnd::Completed || end == StreamEnd::UpstreamError {
                    let rej = stop_rejection(name, stop);
                    // Tell the remaining stages, then emit the error.
                    for (_, s) in &mut self.stages[i + 1..] {
                        s.on_stopped(&rej);
                        let _ = s.on_end(StreamEnd::Stopped, &mut Vec::new());
                    }
                    self.stopped = true;
                    error_event(self.api, &rej).encode_into(out);
                    return;
                }
                continue;
            }
            let mut evs = flushed;
            for (name2, s) in &mut self.stages[i + 1..] {
                let mut next = Vec::new();
                for ev in evs.drain(..) {
                    if let Err(stop) = s.on_event(ev, &mut next) {
                        tracing::warn!(processor = %name2, ?stop, "stream processor failed while flushing");
                    }
                }
                evs = next;
            }
            for ev in &evs {
                ev.encode_into(out);
            }
        }
    }
}

fn stop_rejection(name: &str, stop: StreamStop) -> Rejection {
    match stop {
        StreamStop::Reject(r) => {
            tracing::info!(processor = %name, kind = ?r.kind(), "stream stopped by a processor decision");
            if r.processor().is_some() {
                r
            } else {
                r.with_processor(name.to_owned())
            }
        }
        StreamStop::Fail(e) => {
            tracing::warn!(
                processor = %name,
                class = %e.class(),
                error = %e,
                "stream processor failed past the commit point; ending the stream with an error event"
            );
            Rejection::new(
                e.class().reject_kind(),
                format!("processor '{name}' failed while processing the stream"),
            )
            .with_processor(name.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::sse::json_parse_count;

    /// Reads every event's JSON (and, if asked, rewrites it with `set_json` or `set_data`).
    struct Reader {
        seen: usize,
        rewrite: Option<bool>,
    }

    impl StreamProcessor for Reader {
        fn on_event(
            &mut self,
            mut ev: SseEvent,
            out: &mut Vec<SseEvent>,
        ) -> Result<(), StreamStop> {
            if let Some(v) = ev.json() {
                assert!(v.get("choices").is_some());
                self.seen += 1;
                match self.rewrite {
                    Some(true) => {
                        let mut v = v.clone();
                        v["seen"] = serde_json::Value::Bool(true);
                        ev.set_json(v);
                    }
                    Some(false) => {
                        let d = ev.data_str().unwrap().replacen('{', "{\"seen\":true,", 1);
                        ev.set_data(d);
                    }
                    None => {}
                }
            }
            out.push(ev);
            Ok(())
        }
    }

    fn chain(n: usize, rewrite_at: Option<(usize, bool)>) -> StreamChain {
        let stages = (0..n)
            .map(|i| {
                let rewrite = rewrite_at.filter(|(at, _)| *at == i).map(|(_, j)| j);
                let p: Box<dyn StreamProcessor> = Box::new(Reader { seen: 0, rewrite });
                (format!("reader-{i}"), p)
            })
            .collect();
        StreamChain::with_processors(ApiKind::ChatCompletions, stages)
    }

    const STREAM: &[u8] = b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n\
        : keep-alive\n\n\
        data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\n\
        data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,\"total_tokens\":3}}\n\n\
        data: [DONE]\n\n";

    fn parses(run: impl FnOnce()) -> u64 {
        let before = json_parse_count();
        run();
        json_parse_count() - before
    }

    #[test]
    fn n_processors_reading_json_cost_one_parse_per_event() {
        for n in [1, 3, 8] {
            let mut c = chain(n, None);
            let mut out = Vec::new();
            let p = parses(|| {
                out.extend_from_slice(&c.on_chunk(STREAM));
                out.extend_from_slice(&c.on_end(StreamEnd::Completed));
            });
            // Three events with JSON data, `[DONE]` (no parse: not JSON, but asked for); the
            // keep-alive has no data.
            assert_eq!(p, 4, "{n} processors");
            assert_eq!(out, STREAM, "unmodified events go out as they came");
        }
    }

    #[test]
    fn set_json_keeps_the_parse_and_set_data_forgets_it() {
        let mut c = chain(4, Some((1, true)));
        let p = parses(|| {
            let out = c.on_chunk(STREAM);
            assert!(std::str::from_utf8(&out).unwrap().contains("\"seen\":true"));
        });
        assert_eq!(p, 4, "set_json: the later processors read the new parse");
        let mut c = chain(4, Some((1, false)));
        let p = parses(|| {
            c.on_chunk(STREAM);
        });
        assert_eq!(
            p,
            4 + 3,
            "set_data: the three JSON events are parsed again after it"
        );
    }

    #[test]
    fn the_parse_is_the_same_value_for_every_processor() {
        // The heap behind the parsed JSON is handed on: each processor sees the same map.
        struct Ptr(Vec<usize>);
        impl StreamProcessor for Ptr {
            fn on_event(
                &mut self,
                ev: SseEvent,
                out: &mut Vec<SseEvent>,
            ) -> Result<(), StreamStop> {
                let first = ev.json().and_then(|v| v.get("choices"));
                self.0
                    .push(first.map_or(0, |c| std::ptr::from_ref(c) as usize));
                out.push(ev);
                Ok(())
            }
        }
        impl Drop for Ptr {
            fn drop(&mut self) {
                PTRS.with(|p| p.borrow_mut().push(std::mem::take(&mut self.0)));
            }
        }
        thread_local! {
            static PTRS: std::cell::RefCell<Vec<Vec<usize>>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        let stages = (0..3)
            .map(|i| {
                let p: Box<dyn StreamProcessor> = Box::new(Ptr(Vec::new()));
                (format!("p{i}"), p)
            })
            .collect();
        let mut c = StreamChain::with_processors(ApiKind::ChatCompletions, stages);
        c.on_chunk(STREAM);
        drop(c);
        let all = PTRS.with(|p| std::mem::take(&mut *p.borrow_mut()));
        assert_eq!(all.len(), 3);
        assert!(all[0].iter().filter(|p| **p != 0).count() >= 3);
        assert!(all.iter().all(|v| *v == all[0]));
    }
}
