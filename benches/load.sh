#!/usr/bin/env bash
# End-to-end load benchmark, on loopback only, bounded in time: in one run, in front of the same
# mock, a bare hyper 1 passthrough proxy (no infergate code), the empty PipelineLayer over
# UpstreamClient on plain hyper (`layered`), the example gateway with an empty pipeline (alone
# and with a failover group over two healthy backends), the gateway with the cache on (the same request: exact hits), and the gateway with every building
# block on (router, guardrail, cache, rate limiter) and every request different (cache misses).
# Measured with wrk: requests/s, p50/p99 latency, CPU per request of the proxy process, and the
# ratios to the passthrough proxy.
#
#   bash benches/load.sh                   # 10 s per run, 32 connections, 2 rounds
#   DURATION=5 CONNS=64 ROUNDS=1 bash benches/load.sh
#   ONLY=telemetry bash benches/load.sh    # every block on, with and without [telemetry]
#   ONLY=blocks bash benches/load.sh       # each block alone, then all, every request a miss
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-32}
ROUNDS=${ROUNDS:-2}
STREAM=${STREAM:-false}

if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
fi
cargo build --release -q -p infergate-benches --bins
cargo build --release -q -p infergate-examples --example gateway

# shellcheck source=benches/lib.sh
source benches/lib.sh

start mock target/release/mock 127.0.0.1:0; MOCK=$ADDR
start passthrough target/release/passthrough 127.0.0.1:0 "$MOCK"; PASS=$ADDR; PASS_PID=$LAST_PID
start layered target/release/layered 127.0.0.1:0 "http://$MOCK"; LAY=$ADDR; LAY_PID=$LAST_PID
cat >"$tmp/gw.toml" <<TOML
[backends.mock]
url = "http://$MOCK"
TOML
RUST_LOG=warn start gateway target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gw.toml"; GW=$ADDR; GW_PID=$LAST_PID

# The gateway with an empty pipeline and a failover group over two healthy backends (the same
# mock): what failover adds when nothing fails.
cat >"$tmp/gwf.toml" <<TOML
[backends.one]
url = "http://$MOCK"
[backends.two]
url = "http://$MOCK"
[failover.pool]
members = [{ backend = "one" }, { backend = "two", tier = 1 }]
[routes]
chat = "pool"
TOML
RUST_LOG=warn start gateway-failover target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gwf.toml"; GWF=$ADDR; GWF_PID=$LAST_PID

# The gateway with the response cache on: after the first request every one is an exact hit.
cat >"$tmp/gwc.toml" <<TOML
[backends.mock]
url = "http://$MOCK"
[cache]
TOML
RUST_LOG=warn start gateway-cached target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gwc.toml"; GWC=$ADDR; GWC_PID=$LAST_PID

# The gateway with every building block on (router with semantic routes, guardrail, cache,
# rate limiter), and every request different: all cache misses, all checks run.
ROUTER_TOML=$(cat <<TOML
[router]
[[router.aliases]]
name = "fast"
backend = "mock"
model = "gpt-4o-mini"
[[router.semantic]]
name = "billing"
utterances = ["how much do i owe this month", "pay my invoice", "update the credit card on my account"]
backend = "mock"
threshold = 0.3
[[router.semantic]]
name = "travel"
utterances = ["book a flight to paris", "find me a hotel in rome", "rent a car at the airport"]
backend = "mock"
threshold = 0.3
TOML
)
GUARDRAIL_TOML=$(cat <<TOML
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
[[guardrail.checks]]
name = "deny"
detector = "deny_list"
terms = ["project falcon", "internal only"]
action = "block"
[[guardrail.checks]]
name = "tokens"
detector = "max_tokens"
max_tokens = 32000
action = "block"
applies = "request"
TOML
)
CACHE_TOML=$(cat <<TOML
[cache]
TOML
)
RATELIMIT_TOML=$(cat <<TOML
[ratelimit]
key = ["api_key"]
[ratelimit.limits]
requests_per_minute = 100000000
tokens_per_minute = 100000000000
TOML
)
block_config() { # FILE SECTION...: the mock backend and the given sections
  local file=$1
  shift
  { printf '[backends.mock]\nurl = "http://%s"\n' "$MOCK"; printf '%s\n' "$@"; } >"$file"
}
block_config "$tmp/gwa.toml" "$ROUTER_TOML" "$GUARDRAIL_TOML" "$CACHE_TOML" "$RATELIMIT_TOML"
RUST_LOG=warn start gateway-all-blocks target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gwa.toml"; GWA=$ADDR; GWA_PID=$LAST_PID
# The same with telemetry on (metrics, the admin address, the access log to a file; spans are
# built only for an exporter, and there is no collector here).
{
  cat "$tmp/gwa.toml"
  cat <<TOML
[telemetry]
admin_listen = "127.0.0.1:0"
access_log = "$tmp/access.log"
TOML
} >"$tmp/gwt.toml"
RUST_LOG=warn start gateway-all-blocks-telemetry target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gwt.toml"; GWT=$ADDR; GWT_PID=$LAST_PID
# The same two on a current-thread runtime per core (SO_REUSEPORT listeners).
INFERGATE_RUNTIME=per-core RUST_LOG=warn start gateway-per-core target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gw.toml"; GWP=$ADDR; GWP_PID=$LAST_PID
INFERGATE_RUNTIME=per-core RUST_LOG=warn start gateway-all-blocks-per-core target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gwa.toml"; GWAP=$ADDR; GWAP_PID=$LAST_PID

