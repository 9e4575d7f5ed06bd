"""Starts the example gateway (with its embedded mock provider) for the SDK tests."""

import os
import pathlib
import subprocess
import threading

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def _start(extra_args):
    binary = os.environ.get("INFERGATE_GATEWAY_BIN", str(ROOT / "target/debug/examples/gateway"))
    if not pathlib.Path(binary).exists():
        pytest.fail(f"gateway binary {binary} not found: run `cargo build --example gateway` first")
    proc = subprocess.Popen(
        [binary, "--listen", "127.0.0.1:0", *extra_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "INFERGATE_CONFIG"},
    )
    url = None
    try:
        for line in proc.stdout:  # blocks until the gateway prints its address
            if line.startswith("infergate gateway listening on "):
                url = line.split(" on ", 1)[1].strip()
                break
        if url is None:
            pytest.fail("the gateway exited before printing its address")
        # Keep reading what it prints (the sample config's access log goes to stdout): a full
        # pipe would stall its telemetry thread.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def gateway_url():
    """The zero-config quickstart: the embedded mock, an empty pipeline."""
    yield from _start([])


@pytest.fixture(scope="session")
def sample_gateway_url():
    """The sample config (examples/gateway/infergate.toml): identity with the demo key, every
    block on, backends speaking OpenAI, Anthropic, Bedrock and Gemini."""
    yield from _start(["--config", str(ROOT / "examples/gateway/infergate.toml")])
