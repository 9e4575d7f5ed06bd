//! What failover adds to a request when nothing fails: the same in-process upstream called
//! directly and through `Failover` over three backends in two tiers (choice, health books,
//! headers; for a stream also reading the first frame before passing the response on), with
//! the response body read to its end. Weighted and least-outstanding choice.
#![allow(missing_docs, clippy::unwrap_used)]

use std::convert::Infallible;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use http_body_util::BodyExt;
use infergate_core::Body;
use infergate_failover::{Backend, FailoverLayer, FailoverPolicy, Selection};
use tower::{Service, ServiceExt};

const ANSWER: &[u8] = br#"{"id":"x","object":"chat.completion","choices":[]}"#;
const CHUNK: &[u8] = b"data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n";

#[derive(Clone, Copy)]
struct Upstream {
    stream: bool,
}

impl Service<http::Request<Body>> for Upstream {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: http::Request<Body>) -> Self::Future {
        let resp = if self.stream {
            // Four SSE chunks, streamed (not a buffered body), like a real upstream's.
            let frames = (0..4)
                .map(|_| Ok::<_, Infallible>(http_body::Frame::data(Bytes::from_static(CHUNK))));
            let body = http_body_util::StreamBody::new(futures_util::stream::iter(frames));
            let mut r = http::Response::new(Body::new(body));
            r.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("text/event-stream"),
            );
            r
        } else {
            let mut r = http::Response::new(Body::full(Bytes::from_static(ANSWER)));
            r.headers_mut().insert(
                "content-type",
                http::HeaderValue::from_static("application/json"),
            );
            r
        };
        std::future::ready(Ok(resp))
    }
}

fn request(body: &Bytes) -> http::Request<Body> {
    http::Request::post("http://upstream/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::full(body.clone()))
        .unwrap()
}

fn bench_failover(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = Bytes::from_static(
        br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"What is the capital of France?"}]}"#,
    );
    for stream in [false, true] {
        let kind = if stream { "stream" } else { "json" };
        let mut group = c.benchmark_group(format!("failover_{kind}"));
        let upstream = Upstream { stream };
        group.bench_function("direct", |b| {
            b.to_async(&rt).iter(|| async {
                let resp = upstream.oneshot(request(&body)).await.unwrap();
                resp.into_body().collect().await.unwrap().to_bytes()
            });
        });
        for (name, selection) in [
            ("failover_weighted", Selection::Weighted),
            ("failover_least_outstanding", Selection::LeastOutstanding),
        ] {
            let svc = FailoverLayer::new(FailoverPolicy::default().selection(selection))
                .service_over(vec![
                    Backend::new("a", upstream).tier(0),
                    Backend::new("b", upstream).tier(0).weight(2),
                    Backend::new("c", upstream).tier(1),
                ]);
            group.bench_function(name, |b| {
                b.to_async(&rt).iter(|| async {
                    let resp = svc.clone().oneshot(request(&body)).await.unwrap();
                    resp.into_body().collect().await.unwrap().to_bytes()
                });
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench_failover);
criterion_main!(benches);
