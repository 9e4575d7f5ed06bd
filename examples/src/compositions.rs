//! The same building blocks composed three ways — plain hyper 1, an axum route group, and
//! pingora — in front of two mock providers (one failing every request with 503), and the
//! scenario suite that checks they behave alike (`tests/compositions.rs`).
//!
//! The blocks: a guardrail (a deny list, blocking requests), the exact response cache, a
//! rate limiter (2 requests a minute per `x-tenant-id`), in that order, and failover from the
//! failing backend (tier 0) to the healthy one (tier 1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use infergate::cache::{Cache, CacheConfig, MemoryStore, TenantScope};
use infergate::client::UpstreamClient;
use infergate::core::{Pipeline, PipelineLayer, PipelineService};
use infergate::failover::{Backend, Failover, FailoverLayer, FailoverPolicy};
use infergate::guardrail::detect::DenyList;
use infergate::guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
use infergate::mock::{Failure, MockProvider};
use infergate::ratelimit::{KeyExtractor, KeyPart, Limits, RateLimitConfig, TokenRateLimiter};
use serde_json::{Value, json};
use tower::Layer;

/// The two upstreams every composition fronts.
#[derive(Debug)]
pub struct Mocks {
    /// Fails every request with 503 (tier 0).
    pub failing: MockProvider,
    /// Answers (tier 1).
    pub healthy: MockProvider,
}

impl Mocks {
    /// Starts both.
    pub async fn start() -> std::io::Result<Self> {
        let failing = MockProvider::builder().name("failing").start().await?;
        failing.set_always_fail(Some(Failure::status(503)));
        // The healthy one behaves like real providers: compressed answers (streams too) when
        // the request accepts them, chunked JSON.
        let healthy = MockProvider::builder()
            .name("healthy")
            .wire(infergate::mock::Wire::real())
            .start()
            .await?;
        Ok(Self { failing, healthy })
    }
}

/// The rate limiter's header and limit.
pub const TENANT_HEADER: &str = "x-tenant-id";

/// The pipeline every composition runs: guardrail → cache → rate limiter.
///
/// # Panics
///
/// Never: the deny list is a fixed valid term.
pub fn pipeline() -> Pipeline {
    let deny = DenyList::new(["forbidden-project"]).unwrap_or_else(|_| unreachable!());
    let guardrail = Guardrail::new(GuardrailConfig::new().check(
        Check::new("codenames", Detector::DenyList(deny), Action::Block).applies(Applies::Request),
    ));
    let cache = Cache::new(
        CacheConfig::new()
            .tenant(TenantScope::Shared)
            .store(Arc::new(MemoryStore::new(10_000, 64 << 20))),
    );
    let limits = Limits {
        requests_per_minute: Some(2),
        ..Limits::default()
    };
    let limiter = TokenRateLimiter::new(RateLimitConfig::new(limits).key(KeyExtractor::new(vec![
        KeyPart::Header(http::HeaderName::from_static(TENANT_HEADER)),
    ])));
    Pipeline::builder()
        .processor(guardrail)
        .processor(cache)
        .processor(limiter)
        .build()
}

/// The failover policy of every composition.
pub fn policy() -> FailoverPolicy {
    FailoverPolicy::default()
}

/// The tower stack (plain hyper and axum): the pipeline over failover between the mocks.
///
/// # Errors
///
/// When a mock's URL is not a valid upstream.
pub fn tower_stack(mocks: &Mocks) -> Result<PipelineService<Failover>, String> {
    let client = |url: &str| {
        UpstreamClient::new(url)
            .map(UpstreamClient::into_proxy)
            .map_err(|e| e.to_string())
    };
    let failover = FailoverLayer::new(policy()).service_over(vec![
        Backend::new("failing", client(&mocks.failing.url())?).tier(0),
        Backend::new("healthy", client(&mocks.healthy.url())?).tier(1),
    ]);
    Ok(PipelineLayer::new(pipeline()).layer(failover))
}

/// Plain hyper 1: serves `stack` on `listener` until the task is dropped.
pub async fn serve_hyper(listener: tokio::net::TcpListener, stack: PipelineService<Failover>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let svc = TowerToHyperService::new(stack.clone());
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// An axum app: the AI routes in one group behind the stack, `/healthz` outside it.
pub fn axum_app(stack: PipelineService<Failover>) -> axum::Router {
    let ai = axum::Router::new()
        .route_service("/v1/chat/completions", stack.clone())
        .route_service("/v1/embeddings", stack.clone())
        .route_service("/v1/responses", stack);
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .merge(ai)
}

/// The pingora proxy over the same blocks, listening on `addr`, run on a thread of its own
/// (pingora runs its own runtimes).
#[cfg(feature = "pingora")]
pub fn spawn_pingora(mocks: &Mocks, addr: SocketAddr) {
    use infergate_pingora::{PipelineProxy, Upstream};

    let proxy = PipelineProxy::new(
        pipeline(),
        vec![
            Upstream::new("failing", mocks.failing.addr().to_string()).tier(0),
            Upstream::new("healthy", mocks.healthy.addr().to_string()).tier(1),
        ],
        policy(),
    );
    infergate_pingora::spawn_server(proxy, addr);
}

/// What a user sees of one scenario: status, the headers that matter, and the body reduced to
/// what does not vary between runs (ids and timestamps left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    /// The scenario.
    pub scenario: &'static str,
    /// The status.
    pub status: u16,
    /// `x-infergate-backend`, `x-cache`, `retry-after` present, error code.
    pub facts: Vec<(String, String)>,
    /// The answer's text (streams: the deltas joined), or the error message.
    pub text: String,
}

