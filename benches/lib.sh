# Shared by the load and soak scripts (sourced): a temporary folder, the servers started in it
# (killed on exit), and `start NAME CMD...`, which runs CMD, waits for its
# "listening on http://ADDR" line and sets $ADDR and $LAST_PID.
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT

start() {
  local name=$1; shift
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  pids+=($!)
  LAST_PID=$!
  for _ in $(seq 1 100); do
    ADDR=$(grep -o 'listening on http://[0-9.:]*' "$tmp/$name.out" | head -1 | sed 's|listening on http://||') || true
    [ -n "${ADDR:-}" ] && return 0
    sleep 0.1
  done
  echo "$name did not start" >&2; cat "$tmp/$name.err" >&2; exit 1
}
