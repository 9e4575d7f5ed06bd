//! The mock's answers in every protocol, with tool calls and structured output: Bedrock
//! Converse/ConverseStream (AWS event-stream framing), Gemini `generateContent` and
//! `streamGenerateContent?alt=sse` (and both on Vertex AI), Anthropic on Vertex, the OpenAI
//! Responses API, and OpenAI Chat and Anthropic Messages whenever a request offers tools, sends
//! a tool result or asks for JSON.
//!
//! The request is read and the answer written with `infergate-translate`'s codecs, which are
//! tested against the providers' captured and documented shapes. What the mock answers:
//! - tools offered (and `tool_choice` not `none`) and the last user turn is not a tool result:
//!   a call of the named tool, or the first, with arguments made from its JSON schema (every
//!   property, the first `enum` value, `"mock"` for strings, 1 for numbers);
//! - the last user turn holds tool results: a text that repeats them (`The tool said: …`);
//! - a JSON schema asked for: a JSON text made from the schema; JSON mode: `{"answer": …}`;
//! - otherwise the configured reply.

use bytes::Bytes;
use http::{Response, StatusCode, header};
use infergate_translate::ir::{
    ChatRequest, ChatResponse, FinishReason, Part, ResponseFormat, Role, ToolChoice,
};
use infergate_translate::{Options, Protocol, StreamEncoder, StreamEvent, Usage};
use serde_json::{Value, json};

use crate::handlers::{MockBody, cut_body, sse_frames, words};
use crate::server::State;

/// Which protocol a request speaks, its model (from the URL, for Bedrock and Gemini) and
/// whether the answer is streamed — when the agentic path answers it.
pub(crate) fn route(path: &str, body: &Value) -> Option<(Protocol, Option<String>, bool)> {
    let stream_flag = body.get("stream").and_then(Value::as_bool) == Some(true);
    if let Some(rest) = path.strip_prefix("/model/") {
        let (model, op) = rest.rsplit_once('/')?;
        return match op {
            "converse" => Some((Protocol::Bedrock, Some(decode(model)), false)),
            "converse-stream" => Some((Protocol::Bedrock, Some(decode(model)), true)),
            _ => None,
        };
    }
    if let Some((prefix, op)) = path.rsplit_once(':') {
        let model = prefix.rsplit_once("/models/").map(|(_, m)| decode(m));
        return match op {
            "generateContent" => Some((Protocol::Gemini, model, false)),
            "streamGenerateContent" => Some((Protocol::Gemini, model, true)),
            "rawPredict" => Some((Protocol::Anthropic, model, stream_flag)),
            "streamRawPredict" => Some((Protocol::Anthropic, model, true)),
            _ => None,
        };
    }
    if path.ends_with("/responses") {
        return Some((Protocol::OpenAiResponses, None, stream_flag));
    }
    let agentic = body.get("tools").is_some_and(|t| !t.is_null())
        || body.get("response_format").is_some_and(|f| {
            matches!(
                f.get("type").and_then(Value::as_str),
                Some("json_schema" | "json_object")
            )
        })
        || body.get("output_config").is_some()
        || last_turn_has_tool_results(body);
    if !agentic {
        return None;
    }
    if path.ends_with("/chat/completions") {
        Some((Protocol::OpenAiChat, None, stream_flag))
    } else if path.ends_with("/messages") {
        Some((Protocol::Anthropic, None, stream_flag))
    } else {
        None
    }
}

fn last_turn_has_tool_results(body: &Value) -> bool {
    let Some(last) = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
    else {
        return false;
    };
    last.get("role").and_then(Value::as_str) == Some("tool")
        || last
            .get("content")
            .and_then(Value::as_array)
            .is_some_and(|c| {
                c.iter()
                    .any(|p| p.get("type").and_then(Value::as_str) == Some("tool_result"))
            })
}

fn decode(segment: &str) -> String {
    let b = segment.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to a request of `protocol`.
pub(crate) fn answer(
    state: &State,
    protocol: Protocol,
    model: Option<String>,
    stream: bool,
    body: &[u8],
    n: u64,
    cut: Option<usize>,
) -> Response<MockBody> {
    let mut opts = Options::default();
    opts.lossy_all = true;
    let mut req = match infergate_translate::decode_request(protocol, body, &opts) {
        Ok(r) => r,
        Err(e) => {
            let (status, body) =
                infergate_translate::encode_error(protocol, &e.to_provider_error());
            return respond(state, status, "application/json", Bytes::from(body));
        }
    };
    if let Some(m) = model {
        req.model = m;
    }
    let resp = reply(state, &req, protocol, n, body.len());
    if !stream {
        return match infergate_translate::encode_response(protocol, &resp, &opts) {
            Ok(b) => cut_body(respond(state, 200, "application/json", Bytes::from(b)), cut),
            Err(e) => {
                let (status, body) =
                    infergate_translate::encode_error(protocol, &e.to_provider_error());
                respond(state, status, "application/json", Bytes::from(body))
            }
        };
    }
    opts.include_usage = req.include_usage;
    let mut enc = StreamEncoder::new(protocol, &opts);
    let mut frames = Vec::new();
    for ev in token_events(resp.to_stream_events()) {
        let mut out = Vec::new();
        if enc.encode(&ev, &mut out).is_ok() && !out.is_empty() {
            frames.push(Bytes::from(out));
        }
    }
    if protocol == Protocol::OpenAiChat {
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    }
    let mut r = sse_frames(state, frames, cut);
    if protocol == Protocol::Bedrock {
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/vnd.amazon.eventstream"),
        );
    }
    r
}

