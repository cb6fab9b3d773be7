"""Scorers: spread vs binpack, replica spreading, score bounds."""

import pytest

from gpustack.scheduler.scorers import load_after, score_binpack, score_candidates, score_spread
from gpustack.scheduler.selectors import select_candidates
from gpustack.scheduler.types import Candidate

from ._snapshots import estimate, gib, gpu, model, worker

BUSY = worker(1, "busy", [gpu(0, 24, claimed=12)])
IDLE = worker(2, "idle", [gpu(0, 24)])


def _candidate(w_id: int, name: str, vram: dict[int, int], ram: int = 0) -> Candidate:
    return Candidate(worker_id=w_id, worker_name=name, gpu_indexes=tuple(sorted(vram)), vram=vram, ram=ram)


def test_load_after_counts_existing_and_new_claims() -> None:
    c = _candidate(1, "busy", {0: gib(6)})
    assert load_after(c, BUSY) == pytest.approx(18 / 24)
    cpu = _candidate(3, "cpu", {}, ram=gib(16))
    assert load_after(cpu, worker(3, "cpu", ram=64, ram_claimed=16)) == pytest.approx(0.5)


def test_spread_prefers_idle_and_binpack_prefers_busy() -> None:
    busy_c = _candidate(1, "busy", {0: gib(6)})
    idle_c = _candidate(2, "idle", {0: gib(6)})
    assert score_spread(idle_c, IDLE) > score_spread(busy_c, BUSY)
    assert score_binpack(busy_c, BUSY) > score_binpack(idle_c, IDLE)


def test_spread_puts_replicas_on_different_workers_first() -> None:
    busy_c = _candidate(1, "busy", {0: gib(6)})
    idle_c = _candidate(2, "idle", {0: gib(6)})
    # the idle worker already runs a replica of this model: the busy one without a replica wins
    assert score_spread(busy_c, BUSY, 0) > score_spread(idle_c, IDLE, 1)
    # and among workers with the same replica count, load decides
    assert score_spread(idle_c, IDLE, 1) > score_spread(busy_c, BUSY, 1)


@pytest.mark.parametrize("strategy", ["spread", "binpack"])
def test_scores_stay_within_0_and_100(strategy: str) -> None:
    workers = [
        worker(1, "empty", [gpu(0, 80)]),
        worker(2, "full", [gpu(0, 24, claimed=14, used=14)]),
        worker(3, "cpu", ram=128, ram_claimed=100),
        worker(4, "partial", [gpu(0, 4)], ram=64),
    ]
    m = model(placement_strategy=strategy)
    candidates, _ = select_candidates(m, estimate(), workers)
    assert {c.worker_name for c in candidates} == {"empty", "full", "cpu", "partial"}
    scored = score_candidates(m, candidates, workers, {1: 3})
    assert all(0.0 <= c.score <= 100.0 for c in scored)
    assert len({c.score for c in scored}) == len(scored)  # distinguishes the placements


def test_score_candidates_keeps_placement_and_sets_score() -> None:
    candidates = [_candidate(1, "busy", {0: gib(6)}), _candidate(2, "idle", {0: gib(6)})]
    scored = score_candidates(model(placement_strategy="binpack"), candidates, [BUSY, IDLE])
    assert [(c.worker_name, c.vram) for c in scored] == [(c.worker_name, c.vram) for c in candidates]
    assert scored[0].score == pytest.approx(100 * 18 / 24)
    assert scored[1].score == pytest.approx(100 * 6 / 24)
