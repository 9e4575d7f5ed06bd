#!/usr/bin/env bash
# Soak: 1,000,000 requests (loopback only, bounded) through the example gateway with every
# building block on (router, guardrail, cache, rate limiter, failover over two backends) in
# front of a mock that compresses and chunks like a real provider. A mix of non-streamed,
# streamed, client-disconnecting and upstream-failing requests, every one different (cache
# misses). Passes when no request that was not meant to fail did, and the gateway's resident
# memory after warm-up (the first 10 %) grew by less than 10 %.
#
#   bash benches/soak.sh                 # 1,000,000 requests, 32 concurrent
#   REQUESTS=100000 bash benches/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS=${REQUESTS:-1000000}
CONC=${CONC:-32}

cargo build --release -q -p infergate-benches --bin mock --bin soak
cargo build --release -q -p infergate-examples --example gateway

# shellcheck source=benches/lib.sh
source benches/lib.sh

MOCK_WIRE=real start mock target/release/mock 127.0.0.1:0; MOCK=$ADDR
cat >"$tmp/soak.toml" <<TOML
[backends.one]
url = "http://$MOCK"
[backends.two]
url = "http://$MOCK"
[failover.pool]
members = [ { backend = "one", tier = 0 }, { backend = "two", tier = 0 } ]
max_attempts = 2
consecutive_failures = 1000000
retry_budget_percent = 0
[routes]
chat = "pool"
[router]
[[router.aliases]]
name = "fast"
backend = "pool"
model = "gpt-4o-mini"
[[router.semantic]]
name = "billing"
utterances = ["how much do i owe this month", "pay my invoice", "update the credit card on my account"]
backend = "pool"
threshold = 0.3
[guardrail]
[[guardrail.checks]]
name = "pii"
detector = "pii"
action = "redact"
applies = "both"
[[guardrail.checks]]
name = "secrets"
detector = "secrets"
action = "block"
[[guardrail.checks]]
name = "injection"
detector = "injection"
action = "block"
applies = "request"
[cache]
max_entries = 20000
[ratelimit]
key = ["api_key"]
[ratelimit.limits]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
TOML
RUST_LOG=error start gateway target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/soak.toml"; GW=$ADDR; GW_PID=$LAST_PID
echo "gateway pid $GW_PID at $GW, idle rss $(grep VmRSS /proc/$GW_PID/status)"
target/release/soak "$GW" "$GW_PID" "$REQUESTS" "$CONC"
