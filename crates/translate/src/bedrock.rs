//! Amazon Bedrock Converse and ConverseStream: requests, responses, event-stream frames and
//! errors.
//!
//! The model id and the choice of `converse` or `converse-stream` are in the URL, not the body:
//! [`decode_request`] leaves [`ChatRequest::model`] empty and `stream` false; set them from the
//! path. Prompt-cache breakpoints are Bedrock `cachePoint` blocks placed right after the content,
//! system block or tool they close, which is where Anthropic's `cache_control` marks them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    Error, ErrorKind, Options, Protocol, ProviderError,
    eventstream::{self, FrameRef as Frame},
    ir::{
        BlockKind, CacheControl, ChatRequest, ChatResponse, Effort, FinishReason, ImageSource,
        Message, Part, RawJson, Reasoning, ResponseFormat, Role, StreamEvent, SystemPart, Tool,
        ToolChoice, Usage, UsageUpdate,
    },
    util::{
        Fields, Obj, args_object, arr, extra_fields, f64_of, lossy, merged_turns, obj, opt_str,
        parse_request, parse_upstream, str_of, to_vec, tokens, u32_of, write_json_str, write_u64,
    },
};

const P: Protocol = Protocol::Bedrock;

fn format_to_media(f: &str) -> String {
    format!("image/{f}")
}

fn media_to_format(m: &str) -> Option<&'static str> {
    Some(match m {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Requests

fn cache_point(b: &Value) -> bool {
    b.get("cachePoint").is_some()
}

fn attach_cache(parts: &mut [Part], p: &str) -> Result<(), Error> {
    if parts
        .last_mut()
        .is_some_and(|last| last.set_cache(Some(CacheControl::default())))
    {
        Ok(())
    } else {
        Err(Error::invalid(
            p,
            "a cachePoint must follow content it closes",
        ))
    }
}

/// Decodes a Converse request body.
pub fn decode_request(body: &[u8], opts: &Options) -> Result<ChatRequest, Error> {
    let o = parse_request(body, opts)?;
    let mut r = ChatRequest::default();
    for (k, v) in &o {
        match k.as_str() {
            "messages" => {
                for (i, m) in arr(v, "messages")?.iter().enumerate() {
                    let p = format!("messages[{i}]");
                    let role = Role::decode(m, &p)?;
                    let content = decode_content(
                        arr(
                            m.get("content").unwrap_or(&Value::Null),
                            &format!("{p}.content"),
                        )?,
                        &p,
                    )?;
                    r.messages.push(Message::new(role, content));
                }
            }
            "system" => {
                for (i, b) in arr(v, "system")?.iter().enumerate() {
                    let p = format!("system[{i}]");
                    if cache_point(b) {
                        match r.system.last_mut() {
                            Some(s) => s.cache = Some(CacheControl::default()),
                            None => {
                                return Err(Error::invalid(
                                    p,
                                    "a cachePoint must follow a system block",
                                ));
                            }
                        }
                    } else if let Some(t) = b.get("text") {
                        r.system.push(SystemPart::new(str_of(t, &p)?));
                    } else {
                        return Err(Error::unsupported(
                            p,
                            Protocol::OpenAiChat,
                            "only text system blocks are translated",
                        ));
                    }
                }
            }
            "inferenceConfig" => {
                let ic = obj(v, k)?;
                for (ik, iv) in ic {
                    let p = format!("inferenceConfig.{ik}");
                    match ik.as_str() {
                        "maxTokens" => r.max_tokens = u32_of(iv, &p)?,
                        "temperature" => r.temperature = f64_of(iv, &p)?,
                        "topP" => r.top_p = f64_of(iv, &p)?,
                        "stopSequences" => {
                            for s in arr(iv, &p)? {
                                r.stop.push(str_of(s, &p)?.to_owned());
                            }
                        }
                        _ => return Err(Error::invalid(p, "unknown inference parameter")),
                    }
                }
            }
            "toolConfig" => {
                if let Some(tools) = v.get("tools") {
                    for (i, t) in arr(tools, "toolConfig.tools")?.iter().enumerate() {
                        let p = format!("toolConfig.tools[{i}]");
                        if cache_point(t) {
                            match r.tools.last_mut() {
                                Some(t) => t.cache = Some(CacheControl::default()),
                                None => {
                                    return Err(Error::invalid(
                                        p,
                                        "a cachePoint must follow a tool",
                                    ));
                                }
                            }
                            continue;
                        }
                        let spec = obj(
                            t.get("toolSpec").unwrap_or(&Value::Null),
                            &format!("{p}.toolSpec"),
                        )?;
                        r.tools.push(Tool {
                            name: str_of(
                                spec.get("name").unwrap_or(&Value::Null),
                                &format!("{p}.toolSpec.name"),
                            )?
                            .to_owned(),
                            description: opt_str(spec, "description"),
                            parameters: spec
                                .get("inputSchema")
                                .and_then(|s| s.get("json"))
                                .unwrap_or(&json!({"type": "object"}))
                                .into(),
                            strict: spec.get("strict").and_then(Value::as_bool),
                            cache: None,
                        });
                    }
                }
                if let Some(tc) = v.get("toolChoice") {
                    r.tool_choice = Some(if tc.get("auto").is_some() {
                        ToolChoice::Auto
                    } else if tc.get("any").is_some() {
                        ToolChoice::Required
                    } else if let Some(n) = tc.pointer("/tool/name").and_then(Value::as_str) {
                        ToolChoice::Named(n.to_owned())
                    } else {
                        return Err(Error::invalid(
                            "toolConfig.toolChoice",
                            "unknown tool choice",
                        ));
                    });
                }
            }
            "additionalModelRequestFields" => {
                let mut rest = obj(v, k)?.clone();
                if let Some(tk) = rest.remove("top_k") {
                    r.top_k = u32_of(&tk, "additionalModelRequestFields.top_k")?;
                }
                if let Some(th) = rest.remove("thinking") {
                    match th.get("type").and_then(Value::as_str) {
                        Some("enabled") => {
                            r.reasoning = Some(Reasoning {
                                budget_tokens: u32_of(
                                    th.get("budget_tokens").unwrap_or(&Value::Null),
                                    "thinking.budget_tokens",
                                )?,
                                ..Reasoning::default()
                            });
                        }
                        Some("disabled") => {
                            r.reasoning = Some(Reasoning {
                                disabled: true,
                                ..Reasoning::default()
                            });
                        }
                        _ => {
                            return Err(Error::invalid(
                                "additionalModelRequestFields.thinking",
                                "unknown thinking type",
                            ));
                        }
                    }
                }
                if !rest.is_empty() {
                    r.extra.push((k.clone(), Value::Object(rest)));
                }
            }
            "outputConfig" => {
                let f = v
                    .get("textFormat")
                    .ok_or_else(|| Error::invalid("outputConfig", "missing textFormat"))?;
                let js = f.pointer("/structure/jsonSchema").ok_or_else(|| {
                    Error::invalid("outputConfig.textFormat", "only jsonSchema is translated")
                })?;
                let schema = match js.get("schema") {
                    Some(Value::String(s)) => serde_json::from_str(s).map_err(|_| {
                        Error::invalid(
                            "outputConfig.textFormat.structure.jsonSchema.schema",
                            "not valid JSON",
                        )
                    })?,
                    Some(v) => v.clone(),
                    None => json!({}),
                };
                r.response_format = Some(ResponseFormat::JsonSchema {
                    name: js.get("name").and_then(Value::as_str).map(str::to_owned),
                    description: js
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    schema,
                    strict: None,
                });
            }
            "modelId" => str_of(v, k)?.clone_into(&mut r.model),
            _ => r.extra.push((k.clone(), v.clone())),
        }
    }
    if !r.extra.is_empty() {
        r.extra_from = Some(P);
    }
    Ok(r)
}

fn decode_image(img: &Value, p: &str) -> Result<ImageSource, Error> {
    let format = img.get("format").and_then(Value::as_str).unwrap_or("png");
    if let Some(b) = img.pointer("/source/bytes") {
        return Ok(ImageSource::Base64 {
            media_type: format_to_media(format),
            data: str_of(b, &format!("{p}.source.bytes"))?.to_owned(),
        });
    }
    Err(Error::unsupported(
        format!("{p}.source"),
        Protocol::OpenAiChat,
        "only inline image bytes are translated",
    ))
}

fn decode_content(blocks: &[Value], p: &str) -> Result<Vec<Part>, Error> {
    let mut out: Vec<Part> = Vec::with_capacity(blocks.len());
    for (i, b) in blocks.iter().enumerate() {
        let bp = format!("{p}.content[{i}]");
        if cache_point(b) {
            attach_cache(&mut out, &bp)?;
        } else if let Some(t) = b.get("text") {
            out.push(Part::text(str_of(t, &bp)?));
        } else if let Some(img) = b.get("image") {
            out.push(Part::Image {
                source: decode_image(img, &bp)?,
                detail: None,
                cache: None,
            });
        } else if let Some(tu) = b.get("toolUse") {
            out.push(Part::ToolCall {
                id: str_of(
                    tu.get("toolUseId").unwrap_or(&Value::Null),
                    &format!("{bp}.toolUse.toolUseId"),
                )?
                .to_owned(),
                name: str_of(
                    tu.get("name").unwrap_or(&Value::Null),
                    &format!("{bp}.toolUse.name"),
                )?
                .to_owned(),
                arguments: serde_json::to_string(tu.get("input").unwrap_or(&json!({})))
                    .unwrap_or_default(),
                cache: None,
            });
        } else if let Some(tr) = b.get("toolResult") {
            let mut content = Vec::new();
            if let Some(c) = tr.get("content") {
                for (j, x) in arr(c, &format!("{bp}.toolResult.content"))?
                    .iter()
                    .enumerate()
                {
                    let xp = format!("{bp}.toolResult.content[{j}]");
                    if let Some(t) = x.get("text") {
                        content.push(Part::text(str_of(t, &xp)?));
                    } else if let Some(j) = x.get("json") {
                        content.push(Part::text(serde_json::to_string(j).unwrap_or_default()));
                    } else if let Some(img) = x.get("image") {
                        content.push(Part::Image {
                            source: decode_image(img, &xp)?,
                            detail: None,
                            cache: None,
                        });
                    } else {
                        return Err(Error::unsupported(
                            xp,
                            Protocol::OpenAiChat,
                            "this tool result content is not translated",
                        ));
                    }
                }
            }
            out.push(Part::ToolResult {
                call_id: str_of(
                    tr.get("toolUseId").unwrap_or(&Value::Null),
                    &format!("{bp}.toolResult.toolUseId"),
                )?
                .to_owned(),
                name: None,
                content,
                is_error: tr.get("status").and_then(Value::as_str) == Some("error"),
                cache: None,
            });
        } else if let Some(rc) = b.get("reasoningContent") {
            if let Some(rt) = rc.get("reasoningText") {
                out.push(Part::Reasoning {
                    text: rt
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned(),
                    signature: rt
                        .get("signature")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    redacted: None,
                });
            } else if let Some(rd) = rc.get("redactedContent") {
                out.push(Part::Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: Some(str_of(rd, &bp)?.to_owned()),
                });
            }
        } else {
            return Err(Error::unsupported(
                bp,
                Protocol::OpenAiChat,
                "this content block is not translated",
            ));
        }
    }
    Ok(out)
}

// The request is written from borrowed, typed parts (serde's external tagging is Converse's
// union shape): no JSON tree is built and schemas are not cloned.

#[derive(Serialize)]
struct BCache {
    #[serde(rename = "type")]
    ty: &'static str,
}

#[derive(Serialize)]
struct BImage<'a> {
    format: &'static str,
    source: BSource<'a>,
}

