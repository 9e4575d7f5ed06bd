//! The OpenAI Responses API (`/v1/responses`): requests, responses, SSE events and errors.
//!
//! Stateless use only: `previous_response_id`, `conversation` and stored items are fields this
//! crate cannot resolve (no I/O) and are refused for other protocols by name. A reasoning item's
//! summary is the reasoning text and its `encrypted_content` the signature, so reasoning comes
//! back on replay. The streamed `response.completed` event carries the whole output, as the API
//! defines it: the encoder keeps the answer's items for that last event.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::{
    Error, Options, Protocol, ProviderError,
    ir::{
        BlockKind, ChatRequest, ChatResponse, Effort, FinishReason, ImageSource, Message, Part,
        Reasoning, ResponseFormat, Role, StreamEvent, SystemPart, Tool, ToolChoice, Usage,
        UsageUpdate,
    },
    openai::{drop_cache_breakpoint, encode_system, function_fields, reasoning_effort},
    sse::{SseReader, write_event},
    util::{
        Obj, arr, bool_of, extra_fields, f64_of, lossy, obj, opt_str, parse_data_url,
        parse_request, parse_upstream, str_of, to_vec, tokens, u32_of,
    },
};

const P: Protocol = Protocol::OpenAiResponses;

// ---------------------------------------------------------------------------------------------
// Requests

/// Decodes a Responses request.
pub fn decode_request(body: &[u8], opts: &Options) -> Result<ChatRequest, Error> {
    let o = parse_request(body, opts)?;
    let mut r = ChatRequest::default();
    for (k, v) in &o {
        match k.as_str() {
            "model" => str_of(v, "model")?.clone_into(&mut r.model),
            "instructions" => {
                if let Some(s) = v.as_str() {
                    r.system.push(SystemPart::new(s));
                }
            }
            "input" => match v {
                Value::String(s) => r
                    .messages
                    .push(Message::new(Role::User, vec![Part::text(s.clone())])),
                Value::Array(items) => decode_items(items, &mut r, opts)?,
                _ => return Err(Error::invalid("input", "expected a string or an array")),
            },
            "tools" => {
                for (i, t) in arr(v, k)?.iter().enumerate() {
                    let p = format!("tools[{i}]");
                    if t.get("type").and_then(Value::as_str) != Some("function") {
                        return Err(Error::unsupported(
                            format!("{p}.type"),
                            Protocol::Anthropic,
                            "only function tools are translated",
                        ));
                    }
                    let t = obj(t, &p)?;
                    let mut tool = Tool::new(
                        str_of(t.get("name").unwrap_or(&Value::Null), &format!("{p}.name"))?,
                        t.get("parameters")
                            .filter(|v| !v.is_null())
                            .cloned()
                            .unwrap_or_else(|| json!({"type": "object", "properties": {}})),
                    );
                    tool.description = opt_str(t, "description");
                    tool.strict = t.get("strict").and_then(Value::as_bool);
                    r.tools.push(tool);
                }
            }
            "tool_choice" => {
                r.tool_choice = match v {
                    Value::Null => None,
                    Value::String(s) => Some(match s.as_str() {
                        "auto" => ToolChoice::Auto,
                        "none" => ToolChoice::None,
                        "required" => ToolChoice::Required,
                        _ => return Err(Error::invalid("tool_choice", "unknown tool_choice")),
                    }),
                    Value::Object(t)
                        if t.get("type").and_then(Value::as_str) == Some("function") =>
                    {
                        Some(ToolChoice::Named(
                            str_of(t.get("name").unwrap_or(&Value::Null), "tool_choice.name")?
                                .to_owned(),
                        ))
                    }
                    _ => {
                        return Err(Error::unsupported(
                            "tool_choice",
                            Protocol::Anthropic,
                            "only function tool choices are translated",
                        ));
                    }
                };
            }
            "parallel_tool_calls" => r.parallel_tool_calls = bool_of(v, k)?,
            "text" => {
                if let Some(f) = v.get("format").filter(|f| !f.is_null()) {
                    r.response_format = Some(match f.get("type").and_then(Value::as_str) {
                        Some("text") => ResponseFormat::Text,
                        Some("json_object") => ResponseFormat::JsonObject,
                        Some("json_schema") => ResponseFormat::JsonSchema {
                            name: f.get("name").and_then(Value::as_str).map(str::to_owned),
                            description: f
                                .get("description")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                            schema: f.get("schema").cloned().unwrap_or_else(|| json!({})),
                            strict: f.get("strict").and_then(Value::as_bool),
                        },
                        _ => return Err(Error::invalid("text.format.type", "unknown format")),
                    });
                }
                if v.as_object()
                    .is_some_and(|t| t.keys().any(|k| k != "format"))
                {
                    r.extra.push(("text".into(), v.clone()));
                }
            }
            "max_output_tokens" => r.max_tokens = u32_of(v, k)?,
            "temperature" => r.temperature = f64_of(v, k)?,
            "top_p" => r.top_p = f64_of(v, k)?,
            "stream" => r.stream = bool_of(v, k)?.unwrap_or(false),
            "user" => r.user = v.as_str().map(str::to_owned),
            "reasoning" => {
                if let Some(e) = v.get("effort").and_then(Value::as_str) {
                    let effort = Effort::parse(e)
                        .ok_or_else(|| Error::invalid("reasoning.effort", "unknown effort"))?;
                    r.reasoning = Some(Reasoning {
                        effort: Some(effort),
                        ..Reasoning::default()
                    });
                }
                if v.get("summary").is_some_and(|s| !s.is_null()) {
                    r.extra
                        .push(("reasoning.summary".into(), v["summary"].clone()));
                }
            }
            "store" if v == &Value::Bool(false) => {}
            // Encrypted reasoning is always asked for (see `encode_request`).
            "include"
                if v.as_array()
                    .is_some_and(|a| a.iter().all(|x| x == "reasoning.encrypted_content")) => {}
            _ => r.extra.push((k.clone(), v.clone())),
        }
    }
    if !r.extra.is_empty() {
        r.extra_from = Some(P);
    }
    Ok(r)
}

