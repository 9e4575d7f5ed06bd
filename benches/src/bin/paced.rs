//! Open-loop load at a fixed rate (`benches/latency.sh`): sends chat requests to `ADDR` at
//! `RATE` requests a second for `SECONDS`, every request different (cache misses), each on its
//! own task whatever the others are doing (a slow answer does not hold the next request back),
//! and prints the latency percentiles of the answers, measured from the moment each request
//! was sent.
//!
//! ```text
//! paced ADDR RATE SECONDS
//! ```
//!
//! Prints one line: `sent ok errors p50_us p90_us p99_us p999_us`.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: paced ADDR RATE SECONDS");
        std::process::exit(2);
    }
    let url: http::Uri = format!("http://{}/v1/chat/completions", args[1])
        .parse()
        .unwrap();
    let rate: f64 = args[2].parse().unwrap();
    let seconds: f64 = args[3].parse().unwrap();
    let total = (rate * seconds) as u64;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total as usize)));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let run = std::process::id();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        let due = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(due.into()).await;
        let body = format!(
            r#"{{"model":"gpt-4o-mini","stream":false,"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"What is the capital of France? Question number {run}-{i}. Answer in one word."}}],"max_tokens":64}}"#
        );
        let req = http::Request::post(url.clone())
            .header("content-type", "application/json")
            .header("authorization", "Bearer sk-bench")
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let client = client.clone();
        let latencies = latencies.clone();
        let errors = errors.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let ok = match client.request(req).await {
                Ok(resp) => {
                    let good = resp.status().is_success();
                    resp.into_body().collect().await.is_ok() && good
                }
                Err(_) => false,
            };
            if ok {
                let us = sent.elapsed().as_micros() as u64;
                latencies.lock().unwrap().push(us);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut l = std::mem::take(&mut *latencies.lock().unwrap());
    l.sort_unstable();
    println!(
        "sent {total} ok {} errors {} p50_us {} p90_us {} p99_us {} p999_us {}",
        l.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        percentile(&l, 0.5),
        percentile(&l, 0.9),
        percentile(&l, 0.99),
        percentile(&l, 0.999),
    );
}
