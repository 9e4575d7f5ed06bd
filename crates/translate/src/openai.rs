//! OpenAI Chat Completions: requests, responses, SSE chunks and errors.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    Error, ErrorKind, Options, Protocol, ProviderError,
    ir::{
        BlockKind, ChatRequest, ChatResponse, Effort, FinishReason, ImageSource, Message, Part,
        Reasoning, ResponseFormat, Role, StreamEvent, SystemPart, Tool, ToolChoice, Usage,
        UsageUpdate,
    },
    sse::{SseReader, write_event},
    util::{
        Obj, arr, bool_of, extra_fields, f64_of, lossy, obj, opt_str, parse_data_url,
        parse_request, parse_upstream, str_of, to_vec, tokens, u32_of, write_json_str, write_u64,
    },
};

const P: Protocol = Protocol::OpenAiChat;

// ---------------------------------------------------------------------------------------------
// Requests

/// Decodes a Chat Completions request.
pub fn decode_request(body: &[u8], opts: &Options) -> Result<ChatRequest, Error> {
    match crate::openai_fast::decode_request(body, opts) {
        Some(r) => Ok(r),
        None => decode_request_general(body, opts),
    }
}

/// Decodes a Chat Completions request with the general decoder only (no typed fast path):
/// the reference the fast path is tested against.
pub fn decode_request_general(body: &[u8], opts: &Options) -> Result<ChatRequest, Error> {
    let o = parse_request(body, opts)?;
    let mut r = ChatRequest::default();
    let mut max_tokens = None;
    let mut max_completion = None;
    // The body is taken apart by value: schemas move into the IR instead of being cloned.
    for (k, mut v) in o {
        let v = &mut v;
        match k.as_str() {
            "model" => str_of(v, "model")?.clone_into(&mut r.model),
            "messages" => decode_messages(arr(v, "messages")?, &mut r, opts)?,
            "tools" => {
                let Value::Array(tools) = v else {
                    return Err(Error::invalid("tools", "expected an array"));
                };
                for (i, t) in tools.iter_mut().enumerate() {
                    r.tools.push(decode_tool(t, i)?);
                }
            }
            "tool_choice" => r.tool_choice = decode_tool_choice(v)?,
            "parallel_tool_calls" => r.parallel_tool_calls = bool_of(v, &k)?,
            "response_format" => r.response_format = decode_response_format(v)?,
            "max_tokens" => max_tokens = u32_of(v, &k)?,
            "max_completion_tokens" => max_completion = u32_of(v, &k)?,
            "temperature" => r.temperature = f64_of(v, &k)?,
            "top_p" => r.top_p = f64_of(v, &k)?,
            "stop" => match v {
                Value::Null => {}
                Value::String(s) => r.stop.push(s.clone()),
                Value::Array(a) => {
                    for s in a {
                        r.stop.push(str_of(s, "stop")?.to_owned());
                    }
                }
                _ => return Err(Error::invalid("stop", "expected a string or an array")),
            },
            "seed" => r.seed = v.as_i64(),
            "presence_penalty" => r.presence_penalty = f64_of(v, &k)?,
            "frequency_penalty" => r.frequency_penalty = f64_of(v, &k)?,
            "reasoning_effort" => {
                if let Some(s) = v.as_str() {
                    let e = Effort::parse(s)
                        .ok_or_else(|| Error::invalid(k.as_str(), "unknown effort"))?;
                    r.reasoning = Some(Reasoning {
                        effort: Some(e),
                        ..Reasoning::default()
                    });
                }
            }
            "stream" => r.stream = bool_of(v, &k)?.unwrap_or(false),
            "stream_options" => {
                r.include_usage = v
                    .get("include_usage")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
            }
            "user" => r.user = v.as_str().map(str::to_owned),
            "n" if v.as_u64() == Some(1) || v.is_null() => {}
            _ => r.extra.push((k, std::mem::take(v))),
        }
    }
    r.max_tokens = max_completion.or(max_tokens);
    if !r.extra.is_empty() {
        r.extra_from = Some(P);
    }
    Ok(r)
}

fn decode_messages(msgs: &[Value], r: &mut ChatRequest, opts: &Options) -> Result<(), Error> {
    for (i, m) in msgs.iter().enumerate() {
        let p = format!("messages[{i}]");
        let m = obj(m, &p)?;
        let role = m.get("role").and_then(Value::as_str).unwrap_or("");
        if m.get("name").is_some_and(|n| !n.is_null()) && !opts.allows("name") {
            return Err(Error::unsupported(
                format!("{p}.name"),
                Protocol::Anthropic,
                "message names have no equivalent",
            ));
        }
        match role {
            "system" | "developer" => {
                if !r.messages.is_empty() && !opts.allows("system") {
                    return Err(Error::invalid(
                        format!("{p}.role"),
                        "a system message after the conversation started cannot be translated \
                         (opt into `system` to move it into the system prompt)",
                    ));
                }
                for text in texts(m.get("content"), &p)? {
                    r.system.push(SystemPart {
                        text,
                        developer: role == "developer",
                        cache: None,
                    });
                }
            }
            "user" => {
                let content = decode_user_content(m.get("content"), &p)?;
                r.messages.push(Message::new(Role::User, content));
            }
            "assistant" => {
                let mut content = Vec::new();
                if let Some(rc) = m.get("reasoning_content").and_then(Value::as_str) {
                    content.push(Part::Reasoning {
                        text: rc.to_owned(),
                        signature: None,
                        redacted: None,
                    });
                }
                for text in texts(m.get("content"), &p)? {
                    content.push(Part::text(text));
                }
                if let Some(rf) = m.get("refusal").and_then(Value::as_str) {
                    content.push(Part::text(rf));
                }
                if let Some(calls) = m.get("tool_calls").filter(|v| !v.is_null()) {
                    for (j, c) in arr(calls, &format!("{p}.tool_calls"))?.iter().enumerate() {
                        let cp = format!("{p}.tool_calls[{j}]");
                        let f = c
                            .get("function")
                            .ok_or_else(|| Error::invalid(&cp, "missing function"))?;
                        if let Some(sig) = c
                            .pointer("/extra_content/google/thought_signature")
                            .and_then(Value::as_str)
                        {
                            content.push(Part::Reasoning {
                                text: String::new(),
                                signature: Some(sig.to_owned()),
                                redacted: None,
                            });
                        }
                        content.push(Part::ToolCall {
                            id: str_of(c.get("id").unwrap_or(&Value::Null), &format!("{cp}.id"))?
                                .to_owned(),
                            name: str_of(
                                f.get("name").unwrap_or(&Value::Null),
                                &format!("{cp}.function.name"),
                            )?
                            .to_owned(),
                            arguments: f
                                .get("arguments")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_owned(),
                            cache: None,
                        });
                    }
                }
                r.messages.push(Message::new(Role::Assistant, content));
            }
            "tool" => {
                let call_id = str_of(
                    m.get("tool_call_id").unwrap_or(&Value::Null),
                    &format!("{p}.tool_call_id"),
                )?;
                let content = texts(m.get("content"), &p)?
                    .into_iter()
                    .map(Part::text)
                    .collect();
                let part = Part::ToolResult {
                    call_id: call_id.to_owned(),
                    name: None,
                    content,
                    is_error: false,
                    cache: None,
                };
                r.push_tool_result(part);
            }
            _ => {
                return Err(Error::invalid(
                    format!("{p}.role"),
                    format!("unsupported role {role:?}"),
                ));
            }
        }
    }
    Ok(())
}

