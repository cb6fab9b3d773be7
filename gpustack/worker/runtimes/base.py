"""The Runtime interface that starts and stops LaunchSpecs, and the runtime registry."""

import abc
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from gpustack.worker.backends.base import LaunchSpec

PullProgress = Callable[[str, float | None], Coroutine[Any, Any, None]]
"""Called with a message and a percentage (None when unknown) while a runtime prepares a launch."""


class RuntimeStartError(RuntimeError):
    """The runtime could not start a spec (missing executable, image, engine error...)."""


class Runtime(abc.ABC):
    """Starts LaunchSpecs and tracks them by an opaque string handle.

    Contract shared by every runtime:
    - `start` returns a handle once the engine was launched (not once it is healthy); it raises
      RuntimeStartError when nothing could be started.
    - `exit_code` returns None while the engine runs and its exit status once it stopped;
      it raises KeyError for a handle this runtime does not know (never started, or already stopped).
    - `stop` terminates the engine (graceful, then forced after `timeout` seconds) and releases the
      handle; it is idempotent: stopping an unknown or already stopped handle is a no-op.
    - `list_handles` maps each known handle to the spec name it was started with.
    - `identity` and `adopt` let a restarted worker take over the engines an earlier worker process
      started (recorded in its data dir): `adopt` registers the handle when that very engine still
      runs, after which `exit_code` and `stop` work on it as on any other.
    """

    name: str = ""

    @abc.abstractmethod
    async def start(self, spec: LaunchSpec, log_path: Path) -> str:
        """Launch `spec`, appending its stdout/stderr to `log_path`; return the handle."""

    @abc.abstractmethod
    async def stop(self, handle: str, timeout: float = 10) -> None:
        """Stop the engine behind `handle` and forget the handle (no-op when unknown)."""

    @abc.abstractmethod
    async def exit_code(self, handle: str) -> int | None:
        """None while running, else the exit status; KeyError for unknown handles."""

    @abc.abstractmethod
    async def list_handles(self) -> dict[str, str]:
        """Known handles (running or exited, not yet stopped) → spec name."""

    async def identity(self, handle: str) -> str:
        """What tells this engine from a later one reusing its handle (a pid's start time); "" if nothing."""
        return ""

    async def adopt(self, handle: str, identity: str, name: str) -> bool:
        """Take over a running engine started by an earlier worker process; False when it is gone."""
        return False

    async def prepare(self, spec: LaunchSpec, progress: "PullProgress") -> None:
        """Make what `start` needs available (the docker runtime pulls a missing image, reporting progress)."""
        return None

    async def main_pid(self, handle: str) -> int | None:
        """The engine's process id on this host (shown on the instance); a process handle is its pid."""
        return int(handle) if handle.isdigit() else None


_RUNTIMES: dict[str, Runtime] = {}


def get_runtime(name: str) -> Runtime:
    """The shared runtime instance for "process" or "docker"; KeyError for other names.

    Instances are cached: handles live in the runtime object, so callers must share it.
    """
    runtime = _RUNTIMES.get(name)
    if runtime is not None:
        return runtime
    if name == "process":
        from gpustack.worker.runtimes.process import ProcessRuntime

        runtime = ProcessRuntime()
    elif name == "docker":
        from gpustack.worker.runtimes.docker import DockerRuntime

        runtime = DockerRuntime()
    else:
        raise KeyError(f"runtime '{name}' is not available (expected 'process' or 'docker')")
    _RUNTIMES[name] = runtime
    return runtime


def write_launch_files(spec: LaunchSpec) -> None:
    """Write the spec's files (e.g. MindIE's config.json) and make its symlinks, replacing earlier ones;
    RuntimeStartError says which path could not be written."""
    try:
        for path, text in spec.files:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        for link, source in spec.links:
            linked = Path(link)
            linked.parent.mkdir(parents=True, exist_ok=True)
            if linked.is_symlink() or linked.exists():
                linked.unlink()
            linked.symlink_to(source)
    except OSError as exc:
        raise RuntimeStartError(f"cannot write the engine's files for {spec.name or 'the engine'}: {exc}") from exc
