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

/// pingora buffers a whole answer for a response-body processor up to the pipeline's bound; a
/// larger answer is a failure of that processor under its failure mode, as on the tower path:
/// failing closed cuts it (never passed on unread), failing open passes it on unchanged.
#[cfg(feature = "pingora")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pingora_answers_beyond_the_bound_follow_the_failure_mode() {
    use infergate::core::{FailureMode, Pipeline, Stage};
    use infergate::failover::FailoverPolicy;
    use infergate::guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
    use infergate_pingora::{PipelineProxy, Upstream};

    let mock = infergate::mock::MockProvider::builder()
        .start()
        .await
        .unwrap();
    let start = |mode: FailureMode| {
        let redact =
            Guardrail::new(GuardrailConfig::new().check(
                Check::new("pii", Detector::pii(), Action::Redact).applies(Applies::Response),
            ));
        let pipeline = Pipeline::builder()
            .stage(Stage::new(redact).failure_mode(mode))
            .max_response_body(64)
            .build();
        let proxy = PipelineProxy::new(
            pipeline,
            vec![Upstream::new("mock", mock.addr().to_string())],
            FailoverPolicy::default(),
        );
        let addr = free_port().unwrap();
        infergate_pingora::spawn_server(proxy, addr);
        addr
    };
    let closed = start(FailureMode::FailClosed);
    let open = start(FailureMode::FailOpen);
    assert!(wait_listening(closed).await && wait_listening(open).await);

    let ask = |addr: std::net::SocketAddr| async move {
        use http_body_util::BodyExt;
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Full<bytes::Bytes>>();
        let body =
            r#"{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello there"}]}"#;
        let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .unwrap();
        // A cut answer: whatever arrived before the cut (or nothing).
        match client.request(req).await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let text = match resp.into_body().collect().await {
                    Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
                    Err(e) => format!("(cut: {e})"),
                };
                format!("{text}\n{status}")
            }
            Err(e) => format!("(no answer: {e})"),
        }
    };
    let answer = ask(open).await;
    assert!(answer.ends_with("\n200"), "{answer}");
    assert!(
        answer.contains("\"choices\""),
        "passed on unchanged: {answer}"
    );
    let answer = ask(closed).await;
    assert!(
        !answer.contains("\"choices\""),
        "an answer no processor could read was passed on: {answer}"
    );
}
