//! Anthropic Messages: requests, responses, SSE events and errors.
//!
//! ## Input tokens in `message_start`
//!
//! Anthropic clients read `input_tokens` from `message_start`, but OpenAI and Bedrock report
//! usage only at the end of a stream. [`StreamEncoder`] holds `message_start` for one event: if
//! that event is a usage report (Gemini, Anthropic upstreams), its input tokens go into
//! `message_start`; otherwise `message_start` carries [`Options::input_tokens_hint`] (e.g. the
//! gateway's own count of the prompt), or 0. Either way the upstream's final figures, input
//! tokens and cache tokens included, are sent in `message_delta.usage`, which the Anthropic SDKs
//! apply over `message_start`'s.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    Error, ErrorKind, Options, Protocol, ProviderError,
    ir::{
        BlockKind, CacheControl, ChatRequest, ChatResponse, Effort, FinishReason, ImageSource,
        Message, Part, RawJson, Reasoning, ResponseFormat, Role, StreamEvent, SystemPart, Tool,
        ToolChoice, Usage, UsageUpdate,
    },
    sse::{SseReader, write_event},
    util::{
        Fields, Obj, arr, bool_of, decode_cache_control, extra_fields, f64_of, lossy, merged_turns,
        obj, opt_str, parse_request, parse_upstream, str_of, to_vec, u32_of, write_json_str,
        write_u64,
    },
};

const P: Protocol = Protocol::Anthropic;

// ---------------------------------------------------------------------------------------------
// Requests

/// Decodes a Messages request.
pub fn decode_request(body: &[u8], opts: &Options) -> Result<ChatRequest, Error> {
    let o = parse_request(body, opts)?;
    let mut r = ChatRequest::default();
    let mut disable_parallel = None;
    for (k, v) in &o {
        match k.as_str() {
            "model" => str_of(v, "model")?.clone_into(&mut r.model),
            "system" => match v {
                Value::Null => {}
                Value::String(s) => r.system.push(SystemPart::new(s.clone())),
                Value::Array(a) => {
                    for (i, b) in a.iter().enumerate() {
                        let p = format!("system[{i}]");
                        if b.get("type").and_then(Value::as_str) != Some("text") {
                            return Err(Error::invalid(p, "system blocks must be text"));
                        }
                        r.system.push(SystemPart {
                            text: str_of(b.get("text").unwrap_or(&Value::Null), &p)?.to_owned(),
                            developer: false,
                            cache: decode_cache_control(b.get("cache_control"), &p)?,
                        });
                    }
                }
                _ => return Err(Error::invalid("system", "expected a string or an array")),
            },
            "messages" => {
                for (i, m) in arr(v, "messages")?.iter().enumerate() {
                    let p = format!("messages[{i}]");
                    let role = Role::decode(m, &p)?;
                    let content = decode_content(m.get("content").unwrap_or(&Value::Null), &p)?;
                    r.messages.push(Message::new(role, content));
                }
            }
            "tools" => {
                for (i, t) in arr(v, "tools")?.iter().enumerate() {
                    let p = format!("tools[{i}]");
                    let t = obj(t, &p)?;
                    if let Some(ty) = t
                        .get("type")
                        .and_then(Value::as_str)
                        .filter(|t| *t != "custom")
                    {
                        return Err(Error::unsupported(
                            format!("{p}.type"),
                            Protocol::OpenAiChat,
                            if ty.is_empty() {
                                ""
                            } else {
                                "server tools are not translated"
                            },
                        ));
                    }
                    r.tools.push(Tool {
                        name: str_of(t.get("name").unwrap_or(&Value::Null), &format!("{p}.name"))?
                            .to_owned(),
                        description: opt_str(t, "description"),
                        parameters: t
                            .get("input_schema")
                            .unwrap_or(&json!({"type": "object"}))
                            .into(),
                        strict: t.get("strict").and_then(Value::as_bool),
                        cache: decode_cache_control(t.get("cache_control"), &p)?,
                    });
                }
            }
            "tool_choice" => {
                if !v.is_null() {
                    r.tool_choice = Some(match v.get("type").and_then(Value::as_str) {
                        Some("auto") => ToolChoice::Auto,
                        Some("none") => ToolChoice::None,
                        Some("any") => ToolChoice::Required,
                        Some("tool") => ToolChoice::Named(
                            str_of(v.get("name").unwrap_or(&Value::Null), "tool_choice.name")?
                                .to_owned(),
                        ),
                        _ => return Err(Error::invalid("tool_choice.type", "unknown tool_choice")),
                    });
                    disable_parallel = v.get("disable_parallel_tool_use").and_then(Value::as_bool);
                }
            }
            "max_tokens" => r.max_tokens = u32_of(v, k)?,
            "temperature" => r.temperature = f64_of(v, k)?,
            "top_p" => r.top_p = f64_of(v, k)?,
            "top_k" => r.top_k = u32_of(v, k)?,
            "stop_sequences" => {
                if !v.is_null() {
                    for s in arr(v, k)? {
                        r.stop.push(str_of(s, k)?.to_owned());
                    }
                }
            }
            "stream" => r.stream = bool_of(v, k)?.unwrap_or(false),
            "metadata" => {
                if let Some(u) = v.get("user_id").and_then(Value::as_str) {
                    r.user = Some(u.to_owned());
                }
                if v.as_object()
                    .is_some_and(|m| m.keys().any(|k| k != "user_id"))
                {
                    r.extra.push(("metadata".into(), v.clone()));
                }
            }
            "thinking" => {
                if !v.is_null() {
                    r.reasoning = Some(match v.get("type").and_then(Value::as_str) {
                        Some("enabled") => Reasoning {
                            budget_tokens: u32_of(
                                v.get("budget_tokens").unwrap_or(&Value::Null),
                                "thinking.budget_tokens",
                            )?,
                            ..Reasoning::default()
                        },
                        Some("disabled") => Reasoning {
                            disabled: true,
                            ..Reasoning::default()
                        },
                        _ => {
                            return Err(Error::unsupported(
                                "thinking.type",
                                Protocol::OpenAiChat,
                                "only enabled and disabled thinking are translated",
                            ));
                        }
                    });
                }
            }
            "output_config" | "output_format" => {
                let fmt = if k == "output_config" {
                    v.get("format")
                } else {
                    Some(v)
                };
                if let Some(f) = fmt.filter(|f| !f.is_null()) {
                    if f.get("type").and_then(Value::as_str) != Some("json_schema") {
                        return Err(Error::invalid(
                            format!("{k}.type"),
                            "only json_schema is translated",
                        ));
                    }
                    r.response_format = Some(ResponseFormat::JsonSchema {
                        name: None,
                        description: None,
                        schema: f.get("schema").cloned().unwrap_or_else(|| json!({})),
                        strict: None,
                    });
                }
                if let Some(e) = v
                    .get("effort")
                    .and_then(Value::as_str)
                    .filter(|_| k == "output_config")
                {
                    let effort = Effort::parse(e)
                        .ok_or_else(|| Error::invalid("output_config.effort", "unknown effort"))?;
                    r.reasoning.get_or_insert_with(Reasoning::default).effort = Some(effort);
                }
            }
            _ => r.extra.push((k.clone(), v.clone())),
        }
    }
    if disable_parallel == Some(true) {
        r.parallel_tool_calls = Some(false);
    }
    if !r.extra.is_empty() {
        r.extra_from = Some(P);
    }
    Ok(r)
}

