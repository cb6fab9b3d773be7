"""SGLang across workers: the same `sglang.launch_server` on every node with `--nnodes --node-rank
--dist-init-addr MAIN:PORT`; tensor parallel = GPUs per worker, pipeline parallel = workers. Rank 0 (the
main worker) serves the API; the other ranks only join the process group."""

import sys

from gpustack.worker.backends._common import base_spec, merge_args
from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.backends.sglang import ALIASES, PROTECTED, multinode_args, sglang_defaults
from gpustack.worker.distributed import PartSpec, Topology

PORTS = 1  # the main worker's port for torch.distributed's rendezvous (--dist-init-addr)


def _argv(ctx: LaunchContext, topo: Topology, rank: int) -> list[str]:
    if not topo.main.ports:
        raise ValueError("distributed SGLang needs the main worker's --dist-init-addr port")
    defaults = sglang_defaults(ctx) + [
        "--pp-size", str(len(topo.nodes)),
        *multinode_args(len(topo.nodes), rank, f"{topo.main.ip}:{topo.main.ports[0]}"),
    ]  # fmt: skip
    merged = merge_args(defaults, ctx.backend_parameters, ALIASES, (*PROTECTED, "--nnodes", "--node-rank"))
    python = "python3" if ctx.image_name else sys.executable
    return [python, "-m", "sglang.launch_server", *merged]


def sglang_main_spec(ctx: LaunchContext, topo: Topology) -> LaunchSpec:
    """Rank 0 on the main worker: serves the OpenAI API on ctx.port, health /health."""
    return base_spec(ctx, _argv(ctx, topo, 0), health_path="/health")


def sglang_rank_part(ctx: LaunchContext, topo: Topology, rank: int) -> PartSpec:
    """A subordinate's rank: no API of its own (alive is ready; rank 0 only turns healthy once all joined)."""
    spec = base_spec(ctx, _argv(ctx, topo, rank))
    spec = LaunchSpec(**{**vars(spec), "name": f"{ctx.instance_name}-rank-{rank}", "port": 0, "health_path": ""})
    return PartSpec(spec, role="sglang-rank")
