"""GPU history services: sample every worker's GPUs and host from its reported status, prune, query."""

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from gpustack.core.errors import InvalidError
from gpustack.schemas.common import utcnow
from gpustack.schemas.gpu_history import HOST, GPUHistory, GPUSample, GPUSeries
from gpustack.schemas.workers import Worker, WorkerState, WorkerStatus

MAX_POINTS = 50_000


def _samples(worker: Worker, now: datetime) -> list[dict[str, Any]]:
    status = WorkerStatus.model_validate(worker.status or {})
    base = {"time": now, "worker_id": worker.id, "worker_name": worker.name}
    rows = [
        {**base, "gpu_index": HOST, "utilization": status.cpu.utilization_rate,
         "memory_used": status.memory.used, "memory_total": status.memory.total, "temperature": None, "power": None},
    ]  # fmt: skip
    for gpu in status.gpu_devices:
        rows.append(
            {**base, "gpu_index": gpu.index, "utilization": gpu.core_utilization,
             "memory_used": gpu.memory_used, "memory_total": gpu.memory_total, "temperature": gpu.temperature,
             "power": gpu.power_watts}
        )  # fmt: skip
    return rows


async def sample_gpus(*, session: AsyncSession, retention_days: int) -> int:
    """One sample per GPU (and host) of every ready worker, from its last status; drops samples past the
    retention. Returns the number of samples written."""
    now = utcnow()
    workers = (await session.execute(select(Worker).where(col(Worker.state) == WorkerState.READY))).scalars().all()
    rows = [row for worker in workers for row in _samples(worker, now)]
    if rows:
        await session.execute(insert(GPUSample), rows)
    await session.execute(delete(GPUSample).where(col(GPUSample.time) < now - timedelta(days=retention_days)))
    await session.commit()
    return len(rows)


async def gpu_history(
    *,
    session: AsyncSession,
    start: datetime | None,
    end: datetime | None,
    worker_id: int | None,
    interval_seconds: float,
    retention_days: int,
) -> GPUHistory:
    """Samples in [start, end) (default: the last hour) grouped into one series per worker and GPU."""
    end = end or utcnow() + timedelta(seconds=1)
    start = start or end - timedelta(hours=1)
    if start >= end:
        raise InvalidError(f"start ({start.isoformat()}) must be before end ({end.isoformat()})")
    stmt = select(GPUSample).where(col(GPUSample.time) >= start, col(GPUSample.time) < end)
    if worker_id is not None:
        stmt = stmt.where(col(GPUSample.worker_id) == worker_id)
    stmt = stmt.order_by(col(GPUSample.time), col(GPUSample.id)).limit(MAX_POINTS)
    series: dict[tuple[int, int], GPUSeries] = {}
    grouped: dict[tuple[int, int], list[GPUSample]] = defaultdict(list)
    for sample in (await session.execute(stmt)).scalars():
        grouped[(sample.worker_id, sample.gpu_index)].append(sample)
    for key, samples in sorted(grouped.items()):
        series[key] = GPUSeries(
            worker_id=key[0],
            worker_name=samples[-1].worker_name,
            gpu_index=key[1],
            time=[s.time for s in samples],
            utilization=[s.utilization for s in samples],
            memory_used=[s.memory_used for s in samples],
            memory_total=[s.memory_total for s in samples],
            temperature=[s.temperature for s in samples],
            power=[s.power for s in samples],
        )
    return GPUHistory(interval_seconds=interval_seconds, retention_days=retention_days, series=list(series.values()))
