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

/// Why a stored answer cannot be replayed (the entry is treated as a miss).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplayError {
    /// The stored body is not a JSON object.
    #[error("the stored answer is not a JSON object")]
    NotAnObject,
    /// A stored chat completion without a `choices` array of objects.
    #[error("the stored chat completion has no valid choices")]
    NoChoices,
}

/// The response body of a stored answer as the client asked for it: the JSON body itself, or
/// (a chat completion asked as a stream) a replayed SSE stream. Content type and body, or why
/// the entry cannot answer; never a panic, whatever the entry holds.
pub(crate) fn replay(
    answer: &Answer,
    stream: bool,
    include_usage: bool,
) -> Result<(&'static str, Bytes), ReplayError> {
    let v: Value = serde_json::from_slice(&answer.body).map_err(|_| ReplayError::NotAnObject)?;
    if !v.is_object() {
        return Err(ReplayError::NotAnObject);
    }
    if answer.api != ApiKind::ChatCompletions {
        return Ok(("application/json", answer.body.clone()));
    }
    let choices_ok = v
        .get("choices")
        .and_then(Value::as_array)
        .is_some_and(|c| !c.is_empty() && c.iter().all(Value::is_object));
    if !choices_ok {
        return Err(ReplayError::NoChoices);
    }
    if stream {
        Ok(("text/event-stream", chat_to_sse(&v, include_usage)))
    } else {
        Ok(("application/json", answer.body.clone()))
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
            // Only objects are tool calls; anything else in a stored entry is left out.
            let calls: Vec<Value> = calls
                .iter()
                .filter_map(Value::as_object)
                .enumerate()
                .map(|(i, c)| {
                    let mut c = c.clone();
                    c.insert("index".into(), json!(i));
                    Value::Object(c)
                })
                .collect();
            if !calls.is_empty() {
                delta.insert("tool_calls".into(), Value::Array(calls));
            }
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

/// The most text a stream may carry for its assembled completion to be stored (content,
/// refusals, tool-call names and arguments together); a longer stream still reaches the client
/// whole, it is just not cached.
pub(crate) const MAX_ASSEMBLED: usize = 16 << 20;

/// Rebuilds a whole chat completion from the chunks of a stream, in time linear in the
/// stream: every text grows in place.
#[derive(Debug, Default)]
pub(crate) struct ChatAssembler {
    head: Option<Map<String, Value>>,
    choices: Vec<ChoiceParts>,
    usage: Option<Value>,
    broken: Option<&'static str>,
    /// Text bytes taken so far.
    size: usize,
}

#[derive(Debug, Default)]
struct ChoiceParts {
    role: Option<Value>,
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Vec<CallParts>,
    finish: Option<Value>,
}

/// One tool call being assembled: its other fields (`id`, `type`) and its function's name and
/// arguments, appended to as deltas come.
#[derive(Debug, Default)]
struct CallParts {
    fields: Map<String, Value>,
    function: Option<(String, String)>,
}

impl CallParts {
    /// Merges one delta; returns the text bytes it added.
    fn merge(&mut self, delta: &Value) -> usize {
        for f in ["id", "type"] {
            if let Some(v) = delta.get(f).filter(|v| !v.is_null()) {
                self.fields.insert(f.into(), v.clone());
            }
        }
        let Some(fd) = delta.get("function") else {
            return 0;
        };
        let (name, arguments) = self.function.get_or_insert_with(Default::default);
        let mut added = 0;
        if let Some(s) = fd.get("name").and_then(Value::as_str) {
            name.push_str(s);
            added += s.len();
        }
        if let Some(s) = fd.get("arguments").and_then(Value::as_str) {
            arguments.push_str(s);
            added += s.len();
        }
        added
    }

    fn into_value(self) -> Value {
        let mut m = self.fields;
        if let Some((name, arguments)) = self.function {
            m.insert(
                "function".into(),
                json!({"name": name, "arguments": arguments}),
            );
        }
        Value::Object(m)
    }
}

impl ChatAssembler {
    /// Takes one chunk's JSON.
    pub(crate) fn push(&mut self, chunk: &Value) {
        if self.broken.is_some() {
            return;
        }
        let Some(o) = chunk.as_object() else {
            self.broken = Some("a chunk is not a JSON object");
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
            let i = ch.get("index").and_then(Value::as_u64).unwrap_or(0);
            let Some(i) = usize::try_from(i).ok().filter(|i| *i <= 128) else {
                self.broken = Some("a choice index above 128");
                return;
            };
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
                    self.size = self.size.saturating_add(t.len());
                }
                if let Some(t) = d.get("refusal").and_then(Value::as_str) {
                    c.refusal.get_or_insert_with(String::new).push_str(t);
                    self.size = self.size.saturating_add(t.len());
                }
                if let Some(calls) = d.get("tool_calls").and_then(Value::as_array) {
                    for call in calls {
                        let k = call.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let Some(k) = usize::try_from(k).ok().filter(|k| *k <= 128) else {
                            self.broken = Some("a tool-call index above 128");
                            return;
                        };
                        if c.tool_calls.len() <= k {
                            c.tool_calls.resize_with(k + 1, CallParts::default);
                        }
                        let added = c.tool_calls[k].merge(call);
                        self.size = self.size.saturating_add(added);
                    }
                }
                if self.size > MAX_ASSEMBLED {
                    self.broken = Some("the stream is larger than the cache keeps");
                    return;
                }
            }
            if let Some(f) = ch.get("finish_reason").filter(|f| !f.is_null()) {
                c.finish = Some(f.clone());
            }
        }
    }

    /// The whole completion, if the stream was a well-formed, finished chat completion; else
    /// why not.
    pub(crate) fn finish(self) -> Result<Value, &'static str> {
        if let Some(why) = self.broken {
            return Err(why);
        }
        if self.choices.is_empty() {
            return Err("the stream carried no choice");
        }
        if self.choices.iter().any(|c| c.finish.is_none()) {
            return Err("a choice has no finish_reason");
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
                        Value::Array(
                            c.tool_calls
                                .into_iter()
                                .map(CallParts::into_value)
                                .collect(),
                        ),
                    );
                }
                json!({"index": i, "message": msg, "logprobs": null, "finish_reason": c.finish})
            })
            .collect();
        out.insert("choices".into(), Value::Array(choices));
        if let Some(u) = self.usage {
            out.insert("usage".into(), u);
        }
        Ok(Value::Object(out))
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
        assert!(a.finish().is_err());
    }

    #[test]
    fn tool_call_arguments_assemble_in_linear_time() {
        // 200,000 one-byte argument deltas: quadratic rebuilding would copy ~20 GB.
        let mut a = ChatAssembler::default();
        a.push(
            &json!({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant",
            "tool_calls": [{"index": 0, "id": "t", "type": "function",
                "function": {"name": "f", "arguments": ""}}]}, "finish_reason": null}]}),
        );
        let chunk = json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
            "function": {"arguments": "x"}}]}, "finish_reason": null}]});
        for _ in 0..200_000 {
            a.push(&chunk);
        }
        a.push(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}));
        let v = a.finish().unwrap();
        let call = &v["choices"][0]["message"]["tool_calls"][0];
        assert_eq!(call["id"], "t");
        assert_eq!(call["function"]["name"], "f");
        assert_eq!(
            call["function"]["arguments"].as_str().unwrap().len(),
            200_000
        );
    }

    #[test]
    fn a_stream_past_the_size_bound_is_not_assembled() {
        let mut a = ChatAssembler::default();
        let big = "x".repeat(1 << 20);
        for _ in 0..17 {
            a.push(&json!({"choices": [{"index": 0, "delta": {"content": big}}]}));
        }
        a.push(&json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}));
        assert_eq!(
            a.finish().unwrap_err(),
            "the stream is larger than the cache keeps"
        );
    }

    /// A small deterministic generator of arbitrary JSON values and bytes.
    struct Gen(u64);

    #[allow(clippy::cast_possible_truncation)]
    fn small(n: u64) -> i64 {
        i64::from(n as u32)
    }

    impl Gen {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn value(&mut self, depth: u32) -> Value {
            const KEYS: [&str; 16] = [
                "id",
                "choices",
                "message",
                "delta",
                "content",
                "tool_calls",
                "function",
                "arguments",
                "name",
                "index",
                "finish_reason",
                "usage",
                "role",
                "refusal",
                "type",
                "x",
            ];
            match self.below(if depth > 4 { 6 } else { 9 }) {
                0 => Value::Null,
                1 => Value::Bool(self.below(2) == 0),
                2 => json!(self.next()),
                3 => json!(-small(self.below(1000))),
                4 => json!(small(self.below(1000)) as f64 / 7.0),
                5 => Value::String("é\u{0}\"\n".repeat(self.below(3) as usize)),
                6 | 7 => Value::Object(
                    (0..self.below(6))
                        .map(|_| {
                            let k = KEYS[self.below(16) as usize].to_owned();
                            (k, self.value(depth + 1))
                        })
                        .collect(),
                ),
                _ => Value::Array((0..self.below(5)).map(|_| self.value(depth + 1)).collect()),
            }
        }

        /// Something shaped like a chat completion, with arbitrary parts.
        fn completion(&mut self) -> Value {
            let mut choices = Vec::new();
            for _ in 0..self.below(4) {
                let mut message = Map::new();
                for f in ["role", "content", "refusal", "tool_calls"] {
                    if self.below(2) == 0 {
                        message.insert(f.into(), self.value(2));
                    }
                }
                if self.below(2) == 0 {
                    let calls = (0..self.below(4)).map(|_| self.value(3)).collect();
                    message.insert("tool_calls".into(), Value::Array(calls));
                }
                choices.push(json!({"index": self.value(3), "message": message,
                    "finish_reason": self.value(3)}));
            }
            json!({"id": self.value(3), "model": self.value(3), "choices": choices,
                "usage": self.value(2), "system_fingerprint": self.value(3)})
        }
    }

    fn check_replay(answer: &Answer, stream: bool, include_usage: bool) {
        let Ok((ct, body)) = replay(answer, stream, include_usage) else {
            return;
        };
        if ct == "text/event-stream" {
            let text = std::str::from_utf8(&body).unwrap();
            assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
            for ev in text.split("\n\n").filter(|e| !e.is_empty()) {
                let data = ev.strip_prefix("data: ").unwrap();
                if data != "[DONE]" {
                    let v: Value = serde_json::from_str(data).unwrap();
                    assert_eq!(v["object"], "chat.completion.chunk");
                }
            }
        } else {
            assert!(serde_json::from_slice::<Value>(&body).unwrap().is_object());
        }
    }

    #[test]
    fn stored_answers_of_any_shape_replay_cleanly_or_not_at_all() {
        let mut g = Gen(0x2545_f491_4f6c_dd1d);
        for round in 0..5_000 {
            let body = match round % 4 {
                0 => serde_json::to_vec(&g.value(0)).unwrap(),
                1 | 2 => serde_json::to_vec(&g.completion()).unwrap(),
                _ => (0..g.below(64)).map(|_| g.below(256) as u8).collect(),
            };
            for api in [ApiKind::ChatCompletions, ApiKind::Embeddings] {
                let answer = Answer {
                    api,
                    body: Bytes::from(body.clone()),
                };
                for (stream, usage) in [(false, false), (true, false), (true, true)] {
                    check_replay(&answer, stream, usage);
                }
                // Through the byte store's encoding too (and truncated or garbage encodings).
                let enc = answer.encode();
                if let Some(back) = Answer::decode(&enc) {
                    assert_eq!(back, answer);
                }
                let _ = Answer::decode(&enc[..enc.len() / 2]);
            }
        }
        // What must not replay: not an object, no choices.
        let bad = |b: &str| Answer {
            api: ApiKind::ChatCompletions,
            body: Bytes::from(b.to_owned()),
        };
        for b in [
            "",
            "[]",
            "1",
            "\"s\"",
            "{",
            "{}",
            r#"{"choices":[]}"#,
            r#"{"choices":[1]}"#,
        ] {
            assert!(replay(&bad(b), true, true).is_err(), "{b}");
        }
        // Non-object tool calls in a stored entry are left out of the replay.
        let a =
            bad(r#"{"choices":[{"message":{"content":"hi","tool_calls":[1,null,{"id":"t"}]}}]}"#);
        let (_, body) = replay(&a, true, false).unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains(r#""tool_calls":[{"id":"t","index":0}]"#),
            "{text}"
        );
    }

    #[test]
    fn arbitrary_chunks_never_panic_the_assembler() {
        let mut g = Gen(0x9e37_79b9_7f4a_7c15);
        for _ in 0..2_000 {
            let mut a = ChatAssembler::default();
            for _ in 0..g.below(20) {
                let chunk = if g.below(2) == 0 {
                    g.value(0)
                } else {
                    let delta = g.value(1);
                    json!({"choices": [{"index": g.value(4), "delta": delta,
                        "finish_reason": g.value(4)}], "usage": g.value(3)})
                };
                a.push(&chunk);
            }
            if let Ok(v) = a.finish() {
                let answer = Answer {
                    api: ApiKind::ChatCompletions,
                    body: Bytes::from(serde_json::to_vec(&v).unwrap()),
                };
                check_replay(&answer, true, true);
            }
        }
    }
}
