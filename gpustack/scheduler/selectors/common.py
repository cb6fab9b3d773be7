"""Building blocks shared by the per-backend selectors."""

from collections.abc import Sequence

from gpustack.scheduler.capacity import gpu_free, ram_free, ram_shortfall_text
from gpustack.scheduler.types import Candidate, ResourceEstimate, WorkerSnapshot

Selection = tuple[list[Candidate], dict[str, str]]


def single_gpu_candidates(estimate: ResourceEstimate, worker: WorkerSnapshot) -> list[Candidate]:
    """One candidate per GPU that can hold the whole estimate on its own."""
    need = estimate.total_bytes
    return [
        Candidate(
            worker_id=worker.id,
            worker_name=worker.name,
            gpu_indexes=(gpu.index,),
            vram={gpu.index: need},
            ram=0,
            offload_layers=estimate.total_layers,
            total_layers=estimate.total_layers,
        )
        for gpu in sorted(worker.gpus, key=lambda g: g.index)
        if gpu_free(gpu) >= need
    ]


def cpu_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot, what: str) -> tuple[Candidate | None, str]:
    """Everything in system RAM, or (None, reason) when RAM is short; `what` prefixes the reason."""
    need = estimate.total_bytes
    if ram_free(worker) < need:
        return None, ram_shortfall_text(what, need, worker)
    candidate = Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=(),
        vram={},
        ram=need,
        offload_layers=0,
        total_layers=estimate.total_layers,
    )
    return candidate, ""


def distribute(n: int, max_per_slot: Sequence[int], weights: Sequence[int]) -> list[int]:
    """Split `n` items over slots proportionally to `weights`, never above `max_per_slot`.

    Leftovers from rounding go to the slots with the most room. Requires sum(max_per_slot) >= n.
    """
    total_weight = sum(weights)
    out = [
        min(cap, n * w // total_weight) if total_weight > 0 else 0 for cap, w in zip(max_per_slot, weights, strict=True)
    ]
    left = n - sum(out)
    for i in sorted(range(len(out)), key=lambda j: (out[j] - max_per_slot[j], j)):
        take = min(left, max_per_slot[i] - out[i])
        out[i] += take
        left -= take
    if left > 0:
        raise ValueError(f"cannot place {n} items in slots of at most {list(max_per_slot)}")
    return out


def layer_remainder(estimate: ResourceEstimate) -> int:
    """Bytes lost by the integer division in `per_layer_bytes`, added back to one device."""
    layered = estimate.weights_bytes - estimate.non_layer_bytes + estimate.kv_cache_bytes
    return layered - estimate.per_layer_bytes() * estimate.total_layers
