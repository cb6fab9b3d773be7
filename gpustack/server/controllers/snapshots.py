"""Builds the scheduler's immutable snapshots from DB rows (the only bridge between the two)."""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gpustack.scheduler.types import GPUSnapshot, ModelSnapshot, WorkerSnapshot
from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker, WorkerStatus


def model_snapshot(model: Model) -> ModelSnapshot:
    return ModelSnapshot(
        id=model.id,  # type: ignore[arg-type]
        name=model.name,
        backend=str(model.backend),
        placement_strategy=str(model.placement_strategy),
        worker_selector=dict(model.worker_selector),
        gpu_selector=tuple(model.gpu_selector),
        cpu_offloading=model.cpu_offloading,
        distributed_inference_across_workers=model.distributed_inference_across_workers,
        backend_parameters=tuple(model.backend_parameters),
        categories=tuple(model.categories),
    )


def _parts(inst: ModelInstance) -> list[tuple[int | None, dict]]:
    """(worker id, claim) of each part of an instance: its main worker's, then each subordinate's."""
    parts: list[tuple[int | None, dict]] = [(inst.worker_id, inst.computed_resource_claim or {})]
    for sub in inst.distributed_servers or []:
        parts.append((sub.get("worker_id"), sub.get("computed_resource_claim") or {}))
    return parts


def _claims(instances: Sequence[ModelInstance]) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """Bytes claimed per (worker id, GPU index) and RAM per worker id, from placed instances (every part
    of a distributed instance counts on its own worker)."""
    vram: dict[tuple[int, int], int] = defaultdict(int)
    ram: dict[int, int] = defaultdict(int)
    for inst in instances:
        if inst.worker_id is None:
            continue
        for worker_id, claim in _parts(inst):
            if worker_id is None:
                continue
            for index, amount in (claim.get("vram") or {}).items():
                vram[(worker_id, int(index))] += int(amount)
            ram[worker_id] += int(claim.get("ram") or 0)
    return vram, ram


def ray_members(instances: Sequence[ModelInstance], ray_models: frozenset[int]) -> frozenset[int]:
    """Workers taking part in a placed distributed instance of a model in `ray_models` (vLLM's)."""
    members: set[int] = set()
    for inst in instances:
        if inst.worker_id is None or not inst.distributed_servers or inst.model_id not in ray_models:
            continue
        members.update(w for w, _ in _parts(inst) if w is not None)
    return frozenset(members)


def _cpu_only_backends(status: WorkerStatus) -> frozenset[str]:
    """Backends whose engine cannot use the worker's GPUs; simulated GPUs are never usable, so there the
    scheduler places as if they were (that is what simulating them is for)."""
    if status.simulated_gpus:
        return frozenset()
    return frozenset(name for name, info in status.backends.items() if info.gpu_offload is False)


def worker_snapshots(
    workers: Sequence[Worker], instances: Sequence[ModelInstance], ray_models: frozenset[int] = frozenset()
) -> tuple[WorkerSnapshot, ...]:
    """Snapshots of `workers` with the claims of the placed `instances`; `ray_models` are the ids of the
    models whose distributed instances form a Ray cluster (vLLM), which a worker joins only one of."""
    vram, ram = _claims(instances)
    in_ray = ray_members(instances, ray_models)
    snapshots = []
    for worker in workers:
        status = WorkerStatus.model_validate(worker.status or {})
        gpus = tuple(
            GPUSnapshot(
                index=gpu.index,
                name=gpu.name,
                vendor=gpu.vendor,
                memory_total=gpu.memory_total,
                memory_used=gpu.memory_used,
                memory_claimed=vram.get((worker.id, gpu.index), 0),  # type: ignore[arg-type]
                memory_reserved=gpu.memory_reserved + status.gpu_headroom,
            )
            for gpu in status.gpu_devices
        )
        snapshots.append(
            WorkerSnapshot(
                id=worker.id,  # type: ignore[arg-type]
                name=worker.name,
                state=str(worker.state),
                labels=dict(worker.labels),
                gpus=gpus,
                memory_total=status.memory.total,
                memory_claimed=ram.get(worker.id, 0),  # type: ignore[arg-type]
                cpu_cores=status.cpu.total,
                gpu_overhead=status.gpu_runtime_overhead,
                cpu_only_backends=_cpu_only_backends(status),
                in_ray_cluster=worker.id in in_ray,
                maintenance=_maintenance(worker.maintenance),
            )
        )
    return tuple(snapshots)


def _maintenance(value: dict[str, Any] | None) -> str | None:
    """The admin's message while the worker is in maintenance mode, else None."""
    if not value or not value.get("enabled"):
        return None
    return str(value.get("message") or "")
