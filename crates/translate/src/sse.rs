//! A small incremental `text/event-stream` reader (bounded), and writers.

use crate::Error;

/// An incremental SSE reader: bytes in, `(event name, data)` pairs out.
#[derive(Debug)]
pub(crate) struct SseReader {
    buf: Vec<u8>,
    /// Where unparsed bytes start in `buf`.
    pos: usize,
    event: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    max_event: usize,
    /// A `\r` ended the last line: skip a `\n` that follows.
    skip_lf: bool,
}

impl SseReader {
    pub(crate) fn new(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            event: Vec::new(),
            data: Vec::new(),
            has_data: false,
            max_event,
            skip_lf: false,
        }
    }

    /// Feeds bytes; calls `f(event, data)` for every complete event.
    pub(crate) fn feed<F>(&mut self, input: &[u8], mut f: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Error>,
    {
        self.buf.extend_from_slice(input);
        loop {
            let rest = &self.buf[self.pos..];
            if self.skip_lf && !rest.is_empty() {
                self.skip_lf = false;
                if rest[0] == b'\n' {
                    self.pos += 1;
                    continue;
                }
            }
            let Some(end) = rest.iter().position(|&b| b == b'\n' || b == b'\r') else {
                break;
            };
            let cr = rest[end] == b'\r';
            let line_start = self.pos;
            self.pos += end + 1;
            if cr {
                self.skip_lf = true;
            }
            let line = &self.buf[line_start..line_start + end];
            if line.is_empty() {
                if self.has_data {
                    f(&self.event, &self.data)?;
                }
                self.event.clear();
                self.data.clear();
                self.has_data = false;
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (name, value) = match line.iter().position(|&b| b == b':') {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &b""[..]),
            };
            match name {
                b"data" => {
                    if self.has_data {
                        self.data.push(b'\n');
                    }
                    self.data.extend_from_slice(value);
                    self.has_data = true;
                    if self.data.len() > self.max_event {
                        return Err(Error::Upstream(format!(
                            "a stream event exceeds {} bytes",
                            self.max_event
                        )));
                    }
                }
                b"event" => {
                    self.event.clear();
                    self.event.extend_from_slice(&value[..value.len().min(256)]);
                }
                _ => {}
            }
        }
        if self.buf.len() - self.pos > self.max_event {
            return Err(Error::Upstream(format!(
                "a stream line exceeds {} bytes",
                self.max_event
            )));
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        Ok(())
    }

    /// Ends the stream: an event not terminated by a blank line is still delivered.
    pub(crate) fn finish<F>(&mut self, f: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Error>,
    {
        if self.pos < self.buf.len() {
            self.feed(b"\n", |_, _| Ok(()))?;
        }
        let mut f = f;
        if self.has_data {
            self.has_data = false;
            let data = std::mem::take(&mut self.data);
            let event = std::mem::take(&mut self.event);
            f(&event, &data)?;
        }
        Ok(())
    }
}

/// Writes `event: name\ndata: json\n\n`.
pub(crate) fn write_event<T: serde::Serialize + ?Sized>(
    out: &mut Vec<u8>,
    event: Option<&str>,
    value: &T,
) {
    if let Some(e) = event {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(e.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"data: ");
    // Serializing plain structs and maps of strings into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&[u8]]) -> Vec<(String, String)> {
        let mut r = SseReader::new(1 << 20);
        let mut out = Vec::new();
        for i in input {
            r.feed(i, |e, d| {
                out.push((
                    String::from_utf8_lossy(e).into_owned(),
                    String::from_utf8_lossy(d).into_owned(),
                ));
                Ok(())
            })
            .expect("feeds");
        }
        r.finish(|e, d| {
            out.push((
                String::from_utf8_lossy(e).into_owned(),
                String::from_utf8_lossy(d).into_owned(),
            ));
            Ok(())
        })
        .expect("finishes");
        out
    }

    #[test]
    fn splits_anywhere_and_line_endings() {
        let s =
            b"event: a\r\ndata: {\"x\":1}\r\n\r\n: comment\nevent:b\ndata:2\ndata: 3\n\ndata: last";
        let whole = events(&[s]);
        assert_eq!(
            whole,
            vec![
                ("a".into(), "{\"x\":1}".into()),
                ("b".into(), "2\n3".into()),
                (String::new(), "last".into())
            ]
        );
        for i in 0..s.len() {
            assert_eq!(events(&[&s[..i], &s[i..]]), whole, "split at {i}");
        }
    }

    #[test]
    fn bounded() {
        let mut r = SseReader::new(8);
        assert!(r.feed(b"data: 0123456789\n", |_, _| Ok(())).is_err());
        let mut r = SseReader::new(8);
        assert!(r.feed(b"data: 0123456789", |_, _| Ok(())).is_err());
    }
}
