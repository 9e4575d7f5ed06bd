//! What telemetry costs a request (goal: at most 2 µs more per request in process, with
//! metrics and spans on and every trace sampled).
//!
//! - `telemetry_request/*`: one request through a pipeline whose other processor reads the
//!   whole answer (as a gateway with any response-reading block does), with and without the
//!   telemetry processor first: the request path's cost.
//! - `telemetry_batch/*`: 256 requests and then a flush, which waits until the telemetry
//!   thread has built every span and metric: the whole cost, thread included, per batch.
//! - `telemetry_cpu/*`: the whole process's CPU time per request (the telemetry thread and
//!   the exports included). `metrics_and_spans` exports spans and metrics over OTLP/HTTP to a
//!   collector in a child process (this binary started again as a sink, so the collector's
//!   CPU is not counted); `metrics_and_spans_sdk_exporter` hands `SpanData` to an SDK
//!   exporter that drops them.
//! - `telemetry_request_thread_cpu/*`: the CPU time of the thread that runs the pipeline only
//!   (the request path), the telemetry thread and the exports excluded.
#![allow(missing_docs)]

#[path = "common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use criterion::{Criterion, criterion_group};
use infergate_core::{Body, Pipeline};
use infergate_observe::{OtlpConfig, Telemetry, TelemetryConfig};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tower::{Layer, ServiceExt};

use common::{ANSWER, BODY, Collector, Noop, ReadsAnswers};

/// A processor in the same phases as telemetry that does nothing: what any processor there
/// costs the pipeline (the share of the difference that is not telemetry's own).
/// Spans are built and handed over, then dropped.
#[derive(Debug)]
struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

fn pipeline(telemetry: Option<&Telemetry>) -> Pipeline {
    let mut b = Pipeline::builder();
    if let Some(t) = telemetry {
        b = b.processor(t.processor());
    }
    b.processor(ReadsAnswers).build()
}

fn pipeline_with_noop() -> Pipeline {
    Pipeline::builder()
        .processor(Noop)
        .processor(ReadsAnswers)
        .build()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let upstream = tower::service_fn(|_req: http::Request<Body>| async {
        let mut r = http::Response::new(Body::from(ANSWER));
        r.headers_mut()
            .insert("content-type", "application/json".parse().expect("a value"));
        Ok::<_, Infallible>(r)
    });
    let telemetry = Telemetry::builder(TelemetryConfig::new())
        .span_exporter(Discard)
        .build()
        .expect("telemetry");
    let request = || {
        http::Request::post("/v1/chat/completions")
            .header("content-type", "application/json")
            .header("host", "gateway.example:8080")
            .body(Body::from(Bytes::from_static(BODY.as_bytes())))
            .expect("a request")
    };
    // Records gathered and sent, but nothing built from them: the request path alone.
    let gather_only =
        Telemetry::new(TelemetryConfig::new().metrics(false).traces(false)).expect("telemetry");
    let mut g = c.benchmark_group("telemetry_request");
    for (name, t) in [
        ("without", None),
        ("gather_only", Some(&gather_only)),
        ("with_metrics_and_spans", Some(&telemetry)),
    ] {
        let svc = pipeline(t).layer().layer(upstream);
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let svc = svc.clone();
                async move { svc.oneshot(request()).await.expect("answered") }
            });
        });
    }
    let svc = pipeline_with_noop().layer().layer(upstream);
    g.bench_function("noop_processor_in_the_same_phases", |b| {
        b.to_async(&rt).iter(|| {
            let svc = svc.clone();
            async move { svc.oneshot(request()).await.expect("answered") }
        });
    });
    g.finish();
    // Keep the queue from filling between the groups.
    rt.block_on(telemetry.flush());

    let mut g = c.benchmark_group("telemetry_batch");
    g.measurement_time(Duration::from_secs(8));
    for (name, t) in [
        ("256_without", None),
        ("256_with_then_flush", Some(&telemetry)),
    ] {
        let svc = pipeline(t).layer().layer(upstream);
        g.bench_function(name, |b| {
            b.to_async(&rt).iter(|| {
                let svc = svc.clone();
                async move {
                    for _ in 0..256 {
                        svc.clone().oneshot(request()).await.expect("answered");
                    }
                    if let Some(t) = t {
                        t.flush().await;
                    }
                }
            });
        });
    }
    g.finish();
    assert_eq!(telemetry.dropped(), 0);

    // CPU time of the whole process (the telemetry thread included) per request, records
    // flushed at the end of each sample: the all-in cost, free of the wall clock's noise
    // from the other core.
    let metrics_only = Telemetry::new(TelemetryConfig::new().traces(false)).expect("telemetry");
    let collector = Collector::start("OBSERVE_BENCH_SINK").expect("the collector starts");
    let otlp = rt.block_on(async {
        Telemetry::new(
            TelemetryConfig::new().otlp(OtlpConfig::new(format!("http://{}", collector.addr))),
        )
        .expect("telemetry")
    });
    let mut g = c.benchmark_group("telemetry_cpu");
    for (name, t) in [
        ("without", None),
        ("gather_only", Some(&gather_only)),
        ("metrics", Some(&metrics_only)),
        ("metrics_and_spans", Some(&otlp)),
        ("metrics_and_spans_sdk_exporter", Some(&telemetry)),
        ("noop_processor_in_the_same_phases", None),
    ] {
        let svc = if name.starts_with("noop") {
            pipeline_with_noop().layer().layer(upstream)
        } else {
            pipeline(t).layer().layer(upstream)
        };
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let svc = svc.clone();
                rt.block_on(async move {
                    let start = cpu_time::ProcessTime::now();
                    for _ in 0..iters {
                        svc.clone().oneshot(request()).await.expect("answered");
                    }
                    if let Some(t) = t {
                        t.flush().await;
                    }
                    start.elapsed()
                })
            });
        });
    }
    g.finish();

    // CPU time of the thread that runs the pipeline only (the request path; the telemetry
    // thread and the exports excluded): what telemetry adds where the requests are served.
    let mut g = c.benchmark_group("telemetry_request_thread_cpu");
    for (name, t) in [
        ("without", None),
        ("metrics", Some(&metrics_only)),
        ("metrics_and_spans", Some(&otlp)),
    ] {
        let svc = pipeline(t).layer().layer(upstream);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let svc = svc.clone();
                rt.block_on(async move {
                    let start = cpu_time::ThreadTime::now();
                    for _ in 0..iters {
                        svc.clone().oneshot(request()).await.expect("answered");
                    }
                    let spent = start.elapsed();
                    if let Some(t) = t {
                        t.flush().await;
                    }
                    spent
                })
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if std::env::var_os("OBSERVE_BENCH_SINK").is_some() {
        let _ = common::sink();
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