fn decode_items(items: &[Value], r: &mut ChatRequest, opts: &Options) -> Result<(), Error> {
    for (i, it) in items.iter().enumerate() {
        let p = format!("input[{i}]");
        let ty = it.get("type").and_then(Value::as_str).unwrap_or("message");
        match ty {
            "message" => {
                let role = it.get("role").and_then(Value::as_str).unwrap_or("user");
                let content = decode_content(it.get("content").unwrap_or(&Value::Null), &p)?;
                match role {
                    "system" | "developer" => {
                        if !r.messages.is_empty() && !opts.allows("system") {
                            return Err(Error::invalid(
                                format!("{p}.role"),
                                "a system message after the conversation started cannot be translated (opt into `system` to move it into the system prompt)",
                            ));
                        }
                        for c in content {
                            match c {
                                Part::Text { text, .. } => r.system.push(SystemPart {
                                    text,
                                    developer: role == "developer",
                                    cache: None,
                                }),
                                _ => {
                                    return Err(Error::invalid(
                                        &p,
                                        "system messages hold text only",
                                    ));
                                }
                            }
                        }
                    }
                    "user" => push(r, Role::User, content),
                    "assistant" => push(r, Role::Assistant, content),
                    _ => return Err(Error::invalid(format!("{p}.role"), "unknown role")),
                }
            }
            "function_call" => push(
                r,
                Role::Assistant,
                vec![Part::ToolCall {
                    id: str_of(
                        it.get("call_id").unwrap_or(&Value::Null),
                        &format!("{p}.call_id"),
                    )?
                    .to_owned(),
                    name: str_of(it.get("name").unwrap_or(&Value::Null), &format!("{p}.name"))?
                        .to_owned(),
                    arguments: it
                        .get("arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    cache: None,
                }],
            ),
            "function_call_output" => {
                let content = match it.get("output") {
                    Some(Value::String(s)) => vec![Part::text(s.clone())],
                    Some(v @ Value::Array(_)) => decode_content(v, &p)?,
                    _ => {
                        return Err(Error::invalid(
                            format!("{p}.output"),
                            "expected a string or an array",
                        ));
                    }
                };
                let part = Part::ToolResult {
                    call_id: str_of(
                        it.get("call_id").unwrap_or(&Value::Null),
                        &format!("{p}.call_id"),
                    )?
                    .to_owned(),
                    name: None,
                    content,
                    is_error: false,
                    cache: None,
                };
                push(r, Role::User, vec![part]);
            }
            "reasoning" => push(r, Role::Assistant, vec![reasoning_part(it)]),
            other => {
                return Err(Error::unsupported(
                    format!("{p}.type"),
                    Protocol::Anthropic,
                    if other == "item_reference" {
                        "stored items cannot be resolved here"
                    } else {
                        "this input item is not translated"
                    },
                ));
            }
        }
    }
    Ok(())
}

/// A `reasoning` item (in a request's input or an answer's output) as a reasoning part: its
/// summary texts joined by blank lines, its `encrypted_content` as the signature.
fn reasoning_part(item: &Value) -> Part {
    let text = item
        .get("summary")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.get("text").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join("\n\n")
        })
        .unwrap_or_default();
    Part::Reasoning {
        text,
        signature: item
            .get("encrypted_content")
            .and_then(Value::as_str)
            .map(str::to_owned),
        redacted: None,
    }
}

