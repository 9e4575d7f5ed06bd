//! The canonical intermediate representation every protocol decodes to and encodes from.
//!
//! Token counts follow one convention whatever the provider: [`Usage::input_tokens`] is the whole
//! prompt, cached parts included (OpenAI's and Gemini's meaning; Anthropic's and Bedrock's
//! `input_tokens` exclude the cache, and their decoders add it back), and
//! [`Usage::output_tokens`] includes reasoning tokens (Gemini's `candidatesTokenCount` excludes
//! them, and its decoder adds them).

use serde_json::Value;
use serde_json::value::RawValue;

/// A JSON value kept as its text: read without building a tree and written back verbatim (a
/// tool's schema goes from one protocol to another unchanged, so nothing needs its parts).
/// The text is always well-formed JSON (checked when it was read). Equality compares the
/// values, not the texts.
#[derive(Clone)]
pub struct RawJson(Box<str>);

impl RawJson {
    /// Parses a JSON text (checked, kept as written, without the whitespace around it).
    pub fn from_text(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str::<&RawValue>(text).map(|raw| Self(raw.get().into()))
    }

    /// A text the borrowed scanner ([`crate::json_scan`]) read as one well-formed value (its
    /// grammar is serde's, or stricter).
    pub(crate) fn checked(text: &str) -> Self {
        Self(text.into())
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// The value, parsed. Fails for a well-formed text no `Value` holds (a number out of
    /// `f64`'s range, a lone surrogate escape), which is passed on verbatim otherwise.
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// Whether the value is a JSON object.
    pub fn is_object(&self) -> bool {
        self.0.trim_start().starts_with('{')
    }
}

impl From<Box<RawValue>> for RawJson {
    fn from(v: Box<RawValue>) -> Self {
        Self(v.into())
    }
}

impl From<&RawValue> for RawJson {
    fn from(v: &RawValue) -> Self {
        Self(v.get().into())
    }
}

impl From<Value> for RawJson {
    fn from(v: Value) -> Self {
        Self::from(&v)
    }
}

impl From<&Value> for RawJson {
    fn from(v: &Value) -> Self {
        // A `Value` always serializes (its map keys are strings).
        Self(
            serde_json::to_string(v)
                .unwrap_or_else(|_| "null".to_owned())
                .into(),
        )
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
            || matches!((self.to_value(), other.to_value()), (Ok(a), Ok(b)) if a == b)
    }
}

impl PartialEq<Value> for RawJson {
    fn eq(&self, other: &Value) -> bool {
        self.to_value().is_ok_and(|v| v == *other)
    }
}

impl std::fmt::Debug for RawJson {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.get())
    }
}

/// The name serde_json's `RawValue` serializes under (a struct of one field of that name,
/// its text), which serde_json's serializers (and [`crate::json_out`]) write verbatim.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

impl serde::Serialize for RawJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct(RAW_VALUE_TOKEN, 1)?;
        st.serialize_field(RAW_VALUE_TOKEN, &*self.0)?;
        st.end()
    }
}

/// A chat request.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model. Empty when the protocol carries it in the URL (Bedrock, Gemini): set it.
    pub model: String,
    /// The system prompt, in order (leading `system`/`developer` messages, Anthropic's `system`,
    /// Bedrock's `system`, Gemini's `systemInstruction`).
    pub system: Vec<SystemPart>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// How the model may use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// `Some(false)`: at most one tool call per turn.
    pub parallel_tool_calls: Option<bool>,
    /// JSON mode or a JSON schema for the answer.
    pub response_format: Option<ResponseFormat>,
    /// The bound on generated tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling.
    pub top_k: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Sampling seed.
    pub seed: Option<i64>,
    /// Presence penalty.
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    pub frequency_penalty: Option<f64>,
    /// Reasoning (thinking) settings.
    pub reasoning: Option<Reasoning>,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// OpenAI's `stream_options.include_usage`.
    pub include_usage: bool,
    /// An end-user id (OpenAI `user`, Anthropic `metadata.user_id`).
    pub user: Option<String>,
    /// Top-level fields of the source protocol this representation does not model, with their
    /// values. Re-emitted only to the same protocol; any other target refuses them unless the
    /// caller opts into dropping them.
    pub extra: Vec<(String, Value)>,
    /// The protocol `extra` came from.
    pub extra_from: Option<crate::Protocol>,
}

