//! The cache over loopback HTTP in front of the mock provider.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use infergate_cache::{CacheConfig, CacheLayer, SemanticConfig};
use infergate_client::UpstreamClient;
use infergate_embed::HashEmbedder;
use infergate_mock::{Failure, MockProvider};
use infergate_testkit::{Reply, send, serve};
use serde_json::{Value, json};
use tower::Layer;

fn chat(text: &str, stream: bool) -> Value {
    let mut v = json!({"model": "gpt-4o-mini", "temperature": 0,
        "messages": [{"role": "user", "content": text}]});
    if stream {
        v["stream"] = json!(true);
        v["stream_options"] = json!({"include_usage": true});
    }
    v
}

async fn post(addr: std::net::SocketAddr, body: &Value, key: &str) -> Reply {
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    send(req).await
}

/// The text and usage of a reply, streamed or not.
fn content(r: &Reply) -> (String, Option<Value>) {
    let text = r.text();
    if text.starts_with("data:") {
        let mut s = String::new();
        let mut usage = None;
        for ev in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
            if ev == "[DONE]" {
                continue;
            }
            let v: Value = serde_json::from_str(ev).unwrap();
            if let Some(t) = v
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
            {
                s.push_str(t);
            }
            if v.get("usage").is_some_and(|u| !u.is_null()) {
                usage = Some(v["usage"].clone());
            }
        }
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
        (s, usage)
    } else {
        let v = r.json();
        (
            v["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .to_owned(),
            v.get("usage").cloned(),
        )
    }
}

async fn gateway(mock: &MockProvider, cfg: CacheConfig) -> std::net::SocketAddr {
    serve(CacheLayer::new(cfg).layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy())).await
}

#[tokio::test]
async fn hits_and_misses_across_streamed_and_whole_answers() {
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, CacheConfig::new()).await;
    // Whole first, then streamed.
    let a1 = post(addr, &chat("first question", false), "k").await;
    assert_eq!(a1.headers["x-cache"], "MISS");
    let a2 = post(addr, &chat("first question", false), "k").await;
    assert_eq!(a2.headers["x-cache"], "HIT");
    assert_eq!(content(&a1), content(&a2));
    let a3 = post(addr, &chat("first question", true), "k").await;
    assert_eq!(a3.headers["x-cache"], "HIT");
    assert_eq!(a3.headers["content-type"], "text/event-stream");
    assert_eq!(
        content(&a3),
        content(&a1),
        "replayed as SSE, usage included"
    );
    assert_eq!(mock.request_count(), 1);
    // Streamed first (teed), then whole.
    let b1 = post(addr, &chat("second question", true), "k").await;
    assert_eq!(b1.headers["x-cache"], "MISS");
    let b2 = post(addr, &chat("second question", false), "k").await;
    assert_eq!(b2.headers["x-cache"], "HIT");
    assert_eq!(content(&b2), content(&b1));
    let b3 = post(addr, &chat("second question", true), "k").await;
    assert_eq!(content(&b3), content(&b1));
    assert_eq!(mock.request_count(), 2);
    // Field order, `user` and `stream` do not change the key; a parameter does.
    let reordered: Value = serde_json::from_str(
        r#"{"messages":[{"content":"first question","role":"user"}],"user":"u7","temperature":0,"model":"gpt-4o-mini"}"#,
    )
    .unwrap();
    assert_eq!(post(addr, &reordered, "k").await.headers["x-cache"], "HIT");
    let mut hotter = chat("first question", false);
    hotter["temperature"] = json!(0.7);
    assert_eq!(post(addr, &hotter, "k").await.headers["x-cache"], "MISS");
}

#[tokio::test]
async fn tenants_never_share_entries() {
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, CacheConfig::new()).await;
    assert_eq!(
        post(addr, &chat("q", false), "tenant-a").await.headers["x-cache"],
        "MISS"
    );
    assert_eq!(
        post(addr, &chat("q", false), "tenant-b").await.headers["x-cache"],
        "MISS"
    );
    assert_eq!(
        post(addr, &chat("q", false), "tenant-a").await.headers["x-cache"],
        "HIT"
    );
    assert_eq!(mock.request_count(), 2);
}

