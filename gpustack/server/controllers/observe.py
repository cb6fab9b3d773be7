"""Observer loops: state gauges and scheduler decisions for /metrics, and the GPU history sampler."""

from sqlalchemy import func, select
from sqlmodel import col

from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.workers import Worker, WorkerState
from gpustack.server.db import Database
from gpustack.server.events import Event, EventBus, EventType
from gpustack.server.metrics import ServerMetrics
from gpustack.server.services.gpu_history import sample_gpus

_WAITING = {InstanceState.PENDING.value, InstanceState.ANALYZING.value}


async def refresh_state_gauges(db: Database, metrics: ServerMetrics) -> None:
    """Instances and workers by state, counted in SQL by this loop (a scrape reads the gauges only)."""
    async with db.session() as session:
        instances = dict((await session.execute(_count(ModelInstance))).all())
        workers = dict((await session.execute(_count(Worker))).all())
    for state in InstanceState:
        metrics.instances.labels(state.value).set(instances.get(state.value, 0))
    for wstate in WorkerState:
        metrics.workers.labels(wstate.value).set(workers.get(wstate.value, 0))
    metrics.pending.set(sum(instances.get(s, 0) for s in _WAITING))


def _count(table: type[ModelInstance] | type[Worker]):  # type: ignore[no-untyped-def]
    return select(col(table.state), func.count()).group_by(col(table.state))


def decision(ev: Event) -> str | None:
    """'placed' or 'refused' when an instance event is a scheduling outcome; None otherwise."""
    if ev.type != EventType.UPDATED:
        return None
    state, previous = ev.data.get("state"), ev.previous
    if state == InstanceState.SCHEDULED.value and previous.get("state") in _WAITING:
        return "placed"
    if state == InstanceState.PENDING.value and ("state" in previous or "state_message" in previous):
        return "refused" if ev.data.get("state_message") else None
    return None


async def count_decisions(bus: EventBus, metrics: ServerMetrics) -> None:
    for outcome in ("placed", "refused"):
        metrics.decisions.labels(outcome)  # exported at 0 before the first decision
    while not bus.closed:
        with bus.subscribe("model_instances") as sub:
            while (ev := await sub.queue.get()) is not None:
                if (made := decision(ev)) is not None:
                    metrics.decisions.labels(made).inc()


async def sample_history(db: Database, retention_days: int) -> None:
    async with db.session() as session:
        await sample_gpus(session=session, retention_days=retention_days)
