//! Requests: multi-turn tool conversations replayed across protocols keep every call id,
//! argument and result; each field maps where the target has it and is refused by name where
//! it has not.

use infergate_translate::{
    Error, Options, Protocol, decode_request, encode_request,
    ir::{ChatRequest, Part, Role},
    translate_request,
};
use serde_json::{Value, json};

fn v(b: &[u8]) -> Value {
    serde_json::from_slice(b).expect("JSON")
}

/// An OpenAI multi-turn conversation with parallel tool calls and their results.
fn openai_conversation() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [
                {"type": "text", "text": "Weather in Paris and Rome? See the map."},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_A1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_B2", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\",\"unit\":\"c\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_A1", "content": "{\"temp\":21}"},
            {"role": "tool", "tool_call_id": "call_B2", "content": "{\"temp\":27}"},
            {"role": "assistant", "content": "Paris 21°C, Rome 27°C."},
            {"role": "user", "content": "Thanks. And tomorrow?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}
        }}],
        "tool_choice": "auto",
        "max_tokens": 300,
        "temperature": 0.2,
        "stop": ["END"]
    })
}

/// Every tool call and result of a request, in order: (id, name, args) and (call id, text).
type Calls = Vec<(String, String, Value)>;
type Results = Vec<(String, Value)>;

fn tool_trace(r: &ChatRequest) -> (Calls, Results) {
    let mut calls = Vec::new();
    let mut results = Vec::new();
    for m in &r.messages {
        for p in &m.content {
            match p {
                Part::ToolCall {
                    id,
                    name,
                    arguments,
                    ..
                } => {
                    calls.push((
                        id.clone(),
                        name.clone(),
                        serde_json::from_str(arguments).unwrap_or(Value::Null),
                    ));
                }
                Part::ToolResult {
                    call_id, content, ..
                } => {
                    let text: String = content
                        .iter()
                        .filter_map(|c| match c {
                            Part::Text { text, .. } => Some(text.as_str()),
                            _ => None,
                        })
                        .collect();
                    results.push((
                        call_id.clone(),
                        serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    ));
                }
                _ => {}
            }
        }
    }
    (calls, results)
}

#[test]
fn multi_turn_tool_conversations_replay_across_protocols() {
    // The Responses API has no stop sequences: dropped by choice there, checked elsewhere.
    let opts = Options::default().allow_lossy(["stop"]);
    let body = serde_json::to_vec(&openai_conversation()).expect("json");
    let origin = decode_request(Protocol::OpenAiChat, &body, &opts).expect("decodes");
    let trace = tool_trace(&origin);
    assert_eq!(trace.0.len(), 2);
    assert_eq!(trace.1.len(), 2);
    for a in Protocol::ALL {
        let in_a = encode_request(a, &origin, &opts).unwrap_or_else(|e| panic!("→ {a}: {e}"));
        let mut ra = decode_request(a, &in_a, &opts).unwrap_or_else(|e| panic!("{a}: {e}"));
        ra.model.clone_from(&origin.model);
        assert_eq!(tool_trace(&ra), trace, "openai → {a}");
        for b in Protocol::ALL {
            let in_b = encode_request(b, &ra, &opts).unwrap_or_else(|e| panic!("{a} → {b}: {e}"));
            let rb = decode_request(b, &in_b, &opts).unwrap_or_else(|e| panic!("{a} → {b}: {e}"));
            assert_eq!(
                tool_trace(&rb),
                trace,
                "{a} → {b}: every id, argument and result"
            );
            assert_eq!(rb.system.len(), 1, "{a} → {b}: the system prompt");
            assert_eq!(rb.max_tokens, Some(300));
            if !matches!(a, Protocol::OpenAiResponses) && !matches!(b, Protocol::OpenAiResponses) {
                assert_eq!(rb.stop, vec!["END".to_owned()]);
            }
            assert_eq!(rb.tools.len(), 1);
            assert_eq!(
                rb.tools[0].parameters, origin.tools[0].parameters,
                "{a} → {b}: the schema"
            );
            let images = rb
                .messages
                .iter()
                .flat_map(|m| &m.content)
                .filter(|p| matches!(p, Part::Image { .. }))
                .count();
            assert_eq!(images, 1, "{a} → {b}: the image");
        }
    }
}