fn decode_image(b: &Value, p: &str) -> Result<ImageSource, Error> {
    let src = b
        .get("source")
        .ok_or_else(|| Error::invalid(p, "missing source"))?;
    match src.get("type").and_then(Value::as_str) {
        Some("base64") => Ok(ImageSource::Base64 {
            media_type: src
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
            data: str_of(
                src.get("data").unwrap_or(&Value::Null),
                &format!("{p}.source.data"),
            )?
            .to_owned(),
        }),
        Some("url") => Ok(ImageSource::Url(
            str_of(
                src.get("url").unwrap_or(&Value::Null),
                &format!("{p}.source.url"),
            )?
            .to_owned(),
        )),
        _ => Err(Error::unsupported(
            format!("{p}.source.type"),
            Protocol::OpenAiChat,
            "only base64 and url images are translated",
        )),
    }
}

fn decode_content(v: &Value, p: &str) -> Result<Vec<Part>, Error> {
    let blocks = match v {
        Value::String(s) => return Ok(vec![Part::text(s.clone())]),
        Value::Array(a) => a,
        _ => {
            return Err(Error::invalid(
                format!("{p}.content"),
                "expected a string or an array",
            ));
        }
    };
    let mut out = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{i}]");
        let cache = decode_cache_control(b.get("cache_control"), &bp)?;
        let part = match b.get("type").and_then(Value::as_str) {
            Some("text") => Part::Text {
                text: str_of(b.get("text").unwrap_or(&Value::Null), &bp)?.to_owned(),
                cache,
            },
            Some("image") => Part::Image {
                source: decode_image(b, &bp)?,
                detail: None,
                cache,
            },
            Some("tool_use") => Part::ToolCall {
                id: str_of(b.get("id").unwrap_or(&Value::Null), &format!("{bp}.id"))?.to_owned(),
                name: str_of(b.get("name").unwrap_or(&Value::Null), &format!("{bp}.name"))?
                    .to_owned(),
                arguments: to_string(b.get("input").unwrap_or(&json!({}))),
                cache,
            },
            Some("tool_result") => {
                let content = match b.get("content") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(c) => decode_content(c, &bp)?,
                };
                Part::ToolResult {
                    call_id: str_of(
                        b.get("tool_use_id").unwrap_or(&Value::Null),
                        &format!("{bp}.tool_use_id"),
                    )?
                    .to_owned(),
                    name: None,
                    content,
                    is_error: b.get("is_error").and_then(Value::as_bool).unwrap_or(false),
                    cache,
                }
            }
            Some("thinking") => Part::Reasoning {
                text: b
                    .get("thinking")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                signature: b
                    .get("signature")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                redacted: None,
            },
            Some("redacted_thinking") => Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some(
                    str_of(b.get("data").unwrap_or(&Value::Null), &format!("{bp}.data"))?
                        .to_owned(),
                ),
            },
            _ => {
                return Err(Error::unsupported(
                    format!("{bp}.type"),
                    Protocol::OpenAiChat,
                    "this content block is not translated",
                ));
            }
        };
        out.push(part);
    }
    Ok(out)
}

fn to_string(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

// The request is written from borrowed, typed parts: no JSON tree is built and nothing is
// cloned (schemas included), which is most of the cost of a translation.

#[derive(Serialize)]
struct ACache<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'a str>,
}

fn cache_of(c: Option<&CacheControl>) -> Option<ACache<'_>> {
    c.map(|c| ACache {
        ty: "ephemeral",
        ttl: c.ttl.as_deref(),
    })
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum ASource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ABlock<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<ACache<'a>>,
    },
    Image {
        source: ASource<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<ACache<'a>>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a serde_json::value::RawValue,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<ACache<'a>>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<ABlock<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<ACache<'a>>,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

#[derive(Serialize)]
struct AMsg<'a> {
    role: &'static str,
    content: Vec<ABlock<'a>>,
}

#[derive(Serialize)]
struct ATool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a RawJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<ACache<'a>>,
}

#[derive(Serialize)]
struct AToolChoice<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize)]
struct AMeta<'a> {
    user_id: &'a str,
}

#[derive(Serialize)]
struct AReq<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<ABlock<'a>>,
    messages: Vec<AMsg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ATool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<AToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<Value>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<AMeta<'a>>,
}