/// Appends to the last message when it has the same role (items of one turn), else a new one.
fn push(r: &mut ChatRequest, role: Role, content: Vec<Part>) {
    match r.messages.last_mut() {
        Some(m)
            if m.role == role
                && (role == Role::Assistant
                    || content.iter().all(|p| matches!(p, Part::ToolResult { .. }))
                        && m.content
                            .iter()
                            .all(|p| matches!(p, Part::ToolResult { .. }))) =>
        {
            m.content.extend(content);
        }
        _ => r.messages.push(Message::new(role, content)),
    }
}

fn decode_content(v: &Value, p: &str) -> Result<Vec<Part>, Error> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(vec![Part::text(s.clone())]),
        Value::Array(a) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, c) in a.iter().enumerate() {
                let cp = format!("{p}.content[{i}]");
                match c.get("type").and_then(Value::as_str) {
                    Some("input_text" | "output_text" | "text") => out.push(Part::text(str_of(
                        c.get("text").unwrap_or(&Value::Null),
                        &cp,
                    )?)),
                    Some("refusal") => out.push(Part::text(
                        c.get("refusal").and_then(Value::as_str).unwrap_or(""),
                    )),
                    Some("input_image") => {
                        let url = c.get("image_url").and_then(Value::as_str).ok_or_else(|| {
                            Error::unsupported(
                                format!("{cp}.file_id"),
                                Protocol::Anthropic,
                                "stored files cannot be resolved here",
                            )
                        })?;
                        let source = match parse_data_url(url) {
                            Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                            None => ImageSource::Url(url.to_owned()),
                        };
                        let detail = c
                            .get("detail")
                            .and_then(Value::as_str)
                            .filter(|d| *d != "auto")
                            .map(str::to_owned);
                        out.push(Part::Image {
                            source,
                            detail,
                            cache: None,
                        });
                    }
                    _ => {
                        return Err(Error::unsupported(
                            cp,
                            Protocol::Anthropic,
                            "this content part is not translated",
                        ));
                    }
                }
            }
            Ok(out)
        }
        _ => Err(Error::invalid(
            format!("{p}.content"),
            "expected a string or an array",
        )),
    }
}

