//! Identity costs: authenticating a request with a cached API key (the in-memory store, and
//! the Redis store with a warm local cache), and the whole request phase (authenticate, check
//! the model, strip the credential, principal into the extensions). Target: ≤ 2 µs.
#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use bytes::Bytes;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use infergate_core::payload::{ApiKind, Payload};
use infergate_core::{Processor, RequestContext};
use infergate_identity::{
    Identity, KeyAdmin, KeyHasher, KeyRecord, MemoryKeyStore, PrincipalSpec, RedisKeyStore,
    RedisStoreConfig,
};
use infergate_testkit::RedisServer;

const KEY: &str = "igk_bench_Q8bZ2kLmN4pR6sT8vX0yA2cE4gI6kM8oQ2sU4wY6a";

fn headers(key: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {key}").parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let hasher = KeyHasher::hmac(b"bench-pepper");
    let mut spec = PrincipalSpec::tenant("acme");
    spec.allowed_models = vec!["gpt-4o*".into(), "claude-*".into()];
    let record = KeyRecord::from_key(KEY, spec.clone(), &hasher).unwrap();
    let store = MemoryKeyStore::new([record], hasher.clone()).unwrap();
    let identity = Identity::builder()
        .keys(Arc::new(store))
        .hasher(hasher.clone())
        .build();
    let h = headers(KEY);

    c.bench_function("identity/authenticate_cached_key", |b| {
        b.to_async(&rt)
            .iter(|| async { identity.authenticate(&h).await.unwrap() });
    });

    let payload = Payload::parse(
        ApiKind::ChatCompletions,
        br#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}"#,
    )
    .unwrap();
    let mut head = http::Request::post("/v1/chat/completions")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    head.headers = h.clone();
    c.bench_function("identity/request_phase_cached_key", |b| {
        b.to_async(&rt).iter_batched(
            || RequestContext::new(head.clone(), Bytes::new(), Some(payload.clone())),
            |mut cx| {
                let identity = identity.clone();
                async move {
                    identity.on_request(&mut cx).await.unwrap();
                    cx
                }
            },
            BatchSize::SmallInput,
        );
    });

    if RedisServer::available() {
        let redis = rt.block_on(RedisServer::start());
        let cfg = RedisStoreConfig {
            url: redis.url(),
            cache_ttl_ms: 3_600_000,
            ..RedisStoreConfig::default()
        };
        let store = Arc::new(RedisKeyStore::new(cfg, hasher.clone()).unwrap());
        let (key, _) = rt.block_on(store.create(spec, None)).unwrap();
        let identity = Identity::builder()
            .keys(store.clone())
            .hasher(hasher)
            .build();
        let h = headers(key.expose());
        rt.block_on(identity.authenticate(&h)).unwrap();
        let before = store.redis_lookups();
        c.bench_function("identity/authenticate_redis_cached_key", |b| {
            b.to_async(&rt)
                .iter(|| async { identity.authenticate(&h).await.unwrap() });
        });
        assert_eq!(store.redis_lookups(), before, "served from the local cache");
        drop(redis);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
