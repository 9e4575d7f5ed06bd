//! The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), as Bedrock's
//! ConverseStream sends it.
//!
//! A message is a 12-byte prelude (total length, headers length, both big-endian `u32`, and the
//! CRC-32 of those 8 bytes), the headers, the payload, and the CRC-32 of everything before it.
//! [`Decoder`] is incremental: feed it byte slices of any size and it yields whole messages,
//! checking both CRCs and bounding the frame and headers sizes before it buffers anything.
//! [`encode`] writes a message (for mocks and tests).
//!
//! ```
//! use infergate_translate::eventstream::{encode, Decoder, Header, HeaderValue, Message};
//!
//! let msg = Message {
//!     headers: vec![Header::string(":event-type", "messageStart")],
//!     payload: br#"{"role":"assistant"}"#.to_vec().into(),
//! };
//! let mut wire = Vec::new();
//! encode(&msg, &mut wire).unwrap();
//!
//! let mut dec = Decoder::new();
//! let mut out = Vec::new();
//! dec.feed(&wire[..5], &mut out).unwrap(); // any split works
//! dec.feed(&wire[5..], &mut out).unwrap();
//! assert_eq!(out, vec![msg]);
//! assert_eq!(out[0].header_str(":event-type"), Some("messageStart"));
//! ```

use bytes::{Buf, Bytes, BytesMut};

/// The smallest message: a prelude and a message CRC.
pub const MIN_MESSAGE_LEN: usize = 16;
/// The default bound on one message (16 MiB, as in the AWS SDKs).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// The bound on the headers of one message (128 KiB, as in the AWS SDKs).
pub const MAX_HEADERS_LEN: usize = 128 * 1024;

/// Why a frame could not be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventStreamError {
    /// The CRC-32 of the prelude does not match.
    #[error("prelude checksum mismatch")]
    PreludeChecksum,
    /// The CRC-32 of the message does not match.
    #[error("message checksum mismatch")]
    MessageChecksum,
    /// The total length is below 16 or above the decoder's bound.
    #[error("invalid message length {0}")]
    MessageLength(u64),
    /// The headers length is above 128 KiB or does not fit in the message.
    #[error("invalid headers length {0}")]
    HeadersLength(u64),
    /// A header is cut short or has an unknown type.
    #[error("malformed header: {0}")]
    Header(&'static str),
    /// The stream ended inside a message.
    #[error("stream ended inside a message ({0} bytes left over)")]
    Truncated(usize),
    /// A header name is empty or longer than 255 bytes, or a value longer than 32767 bytes.
    #[error("header too long to encode")]
    HeaderTooLong,
}

/// A header value, by the wire's type tag.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeaderValue {
    /// Types 0 and 1.
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6.
    Bytes(Bytes),
    /// Type 7 (kept as bytes; [`Message::header_str`] reads it as UTF-8).
    String(Bytes),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

/// One header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The name (1–255 bytes).
    pub name: String,
    /// The value.
    pub value: HeaderValue,
}

impl Header {
    /// A string header.
    pub fn string(name: &str, value: &str) -> Self {
        Self {
            name: name.to_owned(),
            value: HeaderValue::String(Bytes::copy_from_slice(value.as_bytes())),
        }
    }
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    /// The headers, in wire order.
    pub headers: Vec<Header>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The first header of that name whose value is a UTF-8 string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name == name)
            .and_then(|h| match &h.value {
                HeaderValue::String(b) => std::str::from_utf8(b).ok(),
                _ => None,
            })
    }
}