/// One part of the system prompt.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct SystemPart {
    /// The text.
    pub text: String,
    /// OpenAI's `developer` role rather than `system`.
    pub developer: bool,
    /// A prompt-cache breakpoint after this part.
    pub cache: Option<CacheControl>,
}

impl SystemPart {
    /// A plain system text.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            developer: false,
            cache: None,
        }
    }
}

/// Who speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Role {
    /// The user (tool results are user content).
    User,
    /// The model.
    Assistant,
}

impl Role {
    /// The role of message `p` (`"user"` or `"assistant"`: Anthropic and Bedrock messages).
    pub(crate) fn decode(m: &Value, p: &str) -> Result<Self, crate::Error> {
        match m.get("role").and_then(Value::as_str) {
            Some("user") => Ok(Role::User),
            Some("assistant") => Ok(Role::Assistant),
            _ => Err(crate::Error::invalid(
                format!("{p}.role"),
                "expected user or assistant",
            )),
        }
    }

    /// `"user"` or `"assistant"`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One turn.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Message {
    /// Who speaks.
    pub role: Role,
    /// What is said, in order.
    pub content: Vec<Part>,
}

impl Message {
    /// A message.
    pub fn new(role: Role, content: Vec<Part>) -> Self {
        Self { role, content }
    }
}

impl ChatRequest {
    /// Appends an OpenAI `tool` message's result: to the last message when that is a user turn
    /// of tool results only (the results of one assistant turn's calls), else as a new user
    /// message.
    pub(crate) fn push_tool_result(&mut self, part: Part) {
        match self.messages.last_mut() {
            Some(last)
                if last.role == Role::User
                    && last
                        .content
                        .iter()
                        .all(|c| matches!(c, Part::ToolResult { .. })) =>
            {
                last.content.push(part);
            }
            _ => self.messages.push(Message::new(Role::User, vec![part])),
        }
    }
}

/// A prompt-cache breakpoint (Anthropic `cache_control`, Bedrock `cachePoint`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct CacheControl {
    /// Anthropic's `ttl` (`"5m"`, `"1h"`), when given.
    pub ttl: Option<String>,
}

/// Where an image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ImageSource {
    /// Inline bytes, base64.
    Base64 {
        /// `image/png`, `image/jpeg`, ...
        media_type: String,
        /// Base64 (standard alphabet).
        data: String,
    },
    /// A URL the provider fetches.
    Url(String),
}