#[derive(Serialize)]
struct BSource<'a> {
    bytes: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum BReasoning<'a> {
    ReasoningText {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        signature: Option<&'a str>,
    },
    RedactedContent(&'a str),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
enum BBlock<'a> {
    Text(&'a str),
    Image(BImage<'a>),
    ToolUse {
        tool_use_id: &'a str,
        name: &'a str,
        input: &'a serde_json::value::RawValue,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<BBlock<'a>>,
        status: &'static str,
    },
    ReasoningContent(BReasoning<'a>),
    CachePoint(BCache),
}

#[derive(Serialize)]
struct BMsg<'a> {
    role: &'static str,
    content: Vec<BBlock<'a>>,
}

#[derive(Serialize)]
struct BSchema<'a> {
    json: &'a RawJson,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BSpec<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: BSchema<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum BTool<'a> {
    ToolSpec(BSpec<'a>),
    CachePoint(BCache),
}

/// `toolConfig.toolChoice`: `{"auto":{}}`, `{"any":{}}` or `{"tool":{"name":..}}`.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum BToolChoice<'a> {
    Auto(BEmpty),
    Any(BEmpty),
    Tool { name: &'a str },
}

#[derive(Serialize)]
struct BEmpty {}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BToolConfig<'a> {
    tools: Vec<BTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<BToolChoice<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BInference<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BReq<'a> {
    messages: Vec<BMsg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<BBlock<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_config: Option<BInference<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_config: Option<BToolConfig<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_config: Option<Value>,
    #[serde(skip_serializing_if = "Obj::is_empty")]
    additional_model_request_fields: Obj,
}

/// Encodes a Converse request body (the model goes in the URL: [`ChatRequest::model`]).
///
/// Written by hand from the request, byte for byte what [`encode_request_general`] writes
/// through serde (a property test checks it).
pub fn encode_request(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    use crate::util::{write_json_str, write_u64};
    let mut out = Vec::with_capacity(crate::json_out::request_size_hint(r));
    let mut has_tool_blocks = false;
    out.extend_from_slice(b"{\"messages\":[");
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
            has_tool_blocks |= matches!(part, Part::ToolCall { .. } | Part::ToolResult { .. });
            write_part(
                &mut out,
                part,
                &|| format!("messages[{i}].content[{j}]"),
                opts,
            )?;
        }
        out.extend_from_slice(b"]}");
    }
    out.push(b']');
    if !r.system.is_empty() {
        out.extend_from_slice(b",\"system\":[");
        for (k, s) in r.system.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"text\":");
            write_json_str(&mut out, &s.text);
            out.push(b'}');
            if let Some(c) = &s.cache {
                encode_cache_point(c, opts)?;
                out.extend_from_slice(CACHE_POINT);
            }
        }
        out.push(b']');
    }
    if r.max_tokens.is_some() || r.temperature.is_some() || r.top_p.is_some() || !r.stop.is_empty()
    {
        out.extend_from_slice(b",\"inferenceConfig\":{");
        let mut first = true;
        let mut key = |out: &mut Vec<u8>, k: &[u8]| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.extend_from_slice(k);
        };
        if let Some(m) = r.max_tokens {
            key(&mut out, b"\"maxTokens\":");
            write_u64(&mut out, u64::from(m));
        }
        if let Some(t) = r.temperature {
            key(&mut out, b"\"temperature\":");
            crate::json_out::write_f64(&mut out, t);
        }
        if let Some(t) = r.top_p {
            key(&mut out, b"\"topP\":");
            crate::json_out::write_f64(&mut out, t);
        }
        if !r.stop.is_empty() {
            key(&mut out, b"\"stopSequences\":");
            crate::json_out::write_str_array(&mut out, &r.stop);
        }
        out.push(b'}');
    }
    let choice_none = r.tool_choice == Some(ToolChoice::None);
    if choice_none && has_tool_blocks {
        lossy(
            opts,
            "tool_choice",
            P,
            "Bedrock has no tool_choice none while the conversation holds tool calls; tools stay offered",
        )?;
    }
    if !r.tools.is_empty() && (!choice_none || has_tool_blocks) {
        out.extend_from_slice(b",\"toolConfig\":{\"tools\":[");
        for (k, t) in r.tools.iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"toolSpec\":{\"name\":");
            write_json_str(&mut out, &t.name);
            if let Some(d) = &t.description {
                out.extend_from_slice(b",\"description\":");
                write_json_str(&mut out, d);
            }
            out.extend_from_slice(b",\"inputSchema\":{\"json\":");
            out.extend_from_slice(t.parameters.get().as_bytes());
            out.push(b'}');
            if let Some(strict) = t.strict {
                out.extend_from_slice(if strict {
                    b",\"strict\":true"
                } else {
                    b",\"strict\":false"
                });
            }
            out.extend_from_slice(b"}}");
            if let Some(c) = &t.cache {
                encode_cache_point(c, opts)?;
                out.extend_from_slice(CACHE_POINT);
            }
        }
        out.push(b']');
        match &r.tool_choice {
            Some(ToolChoice::Auto) => out.extend_from_slice(b",\"toolChoice\":{\"auto\":{}}"),
            Some(ToolChoice::Required) => out.extend_from_slice(b",\"toolChoice\":{\"any\":{}}"),
            Some(ToolChoice::Named(n)) => {
                out.extend_from_slice(b",\"toolChoice\":{\"tool\":{\"name\":");
                write_json_str(&mut out, n);
                out.extend_from_slice(b"}}");
            }
            _ => {}
        }
        out.push(b'}');
    }
    if r.parallel_tool_calls == Some(false) {
        lossy(
            opts,
            "parallel_tool_calls",
            P,
            "Converse cannot forbid parallel tool calls",
        )?;
    }
    if let Some(oc) = output_config(r, opts)? {
        out.extend_from_slice(b",\"outputConfig\":");
        crate::json_out::write_value(&mut out, &oc)?;
    }
    let (amrf, extra) = request_fields(r, opts)?;
    if !amrf.is_empty() {
        out.extend_from_slice(b",\"additionalModelRequestFields\":");
        crate::json_out::write_value(&mut out, &amrf)?;
    }
    crate::json_out::write_extra(&mut out, &extra)?;
    out.push(b'}');
    Ok(out)
}

