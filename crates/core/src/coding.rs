//! Content codings, decided once for every processor.
//!
//! Real providers and their CDNs compress answers when the client accepts it (the official
//! OpenAI SDK sends `Accept-Encoding: gzip, deflate`). A processor that reads a response body
//! (a guardrail redacting PII, a cache storing the answer, a rate limiter reading `usage`) must
//! see the decoded bytes, and a body it cannot read must never pass as if it had been checked.
//!
//! The design, applied by the pipeline's drivers:
//!
//! - **Upstream, only what core decodes.** The request's `Accept-Encoding` is narrowed to the
//!   codings this module decodes ([`DECODABLE`]: gzip, deflate, br, zstd) that the client also
//!   accepts ([`upstream_accept_encoding`]); when none remain, `identity`.
//! - **Decoded when a processor reads the body.** When a processor takes part in the whole-body
//!   phase or the stream phase, a compressed answer is decoded ([`DecodedBody`]) before the
//!   processors see it, and the client gets the decoded bytes (`identity`, which every client
//!   accepts; put tower-http's `CompressionLayer` outside the pipeline to compress towards the
//!   client — its default predicate leaves event streams alone). When no processor reads the
//!   body, it passes through untouched, still compressed, to a client that asked for it.
//! - **Never a silent pass.** A coding core cannot decode (stacked codings, an unknown token) is
//!   a failure of every processor that wanted the body, handled by its `FailureMode`: FailClosed
//!   answers 502, FailOpen passes the body on uninspected, logged and recorded. A body that does
//!   not decode (corrupt, truncated) is an upstream failure: 502 for a whole body, an SSE
//!   `event: error` for a stream that has started.
//! - **Bounded.** Decoding produces at most [`MAX_DECODED_STEP`] bytes per step (a decompression
//!   bomb cannot allocate more than that at once), zstd windows are limited to 8 MiB (RFC 9659),
//!   and the whole-body phase's size bound applies to the decoded bytes.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use http::{HeaderMap, HeaderValue, header};
use http_body::{Frame, SizeHint};

use crate::error::BoxError;

/// The most decoded bytes one decoding step produces.
pub const MAX_DECODED_STEP: usize = 64 * 1024;

/// A content coding (RFC 9110 section 8.4.1).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentCoding {
    /// No coding.
    Identity,
    /// gzip (RFC 1952).
    Gzip,
    /// deflate: the zlib format (RFC 1950); raw deflate (RFC 1951), which some servers send
    /// instead, is recognised too.
    Deflate,
    /// Brotli (RFC 7932).
    Br,
    /// Zstandard (RFC 8878).
    Zstd,
}

/// The codings core decodes, in the order core prefers them.
pub const DECODABLE: [ContentCoding; 4] = [
    ContentCoding::Br,
    ContentCoding::Zstd,
    ContentCoding::Gzip,
    ContentCoding::Deflate,
];

impl ContentCoding {
    /// The coding's token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Identity => "identity",
            Self::Gzip => "gzip",
            Self::Deflate => "deflate",
            Self::Br => "br",
            Self::Zstd => "zstd",
        }
    }

    /// The coding a token names (case-insensitive; `x-gzip` is gzip), if core knows it.
    pub fn from_token(token: &str) -> Option<Self> {
        let t = token.trim();
        [
            ("identity", Self::Identity),
            ("gzip", Self::Gzip),
            ("x-gzip", Self::Gzip),
            ("deflate", Self::Deflate),
            ("br", Self::Br),
            ("zstd", Self::Zstd),
        ]
        .into_iter()
        .find_map(|(name, c)| t.eq_ignore_ascii_case(name).then_some(c))
    }

    fn bit(self) -> usize {
        match self {
            Self::Identity => 0,
            Self::Br => 1,
            Self::Zstd => 2,
            Self::Gzip => 4,
            Self::Deflate => 8,
        }
    }
}

/// A `Content-Encoding` that core cannot decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("content-encoding {0} cannot be decoded by the gateway")]
pub struct UnsupportedCoding(String);