#[tokio::test]
async fn cache_control_and_the_bypass_header_are_honoured() {
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, CacheConfig::new()).await;
    let req = |cc: Option<(&str, &str)>| {
        let mut b = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json");
        if let Some((k, v)) = cc {
            b = b.header(k, v);
        }
        b.body(http_body_util::Full::new(Bytes::from(
            chat("cc", false).to_string(),
        )))
        .unwrap()
    };
    let r = send(req(Some(("cache-control", "no-store")))).await;
    assert_eq!(r.headers["x-cache"], "MISS");
    assert_eq!(
        send(req(None)).await.headers["x-cache"],
        "MISS",
        "no-store stored nothing"
    );
    assert_eq!(send(req(None)).await.headers["x-cache"], "HIT");
    assert_eq!(
        send(req(Some(("cache-control", "no-cache")))).await.headers["x-cache"],
        "MISS"
    );
    assert_eq!(
        send(req(Some(("x-infergate-cache", "bypass"))))
            .await
            .headers["x-cache"],
        "BYPASS"
    );
    assert_eq!(mock.request_count(), 4);
}

#[tokio::test]
async fn an_aborted_stream_is_not_stored() {
    // Tokens a millisecond apart: the response head is out before the connection is cut.
    let mock = MockProvider::builder()
        .token_delay(Duration::from_millis(1))
        .start()
        .await
        .unwrap();
    let addr = gateway(&mock, CacheConfig::new()).await;
    mock.push_failure(Failure::DisconnectAfter(3));
    let r = post(addr, &chat("cut short", true), "k").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("event: error"), "{}", r.text());
    let again = post(addr, &chat("cut short", true), "k").await;
    assert_eq!(again.headers["x-cache"], "MISS");
    assert_eq!(mock.request_count(), 2);
    // An upstream error is not stored either.
    mock.push_failure(Failure::status(500));
    assert_eq!(post(addr, &chat("fails", false), "k").await.status, 500);
    assert_eq!(
        post(addr, &chat("fails", false), "k").await.headers["x-cache"],
        "MISS"
    );
}

#[tokio::test]
async fn fifty_concurrent_identical_requests_reach_the_upstream_once() {
    let mock = MockProvider::builder()
        .latency(Duration::from_millis(300))
        .start()
        .await
        .unwrap();
    let addr = gateway(&mock, CacheConfig::new()).await;
    let calls = (0..50).map(|i| {
        let body = chat("the same question", i % 2 == 0);
        async move { post(addr, &body, "k").await }
    });
    let replies = futures_util::future::join_all(calls).await;
    let first = content(&replies[1]).0;
    for r in &replies {
        assert_eq!(r.status, 200);
        assert_eq!(content(r).0, first);
    }
    assert_eq!(mock.request_count(), 1);
}

#[tokio::test]
async fn the_semantic_cache_answers_paraphrases_but_never_across_conversations() {
    let mock = MockProvider::start().await.unwrap();
    let cfg =
        CacheConfig::new().semantic(SemanticConfig::new(Arc::new(HashEmbedder::default()), 0.8));
    let addr = gateway(&mock, cfg).await;
    let conv = |topic: &str, last: &str| {
        json!({"model": "gpt-4o-mini", "temperature": 0, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": format!("Tell me about {topic}.")},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": last}]})
    };
    assert_eq!(
        post(addr, &conv("cats", "Tell me more about their history"), "k")
            .await
            .headers["x-cache"],
        "MISS"
    );
    // Same last message, another conversation: no collision.
    assert_eq!(
        post(addr, &conv("dogs", "Tell me more about their history"), "k")
            .await
            .headers["x-cache"],
        "MISS"
    );
    // A paraphrase in the first conversation: a semantic hit, with its score.
    let r = post(
        addr,
        &conv("cats", "tell me more about their history!"),
        "k",
    )
    .await;
    assert_eq!(r.headers["x-cache"], "HIT");
    let score: f32 = r.headers["x-cache-similarity"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((0.8..1.0001).contains(&score), "{score}");
    // Another tenant does not get it.
    assert_eq!(
        post(
            addr,
            &conv("cats", "tell me more about their history!"),
            "other"
        )
        .await
        .headers["x-cache"],
        "MISS"
    );
    // Temperature above 0: not answered semantically by default.
    let mut warm = conv("cats", "tell me more about their history please");
    warm["temperature"] = json!(0.9);
    assert_eq!(post(addr, &warm, "k").await.headers["x-cache"], "MISS");
    assert_eq!(mock.request_count(), 4);
}

