//! Soak driver (`benches/soak.sh`): sends N requests to a gateway on loopback with a mix of
//! non-streamed, streamed, client-disconnecting and upstream-failing requests (every request
//! different: cache misses), and samples the gateway's resident memory as it goes.
//!
//! ```text
//! soak ADDR PID [REQUESTS] [CONCURRENCY]
//! ```
//!
//! Prints one line per 10 % of the run (`done`, `rss_kib`, unexpected errors) and a summary;
//! exits non-zero when a request that was not meant to fail did, or when the resident memory
//! after warm-up (the first 10 %) grew by 10 % or more.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    injected: AtomicU64,
    disconnected: AtomicU64,
    unexpected: AtomicU64,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(addr), Some(pid)) = (
        args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()),
        args.get(2).and_then(|p| p.parse::<u32>().ok()),
    ) else {
        eprintln!("usage: soak ADDR PID [REQUESTS] [CONCURRENCY]");
        std::process::exit(2);
    };
    let total: u64 = args
        .get(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let conc: u64 = args.get(4).and_then(|n| n.parse().ok()).unwrap_or(32);
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let next = Arc::new(AtomicU64::new(0));
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let warm = total / 10;
    let mut baseline = 0u64;
    let mut peak_after = 0u64;
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let client = client.clone();
        let next = next.clone();
        let counts = counts.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                one(&client, addr, i, &counts).await;
            }
        }));
    }
    let mut reported = 0;
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let done = next.load(Ordering::Relaxed).min(total);
        let rss = rss_kib(pid);
        if done >= warm && baseline == 0 {
            baseline = rss;
        }
        if baseline > 0 {
            peak_after = peak_after.max(rss);
        }
        let decile = done * 10 / total.max(1);
        if decile > reported {
            reported = decile;
            println!(
                "done={done} rss_kib={rss} ok={} injected={} disconnected={} unexpected={} elapsed_s={:.1}",
                counts.ok.load(Ordering::Relaxed),
                counts.injected.load(Ordering::Relaxed),
                counts.disconnected.load(Ordering::Relaxed),
                counts.unexpected.load(Ordering::Relaxed),
                start.elapsed().as_secs_f64()
            );
        }
        if tasks.iter().all(tokio::task::JoinHandle::is_finished) {
            break;
        }
    }
    let end = rss_kib(pid);
    let growth = if baseline > 0 {
        (end as f64 / baseline as f64 - 1.0) * 100.0
    } else {
        0.0
    };
    let unexpected = counts.unexpected.load(Ordering::Relaxed);
    println!(
        "summary: requests={total} seconds={:.1} req_per_s={:.0} rss_after_warmup_kib={baseline} rss_peak_after_warmup_kib={peak_after} rss_end_kib={end} growth_pct={growth:.1} unexpected_errors={unexpected}",
        start.elapsed().as_secs_f64(),
        total as f64 / start.elapsed().as_secs_f64()
    );
    if unexpected > 0 || growth >= 10.0 {
        std::process::exit(1);
    }
}

/// Request `i`: 45 % non-streamed, 40 % streamed, 10 % streamed and dropped after the first
/// frame, 5 % failing upstream (the mock fails them on request), every one different.
async fn one(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    i: u64,
    counts: &Counts,
) {
    let kind = i % 20;
    let stream = (9..19).contains(&kind);
    let disconnect = (17..19).contains(&kind);
    let fail = kind == 19;
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":{stream},"max_tokens":64,"messages":[{{"role":"system","content":"You are a helpful assistant."}},{{"role":"user","content":"Soak question number {i}: what is the capital of France? Write to ops@example.com if unsure."}}]}}"#
    );
    let mut req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer soak-key-{}", i % 8));
    if fail {
        req = req.header("x-mock-fail", if i % 40 == 19 { "503" } else { "reset" });
    }
    let Ok(req) = req.body(Full::new(Bytes::from(body))) else {
        counts.unexpected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let Ok(resp) = client.request(req).await else {
        counts.unexpected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let status = resp.status();
    let mut body = resp.into_body();
    if disconnect && status.is_success() {
        let _ = body.frame().await;
        drop(body);
        counts.disconnected.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Ok(bytes) = body
        .collect()
        .await
        .map(http_body_util::Collected::to_bytes)
    else {
        counts.unexpected.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if fail {
        if status.is_success() {
            counts.unexpected.fetch_add(1, Ordering::Relaxed);
        } else {
            counts.injected.fetch_add(1, Ordering::Relaxed);
        }
        return;
    }
    let complete = if stream {
        bytes.ends_with(b"data: [DONE]\n\n")
    } else {
        bytes.starts_with(b"{")
    };
    if status.is_success() && complete {
        counts.ok.fetch_add(1, Ordering::Relaxed);
    } else if counts.unexpected.fetch_add(1, Ordering::Relaxed) < 5 {
        eprintln!(
            "unexpected: {status} {}",
            String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
        );
    }
}
