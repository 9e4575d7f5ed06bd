//! Failover over loopback HTTP between mock providers with injected failures.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::time::Duration;

use http_body_util::BodyExt;
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_failover::{
    Backend, Backoff, FailoverLayer, FailoverPolicy, HealthPolicy, Selection, WhenAllResting,
};
use infergate_mock::{Failure, MockProvider};
use infergate_testkit::{post_json, read_until, send, serve};
use serde_json::json;
use tower::Layer;

fn chat() -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn backend(name: &str, url: &str, tier: u32) -> Backend {
    Backend::new(name, UpstreamClient::new(url).unwrap().into_proxy()).tier(tier)
}

async fn gateway(backends: Vec<Backend>) -> std::net::SocketAddr {
    gateway_with(FailoverPolicy::default(), backends).await
}

async fn gateway_with(policy: FailoverPolicy, backends: Vec<Backend>) -> std::net::SocketAddr {
    // The pipeline buffers the request body, which failover replays.
    let svc = FailoverLayer::new(policy).service_over(backends);
    serve(PipelineLayer::new(Pipeline::default()).layer(svc)).await
}

fn stream_chat() -> serde_json::Value {
    json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
}

async fn two() -> (MockProvider, MockProvider) {
    (
        MockProvider::start().await.unwrap(),
        MockProvider::start().await.unwrap(),
    )
}

/// A mock whose streams send a token every `delay`.
async fn slow_mock(delay: Duration) -> MockProvider {
    MockProvider::builder()
        .token_delay(delay)
        .start()
        .await
        .unwrap()
}

/// Sends a streamed chat request and returns the response as soon as its head arrives.
async fn open_stream(addr: std::net::SocketAddr) -> http::Response<hyper::body::Incoming> {
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            stream_chat().to_string(),
        )))
        .unwrap();
    infergate_testkit::client().request(req).await.unwrap()
}

/// Two mocks, `a` in tier 0 and `b` in tier 1, behind a gateway with the default policy.
async fn primary_and_secondary() -> (MockProvider, MockProvider, std::net::SocketAddr) {
    let (a, b) = two().await;
    let addr = gateway(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]).await;
    (a, b, addr)
}

#[tokio::test]
async fn a_500_fails_over_to_the_next_tier_with_the_same_body() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]).await;
    a.push_failure(Failure::status(500));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "2");
    assert_eq!(
        b.requests()[0].json().unwrap(),
        chat(),
        "the body was replayed"
    );
    assert_eq!(b.requests()[0].headers["x-infergate-hops"], "1");
}

#[tokio::test]
async fn retry_after_puts_a_backend_in_cooldown() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]).await;
    a.push_failure(Failure::status(429).retry_after("120"));
    assert_eq!(
        post_json(addr, "/v1/chat/completions", &chat())
            .await
            .headers["x-infergate-backend"],
        "b"
    );
    // While a rests, requests go straight to b.
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "1");
    assert_eq!(a.request_count(), 1);
}

#[tokio::test]
async fn a_hostile_retry_after_rests_no_longer_than_the_longest_ejection() {
    for value in [
        "18446744073709551615",
        "99999999999999999999999",
        "Fri, 31 Dec 9999 23:59:59 GMT",
    ] {
        let a = MockProvider::start().await.unwrap();
        let b = MockProvider::start().await.unwrap();
        let policy = FailoverPolicy::default().health(HealthPolicy {
            max_ejection: Duration::from_secs(40),
            ..HealthPolicy::default()
        });
        let addr = gateway_with(
            policy,
            vec![backend("a", &a.url(), 0), backend("b", &b.url(), 0)],
        )
        .await;
        a.push_failure(Failure::status(503).retry_after(value));
        b.push_failure(Failure::status(503).retry_after(value));
        let r = post_json(addr, "/v1/chat/completions", &chat()).await;
        assert_eq!(r.status, 503, "{value}");
        // Both rest, for at most the longest ejection; the gateway did not panic.
        let r = post_json(addr, "/v1/chat/completions", &chat()).await;
        assert_eq!(r.json()["error"]["code"], "no_backend_available");
        let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=41).contains(&retry), "{value}: retry-after {retry}");
    }
}

#[tokio::test]
async fn a_refused_connection_fails_over() {
    let b = MockProvider::start().await.unwrap();
    // Nothing listens on port 1.
    let addr = gateway(vec![
        backend("down", "http://127.0.0.1:1", 0),
        backend("b", &b.url(), 1),
    ])
    .await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
}