/// One piece of content.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Part {
    /// Text.
    Text {
        /// The text.
        text: String,
        /// A prompt-cache breakpoint after this part.
        cache: Option<CacheControl>,
    },
    /// An image.
    Image {
        /// Where it comes from.
        source: ImageSource,
        /// OpenAI's `detail`.
        detail: Option<String>,
        /// A prompt-cache breakpoint after this part.
        cache: Option<CacheControl>,
    },
    /// A call of a tool by the model.
    ToolCall {
        /// The call id (kept exactly; synthesised only where the protocol has none).
        id: String,
        /// The tool name.
        name: String,
        /// The arguments: a JSON text, kept as sent.
        arguments: String,
        /// A prompt-cache breakpoint after this part.
        cache: Option<CacheControl>,
    },
    /// The result of a tool call, sent back by the user.
    ToolResult {
        /// The id of the call answered.
        call_id: String,
        /// The tool name, where the protocol carries it (Gemini).
        name: Option<String>,
        /// The result (text and images).
        content: Vec<Part>,
        /// The tool failed.
        is_error: bool,
        /// A prompt-cache breakpoint after this part.
        cache: Option<CacheControl>,
    },
    /// Reasoning (thinking) by the model, with the signature that lets it be sent back.
    Reasoning {
        /// The reasoning text (may be empty: a bare signature, as Gemini attaches to a call).
        text: String,
        /// The provider's signature.
        signature: Option<String>,
        /// Redacted (encrypted) reasoning: Anthropic `redacted_thinking.data`, Bedrock
        /// `redactedContent`.
        redacted: Option<String>,
    },
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Part::Text {
            text: text.into(),
            cache: None,
        }
    }

    /// The cache breakpoint of a part, if it can carry one.
    pub fn cache(&self) -> Option<&CacheControl> {
        match self {
            Part::Text { cache, .. }
            | Part::Image { cache, .. }
            | Part::ToolCall { cache, .. }
            | Part::ToolResult { cache, .. } => cache.as_ref(),
            Part::Reasoning { .. } => None,
        }
    }

    /// Sets the cache breakpoint; false if the part cannot carry one.
    pub fn set_cache(&mut self, c: Option<CacheControl>) -> bool {
        match self {
            Part::Text { cache, .. }
            | Part::Image { cache, .. }
            | Part::ToolCall { cache, .. }
            | Part::ToolResult { cache, .. } => {
                *cache = c;
                true
            }
            Part::Reasoning { .. } => false,
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Tool {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// The JSON schema of its arguments, as sent.
    pub parameters: RawJson,
    /// Strict schema adherence.
    pub strict: Option<bool>,
    /// A prompt-cache breakpoint after this tool.
    pub cache: Option<CacheControl>,
}

impl Tool {
    /// A tool with a name and the JSON schema of its arguments.
    pub fn new(name: impl Into<String>, parameters: impl Into<RawJson>) -> Self {
        Self {
            name: name.into(),
            description: None,
            parameters: parameters.into(),
            strict: None,
            cache: None,
        }
    }
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool.
    Named(String),
}

/// The shape of the answer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseFormat {
    /// Plain text (the default, said explicitly).
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name.
        name: Option<String>,
        /// Its description.
        description: Option<String>,
        /// The schema.
        schema: Value,
        /// Strict adherence.
        strict: Option<bool>,
    },
}

/// Reasoning effort, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effort {
    /// No reasoning.
    None,
    /// Minimal.
    Minimal,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Extra high.
    XHigh,
}

impl Effort {
    /// OpenAI's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Effort::None => "none",
            Effort::Minimal => "minimal",
            Effort::Low => "low",
            Effort::Medium => "medium",
            Effort::High => "high",
            Effort::XHigh => "xhigh",
        }
    }

    /// Parses OpenAI's name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "none" => Effort::None,
            "minimal" => Effort::Minimal,
            "low" => Effort::Low,
            "medium" => Effort::Medium,
            "high" => Effort::High,
            "xhigh" => Effort::XHigh,
            _ => return None,
        })
    }

    /// The documented lossy mapping to a thinking budget (`reasoning_effort` opt-in).
    pub fn budget_tokens(self) -> u32 {
        match self {
            Effort::None => 0,
            Effort::Minimal => 1024,
            Effort::Low => 2048,
            Effort::Medium => 8192,
            Effort::High => 16384,
            Effort::XHigh => 32768,
        }
    }

    /// The documented lossy mapping from a thinking budget (`thinking` opt-in).
    pub fn from_budget(budget: u32) -> Self {
        match budget {
            0 => Effort::None,
            1..=1024 => Effort::Minimal,
            1025..=4096 => Effort::Low,
            4097..=12288 => Effort::Medium,
            12289..=24576 => Effort::High,
            _ => Effort::XHigh,
        }
    }
}

