use bytes::{BufMut, Bytes, BytesMut};

/// One Server-Sent Events block: the lines up to a blank line.
///
/// A decoded event remembers its original bytes; while it is not modified, encoding writes those
/// bytes back unchanged (so a stream passed through the gateway is byte-for-byte the stream the
/// upstream sent, comments, `data:` without a space and CRLF included). Any change through a
/// setter drops the original bytes and the event is encoded canonically
/// (`event: ...\ndata: ...\n\n`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) retry: Option<u64>,
    pub(crate) comments: Vec<String>,
    pub(crate) raw: Option<Bytes>,
}

impl SseEvent {
    /// An event with only data.
    pub fn data(data: impl Into<String>) -> Self {
        Self {
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// An event with a type and data.
    pub fn named(event: impl Into<String>, data: impl Into<String>) -> Self {
        Self {
            event: Some(event.into()),
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// A comment-only block (`: text`), as used for keep-alives.
    pub fn comment(text: impl Into<String>) -> Self {
        Self {
            comments: vec![text.into()],
            ..Self::default()
        }
    }

    /// The `event:` field.
    pub fn event_type(&self) -> Option<&str> {
        self.event.as_deref()
    }

    /// The data (several `data:` lines joined with `\n`); `None` when the block has no data line
    /// (a comment or keep-alive), which per the SSE spec dispatches no event.
    pub fn data_str(&self) -> Option<&str> {
        self.data.as_deref()
    }

    /// The `id:` field.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The `retry:` field.
    pub fn retry(&self) -> Option<u64> {
        self.retry
    }

    /// The comment lines (without the leading colon).
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    /// Whether this is OpenAI's end marker `data: [DONE]`.
    pub fn is_done(&self) -> bool {
        self.data.as_deref().map(str::trim) == Some("[DONE]")
    }

    /// The original bytes, while the event is unmodified.
    pub fn raw(&self) -> Option<&Bytes> {
        self.raw.as_ref()
    }

    /// Replaces the data.
    pub fn set_data(&mut self, data: impl Into<String>) {
        self.data = Some(data.into());
        self.raw = None;
    }

    /// Replaces the event type.
    pub fn set_event_type(&mut self, event: Option<String>) {
        self.event = event;
        self.raw = None;
    }

    /// Parses the data as JSON into `T`.
    pub fn json<'a, T: serde::Deserialize<'a>>(&'a self) -> Option<Result<T, serde_json::Error>> {
        self.data.as_deref().map(serde_json::from_str)
    }

    /// Appends the encoded event to `out`: the original bytes if unmodified, else the canonical
    /// form.
    pub fn encode_into(&self, out: &mut BytesMut) {
        if let Some(raw) = &self.raw {
            out.extend_from_slice(raw);
            return;
        }
        for c in &self.comments {
            put_line(out, b":", c);
        }
        if let Some(e) = &self.event {
            put_line(out, b"event: ", e);
        }
        if let Some(id) = &self.id {
            put_line(out, b"id: ", id);
        }
        if let Some(r) = self.retry {
            put_line(out, b"retry: ", &r.to_string());
        }
        if let Some(d) = &self.data {
            for line in d.split('\n') {
                put_line(out, b"data: ", line);
            }
        }
        out.put_u8(b'\n');
    }

    /// The encoded event.
    pub fn to_bytes(&self) -> Bytes {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let mut out = BytesMut::with_capacity(self.data.as_ref().map_or(16, |d| d.len() + 16));
        self.encode_into(&mut out);
        out.freeze()
    }

    /// The same event encoded canonically, ignoring the original bytes.
    pub fn to_canonical_bytes(&self) -> Bytes {
        let mut c = self.clone();
        c.raw = None;
        c.to_bytes()
    }
}

fn put_line(out: &mut BytesMut, prefix: &[u8], value: &str) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(value.as_bytes());
    out.put_u8(b'\n');
}