/// An incremental decoder: bytes in, whole checked messages out.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_message_len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A decoder bounding messages to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        Self::with_max_message_len(DEFAULT_MAX_MESSAGE_LEN)
    }

    /// A decoder bounding messages to `max` bytes (at least 16).
    pub fn with_max_message_len(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max_message_len: max.max(MIN_MESSAGE_LEN),
        }
    }

    /// Bytes buffered that do not yet make a whole message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Feeds bytes; every whole message is pushed to `out`. After an error the decoder is
    /// poisoned in the sense that the stream cannot be trusted: stop feeding it.
    pub fn feed(&mut self, data: &[u8], out: &mut Vec<Message>) -> Result<(), EventStreamError> {
        self.feed_frames(data, |f| {
            out.push(f.to_message()?);
            Ok(())
        })
    }

    /// Feeds bytes; calls `f` with every whole message, borrowed from the input or the
    /// decoder's buffer (checked as [`Decoder::feed`] checks them, nothing copied or
    /// allocated per message). An error from `f` stops the feed and is returned.
    pub fn feed_frames<E, F>(&mut self, data: &[u8], mut f: F) -> Result<(), E>
    where
        E: From<EventStreamError>,
        F: FnMut(FrameRef<'_>) -> Result<(), E>,
    {
        let mut data = data;
        if self.buf.is_empty() {
            // The common case: whole messages straight from the input, no copy.
            while data.len() >= 12 {
                let total = check_prelude(data, self.max_message_len)?;
                if data.len() < total {
                    break;
                }
                f(parse_frame(&data[..total])?)?;
                data = &data[total..];
            }
            self.buf.extend_from_slice(data);
            return Ok(());
        }
        self.buf.extend_from_slice(data);
        while self.buf.len() >= 12 {
            let total = check_prelude(&self.buf, self.max_message_len)?;
            if self.buf.len() < total {
                self.buf.reserve(total - self.buf.len());
                break;
            }
            let r = parse_frame(&self.buf[..total])
                .map_err(E::from)
                .and_then(&mut f);
            self.buf.advance(total);
            r?;
        }
        Ok(())
    }

    /// Ends the stream: an error if a message was cut short.
    pub fn finish(&mut self) -> Result<(), EventStreamError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(EventStreamError::Truncated(self.buf.len()))
        }
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the prelude of `data` (at least 12 bytes): its CRC and lengths. Returns the total length.
fn check_prelude(data: &[u8], max: usize) -> Result<usize, EventStreamError> {
    let total = be32(&data[0..4]);
    let headers = be32(&data[4..8]);
    if crc32fast::hash(&data[0..8]) != be32(&data[8..12]) {
        return Err(EventStreamError::PreludeChecksum);
    }
    let total_us = total as usize;
    if total_us < MIN_MESSAGE_LEN || total_us > max {
        return Err(EventStreamError::MessageLength(u64::from(total)));
    }
    if headers as usize > MAX_HEADERS_LEN || headers as usize > total_us - MIN_MESSAGE_LEN {
        return Err(EventStreamError::HeadersLength(u64::from(headers)));
    }
    Ok(total_us)
}

/// One message borrowed from the decoder's input: its CRCs and headers checked.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    headers: &'a [u8],
    payload: &'a [u8],
}

impl<'a> FrameRef<'a> {
    /// The payload.
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The first header of that name whose value is a UTF-8 string.
    pub fn header_str(&self, name: &str) -> Option<&'a str> {
        let mut found = None;
        // The headers were walked once when the frame was checked: this walk cannot fail.
        let _ = walk_headers(self.headers, |n, ty, v| {
            if found.is_none() && ty == 7 && n == name {
                found = std::str::from_utf8(v).ok();
            }
            Ok(())
        });
        found
    }

    /// The message, owned.
    pub fn to_message(&self) -> Result<Message, EventStreamError> {
        Ok(Message {
            headers: decode_headers(self.headers)?,
            payload: Bytes::copy_from_slice(self.payload),
        })
    }
}

/// Checks one whole message (prelude already checked): its CRC and its headers.
fn parse_frame(frame: &[u8]) -> Result<FrameRef<'_>, EventStreamError> {
    let n = frame.len();
    let crc = be32(&frame[n - 4..]);
    if crc32fast::hash(&frame[..n - 4]) != crc {
        return Err(EventStreamError::MessageChecksum);
    }
    let headers_len = be32(&frame[4..8]) as usize;
    let headers = &frame[12..12 + headers_len];
    walk_headers(headers, |_, _, _| Ok(()))?;
    Ok(FrameRef {
        headers,
        payload: &frame[12 + headers_len..n - 4],
    })
}

