"""vLLM across workers with Ray: a Ray head on the main worker, `ray start --address` on the others,
then `vllm serve ... --distributed-executor-backend ray` on the main worker once every node joined.

Every port Ray opens comes from the worker's instance port range (Ray's defaults would pick its own):
the head's GCS port, the node manager, object manager, runtime-env agent, dashboard agent (gRPC and
HTTP), metrics export, and a short list of ports for Ray's worker processes.
"""

import asyncio
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.backends.vllm import ALIASES, PROTECTED, vllm_defaults
from gpustack.worker.distributed import PartSpec, Topology

NODE_PORTS = 6  # node manager, object manager, runtime env agent, dashboard agent gRPC + HTTP, metrics
WORKER_PORTS = 4  # ports Ray's worker processes bind (one per worker process; the engine needs few)


@dataclass(frozen=True)
class RayPorts:
    """The ports one node's Ray processes use; `gcs` only on the head. `as_list` is what the instance
    records for the node, `from_list` reads it back."""

    node: tuple[int, ...]  # NODE_PORTS ports, in the order of `_node_flags`
    workers: tuple[int, ...]
    gcs: int | None = None

    def as_list(self) -> tuple[int, ...]:
        return ((self.gcs,) if self.gcs is not None else ()) + self.node + self.workers

    @classmethod
    def from_list(cls, ports: tuple[int, ...] | list[int], head: bool) -> "RayPorts":
        ports = tuple(ports)
        need = NODE_PORTS + 1 + (1 if head else 0)
        if len(ports) < need:
            raise ValueError(f"a Ray {'head' if head else 'node'} needs at least {need} ports, got {len(ports)}")
        gcs, rest = (ports[0], ports[1:]) if head else (None, ports)
        return cls(node=rest[:NODE_PORTS], workers=rest[NODE_PORTS:], gcs=gcs)

    @staticmethod
    def count(head: bool) -> int:
        return NODE_PORTS + WORKER_PORTS + (1 if head else 0)


def ray_command(ctx: LaunchContext) -> list[str]:
    """`ray` inside an image; the worker's own interpreter's Ray CLI as a process."""
    return ["ray"] if ctx.image_name else [sys.executable, "-m", "ray.scripts.scripts"]


TEMP_ROOT = Path(tempfile.gettempdir()) / "gpustack-ray"


@dataclass(frozen=True)
class RayLimits:
    """What a node offers Ray beyond its GPUs (None: Ray's own detection), and where its session lives:
    a short path, since Ray's unix sockets under it must stay within 107 bytes."""

    num_cpus: int | None = None
    object_store_bytes: int | None = None
    temp_root: Path = TEMP_ROOT

    def temp_dir(self, ctx: LaunchContext, role: str) -> str:
        return str(self.temp_root / f"i{ctx.instance_id}-{role}")


def _node_flags(ip: str, gpus: int, ports: RayPorts, temp_dir: str, limits: RayLimits) -> list[str]:
    node_manager, object_manager, runtime_env, agent_grpc, agent_http, metrics = ports.node
    flags = [
        "--node-ip-address", ip,
        "--num-gpus", str(gpus),
        "--node-manager-port", str(node_manager),
        "--object-manager-port", str(object_manager),
        "--runtime-env-agent-port", str(runtime_env),
        "--dashboard-agent-grpc-port", str(agent_grpc),
        "--dashboard-agent-listen-port", str(agent_http),
        "--metrics-export-port", str(metrics),
        "--worker-port-list", ",".join(map(str, ports.workers)),
        "--temp-dir", temp_dir,
    ]  # fmt: skip
    if limits.num_cpus is not None:
        flags += ["--num-cpus", str(limits.num_cpus)]
    if limits.object_store_bytes is not None:
        flags += ["--object-store-memory", str(limits.object_store_bytes)]
    return [*flags, "--disable-usage-stats", "--block"]


