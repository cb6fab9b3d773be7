"""Starts a real server and workers as separate `gpustack start` processes on loopback."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.utils.server import free_port, wait_ready

ADMIN_PASSWORD = "e2e-admin-password"
FAST_LOOPS = {
    "GPUSTACK_HEARTBEAT_INTERVAL_SECONDS": "1",
    "GPUSTACK_HEARTBEAT_GRACE_SECONDS": "4",
    "GPUSTACK_RESCHEDULE_AFTER_SECONDS": "2",
    "GPUSTACK_SCHEDULER_SCAN_SECONDS": "2",
    "GPUSTACK_RESYNC_SECONDS": "10",
}


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        """SIGKILL the whole process group, like a machine losing power."""
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    root: Path
    url: str = ""
    token: str = ""
    procs: list[Proc] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # GPUSTACK_* overrides of FAST_LOOPS
    server_command: tuple[str, ...] = ()  # instead of `python -m gpustack.cli start` for the server (benchmarks)
    _args: dict[str, list[str]] = field(default_factory=dict)

    def _spawn(self, name: str, args: list[str], cwd: Path | None = None) -> Proc:
        log = self.root / f"{name}.log"
        if log.exists():  # a restarted process: keep the earlier run's output
            log.rename(log.with_suffix(f".{time.monotonic_ns()}.log"))
        self._args[name] = args
        env = {**os.environ, **FAST_LOOPS, **self.env, "PYTHONUNBUFFERED": "1"}
        command = self.server_command if name == "server" and self.server_command else (
            sys.executable, "-m", "gpustack.cli", "start")  # fmt: skip
        popen = subprocess.Popen(
            [*command, *args],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
        proc = Proc(name, popen, log)
        self.procs.append(proc)
        return proc

    def start_server(self, *, embedded_worker: bool = False, bootstrap_password: str | None = ADMIN_PASSWORD) -> Proc:
        """`bootstrap_password=None`: the admin password is generated into the data dir, as on a first install."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        data = self.root / "server"
        args = [
            "--data-dir",
            str(data),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if bootstrap_password is not None:
            args += ["--bootstrap-password", bootstrap_password]
        if embedded_worker:
            args += ["--worker-port", str(free_port()), "--instance-port-range", "41300-41349"]
        else:
            args.append("--disable-worker")
        proc = self._spawn("server", args)
        wait_ready(self.url, alive=lambda: proc.popen.poll() is None)
        self.token = (data / "token").read_text().strip()
        return proc

    def respawn(self, name: str) -> Proc:
        """Start a stopped or killed process again with the same arguments (same ports and data dir)."""
        proc = self._spawn(name, self._args[name])
        if name == "server":
            wait_ready(self.url, alive=lambda: proc.popen.poll() is None)
        return proc

    def start_worker(self, name: str, port_base: int, extra: tuple[str, ...] = (), cwd: Path | None = None) -> Proc:
        """A worker process; `cwd` gives it a working directory of its own (/proc/self/cwd differs)."""
        return self._spawn(name, [
            "--server-url", self.url, "--token", self.token, "--worker-name", name,
            "--data-dir", str(self.root / name), "--host", "127.0.0.1", "--worker-ip", "127.0.0.1",
            "--worker-port", str(free_port()), "--instance-port-range", f"{port_base}-{port_base + 49}", *extra,
        ], cwd=cwd)  # fmt: skip

    def admin(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=("admin", ADMIN_PASSWORD), timeout=30)

    def shutdown(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def wait_for(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