/// A cache point block (or tool), after the one it follows (`,` included).
const CACHE_POINT: &[u8] = b",{\"cachePoint\":{\"type\":\"default\"}}";

/// One part of a request's turn, as [`encode_part`] builds it for serde (its cache point
/// after it); `p` names it in an error.
fn write_part(
    out: &mut Vec<u8>,
    part: &Part,
    p: &dyn Fn() -> String,
    opts: &Options,
) -> Result<(), Error> {
    use crate::util::write_json_str;
    match part {
        Part::Text { text, .. } => {
            out.extend_from_slice(b"{\"text\":");
            write_json_str(out, text);
            out.push(b'}');
        }
        Part::Image { source, detail, .. } => {
            if detail.is_some() {
                lossy(opts, "detail", P, "Bedrock images have no detail level")?;
            }
            write_image(out, &encode_image(source, p)?);
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            ..
        } => {
            let input = args_object(arguments, p)?;
            out.extend_from_slice(b"{\"toolUse\":{\"toolUseId\":");
            write_json_str(out, id);
            out.extend_from_slice(b",\"name\":");
            write_json_str(out, name);
            out.extend_from_slice(b",\"input\":");
            out.extend_from_slice(input.get().as_bytes());
            out.extend_from_slice(b"}}");
        }
        Part::ToolResult {
            call_id,
            content,
            is_error,
            ..
        } => {
            out.extend_from_slice(b"{\"toolResult\":{\"toolUseId\":");
            write_json_str(out, call_id);
            out.extend_from_slice(b",\"content\":[");
            for (k, x) in content.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                match x {
                    Part::Text { text, .. } => {
                        out.extend_from_slice(b"{\"text\":");
                        write_json_str(out, text);
                        out.push(b'}');
                    }
                    Part::Image { source, .. } => write_image(
                        out,
                        &encode_image(source, &|| format!("{}.content[{k}]", p()))?,
                    ),
                    _ => {
                        return Err(Error::invalid(
                            format!("{}.content[{k}]", p()),
                            "a tool result holds text and images only",
                        ));
                    }
                }
            }
            out.extend_from_slice(if *is_error {
                b"],\"status\":\"error\"}}"
            } else {
                b"],\"status\":\"success\"}}"
            });
        }
        Part::Reasoning {
            text,
            signature,
            redacted,
        } => {
            if let Some(d) = redacted {
                out.extend_from_slice(b"{\"reasoningContent\":{\"redactedContent\":");
                write_json_str(out, d);
            } else {
                out.extend_from_slice(b"{\"reasoningContent\":{\"reasoningText\":{\"text\":");
                write_json_str(out, text);
                if let Some(sig) = signature {
                    out.extend_from_slice(b",\"signature\":");
                    write_json_str(out, sig);
                }
                out.push(b'}');
            }
            out.extend_from_slice(b"}}");
        }
    }
    if let Some(c) = part.cache() {
        encode_cache_point(c, opts)?;
        out.extend_from_slice(CACHE_POINT);
    }
    Ok(())
}

fn write_image(out: &mut Vec<u8>, img: &BImage<'_>) {
    out.extend_from_slice(b"{\"image\":{\"format\":");
    crate::util::write_json_str(out, img.format);
    out.extend_from_slice(b",\"source\":{\"bytes\":");
    crate::util::write_json_str(out, img.source.bytes);
    out.extend_from_slice(b"}}}");
}

