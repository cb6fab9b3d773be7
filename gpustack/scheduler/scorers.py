"""Placement scorers (spread, binpack): pure functions giving each candidate a score in [0, 100]."""

import dataclasses
from collections.abc import Mapping, Sequence
from types import MappingProxyType

from gpustack.scheduler.capacity import gpu_occupied
from gpustack.scheduler.types import Candidate, ModelSnapshot, WorkerSnapshot, is_partial

NO_INSTANCES: Mapping[int, int] = MappingProxyType({})
BINPACK = "binpack"


def load_after(candidate: Candidate, worker: WorkerSnapshot) -> float:
    """Fraction in [0, 1] of memory taken once the candidate is placed.

    Mean of (a) the devices the candidate uses (each GPU it claims on, RAM if layers run there) and
    (b) the whole worker (all GPUs' VRAM, or RAM for a CPU-only candidate). Taken = occupied per
    `capacity.gpu_occupied` (claims or reported usage, whichever is larger) plus the claim.
    """
    gpus = worker.gpu_by_index
    fractions = [
        _fraction(gpu_occupied(gpus[i]) + claim, gpus[i].memory_total)
        for i, claim in candidate.vram.items()
        if i in gpus
    ]
    ram_fraction = _fraction(worker.memory_claimed + candidate.ram, worker.memory_total)
    if candidate.ram > 0 and (not candidate.vram or is_partial(candidate)):
        fractions.append(ram_fraction)
    device = sum(fractions) / len(fractions) if fractions else 0.0
    if candidate.vram and worker.gpus:
        occupied, total = worker.gpu_memory
        whole = _fraction(occupied + sum(candidate.vram.values()), total)
    else:
        whole = ram_fraction
    return (device + whole) / 2


def score_spread(candidate: Candidate, worker: WorkerSnapshot, same_model_instances: int = 0) -> float:
    """Prefer workers with fewer replicas of this model, then the least loaded devices.

    score = 100 / (1 + replicas) * (0.5 + 0.5 * (1 - load)): a worker without a replica scores in
    [50, 100], with one in [25, 50], ... so replicas spread across workers before load matters.
    """
    free_part = 0.5 + 0.5 * (1.0 - load_after(candidate, worker))
    return 100.0 / (1 + max(0, same_model_instances)) * free_part


def score_binpack(candidate: Candidate, worker: WorkerSnapshot) -> float:
    """Prefer the most loaded devices that still fit: score = 100 * load after placement."""
    return 100.0 * load_after(candidate, worker)


def score_candidates(
    model: ModelSnapshot,
    candidates: Sequence[Candidate],
    workers: Sequence[WorkerSnapshot],
    instances_per_worker: Mapping[int, int] = NO_INSTANCES,
) -> list[Candidate]:
    """Copies of `candidates` with `score` set by the model's placement strategy (spread by default).

    `instances_per_worker` maps worker id -> this model's existing replicas there (spread only).
    """
    scores = candidate_scores(model, candidates, workers, instances_per_worker)
    return [dataclasses.replace(c, score=score) for c, score in zip(candidates, scores, strict=True)]


def candidate_scores(
    model: ModelSnapshot,
    candidates: Sequence[Candidate],
    workers: Sequence[WorkerSnapshot],
    instances_per_worker: Mapping[int, int] = NO_INSTANCES,
) -> list[float]:
    """The score of each candidate (rounded to 6 places), in order, without copying the candidates."""
    by_id = {worker.id: worker for worker in workers}
    binpack = model.placement_strategy == BINPACK
    scores: list[float] = []
    for candidate in candidates:
        worker = by_id[candidate.worker_id]
        if binpack:
            score = score_binpack(candidate, worker)
        else:
            score = score_spread(candidate, worker, instances_per_worker.get(candidate.worker_id, 0))
        scores.append(round(score, 6))
    return scores


def _fraction(part: int, whole: int) -> float:
    if whole <= 0:
        return 1.0
    return min(1.0, max(0.0, part / whole))
