//! The fast path of Chat Completions request decoding: typed, borrowed deserialization of the
//! common shapes. Anything it does not know (an unknown field, a type it does not expect, a
//! refusal to report) makes it give up, and the general decoder in [`crate::openai`] reads the
//! body instead, with its precise errors. The two agree on every body the fast path accepts
//! (a property test checks it).

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Value, json};

use crate::{
    Options,
    ir::{
        ChatRequest, Effort, ImageSource, Message, Part, RawJson, Reasoning, Role, SystemPart, Tool,
    },
    json_scan::Scan,
    openai::{decode_response_format, decode_tool_choice},
    util::parse_data_url,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Req<'a> {
    #[serde(borrow, default)]
    model: Cow<'a, str>,
    #[serde(borrow, default, deserialize_with = "presized")]
    messages: Vec<Msg<'a>>,
    #[serde(borrow, default)]
    tools: Option<Vec<ToolDef<'a>>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    stop: Option<Value>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    reasoning_effort: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<Value>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    user: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Msg<'a> {
    #[serde(borrow)]
    role: Cow<'a, str>,
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<Call<'a>>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    tool_call_id: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    refusal: Option<Cow<'a, str>>,
}

enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<CPart<'a>>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Content<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Content<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of parts")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Content::Text(Cow::Owned(s)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                seq_vec(seq, 2).map(Content::Parts)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CPart<'a> {
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    refusal: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    image_url: Option<ImageUrl<'a>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    detail: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Call<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(
        borrow,
        deserialize_with = "crate::util::opt_cow",
        rename = "type",
        default
    )]
    _ty: Option<Cow<'a, str>>,
    #[serde(borrow)]
    function: CallFn<'a>,
    #[serde(default)]
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallFn<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    arguments: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolDef<'a> {
    #[serde(borrow, rename = "type")]
    ty: Cow<'a, str>,
    #[serde(borrow)]
    function: FnDef<'a>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FnDef<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow, deserialize_with = "crate::util::opt_cow", default)]
    description: Option<Cow<'a, str>>,
    #[serde(borrow, deserialize_with = "crate::util::opt_raw_text", default)]
    parameters: Option<&'a str>,
    #[serde(default)]
    strict: Option<bool>,
}

impl<'a> Req<'a> {
    /// Reads a request with the borrowed scanner, where serde's derived visitors spend most of
    /// a request's decoding time; `None` (anything unexpected, a key seen twice, a number
    /// written oddly) hands the body to serde, which reads every body this accepts alike.
    fn scan(s: &'a str) -> Option<Self> {
        let mut sc = Scan::new(s);
        let mut r = Req {
            model: Cow::Borrowed(""),
            messages: Vec::new(),
            tools: None,
            tool_choice: None,
            parallel_tool_calls: None,
            response_format: None,
            max_tokens: None,
            max_completion_tokens: None,
            temperature: None,
            top_p: None,
            stop: None,
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
            reasoning_effort: None,
            stream: None,
            stream_options: None,
            user: None,
        };
        sc.object(|key, sc| {
            match key {
                "model" => r.model = sc.string()?,
                "messages" => {
                    r.messages.reserve(8);
                    sc.array(|_, sc| {
                        r.messages.push(Msg::scan(sc)?);
                        Some(())
                    })?;
                }
                "tools" => {
                    r.tools = sc.opt_list(2, ToolDef::scan)?;
                }
                "tool_choice" => r.tool_choice = sc.opt_value()?,
                "parallel_tool_calls" => r.parallel_tool_calls = sc.opt_bool()?,
                "response_format" => r.response_format = sc.opt_value()?,
                "max_tokens" => r.max_tokens = opt_u32(sc)?,
                "max_completion_tokens" => r.max_completion_tokens = opt_u32(sc)?,
                "temperature" => r.temperature = sc.opt_f64()?,
                "top_p" => r.top_p = sc.opt_f64()?,
                "stop" => r.stop = sc.opt_value()?,
                "seed" => r.seed = sc.opt_i64()?,
                "presence_penalty" => r.presence_penalty = sc.opt_f64()?,
                "frequency_penalty" => r.frequency_penalty = sc.opt_f64()?,
                "reasoning_effort" => r.reasoning_effort = sc.opt_string()?,
                "stream" => r.stream = sc.opt_bool()?,
                "stream_options" => r.stream_options = sc.opt_value()?,
                "user" => r.user = sc.opt_string()?,
                _ => return None,
            }
            Some(())
        })?;
        sc.end()?;
        Some(r)
    }
}

