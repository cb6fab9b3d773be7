"""Worker liveness: missed heartbeats make a worker not_ready and its instances unreachable;
after a longer absence its instances are rescheduled elsewhere."""

from datetime import datetime

from sqlmodel import col, select

from gpustack.schemas.common import utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.workers import Worker, WorkerState
from gpustack.server.db import Database
from gpustack.server.services.workers import reset_placement

_LIVE_INSTANCE_STATES = {
    InstanceState.INITIALIZING,
    InstanceState.DOWNLOADING,
    InstanceState.STARTING,
    InstanceState.RUNNING,
}


def _mark_not_ready(worker: Worker, now: datetime, instances: list[ModelInstance]) -> None:
    silent = int((now - worker.heartbeat_time).total_seconds()) if worker.heartbeat_time else None
    worker.state = WorkerState.NOT_READY
    worker.state_message = f"no heartbeat for {silent}s" if silent is not None else "never sent a heartbeat"
    for inst in instances:
        if inst.state in _LIVE_INSTANCE_STATES:
            inst.state = InstanceState.UNREACHABLE
            inst.state_message = f"worker '{worker.name}' is not responding"


def _reschedule(worker: Worker, instances: list[ModelInstance], after: float) -> None:
    for inst in instances:
        reset_placement(inst, f"rescheduled: worker '{worker.name}' has been gone for over {int(after)}s")


async def reconcile_workers(db: Database, *, grace: float, reschedule_after: float) -> None:
    now = utcnow()
    async with db.session() as session:
        workers = (await session.execute(select(Worker))).scalars().all()
        instances = (
            (await session.execute(select(ModelInstance).where(col(ModelInstance.worker_id).is_not(None))))
            .scalars()
            .all()
        )  # type: ignore[union-attr]
        by_worker: dict[int, list[ModelInstance]] = {}
        for inst in instances:
            by_worker.setdefault(inst.worker_id, []).append(inst)  # type: ignore[arg-type]
        for worker in workers:
            last = worker.heartbeat_time or worker.created_at
            silent = (now - last).total_seconds()
            owned = by_worker.get(worker.id, [])  # type: ignore[arg-type]
            if worker.state == WorkerState.READY and silent > grace:
                _mark_not_ready(worker, now, owned)
            if worker.state != WorkerState.READY and silent > grace + reschedule_after and owned:
                _reschedule(worker, owned, reschedule_after)
        await session.commit()
