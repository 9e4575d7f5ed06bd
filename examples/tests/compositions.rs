//! The scenario suite against the hyper, axum and pingora compositions: the same building
//! blocks must give the same observable results in each.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_examples::compositions::{
    Mocks, Observation, axum_app, free_port, scenarios, serve_hyper, tower_stack, wait_listening,
};

fn expected(obs: &[Observation]) {
    let by = |name: &str| obs.iter().find(|o| o.scenario == name).unwrap();
    let fact =
        |o: &Observation, k: &str| o.facts.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let failover = by("failover");
    assert_eq!(failover.status, 200, "{failover:?}");
    assert_eq!(
        fact(failover, "x-infergate-backend").as_deref(),
        Some("healthy")
    );
    let blocked = by("guardrail-block");
    assert_eq!(blocked.status, 400, "{blocked:?}");
    assert_eq!(
        fact(blocked, "error-code").as_deref(),
        Some("content_filter")
    );
    assert_eq!(fact(by("cache-miss"), "x-cache").as_deref(), Some("MISS"));
    let hit = by("cache-hit");
    assert_eq!(fact(hit, "x-cache").as_deref(), Some("HIT"));
    assert_eq!(hit.text, by("cache-miss").text);
    let stream = by("stream");
    assert_eq!(stream.status, 200);
    assert_eq!(
        fact(stream, "stream-ends-with-done").as_deref(),
        Some("true")
    );
    assert!(!stream.text.is_empty());
    let limited = by("rate-limited");
    assert_eq!(limited.status, 429, "{limited:?}");
    assert_eq!(fact(limited, "retry-after").as_deref(), Some("present"));
}

#[tokio::test]
async fn hyper_composition() {
    let mocks = Mocks::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve_hyper(listener, tower_stack(&mocks).unwrap()));
    expected(&scenarios(addr, "hyper").await);
}

#[tokio::test]
async fn axum_composition() {
    let mocks = Mocks::start().await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum_app(tower_stack(&mocks).unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    expected(&scenarios(addr, "axum").await);
}

#[tokio::test]
async fn hyper_and_axum_agree() {
    let mocks = Mocks::start().await.unwrap();
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a1 = l1.local_addr().unwrap();
    tokio::spawn(serve_hyper(l1, tower_stack(&mocks).unwrap()));
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a2 = l2.local_addr().unwrap();
    let app = axum_app(tower_stack(&mocks).unwrap());
    tokio::spawn(async move { axum::serve(l2, app).await });
    // The same tag: the same requests, so the same answers (each stack has its own cache).
    assert_eq!(scenarios(a1, "same").await, scenarios(a2, "same").await);
}

#[cfg(feature = "pingora")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingora_composition_agrees_with_hyper() {
    let mocks = Mocks::start().await.unwrap();
    let addr = free_port().unwrap();
    infergate_examples::compositions::spawn_pingora(&mocks, addr);
    assert!(wait_listening(addr).await, "pingora did not start");
    let pingora = scenarios(addr, "same").await;
    expected(&pingora);

    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = l.local_addr().unwrap();
    tokio::spawn(serve_hyper(l, tower_stack(&mocks).unwrap()));
    assert_eq!(pingora, scenarios(a, "same").await);
}

#[test]
fn a_free_port_is_on_loopback() {
    assert!(free_port().unwrap().ip().is_loopback());
}
