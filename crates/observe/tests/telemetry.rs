//! Telemetry over loopback HTTP: a real hyper server with the pipeline, the mock provider (or
//! a stream the test writes) upstream, the OpenTelemetry SDK's in-memory exporters and a
//! small OTLP/HTTP receiver that decodes the official protobufs.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use infergate_client::UpstreamClient;
use infergate_core::Pipeline;
use infergate_mock::MockProvider;
use infergate_observe::{AccessLogConfig, AccessLogSink, OtlpConfig, Telemetry, TelemetryConfig};
use infergate_testkit::{Reply, serve};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{KeyValue, Value};
use opentelemetry_sdk::metrics::InMemoryMetricExporter;
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData, ResourceMetrics};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use serde_json::{Value as Json, json};
use tower::Layer;

/// A processor after telemetry that lets everything through: what telemetry records of the
/// others (its own phases are not recorded).
struct Pass;

#[async_trait::async_trait]
impl infergate_core::Processor for Pass {
    fn name(&self) -> &str {
        "pass"
    }
    fn phases(&self) -> infergate_core::Phases {
        infergate_core::Phases::REQUEST
    }
}

/// Telemetry first, then [`Pass`].
fn pipeline(telemetry: &Telemetry) -> Pipeline {
    Pipeline::builder()
        .processor(telemetry.processor())
        .processor(Pass)
        .build()
}

struct Setup {
    addr: SocketAddr,
    telemetry: Telemetry,
    spans: InMemorySpanExporter,
    metrics: InMemoryMetricExporter,
}

fn build(config: TelemetryConfig) -> (Telemetry, InMemorySpanExporter, InMemoryMetricExporter) {
    let spans = InMemorySpanExporter::default();
    let metrics = InMemoryMetricExporter::default();
    let telemetry = Telemetry::builder(config)
        .span_exporter(spans.clone())
        .metric_exporter(metrics.clone())
        .build()
        .unwrap();
    (telemetry, spans, metrics)
}

async fn gateway_to<S>(config: TelemetryConfig, upstream: S) -> Setup
where
    S: tower::Service<
            http::Request<infergate_core::Body>,
            Response = http::Response<infergate_core::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send,
{
    let (telemetry, spans, metrics) = build(config);
    let pipeline = pipeline(&telemetry);
    let addr = serve(pipeline.layer().layer(upstream)).await;
    Setup {
        addr,
        telemetry,
        spans,
        metrics,
    }
}

