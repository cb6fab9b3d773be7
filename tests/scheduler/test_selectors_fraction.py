"""vLLM / SGLang placement: a GPU qualifies with 0.9 of it free, claims are that fraction, TP divides heads."""

import pytest

from gpustack.scheduler.estimate.safetensors import estimate_model_dir
from gpustack.scheduler.scheduler import apply_claim, schedule
from gpustack.scheduler.selectors import select_candidates, selector_for
from gpustack.scheduler.selectors.fraction import select_fraction
from gpustack.scheduler.types import Candidate, Refusal, ResourceEstimate

from ._safetensors import HFShape, write_model_dir
from ._snapshots import gib, gpu, model, worker

LLAMA3_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=8192)
QWEN_72B = HFShape(hidden=8192, layers=80, heads=64, kv_heads=8, ffn=29568, vocab=152064, max_context=32768)
BGE_M3 = HFShape(hidden=1024, layers=24, heads=16, kv_heads=16, ffn=4096, vocab=250002, max_context=8194,
                 dtype="F32", architecture="XLMRobertaModel")  # fmt: skip


@pytest.fixture(scope="module")
def estimates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ResourceEstimate]:
    root = tmp_path_factory.mktemp("hf")
    out = {}
    for name, shape in {"8b": LLAMA3_8B, "72b": QWEN_72B, "bge": BGE_M3}.items():
        write_model_dir(root / name, shape)
        out[name] = estimate_model_dir(root / name, category="embedding" if name == "bge" else "llm")
    return out


def _pick(result: Candidate | Refusal) -> Candidate:
    assert isinstance(result, Candidate), getattr(result, "message", result)
    return result


def test_vllm_and_sglang_use_the_fraction_rule() -> None:
    assert selector_for("vllm") is select_fraction and selector_for("sglang") is select_fraction


def test_8b_on_one_4090_claims_0_9_of_it(estimates: dict[str, ResourceEstimate]) -> None:
    chosen = _pick(schedule(model(backend="vllm"), estimates["8b"], [worker(1, "a", [gpu(0, 24)])]))
    assert chosen.gpu_indexes == (0,)
    assert chosen.vram == {0: int(0.9 * gib(24))}
    assert chosen.vram_utilization == 0.9


def test_a_gpu_without_0_9_free_does_not_qualify(estimates: dict[str, ResourceEstimate]) -> None:
    busy = worker(1, "busy", [gpu(0, 24, used=5)])
    result = schedule(model(backend="vllm"), estimates["8b"], [busy])
    assert isinstance(result, Refusal)
    assert "GPU 0 RTX 4090: 19.0 GiB allocatable < 0.9 × 24.0 GiB" in result.reasons["busy"]


def test_72b_on_8_a100_takes_four_gpus_since_three_do_not_divide_64_heads(
    estimates: dict[str, ResourceEstimate],
) -> None:
    est = estimates["72b"]
    assert 2 * 0.9 * gib(80) < est.full_gpu_bytes <= 3 * 0.9 * gib(80)  # three cards would hold it
    a100s = worker(1, "a100x8", [gpu(i, 80, name="A100 80GB") for i in range(8)])
    chosen = _pick(schedule(model(backend="vllm"), est, [a100s]))
    assert len(chosen.gpu_indexes) == 4
    assert set(chosen.vram.values()) == {int(0.9 * gib(80))}


def test_the_users_fraction_is_the_claim(estimates: dict[str, ResourceEstimate]) -> None:
    half = model(backend="vllm", backend_parameters=("--gpu-memory-utilization", "0.5"))
    two = worker(1, "two", [gpu(0, 24), gpu(1, 24)])
    chosen = _pick(schedule(half, estimates["8b"], [two]))
    assert chosen.gpu_indexes == (0, 1) and chosen.vram == {0: gib(12), 1: gib(12)}
    assert chosen.vram_utilization == 0.5
    sglang = model(backend="sglang", backend_parameters=("--mem-fraction-static=0.85",))
    assert _pick(schedule(sglang, estimates["8b"], [two])).vram == {0: int(0.85 * gib(24))}


def test_a_bad_fraction_is_an_error() -> None:
    with pytest.raises(ValueError, match="--gpu-memory-utilization must be in"):
        select_candidates(model(backend="vllm", backend_parameters=("--gpu-memory-utilization", "1.5")),
                          ResourceEstimate(weights_bytes=1), [worker(1, "a", [gpu(0, 24)])])  # fmt: skip


def test_embedding_models_are_claimed_at_their_estimate(estimates: dict[str, ResourceEstimate]) -> None:
    embed = model(backend="vllm", categories=("embedding",))
    need = estimates["bge"].full_gpu_bytes
    assert need < gib(5)
    workers: tuple = (worker(1, "a", [gpu(0, 24)]),)
    placed = []
    for _ in range(4):  # several replicas share one card: none of them claims 0.9 of it
        chosen = _pick(schedule(embed, estimates["bge"], workers))
        workers = apply_claim(workers, chosen)
        placed.append(chosen)
    assert all(c.vram == {0: need} for c in placed)
    assert placed[0].vram_utilization == pytest.approx(need / gib(24), abs=0.01)
    assert placed[0].vram_utilization >= need / gib(24)  # rounded up: the engine stays within its claim


def test_mixed_4090_4080_worker(estimates: dict[str, ResourceEstimate]) -> None:
    mixed = worker(1, "mixed", [gpu(0, 24, name="RTX 4090"), gpu(1, 16, name="RTX 4080")])
    chosen = _pick(schedule(model(backend="vllm"), estimates["8b"], [mixed]))
    assert chosen.gpu_indexes == (0,)  # the 4090 alone holds it
    result = schedule(model(backend="vllm"), estimates["72b"], [mixed])
    assert isinstance(result, Refusal)
    assert result.reasons["mixed"].startswith("needs ")
    assert "its 2 qualifying GPUs hold" in result.reasons["mixed"]


def test_unknown_estimates_take_one_card_at_the_fraction() -> None:
    chosen = _pick(schedule(model(backend="vllm"), ResourceEstimate(weights_bytes=0), [worker(1, "a", [gpu(0, 24)])]))
    assert chosen.vram == {0: int(0.9 * gib(24))}
