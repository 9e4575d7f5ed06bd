//! Where the text is: every text-bearing part of every API's requests, responses and stream
//! events.
//!
//! Request text comes from [`Payload::for_each_text`] plus what it does not visit (tool and
//! function descriptions, Anthropic `document` sources and `thinking`, Responses reasoning
//! summaries, refusals, custom tool inputs, bare `input_text` items, OpenAI assistant
//! `refusal`/`reasoning_content`). Response text is located as JSON pointers into the parsed
//! body or event ([`response_texts`], [`event_plan`]), so that one walk serves both finding and
//! redacting.

use infergate_core::ApiKind;
use infergate_core::payload::{MessageContent, Payload, TextSource};
use serde_json::{Map, Value};

/// The role under which tool and function definitions (their descriptions, and the descriptions
/// in their parameter schemas) are inspected.
pub const TOOL_DEFINITION_ROLE: &str = "tool_definition";

/// Every text of a request: `(role, source, text)`.
pub(crate) fn request_texts<'a>(p: &'a Payload, f: &mut dyn FnMut(&'a str, TextSource, &'a str)) {
    // Anthropic tool_use inputs are walked here in full (the payload's walk stops at nested
    // objects), so the payload's own visit of them is skipped.
    let messages = matches!(p, Payload::Messages(_));
    p.for_each_text(&mut |t| {
        if !(messages && t.source == TextSource::ToolArguments) {
            f(t.role, t.source, t.text);
        }
    });
    match p {
        Payload::Chat(r) => {
            for m in &r.messages {
                let role = m.role.as_str();
                chat_message_extra(&m.extra, &mut |src, t| f(role, src, t));
            }
            tool_definitions(&r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        Payload::Messages(r) => {
            for m in &r.messages {
                let role = m.role.as_str();
                if let MessageContent::Parts(parts) = &m.content {
                    for part in parts {
                        anthropic_extra(part.kind.as_deref(), &part.extra, 0, &mut |src, t| {
                            f(role, src, t);
                        });
                    }
                }
            }
            tool_definitions(&r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        Payload::Responses(r) => {
            if let Some(Value::Array(items)) = &r.input {
                for item in items {
                    let role = item.get("role").and_then(Value::as_str).unwrap_or("user");
                    responses_item_extra(item, &mut |src, t| f(role, src, t));
                }
            }
            tool_definitions(&r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        // Legacy completions (`/v1/completions`): the prompt, a string or a list of them.
        Payload::Other(v) => match v.get("prompt") {
            Some(Value::String(s)) => f("user", TextSource::Content, s),
            Some(Value::Array(a)) => {
                for s in a.iter().filter_map(Value::as_str) {
                    f("user", TextSource::Content, s);
                }
            }
            _ => {}
        },
        _ => {}
    }
}

/// Mutable twin of [`request_texts`]: the same texts, in the same order.
pub(crate) fn request_texts_mut(p: &mut Payload, f: &mut dyn FnMut(&str, TextSource, &mut String)) {
    let messages = matches!(p, Payload::Messages(_));
    p.for_each_text_mut(&mut |role, src, t| {
        if !(messages && src == TextSource::ToolArguments) {
            f(role, src, t);
        }
    });
    match p {
        Payload::Chat(r) => {
            for m in &mut r.messages {
                let role = m.role.as_str();
                chat_message_extra_mut(&mut m.extra, &mut |src, t| f(role, src, t));
            }
            tool_definitions_mut(&mut r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        Payload::Messages(r) => {
            for m in &mut r.messages {
                let role = m.role.as_str();
                if let MessageContent::Parts(parts) = &mut m.content {
                    for part in parts {
                        anthropic_extra_mut(
                            part.kind.as_deref(),
                            &mut part.extra,
                            0,
                            &mut |src, t| f(role, src, t),
                        );
                    }
                }
            }
            tool_definitions_mut(&mut r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        Payload::Responses(r) => {
            if let Some(Value::Array(items)) = &mut r.input {
                for item in items {
                    let role = item
                        .get("role")
                        .and_then(Value::as_str)
                        .unwrap_or("user")
                        .to_owned();
                    responses_item_extra_mut(item, &mut |src, t| f(&role, src, t));
                }
            }
            tool_definitions_mut(&mut r.extra, &mut |t| {
                f(TOOL_DEFINITION_ROLE, TextSource::System, t);
            });
        }
        Payload::Other(v) => match v.get_mut("prompt") {
            Some(Value::String(s)) => f("user", TextSource::Content, s),
            Some(Value::Array(a)) => {
                for v in a {
                    if let Value::String(s) = v {
                        f("user", TextSource::Content, s);
                    }
                }
            }
            _ => {}
        },
        _ => {}
    }
}

fn str_field<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str)
}

fn str_field_mut<'a>(o: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut String> {
    match o.get_mut(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// OpenAI assistant messages: `refusal`, `reasoning_content`/`reasoning`, legacy
/// `function_call.arguments`.
fn chat_message_extra<'a>(o: &'a Map<String, Value>, f: &mut dyn FnMut(TextSource, &'a str)) {
    for key in ["refusal", "reasoning_content", "reasoning"] {
        if let Some(t) = str_field(o, key) {
            f(TextSource::Content, t);
        }
    }
    if let Some(Value::Object(fc)) = o.get("function_call")
        && let Some(t) = str_field(fc, "arguments")
    {
        f(TextSource::ToolArguments, t);
    }
}

fn chat_message_extra_mut(o: &mut Map<String, Value>, f: &mut dyn FnMut(TextSource, &mut String)) {
    for key in ["refusal", "reasoning_content", "reasoning"] {
        if let Some(t) = str_field_mut(o, key) {
            f(TextSource::Content, t);
        }
    }
    if let Some(Value::Object(fc)) = o.get_mut("function_call")
        && let Some(t) = str_field_mut(fc, "arguments")
    {
        f(TextSource::ToolArguments, t);
    }
}

/// Tool definitions: `tools[].description` (Anthropic, Responses), `tools[].function.description`
/// (Chat), legacy `functions[].description`, and every `description` in their parameter
/// schemas.
fn tool_definitions<'a>(extra: &'a Map<String, Value>, f: &mut dyn FnMut(&'a str)) {
    for key in ["tools", "functions"] {
        for tool in extra
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            descriptions(tool, 0, f);
        }
    }
}

fn tool_definitions_mut(extra: &mut Map<String, Value>, f: &mut dyn FnMut(&mut String)) {
    for key in ["tools", "functions"] {
        if let Some(Value::Array(tools)) = extra.get_mut(key) {
            for tool in tools {
                descriptions_mut(tool, 0, f);
            }
        }
    }
}

/// How deep a tool definition is searched for descriptions (schemas nest; hostile ones nest
/// without end).
const MAX_SCHEMA_DEPTH: usize = 32;

fn descriptions<'a>(v: &'a Value, depth: usize, f: &mut dyn FnMut(&'a str)) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, v) in o {
                match v {
                    Value::String(s) if k == "description" => f(s),
                    Value::Object(_) | Value::Array(_) => descriptions(v, depth + 1, f),
                    _ => {}
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                descriptions(v, depth + 1, f);
            }
        }
        _ => {}
    }
}

fn descriptions_mut(v: &mut Value, depth: usize, f: &mut dyn FnMut(&mut String)) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                match v {
                    Value::String(s) if k == "description" => f(s),
                    Value::Object(_) | Value::Array(_) => descriptions_mut(v, depth + 1, f),
                    _ => {}
                }
            }
        }
        Value::Array(a) => {
            for v in a {
                descriptions_mut(v, depth + 1, f);
            }
        }
        _ => {}
    }
}

/// Anthropic content blocks, beyond what the payload visits: `document` sources with text
/// (`source.data` of a `text` source, the text blocks of a `content` source), their `title`
/// and `context`; `thinking` text; every string leaf of a `tool_use` input, however deep (the
/// payload's own walk is not used for it: it stops at nested objects); documents inside
/// `tool_result` content.
fn anthropic_extra<'a>(
    kind: Option<&str>,
    o: &'a Map<String, Value>,
    depth: usize,
    f: &mut dyn FnMut(TextSource, &'a str),
) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match kind {
        Some("document") => {
            if let Some(Value::Object(src)) = o.get("source") {
                if str_field(src, "type") == Some("text")
                    && let Some(t) = str_field(src, "data")
                {
                    f(TextSource::Content, t);
                }
                if let Some(Value::Array(blocks)) = src.get("content") {
                    for b in blocks {
                        if let Some(t) = b.get("text").and_then(Value::as_str) {
                            f(TextSource::Content, t);
                        }
                    }
                }
            }
            for key in ["title", "context"] {
                if let Some(t) = str_field(o, key) {
                    f(TextSource::Content, t);
                }
            }
        }
        Some("thinking") => {
            if let Some(t) = str_field(o, "thinking") {
                f(TextSource::Content, t);
            }
        }
        Some("tool_use") => {
            if let Some(input) = o.get("input") {
                leaves(input, 0, &mut |t| f(TextSource::ToolArguments, t));
            }
        }
        Some("tool_result") => {
            for b in o
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Value::Object(bo) = b {
                    let kind = bo.get("type").and_then(Value::as_str);
                    anthropic_extra(kind, bo, depth + 1, f);
                }
            }
        }
        _ => {}
    }
}