/// `null` or an unsigned integer that fits a `u32`.
#[allow(clippy::option_option)]
fn opt_u32(sc: &mut Scan<'_>) -> Option<Option<u32>> {
    match sc.opt_u64()? {
        None => Some(None),
        Some(n) => u32::try_from(n).ok().map(Some),
    }
}

impl<'a> Msg<'a> {
    fn scan(sc: &mut Scan<'a>) -> Option<Self> {
        let mut role = None;
        let mut m = Msg {
            role: Cow::Borrowed(""),
            content: None,
            tool_calls: None,
            tool_call_id: None,
            reasoning_content: None,
            refusal: None,
        };
        sc.object(|key, sc| {
            match key {
                "role" => role = Some(sc.string()?),
                "content" => {
                    m.content = if sc.null() {
                        None
                    } else if sc.at_array() {
                        let mut parts = Vec::with_capacity(2);
                        sc.array(|_, sc| {
                            parts.push(CPart::scan(sc)?);
                            Some(())
                        })?;
                        Some(Content::Parts(parts))
                    } else {
                        Some(Content::Text(sc.string()?))
                    };
                }
                "tool_calls" => {
                    m.tool_calls = sc.opt_list(1, Call::scan)?;
                }
                "tool_call_id" => m.tool_call_id = sc.opt_string()?,
                "reasoning_content" => m.reasoning_content = sc.opt_string()?,
                "refusal" => m.refusal = sc.opt_string()?,
                _ => return None,
            }
            Some(())
        })?;
        m.role = role?;
        Some(m)
    }
}

impl<'a> CPart<'a> {
    fn scan(sc: &mut Scan<'a>) -> Option<Self> {
        let mut ty = None;
        let mut p = CPart {
            ty: Cow::Borrowed(""),
            text: None,
            refusal: None,
            image_url: None,
        };
        sc.object(|key, sc| {
            match key {
                "type" => ty = Some(sc.string()?),
                "text" => p.text = sc.opt_string()?,
                "refusal" => p.refusal = sc.opt_string()?,
                "image_url" => {
                    if !sc.null() {
                        let (mut url, mut detail) = (None, None);
                        sc.object(|key, sc| {
                            match key {
                                "url" => url = Some(sc.string()?),
                                "detail" => detail = sc.opt_string()?,
                                _ => return None,
                            }
                            Some(())
                        })?;
                        p.image_url = Some(ImageUrl { url: url?, detail });
                    }
                }
                _ => return None,
            }
            Some(())
        })?;
        p.ty = ty?;
        Some(p)
    }
}

impl<'a> Call<'a> {
    fn scan(sc: &mut Scan<'a>) -> Option<Self> {
        let (mut id, mut ty, mut function, mut extra_content) = (None, None, None, None);
        sc.object(|key, sc| {
            match key {
                "id" => id = Some(sc.string()?),
                "type" => ty = sc.opt_string()?,
                "function" => {
                    let (mut name, mut arguments) = (None, None);
                    sc.object(|key, sc| {
                        match key {
                            "name" => name = Some(sc.string()?),
                            "arguments" => arguments = sc.opt_string()?,
                            _ => return None,
                        }
                        Some(())
                    })?;
                    function = Some(CallFn {
                        name: name?,
                        arguments,
                    });
                }
                "extra_content" => extra_content = sc.opt_value()?,
                _ => return None,
            }
            Some(())
        })?;
        Some(Call {
            id: id?,
            _ty: ty,
            function: function?,
            extra_content,
        })
    }
}