/// The texts of a content that may only hold text (string or text parts).
fn texts(v: Option<&Value>, p: &str) -> Result<Vec<String>, Error> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, part) in a.iter().enumerate() {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(
                        str_of(
                            part.get("text").unwrap_or(&Value::Null),
                            &format!("{p}.content[{i}].text"),
                        )?
                        .to_owned(),
                    ),
                    Some("refusal") => out.push(
                        part.get("refusal")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    ),
                    _ => {
                        return Err(Error::invalid(
                            format!("{p}.content[{i}]"),
                            "only text parts are allowed here",
                        ));
                    }
                }
            }
            Ok(out)
        }
        Some(_) => Err(Error::invalid(
            format!("{p}.content"),
            "expected a string or an array",
        )),
    }
}

fn decode_user_content(v: Option<&Value>, p: &str) -> Result<Vec<Part>, Error> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(vec![Part::text(s.clone())]),
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for (i, part) in a.iter().enumerate() {
                let pp = format!("{p}.content[{i}]");
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => out.push(Part::text(str_of(
                        part.get("text").unwrap_or(&Value::Null),
                        &pp,
                    )?)),
                    Some("image_url") => {
                        let iu = part
                            .get("image_url")
                            .ok_or_else(|| Error::invalid(&pp, "missing image_url"))?;
                        let url = str_of(
                            iu.get("url").unwrap_or(&Value::Null),
                            &format!("{pp}.image_url.url"),
                        )?;
                        let source = match parse_data_url(url) {
                            Some((media_type, data)) => ImageSource::Base64 { media_type, data },
                            None => ImageSource::Url(url.to_owned()),
                        };
                        let detail = iu.get("detail").and_then(Value::as_str).map(str::to_owned);
                        out.push(Part::Image {
                            source,
                            detail,
                            cache: None,
                        });
                    }
                    Some(t) => {
                        return Err(Error::unsupported(
                            pp,
                            Protocol::Anthropic,
                            if t == "input_audio" {
                                "audio input is not translated"
                            } else {
                                "this content part is not translated"
                            },
                        ));
                    }
                    None => return Err(Error::invalid(pp, "missing type")),
                }
            }
            Ok(out)
        }
        Some(_) => Err(Error::invalid(
            format!("{p}.content"),
            "expected a string or an array",
        )),
    }
}

fn decode_tool(t: &mut Value, i: usize) -> Result<Tool, Error> {
    let p = format!("tools[{i}]");
    if t.get("type").and_then(Value::as_str) != Some("function") {
        return Err(Error::unsupported(
            format!("{p}.type"),
            Protocol::Anthropic,
            "only function tools are translated",
        ));
    }
    let Some(Value::Object(f)) = t.get_mut("function") else {
        return Err(Error::invalid(
            format!("{p}.function"),
            "expected an object",
        ));
    };
    Ok(Tool {
        name: str_of(
            f.get("name").unwrap_or(&Value::Null),
            &format!("{p}.function.name"),
        )?
        .to_owned(),
        description: opt_str(f, "description"),
        // `null` is no schema, as when the field is absent.
        parameters: f
            .remove("parameters")
            .filter(|v| !v.is_null())
            .unwrap_or_else(|| json!({"type": "object", "properties": {}}))
            .into(),
        strict: f.get("strict").and_then(Value::as_bool),
        cache: None,
    })
}

pub(crate) fn decode_tool_choice(v: &Value) -> Result<Option<ToolChoice>, Error> {
    Ok(match v {
        Value::Null => None,
        Value::String(s) => Some(match s.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => return Err(Error::invalid("tool_choice", "unknown tool_choice")),
        }),
        Value::Object(_) => {
            let name = v
                .pointer("/function/name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::invalid("tool_choice", "missing function.name"))?;
            Some(ToolChoice::Named(name.to_owned()))
        }
        _ => {
            return Err(Error::invalid(
                "tool_choice",
                "expected a string or an object",
            ));
        }
    })
}

pub(crate) fn decode_response_format(v: &Value) -> Result<Option<ResponseFormat>, Error> {
    if v.is_null() {
        return Ok(None);
    }
    Ok(Some(match v.get("type").and_then(Value::as_str) {
        Some("text") => ResponseFormat::Text,
        Some("json_object") => ResponseFormat::JsonObject,
        Some("json_schema") => {
            let js = obj(
                v.get("json_schema").unwrap_or(&Value::Null),
                "response_format.json_schema",
            )?;
            ResponseFormat::JsonSchema {
                name: opt_str(js, "name"),
                description: opt_str(js, "description"),
                schema: js.get("schema").cloned().unwrap_or_else(|| json!({})),
                strict: js.get("strict").and_then(Value::as_bool),
            }
        }
        _ => {
            return Err(Error::invalid(
                "response_format.type",
                "unknown response format",
            ));
        }
    }))
}

