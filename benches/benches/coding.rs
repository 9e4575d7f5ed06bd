//! What decoding a compressed upstream answer costs on the response path: the same request
//! through the tower driver, the upstream answering identity, gzip or br; a non-streamed answer
//! and a 40-event stream (compressed with a flush per event, as a provider streams it). Two
//! pipelines: the guardrail alone (redacting answers), and every response block on (the
//! guardrail, the exact cache keeping the answer, the rate limiter reading its usage) with
//! every request different, so every one is a cache miss.
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use infergate_cache::{Cache, CacheConfig};
use infergate_core::{Body, Pipeline};
use infergate_guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
use infergate_ratelimit::{Limits, RateLimitConfig, TokenRateLimiter};
use tower::{Layer, ServiceExt};

fn answer() -> Bytes {
    let content =
        "Paris is the capital of France. It sits on the Seine, and is known for its museums, \
                   its cafés and its long history as a centre of art and science. "
            .repeat(8);
    Bytes::from(
        serde_json::json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
            "model": "gpt-4o-mini", "choices": [{"index": 0, "message": {"role": "assistant",
            "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 300, "total_tokens": 340}})
        .to_string(),
    )
}

fn events() -> Vec<Bytes> {
    let mut out = Vec::new();
    for i in 0..40 {
        out.push(Bytes::from(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n"
        )));
    }
    out.push(Bytes::from_static(b"data: [DONE]\n\n"));
    out
}

/// Each frame compressed and flushed, as a provider streams it.
fn encode_frames(coding: &str, frames: &[Bytes]) -> Vec<Bytes> {
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            let mut out = Vec::new();
            for f in frames {
                e.write_all(f).unwrap();
                e.flush().unwrap();
                out.push(Bytes::from(std::mem::take(e.get_mut())));
            }
            out.push(Bytes::from(e.finish().unwrap()));
            out
        }
        "br" => {
            let mut e = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
            let mut out = Vec::new();
            for f in frames {
                e.write_all(f).unwrap();
                e.flush().unwrap();
                out.push(Bytes::from(std::mem::take(e.get_mut())));
            }
            out.push(Bytes::from(e.into_inner()));
            out
        }
        _ => frames.to_vec(),
    }
}

fn guardrail() -> Guardrail {
    Guardrail::new(
        GuardrailConfig::new()
            .check(Check::new("pii", Detector::pii(), Action::Redact).applies(Applies::Response))
            .check(
                Check::new("secrets", Detector::Secrets, Action::Redact).applies(Applies::Response),
            ),
    )
}

fn pipelines() -> Vec<(&'static str, Pipeline)> {
    let limiter = TokenRateLimiter::new(RateLimitConfig::new(Limits {
        requests_per_minute: Some(u64::MAX / 4),
        tokens_per_minute: Some(u64::MAX / 4),
        ..Limits::default()
    }));
    vec![
        ("", Pipeline::builder().processor(guardrail()).build()),
        (
            "all_blocks_",
            Pipeline::builder()
                .processor(guardrail())
                .processor(Cache::new(CacheConfig::new()))
                .processor(limiter)
                .build(),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("response_decoding");
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for (prefix, p) in pipelines() {
        for stream in [false, true] {
            for coding in ["identity", "gzip", "br"] {
                let frames = if stream {
                    encode_frames(coding, &events())
                } else {
                    encode_frames(coding, &[answer()])
                };
                let upstream = tower::service_fn(move |_req: http::Request<Body>| {
                    let frames = frames.clone();
                    async move {
                        let chunks = futures_util::stream::iter(
                            frames
                                .into_iter()
                                .map(|f| Ok::<_, Infallible>(http_body::Frame::data(f))),
                        );
                        let mut r =
                            http::Response::new(Body::new(http_body_util::StreamBody::new(chunks)));
                        let h = r.headers_mut();
                        h.insert(
                            "content-type",
                            if stream {
                                "text/event-stream"
                            } else {
                                "application/json"
                            }
                            .parse()
                            .unwrap(),
                        );
                        if coding != "identity" {
                            h.insert("content-encoding", coding.parse().unwrap());
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let svc = p.layer().layer(upstream);
                let name = format!(
                    "{prefix}{}_{coding}",
                    if stream { "stream40" } else { "json" }
                );
                group.bench_function(name, |b| {
                b.to_async(&rt).iter(|| {
                    let svc = svc.clone();
                    // Every request different: a cache miss each time.
                    let i = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let req_body = Bytes::from(format!(
                        r#"{{"model":"gpt-4o-mini","stream":{stream},"messages":[{{"role":"user","content":"Tell me about Paris, question {i}."}}]}}"#
                    ));
                    let req = http::Request::post("/v1/chat/completions")
                        .header("content-type", "application/json")
                        .header("accept-encoding", "gzip, br")
                        .body(Body::full(req_body))
                        .unwrap();
                    async move {
                        let resp = svc.oneshot(req).await.unwrap();
                        resp.into_body().collect().await.unwrap().to_bytes()
                    }
                });
            });
            }
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
