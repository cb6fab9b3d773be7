"""Selector for engines that reserve a fixed fraction of every GPU they use (vLLM, SGLang).

vLLM takes `--gpu-memory-utilization` (default 0.9) of each GPU's total memory and SGLang
`--mem-fraction-static` (default 0.9), whatever the model needs. So a GPU qualifies only when that
fraction of it is still free, the claim on each GPU is that fraction, and the model fits when the
claimed fractions of the fewest qualifying GPUs whose count divides the attention heads (tensor
parallelism) hold the estimate. Embedding and reranker models are claimed at their estimate instead,
and the engine is told the fraction that keeps it within that claim.
"""

import math
from collections.abc import Sequence

from gpustack.scheduler.capacity import describe_gpu, gpu_free, gpus_by_free
from gpustack.scheduler.estimate.params import float_flag
from gpustack.scheduler.selectors.common import Selection, cpu_candidate
from gpustack.scheduler.types import Candidate, GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes

FRACTION_FLAGS = {"vllm": "--gpu-memory-utilization", "sglang": "--mem-fraction-static"}
DEFAULT_FRACTION = 0.9
WHOLE_CARD_CATEGORIES = frozenset({"llm", "image", "text_to_speech", "speech_to_text"})


def engine_fraction(model: ModelSnapshot) -> float:
    """The fraction the engine will reserve: the user's flag, else 0.9; ValueError outside (0, 1]."""
    flag = FRACTION_FLAGS.get(model.backend, FRACTION_FLAGS["vllm"])
    fraction = float_flag(model.backend_parameters, flag)
    if fraction is None:
        return DEFAULT_FRACTION
    if not 0 < fraction <= 1:
        raise ValueError(f"{flag} must be in (0, 1], got {fraction}")
    return fraction


def _whole_card(model: ModelSnapshot) -> bool:
    """Claims the fraction of each card (language models), or only the estimate (embedding, reranker)."""
    return not model.categories or bool(WHOLE_CARD_CATEGORIES & set(model.categories))


def select_fraction(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    fraction = engine_fraction(model)
    candidates: list[Candidate] = []
    reasons: dict[str, str] = {}
    for worker in workers:
        found, why = _worker_candidate(model, estimate, worker, fraction)
        if found is not None:
            candidates.append(found)
        else:
            reasons[worker.name] = why
    return candidates, reasons


def _worker_candidate(
    model: ModelSnapshot, estimate: ResourceEstimate, worker: WorkerSnapshot, fraction: float
) -> tuple[Candidate | None, str]:
    if not worker.gpus:
        return cpu_candidate(estimate, worker, "no GPUs and the model")
    whole = _whole_card(model)
    qualifying, refused = _qualifying(worker, fraction) if whole else (gpus_by_free(worker), [])
    need = estimate.full_gpu_bytes
    for k in range(1, len(qualifying) + 1):
        if estimate.attention_heads and estimate.attention_heads % k:
            continue
        chosen = qualifying[:k]
        claims = {g.index: int(fraction * g.memory_total) if whole else -(-need // k) for g in chosen}
        if sum(claims.values()) >= need and all(gpu_free(g) >= claims[g.index] for g in chosen):
            used = fraction if whole else _fraction_of(chosen, claims)
            return _candidate(worker, estimate, chosen, claims, used), ""
    return None, _refusal(estimate, qualifying, refused, fraction if whole else 1.0, need)


def _fraction_of(chosen: Sequence[GPUSnapshot], claims: dict[int, int]) -> float:
    """The fraction to tell the engine so it stays within its claim on every GPU (rounded up to 0.01)."""
    return math.ceil(max(claims[g.index] / g.memory_total for g in chosen) * 100) / 100


def _qualifying(worker: WorkerSnapshot, fraction: float) -> tuple[list[GPUSnapshot], list[str]]:
    """GPUs with `fraction` of their memory free (most free first), and why the others are not."""
    kept, refused = [], []
    for gpu in gpus_by_free(worker):
        if gpu_free(gpu) >= fraction * gpu.memory_total:
            kept.append(gpu)
        else:
            refused.append(
                f"{describe_gpu(gpu)}: {fmt_bytes(gpu_free(gpu))} allocatable < {fraction:g} × "
                f"{fmt_bytes(gpu.memory_total)}"
            )
    return kept, refused


def _candidate(
    worker: WorkerSnapshot,
    estimate: ResourceEstimate,
    chosen: Sequence[GPUSnapshot],
    claims: dict[int, int],
    fraction: float,
) -> Candidate:
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=tuple(sorted(g.index for g in chosen)),
        vram=claims,
        ram=0,
        terms={
            "weights_gpu": estimate.weights_bytes,
            "kv_cache_gpu": estimate.kv_cache_bytes,
            "compute_gpu": estimate.compute_bytes,
        },
        vram_utilization=fraction,
    )


def _refusal(
    estimate: ResourceEstimate, qualifying: list[GPUSnapshot], refused: list[str], fraction: float, need: int
) -> str:
    parts = [f"needs {fmt_bytes(need)} VRAM"]
    if qualifying:
        room = sum(int(fraction * g.memory_total) for g in qualifying)
        parts.append(f"its {len(qualifying)} qualifying GPUs hold {fmt_bytes(room)} at {fraction:g} of each")
        if estimate.attention_heads and len(qualifying) > 1:
            parts.append(f"tensor parallelism must divide the model's {estimate.attention_heads} attention heads")
    parts.extend(refused)
    return "; ".join(parts)