#[tokio::test]
async fn when_every_backend_fails_the_last_failure_is_returned() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]).await;
    a.push_failure(Failure::status(503).retry_after("60"));
    b.push_failure(Failure::status(503).retry_after("30"));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["x-infergate-attempts"], "2");
    assert_eq!(r.headers["x-infergate-backend"], "b");
    // Both rest now: fail fast, saying when to come back (b's rest ends first).
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "no_backend_available");
    let retry: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((29..=31).contains(&retry), "retry-after {retry}");
    assert_eq!(a.request_count() + b.request_count(), 2);
}

#[tokio::test]
async fn a_forwarding_loop_is_refused() {
    let a = MockProvider::start().await.unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0)]).await;
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-infergate-hops", "3")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            chat().to_string(),
        )))
        .unwrap();
    let r = send(req).await;
    assert_eq!(r.status, 508);
    assert_eq!(a.request_count(), 0);
}

#[tokio::test]
async fn backends_of_a_tier_share_the_load_by_weight() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    let addr = gateway(vec![
        backend("a", &a.url(), 0).weight(1),
        backend("b", &b.url(), 0).weight(3),
    ])
    .await;
    for _ in 0..40 {
        assert_eq!(
            post_json(addr, "/v1/chat/completions", &chat())
                .await
                .status,
            200
        );
    }
    assert_eq!((a.request_count(), b.request_count()), (10, 30));
}

#[tokio::test]
async fn a_backend_that_does_not_answer_in_time_fails_over() {
    let a = MockProvider::start().await.unwrap();
    let b = MockProvider::start().await.unwrap();
    a.push_failure(Failure::Hang);
    let policy = FailoverPolicy::default().attempt_timeout(std::time::Duration::from_millis(300));
    let svc = FailoverLayer::new(policy)
        .service_over(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]);
    let addr = serve(PipelineLayer::new(Pipeline::default()).layer(svc)).await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "2");
}

#[tokio::test]
async fn the_retry_budget_caps_upstream_attempts_in_a_full_outage() {
    let mocks = [
        MockProvider::start().await.unwrap(),
        MockProvider::start().await.unwrap(),
        MockProvider::start().await.unwrap(),
    ];
    for m in &mocks {
        m.set_always_fail(Some(Failure::status(500)));
    }
    // No cooldown or ejection, so that only the budget limits retries: at most 20 % of the requests of the
    // last 10 s, plus 1 a second over those 10 s.
    let policy = FailoverPolicy::default()
        .default_cooldown(std::time::Duration::ZERO)
        .health(HealthPolicy::disabled())
        .retry_budget(Some((std::time::Duration::from_secs(10), 1, 0.2)));
    let svc = FailoverLayer::new(policy).service_over(
        mocks
            .iter()
            .enumerate()
            .map(|(i, m)| backend(&format!("m{i}"), &m.url(), 0))
            .collect(),
    );
    let addr = serve(PipelineLayer::new(Pipeline::default()).layer(svc)).await;
    let n = 200;
    for _ in 0..n {
        assert_eq!(
            post_json(addr, "/v1/chat/completions", &chat())
                .await
                .status,
            500
        );
    }
    let attempts: u64 = mocks.iter().map(MockProvider::request_count).sum();
    // Without a budget: 3 attempts each, 600. With it: 200 + at most 20 % + 10.
    assert!(
        attempts <= 200 + 40 + 10 + 1,
        "{attempts} attempts for {n} requests"
    );
    assert!(attempts > 200, "some retries were allowed: {attempts}");
}

#[tokio::test]
async fn a_503_without_retry_after_fails_over_but_does_not_rest_the_backend() {
    let (a, _b, addr) = primary_and_secondary().await;
    a.push_failure(Failure::status(503));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(
        (
            r.status.as_u16(),
            r.headers["x-infergate-backend"].to_str().unwrap()
        ),
        (200, "b")
    );
    // One failure is not an ejection: the next request goes to a again.
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "a");
    assert_eq!(a.request_count(), 2);
}

#[tokio::test]
async fn a_429_without_retry_after_rests_the_backend_for_the_default_cooldown() {
    let (a, _b, addr) = primary_and_secondary().await;
    // Vertex sends no Retry-After.
    a.push_failure(Failure::status(429));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "b");
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "1");
    assert_eq!(a.request_count(), 1);
}

