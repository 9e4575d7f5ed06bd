#!/usr/bin/env bash
# Packaging check: every published crate of the workspace packages (cargo packages the
# workspace against a temporary local registry, so crates that are not on crates.io yet
# resolve) and its packaged sources compile (checked together, see below). Crates with
# `publish = false` (testkit, examples, benches) are left out: they are never uploaded.
#
#   bash scripts/package-check.sh                 # what CI runs (a clean clone)
#   bash scripts/package-check.sh --allow-dirty   # on a work tree with uncommitted changes
#
# infergate-pingora's build needs cmake (pingora builds zlib-ng): the script installs it when
# run as root (as CI is); without cmake the crates are packaged but not checked, and it says so.
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
rm -rf target/package

start=$(date +%s)
echo "== cargo package --workspace ${exclude[*]} --no-verify $*"
cargo package --workspace "${exclude[@]}" --no-verify "$@"

# Verification: cargo's own (`cargo package` without --no-verify) builds every packaged crate
# with each crate's own feature set, so ~500 dependencies compile again (10+ minutes here). The
# same guarantee — the packaged sources compile, with nothing missing from the package — comes
# from checking the unpacked crates together as one workspace, with the same dependency
# versions (Cargo.lock) and profiles, in the workspace's target directory (dependencies
# already checked by clippy are reused).
if ! command -v cmake >/dev/null; then
  # pingora's zlib-ng needs cmake to build; without it nothing is verified.
  echo "== cmake missing: packaged without verification"
  echo "== packaging check passed (unverified) in $(($(date +%s) - start)) s"
  exit 0
fi
vdir=target/package-verify
rm -rf "$vdir"
mkdir -p "$vdir"
members=()
patches=()
for crate in target/package/*.crate; do
  tar -xzf "$crate" -C "$vdir"
  dir=$(basename "$crate" .crate)
  members+=("\"$dir\"")
  patches+=("${dir%-*} = { path = \"$dir\" }")
done
{
  echo "[workspace]"
  echo "resolver = \"2\""
  echo "members = [$(IFS=,; echo "${members[*]}")]"
  echo
  echo "[patch.crates-io]"
  printf '%s\n' "${patches[@]}"
  echo
  # The workspace's profiles, so that dependencies are compiled (and reused) alike.
  sed -n '/^\[profile/,$p' Cargo.toml
} > "$vdir/Cargo.toml"
cp Cargo.lock "$vdir/"
echo "== checking the packaged sources: ${#members[@]} crates"
CARGO_TARGET_DIR="$PWD/target" cargo check --manifest-path "$vdir/Cargo.toml" --workspace --all-features
echo "== packaging check passed in $(($(date +%s) - start)) s"
