//! Telemetry in the example gateway with the sample config, every block on: the OpenTelemetry
//! SDK's in-memory exporters see the exact attributes of a cache hit, a guardrail block, a
//! 429 and a failed-over request; `GET /metrics` on the admin address shows the `gen_ai_*`
//! families with those requests' tokens and the `infergate_*` families per processor.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use infergate::observe::{Telemetry, TelemetryConfig};
use infergate_examples::config::Config;
use infergate_examples::gateway::{self, Gateway};
use infergate_testkit::{Reply, send};
use opentelemetry::Value;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value as Json, json};

const DEMO_KEY: &str = "igk_demo_0000000000000000000000000000";

struct Setup {
    addr: SocketAddr,
    gw: Gateway,
    spans: InMemorySpanExporter,
    _metrics: InMemoryMetricExporter,
}

async fn start(toml: &str) -> Setup {
    let cfg = Config::parse(toml).unwrap();
    let section = cfg
        .telemetry
        .as_ref()
        .expect("the sample config has [telemetry]");
    // The sample's telemetry, with in-memory exporters and no access log on stdout.
    let mut tc: TelemetryConfig = section.config(&cfg.backends).unwrap();
    tc.access_log = None;
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    let telemetry = Telemetry::builder(tc)
        .span_exporter(spans.clone())
        .metric_exporter(metrics.clone())
        .build()
        .unwrap();
    let (addr, gw) = gateway::spawn_local_with(&cfg, Some(telemetry))
        .await
        .unwrap();
    Setup {
        addr,
        gw,
        spans,
        _metrics: metrics,
    }
}

fn sample() -> String {
    include_str!("../gateway/infergate.toml").to_owned()
}

async fn chat(addr: SocketAddr, body: &Json) -> Reply {
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {DEMO_KEY}"))
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    send(req).await
}

fn attrs(span: &SpanData) -> BTreeMap<String, Value> {
    span.attributes
        .iter()
        .map(|kv| (kv.key.as_str().to_owned(), kv.value.clone()))
        .collect()
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned().into())
}

/// The spans of the one trace whose request span has `status`, request span first.
async fn trace_of(setup: &Setup, status: i64) -> Vec<SpanData> {
    setup.gw.telemetry.as_ref().unwrap().flush().await;
    let spans = setup.spans.get_finished_spans().unwrap();
    let server: Vec<&SpanData> = spans
        .iter()
        .filter(|x| {
            x.span_kind == SpanKind::Server
                && attrs(x).get("http.response.status_code") == Some(&Value::I64(status))
        })
        .collect();
    let root = *server.last().expect("a request span with that status");
    let mut out = vec![root.clone()];
    out.extend(
        spans
            .iter()
            .filter(|x| {
                x.span_context.trace_id() == root.span_context.trace_id()
                    && x.span_kind == SpanKind::Client
            })
            .cloned(),
    );
    out
}

