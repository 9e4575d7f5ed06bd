//! The real captured SSE streams of `../shared/data/sse` and a splicer that puts an e-mail
//! address, an SSN and an AWS access key into every text-bearing place of every event (text,
//! refusal, reasoning and thinking, tool-argument fragments inside their JSON strings, every
//! `*.done` event, `output_item.done`, `response.completed`), plus synthetic events for what
//! the captures lack (n>1 choices, refusal and reasoning deltas, reasoning summaries). Shared by
//! the guardrail's leak test and the end-to-end leak test through the example gateway.

#![allow(clippy::pedantic)] // test support, moved from a test file

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use infergate_core::ApiKind;
use infergate_core::sse::{SseDecoder, SseEvent};
use serde_json::{Value, json};

pub const SPLICE: &str = " jane.doe@example.com 460-89-9847 AKIAIOSFODNN7EXAMPLE ";
pub const RAW: [&str; 3] = [
    "jane.doe@example.com",
    "460-89-9847",
    "AKIAIOSFODNN7EXAMPLE",
];

pub fn data() -> Option<PathBuf> {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sse");
    if d.exists() {
        return Some(d);
    }
    assert!(
        std::env::var("CI").ok().as_deref() != Some("true"),
        "CI must have {}",
        d.display()
    );
    eprintln!(
        "skipping the captured-stream leak test: {} is absent",
        d.display()
    );
    None
}

/// Every captured stream with its API: the extracted cassettes (by their URL in INDEX.json) and
/// the raw fixtures (by folder).
pub fn captures(d: &Path) -> Vec<(String, ApiKind, String)> {
    let mut out = Vec::new();
    let index: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("extracted/INDEX.json")).unwrap())
            .unwrap();
    for e in index.as_array().unwrap() {
        let url = e["url"].as_str().unwrap();
        let path = url.split('?').next().unwrap();
        let api = if path.ends_with("/v1/completions") {
            ApiKind::Other
        } else {
            ApiKind::from_path(path)
        };
        let file = e["file"].as_str().unwrap();
        let text = std::fs::read_to_string(d.join("extracted").join(file)).unwrap();
        out.push((file.to_owned(), api, text));
    }
    let raw = [
        (
            "anthropic-sdk-python/tests/lib/streaming/fixtures",
            ApiKind::AnthropicMessages,
        ),
        (
            "anthropic-sdk-python/tests/fixtures/fable-fallback",
            ApiKind::AnthropicMessages,
        ),
        (
            "agentgateway/crates/llm/src/tests/response/anthropic",
            ApiKind::AnthropicMessages,
        ),
        (
            "agentgateway/crates/llm/src/tests/response/responses",
            ApiKind::Responses,
        ),
        (
            "agentgateway/crates/llm/src/tests/response/completions",
            ApiKind::ChatCompletions,
        ),
    ];
    for (dir, api) in raw {
        let mut files: Vec<_> = std::fs::read_dir(d.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            out.push((f.display().to_string(), api, text));
        }
    }
    out
}

pub fn decode(bytes: &[u8]) -> Vec<SseEvent> {
    let mut dec = SseDecoder::new();
    let mut out = Vec::new();
    dec.decode(bytes, &mut out).unwrap();
    dec.finish(&mut out).unwrap();
    out
}

/// Splices the PII into the middle of a text (at a char boundary).
pub fn splice_text(v: &mut Value) {
    if let Value::String(s) = v {
        let mut mid = s.len() / 2;
        while !s.is_char_boundary(mid) {
            mid -= 1;
        }
        s.insert_str(mid, SPLICE);
    }
}

