//! SSE decoding throughput over the captured streams, and the per-event chain with a
//! pass-through stream processor (as when a guardrail or rate limiter watches a stream).
//!
//! `sse_json_per_event`: N stream processors (1, 3, 8) that each read the JSON of every event
//! of a 200-chunk chat stream, through the event's shared parse (`shared`: one parse per event
//! whatever N) or each parsing the data itself (`each_parses`, as the processors did before);
//! `pass_through` is the chain with processors that read nothing (the decode and re-encode).
#![allow(missing_docs, clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infergate_core::pipeline::{StreamChain, StreamStop};
use infergate_core::sse::{SseDecoder, SseEvent};
use infergate_core::{ApiKind, StreamEnd, StreamProcessor};

fn corpus() -> Vec<u8> {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/core/tests/fixtures/sse/extracted");
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sse.txt"))
        .collect();
    files.sort();
    for f in files {
        all.extend(std::fs::read(f).unwrap());
    }
    all
}

fn bench_sse(c: &mut Criterion) {
    let data = corpus();
    let mut group = c.benchmark_group("sse_decode");
    group.throughput(Throughput::Bytes(data.len() as u64));
    for chunk in [256usize, 4096, 65536] {
        group.bench_function(format!("chunks_of_{chunk}"), |b| {
            let mut events: Vec<SseEvent> = Vec::with_capacity(1024);
            b.iter(|| {
                let mut dec = SseDecoder::new();
                events.clear();
                for c in data.chunks(chunk) {
                    dec.decode(c, &mut events).unwrap();
                }
                dec.finish(&mut events).unwrap();
                events.len()
            });
        });
    }
    group.bench_function("decode_and_reencode_4096", |b| {
        let mut events: Vec<SseEvent> = Vec::with_capacity(1024);
        let mut out = bytes::BytesMut::with_capacity(data.len());
        b.iter(|| {
            let mut dec = SseDecoder::new();
            events.clear();
            out.clear();
            for c in data.chunks(4096) {
                dec.decode(c, &mut events).unwrap();
                for e in events.drain(..) {
                    e.encode_into(&mut out);
                }
            }
            out.len()
        });
    });
    group.finish();
}

/// How a processor reads an event's JSON.
#[derive(Clone, Copy)]
enum Read {
    /// Nothing.
    Nothing,
    /// `SseEvent::json`: the parse shared by every processor.
    Shared,
    /// `serde_json::from_str` on the data, each processor for itself.
    Own,
}

struct Reader(Read, usize);

impl StreamProcessor for Reader {
    fn on_event(&mut self, ev: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        // A cheap read (one field), so that what differs between the rows is the parsing.
        let content = |v: &serde_json::Value| {
            v.get("choices")
                .and_then(serde_json::Value::as_array)
                .map_or(0, Vec::len)
        };
        match self.0 {
            Read::Nothing => {}
            Read::Shared => self.1 += ev.json().map_or(0, content),
            Read::Own => {
                if let Some(v) = ev
                    .data_str()
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                {
                    self.1 += content(&v);
                }
            }
        }
        out.push(ev);
        Ok(())
    }
}

/// A chat stream of `n` content chunks (as OpenAI sends them with `include_usage`), the usage
/// chunk and `[DONE]`.
fn chat_stream(n: usize) -> Vec<u8> {
    let mut s = String::new();
    for i in 0..n {
        let _ = write!(
            s,
            "data: {{\"id\":\"chatcmpl-BkKxQ3abcdefghij\",\"object\":\"chat.completion.chunk\",\"created\":1750000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"service_tier\":\"default\",\"system_fingerprint\":\"fp_34a54ae93c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"logprobs\":null,\"finish_reason\":null}}],\"usage\":null}}\n\n"
        );
    }
    s.push_str("data: {\"id\":\"chatcmpl-BkKxQ3abcdefghij\",\"object\":\"chat.completion.chunk\",\"created\":1750000000,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":200,\"total_tokens\":212}}\n\n");
    s.push_str("data: [DONE]\n\n");
    s.into_bytes()
}

fn bench_json_per_event(c: &mut Criterion) {
    const CHUNKS: usize = 200;
    let stream = chat_stream(CHUNKS);
    let mut group = c.benchmark_group("sse_json_per_event");
    group.throughput(Throughput::Elements(CHUNKS as u64 + 2));
    for (name, read) in [
        ("pass_through", Read::Nothing),
        ("shared", Read::Shared),
        ("each_parses", Read::Own),
    ] {
        for n in [1usize, 3, 8] {
            group.bench_function(format!("{name}/{n}_processors"), |b| {
                b.iter(|| {
                    let stages = (0..n)
                        .map(|i| {
                            let p: Box<dyn StreamProcessor> = Box::new(Reader(read, 0));
                            (format!("reader-{i}"), p)
                        })
                        .collect();
                    let mut chain = StreamChain::with_processors(ApiKind::ChatCompletions, stages);
                    let mut len = 0;
                    for c in stream.chunks(4096) {
                        len += chain.on_chunk(c).len();
                    }
                    len + chain.on_end(StreamEnd::Completed).len()
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_sse, bench_json_per_event);
criterion_main!(benches);
