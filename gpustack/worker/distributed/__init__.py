"""Distributed instances: the nodes of a placement and the launch spec of each node's part.

The scheduler records a distributed placement on the instance: the main worker (`worker_id`,
`gpu_indexes`) and its subordinates (`distributed_servers`). Every worker builds its own part from that
record with one module per method: `ray` (vLLM across workers), `sglang` (torch multi-node flags),
`rpc` (llama-box RPC servers) and `mindie` (rank table). Runtimes still start every process.
"""

from dataclasses import dataclass

from gpustack.schemas.instances import ModelInstancePublic, SubordinateWorker
from gpustack.worker.backends.base import LaunchSpec


@dataclass(frozen=True)
class Node:
    """One worker of a distributed placement: its address, the GPUs it serves and the ports it opened."""

    worker_id: int
    ip: str
    gpu_indexes: tuple[int, ...]
    ports: tuple[int, ...] = ()
    gpu_addresses: tuple[str, ...] = ()  # per-GPU device IPs (Ascend NPUs' RoCE addresses, for MindIE)


@dataclass(frozen=True)
class Topology:
    """The main node first (rank 0), then the subordinates in the order the scheduler recorded them."""

    nodes: tuple[Node, ...]

    @property
    def main(self) -> Node:
        return self.nodes[0]

    @property
    def subordinates(self) -> tuple[Node, ...]:
        return self.nodes[1:]

    @property
    def gpus_per_node(self) -> int:
        return len(self.main.gpu_indexes)

    def rank_of(self, worker_id: int) -> int:
        """The node rank of a worker (0 for the main); ValueError when it takes no part."""
        for rank, node in enumerate(self.nodes):
            if node.worker_id == worker_id:
                return rank
        raise ValueError(f"worker {worker_id} takes no part in this instance")


@dataclass(frozen=True)
class PartSpec:
    """A process of one node's part: the launch spec and how to tell it is ready (a TCP port that
    accepts connections on `ready_host`, or None: alive is ready)."""

    spec: LaunchSpec
    ready_port: int | None = None
    ready_host: str = "127.0.0.1"  # a process bound to the node's address is probed there
    role: str = ""  # "ray-head", "ray-worker", "rpc-server", "sglang-rank", "mindie-node"


def topology_of(instance: ModelInstancePublic, main_ports: tuple[int, ...] = ()) -> Topology:
    """The nodes of a distributed instance from its record; `main_ports` are the ports the main worker
    opened for the part (e.g. the Ray head's); a subordinate's ports are its recorded ones."""
    if instance.worker_id is None:
        raise ValueError(f"instance {instance.name} is not placed")
    main = Node(instance.worker_id, instance.worker_ip or "", tuple(instance.gpu_indexes), main_ports)
    subs = tuple(_node(SubordinateWorker.model_validate(raw)) for raw in instance.distributed_servers)
    return Topology((main, *subs))


def _node(sub: SubordinateWorker) -> Node:
    if sub.worker_id is None:
        raise ValueError("a subordinate worker of the instance has no worker_id")
    return Node(sub.worker_id, sub.worker_ip or "", tuple(sub.gpu_indexes), tuple(sub.ports), tuple(sub.gpu_addresses))