/// `outputConfig`, from the response format (refusing what maps only lossily).
fn output_config(r: &ChatRequest, opts: &Options) -> Result<Option<Value>, Error> {
    let Some(rf) = &r.response_format else {
        return Ok(None);
    };
    let (schema, name, description) = match rf {
        ResponseFormat::JsonObject => {
            lossy(
                opts,
                "response_format",
                P,
                "Bedrock has no JSON mode; it maps to the schema {\"type\":\"object\"}",
            )?;
            (Some(r#"{"type":"object"}"#.to_owned()), None, None)
        }
        ResponseFormat::JsonSchema {
            name,
            description,
            schema,
            ..
        } => (
            Some(serde_json::to_string(schema).unwrap_or_default()),
            name.as_deref(),
            description.as_deref(),
        ),
        _ => (None, None, None),
    };
    Ok(schema.map(|schema| {
        let mut js = Obj::new();
        js.insert("schema".into(), schema.into());
        js.insert("name".into(), name.unwrap_or("response").into());
        if let Some(d) = description {
            js.insert("description".into(), d.into());
        }
        json!({"textFormat": {"type": "json_schema", "structure": {"jsonSchema": js}}})
    }))
}

/// `additionalModelRequestFields` and the operator's extra fields, refusing the parameters
/// Converse has not.
fn request_fields(r: &ChatRequest, opts: &Options) -> Result<(Obj, Obj), Error> {
    let mut amrf = Obj::new();
    if let Some(k) = r.top_k {
        amrf.insert("top_k".into(), k.into());
    }
    if let Some(re) = &r.reasoning {
        if re.include_thoughts == Some(false) {
            lossy(
                opts,
                "include_thoughts",
                P,
                "Claude on Bedrock returns reasoning whenever it is enabled",
            )?;
        }
        if re.disabled {
            amrf.insert("thinking".into(), json!({"type": "disabled"}));
        } else if let Some(b) = re.budget_tokens {
            amrf.insert(
                "thinking".into(),
                json!({"type": "enabled", "budget_tokens": b}),
            );
        } else if let Some(e) = re.effort {
            lossy(
                opts,
                "reasoning_effort",
                P,
                "reasoning_effort maps to a thinking budget only approximately",
            )?;
            if e != Effort::None {
                amrf.insert(
                    "thinking".into(),
                    json!({"type": "enabled", "budget_tokens": e.budget_tokens()}),
                );
            }
        }
    }
    for (name, present) in [
        ("seed", r.seed.is_some()),
        ("presence_penalty", r.presence_penalty.is_some()),
        ("frequency_penalty", r.frequency_penalty.is_some()),
        ("user", r.user.is_some()),
    ] {
        if present {
            lossy(opts, name, P, "Converse has no such parameter")?;
        }
    }
    let mut extra = Obj::new();
    extra_fields(r, P, opts, &mut extra)?;
    if let Some(Value::Object(more)) = extra.remove("additionalModelRequestFields") {
        amrf.extend(more);
    }
    Ok((amrf, extra))
}

/// Encodes a Converse request body through serde's derived structures: the reference the
/// hand-written [`encode_request`] is tested against, byte for byte.
pub fn encode_request_general(r: &ChatRequest, opts: &Options) -> Result<Vec<u8>, Error> {
    let mut messages = Vec::with_capacity(r.messages.len());
    let mut has_tool_blocks = false;
    for (i, turn) in merged_turns(&r.messages).enumerate() {
        let mut content = Vec::with_capacity(turn.len());
        for (j, part) in turn.parts().enumerate() {
            has_tool_blocks |= matches!(part, Part::ToolCall { .. } | Part::ToolResult { .. });
            encode_part(
                part,
                &|| format!("messages[{i}].content[{j}]"),
                opts,
                &mut content,
            )?;
        }
        messages.push(BMsg {
            role: turn.role.as_str(),
            content,
        });
    }
    let mut system = Vec::with_capacity(r.system.len());
    for s in &r.system {
        system.push(BBlock::Text(&s.text));
        if let Some(c) = &s.cache {
            system.push(encode_cache_point(c, opts)?);
        }
    }
    let inference_config = (r.max_tokens.is_some()
        || r.temperature.is_some()
        || r.top_p.is_some()
        || !r.stop.is_empty())
    .then_some(BInference {
        max_tokens: r.max_tokens,
        temperature: r.temperature,
        top_p: r.top_p,
        stop_sequences: &r.stop,
    });
    let choice_none = r.tool_choice == Some(ToolChoice::None);
    if choice_none && has_tool_blocks {
        lossy(
            opts,
            "tool_choice",
            P,
            "Bedrock has no tool_choice none while the conversation holds tool calls; tools stay offered",
        )?;
    }
    let mut tool_config = None;
    if !r.tools.is_empty() && (!choice_none || has_tool_blocks) {
        let mut tools = Vec::with_capacity(r.tools.len());
        for t in &r.tools {
            tools.push(BTool::ToolSpec(BSpec {
                name: &t.name,
                description: t.description.as_deref(),
                input_schema: BSchema {
                    json: &t.parameters,
                },
                strict: t.strict,
            }));
            if let Some(c) = &t.cache {
                encode_cache_point(c, opts)?;
                tools.push(BTool::CachePoint(BCache { ty: "default" }));
            }
        }
        let tool_choice = match &r.tool_choice {
            Some(ToolChoice::Auto) => Some(BToolChoice::Auto(BEmpty {})),
            Some(ToolChoice::Required) => Some(BToolChoice::Any(BEmpty {})),
            Some(ToolChoice::Named(n)) => Some(BToolChoice::Tool { name: n }),
            _ => None,
        };
        tool_config = Some(BToolConfig { tools, tool_choice });
    }
    if r.parallel_tool_calls == Some(false) {
        lossy(
            opts,
            "parallel_tool_calls",
            P,
            "Converse cannot forbid parallel tool calls",
        )?;
    }
    let output_config = output_config(r, opts)?;
    let (amrf, extra) = request_fields(r, opts)?;
    let req = BReq {
        messages,
        system,
        inference_config,
        tool_config,
        output_config,
        additional_model_request_fields: amrf,
    };
    crate::json_out::to_vec_with_extra(&req, &extra, crate::json_out::request_size_hint(r))
        .map_err(|e| Error::invalid("", e.to_string()))
}

fn encode_cache_point(c: &CacheControl, opts: &Options) -> Result<BBlock<'static>, Error> {
    if c.ttl.as_deref().is_some_and(|t| t != "5m") {
        lossy(
            opts,
            "cache_control",
            P,
            "Bedrock cache points have the default TTL only",
        )?;
    }
    Ok(BBlock::CachePoint(BCache { ty: "default" }))
}

fn encode_image<'a>(source: &'a ImageSource, p: &dyn Fn() -> String) -> Result<BImage<'a>, Error> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            let format = media_to_format(media_type).ok_or_else(|| {
                Error::unsupported(p(), P, "Bedrock takes png, jpeg, gif and webp images")
            })?;
            Ok(BImage {
                format,
                source: BSource { bytes: data },
            })
        }
        ImageSource::Url(_) => Err(Error::unsupported(
            format!("{}.image_url", p()),
            P,
            "Bedrock takes inline images only (no URL fetching here)",
        )),
    }
}

fn encode_part<'a>(
    part: &'a Part,
    p: &dyn Fn() -> String,
    opts: &Options,
    out: &mut Vec<BBlock<'a>>,
) -> Result<(), Error> {
    let b = match part {
        Part::Text { text, .. } => BBlock::Text(text),
        Part::Image { source, detail, .. } => {
            if detail.is_some() {
                lossy(opts, "detail", P, "Bedrock images have no detail level")?;
            }
            BBlock::Image(encode_image(source, p)?)
        }
        Part::ToolCall {
            id,
            name,
            arguments,
            ..
        } => BBlock::ToolUse {
            tool_use_id: id,
            name,
            input: args_object(arguments, p)?,
        },
        Part::ToolResult {
            call_id,
            content,
            is_error,
            ..
        } => {
            let mut c = Vec::with_capacity(content.len());
            for (k, x) in content.iter().enumerate() {
                match x {
                    Part::Text { text, .. } => c.push(BBlock::Text(text)),
                    Part::Image { source, .. } => c
                        .push(BBlock::Image(encode_image(source, &|| {
                            format!("{}.content[{k}]", p())
                        })?)),
                    _ => {
                        return Err(Error::invalid(
                            format!("{}.content[{k}]", p()),
                            "a tool result holds text and images only",
                        ));
                    }
                }
            }
            BBlock::ToolResult {
                tool_use_id: call_id,
                content: c,
                status: if *is_error { "error" } else { "success" },
            }
        }
        Part::Reasoning {
            text,
            signature,
            redacted,
        } => BBlock::ReasoningContent(match redacted {
            Some(d) => BReasoning::RedactedContent(d),
            None => BReasoning::ReasoningText {
                text,
                signature: signature.as_deref(),
            },
        }),
    };
    out.push(b);
    if let Some(c) = part.cache() {
        out.push(encode_cache_point(c, opts)?);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Responses

fn finish_from(s: &str) -> FinishReason {
    match s {
        "end_turn" => FinishReason::Stop,
        "stop_sequence" => FinishReason::StopSequence,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "guardrail_intervened" | "content_filtered" => FinishReason::ContentFilter,
        o => FinishReason::Other(o.to_owned()),
    }
}

fn finish_to(f: &FinishReason) -> &str {
    match f {
        FinishReason::Stop => "end_turn",
        FinishReason::StopSequence => "stop_sequence",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter | FinishReason::Refusal => "content_filtered",
        FinishReason::Other(o) => o,
    }
}

fn usage_from(u: &(impl Fields + ?Sized)) -> Usage {
    let cr = tokens(
        u.field("cacheReadInputTokens")
            .or_else(|| u.field("cacheReadInputTokenCount")),
    );
    let cw = tokens(
        u.field("cacheWriteInputTokens")
            .or_else(|| u.field("cacheWriteInputTokenCount")),
    );
    Usage {
        input_tokens: tokens(u.field("inputTokens"))
            .saturating_add(cr)
            .saturating_add(cw),
        output_tokens: tokens(u.field("outputTokens")),
        cache_read_tokens: cr,
        cache_write_tokens: cw,
        reasoning_tokens: 0,
    }
}

fn usage_to(u: &Usage) -> Value {
    let mut v = json!({"inputTokens": u.uncached_input(), "outputTokens": u.output_tokens, "totalTokens": u.total()});
    if u.cache_read_tokens > 0 {
        v["cacheReadInputTokens"] = u.cache_read_tokens.into();
    }
    if u.cache_write_tokens > 0 {
        v["cacheWriteInputTokens"] = u.cache_write_tokens.into();
    }
    v
}

/// Decodes a Converse response.
pub fn decode_response(body: &[u8], opts: &Options) -> Result<ChatResponse, Error> {
    match decode_response_fast(body, opts) {
        Some(r) => Ok(r),
        None => decode_response_general(body, opts),
    }
}

#[derive(Deserialize)]
struct RespIn<'a> {
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "stopReason",
        default
    )]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(rename = "additionalModelResponseFields", default)]
    amrf: Option<Box<Value>>,
    #[serde(default)]
    usage: Option<UsageIn>,
    #[serde(borrow, default)]
    output: Option<OutputIn<'a>>,
}