/// Encodes a Chat Completions request.
pub fn encode_request(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    let mut o = Obj::new();
    o.insert("model".into(), r.model.clone().into());
    let mut msgs = Vec::with_capacity(r.messages.len() + r.system.len());
    encode_system(r, P, opts, &mut msgs)?;
    for (i, m) in r.messages.iter().enumerate() {
        encode_message(m, i, opts, &mut msgs)?;
    }
    o.insert("messages".into(), Value::Array(msgs));
    if !r.tools.is_empty() {
        let mut tools = Vec::with_capacity(r.tools.len());
        for t in &r.tools {
            let f = function_fields(t, P, opts)?;
            tools.push(json!({"type": "function", "function": f}));
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
                ToolChoice::Named(n) => json!({"type": "function", "function": {"name": n}}),
            },
        );
    }
    if let Some(p) = r.parallel_tool_calls {
        o.insert("parallel_tool_calls".into(), p.into());
    }
    if let Some(rf) = &r.response_format {
        o.insert(
            "response_format".into(),
            match rf {
                ResponseFormat::Text => json!({"type": "text"}),
                ResponseFormat::JsonObject => json!({"type": "json_object"}),
                ResponseFormat::JsonSchema {
                    name,
                    description,
                    schema,
                    strict,
                } => {
                    let mut js = Obj::new();
                    js.insert(
                        "name".into(),
                        name.clone().unwrap_or_else(|| "response".into()).into(),
                    );
                    if let Some(d) = description {
                        js.insert("description".into(), d.clone().into());
                    }
                    js.insert("schema".into(), schema.clone());
                    if let Some(s) = strict {
                        js.insert("strict".into(), (*s).into());
                    }
                    json!({"type": "json_schema", "json_schema": js})
                }
            },
        );
    }
    if let Some(m) = r.max_tokens {
        o.insert("max_completion_tokens".into(), m.into());
    }
    if let Some(t) = r.temperature {
        o.insert("temperature".into(), t.into());
    }
    if let Some(t) = r.top_p {
        o.insert("top_p".into(), t.into());
    }
    if r.top_k.is_some() {
        lossy(opts, "top_k", P, "OpenAI has no top_k")?;
    }
    if !r.stop.is_empty() {
        o.insert("stop".into(), r.stop.clone().into());
    }
    if let Some(s) = r.seed {
        o.insert("seed".into(), s.into());
    }
    if let Some(v) = r.presence_penalty {
        o.insert("presence_penalty".into(), v.into());
    }
    if let Some(v) = r.frequency_penalty {
        o.insert("frequency_penalty".into(), v.into());
    }
    if let Some(re) = &r.reasoning {
        let effort = reasoning_effort(re, P, opts)?;
        if let Some(e) = effort {
            o.insert("reasoning_effort".into(), e.as_str().into());
        }
        if re.include_thoughts == Some(true) {
            lossy(
                opts,
                "include_thoughts",
                P,
                "Chat Completions does not return reasoning text",
            )?;
        }
    }
    if r.stream {
        o.insert("stream".into(), true.into());
        // The gateway needs usage to translate it; a client that did not ask never sees the chunk.
        o.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if let Some(u) = &r.user {
        o.insert("user".into(), u.clone().into());
    }
    extra_fields(r, P, opts, &mut o)?;
    Ok(to_vec(&Value::Object(o)))
}

/// OpenAI caches prompts itself: a cache breakpoint is dropped, when the caller allows it.
pub(crate) fn drop_cache_breakpoint(opts: &Options, target: Protocol) -> Result<(), Error> {
    lossy(
        opts,
        "cache_control",
        target,
        "OpenAI caches prompts automatically; breakpoints are dropped",
    )
}

/// The system prompt as leading `system` (`developer`) messages: Chat Completions `messages`
/// and Responses `input` alike.
pub(crate) fn encode_system(
    r: &ChatRequest,
    target: Protocol,
    opts: &Options,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    for s in &r.system {
        if s.cache.is_some() {
            drop_cache_breakpoint(opts, target)?;
        }
        out.push(
            json!({"role": if s.developer { "developer" } else { "system" }, "content": s.text}),
        );
    }
    Ok(())
}

/// A tool's function fields (`name`, `description`, `parameters`, `strict`): nested under
/// `function` in Chat Completions, flat in the Responses API.
pub(crate) fn function_fields(t: &Tool, target: Protocol, opts: &Options) -> Result<Obj, Error> {
    if t.cache.is_some() {
        drop_cache_breakpoint(opts, target)?;
    }
    let mut f = Obj::new();
    f.insert("name".into(), t.name.clone().into());
    if let Some(d) = &t.description {
        f.insert("description".into(), d.clone().into());
    }
    let parameters = t.parameters.to_value().map_err(|e| {
        Error::invalid(
            "tools",
            format!(
                "the schema of tool '{}' is not a JSON value this gateway can hold: {e}",
                t.name
            ),
        )
    })?;
    f.insert("parameters".into(), parameters);
    if let Some(s) = t.strict {
        f.insert("strict".into(), s.into());
    }
    Ok(f)
}

/// OpenAI's reasoning effort for the request's reasoning settings (Chat's `reasoning_effort`,
/// Responses' `reasoning.effort`): a thinking budget or disabled thinking maps to it only
/// approximately (lossy).
pub(crate) fn reasoning_effort(
    re: &Reasoning,
    target: Protocol,
    opts: &Options,
) -> Result<Option<Effort>, Error> {
    let reasons = if target == Protocol::OpenAiResponses {
        (
            "a thinking budget maps to reasoning.effort only approximately",
            "disabled thinking maps to reasoning.effort only approximately",
        )
    } else {
        (
            "a thinking budget maps to reasoning_effort only approximately",
            "disabled thinking maps to reasoning_effort only approximately",
        )
    };
    Ok(match (re.effort, re.budget_tokens) {
        (Some(e), _) => Some(e),
        (None, Some(b)) => {
            lossy(opts, "thinking", target, reasons.0)?;
            Some(Effort::from_budget(b))
        }
        (None, None) if re.disabled => {
            lossy(opts, "thinking", target, reasons.1)?;
            None
        }
        (None, None) => None,
    })
}

fn encode_image(source: &ImageSource, detail: Option<&String>) -> Value {
    let url = match source {
        ImageSource::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        ImageSource::Url(u) => u.clone(),
    };
    let mut iu = Obj::new();
    iu.insert("url".into(), url.into());
    if let Some(d) = detail {
        iu.insert("detail".into(), d.clone().into());
    }
    json!({"type": "image_url", "image_url": iu})
}