#[cfg(feature = "redis")]
mod redis {
    use infergate_cache::RedisStore;
    use infergate_testkit::RedisServer;

    use super::*;

    #[tokio::test]
    async fn redis_down_serves_from_the_upstream_without_errors() {
        let mock = MockProvider::start().await.unwrap();
        // Nothing listens on port 1.
        let store = RedisStore::new("redis://127.0.0.1:1").unwrap();
        let addr = gateway(&mock, CacheConfig::new().store(Arc::new(store))).await;
        for _ in 0..3 {
            let r = post(addr, &chat("q", false), "k").await;
            assert_eq!(r.status, 200);
            assert_eq!(r.headers["x-cache"], "MISS");
        }
        assert_eq!(mock.request_count(), 3);
    }

    #[tokio::test]
    async fn replicas_share_exact_entries_through_redis() {
        if !RedisServer::available() {
            return;
        }
        let redis = RedisServer::start().await;
        let url = redis.url();
        replicas_share(move || RedisStore::new(&url).unwrap()).await;
    }

    #[tokio::test]
    async fn replicas_share_exact_entries_through_a_redis_cluster() {
        if !RedisServer::available() {
            return;
        }
        let cluster = infergate_testkit::RedisCluster::start().await;
        let nodes = cluster.urls();
        replicas_share(move || {
            RedisStore::with_config(
                infergate_redis::RedisConfig::cluster(nodes.clone())
                    .timeout(std::time::Duration::from_secs(2)),
            )
            .unwrap()
        })
        .await;
    }

    async fn replicas_share(store: impl Fn() -> RedisStore) {
        let mock = MockProvider::start().await.unwrap();
        let replica = || {
            CacheConfig::new()
                .store(Arc::new(store()))
                .key_secret("shared-secret")
        };
        let one = gateway(&mock, replica()).await;
        let two = gateway(&mock, replica()).await;
        assert_eq!(
            post(one, &chat("shared", false), "k").await.headers["x-cache"],
            "MISS"
        );
        // The store write is asynchronous: the second replica sees it once it has landed.
        let mut hit = false;
        for _ in 0..100 {
            if post(two, &chat("shared", false), "k").await.headers["x-cache"] == "HIT" {
                hit = true;
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(hit);
    }
}

/// One OpenAI chat chunk event with `text` as its delta.
fn event(text: &str, finish: Option<&str>) -> Bytes {
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}]});
    Bytes::from(format!("data: {chunk}\n\n"))
}

#[tokio::test]
async fn a_streaming_follower_gets_the_leaders_stream_as_it_is_produced() {
    use http_body_util::BodyExt;
    use infergate_testkit::{channel_upstream, read_until};

    // An upstream that serves exactly one request, written by the test as it goes.
    let (upstream, tx) = channel_upstream();
    let addr = serve(CacheLayer::new(CacheConfig::new()).layer(upstream)).await;
    let start = |addr| async move {
        let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("authorization", "Bearer k")
            .body(http_body_util::Full::new(Bytes::from(
                chat("live", true).to_string(),
            )))
            .unwrap();
        infergate_testkit::client().request(req).await.unwrap()
    };
    let leader = start(addr).await;
    assert_eq!(leader.headers()["x-cache"], "MISS");
    let mut leader = leader.into_body();
    tx.send(event("Hello", None)).unwrap();
    read_until(&mut leader, "Hello").await;
    // The follower arrives mid-stream: it gets what was sent so far, then the rest live.
    let follower = start(addr).await;
    assert_eq!(follower.headers()["x-cache"], "HIT");
    let mut follower = follower.into_body();
    let seen = read_until(&mut follower, "Hello").await;
    assert!(!seen.contains("[DONE]"), "the upstream is still streaming");
    tx.send(event(" world", None)).unwrap();
    tx.send(event("", Some("stop"))).unwrap();
    tx.send(Bytes::from_static(b"data: [DONE]\n\n")).unwrap();
    drop(tx);
    let rest_l = leader.collect().await.unwrap().to_bytes();
    let rest_f = follower.collect().await.unwrap().to_bytes();
    assert!(String::from_utf8_lossy(&rest_l).ends_with("data: [DONE]\n\n"));
    let all_f = format!("{seen}{}", String::from_utf8_lossy(&rest_f));
    assert!(
        all_f.contains("\" world\"") && all_f.ends_with("data: [DONE]\n\n"),
        "{all_f}"
    );
    // And the completed stream was stored: a third request is answered from the cache (the
    // upstream would refuse a second request).
    let again = post(addr, &chat("live", false), "k").await;
    assert_eq!(again.headers["x-cache"], "HIT");
    assert_eq!(
        again.json()["choices"][0]["message"]["content"],
        "Hello world"
    );
}