/// Encodes a Responses request (stateless: `store: false`).
pub fn encode_request(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    let mut o = Obj::new();
    o.insert("model".into(), r.model.clone().into());
    let mut input = Vec::with_capacity(r.messages.len() + r.system.len());
    encode_system(r, P, opts, &mut input)?;
    for (i, m) in r.messages.iter().enumerate() {
        let mut content = Vec::new();
        let flush = |content: &mut Vec<Value>, input: &mut Vec<Value>, role: &str| {
            if !content.is_empty() {
                input.push(
                    json!({"type": "message", "role": role, "content": std::mem::take(content)}),
                );
            }
        };
        let role = if m.role == Role::User {
            "user"
        } else {
            "assistant"
        };
        for (j, part) in m.content.iter().enumerate() {
            let pp = format!("messages[{i}].content[{j}]");
            if part.cache().is_some() {
                drop_cache_breakpoint(opts, P)?;
            }
            match part {
                Part::Text { text, .. } => content.push(json!({"type": if m.role == Role::User { "input_text" } else { "output_text" }, "text": text})),
                Part::Image { source, detail, .. } => {
                    if m.role != Role::User {
                        return Err(Error::invalid(pp, "an assistant message cannot hold an image"));
                    }
                    let url = match source {
                        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
                        ImageSource::Url(u) => u.clone(),
                    };
                    content.push(json!({"type": "input_image", "image_url": url, "detail": detail.as_deref().unwrap_or("auto")}));
                }
                Part::ToolCall { id, name, arguments, .. } => {
                    flush(&mut content, &mut input, role);
                    input.push(json!({"type": "function_call", "call_id": id, "name": name, "arguments": arguments}));
                }
                Part::ToolResult { call_id, content: c, is_error, .. } => {
                    flush(&mut content, &mut input, role);
                    if *is_error {
                        lossy(opts, "is_error", P, "Responses function outputs have no error flag")?;
                    }
                    let mut text = String::new();
                    for x in c {
                        match x {
                            Part::Text { text: t, .. } => text.push_str(t),
                            _ => return Err(Error::unsupported(pp, P, "function outputs hold text only here")),
                        }
                    }
                    input.push(json!({"type": "function_call_output", "call_id": call_id, "output": text}));
                }
                Part::Reasoning { text, signature, redacted } => {
                    if redacted.is_some() {
                        lossy(opts, "reasoning", P, "redacted reasoning has no Responses equivalent")?;
                        continue;
                    }
                    flush(&mut content, &mut input, role);
                    let mut item = json!({"type": "reasoning", "summary": if text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": text}]) }});
                    if let Some(s) = signature {
                        item["encrypted_content"] = s.clone().into();
                    }
                    input.push(item);
                }
            }
        }
        flush(&mut content, &mut input, role);
    }
    o.insert("input".into(), Value::Array(input));
    if !r.tools.is_empty() {
        let mut tools = Vec::with_capacity(r.tools.len());
        for t in &r.tools {
            // Responses flattens the function into the tool.
            let mut m = function_fields(t, P, opts)?;
            m.insert("type".into(), "function".into());
            tools.push(Value::Object(m));
        }
        o.insert("tools".into(), Value::Array(tools));
    }
    if let Some(tc) = &r.tool_choice {
        o.insert(
            "tool_choice".into(),
            match tc {
                ToolChoice::Auto => "auto".into(),
                ToolChoice::None => "none".into(),
                ToolChoice::Required => "required".into(),
                ToolChoice::Named(n) => json!({"type": "function", "name": n}),
            },
        );
    }
    if let Some(p) = r.parallel_tool_calls {
        o.insert("parallel_tool_calls".into(), p.into());
    }
    if let Some(rf) = &r.response_format {
        let f = match rf {
            ResponseFormat::Text => json!({"type": "text"}),
            ResponseFormat::JsonObject => json!({"type": "json_object"}),
            ResponseFormat::JsonSchema {
                name,
                description,
                schema,
                strict,
            } => {
                let mut f = json!({"type": "json_schema", "name": name.clone().unwrap_or_else(|| "response".into()), "schema": schema});
                if let Some(d) = description {
                    f["description"] = d.clone().into();
                }
                if let Some(s) = strict {
                    f["strict"] = (*s).into();
                }
                f
            }
        };
        o.insert("text".into(), json!({"format": f}));
    }
    if let Some(m) = r.max_tokens {
        o.insert("max_output_tokens".into(), m.into());
    }
    if let Some(t) = r.temperature {
        o.insert("temperature".into(), t.into());
    }
    if let Some(t) = r.top_p {
        o.insert("top_p".into(), t.into());
    }
    for (name, present) in [
        ("top_k", r.top_k.is_some()),
        ("seed", r.seed.is_some()),
        ("presence_penalty", r.presence_penalty.is_some()),
        ("frequency_penalty", r.frequency_penalty.is_some()),
    ] {
        if present {
            lossy(opts, name, P, "the Responses API has no such parameter")?;
        }
    }
    if !r.stop.is_empty() {
        lossy(opts, "stop", P, "the Responses API has no stop sequences")?;
    }
    if let Some(re) = &r.reasoning {
        let effort = reasoning_effort(re, P, opts)?;
        if let Some(e) = effort {
            o.insert("reasoning".into(), json!({"effort": e.as_str()}));
        }
    }
    if r.stream {
        o.insert("stream".into(), true.into());
    }
    if let Some(u) = &r.user {
        o.insert("user".into(), u.clone().into());
    }
    o.insert("store".into(), false.into());
    // Reasoning replays need the encrypted content back.
    o.insert("include".into(), json!(["reasoning.encrypted_content"]));
    let mut extra = Obj::new();
    extra_fields(r, P, opts, &mut extra)?;
    if let Some(s) = extra.remove("reasoning.summary")
        && let Some(Value::Object(re)) = o.get_mut("reasoning")
    {
        re.insert("summary".into(), s);
    }
    if let Some(Value::Object(t)) = extra.remove("text") {
        let fmt = o.remove("text");
        let mut t = t;
        if let Some(f) = fmt.and_then(|f| f.get("format").cloned()) {
            t.insert("format".into(), f);
        }
        o.insert("text".into(), Value::Object(t));
    }
    o.extend(extra);
    Ok(to_vec(&Value::Object(o)))
}

// ---------------------------------------------------------------------------------------------
// Responses

fn usage_from(u: &Value) -> Usage {
    Usage {
        input_tokens: tokens(u.get("input_tokens")),
        output_tokens: tokens(u.get("output_tokens")),
        cache_read_tokens: tokens(u.pointer("/input_tokens_details/cached_tokens")),
        cache_write_tokens: tokens(u.pointer("/input_tokens_details/cache_write_tokens")),
        reasoning_tokens: tokens(u.pointer("/output_tokens_details/reasoning_tokens")),
    }
}

fn usage_to(u: &Usage) -> Value {
    let mut details = json!({"cached_tokens": u.cache_read_tokens});
    if u.cache_write_tokens > 0 {
        details["cache_write_tokens"] = u.cache_write_tokens.into();
    }
    json!({
        "input_tokens": u.input_tokens,
        "input_tokens_details": details,
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total(),
    })
}

fn finish_of(resp: &Value, has_calls: bool) -> Option<FinishReason> {
    match resp.get("status").and_then(Value::as_str) {
        Some("completed") => Some(if has_calls {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        }),
        Some("incomplete") => Some(
            match resp
                .pointer("/incomplete_details/reason")
                .and_then(Value::as_str)
            {
                Some("max_output_tokens") => FinishReason::Length,
                Some("content_filter") => FinishReason::ContentFilter,
                Some(o) => FinishReason::Other(o.to_owned()),
                None => FinishReason::Other("incomplete".into()),
            },
        ),
        _ => None,
    }
}

fn decode_output(items: &[Value], out: &mut Vec<Part>) -> bool {
    let mut refusal = false;
    for it in items {
        match it.get("type").and_then(Value::as_str) {
            Some("message") => {
                for c in it
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    match c.get("type").and_then(Value::as_str) {
                        Some("output_text") => out.push(Part::text(
                            c.get("text").and_then(Value::as_str).unwrap_or(""),
                        )),
                        Some("refusal") => {
                            refusal = true;
                            out.push(Part::text(
                                c.get("refusal").and_then(Value::as_str).unwrap_or(""),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            Some("function_call") => out.push(Part::ToolCall {
                id: it
                    .get("call_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                name: it
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                arguments: it
                    .get("arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                cache: None,
            }),
            Some("reasoning") => out.push(reasoning_part(it)),
            _ => {}
        }
    }
    refusal
}

/// Decodes a Responses answer.
pub fn decode_response(body: &[u8], opts: &Options) -> Result<ChatResponse, Error> {
    let o = parse_upstream(body, opts)?;
    let v = Value::Object(o);
    let mut r = ChatResponse {
        id: v.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
        model: v
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        created: v.get("created_at").and_then(Value::as_u64),
        ..ChatResponse::default()
    };
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        r.usage = usage_from(u);
    }
    let refusal = decode_output(
        v.get("output")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice),
        &mut r.content,
    );
    let calls = r.content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    r.finish = finish_of(&v, calls);
    if refusal && r.finish == Some(FinishReason::Stop) {
        r.finish = Some(FinishReason::Refusal);
    }
    Ok(r)
}

fn status_of(f: Option<&FinishReason>) -> (&'static str, Value) {
    match f {
        Some(FinishReason::Length) => ("incomplete", json!({"reason": "max_output_tokens"})),
        Some(FinishReason::ContentFilter | FinishReason::Refusal) => {
            ("incomplete", json!({"reason": "content_filter"}))
        }
        _ => ("completed", Value::Null),
    }
}

fn output_items(content: &[Part], refusal: bool) -> Vec<Value> {
    let mut items = Vec::new();
    let mut texts: Vec<Value> = Vec::new();
    let flush = |texts: &mut Vec<Value>, items: &mut Vec<Value>| {
        if !texts.is_empty() {
            let n = items.len();
            items.push(json!({"type": "message", "id": format!("msg_{n}"), "status": "completed", "role": "assistant", "content": std::mem::take(texts)}));
        }
    };
    for p in content {
        match p {
            Part::Text { text, .. } if refusal => {
                texts.push(json!({"type": "refusal", "refusal": text}));
            }
            Part::Text { text, .. } => {
                texts.push(json!({"type": "output_text", "text": text, "annotations": []}));
            }
            Part::ToolCall {
                id,
                name,
                arguments,
                ..
            } => {
                flush(&mut texts, &mut items);
                let n = items.len();
                items.push(json!({"type": "function_call", "id": format!("fc_{n}"), "call_id": id, "name": name, "arguments": arguments, "status": "completed"}));
            }
            Part::Reasoning {
                text, signature, ..
            } => {
                flush(&mut texts, &mut items);
                let n = items.len();
                let mut it = json!({"type": "reasoning", "id": format!("rs_{n}"), "summary": if text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": text}]) }});
                if let Some(s) = signature {
                    it["encrypted_content"] = s.clone().into();
                }
                items.push(it);
            }
            Part::Image { .. } | Part::ToolResult { .. } => {}
        }
    }
    flush(&mut texts, &mut items);
    items
}

fn response_object(
    id: &str,
    model: &str,
    created: u64,
    status: &str,
    incomplete: Value,
    output: Vec<Value>,
    usage: Option<&Usage>,
) -> Value {
    let mut o = Obj::new();
    o.insert("id".into(), id.into());
    o.insert("object".into(), "response".into());
    o.insert("created_at".into(), created.into());
    o.insert("status".into(), status.into());
    o.insert("model".into(), model.into());
    o.insert("incomplete_details".into(), incomplete);
    o.insert("output".into(), Value::Array(output));
    o.insert("error".into(), Value::Null);
    o.insert("usage".into(), usage.map_or(Value::Null, usage_to));
    Value::Object(o)
}

/// Encodes a Responses answer.
pub fn encode_response(r: &ChatResponse, opts: &Options) -> Result<Vec<u8>, Error> {
    let (status, incomplete) = status_of(r.finish.as_ref());
    let output = output_items(&r.content, r.finish == Some(FinishReason::Refusal));
    Ok(to_vec(&response_object(
        &r.id,
        &r.model,
        r.created.unwrap_or(opts.created),
        status,
        incomplete,
        output,
        Some(&r.usage),
    )))
}

// ---------------------------------------------------------------------------------------------
// Errors: the Chat Completions shape.

/// Decodes an OpenAI error body.
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    crate::openai::decode_error(status, body)
}

/// Encodes an error the OpenAI way: (status, body).
pub fn encode_error(e: &ProviderError) -> (u16, Vec<u8>) {
    (e.kind.status_for(P), to_vec(&crate::openai::error_value(e)))
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
struct Ev<'a> {
    #[serde(borrow, rename = "type", default)]
    ty: Cow<'a, str>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    delta: Option<Cow<'a, str>>,
    #[serde(default)]
    item: Option<Value>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    message: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    code: Option<Cow<'a, str>>,
}

/// Responses SSE → IR events.
#[derive(Debug)]
pub struct StreamDecoder {
    sse: SseReader,
    started: bool,
    stopped: bool,
    next: usize,
    /// (output index, IR block, args or summary seen).
    open: Option<(u64, usize, bool)>,
    calls: usize,
}

impl StreamDecoder {
    /// A decoder.
    pub fn new(opts: &Options) -> Self {
        Self {
            sse: SseReader::new(opts.max_body_len),
            started: false,
            stopped: false,
            next: 0,
            open: None,
            calls: 0,
        }
    }

    /// Feeds upstream bytes.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        let mut sse = std::mem::replace(&mut self.sse, SseReader::new(0));
        let r = sse.feed(input, |_, data| self.on_event(data, out));
        self.sse = sse;
        r
    }

    /// Ends the upstream stream.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        let mut sse = std::mem::replace(&mut self.sse, SseReader::new(0));
        let r = sse.finish(|_, data| self.on_event(data, out));
        self.sse = sse;
        r?;
        if !self.stopped {
            return Err(Error::Upstream(
                "the stream ended before response.completed".into(),
            ));
        }
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((_, index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn start(&mut self, oi: u64, kind: BlockKind, out: &mut Vec<StreamEvent>) -> usize {
        self.close(out);
        let index = self.next;
        self.next += 1;
        out.push(StreamEvent::BlockStart { index, kind });
        self.open = Some((oi, index, false));
        index
    }

    fn block(&self, oi: Option<u64>) -> Option<usize> {
        self.open
            .filter(|(o, _, _)| Some(*o) == oi)
            .map(|(_, i, _)| i)
    }

    fn on_event(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        let ev: Ev<'_> = crate::util::from_json(data)
            .map_err(|e| Error::Upstream(format!("invalid event: {e}")))?;
        if !self.started && ev.ty != "error" {
            self.started = true;
            let r = ev.response.as_ref();
            out.push(StreamEvent::MessageStart {
                id: r
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                model: r
                    .and_then(|r| r.get("model"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            });
        }
        match ev.ty.as_ref() {
            "response.output_item.added" => {
                let oi = ev.output_index.unwrap_or(0);
                let item = ev.item.unwrap_or(Value::Null);
                match item.get("type").and_then(Value::as_str) {
                    Some("function_call") => {
                        self.calls += 1;
                        let kind = BlockKind::ToolCall {
                            id: item
                                .get("call_id")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            name: item
                                .get("name")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                        };
                        self.start(oi, kind, out);
                    }
                    Some("reasoning") => {
                        self.start(oi, BlockKind::Reasoning, out);
                    }
                    _ => {}
                }
            }
            "response.output_text.delta" | "response.refusal.delta" => {
                let oi = ev.output_index.unwrap_or(0);
                let index = match self.block(Some(oi)) {
                    Some(i) => i,
                    None => self.start(oi, BlockKind::Text, out),
                };
                if let Some(d) = ev.delta.filter(|d| !d.is_empty()) {
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: d.into_owned(),
                    });
                }
            }
            "response.function_call_arguments.delta" => {
                if let Some(index) = self.block(ev.output_index)
                    && let Some(d) = ev.delta.filter(|d| !d.is_empty())
                {
                    if let Some(o) = &mut self.open {
                        o.2 = true;
                    }
                    out.push(StreamEvent::ToolArgsDelta {
                        index,
                        json: d.into_owned(),
                    });
                }
            }
            "response.reasoning_summary_text.delta" | "response.reasoning_text.delta" => {
                if let Some(index) = self.block(ev.output_index)
                    && let Some(d) = ev.delta.filter(|d| !d.is_empty())
                {
                    out.push(StreamEvent::ReasoningDelta {
                        index,
                        text: d.into_owned(),
                    });
                }
            }
            "response.output_item.done" => {
                let item = ev.item.unwrap_or(Value::Null);
                if let Some((oi, index, seen)) = self.open
                    && Some(oi) == ev.output_index
                {
                    match item.get("type").and_then(Value::as_str) {
                        Some("function_call") if !seen => {
                            if let Some(a) = item
                                .get("arguments")
                                .and_then(Value::as_str)
                                .filter(|a| !a.is_empty())
                            {
                                out.push(StreamEvent::ToolArgsDelta {
                                    index,
                                    json: a.to_owned(),
                                });
                            }
                        }
                        Some("reasoning") => {
                            if let Some(s) = item.get("encrypted_content").and_then(Value::as_str) {
                                out.push(StreamEvent::SignatureDelta {
                                    index,
                                    signature: s.to_owned(),
                                });
                            }
                        }
                        _ => {}
                    }
                    self.close(out);
                }
            }
            "response.completed" | "response.incomplete" => {
                self.close(out);
                let resp = ev.response.unwrap_or(Value::Null);
                if let Some(u) = resp.get("usage").filter(|u| !u.is_null()) {
                    out.push(StreamEvent::Usage(UsageUpdate::from_usage(&usage_from(u))));
                }
                let reason = finish_of(&resp, self.calls > 0).unwrap_or(FinishReason::Stop);
                out.push(StreamEvent::Finish {
                    reason,
                    stop_sequence: None,
                });
                out.push(StreamEvent::MessageStop);
                self.stopped = true;
            }
            "response.failed" | "error" => {
                if !self.started {
                    self.started = true;
                    out.push(StreamEvent::MessageStart {
                        id: String::new(),
                        model: String::new(),
                    });
                }
                let e = match (ev.error, ev.response) {
                    (Some(e), _) => e,
                    (None, Some(r)) => r.get("error").cloned().unwrap_or(Value::Null),
                    (None, None) => {
                        json!({"message": ev.message.as_deref().unwrap_or(""), "code": ev.code.as_deref()})
                    }
                };
                out.push(StreamEvent::Error(crate::openai::decode_error(
                    200,
                    &to_vec(&json!({"error": e})),
                )));
                self.stopped = true;
            }
            _ => {}
        }
        Ok(())
    }
}

/// IR events → Responses SSE.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    seq: u64,
    usage: Usage,
    finish: Option<FinishReason>,
    /// The open item: (output index, kind, text so far, call id, name, signature).
    open: Option<OpenItem>,
    /// Finished items, for `response.completed` (the API sends the whole output there).
    items: Vec<Value>,
    done: bool,
}

#[derive(Debug)]
struct OpenItem {
    kind: u8,
    text: String,
    call: Option<(String, String)>,
    signature: Option<String>,
}

const TEXT: u8 = 0;
const CALL: u8 = 1;
const REASON: u8 = 2;

impl StreamEncoder {
    /// An encoder.
    pub fn new(opts: &Options) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: opts.created,
            seq: 0,
            usage: Usage::default(),
            finish: None,
            open: None,
            items: Vec::new(),
            done: false,
        }
    }

    fn ev(&mut self, out: &mut Vec<u8>, ty: &str, mut v: Value) {
        v["type"] = ty.into();
        v["sequence_number"] = self.seq.into();
        self.seq += 1;
        write_event(out, Some(ty), &v);
    }

    fn item_id(&self, kind: u8) -> String {
        let prefix = match kind {
            TEXT => "msg",
            CALL => "fc",
            _ => "rs",
        };
        format!("{prefix}_{}", self.items.len())
    }

    fn open_item(&mut self, kind: u8, call: Option<(String, String)>, out: &mut Vec<u8>) {
        self.close_item(out);
        let oi = self.items.len();
        let id = self.item_id(kind);
        let item = match (kind, &call) {
            (CALL, Some((cid, name))) => {
                json!({"type": "function_call", "id": id, "call_id": cid, "name": name, "arguments": "", "status": "in_progress"})
            }
            (REASON, _) => json!({"type": "reasoning", "id": id, "summary": []}),
            _ => {
                json!({"type": "message", "id": id, "status": "in_progress", "role": "assistant", "content": []})
            }
        };
        self.ev(
            out,
            "response.output_item.added",
            json!({"output_index": oi, "item": item}),
        );
        match kind {
            TEXT => self.ev(out, "response.content_part.added", json!({"item_id": id, "output_index": oi, "content_index": 0, "part": {"type": "output_text", "text": "", "annotations": []}})),
            REASON => self.ev(out, "response.reasoning_summary_part.added", json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": {"type": "summary_text", "text": ""}})),
            _ => {}
        }
        self.open = Some(OpenItem {
            kind,
            text: String::new(),
            call,
            signature: None,
        });
    }

    fn close_item(&mut self, out: &mut Vec<u8>) {
        let Some(it) = self.open.take() else { return };
        let oi = self.items.len();
        let id = self.item_id(it.kind);
        let item = match it.kind {
            TEXT => {
                self.ev(
                    out,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "text": it.text}),
                );
                let part = json!({"type": "output_text", "text": it.text, "annotations": []});
                self.ev(
                    out,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": oi, "content_index": 0, "part": part}),
                );
                json!({"type": "message", "id": id, "status": "completed", "role": "assistant", "content": [part]})
            }
            CALL => {
                let (cid, name) = it.call.unwrap_or_default();
                self.ev(
                    out,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": oi, "arguments": it.text}),
                );
                json!({"type": "function_call", "id": id, "call_id": cid, "name": name, "arguments": it.text, "status": "completed"})
            }
            _ => {
                self.ev(
                    out,
                    "response.reasoning_summary_text.done",
                    json!({"item_id": id, "output_index": oi, "summary_index": 0, "text": it.text}),
                );
                self.ev(out, "response.reasoning_summary_part.done", json!({"item_id": id, "output_index": oi, "summary_index": 0, "part": {"type": "summary_text", "text": it.text}}));
                let mut v = json!({"type": "reasoning", "id": id, "summary": if it.text.is_empty() { json!([]) } else { json!([{"type": "summary_text", "text": it.text}]) }});
                if let Some(s) = it.signature {
                    v["encrypted_content"] = s.into();
                }
                v
            }
        };
        self.ev(
            out,
            "response.output_item.done",
            json!({"output_index": oi, "item": item.clone()}),
        );
        if self.items.len() < 4096 {
            self.items.push(item);
        }
    }

    /// Encodes one event.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        match ev {
            StreamEvent::MessageStart { id, model } => {
                self.id.clone_from(id);
                self.model.clone_from(model);
                let r = response_object(
                    &self.id,
                    &self.model,
                    self.created,
                    "in_progress",
                    Value::Null,
                    Vec::new(),
                    None,
                );
                self.ev(out, "response.created", json!({"response": r}));
                let r = response_object(
                    &self.id,
                    &self.model,
                    self.created,
                    "in_progress",
                    Value::Null,
                    Vec::new(),
                    None,
                );
                self.ev(out, "response.in_progress", json!({"response": r}));
            }
            StreamEvent::BlockStart { kind, .. } => match kind {
                BlockKind::Text => self.open_item(TEXT, None, out),
                BlockKind::ToolCall { id, name } => {
                    self.open_item(CALL, Some((id.clone(), name.clone())), out);
                }
                BlockKind::Reasoning => self.open_item(REASON, None, out),
                BlockKind::RedactedReasoning { .. } => {}
            },
            StreamEvent::TextDelta { text, .. }
            | StreamEvent::ToolArgsDelta { json: text, .. }
            | StreamEvent::ReasoningDelta { text, .. } => {
                let oi = self.items.len();
                let Some(kind) = self.open.as_ref().map(|o| o.kind) else {
                    return Ok(());
                };
                let id = self.item_id(kind);
                let (ty, v) = match kind {
                    TEXT => (
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": oi, "content_index": 0, "delta": text}),
                    ),
                    CALL => (
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": oi, "delta": text}),
                    ),
                    _ => (
                        "response.reasoning_summary_text.delta",
                        json!({"item_id": id, "output_index": oi, "summary_index": 0, "delta": text}),
                    ),
                };
                if let Some(o) = &mut self.open {
                    if o.text.len().saturating_add(text.len()) > 64 * 1024 * 1024 {
                        return Err(Error::Upstream("an output item exceeds 64 MiB".into()));
                    }
                    o.text.push_str(text);
                }
                self.ev(out, ty, v);
            }
            StreamEvent::SignatureDelta { signature, .. } => {
                if let Some(o) = self.open.as_mut().filter(|o| o.kind == REASON) {
                    o.signature = Some(signature.clone());
                }
            }
            StreamEvent::BlockStop { .. } => self.close_item(out),
            StreamEvent::Usage(u) => u.apply(&mut self.usage),
            StreamEvent::Finish { reason, .. } => self.finish = Some(reason.clone()),
            StreamEvent::MessageStop => {
                self.close_item(out);
                let (status, incomplete) = status_of(self.finish.as_ref());
                let items = std::mem::take(&mut self.items);
                let r = response_object(
                    &self.id,
                    &self.model,
                    self.created,
                    status,
                    incomplete,
                    items,
                    Some(&self.usage),
                );
                let ty = if status == "completed" {
                    "response.completed"
                } else {
                    "response.incomplete"
                };
                self.ev(out, ty, json!({"response": r}));
                self.done = true;
            }
            StreamEvent::Error(e) => {
                let err = crate::openai::error_value(e);
                let inner = err.get("error").cloned().unwrap_or(Value::Null);
                self.ev(
                    out,
                    "error",
                    json!({"code": inner.get("code"), "message": e.message, "param": e.param}),
                );
                let mut r = response_object(
                    &self.id,
                    &self.model,
                    self.created,
                    "failed",
                    Value::Null,
                    Vec::new(),
                    None,
                );
                r["error"] = json!({"code": inner.get("code").cloned().unwrap_or(Value::Null), "message": e.message});
                self.ev(out, "response.failed", json!({"response": r}));
                self.done = true;
            }
        }
        Ok(())
    }

    /// The usage reported so far.
    pub fn usage(&self) -> Usage {
        self.usage
    }
}