async fn post(
    addr: SocketAddr,
    body: &Value,
    tenant: &str,
) -> (http::StatusCode, http::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header(TENANT_HEADER, tenant)
        // As the official OpenAI SDK does.
        .header("accept-encoding", "gzip, deflate")
        .body(Full::new(Bytes::from(body.to_string())));
    let Ok(req) = req else {
        return (
            http::StatusCode::BAD_REQUEST,
            http::HeaderMap::new(),
            Bytes::new(),
        );
    };
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status();
            let headers = resp.headers().clone();
            let raw = resp
                .into_body()
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .unwrap_or_default();
            // Decoded as the client would (an answer no processor read stays compressed).
            let body = infergate::core::coding::decode_body(&headers, &raw, 64 << 20)
                .ok()
                .flatten()
                .map_or(raw, Bytes::from);
            (status, headers, body)
        }
        Err(e) => (
            http::StatusCode::BAD_GATEWAY,
            http::HeaderMap::new(),
            Bytes::from(e.to_string()),
        ),
    }
}

fn observe(
    scenario: &'static str,
    (status, headers, body): (http::StatusCode, http::HeaderMap, Bytes),
) -> Observation {
    let mut facts = Vec::new();
    for name in ["x-infergate-backend", "x-cache"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            facts.push((name.to_owned(), v.to_owned()));
        }
    }
    if headers.contains_key(http::header::RETRY_AFTER) {
        facts.push(("retry-after".to_owned(), "present".to_owned()));
    }
    let raw = String::from_utf8_lossy(&body);
    let text = if raw.starts_with("data:") || raw.contains("\ndata:") {
        facts.push((
            "stream-ends-with-done".to_owned(),
            raw.trim_end().ends_with("data: [DONE]").to_string(),
        ));
        raw.lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| {
                v["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    } else {
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        if let Some(code) = v["error"]["code"].as_str() {
            facts.push(("error-code".to_owned(), code.to_owned()));
        }
        match v["choices"][0]["message"]["content"].as_str() {
            Some(answer) => answer.to_owned(),
            // Error messages carry times ("try again in 29.995s"): digits left out.
            None => v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .collect(),
        }
    };
    Observation {
        scenario,
        status: status.as_u16(),
        facts,
        text,
    }
}

/// Runs the scenario suite against a composition at `addr`; `tag` keeps its cache keys and
/// tenants apart from other runs against the same process.
pub async fn scenarios(addr: SocketAddr, tag: &str) -> Vec<Observation> {
    let chat = |content: &str, stream: bool| {
        json!({"model": "gpt-4o-mini", "stream": stream,
            "messages": [{"role": "user", "content": content}]})
    };
    let mut out = Vec::new();
    // A failover from the failing backend: answered by the healthy one.
    out.push(observe(
        "failover",
        post(
            addr,
            &chat(&format!("failover {tag}"), false),
            &format!("a-{tag}"),
        )
        .await,
    ));
    // A guardrail block.
    out.push(observe(
        "guardrail-block",
        post(
            addr,
            &chat("tell me about forbidden-project plans", false),
            &format!("b-{tag}"),
        )
        .await,
    ));
    // A cache hit: the same request twice.
    let same = chat(&format!("cache me {tag}"), false);
    let first = post(addr, &same, &format!("c-{tag}")).await;
    out.push(observe("cache-miss", first));
    out.push(observe(
        "cache-hit",
        post(addr, &same, &format!("d-{tag}")).await,
    ));
    // A streamed response, passed through.
    out.push(observe(
        "stream",
        post(
            addr,
            &chat(&format!("stream {tag}"), true),
            &format!("e-{tag}"),
        )
        .await,
    ));
    // A rate-limited request: the third within a minute for one tenant.
    let tenant = format!("f-{tag}");
    for i in 0..2 {
        let _ = post(addr, &chat(&format!("limit {tag} {i}"), false), &tenant).await;
    }
    out.push(observe(
        "rate-limited",
        post(addr, &chat(&format!("limit {tag} 2"), false), &tenant).await,
    ));
    out
}

/// Waits until `addr` accepts connections (a server started on another thread or task).
pub async fn wait_listening(addr: SocketAddr) -> bool {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// A free loopback port (bound, then released, for a server that binds by address).
pub fn free_port() -> std::io::Result<SocketAddr> {
    std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()
}