fn encode_message(
    m: &Message,
    i: usize,
    opts: &Options,
    out: &mut Vec<Value>,
) -> Result<(), Error> {
    let p = format!("messages[{i}]");
    match m.role {
        Role::User => {
            let mut pending: Vec<Value> = Vec::new();
            let flush = |pending: &mut Vec<Value>, out: &mut Vec<Value>| {
                if pending.is_empty() {
                    return;
                }
                let content = if pending.len() == 1
                    && pending[0].get("type").and_then(Value::as_str) == Some("text")
                {
                    pending[0].get("text").cloned().unwrap_or(Value::Null)
                } else {
                    Value::Array(std::mem::take(pending))
                };
                pending.clear();
                out.push(json!({"role": "user", "content": content}));
            };
            for (j, part) in m.content.iter().enumerate() {
                if part.cache().is_some() {
                    drop_cache_breakpoint(opts, P)?;
                }
                match part {
                    Part::Text { text, .. } => pending.push(json!({"type": "text", "text": text})),
                    Part::Image { source, detail, .. } => {
                        pending.push(encode_image(source, detail.as_ref()));
                    }
                    Part::ToolResult {
                        call_id,
                        content,
                        is_error,
                        ..
                    } => {
                        flush(&mut pending, out);
                        if *is_error {
                            lossy(
                                opts,
                                "is_error",
                                P,
                                "OpenAI tool messages have no error flag",
                            )?;
                        }
                        let text = crate::util::tool_result_text(
                            content,
                            || format!("{p}.content[{j}]"),
                            P,
                            "OpenAI tool results hold text only",
                        )?;
                        out.push(json!({"role": "tool", "tool_call_id": call_id, "content": text}));
                    }
                    Part::ToolCall { .. } | Part::Reasoning { .. } => {
                        return Err(Error::invalid(
                            format!("{p}.content[{j}]"),
                            "a user message cannot hold this part",
                        ));
                    }
                }
            }
            flush(&mut pending, out);
        }
        Role::Assistant => {
            let mut texts: Vec<&str> = Vec::new();
            let mut calls = Vec::new();
            let mut reasoning_text = String::new();
            let mut pending_sig: Option<&str> = None;
            for (j, part) in m.content.iter().enumerate() {
                if part.cache().is_some() {
                    drop_cache_breakpoint(opts, P)?;
                }
                match part {
                    Part::Text { text, .. } => texts.push(text),
                    Part::ToolCall {
                        id,
                        name,
                        arguments,
                        ..
                    } => {
                        let mut c = json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}});
                        if let Some(sig) = pending_sig.take() {
                            c["extra_content"] = json!({"google": {"thought_signature": sig}});
                        }
                        calls.push(c);
                    }
                    Part::Reasoning {
                        text,
                        signature,
                        redacted,
                    } => {
                        let next_is_call =
                            matches!(m.content.get(j + 1), Some(Part::ToolCall { .. }));
                        if text.is_empty()
                            && redacted.is_none()
                            && next_is_call
                            && signature.is_some()
                        {
                            pending_sig = signature.as_deref();
                        } else if signature.is_some() || redacted.is_some() {
                            lossy(
                                opts,
                                "reasoning",
                                P,
                                "Chat Completions cannot carry signed reasoning back",
                            )?;
                        } else {
                            reasoning_text.push_str(text);
                        }
                    }
                    Part::Image { .. } | Part::ToolResult { .. } => {
                        return Err(Error::unsupported(
                            format!("{p}.content[{j}]"),
                            P,
                            "an assistant message cannot hold this part",
                        ));
                    }
                }
            }
            let mut o = Obj::new();
            o.insert("role".into(), "assistant".into());
            let content = match texts.len() {
                0 => Value::Null,
                1 => texts[0].into(),
                _ => Value::Array(
                    texts
                        .iter()
                        .map(|t| json!({"type": "text", "text": t}))
                        .collect(),
                ),
            };
            o.insert("content".into(), content);
            if !reasoning_text.is_empty() {
                o.insert("reasoning_content".into(), reasoning_text.into());
            }
            if !calls.is_empty() {
                o.insert("tool_calls".into(), Value::Array(calls));
            }
            out.push(Value::Object(o));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Responses

fn finish_from(s: &str) -> FinishReason {
    match s {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        "content_filter" => FinishReason::ContentFilter,
        o => FinishReason::Other(o.to_owned()),
    }
}

fn finish_to(f: &FinishReason) -> &str {
    match f {
        FinishReason::Stop | FinishReason::StopSequence | FinishReason::Refusal => "stop",
        FinishReason::Length => "length",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::Other(o) => o,
    }
}

fn usage_from(u: &Value) -> Usage {
    Usage {
        input_tokens: tokens(u.get("prompt_tokens")),
        output_tokens: tokens(u.get("completion_tokens")),
        cache_read_tokens: tokens(u.pointer("/prompt_tokens_details/cached_tokens")),
        cache_write_tokens: tokens(u.pointer("/prompt_tokens_details/cache_write_tokens")),
        reasoning_tokens: tokens(u.pointer("/completion_tokens_details/reasoning_tokens")),
    }
}

fn usage_to(u: &Usage) -> Value {
    let mut details = json!({"cached_tokens": u.cache_read_tokens});
    if u.cache_write_tokens > 0 {
        details["cache_write_tokens"] = u.cache_write_tokens.into();
    }
    json!({
        "prompt_tokens": u.input_tokens,
        "completion_tokens": u.output_tokens,
        "total_tokens": u.total(),
        "prompt_tokens_details": details,
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    })
}

/// Decodes a Chat Completions response (its first choice).
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
        created: v.get("created").and_then(Value::as_u64),
        ..ChatResponse::default()
    };
    if let Some(u) = v.get("usage").filter(|u| !u.is_null()) {
        r.usage = usage_from(u);
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| Error::Upstream("no choices".into()))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    if let Some(rc) = msg.get("reasoning_content").and_then(Value::as_str) {
        r.content.push(Part::Reasoning {
            text: rc.to_owned(),
            signature: None,
            redacted: None,
        });
    }
    if let Some(t) = msg.get("content").and_then(Value::as_str) {
        r.content.push(Part::text(t));
    }
    let mut refusal = false;
    if let Some(t) = msg.get("refusal").and_then(Value::as_str) {
        r.content.push(Part::text(t));
        refusal = true;
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for c in calls {
            if let Some(sig) = c
                .pointer("/extra_content/google/thought_signature")
                .and_then(Value::as_str)
            {
                r.content.push(Part::Reasoning {
                    text: String::new(),
                    signature: Some(sig.to_owned()),
                    redacted: None,
                });
            }
            r.content.push(Part::ToolCall {
                id: c.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                name: c
                    .pointer("/function/name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                arguments: c
                    .pointer("/function/arguments")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                cache: None,
            });
        }
    }
    r.finish = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .map(finish_from);
    if refusal && r.finish == Some(FinishReason::Stop) {
        r.finish = Some(FinishReason::Refusal);
    }
    Ok(r)
}