impl<'a> ToolDef<'a> {
    fn scan(sc: &mut Scan<'a>) -> Option<Self> {
        let (mut ty, mut function) = (None, None);
        sc.object(|key, sc| {
            match key {
                "type" => ty = Some(sc.string()?),
                "function" => {
                    let mut f = FnDef {
                        name: Cow::Borrowed(""),
                        description: None,
                        parameters: None,
                        strict: None,
                    };
                    let mut name = None;
                    sc.object(|key, sc| {
                        match key {
                            "name" => name = Some(sc.string()?),
                            "description" => f.description = sc.opt_string()?,
                            "parameters" => {
                                if !sc.null() {
                                    f.parameters = Some(sc.raw()?);
                                }
                            }
                            "strict" => f.strict = sc.opt_bool()?,
                            _ => return None,
                        }
                        Some(())
                    })?;
                    f.name = name?;
                    function = Some(f);
                }
                _ => return None,
            }
            Some(())
        })?;
        Some(ToolDef {
            ty: ty?,
            function: function?,
        })
    }
}

/// A sequence read into a `Vec` that starts with room for eight (serde's starts with none
/// when JSON gives no length, and a conversation of five messages then grows it twice).
fn presized<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a sequence")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<T>, A::Error> {
            seq_vec(seq, 8)
        }
    }
    d.deserialize_seq(V(std::marker::PhantomData))
}

/// The elements of `seq` in a `Vec` with room for its length, or `room` when JSON gives none.
fn seq_vec<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    mut seq: A,
    room: usize,
) -> Result<Vec<T>, A::Error> {
    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(room).min(64));
    while let Some(x) = seq.next_element()? {
        out.push(x);
    }
    Ok(out)
}

/// Calls `f` with each text of a content that may hold text only; `None`: give up.
fn each_text(c: Option<Content<'_>>, mut f: impl FnMut(String)) -> Option<()> {
    match c {
        None => {}
        Some(Content::Text(s)) => f(s.into_owned()),
        Some(Content::Parts(parts)) => {
            for p in parts {
                match p.ty.as_ref() {
                    "text" => f(p.text?.into_owned()),
                    "refusal" => f(p.refusal.map(Cow::into_owned).unwrap_or_default()),
                    _ => return None,
                }
            }
        }
    }
    Some(())
}