crate::util::usage_fields!(UsageIn {
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "cacheReadInputTokenCount",
    "cacheWriteInputTokens",
    "cacheWriteInputTokenCount",
});

#[derive(Deserialize)]
struct OutputIn<'a> {
    #[serde(borrow, default)]
    message: Option<MsgIn<'a>>,
}

#[derive(Deserialize)]
struct MsgIn<'a> {
    #[serde(borrow, default)]
    content: Option<Vec<BlockIn<'a>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BlockIn<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "toolUse", default)]
    tool_use: Option<ToolUseIn<'a>>,
    #[serde(borrow, rename = "reasoningContent", default)]
    reasoning: Option<ReasoningIn<'a>>,
}

#[derive(Deserialize)]
struct ToolUseIn<'a> {
    #[serde(borrow, rename = "toolUseId")]
    id: Cow<'a, str>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_raw_text", default)]
    input: Option<&'a str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReasoningIn<'a> {
    #[serde(borrow, rename = "reasoningText", default)]
    text: Option<ReasoningTextIn<'a>>,
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "redactedContent",
        default
    )]
    redacted: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ReasoningTextIn<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    signature: Option<Cow<'a, str>>,
}

impl<'a> RespIn<'a> {
    /// An answer read by the borrowed scanner ([`crate::json_scan`]); `None` for anything it
    /// does not expect, which serde then reads.
    fn scan(text: &'a str) -> Option<Self> {
        let mut sc = crate::json_scan::Scan::new(text);
        let mut v = RespIn {
            stop_reason: None,
            amrf: None,
            usage: None,
            output: None,
        };
        sc.object(|k, sc| {
            match k {
                "stopReason" => v.stop_reason = sc.opt_string()?,
                "additionalModelResponseFields" => v.amrf = sc.opt_value()?.map(Box::new),
                "usage" => {
                    if !sc.null() {
                        v.usage = Some(UsageIn::scan(sc)?);
                    }
                }
                "output" => {
                    if !sc.null() {
                        let mut message = None;
                        sc.object(|k, sc| {
                            if k != "message" {
                                return sc.skip();
                            }
                            if !sc.null() {
                                let mut content = None;
                                sc.object(|k, sc| {
                                    if k != "content" {
                                        return sc.skip();
                                    }
                                    content = sc.opt_list(2, BlockIn::scan)?;
                                    Some(())
                                })?;
                                message = Some(MsgIn { content });
                            }
                            Some(())
                        })?;
                        v.output = Some(OutputIn { message });
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
        let mut b = BlockIn {
            text: None,
            tool_use: None,
            reasoning: None,
        };
        sc.object(|k, sc| {
            match k {
                "text" => b.text = sc.opt_string()?,
                "toolUse" => {
                    if !sc.null() {
                        let (mut id, mut name, mut input) = (None, None, None);
                        sc.object(|k, sc| {
                            match k {
                                "toolUseId" => id = Some(sc.string()?),
                                "name" => name = Some(sc.string()?),
                                "input" => {
                                    if !sc.null() {
                                        input = Some(sc.raw()?);
                                    }
                                }
                                _ => sc.skip()?,
                            }
                            Some(())
                        })?;
                        b.tool_use = Some(ToolUseIn {
                            id: id?,
                            name: name?,
                            input,
                        });
                    }
                }
                "reasoningContent" => {
                    if !sc.null() {
                        let mut rc = ReasoningIn {
                            text: None,
                            redacted: None,
                        };
                        sc.object(|k, sc| {
                            match k {
                                "reasoningText" => {
                                    if !sc.null() {
                                        let mut rt = ReasoningTextIn {
                                            text: None,
                                            signature: None,
                                        };
                                        sc.object(|k, sc| {
                                            match k {
                                                "text" => rt.text = sc.opt_string()?,
                                                "signature" => rt.signature = sc.opt_string()?,
                                                _ => sc.skip()?,
                                            }
                                            Some(())
                                        })?;
                                        rc.text = Some(rt);
                                    }
                                }
                                "redactedContent" => rc.redacted = sc.opt_string()?,
                                _ => return None,
                            }
                            Some(())
                        })?;
                        b.reasoning = Some(rc);
                    }
                }
                _ => return None,
            }
            Some(())
        })?;
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
        finish: v.stop_reason.as_deref().map(finish_from),
        stop_sequence: v
            .amrf
            .as_ref()
            .and_then(|a| a.get("stop_sequence"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..ChatResponse::default()
    };
    if let Some(u) = &v.usage {
        r.usage = usage_from(u);
    }
    let blocks = v
        .output
        .and_then(|o| o.message)
        .and_then(|m| m.content)
        .unwrap_or_default();
    for b in blocks {
        match (b.text, b.tool_use, b.reasoning) {
            (Some(t), None, None) => r.content.push(Part::text(t.into_owned())),
            (None, Some(tu), None) => r.content.push(Part::ToolCall {
                id: tu.id.into_owned(),
                name: tu.name.into_owned(),
                arguments: crate::util::args_text_of(tu.input),
                cache: None,
            }),
            (None, None, Some(rc)) => match (rc.text, rc.redacted) {
                (Some(rt), None) => r.content.push(Part::Reasoning {
                    text: rt.text.map(Cow::into_owned).unwrap_or_default(),
                    signature: rt.signature.map(Cow::into_owned),
                    redacted: None,
                }),
                (None, Some(d)) => r.content.push(Part::Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: Some(d.into_owned()),
                }),
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(r)
}

/// Decodes a Converse response with the general decoder only (no typed fast path): the
/// reference the fast path is tested against.
pub fn decode_response_general(body: &[u8], opts: &Options) -> Result<ChatResponse, Error> {
    let o = parse_upstream(body, opts)?;
    let v = Value::Object(o);
    let mut r = ChatResponse {
        finish: v.get("stopReason").and_then(Value::as_str).map(finish_from),
        stop_sequence: v
            .pointer("/additionalModelResponseFields/stop_sequence")
            .and_then(Value::as_str)
            .map(str::to_owned),
        ..ChatResponse::default()
    };
    if let Some(u) = v.get("usage") {
        r.usage = usage_from(u);
    }
    if let Some(c) = v
        .pointer("/output/message/content")
        .and_then(Value::as_array)
    {
        r.content =
            decode_content(c, "output.message").map_err(|e| Error::Upstream(e.to_string()))?;
    }
    Ok(r)
}

/// Encodes a Converse response.
pub fn encode_response(r: &ChatResponse, opts: &Options) -> Result<Vec<u8>, Error> {
    let mut content = Vec::with_capacity(r.content.len());
    let all = Options {
        lossy_all: true,
        ..opts.clone()
    };
    for (i, p) in r.content.iter().enumerate() {
        encode_part(p, &|| format!("content[{i}]"), &all, &mut content)
            .map_err(|e| Error::Upstream(e.to_string()))?;
    }
    let content = crate::util::to_value(&content)?;
    let mut v = json!({
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": r.finish.as_ref().map_or("end_turn", finish_to),
        "usage": usage_to(&r.usage),
        "metrics": {"latencyMs": 0},
    });
    if let Some(s) = &r.stop_sequence {
        v["additionalModelResponseFields"] = json!({"stop_sequence": s});
    }
    Ok(to_vec(&v))
}

// ---------------------------------------------------------------------------------------------
// Errors

/// The exception type Bedrock names for a kind (`x-amzn-ErrorType`, `:exception-type`).
pub fn exception_type(k: ErrorKind) -> &'static str {
    match k {
        ErrorKind::InvalidRequest | ErrorKind::RequestTooLarge => "ValidationException",
        ErrorKind::Authentication => "UnrecognizedClientException",
        ErrorKind::PermissionDenied => "AccessDeniedException",
        ErrorKind::NotFound => "ResourceNotFoundException",
        ErrorKind::RateLimit => "ThrottlingException",
        ErrorKind::Overloaded => "ServiceUnavailableException",
        ErrorKind::Timeout => "ModelTimeoutException",
        ErrorKind::Server | ErrorKind::BadGateway => "InternalServerException",
    }
}

fn kind_from_exception(t: &str, status: u16) -> ErrorKind {
    let t = t.split(':').next().unwrap_or(t).to_ascii_lowercase();
    match t.as_str() {
        "validationexception" => ErrorKind::InvalidRequest,
        "accessdeniedexception" => ErrorKind::PermissionDenied,
        "resourcenotfoundexception" => ErrorKind::NotFound,
        "throttlingexception" | "servicequotaexceededexception" => ErrorKind::RateLimit,
        "serviceunavailableexception" | "modelnotreadyexception" => ErrorKind::Overloaded,
        "modeltimeoutexception" => ErrorKind::Timeout,
        "unrecognizedclientexception" => ErrorKind::Authentication,
        "internalserverexception" | "modelstreamerrorexception" | "modelerrorexception" => {
            ErrorKind::Server
        }
        _ => ErrorKind::from_status(status),
    }
}

/// Decodes a Bedrock error body; `error_type` is the `x-amzn-ErrorType` header when known.
pub fn decode_error(status: u16, body: &[u8], error_type: Option<&str>) -> ProviderError {
    let v: Value = crate::util::from_json(body).unwrap_or(Value::Null);
    let msg = v
        .get("message")
        .or_else(|| v.get("Message"))
        .and_then(Value::as_str);
    let mut pe = ProviderError::new(
        kind_from_exception(error_type.unwrap_or(""), status),
        status,
        msg.map_or_else(
            || String::from_utf8_lossy(&body[..body.len().min(1024)]).into_owned(),
            str::to_owned,
        ),
    );
    pe.provider_type = error_type.map(|t| t.split(':').next().unwrap_or(t).to_owned());
    pe
}

/// Encodes an error the Bedrock way: (status, body); send [`exception_type`] as
/// `x-amzn-ErrorType`.
pub fn encode_error(e: &ProviderError) -> (u16, Vec<u8>) {
    (e.kind.status_for(P), to_vec(&json!({"message": e.message})))
}

// ---------------------------------------------------------------------------------------------
// Streams

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Payload<'a> {
    #[serde(rename = "contentBlockIndex", default)]
    index: Option<u64>,
    #[serde(default)]
    start: Option<Value>,
    #[serde(borrow, default)]
    delta: Option<PDelta<'a>>,
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "stopReason",
        default
    )]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(rename = "additionalModelResponseFields", default)]
    amrf: Option<Value>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct PDelta<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "toolUse", default)]
    tool_use: Option<PToolUse<'a>>,
    #[serde(borrow, rename = "reasoningContent", default)]
    reasoning: Option<PReasoning<'a>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct PToolUse<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    input: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct PReasoning<'a> {
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    signature: Option<Cow<'a, str>>,
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "redactedContent",
        default
    )]
    redacted: Option<Cow<'a, str>>,
}

impl<'a> Payload<'a> {
    /// An event payload read by the borrowed scanner ([`crate::json_scan`]); `None` for
    /// anything it does not expect, which serde then decodes.
    fn scan(data: &'a [u8]) -> Option<Self> {
        use crate::json_scan::Scan;
        let mut sc = Scan::new(std::str::from_utf8(data).ok()?);
        let mut p = Payload {
            index: None,
            start: None,
            delta: None,
            stop_reason: None,
            amrf: None,
            usage: None,
        };
        sc.object(|k, sc| {
            match k {
                "contentBlockIndex" => p.index = sc.opt_u64()?,
                "start" => p.start = sc.opt_value()?,
                "stopReason" => p.stop_reason = sc.opt_string()?,
                "additionalModelResponseFields" => p.amrf = sc.opt_value()?,
                "usage" => p.usage = sc.opt_value()?,
                "delta" => {
                    if !sc.null() {
                        let mut d = PDelta {
                            text: None,
                            tool_use: None,
                            reasoning: None,
                        };
                        sc.object(|k, sc| {
                            match k {
                                "text" => d.text = sc.opt_string()?,
                                "toolUse" => {
                                    if !sc.null() {
                                        let mut t = PToolUse { input: None };
                                        sc.object(|k, sc| {
                                            if k == "input" {
                                                t.input = sc.opt_string()?;
                                                Some(())
                                            } else {
                                                sc.skip()
                                            }
                                        })?;
                                        d.tool_use = Some(t);
                                    }
                                }
                                "reasoningContent" => {
                                    if !sc.null() {
                                        let mut r = PReasoning {
                                            text: None,
                                            signature: None,
                                            redacted: None,
                                        };
                                        sc.object(|k, sc| {
                                            match k {
                                                "text" => r.text = sc.opt_string()?,
                                                "signature" => r.signature = sc.opt_string()?,
                                                "redactedContent" => {
                                                    r.redacted = sc.opt_string()?;
                                                }
                                                _ => sc.skip()?,
                                            }
                                            Some(())
                                        })?;
                                        d.reasoning = Some(r);
                                    }
                                }
                                _ => sc.skip()?,
                            }
                            Some(())
                        })?;
                        p.delta = Some(d);
                    }
                }
                _ => sc.skip()?,
            }
            Some(())
        })?;
        sc.end()?;
        Some(p)
    }
}

/// ConverseStream event-stream bytes → IR events.
#[derive(Debug)]
pub struct StreamDecoder {
    frames: eventstream::Decoder,
    started: bool,
    next: usize,
    /// The open block: (Bedrock index, IR index, kind tag).
    open: Option<(u64, usize, u8)>,
    /// Bedrock indices already closed (skip late deltas).
    closed: Vec<u64>,
    finished: bool,
    usage_seen: bool,
    stopped: bool,
}

const K_TEXT: u8 = 0;
const K_TOOL: u8 = 1;
const K_REASON: u8 = 2;

impl StreamDecoder {
    /// A decoder.
    pub fn new(opts: &Options) -> Self {
        Self {
            frames: eventstream::Decoder::with_max_message_len(
                opts.max_body_len.min(eventstream::DEFAULT_MAX_MESSAGE_LEN),
            ),
            started: false,
            next: 0,
            open: None,
            closed: Vec::new(),
            finished: false,
            usage_seen: false,
            stopped: false,
        }
    }

