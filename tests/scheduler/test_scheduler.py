"""End-to-end schedule(): tiers, strategies, tie-breaks, refusals, apply_claim, GGUF integration."""

from pathlib import Path

import pytest

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.scheduler import apply_claim, placement_tier, schedule
from gpustack.scheduler.types import Candidate, Refusal, WorkerSnapshot

from ._gguf import write_tiny_gguf
from ._snapshots import estimate, gib, gpu, model, worker


def _pick(result: Candidate | Refusal) -> Candidate:
    assert isinstance(result, Candidate), getattr(result, "message", result)
    return result


def test_spread_and_binpack_choose_different_workers() -> None:
    workers = [worker(1, "busy", [gpu(0, 24, claimed=12)]), worker(2, "idle", [gpu(0, 24)])]
    assert _pick(schedule(model(placement_strategy="spread"), estimate(), workers)).worker_name == "idle"
    assert _pick(schedule(model(placement_strategy="binpack"), estimate(), workers)).worker_name == "busy"


def test_spread_avoids_workers_with_existing_replicas() -> None:
    workers = [worker(1, "a", [gpu(0, 24)]), worker(2, "b", [gpu(0, 24, claimed=4)])]
    first = _pick(schedule(model(), estimate(), workers))
    assert first.worker_name == "a"
    second = _pick(schedule(model(), estimate(), workers, model_instances_per_worker={1: 1}))
    assert second.worker_name == "b"


def test_full_gpu_beats_partial_offload_and_cpu_whatever_the_strategy() -> None:
    workers = [
        worker(1, "cpu", ram=512),
        worker(2, "partial", [gpu(0, 4)], ram=512),
        worker(3, "gpu", [gpu(0, 10, claimed=0.25)]),
    ]
    for strategy in ("spread", "binpack"):
        chosen = _pick(schedule(model(placement_strategy=strategy), estimate(), workers))
        assert (chosen.worker_name, placement_tier(chosen)) == ("gpu", 0)
    chosen = _pick(schedule(model(), estimate(), workers[:2]))
    assert (chosen.worker_name, placement_tier(chosen)) == ("partial", 1)
    chosen = _pick(schedule(model(), estimate(), workers[:1]))
    assert (chosen.worker_name, placement_tier(chosen)) == ("cpu", 2)


def test_deterministic_tie_break_by_worker_name_then_gpu_index() -> None:
    twins = [worker(2, "b", [gpu(1, 24), gpu(0, 24)]), worker(1, "a", [gpu(1, 24), gpu(0, 24)])]
    chosen = _pick(schedule(model(), estimate(), twins))
    assert (chosen.worker_name, chosen.gpu_indexes) == ("a", (0,))
    assert _pick(schedule(model(), estimate(), list(reversed(twins)))) == chosen


def test_file_locality_breaks_ties_before_the_worker_name() -> None:
    twins = [worker(1, "a", [gpu(0, 24)]), worker(2, "b", [gpu(0, 24)])]
    assert _pick(schedule(model(), estimate(), twins)).worker_name == "a"
    assert _pick(schedule(model(workers_with_files=frozenset({2})), estimate(), twins)).worker_name == "b"
    # locality never beats a better score: an emptier worker still wins under spread
    uneven = [worker(1, "a", [gpu(0, 24)]), worker(2, "b", [gpu(0, 24, claimed=8)])]
    assert _pick(schedule(model(workers_with_files=frozenset({2})), estimate(), uneven)).worker_name == "a"


def test_refusal_collects_filter_and_selector_reasons() -> None:
    workers = [
        worker(1, "down", [gpu(0, 80)], state="not_ready"),
        worker(2, "small", [gpu(0, 4, name="RTX 3050")], labels={"tier": "prod"}),
        worker(3, "other", [gpu(0, 80)], labels={"tier": "dev"}),
    ]
    m = model(cpu_offloading=False, worker_selector={"tier": "prod"}, distributed_inference_across_workers=True)
    result = schedule(m, estimate(), workers)
    assert isinstance(result, Refusal)
    assert result.reasons == {
        "down": "worker is not_ready",
        "other": "label selector wants tier=prod, worker has tier=dev",
        "small": ("needs 9.0 GiB VRAM, largest free GPU has 4.0 GiB (GPU 0 RTX 3050); CPU offloading is disabled"),
        "*": "across workers: 1 usable worker(s) with GPUs, distributed llama-box needs two",
    }
    # shortest reason first, whatever the worker names
    assert result.message.startswith("No worker can take this instance. down: worker is not_ready; other: label")
    assert result.message.endswith("small: needs 9.0 GiB VRAM, largest free GPU has 4.0 GiB (GPU 0 RTX 3050); "
                                   "CPU offloading is disabled")  # fmt: skip


