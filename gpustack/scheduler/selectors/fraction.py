"""Selector for engines that reserve a fixed fraction of every device they use (vLLM, SGLang, MindIE).

vLLM takes `--gpu-memory-utilization`, SGLang `--mem-fraction-static` and MindIE `--npu-memory-fraction`
(each 0.9 by default) of each device's total memory, whatever the model needs. So a device qualifies only
when that fraction of it is still allocatable, the claim on each device is that fraction, and the model
fits when the claimed fractions of the fewest qualifying devices whose tensor-parallel size divides the
model's attention heads, vision heads and vocabulary hold the estimate. Sizes given in the backend
parameters (tp × pp × dp) fix the device count. Embedding and reranker models are claimed at their
estimate instead, and the engine is told the fraction that keeps it within that claim.

MindIE runs only on Ascend NPUs; its estimate is weights + KV cache + computation plus the runtime
footprint on every NPU it uses (the worker's reported per-device runtime overhead).

A manual GPU selection (`gpu_selector`) uses exactly the selected devices: the parallel sizes and the
divisibility rules still apply, but devices short of the fraction or of the estimate only make the
placement say that it may overcommit them (GPUStack's behaviour for manual scheduling).
"""

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from gpustack.scheduler.capacity import describe_gpu, gpu_free, gpus_by_free
from gpustack.scheduler.estimate.params import float_flag
from gpustack.scheduler.selectors.common import Selection, cpu_candidate, per_worker
from gpustack.scheduler.selectors.parallel import Parallel, count_problem, requested_parallel
from gpustack.scheduler.types import Candidate, GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes

FRACTION_FLAGS = {
    "vllm": "--gpu-memory-utilization",
    "sglang": "--mem-fraction-static",
    "mindie": "--npu-memory-fraction",
}
DEFAULT_FRACTION = 0.9
WHOLE_CARD_CATEGORIES = frozenset({"llm", "image", "text_to_speech", "speech_to_text"})
ASCEND_VENDORS = frozenset({"ascend", "huawei"})
MINDIE = "mindie"


def engine_fraction(model: ModelSnapshot) -> float:
    """The fraction the engine will reserve: the user's flag, else 0.9; ValueError outside (0, 1]."""
    flag = FRACTION_FLAGS.get(model.backend, FRACTION_FLAGS["vllm"])
    fraction = float_flag(model.backend_parameters, flag)
    if fraction is None:
        return DEFAULT_FRACTION
    if not 0 < fraction <= 1:
        raise ValueError(f"{flag} must be in (0, 1], got {fraction}")
    return fraction


def is_ascend(gpu: GPUSnapshot) -> bool:
    return gpu.vendor.lower() in ASCEND_VENDORS


