"""Small builders of scheduler snapshots with sizes in GiB, for readable tests."""

from collections.abc import Mapping, Sequence

from gpustack.scheduler.types import GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import GiB


def gib(x: float) -> int:
    return int(x * GiB)


def gpu(
    index: int, total: float, *, claimed: float = 0, used: float = 0, reserved: float = 0, name: str = "RTX 4090"
) -> GPUSnapshot:
    return GPUSnapshot(
        index=index,
        name=name,
        vendor="nvidia",
        memory_total=gib(total),
        memory_used=gib(used),
        memory_claimed=gib(claimed),
        memory_reserved=gib(reserved),
    )


def worker(
    wid: int,
    name: str,
    gpus: Sequence[GPUSnapshot] = (),
    *,
    ram: float = 64,
    ram_claimed: float = 0,
    state: str = "ready",
    labels: Mapping[str, str] | None = None,
    overhead: float = 0,
    cpu_only: frozenset[str] = frozenset(),
) -> WorkerSnapshot:
    return WorkerSnapshot(
        id=wid,
        name=name,
        state=state,
        labels=dict(labels or {}),
        gpus=tuple(gpus),
        memory_total=gib(ram),
        memory_claimed=gib(ram_claimed),
        cpu_cores=16,
        gpu_overhead=gib(overhead),
        cpu_only_backends=cpu_only,
    )


def model(**overrides: object) -> ModelSnapshot:
    fields: dict[str, object] = {"id": 1, "name": "m", "backend": "llama-box", "placement_strategy": "spread"}
    fields.update(overrides)
    return ModelSnapshot(**fields)  # type: ignore[arg-type]


def estimate(
    weights: float = 8,
    non_layer: float = 1,
    kv: float = 1,
    compute: float = 0.5,
    layers: int = 8,
    offload_compute: float = 0,
) -> ResourceEstimate:
    """Default: 8 blocks of exactly 1 GiB each (weights+KV); the 1 GiB outside the blocks is half input
    embedding (stays on the host) and half output layer. One GPU holding everything needs 9 GiB, the
    CPU 9.5 GiB."""
    return ResourceEstimate(
        weights_bytes=gib(weights),
        host_weights_bytes=gib(non_layer) // 2,
        output_bytes=gib(non_layer) - gib(non_layer) // 2,
        kv_cache_bytes=gib(kv),
        compute_bytes=gib(compute),
        offload_compute_bytes=gib(offload_compute),
        block_count=layers,
        context_size=4096,
    )
