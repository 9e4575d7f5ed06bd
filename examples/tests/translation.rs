//! Protocol translation through the example gateway: backends declare the protocol they speak
//! (embedded mocks speaking OpenAI, Anthropic, Bedrock and Gemini); clients call the OpenAI or
//! the Anthropic API. Answers, streams, tool-call round trips and structured output arrive in
//! the client's API; a failover group spanning OpenAI and Anthropic is invisible to the client
//! but for `x-infergate-backend`.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use infergate_examples::config::Config;
use infergate_examples::gateway;
use infergate_testkit::{Reply, send};
use serde_json::{Value, json};

const CONFIG: &str = r#"
[backends.openai]
url = "mock:openai"
protocol = "openai"

[backends.anthropic]
url = "mock:anthropic"
protocol = "anthropic"

[backends.bedrock]
url = "mock:bedrock"
protocol = "bedrock"

[backends.gemini]
url = "mock:gemini"
protocol = "gemini"
lossy = ["strict"]

[backends.down]
url = "mock:down"
protocol = "openai"
mock_failure = "503"

[failover.mixed]
members = [
  { backend = "down", tier = 0 },
  { backend = "anthropic", tier = 1 },
]

[router]
[[router.globs]]
pattern = "claude-*"
backend = "anthropic"
[[router.globs]]
pattern = "bedrock/*"
backend = "bedrock"
model = "anthropic.claude-3-5-haiku-20241022-v1:0"
[[router.globs]]
pattern = "gemini-*"
backend = "gemini"
[[router.globs]]
pattern = "mixed-*"
backend = "mixed"

[routes]
chat = "openai"
messages = "openai"
"#;

async fn start() -> (SocketAddr, gateway::Gateway) {
    gateway::spawn_local(&Config::parse(CONFIG).unwrap())
        .await
        .unwrap()
}

async fn post(addr: SocketAddr, path: &str, body: &Value) -> Reply {
    let req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    send(req).await
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: ").or_else(|| l.strip_prefix("data:")))
        .map(|d| d.trim().to_owned())
        .collect()
}

const MODELS: [(&str, &str); 4] = [
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4-5", "anthropic"),
    ("bedrock/claude", "bedrock"),
    ("gemini-2.0-flash", "gemini"),
];

fn weather_tool() -> Value {
    json!({"type": "function", "function": {"name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"], "additionalProperties": false},
        "strict": true}})
}

