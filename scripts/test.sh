#!/usr/bin/env bash
# Runs every test: the Rust workspace (unit, integration over loopback, doc tests) and the
# official OpenAI/Anthropic Python SDKs against the example gateway. Installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."

# Python SDKs for the client tests, in a private virtualenv.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

echo "== cargo test (workspace, all features)"
cargo test --workspace --all-features

echo "== Python SDK client tests against the example gateway"
cargo build --example gateway
.venv/bin/python -m pytest -q -p no:cacheprovider tests/python
