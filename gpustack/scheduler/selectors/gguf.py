"""GGUF selector (llama-box, custom): one GPU, layer split over GPUs, partial offload, or CPU.

Memory model (bytes from ResourceEstimate, layers as llama.cpp counts them: blocks + output layer):
- every GPU an engine uses holds the worker's runtime overhead (CUDA context, cuBLAS, graphs) and a
  compute buffer; the input embedding stays in host memory.
- one GPU: every layer, its KV cache and compute.
- k GPUs of one worker (llama.cpp layer split, GPUs in index order): each holds whole blocks with
  their KV cache; the last also holds the output layer. Blocks are split proportionally to free
  VRAM, capped by what each GPU can hold, and the split is passed to the engine as --tensor-split.
- partial offload (cpu_offloading): as many blocks as fit go to the GPUs (llama.cpp offloads the
  last blocks); the other blocks, the output layer and a CPU compute buffer go to RAM.
- CPU: everything in RAM, for workers without GPUs, engines that cannot use them, or when no block
  fits any GPU.
With a manual GPU selection (`gpu_selector`) of several GPUs the layers are split over all of them (not
the fewest that fit), then partial offload over them.
"""

from collections.abc import Sequence

from gpustack.scheduler.capacity import (
    gpu_free,
    largest_gpu_text,
    ram_free,
    ram_shortfall_text,
)
from gpustack.scheduler.selectors.common import (
    Layout,
    Selection,
    cpu_candidate,
    distribute,
    gpu_need,
    layout_candidate,
    per_worker,
    single_gpu_candidates,
)
from gpustack.scheduler.types import Candidate, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes


def select_gguf(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """Candidates per worker, trying the placements in the order listed in the module docstring."""
    return per_worker(workers, lambda worker: worker_candidates(model, estimate, worker))


def cpu_only_note(model: ModelSnapshot, worker: WorkerSnapshot) -> str:
    """Why a worker's GPUs are ignored for this model, or "" when they are usable."""
    if not worker.gpus or model.backend not in worker.cpu_only_backends:
        return ""
    return (
        f"the {model.backend} engine on {worker.name} cannot use its GPUs (a CPU-only build); "
        "install a GPU build of the engine there to use them"
    )


def worker_candidates(
    model: ModelSnapshot, estimate: ResourceEstimate, worker: WorkerSnapshot
) -> tuple[list[Candidate], str]:
    """Candidates on one worker, or ([], human-readable reason)."""
    if note := cpu_only_note(model, worker):
        cpu, why = cpu_candidate(estimate, worker, f"{note}; running on its CPU", note=f"placed on the CPU: {note}")
        return ([cpu] if cpu else []), why
    if not worker.gpus:
        cpu, why = cpu_candidate(estimate, worker, "no GPUs and the model")
        return ([cpu] if cpu else []), why
    manual = bool(model.gpu_selector) and len(worker.gpus) > 1  # use every selected GPU, not the fewest
    single = [] if manual else single_gpu_candidates(estimate, worker)
    if single:
        return single, ""
    split = layer_split_candidate(estimate, worker, all_gpus=manual)
    if split is not None:
        return [split], ""
    need = estimate.full_gpu_bytes + worker.gpu_overhead
    notes = [f"needs {fmt_bytes(need)} VRAM, {largest_gpu_text(worker)}"]
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


def _block_caps(
    estimate: ResourceEstimate, worker: WorkerSnapshot, free: Sequence[int], full: bool, per_block: int
) -> list[int]:
    """How many blocks each GPU (index order, `free` bytes each) can hold next to its fixed costs."""
    fixed = gpu_need(estimate, 0, full, False, worker.gpu_overhead)
    caps = [max(0, room - fixed) // per_block for room in free]
    if full and caps:  # the last GPU also holds the output layer
        caps[-1] = max(0, free[-1] - gpu_need(estimate, 0, full, True, worker.gpu_overhead)) // per_block
    return caps


def layer_split_candidate(
    estimate: ResourceEstimate, worker: WorkerSnapshot, *, all_gpus: bool = False
) -> Candidate | None:
    """Every layer over the fewest GPUs (most free first) of the worker, or None; with `all_gpus` (a manual
    GPU selection) over every GPU of the worker and nothing else."""
    per_block = estimate.per_block_bytes()
    if estimate.block_count <= 0 or per_block <= 0:
        return None
    ranked = worker.gpus_by_free
    fixed = worker.gpu_overhead + estimate.compute_bytes
    need = estimate.block_count * per_block + estimate.output_bytes
    room = 0
    for k in range(1, len(ranked) + 1):
        room += gpu_free(ranked[k - 1]) - fixed
        if k < (len(ranked) if all_gpus else 2) or room < need:  # not even the bytes fit: no need to count blocks
            continue
        chosen = sorted(ranked[:k], key=lambda g: g.index)
        free = [gpu_free(g) for g in chosen]
        caps = _block_caps(estimate, worker, free, True, per_block)
        if sum(caps) < estimate.block_count:
            continue
        blocks = distribute(estimate.block_count, caps, free)
        return layout_candidate(worker, estimate, Layout(tuple(chosen), tuple(blocks), with_output=True))
    return None


def partial_offload_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot) -> tuple[Candidate | None, str]:
    """Offload as many blocks as fit to GPUs, the rest (and the output layer) to RAM.

    Returns (None, "") when not even one block fits a GPU, (None, reason) when RAM is short.
    """
    if estimate.block_count <= 0 or estimate.per_block_bytes() <= 0:
        return None, ""
    gpus = worker.gpus_by_index
    caps = _block_caps(estimate, worker, [gpu_free(g) for g in gpus], False, estimate.per_block_bytes())
    usable = [(gpu, n) for gpu, n in zip(gpus, caps, strict=True) if n > 0]
    if not usable:
        return None, ""
    offload = min(estimate.block_count, sum(n for _, n in usable))
    blocks = distribute(offload, [n for _, n in usable], [gpu_free(g) for g, _ in usable])
    placed = [(gpu, n) for (gpu, _), n in zip(usable, blocks, strict=True) if n > 0]
    layout = Layout(tuple(g for g, _ in placed), tuple(n for _, n in placed), with_output=False)
    candidate = layout_candidate(worker, estimate, layout)
    if ram_free(worker) < candidate.ram:
        what = f"partial offload of {layout.offload_layers}/{estimate.total_layers} layers"
        return None, ram_shortfall_text(what, candidate.ram, worker)
    return candidate, ""
