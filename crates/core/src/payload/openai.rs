//! OpenAI wire types: Chat Completions, Embeddings and Responses, requests, responses and stream
//! events. Each struct types what the building blocks read and keeps every other field in
//! `extra`, so re-serialising changes only what a processor changed. A field sent as `null` and
//! one left out are treated alike.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::MessageContent;

/// `POST /v1/chat/completions` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    /// The requested model.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Whether the answer is streamed as SSE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Streaming options (`include_usage`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
    /// Legacy output bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Output bound (reasoning models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `stream_options` of a chat request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying `usage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include_usage: Option<bool>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One chat message (any role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant`, `tool`, ...
    pub role: String,
    /// The content: a string or parts; absent for some assistant tool-call messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<MessageContent>,
    /// Tool calls made by the assistant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Every other field (`name`, `tool_call_id`, `refusal`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ChatMessage {
    /// A message with text content.
    pub fn text(role: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: Some(MessageContent::Text(text.into())),
            tool_calls: None,
            extra: Map::new(),
        }
    }
}

/// A tool call in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// Every other field (`type`, `index`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The function's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The JSON-encoded arguments (a fragment of them in stream deltas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token usage as reported by Chat Completions and Embeddings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatUsage {
    /// Input tokens.
    #[serde(default)]
    pub prompt_tokens: u64,
    /// Output tokens (absent for embeddings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: u64,
    /// Details (`cached_tokens`, `reasoning_tokens`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletion {
    /// The completion id.
    #[serde(default)]
    pub id: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The choices.
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    /// Every other field (`object`, `created`, `system_fingerprint`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice of a non-streamed completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatChoice {
    /// The choice's index.
    #[serde(default)]
    pub index: u32,
    /// The answer.
    pub message: ChatMessage,
    /// Why generation stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Every other field (`logprobs`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `data:` chunk of a streamed chat completion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    /// The completion id.
    #[serde(default)]
    pub id: String,
    /// The model that answers.
    #[serde(default)]
    pub model: String,
    /// The choice deltas; empty in the final usage chunk.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    /// Usage, in the final chunk when `include_usage` was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One choice delta of a stream chunk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkChoice {
    /// The choice's index.
    #[serde(default)]
    pub index: u32,
    /// What this chunk adds.
    #[serde(default)]
    pub delta: ChunkDelta,
    /// Why generation stopped, in the last delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<String>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The delta of a stream chunk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChunkDelta {
    /// The role, in the first delta.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// A piece of the answer's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool-call fragments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Every other field (`refusal`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/embeddings` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    /// The embedding model.
    pub model: String,
    /// A string, an array of strings, or token arrays.
    pub input: Value,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field (`encoding_format`, `dimensions`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/embeddings` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    /// One entry per input.
    #[serde(default)]
    pub data: Vec<Value>,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ChatUsage>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `POST /v1/responses` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesRequest {
    /// The requested model (absent when a prompt template names it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A string or an array of input items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// The system-level instructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instructions: Option<String>,
    /// Whether the answer is streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Output bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u64>,
    /// End-user identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Token usage as reported by the Responses API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResponsesUsage {
    /// Input tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Total tokens.
    #[serde(default)]
    pub total_tokens: u64,
    /// Details, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A Responses API response object (non-streamed, or inside `response.*` events).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponseObject {
    /// The response id.
    #[serde(default)]
    pub id: String,
    /// The output items.
    #[serde(default)]
    pub output: Vec<Value>,
    /// Token usage, once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ResponsesUsage>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One Responses API stream event (`response.created`, `response.output_text.delta`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResponsesEvent {
    /// The event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Text deltas carry `delta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<Value>,
    /// `response.*` lifecycle events carry the response object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseObject>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
