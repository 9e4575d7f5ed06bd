//! Sends `N` requests through a pipeline with telemetry in one of four modes, then flushes,
//! for counting instructions: wall time on a shared 2-core VM moves by ±50 %, an instruction
//! count under cachegrind (every thread of the process counted) by well under 1 %.
//!
//! ```text
//! cargo build --release -p infergate-observe --example observe_cost
//! for n in 0 2000; do valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!   target/release/examples/observe_cost spans $n 2>&1 | grep 'I *refs'; done
//! ```
//! The difference of the two counts over 2000 is the instructions per request; the same for
//! `without` gives the pipeline's own, and their difference telemetry's. `MODE` is `without`
//! (no telemetry processor), `gather` (records gathered and sent, nothing built from them),
//! `metrics` (metrics only) or `spans` (metrics and spans, exported over OTLP/HTTP to a
//! collector in a child process, as the `telemetry_cpu/metrics_and_spans` bench row).
#![allow(missing_docs)]

use std::convert::Infallible;

use async_trait::async_trait;
use bytes::Bytes;
use infergate_core::pipeline::Phases;
use infergate_core::{
    Body, Decision, Pipeline, Processor, ProcessorError, ResponseBody, ResponseContext,
};
use infergate_observe::{OtlpConfig, Telemetry, TelemetryConfig};
use tower::{Layer, ServiceExt};

/// A processor that reads every answer (as a guardrail, a cache or a budget does).
struct ReadsAnswers;

#[async_trait]
impl Processor for ReadsAnswers {
    fn name(&self) -> &str {
        "reader"
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST | Phases::RESPONSE | Phases::RESPONSE_BODY
    }
    async fn on_response_body(
        &self,
        _cx: &mut ResponseContext<'_>,
        body: &mut ResponseBody,
    ) -> Result<Decision, ProcessorError> {
        std::hint::black_box(body.json());
        Ok(Decision::Continue)
    }
}

const BODY: &str = r#"{"model":"gpt-4o-mini","max_tokens":64,"messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"What is the capital of France?"}]}"#;
const ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant","content":"Paris."},"finish_reason":"stop"}],"usage":{"prompt_tokens":24,"completion_tokens":2,"total_tokens":26}}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("OBSERVE_COST_SINK").is_some() {
        return sink();
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(mode), Some(n)) = (args.first(), args.get(1)) else {
        return Err("usage: observe_cost without|gather|metrics|spans N".into());
    };
    let n: usize = n.parse()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut collector = None;
    let telemetry = match mode.as_str() {
        "without" => None,
        "gather" => Some(Telemetry::new(
            TelemetryConfig::new().metrics(false).traces(false),
        )?),
        "metrics" => Some(Telemetry::new(TelemetryConfig::new().traces(false))?),
        "spans" => {
            let (child, addr) = start_sink()?;
            collector = Some(child);
            Some(rt.block_on(async {
                Telemetry::new(
                    TelemetryConfig::new().otlp(OtlpConfig::new(format!("http://{addr}"))),
                )
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
    let svc = b.processor(ReadsAnswers).build().layer().layer(upstream);
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
    if let Some(mut c) = collector {
        let _ = c.kill();
        let _ = c.wait();
    }
    Ok(())
}

/// Starts this binary again as an OTLP/HTTP collector; its address.
fn start_sink() -> Result<(std::process::Child, String), Box<dyn std::error::Error>> {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .env("OBSERVE_COST_SINK", "1")
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let out = child.stdout.take().ok_or("no stdout")?;
    std::io::BufReader::new(out).read_line(&mut line)?;
    Ok((child, line.trim().to_owned()))
}

/// Reads each export whole and answers 200.
fn sink() -> Result<(), Box<dyn std::error::Error>> {
    use http_body_util::BodyExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let svc = tower::service_fn(|req: http::Request<hyper::body::Incoming>| async move {
            let body = req.into_body().collect().await.map(|b| b.to_bytes().len());
            std::hint::black_box(body.ok());
            Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(Bytes::new())))
        });
        let addr = infergate_testkit::serve(svc).await;
        println!("{addr}");
        std::future::pending::<()>().await;
    });
    Ok(())
}
