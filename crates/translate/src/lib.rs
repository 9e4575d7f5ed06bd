//! # infergate-translate
//!
//! Pure, I/O-free translation of LLM API traffic between OpenAI Chat Completions, Anthropic
//! Messages, Amazon Bedrock Converse/ConverseStream (with the AWS event-stream framing), Google
//! Gemini `generateContent`/`streamGenerateContent` and the OpenAI Responses API (stateless):
//! requests, responses, errors and incremental streams.
//!
//! ```
//! use infergate_translate::{Options, Protocol, StreamTranslator, translate_request, translate_response};
//!
//! let opts = Options::default();
//! // An OpenAI SDK client's request, for an Anthropic backend.
//! let req = br#"{"model":"claude-sonnet-4-5","messages":[
//!     {"role":"system","content":"Be brief."},
//!     {"role":"user","content":"Weather in Paris?"}],
//!     "tools":[{"type":"function","function":{"name":"weather","parameters":{"type":"object"}}}]}"#;
//! let out = translate_request(Protocol::OpenAiChat, Protocol::Anthropic, req, &opts).unwrap();
//! let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(v["system"][0]["text"], "Be brief.");
//! assert_eq!(v["tools"][0]["input_schema"]["type"], "object");
//!
//! // Its answer, back in OpenAI's shape.
//! let ans = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5",
//!   "content":[{"type":"tool_use","id":"toolu_1","name":"weather","input":{"city":"Paris"}}],
//!   "stop_reason":"tool_use","usage":{"input_tokens":20,"cache_read_input_tokens":5,"output_tokens":9}}"#;
//! let out = translate_response(Protocol::Anthropic, Protocol::OpenAiChat, ans, &opts).unwrap();
//! let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
//! assert_eq!(v["choices"][0]["message"]["tool_calls"][0]["id"], "toolu_1");
//! assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
//! assert_eq!(v["usage"]["prompt_tokens"], 25); // OpenAI counts cached tokens in the prompt
//!
//! // A field the target cannot represent is refused, naming it.
//! let req = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"logit_bias":{"1":2}}"#;
//! let err = translate_request(Protocol::OpenAiChat, Protocol::Anthropic, req, &opts).unwrap_err();
//! assert_eq!((err.status(), err.param()), (400, Some("logit_bias")));
//!
//! // Streams: bytes in, the client's events out, one upstream event at a time.
//! let mut t = StreamTranslator::new(Protocol::Anthropic, Protocol::OpenAiChat, &opts);
//! let mut out = Vec::new();
//! t.feed(b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n", &mut out).unwrap();
//! t.feed(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", &mut out).unwrap();
//! t.feed(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n", &mut out).unwrap();
//! assert!(String::from_utf8_lossy(&out).contains(r#""content":"Hi""#));
//! ```
//!
//! ## Design
//!
//! Every protocol decodes to and encodes from one intermediate representation ([`ir`]): a
//! [`ChatRequest`], a [`ChatResponse`], and a sequence of [`StreamEvent`]s (message start, block
//! start/delta/stop for text, tool calls with incremental arguments and reasoning with its
//! signature, usage, finish reason, error). N protocols need 2N converters, not N².
//!
//! **Lossless or refused.** A field the target cannot represent is an [`Error::Unsupported`]
//! naming the field as OpenAI's `param` (HTTP 400), unless the caller opts into the documented
//! lossy mapping of that field with [`Options::allow_lossy`]. `docs/translation.md` holds the
//! capability matrix.
//!
//! **Streams** are incremental state machines: bytes in, the target's events out, no stream
//! buffered whole, at most one event of delay (Anthropic's `message_start` waits one event for
//! the input tokens, see [`anthropic`]; its `message_delta` waits for the usage that OpenAI and
//! Bedrock send after the finish reason; a Gemini function call goes out when its arguments are
//! whole, as Gemini sends them).
//!
//! **Nothing upstream is trusted**: bodies and stream events are bounded
//! ([`Options::max_body_len`]), event-stream frames are CRC-checked and bounded
//! ([`eventstream`]), token counts saturate, and no input panics.