fn decisions(span: &SpanData) -> Vec<(String, String, String)> {
    span.events
        .events
        .iter()
        .filter(|e| e.name == "infergate.processor")
        .map(|e| {
            let get = |k: &str| {
                e.attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == k)
                    .map(|kv| kv.value.to_string())
                    .unwrap_or_default()
            };
            (
                get("infergate.processor"),
                get("infergate.phase"),
                get("infergate.decision"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_failed_over_request_has_a_span_per_attempt() {
    let setup = start(&sample()).await;
    let r = chat(
        setup.addr,
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Fail over, please"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["x-infergate-attempts"], "2");
    let trace = trace_of(&setup, 200).await;
    let a = attrs(&trace[0]);
    assert_eq!(a["infergate.backend"], s("steady"));
    assert_eq!(a["infergate.attempts"], Value::I64(2));
    // The answering backend speaks Anthropic's protocol (translated for the OpenAI client).
    assert_eq!(a["gen_ai.provider.name"], s("anthropic"));
    assert_eq!(a["infergate.principal"], s("demo"));
    assert_eq!(a["infergate.tenant"], s("demo"));
    assert_eq!(a["infergate.cache"], s("miss"));
    let usage = r.json()["usage"].clone();
    assert_eq!(
        a["gen_ai.usage.input_tokens"],
        Value::I64(usage["prompt_tokens"].as_i64().unwrap())
    );
    // Two attempts: the 503 of `flaky`, then `steady`'s answer, each a child span.
    let attempts = &trace[1..];
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    let mut by_backend: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for x in attempts {
        let a = attrs(x);
        assert_eq!(x.parent_span_id, trace[0].span_context.span_id());
        by_backend.insert(a["infergate.backend"].to_string(), a);
    }
    let flaky = &by_backend["flaky"];
    assert_eq!(flaky["infergate.attempt.outcome"], s("status"));
    assert_eq!(flaky["http.response.status_code"], Value::I64(503));
    assert_eq!(flaky["error.type"], s("503"));
    assert_eq!(flaky["gen_ai.provider.name"], s("openai"));
    let steady = &by_backend["steady"];
    assert_eq!(steady["infergate.attempt.outcome"], s("answer"));
    assert_eq!(steady["gen_ai.provider.name"], s("anthropic"));
    assert!(!steady.contains_key("error.type"));
    assert_eq!(
        steady["gen_ai.usage.output_tokens"],
        Value::I64(usage["completion_tokens"].as_i64().unwrap())
    );
    // Every processor of the sample's pipeline reported its request phase (telemetry records
    // the others, not itself).
    let d = decisions(&trace[0]);
    assert!(!d.iter().any(|(n, _, _)| n == "telemetry"), "{d:?}");
    for p in [
        "identity",
        "router",
        "guardrail",
        "cache",
        "budget",
        "token-rate-limit",
    ] {
        assert!(
            d.iter()
                .any(|(n, ph, dec)| n == p && ph == "request" && dec == "continue"),
            "{p} in {d:?}"
        );
    }
}

#[tokio::test]
async fn a_cache_hit_says_so_and_spends_no_tokens() {
    let setup = start(&sample()).await;
    let body =
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Cache me"}]});
    assert_eq!(chat(setup.addr, &body).await.status, 200);
    let hit = chat(setup.addr, &body).await;
    assert_eq!(hit.headers["x-cache"], "HIT");
    let t = setup.gw.telemetry.as_ref().unwrap();
    t.flush().await;
    let spans = setup.spans.get_finished_spans().unwrap();
    let hit_span = spans
        .iter()
        .filter(|x| x.span_kind == SpanKind::Server)
        .find(|x| attrs(x).get("infergate.cache") == Some(&s("hit")))
        .expect("the hit's span");
    let a = attrs(hit_span);
    assert_eq!(a["http.response.status_code"], Value::I64(200));
    assert!(!a.contains_key("infergate.attempts"));
    // No upstream attempt for a hit.
    assert!(!spans.iter().any(|x| {
        x.span_kind == SpanKind::Client
            && x.span_context.trace_id() == hit_span.span_context.trace_id()
    }));
    assert!(
        decisions(hit_span)
            .iter()
            .any(|(n, ph, dec)| n == "cache" && ph == "request" && dec == "respond")
    );
    // The tokens of the hit are not counted as spent: one miss's worth in the counter.
    t.caught_up().await;
    let text = t.prometheus_text();
    assert!(text.contains("infergate_cache_lookups_total{"), "{text}");
    let counted: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_client_token_usage_count{")
                && l.contains("gen_ai_token_type=\"input\"")
        })
        .collect();
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert!(counted[0].ends_with(" 1"), "{counted:?}");
}

#[tokio::test]
async fn a_guardrail_block_is_an_error_with_its_reason_and_processor() {
    let setup = start(&sample()).await;
    let r = chat(
        setup.addr,
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "key AKIAIOSFODNN7EXAMPLE"}]}),
    )
    .await;
    assert_eq!(r.status, 400);
    let trace = trace_of(&setup, 400).await;
    let a = attrs(&trace[0]);
    assert_eq!(a["infergate.rejection.processor"], s("guardrail"));
    let reason = a["infergate.rejection.reason"].to_string();
    assert_eq!(a["error.type"], s(&reason));
    assert_eq!(trace.len(), 1, "nothing went upstream");
    assert!(
        decisions(&trace[0])
            .iter()
            .any(|(n, ph, dec)| n == "guardrail" && ph == "request" && dec == "reject")
    );
    // Never the matched text.
    let all = format!("{:?}", setup.spans.get_finished_spans().unwrap());
    assert!(!all.contains("AKIAIOSFODNN7EXAMPLE"));
    let t = setup.gw.telemetry.as_ref().unwrap();
    t.caught_up().await;
    let text = t.prometheus_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("infergate_rejections_total{")
                && l.contains("infergate_processor=\"guardrail\"")
                && l.ends_with(" 1")),
        "{text}"
    );
}

