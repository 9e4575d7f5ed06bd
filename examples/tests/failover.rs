//! Failover through the example gateway: the sample config's failing mock, and a seeded chaos
//! run over three backends.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate::mock::{Failure, MockProvider};
use infergate_examples::config::Config;
use infergate_examples::gateway;
use serde_json::{Value, json};

async fn start(config: &Config) -> (SocketAddr, gateway::Gateway) {
    gateway::spawn_local(config).await.unwrap()
}

#[tokio::test]
async fn the_sample_config_fails_over_from_the_failing_mock() {
    let cfg = Config::parse(include_str!("../gateway/infergate.toml")).unwrap();
    let (addr, gw) = start(&cfg).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    // No router rule matches this model: the chat route's failover group serves it.
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me about the weather on mars"}]});
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        // The sample config's identity section is on: its documented demo key.
        .header(
            "authorization",
            "Bearer igk_demo_0000000000000000000000000000",
        )
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-infergate-backend"], "steady");
    assert_eq!(resp.headers()["x-infergate-attempts"], "2");
    let v: Value =
        serde_json::from_slice(&resp.into_body().collect().await.unwrap().to_bytes()).unwrap();
    // steady knows gpt-4o by another name.
    assert_eq!(v["model"], "gpt-4o-2024-08-06");
    let status = gw.failover["chat"].status();
    assert_eq!(status[0].name, "flaky");
    assert_eq!(status[0].consecutive_failures, 1);
}