    /// Feeds upstream bytes.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        let mut frames = std::mem::replace(
            &mut self.frames,
            eventstream::Decoder::with_max_message_len(0),
        );
        let r = frames.feed_frames(input, |f| self.on_frame(&f, out));
        self.frames = frames;
        r
    }

    /// Ends the upstream stream.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        self.frames.finish()?;
        if !self.stopped {
            if !self.finished {
                return Err(Error::Upstream(
                    "the stream ended before messageStop".into(),
                ));
            }
            self.close(out);
            out.push(StreamEvent::MessageStop);
            self.stopped = true;
        }
        Ok(())
    }

    fn close(&mut self, out: &mut Vec<StreamEvent>) {
        if let Some((b, index, _)) = self.open.take() {
            out.push(StreamEvent::BlockStop { index });
            if self.closed.len() < 4096 {
                self.closed.push(b);
            }
        }
    }

    /// The IR block for a Bedrock index, starting one of `kind` if none is open.
    fn block(
        &mut self,
        b: u64,
        kind: u8,
        start: impl FnOnce() -> BlockKind,
        out: &mut Vec<StreamEvent>,
    ) -> Option<usize> {
        if let Some((ob, i, ok)) = self.open {
            if ob == b && ok == kind {
                return Some(i);
            }
            self.close(out);
        }
        if self.closed.contains(&b) {
            return None;
        }
        let index = self.next;
        self.next += 1;
        out.push(StreamEvent::BlockStart {
            index,
            kind: start(),
        });
        self.open = Some((b, index, kind));
        Some(index)
    }

    fn on_frame(&mut self, frame: &Frame<'_>, out: &mut Vec<StreamEvent>) -> Result<(), Error> {
        if self.stopped {
            return Ok(());
        }
        if let Some("exception" | "error") = frame.header_str(":message-type") {
            let t = frame
                .header_str(":exception-type")
                .or_else(|| frame.header_str(":error-code"))
                .unwrap_or("");
            let mut e = decode_error(200, frame.payload(), Some(t));
            if e.message.is_empty() {
                frame
                    .header_str(":error-message")
                    .unwrap_or("")
                    .clone_into(&mut e.message);
            }
            if !self.started {
                out.push(StreamEvent::MessageStart {
                    id: String::new(),
                    model: String::new(),
                });
                self.started = true;
            }
            out.push(StreamEvent::Error(e));
            self.stopped = true;
            return Ok(());
        }
        let et = frame.header_str(":event-type").unwrap_or("");
        let p: Payload<'_> = match Payload::scan(frame.payload()) {
            Some(p) => p,
            None => crate::util::from_json(frame.payload())
                .map_err(|e| Error::Upstream(format!("invalid {et} payload: {e}")))?,
        };
        if !self.started {
            self.started = true;
            out.push(StreamEvent::MessageStart {
                id: String::new(),
                model: String::new(),
            });
        }
        let b = p.index.unwrap_or(0);
        match et {
            "contentBlockStart" => {
                if let Some(tu) = p.start.as_ref().and_then(|s| s.get("toolUse")) {
                    let id = tu
                        .get("toolUseId")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    let name = tu
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    self.close(out);
                    self.block(b, K_TOOL, || BlockKind::ToolCall { id, name }, out);
                }
            }
            "contentBlockDelta" => {
                let Some(d) = p.delta else { return Ok(()) };
                if let Some(t) = d.text {
                    // Empty text deltas (seen between reasoning and its signature) start nothing.
                    if !t.is_empty()
                        && let Some(index) = self.block(b, K_TEXT, || BlockKind::Text, out)
                    {
                        out.push(StreamEvent::TextDelta {
                            index,
                            text: t.into_owned(),
                        });
                    }
                } else if let Some(tu) = d.tool_use {
                    if let Some((ob, index, K_TOOL)) = self.open {
                        let j = tu.input.unwrap_or_default();
                        if ob == b && !j.is_empty() {
                            out.push(StreamEvent::ToolArgsDelta {
                                index,
                                json: j.into_owned(),
                            });
                        }
                    }
                } else if let Some(rc) = d.reasoning {
                    if let Some(data) = rc.redacted {
                        self.close(out);
                        let index = self.next;
                        self.next += 1;
                        out.push(StreamEvent::BlockStart {
                            index,
                            kind: BlockKind::RedactedReasoning {
                                data: data.into_owned(),
                            },
                        });
                        out.push(StreamEvent::BlockStop { index });
                    } else if let Some(index) =
                        self.block(b, K_REASON, || BlockKind::Reasoning, out)
                    {
                        if let Some(t) = rc.text.filter(|t| !t.is_empty()) {
                            out.push(StreamEvent::ReasoningDelta {
                                index,
                                text: t.into_owned(),
                            });
                        }
                        if let Some(s) = rc.signature {
                            out.push(StreamEvent::SignatureDelta {
                                index,
                                signature: s.into_owned(),
                            });
                        }
                    }
                }
            }
            "contentBlockStop" if self.open.is_some_and(|(ob, _, _)| ob == b) => {
                self.close(out);
            }
            "messageStop" => {
                self.close(out);
                let reason = finish_from(p.stop_reason.as_deref().unwrap_or("end_turn"));
                let seq = p
                    .amrf
                    .as_ref()
                    .and_then(|a| {
                        a.pointer("/delta/stop_sequence")
                            .or_else(|| a.get("stop_sequence"))
                    })
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                out.push(StreamEvent::Finish {
                    reason,
                    stop_sequence: seq,
                });
                self.finished = true;
            }
            "metadata" => {
                if let Some(u) = p.usage {
                    out.push(StreamEvent::Usage(UsageUpdate::from_usage(&usage_from(&u))));
                    self.usage_seen = true;
                }
            }
            _ => {}
        }
        if self.finished && self.usage_seen {
            out.push(StreamEvent::MessageStop);
            self.stopped = true;
        }
        Ok(())
    }
}

