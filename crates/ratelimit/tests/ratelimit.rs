//! The token rate limiter over loopback HTTP: a real hyper server, the mock provider upstream,
//! and a real redis-server for the shared store.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use infergate_client::UpstreamClient;
use infergate_core::FailureMode;
use infergate_mock::{Failure, MockProvider};
use infergate_ratelimit::{
    KeyExtractor, Limits, RateLimitConfig, RedisStore, RedisStoreConfig, SettledBy, Settlement,
    TokenRateLimitLayer, TokenRateLimiter,
};
use infergate_testkit::{RedisServer, Reply, serve};
use serde_json::{Value, json};
use tokio::sync::broadcast;
use tower::Layer;

async fn gateway(config: RateLimitConfig, mock: &MockProvider) -> (SocketAddr, TokenRateLimiter) {
    let layer = TokenRateLimitLayer::new(config);
    let limiter = layer.limiter().clone();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    (serve(layer.layer(upstream)).await, limiter)
}

async fn chat_as(addr: SocketAddr, key: &str, body: Value) -> Reply {
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {key}"))
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    infergate_testkit::send(req).await
}

fn chat(max_tokens: u64, stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "max_tokens": max_tokens, "stream": stream,
           "messages": [{"role": "user", "content": "What is the capital of France?"}]})
}

async fn next_settlement(rx: &mut broadcast::Receiver<Settlement>) -> Settlement {
    rx.recv().await.unwrap()
}

#[tokio::test]
async fn requests_per_minute_and_the_429() {
    let mock = MockProvider::start().await.unwrap();
    let cfg = RateLimitConfig::new(Limits {
        requests_per_minute: Some(3),
        ..Limits::default()
    });
    let (addr, _) = gateway(cfg, &mock).await;
    for left in [2, 1, 0] {
        let r = chat_as(addr, "sk-a", chat(10, false)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-ratelimit-limit-requests"], "3");
        assert_eq!(
            r.headers["x-ratelimit-remaining-requests"],
            left.to_string().as_str()
        );
        assert!(r.headers.contains_key("x-ratelimit-reset-requests"));
    }
    let r = chat_as(addr, "sk-a", chat(10, false)).await;
    assert_eq!(r.status, 429);
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    // The next slot frees in 60 s / 3 = 20 s.
    assert!((1..=20).contains(&retry), "{retry}");
    assert_eq!(r.headers["x-ratelimit-remaining-requests"], "0");
    let v = r.json();
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("requests per minute")
    );
    // Another key has its own bucket; the upstream saw only admitted requests.
    assert_eq!(chat_as(addr, "sk-b", chat(10, false)).await.status, 200);
    assert_eq!(mock.requests().len(), 4);
    // The key is never echoed: the 429 does not contain it.
    assert!(!r.text().contains("sk-a"));
}

#[tokio::test]
async fn tokens_are_reserved_then_reconciled_with_real_usage() {
    let mock = MockProvider::builder()
        .reply("one two three four five")
        .start()
        .await
        .unwrap();
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_minute: Some(1000),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let r = chat_as(addr, "sk-t", chat(400, false)).await;
    assert_eq!(r.status, 200);
    let usage = r.json()["usage"].clone();
    let s = next_settlement(&mut rx).await;
    assert_eq!(s.by, SettledBy::ReportedUsage);
    assert_eq!(s.reserved.output_tokens, 400);
    assert_eq!(
        s.charged.output_tokens,
        usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        s.charged.input_tokens,
        usage["prompt_tokens"].as_u64().unwrap()
    );
    // The header was computed at admission (reservation: prompt + 400 taken).
    let remaining: u64 = r.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining <= 1000 - 400 - s.reserved.input_tokens);
    // After reconciliation the unused reservation is back: a second 400-token request fits,
    // and its header reflects the first request's real usage only.
    let r2 = chat_as(addr, "sk-t", chat(400, false)).await;
    assert_eq!(r2.status, 200);
    let remaining2: u64 = r2.headers["x-ratelimit-remaining-tokens"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let used_first = s.charged.total();
    assert!(
        remaining2 + 2 >= 1000 - used_first - 400 - s.reserved.input_tokens,
        "{remaining2}"
    );
    // A request larger than the whole limit can never be admitted: 429 without Retry-After.
    let r3 = chat_as(addr, "sk-t", chat(5000, false)).await;
    assert_eq!(r3.status, 429);
    assert!(!r3.headers.contains_key("retry-after"));
    assert_eq!(r3.json()["error"]["code"], "request_too_large_for_limit");
}

