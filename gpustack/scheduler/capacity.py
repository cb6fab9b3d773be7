"""Free-memory rules shared by selectors and scorers (one definition of 'free')."""

from gpustack.scheduler.types import GPUSnapshot, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes


def gpu_free(gpu: GPUSnapshot) -> int:
    """Free VRAM we may claim on a GPU.

    `memory_claimed` is what our instances reserved (possibly not loaded yet) and `memory_used` is
    what the device reports (our running engines plus foreign processes). Neither alone is safe, so
    free = min(usable - claimed, usable - used), never negative, where usable is the total less
    `memory_reserved` (the driver's own reserve and the worker's headroom).
    """
    return gpu.free


def gpu_occupied(gpu: GPUSnapshot) -> int:
    """Bytes of the GPU that count as taken (the complement of `gpu_free`)."""
    return gpu.memory_total - gpu_free(gpu)


def ram_free(worker: WorkerSnapshot) -> int:
    """Free system memory we may claim: total - claimed (RAM usage is not reported per process)."""
    return max(0, worker.memory_total - worker.memory_claimed)


def gpus_by_free(worker: WorkerSnapshot) -> list[GPUSnapshot]:
    """The worker's GPUs, most free VRAM first, then by index (deterministic)."""
    return list(worker.gpus_by_free)


def describe_gpu(gpu: GPUSnapshot) -> str:
    """Short label used in reasons, e.g. 'GPU 0 RTX 4090'."""
    return f"GPU {gpu.index} {gpu.name}".rstrip()


def largest_gpu_text(worker: WorkerSnapshot) -> str:
    """'largest free GPU has 3.9 GiB (GPU 0 RTX 4090)' for a worker with GPUs."""
    best = gpus_by_free(worker)[0]
    return f"largest free GPU has {fmt_bytes(gpu_free(best))} ({describe_gpu(best)})"


def ram_shortfall_text(what: str, need: int, worker: WorkerSnapshot) -> str:
    """'<what> needs 5.2 GiB RAM, only 3.0 GiB free'."""
    return f"{what} needs {fmt_bytes(need)} RAM, only {fmt_bytes(ram_free(worker))} free"
