//! Failover over loopback HTTP between mock providers with injected failures.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_failover::{Backend, FailoverLayer, FailoverPolicy};
use infergate_mock::{Failure, MockProvider};
use infergate_testkit::{post_json, send, serve};
use serde_json::json;
use tower::Layer;

fn chat() -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn backend(name: &str, url: &str, tier: u32) -> Backend {
    Backend::new(name, UpstreamClient::new(url).unwrap().into_proxy()).tier(tier)
}

async fn gateway(backends: Vec<Backend>) -> std::net::SocketAddr {
    // The pipeline buffers the request body, which failover replays.
    let svc = FailoverLayer::new(FailoverPolicy::default()).service_over(backends);
    serve(PipelineLayer::new(Pipeline::default()).layer(svc)).await
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
    a.push_failure(Failure::status(503));
    b.push_failure(Failure::status(503));
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers["x-infergate-attempts"], "2");
    // Both are cooling down now: fail fast.
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "no_backend_available");
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
    // No cooldown, so that only the budget limits retries: at most 20 % of the requests of the
    // last 10 s, plus 1 a second over those 10 s.
    let policy = FailoverPolicy::default()
        .default_cooldown(std::time::Duration::ZERO)
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
