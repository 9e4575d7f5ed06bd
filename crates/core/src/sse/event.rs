use std::sync::OnceLock;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// One Server-Sent Events block: the lines up to a blank line.
///
/// A decoded event remembers its original bytes; while it is not modified, encoding writes those
/// bytes back unchanged (so a stream passed through the gateway is byte-for-byte the stream the
/// upstream sent, comments, `data:` without a space and CRLF included). Any change through a
/// setter drops the original bytes and the event is encoded canonically
/// (`event: ...\ndata: ...\n\n`).
///
/// The data's JSON is parsed at most once, on first use of [`SseEvent::json`], and travels with
/// the event: the stream processors of a pipeline hand the event on, so however many of them read
/// its JSON, it is parsed once (as [`ResponseBody::json`](crate::pipeline::ResponseBody::json)
/// does for whole bodies). Replacing the data forgets the parse; a clone carries a copy of it.
#[derive(Clone, Default)]
pub struct SseEvent {
    pub(crate) event: Option<String>,
    pub(crate) data: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) retry: Option<u64>,
    pub(crate) comments: Vec<String>,
    pub(crate) raw: Option<Bytes>,
    /// The data parsed as JSON (`None` inside: not JSON), once someone asked.
    parsed: OnceLock<Option<Value>>,
}

impl PartialEq for SseEvent {
    /// Events are equal when their fields and original bytes are; the cached parse is not
    /// compared (it follows from the data).
    fn eq(&self, other: &Self) -> bool {
        self.event == other.event
            && self.data == other.data
            && self.id == other.id
            && self.retry == other.retry
            && self.comments == other.comments
            && self.raw == other.raw
    }
}

impl Eq for SseEvent {}

impl std::fmt::Debug for SseEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SseEvent")
            .field("event", &self.event)
            .field("data", &self.data)
            .field("id", &self.id)
            .field("retry", &self.retry)
            .field("comments", &self.comments)
            .field("raw", &self.raw)
            .field("parsed", &self.parsed.get().is_some())
            .finish()
    }
}

thread_local! {
    /// JSON parses of event data on this thread (see [`crate::sse::json_parse_count`]).
    static JSON_PARSES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// How many times [`SseEvent::json`] has parsed an event's data on this thread.
pub(crate) fn json_parse_count() -> u64 {
    JSON_PARSES.with(std::cell::Cell::get)
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

    /// Replaces the data (and forgets its parse).
    pub fn set_data(&mut self, data: impl Into<String>) {
        self.data = Some(data.into());
        self.raw = None;
        self.parsed = OnceLock::new();
    }

    /// Replaces the data with `json` serialised, keeping `json` as its parse: the processors
    /// after this one read it without parsing again.
    pub fn set_json(&mut self, json: Value) {
        self.data = Some(json.to_string());
        self.raw = None;
        self.parsed = OnceLock::from(Some(json));
    }

    /// Replaces the data with `data` and its parse with `json`, for a processor that edits the
    /// text and its parse alike (to keep the text's bytes, which [`SseEvent::set_json`] would
    /// re-serialise). `json` must be what `data` parses to (checked in debug builds).
    pub fn set_data_and_json(&mut self, data: impl Into<String>, json: Value) {
        let data = data.into();
        debug_assert_eq!(
            serde_json::from_str::<Value>(&data).ok().as_ref(),
            Some(&json),
            "set_data_and_json: the parse does not match the data"
        );
        self.data = Some(data);
        self.raw = None;
        self.parsed = OnceLock::from(Some(json));
    }

    /// Replaces the event type.
    pub fn set_event_type(&mut self, event: Option<String>) {
        self.event = event;
        self.raw = None;
    }

    /// The data as JSON, parsed on first use and kept with the event; `None` when the event has
    /// no data or its data is not JSON (`[DONE]`, a keep-alive).
    pub fn json(&self) -> Option<&Value> {
        self.parsed
            .get_or_init(|| {
                let data = self.data.as_deref()?;
                JSON_PARSES.with(|n| n.set(n.get().wrapping_add(1)));
                serde_json::from_str(data).ok()
            })
            .as_ref()
    }

    /// Takes the data's JSON out of the event (parsing it first if no one had), to edit it and
    /// give it back with [`SseEvent::set_json`] or [`SseEvent::set_data_and_json`]; until then
    /// the event parses its data again if asked.
    pub fn take_json(&mut self) -> Option<Value> {
        let _ = self.json();
        self.parsed.take().flatten()
    }

    /// Whether the data's JSON was parsed already (by [`SseEvent::json`], or given by
    /// [`SseEvent::set_json`]).
    pub fn is_json_parsed(&self) -> bool {
        self.parsed.get().is_some()
    }

    /// The data as `T`: from the shared parse of [`SseEvent::json`] (no second parse of the
    /// text); `None` when the event has no data. When the data is not JSON, the error is the
    /// parser's (with its line and column).
    pub fn json_as<'a, T: serde::Deserialize<'a>>(
        &'a self,
    ) -> Option<Result<T, serde_json::Error>> {
        let data = self.data.as_deref()?;
        Some(match self.json() {
            Some(v) => T::deserialize(v),
            None => serde_json::from_str(data),
        })
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
        let c = Self {
            event: self.event.clone(),
            data: self.data.clone(),
            id: self.id.clone(),
            retry: self.retry,
            comments: self.comments.clone(),
            raw: None,
            parsed: OnceLock::new(),
        };
        c.to_bytes()
    }
}

fn put_line(out: &mut BytesMut, prefix: &[u8], value: &str) {
    out.extend_from_slice(prefix);
    out.extend_from_slice(value.as_bytes());
    out.put_u8(b'\n');
}
