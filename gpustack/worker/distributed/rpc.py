"""llama-box across workers: each subordinate runs one llama.cpp RPC server per placed GPU, and the main
worker's llama-box offloads layers to them with `--rpc host:port,...`.

llama.cpp orders the devices RPC servers first (in `--rpc` order), then the local GPUs; the claim's
tensor split is recorded in that order, so it is passed to `--tensor-split` as it is.
"""

import dataclasses

from gpustack.worker.backends._common import base_spec
from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.backends.llama_box import llama_box_argv
from gpustack.worker.distributed import PartSpec, Topology


def rpc_server_parts(ctx: LaunchContext, ports: tuple[int, ...], host: str = "0.0.0.0") -> list[PartSpec]:
    """`llama-box --rpc-server-host H --rpc-server-port P --rpc-server-main-gpu 0` per GPU of ctx, each seeing
    only its GPU; ready when the port accepts connections."""
    if len(ports) != len(ctx.gpu_indexes):
        raise ValueError(f"one RPC server port per GPU: {len(ctx.gpu_indexes)} GPUs, {len(ports)} ports")
    parts = []
    for gpu, port in zip(ctx.gpu_indexes, ports, strict=True):
        argv = [
            "llama-box", "--rpc-server-host", host, "--rpc-server-port", str(port), "--rpc-server-main-gpu", "0",
        ]  # fmt: skip
        one = dataclasses.replace(ctx, gpu_indexes=(gpu,))
        spec = base_spec(one, argv)
        spec = LaunchSpec(**{**vars(spec), "name": f"{ctx.instance_name}-rpc-{gpu}", "port": port, "health_path": ""})
        parts.append(PartSpec(spec, ready_port=port, role="rpc-server"))
    return parts


def rpc_addresses(topo: Topology) -> tuple[str, ...]:
    """`ip:port` of every subordinate's RPC servers, in node then GPU order (llama.cpp's device order)."""
    out = []
    for node in topo.subordinates:
        if len(node.ports) != len(node.gpu_indexes):
            raise ValueError(f"worker {node.worker_id} has not reported its RPC server ports yet")
        out += [f"{node.ip}:{port}" for port in node.ports]
    return tuple(out)


def llama_box_main_spec(ctx: LaunchContext, topo: Topology, binary: str = "llama-box") -> LaunchSpec:
    """The main worker's llama-box: its own GPUs plus every RPC server (`--rpc`), the recorded split."""
    rpc_ctx = dataclasses.replace(ctx, rpc_servers=rpc_addresses(topo))
    return base_spec(rpc_ctx, llama_box_argv(binary, rpc_ctx))