#[test]
fn a_failover_group_must_name_known_backends() {
    let e = Config::parse(
        "[backends.a]\nurl = \"mock\"\n[failover.g]\nmembers = [{ backend = \"nope\" }]\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("member 'nope'"), "{e}");
    let e = Config::parse(
        "[backends.a]\nurl = \"mock\"\n[failover.g]\nmembers = [{ backend = \"a\" }]\nselection = \"random\"\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("selection"), "{e}");
}

/// A small seeded generator (splitmix64), so that a failing run can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A failure that happens before any byte of the answer could reach the client.
fn random_failure(rng: &mut Rng) -> Failure {
    match rng.below(8) {
        0 => Failure::status(500),
        1 => Failure::status(502),
        2 => Failure::status(503),
        3 => Failure::status(503).retry_after("1"),
        4 => Failure::status(429),
        5 => Failure::status(429).retry_after("1"),
        6 => Failure::Reset,
        _ => Failure::DisconnectAfter(0),
    }
}

/// Three backends fail at random — always, intermittently, or not at all, changing every
/// batch of requests — while at least one of them is healthy. Every one of 10,000 requests
/// (half of them streamed) must succeed, and no request may reach a backend after one had
/// started answering it: per request, exactly one upstream attempt was not a failure, the
/// one that answered, and the attempts the mocks saw are the attempts the gateway reports.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_every_request_succeeds_while_one_backend_is_healthy() {
    let seed = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x1d_ea5e_u64);
    let mut rng = Rng(seed);
    let mocks = [
        MockProvider::start().await.unwrap(),
        MockProvider::start().await.unwrap(),
        MockProvider::start().await.unwrap(),
    ];
    let cfg = Config::parse(&format!(
        r#"
[backends.a]
url = "{}"
[backends.b]
url = "{}"
[backends.c]
url = "{}"
[failover.pool]
members = [{{ backend = "a" }}, {{ backend = "b" }}, {{ backend = "c", weight = 2 }}]
when_all_resting = "try_soonest"
retry_budget_percent = 0
cooldown_ms = 100
consecutive_failures = 3
ejection_ms = 50
max_ejection_ms = 400
[routes]
chat = "pool"
"#,
        mocks[0].url(),
        mocks[1].url(),
        mocks[2].url()
    ))
    .unwrap();
    let (addr, _gw) = start(&cfg).await;
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();

    const REQUESTS: usize = 10_000;
    const BATCH: usize = 100;
    const CONCURRENCY: usize = 16;
    let mut answered_by: HashMap<String, (String, usize)> = HashMap::new();
    for batch in 0..REQUESTS / BATCH {
        // This batch's weather: one backend healthy, the others each healthy, always failing
        // or failing on a random share of requests.
        let healthy = rng.below(3) as usize;
        for (i, m) in mocks.iter().enumerate() {
            m.clear_failures();
            m.set_always_fail(None);
            if i == healthy {
                continue;
            }
            match rng.below(3) {
                0 => {}
                1 => m.set_always_fail(Some(random_failure(&mut rng))),
                _ => {
                    for _ in 0..rng.below(BATCH as u64) {
                        m.push_failure(random_failure(&mut rng));
                    }
                }
            }
        }
        let ids = Arc::new(std::sync::Mutex::new(
            (0..BATCH).map(|k| batch * BATCH + k).collect::<Vec<_>>(),
        ));
        let mut workers = Vec::new();
        for _ in 0..CONCURRENCY {
            let ids = ids.clone();
            let client = client.clone();
            workers.push(tokio::spawn(async move {
                let mut seen = Vec::new();
                loop {
                    let Some(id) = ids.lock().unwrap().pop() else {
                        return seen;
                    };
                    let stream = id % 2 == 0;
                    let body = json!({"model": "m", "stream": stream,
                        "messages": [{"role": "user", "content": format!("request {id}")}]});
                    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
                        .header("content-type", "application/json")
                        .header("x-chaos-id", id.to_string())
                        .body(Full::new(Bytes::from(body.to_string())))
                        .unwrap();
                    let resp = client.request(req).await.unwrap();
                    let status = resp.status();
                    let backend = resp.headers()["x-infergate-backend"]
                        .to_str()
                        .unwrap()
                        .to_owned();
                    let attempts: usize = resp.headers()["x-infergate-attempts"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .unwrap();
                    let body = resp.into_body().collect().await.unwrap().to_bytes();
                    let text = String::from_utf8_lossy(&body);
                    assert_eq!(status, 200, "request {id} (seed {seed}): {text}");
                    if stream {
                        assert!(
                            text.trim_end().ends_with("data: [DONE]")
                                && !text.contains("event: error"),
                            "request {id} (seed {seed}): {text}"
                        );
                    } else {
                        let v: Value = serde_json::from_str(&text).unwrap();
                        assert_eq!(v["object"], "chat.completion", "request {id}");
                    }
                    seen.push((id.to_string(), backend, attempts));
                }
            }));
        }
        for w in workers {
            for (id, backend, attempts) in w.await.unwrap() {
                answered_by.insert(id, (backend, attempts));
            }
        }
    }
    assert_eq!(answered_by.len(), REQUESTS);

    // What the backends saw, per request.
    let names = ["a", "b", "c"];
    let mut sent: HashMap<String, Vec<(&str, Option<Failure>)>> = HashMap::new();
    for (m, name) in mocks.iter().zip(names) {
        for r in m.requests() {
            let id = r.headers["x-chaos-id"].to_str().unwrap().to_owned();
            sent.entry(id).or_default().push((name, r.failure.clone()));
        }
    }
    let mut retried = 0;
    for (id, (backend, attempts)) in &answered_by {
        let seen = &sent[id];
        assert_eq!(seen.len(), *attempts, "request {id}: {seen:?}");
        let answers: Vec<_> = seen.iter().filter(|(_, f)| f.is_none()).collect();
        assert_eq!(
            answers.len(),
            1,
            "request {id} was answered more than once upstream: {seen:?}"
        );
        assert_eq!(answers[0].0, backend, "request {id}: {seen:?}");
        if *attempts > 1 {
            retried += 1;
        }
    }
    // The chaos was real: a good share of requests needed another backend.
    assert!(
        retried > REQUESTS / 20,
        "only {retried} requests were retried"
    );
    eprintln!("chaos (seed {seed}): {REQUESTS} requests, {retried} failed over");
}