/// IR events → ConverseStream event-stream frames.
#[derive(Debug)]
pub struct StreamEncoder {
    usage: Usage,
    scratch: Vec<u8>,
    finished: bool,
    done: bool,
}

impl StreamEncoder {
    /// An encoder.
    pub fn new(_opts: &Options) -> Self {
        Self {
            usage: Usage::default(),
            scratch: Vec::with_capacity(256),
            finished: false,
            done: false,
        }
    }

    /// A `contentBlockDelta` frame written by hand (byte for byte what serde writes; a test
    /// checks it): `{"contentBlockIndex":N,"delta":` `open` `text` `close`.
    fn delta(&mut self, index: usize, open: &[u8], text: &str, close: &[u8], out: &mut Vec<u8>) {
        self.scratch.clear();
        self.scratch.extend_from_slice(b"{\"contentBlockIndex\":");
        write_u64(&mut self.scratch, index as u64);
        self.scratch.extend_from_slice(b",\"delta\":");
        self.scratch.extend_from_slice(open);
        write_json_str(&mut self.scratch, text);
        self.scratch.extend_from_slice(close);
        eventstream::encode_event("contentBlockDelta", &self.scratch, out);
    }

    fn event(&mut self, ty: &str, v: &Value, out: &mut Vec<u8>) {
        self.scratch.clear();
        let _ = crate::json_out::to_writer(&mut self.scratch, v);
        eventstream::encode_event(ty, &self.scratch, out);
    }

