"""Runtime that starts engines as local processes, each in its own session/process group."""

import asyncio
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from gpustack.worker.backends.base import LaunchSpec
from gpustack.worker.runtimes.base import Runtime, RuntimeStartError, write_launch_files
from gpustack.worker.runtimes.devices import process_device_env

logger = logging.getLogger(__name__)

_POLL_S = 0.05
_PR_SET_PDEATHSIG = 1
PARENT_DEATH_SIGNAL = signal.SIGTERM  # engines shut down cleanly; a restarted worker reaps the stubborn


@dataclass
class _Entry:
    proc: subprocess.Popen[bytes] | psutil.Process  # Popen: started here; Process: adopted after a restart
    name: str

    def exit_code(self) -> int | None:
        if isinstance(self.proc, subprocess.Popen):
            return self.proc.poll()
        try:  # not our child: its exit status went to whoever reaped it
            running = self.proc.is_running() and self.proc.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            running = False
        return None if running else -1


def _parent_death_preexec() -> Callable[[], None] | None:
    """A preexec_fn making the engine get PARENT_DEATH_SIGNAL when the worker dies (Linux only).

    prctl(PR_SET_PDEATHSIG) fires when the thread that forked exits: engines are started from the
    event loop thread, which lives as long as the worker.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:  # runs in the child between fork and exec: no allocation-heavy work
        prctl(_PR_SET_PDEATHSIG, int(PARENT_DEATH_SIGNAL), 0, 0, 0)
        if os.getppid() != parent:  # the worker died before prctl took effect
            os.kill(os.getpid(), PARENT_DEATH_SIGNAL)

    return preexec


# What an engine inherits from the worker's environment: an explicit allow-list, so that variables
# meant for gpustack or the shell (PORT from `make run`, GPUSTACK_TOKEN, ...) never reach an engine.
INHERITED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TERM",
        "TMPDIR", "TMP", "TEMP", "VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH",
        "LD_LIBRARY_PATH", "LIBRARY_PATH", "LD_PRELOAD",
        "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
        "OMP_NUM_THREADS",
    }
)  # fmt: skip
INHERITED_PREFIXES = (
    "LC_", "XDG_",
    "HF_", "HUGGING_FACE_", "HUGGINGFACE_", "MODELSCOPE_", "TRANSFORMERS_",
    "NVIDIA_", "CUDA_", "NCCL_", "HIP_", "ROCR_", "ROCM_", "HSA_", "ASCEND_", "ATB_",
    "VLLM_", "SGLANG_", "TORCH_", "TRITON_",
)  # fmt: skip
_PROXY_NAMES = frozenset({"http_proxy", "https_proxy", "no_proxy", "all_proxy"})


def inherited(name: str) -> bool:
    """True when a worker environment variable is passed on to engines (see INHERITED_*)."""
    if name.startswith("GPUSTACK_"):
        return False
    return name in INHERITED_NAMES or name.lower() in _PROXY_NAMES or name.startswith(INHERITED_PREFIXES)


def build_env(spec: LaunchSpec, base: dict[str, str] | None = None) -> dict[str, str]:
    """The allow-listed part of os.environ (or `base`) + spec.env + the visible devices of the placement
    (which win)."""
    source = os.environ if base is None else base
    env = {name: value for name, value in source.items() if inherited(name)}
    env.update(spec.env)
    env.update(process_device_env(spec))
    return env


# How each engine command is usually installed, for the "not installed" message.
_INSTALL_HINTS = {
    "vllm": ("pip install vllm", " (e.g. vllm/vllm-openai)"),
    "vox-box": ("pip install vox-box", ""),
    "llama-box": ("put the llama-box binary from its releases on PATH", ""),
}


def start_failure(command: str, exc: OSError) -> str:
    """What went wrong launching `command`, and what to do about it."""
    if isinstance(exc, FileNotFoundError):
        hint, image = _INSTALL_HINTS.get(os.path.basename(command), (f"install {command}", ""))
        return (
            f"the engine command {command!r} is not installed on this worker (not found on its PATH): "
            f"{hint} in the worker's environment and restart the worker, or set the model's image_name "
            f"to an image that has the engine{image}, to run it as a container"
        )
    if isinstance(exc, PermissionError):
        return f"the engine command {command!r} is not executable by the worker's user: {exc.strerror}"
    return f"cannot start {command!r}: {exc}"


def _signal_group(pgid: int, sig: signal.Signals) -> bool:
    """Send `sig` to the process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError as exc:
        logger.warning("cannot signal process group %d: %s", pgid, exc)
        return False
    return True


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of the group exists (zombies may wait for a non-reaping init)."""
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.Error):
            continue
    return False


class ProcessRuntime(Runtime):
    """Handles are the leader's pid as a string; the leader is also the process-group id."""

    name = "process"

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    async def start(self, spec: LaunchSpec, log_path: Path) -> str:
        if not spec.argv:
            raise RuntimeStartError(f"{spec.name or 'spec'}: empty argv for the process runtime")
        log_path.parent.mkdir(parents=True, exist_ok=True)
        cwd = Path(spec.work_dir)
        cwd.mkdir(parents=True, exist_ok=True)
        write_launch_files(spec)
        env = build_env(spec)
        with open(log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log.write(f"--- gpustack {stamp}: starting {shlex.join(spec.argv)}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=cwd,
                    start_new_session=True,
                    preexec_fn=_parent_death_preexec(),
                )
            except OSError as exc:
                message = start_failure(spec.argv[0], exc)
                log.write(f"--- gpustack: failed to start: {message}\n".encode())
                raise RuntimeStartError(message) from exc
        handle = str(proc.pid)
        self._entries[handle] = _Entry(proc=proc, name=spec.name)
        logger.info("started %s as pid %s (log %s)", spec.name or spec.argv[0], handle, log_path)
        return handle

    async def exit_code(self, handle: str) -> int | None:
        entry = self._entries.get(handle)
        if entry is None:
            raise KeyError(f"unknown process handle {handle!r}")
        return entry.exit_code()

    async def identity(self, handle: str) -> str:
        try:
            return repr(psutil.Process(int(handle)).create_time())
        except (ValueError, psutil.Error):
            return ""

    async def adopt(self, handle: str, identity: str, name: str) -> bool:
        """Adopt the process group leader `handle` if it still runs and started when recorded."""
        if not handle.isdigit() or not identity:
            return False
        try:
            proc = psutil.Process(int(handle))
            same = abs(proc.create_time() - float(identity)) < 0.01 and os.getpgid(proc.pid) == proc.pid
        except (ValueError, OSError, psutil.Error):
            return False
        if same:
            self._entries[handle] = _Entry(proc=proc, name=name)
            logger.info("adopted %s (pid %s) started by an earlier worker process", name, handle)
        return same

    async def list_handles(self) -> dict[str, str]:
        return {handle: entry.name for handle, entry in self._entries.items()}

    async def stop(self, handle: str, timeout: float = 10) -> None:
        entry = self._entries.get(handle)
        if entry is None:
            return
        pgid = entry.proc.pid
        if _signal_group(pgid, signal.SIGTERM):
            if not await self._wait_group(entry, pgid, timeout):
                logger.warning("pid %d did not stop within %.1fs; sending SIGKILL", pgid, timeout)
            # Kill whatever is left (children that ignored SIGTERM); ESRCH when the group is gone.
            _signal_group(pgid, signal.SIGKILL)
        if isinstance(entry.proc, subprocess.Popen):
            await self._reap(entry.proc)
        self._entries.pop(handle, None)

    @staticmethod
    async def _wait_group(entry: _Entry, pgid: int, timeout: float) -> bool:
        """Wait until the leader exited and no live group member remains; False on timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if entry.exit_code() is not None and not await asyncio.to_thread(_group_alive, pgid):
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(_POLL_S)

    @staticmethod
    async def _reap(proc: subprocess.Popen[bytes]) -> None:
        """Collect the leader's exit status after SIGKILL (bounded, never blocks the loop)."""
        deadline = time.monotonic() + 5
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(_POLL_S)