/// Encodes a Messages request. Consecutive messages of one role are merged into one turn.
///
/// Written by hand from the request, byte for byte what [`encode_request_general`] writes
/// through serde (a property test checks it): no intermediate structure, no per-field
/// serializer dispatch.
pub fn encode_request(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    use crate::util::{write_json_str, write_u64};
    let mut out = Vec::with_capacity(crate::json_out::request_size_hint(r));
    out.extend_from_slice(b"{\"model\":");
    write_json_str(&mut out, &r.model);
    out.extend_from_slice(b",\"max_tokens\":");
    write_u64(
        &mut out,
        u64::from(r.max_tokens.unwrap_or(opts.default_max_tokens)),
    );
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"system\":[");
        for (k, s) in r.system.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_text_block(&mut out, &s.text, s.cache.as_ref());
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"messages\":[");
    for (i, turn) in merged_turns(&r.messages).enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"role\":");
        write_json_str(&mut out, turn.role.as_str());
        out.extend_from_slice(b",\"content\":[");
        for (j, part) in turn.parts().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            write_block(
                &mut out,
                part,
                &|| format!("messages[{i}].content[{j}]"),
                opts,
            )?;
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if !r.tools.is_empty() {
        out.extend_from_slice(b",\"tools\":[");
        for (k, t) in r.tools.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"name\":");
            write_json_str(&mut out, &t.name);
            if let Some(d) = &t.description {
                out.extend_from_slice(b",\"description\":");
                write_json_str(&mut out, d);
            }
            out.extend_from_slice(b",\"input_schema\":");
            out.extend_from_slice(t.parameters.get().as_bytes());
            if let Some(strict) = t.strict {
                out.extend_from_slice(if strict {
                    b",\"strict\":true"
                } else {
                    b",\"strict\":false"
                });
            }
            write_cache(&mut out, t.cache.as_ref());
            out.push(b'}');
        }
        out.push(b']');
    }
    let disable_parallel = r.parallel_tool_calls == Some(false);
    if r.tool_choice.is_some() || disable_parallel {
        let (ty, name) = match r.tool_choice.as_ref().unwrap_or(&ToolChoice::Auto) {
            ToolChoice::None => ("none", None),
            ToolChoice::Required => ("any", None),
            ToolChoice::Named(n) => ("tool", Some(n.as_str())),
            _ => ("auto", None),
        };
        out.extend_from_slice(b",\"tool_choice\":{\"type\":");
        write_json_str(&mut out, ty);
        if let Some(n) = name {
            out.extend_from_slice(b",\"name\":");
            write_json_str(&mut out, n);
        }
        if disable_parallel {
            out.extend_from_slice(b",\"disable_parallel_tool_use\":true");
        }
        out.push(b'}');
    }
    match &r.response_format {
        None | Some(ResponseFormat::Text) => {}
        Some(ResponseFormat::JsonObject) => {
            lossy(
                opts,
                "response_format",
                P,
                "Anthropic has no JSON mode; it maps to the schema {\"type\":\"object\"}",
            )?;
            out.extend_from_slice(
                b",\"output_config\":{\"format\":{\"schema\":{\"type\":\"object\"},\"type\":\"json_schema\"}}",
            );
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            out.extend_from_slice(b",\"output_config\":{\"format\":{\"schema\":");
            crate::json_out::write_value(&mut out, schema)?;
            out.extend_from_slice(b",\"type\":\"json_schema\"}}");
        }
    }
    if let Some(t) = r.temperature {
        out.extend_from_slice(b",\"temperature\":");
        crate::json_out::write_f64(&mut out, t);
    }
    if let Some(t) = r.top_p {
        out.extend_from_slice(b",\"top_p\":");
        crate::json_out::write_f64(&mut out, t);
    }
    if let Some(k) = r.top_k {
        out.extend_from_slice(b",\"top_k\":");
        write_u64(&mut out, u64::from(k));
    }
    if !r.stop.is_empty() {
        out.extend_from_slice(b",\"stop_sequences\":");
        crate::json_out::write_str_array(&mut out, &r.stop);
    }
    refuse_unsupported_sampling(r, opts)?;
    if let Some(thinking) = thinking_of(r, opts)? {
        out.extend_from_slice(b",\"thinking\":");
        crate::json_out::write_value(&mut out, &thinking)?;
    }
    if r.stream {
        out.extend_from_slice(b",\"stream\":true");
    }
    if let Some(u) = r.user.as_deref() {
        out.extend_from_slice(b",\"metadata\":{\"user_id\":");
        write_json_str(&mut out, u);
        out.push(b'}');
    }
    let mut extra = Obj::new();
    extra_fields(r, P, opts, &mut extra)?;
    crate::json_out::write_extra(&mut out, &extra)?;
    out.push(b'}');
    Ok(out)
}

/// `,"cache_control":{..}` when there is one.
fn write_cache(out: &mut Vec<u8>, c: Option<&CacheControl>) {
    let Some(c) = c else { return };
    out.extend_from_slice(b",\"cache_control\":{\"type\":\"ephemeral\"");
    if let Some(ttl) = &c.ttl {
        out.extend_from_slice(b",\"ttl\":");
        crate::util::write_json_str(out, ttl);
    }
    out.push(b'}');
}

fn write_text_block(out: &mut Vec<u8>, text: &str, cache: Option<&CacheControl>) {
    out.extend_from_slice(b"{\"type\":\"text\",\"text\":");
    crate::util::write_json_str(out, text);
    write_cache(out, cache);
    out.push(b'}');
}

