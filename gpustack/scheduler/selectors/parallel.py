"""Parallelism of whole-card engines: tp × pp × dp from backend parameters, and what the TP size must divide."""

from collections.abc import Sequence
from dataclasses import dataclass

from gpustack.scheduler.estimate.params import int_flag
from gpustack.scheduler.types import ModelSnapshot, ResourceEstimate

_VLLM_FLAGS = (
    ("--tensor-parallel-size", "-tp"),
    ("--pipeline-parallel-size", "-pp"),
    ("--data-parallel-size", "-dp"),
)
PARALLEL_FLAGS: dict[str, tuple[tuple[str, ...], ...]] = {
    "vllm": _VLLM_FLAGS,
    "mindie": _VLLM_FLAGS,
    "sglang": (
        ("--tp-size", "--tensor-parallel-size", "--tp"),
        ("--pp-size", "--pipeline-parallel-size", "--pp"),
        ("--dp-size", "--data-parallel-size", "--dp"),
    ),
}
_WHAT = ("tensor parallel size", "pipeline parallel size", "data parallel size")


@dataclass(frozen=True)
class Parallel:
    """The sizes the user gave (None: not given; the scheduler then picks TP from the GPU count)."""

    tp: int | None = None
    pp: int | None = None
    dp: int | None = None

    @property
    def gpus(self) -> int | None:
        """tp × pp × dp GPUs when any size was given (a missing one counts 1), else None."""
        if self.tp is None and self.pp is None and self.dp is None:
            return None
        return (self.tp or 1) * (self.pp or 1) * (self.dp or 1)

    def text(self) -> str:
        """'tp 2 × pp 1 × dp 1 = 2 GPUs' for reasons."""
        return f"tp {self.tp or 1} × pp {self.pp or 1} × dp {self.dp or 1} = {self.gpus} GPUs"

    def tp_for(self, gpus: int) -> int:
        """The TP size the engine will use on `gpus` GPUs: the given one, else what pp × dp leave of the count."""
        if self.tp is not None:
            return self.tp
        return max(1, gpus // ((self.pp or 1) * (self.dp or 1)))


def requested_parallel(model: ModelSnapshot) -> Parallel:
    """The parallel sizes in the model's backend parameters; ValueError when one is not a positive integer."""
    return parallel_sizes(model.backend, model.backend_parameters)


def parallel_sizes(backend: str, backend_parameters: Sequence[str]) -> Parallel:
    """tp, pp and dp as `backend` spells them in `backend_parameters` (none for other backends)."""
    flags = PARALLEL_FLAGS.get(backend)
    if flags is None:
        return Parallel()
    sizes = []
    for names, what in zip(flags, _WHAT, strict=True):
        size = int_flag(backend_parameters, names, what)
        if size is not None and size < 1:
            raise ValueError(f"{names[0]} must be a positive integer, got {size}")
        sizes.append(size)
    return Parallel(*sizes)


def tp_problem(estimate: ResourceEstimate, tp: int) -> str | None:
    """Why tensor parallelism of size `tp` cannot split the model, or None when it can (or `tp` is 1)."""
    if tp <= 1:
        return None
    for count, what in (
        (estimate.attention_heads, "attention heads"),
        (estimate.vision_heads, "vision attention heads"),
        (estimate.vocab_size, "vocabulary entries"),
    ):
        if count and count % tp:
            return f"TP {tp} does not divide the model's {count} {what}"
    return None


def selection_problem(backend: str, backend_parameters: Sequence[str], gpu_selector: Sequence[str]) -> str | None:
    """Why a manual GPU selection cannot match the parallel sizes of the backend parameters, or None."""
    wanted = parallel_sizes(backend, backend_parameters)
    count = len(set(gpu_selector))
    if not count or wanted.gpus is None or wanted.gpus == count:
        return None
    return (
        f"gpu_selector lists {count} GPUs but the backend parameters ask for {wanted.text()}; "
        f"select {wanted.gpus} GPUs or change the parallel sizes"
    )


def count_problem(estimate: ResourceEstimate, parallel: Parallel, gpus: int) -> str | None:
    """Why `gpus` GPUs cannot run the model with the requested parallelism, or None."""
    wanted = parallel.gpus
    if wanted is not None and wanted != gpus:
        return f"backend parameters ask for {parallel.text()}, not {gpus}"
    return tp_problem(estimate, parallel.tp_for(gpus))
