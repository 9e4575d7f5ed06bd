"""Token counts of infergate (tiktoken-rs) equal those of OpenAI's own Python tiktoken, an
independent implementation, on the prompts of ../shared/data, for cl100k_base and o200k_base.

Python tiktoken runs offline: TIKTOKEN_CACHE_DIR holds the .tiktoken files that tiktoken-rs
bundles, each named by the sha1 of its download URL.
"""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"


def prompts():
    if not SHARED.exists():
        if os.environ.get("CI"):
            pytest.fail("../shared/data is required under CI")
        pytest.skip("../shared/data is absent (only CI and developer machines have it)")
    texts = []
    clinc = json.loads((SHARED / "clinc150/data_full.json").read_text())
    for split in clinc.values():
        texts.extend(t for t, _ in split)
    for line in (SHARED / "jailbreak/combined_labeled.jsonl").read_text().split("\n"):
        if line.strip():
            texts.append(json.loads(line)["text"])
    for item in json.loads((SHARED / "pii/synth_dataset_v2.json").read_text()):
        texts.append(item["full_text"])
    return texts


def tiktoken_rs_assets():
    meta = json.loads(
        subprocess.check_output(
            ["cargo", "metadata", "--format-version", "1", "--manifest-path", str(ROOT / "Cargo.toml")],
            cwd=ROOT,
        )
    )
    for p in meta["packages"]:
        if p["name"] == "tiktoken-rs":
            return pathlib.Path(p["manifest_path"]).parent / "assets"
    pytest.fail("tiktoken-rs not found in cargo metadata")


@pytest.fixture(scope="module")
def offline_tiktoken(tmp_path_factory):
    cache = tmp_path_factory.mktemp("tiktoken-cache")
    assets = tiktoken_rs_assets()
    for name in ["cl100k_base", "o200k_base"]:
        url = f"https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
        shutil.copy(assets / f"{name}.tiktoken", cache / hashlib.sha1(url.encode()).hexdigest())
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache)
    import tiktoken

    return tiktoken


@pytest.mark.parametrize("encoding", ["cl100k_base", "o200k_base"])
def test_counts_match_python_tiktoken(offline_tiktoken, encoding, tmp_path):
    texts = prompts()
    assert len(texts) > 25000
    enc = offline_tiktoken.get_encoding(encoding)
    expected = [len(enc.encode_ordinary(t)) for t in texts]
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps(t) + "\n" for t in texts))
    binary = os.environ.get("INFERGATE_COUNT_BIN", str(ROOT / "target/debug/examples/count_tokens"))
    with open(src) as f:
        out = subprocess.check_output([binary, encoding], stdin=f, text=True)
    got = [int(x) for x in out.split()]
    assert len(got) == len(texts)
    mismatches = [(i, texts[i][:80], expected[i], got[i]) for i in range(len(texts)) if expected[i] != got[i]]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:3]}"
    print(f"{encoding}: {len(texts)} texts, {sum(expected)} tokens, all equal")