/// One content block of a request, as [`block`] builds it for serde; `p` names it in an error.
fn write_block(
    out: &mut Vec<u8>,
    part: &Part,
    p: &dyn Fn() -> String,
    opts: &Options,
) -> Result<(), Error> {
    use crate::util::write_json_str;
    match part {
        Part::Text { text, cache } => write_text_block(out, text, cache.as_ref()),
        Part::Image {
            source,
            detail,
            cache,
        } => {
            if detail.is_some() {
                lossy(opts, "detail", P, "Anthropic images have no detail level")?;
            }
            out.extend_from_slice(b"{\"type\":\"image\",\"source\":{\"type\":");
            match source {
                ImageSource::Base64 { media_type, data } => {
                    out.extend_from_slice(b"\"base64\",\"media_type\":");
                    write_json_str(out, media_type);
                    out.extend_from_slice(b",\"data\":");
                    write_json_str(out, data);
                }
                ImageSource::Url(url) => {
                    out.extend_from_slice(b"\"url\",\"url\":");
                    write_json_str(out, url);
                }
            }
            out.push(b'}');
            write_cache(out, cache.as_ref());
            out.push(b'}');
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            cache,
        } => {
            let input = crate::util::args_object(arguments, p)?;
            out.extend_from_slice(b"{\"type\":\"tool_use\",\"id\":");
            write_json_str(out, id);
            out.extend_from_slice(b",\"name\":");
            write_json_str(out, name);
            out.extend_from_slice(b",\"input\":");
            out.extend_from_slice(input.get().as_bytes());
            write_cache(out, cache.as_ref());
            out.push(b'}');
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
            cache,
            ..
        } => {
            out.extend_from_slice(b"{\"type\":\"tool_result\",\"tool_use_id\":");
            write_json_str(out, call_id);
            out.extend_from_slice(b",\"content\":[");
            for (k, x) in content.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_block(out, x, &|| format!("{}.content[{k}]", p()), opts)?;
            }
            out.push(b']');
            if *is_error {
                out.extend_from_slice(b",\"is_error\":true");
            }
            write_cache(out, cache.as_ref());
            out.push(b'}');
        }
        Part::Reasoning {
            text,
            signature,
            redacted,
        } => {
            if let Some(d) = redacted {
                out.extend_from_slice(b"{\"type\":\"redacted_thinking\",\"data\":");
                write_json_str(out, d);
            } else {
                out.extend_from_slice(b"{\"type\":\"thinking\",\"thinking\":");
                write_json_str(out, text);
                out.extend_from_slice(b",\"signature\":");
                write_json_str(out, signature.as_deref().unwrap_or(""));
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// Refuses the sampling parameters Anthropic has not (unless mapped lossily by choice).
fn refuse_unsupported_sampling(r: &ChatRequest, opts: &Options) -> Result<(), Error> {
    if r.seed.is_some() {
        lossy(opts, "seed", P, "Anthropic has no seed")?;
    }
    if r.presence_penalty.is_some() {
        lossy(
            opts,
            "presence_penalty",
            P,
            "Anthropic has no presence penalty",
        )?;
    }
    if r.frequency_penalty.is_some() {
        lossy(
            opts,
            "frequency_penalty",
            P,
            "Anthropic has no frequency penalty",
        )?;
    }
    Ok(())
}

/// `thinking`, from the request's reasoning settings (refusing what maps only lossily).
fn thinking_of(r: &ChatRequest, opts: &Options) -> Result<Option<Value>, Error> {
    let Some(re) = &r.reasoning else {
        return Ok(None);
    };
    if re.include_thoughts == Some(false) {
        lossy(
            opts,
            "include_thoughts",
            P,
            "Anthropic returns thinking whenever it is enabled",
        )?;
    }
    Ok(if re.disabled {
        Some(json!({"type": "disabled"}))
    } else if let Some(b) = re.budget_tokens {
        Some(json!({"type": "enabled", "budget_tokens": b}))
    } else if let Some(e) = re.effort {
        lossy(
            opts,
            "reasoning_effort",
            P,
            "reasoning_effort maps to a thinking budget only approximately",
        )?;
        Some(if e == Effort::None {
            json!({"type": "disabled"})
        } else {
            json!({"type": "enabled", "budget_tokens": e.budget_tokens()})
        })
    } else {
        None
    })
}

/// Encodes a Messages request through serde's derived structures: the reference the
/// hand-written [`encode_request`] is tested against, byte for byte.
pub fn encode_request_general(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    let system = r
        .system
        .iter()
        .map(|s| ABlock::Text {
            text: &s.text,
            cache_control: cache_of(s.cache.as_ref()),
        })
        .collect();
    let mut messages = Vec::with_capacity(r.messages.len());
    for (i, turn) in merged_turns(&r.messages).enumerate() {
        let mut content = Vec::with_capacity(turn.len());
        for (j, part) in turn.parts().enumerate() {
            content.push(block(
                part,
                &|| format!("messages[{i}].content[{j}]"),
                opts,
            )?);
        }
        messages.push(AMsg {
            role: turn.role.as_str(),
            content,
        });
    }
    let tools = r
        .tools
        .iter()
        .map(|t| ATool {
            name: &t.name,
            description: t.description.as_deref(),
            input_schema: &t.parameters,
            strict: t.strict,
            cache_control: cache_of(t.cache.as_ref()),
        })
        .collect();
    let disable_parallel = r.parallel_tool_calls == Some(false);
    let tool_choice = (r.tool_choice.is_some() || disable_parallel).then(|| {
        let (ty, name) = match r.tool_choice.as_ref().unwrap_or(&ToolChoice::Auto) {
            ToolChoice::None => ("none", None),
            ToolChoice::Required => ("any", None),
            ToolChoice::Named(n) => ("tool", Some(n.as_str())),
            _ => ("auto", None),
        };
        AToolChoice {
            ty,
            name,
            disable_parallel_tool_use: disable_parallel.then_some(true),
        }
    });
    let output_config = match &r.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::JsonObject) => {
            lossy(
                opts,
                "response_format",
                P,
                "Anthropic has no JSON mode; it maps to the schema {\"type\":\"object\"}",
            )?;
            Some(json!({"format": {"type": "json_schema", "schema": {"type": "object"}}}))
        }
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            Some(json!({"format": {"type": "json_schema", "schema": schema}}))
        }
    };
    refuse_unsupported_sampling(r, opts)?;
    let thinking = thinking_of(r, opts)?;
    let mut extra = Obj::new();
    extra_fields(r, P, opts, &mut extra)?;
    let req = AReq {
        model: &r.model,
        max_tokens: r.max_tokens.unwrap_or(opts.default_max_tokens),
        system,
        messages,
        tools,
        tool_choice,
        output_config,
        temperature: r.temperature,
        top_p: r.top_p,
        top_k: r.top_k,
        stop_sequences: &r.stop,
        thinking,
        stream: r.stream,
        metadata: r.user.as_deref().map(|u| AMeta { user_id: u }),
    };
    crate::json_out::to_vec_with_extra(&req, &extra, crate::json_out::request_size_hint(r))
        .map_err(|e| Error::invalid("", e.to_string()))
}

/// One content block; `p` names it in an error.
fn block<'a>(part: &'a Part, p: &dyn Fn() -> String, opts: &Options) -> Result<ABlock<'a>, Error> {
    Ok(match part {
        Part::Text { text, cache } => ABlock::Text {
            text,
            cache_control: cache_of(cache.as_ref()),
        },
        Part::Image {
            source,
            detail,
            cache,
        } => {
            if detail.is_some() {
                lossy(opts, "detail", P, "Anthropic images have no detail level")?;
            }
            let source = match source {
                ImageSource::Base64 { media_type, data } => ASource::Base64 { media_type, data },
                ImageSource::Url(url) => ASource::Url { url },
            };
            ABlock::Image {
                source,
                cache_control: cache_of(cache.as_ref()),
            }
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            cache,
        } => ABlock::ToolUse {
            id,
            name,
            input: crate::util::args_object(arguments, p)?,
            cache_control: cache_of(cache.as_ref()),
        },
        Part::ToolResult {
            call_id,
            content,
            is_error,
            cache,
            ..
        } => {
            let mut c = Vec::with_capacity(content.len());
            for (k, x) in content.iter().enumerate() {
                c.push(block(x, &|| format!("{}.content[{k}]", p()), opts)?);
            }
            ABlock::ToolResult {
                tool_use_id: call_id,
                content: c,
                is_error: *is_error,
                cache_control: cache_of(cache.as_ref()),
            }
        }
        Part::Reasoning {
            text,
            signature,
            redacted,
        } => match redacted {
            Some(d) => ABlock::RedactedThinking { data: d },
            None => ABlock::Thinking {
                thinking: text,
                signature: signature.as_deref().unwrap_or(""),
            },
        },
    })
}

// ---------------------------------------------------------------------------------------------
// Responses

fn finish_from(s: &str) -> FinishReason {
    match s {
        "end_turn" => FinishReason::Stop,
        "stop_sequence" => FinishReason::StopSequence,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::Refusal,
        o => FinishReason::Other(o.to_owned()),
    }
}

fn finish_to(f: &FinishReason) -> &str {
    match f {
        FinishReason::Stop => "end_turn",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter | FinishReason::Refusal => "refusal",
        FinishReason::Other(o) => o,
    }
}

