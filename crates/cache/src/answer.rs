//! A cached answer, and the conversions between a streamed and a whole chat completion.

use bytes::Bytes;
use infergate_core::ApiKind;
use serde_json::{Map, Value, json};

/// A stored answer: the API and the whole (non-streamed) JSON response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The API it answers.
    pub api: ApiKind,
    /// The JSON body, as a non-streamed response would carry it.
    pub body: Bytes,
}

#[cfg_attr(not(feature = "redis"), allow(dead_code))]
impl Answer {
    /// Serialises for a byte store: one API byte, then the body.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.body.len() + 1);
        v.push(api_code(self.api));
        v.extend_from_slice(&self.body);
        v
    }

    /// The inverse of [`Answer::encode`].
    pub(crate) fn decode(b: &[u8]) -> Option<Self> {
        let (&code, body) = b.split_first()?;
        Some(Self {
            api: api_from(code)?,
            body: Bytes::copy_from_slice(body),
        })
    }
}

fn api_code(api: ApiKind) -> u8 {
    match api {
        ApiKind::ChatCompletions => 1,
        ApiKind::Embeddings => 2,
        _ => 0,
    }
}

fn api_from(code: u8) -> Option<ApiKind> {
    match code {
        1 => Some(ApiKind::ChatCompletions),
        2 => Some(ApiKind::Embeddings),
        _ => None,
    }
}

/// Replays a stored chat completion as an SSE stream, as the API would have streamed it: a
/// role chunk, the content (and tool calls), the finish reason, the usage chunk when
/// `include_usage`, and `[DONE]`.
pub(crate) fn chat_to_sse(body: &Value, include_usage: bool) -> Bytes {
    let id = body.get("id").cloned().unwrap_or(Value::Null);
    let created = body.get("created").cloned().unwrap_or(Value::Null);
    let model = body.get("model").cloned().unwrap_or(Value::Null);
    let fingerprint = body.get("system_fingerprint").cloned();
    let chunk = |choices: Value, usage: Option<&Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created,
            "model": model, "choices": choices});
        if let Some(f) = &fingerprint {
            c["system_fingerprint"] = f.clone();
        }
        if let Some(u) = usage {
            c["usage"] = u.clone();
        }
        format!("data: {c}\n\n")
    };
    let mut out = String::new();
    let empty = Vec::new();
    let choices = body
        .get("choices")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    for ch in choices {
        let index = ch.get("index").cloned().unwrap_or(json!(0));
        let msg = ch.get("message").cloned().unwrap_or_else(|| json!({}));
        let role = msg.get("role").cloned().unwrap_or(json!("assistant"));
        out.push_str(&chunk(
            json!([{"index": index, "delta": {"role": role, "content": ""}, "logprobs": null, "finish_reason": null}]),
            None,
        ));
        let mut delta = Map::new();
        for f in ["content", "refusal"] {
            if let Some(v) = msg.get(f).filter(|v| !v.is_null()) {
                delta.insert(f.into(), v.clone());
            }
        }
        if let Some(Value::Array(calls)) = msg.get("tool_calls") {
            let calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let mut c = c.clone();
                    c["index"] = json!(i);
                    c
                })
                .collect();
            delta.insert("tool_calls".into(), Value::Array(calls));
        }
        if !delta.is_empty() {
            out.push_str(&chunk(
                json!([{"index": index, "delta": delta, "logprobs": null, "finish_reason": null}]),
                None,
            ));
        }
        let finish = ch.get("finish_reason").cloned().unwrap_or(json!("stop"));
        out.push_str(&chunk(
            json!([{"index": index, "delta": {}, "logprobs": null, "finish_reason": finish}]),
            None,
        ));
    }
    if include_usage && let Some(u) = body.get("usage") {
        out.push_str(&chunk(json!([]), Some(u)));
    }
    out.push_str("data: [DONE]\n\n");
    Bytes::from(out)
}

/// Rebuilds a whole chat completion from the chunks of a stream.
#[derive(Debug, Default)]
pub(crate) struct ChatAssembler {
    head: Option<Map<String, Value>>,
    choices: Vec<ChoiceParts>,
    usage: Option<Value>,
    broken: bool,
}

#[derive(Debug, Default)]
struct ChoiceParts {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<Map<String, Value>>,
    finish: Option<Value>,
}

