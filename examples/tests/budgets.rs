//! Budgets in the example gateway with the sample config: the demo key has $1 a day, every
//! non-streamed answer carries its cost, each request is charged once — through failover
//! (the sample's chat group fails over from a 503 backend to an Anthropic-protocol one) and
//! through every translated protocol — and the principal sees its spend at
//! `GET /v1/infergate/budget`.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use infergate::budget::{PriceTable, Usd};
use infergate::core::payload::ApiKind;
use infergate::core::usage::Usage;
use infergate_examples::config::Config;
use infergate_examples::gateway::{self, Gateway};
use infergate_testkit::{Reply, send};
use serde_json::{Value, json};

const DEMO_KEY: &str = "igk_demo_0000000000000000000000000000";

async fn sample() -> (SocketAddr, Gateway) {
    let cfg = Config::parse(include_str!("../gateway/infergate.toml")).unwrap();
    gateway::spawn_local(&cfg).await.unwrap()
}

async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let mut req = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    send(req.body(Full::new(body)).unwrap()).await
}

/// The spent amount the status endpoint shows for the daily budget, in nano-dollars.
async fn spent(addr: SocketAddr) -> u64 {
    let r = request(addr, "GET", "/v1/infergate/budget", Some(DEMO_KEY), None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    let daily = &v["budgets"][0];
    assert_eq!(daily["name"], "daily");
    assert_eq!(daily["unit"], "usd");
    assert_eq!(daily["limit"], "1");
    let dollars: f64 = daily["spent"].as_str().unwrap().parse().unwrap();
    Usd::from_dollars(dollars).unwrap().nanos()
}

fn cost_of(model: &str, body: &Value) -> Usd {
    let usage = Usage::from_response_json(ApiKind::ChatCompletions, body).expect("usage");
    PriceTable::builtin()
        .lookup(model)
        .expect("priced")
        .cost(&usage)
}

#[tokio::test]
async fn the_status_endpoint_is_the_principals_own() {
    let (addr, _gw) = sample().await;
    let r = request(addr, "GET", "/v1/infergate/budget", None, None).await;
    assert_eq!(r.status, 401);
    let r = request(
        addr,
        "GET",
        "/v1/infergate/budget",
        Some("igk_nope_0000000000000000000000000000"),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = request(addr, "GET", "/v1/infergate/budget", Some(DEMO_KEY), None).await;
    assert_eq!(r.status, 200);
    let v = r.json();
    assert_eq!(v["object"], "budget.status");
    assert_eq!(v["tenant"], "demo");
    assert_eq!(v["budgets"][0]["spent"], "0");
    assert_eq!(v["budgets"][0]["remaining"], "1");
    assert!(v["budgets"][0]["resets_at"].as_u64().unwrap() > 1_700_000_000);
    assert!(!r.text().contains("igk_demo"), "never the key");
}

#[tokio::test]
async fn each_answer_is_charged_once_whatever_protocol_or_failover_served_it() {
    let (addr, gw) = sample().await;
    let limiter = gw.budget.clone().expect("the sample has budgets");
    let mut total = 0u64;
    // gpt-4o-mini through the chat failover group (503, then the Anthropic-protocol backend);
    // claude-* on the Anthropic mock, gemini-* on the Gemini mock, bedrock/* on the Bedrock
    // mock (the router names the model): each translated back to OpenAI's shape.
    for (i, (model, priced_as)) in [
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5"),
        ("gemini-2.0-flash", "gemini-2.0-flash"),
        ("bedrock/claude", "anthropic.claude-3-5-haiku-20241022-v1:0"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = json!({"model": model, "max_tokens": 50,
            "messages": [{"role": "user", "content": format!("Budget question {i}: what is 2+{i}?")}]});
        let r = request(
            addr,
            "POST",
            "/v1/chat/completions",
            Some(DEMO_KEY),
            Some(body),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let cost = cost_of(priced_as, &r.json());
        assert!(cost > Usd::ZERO);
        assert_eq!(
            r.headers["x-infergate-cost-usd"],
            cost.to_string().as_str(),
            "{model} via {:?}",
            r.headers.get("x-infergate-backend")
        );
        total += cost.nanos();
        limiter.settled().await;
        assert_eq!(spent(addr).await, total, "{model}: charged once");
    }
    // A stream: charged from its usage chunk, once.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 50, "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Budget stream question"}]});
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(DEMO_KEY),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 200);
    let usage = r
        .text()
        .lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find_map(|v| Usage::from_response_json(ApiKind::ChatCompletions, &v))
        .unwrap_or_else(|| panic!("no usage chunk: {}", r.text()));
    total += PriceTable::builtin()
        .lookup("gpt-4o-mini")
        .unwrap()
        .cost(&usage)
        .nanos();
    limiter.settled().await;
    assert_eq!(spent(addr).await, total);
    // The same request again is a cache hit: the budget (after the cache in the pipeline)
    // never sees it, and nothing is charged.
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 50,
        "messages": [{"role": "user", "content": "Budget question 0: what is 2+0?"}]});
    let r = request(
        addr,
        "POST",
        "/v1/chat/completions",
        Some(DEMO_KEY),
        Some(body),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-cache"], "HIT");
    assert!(r.headers.get("x-infergate-cost-usd").is_none());
    limiter.settled().await;
    assert_eq!(spent(addr).await, total);
}

#[tokio::test]
async fn the_anthropic_sdk_path_is_charged_at_claude_prices() {
    let (addr, gw) = sample().await;
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 60,
        "messages": [{"role": "user", "content": "Hello from the Messages API"}]});
    let r = request(addr, "POST", "/v1/messages", Some(DEMO_KEY), Some(body)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let usage = Usage::from_response_json(ApiKind::AnthropicMessages, &r.json()).unwrap();
    let cost = PriceTable::builtin()
        .lookup("claude-sonnet-4-5")
        .unwrap()
        .cost(&usage);
    assert_eq!(r.headers["x-infergate-cost-usd"], cost.to_string().as_str());
    gw.budget.as_ref().unwrap().settled().await;
    assert_eq!(spent(addr).await, cost.nanos());
}

/// With the budget before the cache (the other order from the sample's), a cache hit is
/// metered too: one charge, zero cost, marked as a hit.
#[tokio::test]
async fn a_budget_before_the_cache_records_hits_at_zero_cost() {
    use infergate::budget::{Budget, BudgetConfig, BudgetLimiter, Limit, Scope, Settled, Window};
    use infergate::cache::{Cache, CacheConfig};
    use infergate::core::{Pipeline, PipelineLayer, Principal};
    use tower::{Layer, ServiceBuilder};

    let mock = infergate::mock::MockProvider::start().await.unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let budget = BudgetLimiter::new(BudgetConfig::new([Budget::new(
        "daily",
        Scope::Principal,
        Limit::Usd(Usd::from_dollars(1.0).unwrap()),
        Window::Day,
    )]))
    .on_charge(move |c| {
        let _ = tx.send(c.clone());
    });
    let pipeline = Pipeline::builder()
        .processor(budget)
        .processor(Cache::new(CacheConfig::new()))
        .build();
    let upstream = infergate::client::UpstreamClient::new(&mock.url())
        .unwrap()
        .into_proxy();
    let svc = ServiceBuilder::new()
        .map_request(|mut req: http::Request<hyper::body::Incoming>| {
            Principal::new("alice", "acme").insert_into(req.extensions_mut());
            req
        })
        .service(PipelineLayer::new(pipeline).layer(upstream));
    let addr = infergate_testkit::serve(svc).await;
    let body = json!({"model": "gpt-4o-mini", "max_tokens": 20,
        "messages": [{"role": "user", "content": "Cache me"}]});
    let first = request(
        addr,
        "POST",
        "/v1/chat/completions",
        None,
        Some(body.clone()),
    )
    .await;
    assert_eq!(first.headers["x-cache"], "MISS");
    let c = rx.recv().await.unwrap();
    assert_eq!((c.settled, c.cache_hit), (Settled::Reported, false));
    assert!(c.cost.unwrap() > Usd::ZERO);
    let second = request(addr, "POST", "/v1/chat/completions", None, Some(body)).await;
    assert_eq!(second.headers["x-cache"], "HIT");
    let c = rx.recv().await.unwrap();
    assert_eq!(
        (c.settled, c.cache_hit, c.cost),
        (Settled::Refunded, true, Some(Usd::ZERO))
    );
    assert!(rx.try_recv().is_err());
}