/// Decodes the common shapes of a request; `None` when the general decoder must read it.
pub(crate) fn decode_request(body: &[u8], opts: &Options) -> Option<ChatRequest> {
    if body.len() > opts.max_body_len {
        return None;
    }
    let req = match std::str::from_utf8(body) {
        Ok(s) => match Req::scan(s) {
            Some(req) => req,
            None => serde_json::from_str(s).ok()?,
        },
        Err(_) => return None,
    };
    let mut r = ChatRequest {
        model: req.model.into_owned(),
        ..ChatRequest::default()
    };
    r.messages.reserve(req.messages.len());
    for m in req.messages {
        match m.role.as_ref() {
            "system" | "developer" => {
                if !r.messages.is_empty() && !opts.allows("system") {
                    return None;
                }
                let developer = m.role == "developer";
                let system = &mut r.system;
                each_text(m.content, |text| {
                    system.push(SystemPart {
                        text,
                        developer,
                        cache: None,
                    });
                })?;
            }
            "user" => {
                let content = match m.content {
                    None => Vec::new(),
                    Some(Content::Text(s)) => vec![Part::text(s.into_owned())],
                    Some(Content::Parts(parts)) => {
                        let mut out = Vec::with_capacity(parts.len());
                        for p in parts {
                            match p.ty.as_ref() {
                                "text" => out.push(Part::text(p.text?.into_owned())),
                                "image_url" => {
                                    let iu = p.image_url?;
                                    let source = match parse_data_url(&iu.url) {
                                        Some((media_type, data)) => {
                                            ImageSource::Base64 { media_type, data }
                                        }
                                        None => ImageSource::Url(iu.url.into_owned()),
                                    };
                                    out.push(Part::Image {
                                        source,
                                        detail: iu.detail.map(Cow::into_owned),
                                        cache: None,
                                    });
                                }
                                _ => return None,
                            }
                        }
                        out
                    }
                };
                r.messages.push(Message::new(Role::User, content));
            }
            "assistant" => {
                let mut content = Vec::new();
                if let Some(rc) = m.reasoning_content {
                    content.push(Part::Reasoning {
                        text: rc.into_owned(),
                        signature: None,
                        redacted: None,
                    });
                }
                each_text(m.content, |t| content.push(Part::text(t)))?;
                if let Some(rf) = m.refusal {
                    content.push(Part::text(rf.into_owned()));
                }
                for c in m.tool_calls.unwrap_or_default() {
                    if let Some(extra) = &c.extra_content {
                        match extra.pointer("/google/thought_signature") {
                            Some(Value::String(sig)) => content.push(Part::Reasoning {
                                text: String::new(),
                                signature: Some(sig.clone()),
                                redacted: None,
                            }),
                            _ => return None,
                        }
                    }
                    content.push(Part::ToolCall {
                        id: c.id.into_owned(),
                        name: c.function.name.into_owned(),
                        arguments: c
                            .function
                            .arguments
                            .map(Cow::into_owned)
                            .unwrap_or_default(),
                        cache: None,
                    });
                }
                r.messages.push(Message::new(Role::Assistant, content));
            }
            "tool" => {
                let call_id = m.tool_call_id?.into_owned();
                let mut content = Vec::with_capacity(1);
                each_text(m.content, |t| content.push(Part::text(t)))?;
                let part = Part::ToolResult {
                    call_id,
                    name: None,
                    content,
                    is_error: false,
                    cache: None,
                };
                r.push_tool_result(part);
            }
            _ => return None,
        }
    }
    for t in req.tools.unwrap_or_default() {
        if t.ty != "function" {
            return None;
        }
        let f = t.function;
        let mut tool = Tool::new(
            f.name.into_owned(),
            f.parameters.map_or_else(
                || json!({"type": "object", "properties": {}}).into(),
                RawJson::checked,
            ),
        );
        tool.description = f.description.map(Cow::into_owned);
        tool.strict = f.strict;
        r.tools.push(tool);
    }
    if let Some(tc) = &req.tool_choice {
        r.tool_choice = decode_tool_choice(tc).ok()?;
    }
    r.parallel_tool_calls = req.parallel_tool_calls;
    if let Some(rf) = &req.response_format {
        r.response_format = decode_response_format(rf).ok()?;
    }
    r.max_tokens = req.max_completion_tokens.or(req.max_tokens);
    r.temperature = req.temperature;
    r.top_p = req.top_p;
    match req.stop {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => r.stop.push(s),
        Some(Value::Array(a)) => {
            for s in a {
                match s {
                    Value::String(s) => r.stop.push(s),
                    _ => return None,
                }
            }
        }
        Some(_) => return None,
    }
    r.seed = req.seed;
    r.presence_penalty = req.presence_penalty;
    r.frequency_penalty = req.frequency_penalty;
    if let Some(e) = req.reasoning_effort {
        r.reasoning = Some(Reasoning {
            effort: Some(Effort::parse(&e)?),
            ..Reasoning::default()
        });
    }
    r.stream = req.stream.unwrap_or(false);
    if let Some(so) = req.stream_options {
        r.include_usage = so
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
    }
    r.user = req.user.map(Cow::into_owned);
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request scanner takes the common shapes (it is not silently handed to serde).
    #[test]
    fn the_request_scanner_takes_the_common_shapes() {
        let body = r#"{"model":"gpt-4o","messages":[
            {"role":"system","content":"You are brief."},
            {"role":"user","content":[{"type":"text","text":"look"},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
            {"role":"tool","tool_call_id":"call_1","content":"{\"temp\":18}"}],
            "tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":true}}],
            "tool_choice":"auto","max_tokens":512,"temperature":0.3,"top_p":1,"seed":-3,"stop":["x"],"stream":false}"#;
        assert!(Req::scan(body).is_some());
        assert!(Req::scan(r#"{"model":"m","messages":[],"seed":-0}"#).is_none());
        assert!(Req::scan(r#"{"model":"m","messages":[],"max_tokens":4294967296}"#).is_none());
    }

    #[test]
    fn takes_the_common_shapes_and_gives_up_on_the_rest() {
        let opts = Options::default();
        let common = br#"{"model":"m","messages":[{"role":"system","content":"s"},
            {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]},
            {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
            {"role":"tool","tool_call_id":"c1","content":"ok"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
            "tool_choice":"auto","max_tokens":10,"stop":["x"],"stream":true,"stream_options":{"include_usage":true}}"#;
        let fast = decode_request(common, &opts);
        assert!(fast.is_some());
        assert_eq!(
            fast,
            crate::openai::decode_request_general(common, &opts).ok()
        );
        let every_field = br#" {"model":"gpt-4o","messages":[
            {"role":"developer","content":[{"type":"text","text":"be \"brief\"\n"}]},
            {"role":"system","content":null},
            {"role":"user","content":[{"type":"text","text":"look"},
                {"type":"image_url","image_url":{"url":"https://x/y.png","detail":"low"}}]},
            {"role":"assistant","content":"a","reasoning_content":"thought","refusal":null,
             "tool_calls":[{"id":"c\u00e9","type":"function","function":{"name":"f","arguments":"{\"a\":1}"},
                            "extra_content":{"google":{"thought_signature":"sig"}}}]},
            {"role":"tool","tool_call_id":"c1","content":[{"type":"text","text":"r"}]},
            {"role":"assistant","content":[{"type":"refusal","refusal":"no"}],"tool_calls":null}],
            "tools":[{"type":"function","function":{"name":"f","description":"d","strict":true,
                "parameters": { "type" : "object" } }},
                {"type":"function","function":{"name":"g","parameters":null,"description":null}}],
            "tool_choice":{"type":"function","function":{"name":"f"}},"parallel_tool_calls":false,
            "response_format":{"type":"json_object"},"max_completion_tokens":4294967295,"max_tokens":null,
            "temperature":1,"top_p":0.25e0,"stop":["a","b"],"seed":-12,"presence_penalty":-0.5,
            "frequency_penalty":1E-3,"reasoning_effort":"low","stream":false,"stream_options":null,
            "user":"u"} "#;
        let fast = decode_request(every_field, &opts);
        assert!(fast.is_some());
        assert_eq!(
            fast,
            crate::openai::decode_request_general(every_field, &opts).ok()
        );
        for odd in [
            &br#"{"model":"m","messages":[],"logit_bias":{}}"#[..],
            br#"{"model":"m","messages":[{"role":"user","name":"n","content":"x"}]}"#,
            br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"system","content":"late"}]}"#,
            br#"{"model":"m","messages":[],"max_tokens":-1}"#,
            br#"{"model":"m","messages":[],"max_tokens":1.5}"#,
            br#"{"model":"m","messages":[],"max_tokens":4294967296}"#,
            br#"{"model":"m","messages":[],"seed":-0}"#,
            br#"{"model":"m","messages":[],"temperature":1e999}"#,
            br#"{"model":"m","model":"n","messages":[]}"#,
            br#"{"model":null,"messages":[]}"#,
            br#"{"model":"m","messages":[{"content":"no role"}]}"#,
            br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"x","extra":1}]}]}"#,
            br#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            br#"{"model":"m","messages":[]} x"#,
            br#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"parameters":{}}}]}"#,
        ] {
            assert!(decode_request(odd, &opts).is_none());
        }
    }
}