/// Reasoning settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Reasoning {
    /// OpenAI's `reasoning_effort` (Gemini's `thinkingLevel` low/high).
    pub effort: Option<Effort>,
    /// A token budget (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u32>,
    /// Thinking explicitly disabled (Anthropic `{"type":"disabled"}`).
    pub disabled: bool,
    /// Gemini's `includeThoughts`.
    pub include_thoughts: Option<bool>,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishReason {
    /// A natural end.
    Stop,
    /// A stop sequence matched.
    StopSequence,
    /// The token bound was reached.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Content was filtered (safety, guardrail).
    ContentFilter,
    /// The model refused.
    Refusal,
    /// Another reason, by the provider's name.
    Other(String),
}

/// Token usage. Counts saturate instead of overflowing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Usage {
    /// The whole prompt, cached parts included.
    pub input_tokens: u64,
    /// Generated tokens, reasoning included.
    pub output_tokens: u64,
    /// Prompt tokens read from the cache (part of `input_tokens`).
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the cache (part of `input_tokens`).
    pub cache_write_tokens: u64,
    /// Reasoning tokens (part of `output_tokens`).
    pub reasoning_tokens: u64,
}

impl Usage {
    /// The total.
    pub fn total(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Input tokens neither read from nor written to the cache (Anthropic's and Bedrock's
    /// `input_tokens`).
    pub fn uncached_input(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_tokens)
            .saturating_sub(self.cache_write_tokens)
    }
}

/// A non-streamed answer.
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The provider's response id.
    pub id: String,
    /// The model that answered.
    pub model: String,
    /// The answer, in order.
    pub content: Vec<Part>,
    /// Why it stopped.
    pub finish: Option<FinishReason>,
    /// The stop sequence matched, when the provider says.
    pub stop_sequence: Option<String>,
    /// Token usage.
    pub usage: Usage,
    /// Unix seconds of creation, when the provider says (OpenAI `created`).
    pub created: Option<u64>,
}

impl ChatResponse {
    /// The answer as the events of a stream, one delta per block: to replay a stored or
    /// synthesised answer as a stream of any protocol (with a [`crate::StreamEncoder`]).
    pub fn to_stream_events(&self) -> Vec<StreamEvent> {
        let mut out = Vec::with_capacity(4 + 3 * self.content.len());
        out.push(StreamEvent::MessageStart {
            id: self.id.clone(),
            model: self.model.clone(),
        });
        out.push(StreamEvent::Usage(UsageUpdate {
            input_tokens: Some(self.usage.input_tokens),
            cache_read_tokens: Some(self.usage.cache_read_tokens),
            cache_write_tokens: Some(self.usage.cache_write_tokens),
            ..UsageUpdate::default()
        }));
        let mut index = 0;
        for part in &self.content {
            let (kind, deltas) = match part {
                Part::Text { text, .. } => (
                    BlockKind::Text,
                    vec![StreamEvent::TextDelta {
                        index,
                        text: text.clone(),
                    }],
                ),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    ..
                } => (
                    BlockKind::ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                    },
                    vec![StreamEvent::ToolArgsDelta {
                        index,
                        json: arguments.clone(),
                    }],
                ),
                Part::Reasoning {
                    redacted: Some(data),
                    ..
                } => (
                    BlockKind::RedactedReasoning { data: data.clone() },
                    Vec::new(),
                ),
                Part::Reasoning {
                    text, signature, ..
                } => {
                    let mut d = vec![StreamEvent::ReasoningDelta {
                        index,
                        text: text.clone(),
                    }];
                    if let Some(sig) = signature {
                        d.push(StreamEvent::SignatureDelta {
                            index,
                            signature: sig.clone(),
                        });
                    }
                    (BlockKind::Reasoning, d)
                }
                // Images and tool results are not parts of an answer.
                Part::Image { .. } | Part::ToolResult { .. } => continue,
            };
            out.push(StreamEvent::BlockStart { index, kind });
            out.extend(deltas);
            out.push(StreamEvent::BlockStop { index });
            index += 1;
        }
        out.push(StreamEvent::Finish {
            reason: self.finish.clone().unwrap_or(FinishReason::Stop),
            stop_sequence: self.stop_sequence.clone(),
        });
        out.push(StreamEvent::Usage(UsageUpdate::from_usage(&self.usage)));
        out.push(StreamEvent::MessageStop);
        out
    }
}