#[tokio::test]
async fn a_stored_entry_of_any_shape_is_replayed_or_treated_as_a_miss_never_a_panic() {
    use infergate_cache::{Answer, Cache, CacheStore, MemoryStore};
    use infergate_core::{ApiKind, Payload};
    let mock = MockProvider::start().await.unwrap();
    let store = Arc::new(MemoryStore::new(1000, 1 << 20));
    // A TTL too long for the clock is stored, not a panic.
    let cfg = CacheConfig::new()
        .store(store.clone())
        .ttl(Duration::MAX)
        .single_flight(None);
    let addr = gateway(&mock, cfg.clone()).await;
    let cache = Cache::new(cfg);
    let garbage: [&[u8]; 7] = [
        b"",
        b"not json",
        b"[1,2,3]",
        b"{\"choices\": 7}",
        b"{\"choices\": [1, null]}",
        b"{\"choices\": []}",
        b"\xff\xfe{",
    ];
    let mut upstream = 0;
    for (i, body) in garbage.iter().enumerate() {
        for stream in [false, true] {
            let req = chat(&format!("garbage {i} {stream}"), stream);
            let mut headers = http::HeaderMap::new();
            headers.insert("authorization", "Bearer sk-g".parse().unwrap());
            let payload =
                Payload::parse(ApiKind::ChatCompletions, req.to_string().as_bytes()).unwrap();
            let key = cache.key_for(&headers, &payload).unwrap();
            let answer = Answer {
                api: ApiKind::ChatCompletions,
                body: Bytes::copy_from_slice(body),
            };
            store.put(key, answer, Duration::MAX).await.unwrap();
            let r = post(addr, &req, "sk-g").await;
            assert_eq!(r.status, 200, "{i} {stream}");
            assert_eq!(r.headers["x-cache"], "MISS", "{i} {stream}");
            upstream += 1;
            assert_eq!(mock.request_count(), upstream);
            // The upstream's answer replaced the bad entry: now a hit.
            let r = post(addr, &req, "sk-g").await;
            assert_eq!(r.headers["x-cache"], "HIT", "{i} {stream}");
            content(&r);
        }
    }
    // An odd but readable entry (tool calls that are not objects) replays as a valid stream.
    let req = chat("odd", true);
    let mut headers = http::HeaderMap::new();
    headers.insert("authorization", "Bearer sk-g".parse().unwrap());
    let payload = Payload::parse(ApiKind::ChatCompletions, req.to_string().as_bytes()).unwrap();
    let key = cache.key_for(&headers, &payload).unwrap();
    let body = br#"{"choices":[{"message":{"content":"hi","tool_calls":[1,"x",{"id":"t"}]},"finish_reason":null}],"usage":5}"#;
    let answer = Answer {
        api: ApiKind::ChatCompletions,
        body: Bytes::from_static(body),
    };
    store
        .put(key, answer, Duration::from_secs(60))
        .await
        .unwrap();
    let r = post(addr, &req, "sk-g").await;
    assert_eq!(r.headers["x-cache"], "HIT");
    assert_eq!(content(&r).0, "hi");
}
