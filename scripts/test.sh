#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration over loopback, doc tests) and the
# official OpenAI/Anthropic Python SDKs against the example gateway. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server for the shared rate-limit store tests (they skip, with a message, without it;
# under CI they fail instead). Installed from Debian's packages when we can.
if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null
fi

# Python SDKs for the client tests, in a private virtualenv.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "== cargo test (workspace, all features)"
cargo test --workspace --all-features

echo "== Python SDK client tests against the example gateway"
cargo build --example gateway
cargo build -p infergate-ratelimit --example count_tokens
.venv/bin/python -m pytest -q -p no:cacheprovider tests/python