pub mod anthropic;
pub mod bedrock;
mod error;
pub mod eventstream;
pub mod gemini;
pub mod ir;
mod json_out;
mod json_scan;
#[cfg(feature = "tower")]
pub mod layer;
pub mod openai;
mod openai_fast;
mod options;
pub mod responses;
mod sse;
mod util;

pub use error::{Error, ErrorKind, ProviderError};
pub use ir::{ChatRequest, ChatResponse, StreamEvent, Usage};
pub use options::Options;

/// A wire protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Protocol {
    /// OpenAI Chat Completions (`/v1/chat/completions`).
    OpenAiChat,
    /// Anthropic Messages (`/v1/messages`).
    Anthropic,
    /// Amazon Bedrock Converse / ConverseStream.
    Bedrock,
    /// Google Gemini `generateContent` / `streamGenerateContent?alt=sse`.
    Gemini,
    /// The OpenAI Responses API (`/v1/responses`), stateless.
    OpenAiResponses,
}

impl Protocol {
    /// Every protocol.
    pub const ALL: [Protocol; 5] = [
        Protocol::OpenAiChat,
        Protocol::Anthropic,
        Protocol::Bedrock,
        Protocol::Gemini,
        Protocol::OpenAiResponses,
    ];

    /// The protocol's short name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAiChat => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Bedrock => "bedrock",
            Protocol::Gemini => "gemini",
            Protocol::OpenAiResponses => "openai-responses",
        }
    }

    /// The content type of its streamed answers.
    pub fn stream_content_type(self) -> &'static str {
        match self {
            Protocol::Bedrock => "application/vnd.amazon.eventstream",
            _ => "text/event-stream",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decodes a request of `protocol`.
pub fn decode_request(
    protocol: Protocol,
    body: &[u8],
    opts: &Options,
) -> Result<ChatRequest, Error> {
    match protocol {
        Protocol::OpenAiChat => openai::decode_request(body, opts),
        Protocol::Anthropic => anthropic::decode_request(body, opts),
        Protocol::Bedrock => bedrock::decode_request(body, opts),
        Protocol::Gemini => gemini::decode_request(body, opts),
        Protocol::OpenAiResponses => responses::decode_request(body, opts),
    }
}

/// Encodes a request for `protocol`.
pub fn encode_request(
    protocol: Protocol,
    req: &ChatRequest,
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    match protocol {
        Protocol::OpenAiChat => openai::encode_request(req, opts),
        Protocol::Anthropic => anthropic::encode_request(req, opts),
        Protocol::Bedrock => bedrock::encode_request(req, opts),
        Protocol::Gemini => gemini::encode_request(req, opts),
        Protocol::OpenAiResponses => responses::encode_request(req, opts),
    }
}

/// Decodes a (non-streamed) response of `protocol`.
pub fn decode_response(
    protocol: Protocol,
    body: &[u8],
    opts: &Options,
) -> Result<ChatResponse, Error> {
    match protocol {
        Protocol::OpenAiChat => openai::decode_response(body, opts),
        Protocol::Anthropic => anthropic::decode_response(body, opts),
        Protocol::Bedrock => bedrock::decode_response(body, opts),
        Protocol::Gemini => gemini::decode_response(body, opts),
        Protocol::OpenAiResponses => responses::decode_response(body, opts),
    }
}

/// Encodes a (non-streamed) response for `protocol`.
pub fn encode_response(
    protocol: Protocol,
    resp: &ChatResponse,
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    match protocol {
        Protocol::OpenAiChat => openai::encode_response(resp, opts),
        Protocol::Anthropic => anthropic::encode_response(resp, opts),
        Protocol::Bedrock => bedrock::encode_response(resp, opts),
        Protocol::Gemini => gemini::encode_response(resp, opts),
        Protocol::OpenAiResponses => responses::encode_response(resp, opts),
    }
}

/// Translates a request body from one protocol to another. For Bedrock and Gemini the model is
/// in the URL: use [`decode_request`] and [`encode_request`] to read or set
/// [`ChatRequest::model`] and `stream`.
pub fn translate_request(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    // A decoder refuses what no target could receive (the IR has no place for it); the refusal
    // names the target of this translation.
    let req = decode_request(from, body, opts).map_err(|e| e.for_target(to))?;
    encode_request(to, &req, opts)
}

/// Translates a (non-streamed) response body from one protocol to another.
pub fn translate_response(
    from: Protocol,
    to: Protocol,
    body: &[u8],
    opts: &Options,
) -> Result<Vec<u8>, Error> {
    encode_response(to, &decode_response(from, body, opts)?, opts)
}

/// Decodes a provider error body. `error_type` is Bedrock's `x-amzn-ErrorType` header, if any.
pub fn decode_error(
    protocol: Protocol,
    status: u16,
    body: &[u8],
    error_type: Option<&str>,
) -> ProviderError {
    let body = &body[..body.len().min(1 << 20)];
    match protocol {
        Protocol::OpenAiChat => openai::decode_error(status, body),
        Protocol::Anthropic => anthropic::decode_error(status, body),
        Protocol::Bedrock => bedrock::decode_error(status, body, error_type),
        Protocol::Gemini => gemini::decode_error(status, body),
        Protocol::OpenAiResponses => responses::decode_error(status, body),
    }
}

/// Encodes an error in `protocol`'s shape: (the status that fits, the body).
pub fn encode_error(protocol: Protocol, e: &ProviderError) -> (u16, Vec<u8>) {
    match protocol {
        Protocol::OpenAiChat => openai::encode_error(e),
        Protocol::Anthropic => anthropic::encode_error(e),
        Protocol::Bedrock => bedrock::encode_error(e),
        Protocol::Gemini => gemini::encode_error(e),
        Protocol::OpenAiResponses => responses::encode_error(e),
    }
}

/// Translates a provider's error answer into the client's API: (status, body).
pub fn translate_error(
    from: Protocol,
    to: Protocol,
    status: u16,
    body: &[u8],
    error_type: Option<&str>,
) -> (u16, Vec<u8>) {
    encode_error(to, &decode_error(from, status, body, error_type))
}

/// An incremental stream decoder of any protocol.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamDecoder {
    /// OpenAI Chat Completions SSE.
    OpenAiChat(openai::StreamDecoder),
    /// Anthropic Messages SSE.
    Anthropic(anthropic::StreamDecoder),
    /// Bedrock ConverseStream event stream.
    Bedrock(bedrock::StreamDecoder),
    /// Gemini SSE.
    Gemini(gemini::StreamDecoder),
    /// OpenAI Responses SSE.
    OpenAiResponses(responses::StreamDecoder),
}

