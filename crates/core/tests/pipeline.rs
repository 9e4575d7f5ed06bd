//! The Pipeline's semantics, each over loopback HTTP through a real hyper server, with the mock
//! provider (or a fixture-serving upstream) behind it.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_testkit as support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::HeaderValue;
use infergate_client::UpstreamClient;
use infergate_core::pipeline::{PipelineReport, StreamEnd, StreamStop};
use infergate_core::sse::SseEvent;
use infergate_core::{
    Body, Decision, FailureMode, Phases, Pipeline, Processor, ProcessorError, RejectKind,
    Rejection, RequestContext, ResponseContext, Stage, StreamProcessor,
};
use infergate_mock::{Failure, MockProvider};
use serde_json::json;
use support::{post, post_json, serve};
use tower::Layer;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behave {
    Pass,
    Reject,
    Fail,
    Hang,
    Respond,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    fn push(&self, s: impl Into<String>) {
        self.0.lock().unwrap().push(s.into());
    }
    fn get(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

struct TestProc {
    name: &'static str,
    mode: FailureMode,
    behave: Behave,
    set_model: Option<&'static str>,
    log: Log,
    stream_fail_after: Option<usize>,
    stream_end: Option<tokio::sync::mpsc::UnboundedSender<StreamEnd>>,
}

impl TestProc {
    fn new(name: &'static str, log: &Log) -> Self {
        Self {
            name,
            mode: FailureMode::FailClosed,
            behave: Behave::Pass,
            set_model: None,
            log: log.clone(),
            stream_fail_after: None,
            stream_end: None,
        }
    }
    fn behave(mut self, b: Behave) -> Self {
        self.behave = b;
        self
    }
    fn mode(mut self, m: FailureMode) -> Self {
        self.mode = m;
        self
    }
}

#[async_trait]
impl Processor for TestProc {
    fn name(&self) -> &str {
        self.name
    }
    fn phases(&self) -> Phases {
        Phases::ALL
    }
    fn failure_mode(&self) -> FailureMode {
        self.mode
    }
    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        let model = cx
            .payload()
            .and_then(|p| p.model())
            .unwrap_or("")
            .to_owned();
        self.log.push(format!("req:{}:{model}", self.name));
        let order = cx
            .headers()
            .get("x-order")
            .map(|v| format!("{},{}", v.to_str().unwrap(), self.name))
            .unwrap_or_else(|| self.name.to_owned());
        cx.headers_mut()
            .insert("x-order", HeaderValue::from_str(&order).unwrap());
        if let Some(m) = self.set_model {
            cx.payload_mut().unwrap().set_model(m);
        }
        match self.behave {
            Behave::Pass => Ok(Decision::Continue),
            Behave::Reject => Ok(Decision::Reject(Rejection::new(
                RejectKind::ContentBlocked,
                "blocked by test",
            ))),
            Behave::Fail => Err(ProcessorError::external("redis is down")),
            Behave::Hang => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            Behave::Respond => {
                let mut r = http::Response::new(Body::from(
                    r#"{"id":"cached","object":"chat.completion","choices":[]}"#,
                ));
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                r.headers_mut()
                    .insert("x-cache", HeaderValue::from_static("HIT"));
                Ok(Decision::Respond(r))
            }
        }
    }
    async fn on_response(&self, cx: &mut ResponseContext<'_>) -> Result<Decision, ProcessorError> {
        self.log.push(format!("resp:{}", self.name));
        let order = cx
            .headers()
            .get("x-resp-order")
            .map(|v| format!("{},{}", v.to_str().unwrap(), self.name))
            .unwrap_or_else(|| self.name.to_owned());
        cx.headers_mut()
            .insert("x-resp-order", HeaderValue::from_str(&order).unwrap());
        Ok(Decision::Continue)
    }
    fn on_stream(&self, _cx: &mut ResponseContext<'_>) -> Option<Box<dyn StreamProcessor>> {
        if self.stream_fail_after.is_none() && self.stream_end.is_none() {
            return None;
        }
        Some(Box::new(TestStream {
            seen: 0,
            fail_after: self.stream_fail_after,
            end: self.stream_end.clone(),
        }))
    }
}

struct TestStream {
    seen: usize,
    fail_after: Option<usize>,
    end: Option<tokio::sync::mpsc::UnboundedSender<StreamEnd>>,
}

impl StreamProcessor for TestStream {
    fn on_event(&mut self, event: SseEvent, out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        self.seen += 1;
        if self.fail_after.is_some_and(|n| self.seen > n) {
            return Err(StreamStop::Fail(ProcessorError::processor("boom")));
        }
        out.push(event);
        Ok(())
    }
    fn on_end(&mut self, end: StreamEnd, _out: &mut Vec<SseEvent>) -> Result<(), StreamStop> {
        if let Some(tx) = &self.end {
            let _ = tx.send(end);
        }
        Ok(())
    }
}

async fn gateway(pipeline: Pipeline, mock: &MockProvider) -> std::net::SocketAddr {
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    serve(pipeline.layer().layer(upstream)).await
}

fn chat(stream: bool) -> serde_json::Value {
    json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}], "stream": stream})
}