#[tokio::test]
async fn a_429_from_the_rate_limiter_is_recorded_with_its_reason() {
    let toml = sample().replace("requests_per_minute = 600", "requests_per_minute = 1");
    let setup = start(&toml).await;
    let body = json!({"model": "gpt-4o-mini", "temperature": 0.7, "messages": [{"role": "user", "content": "One"}]});
    assert_eq!(chat(setup.addr, &body).await.status, 200);
    let body = json!({"model": "gpt-4o-mini", "temperature": 0.7, "messages": [{"role": "user", "content": "Two"}]});
    let r = chat(setup.addr, &body).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let trace = trace_of(&setup, 429).await;
    let a = attrs(&trace[0]);
    assert_eq!(a["infergate.rejection.processor"], s("token-rate-limit"));
    assert_eq!(a["infergate.rejection.reason"], s("rate_limit_exceeded"));
    assert_eq!(a["error.type"], s("rate_limit_exceeded"));
    assert_eq!(trace.len(), 1);
    let t = setup.gw.telemetry.as_ref().unwrap();
    t.caught_up().await;
    let text = t.prometheus_text();
    assert!(
        text.lines()
            .any(|l| l.starts_with("infergate_processor_decisions_total{")
                && l.contains("infergate_decision=\"reject\"")
                && l.contains("infergate_processor=\"token-rate-limit\"")
                && l.contains("infergate_reason=\"rate_limit_exceeded\"")),
        "{text}"
    );
    assert!(text.contains("infergate_ratelimit_remaining{"), "{text}");
}

#[tokio::test]
async fn metrics_are_served_on_the_admin_address() {
    let setup = start(&sample()).await;
    let mut input = 0;
    let mut output = 0;
    for i in 0..3 {
        let r = chat(
            setup.addr,
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": format!("Question {i}")}]}),
        )
        .await;
        assert_eq!(r.status, 200);
        input += r.json()["usage"]["prompt_tokens"].as_i64().unwrap();
        output += r.json()["usage"]["completion_tokens"].as_i64().unwrap();
    }
    let admin = setup.gw.admin_addr.unwrap();
    let req = http::Request::get(format!("http://{admin}/metrics"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let r = send(req).await;
    assert_eq!(r.status, 200);
    assert!(
        r.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = r.text();
    let sum = |t: &str| -> i64 {
        text.lines()
            .filter(|l| {
                l.starts_with("gen_ai_client_token_usage_sum{")
                    && l.contains(&format!("gen_ai_token_type=\"{t}\""))
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<i64>().unwrap())
            .sum()
    };
    assert_eq!(sum("input"), input, "{text}");
    assert_eq!(sum("output"), output);
    for family in [
        "# TYPE gen_ai_client_token_usage histogram",
        "# TYPE gen_ai_server_request_duration_seconds histogram",
        "# TYPE gen_ai_client_operation_duration_seconds histogram",
        "# TYPE infergate_requests_total counter",
        "# TYPE infergate_processor_duration_seconds histogram",
        "# TYPE infergate_failover_attempts_total counter",
        "# TYPE infergate_cost_usd_total counter",
    ] {
        assert!(text.contains(family), "{family} missing:\n{text}");
    }
    for p in [
        "identity",
        "router",
        "guardrail",
        "cache",
        "budget",
        "token-rate-limit",
    ] {
        assert!(
            text.contains(&format!(
                "infergate_processor_decisions_total{{infergate_decision=\"continue\",infergate_phase=\"request\",infergate_processor=\"{p}\"}} 3"
            )),
            "{p}:\n{text}"
        );
    }
    // The principal by id, never its key.
    assert!(text.contains("infergate_principal=\"demo\""));
    assert!(!text.contains(DEMO_KEY));
}
