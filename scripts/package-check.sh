#!/usr/bin/env bash
# Packaging check: every published crate of the workspace packages and its packaged sources
# build (cargo verifies the workspace against a temporary local registry, so crates that are
# not on crates.io yet resolve). Crates with `publish = false` (testkit, examples, benches) are
# left out: they are never uploaded.
#
#   bash scripts/package-check.sh                 # what CI runs (a clean clone)
#   bash scripts/package-check.sh --allow-dirty   # on a work tree with uncommitted changes
#
# infergate-pingora's build needs cmake (pingora builds zlib-ng): the script installs it when
# run as root (as CI is); without cmake the crates are packaged but not built, and it says so.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

# The workspace members with `publish = false`, from cargo's own metadata.
mapfile -t unpublished < <(
  cargo metadata --no-deps --format-version 1 |
    python3 -c 'import json, sys
for p in json.load(sys.stdin)["packages"]:
    if p.get("publish") == []:
        print(p["name"])'
)
exclude=()
for name in "${unpublished[@]}"; do
  exclude+=(--exclude "$name")
done
echo "== not published, not packaged: ${unpublished[*]:-none}"

# pingora builds zlib-ng with cmake: install it where we can (CI runs as root, like .ci/run).
if ! command -v cmake >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
fi
# cargo extracts the temporary local registry's crates under $CARGO_HOME/registry/src/-<hash>
# and does not extract the same name and version again: a second run at the same path would
# verify against the sources of the first. Those directories are caches of earlier runs only.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
rm -rf "$cargo_home"/registry/src/-* target/package
# Crates from a registry are taken as immutable: compiled artifacts of an earlier run's
# `infergate-*` 0.1.0 from the same temporary registry would be reused. Only our own crates'
# artifacts go (the dependencies stay built).
rm -rf target/debug/.fingerprint/infergate-* target/debug/deps/*infergate*

verify=()
if ! command -v cmake >/dev/null; then
  # One crate cannot be left out of verification alone (packaging it needs the others in the
  # same run's local registry), so without cmake nothing is verified.
  echo "== cmake missing: packaging without verification (--no-verify)"
  verify=(--no-verify)
fi

start=$(date +%s)
echo "== cargo package --workspace ${exclude[*]} ${verify[*]} $*"
cargo package --workspace "${exclude[@]}" "${verify[@]}" "$@"
echo "== packaging check passed in $(($(date +%s) - start)) s"
