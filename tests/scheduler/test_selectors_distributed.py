"""Distributed placements: several workers only when one does not fit, same GPU count, TP divides heads,
one Ray cluster per worker, llama-box RPC layer split, and the refusal that says it would fit across workers."""

import dataclasses

import pytest

from gpustack.scheduler.estimate.safetensors import estimate_model_dir
from gpustack.scheduler.scheduler import apply_claim, schedule
from gpustack.scheduler.selectors import select_candidates
from gpustack.scheduler.types import Candidate, Refusal, ResourceEstimate, WorkerSnapshot

from ._safetensors import HFShape, write_model_dir
from ._snapshots import estimate, gib, gpu, model, worker

LLAMA3_70B = HFShape(hidden=8192, layers=80, heads=64, kv_heads=8, ffn=28672, vocab=128256, max_context=8192)
LLAMA31_405B = HFShape(hidden=16384, layers=126, heads=128, kv_heads=8, ffn=53248, vocab=128256, max_context=8192)
H100 = 80
CLAIM = int(0.9 * gib(H100))


@pytest.fixture(scope="module")
def estimates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ResourceEstimate]:
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for name, shape in {"70b": LLAMA3_70B, "405b": LLAMA31_405B}.items():
        write_model_dir(root / name, shape, shards=4)
        out[name] = estimate_model_dir(root / name, category="llm")
    return out


def h100_worker(wid: int, name: str, busy: int = 0) -> WorkerSnapshot:
    """Eight H100s; the first `busy` ones are taken by other instances (half of each claimed)."""
    gpus = [gpu(i, H100, claimed=H100 / 2 if i < busy else 0, name="H100 80GB") for i in range(8)]
    return worker(wid, name, gpus, ram=1024)


def _pick(result: Candidate | Refusal) -> Candidate:
    assert isinstance(result, Candidate), getattr(result, "message", result)
    return result


def vllm(**overrides: object):  # type: ignore[no-untyped-def]
    return model(backend="vllm", **overrides)


def test_70b_fitting_only_across_two_workers_is_placed_on_both_when_allowed(
    estimates: dict[str, ResourceEstimate],
) -> None:
    est = estimates["70b"]
    assert 2 * CLAIM < est.full_gpu_bytes <= 4 * CLAIM  # two free H100s per worker do not hold it, four do
    cluster = [h100_worker(1, "h100-a", busy=6), h100_worker(2, "h100-b", busy=6)]
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), est, cluster))
    assert (chosen.worker_name, chosen.gpu_indexes) == ("h100-a", (6, 7))
    assert chosen.vram == {6: CLAIM, 7: CLAIM} and chosen.vram_utilization == 0.9
    (sub,) = chosen.subordinates
    assert (sub.worker_id, sub.worker_name, sub.gpu_indexes, sub.vram) == (2, "h100-b", (6, 7), {6: CLAIM, 7: CLAIM})
    assert chosen.ray_cluster


def test_the_same_model_is_refused_with_the_reason_when_not_allowed(estimates: dict[str, ResourceEstimate]) -> None:
    cluster = [h100_worker(1, "h100-a", busy=6), h100_worker(2, "h100-b", busy=6)]
    result = schedule(vllm(distributed_inference_across_workers=False), estimates["70b"], cluster)
    assert isinstance(result, Refusal)
    assert result.reasons["*"].startswith("fits across 2 workers (h100-a, h100-b); enable distributed inference")
    assert "its 2 qualifying GPUs hold" in result.reasons["h100-a"]  # each worker still says why it alone fails


def test_a_model_that_fits_one_worker_never_spans_two(estimates: dict[str, ResourceEstimate]) -> None:
    cluster = [h100_worker(1, "h100-a"), h100_worker(2, "h100-b")]
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), estimates["70b"], cluster))
    assert chosen.subordinates == () and len(chosen.gpu_indexes) == 4