    /// Encodes one event.
    pub fn encode(&mut self, ev: &StreamEvent, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.done {
            return Ok(());
        }
        match ev {
            StreamEvent::MessageStart { .. } => {
                self.event("messageStart", &json!({"role": "assistant"}), out);
            }
            StreamEvent::BlockStart { index, kind } => match kind {
                BlockKind::ToolCall { id, name } => {
                    self.event("contentBlockStart", &json!({"contentBlockIndex": index, "start": {"toolUse": {"toolUseId": id, "name": name}}}), out);
                }
                BlockKind::RedactedReasoning { data } => {
                    self.event("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"redactedContent": data}}}), out);
                }
                BlockKind::Text | BlockKind::Reasoning => {}
            },
            StreamEvent::TextDelta { index, text } => {
                self.delta(*index, b"{\"text\":", text, b"}}", out);
            }
            StreamEvent::ToolArgsDelta { index, json } => {
                self.delta(*index, b"{\"toolUse\":{\"input\":", json, b"}}}", out);
            }
            StreamEvent::ReasoningDelta { index, text } => {
                self.delta(
                    *index,
                    b"{\"reasoningContent\":{\"text\":",
                    text,
                    b"}}}",
                    out,
                );
            }
            StreamEvent::SignatureDelta { index, signature } => {
                self.event("contentBlockDelta", &json!({"contentBlockIndex": index, "delta": {"reasoningContent": {"signature": signature}}}), out);
            }
            StreamEvent::BlockStop { index } => self.event(
                "contentBlockStop",
                &json!({"contentBlockIndex": index}),
                out,
            ),
            StreamEvent::Usage(u) => u.apply(&mut self.usage),
            StreamEvent::Finish {
                reason,
                stop_sequence,
            } => {
                let mut v = json!({"stopReason": finish_to(reason)});
                if let Some(s) = stop_sequence {
                    v["additionalModelResponseFields"] = json!({"delta": {"stop_sequence": s}});
                }
                self.event("messageStop", &v, out);
                self.finished = true;
            }
            StreamEvent::MessageStop => {
                if !self.finished {
                    self.event("messageStop", &json!({"stopReason": "end_turn"}), out);
                }
                let u = usage_to(&self.usage);
                self.event(
                    "metadata",
                    &json!({"usage": u, "metrics": {"latencyMs": 0}}),
                    out,
                );
                self.done = true;
            }
            StreamEvent::Error(e) => {
                let t = exception_type(e.kind);
                let mut name = t.to_owned();
                // Event-stream exception names are lower camel case (throttlingException).
                if let Some(first) = name.get_mut(0..1) {
                    first.make_ascii_lowercase();
                }
                self.scratch.clear();
                let _ =
                    crate::json_out::to_writer(&mut self.scratch, &json!({"message": e.message}));
                eventstream::encode_exception(&name, &self.scratch, out);
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

    /// The answer scanner takes typical answers (it is not silently handed to serde) and
    /// reads them as the general decoder does.
    #[test]
    fn the_answer_scanner_takes_typical_answers() {
        let opts = Options::default();
        for body in [
            r#"{"output":{"message":{"role":"assistant","content":[{"text":"Tomorrow: \"rain\"\n"},{"toolUse":{"toolUseId":"tooluse_1","name":"get_weather","input":{ "city" : "Paris" }}}]}},"stopReason":"tool_use","usage":{"inputTokens":412,"outputTokens":61,"totalTokens":473,"cacheReadInputTokens":128},"metrics":{"latencyMs":900}}"#,
            r#"{"output":{"message":{"role":"assistant","content":[{"reasoningContent":{"reasoningText":{"text":"hm","signature":"sig"}}},{"reasoningContent":{"redactedContent":"eA=="}},{"text":"ok"}]}},"stopReason":"end_turn","additionalModelResponseFields":{"stop_sequence":"END"},"usage":{"inputTokens":1,"outputTokens":1}}"#,
        ] {
            assert!(RespIn::scan(body).is_some(), "{body}");
            assert_eq!(
                decode_response_fast(body.as_bytes(), &opts),
                decode_response_general(body.as_bytes(), &opts).ok(),
                "{body}"
            );
        }
        for odd in [
            r#"{"output":{"message":{"content":[{"text":"x","extra":1}]}}}"#,
            r#"{"output":{"message":{"content":[{"toolUse":{"name":"f"}}]}}}"#,
            r#"{"stopReason":"end_turn","stopReason":"x"}"#,
        ] {
            assert!(RespIn::scan(odd).is_none(), "{odd}");
        }
    }

    /// The borrowed payload scanner and serde agree on every payload the scanner accepts: the
    /// captured ConverseStream payloads and hand-made edge cases.
    #[test]
    fn the_payload_scanner_agrees_with_serde() {
        let mut payloads: Vec<String> = [
            r#"{"contentBlockIndex":0,"delta":{"text":"The \"x\""},"p":"abcdef"}"#,
            r#"{"contentBlockIndex":1,"delta":{"toolUse":{"input":"{\"a\":1}"}},"p":"ab"}"#,
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"hm","signature":"s"}}}"#,
            r#"{"contentBlockIndex":0,"start":{"toolUse":{"toolUseId":"t","name":"f"}}}"#,
            r#"{"stopReason":"end_turn","additionalModelResponseFields":null}"#,
            r#"{"usage":{"inputTokens":3,"outputTokens":5,"totalTokens":8},"metrics":{"latencyMs":100}}"#,
            r#"{"delta":{"text":1}}"#,
            r#"{"contentBlockIndex":-1}"#,
            r#"{"delta":null,"p":"x","p":"y"}"#,
        ]
        .map(String::from)
        .to_vec();
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/data/providers/extracted"
        );
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                if !e
                    .path()
                    .to_string_lossy()
                    .ends_with(".eventstream.decoded.jsonl")
                {
                    continue;
                }
                let text = std::fs::read_to_string(e.path()).unwrap_or_default();
                for line in text.lines() {
                    let v: Value = serde_json::from_str(line).unwrap_or(Value::Null);
                    if let Some(p) = v.get("payload").filter(|p| p.is_object()) {
                        payloads.push(p.to_string());
                    }
                }
            }
        } else {
            eprintln!("SKIPPED the captured payloads: {dir} not found");
        }
        crate::json_scan::assert_scanner_agrees!(Payload, payloads);
    }

    /// The hand-written delta frames are byte for byte what serde wrote for them.
    #[test]
    fn deltas_match_serde() {
        let text = "héllo \"w\"\n\u{1}";
        let mut e = StreamEncoder::new(&Options::default());
        for (ev, v) in [
            (
                StreamEvent::TextDelta {
                    index: 7,
                    text: text.into(),
                },
                json!({"contentBlockIndex": 7, "delta": {"text": text}}),
            ),
            (
                StreamEvent::ToolArgsDelta {
                    index: 7,
                    json: text.into(),
                },
                json!({"contentBlockIndex": 7, "delta": {"toolUse": {"input": text}}}),
            ),
            (
                StreamEvent::ReasoningDelta {
                    index: 7,
                    text: text.into(),
                },
                json!({"contentBlockIndex": 7, "delta": {"reasoningContent": {"text": text}}}),
            ),
        ] {
            let mut got = Vec::new();
            e.encode(&ev, &mut got).expect("encodes");
            let mut want = Vec::new();
            e.event("contentBlockDelta", &v, &mut want);
            assert_eq!(got, want);
        }
    }
}