async fn post(addr: SocketAddr, path: &str, body: &Json, headers: &[(&str, &str)]) -> Reply {
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    infergate_testkit::send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
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

fn server_span(spans: &[SpanData]) -> &SpanData {
    let mut server = spans.iter().filter(|s| s.span_kind == SpanKind::Server);
    let one = server.next().expect("a request span");
    assert!(server.next().is_none(), "one request span: {spans:#?}");
    one
}

/// The histogram data points of `name` whose attributes include `with`: (sum, count) each.
fn histogram(rm: &[ResourceMetrics], name: &str, with: &[KeyValue]) -> Vec<(f64, u64)> {
    let last = rm.last().expect("metrics exported");
    let mut out = Vec::new();
    for sm in last.scope_metrics() {
        for m in sm.metrics().filter(|m| m.name() == name) {
            let matches = |a: &mut dyn Iterator<Item = &KeyValue>| {
                let a: Vec<&KeyValue> = a.collect();
                with.iter().all(|w| a.contains(&w))
            };
            match m.data() {
                AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        if matches(&mut p.attributes()) {
                            out.push((p.sum() as f64, p.count()));
                        }
                    }
                }
                AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                    for p in h.data_points() {
                        if matches(&mut p.attributes()) {
                            out.push((p.sum(), p.count()));
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

fn chat(stream: bool) -> Json {
    let mut v = json!({"model": "gpt-4o-mini", "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "Say hello"}]});
    if stream {
        v["stream_options"] = json!({"include_usage": true});
    }
    v
}

#[tokio::test]
async fn a_non_streamed_request_is_one_span_with_the_conventions_attributes() {
    let mock = MockProvider::builder().record(true).start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    let r = post(gw.addr, "/v1/chat/completions", &chat(false), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let body = r.json();
    gw.telemetry.flush().await;

    let spans = gw.spans.get_finished_spans().unwrap();
    let span = server_span(&spans);
    let a = attrs(span);
    assert_eq!(span.name, "chat gpt-4o-mini");
    assert_eq!(a["gen_ai.operation.name"], s("chat"));
    assert_eq!(a["gen_ai.provider.name"], s("openai"));
    assert_eq!(a["gen_ai.request.model"], s("gpt-4o-mini"));
    assert_eq!(a["gen_ai.request.max_tokens"], Value::I64(64));
    assert_eq!(
        a["gen_ai.response.model"],
        s(body["model"].as_str().unwrap())
    );
    assert_eq!(a["gen_ai.response.id"], s(body["id"].as_str().unwrap()));
    let input = body["usage"]["prompt_tokens"].as_i64().unwrap();
    let output = body["usage"]["completion_tokens"].as_i64().unwrap();
    assert_eq!(a["gen_ai.usage.input_tokens"], Value::I64(input));
    assert_eq!(a["gen_ai.usage.output_tokens"], Value::I64(output));
    assert_eq!(
        a["gen_ai.response.finish_reasons"],
        Value::Array(opentelemetry::Array::String(vec!["stop".into()]))
    );
    assert_eq!(a["server.address"], s("127.0.0.1"));
    assert_eq!(a["http.response.status_code"], Value::I64(200));
    assert_eq!(a["infergate.usage.estimated"], Value::Bool(false));
    // The non-standard names some gateways use are not there; nor is any content.
    for absent in [
        "gen_ai.usage.reasoning_tokens",
        "gen_ai.system",
        "error.type",
        "gen_ai.request.stream",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
    ] {
        assert!(!a.contains_key(absent), "{absent} in {a:#?}");
    }
    assert_eq!(span.status, Status::Unset);
    // The upstream was sent this request's span as its parent.
    let sent = &mock.requests()[0].headers["traceparent"];
    let tp = infergate_core::trace::TraceContext::parse(sent.to_str().unwrap()).unwrap();
    assert_eq!(tp.trace_id(), span.span_context.trace_id().to_bytes());
    assert_eq!(tp.span_id(), span.span_context.span_id().to_bytes());
    // An event for the other processor's request phase (none for telemetry's own).
    let processors: Vec<String> = span
        .events
        .events
        .iter()
        .filter(|e| e.name == "infergate.processor")
        .flat_map(|e| &e.attributes)
        .filter(|kv| kv.key.as_str() == "infergate.processor")
        .map(|kv| kv.value.to_string())
        .collect();
    assert_eq!(processors, ["pass"]);

    // Metrics: the token histogram once per type, with the conventions' attributes.
    let rm = gw.metrics.get_finished_metrics().unwrap();
    let base = [
        KeyValue::new("gen_ai.operation.name", "chat"),
        KeyValue::new("gen_ai.provider.name", "openai"),
        KeyValue::new("gen_ai.request.model", "gpt-4o-mini"),
    ];
    let with = |t: &'static str| {
        let mut v = base.to_vec();
        v.push(KeyValue::new("gen_ai.token.type", t));
        v
    };
    assert_eq!(
        histogram(&rm, "gen_ai.client.token.usage", &with("input")),
        vec![(input as f64, 1)]
    );
    assert_eq!(
        histogram(&rm, "gen_ai.client.token.usage", &with("output")),
        vec![(output as f64, 1)]
    );
    assert_eq!(
        histogram(&rm, "gen_ai.server.request.duration", &base).len(),
        1
    );
}

#[tokio::test]
async fn an_incoming_traceparent_is_continued() {
    let mock = MockProvider::builder().record(true).start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = post(
        gw.addr,
        "/v1/chat/completions",
        &chat(false),
        &[("traceparent", parent)],
    )
    .await;
    assert_eq!(r.status, 200);
    gw.telemetry.flush().await;
    let spans = gw.spans.get_finished_spans().unwrap();
    let span = server_span(&spans);
    assert_eq!(
        format!("{:032x}", span.span_context.trace_id()),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
    assert_eq!(format!("{:016x}", span.parent_span_id), "00f067aa0ba902b7");
    assert!(span.parent_span_is_remote);
    let sent = mock.requests()[0].headers["traceparent"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "{sent}"
    );
    assert!(
        !sent.contains("00f067aa0ba902b7"),
        "the upstream's parent is the gateway's span"
    );

    // Untrusted: a trace of its own.
    let gw = gateway_to(
        TelemetryConfig::new().trust_traceparent(false),
        UpstreamClient::new(&mock.url()).unwrap().into_proxy(),
    )
    .await;
    post(
        gw.addr,
        "/v1/chat/completions",
        &chat(false),
        &[("traceparent", parent)],
    )
    .await;
    gw.telemetry.flush().await;
    let spans = gw.spans.get_finished_spans().unwrap();
    let span = server_span(&spans);
    assert_ne!(
        format!("{:032x}", span.span_context.trace_id()),
        "4bf92f3577b34da6a3ce929d0e0e4736"
    );
}

#[tokio::test]
async fn a_stream_records_its_usage_time_to_first_token_and_finish_reason() {
    let mock = MockProvider::start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    let r = post(gw.addr, "/v1/chat/completions", &chat(true), &[]).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    let usage: Json = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Json>(d).ok())
        .filter_map(|v| v.get("usage").filter(|u| !u.is_null()).cloned())
        .next_back()
        .expect("the stream reports usage");
    gw.telemetry.flush().await;
    let spans = gw.spans.get_finished_spans().unwrap();
    let a = attrs(server_span(&spans));
    assert_eq!(a["gen_ai.request.stream"], Value::Bool(true));
    assert_eq!(
        a["gen_ai.usage.input_tokens"],
        Value::I64(usage["prompt_tokens"].as_i64().unwrap())
    );
    assert_eq!(
        a["gen_ai.usage.output_tokens"],
        Value::I64(usage["completion_tokens"].as_i64().unwrap())
    );
    assert_eq!(
        a["gen_ai.response.finish_reasons"],
        Value::Array(opentelemetry::Array::String(vec!["stop".into()]))
    );
    assert!(matches!(a["gen_ai.response.time_to_first_chunk"], Value::F64(t) if t > 0.0));
    assert_eq!(a["infergate.end"], s("completed"));
    let rm = gw.metrics.get_finished_metrics().unwrap();
    let ttft = histogram(&rm, "gen_ai.server.time_to_first_token", &[]);
    assert_eq!(ttft.len(), 1);
    assert_eq!(ttft[0].1, 1);
}

#[tokio::test]
async fn a_stream_the_client_leaves_is_recorded_once_with_what_was_seen() {
    let (upstream, tx) = infergate_testkit::channel_upstream();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    let body = chat(true).to_string();
    let req = http::Request::post(format!("http://{}/v1/chat/completions", gw.addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let client = infergate_testkit::client();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    for word in ["Hel", "lo", " there"] {
        let ev = json!({"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]});
        tx.send(Bytes::from(format!("data: {ev}\n\n"))).unwrap();
    }
    infergate_testkit::read_until(&mut body, " there").await;
    // The client goes away mid-stream.
    drop(body);
    drop(client);
    // Wait for the record (the gateway learns of the disconnect on its own time).
    let mut spans = Vec::new();
    for _ in 0..200 {
        gw.telemetry.flush().await;
        spans = gw.spans.get_finished_spans().unwrap();
        if !spans.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
        let _ = tx.send(Bytes::from_static(b": keep-alive\n\n"));
    }
    let a = attrs(server_span(&spans));
    assert_eq!(a["infergate.end"], s("client_gone"));
    assert_eq!(a["gen_ai.usage.output_tokens"], Value::I64(3));
    assert_eq!(a["infergate.usage.estimated"], Value::Bool(true));
    assert_eq!(a["gen_ai.response.model"], s("gpt-4o-mini"));
    // Later flushes add nothing: recorded once.
    drop(tx);
    gw.telemetry.flush().await;
    let rm = gw.metrics.get_finished_metrics().unwrap();
    let out = histogram(
        &rm,
        "gen_ai.client.token.usage",
        &[KeyValue::new("gen_ai.token.type", "output")],
    );
    assert_eq!(out, vec![(3.0, 1)]);
    assert_eq!(gw.spans.get_finished_spans().unwrap().len(), 1);
}

#[tokio::test]
async fn the_access_log_has_one_line_per_request_and_no_key() {
    let dir = std::env::temp_dir().join(format!("infergate-access-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("access.log");
    let _ = std::fs::remove_file(&path);
    let mock = MockProvider::start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let cfg =
        TelemetryConfig::new().access_log(AccessLogConfig::new(AccessLogSink::File(path.clone())));
    let gw = gateway_to(cfg, upstream).await;
    let secret = "sk-live-0123456789abcdef0123456789abcdef";
    for _ in 0..3 {
        let r = post(
            gw.addr,
            "/v1/chat/completions",
            &chat(false),
            &[("authorization", &format!("Bearer {secret}"))],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    gw.telemetry.flush().await;
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<Json> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    for l in &lines {
        assert_eq!(l["status"], 200);
        assert_eq!(l["model"], "gpt-4o-mini");
        assert!(l["usage"]["input_tokens"].as_u64().unwrap() > 0);
        assert!(l["duration_ms"].as_f64().unwrap() > 0.0);
        assert!(l["time"].as_str().unwrap().ends_with('Z'));
    }
    assert!(!text.contains(secret) && !text.contains("Say hello"));
}

/// A small OTLP/HTTP receiver: decodes the official protobufs of what it is sent.
#[derive(Clone, Default)]
struct Receiver {
    traces: Arc<
        Mutex<Vec<opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest>>,
    >,
    metrics: Arc<
        Mutex<Vec<opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest>>,
    >,
    paths: Arc<Mutex<Vec<(String, String)>>>,
}

async fn otlp_receiver() -> (SocketAddr, Receiver) {
    use prost::Message;
    let rx = Receiver::default();
    let state = rx.clone();
    let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move {
            let path = req.uri().path().to_owned();
            let ct = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            state.paths.lock().unwrap().push((path.clone(), ct));
            match path.as_str() {
                "/v1/traces" => state.traces.lock().unwrap().push(
                    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(body)
                        .unwrap(),
                ),
                "/v1/metrics" => state.metrics.lock().unwrap().push(
                    opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::decode(body)
                        .unwrap(),
                ),
                _ => {}
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new())))
        }
    });
    (serve(svc).await, rx)
}

#[tokio::test]
async fn otlp_over_http_delivers_spans_and_metrics_with_the_resource() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
    let (collector, rx) = otlp_receiver().await;
    let mock = MockProvider::start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let telemetry = Telemetry::new(
        TelemetryConfig::new()
            .service_name("gw-test")
            .otlp(OtlpConfig::new(format!("http://{collector}"))),
    )
    .unwrap();
    let pipeline = pipeline(&telemetry);
    let addr = serve(pipeline.layer().layer(upstream)).await;
    let r = post(addr, "/v1/chat/completions", &chat(false), &[]).await;
    assert_eq!(r.status, 200);
    let input = r.json()["usage"]["prompt_tokens"].as_i64().unwrap();
    telemetry.flush().await;

    let paths = rx.paths.lock().unwrap().clone();
    assert!(
        paths.iter().all(|(_, ct)| ct == "application/x-protobuf"),
        "{paths:?}"
    );
    let traces = rx.traces.lock().unwrap().clone();
    let rs = &traces.first().expect("spans exported").resource_spans[0];
    let resource = rs.resource.as_ref().unwrap();
    let service = resource
        .attributes
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.clone());
    assert_eq!(service, Some(Any::StringValue("gw-test".into())));
    let scope = &rs.scope_spans[0];
    assert_eq!(scope.scope.as_ref().unwrap().name, "infergate-observe");
    assert_eq!(scope.schema_url, infergate_observe::SEMCONV_SCHEMA_URL);
    let span = &scope.spans[0];
    assert_eq!(span.name, "chat gpt-4o-mini");
    let get = |k: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == k)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    assert_eq!(
        get("gen_ai.provider.name"),
        Some(Any::StringValue("openai".into()))
    );
    assert_eq!(get("gen_ai.usage.input_tokens"), Some(Any::IntValue(input)));

    let metrics = rx.metrics.lock().unwrap().clone();
    let names: Vec<String> = metrics
        .iter()
        .flat_map(|m| &m.resource_metrics)
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| m.name.clone())
        .collect();
    for n in [
        "gen_ai.client.token.usage",
        "gen_ai.server.request.duration",
        "infergate.requests",
        "infergate.processor.decisions",
    ] {
        assert!(names.iter().any(|x| x == n), "{n} not in {names:?}");
    }
}

#[tokio::test]
async fn metrics_are_served_in_the_prometheus_text_format() {
    let mock = MockProvider::start().await.unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    let mut input = 0;
    for _ in 0..2 {
        let r = post(gw.addr, "/v1/chat/completions", &chat(false), &[]).await;
        input += r.json()["usage"]["prompt_tokens"].as_i64().unwrap();
    }
    gw.telemetry.caught_up().await;
    let text = gw.telemetry.prometheus_text();
    assert!(
        text.contains("# TYPE gen_ai_client_token_usage histogram"),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("gen_ai_client_token_usage_sum{")
                && l.contains("gen_ai_token_type=\"input\"")
        })
        .unwrap();
    assert!(line.ends_with(&format!(" {input}")), "{line}");
    assert!(text.contains("# TYPE infergate_requests_total counter"));
    assert!(text.contains("infergate_processor_decisions_total{infergate_decision=\"continue\",infergate_phase=\"request\",infergate_processor=\"pass\"} 2"), "{text}");
    assert!(
        !text.contains("infergate_processor=\"telemetry\""),
        "{text}"
    );
    assert!(text.contains("gen_ai_server_request_duration_seconds_bucket{"));
}

#[tokio::test]
async fn a_compressing_chunked_upstream_is_recorded_as_a_plain_one() {
    // A real-wire mock: gzip when offered, chunked answers.
    let mock = MockProvider::builder()
        .wire(infergate_mock::Wire::real())
        .start()
        .await
        .unwrap();
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    let gw = gateway_to(TelemetryConfig::new(), upstream).await;
    for stream in [false, true] {
        let r = post(
            gw.addr,
            "/v1/chat/completions",
            &chat(stream),
            &[("accept-encoding", "gzip")],
        )
        .await;
        assert_eq!(r.status, 200);
    }
    gw.telemetry.flush().await;
    let spans = gw.spans.get_finished_spans().unwrap();
    let server: Vec<&SpanData> = spans
        .iter()
        .filter(|x| x.span_kind == SpanKind::Server)
        .collect();
    assert_eq!(server.len(), 2);
    for span in server {
        let a = attrs(span);
        assert!(
            matches!(a["gen_ai.usage.input_tokens"], Value::I64(n) if n > 0),
            "{a:#?}"
        );
        assert!(matches!(a["gen_ai.usage.output_tokens"], Value::I64(n) if n > 0));
        assert_eq!(a["infergate.usage.estimated"], Value::Bool(false));
        assert!(a.contains_key("gen_ai.response.model"));
        assert_eq!(
            a["gen_ai.response.finish_reasons"],
            Value::Array(opentelemetry::Array::String(vec!["stop".into()]))
        );
    }
    // The metrics' own aggregates saw both answers' usage too (the plain and the streamed one).
    gw.telemetry.caught_up().await;
    let text = gw.telemetry.prometheus_text();
    let input_count: u64 = text
        .lines()
        .filter(|l| {
            l.starts_with("gen_ai_client_token_usage_count{")
                && l.contains("gen_ai_token_type=\"input\"")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(input_count, 2, "{text}");
}

/// The built-in OTLP/HTTP exporter encodes spans itself (straight from the request record
/// into protobuf); an SDK exporter is given `SpanData`. Both are written from one description
/// of the request: what the collector decodes must be what the SDK's own conversion of the
/// `SpanData` gives, field for field — attributes, events, status, parents, flags, times — for
/// a plain request, a failed one with an incoming `traceparent`, and upstream attempts.
/// Metrics likewise: the built-in exporter encodes the crate's plain aggregates, an SDK
/// exporter is fed by the SDK's instruments; from the same requests both must say the same
/// (names, descriptions, units, kinds, attributes, values, buckets, min and max; the times
/// aside).
#[tokio::test]
async fn the_otlp_encoding_matches_the_sdk_conversion_field_for_field() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{Metric as ProtoMetric, metric::Data};
    use opentelemetry_proto::tonic::trace::v1::Span as ProtoSpan;
    let (collector, rx) = otlp_receiver().await;
    let sdk = InMemorySpanExporter::default();
    let sdk_metrics = InMemoryMetricExporter::default();
    let telemetry = Telemetry::builder(
        TelemetryConfig::new().otlp(OtlpConfig::new(format!("http://{collector}"))),
    )
    .span_exporter(sdk.clone())
    .metric_exporter(sdk_metrics.clone())
    .build()
    .unwrap();
    // Upstream: two attempts recorded as failover records them (the first fails), then the
    // answer; a 500 for requests whose model says so.
    let upstream = tower::service_fn(|mut req: http::Request<infergate_core::Body>| async move {
        if let Some(t) = req
            .extensions()
            .get::<infergate_core::trace::RequestTrace>()
            .cloned()
        {
            let mut h = http::HeaderMap::new();
            t.begin_attempt("primary", &mut h).end(Some(503), "retry");
            t.begin_attempt("secondary", req.headers_mut())
                .end(Some(200), "answer");
        }
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let failing = String::from_utf8_lossy(&body).contains("fails");
        let mut r = if failing {
            let mut r = http::Response::new(infergate_core::Body::from(
                r#"{"error":{"message":"boom","type":"server_error"}}"#,
            ));
            *r.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
            r
        } else {
            http::Response::new(infergate_core::Body::from(
                r#"{"id":"c1","object":"chat.completion","model":"gpt-4o-mini-1","choices":[{"index":0,"message":{"role":"assistant","content":"Hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11,"prompt_tokens_details":{"cached_tokens":4}}}"#,
            ))
        };
        r.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        Ok::<_, std::convert::Infallible>(r)
    });
    let pipeline = Pipeline::builder().processor(telemetry.processor()).build();
    let addr = serve(pipeline.layer().layer(upstream)).await;
    assert_eq!(
        post(addr, "/v1/chat/completions", &chat(false), &[])
            .await
            .status,
        200
    );
    let mut failing = chat(false);
    failing["model"] = json!("fails-model");
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    assert_eq!(
        post(
            addr,
            "/v1/chat/completions",
            &failing,
            &[("traceparent", parent)]
        )
        .await
        .status,
        500
    );
    telemetry.flush().await;

    let mut expected: Vec<ProtoSpan> = sdk
        .get_finished_spans()
        .unwrap()
        .into_iter()
        .map(ProtoSpan::from)
        .collect();
    let mut got: Vec<ProtoSpan> = rx
        .traces
        .lock()
        .unwrap()
        .iter()
        .flat_map(|t| &t.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| s.spans.clone())
        .collect();
    assert_eq!(expected.len(), 6, "two requests, two attempts each");
    for s in expected.iter_mut().chain(got.iter_mut()) {
        // Unset is the absent status.
        if s.status
            .as_ref()
            .is_some_and(|st| st.code == 0 && st.message.is_empty())
        {
            s.status = None;
        }
    }
    expected.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    got.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    assert_eq!(got, expected);
    let failed = got
        .iter()
        .find(|s| s.parent_span_id == [0x00, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7])
        .expect("the failed request continues the incoming trace");
    assert_eq!(failed.status.as_ref().map(|s| s.code), Some(2));

    // The metrics: the last (cumulative) export of each side, points and their attributes in
    // one order (OTLP gives neither a meaning), no times.
    let normalize = |req: &ExportMetricsServiceRequest| -> Vec<ProtoMetric> {
        let mut ms: Vec<ProtoMetric> = req
            .resource_metrics
            .iter()
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| s.metrics.clone())
            .collect();
        for m in &mut ms {
            match m.data.as_mut() {
                Some(Data::Sum(d)) => {
                    for p in &mut d.data_points {
                        (p.start_time_unix_nano, p.time_unix_nano) = (0, 0);
                        p.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                    d.data_points.sort_by_key(|p| format!("{:?}", p.attributes));
                }
                Some(Data::Gauge(d)) => {
                    for p in &mut d.data_points {
                        (p.start_time_unix_nano, p.time_unix_nano) = (0, 0);
                        p.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                    d.data_points.sort_by_key(|p| format!("{:?}", p.attributes));
                }
                Some(Data::Histogram(d)) => {
                    for p in &mut d.data_points {
                        (p.start_time_unix_nano, p.time_unix_nano) = (0, 0);
                        p.attributes.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                    d.data_points.sort_by_key(|p| format!("{:?}", p.attributes));
                }
                _ => {}
            }
        }
        ms.sort_by(|a, b| a.name.cmp(&b.name));
        ms
    };
    let sdk_side = sdk_metrics.get_finished_metrics().unwrap();
    let expected = normalize(&ExportMetricsServiceRequest::from(
        sdk_side.last().expect("the SDK exporter was given metrics"),
    ));
    let received = rx.metrics.lock().unwrap().clone();
    let got = normalize(received.last().expect("metrics were exported over OTLP"));
    let names: Vec<&str> = got.iter().map(|m| m.name.as_str()).collect();
    for n in [
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.server.request.duration",
        "infergate.requests",
        "infergate.usage.tokens",
        "infergate.failover.attempts",
        "infergate.backend.up",
        "infergate.telemetry.dropped",
    ] {
        assert!(names.contains(&n), "{n} not in {names:?}");
    }
    assert_eq!(got, expected);
}