#[tokio::test]
async fn a_reset_connection_fails_over() {
    let (a, _b, addr) = primary_and_secondary().await;
    a.push_failure(Failure::Reset);
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "2");
}

#[tokio::test]
async fn a_stream_that_breaks_before_its_first_byte_fails_over() {
    let (a, _b, addr) = primary_and_secondary().await;
    a.push_failure(Failure::DisconnectAfter(0));
    let r = post_json(addr, "/v1/chat/completions", &stream_chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    let text = r.text();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(!text.contains("event: error"), "{text}");
}

#[tokio::test]
async fn a_plain_answer_cut_half_way_fails_over_as_nothing_was_sent() {
    let (a, _b, addr) = primary_and_secondary().await;
    a.push_failure(Failure::DisconnectAfter(1));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.json()["object"], "chat.completion");
}

#[tokio::test]
async fn a_stream_that_breaks_mid_way_is_not_retried_and_ends_with_an_error_event() {
    // Chunks spaced out, so that the reset does not overtake them in the kernel (a reset
    // discards data not yet read — which would rightly count as "before the first byte").
    let a = slow_mock(Duration::from_millis(20)).await;
    let b = MockProvider::start().await.unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]).await;
    a.push_failure(Failure::DisconnectAfter(2));
    let r = post_json(addr, "/v1/chat/completions", &stream_chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "a");
    assert_eq!(r.headers["x-infergate-attempts"], "1");
    let text = r.text();
    assert!(text.contains("chat.completion.chunk"), "{text}");
    assert!(text.contains("event: error"), "{text}");
    assert!(!text.contains("[DONE]"), "{text}");
    assert_eq!(
        b.request_count(),
        0,
        "nothing is sent twice once a byte went out"
    );
}

#[tokio::test]
async fn the_first_frame_is_passed_on_as_soon_as_it_arrives() {
    // A slow stream: its first chunk reaches the client while the rest is still coming.
    let a = slow_mock(Duration::from_secs(30)).await;
    let addr = gateway(vec![backend("a", &a.url(), 0)]).await;
    let resp = open_stream(addr).await;
    assert_eq!(resp.headers()["x-infergate-backend"], "a");
    let mut body = resp.into_body();
    read_until(&mut body, "chat.completion.chunk").await;
}

#[tokio::test]
async fn a_refused_connection_is_answered_when_the_policy_does_not_retry_it() {
    let b = MockProvider::start().await.unwrap();
    let addr = gateway_with(
        FailoverPolicy::default().retry_on_connect_error(false),
        vec![
            backend("down", "http://127.0.0.1:1", 0),
            backend("b", &b.url(), 1),
        ],
    )
    .await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.headers["x-infergate-backend"], "down");
    assert_eq!(b.request_count(), 0);
}

#[tokio::test]
async fn the_deadline_bounds_every_attempt_together() {
    let (a, b) = two().await;
    a.set_always_fail(Some(Failure::Hang));
    b.set_always_fail(Some(Failure::Hang));
    let addr = gateway_with(
        FailoverPolicy::default().deadline(Duration::from_millis(300)),
        vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)],
    )
    .await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "deadline_exceeded");
}

#[tokio::test]
async fn when_all_rest_the_soonest_is_tried_if_the_policy_says_so() {
    let (a, b) = two().await;
    let addr = gateway_with(
        FailoverPolicy::default().when_all_resting(WhenAllResting::TrySoonest),
        vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)],
    )
    .await;
    a.push_failure(Failure::status(429).retry_after("60"));
    b.push_failure(Failure::status(429).retry_after("30"));
    assert_eq!(
        post_json(addr, "/v1/chat/completions", &chat())
            .await
            .status,
        429
    );
    // Both rest; b comes back first, so it is tried first.
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(r.headers["x-infergate-attempts"], "1");
}

#[tokio::test]
async fn each_backend_gets_its_own_model_name() {
    let (a, b) = two().await;
    let addr = gateway(vec![
        backend("a", &a.url(), 0),
        backend("b", &b.url(), 1).map_model("m", "b-model"),
    ])
    .await;
    a.push_failure(Failure::status(500));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(a.requests()[0].json().unwrap()["model"], "m");
    let sent = b.requests()[0].json().unwrap();
    assert_eq!(sent["model"], "b-model");
    assert_eq!(sent["messages"], chat()["messages"]);
    assert_eq!(b.requests()[0].headers["x-gateway-model-name"], "b-model");
}

