use bytes::{Bytes, BytesMut};

use super::SseEvent;

/// The default bound on one event's size: 1 MiB.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 1024 * 1024;

/// Why a stream could not be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// One event grew past the bound before its blank line arrived.
    #[error("an SSE event exceeds the maximum size of {max} bytes")]
    EventTooLarge {
        /// The bound in bytes.
        max: usize,
    },
    /// The stream ended in the middle of an event.
    #[error("the SSE stream ended in the middle of an event ({len} bytes left over)")]
    Truncated {
        /// How many bytes were left.
        len: usize,
    },
}

/// An incremental Server-Sent Events decoder.
///
/// Feed it chunks as they arrive, in any split: events cut across chunks, `data:` with and without
/// the space after the colon, multi-line data, comments, `event:`/`id:`/`retry:` lines, and LF,
/// CRLF or CR line ends are all handled. Each complete block comes out as an [`SseEvent`] that
/// keeps its original bytes, so concatenating the `raw` of every event (and the bytes returned by
/// [`SseDecoder::finish`]) gives back the input exactly.
///
/// ```
/// use infergate_core::sse::SseDecoder;
///
/// let mut dec = SseDecoder::new();
/// let mut events = Vec::new();
/// dec.decode(b"data: {\"a\":", &mut events).unwrap();
/// assert!(events.is_empty());
/// dec.decode(b"1}\n\ndata:[DONE]\n\n", &mut events).unwrap();
/// assert_eq!(events[0].data_str(), Some("{\"a\":1}"));
/// assert!(events[1].is_done());
/// ```
#[derive(Debug)]
pub struct SseDecoder {
    buf: BytesMut,
    /// Where scanning resumes.
    pos: usize,
    /// Whether the current block has a non-blank line yet.
    has_content: bool,
    max_event_size: usize,
    first_block: bool,
}

impl Default for SseDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl SseDecoder {
    /// A decoder with the default event size bound.
    pub fn new() -> Self {
        Self::with_max_event_size(DEFAULT_MAX_EVENT_SIZE)
    }

    /// A decoder with a custom event size bound.
    pub fn with_max_event_size(max_event_size: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            pos: 0,
            has_content: false,
            max_event_size,
            first_block: true,
        }
    }

    /// Bytes held while waiting for the end of an event.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Decodes `chunk`, appending each completed event to `out`.
    pub fn decode(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        self.scan(out, false)
    }

    /// Ends the stream. A last block that lacks only its blank line is completed and returned
    /// as an event; anything else left over is an error carrying the leftover bytes' length
    /// (read them with [`SseDecoder::take_remaining`] to pass them on unchanged).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.scan(out, true)?;
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.buf.ends_with(b"\n") || self.buf.ends_with(b"\r") {
            // Every line is complete; only the closing blank line is missing. Dispatch the block
            // as line-based SDK readers do (a block of blank lines comes out with no data).
            let raw = self.buf.split().freeze();
            self.pos = 0;
            self.has_content = false;
            out.push(parse_block(raw, std::mem::take(&mut self.first_block)));
            return Ok(());
        }
        Err(SseError::Truncated {
            len: self.buf.len(),
        })
    }

    /// Takes the bytes still buffered (after an error), to forward them unchanged.
    pub fn take_remaining(&mut self) -> Bytes {
        self.pos = 0;
        self.has_content = false;
        self.buf.split().freeze()
    }

    fn scan(&mut self, out: &mut Vec<SseEvent>, at_eof: bool) -> Result<(), SseError> {
        loop {
            let hay = &self.buf[self.pos..];
            let Some(off) = memchr::memchr2(b'\n', b'\r', hay) else {
                self.pos = self.buf.len();
                break;
            };
            let i = self.pos + off;
            let next = if self.buf[i] == b'\r' {
                match self.buf.get(i + 1) {
                    Some(b'\n') => i + 2,
                    Some(_) => i + 1,
                    None if at_eof => i + 1,
                    None => {
                        // A CR at the end of the chunk: wait to see whether LF follows.
                        self.pos = i;
                        break;
                    }
                }
            } else {
                i + 1
            };
            let line_start = self.line_start(i);
            if line_start == i {
                // A blank line.
                if self.has_content {
                    let raw = self.buf.split_to(next).freeze();
                    self.pos = 0;
                    self.has_content = false;
                    out.push(parse_block(raw, std::mem::take(&mut self.first_block)));
                    continue;
                }
            } else {
                self.has_content = true;
            }
            self.pos = next;
        }
        if self.buf.len() > self.max_event_size {
            return Err(SseError::EventTooLarge {
                max: self.max_event_size,
            });
        }
        Ok(())
    }

    /// The start of the line that ends at `end`: just after the previous line end in the buffer.
    fn line_start(&self, end: usize) -> usize {
        memchr::memrchr2(b'\n', b'\r', &self.buf[..end]).map_or(0, |p| p + 1)
    }
}

