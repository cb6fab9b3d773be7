"""Generic selector for engines we have no placement model for: one worker's GPUs, or its RAM."""

from collections.abc import Sequence

from gpustack.scheduler.capacity import gpu_free, gpus_by_free, largest_gpu_text
from gpustack.scheduler.selectors.common import Selection, cpu_candidate, per_worker, single_gpu_candidates
from gpustack.scheduler.types import Candidate, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes


def select_generic(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """Whole estimate on one GPU, else split evenly over the fewest GPUs of one worker.

    Workers without GPUs take the instance in RAM when it fits. There is no CPU offloading here.
    """
    manual = bool(model.gpu_selector)
    return per_worker(workers, lambda worker: _worker_candidates(estimate, worker, manual=manual))


def _worker_candidates(
    estimate: ResourceEstimate, worker: WorkerSnapshot, *, manual: bool
) -> tuple[list[Candidate], str]:
    """With a manual selection of several GPUs (`manual`), the split is over all of them."""
    if not worker.gpus:
        cpu, why = cpu_candidate(estimate, worker, "no GPUs and the model")
        return ([cpu] if cpu else []), why
    every = manual and len(worker.gpus) > 1
    single = [] if every else single_gpu_candidates(estimate, worker)
    if single:
        return single, ""
    split = even_split_candidate(estimate, worker, smallest=len(worker.gpus) if every else 2)
    if split is not None:
        return [split], ""
    why = f"needs {fmt_bytes(estimate.full_gpu_bytes + worker.gpu_overhead)} VRAM, {largest_gpu_text(worker)}"
    if len(worker.gpus) > 1:
        total_free = sum(gpu_free(g) for g in worker.gpus)
        why += f"; an even split across its {len(worker.gpus)} GPUs ({fmt_bytes(total_free)} free) does not fit"
    return [], why


def even_split_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot, smallest: int = 2) -> Candidate | None:
    """Tensor-parallel style: the k GPUs (k >= `smallest`) with the most free VRAM each take 1/k plus
    compute and the engine's runtime overhead."""
    shared = estimate.full_gpu_bytes - estimate.compute_bytes
    ranked = gpus_by_free(worker)
    for k in range(smallest, len(ranked) + 1):
        chosen = ranked[:k]
        base, rem = divmod(shared, k)
        fixed = estimate.compute_bytes + worker.gpu_overhead
        shares = [base + (1 if i < rem else 0) + fixed for i in range(k)]
        if all(gpu_free(gpu) >= share for gpu, share in zip(chosen, shares, strict=True)):
            return Candidate(
                worker_id=worker.id,
                worker_name=worker.name,
                gpu_indexes=tuple(sorted(g.index for g in chosen)),
                vram={gpu.index: share for gpu, share in zip(chosen, shares, strict=True)},
                ram=estimate.host_weights_bytes,
                offload_layers=estimate.total_layers,
                total_layers=estimate.total_layers,
                terms={
                    "weights_gpu": estimate.weights_bytes - estimate.host_weights_bytes,
                    "kv_cache_gpu": estimate.kv_cache_bytes,
                    "compute_gpu": estimate.compute_bytes * k,
                    "runtime_overhead_gpu": worker.gpu_overhead * k,
                    "weights_host": estimate.host_weights_bytes,
                },
            )
    return None