/// Splices the PII into every string of a JSON text (a key with it when there is none).
pub fn splice_json(v: &mut Value) {
    let Value::String(s) = v else { return };
    let Ok(mut inner) = serde_json::from_str::<Value>(s) else {
        return;
    };
    fn leaves(v: &mut Value) -> usize {
        match v {
            Value::String(_) => {
                splice_text(v);
                1
            }
            Value::Array(a) => a.iter_mut().map(leaves).sum(),
            Value::Object(o) => o.values_mut().map(leaves).sum(),
            _ => 0,
        }
    }
    if leaves(&mut inner) == 0
        && let Value::Object(o) = &mut inner
    {
        o.insert("note".into(), json!(SPLICE));
    }
    *s = inner.to_string();
}

/// A JSON text streamed in fragments: where a splice lands inside a string.
#[derive(Debug, Default, Clone, Copy)]
pub struct Lex {
    in_str: bool,
    esc: bool,
}

/// Splices the PII into a fragment of JSON text at a place inside a string (given the state
/// before the fragment); returns the state after it.
pub fn splice_fragment(v: &mut Value, mut st: Lex) -> Lex {
    let Value::String(s) = v else { return st };
    let mut spots = Vec::new();
    for (i, b) in s.bytes().enumerate() {
        if st.esc {
            st.esc = false;
        } else if st.in_str {
            match b {
                b'\\' => st.esc = true,
                b'"' => st.in_str = false,
                _ => {}
            }
        } else if b == b'"' {
            st.in_str = true;
        }
        if st.in_str && !st.esc && s.is_char_boundary(i + 1) {
            spots.push(i + 1);
        }
    }
    if let Some(&at) = spots.get(spots.len() / 2) {
        s.insert_str(at, SPLICE);
    }
    st
}

pub fn splice_part(p: &mut Value) {
    for k in ["text", "refusal"] {
        if let Some(t) = p.get_mut(k) {
            splice_text(t);
        }
    }
}

pub fn splice_item(item: &mut Value) {
    for k in ["content", "summary"] {
        if let Some(Value::Array(parts)) = item.get_mut(k) {
            parts.iter_mut().for_each(splice_part);
        }
    }
    if let Some(a) = item.get_mut("arguments") {
        splice_json(a);
    }
    if let Some(i) = item.get_mut("input") {
        splice_text(i);
    }
}

/// The test's own table of text-bearing places, per API and event type.
#[derive(Debug)]
pub struct Splicer {
    api: ApiKind,
    frags: HashMap<(u64, u64), Lex>,
}

impl Splicer {
    fn frag(&mut self, key: (u64, u64), v: Option<&mut Value>) {
        if let Some(v) = v {
            let st = self.frags.get(&key).copied().unwrap_or_default();
            let st = splice_fragment(v, st);
            self.frags.insert(key, st);
        }
    }

