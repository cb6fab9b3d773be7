"""Level-triggered reconcile: instances placed on this worker become engines; others are stopped."""

import asyncio
import logging
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from gpustack.config import Config
from gpustack.core.tasks import wait_event
from gpustack.schemas.instances import WORKER_OWNED_STATES, ModelInstancePublic
from gpustack.worker.backoff import Backoff, monotonic
from gpustack.worker.client import ServerClient, ServerClientError
from gpustack.worker.distributed.subordinate import SubordinateRunner
from gpustack.worker.downloads import ModelResolver
from gpustack.worker.engine import EngineDeps, InstanceRunner, ServeOptions
from gpustack.worker.ports import PortAllocator
from gpustack.worker.records import EngineRecord, EngineRecords
from gpustack.worker.runtimes.base import get_runtime

logger = logging.getLogger(__name__)

TOUCHED_KEEP_SECONDS = 600.0


def takes_part(row: ModelInstancePublic, worker_id: int | None) -> bool:
    """The instance is placed on this worker, or this worker is one of its subordinates."""
    return row.worker_id == worker_id or worker_id in subordinate_ids(row)


def subordinate_ids(row: ModelInstancePublic) -> set[int]:
    return {s["worker_id"] for s in row.distributed_servers if s.get("worker_id") is not None}


class InstanceCache:
    """The server's rows of this worker's instances, fed by watch events and full resyncs.

    A resync answer may be older than an event that arrived while it was in flight; rows touched by
    an event after the resync started keep the event's version.
    """

    def __init__(self) -> None:
        self.rows: dict[int, ModelInstancePublic] = {}
        self._touched: dict[int, float] = {}

    def apply_event(self, kind: str, data: dict[str, Any] | None, worker_id: int | None) -> bool:
        """True when the event changed what this worker knows."""
        if kind not in ("created", "updated", "deleted") or not data:
            return False
        row = ModelInstancePublic.model_validate(data)
        self._touched[row.id] = monotonic()
        if kind == "deleted" or not takes_part(row, worker_id):
            self.rows.pop(row.id, None)
        else:
            self.rows[row.id] = row
        return True

    def apply_resync(self, rows: Iterable[ModelInstancePublic], started: float) -> None:
        listed = {row.id: row for row in rows}
        for instance_id in set(self.rows) | set(listed):
            if self._touched.get(instance_id, -math.inf) >= started:
                continue
            if instance_id in listed:
                self.rows[instance_id] = listed[instance_id]
            else:
                self.rows.pop(instance_id, None)
        horizon = started - TOUCHED_KEEP_SECONDS
        self._touched = {k: t for k, t in self._touched.items() if t >= horizon}


