"""The official OpenAI and Anthropic Python SDKs talk to the example gateway."""

import anthropic
import openai
import pytest


@pytest.fixture()
def oai(gateway_url):
    return openai.OpenAI(base_url=gateway_url + "/v1", api_key="sk-test-not-a-real-key", max_retries=0)


@pytest.fixture()
def claude(gateway_url):
    return anthropic.Anthropic(base_url=gateway_url, api_key="sk-ant-test-not-real", max_retries=0)


def test_openai_chat_completion(oai):
    r = oai.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content.startswith("Hello!")
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.model == "gpt-4o-mini"


def test_openai_chat_completion_streamed(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("Hello! This is the infergate mock provider")
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks), "no usage chunk unless asked for"


def test_openai_chat_completion_streamed_with_usage(oai):
    stream = oai.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "Hello"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0


def test_openai_embeddings(oai):
    r = oai.embeddings.create(model="text-embedding-3-small", input=["one", "two"], dimensions=8)
    assert len(r.data) == 2 and len(r.data[0].embedding) == 8


def test_openai_models(oai):
    ids = [m.id for m in oai.models.list()]
    assert "mock-gpt" in ids


def test_openai_errors_are_typed(oai):
    # The SDK maps the gateway's OpenAI-shaped 400 to its own BadRequestError.
    with pytest.raises(openai.BadRequestError) as e:
        oai.chat.completions.create(model="gpt-4o-mini", messages="not a list")
    assert e.value.status_code == 400
    assert e.value.code == "invalid_request"


def test_anthropic_message(claude):
    m = claude.messages.create(
        model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    )
    assert m.role == "assistant"
    assert m.content[0].text.startswith("Hello!")
    assert m.stop_reason == "end_turn"
    assert m.usage.output_tokens > 0


def test_anthropic_message_streamed(claude):
    with claude.messages.stream(
        model="mock-claude", max_tokens=64, messages=[{"role": "user", "content": "Hello"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text.startswith("Hello! This is the infergate mock provider")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 0


def test_anthropic_errors_are_typed(claude):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="mock-claude", max_tokens=5, messages="nope")
    assert e.value.status_code == 400