/// What kind of block starts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockKind {
    /// Text.
    Text,
    /// A tool call.
    ToolCall {
        /// Its id.
        id: String,
        /// The tool.
        name: String,
    },
    /// Reasoning.
    Reasoning,
    /// Redacted reasoning, whole.
    RedactedReasoning {
        /// The opaque data.
        data: String,
    },
}

/// A partial usage report: the cumulative values known so far; `None` leaves a value as it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct UsageUpdate {
    /// See [`Usage::input_tokens`].
    pub input_tokens: Option<u64>,
    /// See [`Usage::output_tokens`].
    pub output_tokens: Option<u64>,
    /// See [`Usage::cache_read_tokens`].
    pub cache_read_tokens: Option<u64>,
    /// See [`Usage::cache_write_tokens`].
    pub cache_write_tokens: Option<u64>,
    /// See [`Usage::reasoning_tokens`].
    pub reasoning_tokens: Option<u64>,
}

impl UsageUpdate {
    /// Applies the update.
    pub fn apply(&self, u: &mut Usage) {
        if let Some(v) = self.input_tokens {
            u.input_tokens = v;
        }
        if let Some(v) = self.output_tokens {
            u.output_tokens = v;
        }
        if let Some(v) = self.cache_read_tokens {
            u.cache_read_tokens = v;
        }
        if let Some(v) = self.cache_write_tokens {
            u.cache_write_tokens = v;
        }
        if let Some(v) = self.reasoning_tokens {
            u.reasoning_tokens = v;
        }
    }

    /// A complete update.
    pub fn from_usage(u: &Usage) -> Self {
        Self {
            input_tokens: Some(u.input_tokens),
            output_tokens: Some(u.output_tokens),
            cache_read_tokens: Some(u.cache_read_tokens),
            cache_write_tokens: Some(u.cache_write_tokens),
            reasoning_tokens: Some(u.reasoning_tokens),
        }
    }
}

/// One event of a streamed answer. Blocks are numbered from 0 in the order they start; every
/// delta names a started block; a block stops before the message finishes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum StreamEvent {
    /// The answer starts.
    MessageStart {
        /// The response id (may be empty until the provider says).
        id: String,
        /// The model (may be empty).
        model: String,
    },
    /// A block starts.
    BlockStart {
        /// Its number.
        index: usize,
        /// Its kind.
        kind: BlockKind,
    },
    /// Text of a text block.
    TextDelta {
        /// The block.
        index: usize,
        /// The text.
        text: String,
    },
    /// A fragment of a tool call's JSON arguments.
    ToolArgsDelta {
        /// The block.
        index: usize,
        /// The fragment.
        json: String,
    },
    /// Reasoning text.
    ReasoningDelta {
        /// The block.
        index: usize,
        /// The text.
        text: String,
    },
    /// The signature of a reasoning block.
    SignatureDelta {
        /// The block.
        index: usize,
        /// The signature.
        signature: String,
    },
    /// A block stops.
    BlockStop {
        /// The block.
        index: usize,
    },
    /// Usage so far.
    Usage(UsageUpdate),
    /// Why generation stopped.
    Finish {
        /// The reason.
        reason: FinishReason,
        /// The stop sequence matched, when said.
        stop_sequence: Option<String>,
    },
    /// The answer ends.
    MessageStop,
    /// The provider failed mid-stream.
    Error(crate::ProviderError),
}
