"""The llama-cpp-python fallback for real: a tiny GGUF serves chat and embeddings from one process."""

import asyncio
import importlib.util
import socket
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from gpustack.worker.backends import llama_box
from gpustack.worker.backends.base import LaunchContext, get_backend
from gpustack.worker.runtimes.process import ProcessRuntime
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


async def _wait_healthy(client: httpx.AsyncClient, url: str, runtime: ProcessRuntime, handle: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert await runtime.exit_code(handle) is None, "engine exited during start-up"
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.1)
    pytest.fail("engine did not become healthy within 60s")


async def test_chat_and_embeddings_on_one_server(
    tiny_gguf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llama_box.shutil, "which", lambda name: None)  # force the fallback
    port = _free_port()
    ctx = LaunchContext(
        instance_id=1,
        instance_name="tiny-1",
        model_name="tiny",
        model_path=str(tiny_gguf),
        host="127.0.0.1",
        port=port,
        work_dir=tmp_path,
    )
    spec = get_backend("llama-box")(replace(ctx, backend_parameters=("--n_ctx", "512")))
    runtime = ProcessRuntime()
    handle = await runtime.start(spec, tmp_path / "engine.log")
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            await _wait_healthy(client, base + spec.health_path, runtime, handle)
            models = (await client.get(base + "/v1/models")).json()
            assert [m["id"] for m in models["data"]] == ["tiny"]
            chat = await client.post(
                base + "/v1/chat/completions",
                json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
            )
            assert chat.status_code == 200, chat.text
            assert chat.json()["choices"][0]["message"]["role"] == "assistant"
            emb = await client.post(base + "/v1/embeddings", json={"model": "tiny", "input": ["a", "b"]})
            assert emb.status_code == 200, emb.text
            assert len(emb.json()["data"]) == 2
    finally:
        await runtime.stop(handle, timeout=5)
