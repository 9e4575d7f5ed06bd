//! Sends `N` requests through a pipeline with telemetry in one of four modes, then flushes,
//! for counting instructions: wall time on a shared 2-core VM moves by ±50 %, an instruction
//! count under cachegrind (every thread of the process counted) by well under 1 %.
//!
//! ```text
//! cargo build --release -p infergate-observe --example observe_cost
//! for n in 0 2000; do valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!   target/release/examples/observe_cost spans $n 2>&1 | grep 'I *refs'; done
//! ```
//! With `OBSERVE_COST_THREAD_CPU` set it prints the CPU time of the thread that runs the
//! requests (the request path, the telemetry thread excluded) and of the whole process (the
//! collector's child process excluded).
//!
//! The difference of the two counts over 2000 is the instructions per request; the same for
//! `without` gives the pipeline's own, and their difference telemetry's. `MODE` is `without`
//! (no telemetry processor), `noop` (a processor in telemetry's place and phases that does
//! nothing: the pipeline's share of any processor there), `gather` (records gathered and sent, nothing built from them),
//! `metrics` (metrics only) or `spans` (metrics and spans, exported over OTLP/HTTP to a
//! collector in a child process, as the `telemetry_cpu/metrics_and_spans` bench row).
#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::convert::Infallible;

use bytes::Bytes;
use infergate_core::{Body, Pipeline};
use infergate_observe::{OtlpConfig, Telemetry, TelemetryConfig};
use tower::{Layer, ServiceExt};

use common::{ANSWER, BODY, Collector, ReadsAnswers};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("OBSERVE_COST_SINK").is_some() {
        return Ok(common::sink()?);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(n)) = (args.first(), args.get(1)) else {
        return Err("usage: observe_cost without|noop|gather|metrics|spans N".into());
    };
    let n: usize = n.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut collector = None;
    let telemetry = match mode.as_str() {
        "without" | "noop" => None,
        "gather" => Some(Telemetry::new(
            TelemetryConfig::new().metrics(false).traces(false),
        )?),
        "metrics" => Some(Telemetry::new(TelemetryConfig::new().traces(false))?),
        "spans" => {
            let c = Collector::start("OBSERVE_COST_SINK")?;
            let endpoint = format!("http://{}", c.addr);
            collector = Some(c);
            Some(rt.block_on(async {
                Telemetry::new(TelemetryConfig::new().otlp(OtlpConfig::new(endpoint)))
            })?)
        }
        other => return Err(format!("unknown mode {other}").into()),
    };
    let upstream = tower::service_fn(|_req: http::Request<Body>| async {
        let mut r = http::Response::new(Body::from(ANSWER));
        r.headers_mut().insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        Ok::<_, Infallible>(r)
    });
    let mut b = Pipeline::builder();
    if let Some(t) = &telemetry {
        b = b.processor(t.processor());
    }
    if mode == "noop" {
        b = b.processor(common::Noop);
    }
    let svc = b.processor(ReadsAnswers).build().layer().layer(upstream);
    let main_cpu = cpu_time::ThreadTime::now();
    let process_cpu = cpu_time::ProcessTime::now();
    rt.block_on(async {
        for _ in 0..n {
            let req = http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .header("host", "gateway.example:8080")
                .body(Body::from(Bytes::from_static(BODY.as_bytes())))?;
            std::hint::black_box(svc.clone().oneshot(req).await?);
        }
        if let Some(t) = &telemetry {
            t.flush().await;
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    if std::env::var_os("OBSERVE_COST_THREAD_CPU").is_some() {
        // The request path's share (this thread's CPU), beside the process's (`perf stat`).
        eprintln!("main_thread_cpu_ns {}", main_cpu.elapsed().as_nanos());
        // This process's (the collector's child process excluded), as the criterion rows.
        eprintln!("process_cpu_ns {}", process_cpu.elapsed().as_nanos());
    }
    drop(collector);
    Ok(())
}
