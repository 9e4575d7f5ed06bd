//! Support for infergate's benchmarks: see `benches/` for the criterion benches and
//! `benches/load.sh` for the end-to-end load benchmark.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

/// Sends one streamed chat request and returns the time to its first non-empty content delta
/// (reading the stream to its end).
///
/// # Panics
///
/// When the request cannot be sent or the stream breaks (a benchmark should stop there).
pub async fn time_to_first_token(
    client: &Client<HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    body: String,
) -> Duration {
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", "Bearer sk-bench")
        .body(Full::new(Bytes::from(body)))
        .expect("a valid request");
    let start = Instant::now();
    let mut resp = client
        .request(req)
        .await
        .expect("the proxy answers")
        .into_body();
    let mut first = None;
    while let Some(frame) = resp.frame().await {
        let Ok(data) = frame.expect("an unbroken stream").into_data() else {
            continue;
        };
        let s = String::from_utf8_lossy(&data);
        if first.is_none() && s.contains("\"content\":\"") && !s.contains("\"content\":\"\"") {
            first = Some(start.elapsed());
        }
    }
    first.unwrap_or_default()
}

/// A mock provider that streams 40 words 5 ms apart (the TTFT benchmarks' upstream).
///
/// # Panics
///
/// When the mock cannot bind a loopback port.
pub async fn streaming_mock() -> infergate_mock::MockProvider {
    let reply = (0..40)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    infergate_mock::MockProvider::builder()
        .reply(reply)
        .token_delay(Duration::from_millis(5))
        .record(false)
        .start()
        .await
        .expect("a loopback port for the mock")
}