#[test]
fn openai_tool_results_become_anthropic_and_bedrock_user_blocks() {
    let opts = Options::default();
    let body = serde_json::to_vec(&openai_conversation()).expect("json");
    let a = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Anthropic, &body, &opts)
            .expect("anthropic"),
    );
    // system hoisted, turns alternate, both results in one user turn right after the calls.
    assert_eq!(a["system"][0]["text"], "You are terse.");
    let roles: Vec<&str> = a["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["role"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant", "user"]);
    assert_eq!(a["messages"][1]["content"][1]["id"], "call_B2");
    assert_eq!(
        a["messages"][1]["content"][1]["input"],
        json!({"city": "Rome", "unit": "c"})
    );
    assert_eq!(a["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(a["messages"][2]["content"][1]["tool_use_id"], "call_B2");
    assert_eq!(
        a["messages"][0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="})
    );
    assert_eq!(a["max_tokens"], 300);
    assert_eq!(a["stop_sequences"], json!(["END"]));
    let b = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Bedrock, &body, &opts).expect("bedrock"),
    );
    assert_eq!(
        b["messages"][2]["content"][0]["toolResult"]["toolUseId"],
        "call_A1"
    );
    assert_eq!(
        b["messages"][2]["content"][0]["toolResult"]["status"],
        "success"
    );
    assert_eq!(b["messages"][0]["content"][1]["image"]["format"], "png");
    assert_eq!(
        b["inferenceConfig"],
        json!({"maxTokens": 300, "temperature": 0.2, "stopSequences": ["END"]})
    );
    assert_eq!(b["toolConfig"]["toolChoice"], json!({"auto": {}}));
    let g = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Gemini, &body, &opts).expect("gemini"),
    );
    // Gemini needs the tool's name in each result: found from the call's id.
    assert_eq!(
        g["contents"][2]["parts"][1]["functionResponse"],
        json!({"id": "call_B2", "name": "weather", "response": {"temp": 27}})
    );
    assert_eq!(
        g["contents"][1]["parts"][0]["functionCall"]["args"],
        json!({"city": "Paris"})
    );
}

#[test]
fn tool_choice_every_variant_maps() {
    let opts = Options::default();
    let base = |tc: Value| {
        serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": tc}))
        .expect("json")
    };
    let cases = [
        (
            json!("auto"),
            json!({"type": "auto"}),
            Some(json!({"auto": {}})),
            json!({"mode": "AUTO"}),
        ),
        (
            json!("none"),
            json!({"type": "none"}),
            None,
            json!({"mode": "NONE"}),
        ),
        (
            json!("required"),
            json!({"type": "any"}),
            Some(json!({"any": {}})),
            json!({"mode": "ANY"}),
        ),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
            Some(json!({"tool": {"name": "f"}})),
            json!({"mode": "ANY", "allowedFunctionNames": ["f"]}),
        ),
    ];
    for (oa, an, br, ge) in cases {
        let body = base(oa.clone());
        let a = v(
            &translate_request(Protocol::OpenAiChat, Protocol::Anthropic, &body, &opts)
                .expect("anthropic"),
        );
        assert_eq!(a["tool_choice"], an, "{oa}");
        let b = v(
            &translate_request(Protocol::OpenAiChat, Protocol::Bedrock, &body, &opts)
                .expect("bedrock"),
        );
        match br {
            Some(br) => assert_eq!(b["toolConfig"]["toolChoice"], br, "{oa}"),
            // none, with no tool call in the history: the tools are not offered at all.
            None => assert!(b.get("toolConfig").is_none(), "{oa}"),
        }
        let g = v(
            &translate_request(Protocol::OpenAiChat, Protocol::Gemini, &body, &opts)
                .expect("gemini"),
        );
        assert_eq!(g["toolConfig"]["functionCallingConfig"], ge, "{oa}");
        // And back to OpenAI from each.
        for p in [Protocol::Anthropic, Protocol::Gemini] {
            let there = translate_request(Protocol::OpenAiChat, p, &body, &opts).expect("there");
            let back = v(&translate_request(p, Protocol::OpenAiChat, &there, &opts).expect("back"));
            assert_eq!(back["tool_choice"], oa, "{p}");
        }
    }
    // parallel_tool_calls: false is Anthropic's disable_parallel_tool_use, refused elsewhere.
    let body = serde_json::to_vec(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "parallel_tool_calls": false}))
    .expect("json");
    let a = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Anthropic, &body, &opts)
            .expect("anthropic"),
    );
    assert_eq!(
        a["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    for p in [Protocol::Bedrock, Protocol::Gemini] {
        let e = translate_request(Protocol::OpenAiChat, p, &body, &opts).expect_err("refused");
        assert_eq!(e.param(), Some("parallel_tool_calls"), "{p}");
        assert!(
            translate_request(
                Protocol::OpenAiChat,
                p,
                &body,
                &Options::default().allow_lossy(["parallel_tool_calls"])
            )
            .is_ok()
        );
    }
}