/// The coding of a response, from its `Content-Encoding` (absent or `identity`: identity).
/// Stacked codings (`gzip, br`) and unknown tokens are unsupported.
pub fn response_coding(headers: &HeaderMap) -> Result<ContentCoding, UnsupportedCoding> {
    let mut found = ContentCoding::Identity;
    for v in headers.get_all(header::CONTENT_ENCODING) {
        let s = v
            .to_str()
            .map_err(|_| UnsupportedCoding("(not text)".to_owned()))?;
        for token in s.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            match ContentCoding::from_token(token) {
                Some(ContentCoding::Identity) => {}
                Some(c) if found == ContentCoding::Identity => found = c,
                _ => return Err(UnsupportedCoding(sanitize(s))),
            }
        }
    }
    Ok(found)
}

/// At most 40 printable characters of a header value, for messages.
fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(40)
        .collect()
}

/// The `Accept-Encoding` to send upstream for a client's: the codings core decodes that the
/// client accepts (with a q-value above 0; `*` accepts them all), or `identity`.
pub fn upstream_accept_encoding(client: Option<&HeaderValue>) -> HeaderValue {
    let mut mask = 0usize;
    if let Some(s) = client.and_then(|v| v.to_str().ok()) {
        let mut star = None;
        let mut refused = 0usize;
        for item in s.split(',') {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| {
                let p = p.trim();
                p.strip_prefix("q=")
                    .or_else(|| p.strip_prefix("Q="))
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            if token == "*" {
                star = Some(!q_zero);
            } else if let Some(c) = ContentCoding::from_token(token) {
                if q_zero {
                    refused |= c.bit();
                } else {
                    mask |= c.bit();
                }
            }
        }
        if star == Some(true) {
            mask |= 15 & !refused;
        }
    }
    ACCEPT[mask & 15].clone()
}

/// The `Accept-Encoding` to send upstream when a processor will decode the answer: as
/// [`upstream_accept_encoding`], without br — a brotli decoder allocates (and zeroes) its whole
/// window, up to 16 MiB, for every answer (about 100 µs for a small one, against a few µs for
/// gzip); br is still decoded when an upstream sends it anyway.
pub fn upstream_accept_encoding_to_decode(client: Option<&HeaderValue>) -> HeaderValue {
    let all = upstream_accept_encoding(client);
    let mask = ACCEPT.iter().position(|v| *v == all).unwrap_or(0);
    ACCEPT[mask & !ContentCoding::Br.bit()].clone()
}

/// The header values for every subset of the decodable codings (bits: br, zstd, gzip,
/// deflate), so that narrowing allocates nothing.
static ACCEPT: [HeaderValue; 16] = [
    HeaderValue::from_static("identity"),
    HeaderValue::from_static("br"),
    HeaderValue::from_static("zstd"),
    HeaderValue::from_static("br, zstd"),
    HeaderValue::from_static("gzip"),
    HeaderValue::from_static("br, gzip"),
    HeaderValue::from_static("zstd, gzip"),
    HeaderValue::from_static("br, zstd, gzip"),
    HeaderValue::from_static("deflate"),
    HeaderValue::from_static("br, deflate"),
    HeaderValue::from_static("zstd, deflate"),
    HeaderValue::from_static("br, zstd, deflate"),
    HeaderValue::from_static("gzip, deflate"),
    HeaderValue::from_static("br, gzip, deflate"),
    HeaderValue::from_static("zstd, gzip, deflate"),
    HeaderValue::from_static("br, zstd, gzip, deflate"),
];

/// Decodes a whole body as a client would, by the `Content-Encoding` in `headers`: `Ok(None)`
/// past `limit` decoded bytes, an error for a coding core does not know or bytes that do not
/// decode.
pub fn decode_body(
    headers: &HeaderMap,
    body: &[u8],
    limit: usize,
) -> Result<Option<Vec<u8>>, BoxError> {
    let coding = response_coding(headers)?;
    Ok(Decoder::decode_all(coding, body, limit)?)
}

/// A body that does not decode.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The coded bytes are malformed.
    #[error("the {coding} body is corrupt: {reason}")]
    Corrupt {
        /// The coding.
        coding: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// The body ended before its coded stream did.
    #[error("the {coding} body ended before its stream was complete")]
    Truncated {
        /// The coding.
        coding: &'static str,
    },
}

/// An incremental decoder with bounded output: feed it input with [`Decoder::step`], then
/// tell it the input has ended with [`Decoder::finish`].
pub struct Decoder {
    coding: ContentCoding,
    state: State,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("coding", &self.coding)
            .finish_non_exhaustive()
    }
}