/// Encodes a Chat Completions response.
pub fn encode_response(r: &ChatResponse, opts: &Options) -> Result<Vec<u8>, Error> {
    // Written by hand, as the hot stream chunks are: serde's per-field calls were two thirds of
    // this function's cost for a small answer. `hand_written_tests` pins the shape.
    let mut text = String::new();
    let mut reasoning = String::new();
    let refusal = r.finish == Some(FinishReason::Refusal);
    let has_calls = r.content.iter().any(|p| matches!(p, Part::ToolCall { .. }));
    for (j, p) in r.content.iter().enumerate() {
        match p {
            Part::Text { text: t, .. } => text.push_str(t),
            Part::Reasoning { text: t, .. } if !signature_of_call(&r.content, j, t) => {
                reasoning.push_str(t);
            }
            _ => {}
        }
    }
    let mut out = Vec::with_capacity(256 + crate::json_out::parts_size_hint(&r.content));
    out.extend_from_slice(b"{\"id\":");
    write_json_str(&mut out, &r.id);
    out.extend_from_slice(b",\"object\":\"chat.completion\",\"created\":");
    write_u64(&mut out, r.created.unwrap_or(opts.created));
    out.extend_from_slice(b",\"model\":");
    write_json_str(&mut out, &r.model);
    out.extend_from_slice(
        b",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":",
    );
    write_opt_str(
        &mut out,
        (!refusal && (!text.is_empty() || !has_calls)).then_some(text.as_str()),
    );
    out.extend_from_slice(b",\"refusal\":");
    write_opt_str(&mut out, refusal.then_some(text.as_str()));
    if !reasoning.is_empty() {
        out.extend_from_slice(b",\"reasoning_content\":");
        write_json_str(&mut out, &reasoning);
    }
    if has_calls {
        out.extend_from_slice(b",\"tool_calls\":[");
        let mut pending_sig: Option<&str> = None;
        let mut first = true;
        for (j, p) in r.content.iter().enumerate() {
            match p {
                Part::Reasoning {
                    text: t, signature, ..
                } if signature_of_call(&r.content, j, t) => pending_sig = signature.as_deref(),
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    ..
                } => {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(b"{\"id\":");
                    write_json_str(&mut out, id);
                    out.extend_from_slice(b",\"type\":\"function\",\"function\":{\"name\":");
                    write_json_str(&mut out, name);
                    out.extend_from_slice(b",\"arguments\":");
                    write_json_str(&mut out, arguments);
                    out.push(b'}');
                    if let Some(sig) = pending_sig.take() {
                        out.extend_from_slice(
                            b",\"extra_content\":{\"google\":{\"thought_signature\":",
                        );
                        write_json_str(&mut out, sig);
                        out.extend_from_slice(b"}}");
                    }
                    out.push(b'}');
                }
                _ => {}
            }
        }
        out.push(b']');
    }
    out.extend_from_slice(b"},\"logprobs\":null,\"finish_reason\":");
    write_opt_str(&mut out, r.finish.as_ref().map(finish_to));
    out.extend_from_slice(b"}],\"usage\":");
    write_usage(&mut out, &r.usage);
    out.push(b'}');
    Ok(out)
}

/// Whether part `j` of an answer is a bare signature for the tool call after it (Gemini's
/// `thoughtSignature` on a call): carried on that call, not as reasoning.
fn signature_of_call(content: &[Part], j: usize, text: &str) -> bool {
    text.is_empty() && matches!(content.get(j + 1), Some(Part::ToolCall { .. }))
}

/// Writes a JSON string, or `null`.
fn write_opt_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_json_str(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// Writes Chat Completions' `usage` object.
fn write_usage(out: &mut Vec<u8>, u: &Usage) {
    out.extend_from_slice(b"{\"prompt_tokens\":");
    write_u64(out, u.input_tokens);
    out.extend_from_slice(b",\"completion_tokens\":");
    write_u64(out, u.output_tokens);
    out.extend_from_slice(b",\"total_tokens\":");
    write_u64(out, u.total());
    out.extend_from_slice(b",\"prompt_tokens_details\":{\"cached_tokens\":");
    write_u64(out, u.cache_read_tokens);
    if u.cache_write_tokens > 0 {
        out.extend_from_slice(b",\"cache_write_tokens\":");
        write_u64(out, u.cache_write_tokens);
    }
    out.extend_from_slice(b"},\"completion_tokens_details\":{\"reasoning_tokens\":");
    write_u64(out, u.reasoning_tokens);
    out.extend_from_slice(b"}}");
}

// ---------------------------------------------------------------------------------------------
// Errors

/// Decodes an OpenAI error body.
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    let v: Value = crate::util::from_json(body).unwrap_or(Value::Null);
    let e = v.get("error").unwrap_or(&v);
    let mut pe = ProviderError::new(
        ErrorKind::from_status(status),
        status,
        e.get("message").and_then(Value::as_str).map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
            str::to_owned,
        ),
    );
    pe.code = e.get("code").and_then(|c| {
        c.as_str()
            .map(str::to_owned)
            .or_else(|| c.as_i64().map(|n| n.to_string()))
    });
    pe.param = e.get("param").and_then(Value::as_str).map(str::to_owned);
    pe.provider_type = e.get("type").and_then(Value::as_str).map(str::to_owned);
    if status == 200 {
        pe.kind = match pe.provider_type.as_deref().or(pe.code.as_deref()) {
            Some("insufficient_quota" | "rate_limit_exceeded" | "rate_limit_error") => {
                ErrorKind::RateLimit
            }
            Some("invalid_request_error") => ErrorKind::InvalidRequest,
            _ => ErrorKind::Server,
        };
    }
    pe
}

fn error_type(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::RequestTooLarge => {
            "invalid_request_error"
        }
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::RateLimit => "rate_limit_error",
        _ => "server_error",
    }
}

pub(crate) fn error_value(e: &ProviderError) -> Value {
    json!({"error": {
        "message": e.message,
        "type": error_type(e.kind),
        "param": e.param,
        "code": e.code.clone().or_else(|| e.provider_type.clone()),
    }})
}

/// Encodes an error the OpenAI way: (status, body).
pub fn encode_error(e: &ProviderError) -> (u16, Vec<u8>) {
    (e.kind.status_for(P), to_vec(&error_value(e)))
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Chunk<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "crate::util::first")]
    choices: Option<ChunkChoice<'a>>,
    #[serde(default)]
    usage: Option<Box<Value>>,
    #[serde(default)]
    error: Option<Box<Value>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct ChunkChoice<'a> {
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Delta<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<DeltaCall<'a>>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct DeltaCall<'a> {
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    function: Option<DeltaFn<'a>>,
    #[serde(default)]
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct DeltaFn<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    arguments: Option<Cow<'a, str>>,
}