def test_405b_on_2x8_h100_runs_tp8_on_each_worker(estimates: dict[str, ResourceEstimate]) -> None:
    est = estimates["405b"]
    assert 8 * CLAIM < est.full_gpu_bytes <= 16 * CLAIM
    cluster = [h100_worker(1, "h100-a"), h100_worker(2, "h100-b")]
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), est, cluster))
    assert chosen.gpu_indexes == tuple(range(8))
    assert [s.gpu_indexes for s in chosen.subordinates] == [tuple(range(8))]
    assert sum(chosen.vram.values()) + sum(sum(s.vram.values()) for s in chosen.subordinates) == 16 * CLAIM


def test_only_workers_with_the_same_number_of_qualifying_gpus_combine() -> None:
    need = ResourceEstimate(weights_bytes=gib(250), attention_heads=64)  # > 3 × 72 GiB, <= 4 × 72 GiB
    three = h100_worker(1, "three", busy=5)  # 3 qualifying GPUs: 216 GiB
    two_a, two_b = h100_worker(2, "two-a", busy=6), h100_worker(3, "two-b", busy=6)  # 2 each: 144 GiB
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), need, [three, two_a, two_b]))
    assert {chosen.worker_name, *(s.worker_name for s in chosen.subordinates)} == {"two-a", "two-b"}
    result = schedule(vllm(distributed_inference_across_workers=True), need, [three, two_a])
    assert isinstance(result, Refusal)  # 3 + 2 GPUs would hold it, but unequal workers do not combine
    assert "1 workers with 2 qualifying GPUs hold 144.0 GiB" in result.reasons["*"]


def test_tensor_parallel_size_must_divide_the_attention_heads() -> None:
    need = ResourceEstimate(weights_bytes=gib(300), attention_heads=64)
    cluster = [h100_worker(1, "a", busy=5), h100_worker(2, "b", busy=5)]  # 3 qualifying GPUs each
    result = schedule(vllm(distributed_inference_across_workers=True), need, cluster)
    assert isinstance(result, Refusal)
    assert "tensor parallel size 3 (GPUs per worker) does not divide 64 attention heads" in result.reasons["*"]
    ok = dataclasses.replace(need, attention_heads=48)
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), ok, cluster))
    assert len(chosen.gpu_indexes) == 3 and len(chosen.subordinates) == 1


def test_fewest_workers_win_and_the_main_worker_has_the_most_room() -> None:
    need = ResourceEstimate(weights_bytes=gib(250), attention_heads=64)
    cluster = [h100_worker(i, f"w{i}", busy=7) for i in range(1, 5)] + [h100_worker(9, "w9", busy=6)]
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), need, cluster))
    assert len(chosen.subordinates) == 3  # one qualifying GPU (72 GiB) each: four workers
    cluster[4] = h100_worker(9, "w9", busy=6)
    two = [h100_worker(5, "x5", busy=6), h100_worker(6, "x6", busy=6)]
    chosen = _pick(schedule(vllm(distributed_inference_across_workers=True), need, cluster + two))
    assert len(chosen.subordinates) == 1 and chosen.worker_name in {"w9", "x5", "x6"}


def test_a_worker_joins_one_distributed_vllm_instance_at_a_time() -> None:
    need = ResourceEstimate(weights_bytes=gib(400), attention_heads=64)  # two workers of 4 free H100s
    free = [h100_worker(i, f"w{i}", busy=4) for i in range(1, 4)]
    first = _pick(schedule(vllm(distributed_inference_across_workers=True), need, free))
    members = {first.worker_id, *(s.worker_id for s in first.subordinates)}
    assert members == {1, 2}
    after = apply_claim(free, first)
    assert [w.in_ray_cluster for w in after] == [True, True, False]
    # w1 and w2 still have four free GPUs each (their other four were busy): memory alone would allow them
    in_ray = [dataclasses.replace(w, in_ray_cluster=True) for w in free[:2]] + [free[2]]
    result = schedule(vllm(distributed_inference_across_workers=True), need, in_ray)
    assert isinstance(result, Refusal)
    assert (
        "already in a distributed vLLM instance (a worker joins one Ray cluster at a time): w1, w2"
        in result.reasons["*"]
    )
    sglang = schedule(model(backend="sglang", distributed_inference_across_workers=True), need, in_ray)
    assert isinstance(sglang, Candidate)  # SGLang does not use Ray: no such limit