class ServeLoop:
    """Watches this worker's instances and keeps one InstanceRunner per instance it should serve."""

    def __init__(
        self, config: Config, client: ServerClient, worker_name: str, options: ServeOptions | None = None
    ) -> None:
        self.config = config
        self.client = client
        self.options = options or ServeOptions()
        self.cache = InstanceCache()
        self.gpu_vendor = "nvidia"
        self._runners: dict[int, InstanceRunner] = {}
        self._parts: dict[int, SubordinateRunner] = {}  # this worker's parts of other workers' instances
        self._wake = asyncio.Event()
        self._resync_requested = asyncio.Event()
        self._resync_lock = asyncio.Lock()
        self._health = httpx.AsyncClient(timeout=httpx.Timeout(5.0), trust_env=False)
        data_dir = Path(config.data_dir)
        self.deps = EngineDeps(
            client=client,
            resolver=ModelResolver(client, data_dir / "cache", worker_name),
            ports=PortAllocator(*config.port_range()),
            options=self.options,
            data_dir=data_dir,
            runtime_name=config.runtime,
            health=self._health,
            gpu_vendor=lambda: self.gpu_vendor,
            request_resync=self.request_resync,
            records=EngineRecords(data_dir),
            image_registry=config.image_registry,
            image_namespace=config.image_namespace,
        )
        self._synced = False  # a first listing arrived: records of earlier engines can be judged
        self._orphans: dict[int, EngineRecord] | None = None

    def runner(self, instance_id: int) -> InstanceRunner | None:
        """The local runner of an instance (what the proxy forwards to), if this worker serves it."""
        return self._runners.get(instance_id)

    def runners(self) -> list[InstanceRunner]:
        """Every local runner (the worker's metrics read them)."""
        return list(self._runners.values())

    def wake(self) -> None:
        self._wake.set()

    def request_resync(self) -> None:
        self._resync_requested.set()

    async def watch_loop(self) -> None:
        """Resync, then follow the watch stream; reconnect with backoff whenever it ends or fails."""
        backoff = Backoff(0.5, 10.0)
        while True:
            try:
                await self._resync()
                async for kind, data in self.client.watch_instances(self._me()):
                    backoff.reset()
                    if self.cache.apply_event(kind, data, self.client.worker_id):
                        self.wake()
                logger.info("instance watch stream ended; reconnecting")
            except (ServerClientError, ValueError) as exc:
                logger.warning("instance watch stream failed: %s", exc)
            await asyncio.sleep(backoff.next())

    async def resync_loop(self) -> None:
        """A full listing every resync_seconds, or sooner when a runner asks for one."""
        while True:
            await wait_event(self._resync_requested, self.config.resync_seconds)
            try:
                await self._resync()
            except (ServerClientError, ValueError) as exc:
                logger.warning("instance resync failed: %s", exc)

    async def reconcile_loop(self) -> None:
        """Runs reconcile() when woken by a change and on every tick."""
        while True:
            await wait_event(self._wake, self.options.tick_seconds)
            try:
                await self.reconcile()
            except Exception:
                logger.exception("reconcile pass failed")

    async def reconcile(self) -> None:
        """Start runners for desired instances, stop the rest, pass fresh server rows to runners."""
        me = self.client.worker_id
        desired = {
            row.id: row for row in self.cache.rows.values() if row.worker_id == me and row.state in WORKER_OWNED_STATES
        }
        if self._orphans is None:
            if not self._synced:
                return  # without the server's list, engines left by an earlier process cannot be judged
            self._orphans = await self._reap_orphans(desired)
        gone = [self._runners.pop(i) for i in list(self._runners) if i not in desired]
        if gone:
            await self._stop(gone)
        for instance_id, row in desired.items():
            runner = self._runners.get(instance_id)
            if runner is None:
                logger.info("instance %s was placed on this worker; launching", row.name)
                orphan = self._orphans.pop(instance_id, None)
                runner = self._runners[instance_id] = InstanceRunner(row, self.deps, orphan)
                runner.start()
            else:
                runner.observe(row)
        await self._reconcile_parts(me)

    async def _reconcile_parts(self, me: int | None) -> None:
        """One SubordinateRunner per distributed instance this worker is a subordinate of."""
        desired = {
            row.id: row
            for row in self.cache.rows.values()
            if row.worker_id != me and me in subordinate_ids(row) and row.state in WORKER_OWNED_STATES
        }
        gone = [self._parts.pop(i) for i in list(self._parts) if i not in desired]
        await asyncio.gather(*(part.stop() for part in gone))
        for instance_id, row in desired.items():
            if (part := self._parts.get(instance_id)) is None:
                logger.info("this worker takes part in instance %s; starting its part", row.name)
                part = self._parts[instance_id] = SubordinateRunner(row, self.deps, me or 0)
                part.start()
            else:
                part.observe(row)

    async def _reap_orphans(self, desired: dict[int, ModelInstancePublic]) -> dict[int, EngineRecord]:
        """Engines an earlier worker process started: those of instances still placed here are kept for
        their runners to adopt; the others are stopped."""
        kept = {}
        for record in await asyncio.to_thread(self.deps.records.load_all):
            if record.instance_id in desired:
                kept[record.instance_id] = record
                continue
            try:
                runtime = get_runtime(record.runtime)
            except KeyError:
                runtime = None
            if runtime is not None and await runtime.adopt(record.handle, record.identity, record.instance_name):
                logger.info("stopping the engine of %s left by an earlier worker process", record.instance_name)
                await runtime.stop(record.handle, timeout=self.options.stop_timeout_seconds)
            await asyncio.to_thread(self.deps.records.remove, record.instance_id)
        return kept

    async def shutdown(self) -> None:
        """Stop every engine this worker started."""
        runners = list(self._runners.values())
        self._runners.clear()
        parts, self._parts = list(self._parts.values()), {}
        await asyncio.gather(*(part.stop() for part in parts), return_exceptions=True)
        await self._stop(runners)
        await self._health.aclose()

    async def _stop(self, runners: list[InstanceRunner]) -> None:
        results = await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
        for runner, result in zip(runners, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("stopping instance %s failed", runner.name, exc_info=result)

    async def _resync(self) -> None:
        async with self._resync_lock:
            started = monotonic()
            rows = await self.client.list_instances(self._me())
            self.cache.apply_resync(rows, started)
            self._synced = True
        self.wake()

    def _me(self) -> int:
        worker_id = self.client.worker_id
        if worker_id is None:
            raise RuntimeError("the serve loop runs only after registration")
        return worker_id
