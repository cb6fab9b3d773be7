"""Worker liveness: missed heartbeats make a worker not_ready and its instances unreachable;
after a longer absence its instances are rescheduled elsewhere.

Silence is only counted while the server could have received heartbeats: after the server starts, or
after a gap between passes (server or database outage), every worker gets a full grace period to report
before it is judged. So an outage of any length does not restart the engines that kept running.
"""

import logging
from datetime import datetime, timedelta

from sqlmodel import col, select

from gpustack.schemas.common import utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.workers import Worker, WorkerState
from gpustack.server.db import Database
from gpustack.server.services.workers import reset_placement, subordinate_ids

logger = logging.getLogger(__name__)

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


def _reschedule(worker: Worker, instances: list[ModelInstance], now: datetime, grace: float, after: float) -> None:
    for inst in instances:
        if inst.state == InstanceState.RUNNING and (now - inst.updated_at).total_seconds() <= grace:
            continue  # the worker itself reported it running after it was marked unreachable: keep it
        reset_placement(inst, f"rescheduled: worker '{worker.name}' has been gone for over {int(after)}s")


async def reconcile_workers(
    db: Database, *, grace: float, reschedule_after: float, watching_since: datetime | None = None
) -> None:
    """One liveness pass; heartbeats older than `watching_since` count as sent at `watching_since`."""
    now = utcnow()
    async with db.session() as session:
        workers = (await session.execute(select(Worker))).scalars().all()
        instances = (
            (await session.execute(select(ModelInstance).where(col(ModelInstance.worker_id).is_not(None))))
            .scalars()
            .all()
        )  # type: ignore[union-attr]
        by_worker: dict[int, list[ModelInstance]] = {}
        for inst in instances:  # a distributed instance depends on each of its workers
            for worker_id in (inst.worker_id, *subordinate_ids(inst)):
                by_worker.setdefault(worker_id, []).append(inst)  # type: ignore[arg-type]
        for worker in workers:
            last = worker.heartbeat_time or worker.created_at
            if watching_since is not None and last < watching_since:
                last = watching_since
            silent = (now - last).total_seconds()
            owned = by_worker.get(worker.id, [])  # type: ignore[arg-type]
            if worker.state == WorkerState.READY and silent > grace:
                _mark_not_ready(worker, now, owned)
            if worker.state != WorkerState.READY and silent > grace + reschedule_after and owned:
                _reschedule(worker, owned, now, grace, reschedule_after)
        await session.commit()


class WorkerLiveness:
    """Runs liveness passes, restarting the grace window after a (re)start or an outage.

    `outage_after`: a gap this long between two successful passes means the server could not receive
    heartbeats (it was down, stalled, or its database was); the workers then get a fresh grace period.
    """

    def __init__(self, db: Database, *, grace: float, reschedule_after: float, outage_after: float) -> None:
        self.db = db
        self.grace = grace
        self.reschedule_after = reschedule_after
        self.outage_after = outage_after
        self.watching_since: datetime | None = None
        self._last_pass: datetime | None = None

    async def reconcile(self) -> None:
        now = utcnow()
        if self._last_pass is None or now - self._last_pass > timedelta(seconds=self.outage_after):
            if self._last_pass is not None:
                gap = int((now - self._last_pass).total_seconds())
                logger.warning("no liveness pass for %ds; giving workers %ds to report before judging them", gap,
                               int(self.grace))  # fmt: skip
            self.watching_since = now
        await reconcile_workers(
            self.db, grace=self.grace, reschedule_after=self.reschedule_after, watching_since=self.watching_since
        )
        self._last_pass = utcnow()