type BrotliState = brotli_decompressor::BrotliState<
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
    brotli_decompressor::StandardAlloc,
>;

enum State {
    Gzip(Box<Gzip>),
    /// Waiting for the first two bytes to tell zlib from raw deflate (the first one held).
    DeflateStart(Option<u8>),
    Deflate {
        inflate: Box<flate2::Decompress>,
        done: bool,
    },
    Br {
        state: Box<BrotliState>,
        done: bool,
    },
    Zstd {
        dec: Box<zstd::stream::raw::Decoder<'static>>,
        /// Whether the last step ended a frame (and nothing has started since).
        at_frame_end: bool,
    },
}

/// A gzip member: header, deflate data, trailer (RFC 1952); several members may follow.
struct Gzip {
    phase: GzPhase,
    header: Vec<u8>,
    inflate: flate2::Decompress,
    crc: crc32fast::Hasher,
    size: u32,
    trailer: Vec<u8>,
    /// At least one member ended and nothing of another has arrived.
    complete: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum GzPhase {
    Header,
    Data,
    Trailer,
}

/// A step after the coded stream has ended: nothing more is accepted.
fn after_end(coding: &'static str, input: &[u8]) -> Result<Step, DecodeError> {
    if input.is_empty() {
        Ok(Step {
            read: 0,
            written: 0,
        })
    } else {
        Err(DecodeError::Corrupt {
            coding,
            reason: "bytes after the end of the stream".to_owned(),
        })
    }
}

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub read: usize,
    /// Output bytes written.
    pub written: usize,
}

impl Decoder {
    /// A decoder for `coding`; `None` for identity.
    pub fn new(coding: ContentCoding) -> Option<Self> {
        let state = match coding {
            ContentCoding::Identity => return None,
            ContentCoding::Gzip => State::Gzip(Box::new(Gzip::new())),
            ContentCoding::Deflate => State::DeflateStart(None),
            ContentCoding::Br => State::Br {
                state: Box::new(BrotliState::new(
                    brotli_decompressor::StandardAlloc::default(),
                    brotli_decompressor::StandardAlloc::default(),
                    brotli_decompressor::StandardAlloc::default(),
                )),
                done: false,
            },
            ContentCoding::Zstd => {
                let mut dec = zstd::stream::raw::Decoder::new().ok()?;
                // RFC 9659: HTTP zstd windows are at most 8 MiB.
                dec.set_parameter(zstd::stream::raw::DParameter::WindowLogMax(23))
                    .ok()?;
                State::Zstd {
                    dec: Box::new(dec),
                    at_frame_end: true,
                }
            }
        };
        Some(Self { coding, state })
    }

    /// The coding.
    pub fn coding(&self) -> ContentCoding {
        self.coding
    }

    fn corrupt(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError::Corrupt {
            coding: self.coding.as_str(),
            reason: reason.into(),
        }
    }

