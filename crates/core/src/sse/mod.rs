//! Server-Sent Events: an incremental [`SseDecoder`], the [`SseEvent`] with its encoder, and
//! typed parsing of OpenAI chat chunks, Responses events and Anthropic events ([`TypedEvent`]),
//! including usage ([`UsageTracker`]).
//!
//! ```
//! use infergate_core::payload::ApiKind;
//! use infergate_core::sse::{SseDecoder, UsageTracker};
//!
//! let stream = concat!(
//!     "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
//!     "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,\"total_tokens\":6}}\n\n",
//!     "data: [DONE]\n\n",
//! );
//! let mut events = Vec::new();
//! SseDecoder::new().decode(stream.as_bytes(), &mut events).unwrap();
//! let mut usage = UsageTracker::new(ApiKind::ChatCompletions);
//! for e in &events {
//!     usage.observe(e);
//! }
//! assert_eq!(usage.usage().unwrap().total(), 6);
//! ```

mod decoder;
mod event;

pub use decoder::{DEFAULT_MAX_EVENT_SIZE, SseDecoder, SseError};
pub use event::SseEvent;

/// How many times [`SseEvent::json`] has parsed an event's data on the calling thread, for
/// tests: a stream chain runs on one thread at a time (synchronously, event by event), so the
/// difference across a call to [`StreamChain::on_chunk`](crate::pipeline::StreamChain::on_chunk)
/// is what that chunk's events cost in parses, however many processors read them.
pub fn json_parse_count() -> u64 {
    event::json_parse_count()
}

use crate::error::Rejection;
use crate::payload::openai::{ChatCompletionChunk, ResponsesEvent};
use crate::payload::{ApiKind, TokenUsage, anthropic};

/// A stream event parsed by API.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent {
    /// An OpenAI chat completion chunk.
    ChatChunk(Box<ChatCompletionChunk>),
    /// OpenAI's `data: [DONE]`.
    Done,
    /// A Responses API event.
    Responses(Box<ResponsesEvent>),
    /// An Anthropic Messages event.
    Anthropic(Box<anthropic::StreamEvent>),
    /// An error event (`event: error`, or a chunk that is `{"error": ...}`).
    Error(serde_json::Value),
    /// A block with no data (comment, keep-alive).
    Empty,
}

/// Parses an event's data for `api`, from the event's shared JSON parse
/// ([`SseEvent::json`]): reading an event typed after another processor read its JSON costs no
/// second parse of the text.
pub fn parse_event(api: ApiKind, ev: &SseEvent) -> Result<TypedEvent, serde_json::Error> {
    let Some(data) = ev.data_str() else {
        return Ok(TypedEvent::Empty);
    };
    if ev.is_done() {
        return Ok(TypedEvent::Done);
    }
    if ev.event_type() == Some("error") {
        return Ok(TypedEvent::Error(typed(ev, data)?));
    }
    Ok(match api {
        ApiKind::AnthropicMessages => {
            let e: anthropic::StreamEvent = typed(ev, data)?;
            match e {
                anthropic::StreamEvent::Error { error } => TypedEvent::Error(error),
                e => TypedEvent::Anthropic(Box::new(e)),
            }
        }
        ApiKind::Responses => TypedEvent::Responses(Box::new(typed(ev, data)?)),
        _ => {
            if data.trim_start().starts_with("{\"error\"") {
                TypedEvent::Error(typed(ev, data)?)
            } else {
                TypedEvent::ChatChunk(Box::new(typed(ev, data)?))
            }
        }
    })
}

/// `T` from the event's shared parse; when the data is not JSON, the parser's error.
fn typed<'a, T: serde::Deserialize<'a>>(
    ev: &'a SseEvent,
    data: &'a str,
) -> Result<T, serde_json::Error> {
    match ev.json() {
        Some(v) => T::deserialize(v),
        None => serde_json::from_str(data),
    }
}

/// Follows the usage reported in a stream, as input and output tokens: the two-number view
/// of [`crate::usage::UsageMeter`], which it wraps (see there for what it reads).
#[derive(Debug, Clone)]
pub struct UsageTracker {
    meter: crate::usage::UsageMeter,
}

impl UsageTracker {
    /// A tracker for a stream of `api`.
    pub fn new(api: ApiKind) -> Self {
        Self {
            meter: crate::usage::UsageMeter::new(api),
        }
    }

    /// Looks at one event; returns `true` if it carried usage.
    pub fn observe(&mut self, ev: &SseEvent) -> bool {
        self.meter.observe(ev)
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.meter.usage().map(TokenUsage::from)
    }

    /// The whole usage record seen so far (cache and reasoning tokens included).
    pub fn record(&self) -> Option<crate::usage::Usage> {
        self.meter.usage()
    }
}

/// The SSE error event that ends a stream the gateway has to cut: `event: error` with the
/// rejection in OpenAI's error shape (Anthropic's for `/v1/messages`), as providers send
/// mid-stream errors.
pub fn error_event(api: ApiKind, rejection: &Rejection) -> SseEvent {
    let body = if api.is_anthropic() {
        rejection.to_anthropic_json()
    } else {
        rejection.to_json()
    };
    SseEvent::named("error", body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_tracker_parses_only_events_that_may_carry_usage() {
        let mut t = UsageTracker::new(ApiKind::ChatCompletions);
        let before = json_parse_count();
        let null = SseEvent::data(
            r#"{"choices":[{"index":0,"delta":{"content":"low usage"}}],"usage":null}"#,
        );
        assert!(!t.observe(&null));
        assert!(!null.is_json_parsed());
        assert_eq!(json_parse_count(), before);
        let last = SseEvent::data(
            r#"{"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":3,"total_tokens":5}}"#,
        );
        assert!(t.observe(&last));
        assert!(
            last.is_json_parsed(),
            "the parse stays with the event for the others"
        );
        assert_eq!(t.usage().map(|u| u.total()), Some(5));
        assert_eq!(json_parse_count(), before + 1);
    }
}