# ONLY=blocks: each building block alone, every request a miss — what each block costs end to
# end, beside blocks_cost's in-process figures.
declare -A BLOCK_ADDR BLOCK_PID
if [ "${ONLY:-}" = blocks ]; then
  for b in ROUTER GUARDRAIL CACHE RATELIMIT; do
    section="${b}_TOML"
    block_config "$tmp/gw-$b.toml" "${!section}"
    RUST_LOG=warn start "gateway-$b" target/release/examples/gateway --listen 127.0.0.1:0 --config "$tmp/gw-$b.toml"
    BLOCK_ADDR[$b]=$ADDR
    BLOCK_PID[$b]=$LAST_PID
  done
fi

# Every request different (a counter in the user message): cache misses throughout.
cat >"$tmp/unique.lua" <<LUA
-- A prefix of its own per wrk run: a later run never repeats an earlier run's requests (those
-- would be cache hits).
math.randomseed(os.time() + math.floor(os.clock() * 1e6))
run = string.format("%d-%d", os.time(), math.random(1, 1000000000))
counter = 0
request = function()
  counter = counter + 1
  local body = '{"model":"gpt-4o-mini","stream":$STREAM,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Question number ' .. run .. '-' .. counter .. '. Answer in one word."}],"max_tokens":64}'
  return wrk.format("POST", "/v1/chat/completions", {["content-type"] = "application/json", ["authorization"] = "Bearer sk-bench"}, body)
end
LUA

cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer sk-bench"
wrk.body = '{"model":"gpt-4o-mini","stream":$STREAM,"messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"What is the capital of France? Answer in one word."}],"max_tokens":64}'
LUA

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # NAME ADDR PID [SCRIPT]
  local before after out rps p50 p99 reqs
  local script=${4:-$tmp/post.lua}
  before=$(cpu_ticks "$3")
  out=$(wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -s "$script" "http://$2/v1/chat/completions")
  after=$(cpu_ticks "$3")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  local non2xx
  non2xx=$(echo "$out" | awk '/Non-2xx/ {print $5}')
  local cpu_us
  cpu_us=$(awk -v a="$after" -v b="$before" -v hz="$hz" -v n="$reqs" 'BEGIN { printf "%.1f", (a-b)/hz*1e6/n }')
  echo "| $1 | $rps | $p50 | $p99 | $cpu_us | ${non2xx:-0} |"
  echo "$1 $rps" >>"$tmp/rps"
}