    /// Decodes from `input` into `out`; at least one of the two counts is non-zero unless
    /// `input` is empty and nothing is pending, or `out` is empty.
    pub fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, DecodeError> {
        let coding = self.coding.as_str();
        match &mut self.state {
            State::Gzip(gz) => gz.step(input, out).map_err(|reason| DecodeError::Corrupt {
                coding,
                reason: reason.to_owned(),
            }),
            State::DeflateStart(held) => {
                let (first, second) = match (*held, input) {
                    (_, []) => {
                        return Ok(Step {
                            read: 0,
                            written: 0,
                        });
                    }
                    (None, [one]) => {
                        *held = Some(*one);
                        return Ok(Step {
                            read: 1,
                            written: 0,
                        });
                    }
                    (None, [a, b, ..]) => (*a, *b),
                    (Some(a), [b, ..]) => (a, *b),
                };
                let (a, b) = (u16::from(first), u16::from(second));
                let zlib = a & 0x0f == 8 && (a << 8 | b) % 31 == 0;
                let mut inflate = Box::new(flate2::Decompress::new(zlib));
                if let Some(h) = held.take() {
                    // The byte held back is the stream's first: the inflater takes it first.
                    let mut none = [0u8; 0];
                    inflate
                        .decompress(&[h], &mut none, flate2::FlushDecompress::None)
                        .map_err(|e| DecodeError::Corrupt {
                            coding,
                            reason: e.to_string(),
                        })?;
                }
                self.state = State::Deflate {
                    inflate,
                    done: false,
                };
                self.step(input, out)
            }
            State::Deflate { inflate, done } => {
                if *done {
                    return after_end(coding, input);
                }
                let (i0, o0) = (inflate.total_in(), inflate.total_out());
                let status = inflate
                    .decompress(input, out, flate2::FlushDecompress::None)
                    .map_err(|e| DecodeError::Corrupt {
                        coding,
                        reason: e.to_string(),
                    })?;
                if status == flate2::Status::StreamEnd {
                    *done = true;
                }
                Ok(Step {
                    read: (inflate.total_in() - i0) as usize,
                    written: (inflate.total_out() - o0) as usize,
                })
            }
            State::Br { state, done } => {
                if *done {
                    return after_end(coding, input);
                }
                let mut avail_in = input.len();
                let mut in_off = 0;
                let mut avail_out = out.len();
                let mut out_off = 0;
                let mut total = 0;
                let r = brotli_decompressor::BrotliDecompressStream(
                    &mut avail_in,
                    &mut in_off,
                    input,
                    &mut avail_out,
                    &mut out_off,
                    out,
                    &mut total,
                    state,
                );
                match r {
                    brotli_decompressor::BrotliResult::ResultFailure => {
                        Err(self.corrupt("invalid brotli stream"))
                    }
                    brotli_decompressor::BrotliResult::ResultSuccess => {
                        *done = true;
                        Ok(Step {
                            read: in_off,
                            written: out_off,
                        })
                    }
                    _ => Ok(Step {
                        read: in_off,
                        written: out_off,
                    }),
                }
            }
            State::Zstd { dec, at_frame_end } => {
                use zstd::stream::raw::Operation;
                if input.is_empty() && *at_frame_end {
                    return Ok(Step {
                        read: 0,
                        written: 0,
                    });
                }
                let st = dec
                    .run_on_buffers(input, out)
                    .map_err(|e| DecodeError::Corrupt {
                        coding,
                        reason: e.to_string(),
                    })?;
                *at_frame_end = st.remaining == 0;
                Ok(Step {
                    read: st.bytes_read,
                    written: st.bytes_written,
                })
            }
        }
    }

    /// Whether the coded stream is complete (so that the end of the input is its end).
    pub fn is_complete(&self) -> bool {
        match &self.state {
            State::Gzip(gz) => gz.complete,
            State::DeflateStart(_) => false,
            State::Deflate { done, .. } | State::Br { done, .. } => *done,
            State::Zstd { at_frame_end, .. } => *at_frame_end,
        }
    }

    /// Decodes one chunk of input completely into `out`, for drivers that see the body in
    /// chunks (pingora's body filter). More than `limit` decoded bytes from one chunk is an
    /// error (a decompression bomb).
    pub fn decode_chunk(
        &mut self,
        input: &[u8],
        out: &mut bytes::BytesMut,
        limit: usize,
    ) -> Result<(), DecodeError> {
        let mut buf = [0u8; 16 * 1024];
        let mut rest = input;
        let mut produced = 0usize;
        loop {
            let s = self.step(rest, &mut buf)?;
            out.extend_from_slice(&buf[..s.written]);
            produced = produced.saturating_add(s.written);
            if produced > limit {
                return Err(self.corrupt("decodes to more than the gateway's bound"));
            }
            rest = &rest[s.read..];
            if s.read == 0 && s.written == 0 {
                break;
            }
        }
        if !rest.is_empty() {
            return Err(self.corrupt("bytes after the end of the stream"));
        }
        Ok(())
    }

