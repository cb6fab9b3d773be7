"""VoxBox selector (text-to-speech, speech-to-text): the whole model on one NVIDIA GPU, else on the CPU.

VoxBox runs a model on a single NVIDIA GPU when one has room for it; when none has (or the worker has
other GPUs only) it runs the model on the CPU, which `cpu_offloading` allows (seed: "If GPU resources are
insufficient, it will automatically deploy the models to the CPU").
"""

import dataclasses
from collections.abc import Sequence

from gpustack.scheduler.capacity import largest_gpu_text
from gpustack.scheduler.selectors.common import Selection, cpu_candidate, per_worker, single_gpu_candidates
from gpustack.scheduler.types import Candidate, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes

VOXBOX_GPU_VENDORS = frozenset({"nvidia"})


def select_voxbox(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    return per_worker(workers, lambda worker: _worker_candidates(model, estimate, worker))


def _gpu_shortfall(estimate: ResourceEstimate, worker: WorkerSnapshot, usable: WorkerSnapshot) -> str:
    """Why no GPU of the worker takes the model ('' for a worker without GPUs)."""
    if not worker.gpus:
        return ""
    if not usable.gpus:
        kinds = ", ".join(sorted({f"{g.vendor} {g.name}".strip() for g in worker.gpus}))
        return f"VoxBox uses NVIDIA GPUs only, this worker has {kinds}"
    return f"needs {fmt_bytes(estimate.full_gpu_bytes + worker.gpu_overhead)} VRAM, {largest_gpu_text(usable)}"


def _worker_candidates(
    model: ModelSnapshot, estimate: ResourceEstimate, worker: WorkerSnapshot
) -> tuple[list[Candidate], str]:
    gpus = tuple(g for g in worker.gpus if g.vendor.lower() in VOXBOX_GPU_VENDORS)
    usable = dataclasses.replace(worker, gpus=gpus)
    single = single_gpu_candidates(estimate, usable)
    if single:
        return single, ""
    why_gpu = _gpu_shortfall(estimate, worker, usable)
    if not why_gpu:
        cpu, why = cpu_candidate(estimate, worker, "no GPUs and the model")
        return ([cpu] if cpu else []), why
    if not model.cpu_offloading:
        return [], f"{why_gpu}; CPU offloading is disabled"
    cpu, why = cpu_candidate(estimate, worker, f"{why_gpu}; on the CPU the model", note=f"placed on the CPU: {why_gpu}")
    return ([cpu] if cpu else []), why
