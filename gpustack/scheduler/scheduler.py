"""The pure scheduling pipeline: filters -> selectors -> scorers -> one Candidate or a Refusal."""

import dataclasses
from collections.abc import Mapping, Sequence

from gpustack.scheduler.filters import run_filters
from gpustack.scheduler.scorers import NO_INSTANCES, candidate_scores
from gpustack.scheduler.selectors import select_candidates
from gpustack.scheduler.types import Candidate, ModelSnapshot, Refusal, ResourceEstimate, WorkerSnapshot, is_partial

TIER_FULL_GPU = 0
TIER_PARTIAL_OFFLOAD = 1
TIER_CPU = 2


def schedule(
    model: ModelSnapshot,
    estimate: ResourceEstimate,
    workers: Sequence[WorkerSnapshot],
    *,
    model_instances_per_worker: Mapping[int, int] = NO_INSTANCES,
) -> Candidate | Refusal:
    """Pick the best placement for one instance of `model`, or explain per worker why none fits.

    Placements entirely on GPUs beat partial offload, which beats CPU-only, whatever the scores;
    within a tier the highest score wins, ties broken by file locality (a worker that already holds the
    model's files), then worker name and GPU indexes.
    """
    kept, reasons = run_filters(model, workers)
    candidates, refused = select_candidates(model, estimate, kept)
    if not candidates:
        return Refusal(reasons={**reasons, **refused})
    scores = candidate_scores(model, candidates, kept, model_instances_per_worker)
    with_files = model.workers_with_files
    best = min(range(len(candidates)), key=lambda i: _rank(candidates[i], scores[i], with_files))
    return dataclasses.replace(candidates[best], score=scores[best])  # only the winner is copied


def placement_tier(candidate: Candidate) -> int:
    """0: all on GPUs, 1: GPUs plus RAM (partial offload), 2: RAM only."""
    if not candidate.gpu_indexes:
        return TIER_CPU
    return TIER_PARTIAL_OFFLOAD if is_partial(candidate) else TIER_FULL_GPU


def _rank(
    candidate: Candidate, score: float, with_files: frozenset[int]
) -> tuple[int, float, bool, str, tuple[int, ...]]:
    """Tier, then score; among equals a worker that already has the model's files, then by name."""
    has_files = candidate.worker_id in with_files
    return (placement_tier(candidate), -score, not has_files, candidate.worker_name, candidate.gpu_indexes)


def apply_claim(workers: Sequence[WorkerSnapshot], candidate: Candidate) -> tuple[WorkerSnapshot, ...]:
    """New snapshots with the candidate's VRAM and RAM claims added to its worker (and to the workers of
    its subordinate parts, which also join its Ray cluster when it forms one).

    Lets a caller schedule several pending instances in one pass without double-booking.
    Raises ValueError if a part's worker or one of its GPUs is not in `workers`.
    """
    parts = {part.worker_id: part for part in (candidate, *candidate.subordinates)}
    known = {worker.id for worker in workers}
    for part in parts.values():
        if part.worker_id not in known:
            raise ValueError(f"worker {part.worker_name!r} (id {part.worker_id}) is not in the snapshot")
    out = []
    for worker in workers:
        if worker.id in parts:
            worker = _claim_on(worker, parts[worker.id])
            if candidate.ray_cluster:
                worker = dataclasses.replace(worker, in_ray_cluster=True)
        out.append(worker)
    return tuple(out)


def _claim_on(worker: WorkerSnapshot, candidate: Candidate) -> WorkerSnapshot:
    known = {gpu.index for gpu in worker.gpus}
    unknown = sorted(set(candidate.vram) - known)
    if unknown:
        raise ValueError(f"worker {worker.name!r} has no GPU {unknown[0]}")
    gpus = tuple(
        dataclasses.replace(gpu, memory_claimed=gpu.memory_claimed + candidate.vram[gpu.index])
        if gpu.index in candidate.vram
        else gpu
        for gpu in worker.gpus
    )
    return dataclasses.replace(worker, gpus=gpus, memory_claimed=worker.memory_claimed + candidate.ram)