def test_apply_claim_books_every_part_on_its_worker() -> None:
    need = ResourceEstimate(weights_bytes=gib(250), attention_heads=64)
    cluster = [h100_worker(1, "a", busy=6), h100_worker(2, "b", busy=6)]
    chosen = _pick(schedule(model(backend="sglang", distributed_inference_across_workers=True), need, cluster))
    after = apply_claim(cluster, chosen)
    for w in after:
        assert [g.memory_claimed for g in w.gpus][6:] == [CLAIM, CLAIM]
        assert not w.in_ray_cluster
    with pytest.raises(ValueError, match="is not in the snapshot"):
        apply_claim(cluster[:1], chosen)


# llama-box (estimate(): 8 blocks of 1 GiB, 0.5 GiB output layer, 0.5 GiB compute, 0.5 GiB host embedding)


def test_llama_box_splits_layers_over_rpc_servers_when_allowed() -> None:
    a, b = worker(1, "a", [gpu(0, 6)]), worker(2, "b", [gpu(0, 5), gpu(1, 2)])
    chosen = _pick(schedule(model(distributed_inference_across_workers=True), estimate(), [a, b]))
    (sub,) = chosen.subordinates
    # device order: b's GPUs (RPC servers) first, then a's; the output layer on a's GPU
    assert chosen.tensor_split[-1] >= 1 and sum(chosen.tensor_split) == 9
    assert sub.worker_name == "b" and sub.gpu_indexes == (0, 1)
    blocks_on_b = sum(chosen.tensor_split[:2])
    assert sub.vram == {0: gib(chosen.tensor_split[0] + 0.5), 1: gib(chosen.tensor_split[1] + 0.5)}
    assert chosen.vram == {0: gib(8 - blocks_on_b + 0.5 + 0.5)}  # its blocks, output layer, compute
    assert chosen.ram == gib(0.5) and chosen.offload_layers == chosen.total_layers == 9
    assert chosen.terms["weights_gpu"] + chosen.terms["kv_cache_gpu"] + chosen.terms["compute_gpu"] == (
        sum(chosen.vram.values()) + sum(sub.vram.values())
    )


def test_llama_box_prefers_two_workers_to_partial_offload_only_when_allowed() -> None:
    a, b = worker(1, "a", [gpu(0, 6)]), worker(2, "b", [gpu(0, 6)])
    partial = _pick(schedule(model(distributed_inference_across_workers=False), estimate(), [a, b]))
    assert partial.subordinates == () and partial.offload_layers is not None and partial.offload_layers < 9
    spread = _pick(schedule(model(distributed_inference_across_workers=True), estimate(), [a, b]))
    assert len(spread.subordinates) == 1
    refused = schedule(model(cpu_offloading=False), estimate(), [a, b])
    assert isinstance(refused, Refusal)
    assert refused.reasons["*"].startswith("fits across 2 workers (a, b)")


@pytest.mark.parametrize("backend", ["vox-box", "mindie", "custom"])
def test_backends_without_a_distributed_mode_keep_their_reasons(backend: str) -> None:
    """MindIE waits for NPU device IPs (its rank table needs them); vox-box and custom have no such mode."""
    two = [worker(1, "a", [gpu(0, 4)]), worker(2, "b", [gpu(0, 4)])]
    candidates, reasons = select_candidates(
        model(backend=backend, distributed_inference_across_workers=True, cpu_offloading=False), estimate(), two
    )
    assert candidates == [] and "*" not in reasons
    why = "MindIE runs only on Ascend NPUs" if backend == "mindie" else "needs"
    assert why in reasons["a"] and why in reasons["b"]
