//! Rate-limiter costs: admission of a 2 KB prompt with a warm memo, a cold count, the memo's
//! speed-up on a conversation resent every turn, and the Redis round trip.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use infergate_core::payload::{ApiKind, Payload};
use infergate_core::{Processor, RequestContext};
use infergate_ratelimit::store::{BucketKind, Charge, Store};
use infergate_ratelimit::{
    Encoding, Limits, RateLimitConfig, RedisStore, RedisStoreConfig, TokenCounter, TokenRateLimiter,
};
use infergate_testkit::RedisServer;

fn prompt_2kb() -> String {
    let base = "The quarterly report shows revenue grew 12% while operating costs fell; \
                summarise the drivers, list three risks, and propose next steps for the team. ";
    base.repeat(2048 / base.len() + 1)[..2048].to_owned()
}

fn chat_payload(messages: &[String]) -> Payload {
    let msgs: Vec<_> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| serde_json::json!({"role": if i % 2 == 0 {"user"} else {"assistant"}, "content": m}))
        .collect();
    let body = serde_json::json!({"model": "gpt-4o", "max_tokens": 256, "messages": msgs});
    Payload::parse(ApiKind::ChatCompletions, body.to_string().as_bytes()).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = prompt_2kb();

    c.bench_function("ratelimit/cold_count_2kb_o200k", |b| {
        b.iter(|| TokenCounter::count_uncached(Encoding::O200kBase, &text));
    });
    let short = "What is the capital of France? Question number 1000123. Answer in one word.";
    c.bench_function("ratelimit/cold_count_short_prompt_o200k", |b| {
        b.iter(|| TokenCounter::count_uncached(Encoding::O200kBase, short));
    });
    c.bench_function("ratelimit/cold_count_short_prompt_cl100k", |b| {
        b.iter(|| TokenCounter::count_uncached(Encoding::Cl100kBase, short));
    });

    let limiter = TokenRateLimiter::new(RateLimitConfig::new(Limits {
        requests_per_minute: Some(u64::MAX / 4),
        tokens_per_minute: Some(u64::MAX / 4),
        ..Limits::default()
    }));
    let payload = chat_payload(std::slice::from_ref(&text));
    let head = http::Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-bench-key")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    c.bench_function("ratelimit/admission_2kb_warm_memo", |b| {
        b.to_async(&rt).iter_batched(
            || RequestContext::new(head.clone(), Bytes::new(), Some(payload.clone())),
            |mut cx| {
                let limiter = limiter.clone();
                async move { limiter.on_request(&mut cx).await.unwrap() }
            },
            BatchSize::SmallInput,
        );
    });

    // A 20-turn conversation of ~400-byte messages, counted as a whole each turn.
    let turns: Vec<String> = (0..20)
        .map(|i| format!("Turn {i}: {}", &text[..400]))
        .collect();
    let convo = chat_payload(&turns);
    let memo = TokenCounter::default();
    memo.count_prompt(&convo);
    c.bench_function("ratelimit/conversation_20_turns_memoised", |b| {
        b.iter(|| memo.count_prompt(&convo));
    });
    c.bench_function("ratelimit/conversation_20_turns_uncached", |b| {
        b.iter(|| TokenCounter::new(0).count_prompt(&convo));
    });

    if RedisServer::available() {
        let redis = rt.block_on(RedisServer::start());
        let store = Arc::new(RedisStore::new(RedisStoreConfig::new(redis.url())).unwrap());
        let charges = vec![
            Charge {
                key: "{bench}:rpm".into(),
                kind: BucketKind::Rate {
                    limit: u64::MAX / 1_000_000_000,
                    period: std::time::Duration::from_secs(60),
                },
                amount: 1,
            },
            Charge {
                key: "{bench}:tpm".into(),
                kind: BucketKind::Rate {
                    limit: u64::MAX / 1_000_000_000,
                    period: std::time::Duration::from_secs(60),
                },
                amount: 600,
            },
        ];
        c.bench_function("ratelimit/redis_reserve_round_trip", |b| {
            b.to_async(&rt).iter(|| {
                let store = store.clone();
                let charges = charges.clone();
                async move { store.reserve(&charges).await.unwrap() }
            });
        });
        drop(redis);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
