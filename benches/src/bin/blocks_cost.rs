//! Where the CPU of a cache-miss request goes with every building block on: the pipeline run
//! in process over a stub upstream that answers at once (no network, no kernel), per request,
//! with each block alone and all together; every request different (a counter in the user
//! message), as in the all-blocks row of `benches/load.sh`.
//!
//! `cargo run --release -p infergate-benches --bin blocks_cost [ROW-PREFIX]` (`N=…` requests)

#![allow(clippy::unwrap_used, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::BodyExt;
use infergate_cache::{Cache, CacheConfig};
use infergate_core::{Body, Pipeline, PipelineLayer, Processor};
use infergate_embed::HashEmbedder;
use infergate_guardrail::detect::DenyList;
use infergate_guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
use infergate_ratelimit::{Limits, RateLimitConfig, TokenRateLimiter};
use infergate_router::{Router, RouterConfig, SemanticRoute, Target};
use tower::{Layer, ServiceExt};

const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32}}"#;

async fn router() -> Router {
    let cfg = RouterConfig::new()
        .alias("fast", Target::new("mock").model("gpt-4o-mini"))
        .semantic(
            SemanticRoute::new(
                "billing",
                ["how much do i owe this month", "pay my invoice"],
                Target::new("mock"),
            )
            .threshold(0.3),
        )
        .semantic(
            SemanticRoute::new(
                "travel",
                ["book a flight to paris", "find me a hotel in rome"],
                Target::new("mock"),
            )
            .threshold(0.3),
        );
    let u = cfg.utterances();
    Router::build(cfg, Arc::new(HashEmbedder::builder().fit(u)))
        .await
        .unwrap()
}

fn guardrail() -> Guardrail {
    Guardrail::new(
        GuardrailConfig::new()
            .check(Check::new("pii", Detector::pii(), Action::Redact))
            .check(Check::new("secrets", Detector::Secrets, Action::Block))
            .check(Check::new(
                "deny",
                Detector::DenyList(DenyList::new(["project falcon", "internal only"]).unwrap()),
                Action::Block,
            ))
            .check(
                Check::new(
                    "injection",
                    Detector::Injection { threshold: 2.0 },
                    Action::Block,
                )
                .applies(Applies::Request),
            )
            .check(
                Check::new("tokens", Detector::MaxTokens(32_000), Action::Block)
                    .applies(Applies::Request),
            ),
    )
}

fn limiter() -> TokenRateLimiter {
    TokenRateLimiter::new(RateLimitConfig::new(Limits {
        requests_per_minute: Some(u64::MAX / 4),
        tokens_per_minute: Some(u64::MAX / 4),
        ..Limits::default()
    }))
}

async fn measure(name: &str, processors: Vec<Box<dyn Fn() -> Arc<dyn Processor>>>, n: usize) {
    // `blocks_cost guardrail` measures only the rows whose name starts with the argument (for a
    // profiler run of one block).
    if let Some(only) = std::env::args().nth(1)
        && !name.starts_with(&only)
    {
        return;
    }
    let mut b = Pipeline::builder();
    for p in &processors {
        b = b.processor(p());
    }
    let upstream = tower::service_fn(|_req: http::Request<Body>| async {
        let mut r = http::Response::new(Body::full(Bytes::from_static(ANSWER.as_bytes())));
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok::<_, Infallible>(r)
    });
    let svc = PipelineLayer::new(b.build()).layer(upstream);
    let run = |i: usize| {
        let svc = svc.clone();
        async move {
            let body = format!(
                r#"{{"model":"gpt-4o-mini","stream":false,"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"What is the capital of France? Question number {i}. Answer in one word."}}],"max_tokens":64}}"#
            );
            let req = http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .header("authorization", "Bearer sk-bench")
                .body(Body::full(Bytes::from(body)))
                .unwrap();
            let resp = svc.oneshot(req).await.unwrap();
            assert_eq!(resp.status(), 200);
            resp.into_body().collect().await.unwrap();
        }
    };
    for i in 0..2000 {
        run(i).await;
    }
    // `POLLUTE_KB=…`: between requests, walk a buffer of that size (timed apart and left out),
    // as the kernel, the client and the upstream do to the caches between two requests of a
    // gateway under load on a shared core.
    let pollute_kb: usize = std::env::var("POLLUTE_KB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut junk = vec![0u8; pollute_kb * 1024];
    let mut spent = std::time::Duration::ZERO;
    for i in 0..n {
        let t = Instant::now();
        run(1_000_000 + i).await;
        spent += t.elapsed();
        for line in junk.chunks_mut(64) {
            line[0] = line[0].wrapping_add(1);
        }
    }
    std::hint::black_box(&junk);
    let per = spent / n.max(1) as u32;
    println!("| {name} | {:.1} µs |", per.as_secs_f64() * 1e6);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let n = std::env::var("N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let r = router().await;
    println!("| pipeline (cache misses, in process, no network) | per request |\n|---|---|");
    measure("empty", vec![], n).await;
    let r1 = r.clone();
    measure(
        "router (alias + 2 semantic routes)",
        vec![Box::new(move || Arc::new(r1.clone()))],
        n,
    )
    .await;
    measure(
        "guardrail (PII, secrets, deny, injection, tokens)",
        vec![Box::new(|| Arc::new(guardrail()))],
        n,
    )
    .await;
    measure(
        "cache (exact, miss + store)",
        vec![Box::new(|| Arc::new(Cache::new(CacheConfig::new())))],
        n,
    )
    .await;
    measure("rate limiter", vec![Box::new(|| Arc::new(limiter()))], n).await;
    let r2 = r.clone();
    measure(
        "all four",
        vec![
            Box::new(move || Arc::new(r2.clone())),
            Box::new(|| Arc::new(guardrail())),
            Box::new(|| Arc::new(Cache::new(CacheConfig::new()))),
            Box::new(|| Arc::new(limiter())),
        ],
        n,
    )
    .await;
}