fn take<'a>(b: &mut &'a [u8], n: usize, what: &'static str) -> Result<&'a [u8], EventStreamError> {
    if b.len() < n {
        return Err(EventStreamError::Header(what));
    }
    let (h, t) = b.split_at(n);
    *b = t;
    Ok(h)
}

/// Walks the headers: `f(name, type tag, value bytes)` for each (the value bytes without the
/// length prefix of types 6 and 7).
fn walk_headers<'a>(
    mut b: &'a [u8],
    mut f: impl FnMut(&'a str, u8, &'a [u8]) -> Result<(), EventStreamError>,
) -> Result<(), EventStreamError> {
    while !b.is_empty() {
        let name_len = take(&mut b, 1, "name length")?[0] as usize;
        if name_len == 0 {
            return Err(EventStreamError::Header("empty name"));
        }
        let name = std::str::from_utf8(take(&mut b, name_len, "name")?)
            .map_err(|_| EventStreamError::Header("name is not UTF-8"))?;
        let ty = take(&mut b, 1, "type")?[0];
        let value = match ty {
            0 | 1 => &b[..0],
            2 => take(&mut b, 1, "byte")?,
            3 => take(&mut b, 2, "int16")?,
            4 => take(&mut b, 4, "int32")?,
            5 => take(&mut b, 8, "int64")?,
            6 | 7 => {
                let len = take(&mut b, 2, "value length")?.get_u16() as usize;
                take(&mut b, len, "value")?
            }
            8 => take(&mut b, 8, "timestamp")?,
            9 => take(&mut b, 16, "uuid")?,
            _ => return Err(EventStreamError::Header("unknown type")),
        };
        f(name, ty, value)?;
    }
    Ok(())
}

/// Decodes checked headers into owned ones.
fn decode_headers(b: &[u8]) -> Result<Vec<Header>, EventStreamError> {
    let mut out = Vec::with_capacity(4);
    walk_headers(b, |name, ty, mut v| {
        let value = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(v[0].cast_signed()),
            3 => HeaderValue::Int16(v.get_i16()),
            4 => HeaderValue::Int32(v.get_i32()),
            5 => HeaderValue::Int64(v.get_i64()),
            6 => HeaderValue::Bytes(Bytes::copy_from_slice(v)),
            7 => HeaderValue::String(Bytes::copy_from_slice(v)),
            8 => HeaderValue::Timestamp(v.get_i64()),
            _ => {
                let mut u = [0u8; 16];
                u.copy_from_slice(v);
                HeaderValue::Uuid(u)
            }
        };
        out.push(Header {
            name: name.to_owned(),
            value,
        });
        Ok(())
    })?;
    Ok(out)
}