    /// The input has ended: an error unless the coded stream is complete.
    pub fn finish(&self) -> Result<(), DecodeError> {
        if self.is_complete() {
            Ok(())
        } else {
            Err(DecodeError::Truncated {
                coding: self.coding.as_str(),
            })
        }
    }

    /// Decodes a whole coded body (bounded by `limit` decoded bytes: `Ok(None)` past it).
    pub fn decode_all(
        coding: ContentCoding,
        input: &[u8],
        limit: usize,
    ) -> Result<Option<Vec<u8>>, DecodeError> {
        let Some(mut d) = Self::new(coding) else {
            return Ok((input.len() <= limit).then(|| input.to_vec()));
        };
        let mut out = Vec::new();
        let mut buf = vec![0u8; MAX_DECODED_STEP];
        let mut rest = input;
        loop {
            let s = d.step(rest, &mut buf)?;
            out.extend_from_slice(&buf[..s.written]);
            if out.len() > limit {
                return Ok(None);
            }
            rest = &rest[s.read..];
            if s.read == 0 && s.written == 0 {
                break;
            }
        }
        if !rest.is_empty() || !d.is_complete() {
            return Err(DecodeError::Truncated {
                coding: coding.as_str(),
            });
        }
        Ok(Some(out))
    }
}

impl Gzip {
    fn new() -> Self {
        Self {
            phase: GzPhase::Header,
            header: Vec::new(),
            inflate: flate2::Decompress::new(false),
            crc: crc32fast::Hasher::new(),
            size: 0,
            trailer: Vec::new(),
            complete: false,
        }
    }

    fn step(&mut self, input: &[u8], out: &mut [u8]) -> Result<Step, &'static str> {
        match self.phase {
            GzPhase::Header => {
                // Take bytes one header field at a time until the header is whole.
                let mut read = 0;
                while read < input.len() {
                    self.header.push(input[read]);
                    read += 1;
                    self.complete = false;
                    match gzip_header_len(&self.header)? {
                        Some(n) if n == self.header.len() => {
                            self.header.clear();
                            self.phase = GzPhase::Data;
                            break;
                        }
                        _ => {}
                    }
                    if self.header.len() > 64 * 1024 {
                        return Err("gzip header too long");
                    }
                }
                Ok(Step { read, written: 0 })
            }
            GzPhase::Data => {
                let (i0, o0) = (self.inflate.total_in(), self.inflate.total_out());
                let status = self
                    .inflate
                    .decompress(input, out, flate2::FlushDecompress::None)
                    .map_err(|_| "invalid deflate data")?;
                let read = (self.inflate.total_in() - i0) as usize;
                let written = (self.inflate.total_out() - o0) as usize;
                self.crc.update(&out[..written]);
                self.size = self.size.wrapping_add(written as u32);
                if status == flate2::Status::StreamEnd {
                    self.phase = GzPhase::Trailer;
                }
                Ok(Step { read, written })
            }
            GzPhase::Trailer => {
                let take = (8 - self.trailer.len()).min(input.len());
                self.trailer.extend_from_slice(&input[..take]);
                if self.trailer.len() == 8 {
                    let t = &self.trailer;
                    let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                    let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                    let ours = std::mem::replace(&mut self.crc, crc32fast::Hasher::new());
                    if ours.finalize() != crc || size != self.size {
                        return Err("gzip checksum mismatch");
                    }
                    self.trailer.clear();
                    self.size = 0;
                    self.inflate.reset(false);
                    self.phase = GzPhase::Header;
                    self.complete = true;
                }
                Ok(Step {
                    read: take,
                    written: 0,
                })
            }
        }
    }
}