fn anthropic_extra_mut(
    kind: Option<&str>,
    o: &mut Map<String, Value>,
    depth: usize,
    f: &mut dyn FnMut(TextSource, &mut String),
) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match kind {
        Some("document") => {
            if let Some(Value::Object(src)) = o.get_mut("source") {
                if str_field(src, "type") == Some("text")
                    && let Some(t) = str_field_mut(src, "data")
                {
                    f(TextSource::Content, t);
                }
                if let Some(Value::Array(blocks)) = src.get_mut("content") {
                    for b in blocks {
                        if let Some(Value::String(t)) = b.get_mut("text") {
                            f(TextSource::Content, t);
                        }
                    }
                }
            }
            for key in ["title", "context"] {
                if let Some(t) = str_field_mut(o, key) {
                    f(TextSource::Content, t);
                }
            }
        }
        Some("thinking") => {
            if let Some(t) = str_field_mut(o, "thinking") {
                f(TextSource::Content, t);
            }
        }
        Some("tool_use") => {
            if let Some(input) = o.get_mut("input") {
                leaves_mut(input, 0, &mut |t| f(TextSource::ToolArguments, t));
            }
        }
        Some("tool_result") => {
            if let Some(Value::Array(blocks)) = o.get_mut("content") {
                for b in blocks {
                    if let Value::Object(bo) = b {
                        let kind = bo.get("type").and_then(Value::as_str).map(str::to_owned);
                        anthropic_extra_mut(kind.as_deref(), bo, depth + 1, f);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Every string leaf of `v`.
fn leaves<'a>(v: &'a Value, depth: usize, f: &mut dyn FnMut(&'a str)) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter().for_each(|v| leaves(v, depth + 1, f)),
        Value::Object(o) => o.values().for_each(|v| leaves(v, depth + 1, f)),
        _ => {}
    }
}

fn leaves_mut(v: &mut Value, depth: usize, f: &mut dyn FnMut(&mut String)) {
    if depth > MAX_SCHEMA_DEPTH {
        return;
    }
    match v {
        Value::String(s) => f(s),
        Value::Array(a) => a.iter_mut().for_each(|v| leaves_mut(v, depth + 1, f)),
        Value::Object(o) => o.values_mut().for_each(|v| leaves_mut(v, depth + 1, f)),
        _ => {}
    }
}

/// Responses input items, beyond what the payload visits (`content`, `arguments`, `output`):
/// a bare `input_text` item's `text`, `refusal` parts, reasoning `summary[].text`, a custom
/// tool call's `input`, a tool output given as parts (`output[].text`).
fn responses_item_extra<'a>(item: &'a Value, f: &mut dyn FnMut(TextSource, &'a str)) {
    let Some(o) = item.as_object() else { return };
    if let Some(t) = str_field(o, "text") {
        f(TextSource::Content, t);
    }
    if let Some(t) = str_field(o, "input") {
        f(TextSource::ToolArguments, t);
    }
    for part in o
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = part.get("refusal").and_then(Value::as_str) {
            f(TextSource::Content, t);
        }
    }
    for s in o
        .get("summary")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = s.get("text").and_then(Value::as_str) {
            f(TextSource::Content, t);
        }
    }
    // A tool output given as content parts.
    for part in o
        .get("output")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(t) = part.get("text").and_then(Value::as_str) {
            f(TextSource::ToolArguments, t);
        }
    }
}

fn responses_item_extra_mut(item: &mut Value, f: &mut dyn FnMut(TextSource, &mut String)) {
    let Some(o) = item.as_object_mut() else {
        return;
    };
    if let Some(t) = str_field_mut(o, "text") {
        f(TextSource::Content, t);
    }
    if let Some(t) = str_field_mut(o, "input") {
        f(TextSource::ToolArguments, t);
    }
    if let Some(Value::Array(parts)) = o.get_mut("content") {
        for part in parts {
            if let Some(Value::String(t)) = part.get_mut("refusal") {
                f(TextSource::Content, t);
            }
        }
    }
    if let Some(Value::Array(summary)) = o.get_mut("summary") {
        for s in summary {
            if let Some(Value::String(t)) = s.get_mut("text") {
                f(TextSource::Content, t);
            }
        }
    }
    if let Some(Value::Array(parts)) = o.get_mut("output") {
        for part in parts {
            if let Some(Value::String(t)) = part.get_mut("text") {
                f(TextSource::ToolArguments, t);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Responses and stream events: JSON pointers.

/// How a located text is to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Plain text.
    Plain,
    /// Text holding JSON (tool-call arguments): masks go inside its strings.
    Json,
}

/// A located text: a JSON pointer and how to read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub(crate) ptr: String,
    pub(crate) kind: Kind,
}

/// A JSON-pointer token for `key`.
fn token(key: &str) -> std::borrow::Cow<'_, str> {
    if key.contains(['~', '/']) {
        std::borrow::Cow::Owned(key.replace('~', "~0").replace('/', "~1"))
    } else {
        std::borrow::Cow::Borrowed(key)
    }
}

struct Walk {
    out: Vec<Loc>,
}

impl Walk {
    fn push(&mut self, v: &Value, ptr: String, kind: Kind) {
        if v.is_string() {
            self.out.push(Loc { ptr, kind });
        }
    }

    fn field(&mut self, o: &Value, ptr: &str, key: &str, kind: Kind) {
        if let Some(v) = o.get(key) {
            self.push(v, format!("{ptr}/{key}"), kind);
        }
    }

    /// Every string leaf of `v` (Anthropic `tool_use.input`).
    fn leaves(&mut self, v: &Value, ptr: String, depth: usize) {
        if depth > MAX_SCHEMA_DEPTH {
            return;
        }
        match v {
            Value::String(_) => self.out.push(Loc {
                ptr,
                kind: Kind::Plain,
            }),
            Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    self.leaves(v, format!("{ptr}/{i}"), depth + 1);
                }
            }
            Value::Object(o) => {
                for (k, v) in o {
                    self.leaves(v, format!("{ptr}/{}", token(k)), depth + 1);
                }
            }
            _ => {}
        }
    }

    /// An OpenAI chat message (or a legacy completion choice).
    fn chat_message(&mut self, m: &Value, ptr: &str) {
        match m.get("content") {
            Some(Value::String(_)) => self.field(m, ptr, "content", Kind::Plain),
            Some(Value::Array(parts)) => {
                for (i, p) in parts.iter().enumerate() {
                    self.part(p, &format!("{ptr}/content/{i}"));
                }
            }
            _ => {}
        }
        for key in ["refusal", "reasoning_content", "reasoning", "text"] {
            self.field(m, ptr, key, Kind::Plain);
        }
        for (j, tc) in m
            .get("tool_calls")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if let Some(f) = tc.get("function") {
                self.field(
                    f,
                    &format!("{ptr}/tool_calls/{j}/function"),
                    "arguments",
                    Kind::Json,
                );
            }
        }
        if let Some(f) = m.get("function_call") {
            self.field(f, &format!("{ptr}/function_call"), "arguments", Kind::Json);
        }
        if let Some(a) = m.get("audio") {
            self.field(a, &format!("{ptr}/audio"), "transcript", Kind::Plain);
        }
    }

    /// A content part (`text`, `refusal`).
    fn part(&mut self, p: &Value, ptr: &str) {
        self.field(p, ptr, "text", Kind::Plain);
        self.field(p, ptr, "refusal", Kind::Plain);
    }

    /// A Responses output item: message parts, reasoning summaries and content, tool-call
    /// arguments, custom tool input, tool output.
    fn item(&mut self, item: &Value, ptr: &str) {
        for key in ["content", "summary"] {
            for (i, p) in item
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                self.part(p, &format!("{ptr}/{key}/{i}"));
            }
        }
        self.field(item, ptr, "arguments", Kind::Json);
        self.field(item, ptr, "input", Kind::Plain);
        self.field(item, ptr, "output", Kind::Plain);
        self.field(item, ptr, "text", Kind::Plain);
    }

    /// A Responses response object.
    fn response(&mut self, r: &Value, ptr: &str) {
        for (i, item) in r
            .get("output")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.item(item, &format!("{ptr}/output/{i}"));
        }
    }

    /// An Anthropic content block: `text`, `thinking`, `tool_use.input` leaves, nested
    /// `content` (tool results), citations' `cited_text`.
    fn block(&mut self, b: &Value, ptr: &str, depth: usize) {
        if depth > MAX_SCHEMA_DEPTH {
            return;
        }
        self.field(b, ptr, "text", Kind::Plain);
        self.field(b, ptr, "thinking", Kind::Plain);
        if let Some(input) = b.get("input") {
            self.leaves(input, format!("{ptr}/input"), 0);
        }
        match b.get("content") {
            Some(Value::String(_)) => self.field(b, ptr, "content", Kind::Plain),
            Some(Value::Array(blocks)) => {
                for (i, c) in blocks.iter().enumerate() {
                    self.block(c, &format!("{ptr}/content/{i}"), depth + 1);
                }
            }
            _ => {}
        }
        for (i, c) in b
            .get("citations")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.field(
                c,
                &format!("{ptr}/citations/{i}"),
                "cited_text",
                Kind::Plain,
            );
        }
    }

    /// An Anthropic message.
    fn message(&mut self, m: &Value, ptr: &str) {
        for (i, b) in m
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            self.block(b, &format!("{ptr}/content/{i}"), 0);
        }
    }
}