#[tokio::test]
async fn processors_run_in_order_and_responses_in_reverse() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("a", &log))
        .processor(TestProc::new("b", &log))
        .processor(TestProc::new("c", &log))
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-resp-order"], "c,b,a");
    assert_eq!(mock.requests()[0].headers["x-order"], "a,b,c");
    assert_eq!(
        log.get(),
        [
            "req:a:gpt-4o",
            "req:b:gpt-4o",
            "req:c:gpt-4o",
            "resp:c",
            "resp:b",
            "resp:a"
        ]
    );
}

#[tokio::test]
async fn mutations_carry_forward_and_reach_the_upstream() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let mut a = TestProc::new("a", &log);
    a.set_model = Some("gpt-4o-mini");
    let p = Pipeline::builder()
        .processor(a)
        .processor(TestProc::new("b", &log))
        .build();
    let addr = gateway(p, &mock).await;
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "seed": 42, "x_vendor": {"k": [1]}});
    let r = post_json(addr, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(log.get()[1], "req:b:gpt-4o-mini");
    let rec = &mock.requests()[0];
    let sent = rec.json().unwrap();
    assert_eq!(sent["model"], "gpt-4o-mini");
    // Only what the processor changed changed.
    let mut expected = body.clone();
    expected["model"] = json!("gpt-4o-mini");
    assert_eq!(sent, expected);
    assert_eq!(
        rec.headers["content-length"],
        rec.body.len().to_string().as_str()
    );
}

#[tokio::test]
async fn an_unchanged_body_is_forwarded_byte_for_byte() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("a", &log))
        .build();
    let addr = gateway(p, &mock).await;
    let raw = "{ \"messages\" : [{\"role\":\"user\",\"content\":\"Hi\"}],  \"model\":\"m\" }";
    post(addr, "/v1/chat/completions", Some("application/json"), raw).await;
    assert_eq!(&mock.requests()[0].body[..], raw.as_bytes());
}

#[tokio::test]
async fn the_first_rejection_stops_the_rest_and_is_never_failed_open() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("a", &log))
        .processor(
            TestProc::new("b", &log)
                .behave(Behave::Reject)
                .mode(FailureMode::FailOpen),
        )
        .processor(TestProc::new("c", &log))
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["error"]["code"], "content_filter");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(v["error"]["message"], "blocked by test");
    assert!(
        mock.requests().is_empty(),
        "the upstream must not be called"
    );
    // c never ran; a (which ran) saw the rejection in its response phase, b did not.
    assert_eq!(log.get(), ["req:a:gpt-4o", "req:b:gpt-4o", "resp:a"]);
    assert_eq!(r.headers["x-resp-order"], "a");
}

#[tokio::test]
async fn a_processor_can_answer_instead_of_the_upstream() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("limiter", &log))
        .processor(TestProc::new("cache", &log).behave(Behave::Respond))
        .processor(TestProc::new("never", &log))
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-cache"], "HIT");
    assert_eq!(r.json()["id"], "cached");
    assert!(mock.requests().is_empty());
    assert_eq!(r.headers["x-resp-order"], "limiter");
}

#[tokio::test]
async fn fail_open_skips_and_fail_closed_rejects_on_error() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let open = Pipeline::builder()
        .processor(
            TestProc::new("cache", &log)
                .behave(Behave::Fail)
                .mode(FailureMode::FailOpen),
        )
        .processor(TestProc::new("after", &log))
        .build();
    let addr = gateway(open, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.requests()[0].headers["x-order"], "cache,after");

    let closed = Pipeline::builder()
        .processor(TestProc::new("guard", &log).behave(Behave::Fail))
        .processor(TestProc::new("after", &log))
        .build();
    let addr = gateway(closed, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(
        r.status, 502,
        "an external-service failure is a bad gateway"
    );
    let v = r.json();
    assert_eq!(v["error"]["code"], "external_service_failed");
    // The processor's own error text (which could hold a secret) is not shown.
    assert!(!r.text().contains("redis is down"));
    assert!(v["error"]["message"].as_str().unwrap().contains("guard"));
    assert_eq!(
        mock.requests().len(),
        1,
        "the upstream was not called again"
    );
}

