"""Placements across several workers (distributed inference), tried when no single worker fits.

- vLLM / SGLang (tensor parallel inside a worker, pipeline parallel across workers): a GPU qualifies
  when the engine's fraction of it is free (`--gpu-memory-utilization` / `--mem-fraction-static`,
  default 0.9); only workers with the same number of qualifying GPUs combine, that number is the
  tensor-parallel size and must divide the attention heads, and the number of workers is the
  pipeline-parallel size. Each GPU is claimed at the fraction. A worker takes part in at most one
  distributed vLLM instance (one Ray cluster per worker).
- MindIE is not placed across workers: its rank table needs each NPU's device IP, which workers do not
  report yet (the launch spec in worker/distributed/mindie.py is ready for it).
- llama-box: the main worker runs the engine and the other workers run llama.cpp RPC servers, one per
  GPU; whole blocks are split over every GPU in llama.cpp's device order (the RPC devices first, then
  the main worker's GPUs, whose last one also holds the output layer).

Among the combinations the fewest workers win; the first worker (most room) is the main worker.
"""

from collections.abc import Sequence

from gpustack.scheduler.capacity import gpu_free, ram_free
from gpustack.scheduler.selectors.common import Selection, distribute, gpu_need
from gpustack.scheduler.selectors.fraction import FRACTION_FLAGS, engine_fraction, qualifies
from gpustack.scheduler.types import Candidate, GPUSnapshot, ModelSnapshot, ResourceEstimate, WorkerSnapshot
from gpustack.scheduler.units import fmt_bytes

RPC_BACKENDS = frozenset({"llama-box"})
# MindIE is not placed across workers: its rank table needs NPU device IPs that workers do not report yet
FRACTION_BACKENDS = frozenset(FRACTION_FLAGS) - {"mindie"}
IN_RAY_CLUSTER = "already in a distributed vLLM instance (a worker joins one Ray cluster at a time)"

Member = tuple[int, WorkerSnapshot, tuple[GPUSnapshot, ...]]  # (room in bytes, worker, GPUs used)


def supports_distributed(backend: str) -> bool:
    """Whether the backend can run one instance across several workers."""
    return backend in FRACTION_BACKENDS or backend in RPC_BACKENDS


def select_distributed(
    model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]
) -> Selection:
    """Candidates spanning the fewest workers (each with its subordinates), or ([], {"*": why not})."""
    if model.backend in RPC_BACKENDS:
        return _rpc_split(model, estimate, workers)
    if model.backend in FRACTION_BACKENDS:
        return _fraction_groups(model, estimate, workers)
    return [], {"*": f"the {model.backend} backend cannot run one instance across workers"}