impl StreamDecoder {
    /// A decoder for `protocol`.
    pub fn new(protocol: Protocol, opts: &Options) -> Self {
        match protocol {
            Protocol::OpenAiChat => StreamDecoder::OpenAiChat(openai::StreamDecoder::new(opts)),
            Protocol::Anthropic => StreamDecoder::Anthropic(anthropic::StreamDecoder::new(opts)),
            Protocol::Bedrock => StreamDecoder::Bedrock(bedrock::StreamDecoder::new(opts)),
            Protocol::Gemini => StreamDecoder::Gemini(gemini::StreamDecoder::new(opts)),
            Protocol::OpenAiResponses => {
                StreamDecoder::OpenAiResponses(responses::StreamDecoder::new(opts))
            }
        }
    }

    /// Feeds upstream bytes (any split); IR events are appended to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        match self {
            StreamDecoder::OpenAiChat(d) => d.feed(input, out),
            StreamDecoder::Anthropic(d) => d.feed(input, out),
            StreamDecoder::Bedrock(d) => d.feed(input, out),
            StreamDecoder::Gemini(d) => d.feed(input, out),
            StreamDecoder::OpenAiResponses(d) => d.feed(input, out),
        }
    }

    /// Ends the upstream stream: an error if it was cut short.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        match self {
            StreamDecoder::OpenAiChat(d) => d.finish(out),
            StreamDecoder::Anthropic(d) => d.finish(out),
            StreamDecoder::Bedrock(d) => d.finish(out),
            StreamDecoder::Gemini(d) => d.finish(out),
            StreamDecoder::OpenAiResponses(d) => d.finish(out),
        }
    }
}