/// Anthropic's usage, kept in its own terms so that partial updates can be recombined.
#[derive(Debug, Clone, Copy, Default)]
struct Native {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_write: u64,
}

impl Native {
    fn update(&mut self, u: &(impl Fields + ?Sized)) -> UsageUpdate {
        let mut up = UsageUpdate::default();
        let mut input_changed = false;
        if let Some(v) = u.field("input_tokens").and_then(Value::as_u64) {
            self.input = v;
            input_changed = true;
        }
        if let Some(v) = u.field("cache_read_input_tokens").and_then(Value::as_u64) {
            self.cache_read = v;
            input_changed = true;
            up.cache_read_tokens = Some(v);
        }
        if let Some(v) = u
            .field("cache_creation_input_tokens")
            .and_then(Value::as_u64)
        {
            self.cache_write = v;
            input_changed = true;
            up.cache_write_tokens = Some(v);
        }
        if let Some(v) = u.field("output_tokens").and_then(Value::as_u64) {
            self.output = v;
            up.output_tokens = Some(v);
        }
        if input_changed {
            up.input_tokens = Some(
                self.input
                    .saturating_add(self.cache_read)
                    .saturating_add(self.cache_write),
            );
        }
        up
    }
}

fn usage_to(u: &Usage) -> Value {
    json!({
        "input_tokens": u.uncached_input(),
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
        "output_tokens": u.output_tokens,
    })
}

/// Decodes a Messages response.
pub fn decode_response(body: &[u8], opts: &Options) -> Result<ChatResponse, Error> {
    match decode_response_fast(body, opts) {
        Some(r) => Ok(r),
        None => decode_response_general(body, opts),
    }
}

#[derive(Deserialize)]
struct RespIn<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<BlockIn<'a>>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    stop_sequence: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<UsageIn>,
}

crate::util::usage_fields!(UsageIn {
    "input_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens",
});

#[derive(Deserialize)]
struct BlockIn<'a> {
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_raw_text", default)]
    input: Option<&'a str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    signature: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    data: Option<Cow<'a, str>>,
    #[serde(default)]
    cache_control: Option<Box<Value>>,
}

impl<'a> RespIn<'a> {
    /// An answer read by the borrowed scanner ([`crate::json_scan`]); `None` for anything it
    /// does not expect, which serde then reads.
    fn scan(text: &'a str) -> Option<Self> {
        let mut sc = crate::json_scan::Scan::new(text);
        let mut v = RespIn {
            id: None,
            model: None,
            content: None,
            stop_reason: None,
            stop_sequence: None,
            usage: None,
        };
        sc.object(|k, sc| {
            match k {
                "id" => v.id = sc.opt_string()?,
                "model" => v.model = sc.opt_string()?,
                "content" => {
                    v.content = sc.opt_list(2, BlockIn::scan)?;
                }
                "stop_reason" => v.stop_reason = sc.opt_string()?,
                "stop_sequence" => v.stop_sequence = sc.opt_string()?,
                "usage" => {
                    if !sc.null() {
                        v.usage = Some(UsageIn::scan(sc)?);
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        sc.end()?;
        Some(v)
    }
}

impl<'a> BlockIn<'a> {
    fn scan(sc: &mut crate::json_scan::Scan<'a>) -> Option<Self> {
        let mut ty = None;
        let mut b = BlockIn {
            ty: Cow::Borrowed(""),
            text: None,
            id: None,
            name: None,
            input: None,
            thinking: None,
            signature: None,
            data: None,
            cache_control: None,
        };
        sc.object(|k, sc| {
            match k {
                "type" => ty = Some(sc.string()?),
                "text" => b.text = sc.opt_string()?,
                "id" => b.id = sc.opt_string()?,
                "name" => b.name = sc.opt_string()?,
                "input" => {
                    if !sc.null() {
                        b.input = Some(sc.raw()?);
                    }
                }
                "thinking" => b.thinking = sc.opt_string()?,
                "signature" => b.signature = sc.opt_string()?,
                "data" => b.data = sc.opt_string()?,
                // Refused by the fast path either way: serde reads it.
                "cache_control" => return None,
                _ => sc.skip()?,
            }
            Some(())
        })?;
        b.ty = ty?;
        Some(b)
    }
}

/// The typed fast path of [`decode_response`]; `None` when the general decoder must read it.
fn decode_response_fast(body: &[u8], opts: &Options) -> Option<ChatResponse> {
    if body.len() > opts.max_body_len {
        return None;
    }
    let text = std::str::from_utf8(body).ok()?;
    let v = match RespIn::scan(text) {
        Some(v) => v,
        None => serde_json::from_str(text).ok()?,
    };
    let mut r = ChatResponse {
        id: v.id.map(Cow::into_owned).unwrap_or_default(),
        model: v.model.map(Cow::into_owned).unwrap_or_default(),
        finish: v.stop_reason.as_deref().map(finish_from),
        stop_sequence: v.stop_sequence.map(Cow::into_owned),
        ..ChatResponse::default()
    };
    if let Some(u) = &v.usage {
        Native::default().update(u).apply(&mut r.usage);
    }
    for b in v.content.unwrap_or_default() {
        if b.cache_control.is_some() {
            return None;
        }
        r.content.push(match b.ty.as_ref() {
            "text" => Part::text(b.text?.into_owned()),
            "tool_use" => Part::ToolCall {
                id: b.id?.into_owned(),
                name: b.name?.into_owned(),
                arguments: crate::util::args_text_of(b.input),
                cache: None,
            },
            "thinking" => Part::Reasoning {
                text: b.thinking.map(Cow::into_owned).unwrap_or_default(),
                signature: b.signature.filter(|s| !s.is_empty()).map(Cow::into_owned),
                redacted: None,
            },
            "redacted_thinking" => Part::Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some(b.data?.into_owned()),
            },
            _ => return None,
        });
    }
    Some(r)
}

/// Decodes a Messages response with the general decoder only (no typed fast path): the
/// reference the fast path is tested against.
pub fn decode_response_general(body: &[u8], opts: &Options) -> Result<ChatResponse, Error> {
    let o = parse_upstream(body, opts)?;
    let mut r = ChatResponse {
        id: opt_str(&o, "id").unwrap_or_default(),
        model: opt_str(&o, "model").unwrap_or_default(),
        finish: o
            .get("stop_reason")
            .and_then(Value::as_str)
            .map(finish_from),
        stop_sequence: opt_str(&o, "stop_sequence"),
        ..ChatResponse::default()
    };
    if let Some(u) = o.get("usage") {
        let mut usage = Usage::default();
        Native::default().update(u).apply(&mut usage);
        r.usage = usage;
    }
    if let Some(c) = o.get("content") {
        r.content = decode_content(c, "content").map_err(|e| Error::Upstream(e.to_string()))?;
    }
    Ok(r)
}

/// Encodes a Messages response.
pub fn encode_response(r: &ChatResponse, opts: &Options) -> Result<Vec<u8>, Error> {
    let all = Options {
        lossy_all: true,
        ..opts.clone()
    };
    let mut content = Vec::with_capacity(r.content.len());
    for (i, p) in r.content.iter().enumerate() {
        content.push(
            block(p, &|| format!("content[{i}]"), &all)
                .map_err(|e| Error::Upstream(e.to_string()))?,
        );
    }
    // Arguments are kept as their text; a text no `Value` holds (a number out of range, a lone
    // surrogate) is the upstream's error, not a panic.
    let content = crate::util::to_value(&content)?;
    let v = json!({
        "id": r.id,
        "type": "message",
        "role": "assistant",
        "model": r.model,
        "content": content,
        "stop_reason": r.finish.as_ref().map(finish_to),
        "stop_sequence": r.stop_sequence,
        "usage": usage_to(&r.usage),
    });
    Ok(to_vec(&v))
}

// ---------------------------------------------------------------------------------------------
// Errors

fn kind_from_type(t: &str, status: u16) -> ErrorKind {
    match t {
        "invalid_request_error" => ErrorKind::InvalidRequest,
        "authentication_error" => ErrorKind::Authentication,
        "permission_error" => ErrorKind::PermissionDenied,
        "not_found_error" => ErrorKind::NotFound,
        "request_too_large" => ErrorKind::RequestTooLarge,
        "rate_limit_error" => ErrorKind::RateLimit,
        "overloaded_error" => ErrorKind::Overloaded,
        "timeout_error" => ErrorKind::Timeout,
        "api_error" => ErrorKind::Server,
        _ => ErrorKind::from_status(status),
    }
}

/// Decodes an Anthropic error body.
pub fn decode_error(status: u16, body: &[u8]) -> ProviderError {
    let v: Value = crate::util::from_json(body).unwrap_or(Value::Null);
    let e = v.get("error").unwrap_or(&Value::Null);
    let ty = e.get("type").and_then(Value::as_str).unwrap_or("");
    let mut pe = ProviderError::new(
        kind_from_type(ty, status),
        status,
        e.get("message").and_then(Value::as_str).map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
            str::to_owned,
        ),
    );
    if !ty.is_empty() {
        pe.provider_type = Some(ty.to_owned());
    }
    pe
}

fn error_type(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidRequest => "invalid_request_error",
        ErrorKind::Authentication => "authentication_error",
        ErrorKind::PermissionDenied => "permission_error",
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::RequestTooLarge => "request_too_large",
        ErrorKind::RateLimit => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        ErrorKind::Timeout => "timeout_error",
        _ => "api_error",
    }
}

fn error_value(e: &ProviderError) -> Value {
    let msg = match &e.param {
        Some(p) if !e.message.contains(p.as_str()) => format!("{p}: {}", e.message),
        _ => e.message.clone(),
    };
    json!({"type": "error", "error": {"type": error_type(e.kind), "message": msg}})
}

/// Encodes an error the Anthropic way: (status, body).
pub fn encode_error(e: &ProviderError) -> (u16, Vec<u8>) {
    (e.kind.status_for(P), to_vec(&error_value(e)))
}

// ---------------------------------------------------------------------------------------------
// Streams

// Rare parts are boxed and one text field takes every delta's text: the event stays small,
// which matters as serde moves it a few times per event.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Ev<'a> {
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    message: Option<Box<Value>>,
    #[serde(default)]
    content_block: Option<Box<Value>>,
    #[serde(borrow, default)]
    delta: Option<EvDelta<'a>>,
    #[serde(default)]
    usage: Option<Box<Value>>,
    #[serde(default)]
    error: Option<Box<Value>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct EvDelta<'a> {
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "type",
        default
    )]
    ty: Option<Cow<'a, str>>,
    /// `text`, `partial_json`, `thinking` or `signature`, by the delta's type.
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        default,
        alias = "partial_json",
        alias = "thinking",
        alias = "signature"
    )]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    stop_sequence: Option<Cow<'a, str>>,
}