@dataclass(frozen=True)
class Rule:
    """One model's placement rule: its fraction, parallel sizes, estimate and whether it takes whole cards."""

    model: ModelSnapshot
    estimate: ResourceEstimate
    fraction: float
    parallel: Parallel
    whole: bool

    def need(self, worker: WorkerSnapshot, gpus: int) -> int:
        """Bytes the model needs on `gpus` devices; MindIE adds its runtime footprint on each."""
        footprint = worker.gpu_overhead * gpus if self.model.backend == MINDIE else 0
        return self.estimate.full_gpu_bytes + footprint

    def claims(self, worker: WorkerSnapshot, chosen: Sequence[GPUSnapshot]) -> dict[int, int]:
        if self.whole:
            return {g.index: int(self.fraction * g.memory_total) for g in chosen}
        share = -(-self.need(worker, len(chosen)) // len(chosen))
        return {g.index: share for g in chosen}

    def utilization(self, chosen: Sequence[GPUSnapshot], claims: dict[int, int]) -> float:
        """The fraction to tell the engine: the user's (whole cards), else the estimate's share rounded up."""
        if self.whole:
            return self.fraction
        return math.ceil(max(claims[g.index] / g.memory_total for g in chosen) * 100) / 100


def _whole_card(model: ModelSnapshot) -> bool:
    """Claims the fraction of each card (language models), or only the estimate (embedding, reranker)."""
    return not model.categories or bool(WHOLE_CARD_CATEGORIES & set(model.categories))


def select_fraction(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    rule = Rule(model, estimate, engine_fraction(model), requested_parallel(model), _whole_card(model))

    def find(worker: WorkerSnapshot) -> tuple[list[Candidate], str]:
        found, why = _worker_candidate(rule, worker)
        return ([found] if found is not None else []), why

    return per_worker(workers, find)


def _worker_candidate(rule: Rule, worker: WorkerSnapshot) -> tuple[Candidate | None, str]:
    if rule.model.backend == MINDIE:
        npus = tuple(g for g in worker.gpus if is_ascend(g))
        if not npus:
            return None, _not_ascend(worker)
        worker = dataclasses.replace(worker, gpus=npus)
    elif not worker.gpus:
        return cpu_candidate(rule.estimate, worker, "no GPUs and the model")
    if rule.model.gpu_selector:
        return _manual(rule, worker)
    return _automatic(rule, worker)


def _not_ascend(worker: WorkerSnapshot) -> str:
    if not worker.gpus:
        return "MindIE runs only on Ascend NPUs; this worker has no GPUs"
    kinds = ", ".join(sorted({f"{g.vendor} {g.name}".strip() for g in worker.gpus}))
    return f"MindIE runs only on Ascend NPUs; this worker has {kinds} GPUs"


def _automatic(rule: Rule, worker: WorkerSnapshot) -> tuple[Candidate | None, str]:
    """The fewest qualifying devices (most allocatable first) that the parallel rules allow and that hold it."""
    qualifying, refused = _qualifying(worker, rule.fraction) if rule.whole else (gpus_by_free(worker), [])
    ruled_out: list[str] = []
    for k in range(1, len(qualifying) + 1):
        chosen = qualifying[:k]
        claims = rule.claims(worker, chosen)
        holds = sum(claims.values()) >= rule.need(worker, k) and all(gpu_free(g) >= claims[g.index] for g in chosen)
        why = count_problem(rule.estimate, rule.parallel, k)
        if why is None and holds:
            return _candidate(worker, rule, chosen, claims), ""
        if why is not None and holds and (rule.parallel.gpus is None or k == rule.parallel.gpus):
            ruled_out.append(why)
    return None, _refusal(rule, worker, qualifying, refused, ruled_out)


def _manual(rule: Rule, worker: WorkerSnapshot) -> tuple[Candidate | None, str]:
    """Exactly the selected devices; refused only when the engine could not split the model over them."""
    chosen = sorted(worker.gpus, key=lambda g: g.index)
    why = count_problem(rule.estimate, rule.parallel, len(chosen))
    if why is not None:
        return None, f"the gpu_selector picks {len(chosen)} GPUs: {why}"
    claims = rule.claims(worker, chosen)
    risks = [line for g in chosen if (line := _short_of(g, claims[g.index], rule)) is not None]
    need = rule.need(worker, len(chosen))
    if sum(claims.values()) < need:
        risks.append(f"the selected GPUs hold {fmt_bytes(sum(claims.values()))}, the model needs {fmt_bytes(need)}")
    candidate = _candidate(worker, rule, chosen, claims)
    if risks:
        note = "manually selected GPUs may be overcommitted: " + "; ".join(risks)
        candidate = dataclasses.replace(candidate, note=note)
    return candidate, ""


def _short_of(gpu: GPUSnapshot, claim: int, rule: Rule) -> str | None:
    if gpu_free(gpu) >= claim:
        return None
    if rule.whole:
        return _fraction_line(gpu, rule.fraction)
    return f"{describe_gpu(gpu)}: {fmt_bytes(gpu_free(gpu))} allocatable < {fmt_bytes(claim)}"


def _fraction_line(gpu: GPUSnapshot, fraction: float) -> str:
    """'GPU 1 RTX 4090: 18.2 GiB allocatable < 0.9 × 24.0 GiB'."""
    return f"{describe_gpu(gpu)}: {fmt_bytes(gpu_free(gpu))} allocatable < {fraction:g} × {fmt_bytes(gpu.memory_total)}"


def qualifies(gpu: GPUSnapshot, fraction: float) -> bool:
    """Whether `fraction` of the device's memory is still allocatable (the engine reserves that much)."""
    return gpu_free(gpu) >= fraction * gpu.memory_total


def _qualifying(worker: WorkerSnapshot, fraction: float) -> tuple[list[GPUSnapshot], list[str]]:
    """Devices with `fraction` of their memory allocatable (most allocatable first), and why the others are not."""
    kept, refused = [], []
    for gpu in gpus_by_free(worker):
        if qualifies(gpu, fraction):
            kept.append(gpu)
        else:
            refused.append(_fraction_line(gpu, fraction))
    return kept, refused


def _candidate(worker: WorkerSnapshot, rule: Rule, chosen: Sequence[GPUSnapshot], claims: dict[int, int]) -> Candidate:
    estimate = rule.estimate
    terms = {
        "weights_gpu": estimate.weights_bytes,
        "kv_cache_gpu": estimate.kv_cache_bytes,
        "compute_gpu": estimate.compute_bytes,
    }
    if rule.model.backend == MINDIE:
        terms["runtime_overhead_gpu"] = worker.gpu_overhead * len(chosen)
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=tuple(sorted(g.index for g in chosen)),
        vram=claims,
        ram=0,
        terms=terms,
        vram_utilization=rule.utilization(chosen, claims),
    )


def _refusal(
    rule: Rule, worker: WorkerSnapshot, qualifying: list[GPUSnapshot], refused: list[str], ruled_out: list[str]
) -> str:
    parts = [f"needs {fmt_bytes(rule.need(worker, max(1, len(qualifying))))} VRAM"]
    wanted = rule.parallel.gpus
    at = f" at {rule.fraction:g} of each" if rule.whole else ""
    if wanted is not None and wanted > len(qualifying):
        parts.append(f"backend parameters ask for {rule.parallel.text()}, {len(qualifying)} qualify here")
    elif wanted is not None:
        room = sum(rule.claims(worker, qualifying[:wanted]).values())
        parts.append(f"the {_count(wanted, 'GPU')} the backend parameters ask for hold {fmt_bytes(room)}{at}")
    elif qualifying:
        room = sum(rule.claims(worker, qualifying).values())
        many = len(qualifying) > 1
        parts.append(f"its {_count(len(qualifying), 'qualifying GPU')} hold{'' if many else 's'} {fmt_bytes(room)}{at}")
    parts.extend(sorted(set(ruled_out), key=len))
    parts.extend(refused)
    return "; ".join(parts)


def _count(n: int, noun: str) -> str:
    """'1 GPU', '2 GPUs'."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
