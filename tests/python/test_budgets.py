"""Budgets seen by the official SDKs: the cost of each answer in `x-infergate-cost-usd`, the
refusal once a budget is spent as each SDK's own RateLimitError with OpenAI's
`insufficient_quota`, and the principal's spend at GET /v1/infergate/budget."""

import json
import urllib.error
import urllib.request

import anthropic
import openai
import pytest

from conftest import _start

KEY = "igk_budget_000000000000000000000000000"

CONFIG = f"""
[identity]
[identity.keys]
store = "inline"
keys = [{{ key = "{KEY}", tenant = "sdk" }}]

[backends.mock]
url = "mock"
protocol = "openai"

[routes]
chat = "mock"
embeddings = "mock"
messages = "mock"

[budgets]
cost_header = true
unpriced = "allow"

[[budgets.budget]]
name = "tiny"
scope = "principal"
usd = 0.0002
window = "day"
"""


@pytest.fixture(scope="module")
def budget_gateway(tmp_path_factory):
    path = tmp_path_factory.mktemp("budgets") / "infergate.toml"
    path.write_text(CONFIG)
    yield from _start(["--config", str(path)])


def get(url, key=None):
    req = urllib.request.Request(url)
    if key:
        req.add_header("authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def spent(url):
    status, body = get(url + "/v1/infergate/budget", KEY)
    assert status == 200, body
    b = body["budgets"][0]
    assert b["name"] == "tiny" and b["unit"] == "usd" and b["limit"] == "0.0002"
    return float(b["spent"])


def test_costs_then_insufficient_quota_in_both_sdks(budget_gateway):
    oai = openai.OpenAI(base_url=budget_gateway + "/v1", api_key=KEY, max_retries=0)
    claude = anthropic.Anthropic(base_url=budget_gateway, api_key=KEY, max_retries=0)
    assert spent(budget_gateway) == 0.0
    total = 0.0
    refused = None
    for i in range(100):
        try:
            raw = oai.chat.completions.with_raw_response.create(
                model="gpt-4o-mini",
                max_tokens=20,
                messages=[{"role": "user", "content": f"Budget question {i}"}],
            )
        except openai.RateLimitError as e:
            refused = e
            break
        completion = raw.parse()
        cost = float(raw.headers["x-infergate-cost-usd"])
        u = completion.usage
        # gpt-4o-mini's list price: $0.15 and $0.60 per million input and output tokens.
        assert cost == pytest.approx(u.prompt_tokens * 0.15e-6 + u.completion_tokens * 0.6e-6, abs=1e-9)
        total += cost
    assert refused is not None, "the budget runs out"
    assert refused.status_code == 429
    assert refused.code == "insufficient_quota"
    assert refused.response.headers["x-infergate-budget-name"] == "tiny"
    assert spent(budget_gateway) == pytest.approx(total, abs=1e-9)
    assert total <= 0.0002
    # The Anthropic SDK is refused too, in Anthropic's shape.
    with pytest.raises(anthropic.RateLimitError) as e:
        claude.messages.create(
            model="claude-haiku-4-5", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
        )
    assert e.value.status_code == 429
    assert "budget 'tiny'" in str(e.value)


def test_the_status_endpoint_needs_the_key(budget_gateway):
    status, body = get(budget_gateway + "/v1/infergate/budget")
    assert status == 401
    assert body["error"]["type"] == "authentication_error"