#[tokio::test]
async fn fail_open_skips_and_fail_closed_rejects_on_timeout() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .stage(
            Stage::new(
                TestProc::new("slow-enricher", &log)
                    .behave(Behave::Hang)
                    .mode(FailureMode::FailOpen),
            )
            .timeout(Duration::from_millis(50)),
        )
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 200);

    let p = Pipeline::builder()
        .stage(
            Stage::new(TestProc::new("slow-guard", &log).behave(Behave::Hang))
                .timeout(Duration::from_millis(50)),
        )
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "processor_timeout");
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn the_pipeline_deadline_bounds_processors_without_their_own_timeout() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .deadline(Some(Duration::from_millis(60)))
        .processor(TestProc::new("a", &log))
        .processor(TestProc::new("hangs", &log).behave(Behave::Hang))
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.json()["error"]["code"], "deadline_exceeded");
    assert!(mock.requests().is_empty());
}

#[tokio::test]
async fn failures_are_reported_in_the_response_extensions() {
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(
            TestProc::new("cache", &log)
                .behave(Behave::Fail)
                .mode(FailureMode::FailOpen),
        )
        .build();
    let upstream = tower::service_fn(|_r: http::Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("{}")))
    });
    let svc = p.layer().layer(upstream);
    let req = http::Request::post("/v1/chat/completions")
        .body(Body::from(chat(false).to_string()))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(svc, req).await.unwrap();
    let report = resp.extensions().get::<PipelineReport>().unwrap();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].processor, "cache");
    assert_eq!(
        report.failures[0].class,
        infergate_core::FailureClass::ExternalService
    );
    assert!(report.failures[0].skipped);
}

#[tokio::test]
async fn rejections_carry_the_typed_reason_in_extensions() {
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("g", &log).behave(Behave::Reject))
        .build();
    let upstream = tower::service_fn(|_r: http::Request<Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from("{}")))
    });
    let svc = p.layer().layer(upstream);
    let req = http::Request::post("/v1/chat/completions")
        .body(Body::from(chat(false).to_string()))
        .unwrap();
    let resp = tower::ServiceExt::oneshot(svc, req).await.unwrap();
    let rej = resp.extensions().get::<Rejection>().unwrap();
    assert_eq!(rej.kind(), RejectKind::ContentBlocked);
    assert_eq!(rej.processor(), Some("g"));
}

#[tokio::test]
async fn a_stream_passes_through_byte_for_byte() {
    let fixture = Bytes::from(
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/sse/agentgateway/crates/llm/src/tests/response/completions/stream.json"
        ))
        .unwrap(),
    );
    let log = Log::default();
    // One processor that sees every event and passes it on, one that ignores streams.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut watcher = TestProc::new("watcher", &log);
    watcher.stream_end = Some(tx);
    let p = Pipeline::builder()
        .processor(watcher)
        .processor(TestProc::new("other", &log))
        .build();
    for chunk in [1, 7, 100, 100_000] {
        let addr = serve(
            p.layer()
                .layer(support::sse_upstream(fixture.clone(), chunk)),
        )
        .await;
        let r = post_json(addr, "/v1/chat/completions", &chat(true)).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body, fixture, "chunk size {chunk}");
        assert_eq!(rx.recv().await, Some(StreamEnd::Completed));
    }
}

#[tokio::test]
async fn past_the_commit_point_a_failing_processor_ends_the_stream_with_an_error_event() {
    let mock = MockProvider::start().await.unwrap();
    for mode in [FailureMode::FailOpen, FailureMode::FailClosed] {
        let log = Log::default();
        let mut p = TestProc::new("stream-guard", &log).mode(mode);
        p.stream_fail_after = Some(3);
        let addr = gateway(Pipeline::builder().processor(p).build(), &mock).await;
        let r = post_json(addr, "/v1/chat/completions", &chat(true)).await;
        assert_eq!(r.status, 200, "the status was already sent");
        let text = r.text();
        let events: Vec<&str> = text.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 4, "{text}");
        assert!(events[3].starts_with("event: error\ndata: "));
        let err: serde_json::Value =
            serde_json::from_str(events[3].trim_start_matches("event: error\ndata: ")).unwrap();
        assert_eq!(err["error"]["code"], "processor_failed");
        assert!(!text.contains("[DONE]"));
    }
}

