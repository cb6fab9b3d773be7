"""Time schedule() for one instance over 10, 100 and 1000 synthetic workers (8 GPUs each)."""

import argparse
import random
import time
from collections.abc import Callable, Sequence

from gpustack.scheduler.scheduler import schedule
from gpustack.scheduler.types import Candidate, GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot

GiB = 1024**3
SIZES = (10, 100, 1000)
GPUS_PER_WORKER = 8


def synthetic_workers(n: int, seed: int = 0, idle_every: int = 0) -> list[WorkerSnapshot]:
    """n ready workers with 8 x 24 GiB GPUs each, partly claimed so no single GPU can hold the model;
    with `idle_every` k, every k-th worker is idle (what a vLLM model needs: 0.9 of every GPU free)."""
    rng = random.Random(seed)
    workers = []
    for wid in range(1, n + 1):
        idle = idle_every > 0 and wid % idle_every == 0
        gpus = tuple(
            GPUSnapshot(
                index=i,
                name="RTX 4090",
                vendor="nvidia",
                memory_total=24 * GiB,
                memory_used=0 if idle else rng.randint(0, 8) * GiB,
                memory_claimed=0 if idle else rng.randint(8, 20) * GiB,
            )
            for i in range(GPUS_PER_WORKER)
        )
        workers.append(
            WorkerSnapshot(
                id=wid,
                name=f"worker-{wid:05d}",
                state="ready",
                labels={"zone": f"z{wid % 4}"},
                gpus=gpus,
                memory_total=256 * GiB,
                memory_claimed=rng.randint(0, 128) * GiB,
                cpu_cores=64,
                gpu_overhead=640 * 2**20,
            )
        )
    return workers


MODEL = ModelSnapshot(id=1, name="bench", backend="llama-box", placement_strategy="spread")
# A 70B-class Q4 model: 40 GiB weights, 80 layers; forces the multi-GPU split path on most workers.
ESTIMATE = ResourceEstimate(
    weights_bytes=40 * GiB,
    host_weights_bytes=GiB // 2,
    output_bytes=GiB // 2,
    kv_cache_bytes=2 * GiB,
    compute_bytes=GiB // 2,
    block_count=80,
    context_size=8192,
)


# vLLM (fraction rule, TP must divide heads and vocab): a 70B model, ~160 GiB, fits only an idle worker's 8 GPUs.
VLLM_ONE_MODEL = ModelSnapshot(id=2, name="bench-vllm", backend="vllm", placement_strategy="spread")
VLLM_ONE_ESTIMATE = ResourceEstimate(
    weights_bytes=131 * GiB,
    kv_cache_bytes=5 * GiB // 2,
    compute_bytes=26 * GiB,
    context_size=8192,
    attention_heads=64,
    vocab_size=128256,
)
# vLLM across workers: 300 GiB at 0.9 of 80 GiB cards needs five qualifying GPUs, so on H100 workers with
# 2-4 of their 8 GPUs free no single worker fits and the distributed path groups workers by free GPU count.
VLLM_MODEL = ModelSnapshot(
    id=2, name="bench-vllm", backend="vllm", placement_strategy="spread", distributed_inference_across_workers=True
)
VLLM_ESTIMATE = ResourceEstimate(weights_bytes=300 * GiB, attention_heads=64)


def busy_h100_workers(n: int, seed: int = 0) -> list[WorkerSnapshot]:
    """n workers with 8 x 80 GiB GPUs of which 4 to 6 are taken by other instances."""
    rng = random.Random(seed)
    workers = []
    for wid in range(1, n + 1):
        busy = rng.randint(4, 6)
        gpus = tuple(
            GPUSnapshot(index=i, name="H100", vendor="nvidia", memory_total=80 * GiB,
                        memory_claimed=(60 * GiB if i < busy else 0))
            for i in range(GPUS_PER_WORKER)
        )  # fmt: skip
        workers.append(WorkerSnapshot(id=wid, name=f"h100-{wid:05d}", state="ready", labels={}, gpus=gpus,
                                      memory_total=1024 * GiB, cpu_cores=64))  # fmt: skip
    return workers


Case = tuple[ModelSnapshot, ResourceEstimate, Callable[[int], list[WorkerSnapshot]]]
CASES: dict[str, Case] = {
    "llama-box": (MODEL, ESTIMATE, synthetic_workers),
    "vllm": (VLLM_ONE_MODEL, VLLM_ONE_ESTIMATE, lambda n: synthetic_workers(n, idle_every=10)),
    "vllm-distributed": (VLLM_MODEL, VLLM_ESTIMATE, busy_h100_workers),
}
"""Scenario name -> the model, its estimate and the workers it is timed over."""


def time_per_call(
    workers: Sequence[WorkerSnapshot], repeats: int, model: ModelSnapshot = MODEL, estimate: ResourceEstimate = ESTIMATE
) -> float:
    """Best of `repeats` timings of one schedule() call, in seconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        schedule(model, estimate, workers)
        best = min(best, time.perf_counter() - start)
    return best


def describe(
    workers: Sequence[WorkerSnapshot], model: ModelSnapshot = MODEL, estimate: ResourceEstimate = ESTIMATE
) -> str:
    """The placement chosen, so a run that only produces refusals is visible."""
    result = schedule(model, estimate, workers)
    if isinstance(result, Candidate):
        subs = "".join(f" + {s.worker_name} GPUs {list(s.gpu_indexes)}" for s in result.subordinates)
        return f"{result.worker_name} GPUs {list(result.gpu_indexes)}{subs}"
    return "refused"


def run_case(name: str, repeats: int) -> None:
    """Print one scenario's timings at every size, each against the 10-worker time."""
    model, estimate, make_workers = CASES[name]
    baseline: float | None = None
    print(f"{name}:")
    print(f"{'workers':>8} {'gpus':>6} {'ms/call':>10} {'vs 10':>8} {'per worker (us)':>16}  chosen")
    for n in SIZES:
        workers = make_workers(n)
        seconds = time_per_call(workers, repeats, model, estimate)
        baseline = baseline or seconds
        print(
            f"{n:>8} {n * GPUS_PER_WORKER:>6} {seconds * 1e3:>10.2f} {seconds / baseline:>7.1f}x "
            f"{seconds / n * 1e6:>16.1f}  {describe(workers, model, estimate)}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backend", choices=[*sorted(CASES), "all"], default="all", help="which scenario to time")
    args = parser.parse_args()
    for name in CASES if args.backend == "all" else [args.backend]:
        run_case(name, args.repeats)


if __name__ == "__main__":
    main()
