//! Budgets over loopback HTTP: a real hyper server, the mock provider upstream, an injected
//! clock for period boundaries.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use infergate_budget::store::{BudgetStore, Hold, MemoryStore, StoreError, Verdict};
use infergate_budget::{
    Budget, BudgetConfig, BudgetLayer, BudgetLimiter, Charge, Clock, Limit, ManualClock, Price,
    PriceTable, Scope, Settled, Usd, Window,
};
use infergate_client::UpstreamClient;
use infergate_core::usage::Usage;
use infergate_core::{FailureMode, Principal};
use infergate_mock::{Failure, MockProvider};
use infergate_testkit::{Reply, serve};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::{Layer, ServiceBuilder};

/// One token costs a tenth of a cent: budgets run out after a few requests.
fn prices() -> PriceTable {
    PriceTable::new().with("gpt-4o-mini", Price::per_million(1000.0, 1000.0).unwrap())
}

fn dollars(d: f64) -> Usd {
    Usd::from_dollars(d).unwrap()
}

struct Gateway {
    addr: SocketAddr,
    limiter: BudgetLimiter,
    charges: mpsc::UnboundedReceiver<Charge>,
}

/// Serves the budget layer over the mock; the principal is the `x-principal` header (in a
/// real gateway the identity block authenticates it).
async fn gateway(
    cfg: BudgetConfig,
    store: Arc<dyn BudgetStore>,
    clock: Arc<dyn Clock>,
    mock: &MockProvider,
) -> Gateway {
    let (tx, rx) = mpsc::unbounded_channel();
    let limiter = BudgetLimiter::with_store(cfg, store, clock).on_charge(move |c| {
        let _ = tx.send(c.clone());
    });
    let layer = BudgetLayer::from_limiter(limiter.clone());
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let svc = ServiceBuilder::new()
        .map_request(|mut req: http::Request<hyper::body::Incoming>| {
            let id = req
                .headers()
                .get("x-principal")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            if let Some(id) = id {
                Principal::new(id, "acme").insert_into(req.extensions_mut());
            }
            req
        })
        .service(layer.layer(upstream));
    Gateway {
        addr: serve(svc).await,
        limiter,
        charges: rx,
    }
}

fn chat(max_tokens: u64, stream: bool, text: &str) -> Value {
    let mut v = json!({"model": "gpt-4o-mini", "max_tokens": max_tokens, "stream": stream,
        "messages": [{"role": "user", "content": text}]});
    if stream {
        v["stream_options"] = json!({"include_usage": true});
    }
    v
}

async fn post(addr: SocketAddr, path: &str, principal: &str, body: &Value) -> Reply {
    let req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("x-principal", principal)
        .body(http_body_util::Full::new(Bytes::from(body.to_string())))
        .unwrap();
    infergate_testkit::send(req).await
}

fn daily(limit: Usd) -> Budget {
    Budget::new("daily", Scope::Principal, Limit::Usd(limit), Window::Day)
}

fn memory(clock: &ManualClock) -> Arc<dyn BudgetStore> {
    Arc::new(MemoryStore::with_clock(clock.clone()))
}

fn noon() -> ManualClock {
    // 2026-12-01T12:00:00Z
    ManualClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_126_400))
}

#[tokio::test]
async fn each_answer_is_charged_its_real_cost_until_the_budget_refuses() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([daily(dollars(0.5))])
        .prices(prices())
        .cost_header(true);
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    let mut spent = Usd::ZERO;
    let mut refused = None;
    for i in 0..50 {
        let r = post(
            gw.addr,
            "/v1/chat/completions",
            "alice",
            &chat(50, false, &format!("Question {i}?")),
        )
        .await;
        if r.status == 429 {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status, 200, "{}", r.text());
        let usage =
            Usage::from_response_json(infergate_core::payload::ApiKind::ChatCompletions, &r.json())
                .unwrap();
        // $0.001 per token.
        let cost = Usd::from_nanos(usage.total_tokens() * 1_000_000);
        assert_eq!(r.headers["x-infergate-cost-usd"], cost.to_string().as_str());
        let c = gw.charges.recv().await.unwrap();
        assert_eq!(
            (c.usage, c.cost, c.settled),
            (usage, Some(cost), Settled::Reported)
        );
        spent = spent.saturating_add(cost);
    }
    let r = refused.expect("the budget runs out");
    let v = r.json();
    assert_eq!(v["error"]["type"], "insufficient_quota");
    assert_eq!(v["error"]["code"], "insufficient_quota");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("budget 'daily' is exhausted")
    );
    assert_eq!(r.headers["x-infergate-budget-name"], "daily");
    assert_eq!(r.headers["x-infergate-budget-limit"], "0.5");
    let remaining = dollars(0.5).saturating_sub(spent);
    assert_eq!(
        r.headers["x-infergate-budget-remaining"],
        remaining.to_string().as_str()
    );
    // The reset is the next UTC midnight.
    assert_eq!(r.headers["x-infergate-budget-reset"], "1796169600");
    // Never past the limit; the refused request was charged nothing.
    assert!(spent <= dollars(0.5));
    let status = gw
        .limiter
        .status(&Principal::new("alice", "acme"))
        .await
        .unwrap();
    assert_eq!(status[0].spent, spent.nanos());
    assert!(
        gw.charges.try_recv().is_err(),
        "a refused request has no charge"
    );
    // Another principal has a budget of its own.
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "bob",
        &chat(50, false, "Hi"),
    )
    .await;
    assert_eq!(r.status, 200);
}