#[tokio::test]
async fn an_upstream_that_dies_mid_stream_gives_a_clean_error_event() {
    // Tokens are spaced out so the response head leaves the mock before the cut (as with a
    // real provider); otherwise hyper drops the unsent head and the failure is a plain 502.
    let mock = MockProvider::builder()
        .token_delay(Duration::from_millis(5))
        .start()
        .await
        .unwrap();
    let log = Log::default();
    for watch in [false, true] {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut p = TestProc::new("w", &log);
        if watch {
            p.stream_end = Some(tx);
        }
        let addr = gateway(Pipeline::builder().processor(p).build(), &mock).await;
        mock.push_failure(Failure::DisconnectAfter(3));
        let r = post_json(addr, "/v1/chat/completions", &chat(true)).await;
        assert_eq!(r.status, 200);
        let text = r.text();
        assert_eq!(text.matches("chat.completion.chunk").count(), 3, "{text}");
        assert!(
            text.ends_with("\n\n") && text.contains("event: error\ndata: {\"error\""),
            "{text}"
        );
        assert!(text.contains("upstream_failed"));
        if watch {
            assert_eq!(rx.recv().await, Some(StreamEnd::UpstreamError));
        }
    }
}

#[tokio::test]
async fn a_client_that_goes_away_mid_stream_is_told_to_the_processors() {
    use http_body_util::BodyExt;
    let mock = MockProvider::builder()
        .token_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let log = Log::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut p = TestProc::new("limiter", &log);
    p.stream_end = Some(tx);
    let addr = gateway(Pipeline::builder().processor(p).build(), &mock).await;
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            chat(true).to_string(),
        )))
        .unwrap();
    let resp = support::client().request(req).await.unwrap();
    let mut body = resp.into_body();
    let first = body.frame().await.unwrap().unwrap();
    assert!(first.is_data());
    drop(body);
    assert_eq!(rx.recv().await, Some(StreamEnd::ClientGone));
}

#[tokio::test]
async fn anthropic_requests_get_anthropic_shaped_errors() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let p = Pipeline::builder()
        .processor(TestProc::new("g", &log).behave(Behave::Reject))
        .build();
    let addr = gateway(p, &mock).await;
    let r = post_json(
        addr,
        "/v1/messages",
        &json!({"model": "claude", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let mock = MockProvider::start().await.unwrap();
    let p = Pipeline::builder().max_request_body(1024).build();
    let addr = gateway(p, &mock).await;
    let path = "/v1/chat/completions";
    let big = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "x".repeat(2000)
    );
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (
            Some("application/json"),
            big.into_bytes(),
            413,
            "request_too_large",
        ),
        (
            Some("application/json"),
            b"{\"model\": ".to_vec(),
            400,
            "invalid_json",
        ),
        (
            Some("application/json"),
            b"not json at all".to_vec(),
            400,
            "invalid_json",
        ),
        (
            Some("text/plain"),
            b"{}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            b"a=b".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            Some("application/json"),
            b"{\"model\":\"\xff\xfe\",\"messages\":[]}".to_vec(),
            400,
            "invalid_utf8",
        ),
        (
            Some("application/json"),
            b"{\"messages\":[]}".to_vec(),
            400,
            "invalid_request",
        ),
        (
            Some("application/json"),
            b"[1,2]".to_vec(),
            400,
            "invalid_request",
        ),
    ];
    for (ct, body, status, code) in cases {
        let r = post(addr, path, ct, body).await;
        assert_eq!(r.status.as_u16(), status, "{}", r.text());
        let v = r.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty())
        );
        assert!(v["error"].get("param").is_some() && v["error"].get("type").is_some());
    }
    assert!(mock.requests().is_empty());
    let ok = post_json(addr, path, &chat(false)).await;
    assert_eq!(ok.status, 200);
}

#[tokio::test]
async fn upstream_errors_pass_through_unchanged() {
    let mock = MockProvider::start().await.unwrap();
    mock.push_failure(Failure::status(429).retry_after("7"));
    let addr = gateway(Pipeline::default(), &mock).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "7");
}

