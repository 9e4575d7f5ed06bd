//! Time to first token through pingora with and without the infergate pipeline, on loopback:
//! the mock streams 40 words 5 ms apart; one pingora proxy only forwards, the other runs
//! `infergate-pingora` with a pipeline (guardrail on requests, exact cache, rate limiter — the
//! cache tees the stream and the rate limiter reads its usage, event by event) and failover
//! over one backend; a third runs `infergate-pingora` with an empty pipeline. Requests take
//! turns between them, so that drift on this machine hits
//! both alike. `ttft_pingora [REQUESTS]` prints p50/p90/mean of the time to the first
//! non-empty content delta, and the ratio.

#![allow(clippy::unwrap_used, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_benches::{streaming_mock, time_to_first_token};
use infergate_cache::{Cache, CacheConfig, MemoryStore};
use infergate_core::Pipeline;
use infergate_failover::FailoverPolicy;
use infergate_guardrail::{Action, Applies, Check, Detector, Guardrail, GuardrailConfig};
use infergate_pingora::{PipelineProxy, Upstream};
use infergate_ratelimit::{Limits, RateLimitConfig, TokenRateLimiter};
use pingora_core::upstreams::peer::HttpPeer;
use pingora_proxy::{ProxyHttp, Session};

/// pingora with nothing but a peer.
struct Bare(SocketAddr);

#[async_trait::async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut (),
    ) -> pingora_core::Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.0, false, String::new())))
    }
}

fn spawn<P>(proxy: P) -> SocketAddr
where
    P: ProxyHttp + Send + Sync + 'static,
    P::CTX: Send + Sync,
{
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    infergate_pingora::spawn_server(proxy, addr);
    addr
}

async fn one(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    i: usize,
) -> Duration {
    // Each request different: cache misses throughout.
    // TTFT_INCLUDE_USAGE=1: the client asks for the usage chunk itself (the rate limiter
    // then leaves the body as it is).
    let usage = if std::env::var("TTFT_INCLUDE_USAGE").is_ok_and(|v| v == "1") {
        r#","stream_options":{"include_usage":true}"#
    } else {
        ""
    };
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":true{usage},"messages":[{{"role":"user","content":"Hi {i}"}}]}}"#
    );
    time_to_first_token(client, addr, body).await
}

fn stats(mut t: Vec<Duration>) -> (f64, f64, f64) {
    t.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = t.iter().map(|d| ms(*d)).sum::<f64>() / t.len() as f64;
    (ms(t[t.len() / 2]), ms(t[t.len() * 9 / 10]), mean)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200);
    let mock = streaming_mock().await;
    let bare = spawn(Bare(mock.addr()));
    // TTFT_BLOCKS=guardrail,cache,ratelimit (default: all three) picks the blocks.
    let blocks =
        std::env::var("TTFT_BLOCKS").unwrap_or_else(|_| "guardrail,cache,ratelimit".into());
    let mut pipeline = Pipeline::builder();
    if blocks.contains("guardrail") {
        pipeline =
            pipeline.processor(Guardrail::new(GuardrailConfig::new().check(
                Check::new("pii", Detector::pii(), Action::Redact).applies(Applies::Request),
            )));
    }
    if blocks.contains("cache") {
        pipeline = pipeline.processor(Cache::new(
            CacheConfig::new().store(Arc::new(MemoryStore::new(100_000, 256 << 20))),
        ));
    }
    if blocks.contains("ratelimit") {
        pipeline = pipeline.processor(TokenRateLimiter::new(RateLimitConfig::new(Limits {
            requests_per_minute: Some(1_000_000),
            tokens_per_minute: Some(1_000_000_000),
            ..Limits::default()
        })));
    }
    let pipeline = pipeline.build();
    let piped = spawn(PipelineProxy::new(
        pipeline,
        vec![Upstream::new("mock", mock.addr().to_string())],
        FailoverPolicy::default(),
    ));
    let empty = spawn(PipelineProxy::new(
        Pipeline::default(),
        vec![Upstream::new("mock", mock.addr().to_string())],
        FailoverPolicy::default(),
    ));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    for addr in [bare, piped, empty] {
        let mut up = false;
        for _ in 0..500 {
            if tokio::net::TcpStream::connect(addr).await.is_ok() {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(up, "pingora did not start");
        for i in 0..5 {
            one(&client, addr, 1_000_000 + i).await; // warm-up
        }
    }
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        a.push(one(&client, bare, i).await);
        b.push(one(&client, piped, i).await);
        c.push(one(&client, empty, i).await);
    }
    let (a50, a90, am) = stats(a);
    let (b50, b90, bm) = stats(b);
    let (c50, c90, cm) = stats(c);
    println!("| pingora | TTFT p50 | TTFT p90 | mean |\n|---|---|---|---|");
    println!("| without the pipeline | {a50:.3} ms | {a90:.3} ms | {am:.3} ms |");
    println!("| with infergate-pingora, empty pipeline | {c50:.3} ms | {c90:.3} ms | {cm:.3} ms |");
    println!(
        "| with infergate-pingora (guardrail, cache, rate limiter, failover) | {b50:.3} ms | {b90:.3} ms | {bm:.3} ms |"
    );
    println!(
        "\nratio with/without: p50 {:.3}, mean {:.3}; empty pipeline: p50 {:.3}, mean {:.3} ({n} requests each, taking turns)",
        b50 / a50,
        bm / am,
        c50 / a50,
        cm / am
    );
}