    fn event(&mut self, v: &mut Value) {
        match self.api {
            ApiKind::AnthropicMessages => {
                let index = v["index"].as_u64().unwrap_or(0);
                match v["type"].as_str() {
                    Some("content_block_delta") => {
                        let d = &mut v["delta"];
                        match d["type"].as_str() {
                            Some("text_delta") => splice_text(&mut d["text"]),
                            Some("thinking_delta") => splice_text(&mut d["thinking"]),
                            Some("input_json_delta") => {
                                self.frag((index, 0), d.get_mut("partial_json"));
                            }
                            _ => {}
                        }
                    }
                    Some("content_block_start") => {
                        let b = &mut v["content_block"];
                        for k in ["text", "thinking"] {
                            if let Some(t) = b.get_mut(k) {
                                splice_text(t);
                            }
                        }
                    }
                    _ => {}
                }
            }
            ApiKind::Responses => {
                let out_idx = v["output_index"].as_u64().unwrap_or(0);
                let ty = v["type"].as_str().unwrap_or("").to_owned();
                match ty.as_str() {
                    "response.function_call_arguments.delta" => {
                        self.frag((out_idx, 0), v.get_mut("delta"));
                    }
                    t if t.ends_with(".delta") => {
                        if let Some(d) = v.get_mut("delta") {
                            splice_text(d);
                        }
                    }
                    "response.function_call_arguments.done" => splice_json(&mut v["arguments"]),
                    t if t.ends_with(".done")
                        && !t.contains("output_item")
                        && !t.contains("_part.") =>
                    {
                        for k in ["text", "refusal", "input"] {
                            if let Some(x) = v.get_mut(k) {
                                splice_text(x);
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(p) = v.get_mut("part") {
                    splice_part(p);
                }
                if let Some(item) = v.get_mut("item") {
                    splice_item(item);
                }
                if let Some(Value::Array(items)) = v.pointer_mut("/response/output") {
                    items.iter_mut().for_each(splice_item);
                }
            }
            _ => {
                for (pos, ch) in v["choices"]
                    .as_array_mut()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let choice = ch["index"].as_u64().unwrap_or(pos as u64);
                    if let Some(t) = ch.get_mut("text") {
                        splice_text(t);
                    }
                    let Some(d) = ch.get_mut("delta") else {
                        continue;
                    };
                    for k in ["content", "refusal", "reasoning_content", "reasoning"] {
                        if let Some(t) = d.get_mut(k) {
                            splice_text(t);
                        }
                    }
                    for (j, tc) in d["tool_calls"]
                        .as_array_mut()
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        let tool = tc["index"].as_u64().unwrap_or(j as u64);
                        let st = self.frags.get(&(choice, tool)).copied().unwrap_or_default();
                        if let Some(a) = tc.pointer_mut("/function/arguments") {
                            let st = splice_fragment(a, st);
                            self.frags.insert((choice, tool), st);
                        }
                    }
                }
            }
        }
    }
}

/// Events the captures lack, added to each stream of their API (after its first event).
pub fn synthetic(api: ApiKind) -> Vec<(Option<&'static str>, Value)> {
    match api {
        ApiKind::Responses => {
            let ev = |v: Value| (v["type"].as_str().map(|_| "x"), v);
            vec![
                ev(
                    json!({"type":"response.reasoning_summary_text.delta","output_index":90,"summary_index":0,"delta":"I think"}),
                ),
                ev(
                    json!({"type":"response.reasoning_summary_text.delta","output_index":90,"summary_index":0,"delta":" so"}),
                ),
                ev(
                    json!({"type":"response.reasoning_summary_text.done","output_index":90,"summary_index":0,"text":"I think so"}),
                ),
                ev(
                    json!({"type":"response.reasoning_text.delta","output_index":90,"content_index":0,"delta":"step one"}),
                ),
                ev(
                    json!({"type":"response.reasoning_text.done","output_index":90,"content_index":0,"text":"step one"}),
                ),
                ev(
                    json!({"type":"response.output_item.done","output_index":90,"item":{"type":"reasoning","summary":[{"type":"summary_text","text":"I think so"}],"content":[{"type":"reasoning_text","text":"step one"}]}}),
                ),
                ev(
                    json!({"type":"response.refusal.delta","output_index":91,"content_index":0,"delta":"I can't"}),
                ),
                ev(
                    json!({"type":"response.refusal.done","output_index":91,"content_index":0,"refusal":"I can't"}),
                ),
                ev(
                    json!({"type":"response.content_part.done","output_index":91,"content_index":0,"part":{"type":"refusal","refusal":"I can't"}}),
                ),
                ev(
                    json!({"type":"response.output_text.delta","output_index":92,"content_index":0,"delta":"Hello"}),
                ),
                ev(
                    json!({"type":"response.output_text.done","output_index":92,"content_index":0,"text":"Hello"}),
                ),
                ev(
                    json!({"type":"response.function_call_arguments.delta","output_index":93,"delta":"{\"to\":\"x"}),
                ),
                ev(
                    json!({"type":"response.function_call_arguments.delta","output_index":93,"delta":"y\"}"}),
                ),
                ev(
                    json!({"type":"response.function_call_arguments.done","output_index":93,"arguments":"{\"to\":\"xy\"}"}),
                ),
            ]
        }
        ApiKind::AnthropicMessages => vec![
            (
                None,
                json!({"type":"content_block_start","index":90,"content_block":{"type":"thinking","thinking":"","signature":""}}),
            ),
            (
                None,
                json!({"type":"content_block_delta","index":90,"delta":{"type":"thinking_delta","thinking":"Let me think"}}),
            ),
            (None, json!({"type":"content_block_stop","index":90})),
            (
                None,
                json!({"type":"content_block_start","index":91,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}),
            ),
            (
                None,
                json!({"type":"content_block_delta","index":91,"delta":{"type":"input_json_delta","partial_json":"{\"q\": \"ab"}}),
            ),
            (
                None,
                json!({"type":"content_block_delta","index":91,"delta":{"type":"input_json_delta","partial_json":"cd\"}"}}),
            ),
            (None, json!({"type":"content_block_stop","index":91})),
        ],
        _ => {
            let chunk = |delta: Value, index: u64| {
                (
                    None,
                    json!({"id":"s","object":"chat.completion.chunk","model":"m",
                        "choices":[{"index":index,"delta":delta,"finish_reason":null}]}),
                )
            };
            vec![
                chunk(json!({"reasoning_content":"Thinking about it"}), 0),
                chunk(json!({"reasoning_content":"Thinking more"}), 1),
                chunk(json!({"reasoning":"Another provider's field"}), 0),
                chunk(json!({"refusal":"I refuse"}), 1),
            ]
        }
    }
}

/// The spliced stream for one capture (with a second choice for chat streams).
pub fn spliced(api: ApiKind, text: &str) -> (Bytes, usize) {
    let mut sp = Splicer {
        api,
        frags: HashMap::new(),
    };
    let mut out = String::new();
    let mut n = 0;
    let mut write = |event: Option<&str>, data: &str, out: &mut String| {
        if let Some(e) = event {
            out.push_str(&format!("event: {e}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
        n += 1;
    };
    // Some fixtures end without the final blank line.
    let events = decode(format!("{text}\n\n").as_bytes());
    for (i, ev) in events.iter().enumerate() {
        let Some(data) = ev.data_str() else { continue };
        let parsed = serde_json::from_str::<Value>(data);
        match parsed {
            Ok(mut v) => {
                if matches!(api, ApiKind::ChatCompletions | ApiKind::Other)
                    && let Some(Value::Array(choices)) = v.get_mut("choices")
                    && choices.len() == 1
                {
                    // n>1: a second choice with the same deltas.
                    let mut second = choices[0].clone();
                    second["index"] = json!(1);
                    choices.push(second);
                }
                sp.event(&mut v);
                write(ev.event_type(), &v.to_string(), &mut out);
            }
            Err(_) => write(ev.event_type(), data, &mut out),
        }
        if i == 0 {
            for (_, mut v) in synthetic(api) {
                sp.event(&mut v);
                let name = v["type"].as_str().map(str::to_owned);
                let name = if api == ApiKind::ChatCompletions || api == ApiKind::Other {
                    None
                } else {
                    name
                };
                write(name.as_deref(), &v.to_string(), &mut out);
            }
        }
    }
    (Bytes::from(out), n)
}

pub fn request_for(api: ApiKind) -> (&'static str, Value) {
    match api {
        ApiKind::Responses => (
            "/v1/responses",
            json!({"model":"m","stream":true,"input":"hi"}),
        ),
        ApiKind::AnthropicMessages => (
            "/v1/messages",
            json!({"model":"m","max_tokens":10,"stream":true,"messages":[{"role":"user","content":"hi"}]}),
        ),
        ApiKind::Other => (
            "/v1/completions",
            json!({"model":"m","stream":true,"prompt":"hi"}),
        ),
        _ => (
            "/v1/chat/completions",
            json!({"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}),
        ),
    }
}
