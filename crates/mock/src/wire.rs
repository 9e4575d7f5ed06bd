//! Wire behaviours of real providers: compressed answers, chunked framing, replayed captures.
//!
//! Real providers (and the CDNs in front of them) gzip or brotli their answers when the client
//! accepts it, send non-streamed JSON with `Transfer-Encoding: chunked`, and stream events in
//! whatever pieces the network makes. Each behaviour is a switch ([`Wire`]), off by default,
//! and can also be asked for per request:
//!
//! - `x-mock-encoding: gzip | deflate | br | zstd | identity` forces a coding whatever the
//!   request accepts; `broken-gzip` sends a gzip body corrupted half-way, `unknown` labels an
//!   uncoded body `Content-Encoding: compress`.
//! - `x-mock-chunked: 1` frames a non-streamed answer in several chunks without a length.

use std::io::{self, Write};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, header};
use http_body::Frame;
use http_body_util::BodyExt;

use crate::handlers::MockBody;

/// How the mock frames and codes its answers. Off by default (the kind mock); each switch
/// makes it behave like real providers do.
#[non_exhaustive]
#[derive(Debug, Clone, Default)]
pub struct Wire {
    /// Code answers (streams too, flushed per event) in the coding the request prefers among
    /// br, zstd, gzip and deflate.
    pub compress: bool,
    /// Send non-streamed answers in several chunks, without `Content-Length`.
    pub chunked: bool,
    /// Streamed answers (every API) replay these bytes verbatim instead of a generated stream.
    pub stream_replay: Option<Bytes>,
    /// Non-streamed answers replay these bytes verbatim (`application/json`).
    pub json_replay: Option<Bytes>,
    /// Replayed streams are sent in frames of this many bytes (0: one frame per event).
    pub replay_frame: usize,
}

impl Wire {
    /// Codes answers in the coding the request prefers (see [`Wire::compress`](Self#structfield.compress)).
    #[must_use]
    pub fn with_compress(mut self, yes: bool) -> Self {
        self.compress = yes;
        self
    }

    /// Sends non-streamed answers chunked, without a length.
    #[must_use]
    pub fn with_chunked(mut self, yes: bool) -> Self {
        self.chunked = yes;
        self
    }

    /// Streamed answers replay these bytes verbatim.
    #[must_use]
    pub fn with_stream_replay(mut self, bytes: impl Into<Bytes>) -> Self {
        self.stream_replay = Some(bytes.into());
        self
    }

    /// Non-streamed answers replay these bytes verbatim.
    #[must_use]
    pub fn with_json_replay(mut self, bytes: impl Into<Bytes>) -> Self {
        self.json_replay = Some(bytes.into());
        self
    }

    /// Replayed streams go out in frames of this many bytes (0: one frame per event).
    #[must_use]
    pub fn with_replay_frame(mut self, bytes: usize) -> Self {
        self.replay_frame = bytes;
        self
    }

    /// Real-provider defaults: compressed when accepted, chunked JSON.
    pub fn real() -> Self {
        Self {
            compress: true,
            chunked: true,
            ..Self::default()
        }
    }
}

/// The coding a response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coding {
    Gzip,
    Deflate,
    Br,
    Zstd,
    BrokenGzip,
    Unknown,
}

impl Coding {
    fn header(self) -> &'static str {
        match self {
            Self::Gzip | Self::BrokenGzip => "gzip",
            Self::Deflate => "deflate",
            Self::Br => "br",
            Self::Zstd => "zstd",
            Self::Unknown => "compress",
        }
    }
}

/// The coding for a request: forced by `x-mock-encoding`, else (when compressing) the first
/// of br, zstd, gzip, deflate that the request accepts.
fn choose(req: &HeaderMap, wire: &Wire) -> Option<Coding> {
    if let Some(v) = req.get("x-mock-encoding").and_then(|v| v.to_str().ok()) {
        return match v.trim() {
            "gzip" => Some(Coding::Gzip),
            "deflate" => Some(Coding::Deflate),
            "br" => Some(Coding::Br),
            "zstd" => Some(Coding::Zstd),
            "broken-gzip" => Some(Coding::BrokenGzip),
            "unknown" => Some(Coding::Unknown),
            _ => None,
        };
    }
    if !wire.compress {
        return None;
    }
    let accept = req.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
    let accepted = |name: &str| {
        accept.split(',').any(|item| {
            let mut parts = item.split(';');
            let token = parts.next().unwrap_or("").trim();
            let zero = parts.any(|p| {
                p.trim()
                    .strip_prefix("q=")
                    .is_some_and(|q| q.trim().parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            (token.eq_ignore_ascii_case(name) || token == "*") && !zero
        })
    };
    [
        ("br", Coding::Br),
        ("zstd", Coding::Zstd),
        ("gzip", Coding::Gzip),
        ("deflate", Coding::Deflate),
    ]
    .into_iter()
    .find_map(|(n, c)| accepted(n).then_some(c))
}

/// Applies the wire behaviours to an answer.
pub(crate) fn apply(resp: Response<MockBody>, req: &HeaderMap, wire: &Wire) -> Response<MockBody> {
    let (mut parts, mut body) = resp.into_parts();
    let sse = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    let chunked = wire.chunked || req.get("x-mock-chunked").is_some_and(|v| v == "1");
    if chunked && !sse {
        parts.headers.remove(header::CONTENT_LENGTH);
        body = Chunked {
            inner: body,
            queue: std::collections::VecDeque::new(),
        }
        .boxed();
    }
    if let Some(coding) = choose(req, wire) {
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.header()),
        );
        parts
            .headers
            .append(header::VARY, HeaderValue::from_static("accept-encoding"));
        if coding != Coding::Unknown {
            body = Encoded::new(body, coding).boxed();
        }
    }
    Response::from_parts(parts, body)
}

/// Splits each data frame of a body into three.
struct Chunked {
    inner: MockBody,
    queue: std::collections::VecDeque<Bytes>,
}

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(b) = self.queue.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
            Some(Ok(f)) => match f.into_data() {
                Ok(d) if d.len() >= 3 => {
                    let third = d.len() / 3;
                    self.queue.push_back(d.slice(third..2 * third));
                    self.queue.push_back(d.slice(2 * third..));
                    Poll::Ready(Some(Ok(Frame::data(d.slice(..third)))))
                }
                Ok(d) => Poll::Ready(Some(Ok(Frame::data(d)))),
                Err(f) => Poll::Ready(Some(Ok(f))),
            },
            other => Poll::Ready(other),
        }
    }
}