/// Every text of a non-streamed response body of `api`: content, refusals, reasoning and
/// thinking, tool-call arguments (Anthropic `tool_use.input`: its string leaves), of every
/// choice.
pub(crate) fn response_texts(api: ApiKind, v: &Value) -> Vec<Loc> {
    let mut w = Walk { out: Vec::new() };
    match api {
        ApiKind::AnthropicMessages => w.message(v, ""),
        ApiKind::Responses => w.response(v, ""),
        ApiKind::Embeddings => {}
        _ => {
            for (i, ch) in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let ptr = format!("/choices/{i}");
                if let Some(m) = ch.get("message") {
                    w.chat_message(m, &format!("{ptr}/message"));
                }
                w.field(ch, &ptr, "text", Kind::Plain);
            }
        }
    }
    w.out
}

/// Which stream of text a delta continues.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ChanKey {
    /// Chat: the choice index; Responses: the output index; Anthropic: the block index.
    pub(crate) a: u32,
    /// Chat: the tool-call index; Responses: the content (or summary) index.
    pub(crate) b: u32,
    /// What kind of text.
    pub(crate) kind: ChanKind,
}

/// The kind of a streamed text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum ChanKind {
    Content,
    Refusal,
    ReasoningContent,
    Reasoning,
    ReasoningSummary,
    ToolArgs,
    FunctionCall,
    CustomInput,
    Thinking,
    PartialJson,
}