def test_no_workers_gives_empty_refusal() -> None:
    result = schedule(model(), estimate(), [])
    assert isinstance(result, Refusal)
    assert result.message == "No workers available."


def test_gpu_selector_forces_the_listed_gpu() -> None:
    workers = [worker(1, "w1", [gpu(0, 80), gpu(1, 24)]), worker(2, "w2", [gpu(0, 80)])]
    chosen = _pick(schedule(model(gpu_selector=("w1:1",)), estimate(), workers))
    assert (chosen.worker_name, chosen.gpu_indexes, chosen.vram) == ("w1", (1,), {1: gib(9)})
    refused = schedule(model(gpu_selector=("w1:7",)), estimate(), workers)
    assert isinstance(refused, Refusal)
    assert refused.reasons["w1"] == "gpu_selector wants GPU 7, worker has GPUs 0, 1"


def test_apply_claim_prevents_double_booking() -> None:
    workers: tuple[WorkerSnapshot, ...] = (worker(1, "a", [gpu(0, 16)]), worker(2, "b", [gpu(0, 16)]))
    m = model(placement_strategy="binpack", cpu_offloading=False)
    first = _pick(schedule(m, estimate(), workers))
    workers = apply_claim(workers, first)
    second = _pick(schedule(m, estimate(), workers))
    workers = apply_claim(workers, second)
    third = schedule(m, estimate(), workers)
    # binpack prefers the fuller worker "a", but after the first claim it only has 7 GiB free
    assert (first.worker_name, second.worker_name) == ("a", "b")
    assert isinstance(third, Refusal)
    assert "largest free GPU has 7.0 GiB" in third.reasons["a"]
    assert [w.gpus[0].memory_claimed for w in workers] == [gib(9), gib(9)]
    # without apply_claim binpack would book "a" twice
    fresh = (worker(1, "a", [gpu(0, 16)]), worker(2, "b", [gpu(0, 16)]))
    assert [_pick(schedule(m, estimate(), fresh)).worker_name for _ in range(2)] == ["a", "a"]


def test_apply_claim_adds_vram_and_ram_without_mutating_inputs() -> None:
    original = (worker(1, "a", [gpu(0, 4), gpu(1, 4)], ram=64, ram_claimed=2), worker(2, "b"))
    claim = Candidate(worker_id=1, worker_name="a", gpu_indexes=(1,), vram={1: gib(3)}, ram=gib(6))
    updated = apply_claim(original, claim)
    assert updated[0].gpus[0].memory_claimed == 0
    assert updated[0].gpus[1].memory_claimed == gib(3)
    assert updated[0].memory_claimed == gib(8)
    assert updated[1] is original[1]
    assert original[0].gpus[1].memory_claimed == 0 and original[0].memory_claimed == gib(2)


def test_apply_claim_rejects_unknown_worker_or_gpu() -> None:
    workers = (worker(1, "a", [gpu(0, 4)]),)
    with pytest.raises(ValueError, match="'ghost' \\(id 9\\) is not in the snapshot"):
        apply_claim(workers, Candidate(worker_id=9, worker_name="ghost", gpu_indexes=(), vram={}, ram=1))
    with pytest.raises(ValueError, match="worker 'a' has no GPU 3"):
        apply_claim(workers, Candidate(worker_id=1, worker_name="a", gpu_indexes=(3,), vram={3: 1}, ram=0))


def test_tiny_gguf_estimate_schedules_on_the_smallest_fitting_gpu_with_binpack(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "tiny.gguf"))
    need = est.full_gpu_bytes  # about 22 MiB (no runtime overhead on these workers)
    workers = [worker(1, "a", [gpu(0, 1), gpu(1, 0.025, name="tiny")]), worker(2, "b", [gpu(0, 0.02)])]
    chosen = _pick(schedule(model(placement_strategy="binpack"), est, workers))
    assert (chosen.worker_name, chosen.gpu_indexes, chosen.vram) == ("a", (1,), {1: need})