#[tokio::test]
async fn hostile_max_tokens_and_n_are_refused_as_too_large_never_wrapped() {
    hostile_numbers(hostile_config()).await;
}

#[tokio::test]
async fn hostile_max_tokens_and_n_through_redis() {
    if !RedisServer::available() {
        return;
    }
    let redis = RedisServer::start().await;
    let mut c = RedisStoreConfig::new(redis.url());
    // Generous: this test is about the script's arithmetic, not about timeouts.
    c.timeout = Duration::from_secs(5);
    let store = Arc::new(RedisStore::new(c).unwrap());
    hostile_numbers(
        hostile_config()
            .store(store)
            .failure_mode(FailureMode::FailClosed),
    )
    .await;
}

fn hostile_config() -> RateLimitConfig {
    RateLimitConfig::new(Limits {
        requests_per_minute: Some(1000),
        tokens_per_minute: Some(10_000),
        output_tokens_per_minute: Some(5_000),
        tokens_per_day: Some(100_000),
        ..Limits::default()
    })
}

async fn hostile_numbers(cfg: RateLimitConfig) {
    let mock = MockProvider::start().await.unwrap();
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let msgs = json!([{"role": "user", "content": "hi"}]);
    let hostile = [
        json!({"model": "gpt-4o", "messages": msgs, "max_tokens": u64::MAX}),
        json!({"model": "gpt-4o", "messages": msgs, "max_completion_tokens": u64::MAX - 1}),
        json!({"model": "gpt-4o", "messages": msgs, "max_tokens": i64::MAX}),
        json!({"model": "gpt-4o", "messages": msgs, "max_tokens": 1000, "n": u64::MAX}),
        json!({"model": "gpt-4o", "messages": msgs, "max_tokens": u64::MAX, "n": u64::MAX}),
        // Each of 8 choices may take 1000 tokens: 8000 output tokens, above 5000.
        json!({"model": "gpt-4o", "messages": msgs, "max_tokens": 1000, "n": 8}),
    ];
    for body in hostile {
        let r = chat_as(addr, "sk-h", body.clone()).await;
        assert_eq!(r.status, 429, "{body}");
        assert_eq!(
            r.json()["error"]["code"],
            "request_too_large_for_limit",
            "{body}"
        );
    }
    assert_eq!(mock.request_count(), 0, "nothing reached the upstream");
    // Odd but harmless values pass; n multiplies the output reservation.
    for (n, reserved) in [
        (json!(2), 200),
        (json!(0), 100),
        (json!(-3), 100),
        (json!(1.5), 100),
    ] {
        let body = json!({"model": "gpt-4o", "messages": msgs, "max_tokens": 100, "n": n});
        let r = chat_as(addr, "sk-h", body).await;
        assert_ne!(r.status, 429, "n = {n}");
        let s = next_settlement(&mut rx).await;
        assert_eq!(s.reserved.output_tokens, reserved, "n = {n}");
    }
    // The buckets were never charged by the refused requests.
    let r = chat_as(addr, "sk-h", chat(4000, false)).await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn stream_usage_is_asked_for_upstream_and_hidden_from_the_client() {
    let mock = MockProvider::start().await.unwrap();
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_minute: Some(100_000),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let r = chat_as(addr, "sk-s", chat(100, true)).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(text.ends_with("data: [DONE]\n\n"));
    assert!(
        !text.contains("usage"),
        "the client never sees usage: {text}"
    );
    let sent = mock.requests()[0].json().unwrap();
    assert_eq!(sent["stream_options"]["include_usage"], true);
    let s = next_settlement(&mut rx).await;
    assert_eq!(s.by, SettledBy::ReportedUsage);
    assert_eq!(s.charged.output_tokens, 10, "the mock's reply has 10 words");

    // A client that asked for usage gets it, unchanged.
    let mut body = chat(100, true);
    body["stream_options"] = json!({"include_usage": true});
    let r = chat_as(addr, "sk-s", body).await;
    let text = r.text();
    assert!(text.contains("\"choices\":[],") && text.contains("\"completion_tokens\":10"));
    assert_eq!(next_settlement(&mut rx).await.by, SettledBy::ReportedUsage);
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_pays_for_what_was_streamed() {
    let mock = MockProvider::builder()
        .reply("a b c d e f g h i j k l m n o p q r s t")
        .token_delay(Duration::from_millis(15))
        .start()
        .await
        .unwrap();
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_minute: Some(100_000),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-d")
        .body(http_body_util::Full::new(Bytes::from(
            chat(500, true).to_string(),
        )))
        .unwrap();
    let resp = infergate_testkit::client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let mut received = String::new();
    while received.matches("\"content\":\"").count() < 5 {
        let f = body.frame().await.unwrap().unwrap();
        received.push_str(std::str::from_utf8(&f.into_data().unwrap()).unwrap());
    }
    drop(body);
    let s = next_settlement(&mut rx).await;
    assert_eq!(s.by, SettledBy::Estimate);
    // At least what the client received (4 content deltas after the empty role chunk), less
    // than the whole answer (20), far less than the 500 reserved.
    assert!(
        (4..20).contains(&s.charged.output_tokens),
        "{:?}",
        s.charged
    );
    assert_eq!(s.charged.input_tokens, s.reserved.input_tokens);
}

#[tokio::test]
async fn anthropic_stream_usage_counts() {
    let mock = MockProvider::start().await.unwrap();
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_minute: Some(100_000),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let req = http::Request::post(format!("http://{addr}/v1/messages"))
        .header("content-type", "application/json")
        .header("x-api-key", "sk-ant")
        .body(http_body_util::Full::new(Bytes::from(
            json!({"model": "claude-x", "max_tokens": 300, "stream": true,
                   "messages": [{"role": "user", "content": "Hello there"}]})
            .to_string(),
        )))
        .unwrap();
    let r = infergate_testkit::send(req).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("message_stop"));
    let s = next_settlement(&mut rx).await;
    assert_eq!(s.by, SettledBy::ReportedUsage);
    assert_eq!(s.charged.output_tokens, 10);
    assert!(s.charged.input_tokens > 0);
}

#[tokio::test]
async fn an_upstream_error_refunds_the_tokens() {
    let mock = MockProvider::start().await.unwrap();
    mock.push_failure(Failure::status(503));
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_minute: Some(1000),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    let r = chat_as(addr, "sk-e", chat(900, false)).await;
    assert_eq!(r.status, 503);
    let s = next_settlement(&mut rx).await;
    assert_eq!(s.by, SettledBy::Refund);
    assert_eq!(s.charged.total(), 0);
    // The refunded 900 are available again.
    assert_eq!(chat_as(addr, "sk-e", chat(900, false)).await.status, 200);
}

#[tokio::test]
async fn per_key_overrides_and_per_model_limits() {
    let mock = MockProvider::start().await.unwrap();
    let tenant = http::HeaderName::from_static("x-tenant-id");
    let cfg = RateLimitConfig::new(Limits {
        requests_per_minute: Some(1),
        ..Limits::default()
    })
    .key(KeyExtractor::header(tenant))
    .override_key(
        &["big"],
        Limits {
            requests_per_minute: Some(100),
            ..Limits::default()
        },
    )
    .model(
        "gpt-4o",
        Limits {
            requests_per_minute: Some(2),
            ..Limits::default()
        },
    );
    let (addr, _) = gateway(cfg, &mock).await;
    let send = |tenant: &'static str, model: &'static str| async move {
        let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-tenant-id", tenant)
            .body(http_body_util::Full::new(Bytes::from(
                json!({"model": model, "messages": [{"role": "user", "content": "x"}]}).to_string(),
            )))
            .unwrap();
        infergate_testkit::send(req).await.status.as_u16()
    };
    assert_eq!(send("small", "gpt-4o-mini").await, 200);
    assert_eq!(send("small", "gpt-4o-mini").await, 429);
    for _ in 0..2 {
        assert_eq!(send("big", "gpt-4o").await, 200);
    }
    // The model's own bucket (2/min for this key) now denies, though the key has room.
    assert_eq!(send("big", "gpt-4o").await, 429);
    assert_eq!(send("big", "gpt-4o-mini").await, 200);
}

const LIMIT: u64 = 3000;

/// 64 concurrent clients on one key; every admitted request's real usage is summed. Admitted
/// tokens never exceed the limit, plus what refilled during the test, plus one reservation.
async fn hammer(addrs: &[SocketAddr], limiter_rx: Vec<broadcast::Receiver<Settlement>>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let addr = addrs[i % addrs.len()];
        tasks.push(tokio::spawn(async move {
            let mut admitted = 0u64;
            for _ in 0..5 {
                let r = chat_as(addr, "sk-shared", chat(40, i % 2 == 0)).await;
                match r.status.as_u16() {
                    200 => admitted += 1,
                    429 => {}
                    s => panic!("unexpected status {s}: {}", r.text()),
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        admitted += t.await.unwrap();
    }
    let elapsed = started.elapsed();
    // Every admitted request is settled (through Redis, asynchronously): wait for each one.
    let (tx, mut all) = tokio::sync::mpsc::unbounded_channel();
    for mut rx in limiter_rx {
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Ok(s) = rx.recv().await {
                if tx.send(s).is_err() {
                    break;
                }
            }
        });
    }
    let mut charged = 0u64;
    let mut max_reservation = 0u64;
    let mut settled = 0u64;
    while settled < admitted {
        let s = tokio::time::timeout(Duration::from_secs(10), all.recv())
            .await
            .expect("every admitted request is settled")
            .unwrap();
        charged += s.charged.total();
        max_reservation = max_reservation.max(s.reserved.total());
        settled += 1;
    }
    let refill = (LIMIT as f64 * elapsed.as_secs_f64() / 60.0).ceil() as u64;
    eprintln!(
        "admitted {admitted} of 320, charged {charged} tokens (limit {LIMIT}, refill {refill}, max reservation {max_reservation})"
    );
    assert!(admitted > 0 && admitted < 320, "admitted {admitted}");
    assert!(
        charged <= LIMIT + refill + max_reservation,
        "charged {charged} > {LIMIT} + {refill} + {max_reservation}"
    );
}

fn hammer_config() -> RateLimitConfig {
    RateLimitConfig::new(Limits {
        tokens_per_minute: Some(LIMIT),
        ..Limits::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_in_memory_never_exceeds_the_limit() {
    let mock = MockProvider::builder().record(false).start().await.unwrap();
    let (addr, limiter) = gateway(hammer_config(), &mock).await;
    hammer(&[addr], vec![limiter.subscribe()]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_across_three_instances_sharing_a_redis_cluster() {
    if !RedisServer::available() {
        return;
    }
    let cluster = infergate_testkit::RedisCluster::start().await;
    // Fail closed: a CROSSSLOT or any cluster error would be a 503, never a local count.
    three_instances(|| RedisStoreConfig::cluster(cluster.urls())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_across_three_instances_sharing_redis() {
    if !RedisServer::available() {
        return;
    }
    let redis = RedisServer::start().await;
    three_instances(|| RedisStoreConfig::new(redis.url())).await;
}

/// Three gateways on one shared store, hammered together.
async fn three_instances(store: impl Fn() -> RedisStoreConfig) {
    let mock = MockProvider::builder().record(false).start().await.unwrap();
    let mut addrs = Vec::new();
    let mut rxs = Vec::new();
    for _ in 0..3 {
        let mut c = store();
        // FailClosed answers 503 past the timeout: generous, so that a loaded machine (other
        // builds) does not turn this test about counting into one about latency.
        c.timeout = Duration::from_secs(5);
        let store = Arc::new(RedisStore::new(c).unwrap());
        let cfg = hammer_config()
            .store(store)
            .failure_mode(FailureMode::FailClosed);
        let (addr, limiter) = gateway(cfg, &mock).await;
        addrs.push(addr);
        rxs.push(limiter.subscribe());
    }
    hammer(&addrs, rxs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_follows_the_failure_mode_and_recovers() {
    if !RedisServer::available() {
        return;
    }
    let mut redis = RedisServer::start().await;
    let mock = MockProvider::start().await.unwrap();
    let url = redis.url();
    let config = |mode| {
        let mut c = RedisStoreConfig::new(url.clone());
        c.reconnect_every = Duration::ZERO;
        RateLimitConfig::new(Limits {
            requests_per_minute: Some(1000),
            tokens_per_minute: Some(100_000),
            ..Limits::default()
        })
        .store(Arc::new(RedisStore::new(c).unwrap()))
        .failure_mode(mode)
    };
    let (open, _) = gateway(config(FailureMode::FailOpen), &mock).await;
    let (closed, _) = gateway(config(FailureMode::FailClosed), &mock).await;
    assert_eq!(chat_as(open, "k", chat(10, false)).await.status, 200);
    assert_eq!(chat_as(closed, "k", chat(10, false)).await.status, 200);

    redis.kill().await;
    for _ in 0..3 {
        let r = chat_as(open, "k", chat(10, false)).await;
        assert_eq!(r.status, 200, "FailOpen serves on the local limiter");
        assert!(r.headers.contains_key("x-ratelimit-remaining-tokens"));
        let r = chat_as(closed, "k", chat(10, false)).await;
        assert_eq!(r.status, 503, "FailClosed refuses");
        assert_eq!(r.json()["error"]["code"], "rate_limit_unavailable");
    }
    redis.restart().await;
    // The connection manager reconnects on use: within a few requests both are back on Redis.
    let mut recovered = false;
    for _ in 0..20 {
        if chat_as(closed, "k", chat(10, false)).await.status == 200 {
            recovered = true;
            break;
        }
    }
    assert!(recovered, "FailClosed recovers when Redis returns");
    assert_eq!(chat_as(open, "k", chat(10, false)).await.status, 200);
}

#[tokio::test]
async fn a_daily_quota_runs_out_until_utc_midnight() {
    let mock = MockProvider::start().await.unwrap();
    let cfg = RateLimitConfig::new(Limits {
        tokens_per_day: Some(300),
        ..Limits::default()
    });
    let (addr, limiter) = gateway(cfg, &mock).await;
    let mut rx = limiter.subscribe();
    // Each request reserves its prompt + 100; the real usage (~25) is what stays charged.
    let mut admitted = 0;
    loop {
        let r = chat_as(addr, "sk-day", chat(100, false)).await;
        if r.status == 429 {
            let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=86_400).contains(&retry), "{retry}");
            assert!(
                r.json()["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("tokens per day")
            );
            break;
        }
        assert_eq!(r.status, 200);
        next_settlement(&mut rx).await;
        admitted += 1;
        assert!(admitted < 50, "the quota never ran out");
    }
    // ~25 tokens per request against 300 per day: reconciliation let about 8 through, not 2.
    assert!(admitted >= 6, "{admitted}");
}

#[tokio::test]
async fn an_unreadable_answer_keeps_the_reservation_charged() {
    use std::convert::Infallible;
    // An upstream whose 200 answers are not what they claim to be.
    let bodies = ["not json at all", r#"{"usage": {"prompt_tokens": "many"}}"#];
    for body in bodies {
        let svc = tower::service_fn(
            move |_req: http::Request<hyper::body::Incoming>| async move {
                let mut r = http::Response::new(http_body_util::Full::new(Bytes::from(body)));
                r.headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                Ok::<_, Infallible>(r)
            },
        );
        let upstream_addr = serve(svc).await;
        let cfg = RateLimitConfig::new(Limits {
            tokens_per_minute: Some(10_000),
            ..Limits::default()
        });
        let layer = TokenRateLimitLayer::new(cfg);
        let limiter = layer.limiter().clone();
        let upstream = UpstreamClient::new(&format!("http://{upstream_addr}"))
            .unwrap()
            .into_proxy();
        let addr = serve(layer.layer(upstream)).await;
        let mut rx = limiter.subscribe();
        let r = chat_as(addr, "sk-u", chat(300, false)).await;
        assert_eq!(r.status, 200);
        let s = next_settlement(&mut rx).await;
        assert_eq!(s.by, SettledBy::Reservation, "{body}");
        assert_eq!(s.charged, s.reserved);
        assert_eq!(s.reserved.output_tokens, 300);
    }
}
