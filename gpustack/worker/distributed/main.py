"""The main worker's side of a distributed instance: what runs before its engine and how the engine is
launched over the other workers (vLLM: a Ray head that every subordinate joins; SGLang: a rendezvous
port; llama-box: the subordinates' RPC servers), and the health of every part while it runs."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from gpustack.schemas.instances import InstanceState, ModelInstancePublic, SubordinateWorker
from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.distributed import Topology, topology_of
from gpustack.worker.distributed.parts import PartFailure, PartGroup
from gpustack.worker.distributed.ray import RayPorts, ray_head_part, vllm_ray_spec, wait_for_nodes
from gpustack.worker.distributed.rpc import llama_box_main_spec
from gpustack.worker.distributed.sglang import PORTS as SGLANG_PORTS
from gpustack.worker.distributed.sglang import sglang_main_spec
from gpustack.worker.ports import PortAllocator
from gpustack.worker.runtimes.base import Runtime

DISTRIBUTED_BACKENDS = ("vllm", "sglang", "llama-box")


class MainPart:
    """Prepares and watches the distributed part of one instance on its main worker."""

    def __init__(
        self,
        runtime: Runtime,
        ports: PortAllocator,
        log_dir: Path,
        current: Callable[[], ModelInstancePublic],
        report_ports: Callable[[list[int]], Awaitable[None]],
        join_timeout: float = 600.0,
    ) -> None:
        self.ports = ports
        self.group = PartGroup(runtime, log_dir)
        self.current = current
        self.report_ports = report_ports
        self.join_timeout = join_timeout
        self._taken: list[int] = []

    async def prepare(self, backend: str, ctx: LaunchContext) -> LaunchSpec:
        """Start what the engine needs on the other workers and return the engine's launch spec."""
        if backend == "vllm":
            topo = await self._with_ports(RayPorts.count(head=True))
            head = RayPorts.from_list(topo.main.ports, head=True)
            await self.group.start([ray_head_part(ctx, topo, head)])
            address = f"{topo.main.ip}:{head.gcs}"
            try:
                await wait_for_nodes(address, len(topo.nodes), self.join_timeout)
            except TimeoutError as exc:
                raise PartFailure(f"{exc}; check that the subordinate workers run and reach {address}") from exc
            return vllm_ray_spec(ctx, topo)
        if backend == "sglang":
            return sglang_main_spec(ctx, await self._with_ports(SGLANG_PORTS))
        if backend == "llama-box":
            return llama_box_main_spec(ctx, await self._subordinates_running())
        raise PartFailure(f"the {backend} backend cannot run across workers; deploy it without distributed inference")

    async def _with_ports(self, count: int) -> Topology:
        """Take `count` ports of this worker's range for the part and record them on the instance."""
        self._taken = [self.ports.allocate() for _ in range(count)]
        await self.report_ports(self._taken)
        return topology_of(self.current(), tuple(self._taken))

    async def _subordinates_running(self, poll: float = 0.5) -> Topology:
        """Wait until every subordinate reports its part running (RPC servers ready before the engine)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.join_timeout
        while waiting := [s.worker_name for s in _subs(self.current()) if s.state != InstanceState.RUNNING]:
            if loop.time() >= deadline:
                raise PartFailure(f"subordinate workers {', '.join(map(str, waiting))} did not start their part")
            await asyncio.sleep(poll)
        return topology_of(self.current())

    async def check(self) -> str | None:
        """Why the instance must restart: a process of this part exited or a subordinate failed."""
        if why := await self.group.check():
            return why
        for sub in _subs(self.current()):
            if sub.state == InstanceState.ERROR:
                return f"subordinate worker {sub.worker_name} failed: {sub.state_message or 'no message'}"
        return None

    async def stop(self) -> None:
        """Stop this part and take its ports off the instance (subordinates then wait for new ones)."""
        await self.group.stop()
        for port in self._taken:
            self.ports.release(port)
        if self._taken:
            self._taken = []
            await self.report_ports([])


def _subs(instance: ModelInstancePublic) -> list[SubordinateWorker]:
    return [SubordinateWorker.model_validate(raw) for raw in instance.distributed_servers]