#[tokio::test]
async fn two_pipelines_stacked_parse_once_and_see_each_others_changes() {
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let mut outer = TestProc::new("outer", &log);
    outer.set_model = Some("rewritten");
    let outer = Pipeline::builder().processor(outer).build();
    let inner = Pipeline::builder()
        .processor(TestProc::new("inner", &log))
        .build();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let svc = outer.layer().layer(inner.layer().layer(upstream));
    let addr = serve(svc).await;
    let r = post_json(addr, "/v1/chat/completions", &chat(false)).await;
    assert_eq!(r.status, 200);
    assert_eq!(log.get()[1], "req:inner:rewritten");
    assert_eq!(mock.requests()[0].json().unwrap()["model"], "rewritten");
}

#[tokio::test]
async fn phases_declared_are_the_phases_run() {
    struct RequestOnly(Log);
    #[async_trait]
    impl Processor for RequestOnly {
        fn name(&self) -> &str {
            "req-only"
        }
        fn phases(&self) -> Phases {
            Phases::REQUEST
        }
        async fn on_response(
            &self,
            _cx: &mut ResponseContext<'_>,
        ) -> Result<Decision, ProcessorError> {
            self.0.push("response phase ran");
            Ok(Decision::Continue)
        }
    }
    let mock = MockProvider::start().await.unwrap();
    let log = Log::default();
    let addr = gateway(
        Pipeline::builder()
            .processor(RequestOnly(log.clone()))
            .build(),
        &mock,
    )
    .await;
    assert_eq!(
        post_json(addr, "/v1/chat/completions", &chat(false))
            .await
            .status,
        200
    );
    assert!(log.get().is_empty());
}

/// A body over the limit is read to its end before the 413 goes out (a client still writing
/// must not meet a closed connection and lose the answer): every chunk the client sends is
/// taken, through a channel that holds one chunk at a time.
#[tokio::test]
async fn an_oversized_body_is_read_to_its_end_before_the_413() {
    let p = Pipeline::builder().max_request_body(1024).build();
    let expect = [("expect", "100-continue")];
    let http1 = http::Version::HTTP_11;
    let cases: [Case<'_>; 5] = [
        (false, &[], http1, true),
        (true, &[], http1, true),
        // Chunked: the first chunks were read, so `100 Continue` went out and the rest comes.
        (false, &expect, http1, true),
        // Declared too long and waiting for `100 Continue`: nothing was asked for, nothing read.
        (true, &expect, http1, false),
        // HTTP/2 ends the stream itself after the answer.
        (false, &[], http::Version::HTTP_2, false),
    ];
    for (declared, headers, version, whole) in cases {
        let (rej, sent) = oversized(&p, declared, headers, version).await;
        assert_eq!(rej.kind(), RejectKind::BodyTooLarge);
        assert_eq!(
            sent == 64,
            whole,
            "{declared} {headers:?} {version:?}: {sent} sent"
        );
    }
}

/// Declared length, headers, version, whether the whole body is taken.
type Case<'a> = (bool, &'a [(&'a str, &'a str)], http::Version, bool);

/// A body whose chunks come from a channel, with its length declared or not.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    declared: Option<u64>,
}

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = std::io::Error;
    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|c| c.map(|b| Ok(http_body::Frame::data(b))))
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.declared.map_or_else(
            http_body::SizeHint::default,
            http_body::SizeHint::with_exact,
        )
    }
}

/// Offers `p` a chat request of 64 chunks of 512 bytes, one at a time; the rejection and how
/// many chunks were taken.
async fn oversized(
    p: &Pipeline,
    declared: bool,
    headers: &[(&str, &str)],
    version: http::Version,
) -> (Rejection, usize) {
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(1);
    let sender = tokio::spawn(async move {
        let mut sent = 0usize;
        for _ in 0..64 {
            if tx.send(Bytes::from(vec![b'x'; 512])).await.is_err() {
                break;
            }
            sent += 1;
        }
        sent
    });
    let mut req = http::Request::post("/v1/chat/completions")
        .version(version)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let (head, ()) = req.body(()).unwrap().into_parts();
    let body = Chunks {
        rx,
        declared: declared.then_some(64 * 512),
    };
    let rej = p.prepare(head, body).await.unwrap_err();
    (rej, sender.await.unwrap())
}