#[test]
fn tool_choice_none_with_tool_history_on_bedrock_is_refused_or_opted_in() {
    let body = serde_json::to_vec(&json!({"model": "m", "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "none"}))
    .expect("json");
    let e = translate_request(
        Protocol::OpenAiChat,
        Protocol::Bedrock,
        &body,
        &Options::default(),
    )
    .expect_err("refused");
    assert_eq!((e.status(), e.param()), (400, Some("tool_choice")));
    // Anthropic and Gemini have none natively: never a 500, never dropped.
    for p in [Protocol::Anthropic, Protocol::Gemini] {
        assert!(
            translate_request(Protocol::OpenAiChat, p, &body, &Options::default()).is_ok(),
            "{p}"
        );
    }
    let b = v(&translate_request(
        Protocol::OpenAiChat,
        Protocol::Bedrock,
        &body,
        &Options::default().allow_lossy(["tool_choice"]),
    )
    .expect("opted in"));
    assert!(b["toolConfig"]["tools"].is_array());
}

#[test]
fn cache_control_becomes_cache_points_right_after_their_content() {
    let body = serde_json::to_vec(&json!({
        "model": "claude", "max_tokens": 100,
        "system": [{"type": "text", "text": "long rules", "cache_control": {"type": "ephemeral"}}],
        "tools": [{"name": "f", "input_schema": {"type": "object"}, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "doc", "cache_control": {"type": "ephemeral"}},
            {"type": "text", "text": "question"}]}]
    }))
    .expect("json");
    let opts = Options::default();
    let b = v(
        &translate_request(Protocol::Anthropic, Protocol::Bedrock, &body, &opts).expect("bedrock"),
    );
    assert_eq!(
        b["system"],
        json!([{"text": "long rules"}, {"cachePoint": {"type": "default"}}])
    );
    assert_eq!(
        b["toolConfig"]["tools"][1],
        json!({"cachePoint": {"type": "default"}})
    );
    assert_eq!(
        b["messages"][0]["content"],
        json!([{"text": "doc"}, {"cachePoint": {"type": "default"}}, {"text": "question"}])
    );
    // And back: the breakpoints return where they were.
    let back = v(&translate_request(
        Protocol::Bedrock,
        Protocol::Anthropic,
        &serde_json::to_vec(&b).expect("json"),
        &opts,
    )
    .expect("back"));
    assert_eq!(
        back["system"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        back["tools"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert_eq!(
        back["messages"][0]["content"][0]["cache_control"],
        json!({"type": "ephemeral"})
    );
    assert!(
        back["messages"][0]["content"][1]
            .get("cache_control")
            .is_none()
    );
    // OpenAI and Gemini have no breakpoints: refused by name, or dropped when opted in.
    for p in [Protocol::OpenAiChat, Protocol::Gemini] {
        let e = translate_request(Protocol::Anthropic, p, &body, &opts).expect_err("refused");
        assert_eq!(e.param(), Some("cache_control"), "{p}");
        assert!(
            translate_request(
                Protocol::Anthropic,
                p,
                &body,
                &Options::default().allow_lossy(["cache_control"])
            )
            .is_ok()
        );
    }
    // A cachePoint with nothing before it is a client error, not a misplaced 400 upstream.
    let bad = br#"{"messages":[{"role":"user","content":[{"cachePoint":{"type":"default"}},{"text":"x"}]}]}"#;
    let e =
        translate_request(Protocol::Bedrock, Protocol::Anthropic, bad, &opts).expect_err("refused");
    assert!(matches!(e, Error::InvalidRequest { .. }));
}

#[test]
fn unrepresentable_fields_are_refused_by_name() {
    let opts = Options::default();
    let with = |extra: Value| {
        let mut body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        for (k, x) in extra.as_object().expect("object") {
            body[k] = x.clone();
        }
        serde_json::to_vec(&body).expect("json")
    };
    let cases = [
        (
            json!({"logit_bias": {"1": 2}}),
            "logit_bias",
            vec![Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini],
        ),
        (
            json!({"logprobs": true}),
            "logprobs",
            vec![Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini],
        ),
        (
            json!({"n": 2}),
            "n",
            vec![Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini],
        ),
        (
            json!({"seed": 7}),
            "seed",
            vec![Protocol::Anthropic, Protocol::Bedrock],
        ),
        (
            json!({"frequency_penalty": 0.5}),
            "frequency_penalty",
            vec![Protocol::Anthropic, Protocol::Bedrock],
        ),
        (
            json!({"presence_penalty": 0.5}),
            "presence_penalty",
            vec![Protocol::Anthropic, Protocol::Bedrock],
        ),
        (
            json!({"user": "u1"}),
            "user",
            vec![Protocol::Bedrock, Protocol::Gemini],
        ),
        (
            json!({"response_format": {"type": "json_object"}}),
            "response_format",
            vec![Protocol::Anthropic, Protocol::Bedrock],
        ),
        (
            json!({"reasoning_effort": "high"}),
            "reasoning_effort",
            vec![Protocol::Anthropic, Protocol::Bedrock],
        ),
    ];
    for (extra, param, refused) in cases {
        let body = with(extra);
        for p in [Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini] {
            let r = translate_request(Protocol::OpenAiChat, p, &body, &opts);
            if refused.contains(&p) {
                let e = r.expect_err(param);
                assert_eq!((e.status(), e.param()), (400, Some(param)), "{param} → {p}");
                let pe = e.to_provider_error();
                let (status, out) = infergate_translate::encode_error(Protocol::OpenAiChat, &pe);
                assert_eq!(status, 400);
                assert_eq!(v(&out)["error"]["param"], param);
                // The documented lossy mapping, when the caller opts in.
                assert!(
                    translate_request(
                        Protocol::OpenAiChat,
                        p,
                        &body,
                        &Options::default().allow_lossy([param])
                    )
                    .is_ok(),
                    "{param} → {p} opted in"
                );
            } else {
                r.unwrap_or_else(|e| panic!("{param} → {p}: {e}"));
            }
        }
    }
    // Passing through to the same protocol keeps them.
    let body = with(json!({"logit_bias": {"1": 2}}));
    let same = v(
        &translate_request(Protocol::OpenAiChat, Protocol::OpenAiChat, &body, &opts).expect("same"),
    );
    assert_eq!(same["logit_bias"], json!({"1": 2}));
}

#[test]
fn developer_role_strict_and_json_schema_are_kept() {
    let body = serde_json::to_vec(&json!({"model": "m", "messages": [
        {"role": "developer", "content": "Answer in JSON."},
        {"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "strict": true, "parameters": {"type": "object", "additionalProperties": false}}}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "strict": true, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}}))
    .expect("json");
    let opts = Options::default();
    let a = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Anthropic, &body, &opts)
            .expect("anthropic"),
    );
    assert_eq!(a["system"][0]["text"], "Answer in JSON.");
    assert_eq!(a["tools"][0]["strict"], true);
    assert_eq!(
        a["output_config"]["format"]["schema"]["properties"]["a"]["type"],
        "string"
    );
    let b = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Bedrock, &body, &opts).expect("bedrock"),
    );
    assert_eq!(b["toolConfig"]["tools"][0]["toolSpec"]["strict"], true);
    let schema: Value = serde_json::from_str(
        b["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"]
            .as_str()
            .expect("a string"),
    )
    .expect("json");
    assert_eq!(schema["properties"]["a"]["type"], "string");
    assert_eq!(
        b["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["name"],
        "out"
    );
    // Gemini has no strict flag: refused by name.
    let e = translate_request(Protocol::OpenAiChat, Protocol::Gemini, &body, &opts)
        .expect_err("strict");
    assert_eq!(e.param(), Some("strict"));
    // The developer role survives a round trip through OpenAI itself.
    let same = v(
        &translate_request(Protocol::OpenAiChat, Protocol::OpenAiChat, &body, &opts).expect("same"),
    );
    assert_eq!(same["messages"][0]["role"], "developer");
}

#[test]
fn thinking_signatures_are_carried_through_multi_turn() {
    // An Anthropic client replays a thinking turn with its signature and a redacted block.
    let body = serde_json::to_vec(&json!({"model": "claude", "max_tokens": 2000,
        "thinking": {"type": "enabled", "budget_tokens": 1024},
        "messages": [
            {"role": "user", "content": "Largest city in my country?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Need the country.", "signature": "SIG-1"},
                {"type": "redacted_thinking", "data": "ENC=="},
                {"type": "tool_use", "id": "toolu_1", "name": "country", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "France"}]}]}))
    .expect("json");
    let opts = Options::default();
    let b = v(
        &translate_request(Protocol::Anthropic, Protocol::Bedrock, &body, &opts).expect("bedrock"),
    );
    assert_eq!(
        b["messages"][1]["content"][0]["reasoningContent"]["reasoningText"],
        json!({"text": "Need the country.", "signature": "SIG-1"})
    );
    assert_eq!(
        b["messages"][1]["content"][1]["reasoningContent"]["redactedContent"],
        "ENC=="
    );
    assert_eq!(
        b["additionalModelRequestFields"]["thinking"],
        json!({"type": "enabled", "budget_tokens": 1024})
    );
    let back = v(&translate_request(
        Protocol::Bedrock,
        Protocol::Anthropic,
        &serde_json::to_vec(&b).expect("json"),
        &opts,
    )
    .expect("back"));
    assert_eq!(
        back["messages"][1]["content"][0],
        json!({"type": "thinking", "thinking": "Need the country.", "signature": "SIG-1"})
    );
    assert_eq!(
        back["messages"][1]["content"][1],
        json!({"type": "redacted_thinking", "data": "ENC=="})
    );
    // OpenAI Chat cannot carry signed reasoning back: refused unless dropped by choice.
    let e = translate_request(Protocol::Anthropic, Protocol::OpenAiChat, &body, &opts)
        .expect_err("reasoning");
    assert_eq!(e.param(), Some("reasoning"));
    // A Gemini thought signature on a call rides on the call through OpenAI and Anthropic.
    let g = br#"{"contents":[{"role":"user","parts":[{"text":"hi"}]},
        {"role":"model","parts":[{"functionCall":{"name":"f","args":{"x":1}},"thoughtSignature":"GSIG"}]},
        {"role":"user","parts":[{"functionResponse":{"name":"f","response":{"ok":true}}}]}]}"#;
    for via in [Protocol::OpenAiChat, Protocol::Anthropic] {
        let there = translate_request(Protocol::Gemini, via, g, &opts)
            .unwrap_or_else(|e| panic!("{via}: {e}"));
        let back = v(&translate_request(via, Protocol::Gemini, &there, &opts)
            .unwrap_or_else(|e| panic!("{via}: {e}")));
        let part = &back["contents"][1]["parts"][0];
        assert_eq!(part["thoughtSignature"], "GSIG", "{via}");
        assert_eq!(part["functionCall"]["args"], json!({"x": 1}), "{via}");
        assert_eq!(
            back["contents"][2]["parts"][0]["functionResponse"]["response"],
            json!({"ok": true}),
            "{via}"
        );
        assert_eq!(
            back["contents"][2]["parts"][0]["functionResponse"]["id"], part["functionCall"]["id"],
            "{via}"
        );
    }
}

#[test]
fn images_by_url_map_or_are_refused() {
    let body = serde_json::to_vec(
        &json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]}),
    )
    .expect("json");
    let opts = Options::default();
    let a = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Anthropic, &body, &opts)
            .expect("anthropic"),
    );
    assert_eq!(
        a["messages"][0]["content"][0]["source"],
        json!({"type": "url", "url": "https://example.com/cat.png"})
    );
    let g = v(
        &translate_request(Protocol::OpenAiChat, Protocol::Gemini, &body, &opts).expect("gemini"),
    );
    assert_eq!(
        g["contents"][0]["parts"][0]["fileData"],
        json!({"mimeType": "image/png", "fileUri": "https://example.com/cat.png"})
    );
    // Bedrock takes bytes only; this crate fetches nothing.
    let e =
        translate_request(Protocol::OpenAiChat, Protocol::Bedrock, &body, &opts).expect_err("url");
    assert_eq!(e.status(), 400);
    assert!(e.param().is_some_and(|p| p.ends_with("image_url")), "{e}");
}