/// A `Write` into a shared buffer, drained after each flush.
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        crate::server::lock(&self.0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *crate::server::lock(&self.0)))
    }
}

enum Encoder {
    Gzip(flate2::write::GzEncoder<Sink>),
    Deflate(flate2::write::ZlibEncoder<Sink>),
    Br(Box<brotli::CompressorWriter<Sink>>),
    Zstd(zstd::stream::write::Encoder<'static, Sink>),
}

impl Encoder {
    fn write_flush(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Self::Gzip(e) => e.write_all(data).and_then(|()| e.flush()),
            Self::Deflate(e) => e.write_all(data).and_then(|()| e.flush()),
            Self::Br(e) => e.write_all(data).and_then(|()| e.flush()),
            Self::Zstd(e) => e.write_all(data).and_then(|()| e.flush()),
        }
    }

    fn finish(self) -> io::Result<()> {
        match self {
            Self::Gzip(e) => e.finish().map(drop),
            Self::Deflate(e) => e.finish().map(drop),
            Self::Br(e) => {
                drop(e.into_inner());
                Ok(())
            }
            Self::Zstd(e) => e.finish().map(drop),
        }
    }
}

/// A body coded frame by frame, each frame flushed (so a stream stays a stream).
struct Encoded {
    inner: MockBody,
    encoder: Option<Encoder>,
    sink: Sink,
    broken: bool,
    sent: usize,
}

impl Encoded {
    fn new(inner: MockBody, coding: Coding) -> Self {
        let sink = Sink::default();
        let level = flate2::Compression::default();
        let encoder = match coding {
            Coding::Gzip | Coding::BrokenGzip | Coding::Unknown => {
                Encoder::Gzip(flate2::write::GzEncoder::new(sink.clone(), level))
            }
            Coding::Deflate => {
                Encoder::Deflate(flate2::write::ZlibEncoder::new(sink.clone(), level))
            }
            Coding::Br => Encoder::Br(Box::new(brotli::CompressorWriter::new(
                sink.clone(),
                4096,
                5,
                22,
            ))),
            Coding::Zstd => match zstd::stream::write::Encoder::new(sink.clone(), 3) {
                Ok(e) => Encoder::Zstd(e),
                Err(_) => Encoder::Gzip(flate2::write::GzEncoder::new(sink.clone(), level)),
            },
        };
        Self {
            inner,
            encoder: Some(encoder),
            sink,
            broken: coding == Coding::BrokenGzip,
            sent: 0,
        }
    }

    fn out(&mut self) -> Bytes {
        let mut b = self.sink.take();
        if self.broken && self.sent + b.len() > 12 && !b.is_empty() {
            // Corrupt the deflate data past the header: the body no longer decodes.
            let mut v = b.to_vec();
            let at = 12usize.saturating_sub(self.sent).min(v.len() - 1);
            for x in &mut v[at..] {
                *x ^= 0x5a;
            }
            b = Bytes::from(v);
        }
        self.sent += b.len();
        b
    }
}

impl http_body::Body for Encoded {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        loop {
            if self.encoder.is_none() {
                return Poll::Ready(None);
            }
            match ready!(Pin::new(&mut self.inner).poll_frame(cx)) {
                Some(Ok(f)) => {
                    let Ok(data) = f.into_data() else { continue };
                    if let Some(e) = &mut self.encoder {
                        e.write_flush(&data)?;
                    }
                    let out = self.out();
                    if !out.is_empty() {
                        return Poll::Ready(Some(Ok(Frame::data(out))));
                    }
                }
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => {
                    if let Some(e) = self.encoder.take() {
                        e.finish()?;
                    }
                    let out = self.out();
                    return Poll::Ready((!out.is_empty()).then(|| Ok(Frame::data(out))));
                }
            }
        }
    }
}

/// Splits replayed SSE bytes into frames: one per event, or `size` bytes each.
pub(crate) fn replay_frames(bytes: &Bytes, size: usize) -> Vec<Bytes> {
    if size > 0 {
        return bytes.chunks(size).map(Bytes::copy_from_slice).collect();
    }
    let mut out = Vec::new();
    let mut start = 0;
    let b = &bytes[..];
    let mut i = 0;
    while i + 1 < b.len() {
        if b[i] == b'\n' && b[i + 1] == b'\n' {
            out.push(bytes.slice(start..i + 2));
            start = i + 2;
            i += 2;
        } else if i + 3 < b.len() && &b[i..i + 4] == b"\r\n\r\n" {
            out.push(bytes.slice(start..i + 4));
            start = i + 4;
            i += 4;
        } else {
            i += 1;
        }
    }
    if start < b.len() {
        out.push(bytes.slice(start..));
    }
    out
}