impl ChanKind {
    /// Whether the text is JSON (fragments of it).
    pub(crate) fn json(self) -> bool {
        matches!(
            self,
            Self::ToolArgs | Self::FunctionCall | Self::PartialJson
        )
    }
}

/// Which channels an event closes (their text is complete).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Close {
    /// Every channel whose `a` is this.
    A(u32),
    /// Every channel.
    All,
}

/// What the guardrail does with one stream event.
#[derive(Debug, Default)]
pub(crate) struct EventPlan {
    /// Deltas: the channel and the pointer of their text.
    pub(crate) deltas: Vec<(ChanKey, String)>,
    /// Whole texts repeated or carried by the event (`*.done`, `response.completed`, ...).
    pub(crate) full: Vec<Loc>,
    /// Channels the event closes (after its deltas are taken).
    pub(crate) close: Vec<Close>,
}

fn idx(v: &Value, key: &str) -> u32 {
    v.get(key)
        .and_then(Value::as_u64)
        .map_or(0, |n| u32::try_from(n).unwrap_or(u32::MAX))
}

/// Where the text of a stream event of `api` is.
#[allow(clippy::many_single_char_names)]
pub(crate) fn event_plan(api: ApiKind, v: &Value) -> EventPlan {
    let mut p = EventPlan::default();
    let mut w = Walk { out: Vec::new() };
    match api {
        ApiKind::AnthropicMessages => {
            let a = idx(v, "index");
            match v.get("type").and_then(Value::as_str) {
                Some("content_block_delta") => {
                    let d = v.get("delta");
                    let (kind, field) = match d.and_then(|d| d.get("type")).and_then(Value::as_str)
                    {
                        Some("text_delta") => (Some(ChanKind::Content), "text"),
                        Some("thinking_delta") => (Some(ChanKind::Thinking), "thinking"),
                        Some("input_json_delta") => (Some(ChanKind::PartialJson), "partial_json"),
                        Some("citations_delta") => {
                            if let Some(c) = d.and_then(|d| d.get("citation")) {
                                w.field(c, "/delta/citation", "cited_text", Kind::Plain);
                            }
                            (None, "")
                        }
                        _ => (None, ""),
                    };
                    if let Some(kind) = kind
                        && d.and_then(|d| d.get(field)).is_some_and(Value::is_string)
                    {
                        p.deltas
                            .push((ChanKey { a, b: 0, kind }, format!("/delta/{field}")));
                    }
                }
                Some("content_block_start") => {
                    if let Some(b) = v.get("content_block") {
                        w.block(b, "/content_block", 0);
                    }
                }
                Some("content_block_stop") => p.close.push(Close::A(a)),
                Some("message_start") => {
                    if let Some(m) = v.get("message") {
                        w.message(m, "/message");
                    }
                }
                Some("message_stop") => p.close.push(Close::All),
                _ => {}
            }
        }
        ApiKind::Responses => {
            let a = idx(v, "output_index");
            let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
            let delta = |kind: ChanKind, b: u32, p: &mut EventPlan| {
                if v.get("delta").is_some_and(Value::is_string) {
                    p.deltas.push((ChanKey { a, b, kind }, "/delta".to_owned()));
                }
            };
            match ty {
                "response.output_text.delta" => {
                    delta(ChanKind::Content, idx(v, "content_index"), &mut p);
                }
                "response.refusal.delta" => {
                    delta(ChanKind::Refusal, idx(v, "content_index"), &mut p);
                }
                "response.function_call_arguments.delta" | "response.mcp_call_arguments.delta" => {
                    delta(ChanKind::ToolArgs, 0, &mut p);
                }
                "response.custom_tool_call_input.delta" => delta(ChanKind::CustomInput, 0, &mut p),
                "response.reasoning_summary_text.delta" => {
                    delta(ChanKind::ReasoningSummary, idx(v, "summary_index"), &mut p);
                }
                "response.reasoning_text.delta" => {
                    delta(ChanKind::Reasoning, idx(v, "content_index"), &mut p);
                }
                "response.output_text.done"
                | "response.reasoning_summary_text.done"
                | "response.reasoning_text.done" => {
                    w.field(v, "", "text", Kind::Plain);
                    p.close.push(Close::A(a));
                }
                "response.refusal.done" => {
                    w.field(v, "", "refusal", Kind::Plain);
                    p.close.push(Close::A(a));
                }
                "response.function_call_arguments.done" | "response.mcp_call_arguments.done" => {
                    w.field(v, "", "arguments", Kind::Json);
                    p.close.push(Close::A(a));
                }
                "response.custom_tool_call_input.done" => {
                    w.field(v, "", "input", Kind::Plain);
                    p.close.push(Close::A(a));
                }
                "response.content_part.added"
                | "response.content_part.done"
                | "response.reasoning_summary_part.added"
                | "response.reasoning_summary_part.done" => {
                    if let Some(part) = v.get("part") {
                        w.part(part, "/part");
                    }
                    if ty.ends_with("done") {
                        p.close.push(Close::A(a));
                    }
                }
                "response.output_item.added" | "response.output_item.done" => {
                    if let Some(item) = v.get("item") {
                        w.item(item, "/item");
                    }
                    if ty.ends_with("done") {
                        p.close.push(Close::A(a));
                    }
                }
                _ if ty.starts_with("response.")
                    && v.get("response").is_some_and(Value::is_object) =>
                {
                    if let Some(r) = v.get("response") {
                        w.response(r, "/response");
                    }
                    if matches!(
                        ty,
                        "response.completed" | "response.incomplete" | "response.failed"
                    ) {
                        p.close.push(Close::All);
                    }
                }
                _ => {}
            }
        }
        ApiKind::Embeddings => {}
        _ => {
            for (i, ch) in v
                .get("choices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                let a = ch
                    .get("index")
                    .and_then(Value::as_u64)
                    .map_or(u32::try_from(i).unwrap_or(u32::MAX), |n| {
                        u32::try_from(n).unwrap_or(u32::MAX)
                    });
                let base = format!("/choices/{i}");
                if let Some(d) = ch.get("delta") {
                    for (key, kind) in [
                        ("content", ChanKind::Content),
                        ("refusal", ChanKind::Refusal),
                        ("reasoning_content", ChanKind::ReasoningContent),
                        ("reasoning", ChanKind::Reasoning),
                    ] {
                        if d.get(key).is_some_and(Value::is_string) {
                            p.deltas
                                .push((ChanKey { a, b: 0, kind }, format!("{base}/delta/{key}")));
                        }
                    }
                    for (j, tc) in d
                        .get("tool_calls")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .enumerate()
                    {
                        if tc
                            .pointer("/function/arguments")
                            .is_some_and(Value::is_string)
                        {
                            let b = tc
                                .get("index")
                                .and_then(Value::as_u64)
                                .map_or(u32::try_from(j).unwrap_or(u32::MAX), |n| {
                                    u32::try_from(n).unwrap_or(u32::MAX)
                                });
                            p.deltas.push((
                                ChanKey {
                                    a,
                                    b,
                                    kind: ChanKind::ToolArgs,
                                },
                                format!("{base}/delta/tool_calls/{j}/function/arguments"),
                            ));
                        }
                    }
                    if d.pointer("/function_call/arguments")
                        .is_some_and(Value::is_string)
                    {
                        p.deltas.push((
                            ChanKey {
                                a,
                                b: 0,
                                kind: ChanKind::FunctionCall,
                            },
                            format!("{base}/delta/function_call/arguments"),
                        ));
                    }
                }
                // Legacy completions stream their text in `choices[].text`.
                if ch.get("text").is_some_and(Value::is_string) {
                    p.deltas.push((
                        ChanKey {
                            a,
                            b: 0,
                            kind: ChanKind::Content,
                        },
                        format!("{base}/text"),
                    ));
                }
                // Some providers repeat a whole message in a chunk.
                if let Some(m) = ch.get("message") {
                    w.chat_message(m, &format!("{base}/message"));
                }
                if ch.get("finish_reason").is_some_and(|f| !f.is_null()) {
                    p.close.push(Close::A(a));
                }
            }
        }
    }
    p.full = w.out;
    p
}

