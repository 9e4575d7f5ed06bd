//! Translation cost: a typical chat request and its answer (goal ≤ 10 µs), and stream
//! translation throughput (goal ≥ 200 MB/s of upstream bytes).
#![allow(missing_docs)]

use std::hint::black_box;

mod common;
use common::{ANTHROPIC_ANSWER, REQUEST};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infergate_translate::{
    Options, Protocol, StreamEncoder, StreamEvent, StreamTranslator, decode_request,
    encode_request,
    ir::{BlockKind, FinishReason, UsageUpdate},
    translate_request, translate_response,
};

/// A synthetic answer stream of `n` text deltas and a tool call, as IR events.
fn ir_stream(n: usize) -> Vec<StreamEvent> {
    let mut v = vec![
        StreamEvent::MessageStart {
            id: "msg_01ALwQ87pTS7hH1PjSdC9wJD".into(),
            model: "model-x".into(),
        },
        StreamEvent::Usage({
            let mut u = UsageUpdate::default();
            u.input_tokens = Some(412);
            u
        }),
        StreamEvent::BlockStart {
            index: 0,
            kind: BlockKind::Text,
        },
    ];
    for i in 0..n {
        v.push(StreamEvent::TextDelta {
            index: 0,
            text: format!(" token{i} of the answer,"),
        });
    }
    v.push(StreamEvent::BlockStop { index: 0 });
    v.push(StreamEvent::BlockStart {
        index: 1,
        kind: BlockKind::ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
        },
    });
    for part in ["{\"city\"", ":\"Par", "is\"}"] {
        v.push(StreamEvent::ToolArgsDelta {
            index: 1,
            json: part.into(),
        });
    }
    v.push(StreamEvent::BlockStop { index: 1 });
    v.push(StreamEvent::Finish {
        reason: FinishReason::ToolCalls,
        stop_sequence: None,
    });
    v.push(StreamEvent::Usage({
        let mut u = UsageUpdate::default();
        u.output_tokens = Some(n as u64);
        u
    }));
    v.push(StreamEvent::MessageStop);
    v
}

fn wire(p: Protocol, events: &[StreamEvent]) -> Vec<u8> {
    let mut opts = Options::default();
    opts.include_usage = true;
    let mut e = StreamEncoder::new(p, &opts);
    let mut out = Vec::new();
    for ev in events {
        e.encode(ev, &mut out).expect("encodes");
    }
    out
}

fn requests(c: &mut Criterion) {
    let opts = Options::default();
    let mut g = c.benchmark_group("request_and_answer");
    for to in [Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini] {
        let answer =
            translate_response(Protocol::Anthropic, to, ANTHROPIC_ANSWER, &opts).expect("answer");
        g.bench_function(format!("openai_client_{to}_backend"), |b| {
            b.iter(|| {
                let req = translate_request(Protocol::OpenAiChat, to, black_box(REQUEST), &opts)
                    .expect("request");
                let ans = translate_response(to, Protocol::OpenAiChat, black_box(&answer), &opts)
                    .expect("answer");
                black_box((req, ans))
            });
        });
    }
    g.finish();
    // The two halves apart: where the time of the row above goes.
    let mut g = c.benchmark_group("request_and_answer_split");
    g.bench_function("request_decode_openai", |b| {
        b.iter(|| {
            decode_request(Protocol::OpenAiChat, black_box(REQUEST), &opts).expect("decodes")
        });
    });
    for to in [Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini] {
        let answer =
            translate_response(Protocol::Anthropic, to, ANTHROPIC_ANSWER, &opts).expect("answer");
        g.bench_function(format!("request_openai_to_{to}"), |b| {
            b.iter(|| {
                translate_request(Protocol::OpenAiChat, to, black_box(REQUEST), &opts)
                    .expect("request")
            });
        });
        let decoded =
            decode_request(Protocol::OpenAiChat, REQUEST, &opts).expect("decodes the request");
        g.bench_function(format!("request_encode_{to}"), |b| {
            b.iter(|| encode_request(to, black_box(&decoded), &opts).expect("encodes"));
        });
        g.bench_function(format!("answer_{to}_to_openai"), |b| {
            b.iter(|| {
                translate_response(to, Protocol::OpenAiChat, black_box(&answer), &opts)
                    .expect("answer")
            });
        });
    }
    g.finish();
}

fn streams(c: &mut Criterion) {
    let events = ir_stream(400);
    let opts = Options::default();
    let mut g = c.benchmark_group("stream");
    for (from, to) in [
        (Protocol::OpenAiChat, Protocol::Anthropic),
        (Protocol::Anthropic, Protocol::OpenAiChat),
        (Protocol::Bedrock, Protocol::OpenAiChat),
        (Protocol::Gemini, Protocol::Anthropic),
        (Protocol::OpenAiChat, Protocol::Bedrock),
    ] {
        let input = wire(from, &events);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_function(format!("{from}_to_{to}"), |b| {
            let mut out = Vec::with_capacity(input.len() * 2);
            b.iter(|| {
                out.clear();
                let mut t = StreamTranslator::new(from, to, &opts);
                for chunk in input.chunks(4096) {
                    t.feed(black_box(chunk), &mut out).expect("feeds");
                }
                t.finish(&mut out).expect("finishes");
                black_box(out.len())
            });
        });
    }
    // The real captured streams, when the shared data is there.
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    for (rel, from, to) in [
        (
            "sse/extracted/pydantic-ai__test_anthropic_model_thinking_part_stream__0.sse.txt",
            Protocol::Anthropic,
            Protocol::OpenAiChat,
        ),
        (
            "providers/extracted/pydantic-ai__test_complex_agent_run__2.sse.txt",
            Protocol::OpenAiChat,
            Protocol::Anthropic,
        ),
        (
            "providers/extracted/pydantic-ai__test_bedrock_model_stream__0.eventstream.bin",
            Protocol::Bedrock,
            Protocol::OpenAiChat,
        ),
    ] {
        let Ok(input) = std::fs::read(dir.join(rel)) else {
            continue;
        };
        g.throughput(Throughput::Bytes(input.len() as u64));
        let name = rel
            .rsplit('/')
            .next()
            .unwrap_or(rel)
            .split("__")
            .nth(1)
            .unwrap_or(rel)
            .to_owned();
        g.bench_function(format!("captured_{name}_{from}_to_{to}"), |b| {
            let mut out = Vec::with_capacity(input.len() * 2);
            b.iter(|| {
                out.clear();
                let mut t = StreamTranslator::new(from, to, &opts);
                t.feed(black_box(&input), &mut out).expect("feeds");
                t.finish(&mut out).expect("finishes");
                black_box(out.len())
            });
        });
    }
    g.finish();
}

criterion_group!(benches, requests, streams);
criterion_main!(benches);
