"""Per-backend candidate selectors and the registry that picks one by model.backend."""

from collections.abc import Callable, Mapping, Sequence

from gpustack.scheduler.selectors.common import Selection
from gpustack.scheduler.selectors.distributed import select_distributed, supports_distributed
from gpustack.scheduler.selectors.fraction import select_fraction
from gpustack.scheduler.selectors.generic import select_generic
from gpustack.scheduler.selectors.gguf import select_gguf
from gpustack.scheduler.selectors.voxbox import select_voxbox
from gpustack.scheduler.types import Candidate, ModelSnapshot, ResourceEstimate, WorkerSnapshot, is_partial

Selector = Callable[[ModelSnapshot, ResourceEstimate, Sequence[WorkerSnapshot]], Selection]

SELECTORS: Mapping[str, Selector] = {
    "llama-box": select_gguf,
    "custom": select_gguf,
    "vllm": select_fraction,
    "sglang": select_fraction,
    "mindie": select_fraction,
    "vox-box": select_voxbox,
}
"""Backend name -> selector; any other backend uses `select_generic`."""

ACROSS_WORKERS_DISABLED = (
    "fits across {n} workers ({names}); enable distributed inference across workers on the model to place it there"
)


def selector_for(backend: str) -> Selector:
    """The selector registered for `backend`, or the generic one."""
    return SELECTORS.get(backend, select_generic)


def _on_gpus(candidate: Candidate) -> bool:
    return bool(candidate.gpu_indexes) and not is_partial(candidate)


def select_candidates(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """The strategy order: the backend's selector (manual selection, one GPU, several GPUs of one worker),
    then several workers when no single worker holds the model on its GPUs, then its partial offload / CPU.

    Distributed placements are tried only when the model allows them; when it does not and nothing else
    fits, the refusal says how many workers would hold it.
    """
    candidates, reasons = selector_for(model.backend)(model, estimate, workers)
    if not workers or any(_on_gpus(c) for c in candidates) or not supports_distributed(model.backend):
        return candidates, reasons
    if model.distributed_inference_across_workers:
        spread, why = select_distributed(model, estimate, workers)
        return (spread, reasons) if spread else (candidates, {**reasons, **why})
    if not candidates:
        spread, _ = select_distributed(model, estimate, workers)
        if spread:
            names = ", ".join(c.worker_name for c in (spread[0], *spread[0].subordinates))
            n = 1 + len(spread[0].subordinates)
            reasons = {**reasons, "*": ACROSS_WORKERS_DISABLED.format(n=n, names=names)}
    return candidates, reasons


__all__ = [
    "ACROSS_WORKERS_DISABLED",
    "SELECTORS",
    "Selection",
    "Selector",
    "select_candidates",
    "selector_for",
]
