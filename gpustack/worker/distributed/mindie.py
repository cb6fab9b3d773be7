"""MindIE across workers: every node runs `mindieservice_daemon` with multi-node inference on and the same
rank table (each node's NPUs with their device IPs and global ranks); the main worker serves the API."""

import json
from typing import Any

from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.backends.mindie import CONFIG_ENV
from gpustack.worker.backends.mindie import build as mindie_build
from gpustack.worker.distributed import PartSpec, Topology

RANK_TABLE_ENV = "RANK_TABLE_FILE"
CONTAINER_IP_ENV = "MIES_CONTAINER_IP"
RANK_TABLE_NAME = "ranktable.json"


def rank_table(topo: Topology) -> dict[str, Any]:
    """The HCCL rank table: servers in node order, ranks numbered across all NPUs."""
    servers, rank = [], 0
    for node in topo.nodes:
        if len(node.gpu_addresses) != len(node.gpu_indexes):
            raise ValueError(
                f"worker {node.worker_id} has not reported the device IPs of its NPUs (gpu_addresses); "
                "MindIE across workers needs them (hccn_tool -i N -ip -g)"
            )
        devices = []
        for index, address in zip(node.gpu_indexes, node.gpu_addresses, strict=True):
            devices.append({"device_id": str(index), "device_ip": address, "rank_id": str(rank)})
            rank += 1
        servers.append({"server_id": node.ip, "container_ip": node.ip, "device": devices})
    return {"version": "1.0", "server_count": str(len(servers)), "server_list": servers, "status": "completed"}


def mindie_node_spec(ctx: LaunchContext, topo: Topology, rank: int) -> LaunchSpec:
    """The daemon of node `rank`: the single-node config with multiNodesInferEnabled and the rank table."""
    spec = mindie_build(ctx)
    config_path = spec.env[CONFIG_ENV]
    table_path = str(ctx.work_dir / RANK_TABLE_NAME)
    files = []
    for path, text in spec.files:
        if path == config_path:
            config = json.loads(text)
            config["BackendConfig"]["multiNodesInferEnabled"] = True
            config["BackendConfig"]["interNodeTLSEnabled"] = False
            text = json.dumps(config, indent=2)
        files.append((path, text))
    files.append((table_path, json.dumps(rank_table(topo), indent=2)))
    env = {**spec.env, RANK_TABLE_ENV: table_path, CONTAINER_IP_ENV: topo.nodes[rank].ip}
    name = ctx.instance_name if rank == 0 else f"{ctx.instance_name}-node-{rank}"
    health = spec.health_path if rank == 0 else ""
    return LaunchSpec(**{**vars(spec), "files": tuple(files), "env": env, "name": name, "health_path": health})


def mindie_node_part(ctx: LaunchContext, topo: Topology, rank: int) -> PartSpec:
    """A subordinate's daemon (no API of its own: alive is ready)."""
    return PartSpec(mindie_node_spec(ctx, topo, rank), role="mindie-node")
