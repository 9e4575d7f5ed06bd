//! Cache lookup latency percentiles: an exact hit through the cache processor's request phase
//! (key computation, store lookup, response built), and a semantic nearest-neighbour search
//! over 100,000 entries of one scope (embedding excluded).
//!
//! `cargo run --release -p infergate-benches --bin cache_latency`

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use infergate_cache::{Answer, Cache, CacheConfig, CacheStore, MemoryStore, SemanticIndex};
use infergate_core::{ApiKind, Decision, Payload, Processor, RequestContext};

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100], v[v.len() - 1])
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let store = Arc::new(MemoryStore::default());
    let cache = Cache::new(CacheConfig::new().store(store.clone()));
    let body = r#"{"model":"gpt-4o-mini","temperature":0,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"max_tokens":64}"#;
    let payload = Payload::parse(ApiKind::ChatCompletions, body.as_bytes()).unwrap();
    let (head, ()) = http::Request::post("/v1/chat/completions")
        .header("authorization", "Bearer sk-bench")
        .body(())
        .unwrap()
        .into_parts();
    let key = cache.key_for(&head.headers, &payload).unwrap();
    let answer = r#"{"id":"c1","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":30,"completion_tokens":2,"total_tokens":32}}"#;
    store
        .put(
            key,
            Answer {
                api: ApiKind::ChatCompletions,
                body: Bytes::from_static(answer.as_bytes()),
            },
            Duration::from_secs(3600),
        )
        .await
        .unwrap();
    // 10,000 other entries, so that the store is not trivially small.
    for i in 0..10_000u128 {
        let a = Answer {
            api: ApiKind::ChatCompletions,
            body: Bytes::from_static(answer.as_bytes()),
        };
        store.put(i, a, Duration::from_secs(3600)).await.unwrap();
    }
    // The two parts of a hit: the key, and the store lookup.
    let mut kt = Vec::with_capacity(200_000);
    let mut gt = Vec::with_capacity(200_000);
    let mut both = Vec::with_capacity(200_000);
    for _ in 0..200_000 {
        let t0 = Instant::now();
        let k = cache.key_for(&head.headers, &payload);
        let t1 = Instant::now();
        let a = store.get(k.unwrap()).await.unwrap();
        let t2 = Instant::now();
        kt.push(t1 - t0);
        gt.push(t2 - t1);
        both.push(t2 - t0);
        assert!(a.is_some());
    }
    let (p50, p99, _) = percentiles(both);
    println!("exact lookup (key + memory store get), 200k lookups: p50 {p50:?}, p99 {p99:?}");
    let (p50, p99, _) = percentiles(kt);
    println!("  of which key computation: p50 {p50:?}, p99 {p99:?}");
    let (p50, p99, _) = percentiles(gt);
    println!("  of which memory store get: p50 {p50:?}, p99 {p99:?}");
    let mut cx = RequestContext::new(head, Bytes::from_static(body.as_bytes()), Some(payload));
    let mut times = Vec::with_capacity(200_000);
    for i in 0..220_000 {
        let t = Instant::now();
        let d = cache.on_request(&mut cx).await.unwrap();
        let el = t.elapsed();
        assert!(matches!(d, Decision::Respond(_)));
        if i >= 20_000 {
            times.push(el);
        }
    }
    let (p50, p99, max) = percentiles(times);
    println!(
        "exact hit (request phase: key + lookup + response), 200k lookups: p50 {p50:?}, p99 {p99:?}, max {max:?}"
    );

    for dim in [384usize, 2048] {
        let index = SemanticIndex::new(100_000);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let vec = |rnd: &mut dyn FnMut() -> f32| {
            let mut v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
            infergate_embed::normalize(&mut v);
            v
        };
        let mut slowest = Duration::ZERO;
        let all = Instant::now();
        for k in 0..100_000u128 {
            let v = vec(&mut rnd);
            let t = Instant::now();
            index.insert(7, &v, k);
            slowest = slowest.max(t.elapsed());
        }
        println!(
            "semantic insert, 100k x {dim} dims: {:?} in all (vector generation included), slowest insert {slowest:?} (the one that clusters the scope)",
            all.elapsed()
        );
        let queries: Vec<Vec<f32>> = (0..300).map(|_| vec(&mut rnd)).collect();
        let mut times = Vec::new();
        for q in &queries {
            let t = Instant::now();
            let r = index.nearest(7, q);
            times.push(t.elapsed());
            assert!(r.is_some());
        }
        let (p50, p99, max) = percentiles(times);
        println!(
            "semantic nearest, 100k entries x {dim} dims: p50 {p50:?}, p99 {p99:?}, max {max:?}"
        );
    }
}
