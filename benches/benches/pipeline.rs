//! The Pipeline's own cost per request through the tower driver (`PipelineService::call`):
//! buffering and parsing a typical chat request, running 0, 1 and 8 no-op processors in every
//! phase, and forwarding to an in-process upstream. Also the payload parse alone.
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;

use async_trait::async_trait;
use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use infergate_core::payload::{ApiKind, Payload};
use infergate_core::{
    Body, Decision, Phases, Pipeline, Processor, ProcessorError, RequestContext, ResponseContext,
};
use tower::{Layer, ServiceExt};

struct Noop;

#[async_trait]
impl Processor for Noop {
    fn name(&self) -> &str {
        "noop"
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::RESPONSE
    }
    async fn on_request(&self, _cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        Ok(Decision::Continue)
    }
    async fn on_response(&self, _cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        Ok(Decision::Continue)
    }
}

fn chat_body() -> Bytes {
    Bytes::from(
        serde_json::json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a helpful assistant that answers briefly."},
                {"role": "user", "content": "What is the capital of France? Please answer in one word."},
                {"role": "assistant", "content": "Paris."},
                {"role": "user", "content": "And of Italy? Also give me one fact about the city."}
            ],
            "temperature": 0.2,
            "max_tokens": 256,
            "user": "user-1234"
        })
        .to_string(),
    )
}

fn bench_pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = chat_body();
    let answer = Bytes::from_static(br#"{"id":"x","object":"chat.completion","choices":[]}"#);
    let mut group = c.benchmark_group("pipeline_request");
    {
        // The same request and upstream without any pipeline: what the harness itself costs.
        let answer = answer.clone();
        let upstream = tower::service_fn(move |_req: http::Request<Body>| {
            let a = answer.clone();
            async move {
                let mut r = http::Response::new(Body::full(a));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                Ok::<_, Infallible>(r)
            }
        });
        group.bench_function("baseline_without_pipeline", |bch| {
            bch.to_async(&rt).iter(|| {
                let svc = upstream.clone();
                let req = http::Request::post("/v1/chat/completions")
                    .header("content-type", "application/json")
                    .body(Body::full(body.clone()))
                    .unwrap();
                async move { svc.oneshot(req).await.unwrap() }
            });
        });
    }
    for n in [0usize, 1, 8] {
        let mut b = Pipeline::builder();
        for _ in 0..n {
            b = b.processor(Noop);
        }
        let pipeline = b.build();
        let answer = answer.clone();
        let upstream = tower::service_fn(move |_req: http::Request<Body>| {
            let a = answer.clone();
            async move {
                let mut r = http::Response::new(Body::full(a));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                Ok::<_, Infallible>(r)
            }
        });
        let svc = pipeline.layer().layer(upstream);
        group.bench_function(format!("{n}_noop_processors"), |bch| {
            bch.to_async(&rt).iter(|| {
                let svc = svc.clone();
                let req = http::Request::post("/v1/chat/completions")
                    .header("content-type", "application/json")
                    .body(Body::full(body.clone()))
                    .unwrap();
                async move { svc.oneshot(req).await.unwrap() }
            });
        });
    }
    group.finish();

    // The processors' share alone: the request and response-head phases on a prepared context
    // (no body plumbing), which is what each added processor costs.
    let mut group = c.benchmark_group("pipeline_phases");
    for n in [0usize, 1, 8] {
        let mut b = Pipeline::builder();
        for _ in 0..n {
            b = b.processor(Noop);
        }
        let pipeline = b.build();
        group.bench_function(format!("{n}_noop_processors"), |bch| {
            bch.to_async(&rt).iter(|| {
                let pipeline = pipeline.clone();
                async move {
                    let (head, ()) = http::Request::post("/v1/chat/completions")
                        .body(())
                        .unwrap()
                        .into_parts();
                    let mut cx = RequestContext::new(head, Bytes::new(), None);
                    let _ = pipeline.run_request(&mut cx).await;
                    let (_req, mut ex) = cx.into_request();
                    let (mut parts, ()) = http::Response::new(()).into_parts();
                    pipeline.run_response_head(&mut ex, &mut parts).await
                }
            });
        });
    }
    group.finish();

    c.bench_function("payload_parse_chat", |b| {
        b.iter(|| Payload::parse(ApiKind::ChatCompletions, &body).unwrap());
    });
}

criterion_group!(benches, bench_pipeline);
criterion_main!(benches);