/// The length of the gzip header in `h` once it is known (`Ok(None)`: more bytes needed).
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, &'static str> {
    if h.len() >= 2 && (h[0] != 0x1f || h[1] != 0x8b) {
        return Err("not a gzip stream");
    }
    if h.len() >= 3 && h[2] != 8 {
        return Err("unknown gzip compression method");
    }
    if h.len() < 10 {
        return Ok(None);
    }
    let flags = h[3];
    let mut n = 10;
    if flags & 0x04 != 0 {
        if h.len() < n + 2 {
            return Ok(None);
        }
        n += 2 + usize::from(u16::from_le_bytes([h[n], h[n + 1]]));
        if h.len() < n {
            return Ok(None);
        }
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            match h.get(n..).and_then(|r| r.iter().position(|&b| b == 0)) {
                Some(z) => n += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 0x02 != 0 {
        n += 2;
    }
    Ok((h.len() >= n).then_some(n))
}

pin_project_lite::pin_project! {
    /// A response body decoded on the fly, [`MAX_DECODED_STEP`] bytes at most per frame. An
    /// error when the coded bytes are corrupt or end early.
    pub struct DecodedBody<B> {
        #[pin]
        inner: B,
        decoder: Decoder,
        pending: Bytes,
        buf: Vec<u8>,
        ended: bool,
        done: bool,
    }
}

impl<B> DecodedBody<B> {
    /// Decodes `inner` with `decoder`.
    pub fn new(inner: B, decoder: Decoder) -> Self {
        Self {
            inner,
            decoder,
            pending: Bytes::new(),
            buf: Vec::new(),
            ended: false,
            done: false,
        }
    }
}

impl<B> std::fmt::Debug for DecodedBody<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedBody")
            .field("decoder", &self.decoder)
            .finish_non_exhaustive()
    }
}