#[test]
fn mid_conversation_system_messages_and_names_are_not_silently_moved() {
    let body = serde_json::to_vec(&json!({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "system", "content": "late"}, {"role": "user", "content": "b"}]}))
    .expect("json");
    let e = translate_request(
        Protocol::OpenAiChat,
        Protocol::Anthropic,
        &body,
        &Options::default(),
    )
    .expect_err("late system");
    assert_eq!(e.param(), Some("messages[1].role"));
    let a = v(&translate_request(
        Protocol::OpenAiChat,
        Protocol::Anthropic,
        &body,
        &Options::default().allow_lossy(["system"]),
    )
    .expect("hoisted"));
    assert_eq!(a["system"][0]["text"], "late");
}

#[test]
fn anthropic_needs_max_tokens_and_gets_the_default() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let a = v(&translate_request(
        Protocol::OpenAiChat,
        Protocol::Anthropic,
        body,
        &Options::default(),
    )
    .expect("anthropic"));
    assert_eq!(a["max_tokens"], 4096);
    let r = decode_request(
        Protocol::Anthropic,
        &serde_json::to_vec(&a).expect("json"),
        &Options::default(),
    )
    .expect("decodes");
    assert_eq!(r.messages[0].role, Role::User);
}

#[test]
fn hostile_bodies_are_errors_not_panics() {
    let opts = Options::default();
    let bodies: &[&[u8]] = &[
        b"",
        b"null",
        b"[]",
        b"{\"messages\":7}",
        b"{\"messages\":[{\"role\":\"assistant\",\"tool_calls\":[{}]}]}",
        b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\"}]}]}",
        b"{\"contents\":[{\"parts\":[{\"functionResponse\":{}}]}]}",
        b"{\"messages\":[{\"role\":\"user\",\"content\":[{\"toolResult\":{\"content\":5}}]}]}",
        b"{\"max_tokens\":-1}",
        b"{\"temperature\":\"hot\"}",
    ];
    for b in bodies {
        for from in Protocol::ALL {
            for to in Protocol::ALL {
                let _ = translate_request(from, to, b, &opts);
            }
        }
    }
    let mut small = Options::default();
    small.max_body_len = 8;
    assert!(
        translate_request(
            Protocol::OpenAiChat,
            Protocol::Anthropic,
            br#"{"model":"a-long-model"}"#,
            &small
        )
        .is_err()
    );
}