#[tokio::test]
async fn one_backend_is_retried_after_a_backoff() {
    let a = MockProvider::start().await.unwrap();
    let addr = gateway_with(
        FailoverPolicy::default().backoff(Backoff {
            base: Duration::from_millis(5),
            max: Duration::from_millis(20),
        }),
        vec![backend("a", &a.url(), 0)],
    )
    .await;
    a.push_failure(Failure::status(502));
    a.push_failure(Failure::status(500));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-attempts"], "3");
    assert_eq!(a.request_count(), 3);
}

#[tokio::test]
async fn least_outstanding_sends_new_requests_away_from_a_busy_backend() {
    let slow = || slow_mock(Duration::from_secs(30));
    let (a, b) = (slow().await, slow().await);
    let addr = gateway_with(
        FailoverPolicy::default().selection(Selection::LeastOutstanding),
        vec![backend("a", &a.url(), 0), backend("b", &b.url(), 0)],
    )
    .await;
    // A long stream holds one backend.
    let resp = open_stream(addr).await;
    let busy = resp.headers()["x-infergate-backend"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut body = resp.into_body();
    read_until(&mut body, "chat.completion.chunk").await;
    for _ in 0..6 {
        let r = post_json(addr, "/v1/chat/completions", &chat()).await;
        assert_ne!(r.headers["x-infergate-backend"], busy.as_str());
    }
    drop(body.frame());
}

#[tokio::test]
async fn consecutive_failures_eject_a_backend_and_a_probe_brings_it_back() {
    let (a, b) = two().await;
    let health = HealthPolicy {
        consecutive_failures: 2,
        error_rate: None,
        base_ejection: Duration::from_millis(200),
        ..HealthPolicy::default()
    };
    let failover = FailoverLayer::new(FailoverPolicy::default().health(health).retry_budget(None))
        .service_over(vec![backend("a", &a.url(), 0), backend("b", &b.url(), 1)]);
    let addr = serve(PipelineLayer::new(Pipeline::default()).layer(failover.clone())).await;
    a.set_always_fail(Some(Failure::status(500)));
    for _ in 0..2 {
        let r = post_json(addr, "/v1/chat/completions", &chat()).await;
        assert_eq!(
            (
                r.status.as_u16(),
                r.headers["x-infergate-backend"].to_str().unwrap()
            ),
            (200, "b")
        );
    }
    let status = &failover.status()[0];
    assert_eq!((status.name.as_str(), status.ejections), ("a", 1));
    // Ejected: requests go straight to b.
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-attempts"], "1");
    assert_eq!(a.request_count(), 2);

    // The ejection runs out (waiting for the clock, not for another task); a is still broken:
    // the probe fails and the next ejection is longer.
    tokio::time::sleep(Duration::from_millis(250)).await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.headers["x-infergate-backend"], "b");
    assert_eq!(a.request_count(), 3, "one probe");
    let status = &failover.status()[0];
    assert_eq!(status.ejections, 2);
    assert!(status.resting_for.unwrap() > Duration::from_millis(200));

    // Repaired: after the rest the probe succeeds and a is back for good.
    a.set_always_fail(None);
    tokio::time::sleep(Duration::from_millis(450)).await;
    for _ in 0..3 {
        let r = post_json(addr, "/v1/chat/completions", &chat()).await;
        assert_eq!(r.headers["x-infergate-backend"], "a");
    }
    let status = &failover.status()[0];
    assert_eq!((status.ejections, status.resting_for), (0, None));
}

#[tokio::test]
async fn an_answer_larger_than_the_hold_passes_whole() {
    // Above the 1 MiB held back before a plain answer is chosen: the rest streams after it.
    let reply = "word ".repeat(300_000);
    let a = MockProvider::builder()
        .reply(reply.clone())
        .start()
        .await
        .unwrap();
    let addr = gateway(vec![backend("a", &a.url(), 0)]).await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 200);
    let content = r.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    // Compare sizes, not 1.5 MB
    // of text in a failure message.
    assert_eq!(content.len(), reply.len());
    assert!(content.starts_with("word word"));
}
