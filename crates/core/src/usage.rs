//! One normalised usage record per request, from every API infergate speaks.
//!
//! [`Usage`] holds input, output, cached-input read, cache-creation and reasoning tokens,
//! whatever API or provider reported them: Chat Completions (`usage`, with
//! `prompt_tokens_details.cached_tokens` and `completion_tokens_details.reasoning_tokens`; in a
//! stream the final chunk, with or without `choices`), Embeddings, the Responses API
//! (`response.completed`, `.incomplete` or `.failed` in a stream) and Anthropic Messages
//! (`message_start` and the cumulative `message_delta`, cache tokens included). Providers that
//! [translation](https://docs.rs/infergate-translate) adds reach the gateway already in the
//! client's API.
//!
//! Numbers from an upstream are not trusted to be in range: a negative, fractional or absurd
//! count reads as what it can be (0, truncated, saturated), never as a panic.
//!
//! ```
//! use infergate_core::{payload::ApiKind, usage::Usage};
//! use serde_json::json;
//!
//! let body = json!({"usage": {"prompt_tokens": 120, "completion_tokens": 30,
//!     "prompt_tokens_details": {"cached_tokens": 100},
//!     "completion_tokens_details": {"reasoning_tokens": 12}}});
//! let u = Usage::from_response_json(ApiKind::ChatCompletions, &body).unwrap();
//! assert_eq!((u.input_tokens, u.output_tokens, u.cache_read_input_tokens), (120, 30, 100));
//! assert_eq!((u.reasoning_tokens, u.uncached_input_tokens(), u.total_tokens()), (12, 20, 150));
//!
//! // Anthropic counts cache reads and writes apart from `input_tokens`; the record does not.
//! let body = json!({"usage": {"input_tokens": 5, "cache_read_input_tokens": 1000,
//!     "cache_creation_input_tokens": 200, "output_tokens": 40}});
//! let u = Usage::from_response_json(ApiKind::AnthropicMessages, &body).unwrap();
//! assert_eq!((u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens), (1205, 1000, 200));
//! ```

use serde_json::Value;

use crate::payload::{ApiKind, TokenUsage};
use crate::sse::SseEvent;

/// One request's token usage, normalised across APIs and providers.
///
/// `input_tokens` counts every input token, cached ones included (OpenAI's `prompt_tokens`;
/// Anthropic's `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`), and
/// `output_tokens` every output token, reasoning included; the other fields say how many of
/// those were cache reads, cache writes and reasoning.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Usage {
    /// Every input token, cached ones included.
    pub input_tokens: u64,
    /// Every output token, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_input_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_creation_input_tokens: u64,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

impl Usage {
    /// A record of `input` and `output` tokens, no cache or reasoning.
    pub fn new(input: u64, output: u64) -> Self {
        Self {
            input_tokens: input,
            output_tokens: output,
            ..Self::default()
        }
    }

    /// With `n` of the input tokens read from the prompt cache.
    #[must_use]
    pub fn with_cache_read(mut self, n: u64) -> Self {
        self.cache_read_input_tokens = n;
        self
    }

    /// With `n` of the input tokens written to the prompt cache.
    #[must_use]
    pub fn with_cache_creation(mut self, n: u64) -> Self {
        self.cache_creation_input_tokens = n;
        self
    }

    /// With `n` of the output tokens spent on reasoning.
    #[must_use]
    pub fn with_reasoning(mut self, n: u64) -> Self {
        self.reasoning_tokens = n;
        self
    }

