"""Worker filters: readiness, label selector, manual GPU selector (pure functions)."""

import dataclasses
from collections.abc import Callable, Sequence

from gpustack.scheduler.types import ModelSnapshot, WorkerSnapshot

FilterResult = tuple[list[WorkerSnapshot], dict[str, str]]
Filter = Callable[[ModelSnapshot, Sequence[WorkerSnapshot]], FilterResult]

READY = "ready"


def filter_ready(model: ModelSnapshot, workers: Sequence[WorkerSnapshot]) -> FilterResult:
    """Keep workers in the 'ready' state and out of maintenance mode."""
    kept: list[WorkerSnapshot] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        if worker.state != READY:
            reasons[worker.name] = f"worker is {worker.state}"
        elif worker.maintenance is not None:
            reasons[worker.name] = "worker is in maintenance" + (
                f" ({worker.maintenance})" if worker.maintenance else ""
            )
        else:
            kept.append(worker)
    return kept, reasons


def filter_labels(model: ModelSnapshot, workers: Sequence[WorkerSnapshot]) -> FilterResult:
    """Keep workers whose labels contain every `key=value` of the model's worker_selector."""
    kept: list[WorkerSnapshot] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        why = _label_mismatch(model, worker)
        if why is None:
            kept.append(worker)
        else:
            reasons[worker.name] = why
    return kept, reasons


def _label_mismatch(model: ModelSnapshot, worker: WorkerSnapshot) -> str | None:
    for key, wanted in sorted(model.worker_selector.items()):
        if key not in worker.labels:
            return f"label selector wants {key}={wanted}, worker has no label '{key}'"
        if worker.labels[key] != wanted:
            return f"label selector wants {key}={wanted}, worker has {key}={worker.labels[key]}"
    return None


def parse_gpu_selector(entries: Sequence[str]) -> dict[str, set[int]]:
    """'<worker-name>:<gpu-index>' entries -> {worker name: {indexes}}; ValueError on bad entries."""
    wanted: dict[str, set[int]] = {}
    for entry in entries:
        name, sep, index = entry.rpartition(":")
        if not sep or not name or not index.isdigit():
            raise ValueError(f"gpu_selector entry '{entry}' must look like '<worker-name>:<gpu-index>'")
        wanted.setdefault(name, set()).add(int(index))
    return wanted


def filter_gpu_selector(model: ModelSnapshot, workers: Sequence[WorkerSnapshot]) -> FilterResult:
    """With a manual GPU selector, keep only the named workers, reduced to the listed GPUs.

    A worker missing any listed GPU index is refused (the user asked for those exact GPUs).
    """
    if not model.gpu_selector:
        return list(workers), {}
    wanted = parse_gpu_selector(model.gpu_selector)
    kept: list[WorkerSnapshot] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        indexes = wanted.get(worker.name)
        if indexes is None:
            reasons[worker.name] = "not selected by the model's gpu_selector"
            continue
        have = {gpu.index for gpu in worker.gpus}
        missing = sorted(indexes - have)
        if missing:
            had = f"GPUs {', '.join(map(str, sorted(have)))}" if have else "no GPUs"
            reasons[worker.name] = f"gpu_selector wants GPU {', '.join(map(str, missing))}, worker has {had}"
            continue
        gpus = tuple(gpu for gpu in worker.gpus if gpu.index in indexes)
        kept.append(dataclasses.replace(worker, gpus=gpus))
    return kept, reasons


DEFAULT_FILTERS: tuple[Filter, ...] = (filter_ready, filter_labels, filter_gpu_selector)


def run_filters(
    model: ModelSnapshot,
    workers: Sequence[WorkerSnapshot],
    filters: Sequence[Filter] = DEFAULT_FILTERS,
) -> FilterResult:
    """Apply filters in order; a worker's reason is the first filter that refused it."""
    kept = list(workers)
    reasons: dict[str, str] = {}
    for check in filters:
        kept, refused = check(model, kept)
        reasons.update(refused)
    return kept, reasons