def _fraction_groups(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    fraction = engine_fraction(model)
    need = estimate.full_gpu_bytes
    ray = model.backend == "vllm"
    groups: dict[int, list[Member]] = {}
    for worker in workers:
        if ray and worker.in_ray_cluster:
            continue
        qualifying = tuple(g for g in worker.gpus_by_index if qualifies(g, fraction))
        if qualifying:
            room = sum(int(fraction * g.memory_total) for g in qualifying)
            groups.setdefault(len(qualifying), []).append((room, worker, qualifying))
    found: list[tuple[int, list[Member]]] = []
    notes: list[str] = []
    for per_worker, members in sorted(groups.items()):
        heads = estimate.attention_heads
        if heads and heads % per_worker:
            notes.append(f"tensor parallel size {per_worker} (GPUs per worker) does not divide {heads} attention heads")
            continue
        chosen = _fewest(members, need)
        if chosen:
            found.append((per_worker, chosen))
        else:
            notes.append(_short_text(per_worker, members, need, fraction))
    fewest = min((len(chosen) for _, chosen in found), default=0)
    candidates = [
        _fraction_candidate(model, estimate, chosen, fraction) for _, chosen in found if len(chosen) == fewest
    ]
    if candidates:
        return candidates, {}
    return [], {"*": _across_refusal(notes, need, ray, workers)}


def _fewest(members: list[Member], need: int) -> list[Member]:
    """The fewest (at least two) members, most room first, whose room holds `need`; [] when none."""
    ranked = sorted(members, key=lambda m: (-m[0], m[1].name))
    total = 0
    for k, (room, _, _) in enumerate(ranked, start=1):
        total += room
        if k >= 2 and total >= need:
            return ranked[:k]
    return []


def _short_text(per_worker: int, members: list[Member], need: int, fraction: float) -> str:
    room = sum(m[0] for m in members)
    return (
        f"{len(members)} workers with {per_worker} qualifying GPUs hold {fmt_bytes(room)} at {fraction:g} of each "
        f"GPU, the model needs {fmt_bytes(need)}"
    )


def _across_refusal(notes: list[str], need: int, ray: bool, workers: Sequence[WorkerSnapshot]) -> str:
    head = f"no set of workers holds the model's {fmt_bytes(need)} across workers"
    if ray and (busy := sorted(w.name for w in workers if w.in_ray_cluster)):
        notes = [*notes, f"{IN_RAY_CLUSTER}: {', '.join(busy)}"]
    if not notes:
        notes = ["no worker has a GPU with the engine's memory fraction free"]
    return head + " (" + "; ".join(notes) + ")"


def _fraction_candidate(
    model: ModelSnapshot, estimate: ResourceEstimate, chosen: list[Member], fraction: float
) -> Candidate:
    """The main worker's part carrying the subordinates' parts; every GPU claimed at the fraction."""
    parts = [_fraction_part(worker, gpus, fraction) for _, worker, gpus in chosen]
    terms = {
        "weights_gpu": estimate.weights_bytes,
        "kv_cache_gpu": estimate.kv_cache_bytes,
        "compute_gpu": estimate.compute_bytes,
    }
    main = parts[0]
    return Candidate(
        worker_id=main.worker_id,
        worker_name=main.worker_name,
        gpu_indexes=main.gpu_indexes,
        vram=main.vram,
        ram=0,
        terms=terms,
        vram_utilization=fraction,
        subordinates=tuple(parts[1:]),
        ray_cluster=model.backend == "vllm",
    )


def _fraction_part(worker: WorkerSnapshot, gpus: tuple[GPUSnapshot, ...], fraction: float) -> Candidate:
    vram = {g.index: int(fraction * g.memory_total) for g in gpus}
    return Candidate(
        worker_id=worker.id,
        worker_name=worker.name,
        gpu_indexes=tuple(g.index for g in gpus),
        vram=vram,
        ram=0,
        vram_utilization=fraction,
    )


def _block_caps(estimate: ResourceEstimate, worker: WorkerSnapshot, holds_output: bool) -> list[int]:
    """Blocks each GPU of the worker (index order) can hold; the last holds the output layer if asked."""
    per_block = estimate.per_block_bytes()
    gpus = worker.gpus_by_index
    last = len(gpus) - 1
    fixed = [gpu_need(estimate, 0, True, holds_output and i == last, worker.gpu_overhead) for i in range(len(gpus))]
    return [max(0, gpu_free(g) - f) // per_block for g, f in zip(gpus, fixed, strict=True)]


def _rpc_split(model: ModelSnapshot, estimate: ResourceEstimate, workers: Sequence[WorkerSnapshot]) -> Selection:
    """Main worker + RPC servers on the fewest other workers holding every block on GPUs."""
    if estimate.block_count <= 0 or estimate.per_block_bytes() <= 0:
        return [], {"*": "the model has no layers to split across workers"}
    usable = [w for w in workers if w.gpus and model.backend not in w.cpu_only_backends]
    ranked = sorted(usable, key=lambda w: (-sum(_block_caps(estimate, w, False)), w.name))
    mains = [w for w in ranked if ram_free(w) >= estimate.host_weights_bytes]
    if len(ranked) < 2 or not mains:
        return [], {"*": f"across workers: {len(ranked)} usable worker(s) with GPUs, distributed llama-box needs two"}
    main = mains[0]
    room = sum(_block_caps(estimate, main, True))
    subs: list[WorkerSnapshot] = []
    for worker in (w for w in ranked if w.id != main.id):
        if room >= estimate.block_count and subs:
            break
        subs.append(worker)
        room += sum(_block_caps(estimate, worker, False))
    if room < estimate.block_count:
        return [], {"*": f"the GPUs of {len(ranked)} workers hold {room} of {estimate.block_count} blocks"}
    return [_rpc_candidate(estimate, main, subs)], {}


def _rpc_candidate(estimate: ResourceEstimate, main: WorkerSnapshot, subs: list[WorkerSnapshot]) -> Candidate:
    """Blocks over the devices in llama.cpp's order (RPC servers first, the main worker's GPUs last)."""
    order = [(w, False) for w in subs] + [(main, True)]
    devices = [(w, g, out) for w, out in order for g in w.gpus_by_index]
    caps = [c for w, out in order for c in _block_caps(estimate, w, out)]
    blocks = distribute(estimate.block_count, caps, [gpu_free(g) for _, g, _ in devices])
    parts: dict[int, dict[int, int]] = {}
    last = len(devices) - 1
    for i, ((worker, gpu, _), n) in enumerate(zip(devices, blocks, strict=True)):
        claim = gpu_need(estimate, n, True, i == last, worker.gpu_overhead)
        parts.setdefault(worker.id, {})[gpu.index] = claim
    split = tuple(n + (1 if i == last else 0) for i, n in enumerate(blocks))
    sub_parts = tuple(
        Candidate(worker_id=w.id, worker_name=w.name, gpu_indexes=tuple(sorted(parts[w.id])), vram=parts[w.id], ram=0)
        for w in subs
    )
    vram_total = sum(sum(v.values()) for v in parts.values())
    return Candidate(
        worker_id=main.id,
        worker_name=main.name,
        gpu_indexes=tuple(sorted(parts[main.id])),
        vram=parts[main.id],
        ram=estimate.host_weights_bytes,
        offload_layers=estimate.total_layers,
        total_layers=estimate.total_layers,
        tensor_split=split,
        terms={
            "weights_gpu": vram_total - estimate.kv_cache_bytes - _fixed_bytes(estimate, devices),
            "kv_cache_gpu": estimate.kv_cache_bytes,
            "compute_gpu": estimate.compute_bytes * len(devices),
            "runtime_overhead_gpu": sum(w.gpu_overhead for w, _, _ in devices),
            "weights_host": estimate.host_weights_bytes,
        },
        subordinates=sub_parts,
    )


def _fixed_bytes(estimate: ResourceEstimate, devices: list[tuple[WorkerSnapshot, GPUSnapshot, bool]]) -> int:
    return estimate.compute_bytes * len(devices) + sum(w.gpu_overhead for w, _, _ in devices)