/// Fields that carry structure, identifiers or opaque tokens, never text a person wrote:
/// left out of [`other_string_leaves`].
const STRUCTURAL_FIELDS: &[&str] = &[
    "id",
    "object",
    "model",
    "type",
    "role",
    "finish_reason",
    "stop_reason",
    "system_fingerprint",
    "call_id",
    "tool_call_id",
    "tool_use_id",
    "signature",
    "encrypted_content",
    "status",
    "service_tier",
];

/// Appends every string leaf of `v` that `locs` does not already hold (structural fields
/// aside), so that an answer of an unexpected shape (another API's, an error, a field this
/// version does not know) is still checked. Strings holding JSON objects or arrays are read as
/// JSON.
pub(crate) fn other_string_leaves(v: &Value, locs: &mut Vec<Loc>) {
    fn walk(
        v: &Value,
        ptr: &mut String,
        known: &std::collections::HashSet<&str>,
        out: &mut Vec<Loc>,
    ) {
        match v {
            Value::String(s) if !known.contains(ptr.as_str()) => {
                let t = s.trim_start();
                let kind = if t.starts_with('{') || t.starts_with('[') {
                    Kind::Json
                } else {
                    Kind::Plain
                };
                out.push(Loc {
                    ptr: ptr.clone(),
                    kind,
                });
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    walk(x, ptr, known, out);
                    ptr.truncate(len);
                }
            }
            Value::Object(o) => {
                for (k, x) in o {
                    if x.is_string() && STRUCTURAL_FIELDS.contains(&k.as_str()) {
                        continue;
                    }
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&token(k));
                    walk(x, ptr, known, out);
                    ptr.truncate(len);
                }
            }
            _ => {}
        }
    }
    // The pointers already located, borrowed (no copy of each): the new ones go aside first.
    let known: std::collections::HashSet<&str> = locs.iter().map(|l| l.ptr.as_str()).collect();
    let mut ptr = String::new();
    let mut more = Vec::new();
    walk(v, &mut ptr, &known, &mut more);
    drop(known);
    locs.extend(more);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ptrs(locs: &[Loc]) -> Vec<&str> {
        locs.iter().map(|l| l.ptr.as_str()).collect()
    }

    #[test]
    fn request_walks_agree() {
        let body = json!({"model":"m","tools":[{"type":"function","function":{"name":"f","description":"D1",
            "parameters":{"type":"object","properties":{"q":{"type":"string","description":"D2"}}}}}],
            "messages":[{"role":"assistant","content":null,"refusal":"R","reasoning_content":"RC",
            "tool_calls":[{"id":"1","type":"function","function":{"name":"f","arguments":"{\"q\":\"A\"}"}}]}]});
        let mut p = Payload::parse(ApiKind::ChatCompletions, body.to_string().as_bytes()).unwrap();
        let mut seen = Vec::new();
        request_texts(&p, &mut |r, _, t| seen.push((r.to_owned(), t.to_owned())));
        let mut seen_mut = Vec::new();
        request_texts_mut(&mut p, &mut |r, _, t| {
            seen_mut.push((r.to_owned(), t.clone()));
        });
        assert_eq!(seen, seen_mut);
        let texts: Vec<&str> = seen.iter().map(|s| s.1.as_str()).collect();
        for t in ["D1", "D2", "R", "RC", "{\"q\":\"A\"}"] {
            assert!(texts.contains(&t), "{t} in {texts:?}");
        }
    }

    #[test]
    fn chat_response_every_choice() {
        let v = json!({"choices":[{"index":0,"message":{"content":"a","refusal":"r","reasoning_content":"t",
            "tool_calls":[{"function":{"arguments":"{}"}}]}},{"index":1,"message":{"content":[{"type":"text","text":"b"}]}}]});
        assert_eq!(
            ptrs(&response_texts(ApiKind::ChatCompletions, &v)),
            [
                "/choices/0/message/content",
                "/choices/0/message/refusal",
                "/choices/0/message/reasoning_content",
                "/choices/0/message/tool_calls/0/function/arguments",
                "/choices/1/message/content/0/text"
            ]
        );
    }
}
