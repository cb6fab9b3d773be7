"""Runs one node's part of a distributed instance: its processes started in order, each ready before the
next starts, watched together; when one exits the whole part is stopped and reported failed."""

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpustack.worker.distributed import PartSpec
from gpustack.worker.runtimes.base import Runtime, RuntimeStartError, get_runtime


class PartFailure(Exception):
    """A process of the part did not start, did not become ready, or exited; the message says which."""


@dataclass
class _Started:
    part: PartSpec
    handle: str
    runtime: Runtime


logger = logging.getLogger(__name__)


async def port_open(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when `host:port` accepts a TCP connection."""
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, TimeoutError):
        return False
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return True


class PartGroup:
    """The processes of one node's part. `start` launches them in order (a Ray head before anything that
    joins it, every RPC server before the engine that uses them); `check` returns why the part failed, or
    None while every process runs; `stop` ends all of them (idempotent)."""

    def __init__(self, runtime: Runtime, log_dir: Path, *, ready_timeout: float = 120.0) -> None:
        self.runtime = runtime
        self.log_dir = log_dir
        self.ready_timeout = ready_timeout
        self._started: list[_Started] = []

    @property
    def pids(self) -> list[int]:
        return [int(s.handle) for s in self._started if s.handle.isdigit()]

    async def start(self, parts: Sequence[PartSpec]) -> None:
        """Start every part in order; on any failure the ones already started are stopped."""
        try:
            for part in parts:
                await self._start_one(part)
        except BaseException:
            await self.stop()
            raise

    async def _start_one(self, part: PartSpec) -> None:
        name = part.spec.name or part.role
        runtime = get_runtime("docker") if part.spec.image else self.runtime  # an image runs as a container
        try:
            await runtime.prepare(part.spec, _quiet)
            handle = await runtime.start(part.spec, self.log_dir / f"{name}.log")
        except RuntimeStartError as exc:
            raise PartFailure(f"{name}: {exc}") from exc
        self._started.append(_Started(part, handle, runtime))
        if part.ready_port is None:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.ready_timeout
        while not await port_open(part.ready_host, part.ready_port):
            code = await runtime.exit_code(handle)
            if code is not None:
                raise PartFailure(f"{name} exited with code {code} while starting (log {self.log_dir / name}.log)")
            if loop.time() >= deadline:
                raise PartFailure(f"{name} did not open port {part.ready_port} within {self.ready_timeout:.0f}s")
            await asyncio.sleep(0.2)
        logger.info("%s is ready on port %s", name, part.ready_port)

    async def check(self) -> str | None:
        """Why the part is broken (the first process that exited), or None while all run."""
        for started in self._started:
            try:
                code = await started.runtime.exit_code(started.handle)
            except KeyError:
                code = -1
            if code is not None:
                return f"{started.part.spec.name or started.part.role} exited with code {code}"
        return None

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop in reverse start order (the engine before the cluster it runs on)."""
        while self._started:
            started = self._started.pop()
            await started.runtime.stop(started.handle, timeout=timeout)


async def _quiet(_message: str, _percent: float | None) -> None:
    """Image pulls of a part are not shown on the instance (the main engine's pull is)."""