#[tokio::test]
async fn the_anthropic_endpoint_is_refused_in_anthropics_shape() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([Budget::new(
        "tiny",
        Scope::Global,
        Limit::Tokens(10),
        Window::Day,
    )]);
    let gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100,
        "messages": [{"role": "user", "content": "Hello"}]});
    let r = post(gw.addr, "/v1/messages", "alice", &body).await;
    assert_eq!(r.status, 429);
    let v = r.json();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lower max_tokens")
    );
}

#[tokio::test]
async fn budgets_reset_at_local_midnight_of_an_injected_clock() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let paris = jiff::tz::TimeZone::get("Europe/Paris").unwrap();
    let budget =
        Budget::new("daily", Scope::Principal, Limit::Tokens(400), Window::Day).time_zone(paris);
    let cfg = BudgetConfig::new([budget]);
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    let mut admitted = 0;
    loop {
        let r = post(
            gw.addr,
            "/v1/chat/completions",
            "alice",
            &chat(100, false, "Hi"),
        )
        .await;
        if r.status == 429 {
            break;
        }
        assert_eq!(r.status, 200);
        gw.charges.recv().await.unwrap();
        admitted += 1;
        assert!(admitted < 100);
    }
    // 22:59:59 UTC is 23:59:59 in Paris: still the same day.
    clock.set(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_169_600 - 3_601));
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "alice",
        &chat(100, false, "Hi"),
    )
    .await;
    assert_eq!(r.status, 429);
    // 23:00 UTC is midnight in Paris: a new day, a new budget.
    clock.set(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_169_600 - 3_600));
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "alice",
        &chat(100, false, "Hi"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
}

#[tokio::test]
async fn concurrent_clients_never_overrun_a_budget() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let limit = dollars(1.0);
    let cfg = BudgetConfig::new([daily(limit)]).prices(prices());
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    let mut tasks = Vec::new();
    for i in 0..64 {
        let addr = gw.addr;
        tasks.push(tokio::spawn(async move {
            post(
                addr,
                "/v1/chat/completions",
                "alice",
                &chat(60, i % 2 == 0, &format!("Q{i}")),
            )
            .await
        }));
    }
    let mut admitted = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status.as_u16() {
            200 => admitted += 1,
            429 => assert_eq!(r.json()["error"]["code"], "insufficient_quota"),
            s => panic!("{s}: {}", r.text()),
        }
    }
    assert!(admitted > 0 && admitted < 64, "{admitted}");
    let mut total = Usd::ZERO;
    for _ in 0..admitted {
        let c = gw.charges.recv().await.unwrap();
        total = total.saturating_add(c.cost.unwrap());
    }
    assert!(
        gw.charges.try_recv().is_err(),
        "one charge per admitted request"
    );
    assert!(total <= limit, "{total} spent of {limit}");
    let status = gw
        .limiter
        .status(&Principal::new("alice", "acme"))
        .await
        .unwrap();
    // Adjustments land in the background; reservations in flight count until they do, and
    // the store never holds more than the limit either way.
    assert!(status[0].spent <= limit.nanos());
}