    /// Input plus output.
    pub fn total_tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }

    /// Input tokens neither read from nor written to the cache.
    pub fn uncached_input_tokens(&self) -> u64 {
        self.input_tokens
            .saturating_sub(self.cache_read_input_tokens)
            .saturating_sub(self.cache_creation_input_tokens)
    }

    /// Output tokens that are not reasoning.
    pub fn visible_output_tokens(&self) -> u64 {
        self.output_tokens.saturating_sub(self.reasoning_tokens)
    }

    /// Whether no token at all was counted.
    pub fn is_zero(&self) -> bool {
        *self == Self::default()
    }

    /// The record from an API's `usage` object: `None` when it is not an object or a count in
    /// it is not a number of tokens (a string, a negative number): a usage that cannot be read
    /// is unknown, never zero, so that what was reserved for the request stays charged.
    pub fn from_usage_json(api: ApiKind, usage: &Value) -> Option<Self> {
        let u = usage.as_object()?;
        let n = |k: &str| count(u.get(k));
        let nested = |k: &str, d: &str| count(u.get(k).and_then(|v| v.get(d)));
        Some(match api {
            ApiKind::AnthropicMessages => {
                let read = n("cache_read_input_tokens")?;
                let write = n("cache_creation_input_tokens")?;
                Self {
                    input_tokens: n("input_tokens")?
                        .saturating_add(read)
                        .saturating_add(write),
                    output_tokens: n("output_tokens")?,
                    cache_read_input_tokens: read,
                    cache_creation_input_tokens: write,
                    reasoning_tokens: 0,
                }
            }
            // The Responses API's names (also the Images API's, which answers on other paths).
            ApiKind::Responses => Self {
                input_tokens: n("input_tokens")?,
                output_tokens: n("output_tokens")?,
                cache_read_input_tokens: nested("input_tokens_details", "cached_tokens")?,
                cache_creation_input_tokens: 0,
                reasoning_tokens: nested("output_tokens_details", "reasoning_tokens")?,
            },
            ApiKind::ChatCompletions | ApiKind::Embeddings | ApiKind::Other
                if u.get("prompt_tokens").is_none() && u.get("input_tokens").is_some() =>
            {
                return Self::from_usage_json(ApiKind::Responses, usage);
            }
            ApiKind::ChatCompletions | ApiKind::Embeddings | ApiKind::Other => {
                let input = n("prompt_tokens")?;
                let output = match u.get("completion_tokens") {
                    Some(v) if !v.is_null() => count(Some(v))?,
                    _ => n("total_tokens")?.saturating_sub(input),
                };
                // OpenAI's detail, or DeepSeek's flat field for the same thing.
                let cached = match u.get("prompt_tokens_details") {
                    Some(d) if d.get("cached_tokens").is_some() => count(d.get("cached_tokens"))?,
                    _ => n("prompt_cache_hit_tokens")?,
                };
                Self {
                    input_tokens: input,
                    output_tokens: output,
                    cache_read_input_tokens: cached.min(input),
                    cache_creation_input_tokens: 0,
                    reasoning_tokens: nested("completion_tokens_details", "reasoning_tokens")?
                        .min(output),
                }
            }
        })
    }

    /// The record a whole (non-streamed) answer of `api` reports, from its parsed body.
    pub fn from_response_json(api: ApiKind, body: &Value) -> Option<Self> {
        Self::from_usage_json(api, body.get("usage")?)
    }

    /// The two-number view the rate limiter counts in.
    pub fn token_usage(&self) -> TokenUsage {
        TokenUsage {
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
        }
    }
}

impl From<Usage> for TokenUsage {
    fn from(u: Usage) -> Self {
        u.token_usage()
    }
}

/// A token count from an upstream: absent or `null` is 0; a non-negative integer is itself; a
/// non-negative float is truncated (and saturates); anything else cannot be read (`None`).
fn count(v: Option<&Value>) -> Option<u64> {
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Some(0);
    };
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    match v.as_f64() {
        // `as` saturates a float that is too large.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f) if f >= 0.0 => Some(f as u64),
        _ => None,
    }
}

/// Follows the usage a stream reports, one event at a time: the last Chat Completions chunk
/// with a non-null `usage` (with or without `choices`), the Responses API's
/// `response.completed`, `.incomplete` or `.failed`, and Anthropic's `message_start` and
/// cumulative `message_delta` (whose cache counts, when present, replace the start's).
///
/// It reads each event's shared parse ([`SseEvent::json`]) and only for events that can
/// carry usage, so it adds no parse to a pipeline that already parses events.
#[derive(Debug, Clone)]
pub struct UsageMeter {
    api: ApiKind,
    usage: Option<Usage>,
    deltas: u64,
}