#[test]
fn gemini_generation_config_carries_every_sampling_field() {
    let body = serde_json::to_vec(&json!({
        "model": "gemini-2.5-flash",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3, "top_p": 0.9, "max_completion_tokens": 512, "seed": -7,
        "stop": ["END", "STOP"], "presence_penalty": 0.5, "frequency_penalty": -0.25,
        "reasoning_effort": "low",
        "response_format": {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}
    }))
    .expect("json");
    let out = translate_request(
        Protocol::OpenAiChat,
        Protocol::Gemini,
        &body,
        &Options::default(),
    )
    .expect("gemini");
    let g = v(&out);
    assert_eq!(
        g["generationConfig"],
        json!({
            "frequencyPenalty": -0.25, "maxOutputTokens": 512, "presencePenalty": 0.5,
            "responseJsonSchema": {"type": "object"}, "responseMimeType": "application/json",
            "seed": -7, "stopSequences": ["END", "STOP"], "temperature": 0.3,
            "thinkingConfig": {"thinkingLevel": "low"}, "topP": 0.9
        })
    );
    // The keys in sorted order, as the map that wrote them before did.
    let text = String::from_utf8(out).expect("utf-8");
    let keys = [
        "frequencyPenalty",
        "maxOutputTokens",
        "presencePenalty",
        "responseJsonSchema",
        "responseMimeType",
        "seed",
        "stopSequences",
        "temperature",
        "thinkingConfig",
        "topP",
    ];
    let at: Vec<usize> = keys
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).expect(k))
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{text}");
    // No sampling field: no generationConfig at all.
    let bare = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let g = v(&translate_request(
        Protocol::OpenAiChat,
        Protocol::Gemini,
        bare,
        &Options::default(),
    )
    .expect("gemini"));
    assert!(g.get("generationConfig").is_none());
}
