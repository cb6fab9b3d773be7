"""A subordinate worker's part of a distributed instance placed on another (main) worker: it starts the
processes its engine needs here (a Ray worker joining the main's head, llama.cpp RPC servers, an SGLang
rank), reports their ports and state on the instance, and restarts them together with the instance
(level-triggered: when a process dies, or the main part failed or moved its ports)."""

import asyncio
import logging
from pathlib import Path

from gpustack.core.tasks import TaskGroup
from gpustack.schemas.instances import InstanceState, ModelInstancePublic, ModelInstanceUpdate, SubordinateReport
from gpustack.schemas.models import ModelPublic
from gpustack.worker.backends.base import LaunchContext
from gpustack.worker.backoff import Backoff
from gpustack.worker.catalog import apply_catalog, fetch_backend
from gpustack.worker.client import ServerClientError
from gpustack.worker.distributed import PartSpec, topology_of
from gpustack.worker.distributed.parts import PartFailure, PartGroup
from gpustack.worker.distributed.ray import RayPorts, ray_worker_part
from gpustack.worker.distributed.rpc import rpc_server_parts
from gpustack.worker.distributed.sglang import sglang_rank_part
from gpustack.worker.downloads import DownloadError
from gpustack.worker.engine_deps import EngineDeps
from gpustack.worker.ports import NoFreePortError
from gpustack.worker.runtimes.base import get_runtime

logger = logging.getLogger(__name__)
NEEDS_MAIN_PORTS = ("vllm", "sglang")  # these join the main worker's Ray head / rendezvous port