/// An incremental stream encoder of any protocol.
#[derive(Debug)]
#[non_exhaustive]
pub enum StreamEncoder {
    /// OpenAI Chat Completions SSE.
    OpenAiChat(openai::StreamEncoder),
    /// Anthropic Messages SSE.
    Anthropic(anthropic::StreamEncoder),
    /// Bedrock ConverseStream event stream.
    Bedrock(bedrock::StreamEncoder),
    /// Gemini SSE.
    Gemini(gemini::StreamEncoder),
    /// OpenAI Responses SSE.
    OpenAiResponses(responses::StreamEncoder),
}

impl StreamEncoder {
    /// An encoder for `protocol`.
    pub fn new(protocol: Protocol, opts: &Options) -> Self {
        match protocol {
            Protocol::OpenAiChat => StreamEncoder::OpenAiChat(openai::StreamEncoder::new(opts)),
            Protocol::Anthropic => StreamEncoder::Anthropic(anthropic::StreamEncoder::new(opts)),
            Protocol::Bedrock => StreamEncoder::Bedrock(bedrock::StreamEncoder::new(opts)),
            Protocol::Gemini => StreamEncoder::Gemini(gemini::StreamEncoder::new(opts)),
            Protocol::OpenAiResponses => {
                StreamEncoder::OpenAiResponses(responses::StreamEncoder::new(opts))
            }
        }
    }

    /// Encodes one IR event, appending the client's bytes to `out`.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        match self {
            StreamEncoder::OpenAiChat(e) => e.encode(ev, out),
            StreamEncoder::Anthropic(e) => e.encode(ev, out),
            StreamEncoder::Bedrock(e) => e.encode(ev, out),
            StreamEncoder::Gemini(e) => e.encode(ev, out),
            StreamEncoder::OpenAiResponses(e) => e.encode(ev, out),
        }
    }

    /// The usage seen so far (the upstream's figures, in the IR's terms).
    pub fn usage(&self) -> Usage {
        match self {
            StreamEncoder::OpenAiChat(e) => e.usage(),
            StreamEncoder::Anthropic(e) => e.usage(),
            StreamEncoder::Bedrock(e) => e.usage(),
            StreamEncoder::Gemini(e) => e.usage(),
            StreamEncoder::OpenAiResponses(e) => e.usage(),
        }
    }
}

/// Translates a stream from an upstream protocol to a client protocol, incrementally.
#[derive(Debug)]
pub struct StreamTranslator {
    dec: StreamDecoder,
    enc: StreamEncoder,
    events: Vec<StreamEvent>,
    failed: bool,
}

impl StreamTranslator {
    /// A translator. `opts.include_usage` and `opts.input_tokens_hint` describe the client's
    /// request (see [`Options`]).
    pub fn new(from: Protocol, to: Protocol, opts: &Options) -> Self {
        Self {
            dec: StreamDecoder::new(from, opts),
            enc: StreamEncoder::new(to, opts),
            events: Vec::with_capacity(16),
            failed: false,
        }
    }

    /// Feeds upstream bytes; the client's bytes are appended to `out`. After an error, the
    /// caller should end the client's stream with [`StreamTranslator::fail`].
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        if self.failed {
            return Ok(());
        }
        let r = self.dec.feed(input, &mut self.events);
        self.drain(out)?;
        r.inspect_err(|_| self.failed = true)
    }

    /// Ends the upstream stream.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.failed {
            return Ok(());
        }
        let r = self.dec.finish(&mut self.events);
        self.drain(out)?;
        r.inspect_err(|_| self.failed = true)
    }

    /// Ends the client's stream with an error event in its protocol (e.g. after a failed
    /// [`feed`](Self::feed) or a cut upstream).
    pub fn fail(&mut self, e: &ProviderError, out: &mut Vec<u8>) -> Result<(), Error> {
        self.failed = true;
        self.enc.encode(&StreamEvent::Error(e.clone()), out)
    }

    /// The usage seen so far.
    pub fn usage(&self) -> Usage {
        self.enc.usage()
    }

    fn drain(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        for ev in self.events.drain(..) {
            self.enc.encode(&ev, out)?;
        }
        Ok(())
    }
}
