//! The payload model: typed but lossless request and response types for OpenAI Chat
//! Completions, Embeddings and Responses, and Anthropic Messages.
//!
//! A request body is parsed once into a [`Payload`], chosen by the endpoint ([`ApiKind`]). The
//! typed fields are the ones the building blocks need (model, messages, stream flag, output
//! bounds, usage); every other field is kept in an `extra` map, so re-serialising a payload
//! changes only what a processor changed. The accessors on [`Payload`] hide the differences
//! between the formats.
//!
//! ```
//! use infergate_core::payload::{ApiKind, Payload};
//!
//! let body = br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"seed":7}"#;
//! let mut p = Payload::parse(ApiKind::ChatCompletions, body).unwrap();
//! assert_eq!(p.model(), Some("gpt-4o"));
//! assert_eq!(p.last_user_text().as_deref(), Some("Hi"));
//! p.set_model("gpt-4o-mini");
//! let out: serde_json::Value = serde_json::from_slice(&p.to_bytes().unwrap()).unwrap();
//! assert_eq!(out["seed"], 7); // unknown fields survive
//! ```

pub mod anthropic;
mod content;
pub mod openai;

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

pub use content::{ContentPart, MessageContent};

/// Which API a request speaks, decided by its path.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiKind {
    /// OpenAI `/v1/chat/completions` (and Azure deployment paths).
    ChatCompletions,
    /// OpenAI `/v1/embeddings`.
    Embeddings,
    /// OpenAI `/v1/responses`.
    Responses,
    /// Anthropic `/v1/messages`.
    AnthropicMessages,
    /// Any other JSON endpoint: parsed as plain JSON.
    Other,
}

impl ApiKind {
    /// The API of a request path (`/v1/chat/completions`, `/openai/deployments/x/chat/completions`,
    /// `/v1/messages`, ...).
    pub fn from_path(path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if path.ends_with("/chat/completions") {
            Self::ChatCompletions
        } else if path.ends_with("/embeddings") {
            Self::Embeddings
        } else if path.ends_with("/responses") {
            Self::Responses
        } else if path.ends_with("/messages") {
            Self::AnthropicMessages
        } else {
            Self::Other
        }
    }

    /// Whether errors in this API use Anthropic's shape.
    pub fn is_anthropic(self) -> bool {
        matches!(self, Self::AnthropicMessages)
    }
}

/// Where a piece of request text comes from.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextSource {
    /// Message content (string or text parts).
    Content,
    /// Tool-call arguments.
    ToolArguments,
    /// The system prompt or instructions (Anthropic `system`, Responses `instructions`).
    System,
    /// Embeddings input.
    Input,
}

/// A piece of request text with its origin.
#[derive(Debug, Clone, Copy)]
pub struct TextRef<'a> {
    /// The message role (`user`, `system`, ...); `system` for system prompts, `input` for
    /// embeddings input.
    pub role: &'a str,
    /// Where it comes from.
    pub source: TextSource,
    /// The text.
    pub text: &'a str,
}

/// A parsed request body.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A chat completion request.
    Chat(openai::ChatCompletionRequest),
    /// An embeddings request.
    Embeddings(openai::EmbeddingsRequest),
    /// A Responses API request.
    Responses(openai::ResponsesRequest),
    /// An Anthropic Messages request.
    Messages(anthropic::MessagesRequest),
    /// Any other JSON body.
    Other(Value),
}