impl<'a> Chunk<'a> {
    /// A chunk read by the borrowed scanner ([`crate::json_scan`]): the common shapes only —
    /// `None` for anything else (`extra_content`, an escaped key, a duplicate key, a value of
    /// an unexpected type), which serde then decodes.
    fn scan(data: &'a [u8]) -> Option<Self> {
        use crate::json_scan::Scan;
        let mut sc = Scan::new(std::str::from_utf8(data).ok()?);
        let mut c = Chunk {
            id: None,
            model: None,
            choices: None,
            usage: None,
            error: None,
        };
        sc.object(|k, sc| {
            match k {
                "id" => c.id = sc.opt_string()?,
                "model" => c.model = sc.opt_string()?,
                "choices" => c.choices = sc.first(ChunkChoice::scan)?,
                // Rare (the last chunk's usage, an error): serde reads the field's text.
                "usage" | "error" => {
                    if !sc.null() {
                        let v: Box<Value> = serde_json::from_str(sc.raw()?).ok()?;
                        if k == "usage" {
                            c.usage = Some(v);
                        } else {
                            c.error = Some(v);
                        }
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        sc.end()?;
        Some(c)
    }
}

impl<'a> ChunkChoice<'a> {
    fn scan(sc: &mut crate::json_scan::Scan<'a>) -> Option<Self> {
        let mut c = ChunkChoice {
            delta: None,
            finish_reason: None,
        };
        sc.object(|k, sc| {
            match k {
                "delta" => {
                    if !sc.null() {
                        c.delta = Some(Delta::scan(sc)?);
                    }
                }
                "finish_reason" => c.finish_reason = sc.opt_string()?,
                _ => sc.skip()?,
            }
            Some(())
        })?;
        Some(c)
    }
}

impl<'a> Delta<'a> {
    fn scan(sc: &mut crate::json_scan::Scan<'a>) -> Option<Self> {
        let mut d = Delta {
            content: None,
            reasoning_content: None,
            refusal: None,
            tool_calls: None,
        };
        sc.object(|k, sc| {
            match k {
                "content" => d.content = sc.opt_string()?,
                "reasoning_content" => d.reasoning_content = sc.opt_string()?,
                "refusal" => d.refusal = sc.opt_string()?,
                "tool_calls" => {
                    if !sc.null() {
                        let mut calls = Vec::new();
                        sc.array(|_, sc| {
                            calls.push(DeltaCall::scan(sc)?);
                            Some(())
                        })?;
                        d.tool_calls = Some(calls);
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        Some(d)
    }
}

impl<'a> DeltaCall<'a> {
    fn scan(sc: &mut crate::json_scan::Scan<'a>) -> Option<Self> {
        let mut c = DeltaCall {
            index: None,
            id: None,
            function: None,
            extra_content: None,
        };
        sc.object(|k, sc| {
            match k {
                "index" => c.index = sc.opt_u64()?,
                "id" => c.id = sc.opt_string()?,
                "function" => {
                    if !sc.null() {
                        let mut f = DeltaFn {
                            name: None,
                            arguments: None,
                        };
                        sc.object(|k, sc| {
                            match k {
                                "name" => f.name = sc.opt_string()?,
                                "arguments" => f.arguments = sc.opt_string()?,
                                _ => sc.skip()?,
                            }
                            Some(())
                        })?;
                        c.function = Some(f);
                    }
                }
                "extra_content" => {
                    if !sc.null() {
                        return None;
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        Some(c)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    Text(usize),
    Reasoning(usize),
    Tool(usize),
}

/// Chat Completions SSE → IR events.
#[derive(Debug)]
pub struct StreamDecoder {
    sse: SseReader,
    started: bool,
    stopped: bool,
    next: usize,
    open: Option<Open>,
    /// OpenAI tool index → IR block index.
    tools: Vec<(u64, usize)>,
    refusal: bool,
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
            tools: Vec::new(),
            refusal: false,
        }
    }

    /// Feeds upstream bytes.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        let mut sse = std::mem::replace(&mut self.sse, SseReader::new(0));
        let r = sse.feed(input, |ev, data| self.on_event(ev, data, out));
        self.sse = sse;
        r
    }

    /// Ends the upstream stream.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        let mut sse = std::mem::replace(&mut self.sse, SseReader::new(0));
        let r = sse.finish(|ev, data| self.on_event(ev, data, out));
        self.sse = sse;
        r?;
        if !self.stopped {
            return Err(Error::Upstream("the stream ended before [DONE]".into()));
        }
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some(o) = self.open.take() {
            let (Open::Text(index) | Open::Reasoning(index) | Open::Tool(index)) = o;
            out.push(StreamEvent::BlockStop { index });
        }
    }

    fn on_event(
        &mut self,
        ev: &[u8],
        data: &[u8],
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        if data == b"[DONE]" {
            self.close(out);
            if !self.started {
                out.push(StreamEvent::MessageStart {
                    id: String::new(),
                    model: String::new(),
                });
            }
            out.push(StreamEvent::MessageStop);
            self.stopped = true;
            return Ok(());
        }
        let chunk: Chunk<'_> = match Chunk::scan(data) {
            Some(c) => c,
            None => crate::util::from_json(data)
                .map_err(|e| Error::Upstream(format!("invalid chunk: {e}")))?,
        };
        if ev == b"error" || chunk.error.is_some() {
            let e = chunk.error.map_or(Value::Null, |b| *b);
            let body = to_vec(&json!({"error": e}));
            out.push(StreamEvent::Error(decode_error(200, &body)));
            self.stopped = true;
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                id: chunk.id.as_deref().unwrap_or("").to_owned(),
                model: chunk.model.as_deref().unwrap_or("").to_owned(),
            });
        }
        if let Some(choice) = chunk.choices {
            if let Some(d) = choice.delta {
                if let Some(t) = d.reasoning_content.filter(|t| !t.is_empty()) {
                    let index = self.open_text_block(true, out);
                    out.push(StreamEvent::ReasoningDelta {
                        index,
                        text: t.into_owned(),
                    });
                }
                let refusal = d.refusal.filter(|t| !t.is_empty());
                if refusal.is_some() {
                    self.refusal = true;
                }
                for t in [d.content, refusal].into_iter().flatten() {
                    if t.is_empty() {
                        continue;
                    }
                    let index = self.open_text_block(false, out);
                    out.push(StreamEvent::TextDelta {
                        index,
                        text: t.into_owned(),
                    });
                }
                for c in d.tool_calls.unwrap_or_default() {
                    let tix = c.index.unwrap_or(0);
                    let known = self.tools.iter().find(|(t, _)| *t == tix).map(|(_, i)| *i);
                    let f = c.function;
                    let (name, args) = match f {
                        Some(f) => (f.name, f.arguments),
                        None => (None, None),
                    };
                    let index = if let Some(i) = known {
                        if self.open != Some(Open::Tool(i)) {
                            // Interleaved arguments of an earlier call: deltas still name it.
                            self.close(out);
                        }
                        i
                    } else {
                        self.close(out);
                        if let Some(sig) = c
                            .extra_content
                            .as_ref()
                            .and_then(|e| e.pointer("/google/thought_signature"))
                            .and_then(Value::as_str)
                        {
                            let ri = self.start(BlockKind::Reasoning, out);
                            out.push(StreamEvent::SignatureDelta {
                                index: ri,
                                signature: sig.to_owned(),
                            });
                            out.push(StreamEvent::BlockStop { index: ri });
                        }
                        let kind = BlockKind::ToolCall {
                            id: c.id.as_deref().unwrap_or("").to_owned(),
                            name: name.as_deref().unwrap_or("").to_owned(),
                        };
                        let i = self.start(kind, out);
                        self.tools.push((tix, i));
                        self.open = Some(Open::Tool(i));
                        i
                    };
                    if let Some(a) = args.filter(|a| !a.is_empty()) {
                        out.push(StreamEvent::ToolArgsDelta {
                            index,
                            json: a.into_owned(),
                        });
                    }
                }
            }
            if let Some(fr) = choice.finish_reason {
                self.close(out);
                let mut reason = finish_from(&fr);
                if self.refusal && reason == FinishReason::Stop {
                    reason = FinishReason::Refusal;
                }
                out.push(StreamEvent::Finish {
                    reason,
                    stop_sequence: None,
                });
            }
        }
        if let Some(u) = chunk.usage.filter(|u| !u.is_null()) {
            out.push(StreamEvent::Usage(UsageUpdate::from_usage(&usage_from(&u))));
        }
        Ok(())
    }

    /// The index of the open text block (`reasoning`: the open reasoning block), opening one
    /// (and closing any other) when none is.
    fn open_text_block(&mut self, reasoning: bool, out: &mut Vec<StreamEvent>) -> usize {
        match self.open {
            Some(Open::Reasoning(i)) if reasoning => i,
            Some(Open::Text(i)) if !reasoning => i,
            _ => {
                self.close(out);
                let (kind, open): (_, fn(usize) -> Open) = if reasoning {
                    (BlockKind::Reasoning, Open::Reasoning)
                } else {
                    (BlockKind::Text, Open::Text)
                };
                let i = self.start(kind, out);
                self.open = Some(open(i));
                i
            }
        }
    }

    fn start(&mut self, kind: BlockKind, out: &mut Vec<StreamEvent>) -> usize {
        let index = self.next;
        self.next += 1;
        out.push(StreamEvent::BlockStart { index, kind });
        index
    }
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [OutChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Value>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    finish_reason: Option<&'a str>,
}

#[derive(Serialize, Default)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[OutCall<'a>; 1]>,
}

#[derive(Serialize)]
struct OutCall<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    ty: Option<&'static str>,
    function: OutFn<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Value>,
}

#[derive(Serialize)]
struct OutFn<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

/// IR events → Chat Completions SSE.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    usage: Usage,
    /// IR block index → OpenAI tool index.
    tools: Vec<(usize, usize)>,
    pending_sig: Option<String>,
    done: bool,
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[{"index":0,"delta":`,
    /// written once per stream: the hot deltas are written by hand after it.
    prefix: Vec<u8>,
}

impl StreamEncoder {
    /// An encoder; `opts.include_usage` says whether the client asked for the usage chunk.
    pub fn new(opts: &Options) -> Self {
        Self {
            id: String::new(),
            model: String::new(),
            created: opts.created,
            include_usage: opts.include_usage,
            usage: Usage::default(),
            tools: Vec::new(),
            pending_sig: None,
            done: false,
            prefix: Vec::new(),
        }
    }

    /// Starts a hand-written chunk: everything up to its delta.
    fn start_chunk(&mut self, out: &mut Vec<u8>) {
        if self.prefix.is_empty() {
            self.prefix.extend_from_slice(b"data: {\"id\":");
            write_json_str(&mut self.prefix, &self.id);
            self.prefix
                .extend_from_slice(b",\"object\":\"chat.completion.chunk\",\"created\":");
            write_u64(&mut self.prefix, self.created);
            self.prefix.extend_from_slice(b",\"model\":");
            write_json_str(&mut self.prefix, &self.model);
            self.prefix
                .extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
        }
        out.extend_from_slice(&self.prefix);
    }

    /// Writes a chunk whose delta is one string field (`{"content":"…"}`), by hand.
    fn delta_chunk(&mut self, out: &mut Vec<u8>, open: &[u8], text: &str) {
        self.start_chunk(out);
        out.extend_from_slice(open);
        write_json_str(out, text);
        out.extend_from_slice(b"},\"finish_reason\":null}]}\n\n");
    }

    fn chunk(&self, out: &mut Vec<u8>, delta: OutDelta<'_>, finish: Option<&str>) {
        let c = OutChunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices: &[OutChoice {
                index: 0,
                delta,
                finish_reason: finish,
            }],
            usage: None,
        };
        write_event(out, None, &c);
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
                self.prefix.clear();
                self.chunk(
                    out,
                    OutDelta {
                        role: Some("assistant"),
                        content: Some(""),
                        ..OutDelta::default()
                    },
                    None,
                );
            }
            StreamEvent::BlockStart {
                index,
                kind: BlockKind::ToolCall { id, name },
            } => {
                let k = self.tools.len();
                self.tools.push((*index, k));
                let extra = self
                    .pending_sig
                    .take()
                    .map(|s| json!({"google": {"thought_signature": s}}));
                let call = OutCall {
                    index: k,
                    id: Some(id),
                    ty: Some("function"),
                    function: OutFn {
                        name: Some(name),
                        arguments: "",
                    },
                    extra_content: extra,
                };
                self.chunk(
                    out,
                    OutDelta {
                        tool_calls: Some([call]),
                        ..OutDelta::default()
                    },
                    None,
                );
            }
            StreamEvent::BlockStart { .. } | StreamEvent::BlockStop { .. } => {}
            StreamEvent::TextDelta { text, .. } => {
                self.delta_chunk(out, b"{\"content\":", text);
            }
            StreamEvent::ReasoningDelta { text, .. } => {
                self.delta_chunk(out, b"{\"reasoning_content\":", text);
            }
            StreamEvent::SignatureDelta { signature, .. } => {
                self.pending_sig = Some(signature.clone());
            }
            StreamEvent::ToolArgsDelta { index, json } => {
                if let Some(&(_, k)) = self.tools.iter().find(|(i, _)| i == index) {
                    self.start_chunk(out);
                    out.extend_from_slice(b"{\"tool_calls\":[{\"index\":");
                    write_u64(out, k as u64);
                    out.extend_from_slice(b",\"function\":{\"arguments\":");
                    write_json_str(out, json);
                    out.extend_from_slice(b"}}]},\"finish_reason\":null}]}\n\n");
                }
            }
            StreamEvent::Usage(u) => u.apply(&mut self.usage),
            StreamEvent::Finish { reason, .. } => {
                // A refusal streamed without refusal text reads as a content filter.
                let f = if *reason == FinishReason::Refusal {
                    "content_filter"
                } else {
                    finish_to(reason)
                };
                self.chunk(out, OutDelta::default(), Some(f));
            }
            StreamEvent::MessageStop => {
                if self.include_usage {
                    let c = OutChunk {
                        id: &self.id,
                        object: "chat.completion.chunk",
                        created: self.created,
                        model: &self.model,
                        choices: &[],
                        usage: Some(usage_to(&self.usage)),
                    };
                    write_event(out, None, &c);
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.done = true;
            }
            StreamEvent::Error(e) => {
                write_event(out, None, &error_value(e));
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

#[cfg(test)]
mod hand_written_tests {
    use super::*;

    /// The borrowed chunk scanner and serde agree on every chunk the scanner accepts, and it
    /// accepts the common ones: every Chat chunk of the captured streams, and hand-made edge
    /// cases (escapes, surrogate pairs, numbers, nesting, whitespace, duplicates, bad JSON).
    #[test]
    fn the_chunk_scanner_agrees_with_serde() {
        let mut chunks: Vec<String> = [
            r#"{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00"},"logprobs":null,"finish_reason":null}],"obfuscation":"x"}"#,
            r#" { "id" : null , "choices" : [ ] , "usage" : null } "#,
            r#"{"choices":null}"#,
            r#"{"choices":[{"delta":null,"finish_reason":"stop"},{"delta":{"content":"second"}}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":"{\"a\":1}"}},{"index":1,"function":{"arguments":""}}]}}]}"#,
            r#"{"x":[1,-2.5e+3,0.1,true,false,null,{"y":[[]]}],"choices":[{"delta":{"content":"ok"}}]}"#,
            r#"{"usage":{"prompt_tokens":1}}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":0,"extra_content":{"google":{"thought_signature":"s"}}}]}}]}"#,
            r#"{"id":"a","id":"b"}"#,
            r#"{"x":+1,"choices":[]}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":"\ud800"}"#,
            r#"{"x":"tab	inside"}"#,
            r#"{"choices":[{"index":1.5}]}"#,
            r#"{"choices":[{"delta":{"tool_calls":[{"index":-1}]}}]}"#,
            r#"{"id":1}"#,
            r#"{"choices":[]} x"#,
            r#"{"choices":[],}"#,
            r#"{"ch\u006fices":[]}"#,
        ]
        .map(String::from)
        .to_vec();
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/sse/extracted"
        );
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                for line in text.lines() {
                    if let Some(d) = line.strip_prefix("data: ")
                        && d.contains("chat.completion.chunk")
                    {
                        chunks.push(d.to_owned());
                    }
                }
            }
        } else {
            eprintln!("SKIPPED the captured chunks: {dir} not found");
        }
        // Only the extra_content chunks and the broken ones go to serde.
        crate::json_scan::assert_scanner_agrees!(Chunk, chunks);
    }

    /// The hand-written answer: its exact bytes for a plain one, and every field of a full one
    /// (reasoning, a bare signature carried on the call after it, two calls, a refusal, cache
    /// writes, no finish reason).
    #[test]
    fn the_answer_is_written_in_the_chat_completions_shape() {
        let opts = Options {
            created: 7,
            ..Options::default()
        };
        let mut r = ChatResponse {
            id: "chatcmpl-\"1\"".into(),
            model: "m".into(),
            content: vec![Part::text("hi\n")],
            finish: Some(FinishReason::Stop),
            usage: Usage {
                input_tokens: 3,
                output_tokens: 2,
                ..Usage::default()
            },
            ..ChatResponse::default()
        };
        let out = encode_response(&r, &opts).expect("encodes");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            r#"{"id":"chatcmpl-\"1\"","object":"chat.completion","created":7,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi\n","refusal":null},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":{"reasoning_tokens":0}}}"#
        );
        let call = |id: &str| Part::ToolCall {
            id: id.into(),
            name: "f".into(),
            arguments: "{\"a\":1}".into(),
            cache: None,
        };
        let reasoning = |t: &str, sig: Option<&str>| Part::Reasoning {
            text: t.into(),
            signature: sig.map(Into::into),
            redacted: None,
        };
        r.content = vec![
            reasoning("think", Some("s0")),
            reasoning("", Some("sig1")),
            call("c1"),
            call("c2"),
        ];
        r.finish = None;
        r.created = Some(9);
        r.usage.cache_write_tokens = 4;
        r.usage.cache_read_tokens = 1;
        r.usage.reasoning_tokens = 1;
        let v: Value =
            serde_json::from_slice(&encode_response(&r, &opts).expect("encodes")).expect("JSON");
        let call_json = |id: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}});
        let mut first = call_json("c1");
        first["extra_content"] = json!({"google": {"thought_signature": "sig1"}});
        assert_eq!(
            v,
            json!({
                "id": "chatcmpl-\"1\"", "object": "chat.completion", "created": 9, "model": "m",
                "choices": [{"index": 0, "message": {
                    "role": "assistant", "content": null, "refusal": null,
                    "reasoning_content": "think", "tool_calls": [first, call_json("c2")]
                }, "logprobs": null, "finish_reason": null}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5,
                    "prompt_tokens_details": {"cached_tokens": 1, "cache_write_tokens": 4},
                    "completion_tokens_details": {"reasoning_tokens": 1}}
            })
        );
        r.content = vec![Part::text("I can't help with that.")];
        r.finish = Some(FinishReason::Refusal);
        let v: Value =
            serde_json::from_slice(&encode_response(&r, &opts).expect("encodes")).expect("JSON");
        assert_eq!(v["choices"][0]["message"]["content"], Value::Null);
        assert_eq!(
            v["choices"][0]["message"]["refusal"],
            "I can't help with that."
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
    }

    /// The hand-written hot chunks are byte for byte what serde wrote for them.
    #[test]
    fn hot_chunks_match_serde() {
        let opts = Options {
            created: 1_700_000_000,
            ..Options::default()
        };
        let mut e = StreamEncoder::new(&opts);
        let mut out = Vec::new();
        e.encode(
            &StreamEvent::MessageStart {
                id: "chatcmpl-\"x\"\n".into(),
                model: "gpt-4o\\é".into(),
            },
            &mut out,
        )
        .expect("encodes");
        e.encode(
            &StreamEvent::BlockStart {
                index: 3,
                kind: BlockKind::ToolCall {
                    id: "call_1".into(),
                    name: "f".into(),
                },
            },
            &mut out,
        )
        .expect("encodes");
        let text = "héllo \"w\"\n\u{1}";
        let cases: Vec<(StreamEvent, OutDelta<'_>)> = vec![
            (
                StreamEvent::TextDelta {
                    index: 0,
                    text: text.into(),
                },
                OutDelta {
                    content: Some(text),
                    ..OutDelta::default()
                },
            ),
            (
                StreamEvent::ReasoningDelta {
                    index: 0,
                    text: text.into(),
                },
                OutDelta {
                    reasoning_content: Some(text),
                    ..OutDelta::default()
                },
            ),
            (
                StreamEvent::ToolArgsDelta {
                    index: 3,
                    json: "{\"a\":".into(),
                },
                OutDelta {
                    tool_calls: Some([OutCall {
                        index: 0,
                        id: None,
                        ty: None,
                        function: OutFn {
                            name: None,
                            arguments: "{\"a\":",
                        },
                        extra_content: None,
                    }]),
                    ..OutDelta::default()
                },
            ),
        ];
        for (ev, delta) in cases {
            let mut got = Vec::new();
            e.encode(&ev, &mut got).expect("encodes");
            let mut want = Vec::new();
            e.chunk(&mut want, delta, None);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
