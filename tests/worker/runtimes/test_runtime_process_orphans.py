"""ProcessRuntime and worker death, with real processes: engines die with the worker, or are adopted."""

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil

from gpustack.worker.backends.base import LaunchSpec
from gpustack.worker.runtimes.process import ProcessRuntime

SLEEPER = (sys.executable, "-c", "import time; time.sleep(600)")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _wait(predicate, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def _spec(tmp_path: Path) -> LaunchSpec:
    return LaunchSpec(argv=SLEEPER, env={}, port=0, name="sleeper", work_dir=tmp_path)


def test_engine_dies_when_its_worker_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed worker cannot stop its engines; the parent-death signal does."""
    worker_code = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from gpustack.worker.backends.base import LaunchSpec
        from gpustack.worker.runtimes.process import ProcessRuntime

        async def main():
            spec = LaunchSpec(argv={SLEEPER!r}, env={{}}, port=0, name="sleeper", work_dir=Path({str(tmp_path)!r}))
            print(await ProcessRuntime().start(spec, Path({str(tmp_path / "engine.log")!r})), flush=True)
            await asyncio.sleep(600)

        asyncio.run(main())
    """)
    worker = subprocess.Popen([sys.executable, "-c", worker_code], stdout=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        engine = int(worker.stdout.readline())
        assert _alive(engine)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        _wait(lambda: not _alive(engine))
    finally:
        worker.kill()
        worker.wait(timeout=10)


async def test_a_new_runtime_adopts_a_running_engine_by_pid_and_start_time(tmp_path: Path) -> None:
    first = ProcessRuntime()
    handle = await first.start(_spec(tmp_path), tmp_path / "log")
    identity = await first.identity(handle)
    try:
        later = ProcessRuntime()  # what a restarted worker has
        assert not await later.adopt(handle, repr(float(identity) - 5), "sleeper")  # a recycled pid: not ours
        assert not await later.adopt("999999999", identity, "sleeper")
        assert await later.adopt(handle, identity, "sleeper")
        assert await later.exit_code(handle) is None and await later.list_handles() == {handle: "sleeper"}
        await later.stop(handle, timeout=5)
        await asyncio.to_thread(_wait, lambda: not _alive(int(handle)))
        assert await later.list_handles() == {}
    finally:
        await first.stop(handle, timeout=1)


async def test_an_adopted_engine_that_exits_reports_an_exit(tmp_path: Path) -> None:
    first = ProcessRuntime()
    handle = await first.start(_spec(tmp_path), tmp_path / "log")
    later = ProcessRuntime()
    assert await later.adopt(handle, await first.identity(handle), "sleeper")
    os.killpg(int(handle), signal.SIGKILL)
    await first.stop(handle, timeout=1)  # reaps the child, as init would for an orphan
    assert await later.exit_code(handle) == -1