/// Why a body is not a valid payload.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// The bytes are not UTF-8.
    #[error("request body is not valid UTF-8 (invalid byte at offset {offset})")]
    InvalidUtf8 {
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// Not JSON at all.
    #[error("request body is not valid JSON: {0}")]
    Syntax(#[source] serde_json::Error),
    /// JSON, but not the shape the endpoint takes (a missing `model`, a wrong type).
    #[error("invalid request body: {0}")]
    Shape(#[source] serde_json::Error),
}

/// How many request bodies [`Payload::parse`] has parsed in this process: the request body is
/// parsed once per request whatever blocks are on (egress code reads the shared
/// [`ParsedRequest`](crate::pipeline::ParsedRequest)); tests count with this.
pub fn parse_count() -> u64 {
    PARSES.load(std::sync::atomic::Ordering::Relaxed)
}

static PARSES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Payload {
    /// Parses a body for `api`. Invalid UTF-8, invalid JSON and a wrong shape are told apart.
    pub fn parse(api: ApiKind, bytes: &[u8]) -> Result<Self, PayloadError> {
        PARSES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let s = std::str::from_utf8(bytes).map_err(|e| PayloadError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        let classify = |e: serde_json::Error| {
            use serde_json::error::Category;
            match e.classify() {
                Category::Data => PayloadError::Shape(e),
                _ => PayloadError::Syntax(e),
            }
        };
        Ok(match api {
            ApiKind::ChatCompletions => Self::Chat(serde_json::from_str(s).map_err(classify)?),
            ApiKind::Embeddings => Self::Embeddings(serde_json::from_str(s).map_err(classify)?),
            ApiKind::Responses => Self::Responses(serde_json::from_str(s).map_err(classify)?),
            ApiKind::AnthropicMessages => {
                Self::Messages(serde_json::from_str(s).map_err(classify)?)
            }
            ApiKind::Other => Self::Other(serde_json::from_str(s).map_err(classify)?),
        })
    }

    /// Serialises the payload.
    pub fn to_bytes(&self) -> Result<Bytes, serde_json::Error> {
        let v = match self {
            Self::Chat(r) => serde_json::to_vec(r),
            Self::Embeddings(r) => serde_json::to_vec(r),
            Self::Responses(r) => serde_json::to_vec(r),
            Self::Messages(r) => serde_json::to_vec(r),
            Self::Other(v) => serde_json::to_vec(v),
        }?;
        Ok(Bytes::from(v))
    }

    /// The payload as a JSON value (what [`Payload::to_bytes`] would write).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            Self::Chat(r) => serde_json::to_value(r),
            Self::Embeddings(r) => serde_json::to_value(r),
            Self::Responses(r) => serde_json::to_value(r),
            Self::Messages(r) => serde_json::to_value(r),
            Self::Other(v) => Ok(v.clone()),
        }
    }

    /// The API this payload belongs to.
    pub fn api(&self) -> ApiKind {
        match self {
            Self::Chat(_) => ApiKind::ChatCompletions,
            Self::Embeddings(_) => ApiKind::Embeddings,
            Self::Responses(_) => ApiKind::Responses,
            Self::Messages(_) => ApiKind::AnthropicMessages,
            Self::Other(_) => ApiKind::Other,
        }
    }

    /// The requested model.
    pub fn model(&self) -> Option<&str> {
        match self {
            Self::Chat(r) => Some(&r.model),
            Self::Embeddings(r) => Some(&r.model),
            Self::Responses(r) => r.model.as_deref(),
            Self::Messages(r) => Some(&r.model),
            Self::Other(v) => v.get("model").and_then(Value::as_str),
        }
    }

    /// Rewrites the requested model.
    pub fn set_model(&mut self, model: impl Into<String>) {
        let model = model.into();
        match self {
            Self::Chat(r) => r.model = model,
            Self::Embeddings(r) => r.model = model,
            Self::Responses(r) => r.model = Some(model),
            Self::Messages(r) => r.model = model,
            Self::Other(v) => {
                if let Some(o) = v.as_object_mut() {
                    o.insert("model".into(), Value::String(model));
                }
            }
        }
    }

    /// Whether the client asked for a streamed answer.
    pub fn is_stream(&self) -> bool {
        match self {
            Self::Chat(r) => r.stream == Some(true),
            Self::Responses(r) => r.stream == Some(true),
            Self::Messages(r) => r.stream == Some(true),
            Self::Embeddings(_) => false,
            Self::Other(v) => v.get("stream").and_then(Value::as_bool) == Some(true),
        }
    }

    /// The output bound the client set (`max_completion_tokens`, `max_tokens` or
    /// `max_output_tokens`).
    pub fn max_output_tokens(&self) -> Option<u64> {
        match self {
            Self::Chat(r) => r.max_completion_tokens.or(r.max_tokens),
            Self::Responses(r) => r.max_output_tokens,
            Self::Messages(r) => r.max_tokens,
            Self::Embeddings(_) => Some(0),
            Self::Other(v) => v.get("max_tokens").and_then(Value::as_u64),
        }
    }

    /// The end-user id (`user`, or Anthropic's `metadata.user_id`).
    pub fn user(&self) -> Option<&str> {
        match self {
            Self::Chat(r) => r.user.as_deref(),
            Self::Embeddings(r) => r.user.as_deref(),
            Self::Responses(r) => r.user.as_deref(),
            Self::Messages(r) => r
                .extra
                .get("metadata")
                .and_then(|m| m.get("user_id"))
                .and_then(Value::as_str),
            Self::Other(v) => v.get("user").and_then(Value::as_str),
        }
    }

    /// Calls `f` with every piece of text in the request: message contents (strings and text
    /// parts), tool-call arguments, system prompts and embeddings input.
    pub fn for_each_text<'a>(&'a self, f: &mut dyn FnMut(TextRef<'a>)) {
        match self {
            Self::Chat(r) => {
                for m in &r.messages {
                    if let Some(c) = &m.content {
                        c.for_each_text(&mut |text| {
                            f(TextRef {
                                role: &m.role,
                                source: TextSource::Content,
                                text,
                            });
                        });
                    }
                    for tc in m.tool_calls.iter().flatten() {
                        if let Some(args) = tc.function.as_ref().and_then(|f| f.arguments.as_ref())
                        {
                            f(TextRef {
                                role: &m.role,
                                source: TextSource::ToolArguments,
                                text: args,
                            });
                        }
                    }
                }
            }
            Self::Messages(r) => {
                if let Some(s) = &r.system {
                    s.for_each_text(&mut |text| {
                        f(TextRef {
                            role: "system",
                            source: TextSource::System,
                            text,
                        });
                    });
                }
                for m in &r.messages {
                    m.content.for_each_text(&mut |text| {
                        f(TextRef {
                            role: &m.role,
                            source: TextSource::Content,
                            text,
                        });
                    });
                    if let MessageContent::Parts(parts) = &m.content {
                        for p in parts {
                            if p.kind.as_deref() == Some("tool_use")
                                && let Some(Value::Object(input)) = p.extra.get("input")
                            {
                                for v in input.values() {
                                    content::value_texts(v, &mut |text| {
                                        f(TextRef {
                                            role: &m.role,
                                            source: TextSource::ToolArguments,
                                            text,
                                        });
                                    });
                                }
                            }
                        }
                    }
                }
            }
            Self::Responses(r) => {
                if let Some(i) = &r.instructions {
                    f(TextRef {
                        role: "system",
                        source: TextSource::System,
                        text: i,
                    });
                }
                match &r.input {
                    Some(Value::String(s)) => f(TextRef {
                        role: "user",
                        source: TextSource::Content,
                        text: s,
                    }),
                    Some(Value::Array(items)) => {
                        for item in items {
                            let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                            if let Some(c) = item.get("content") {
                                content::value_texts(c, &mut |text| {
                                    f(TextRef {
                                        role,
                                        source: TextSource::Content,
                                        text,
                                    });
                                });
                            }
                            for key in ["arguments", "output"] {
                                if let Some(Value::String(s)) = item.get(key) {
                                    f(TextRef {
                                        role,
                                        source: TextSource::ToolArguments,
                                        text: s,
                                    });
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Self::Embeddings(r) => content::value_texts(&r.input, &mut |text| {
                f(TextRef {
                    role: "input",
                    source: TextSource::Input,
                    text,
                });
            }),
            Self::Other(_) => {}
        }
    }

    /// Calls `f` with a mutable reference to every piece of text [`Payload::for_each_text`]
    /// visits, with its role and source (for redaction).
    pub fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&str, TextSource, &mut String)) {
        match self {
            Self::Chat(r) => {
                for m in &mut r.messages {
                    let role = m.role.as_str();
                    if let Some(c) = &mut m.content {
                        c.for_each_text_mut(&mut |t| f(role, TextSource::Content, t));
                    }
                    for tc in m.tool_calls.iter_mut().flatten() {
                        if let Some(args) = tc.function.as_mut().and_then(|f| f.arguments.as_mut())
                        {
                            f(role, TextSource::ToolArguments, args);
                        }
                    }
                }
            }
            Self::Messages(r) => {
                if let Some(s) = &mut r.system {
                    s.for_each_text_mut(&mut |t| f("system", TextSource::System, t));
                }
                for m in &mut r.messages {
                    let role = m.role.as_str();
                    m.content
                        .for_each_text_mut(&mut |t| f(role, TextSource::Content, t));
                    if let MessageContent::Parts(parts) = &mut m.content {
                        for p in parts {
                            if p.kind.as_deref() == Some("tool_use")
                                && let Some(Value::Object(input)) = p.extra.get_mut("input")
                            {
                                for v in input.values_mut() {
                                    content::value_texts_mut(v, &mut |t| {
                                        f(role, TextSource::ToolArguments, t);
                                    });
                                }
                            }
                        }
                    }
                }
            }
            Self::Responses(r) => {
                if let Some(i) = &mut r.instructions {
                    f("system", TextSource::System, i);
                }
                match &mut r.input {
                    Some(Value::String(s)) => f("user", TextSource::Content, s),
                    Some(Value::Array(items)) => {
                        for item in items {
                            let Some(obj) = item.as_object_mut() else {
                                continue;
                            };
                            let role = obj
                                .get("role")
                                .and_then(Value::as_str)
                                .unwrap_or("user")
                                .to_owned();
                            if let Some(c) = obj.get_mut("content") {
                                content::value_texts_mut(c, &mut |t| {
                                    f(&role, TextSource::Content, t);
                                });
                            }
                            for key in ["arguments", "output"] {
                                if let Some(Value::String(s)) = obj.get_mut(key) {
                                    f(&role, TextSource::ToolArguments, s);
                                }
                            }
                        }
                    }
                    _ => {}
                }
            }
            Self::Embeddings(r) => {
                content::value_texts_mut(&mut r.input, &mut |t| f("input", TextSource::Input, t));
            }
            Self::Other(_) => {}
        }
    }

    /// The text of the last user message, if any.
    pub fn last_user_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Chat(r) => r
                .messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .and_then(|m| m.content.as_ref())
                .map(MessageContent::joined_text),
            Self::Messages(r) => r
                .messages
                .iter()
                .rev()
                .find(|m| m.role == "user")
                .map(|m| m.content.joined_text()),
            Self::Responses(_) | Self::Embeddings(_) => {
                let mut last: Option<&str> = None;
                self.for_each_text(&mut |t| {
                    if t.role == "user" || t.role == "input" {
                        last = Some(t.text);
                    }
                });
                last.map(Cow::Borrowed)
            }
            Self::Other(_) => None,
        }
    }

    /// For a streamed chat request: makes sure the upstream sends a usage chunk. Returns `true`
    /// when the client had not asked for it (so the gateway should hide that chunk from it).
    pub fn ensure_stream_usage(&mut self) -> bool {
        let Self::Chat(r) = self else { return false };
        if r.stream != Some(true) {
            return false;
        }
        let opts = r.stream_options.get_or_insert_with(Default::default);
        if opts.include_usage == Some(true) {
            false
        } else {
            opts.include_usage = Some(true);
            true
        }
    }
}

/// Token usage normalised across APIs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenUsage {
    /// Input (prompt) tokens, including cached ones.
    pub input_tokens: u64,
    /// Output (completion) tokens, including reasoning.
    pub output_tokens: u64,
}

impl TokenUsage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

impl From<&openai::ChatUsage> for TokenUsage {
    fn from(u: &openai::ChatUsage) -> Self {
        let output = u
            .completion_tokens
            .unwrap_or_else(|| u.total_tokens.saturating_sub(u.prompt_tokens));
        Self {
            input_tokens: u.prompt_tokens,
            output_tokens: output,
        }
    }
}

impl From<&openai::ResponsesUsage> for TokenUsage {
    fn from(u: &openai::ResponsesUsage) -> Self {
        Self {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

impl From<&anthropic::AnthropicUsage> for TokenUsage {
    fn from(u: &anthropic::AnthropicUsage) -> Self {
        Self {
            // An upstream's numbers are not trusted to be in range.
            input_tokens: u
                .input_tokens
                .unwrap_or(0)
                .saturating_add(u.cache_creation_input_tokens.unwrap_or(0))
                .saturating_add(u.cache_read_input_tokens.unwrap_or(0)),
            output_tokens: u.output_tokens.unwrap_or(0),
        }
    }
}

/// Reads the usage of a non-streamed response body of `api`.
/// The usage a whole (non-streamed) answer reports, read from its parsed JSON — the body
/// parsed once and shared by every processor ([`crate::ResponseBody::json`]); only `usage` is
/// read, whatever the rest holds.
pub fn response_usage_json(api: ApiKind, body: &Value) -> Option<TokenUsage> {
    crate::usage::Usage::from_response_json(api, body).map(TokenUsage::from)
}

/// The usage a whole (non-streamed) answer reports, parsed from its bytes (prefer
/// [`response_usage_json`] when the body is parsed already).
pub fn response_usage(api: ApiKind, body: &[u8]) -> Option<TokenUsage> {
    let v: Value = serde_json::from_slice(body).ok()?;
    response_usage_json(api, &v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(api: ApiKind, s: &str) {
        let p = Payload::parse(api, s.as_bytes()).unwrap();
        let a: Value = serde_json::from_str(s).unwrap();
        let b: Value = serde_json::from_slice(&p.to_bytes().unwrap()).unwrap();
        assert_eq!(a, b, "lossless round trip of {s}");
    }

    #[test]
    fn round_trips_are_lossless() {
        roundtrip(
            ApiKind::ChatCompletions,
            r#"{"model":"gpt-4o","messages":[{"role":"system","content":"be brief","name":"x"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:x","detail":"low"}}]},
            {"role":"assistant","tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"42"}],
            "stream":true,"stream_options":{"include_usage":false,"x":1},"temperature":0.2,"tools":[{"type":"function"}],
            "logit_bias":{"5":-1},"unknown_future_field":{"deep":[1,2,{"k":null}]}}"#,
        );
        roundtrip(
            ApiKind::AnthropicMessages,
            r#"{"model":"claude-x","max_tokens":100,"system":[{"type":"text","text":"sys","cache_control":{"type":"ephemeral"}}],
            "messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"q":"w"}}]},
            {"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"text","text":"res"}]}]}],
            "metadata":{"user_id":"u1"},"thinking":{"type":"enabled","budget_tokens":1024}}"#,
        );
        roundtrip(
            ApiKind::Responses,
            r#"{"model":"gpt-5","input":[{"role":"user","content":[{"type":"input_text","text":"q"}]},{"type":"function_call_output","call_id":"c","output":"o"}],"instructions":"i","reasoning":{"effort":"low"}}"#,
        );
        roundtrip(
            ApiKind::Embeddings,
            r#"{"model":"e","input":["a","b"],"dimensions":8,"encoding_format":"float"}"#,
        );
    }

    #[test]
    fn numbers_round_trip_exactly() {
        // Fuzzer finding (fuzz/artifacts/payload_parse/crash-b2a5...): without serde_json's
        // float_roundtrip, 5e90 came back as 4.999999999999999e90.
        let p = Payload::parse(ApiKind::Other, b"5e90").unwrap();
        let again = Payload::parse(ApiKind::Other, &p.to_bytes().unwrap()).unwrap();
        assert_eq!(p, again);
        roundtrip(
            ApiKind::ChatCompletions,
            r#"{"model":"m","messages":[],"temperature":0.30000000000000004,"top_p":1e-7,"x":[5e90,-2.2250738585072014e-308]}"#,
        );
    }

    #[test]
    fn null_typed_fields_come_back_absent() {
        // Documented: for the typed fields, `null` and absent are the same (as in the APIs);
        // an unchanged body is forwarded as its original bytes anyway.
        let p = Payload::parse(
            ApiKind::ChatCompletions,
            br#"{"model":"m","messages":[{"role":"assistant","content":null}],"max_tokens":null,"n":null}"#,
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&p.to_bytes().unwrap()).unwrap();
        assert!(v["messages"][0].get("content").is_none());
        assert!(v.get("max_tokens").is_none());
        assert!(v["n"].is_null(), "untyped fields keep their nulls");
    }

    #[test]
    fn accessors_see_every_text() {
        let p = Payload::parse(
            ApiKind::AnthropicMessages,
            br#"{"model":"m","system":"S","max_tokens":5,"stream":true,"metadata":{"user_id":"u"},
            "messages":[{"role":"user","content":"U1"},{"role":"assistant","content":[{"type":"tool_use","input":{"q":"ARG"}}]},
            {"role":"user","content":[{"type":"tool_result","content":"TR"},{"type":"text","text":"U2"}]}]}"#,
        )
        .unwrap();
        let mut seen = vec![];
        p.for_each_text(&mut |t| seen.push((t.role.to_owned(), t.source, t.text.to_owned())));
        let texts: Vec<_> = seen.iter().map(|s| s.2.as_str()).collect();
        assert_eq!(texts, ["S", "U1", "ARG", "TR", "U2"]);
        assert_eq!(seen[2].1, TextSource::ToolArguments);
        assert!(p.is_stream());
        assert_eq!(p.max_output_tokens(), Some(5));
        assert_eq!(p.user(), Some("u"));
        assert_eq!(p.last_user_text().as_deref(), Some("TR\nU2"));
    }

    #[test]
    fn redaction_through_text_mut() {
        let mut p = Payload::parse(
            ApiKind::ChatCompletions,
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"mail a@b.c"}]}]}"#,
        )
        .unwrap();
        p.for_each_text_mut(&mut |_, _, t| *t = t.replace("a@b.c", "[EMAIL]"));
        let v: Value = serde_json::from_slice(&p.to_bytes().unwrap()).unwrap();
        assert_eq!(v["messages"][0]["content"][0]["text"], "mail [EMAIL]");
    }

    #[test]
    fn errors_are_told_apart() {
        assert!(matches!(
            Payload::parse(ApiKind::ChatCompletions, b"{\"model\":\xff}"),
            Err(PayloadError::InvalidUtf8 { offset: 9 })
        ));
        assert!(matches!(
            Payload::parse(ApiKind::ChatCompletions, b"{\"model\":"),
            Err(PayloadError::Syntax(_))
        ));
        assert!(matches!(
            Payload::parse(ApiKind::ChatCompletions, b"{\"messages\":[]}"),
            Err(PayloadError::Shape(_))
        ));
    }

    #[test]
    fn stream_usage_is_forced_and_reported() {
        let mut p = Payload::parse(
            ApiKind::ChatCompletions,
            br#"{"model":"m","messages":[],"stream":true}"#,
        )
        .unwrap();
        assert!(p.ensure_stream_usage());
        assert!(!p.ensure_stream_usage());
        let v: Value = serde_json::from_slice(&p.to_bytes().unwrap()).unwrap();
        assert_eq!(v["stream_options"]["include_usage"], true);
    }

    #[test]
    fn usage_normalises() {
        let u = response_usage(
            ApiKind::AnthropicMessages,
            br#"{"id":"m","content":[],"usage":{"input_tokens":3,"cache_read_input_tokens":2,"output_tokens":4}}"#,
        )
        .unwrap();
        assert_eq!(
            u,
            TokenUsage {
                input_tokens: 5,
                output_tokens: 4
            }
        );
        let u = response_usage(
            ApiKind::ChatCompletions,
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}"#,
        )
        .unwrap();
        assert_eq!(u.total(), 8);
    }

    #[test]
    fn usage_from_the_parsed_body_equals_usage_from_bytes() {
        for (api, body) in [
            (
                ApiKind::AnthropicMessages,
                &br#"{"id":"m","content":[],"usage":{"input_tokens":3,"cache_read_input_tokens":2,"output_tokens":4}}"#[..],
            ),
            (
                ApiKind::ChatCompletions,
                br#"{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"total_tokens":8}}"#,
            ),
            (
                ApiKind::Responses,
                br#"{"id":"r","output":[],"usage":{"input_tokens":9,"output_tokens":2,"total_tokens":11}}"#,
            ),
            (ApiKind::ChatCompletions, br#"{"id":"c","choices":[]}"#),
            (ApiKind::ChatCompletions, br#"{"usage":{"prompt_tokens":"x"}}"#),
        ] {
            let v: Value = serde_json::from_slice(body).unwrap();
            assert_eq!(response_usage_json(api, &v), response_usage(api, body));
        }
    }
}
