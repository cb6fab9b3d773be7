"""GGUF selector (llama-box, custom): one GPU, layer split over GPUs, partial offload, or CPU.

Memory model (bytes from ResourceEstimate):
- one GPU: weights + kv + compute.
- k GPUs of one worker (llama.cpp layer split): each GPU holds whole layers (weights + their KV
  cache) plus its own compute buffer; the GPU with the most free VRAM also holds the non-layer
  tensors. Layers are split proportionally to free VRAM, capped by what each GPU can hold.
- partial offload (cpu_offloading): as many layers as fit go to the GPUs (each + compute); the
  other layers, the non-layer tensors (llama.cpp keeps embeddings/output on the host unless every
  layer is offloaded) and one compute buffer go to RAM.
- CPU: everything in RAM, for workers without GPUs or when no layer fits any GPU.
"""

from collections.abc import Sequence

from gpustack.scheduler.capacity import (
    gpu_free,
    gpus_by_free,
    largest_gpu_text,
    ram_free,
    ram_shortfall_text,
)
from gpustack.scheduler.selectors.common import (
    Selection,
    cpu_candidate,
    distribute,
    layer_remainder,
    single_gpu_candidates,
)
from gpustack.scheduler.types import Candidate, GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes


def select_gguf(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """Candidates per worker, trying the placements in the order listed in the module docstring."""
    candidates: list[Candidate] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        found, why = worker_candidates(model, estimate, worker)
        candidates.extend(found)
        if not found:
            reasons[worker.name] = why
    return candidates, reasons


def worker_candidates(
    model: ModelSnapshot, estimate: ResourceEstimate, worker: WorkerSnapshot
) -> tuple[list[Candidate], str]:
    """Candidates on one worker, or ([], human-readable reason)."""
    if not worker.gpus:
        cpu, why = cpu_candidate(estimate, worker, "no GPUs and the model")
        return ([cpu] if cpu else []), why
    single = single_gpu_candidates(estimate, worker)
    if single:
        return single, ""
    split = layer_split_candidate(estimate, worker)
    if split is not None:
        return [split], ""
    notes = [f"needs {fmt_bytes(estimate.total_bytes)} VRAM, {largest_gpu_text(worker)}"]
    if len(worker.gpus) > 1:
        total_free = sum(gpu_free(g) for g in worker.gpus)
        notes.append(f"splitting across its {len(worker.gpus)} GPUs ({fmt_bytes(total_free)} free) does not fit")
    if not model.cpu_offloading:
        notes.append("CPU offloading is disabled")
        return [], "; ".join(notes)
    partial, why = partial_offload_candidate(estimate, worker)
    if partial is None and not why:
        partial, why = cpu_candidate(estimate, worker, "no layer fits on a GPU and running on CPU")
    if partial is None:
        notes.append(why)
        return [], "; ".join(notes)
    return [partial], ""


def layer_split_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot) -> Candidate | None:
    """All layers over the fewest GPUs (most free first) of the worker, or None."""
    per_layer = estimate.per_layer_bytes()
    if estimate.total_layers <= 0 or per_layer <= 0:
        return None
    ranked = gpus_by_free(worker)
    head_bytes = estimate.non_layer_bytes + layer_remainder(estimate)
    for k in range(2, len(ranked) + 1):
        chosen = ranked[:k]
        max_layers = [
            _layers_that_fit(gpu_free(gpu) - estimate.compute_bytes - (head_bytes if i == 0 else 0), per_layer)
            for i, gpu in enumerate(chosen)
        ]
        if sum(max_layers) < estimate.total_layers:
            continue
        layers = distribute(estimate.total_layers, max_layers, [gpu_free(g) for g in chosen])
        vram = {
            gpu.index: n * per_layer + estimate.compute_bytes + (head_bytes if i == 0 else 0)
            for i, (gpu, n) in enumerate(zip(chosen, layers, strict=True))
        }
        return _gpu_candidate(worker, chosen, vram, 0, estimate.total_layers, estimate)
    return None


def partial_offload_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot) -> tuple[Candidate | None, str]:
    """Offload as many layers as fit to GPUs, the rest to RAM.

    Returns (None, "") when not even one layer fits a GPU, (None, reason) when RAM is short.
    """
    per_layer = estimate.per_layer_bytes()
    if estimate.total_layers <= 0 or per_layer <= 0:
        return None, ""
    usable = [
        (gpu, n)
        for gpu in gpus_by_free(worker)
        if (n := _layers_that_fit(gpu_free(gpu) - estimate.compute_bytes, per_layer)) > 0
    ]
    if not usable:
        return None, ""
    offload = min(estimate.total_layers, sum(n for _, n in usable))
    layers = distribute(offload, [n for _, n in usable], [gpu_free(g) for g, _ in usable])
    placed = [(gpu, n) for (gpu, _), n in zip(usable, layers, strict=True) if n > 0]
    vram = {gpu.index: n * per_layer + estimate.compute_bytes for gpu, n in placed}
    ram = (
        (estimate.total_layers - offload) * per_layer
        + estimate.non_layer_bytes
        + layer_remainder(estimate)
        + estimate.compute_bytes
    )
    if ram_free(worker) < ram:
        what = f"partial offload of {offload}/{estimate.total_layers} layers"
        return None, ram_shortfall_text(what, ram, worker)
    return _gpu_candidate(worker, [g for g, _ in placed], vram, ram, offload, estimate), ""


def _layers_that_fit(room: int, per_layer: int) -> int:
    return room // per_layer if room > 0 else 0


def _gpu_candidate(
    worker: WorkerSnapshot,
    gpus: Sequence[GPUSnapshot],
    vram: dict[int, int],
    ram: int,
    offload_layers: int,
    estimate: ResourceEstimate,
) -> Candidate:
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=tuple(sorted(g.index for g in gpus)),
        vram=vram,
        ram=ram,
        offload_layers=offload_layers,
        total_layers=estimate.total_layers,
    )