#[tokio::test]
async fn an_openai_client_reaches_every_protocol() {
    let (addr, gw) = start().await;
    for (model, backend) in MODELS {
        // A plain answer.
        let r = post(
            addr,
            "/v1/chat/completions",
            &json!({"model": model, "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Say hello"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.headers["x-infergate-backend"], backend, "{model}");
        let v = r.json();
        assert_eq!(v["object"], "chat.completion", "{model}: {v}");
        assert!(
            v["choices"][0]["message"]["content"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{model}: {v}"
        );
        assert_eq!(v["choices"][0]["finish_reason"], "stop", "{model}");
        let u = &v["usage"];
        assert!(u["prompt_tokens"].as_u64().unwrap() > 0, "{model}: {v}");
        assert_eq!(
            u["total_tokens"].as_u64().unwrap(),
            u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
        );
        // The backend answered in its own protocol (the embedded mocks answer Bedrock and
        // Gemini only on their own paths, and the answer was translated back).
        assert!(gw.named_mocks[backend].request_count() > 0);

        // Streamed, with the usage chunk asked for.
        let r = post(
            addr,
            "/v1/chat/completions",
            &json!({"model": model, "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "Say hello"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        let data = sse_data(&r.text());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{model}");
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let text: String = chunks
            .iter()
            .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert!(!text.is_empty(), "{model}: {data:?}");
        assert!(
            chunks
                .iter()
                .all(|c| c["object"] == "chat.completion.chunk"),
            "{model}"
        );
        let usage = chunks
            .iter()
            .rev()
            .find(|c| c["usage"].is_object())
            .unwrap();
        assert!(
            usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
            "{model}: {usage}"
        );
    }
}

#[tokio::test]
async fn tool_calls_round_trip_through_every_protocol() {
    let (addr, _gw) = start().await;
    for (model, _) in MODELS {
        for stream in [false, true] {
            let ask = json!({"model": model, "stream": stream, "tools": [weather_tool()],
                "messages": [{"role": "user", "content": "Weather in Paris?"}]});
            let r = post(addr, "/v1/chat/completions", &ask).await;
            assert_eq!(r.status, 200, "{model} {stream}: {}", r.text());
            let (id, name, args) = if stream {
                let data = sse_data(&r.text());
                let chunks: Vec<Value> = data
                    .iter()
                    .filter(|d| *d != "[DONE]")
                    .map(|d| serde_json::from_str(d).unwrap())
                    .collect();
                let calls: Vec<&Value> = chunks
                    .iter()
                    .filter_map(|c| c["choices"][0]["delta"]["tool_calls"].as_array())
                    .flatten()
                    .collect();
                let id = calls.iter().find_map(|c| c["id"].as_str()).unwrap();
                let name = calls
                    .iter()
                    .find_map(|c| c["function"]["name"].as_str())
                    .unwrap();
                let args: String = calls
                    .iter()
                    .filter_map(|c| c["function"]["arguments"].as_str())
                    .collect();
                let finish = chunks
                    .iter()
                    .find_map(|c| c["choices"][0]["finish_reason"].as_str())
                    .unwrap();
                assert_eq!(finish, "tool_calls", "{model}");
                (id.to_owned(), name.to_owned(), args)
            } else {
                let v = r.json();
                assert_eq!(
                    v["choices"][0]["finish_reason"], "tool_calls",
                    "{model}: {v}"
                );
                let call = &v["choices"][0]["message"]["tool_calls"][0];
                (
                    call["id"].as_str().unwrap().to_owned(),
                    call["function"]["name"].as_str().unwrap().to_owned(),
                    call["function"]["arguments"].as_str().unwrap().to_owned(),
                )
            };
            assert_eq!(name, "get_weather", "{model}");
            let parsed: Value = serde_json::from_str(&args).unwrap();
            assert!(parsed["city"].is_string(), "{model}: {args}");
            assert!(!id.is_empty());

            // The result goes back; the answer uses it.
            let turn2 = json!({"model": model, "tools": [weather_tool()], "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": id, "type": "function", "function": {"name": name, "arguments": args}}]},
                {"role": "tool", "tool_call_id": id, "content": "sunny, 21 C"}]});
            let r = post(addr, "/v1/chat/completions", &turn2).await;
            assert_eq!(r.status, 200, "{model}: {}", r.text());
            let v = r.json();
            let text = v["choices"][0]["message"]["content"].as_str().unwrap();
            assert!(text.contains("sunny, 21 C"), "{model}: {text}");
        }
    }
}

#[tokio::test]
async fn json_schema_output_from_every_protocol() {
    let (addr, _gw) = start().await;
    for (model, _) in MODELS {
        let r = post(
            addr,
            "/v1/chat/completions",
            &json!({"model": model, "messages": [{"role": "user", "content": "A city"}],
                "response_format": {"type": "json_schema", "json_schema": {"name": "city",
                    "strict": true, "schema": {"type": "object", "additionalProperties": false,
                        "required": ["name", "population"],
                        "properties": {"name": {"type": "string"}, "population": {"type": "integer"}}}}}}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let v = r.json();
        let content: Value =
            serde_json::from_str(v["choices"][0]["message"]["content"].as_str().unwrap()).unwrap();
        assert!(content["name"].is_string(), "{model}: {content}");
        assert!(content["population"].is_i64(), "{model}: {content}");
    }
}

#[tokio::test]
async fn an_anthropic_client_reaches_openai_bedrock_and_gemini() {
    let (addr, _gw) = start().await;
    for (model, backend) in [
        ("gpt-4o-mini", "openai"),
        ("bedrock/claude", "bedrock"),
        ("gemini-2.0-flash", "gemini"),
    ] {
        let r = post(
            addr,
            "/v1/messages",
            &json!({"model": model, "max_tokens": 100, "system": "Be brief.",
                "messages": [{"role": "user", "content": "Say hello"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        assert_eq!(r.headers["x-infergate-backend"], backend);
        let v = r.json();
        assert_eq!(v["type"], "message", "{model}: {v}");
        assert_eq!(v["content"][0]["type"], "text");
        assert_eq!(v["stop_reason"], "end_turn");
        assert!(v["usage"]["input_tokens"].as_u64().unwrap() > 0);
        // Streamed: Anthropic's events, in order.
        let r = post(
            addr,
            "/v1/messages",
            &json!({"model": model, "max_tokens": 100, "stream": true,
                "messages": [{"role": "user", "content": "Say hello"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let body = r.text();
        let events: Vec<&str> = body
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(events.first(), Some(&"message_start"), "{model}: {body}");
        assert_eq!(events.last(), Some(&"message_stop"), "{model}: {body}");
        assert!(events.contains(&"content_block_delta"));
        let delta: Value = sse_data(&body)
            .iter()
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .find(|v| v["type"] == "message_delta")
            .unwrap();
        assert!(
            delta["usage"]["output_tokens"].as_u64().unwrap() > 0,
            "{delta}"
        );

        // A tool call in Anthropic's shape.
        let r = post(
            addr,
            "/v1/messages",
            &json!({"model": model, "max_tokens": 100,
                "tools": [{"name": "get_weather", "input_schema": {"type": "object",
                    "properties": {"city": {"type": "string"}}}}],
                "messages": [{"role": "user", "content": "Weather in Paris?"}]}),
        )
        .await;
        assert_eq!(r.status, 200, "{model}: {}", r.text());
        let v = r.json();
        assert_eq!(v["stop_reason"], "tool_use", "{model}: {v}");
        assert_eq!(v["content"][0]["type"], "tool_use");
        assert!(v["content"][0]["input"]["city"].is_string());
    }
}

#[tokio::test]
async fn failover_from_openai_to_anthropic_is_invisible_but_for_the_backend_header() {
    let (addr, gw) = start().await;
    for stream in [false, true] {
        let body = json!({"model": "mixed-model", "stream": stream,
            "messages": [{"role": "user", "content": "Say hello"}]});
        let r = post(addr, "/v1/chat/completions", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-infergate-backend"], "anthropic");
        assert_eq!(r.headers["x-infergate-attempts"], "2");
        // Compare with a direct OpenAI answer: the same shape.
        let direct = post(
            addr,
            "/v1/chat/completions",
            &json!({"model": "gpt-4o-mini", "stream": stream,
                "messages": [{"role": "user", "content": "Say hello"}]}),
        )
        .await;
        if stream {
            let a = sse_data(&r.text());
            let b = sse_data(&direct.text());
            assert_eq!(a.last(), b.last());
            let first: Value = serde_json::from_str(&a[0]).unwrap();
            assert_eq!(first["object"], "chat.completion.chunk");
            assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        } else {
            let keys = |v: &Value| {
                let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
                k.retain(|k| k != "system_fingerprint");
                k.sort();
                k
            };
            assert_eq!(keys(&r.json()), keys(&direct.json()));
            assert_eq!(
                r.json()["choices"][0]["message"]["content"],
                direct.json()["choices"][0]["message"]["content"]
            );
        }
    }
    // The failing member did see the attempts, in OpenAI's protocol.
    assert!(gw.named_mocks["down"].request_count() >= 2);
}

#[tokio::test]
async fn a_field_the_backend_cannot_represent_is_a_400_naming_it() {
    let (addr, gw) = start().await;
    let before = gw.named_mocks["anthropic"].request_count();
    let r = post(
        addr,
        "/v1/chat/completions",
        &json!({"model": "claude-sonnet-4-5", "logit_bias": {"50256": -100},
            "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text());
    let v = r.json();
    assert_eq!(v["error"]["param"], "logit_bias", "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert_eq!(gw.named_mocks["anthropic"].request_count(), before);
}

/// The credentials sit below the translation: a Bedrock backend's SigV4 signature covers the
/// translated body (the one that arrives), not the client's.
#[tokio::test]
async fn sigv4_signs_the_translated_body() {
    use infergate::auth::{
        AwsCredentialSource, AwsCredentials, Provider, ProviderAuthLayer, Secret, SigV4Options,
    };
    use infergate::client::UpstreamClient;
    use infergate::core::{Pipeline, PipelineLayer};
    use infergate::translate::layer::{Target, TranslateLayer};
    use sha2::Digest;
    use tower::Layer;

    let mock = infergate::mock::MockProvider::start().await.unwrap();
    let sigv4 = ProviderAuthLayer::new(Provider::Bedrock {
        credentials: AwsCredentialSource::Static(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        }),
        region: "us-east-1".into(),
        service: "bedrock".into(),
        endpoint: mock.url().parse().unwrap(),
        options: SigV4Options::default(),
    });
    let upstream = TranslateLayer::new(Target::Bedrock)
        .layer(sigv4.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy()));
    let addr =
        infergate_testkit::serve(PipelineLayer::new(Pipeline::default()).layer(upstream)).await;
    let client_body = json!({"model": "anthropic.claude-3-5-haiku-20241022-v1:0",
        "messages": [{"role": "user", "content": "Say hello"}]});
    let r = post(addr, "/v1/chat/completions", &client_body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["object"], "chat.completion");
    let seen = mock.requests().pop().unwrap();
    assert_eq!(
        seen.path,
        "/model/anthropic.claude-3-5-haiku-20241022-v1:0/converse"
    );
    assert!(seen.json().unwrap()["messages"][0]["content"][0]["text"] == "Say hello");
    let authz = seen.headers["authorization"].to_str().unwrap();
    assert!(
        authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"),
        "{authz}"
    );
    let sha = seen.headers["x-amz-content-sha256"].to_str().unwrap();
    let arrived = sha2::Sha256::digest(&seen.body);
    let hex: String = arrived.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(sha, hex, "the signature covers the bytes that arrived");
    assert_ne!(&seen.body[..], client_body.to_string().as_bytes());
}
