//! The leak test on real captured streams (`../shared/data/sse`): an e-mail address, an SSN and
//! an AWS access key spliced into every text-bearing place of every event — text, refusal,
//! reasoning and thinking deltas, tool-argument deltas (inside their JSON strings), every
//! `*.done` event, `output_item.done`, `response.completed` — plus synthetic events for what the
//! captures lack (n>1 choices, refusal and reasoning deltas, reasoning summaries), run through
//! the guardrail's stream processor split every few bytes. No raw match may appear anywhere in
//! the output, which must stay valid SSE with valid JSON in every event, the same number of
//! events, and reassembled tool arguments that are still valid JSON.
//!
//! Skips with a message without `../shared/data` (fails under `CI=true`, which has it).

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::collections::HashMap;

use bytes::Bytes;
use http_body_util::BodyExt;
use infergate_core::sse::SseEvent;
use infergate_core::{ApiKind, Body};
use infergate_guardrail::{Action, Applies, Check, Detector, GuardrailConfig, GuardrailLayer};
use infergate_testkit::sse_upstream;
use serde_json::Value;
use tower::{Layer, ServiceExt};

use infergate_testkit::captures::{RAW, captures, data, decode, request_for, spliced};

async fn through(cfg: GuardrailConfig, api: ApiKind, body: Bytes, chunk: usize) -> Bytes {
    let (path, req) = request_for(api);
    let svc = GuardrailLayer::new(cfg).layer(sse_upstream(body, chunk));
    let req = http::Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(req.to_string()))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap().to_bytes()
}

fn redacting() -> GuardrailConfig {
    GuardrailConfig::new()
        .check(Check::new("pii", Detector::pii(), Action::Redact).applies(Applies::Response))
        .check(Check::new("secrets", Detector::Secrets, Action::Redact).applies(Applies::Response))
}

/// The reassembled tool arguments of an (output) stream, by channel.
fn tool_arguments(api: ApiKind, events: &[SseEvent]) -> HashMap<(u64, u64), String> {
    let mut args: HashMap<(u64, u64), String> = HashMap::new();
    for ev in events {
        let Some(Ok(v)) = ev.data_str().map(serde_json::from_str::<Value>) else {
            continue;
        };
        match api {
            ApiKind::AnthropicMessages => {
                if let Some(p) = v.pointer("/delta/partial_json").and_then(Value::as_str) {
                    args.entry((v["index"].as_u64().unwrap_or(0), 0))
                        .or_default()
                        .push_str(p);
                }
            }
            ApiKind::Responses => {
                if v["type"] == "response.function_call_arguments.delta" {
                    args.entry((v["output_index"].as_u64().unwrap_or(0), 0))
                        .or_default()
                        .push_str(v["delta"].as_str().unwrap_or(""));
                }
            }
            _ => {
                for (pos, ch) in v["choices"].as_array().into_iter().flatten().enumerate() {
                    let c = ch["index"].as_u64().unwrap_or(pos as u64);
                    for (j, tc) in ch
                        .pointer("/delta/tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        if let Some(a) = tc.pointer("/function/arguments").and_then(Value::as_str) {
                            args.entry((c, tc["index"].as_u64().unwrap_or(j as u64)))
                                .or_default()
                                .push_str(a);
                        }
                    }
                }
            }
        }
    }
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spliced_pii_or_secret_leaks_from_any_captured_stream() {
    let Some(d) = data() else { return };
    let caps = captures(&d);
    assert!(caps.len() >= 30, "{} captures", caps.len());
    let mut checked = 0;
    for (name, api, text) in &caps {
        if name.contains("broken") {
            continue;
        }
        let (input, n_events) = spliced(*api, text);
        let input_text = std::str::from_utf8(&input).unwrap();
        assert!(input_text.contains(RAW[0]), "{name}: nothing spliced");
        let in_events = decode(&input);
        let in_args = tool_arguments(*api, &in_events);
        for chunk in [3, 7, 61] {
            let out = through(redacting(), *api, input.clone(), chunk).await;
            let out_text = String::from_utf8(out.to_vec()).unwrap();
            for raw in RAW {
                assert!(
                    !out_text.contains(raw),
                    "{name} (split every {chunk} bytes): {raw} leaked:\n{out_text}"
                );
            }
            assert!(out_text.contains("[EMAIL]"), "{name}: {out_text}");
            assert_eq!(
                out_text.matches("event: error").count(),
                input_text.matches("event: error").count(),
                "{name}: no error but the captured one: {out_text}"
            );
            let events = decode(&out);
            assert_eq!(events.len(), n_events, "{name}: every event is still there");
            for ev in &events {
                let data = ev.data_str().unwrap_or("");
                assert!(
                    ev.is_done() || serde_json::from_str::<Value>(data).is_ok(),
                    "{name}: an event is not JSON: {data}"
                );
            }
            for (key, args) in tool_arguments(*api, &events) {
                let before = in_args.get(&key).map(String::as_str).unwrap_or("");
                if serde_json::from_str::<Value>(before).is_ok() {
                    assert!(
                        serde_json::from_str::<Value>(&args).is_ok(),
                        "{name}: tool arguments {key:?} no longer JSON: {args}"
                    );
                }
            }
        }
        checked += 1;
    }
    eprintln!("{checked} captured streams checked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_secret_ends_every_captured_stream_before_it_leaks() {
    let Some(d) = data() else { return };
    for (name, api, text) in captures(&d) {
        if name.contains("broken") {
            continue;
        }
        let (input, _) = spliced(api, &text);
        let cfg = GuardrailConfig::new().check(
            Check::new("secrets", Detector::Secrets, Action::Block).applies(Applies::Response),
        );
        let out = through(cfg, api, input, 5).await;
        let out_text = String::from_utf8(out.to_vec()).unwrap();
        assert!(!out_text.contains(RAW[2]), "{name}: {out_text}");
        assert!(out_text.contains("event: error"), "{name}: {out_text}");
        assert!(
            out_text.contains("blocked by guardrail check 'secrets'"),
            "{name}: {out_text}"
        );
    }
}