/// Parses one block (the raw bytes up to and including its blank line).
fn parse_block(raw: Bytes, strip_bom: bool) -> SseEvent {
    let mut ev = SseEvent::default();
    let mut text: &[u8] = &raw;
    if strip_bom && text.starts_with(b"\xEF\xBB\xBF") {
        text = &text[3..];
    }
    while !text.is_empty() {
        let (line, rest) = match memchr::memchr2(b'\n', b'\r', text) {
            Some(i) => {
                let skip = if text[i] == b'\r' && text.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                (&text[..i], &text[i + skip..])
            }
            None => (text, &[][..]),
        };
        text = rest;
        if line.is_empty() {
            continue;
        }
        if line[0] == b':' {
            ev.comments.push(lossy(&line[1..]));
            continue;
        }
        let (field, value) = match memchr::memchr(b':', line) {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => match &mut ev.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(&String::from_utf8_lossy(value));
                }
                None => ev.data = Some(lossy(value)),
            },
            b"event" => ev.event = Some(lossy(value)),
            b"id" if !value.contains(&0) => ev.id = Some(lossy(value)),
            b"retry" => {
                if let Ok(n) = std::str::from_utf8(value).unwrap_or("x").parse() {
                    ev.retry = Some(n);
                }
            }
            _ => {}
        }
    }
    ev.raw = Some(raw);
    ev
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut d = SseDecoder::new();
        let mut out = vec![];
        for c in chunks {
            d.decode(c, &mut out).unwrap();
        }
        d.finish(&mut out).unwrap();
        out
    }

    #[test]
    fn fields_and_variants() {
        let evs = decode_all(&[
            b": keep-alive\n\nevent: message_start\ndata:{\"a\":1}\n\n",
            b"data: line1\r\ndata: line2\r\n\r\nid: 7\nretry: 1500\ndata\n\n",
        ]);
        assert_eq!(evs.len(), 4);
        assert_eq!(evs[0].comments(), [" keep-alive"]);
        assert_eq!(evs[0].data_str(), None);
        assert_eq!(evs[1].event_type(), Some("message_start"));
        assert_eq!(evs[1].data_str(), Some("{\"a\":1}"));
        assert_eq!(evs[2].data_str(), Some("line1\nline2"));
        assert_eq!(evs[3].id(), Some("7"));
        assert_eq!(evs[3].retry(), Some(1500));
        assert_eq!(evs[3].data_str(), Some(""));
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let input: &[u8] =
            b"event: a\r\ndata: x\r\n\r\ndata: y\rdata: z\r\r: c\n\ndata: [DONE]\n\n";
        let whole = decode_all(&[input]);
        assert_eq!(whole.len(), 4);
        for i in 0..input.len() {
            for j in i..input.len() {
                let parts = decode_all(&[&input[..i], &input[i..j], &input[j..]]);
                assert_eq!(parts, whole, "split at {i},{j}");
            }
        }
        let concat: Vec<u8> = whole
            .iter()
            .flat_map(|e| e.raw().unwrap().to_vec())
            .collect();
        assert_eq!(concat, input);
    }

    #[test]
    fn bounds_and_truncation() {
        let mut d = SseDecoder::with_max_event_size(8);
        let mut out = vec![];
        assert_eq!(
            d.decode(b"data: 0123456789", &mut out),
            Err(SseError::EventTooLarge { max: 8 })
        );
        let mut d = SseDecoder::new();
        d.decode(b"data: {\"partial", &mut out).unwrap();
        assert_eq!(d.finish(&mut out), Err(SseError::Truncated { len: 15 }));
        assert_eq!(&d.take_remaining()[..], b"data: {\"partial");
        // A final event missing only its blank line is still delivered.
        let mut d = SseDecoder::new();
        let mut out = vec![];
        d.decode(b"data: last\n", &mut out).unwrap();
        d.finish(&mut out).unwrap();
        assert_eq!(out[0].data_str(), Some("last"));
    }

    #[test]
    fn canonical_encoding() {
        let mut e = SseEvent::named("error", "{\"x\":1}\nsecond");
        assert_eq!(
            &e.to_bytes()[..],
            b"event: error\ndata: {\"x\":1}\ndata: second\n\n"
        );
        e.set_data("d");
        assert_eq!(&e.to_bytes()[..], b"event: error\ndata: d\n\n");
    }
}