/// Text deltas split into words, as a model streams tokens.
fn token_events(events: Vec<StreamEvent>) -> Vec<StreamEvent> {
    let mut out = Vec::with_capacity(events.len() * 4);
    for ev in events {
        match ev {
            StreamEvent::TextDelta { index, text } => {
                for w in words(&text) {
                    out.push(StreamEvent::TextDelta { index, text: w });
                }
            }
            other => out.push(other),
        }
    }
    out
}

fn respond(
    state: &State,
    status: u16,
    content_type: &'static str,
    body: Bytes,
) -> Response<MockBody> {
    let mut r = Response::new(crate::handlers::full(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    if let Ok(v) = http::HeaderValue::from_str(&state.name) {
        r.headers_mut().insert("x-mock-name", v);
    }
    r
}

fn reply(
    state: &State,
    req: &ChatRequest,
    protocol: Protocol,
    n: u64,
    body_len: usize,
) -> ChatResponse {
    let mut resp = ChatResponse::default();
    resp.id = match protocol {
        Protocol::Anthropic => format!("msg_mock_{n:016}"),
        Protocol::OpenAiResponses => format!("resp_mock_{n}"),
        _ => format!("chatcmpl-mock-{n}"),
    };
    resp.model.clone_from(&req.model);
    resp.created = Some(now());
    let results: Vec<String> = req
        .messages
        .last()
        .filter(|m| m.role == Role::User)
        .map(|m| {
            m.content
                .iter()
                .filter_map(|p| match p {
                    Part::ToolResult { content, .. } => Some(
                        content
                            .iter()
                            .filter_map(|c| match c {
                                Part::Text { text, .. } => Some(text.as_str()),
                                _ => None,
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    let tool = match &req.tool_choice {
        Some(ToolChoice::None) => None,
        Some(ToolChoice::Named(name)) => req.tools.iter().find(|t| &t.name == name),
        _ => req.tools.first(),
    };
    let (part, finish) = if !results.is_empty() {
        (
            Part::text(format!("The tool said: {}", results.join("; "))),
            FinishReason::Stop,
        )
    } else if let Some(t) = tool {
        let id = match protocol {
            Protocol::Anthropic => format!("toolu_mock_{n:016}"),
            Protocol::Bedrock => format!("tooluse_mock_{n}"),
            _ => format!("call_mock_{n}"),
        };
        (
            Part::ToolCall {
                id,
                name: t.name.clone(),
                arguments: sample(&t.parameters.to_value().unwrap_or_default(), 0).to_string(),
                cache: None,
            },
            FinishReason::ToolCalls,
        )
    } else {
        match &req.response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => (
                Part::text(sample(schema, 0).to_string()),
                FinishReason::Stop,
            ),
            Some(ResponseFormat::JsonObject) => (
                Part::text(json!({ "answer": state.reply }).to_string()),
                FinishReason::Stop,
            ),
            _ => (Part::text(state.reply.clone()), FinishReason::Stop),
        }
    };
    let output = match &part {
        Part::Text { text, .. } => words(text).len() as u64,
        _ => 8,
    };
    resp.content = vec![part];
    resp.finish = Some(finish);
    let mut usage = Usage::default();
    usage.input_tokens = (body_len as u64).div_ceil(4).max(1);
    usage.output_tokens = output;
    resp.usage = usage;
    resp
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A value that satisfies a JSON schema's common keywords (every property, the first enum
/// value or alternative), bounded in depth.
fn sample(schema: &Value, depth: usize) -> Value {
    if depth > 8 {
        return Value::Null;
    }
    if let Some(v) = schema.get("const") {
        return v.clone();
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return first.clone();
    }
    for key in ["anyOf", "oneOf", "allOf"] {
        if let Some(first) = schema
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
        {
            return sample(first, depth + 1);
        }
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("null"),
        _ if schema.get("properties").is_some() => "object",
        _ => "string",
    };
    match ty {
        "object" => {
            let mut m = serde_json::Map::new();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    m.insert(k.clone(), sample(s, depth + 1));
                }
            }
            Value::Object(m)
        }
        "array" => {
            let item = schema
                .get("items")
                .map_or(json!("mock"), |s| sample(s, depth + 1));
            json!([item])
        }
        "integer" => json!(1),
        "number" => json!(1.5),
        "boolean" => json!(true),
        "null" => Value::Null,
        _ => json!("mock"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_path_and_features() {
        let plain = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(route("/v1/chat/completions", &plain), None);
        let tools = json!({"messages": [], "tools": [{"type": "function"}]});
        assert_eq!(
            route("/v1/chat/completions", &tools),
            Some((Protocol::OpenAiChat, None, false))
        );
        assert_eq!(
            route("/model/anthropic.claude-3%3A0/converse-stream", &plain),
            Some((
                Protocol::Bedrock,
                Some("anthropic.claude-3:0".to_owned()),
                true
            ))
        );
        assert_eq!(
            route("/v1beta/models/gemini-2.0-flash:generateContent", &plain),
            Some((Protocol::Gemini, Some("gemini-2.0-flash".to_owned()), false))
        );
    }

    #[test]
    fn samples_satisfy_the_schema() {
        let s = json!({"type": "object", "properties": {
            "city": {"type": "string"}, "unit": {"enum": ["c", "f"]},
            "days": {"type": "integer"}, "tags": {"type": "array", "items": {"type": "string"}}},
            "required": ["city"]});
        assert_eq!(
            sample(&s, 0),
            json!({"city": "mock", "unit": "c", "days": 1, "tags": ["mock"]})
        );
    }
}
