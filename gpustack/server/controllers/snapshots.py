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


def _claims(instances: Sequence[ModelInstance]) -> tuple[dict[tuple[int, int], int], dict[int, int]]:
    """Bytes claimed per (worker id, GPU index) and RAM per worker id, from placed instances."""
    vram: dict[tuple[int, int], int] = defaultdict(int)
    ram: dict[int, int] = defaultdict(int)
    for inst in instances:
        if inst.worker_id is None or not inst.computed_resource_claim:
            continue
        claim = inst.computed_resource_claim
        for index, amount in (claim.get("vram") or {}).items():
            vram[(inst.worker_id, int(index))] += int(amount)
        ram[inst.worker_id] += int(claim.get("ram") or 0)
    return vram, ram


def _cpu_only_backends(status: WorkerStatus) -> frozenset[str]:
    """Backends whose engine cannot use the worker's GPUs; simulated GPUs are never usable, so there the
    scheduler places as if they were (that is what simulating them is for)."""
    if status.simulated_gpus:
        return frozenset()
    return frozenset(name for name, info in status.backends.items() if info.gpu_offload is False)


def worker_snapshots(workers: Sequence[Worker], instances: Sequence[ModelInstance]) -> tuple[WorkerSnapshot, ...]:
    vram, ram = _claims(instances)
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
                maintenance=_maintenance(worker.maintenance),
            )
        )
    return tuple(snapshots)


def _maintenance(value: dict[str, Any] | None) -> str | None:
    """The admin's message while the worker is in maintenance mode, else None."""
    if not value or not value.get("enabled"):
        return None
    return str(value.get("message") or "")
