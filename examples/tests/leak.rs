//! The end-to-end leak test: real captured streams (`../shared/data/sse`) with an e-mail
//! address, an SSN and an AWS key spliced into every text-bearing place, replayed by a mock
//! upstream in every coding it offers (identity, gzip, deflate, br, zstd), through the example
//! gateway with its response guardrail redacting PII and secrets; and whole answers of every API
//! the same way. No raw value may appear anywhere in the decoded bytes the client receives.
//!
//! Skips with a message without `../shared/data` (fails under `CI=true`, which has it).

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate::core::ApiKind;
use infergate::core::coding::decode_body;
use infergate::mock::{MockProvider, Wire};
use infergate_examples::config::Config;
use infergate_examples::gateway;
use infergate_testkit::captures::{RAW, SPLICE, captures, data, request_for, spliced};
use serde_json::{Value, json};

const CODINGS: [&str; 5] = ["identity", "gzip", "deflate", "br", "zstd"];

async fn start(url: &str) -> SocketAddr {
    let cfg = Config::parse(&format!(
        r#"
[backends.up]
url = "{url}"
[routes]
chat = "up"
messages = "up"
[guardrail]
[[guardrail.checks]]
name = "pii"
detector = "pii"
action = "redact"
applies = "response"
[[guardrail.checks]]
name = "secrets"
detector = "secrets"
action = "redact"
applies = "response"
"#
    ))
    .unwrap();
    let gw = gateway::build(&cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway::serve(listener, gw.service, std::future::pending()));
    addr
}

/// POSTs `body` to `path` accepting `coding`; the decoded answer.
async fn fetch(addr: SocketAddr, path: &str, body: &Value, coding: &str) -> (u16, String) {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if coding != "identity" {
        req = req.header("accept-encoding", coding);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    let decoded = decode_body(&headers, &raw, 64 << 20).unwrap().unwrap();
    (status, String::from_utf8_lossy(&decoded).into_owned())
}

fn assert_no_leak(what: &str, text: &str) {
    for raw in RAW {
        assert!(!text.contains(raw), "{what}: {raw} leaked:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spliced_value_reaches_the_client_from_any_capture_in_any_coding() {
    let Some(d) = data() else { return };
    let up = MockProvider::builder().start().await.unwrap();
    let addr = start(&up.url()).await;
    let mut checked = 0;
    for (name, api, text) in captures(&d) {
        // The gateway serves Chat, Responses and Messages; legacy completions are not routed.
        if name.contains("broken") || api == ApiKind::Other {
            continue;
        }
        let (bytes, _) = spliced(api, &text);
        assert!(std::str::from_utf8(&bytes).unwrap().contains(RAW[0]));
        let (path, req) = request_for(api);
        for coding in CODINGS {
            up.set_wire(
                Wire::default()
                    .with_compress(coding != "identity")
                    .with_stream_replay(bytes.clone())
                    .with_replay_frame(if coding == "identity" { 7 } else { 0 }),
            );
            let (status, out) = fetch(addr, path, &req, coding).await;
            let what = format!("{name} ({coding})");
            assert_eq!(status, 200, "{what}: {out}");
            assert_no_leak(&what, &out);
            checked += 1;
        }
    }
    assert!(checked >= 150, "{checked} streams checked");
    eprintln!("{checked} captured streams × codings checked end to end");
}

/// Whole answers of every API with the values in every text-bearing place: n>1 choices,
/// refusal, reasoning, tool arguments (JSON), Responses items, Anthropic thinking and tool input;
/// and the `response` of every captured `response.completed` event.
fn whole_answers(d: Option<&std::path::Path>) -> Vec<(ApiKind, Value)> {
    let args = serde_json::to_string(&json!({"to": SPLICE, "note": SPLICE})).unwrap();
    let mut out = vec![
        (
            ApiKind::ChatCompletions,
            json!({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": format!("a{SPLICE}b"),
                        "refusal": SPLICE, "reasoning_content": SPLICE,
                        "tool_calls": [{"id": "t", "type": "function",
                            "function": {"name": "send", "arguments": args}}]},
                     "finish_reason": "tool_calls"},
                    {"index": 1, "message": {"role": "assistant",
                        "content": [{"type": "text", "text": SPLICE}]}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}),
        ),
        (
            ApiKind::Responses,
            json!({"id": "r", "object": "response", "model": "m", "status": "completed",
                "output": [
                    {"type": "reasoning", "id": "rs", "summary": [{"type": "summary_text", "text": SPLICE}]},
                    {"type": "message", "id": "m", "role": "assistant", "content": [
                        {"type": "output_text", "text": SPLICE, "annotations": []},
                        {"type": "refusal", "refusal": SPLICE}]},
                    {"type": "function_call", "id": "f", "call_id": "c", "name": "send", "arguments": args}],
                "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2}}),
        ),
        (
            ApiKind::AnthropicMessages,
            json!({"id": "msg", "type": "message", "role": "assistant", "model": "m",
                "content": [
                    {"type": "thinking", "thinking": SPLICE, "signature": "sig"},
                    {"type": "text", "text": SPLICE},
                    {"type": "tool_use", "id": "tu", "name": "send", "input": {"to": SPLICE, "nested": {"list": [SPLICE]}}}],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 1, "output_tokens": 1}}),
        ),
    ];
    if let Some(d) = d {
        for (_, api, text) in captures(d) {
            if api != ApiKind::Responses {
                continue;
            }
            let (bytes, _) = spliced(api, &text);
            for line in std::str::from_utf8(&bytes).unwrap().lines() {
                let Some(data) = line.strip_prefix("data: ") else {
                    continue;
                };
                if let Ok(v) = serde_json::from_str::<Value>(data)
                    && v["type"] == "response.completed"
                {
                    out.push((api, v["response"].clone()));
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spliced_value_reaches_the_client_from_whole_answers_in_any_coding() {
    let d = data();
    let up = MockProvider::builder().start().await.unwrap();
    let addr = start(&up.url()).await;
    let answers = whole_answers(d.as_deref());
    assert!(answers.len() >= 3);
    for (i, (api, answer)) in answers.iter().enumerate() {
        let (path, mut req) = request_for(*api);
        req["stream"] = json!(false);
        for coding in CODINGS {
            up.set_wire(
                Wire::default()
                    .with_compress(coding != "identity")
                    .with_chunked(true)
                    .with_json_replay(answer.to_string()),
            );
            let (status, out) = fetch(addr, path, &req, coding).await;
            let what = format!("answer {i} ({api:?}, {coding})");
            assert_eq!(status, 200, "{what}: {out}");
            assert_no_leak(&what, &out);
            let v: Value = serde_json::from_str(&out).unwrap();
            // Tool arguments are still JSON after redaction.
            if let Some(a) = v
                .pointer("/choices/0/message/tool_calls/0/function/arguments")
                .and_then(Value::as_str)
            {
                assert!(serde_json::from_str::<Value>(a).is_ok(), "{what}: {a}");
            }
        }
    }
}
