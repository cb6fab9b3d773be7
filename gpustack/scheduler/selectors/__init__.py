"""Per-backend candidate selectors and the registry that picks one by model.backend."""

from collections.abc import Callable, Mapping, Sequence

from gpustack.scheduler.selectors.common import Selection
from gpustack.scheduler.selectors.fraction import select_fraction
from gpustack.scheduler.selectors.generic import select_generic
from gpustack.scheduler.selectors.gguf import select_gguf
from gpustack.scheduler.selectors.voxbox import select_voxbox
from gpustack.scheduler.types import ModelSnapshot, ResourceEstimate, WorkerSnapshot

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

DISTRIBUTED_UNSUPPORTED = "distributed inference across workers is not supported yet"


def selector_for(backend: str) -> Selector:
    """The selector registered for `backend`, or the generic one."""
    return SELECTORS.get(backend, select_generic)


def select_candidates(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """Run the backend's selector; with no candidate and distributed inference asked for, say why."""
    candidates, reasons = selector_for(model.backend)(model, estimate, workers)
    if not candidates and workers and model.distributed_inference_across_workers:
        reasons = {**reasons, "*": DISTRIBUTED_UNSUPPORTED}
    return candidates, reasons


__all__ = [
    "DISTRIBUTED_UNSUPPORTED",
    "SELECTORS",
    "Selection",
    "Selector",
    "select_candidates",
    "selector_for",
]
