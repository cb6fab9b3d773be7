"""The llama-cpp-python engine as the worker starts it: streams that ask for usage end with the exact usage
the same request gets without streaming (llama_cpp.server itself sends none)."""

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.utils.server import free_port
from tests.utils.tiny_gguf import write_tiny_gguf

pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")
CHAT = {"model": "tiny", "messages": [{"role": "user", "content": "hello world"}], "max_tokens": 12,
        "temperature": 0, "seed": 7}  # fmt: skip
COMPLETION = {"model": "tiny", "prompt": "hello world", "max_tokens": 9, "temperature": 0, "seed": 7}


def _engine(module: str, model: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    argv = [sys.executable, "-m", module, "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
            "--model_alias", "tiny", "--n_ctx", "512"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


def _up(url: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            return httpx.get(f"{url}/v1/models", timeout=5).status_code == 200
        except httpx.TransportError:
            time.sleep(0.2)
    return False


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("llama-cpp-server")
    model = write_tiny_gguf(root / "tiny.gguf")
    started = {name: _engine(module, model, root / f"{name}.log") for name, module in
               (("gpustack", "gpustack.engines.llama_cpp_server"), ("upstream", "llama_cpp.server"))}  # fmt: skip
    try:
        for name, (proc, url) in started.items():
            assert _up(url, proc), (root / f"{name}.log").read_text()[-3000:]
        yield {name: url for name, (_, url) in started.items()}
    finally:
        for proc, _ in started.values():
            proc.terminate()
            proc.wait(timeout=30)


def _events(url: str, path: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    with httpx.stream("POST", f"{url}{path}", json=body, timeout=60) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line.startswith("data: {")]
    return [json.loads(line[len("data: ") :]) for line in lines]


@pytest.mark.parametrize(("path", "body"), [("/v1/chat/completions", CHAT), ("/v1/completions", COMPLETION)])
def test_a_stream_that_asks_ends_with_the_exact_usage(engines: dict[str, str], path: str, body: dict[str, Any]) -> None:
    url = engines["gpustack"]
    plain = httpx.post(f"{url}{path}", json=body, timeout=60).json()["usage"]
    events = _events(url, path, {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert events[-1]["choices"] == [] and events[-1]["usage"] == plain
    assert all("usage" not in e for e in events[:-1])
    assert events[-1]["id"] == events[0]["id"]
    again = _events(url, path, {**body, "stream": True, "stream_options": {"include_usage": True}})
    assert again[-1]["usage"] == plain  # the counting is per request (the model's generate is unwrapped)
    assert all("usage" not in e for e in _events(url, path, {**body, "stream": True}))  # not asked: none


def test_upstream_sends_no_usage_and_its_chunks_are_not_tokens(engines: dict[str, str]) -> None:
    """Why the engine is wrapped: llama_cpp.server ignores the option, and counting its chunks would not
    give the completion tokens (a token decoding to part of a character streams as an empty delta)."""
    url = engines["upstream"]
    plain = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=60).json()["usage"]
    events = _events(url, "/v1/chat/completions", {**CHAT, "stream": True, "stream_options": {"include_usage": True}})
    assert all("usage" not in e for e in events)
    texts = [e["choices"][0]["delta"].get("content") for e in events]
    assert sum(1 for t in texts if t) != plain["completion_tokens"]