impl<B> http_body::Body for DecodedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        loop {
            if *this.done {
                return Poll::Ready(None);
            }
            if !this.pending.is_empty() || *this.ended {
                // Small answers need a small buffer: start at 8 KiB, grow while steps fill it.
                if this.buf.is_empty() {
                    this.buf.resize(8 * 1024, 0);
                }
                let step = match this.decoder.step(this.pending, this.buf) {
                    Ok(s) => s,
                    Err(e) => {
                        *this.done = true;
                        return Poll::Ready(Some(Err(e.into())));
                    }
                };
                this.pending.advance(step.read);
                if step.written == this.buf.len() && this.buf.len() < MAX_DECODED_STEP {
                    let grown = (this.buf.len() * 2).min(MAX_DECODED_STEP);
                    this.buf.resize(grown, 0);
                }
                if step.written > 0 {
                    let out = Bytes::copy_from_slice(&this.buf[..step.written]);
                    return Poll::Ready(Some(Ok(Frame::data(out))));
                }
                if step.read > 0 {
                    continue;
                }
                if *this.ended {
                    *this.done = true;
                    if this.pending.is_empty() && this.decoder.is_complete() {
                        return Poll::Ready(None);
                    }
                    let e = DecodeError::Truncated {
                        coding: this.decoder.coding().as_str(),
                    };
                    return Poll::Ready(Some(Err(e.into())));
                }
                if !this.pending.is_empty() {
                    // Input left that the decoder will not take: it is past the stream's end.
                    *this.done = true;
                    let e = DecodeError::Corrupt {
                        coding: this.decoder.coding().as_str(),
                        reason: "bytes after the end of the stream".to_owned(),
                    };
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
            match ready!(this.inner.as_mut().poll_frame(cx)) {
                Some(Ok(frame)) => {
                    // Trailers of a coded body are dropped (nothing in them applies).
                    if let Ok(data) = frame.into_data() {
                        if this.pending.is_empty() {
                            *this.pending = data;
                        } else {
                            let mut joined = Vec::with_capacity(this.pending.len() + data.len());
                            joined.extend_from_slice(this.pending);
                            joined.extend_from_slice(&data);
                            *this.pending = Bytes::from(joined);
                        }
                    }
                }
                Some(Err(e)) => {
                    *this.done = true;
                    return Poll::Ready(Some(Err(e.into())));
                }
                None => *this.ended = true,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn narrows_accept_encoding() {
        let v = |s: &str| upstream_accept_encoding(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(upstream_accept_encoding(None), "identity");
        assert_eq!(v("gzip, deflate"), "gzip, deflate");
        assert_eq!(v("gzip;q=0, br"), "br");
        assert_eq!(v("compress, sdch"), "identity");
        assert_eq!(v("*"), "br, zstd, gzip, deflate");
        assert_eq!(v("*, gzip;q=0"), "br, zstd, deflate");
        let d =
            |s: &str| upstream_accept_encoding_to_decode(Some(&HeaderValue::from_str(s).unwrap()));
        assert_eq!(d("gzip, br"), "gzip");
        assert_eq!(d("br"), "identity");
        assert_eq!(d("*"), "zstd, gzip, deflate");
        assert_eq!(v("GZIP"), "gzip");
    }

    #[test]
    fn response_codings() {
        let h = |s: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::CONTENT_ENCODING, HeaderValue::from_str(s).unwrap());
            m
        };
        assert_eq!(
            response_coding(&HeaderMap::new()),
            Ok(ContentCoding::Identity)
        );
        assert_eq!(response_coding(&h("gzip")), Ok(ContentCoding::Gzip));
        assert_eq!(response_coding(&h("identity")), Ok(ContentCoding::Identity));
        assert!(response_coding(&h("gzip, br")).is_err());
        assert!(response_coding(&h("compress")).is_err());
    }

    #[test]
    fn gzip_roundtrip_byte_by_byte_and_truncation() {
        let data = b"hello hello hello jane.doe@example.com".repeat(100);
        let z = gzip(&data);
        let mut d = Decoder::new(ContentCoding::Gzip).unwrap();
        let mut out = Vec::new();
        let mut buf = [0u8; 7];
        for b in &z {
            let mut rest: &[u8] = std::slice::from_ref(b);
            loop {
                let s = d.step(rest, &mut buf).unwrap();
                out.extend_from_slice(&buf[..s.written]);
                rest = &rest[s.read..];
                if s.read == 0 && s.written == 0 {
                    break;
                }
            }
        }
        assert!(d.is_complete());
        assert_eq!(out, data);
        assert!(Decoder::decode_all(ContentCoding::Gzip, &z[..z.len() - 3], 1 << 20).is_err());
        let mut bad = z.clone();
        let n = bad.len();
        bad[n - 6] ^= 1;
        assert!(Decoder::decode_all(ContentCoding::Gzip, &bad, 1 << 20).is_err());
        assert!(Decoder::decode_all(ContentCoding::Gzip, b"not gzip at all", 1 << 20).is_err());
    }

    #[test]
    fn bomb_is_bounded() {
        let z = gzip(&vec![0u8; 50 << 20]);
        assert!(z.len() < 100_000);
        assert!(matches!(
            Decoder::decode_all(ContentCoding::Gzip, &z, 1 << 20),
            Ok(None)
        ));
    }

    #[test]
    fn deflate_zlib_and_raw() {
        let data = b"some text to deflate, deflate, deflate".repeat(10);
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&data).unwrap();
        let zlib = e.finish().unwrap();
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(&data).unwrap();
        let raw = e.finish().unwrap();
        for z in [zlib, raw] {
            let out = Decoder::decode_all(ContentCoding::Deflate, &z, 1 << 20)
                .unwrap()
                .unwrap();
            assert_eq!(out, data);
            // One byte at a time, as a network may deliver it.
            let mut d = Decoder::new(ContentCoding::Deflate).unwrap();
            let mut out = bytes::BytesMut::new();
            for b in &z {
                d.decode_chunk(std::slice::from_ref(b), &mut out, 1 << 20)
                    .unwrap();
            }
            d.finish().unwrap();
            assert_eq!(&out[..], &data[..]);
        }
    }

    #[test]
    fn zstd_and_br() {
        let data = b"zstd and brotli both decode".repeat(50);
        let z = zstd::bulk::compress(&data, 3).unwrap();
        let out = Decoder::decode_all(ContentCoding::Zstd, &z, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(out, data);
        assert!(Decoder::decode_all(ContentCoding::Zstd, &z[..z.len() - 2], 1 << 20).is_err());
        assert!(Decoder::decode_all(ContentCoding::Br, b"\xff\xff\xff garbage", 1 << 20).is_err());
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(&data).unwrap();
        }
        let out = Decoder::decode_all(ContentCoding::Br, &br, 1 << 20)
            .unwrap()
            .unwrap();
        assert_eq!(out, data);
        assert!(Decoder::decode_all(ContentCoding::Br, &br[..br.len() - 1], 1 << 20).is_err());
    }
}
