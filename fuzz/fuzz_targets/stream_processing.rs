//! Anthropic, Responses and Chat streams through the guardrail, the cache and the rate
//! limiter's stream processors, in any chunking: no panic (the cache's assembly of whatever
//! was streamed included), and what goes out decodes as SSE.
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use infergate_core::pipeline::RequestOutcome;
use infergate_core::{Pipeline, StreamEnd};
use infergate_guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| {
        let guard = Guardrail::new(
            GuardrailConfig::new()
                .check(
                    Check::new("pii", Detector::pii(), Action::Redact)
                        .applies(Applies::Response),
                )
                .check(Check::new("secrets", Detector::Secrets, Action::Redact).applies(Applies::Response)),
        );
        let cache = infergate_cache::Cache::new(infergate_cache::CacheConfig::new());
        let limiter = infergate_ratelimit::TokenRateLimiter::new(
            infergate_ratelimit::RateLimitConfig::new(infergate_ratelimit::Limits::default()),
        );
        Pipeline::builder()
            .processor(guard)
            .processor(cache)
            .processor(limiter)
            .build()
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (path, body) = match sel % 3 {
        0 => ("/v1/messages", r#"{"model":"claude","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
        1 => ("/v1/responses", r#"{"model":"gpt-4o","stream":true,"input":"hi"}"#),
        _ => ("/v1/chat/completions", r#"{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"hi"}]}"#),
    };
    let step = usize::from(sel >> 2).max(1);
    let p = pipeline();
    runtime().block_on(async {
        let req = http::Request::post(path)
            .header("content-type", "application/json")
            .body(())
            .expect("request");
        let (head, ()) = req.into_parts();
        let Ok(mut cx) = p.prepare_bytes(head, Bytes::from_static(body.as_bytes())) else {
            return;
        };
        let RequestOutcome::Forward = p.run_request(&mut cx).await else {
            return;
        };
        let (_req, mut exchange) = cx.into_request();
        let resp = http::Response::builder()
            .header("content-type", "text/event-stream")
            .body(())
            .expect("response");
        let (mut head, ()) = resp.into_parts();
        let Some(mut chain) = p.stream_chain(&mut exchange, &mut head) else {
            return;
        };
        let mut out = Vec::new();
        for chunk in rest.chunks(step) {
            out.extend_from_slice(&chain.on_chunk(chunk));
            if chain.is_stopped() {
                break;
            }
        }
        out.extend_from_slice(&chain.on_end(StreamEnd::Completed));
        // What goes out is SSE the client can decode.
        let mut dec = infergate_core::sse::SseDecoder::with_max_event_size(8 << 20);
        let mut events = Vec::new();
        let _ = dec.decode(&out, &mut events);
        drop(chain);
        // Whatever the cache assembled and stored is replayed to the same request (a hit, in
        // the API's stream shape): never a panic, and what comes out decodes as SSE.
        tokio::task::yield_now().await;
        let req = http::Request::post(path)
            .header("content-type", "application/json")
            .body(())
            .expect("request");
        let (head, ()) = req.into_parts();
        let Ok(mut cx) = p.prepare_bytes(head, Bytes::from_static(body.as_bytes())) else {
            return;
        };
        if let RequestOutcome::Respond(resp) = p.run_request(&mut cx).await {
            use http_body_util::BodyExt;
            if let Ok(c) = resp.into_body().collect().await {
                let mut events = Vec::new();
                let _ = dec.decode(&c.to_bytes(), &mut events);
            }
        }
    });
});