#[tokio::test]
async fn streams_are_charged_once_however_they_end() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([daily(dollars(100.0))]).prices(prices());
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;

    // Completed: the provider's own numbers.
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "alice",
        &chat(50, true, "Tell me a story"),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let last_usage = text
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| v.get("usage").filter(|u| u.is_object()).cloned())
        .expect("the usage chunk");
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    assert_eq!(
        c.usage.input_tokens,
        last_usage["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        c.usage.output_tokens,
        last_usage["completion_tokens"].as_u64().unwrap()
    );

    // The upstream cuts the stream after its head and three chunks: an estimate, once.
    mock.set_token_delay(Duration::from_millis(5));
    mock.push_failure(Failure::DisconnectAfter(3));
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "alice",
        &chat(50, true, "Tell me a story"),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("upstream_failed"), "{}", r.text());
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Estimate);
    assert!(
        c.usage.input_tokens > 0 && c.usage.output_tokens > 0,
        "{:?}",
        c.usage
    );

    // The client goes away mid-stream: an estimate, once.
    mock.set_token_delay(Duration::from_millis(20));
    let req = http::Request::post(format!("http://{}/v1/chat/completions", gw.addr))
        .header("content-type", "application/json")
        .header("x-principal", "alice")
        .body(http_body_util::Full::new(Bytes::from(
            chat(200, true, "Tell me a long story").to_string(),
        )))
        .unwrap();
    let resp = infergate_testkit::client().request(req).await.unwrap();
    let mut body = resp.into_body();
    // The mock's reply starts with its canned words, one per chunk.
    let _ = infergate_testkit::read_until(&mut body, "\"content\":\" ").await;
    drop(body);
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Estimate);
    assert!(c.usage.output_tokens >= 1);
    mock.set_token_delay(Duration::ZERO);

    // An upstream error costs nothing.
    mock.push_failure(Failure::status(500));
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        "alice",
        &chat(50, true, "Hi"),
    )
    .await;
    assert_eq!(r.status, 500);
    let c = gw.charges.recv().await.unwrap();
    assert_eq!((c.settled, c.cost), (Settled::Refunded, Some(Usd::ZERO)));

    assert!(
        gw.charges.try_recv().is_err(),
        "exactly one charge per request"
    );
}

/// A store that always fails.
#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl BudgetStore for Down {
    async fn reserve(&self, _: &[Hold]) -> Result<Verdict, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn adjust(&self, _: &[(Hold, i64)]) -> Result<(), StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
    async fn spent(&self, _: &[Hold]) -> Result<Vec<u64>, StoreError> {
        Err(StoreError::Unavailable("connection refused".into()))
    }
}

#[tokio::test]
async fn a_store_outage_follows_the_failure_mode() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    for (mode, want) in [(FailureMode::FailClosed, 502), (FailureMode::FailOpen, 200)] {
        let cfg = BudgetConfig::new([daily(dollars(1.0))])
            .prices(prices())
            .failure_mode(mode);
        let gw = gateway(cfg, Arc::new(Down), Arc::new(clock.clone()), &mock).await;
        let r = post(
            gw.addr,
            "/v1/chat/completions",
            "alice",
            &chat(10, false, "Hi"),
        )
        .await;
        assert_eq!(r.status, want, "{mode:?}: {}", r.text());
        if want == 502 {
            assert_eq!(r.json()["error"]["code"], "external_service_failed");
            assert!(
                !r.text().contains("connection refused"),
                "no internals in error bodies"
            );
        }
    }
}

#[tokio::test]
async fn an_unpriced_model_is_refused_when_a_dollar_budget_applies() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([daily(dollars(1.0))]).prices(prices());
    let gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    let mut body = chat(10, false, "Hi");
    body["model"] = json!("my-finetune");
    let r = post(gw.addr, "/v1/chat/completions", "alice", &body).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "model_not_priced");
    assert_eq!(r.json()["error"]["param"], "model");
}

/// Serves the budget layer over `upstream` (not the mock): for the endpoints the mock does not
/// speak natively.
async fn over<S>(cfg: BudgetConfig, upstream: S) -> (SocketAddr, mpsc::UnboundedReceiver<Charge>)
where
    S: tower::Service<
            http::Request<infergate_core::Body>,
            Response = http::Response<infergate_core::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let (tx, rx) = mpsc::unbounded_channel();
    let clock = noon();
    let limiter =
        BudgetLimiter::with_store(cfg, memory(&clock), Arc::new(clock)).on_charge(move |c| {
            let _ = tx.send(c.clone());
        });
    let svc = ServiceBuilder::new()
        .map_request(|mut req: http::Request<hyper::body::Incoming>| {
            Principal::new("alice", "acme").insert_into(req.extensions_mut());
            req
        })
        .service(BudgetLayer::from_limiter(limiter).layer(upstream));
    (serve(svc).await, rx)
}

