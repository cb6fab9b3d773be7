"""ProcessRuntime with real processes: logs, env, GPUs, process-group stop and exit codes."""

import asyncio
import json
import os
import socket
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from gpustack.worker.backends.base import LaunchSpec
from gpustack.worker.runtimes.base import RuntimeStartError, get_runtime
from gpustack.worker.runtimes.process import ProcessRuntime


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _python(code: str, **kwargs: object) -> LaunchSpec:
    fields: dict = {"argv": (sys.executable, "-c", code), "env": {}, "port": 0, "name": "test"}
    fields.update(kwargs)
    return LaunchSpec(**fields)


async def _wait_exit(runtime: ProcessRuntime, handle: str, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while (code := await runtime.exit_code(handle)) is None:
        assert time.monotonic() < deadline, "process did not exit"
        await asyncio.sleep(0.05)
    return code


async def _wait_for(predicate, timeout: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_http_server_runs_until_stopped(tmp_path: Path) -> None:
    runtime, port = ProcessRuntime(), _free_port()
    spec = LaunchSpec(
        argv=(sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"),
        env={},
        port=port,
        name="http",
        work_dir=tmp_path,
    )
    handle = await runtime.start(spec, tmp_path / "logs" / "http.log")
    assert handle == str(int(handle))
    assert await runtime.list_handles() == {handle: "http"}
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/")).status_code == 200:
                    break
            except httpx.HTTPError:
                await asyncio.sleep(0.05)
        else:
            pytest.fail("http.server did not answer")
    assert await runtime.exit_code(handle) is None
    await runtime.stop(handle, timeout=5)
    assert not _alive(int(handle))
    assert await runtime.list_handles() == {}
    with pytest.raises(KeyError):
        await runtime.exit_code(handle)
    await runtime.stop(handle)  # idempotent
    await runtime.stop("999999999")  # unknown: no-op


async def test_logs_env_and_cuda_visible_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://mirror.example")
    code = (
        "import os, sys; print('out', os.environ['FOO'], os.environ['HF_ENDPOINT']);"
        "print('cuda', os.environ.get('CUDA_VISIBLE_DEVICES'));"
        "print('err line', file=sys.stderr)"
    )
    runtime, log = ProcessRuntime(), tmp_path / "engine.log"
    log.write_text("previous run\n")
    handle = await runtime.start(_python(code, env={"FOO": "bar"}, gpu_indexes=(0, 2)), log)
    assert await _wait_exit(runtime, handle) == 0
    text = log.read_text()
    assert text.startswith("previous run\n")  # appended, not truncated
    assert "out bar https://mirror.example" in text
    assert "cuda 0,2" in text
    assert "err line" in text


async def test_engine_env_is_allow_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`make run PORT=N` exports PORT, which llama-cpp-python's server binds over --port: engines never see it."""
    for name, value in {"PORT": "8080", "GPUSTACK_TOKEN": "secret", "RANDOM_SHELL_VAR": "x"}.items():
        monkeypatch.setenv(name, value)
    for name, value in {
        "LC_ALL": "C.UTF-8",
        "https_proxy": "http://proxy:3128",
        "NVIDIA_DRIVER_CAPABILITIES": "all",
    }.items():
        monkeypatch.setenv(name, value)
    code = "import json, os; print('ENV=' + json.dumps(dict(os.environ)))"
    runtime, log = ProcessRuntime(), tmp_path / "env.log"
    handle = await runtime.start(_python(code, env={"MODEL_VAR": "m"}), log)
    assert await _wait_exit(runtime, handle) == 0
    line = next(li for li in log.read_text().splitlines() if li.startswith("ENV="))
    env = json.loads(line[4:])
    assert not {"PORT", "GPUSTACK_TOKEN", "RANDOM_SHELL_VAR"} & set(env)
    assert env["MODEL_VAR"] == "m"
    assert env["PATH"] == os.environ["PATH"]
    assert env["LC_ALL"] == "C.UTF-8"
    assert env["https_proxy"] == "http://proxy:3128"
    assert env["NVIDIA_DRIVER_CAPABILITIES"] == "all"


async def test_devices_of_other_vendors_and_cpu_placements_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A CUDA-built engine placed on the CPU must not see any GPU (it took 748 MiB of one on an H100)."""
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")  # the worker's own setting must not leak through
    code = (
        "import os; print('seen', *(repr(os.environ.get(k)) for k in"
        " ('CUDA_VISIBLE_DEVICES', 'HIP_VISIBLE_DEVICES', 'ROCR_VISIBLE_DEVICES', 'ASCEND_RT_VISIBLE_DEVICES')))"
    )
    runtime = ProcessRuntime()
    cases = {
        "amd": ({"gpu_indexes": (1,), "gpu_vendor": "amd"}, "seen '' '1' '1' ''"),
        "cpu": ({}, "seen '' '' '' ''"),
        "cpu-env": ({"env": {"CUDA_VISIBLE_DEVICES": "0"}}, "seen '' '' '' ''"),  # placement beats model env
    }
    for name, (kwargs, expected) in cases.items():
        log = tmp_path / f"{name}.log"
        handle = await runtime.start(_python(code, **kwargs), log)
        assert await _wait_exit(runtime, handle) == 0
        assert expected in log.read_text(), name


async def test_crashing_command_exit_codes(tmp_path: Path) -> None:
    runtime = ProcessRuntime()
    handle = await runtime.start(_python("import sys; sys.exit(3)"), tmp_path / "crash.log")
    assert await _wait_exit(runtime, handle) == 3
    assert handle in await runtime.list_handles()  # exited handles stay known until stopped
    handle = await runtime.start(_python("raise SystemExit('boom')"), tmp_path / "boom.log")
    assert await _wait_exit(runtime, handle) == 1
    assert "boom" in (tmp_path / "boom.log").read_text()
    await runtime.stop(handle)
    with pytest.raises(KeyError):
        await runtime.exit_code(handle)


async def test_missing_executable_raises(tmp_path: Path) -> None:
    spec = LaunchSpec(argv=("/nonexistent/engine",), env={}, port=0)
    with pytest.raises(RuntimeStartError, match="engine"):
        await ProcessRuntime().start(spec, tmp_path / "missing.log")
    assert "failed to start" in (tmp_path / "missing.log").read_text()


async def test_missing_engine_says_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker without vllm: not a bare "No such file or directory" but what to install, or which image to use."""
    monkeypatch.setenv("PATH", str(tmp_path))  # no vllm anywhere
    spec = LaunchSpec(argv=("vllm", "serve", "/m"), env={}, port=0, name="m-1", work_dir=tmp_path)
    with pytest.raises(RuntimeStartError) as err:
        await ProcessRuntime().start(spec, tmp_path / "vllm.log")
    message = str(err.value)
    assert "'vllm' is not installed on this worker" in message
    assert "pip install vllm" in message and "image_name" in message and "vllm/vllm-openai" in message
    assert message in (tmp_path / "vllm.log").read_text()


# The leader spawns a child, records its pid, and waits; TERM_MODE decides who ignores SIGTERM.
_FAMILY = """
import os, signal, subprocess, sys, time
mode = os.environ["TERM_MODE"]
child_code = "import signal, time\\n"
if mode in ("both", "child"):
    child_code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\\n"
child = subprocess.Popen([sys.executable, "-c", child_code + "time.sleep(120)"])
if mode == "both":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
open(os.environ["PID_FILE"], "w").write(str(child.pid))
time.sleep(120)
"""


@pytest.mark.parametrize("mode", ["graceful", "child", "both"])
async def test_stop_kills_whole_process_group(tmp_path: Path, mode: str) -> None:
    pid_file = tmp_path / "child.pid"
    runtime = ProcessRuntime()
    spec = _python(_FAMILY, env={"TERM_MODE": mode, "PID_FILE": str(pid_file)})
    handle = await runtime.start(spec, tmp_path / "family.log")
    await _wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    child = int(pid_file.read_text())
    await asyncio.sleep(0.3)  # let the child install its SIGTERM handler
    assert os.getpgid(child) == int(handle)
    assert _alive(child)
    started = time.monotonic()
    await runtime.stop(handle, timeout=1)
    elapsed = time.monotonic() - started
    await _wait_for(lambda: not _alive(child), timeout=5)
    assert not _alive(int(handle))
    if mode == "graceful":
        assert elapsed < 1  # SIGTERM was enough
    else:
        assert 1 <= elapsed < 5  # waited the timeout, then SIGKILL


async def test_stop_does_not_block_the_event_loop(tmp_path: Path) -> None:
    runtime = ProcessRuntime()
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    handle = await runtime.start(_python(code), tmp_path / "stubborn.log")
    await asyncio.sleep(0.3)  # let the interpreter install its handler
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.05)

    task = asyncio.create_task(ticker())
    await runtime.stop(handle, timeout=1)
    task.cancel()
    assert ticks >= 10


def test_get_runtime_registry() -> None:
    assert get_runtime("process") is get_runtime("process")
    assert get_runtime("process").name == "process"
    with pytest.raises(KeyError):
        get_runtime("kubernetes")