def _part(ctx: LaunchContext, argv: list[str], suffix: str) -> LaunchSpec:
    spec = base_spec(ctx, argv, env={"RAY_USAGE_STATS_ENABLED": "0"})
    return LaunchSpec(**{**vars(spec), "name": f"{ctx.instance_name}-{suffix}", "port": 0, "health_path": ""})


def ray_head_part(ctx: LaunchContext, topo: Topology, ports: RayPorts, limits: RayLimits = RayLimits()) -> PartSpec:
    """`ray start --head --port GCS ... --block` on the main worker; ready when GCS accepts connections."""
    if ports.gcs is None:
        raise ValueError("the Ray head needs a GCS port")
    argv = [
        *ray_command(ctx), "start", "--head", "--port", str(ports.gcs), "--include-dashboard=false",
        *_node_flags(topo.main.ip, len(topo.main.gpu_indexes), ports, limits.temp_dir(ctx, "head"), limits),
    ]  # fmt: skip
    return PartSpec(_part(ctx, argv, "ray-head"), ready_port=ports.gcs, ready_host=topo.main.ip, role="ray-head")


def ray_worker_part(
    ctx: LaunchContext, topo: Topology, rank: int, ports: RayPorts, limits: RayLimits = RayLimits()
) -> PartSpec:
    """`ray start --address=MAIN:GCS ... --block` on a subordinate; ready when its node manager listens."""
    head = RayPorts.from_list(topo.main.ports, head=True)
    node = topo.nodes[rank]
    argv = [
        *ray_command(ctx), "start", f"--address={topo.main.ip}:{head.gcs}",
        *_node_flags(node.ip, len(node.gpu_indexes), ports, limits.temp_dir(ctx, f"node{rank}"), limits),
    ]  # fmt: skip
    part = _part(ctx, argv, f"ray-worker-{rank}")
    return PartSpec(part, ready_port=ports.node[0], ready_host=node.ip, role="ray-worker")


def vllm_ray_spec(ctx: LaunchContext, topo: Topology) -> LaunchSpec:
    """`vllm serve` on the main worker over the Ray cluster: tensor parallel = GPUs per worker, pipeline
    parallel = workers (the user's own parallel flags win), driven through RAY_ADDRESS."""
    head = RayPorts.from_list(topo.main.ports, head=True)
    defaults = vllm_defaults(ctx) + [
        "--pipeline-parallel-size", str(len(topo.nodes)),
        "--distributed-executor-backend", "ray",
    ]  # fmt: skip
    merged = merge_args(defaults, ctx.backend_parameters, ALIASES, PROTECTED)
    env = {"RAY_ADDRESS": f"{topo.main.ip}:{head.gcs}", "VLLM_HOST_IP": topo.main.ip}
    return base_spec(ctx, ["vllm", "serve", ctx.model_path, *merged], health_path="/health", env=env)


ALIVE_NODES_SCRIPT = """
import sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
print(sum(1 for node in ray.nodes() if node["Alive"]))
"""


async def alive_nodes(address: str, python: str = sys.executable, timeout: float = 60.0) -> int:
    """How many nodes of the Ray cluster at `address` (GCS host:port) are alive, asked by a short-lived
    driver process (the worker never imports Ray itself); 0 when the cluster cannot be reached."""
    proc = await asyncio.create_subprocess_exec(
        python, "-c", ALIVE_NODES_SCRIPT, address, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return 0
    lines = out.decode().strip().splitlines()
    return int(lines[-1]) if proc.returncode == 0 and lines and lines[-1].isdigit() else 0


async def wait_for_nodes(address: str, nodes: int, timeout: float, poll: float = 1.0) -> None:
    """Wait until `nodes` nodes joined (the head waits for its subordinates before vLLM starts);
    TimeoutError saying how many joined."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (joined := await alive_nodes(address)) < nodes:
        if loop.time() >= deadline:
            raise TimeoutError(f"{joined} of {nodes} Ray nodes joined the cluster at {address} within {timeout:.0f}s")
        await asyncio.sleep(poll)