#[tokio::test]
async fn every_endpoint_counts() {
    let cfg = || BudgetConfig::new([daily(dollars(10.0))]);
    // The Responses API, non-streamed: priced from its usage (cached input at the cache price).
    let upstream = tower::service_fn(|_req: http::Request<infergate_core::Body>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(infergate_core::Body::from(
            r#"{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":1000,"input_tokens_details":{"cached_tokens":400},"output_tokens":200,"output_tokens_details":{"reasoning_tokens":50},"total_tokens":1200}}"#,
        )))
    });
    let (addr, mut rx) = over(cfg(), upstream).await;
    let r = post(
        addr,
        "/v1/responses",
        "alice",
        &json!({"model": "gpt-4o-mini", "input": "Hi", "max_output_tokens": 300}),
    )
    .await;
    assert_eq!(r.status, 200);
    let c = rx.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    assert_eq!(
        (
            c.usage.input_tokens,
            c.usage.cache_read_input_tokens,
            c.usage.reasoning_tokens
        ),
        (1000, 400, 50)
    );
    // 600 × 0.15 + 400 × 0.075 + 200 × 0.6 per million.
    assert_eq!(c.cost, Some(Usd::from_nanos(90_000 + 30_000 + 120_000)));

    // The Responses API, streamed: the captured stream's `response.completed` usage.
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../core/tests/fixtures/sse/extracted/pydantic-ai__test_openai_responses_streaming_usage__0.sse.txt"
    ))
    .unwrap();
    let (addr, mut rx) = over(
        cfg(),
        infergate_testkit::sse_upstream(Bytes::from(bytes), 97),
    )
    .await;
    let r = post(
        addr,
        "/v1/responses",
        "alice",
        &json!({"model": "gpt-5", "input": "Hi", "stream": true}),
    )
    .await;
    assert_eq!(r.status, 200);
    let c = rx.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    assert!(c.usage.input_tokens > 0 && c.usage.output_tokens > 0);
    assert!(c.cost.unwrap() > Usd::ZERO);

    // Embeddings (the mock): input tokens at the embedding model's price.
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let mut gw = gateway(cfg(), memory(&clock), Arc::new(clock.clone()), &mock).await;
    let r = post(
        gw.addr,
        "/v1/embeddings",
        "alice",
        &json!({"model": "text-embedding-3-small", "input": "Hello there"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    assert!(c.usage.input_tokens > 0);
    // $0.02 per million: 20 nano-dollars a token.
    assert_eq!(c.cost, Some(Usd::from_nanos(c.usage.input_tokens * 20)));

    // Anthropic Messages (the mock): charged at Claude's prices.
    let r = post(
        gw.addr,
        "/v1/messages",
        "alice",
        &json!({"model": "claude-haiku-4-5", "max_tokens": 30,
        "messages": [{"role": "user", "content": "Hello"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    let u = Usage::from_response_json(
        infergate_core::payload::ApiKind::AnthropicMessages,
        &r.json(),
    )
    .unwrap();
    assert_eq!(c.usage, u);
}

#[tokio::test]
async fn requests_no_budget_applies_to_are_metered_not_limited() {
    let mock = MockProvider::start().await.unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([daily(dollars(0.000_001))]);
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    // No principal: the principal's budget does not apply, the request is not refused, and
    // its charge is still reported once.
    let req = http::Request::post(format!("http://{}/v1/chat/completions", gw.addr))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(Bytes::from(
            chat(20, false, "anonymous").to_string(),
        )))
        .unwrap();
    let r = infergate_testkit::send(req).await;
    assert_eq!(r.status, 200);
    let c = gw.charges.recv().await.unwrap();
    assert_eq!(c.settled, Settled::Reported);
    assert!(c.cost.unwrap() > Usd::ZERO);
    assert!(gw.charges.try_recv().is_err());
}

/// Against an upstream that behaves like a real provider — gzip-compressed, chunked answers —
/// the budget still reads every answer's usage and charges it once, streamed or not: the same
/// charge as for the same request answered plainly.
#[tokio::test]
async fn compressed_chunked_answers_are_charged_their_real_cost() {
    let mock = MockProvider::builder()
        .wire(infergate_mock::Wire::real())
        .start()
        .await
        .unwrap();
    let clock = noon();
    let cfg = BudgetConfig::new([daily(dollars(10.0))]).prices(prices());
    let mut gw = gateway(cfg, memory(&clock), Arc::new(clock.clone()), &mock).await;
    for stream in [false, true] {
        let body = chat(30, stream, "Compressed?");
        let mut charges = Vec::new();
        for gzip in [true, false] {
            let mut req = http::Request::post(format!("http://{}/v1/chat/completions", gw.addr))
                .header("content-type", "application/json")
                .header("x-principal", "alice");
            if gzip {
                req = req.header("accept-encoding", "gzip");
            }
            let req = req
                .body(http_body_util::Full::new(Bytes::from(body.to_string())))
                .unwrap();
            let r = infergate_testkit::send(req).await;
            assert_eq!(r.status, 200);
            if gzip {
                // The upstream was offered gzip, and a real-wire mock then compresses.
                let asked = mock.requests().last().unwrap().headers.clone();
                let offered = asked
                    .get("accept-encoding")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                assert!(offered.contains("gzip"), "stream: {stream}: {offered:?}");
            }
            charges.push(gw.charges.recv().await.unwrap());
        }
        assert_eq!(charges[0].settled, Settled::Reported, "stream: {stream}");
        assert!(charges[0].usage.output_tokens > 0);
        assert_eq!(charges[0].usage, charges[1].usage, "stream: {stream}");
        assert_eq!(charges[0].cost, charges[1].cost);
    }
    assert!(gw.charges.try_recv().is_err());
}
