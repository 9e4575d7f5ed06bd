//! SSE decoding throughput over the captured streams, and the per-event chain with a
//! pass-through stream processor (as when a guardrail or rate limiter watches a stream).
#![allow(missing_docs, clippy::unwrap_used)]

use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infergate_core::sse::{SseDecoder, SseEvent};

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

criterion_group!(benches, bench_sse);
criterion_main!(benches);