/// How a stream's usage was arrived at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UsageBasis {
    /// The provider's own numbers, at the stream's normal end.
    Reported,
    /// The stream did not end normally (the client went away, the upstream failed) or did
    /// not report its output: the input reported or estimated, and one output token per
    /// content delta received (at least what was reported).
    Estimate,
}

impl UsageMeter {
    /// A meter for a stream of `api`.
    pub fn new(api: ApiKind) -> Self {
        Self {
            api,
            usage: None,
            deltas: 0,
        }
    }

    /// Content deltas seen (text, tool arguments, refusals).
    pub fn deltas(&self) -> u64 {
        self.deltas
    }

    /// The usage to charge when the stream ends: the reported usage if the stream `completed`
    /// and reported its output (or had no content), else an estimate from `input_estimate`
    /// (when no input was reported) and the content deltas.
    pub fn settle(&self, completed: bool, input_estimate: u64) -> (Usage, UsageBasis) {
        match self.usage {
            Some(u) if completed && (u.output_tokens > 0 || self.deltas == 0) => {
                (u, UsageBasis::Reported)
            }
            reported => {
                let mut u = reported.unwrap_or_default();
                if u.input_tokens == 0 {
                    u.input_tokens = input_estimate;
                }
                u.output_tokens = u.output_tokens.max(self.deltas);
                (u, UsageBasis::Estimate)
            }
        }
    }

    /// Looks at one event; returns `true` if it carried usage.
    pub fn observe(&mut self, ev: &SseEvent) -> bool {
        let Some(data) = ev.data_str() else {
            return false;
        };
        if is_content_delta(self.api, data) {
            self.deltas = self.deltas.saturating_add(1);
        }
        // Cheap pre-filters: most events carry no usage at all, and an OpenAI chunk asked to
        // report usage says `"usage":null` until the last one.
        if !data.contains("usage") {
            return false;
        }
        let nulls = data.matches("\"usage\":null").count();
        if nulls > 0 && data.matches("\"usage\"").count() == nulls {
            return false;
        }
        let Some(v) = ev.json() else { return false };
        match self.api {
            ApiKind::AnthropicMessages => self.observe_anthropic(v),
            ApiKind::Responses => {
                let Some(u) = v
                    .get("response")
                    .and_then(|r| r.get("usage"))
                    .and_then(|u| Usage::from_usage_json(ApiKind::Responses, u))
                else {
                    return false;
                };
                self.usage = Some(u);
                true
            }
            api => match v.get("usage").and_then(|u| Usage::from_usage_json(api, u)) {
                Some(u) => {
                    self.usage = Some(u);
                    true
                }
                None => false,
            },
        }
    }

    fn observe_anthropic(&mut self, v: &Value) -> bool {
        match v.get("type").and_then(Value::as_str) {
            Some("message_start") => {
                let Some(u) = v.get("message").and_then(|m| m.get("usage")) else {
                    return false;
                };
                let Some(new) = Usage::from_usage_json(ApiKind::AnthropicMessages, u) else {
                    return false;
                };
                let cur = self.usage.get_or_insert_with(Usage::default);
                let output = cur.output_tokens.max(new.output_tokens);
                *cur = new;
                cur.output_tokens = output;
                true
            }
            Some("message_delta") => {
                let Some(u) = v.get("usage").and_then(Value::as_object) else {
                    return false;
                };
                // Cumulative counts: each one present replaces the one before; a count that
                // cannot be read leaves the event unread.
                let field = |k: &str| match u.get(k) {
                    Some(x) if !x.is_null() => count(Some(x)).map(Some),
                    _ => Some(None),
                };
                let (Some(input), Some(read), Some(write), Some(output)) = (
                    field("input_tokens"),
                    field("cache_read_input_tokens"),
                    field("cache_creation_input_tokens"),
                    field("output_tokens"),
                ) else {
                    return false;
                };
                let cur = self.usage.get_or_insert_with(Usage::default);
                let uncached = input.unwrap_or_else(|| cur.uncached_input_tokens());
                cur.cache_read_input_tokens = read.unwrap_or(cur.cache_read_input_tokens);
                cur.cache_creation_input_tokens = write.unwrap_or(cur.cache_creation_input_tokens);
                cur.input_tokens = uncached
                    .saturating_add(cur.cache_read_input_tokens)
                    .saturating_add(cur.cache_creation_input_tokens);
                cur.output_tokens = output.unwrap_or(cur.output_tokens);
                true
            }
            _ => false,
        }
    }

