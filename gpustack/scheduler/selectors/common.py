"""Building blocks shared by the per-backend selectors: claims for a layout of layers over GPUs."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gpustack.scheduler.capacity import gpu_free, ram_free, ram_shortfall_text
from gpustack.scheduler.types import Candidate, GPUSnapshot, ResourceEstimate, WorkerSnapshot

Selection = tuple[list[Candidate], dict[str, str]]


def per_worker(
    workers: Sequence[WorkerSnapshot], find: Callable[[WorkerSnapshot], tuple[list[Candidate], str]]
) -> Selection:
    """Every worker's candidates from `find`, and the reason of each worker that has none."""
    candidates: list[Candidate] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        found, why = find(worker)
        candidates.extend(found)
        if not found:
            reasons[worker.name] = why
    return candidates, reasons


@dataclass(frozen=True)
class Layout:
    """Blocks per GPU (GPUs in ascending index order, the order the engine sees them) and whether
    the output layer is on the last GPU too (only when every block is on a GPU)."""

    gpus: tuple[GPUSnapshot, ...]
    blocks: tuple[int, ...]
    with_output: bool

    @property
    def gpu_blocks(self) -> int:
        return sum(self.blocks)

    @property
    def offload_layers(self) -> int:
        return self.gpu_blocks + (1 if self.with_output else 0)

    def tensor_split(self) -> tuple[int, ...]:
        """llama.cpp layers per GPU: its blocks, plus the output layer on the last one."""
        if len(self.blocks) < 2:
            return ()
        return (*self.blocks[:-1], self.blocks[-1] + (1 if self.with_output else 0))


def gpu_need(estimate: ResourceEstimate, blocks: int, with_output: bool, holds_output: bool, overhead: int) -> int:
    """Bytes one GPU needs for `blocks` blocks, the output layer when it `holds_output`, its compute
    buffer and the engine's runtime overhead."""
    output = estimate.output_bytes if holds_output else 0
    return overhead + blocks * estimate.per_block_bytes() + output + estimate.gpu_compute_bytes(with_output)


def layout_candidate(worker: WorkerSnapshot, estimate: ResourceEstimate, layout: Layout, note: str = "") -> Candidate:
    """The claim of a layout: VRAM per GPU, host RAM, and the terms both are made of."""
    per_block = estimate.per_block_bytes()
    base = gpu_need(estimate, 0, layout.with_output, False, worker.gpu_overhead)  # the same on every GPU
    vram = {gpu.index: base + n * per_block for gpu, n in zip(layout.gpus, layout.blocks, strict=True)}
    if layout.with_output and layout.gpus:  # the last GPU holds the output layer too
        vram[layout.gpus[-1].index] += estimate.output_bytes
    kv_gpu = estimate.kv_cache_bytes * layout.gpu_blocks // estimate.block_count
    compute_gpu = estimate.gpu_compute_bytes(layout.with_output) * len(layout.gpus)
    overhead = worker.gpu_overhead * len(layout.gpus)
    cpu_blocks = estimate.block_count - layout.gpu_blocks
    kv_host = estimate.kv_cache_bytes - kv_gpu
    compute_host = 0 if layout.with_output else estimate.compute_bytes
    weights_host = (
        estimate.host_weights_bytes
        + cpu_blocks * estimate.per_block_bytes()
        - kv_host
        + (0 if layout.with_output else estimate.output_bytes)
    )
    terms = {
        "weights_gpu": sum(vram.values()) - kv_gpu - compute_gpu - overhead,
        "kv_cache_gpu": kv_gpu,
        "compute_gpu": compute_gpu,
        "runtime_overhead_gpu": overhead,
        "weights_host": weights_host,
        "kv_cache_host": kv_host,
        "compute_host": compute_host,
    }
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=tuple(g.index for g in layout.gpus),
        vram=vram,
        ram=weights_host + kv_host + compute_host,
        offload_layers=layout.offload_layers,
        total_layers=estimate.total_layers,
        tensor_split=layout.tensor_split(),
        terms=terms,
        note=note,
    )


def whole_gpu_candidate(estimate: ResourceEstimate, worker: WorkerSnapshot, gpu: GPUSnapshot) -> Candidate:
    """The whole model on one GPU (every layer), its input embedding in host memory."""
    need = estimate.full_gpu_bytes + worker.gpu_overhead
    weights_gpu = estimate.weights_bytes - estimate.host_weights_bytes
    terms = {
        "weights_gpu": weights_gpu,
        "kv_cache_gpu": estimate.kv_cache_bytes,
        "compute_gpu": estimate.compute_bytes,
        "runtime_overhead_gpu": worker.gpu_overhead,
        "weights_host": estimate.host_weights_bytes,
        "kv_cache_host": 0,
        "compute_host": 0,
    }
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=(gpu.index,),
        vram={gpu.index: need},
        ram=estimate.host_weights_bytes,
        offload_layers=estimate.total_layers,
        total_layers=estimate.total_layers,
        terms=terms,
    )


def single_gpu_candidates(estimate: ResourceEstimate, worker: WorkerSnapshot) -> list[Candidate]:
    """One candidate per GPU that can hold the whole estimate on its own."""
    need = estimate.full_gpu_bytes + worker.gpu_overhead
    return [whole_gpu_candidate(estimate, worker, gpu) for gpu in worker.gpus_by_index if gpu_free(gpu) >= need]


def cpu_candidate(
    estimate: ResourceEstimate, worker: WorkerSnapshot, what: str, note: str = ""
) -> tuple[Candidate | None, str]:
    """Everything in system RAM, or (None, reason) when RAM is short; `what` prefixes the reason."""
    need = estimate.total_bytes
    if ram_free(worker) < need:
        return None, ram_shortfall_text(what, need, worker)
    terms = {
        "weights_host": estimate.weights_bytes,
        "kv_cache_host": estimate.kv_cache_bytes,
        "compute_host": estimate.compute_bytes,
    }
    candidate = Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=(),
        vram={},
        ram=need,
        offload_layers=0,
        total_layers=estimate.total_layers,
        terms=terms,
        note=note,
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
