//! The bad-input matrix (docs/reliability.md): hostile clients and hostile upstreams through
//! the example gateway with every response check on. Each case must answer with a clear error
//! in the API's shape (or a correct answer), the gateway must stay up, and nothing the
//! guardrail redacts or blocks may reach the client, in any encoding.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate::core::coding::decode_body;
use infergate_examples::config::Config;
use infergate_examples::gateway;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const EMAIL: &str = "jane.doe@example.com";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

// === a hostile upstream ===

/// What the hostile upstream does, chosen by the request's `x-fault` header.
fn fault_bytes(fault: &str) -> Option<Vec<u8>> {
    let json_ok = format!(
        r#"{{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":"mail {EMAIL} now"}},"finish_reason":"stop"}}],"usage":{{"prompt_tokens":3,"completion_tokens":3,"total_tokens":6}}}}"#
    );
    let head = |status: &str, extra: &str, len: Option<usize>| {
        let mut h = format!("HTTP/1.1 {status}\r\n{extra}");
        if let Some(n) = len {
            h.push_str(&format!("content-length: {n}\r\n"));
        }
        h.push_str("\r\n");
        h.into_bytes()
    };
    let json_head = |status: &str, extra: &str, body: &[u8]| {
        let mut out = head(
            status,
            &format!("content-type: application/json\r\n{extra}"),
            Some(body.len()),
        );
        out.extend_from_slice(body);
        out
    };
    let chunked = |events: &[&[u8]]| {
        let mut out = head(
            "200 OK",
            "content-type: text/event-stream\r\ntransfer-encoding: chunked\r\n",
            None,
        );
        for e in events {
            out.extend_from_slice(format!("{:x}\r\n", e.len()).as_bytes());
            out.extend_from_slice(e);
            out.extend_from_slice(b"\r\n");
        }
        out
    };
    let delta = |text: &str| {
        format!(
            "data: {{\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"created\":0,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{}}},\"finish_reason\":null}}]}}\n\n",
            serde_json::to_string(text).unwrap()
        )
        .into_bytes()
    };
    let gzip = |data: &[u8]| {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    };
    Some(match fault {
        "ok" => json_head("200 OK", "", json_ok.as_bytes()),
        "ok-sse" => {
            let mut out = chunked(&[
                &delta("write to "),
                &delta(EMAIL),
                &delta(" today"),
                b"data: [DONE]\n\n",
            ]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "reset-before-head" => return None,
        "reset-mid-json" => {
            let mut out = head("200 OK", "content-type: application/json\r\n", Some(1000));
            out.extend_from_slice(&json_ok.as_bytes()[..40]);
            out
        }
        "reset-mid-sse" => chunked(&[&delta("write to "), &delta("jane.doe@exa")]),
        "malformed-json" => json_head("200 OK", "", b"{\"choices\": [ {not json"),
        "html-as-json" => json_head(
            "200 OK",
            "",
            format!("<html><body>captive portal {EMAIL}</body></html>").as_bytes(),
        ),
        "malformed-sse" => {
            let mut out = chunked(&[
                b"data: {broken json\n\n",
                b"this is not an sse line at all\n\n",
                &delta(EMAIL),
                b"data: [DONE]\n\n",
            ]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "truncated-final-event" => {
            let mut out = chunked(&[
                &delta("hello "),
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"jane.doe@example.c",
            ]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "bad-gzip" => {
            let mut body = gzip(json_ok.as_bytes());
            let n = body.len();
            for b in &mut body[12..n - 4] {
                *b ^= 0x33;
            }
            let mut out = head(
                "200 OK",
                "content-type: application/json\r\ncontent-encoding: gzip\r\n",
                Some(body.len()),
            );
            out.extend_from_slice(&body);
            out
        }
        "gzip-pii" => {
            let body = gzip(json_ok.as_bytes());
            let mut out = head(
                "200 OK",
                "content-type: application/json\r\ncontent-encoding: gzip\r\n",
                Some(body.len()),
            );
            out.extend_from_slice(&body);
            out
        }
        "gzip-sse-pii" => {
            let mut data = delta("mail ");
            data.extend_from_slice(&delta(EMAIL));
            data.extend_from_slice(b"data: [DONE]\n\n");
            let body = gzip(&data);
            let mut out = head(
                "200 OK",
                "content-type: text/event-stream\r\ncontent-encoding: gzip\r\n",
                Some(body.len()),
            );
            out.extend_from_slice(&body);
            out
        }
        "unknown-coding" => json_head("200 OK", "content-encoding: compress\r\n", json_ok.as_bytes()),
        "stacked-coding" => {
            json_head("200 OK", "content-encoding: gzip, br\r\n", json_ok.as_bytes())
        }
        "short-content-length" => {
            let mut out = head("200 OK", "content-type: application/json\r\n", Some(5000));
            out.extend_from_slice(json_ok.as_bytes());
            out
        }
        "hang" => Vec::new(),
        "retry-after-huge" => json_head(
            "429 Too Many Requests",
            "retry-after: 18446744073709551615\r\n",
            br#"{"error":{"message":"slow down","type":"rate_limit_error","code":null,"param":null}}"#,
        ),
        "retry-after-garbage" => json_head(
            "503 Service Unavailable",
            "retry-after: soon-ish\r\n",
            br#"{"error":{"message":"busy","type":"server_error","code":null,"param":null}}"#,
        ),
        "ratelimit-headers" => json_head(
            "200 OK",
            "x-ratelimit-remaining-tokens: -1\r\nx-ratelimit-reset-tokens: 99999999999999999999999s\r\nx-ratelimit-limit-requests: 18446744073709551616\r\n",
            json_ok.as_bytes(),
        ),
        "huge-header" => json_head(
            "200 OK",
            &format!("x-huge: {}\r\n", "a".repeat(60_000)),
            json_ok.as_bytes(),
        ),
        "http10-close" => {
            let mut out =
                b"HTTP/1.0 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n"
                    .to_vec();
            out.extend_from_slice(json_ok.as_bytes());
            out
        }
        "te-and-cl" => {
            let body = format!("{:x}\r\n{json_ok}\r\n0\r\n\r\n", json_ok.len());
            let mut out = head(
                "200 OK",
                "content-type: application/json\r\ntransfer-encoding: chunked\r\n",
                Some(3),
            );
            out.extend_from_slice(body.as_bytes());
            out
        }
        "big-body" => {
            let filler = "x".repeat(20 << 20);
            let body = format!(
                r#"{{"id":"x","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"{EMAIL} {filler}"}},"finish_reason":"stop"}}]}}"#
            );
            json_head("200 OK", "", body.as_bytes())
        }
        "huge-event" => {
            let big = delta(&format!("{EMAIL} {}", "y".repeat(2 << 20)));
            let mut out = chunked(&[&delta("start "), &big, b"data: [DONE]\n\n"]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "sse-invalid-utf8" => {
            let mut out = chunked(&[
                b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xff\xfe bad\"}}]}\n\n",
                &delta(EMAIL),
                b"data: [DONE]\n\n",
            ]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        "json-for-stream" => json_head("200 OK", "", json_ok.as_bytes()),
        "error-500-pii" => json_head(
            "500 Internal Server Error",
            "",
            format!(r#"{{"error":{{"message":"failed for {EMAIL}","type":"server_error"}}}}"#)
                .as_bytes(),
        ),
        "secret-in-answer" => json_head(
            "200 OK",
            "",
            format!(r#"{{"id":"x","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":"key {AWS_KEY}"}},"finish_reason":"stop"}}]}}"#)
                .as_bytes(),
        ),
        "secret-in-stream" => {
            let mut out = chunked(&[&delta("key "), &delta(AWS_KEY), b"data: [DONE]\n\n"]);
            out.extend_from_slice(b"0\r\n\r\n");
            out
        }
        _ => json_head("200 OK", "", json_ok.as_bytes()),
    })
}

/// Reads one request (head and a content-length body); returns its `x-fault`.
async fn read_request(sock: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let header = |name: &str| {
        head.lines().find_map(|l| {
            l.strip_prefix(&format!("{name}:"))
                .map(|v| v.trim().to_owned())
        })
    };
    let len: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    Some(header("x-fault").unwrap_or_else(|| "ok".to_owned()))
}

async fn hostile_upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = l.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let Some(fault) = read_request(&mut sock).await else {
                    return;
                };
                match fault_bytes(&fault) {
                    None => {}
                    Some(b) if fault == "hang" && b.is_empty() => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                    }
                    Some(b) => {
                        let _ = sock.write_all(&b).await;
                        let _ = sock.flush().await;
                    }
                }
                // Every answer ends its connection: the faults above leave it unusable.
            });
        }
    });
    addr
}

// === the gateway ===

fn config(upstream: SocketAddr) -> Config {
    Config::parse(&format!(
        r#"
[server]
header_read_timeout_ms = 500
body_read_timeout_ms = 500
max_header_bytes = 16384

[backends.up]
url = "http://{upstream}"
request_timeout_ms = 1500

[routes]
chat = "up"
embeddings = "up"
messages = "up"

[guardrail]
[[guardrail.checks]]
name = "secrets"
detector = "secrets"
action = "block"
applies = "both"
[[guardrail.checks]]
name = "pii"
detector = "pii"
entities = ["email"]
action = "redact"
applies = "response"

[cache]
ttl_secs = 60

[ratelimit]
key = ["api_key"]
[ratelimit.limits]
requests_per_minute = 1000000
tokens_per_minute = 1000000000
"#
    ))
    .unwrap()
}

async fn start() -> SocketAddr {
    start_over(hostile_upstream().await).await
}

async fn start_over(up: SocketAddr) -> SocketAddr {
    let cfg = config(up);
    let gw = gateway::build(&cfg).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = cfg.server.clone();
    tokio::spawn(async move {
        let _keep = gw.mock;
        gateway::serve_with(listener, gw.service, &server, std::future::pending()).await
    });
    addr
}

#[derive(Debug)]
struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    fn error_type(&self) -> Option<String> {
        let v = self.json();
        v["error"]["type"].as_str().map(str::to_owned)
    }
}

async fn request(addr: SocketAddr, req: http::Request<Full<Bytes>>) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let (parts, body) = req.into_parts();
    let mut req = http::Request::from_parts(parts, body);
    *req.uri_mut() = format!(
        "http://{addr}{}",
        req.uri().path_and_query().map_or("/", |p| p.as_str())
    )
    .parse()
    .unwrap();
    // A gateway that refuses an oversized body (413) answers before reading it all and closes
    // the connection: a client still writing may get a broken pipe instead of the answer (a
    // race of the test's client, not of the gateway). It sends again, a few times at most.
    let (parts, body) = req.into_parts();
    let mut tries = 0;
    let resp = loop {
        tries += 1;
        let req = http::Request::from_parts(parts.clone(), body.clone());
        match client.request(req).await {
            Ok(resp) => break resp,
            Err(e) if tries < 5 && format!("{e:?}").contains("BodyWrite") => {}
            Err(e) => panic!("request failed: {e:?}"),
        }
    };
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = match resp.into_body().collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => Bytes::from(format!("<body error: {e}>")),
    };
    let body = decode_body(&headers, &raw, 64 << 20)
        .ok()
        .flatten()
        .map_or(raw, Bytes::from);
    Answer {
        status,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn chat_req(fault: &str, stream: bool, n: usize) -> http::Request<Full<Bytes>> {
    let body = json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": format!("case {fault} {n}")}]});
    http::Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("accept-encoding", "gzip, deflate")
        .header("x-fault", fault)
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// What a case expects.
enum Expect {
    /// This status, and (for errors) a body in the OpenAI error shape.
    Status(u16),
    /// One of these statuses.
    OneOf(&'static [u16]),
    /// 200 with a stream that ends with an `event: error`.
    StreamError,
    /// 200 with a stream that ends with `[DONE]`.
    StreamDone,
    /// An Anthropic-shaped error with this status.
    Anthropic(u16),
    /// This status with no body: hyper answers before the request reaches the gateway.
    Bare(u16),
}

fn check(case: &str, a: &Answer, expect: &Expect) {
    println!(
        "case | {case} | {} | {}",
        a.status,
        a.error_type().unwrap_or_default()
    );
    assert!(
        !a.body.contains(EMAIL) && !a.body.contains(AWS_KEY),
        "{case}: a redacted value reached the client: {}",
        &a.body[..a.body.len().min(400)]
    );
    let ok_shape = |a: &Answer| {
        if a.status >= 400 {
            assert!(
                a.error_type().is_some(),
                "{case}: error without the OpenAI shape: {} {}",
                a.status,
                &a.body[..a.body.len().min(300)]
            );
        }
    };
    match expect {
        Expect::Status(s) => {
            assert_eq!(a.status, *s, "{case}: {}", &a.body[..a.body.len().min(300)]);
            ok_shape(a);
        }
        Expect::OneOf(ss) => {
            assert!(
                ss.contains(&a.status),
                "{case}: {} {}",
                a.status,
                &a.body[..a.body.len().min(300)]
            );
            ok_shape(a);
        }
        Expect::StreamError => {
            assert_eq!(a.status, 200, "{case}");
            assert!(
                a.body.contains("event: error"),
                "{case}: {}",
                &a.body[..a.body.len().min(300)]
            );
        }
        Expect::StreamDone => {
            assert_eq!(a.status, 200, "{case}");
            assert!(
                a.body.trim_end().ends_with("data: [DONE]"),
                "{case}: {}",
                a.body
            );
        }
        Expect::Bare(s) => assert_eq!(a.status, *s, "{case}"),
        Expect::Anthropic(s) => {
            assert_eq!(a.status, *s, "{case}: {}", a.body);
            assert_eq!(a.json()["type"], "error", "{case}: {}", a.body);
        }
    }
}

fn raw(
    method: &str,
    path: &str,
    ct: Option<&str>,
    body: impl Into<Bytes>,
) -> http::Request<Full<Bytes>> {
    let mut b = http::Request::builder().method(method).uri(path);
    if let Some(ct) = ct {
        b = b.header("content-type", ct);
    }
    b.body(Full::new(body.into())).unwrap()
}

/// Sends raw bytes on a new connection and reads what comes back until the server closes it
/// (or `wait` passes).
async fn raw_exchange(addr: SocketAddr, bytes: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(wait, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_matrix() {
    let addr = start().await;
    let mut n = 0usize;
    let mut cases = 0usize;
    let mut next = || {
        n += 1;
        n
    };
    let chat = |extra: Value| {
        let mut v =
            json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
        for (k, val) in extra.as_object().unwrap() {
            v[k] = val.clone();
        }
        v.to_string()
    };
    let ct = Some("application/json");

    // --- client bodies ---
    let client_cases: Vec<(&str, http::Request<Full<Bytes>>, Expect)> = vec![
        (
            "malformed JSON",
            raw("POST", "/v1/chat/completions", ct, "{\"model\": "),
            Expect::Status(400),
        ),
        (
            "JSON not an object",
            raw("POST", "/v1/chat/completions", ct, "[1,2,3]"),
            Expect::Status(400),
        ),
        (
            "messages not an array",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":"m","messages":"hi"}"#,
            ),
            Expect::Status(400),
        ),
        (
            "deeply nested JSON",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
            ),
            Expect::Status(400),
        ),
        (
            "invalid UTF-8",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                &b"{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}"[..],
            ),
            Expect::Status(400),
        ),
        (
            "lone surrogate escape",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":"m","messages":[{"role":"user","content":"\ud800"}]}"#,
            ),
            Expect::Status(400),
        ),
        (
            "oversized body (3 MiB)",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"pad": "x".repeat(3 << 20)})),
            ),
            Expect::Status(413),
        ),
        (
            "empty POST body",
            raw("POST", "/v1/chat/completions", ct, ""),
            Expect::Status(400),
        ),
        (
            "wrong content type",
            raw(
                "POST",
                "/v1/chat/completions",
                Some("text/plain"),
                chat(json!({})),
            ),
            Expect::Status(415),
        ),
        (
            "form content type",
            raw(
                "POST",
                "/v1/chat/completions",
                Some("application/x-www-form-urlencoded"),
                "a=b",
            ),
            Expect::Status(415),
        ),
        (
            "missing content type (treated as JSON)",
            raw("POST", "/v1/chat/completions", None, chat(json!({}))),
            Expect::Status(200),
        ),
        (
            "max_tokens = u64::MAX",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"max_tokens": u64::MAX})),
            ),
            Expect::OneOf(&[200, 400, 429]),
        ),
        (
            "max_tokens beyond u64",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":"m","max_tokens":184467440737095516150,"messages":[{"role":"user","content":"hi"}]}"#,
            ),
            Expect::OneOf(&[200, 400, 429]),
        ),
        (
            "max_tokens negative",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"max_tokens": -5})),
            ),
            Expect::OneOf(&[200, 400]),
        ),
        (
            "max_tokens 1e309",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":"m","max_tokens":1e309,"messages":[]}"#,
            ),
            Expect::Status(400),
        ),
        (
            "n = 1,000,000",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"n": 1_000_000, "max_tokens": 1000})),
            ),
            Expect::OneOf(&[200, 400, 429]),
        ),
        (
            "temperature as a string",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"temperature": "hot"})),
            ),
            Expect::OneOf(&[200, 400]),
        ),
        (
            "temperature NaN token",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":"m","temperature":NaN,"messages":[]}"#,
            ),
            Expect::Status(400),
        ),
        (
            "NUL bytes in content",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(json!({"messages": [{"role": "user", "content": "a\u{0}b"}]})),
            ),
            Expect::Status(200),
        ),
        (
            "secret in the prompt",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                chat(
                    json!({"messages": [{"role": "user", "content": format!("my key {AWS_KEY}")}]}),
                ),
            ),
            Expect::Status(400),
        ),
        (
            "model as a number",
            raw(
                "POST",
                "/v1/chat/completions",
                ct,
                r#"{"model":42,"messages":[]}"#,
            ),
            Expect::OneOf(&[200, 400]),
        ),
        (
            "Anthropic: malformed JSON",
            raw("POST", "/v1/messages", ct, "{oops"),
            Expect::Anthropic(400),
        ),
        (
            "Anthropic: oversized",
            raw(
                "POST",
                "/v1/messages",
                ct,
                format!(
                    r#"{{"model":"c","max_tokens":5,"messages":[],"pad":"{}"}}"#,
                    "x".repeat(3 << 20)
                ),
            ),
            Expect::Anthropic(413),
        ),
        (
            "Anthropic: wrong content type",
            raw("POST", "/v1/messages", Some("text/plain"), "{}"),
            Expect::Anthropic(415),
        ),
        (
            "Responses: input a number",
            raw("POST", "/v1/responses", ct, r#"{"model":"m","input":42}"#),
            Expect::OneOf(&[200, 400]),
        ),
        (
            "embeddings: 10,000 inputs",
            raw(
                "POST",
                "/v1/embeddings",
                ct,
                json!({"model": "e", "input": vec!["word"; 10_000]}).to_string(),
            ),
            Expect::OneOf(&[200, 400, 429]),
        ),
        // --- methods ---
        (
            "GET with a declared body",
            http::Request::get("/v1/models")
                .header("content-length", "100")
                .body(Full::new(Bytes::from(vec![b'x'; 100])))
                .unwrap(),
            Expect::Status(200),
        ),
        (
            "HEAD",
            raw("HEAD", "/v1/models", None, ""),
            Expect::Status(200),
        ),
        (
            "OPTIONS",
            raw("OPTIONS", "/v1/chat/completions", None, ""),
            Expect::Status(200),
        ),
        (
            "DELETE with a body",
            raw("DELETE", "/v1/chat/completions", ct, "{}"),
            Expect::OneOf(&[200, 404, 405]),
        ),
        (
            "PUT to a POST endpoint",
            raw("PUT", "/v1/chat/completions", ct, chat(json!({}))),
            Expect::OneOf(&[200, 404, 405]),
        ),
        (
            "unknown path",
            raw("POST", "/v1/nothing-here", ct, "{}"),
            Expect::Status(404),
        ),
        // --- headers ---
        (
            "request header over 16 KiB",
            http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .header("x-big", "b".repeat(40_000))
                .body(Full::new(Bytes::from(chat(json!({})))))
                .unwrap(),
            Expect::Bare(431),
        ),
        (
            "chunked request body",
            http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .header("x-fault", "ok")
                .body(Full::new(Bytes::from(chat(
                    json!({"messages": [{"role": "user", "content": "chunked"}]}),
                ))))
                .unwrap(),
            Expect::Status(200),
        ),
        (
            "Connection naming a header",
            http::Request::post("/v1/chat/completions")
                .header("content-type", "application/json")
                .header("connection", "x-private")
                .header("x-private", "1")
                .body(Full::new(Bytes::from(chat(
                    json!({"messages": [{"role": "user", "content": "conn"}]}),
                ))))
                .unwrap(),
            Expect::Status(200),
        ),
    ];
    let mut failed = Vec::new();
    for (name, req, expect) in client_cases {
        let a = request(addr, req).await;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(name, &a, &expect)))
            .is_err()
        {
            failed.push(name);
        }
        cases += 1;
    }

    // --- upstream faults ---
    let upstream_cases: Vec<(&str, &str, bool, Expect)> = vec![
        (
            "upstream OK (PII redacted)",
            "ok",
            false,
            Expect::Status(200),
        ),
        (
            "upstream stream OK (PII redacted)",
            "ok-sse",
            true,
            Expect::StreamDone,
        ),
        (
            "upstream reset before the head",
            "reset-before-head",
            false,
            Expect::Status(502),
        ),
        (
            "upstream reset before the head, streamed",
            "reset-before-head",
            true,
            Expect::Status(502),
        ),
        (
            "upstream reset mid-body",
            "reset-mid-json",
            false,
            Expect::Status(502),
        ),
        (
            "upstream reset mid-stream",
            "reset-mid-sse",
            true,
            Expect::StreamError,
        ),
        (
            "upstream malformed JSON",
            "malformed-json",
            false,
            Expect::Status(502),
        ),
        (
            "upstream HTML labelled JSON",
            "html-as-json",
            false,
            Expect::Status(502),
        ),
        (
            "upstream malformed SSE",
            "malformed-sse",
            true,
            Expect::StreamDone,
        ),
        (
            "upstream truncated final event",
            "truncated-final-event",
            true,
            Expect::Status(200),
        ),
        (
            "upstream gzip that does not decode",
            "bad-gzip",
            false,
            Expect::Status(502),
        ),
        (
            "upstream gzip with PII",
            "gzip-pii",
            false,
            Expect::Status(200),
        ),
        (
            "upstream gzip stream with PII",
            "gzip-sse-pii",
            true,
            Expect::StreamDone,
        ),
        (
            "upstream unknown content-encoding",
            "unknown-coding",
            false,
            Expect::Status(502),
        ),
        (
            "upstream stacked content-encodings",
            "stacked-coding",
            false,
            Expect::Status(502),
        ),
        (
            "upstream content-length longer than body",
            "short-content-length",
            false,
            Expect::Status(502),
        ),
        ("upstream hangs", "hang", false, Expect::Status(504)),
        (
            "upstream Retry-After: u64::MAX",
            "retry-after-huge",
            false,
            Expect::Status(429),
        ),
        (
            "upstream Retry-After: garbage",
            "retry-after-garbage",
            false,
            Expect::Status(503),
        ),
        (
            "upstream hostile x-ratelimit-* headers",
            "ratelimit-headers",
            false,
            Expect::Status(200),
        ),
        (
            "upstream 60 KB header",
            "huge-header",
            false,
            Expect::Status(200),
        ),
        (
            "upstream HTTP/1.0 close-delimited",
            "http10-close",
            false,
            Expect::Status(200),
        ),
        (
            "upstream Transfer-Encoding and Content-Length",
            "te-and-cl",
            false,
            Expect::Status(200),
        ),
        (
            "upstream 20 MiB answer",
            "big-body",
            false,
            Expect::Status(502),
        ),
        (
            "upstream 2 MiB SSE event",
            "huge-event",
            true,
            Expect::StreamError,
        ),
        (
            "upstream invalid UTF-8 in an event",
            "sse-invalid-utf8",
            true,
            Expect::Status(200),
        ),
        (
            "upstream JSON for a streamed request",
            "json-for-stream",
            true,
            Expect::Status(200),
        ),
        (
            "upstream 500 with PII in the error",
            "error-500-pii",
            false,
            Expect::Status(500),
        ),
        (
            "upstream answer holding a secret",
            "secret-in-answer",
            false,
            Expect::Status(400),
        ),
        (
            "upstream stream holding a secret",
            "secret-in-stream",
            true,
            Expect::StreamError,
        ),
    ];
    for (name, fault, stream, expect) in upstream_cases {
        let a = request(addr, chat_req(fault, stream, next())).await;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(name, &a, &expect)))
            .is_err()
        {
            failed.push(name);
        }
        cases += 1;
    }

    // An upstream that refuses the connection (nothing listens on its port).
    let refused = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let gw_refused = start_over(refused).await;
    for (name, stream, expect) in [
        (
            "upstream refuses the connection",
            false,
            Expect::Status(502),
        ),
        (
            "upstream refuses the connection, streamed",
            true,
            Expect::Status(502),
        ),
    ] {
        let a = request(gw_refused, chat_req("ok", stream, next())).await;
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(name, &a, &expect)))
            .is_err()
        {
            failed.push(name);
        }
        cases += 1;
    }

    // --- slow and vanishing clients ---
    // Slow headers: the connection is closed after the header read timeout.
    let out = raw_exchange(
        addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-slow: ",
        Duration::from_secs(5),
    )
    .await;
    assert!(!out.contains("200 OK"), "slow headers: {out}");
    cases += 1;
    // Slow body: 408 once the body read timeout passes.
    let out = raw_exchange(
        addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"model\":",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 408"), "slow body: {out}");
    assert!(out.contains("request_timeout"), "slow body: {out}");
    cases += 1;
    // An idle kept-alive connection is closed.
    let out = raw_exchange(
        addr,
        b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(out.starts_with("HTTP/1.1 200"), "idle keep-alive: {out}");
    cases += 1;
    // Both Transfer-Encoding and Content-Length from a client (request smuggling): refused.
    let out = raw_exchange(
        addr,
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        Duration::from_secs(2),
    )
    .await;
    assert!(!out.contains("200 OK"), "smuggling: {out}");
    cases += 1;
    // A client that resets mid-body, and one that goes away mid-stream.
    {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"model\"").await.unwrap();
        drop(s);
    }
    cases += 1;
    {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let body =
            chat(json!({"stream": true, "messages": [{"role": "user", "content": "vanish"}]}));
        s.write_all(format!("POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\nx-fault: ok-sse\r\ncontent-length: {}\r\n\r\n{body}", body.len()).as_bytes()).await.unwrap();
        let mut first = [0u8; 16];
        let _ = s.read(&mut first).await;
        drop(s);
    }
    cases += 1;
    // 200 concurrent connections that send nothing: the gateway keeps answering others.
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    let a = request(addr, chat_req("ok", false, next())).await;
    check(
        "answers while 200 idle connections are open",
        &a,
        &Expect::Status(200),
    );
    drop(idle);
    cases += 1;

    // The gateway is still up and correct after all of it.
    let a = request(addr, chat_req("ok", false, next())).await;
    check("still up", &a, &Expect::Status(200));
    assert!(a.body.contains("[EMAIL]"), "{}", a.body);
    cases += 1;
    assert!(failed.is_empty(), "failed cases: {failed:?}");
    assert!(cases >= 60, "only {cases} cases");
    println!("{cases} cases passed");
}