class SubordinateRunner:
    """Owns this worker's part of one distributed instance for as long as it takes part in it."""

    def __init__(self, instance: ModelInstancePublic, deps: EngineDeps, worker_id: int) -> None:
        self.instance = instance
        self.instance_id = instance.id
        self.name = f"{instance.name}-part"
        self.deps = deps
        self.worker_id = worker_id
        self._group: PartGroup | None = None
        self._ports: list[int] = []
        self._main_ports: tuple[int, ...] = ()
        self._backoff = Backoff(deps.options.restart_base_seconds, deps.options.restart_max_seconds)
        self._tasks = TaskGroup()

    def start(self) -> None:
        self._tasks.spawn(f"part-{self.instance_id}", self._run)

    def observe(self, instance: ModelInstancePublic) -> None:
        self.instance = instance

    async def stop(self) -> None:
        await self._tasks.stop()
        await self._release()

    async def _run(self) -> None:
        while True:
            try:
                await self._launch()
                self._backoff.reset()
                await self._monitor()
            except (PartFailure, ValueError) as exc:  # ValueError: a placement record the part cannot use
                message = str(exc)
            except Exception as exc:
                logger.exception("instance %s: unexpected error in this worker's part", self.instance.name)
                message = f"unexpected worker error: {exc!r}"
            await self._release()
            delay = self._backoff.next()
            logger.warning("part of %s failed (restart in %.1fs): %s", self.instance.name, delay, message)
            await self._report(InstanceState.ERROR, f"{message}\n(restarting in {delay:.0f}s)")
            await asyncio.sleep(delay)

    async def _launch(self) -> None:
        await self._report(InstanceState.INITIALIZING, None)
        try:
            model = await self.deps.client.get_model(self.instance.model_id)
        except ServerClientError as exc:
            raise PartFailure(f"cannot read model {self.instance.model_id}: {exc}") from exc
        backend = model.backend.value
        if backend in NEEDS_MAIN_PORTS:
            await self._wait_for_main()
        ctx = await self._context(model, await self._model_path(model, backend))
        parts = self._parts(backend, ctx)
        self._group = PartGroup(get_runtime(self.deps.runtime_name), self._log_dir())
        await self._group.start(parts)
        await self._report(InstanceState.RUNNING, None, pid=self._group.pids[0] if self._group.pids else None)
        logger.info("part of %s is running (ports %s)", self.instance.name, self._ports)

    async def _wait_for_main(self) -> None:
        """Ray workers and SGLang ranks join ports the main worker opens: wait until it recorded them."""
        while not self.instance.ports or self.instance.state == InstanceState.ERROR:
            await asyncio.sleep(self.deps.options.monitor_seconds)
        self._main_ports = tuple(self.instance.ports)

    async def _model_path(self, model: ModelPublic, backend: str) -> str:
        if backend != "sglang":  # a Ray worker and an RPC server load nothing from the model's files
            return ""
        try:
            resolved = await self.deps.resolver.resolve(model, _no_progress)
        except DownloadError as exc:
            raise PartFailure(str(exc)) from exc
        return str(resolved.path)

    async def _context(self, model: ModelPublic, model_path: str) -> LaunchContext:
        """The model's settings under the backend catalog's (its image, env and parameters), on this node's GPUs."""
        topo = topology_of(self.instance, self._main_ports)
        node = topo.nodes[topo.rank_of(self.worker_id)]
        ctx = LaunchContext(
            instance_id=self.instance_id, instance_name=self.instance.name, model_name=model.name,
            model_path=model_path, host="127.0.0.1", port=0, gpu_indexes=node.gpu_indexes,
            gpu_vendor=self.deps.gpu_vendor(), backend_parameters=tuple(model.backend_parameters),
            env=dict(model.env), image_name=model.image_name, work_dir=self._log_dir(),
        )  # fmt: skip
        catalog = await fetch_backend(self.deps.client, model.backend.value)
        docker = self.deps.runtime_name == "docker"
        return apply_catalog(ctx, catalog, docker=docker, registry=self.deps.image_registry,
                             namespace=self.deps.image_namespace)  # fmt: skip

    def _parts(self, backend: str, ctx: LaunchContext) -> list[PartSpec]:
        topo = topology_of(self.instance, self._main_ports)
        rank = topo.rank_of(self.worker_id)
        if backend == "vllm":
            ports = RayPorts.from_list(self._allocate(RayPorts.count(head=False)), head=False)
            return [ray_worker_part(ctx, topo, rank, ports)]
        if backend == "llama-box":
            return rpc_server_parts(ctx, tuple(self._allocate(len(ctx.gpu_indexes))))
        if backend == "sglang":
            return [sglang_rank_part(ctx, topo, rank)]
        raise PartFailure(f"the {backend} backend has no part to run on subordinate workers")

    def _allocate(self, count: int) -> list[int]:
        try:
            self._ports = [self.deps.ports.allocate() for _ in range(count)]
        except NoFreePortError as exc:
            raise PartFailure(str(exc)) from exc
        return self._ports

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.deps.options.monitor_seconds)
            if self._group is not None and (why := await self._group.check()):
                raise PartFailure(why)
            if self.instance.state == InstanceState.ERROR:
                raise PartFailure("the main worker's part failed; restarting together with it")
            if self._main_ports and tuple(self.instance.ports or ()) != self._main_ports:
                raise PartFailure("the main worker restarted its part; joining it again")

    async def _release(self) -> None:
        if self._group is not None:
            await self._group.stop(timeout=self.deps.options.stop_timeout_seconds)
            self._group = None
        for port in self._ports:
            self.deps.ports.release(port)
        self._ports, self._main_ports = [], ()

    def _log_dir(self) -> Path:
        return self.deps.data_dir / "instances" / f"{self.instance.name}-part"

    async def _report(self, state: InstanceState, message: str | None, pid: int | None = None) -> None:
        report = SubordinateReport(state=state, state_message=message, pid=pid, ports=self._ports)
        try:
            self.instance = await self.deps.client.update_instance(
                self.instance_id, ModelInstanceUpdate(subordinate=report)
            )
        except ServerClientError as exc:
            logger.warning("part of %s: report failed: %s", self.instance.name, exc)


async def _no_progress(_percent: float) -> None:
    return None
