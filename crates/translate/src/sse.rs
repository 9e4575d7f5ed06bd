//! A small incremental `text/event-stream` reader (bounded), and writers.

use crate::Error;

/// An incremental SSE reader: bytes in, `(event name, data)` pairs out. A one-line `data:`
/// field (the common case) is handed out straight from the input buffer, without a copy.
#[derive(Debug)]
pub(crate) struct SseReader {
    /// A line cut by the end of the last input.
    buf: Vec<u8>,
    event: Vec<u8>,
    /// The data, once it is more than one line or outlives a `feed`.
    data: Vec<u8>,
    /// The data of the event so far, when it is one line of the bytes being read.
    data_range: Option<(usize, usize)>,
    has_data: bool,
    max_event: usize,
    /// A `\r` ended the last line: skip a `\n` that follows.
    skip_lf: bool,
}

impl SseReader {
    pub(crate) fn new(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            event: Vec::new(),
            data: Vec::new(),
            data_range: None,
            has_data: false,
            max_event,
            skip_lf: false,
        }
    }

    /// Feeds bytes; calls `f(event, data)` for every complete event. Whole lines are read
    /// straight from `input`; only a line cut by the end of `input` is copied.
    pub(crate) fn feed<F>(&mut self, input: &[u8], mut f: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Error>,
    {
        let mut input = input;
        if !self.buf.is_empty() {
            // Complete the cut line first.
            let Some(nl) = memchr::memchr2(b'\n', b'\r', input) else {
                self.buf.extend_from_slice(input);
                return self.check_line();
            };
            self.buf.extend_from_slice(&input[..=nl]);
            input = &input[nl + 1..];
            let buf = std::mem::take(&mut self.buf);
            let r = self.lines(&buf, &mut f);
            self.buf = buf;
            self.buf.clear();
            r?;
        }
        let used = self.lines(input, &mut f)?;
        self.buf.extend_from_slice(&input[used..]);
        self.check_line()
    }

    fn check_line(&self) -> Result<(), Error> {
        if self.buf.len() > self.max_event {
            return Err(Error::Upstream(format!(
                "a stream line exceeds {} bytes",
                self.max_event
            )));
        }
        Ok(())
    }

    /// Reads the whole lines of `bytes`; returns how many bytes they took. A one-line data
    /// field still pending at the end is copied out (`bytes` does not outlive the call).
    fn lines<F>(&mut self, bytes: &[u8], f: &mut F) -> Result<usize, Error>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Error>,
    {
        let mut pos = 0;
        loop {
            let rest = &bytes[pos..];
            if self.skip_lf && !rest.is_empty() {
                self.skip_lf = false;
                if rest[0] == b'\n' {
                    pos += 1;
                    continue;
                }
            }
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                break;
            };
            let cr = rest[end] == b'\r';
            let line_start = pos;
            pos += end + 1;
            if cr {
                self.skip_lf = true;
            }
            let line = &bytes[line_start..line_start + end];
            if line.is_empty() {
                if self.has_data {
                    match self.data_range.take() {
                        Some((a, b)) => f(&self.event, &bytes[a..b])?,
                        None => f(&self.event, &self.data)?,
                    }
                }
                self.event.clear();
                self.data.clear();
                self.has_data = false;
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (name_len, value_start) = match memchr::memchr(b':', line) {
                Some(i) => (
                    i,
                    if line.get(i + 1) == Some(&b' ') {
                        i + 2
                    } else {
                        i + 1
                    },
                ),
                None => (line.len(), line.len()),
            };
            let (vs, ve) = (line_start + value_start, line_start + end);
            match &line[..name_len] {
                b"data" => {
                    if self.has_data {
                        if let Some((a, b)) = self.data_range.take() {
                            self.data.clear();
                            self.data.extend_from_slice(&bytes[a..b]);
                        }
                        self.data.push(b'\n');
                        self.data.extend_from_slice(&bytes[vs..ve]);
                    } else {
                        self.data_range = Some((vs, ve));
                    }
                    self.has_data = true;
                    let len = self.data_range.map_or(self.data.len(), |(a, b)| b - a);
                    if len > self.max_event {
                        return Err(Error::Upstream(format!(
                            "a stream event exceeds {} bytes",
                            self.max_event
                        )));
                    }
                }
                b"event" => {
                    self.event.clear();
                    self.event.extend_from_slice(&bytes[vs..ve.min(vs + 256)]);
                }
                _ => {}
            }
        }
        if let Some((a, b)) = self.data_range.take() {
            self.data.clear();
            self.data.extend_from_slice(&bytes[a..b]);
        }
        Ok(pos)
    }

    /// Ends the stream: an event not terminated by a blank line is still delivered.
    pub(crate) fn finish<F>(&mut self, f: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &[u8]) -> Result<(), Error>,
    {
        let mut f = f;
        if !self.buf.is_empty() {
            self.feed(b"\n", &mut f)?;
        }
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
    let _ = crate::json_out::to_writer(out, value);
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