impl ChatAssembler {
    /// Takes one chunk's JSON.
    pub(crate) fn push(&mut self, chunk: &Value) {
        let Some(o) = chunk.as_object() else {
            self.broken = true;
            return;
        };
        if self.head.is_none() {
            let mut head = Map::new();
            for f in [
                "id",
                "created",
                "model",
                "system_fingerprint",
                "service_tier",
            ] {
                if let Some(v) = o.get(f) {
                    head.insert(f.into(), v.clone());
                }
            }
            self.head = Some(head);
        }
        if let Some(u) = o.get("usage").filter(|u| !u.is_null()) {
            self.usage = Some(u.clone());
        }
        let Some(choices) = o.get("choices").and_then(Value::as_array) else {
            return;
        };
        for ch in choices {
            let i = ch.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            if i > 128 {
                self.broken = true;
                return;
            }
            if self.choices.len() <= i {
                self.choices.resize_with(i + 1, ChoiceParts::default);
            }
            let c = &mut self.choices[i];
            if let Some(d) = ch.get("delta") {
                if let Some(r) = d.get("role").filter(|r| !r.is_null()) {
                    c.role = Some(r.clone());
                }
                if let Some(t) = d.get("content").and_then(Value::as_str) {
                    c.content.get_or_insert_with(String::new).push_str(t);
                }
                if let Some(t) = d.get("refusal").and_then(Value::as_str) {
                    c.refusal.get_or_insert_with(String::new).push_str(t);
                }
                if let Some(calls) = d.get("tool_calls").and_then(Value::as_array) {
                    for call in calls {
                        let k = call.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
                        if k > 128 {
                            self.broken = true;
                            return;
                        }
                        if c.tool_calls.len() <= k {
                            c.tool_calls.resize_with(k + 1, Map::new);
                        }
                        merge_call(&mut c.tool_calls[k], call);
                    }
                }
            }
            if let Some(f) = ch.get("finish_reason").filter(|f| !f.is_null()) {
                c.finish = Some(f.clone());
            }
        }
    }

    /// The whole completion, if the stream was a well-formed, finished chat completion.
    pub(crate) fn finish(self) -> Option<Value> {
        if self.broken || self.choices.is_empty() || self.choices.iter().any(|c| c.finish.is_none())
        {
            return None;
        }
        let mut out = self.head.unwrap_or_default();
        out.insert("object".into(), json!("chat.completion"));
        let choices: Vec<Value> = self
            .choices
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let mut msg = Map::new();
                msg.insert("role".into(), c.role.unwrap_or(json!("assistant")));
                msg.insert(
                    "content".into(),
                    c.content.map_or(Value::Null, Value::String),
                );
                if let Some(r) = c.refusal {
                    msg.insert("refusal".into(), Value::String(r));
                }
                if !c.tool_calls.is_empty() {
                    msg.insert(
                        "tool_calls".into(),
                        Value::Array(c.tool_calls.into_iter().map(Value::Object).collect()),
                    );
                }
                json!({"index": i, "message": msg, "logprobs": null, "finish_reason": c.finish})
            })
            .collect();
        out.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Some(Value::Object(out))
    }
}

fn merge_call(into: &mut Map<String, Value>, delta: &Value) {
    for f in ["id", "type"] {
        if let Some(v) = delta.get(f).filter(|v| !v.is_null()) {
            into.insert(f.into(), v.clone());
        }
    }
    if let Some(fd) = delta.get("function") {
        let func = into
            .entry("function")
            .or_insert_with(|| json!({"name": "", "arguments": ""}));
        for f in ["name", "arguments"] {
            if let Some(s) = fd.get(f).and_then(Value::as_str) {
                let cur = func.get(f).and_then(Value::as_str).unwrap_or("").to_owned();
                func[f] = Value::String(cur + s);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_survives_a_round_trip_through_sse() {
        let body = json!({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello there",
                "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                "logprobs": null, "finish_reason": "tool_calls"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}});
        let sse = chat_to_sse(&body, true);
        let text = std::str::from_utf8(&sse).unwrap();
        assert!(text.ends_with("data: [DONE]\n\n"));
        let mut a = ChatAssembler::default();
        for ev in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
            if ev != "[DONE]" {
                a.push(&serde_json::from_str(ev).unwrap());
            }
        }
        let back = a.finish().unwrap();
        assert_eq!(back["choices"][0]["message"]["content"], "Hello there");
        assert_eq!(
            back["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(back["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(back["usage"]["total_tokens"], 5);
        assert!(!String::from_utf8_lossy(&chat_to_sse(&body, false)).contains("usage"));
    }

    #[test]
    fn an_unfinished_stream_is_not_a_completion() {
        let mut a = ChatAssembler::default();
        a.push(&json!({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}));
        assert!(a.finish().is_none());
    }
}
