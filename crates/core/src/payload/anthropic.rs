//! Anthropic Messages wire types: request, response and stream events, lossless like the
//! OpenAI ones.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ContentPart, MessageContent};

/// `POST /v1/messages` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesRequest {
    /// The requested model.
    pub model: String,
    /// The conversation (user and assistant turns).
    pub messages: Vec<Message>,
    /// The system prompt: a string or text blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<MessageContent>,
    /// Output bound (required by Anthropic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    /// Whether the answer is streamed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Every other field (`metadata`, `tools`, `thinking`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One turn of an Anthropic conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `user` or `assistant`.
    pub role: String,
    /// A string or content blocks.
    pub content: MessageContent,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Anthropic token usage.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AnthropicUsage {
    /// Input tokens (not counting cache reads and writes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_tokens: Option<u64>,
    /// Output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_tokens: Option<u64>,
    /// Tokens written to the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_creation_input_tokens: Option<u64>,
    /// Tokens read from the prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_input_tokens: Option<u64>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A non-streamed Messages response (also the `message` of `message_start`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessagesResponse {
    /// The message id.
    #[serde(default)]
    pub id: String,
    /// The model that answered.
    #[serde(default)]
    pub model: String,
    /// The content blocks.
    #[serde(default)]
    pub content: Vec<ContentPart>,
    /// Why generation stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<String>,
    /// Token usage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<AnthropicUsage>,
    /// Every other field (`type`, `role`, `stop_sequence`, ...), preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One Anthropic stream event, by its `type`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The message begins; carries input usage.
    MessageStart {
        /// The message so far.
        message: MessagesResponse,
    },
    /// A content block begins.
    ContentBlockStart {
        /// The block's index.
        #[serde(default)]
        index: u32,
        /// The block header.
        content_block: Value,
    },
    /// A piece of a content block.
    ContentBlockDelta {
        /// The block's index.
        #[serde(default)]
        index: u32,
        /// The delta (`text_delta`, `input_json_delta`, `thinking_delta`, ...).
        delta: Value,
    },
    /// A content block ends.
    ContentBlockStop {
        /// The block's index.
        #[serde(default)]
        index: u32,
    },
    /// Message-level changes; carries output usage (cumulative).
    MessageDelta {
        /// `stop_reason`, `stop_sequence`.
        #[serde(default)]
        delta: Value,
        /// Cumulative usage.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<AnthropicUsage>,
    },
    /// The message ends.
    MessageStop,
    /// Keep-alive.
    Ping,
    /// An error in the stream.
    Error {
        /// `{"type","message"}`.
        error: Value,
    },
    /// An event type this version does not know.
    #[serde(other)]
    Unknown,
}

impl StreamEvent {
    /// The text added by a `text_delta`, if this is one.
    pub fn text_delta(&self) -> Option<&str> {
        match self {
            Self::ContentBlockDelta { delta, .. } => delta.get("text").and_then(Value::as_str),
            _ => None,
        }
    }
}
