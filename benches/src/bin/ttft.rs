//! Time to first token through a guarded stream compared with an unguarded one, on loopback:
//! the mock streams 40 words 5 ms apart; the same pipeline runs with no guardrail, with a
//! request-only guardrail, and with response guardrails (PII; PII, secrets and a deny list; a
//! user regex, which holds back the whole 64 bytes since its shape is unknown). `ttft [REQUESTS]` prints p50/p90 of the time to the first non-empty content delta.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate_benches::{streaming_mock, time_to_first_token};
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_guardrail::detect::{DenyList, RegexList};
use infergate_guardrail::{Action, Applies, Check, Detector, GuardrailConfig, GuardrailLayer};
use infergate_testkit::serve;
use tower::Layer;

async fn ttft(addr: std::net::SocketAddr, n: usize) -> (Duration, Duration) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let body =
        r#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"Hi"}]}"#;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        times.push(time_to_first_token(&client, addr, body.to_owned()).await);
    }
    times.sort();
    (times[n / 2], times[n * 9 / 10])
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100);
    let mock = streaming_mock().await;
    let upstream = || UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let pii = |applies| Check::new("pii", Detector::pii(), Action::Redact).applies(applies);
    let plain = serve(PipelineLayer::new(Pipeline::default()).layer(upstream())).await;
    let req_only = serve(
        GuardrailLayer::new(GuardrailConfig::new().check(pii(Applies::Request))).layer(upstream()),
    )
    .await;
    let resp64 = serve(
        GuardrailLayer::new(
            GuardrailConfig::new()
                .check(pii(Applies::Response))
                .hold_back(64),
        )
        .layer(upstream()),
    )
    .await;
    let all_checks = serve(
        GuardrailLayer::new(
            GuardrailConfig::new()
                .check(pii(Applies::Response))
                .check(Check::new("secrets", Detector::Secrets, Action::Block))
                .check(Check::new(
                    "deny",
                    Detector::DenyList(DenyList::new(["project falcon", "internal only"]).unwrap()),
                    Action::Block,
                )),
        )
        .layer(upstream()),
    )
    .await;
    let regex = serve(
        GuardrailLayer::new(GuardrailConfig::new().check(Check::new(
            "tickets",
            Detector::Regex(RegexList::new([("ticket", r"TCK-\d{4}")]).unwrap()),
            Action::Redact,
        )))
        .layer(upstream()),
    )
    .await;
    println!("| pipeline | TTFT p50 | TTFT p90 |\n|---|---|---|");
    for (name, addr) in [
        ("no guardrail", plain),
        ("guardrail on requests only (stream untouched)", req_only),
        ("response guardrail: PII redaction", resp64),
        ("response guardrail: PII, secrets, deny list", all_checks),
        (
            "response guardrail: a user regex (holds the full 64 bytes)",
            regex,
        ),
    ] {
        let _ = ttft(addr, 5).await; // warm-up
        let (p50, p90) = ttft(addr, n).await;
        println!(
            "| {name} | {:.2} ms | {:.2} ms |",
            p50.as_secs_f64() * 1e3,
            p90.as_secs_f64() * 1e3
        );
    }
}