impl<'a> Ev<'a> {
    /// An event read by the borrowed scanner ([`crate::json_scan`]); `None` for anything it
    /// does not expect, which serde then decodes.
    fn scan(data: &'a [u8]) -> Option<Self> {
        use crate::json_scan::Scan;
        let mut sc = Scan::new(std::str::from_utf8(data).ok()?);
        let mut ty = None;
        let mut ev = Ev {
            ty: Cow::Borrowed(""),
            index: None,
            message: None,
            content_block: None,
            delta: None,
            usage: None,
            error: None,
        };
        sc.object(|k, sc| {
            match k {
                "type" => ty = Some(sc.string()?),
                "index" => ev.index = sc.opt_u64()?,
                "message" => ev.message = sc.opt_value()?.map(Box::new),
                "content_block" => ev.content_block = sc.opt_value()?.map(Box::new),
                "usage" => ev.usage = sc.opt_value()?.map(Box::new),
                "error" => ev.error = sc.opt_value()?.map(Box::new),
                "delta" => {
                    if !sc.null() {
                        ev.delta = Some(EvDelta::scan(sc)?);
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        sc.end()?;
        ev.ty = ty?;
        Some(ev)
    }
}

impl<'a> EvDelta<'a> {
    fn scan(sc: &mut crate::json_scan::Scan<'a>) -> Option<Self> {
        let mut d = EvDelta {
            ty: None,
            text: None,
            stop_reason: None,
            stop_sequence: None,
        };
        let mut text_seen = false;
        sc.object(|k, sc| {
            match k {
                "type" => d.ty = sc.opt_string()?,
                // One field under four names: two of them is serde's duplicate-field error.
                "text" | "partial_json" | "thinking" | "signature" => {
                    if text_seen {
                        return None;
                    }
                    text_seen = true;
                    d.text = sc.opt_string()?;
                }
                "stop_reason" => d.stop_reason = sc.opt_string()?,
                "stop_sequence" => d.stop_sequence = sc.opt_string()?,
                _ => sc.skip()?,
            }
            Some(())
        })?;
        Some(d)
    }
}

/// Messages SSE → IR events.
#[derive(Debug)]
pub struct StreamDecoder {
    sse: SseReader,
    native: Native,
    next: usize,
    /// Anthropic block index → IR block index (None: a block not translated, skipped).
    blocks: Vec<(u64, Option<usize>)>,
    stopped: bool,
}

impl StreamDecoder {
    /// A decoder.
    pub fn new(opts: &Options) -> Self {
        Self {
            sse: SseReader::new(opts.max_body_len),
            native: Native::default(),
            next: 0,
            blocks: Vec::new(),
            stopped: false,
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
                "the stream ended before message_stop".into(),
            ));
        }
        Ok(())
    }

    fn block(&self, index: Option<u64>) -> Option<usize> {
        let i = index?;
        self.blocks
            .iter()
            .rev()
            .find(|(a, _)| *a == i)
            .and_then(|(_, b)| *b)
    }

    fn on_event(&mut self, data: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        let ev: Ev<'_> = match Ev::scan(data) {
            Some(ev) => ev,
            None => crate::util::from_json(data)
                .map_err(|e| Error::Upstream(format!("invalid event: {e}")))?,
        };
        match ev.ty.as_ref() {
            "message_start" => {
                let m = ev.message.map_or(Value::Null, |b| *b);
                out.push(StreamEvent::MessageStart {
                    id: m.get("id").and_then(Value::as_str).unwrap_or("").to_owned(),
                    model: m
                        .get("model")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                });
                if let Some(u) = m.get("usage") {
                    out.push(StreamEvent::Usage(self.native.update(u)));
                }
            }
            "content_block_start" => {
                let Some(ai) = ev.index else {
                    return Err(Error::Upstream("content_block_start without index".into()));
                };
                let cb = ev.content_block.map_or(Value::Null, |b| *b);
                let s = |k: &str| cb.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                let kind = match cb.get("type").and_then(Value::as_str) {
                    Some("text") => Some(BlockKind::Text),
                    Some("tool_use") => Some(BlockKind::ToolCall {
                        id: s("id"),
                        name: s("name"),
                    }),
                    Some("thinking") => Some(BlockKind::Reasoning),
                    Some("redacted_thinking") => {
                        Some(BlockKind::RedactedReasoning { data: s("data") })
                    }
                    _ => None,
                };
                let ir = kind.map(|kind| {
                    let index = self.next;
                    self.next += 1;
                    out.push(StreamEvent::BlockStart { index, kind });
                    index
                });
                if self.blocks.len() >= 4096 {
                    return Err(Error::Upstream("too many content blocks".into()));
                }
                self.blocks.push((ai, ir));
                if let Some(index) = ir {
                    let t = s("text");
                    if !t.is_empty() {
                        out.push(StreamEvent::TextDelta { index, text: t });
                    }
                    let t = s("thinking");
                    if !t.is_empty() {
                        out.push(StreamEvent::ReasoningDelta { index, text: t });
                    }
                    let sig = s("signature");
                    if !sig.is_empty() {
                        out.push(StreamEvent::SignatureDelta {
                            index,
                            signature: sig,
                        });
                    }
                    if let Some(input) = cb
                        .get("input")
                        .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                    {
                        out.push(StreamEvent::ToolArgsDelta {
                            index,
                            json: to_string(input),
                        });
                    }
                }
            }
            "content_block_delta" => {
                let Some(index) = self.block(ev.index) else {
                    return Ok(());
                };
                let Some(d) = ev.delta else { return Ok(()) };
                match d.ty.as_deref() {
                    Some("text_delta") => out.push(StreamEvent::TextDelta {
                        index,
                        text: d.text.unwrap_or_default().into_owned(),
                    }),
                    Some("input_json_delta") => {
                        let j = d.text.unwrap_or_default();
                        if !j.is_empty() {
                            out.push(StreamEvent::ToolArgsDelta {
                                index,
                                json: j.into_owned(),
                            });
                        }
                    }
                    Some("thinking_delta") => out.push(StreamEvent::ReasoningDelta {
                        index,
                        text: d.text.unwrap_or_default().into_owned(),
                    }),
                    Some("signature_delta") => out.push(StreamEvent::SignatureDelta {
                        index,
                        signature: d.text.unwrap_or_default().into_owned(),
                    }),
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(index) = self.block(ev.index) {
                    out.push(StreamEvent::BlockStop { index });
                }
            }
            "message_delta" => {
                if let Some(d) = ev.delta
                    && let Some(sr) = d.stop_reason
                {
                    out.push(StreamEvent::Finish {
                        reason: finish_from(&sr),
                        stop_sequence: d.stop_sequence.map(Cow::into_owned),
                    });
                }
                if let Some(u) = ev.usage {
                    out.push(StreamEvent::Usage(self.native.update(&u)));
                }
            }
            "message_stop" => {
                out.push(StreamEvent::MessageStop);
                self.stopped = true;
            }
            "error" => {
                let body = to_vec(
                    &json!({"type": "error", "error": ev.error.map_or(Value::Null, |b| *b)}),
                );
                out.push(StreamEvent::Error(decode_error(200, &body)));
                self.stopped = true;
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[derive(Serialize)]
struct OutDeltaEv<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    index: usize,
    delta: OutDelta<'a>,
}

#[derive(Serialize, Clone, Copy)]
struct OutDelta<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    partial_json: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    signature: Option<&'a str>,
}

impl OutDelta<'_> {
    fn new(ty: &'static str) -> Self {
        Self {
            ty,
            text: None,
            partial_json: None,
            thinking: None,
            signature: None,
        }
    }

    /// Writes the `content_block_delta` event of block `index` carrying this delta, by hand
    /// (byte for byte what serde writes; a test checks it).
    fn write(self, index: usize, out: &mut Vec<u8>) {
        out.extend_from_slice(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
        );
        write_u64(out, index as u64);
        out.extend_from_slice(b",\"delta\":{\"type\":");
        write_json_str(out, self.ty);
        for (key, v) in [
            (&b",\"text\":"[..], self.text),
            (b",\"partial_json\":", self.partial_json),
            (b",\"thinking\":", self.thinking),
            (b",\"signature\":", self.signature),
        ] {
            if let Some(v) = v {
                out.extend_from_slice(key);
                write_json_str(out, v);
            }
        }
        out.extend_from_slice(b"}}\n\n");
    }
}

/// IR events → Messages SSE. See the module docs for how input tokens are reported.
#[derive(Debug)]
pub struct StreamEncoder {
    /// `message_start` waiting one event for usage.
    pending_start: Option<(String, String)>,
    /// `message_delta` waiting for usage.
    pending_finish: Option<(FinishReason, Option<String>)>,
    usage: Usage,
    usage_seen: bool,
    finish_sent: bool,
    hint: Option<u64>,
    done: bool,
}

impl StreamEncoder {
    /// An encoder.
    pub fn new(opts: &Options) -> Self {
        Self {
            pending_start: None,
            pending_finish: None,
            usage: Usage::default(),
            usage_seen: false,
            finish_sent: false,
            hint: opts.input_tokens_hint,
            done: false,
        }
    }

    fn flush_start(&mut self, out: &mut Vec<u8>) {
        if let Some((id, model)) = self.pending_start.take() {
            let mut u = usage_to(&self.usage);
            if !self.usage_seen {
                u["input_tokens"] = self.hint.unwrap_or(0).into();
            }
            // Output so far: Anthropic itself starts at 1; keep the upstream's figure.
            let msg = json!({"type": "message_start", "message": {
                "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": u,
            }});
            write_event(out, Some("message_start"), &msg);
        }
    }

    fn flush_finish(&mut self, out: &mut Vec<u8>) {
        if let Some((reason, seq)) = self.pending_finish.take() {
            self.finish_sent = true;
            let d = json!({"type": "message_delta",
                "delta": {"stop_reason": finish_to(&reason), "stop_sequence": seq},
                "usage": usage_to(&self.usage)});
            write_event(out, Some("message_delta"), &d);
        }
    }

    /// Encodes one event.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        if let StreamEvent::Usage(u) = ev {
            u.apply(&mut self.usage);
            if u.input_tokens.is_some() {
                self.usage_seen = true;
            }
            self.flush_start(out);
            if self.pending_finish.is_some() {
                self.flush_finish(out);
            }
            return Ok(());
        }
        self.flush_start(out);
        match ev {
            StreamEvent::MessageStart { id, model } => {
                self.pending_start = Some((id.clone(), model.clone()));
            }
            StreamEvent::BlockStart { index, kind } => {
                let cb = match kind {
                    BlockKind::Text => json!({"type": "text", "text": ""}),
                    BlockKind::ToolCall { id, name } => {
                        json!({"type": "tool_use", "id": id, "name": name, "input": {}})
                    }
                    BlockKind::Reasoning => {
                        json!({"type": "thinking", "thinking": "", "signature": ""})
                    }
                    BlockKind::RedactedReasoning { data } => {
                        json!({"type": "redacted_thinking", "data": data})
                    }
                };
                write_event(
                    out,
                    Some("content_block_start"),
                    &json!({"type": "content_block_start", "index": index, "content_block": cb}),
                );
            }
            StreamEvent::TextDelta { index, text } => OutDelta {
                text: Some(text),
                ..OutDelta::new("text_delta")
            }
            .write(*index, out),
            StreamEvent::ToolArgsDelta { index, json } => OutDelta {
                partial_json: Some(json),
                ..OutDelta::new("input_json_delta")
            }
            .write(*index, out),
            StreamEvent::ReasoningDelta { index, text } => OutDelta {
                thinking: Some(text),
                ..OutDelta::new("thinking_delta")
            }
            .write(*index, out),
            StreamEvent::SignatureDelta { index, signature } => OutDelta {
                signature: Some(signature),
                ..OutDelta::new("signature_delta")
            }
            .write(*index, out),
            StreamEvent::BlockStop { index } => {
                write_event(
                    out,
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": index}),
                );
            }
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => self.pending_finish = Some((reason.clone(), stop_sequence.clone())),
            StreamEvent::MessageStop => {
                if self.pending_finish.is_none() && !self.finish_sent {
                    self.pending_finish = Some((FinishReason::Stop, None));
                }
                self.flush_finish(out);
                write_event(out, Some("message_stop"), &json!({"type": "message_stop"}));
                self.done = true;
            }
            StreamEvent::Error(e) => {
                write_event(out, Some("error"), &error_value(e));
                self.done = true;
            }
            StreamEvent::Usage(_) => {}
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

    /// The answer scanner takes typical answers (it is not silently handed to serde) and
    /// reads them as the general decoder does.
    #[test]
    fn the_answer_scanner_takes_typical_answers() {
        let opts = Options::default();
        for body in [
            r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Tomorrow: \"rain\"\n"},{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{ "city" : "Paris", "n": [1, null, true] }}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":412,"cache_creation_input_tokens":0,"cache_read_input_tokens":128,"output_tokens":61,"service_tier":"standard"}}"#,
            r#"{"id":"m","model":"c","content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"redacted_thinking","data":"xx"},{"type":"text","text":"ok"}],"stop_reason":"end_turn","usage":{"input_tokens":null,"output_tokens":3}}"#,
        ] {
            assert!(RespIn::scan(body).is_some(), "{body}");
            assert_eq!(
                decode_response_fast(body.as_bytes(), &opts),
                decode_response_general(body.as_bytes(), &opts).ok(),
                "{body}"
            );
        }
        for odd in [
            r#"{"id":"m","id":"n","content":[]}"#,
            r#"{"content":[{"type":"text","text":"x","cache_control":{"type":"ephemeral"}}]}"#,
            r#"{"content":[{"text":"no type"}]}"#,
            r#"{"content":[]} x"#,
        ] {
            assert!(RespIn::scan(odd).is_none(), "{odd}");
        }
    }

    /// The borrowed event scanner and serde agree on every event the scanner accepts: the
    /// captured Messages streams and hand-made edge cases.
    #[test]
    fn the_event_scanner_agrees_with_serde() {
        let mut events: Vec<String> = [
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi \"x\"\n"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":5}}"#,
            r#"{"type":"message_start","message":{"id":"m","model":"claude","usage":{"input_tokens":3}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"x","text":"a","thinking":"b"}}"#,
            r#"{"index":0}"#,
            r#"{"type":null}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"busy"}}"#,
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
                if !text.contains("content_block_delta") {
                    continue;
                }
                for line in text.lines() {
                    if let Some(d) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
                        events.push(d.trim_start().to_owned());
                    }
                }
            }
        } else {
            eprintln!("SKIPPED the captured events: {dir} not found");
        }
        crate::json_scan::assert_scanner_agrees!(Ev, events);
    }

    /// The hand-written delta events are byte for byte what serde wrote for them.
    #[test]
    fn deltas_match_serde() {
        let text = "héllo \"w\"\n\u{1}";
        for d in [
            OutDelta {
                text: Some(text),
                ..OutDelta::new("text_delta")
            },
            OutDelta {
                partial_json: Some(text),
                ..OutDelta::new("input_json_delta")
            },
            OutDelta {
                thinking: Some(text),
                ..OutDelta::new("thinking_delta")
            },
            OutDelta {
                signature: Some(text),
                ..OutDelta::new("signature_delta")
            },
        ] {
            let mut want = Vec::new();
            write_event(
                &mut want,
                Some("content_block_delta"),
                &OutDeltaEv {
                    ty: "content_block_delta",
                    index: 12,
                    delta: d,
                },
            );
            let mut got = Vec::new();
            d.write(12, &mut got);
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
