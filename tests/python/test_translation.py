"""The official OpenAI and Anthropic Python SDKs reach backends of every protocol through the
example gateway's sample config: its router sends claude-* to an Anthropic-protocol mock,
bedrock/* to a Bedrock one (AWS event-stream framing), gemini-* to a Gemini one, and the rest
to OpenAI-protocol mocks (the chat failover group fails over from an OpenAI backend to an
Anthropic one)."""

import json

import anthropic
import openai
import pytest

DEMO_KEY = "igk_demo_0000000000000000000000000000"

# model -> the backend that answers it (x-infergate-backend)
OPENAI_MODELS = {
    "gpt-4o-mini": "steady",  # the chat failover group: flaky (OpenAI, 503) -> steady (Anthropic)
    "claude-sonnet-4-5": "claude",
    "bedrock/claude": "bedrock",
    "gemini-2.0-flash": "gemini",
}
ANTHROPIC_MODELS = {
    "gpt-4o-mini": "mock",  # an OpenAI-protocol backend
    "bedrock/claude": "bedrock",
    "gemini-2.0-flash": "gemini",
}

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}

# Neutral prompts: the sample router's semantic routes must not move them to another backend.
PROMPT = "Say hello"


@pytest.fixture()
def oai(sample_gateway_url):
    return openai.OpenAI(base_url=sample_gateway_url + "/v1", api_key=DEMO_KEY, max_retries=0)


@pytest.fixture()
def claude(sample_gateway_url):
    return anthropic.Anthropic(base_url=sample_gateway_url, api_key=DEMO_KEY, max_retries=0)


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_sdk_chat(oai, model):
    raw = oai.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
    )
    assert raw.headers["x-infergate-backend"] == OPENAI_MODELS[model]
    r = raw.parse()
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.startswith("Hello!")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.prompt_tokens > 0
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_sdk_streaming(oai, model):
    stream = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": PROMPT}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello! This is the infergate mock provider")
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("model", OPENAI_MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_tool_call_round_trip(oai, model, stream):
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    if stream:
        calls = {}
        finish = None
        for c in oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER], stream=True):
            if not c.choices:
                continue
            finish = c.choices[0].finish_reason or finish
            for tc in c.choices[0].delta.tool_calls or []:
                slot = calls.setdefault(tc.index, {"id": None, "name": None, "arguments": ""})
                slot["id"] = tc.id or slot["id"]
                if tc.function:
                    slot["name"] = tc.function.name or slot["name"]
                    slot["arguments"] += tc.function.arguments or ""
        assert finish == "tool_calls"
        assert len(calls) == 1
        call = calls[0]
        call_id, name, arguments = call["id"], call["name"], call["arguments"]
    else:
        r = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
        assert r.choices[0].finish_reason == "tool_calls"
        tc = r.choices[0].message.tool_calls[0]
        call_id, name, arguments = tc.id, tc.function.name, tc.function.arguments
    assert call_id and name == "get_weather"
    assert isinstance(json.loads(arguments)["city"], str)
    messages += [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}],
        },
        {"role": "tool", "tool_call_id": call_id, "content": "sunny, 21 C"},
    ]
    r = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER])
    assert r.choices[0].finish_reason == "stop"
    assert "sunny, 21 C" in r.choices[0].message.content


@pytest.mark.parametrize("model", OPENAI_MODELS)
def test_openai_sdk_json_schema(oai, model):
    r = oai.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "Name a city and its population."}],
        response_format={
            "type": "json_schema",
            "json_schema": {
                "name": "city",
                "strict": True,
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                    "required": ["name", "population"],
                    "additionalProperties": False,
                },
            },
        },
    )
    city = json.loads(r.choices[0].message.content)
    assert isinstance(city["name"], str) and isinstance(city["population"], int)


@pytest.mark.parametrize("model", ANTHROPIC_MODELS)
def test_anthropic_sdk_message(claude, model):
    raw = claude.messages.with_raw_response.create(
        model=model, max_tokens=64, system="Be brief.", messages=[{"role": "user", "content": PROMPT}]
    )
    assert raw.headers["x-infergate-backend"] == ANTHROPIC_MODELS[model]
    m = raw.parse()
    assert m.role == "assistant"
    assert m.content[0].text.startswith("Hello!")
    assert m.stop_reason == "end_turn"
    assert m.usage.input_tokens > 0 and m.usage.output_tokens > 0


@pytest.mark.parametrize("model", ANTHROPIC_MODELS)
def test_anthropic_sdk_streaming(claude, model):
    with claude.messages.stream(
        model=model, max_tokens=64, messages=[{"role": "user", "content": PROMPT}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("Hello! This is the infergate mock provider")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


@pytest.mark.parametrize("model", ANTHROPIC_MODELS)
def test_anthropic_sdk_tool_use_round_trip(claude, model):
    tools = [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        }
    ]
    messages = [{"role": "user", "content": "What is the weather in Paris?"}]
    m = claude.messages.create(model=model, max_tokens=64, tools=tools, messages=messages)
    assert m.stop_reason == "tool_use"
    use = next(b for b in m.content if b.type == "tool_use")
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny, 21 C"}]},
    ]
    m = claude.messages.create(model=model, max_tokens=64, tools=tools, messages=messages)
    assert m.stop_reason == "end_turn"
    assert "sunny, 21 C" in m.content[0].text


@pytest.mark.parametrize("model", ANTHROPIC_MODELS)
def test_anthropic_sdk_json_schema(claude, model):
    m = claude.messages.create(
        model=model,
        max_tokens=64,
        messages=[{"role": "user", "content": "Name a city and its population."}],
        output_config={
            "format": {
                "type": "json_schema",
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "population": {"type": "integer"}},
                    "required": ["name", "population"],
                    "additionalProperties": False,
                },
            }
        },
    )
    city = json.loads(m.content[0].text)
    assert isinstance(city["name"], str) and isinstance(city["population"], int)