echo "wrk -t1 -c$CONNS -d${DURATION}s, stream=$STREAM, $(nproc) cores, $(date -u +%Y-%m-%d)"
echo
echo "| server | requests/s | p50 | p99 | proxy CPU µs/request | non-2xx |"
echo "|---|---|---|---|---|---|"
# Warm-up (pools, page cache), not reported.
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$PASS/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$LAY/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$GW/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$GWF/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$GWC/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/unique.lua" "http://$GWA/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/post.lua" "http://$GWP/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/unique.lua" "http://$GWAP/v1/chat/completions" >/dev/null
wrk -t1 -c"$CONNS" -d2s -s "$tmp/unique.lua" "http://$GWT/v1/chat/completions" >/dev/null
for round in $(seq 1 "$ROUNDS"); do
  if [ "${ONLY:-}" = blocks ]; then
    run passthrough "$PASS" "$PASS_PID"
    run gateway-empty-misses "$GW" "$GW_PID" "$tmp/unique.lua"
    for b in ROUTER GUARDRAIL CACHE RATELIMIT; do
      run "gateway-$(echo "$b" | tr '[:upper:]' '[:lower:]')-only-misses" "${BLOCK_ADDR[$b]}" "${BLOCK_PID[$b]}" "$tmp/unique.lua"
    done
    run gateway-all-blocks-misses "$GWA" "$GWA_PID" "$tmp/unique.lua"
    continue
  fi
  if [ "${ONLY:-}" = telemetry ]; then
    # The two gateways compared swap places every round: this machine drifts within a round,
    # and a fixed order charged the drift to whichever ran second.
    run passthrough "$PASS" "$PASS_PID"
    if [ $((round % 2)) -eq 1 ]; then
      run gateway-all-blocks-misses "$GWA" "$GWA_PID" "$tmp/unique.lua"
      run gateway-all-blocks-misses-telemetry "$GWT" "$GWT_PID" "$tmp/unique.lua"
    else
      run gateway-all-blocks-misses-telemetry "$GWT" "$GWT_PID" "$tmp/unique.lua"
      run gateway-all-blocks-misses "$GWA" "$GWA_PID" "$tmp/unique.lua"
    fi
    continue
  fi
  run passthrough "$PASS" "$PASS_PID"
  run layered "$LAY" "$LAY_PID"
  run gateway "$GW" "$GW_PID"
  run gateway-failover "$GWF" "$GWF_PID"
  run gateway-cached-hits "$GWC" "$GWC_PID"
  run gateway-all-blocks-misses "$GWA" "$GWA_PID" "$tmp/unique.lua"
  run gateway-per-core "$GWP" "$GWP_PID"
  run gateway-all-blocks-misses-per-core "$GWAP" "$GWAP_PID" "$tmp/unique.lua"
  run gateway-all-blocks-misses-telemetry "$GWT" "$GWT_PID" "$tmp/unique.lua"
done
if [ "${ONLY:-}" = telemetry ]; then
  awk '{s[$1]+=$2; n[$1]++} END {
    printf "\nratio gateway-all-blocks-misses/passthrough (mean requests/s): %.3f\n", (s["gateway-all-blocks-misses"]/n["gateway-all-blocks-misses"])/(s["passthrough"]/n["passthrough"]);
    printf "ratio telemetry on/off, every block on (mean requests/s): %.3f\n", (s["gateway-all-blocks-misses-telemetry"]/n["gateway-all-blocks-misses-telemetry"])/(s["gateway-all-blocks-misses"]/n["gateway-all-blocks-misses"]) }' "$tmp/rps"
  echo "access log lines written: $(wc -l <"$tmp/access.log")"
  exit 0
fi
awk '{s[$1]+=$2; n[$1]++} END {
  printf "\nratio layered/passthrough (mean requests/s): %.3f\n", (s["layered"]/n["layered"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway/passthrough (mean requests/s): %.3f\n", (s["gateway"]/n["gateway"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway-failover/passthrough (mean requests/s): %.3f\n", (s["gateway-failover"]/n["gateway-failover"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway-cached-hits/passthrough (mean requests/s): %.3f\n", (s["gateway-cached-hits"]/n["gateway-cached-hits"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway-all-blocks-misses/passthrough (mean requests/s): %.3f\n", (s["gateway-all-blocks-misses"]/n["gateway-all-blocks-misses"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway-per-core/passthrough (mean requests/s): %.3f\n", (s["gateway-per-core"]/n["gateway-per-core"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio gateway-all-blocks-misses-per-core/passthrough (mean requests/s): %.3f\n", (s["gateway-all-blocks-misses-per-core"]/n["gateway-all-blocks-misses-per-core"])/(s["passthrough"]/n["passthrough"]);
  printf "ratio telemetry on/off, every block on (mean requests/s): %.3f\n", (s["gateway-all-blocks-misses-telemetry"]/n["gateway-all-blocks-misses-telemetry"])/(s["gateway-all-blocks-misses"]/n["gateway-all-blocks-misses"]) }' "$tmp/rps"