/// Appends the encoding of `msg` to `out`.
pub fn encode(msg: &Message, out: &mut Vec<u8>) -> Result<(), EventStreamError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 12]);
    for h in &msg.headers {
        let name = h.name.as_bytes();
        if name.is_empty() || name.len() > 255 {
            out.truncate(start);
            return Err(EventStreamError::HeaderTooLong);
        }
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        match &h.value {
            HeaderValue::Bool(true) => out.push(0),
            HeaderValue::Bool(false) => out.push(1),
            HeaderValue::Byte(v) => {
                out.push(2);
                out.push(v.cast_unsigned());
            }
            HeaderValue::Int16(v) => {
                out.push(3);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int32(v) => {
                out.push(4);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int64(v) => {
                out.push(5);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) | HeaderValue::String(v) => {
                if v.len() > i16::MAX as usize {
                    out.truncate(start);
                    return Err(EventStreamError::HeaderTooLong);
                }
                out.push(if matches!(h.value, HeaderValue::Bytes(_)) {
                    6
                } else {
                    7
                });
                out.extend_from_slice(&(v.len() as u16).to_be_bytes());
                out.extend_from_slice(v);
            }
            HeaderValue::Timestamp(v) => {
                out.push(8);
                out.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(u) => {
                out.push(9);
                out.extend_from_slice(u);
            }
        }
    }
    let headers_len = out.len() - start - 12;
    let total = headers_len + msg.payload.len() + MIN_MESSAGE_LEN;
    if headers_len > MAX_HEADERS_LEN || total > u32::MAX as usize {
        out.truncate(start);
        return Err(EventStreamError::HeadersLength(headers_len as u64));
    }
    out[start..start + 4].copy_from_slice(&(total as u32).to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&(headers_len as u32).to_be_bytes());
    let pcrc = crc32fast::hash(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&pcrc.to_be_bytes());
    out.extend_from_slice(&msg.payload);
    let mcrc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&mcrc.to_be_bytes());
    Ok(())
}

/// Encodes a Bedrock-style event: `:event-type`, `:content-type: application/json`,
/// `:message-type: event`, and the JSON payload.
pub fn encode_event(event_type: &str, payload: &[u8], out: &mut Vec<u8>) {
    encode_raw(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload,
        out,
    );
}

/// Encodes a Bedrock-style exception frame (`:message-type: exception`, `:exception-type`).
pub fn encode_exception(exception_type: &str, payload: &[u8], out: &mut Vec<u8>) {
    encode_raw(
        &[
            (":exception-type", exception_type),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        payload,
        out,
    );
}

/// Encodes string headers straight into `out` (no allocation per header).
fn encode_raw(headers: &[(&str, &str)], payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0u8; 12]);
    for (name, value) in headers {
        // Names and values here are short constants and event type names.
        let name = &name.as_bytes()[..name.len().min(255)];
        let value = &value.as_bytes()[..value.len().min(i16::MAX as usize)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.push(7);
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
    }
    let headers_len = out.len() - start - 12;
    let total = (headers_len + payload.len() + MIN_MESSAGE_LEN) as u32;
    out[start..start + 4].copy_from_slice(&total.to_be_bytes());
    out[start + 4..start + 8].copy_from_slice(&(headers_len as u32).to_be_bytes());
    let pcrc = crc32fast::hash(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&pcrc.to_be_bytes());
    out.extend_from_slice(payload);
    let mcrc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&mcrc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_every_header_type() {
        let msg = Message {
            headers: vec![
                Header {
                    name: "t".into(),
                    value: HeaderValue::Bool(true),
                },
                Header {
                    name: "f".into(),
                    value: HeaderValue::Bool(false),
                },
                Header {
                    name: "b".into(),
                    value: HeaderValue::Byte(-3),
                },
                Header {
                    name: "s".into(),
                    value: HeaderValue::Int16(-300),
                },
                Header {
                    name: "i".into(),
                    value: HeaderValue::Int32(1 << 20),
                },
                Header {
                    name: "l".into(),
                    value: HeaderValue::Int64(-1),
                },
                Header {
                    name: "y".into(),
                    value: HeaderValue::Bytes(Bytes::from_static(b"\0\x01")),
                },
                Header::string("str", "hello"),
                Header {
                    name: "ts".into(),
                    value: HeaderValue::Timestamp(8_675_309),
                },
                Header {
                    name: "u".into(),
                    value: HeaderValue::Uuid([7; 16]),
                },
            ],
            payload: Bytes::from_static(b"{}"),
        };
        let mut wire = Vec::new();
        encode(&msg, &mut wire).expect("encodes");
        for split in 0..wire.len() {
            let mut dec = Decoder::new();
            let mut out = Vec::new();
            dec.feed(&wire[..split], &mut out).expect("first part");
            dec.feed(&wire[split..], &mut out).expect("second part");
            dec.finish().expect("whole");
            assert_eq!(out, vec![msg.clone()]);
        }
    }

    #[test]
    fn bounds_are_checked_before_buffering() {
        let mut wire = Vec::new();
        encode_event("x", &[b'a'; 100], &mut wire);
        let mut dec = Decoder::with_max_message_len(64);
        let mut out = Vec::new();
        assert!(matches!(
            dec.feed(&wire[..12], &mut out),
            Err(EventStreamError::MessageLength(_))
        ));
        let mut dec = Decoder::new();
        dec.feed(&wire[..20], &mut out).expect("partial");
        assert!(matches!(dec.finish(), Err(EventStreamError::Truncated(20))));
    }
}
