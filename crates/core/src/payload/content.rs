//! Message content shared by the OpenAI and Anthropic formats: a plain string or a list of parts.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};

/// Message content: a plain string, or an array of typed parts (`{"type":"text","text":...}`,
/// images, tool results, ...). Unknown part fields are preserved.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq)]
pub enum MessageContent {
    /// `"content": "..."`.
    Text(String),
    /// `"content": [{"type": ...}, ...]`.
    Parts(Vec<ContentPart>),
}

impl MessageContent {
    /// Calls `f` with every piece of text in this content, including text nested in tool results.
    pub fn for_each_text<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        match self {
            Self::Text(s) => f(s),
            Self::Parts(parts) => {
                for p in parts {
                    p.for_each_text(f);
                }
            }
        }
    }

    /// Calls `f` with a mutable reference to every piece of text in this content.
    pub fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        match self {
            Self::Text(s) => f(s),
            Self::Parts(parts) => {
                for p in parts {
                    p.for_each_text_mut(f);
                }
            }
        }
    }

    /// The text of all parts joined with newlines (allocation-free for plain strings).
    pub fn joined_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Self::Text(s) => std::borrow::Cow::Borrowed(s),
            Self::Parts(_) => {
                let mut out = String::new();
                self.for_each_text(&mut |t| {
                    if !out.is_empty() {
                        out.push('\n');
                    }
                    out.push_str(t);
                });
                std::borrow::Cow::Owned(out)
            }
        }
    }
}

impl Serialize for MessageContent {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Text(t) => s.serialize_str(t),
            Self::Parts(p) => p.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for MessageContent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MessageContent;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of content parts")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(v.to_owned()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(MessageContent::Text(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut parts = Vec::with_capacity(seq.size_hint().unwrap_or(2));
                while let Some(p) = seq.next_element()? {
                    parts.push(p);
                }
                Ok(MessageContent::Parts(parts))
            }
        }
        d.deserialize_any(V)
    }
}

/// One typed part of a content array. `text` is typed because every building block reads it;
/// everything else (`image_url`, `input`, `content` of tool results, `cache_control`, ...) is
/// kept as it came in `extra`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentPart {
    /// The part's `type` (`text`, `image_url`, `input_text`, `tool_use`, `tool_result`, ...).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The part's text, for text parts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Every other field, preserved.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl ContentPart {
    fn for_each_text<'a>(&'a self, f: &mut dyn FnMut(&'a str)) {
        if let Some(t) = &self.text {
            f(t);
        }
        // Anthropic tool_result blocks and OpenAI refusal parts carry text elsewhere.
        if let Some(v) = self.extra.get("content") {
            value_texts(v, f);
        }
        if let Some(Value::String(r)) = self.extra.get("refusal") {
            f(r);
        }
    }

    fn for_each_text_mut(&mut self, f: &mut dyn FnMut(&mut String)) {
        if let Some(t) = &mut self.text {
            f(t);
        }
        if let Some(v) = self.extra.get_mut("content") {
            value_texts_mut(v, f);
        }
        if let Some(Value::String(r)) = self.extra.get_mut("refusal") {
            f(r);
        }
    }
}

/// Text inside a loosely typed JSON value: a string, or an array of parts with `text` fields
/// (recursively through `content`).
pub(crate) fn value_texts<'a>(v: &'a Value, f: &mut dyn FnMut(&'a str)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => {
            for i in items {
                value_texts(i, f);
            }
        }
        Value::Object(o) => {
            if let Some(Value::String(t)) = o.get("text") {
                f(t);
            }
            if let Some(c) = o.get("content") {
                value_texts(c, f);
            }
            if let Some(Value::String(a)) = o.get("output") {
                f(a);
            }
        }
        _ => {}
    }
}

/// Mutable twin of [`value_texts`].
pub(crate) fn value_texts_mut(v: &mut Value, f: &mut dyn FnMut(&mut String)) {
    match v {
        Value::String(s) => f(s),
        Value::Array(items) => {
            for i in items {
                value_texts_mut(i, f);
            }
        }
        Value::Object(o) => {
            if let Some(Value::String(t)) = o.get_mut("text") {
                f(t);
            }
            if let Some(c) = o.get_mut("content") {
                value_texts_mut(c, f);
            }
            if let Some(Value::String(a)) = o.get_mut("output") {
                f(a);
            }
        }
        _ => {}
    }
}