    /// The usage seen so far (`None` if the stream reported none).
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

/// Whether an event's data is a content delta of `api` (text, tool arguments or a refusal,
/// not empty): about one output token each, for estimating a stream cut short.
pub fn is_content_delta(api: ApiKind, data: &str) -> bool {
    match api {
        ApiKind::AnthropicMessages => data.contains("\"content_block_delta\""),
        ApiKind::Responses => data.contains(".delta\""),
        _ => {
            data.contains("\"content\":\"") && !data.contains("\"content\":\"\"")
                || data.contains("\"arguments\":\"") && !data.contains("\"arguments\":\"\"")
                || data.contains("\"refusal\":\"") && !data.contains("\"refusal\":\"\"")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hostile_numbers_do_not_panic_or_wrap() {
        let u = Usage::from_usage_json(
            ApiKind::ChatCompletions,
            &json!({"prompt_tokens": 5, "completion_tokens": 1e300,
                "prompt_tokens_details": {"cached_tokens": u64::MAX}}),
        )
        .expect("readable");
        assert_eq!(u.output_tokens, u64::MAX);
        assert_eq!(u.cache_read_input_tokens, 5, "cached never exceeds input");
        assert_eq!(u.total_tokens(), u64::MAX);
        let u = Usage::from_usage_json(
            ApiKind::AnthropicMessages,
            &json!({"input_tokens": u64::MAX, "cache_read_input_tokens": 7, "output_tokens": 9}),
        )
        .expect("readable");
        assert_eq!((u.input_tokens, u.output_tokens), (u64::MAX, 9));
        // Unreadable counts make the record unknown, never zero.
        for bad in [
            json!({"prompt_tokens": -5}),
            json!({"completion_tokens": "9"}),
            json!([]),
        ] {
            assert!(
                Usage::from_usage_json(ApiKind::ChatCompletions, &bad).is_none(),
                "{bad}"
            );
        }
        assert!(Usage::from_usage_json(ApiKind::Responses, &json!(null)).is_none());
    }

    #[test]
    fn chat_without_completion_tokens_uses_the_total() {
        let u = Usage::from_usage_json(
            ApiKind::Embeddings,
            &json!({"prompt_tokens": 8, "total_tokens": 8}),
        )
        .expect("an object");
        assert_eq!(u, Usage::new(8, 0));
    }

    #[test]
    fn anthropic_deltas_replace_what_they_carry() {
        let mut m = UsageMeter::new(ApiKind::AnthropicMessages);
        let start = SseEvent::named(
            "message_start",
            r#"{"type":"message_start","message":{"usage":{"input_tokens":10,"cache_read_input_tokens":100,"output_tokens":1}}}"#,
        );
        assert!(m.observe(&start));
        let delta = SseEvent::named(
            "message_delta",
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42,"cache_creation_input_tokens":5}}"#,
        );
        assert!(m.observe(&delta));
        let u = m.usage().expect("usage");
        assert_eq!(u.input_tokens, 115);
        assert_eq!(u.cache_read_input_tokens, 100);
        assert_eq!(u.cache_creation_input_tokens, 5);
        assert_eq!(u.output_tokens, 42);
    }

    #[test]
    fn chat_usage_chunk_counts_with_or_without_choices() {
        for data in [
            r#"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4}}"#,
        ] {
            let mut m = UsageMeter::new(ApiKind::ChatCompletions);
            assert!(!m.observe(&SseEvent::data(r#"{"choices":[],"usage":null}"#)));
            assert!(m.observe(&SseEvent::data(data)));
            assert_eq!(m.usage(), Some(Usage::new(3, 4)));
        }
    }
}
