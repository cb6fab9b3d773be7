"""Worker liveness against a real database: stale heartbeats, unreachable instances, rescheduling."""

import asyncio
from datetime import timedelta
from typing import Any

from sqlmodel import select

from gpustack.schemas.common import utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker, WorkerState
from gpustack.server.controllers.workers import WorkerLiveness, reconcile_workers
from gpustack.server.db import Database

GRACE = 10.0
RESCHEDULE_AFTER = 20.0
CLAIM = {"vram": {"0": 1000}, "ram": 0, "offload_layers": 2, "total_layers": 2}


async def add_worker(
    db: Database, name: str, *, silent_for: float | None, state: WorkerState = WorkerState.READY
) -> int:
    """A worker whose last heartbeat was `silent_for` seconds ago (None: never, created that long ago)."""
    now = utcnow()
    async with db.session() as session:
        worker = Worker(name=name, ip="10.0.0.9", port=10150, state=state)
        if silent_for is not None:
            worker.heartbeat_time = now - timedelta(seconds=silent_for)
        else:
            worker.created_at = now - timedelta(seconds=GRACE + RESCHEDULE_AFTER + 60)
        session.add(worker)
        await session.commit()
        return worker.id  # type: ignore[return-value]


async def add_instances(db: Database, worker_id: int, states: list[InstanceState]) -> list[int]:
    async with db.session() as session:
        worker = await session.get(Worker, worker_id)
        assert worker is not None
        model = Model(name=f"m-{worker.name}", local_path="/models/x.gguf", replicas=len(states))
        session.add(model)
        await session.flush()
        rows = [
            ModelInstance(
                name=f"{worker.name}-i{i}",
                model_id=model.id,  # type: ignore[arg-type]
                model_name=model.name,
                state=state,
                worker_id=worker_id,
                worker_name=worker.name,
                worker_ip=worker.ip,
                gpu_indexes=[0],
                port=40000 + i,
                pid=1234,
                computed_resource_claim=CLAIM,
            )
            for i, state in enumerate(states)
        ]
        session.add_all(rows)
        await session.commit()
        return [r.id for r in rows]  # type: ignore[misc]


async def get(db: Database, kind: Any, ids: list[int]) -> list[Any]:
    async with db.session() as session:
        rows = (await session.execute(select(kind).where(kind.id.in_(ids)))).scalars().all()
    return sorted(rows, key=lambda r: r.id)


async def reconcile(db: Database) -> None:
    await reconcile_workers(db, grace=GRACE, reschedule_after=RESCHEDULE_AFTER)


async def test_fresh_heartbeat_changes_nothing(db: Database) -> None:
    wid = await add_worker(db, "fresh", silent_for=2)
    ids = await add_instances(db, wid, [InstanceState.RUNNING])

    await reconcile(db)

    [worker] = await get(db, Worker, [wid])
    [inst] = await get(db, ModelInstance, ids)
    assert (worker.state, worker.state_message) == (WorkerState.READY, None)
    assert (inst.state, inst.worker_id) == (InstanceState.RUNNING, wid)


async def test_stale_heartbeat_makes_worker_not_ready_and_live_instances_unreachable(db: Database) -> None:
    wid = await add_worker(db, "quiet", silent_for=GRACE + 5)
    states = [InstanceState.RUNNING, InstanceState.STARTING, InstanceState.SCHEDULED, InstanceState.ERROR]
    ids = await add_instances(db, wid, states)

    await reconcile(db)

    [worker] = await get(db, Worker, [wid])
    assert worker.state == WorkerState.NOT_READY
    assert worker.state_message is not None and "no heartbeat for" in worker.state_message
    silent = int(worker.state_message.split("for ")[1].rstrip("s"))
    assert GRACE + 5 <= silent <= GRACE + 10
    running, starting, scheduled, errored = await get(db, ModelInstance, ids)
    for inst in (running, starting):
        assert inst.state == InstanceState.UNREACHABLE
        assert inst.state_message == "worker 'quiet' is not responding"
        assert inst.worker_id == wid, "not rescheduled yet"
        assert inst.computed_resource_claim == CLAIM
    assert scheduled.state == InstanceState.SCHEDULED
    assert errored.state == InstanceState.ERROR


async def test_worker_that_never_reported_is_not_ready(db: Database) -> None:
    wid = await add_worker(db, "silent-from-birth", silent_for=None)

    await reconcile(db)

    [worker] = await get(db, Worker, [wid])
    assert (worker.state, worker.state_message) == (WorkerState.NOT_READY, "never sent a heartbeat")


async def test_long_absence_resets_instances_to_pending_without_placement(db: Database) -> None:
    wid = await add_worker(db, "gone", silent_for=GRACE + RESCHEDULE_AFTER + 5)
    ids = await add_instances(db, wid, [InstanceState.RUNNING, InstanceState.ERROR])

    await reconcile(db)

    [worker] = await get(db, Worker, [wid])
    assert worker.state == WorkerState.NOT_READY
    for inst in await get(db, ModelInstance, ids):
        assert inst.state == InstanceState.PENDING
        assert inst.state_message == f"rescheduled: worker 'gone' has been gone for over {int(RESCHEDULE_AFTER)}s"
        assert inst.worker_id is None and inst.worker_name is None and inst.worker_ip is None
        assert inst.gpu_indexes == [] and inst.computed_resource_claim is None
        assert inst.port is None and inst.pid is None


async def test_not_ready_worker_keeps_instances_until_reschedule_deadline(db: Database) -> None:
    wid = await add_worker(db, "waiting", silent_for=GRACE + RESCHEDULE_AFTER - 5, state=WorkerState.NOT_READY)
    ids = await add_instances(db, wid, [InstanceState.UNREACHABLE])

    await reconcile(db)
    [inst] = await get(db, ModelInstance, ids)
    assert (inst.state, inst.worker_id) == (InstanceState.UNREACHABLE, wid)

    async with db.session() as session:
        worker = await session.get(Worker, wid)
        assert worker is not None
        worker.heartbeat_time = utcnow() - timedelta(seconds=GRACE + RESCHEDULE_AFTER + 2)
        await session.commit()
    await reconcile(db)
    [inst] = await get(db, ModelInstance, ids)
    assert (inst.state, inst.worker_id) == (InstanceState.PENDING, None)


async def test_only_the_silent_worker_is_affected(db: Database) -> None:
    alive = await add_worker(db, "alive", silent_for=1)
    dead = await add_worker(db, "dead", silent_for=GRACE + RESCHEDULE_AFTER + 30)
    alive_ids = await add_instances(db, alive, [InstanceState.RUNNING])
    dead_ids = await add_instances(db, dead, [InstanceState.RUNNING])

    await reconcile(db)

    workers = await get(db, Worker, [alive, dead])
    assert [w.state for w in workers] == [WorkerState.READY, WorkerState.NOT_READY]
    [kept] = await get(db, ModelInstance, alive_ids)
    [moved] = await get(db, ModelInstance, dead_ids)
    assert (kept.state, kept.worker_id) == (InstanceState.RUNNING, alive)
    assert (moved.state, moved.worker_id) == (InstanceState.PENDING, None)


async def set_silence(db: Database, worker_id: int, seconds: float) -> None:
    async with db.session() as session:
        worker = await session.get(Worker, worker_id)
        assert worker is not None
        worker.heartbeat_time = utcnow() - timedelta(seconds=seconds)
        await session.commit()


async def test_server_start_gives_workers_a_grace_period_before_judging(db: Database) -> None:
    """After a long server outage every heartbeat is stale: the first passes must not restart engines."""
    wid = await add_worker(db, "outlived", silent_for=GRACE + RESCHEDULE_AFTER + 200)
    ids = await add_instances(db, wid, [InstanceState.RUNNING])
    liveness = WorkerLiveness(db, grace=1.0, reschedule_after=1.0, outage_after=60.0)

    await liveness.reconcile()

    [worker] = await get(db, Worker, [wid])
    [inst] = await get(db, ModelInstance, ids)
    assert worker.state == WorkerState.READY
    assert (inst.state, inst.worker_id, inst.pid) == (InstanceState.RUNNING, wid, 1234)

    await asyncio.sleep(3.1)  # past grace + reschedule_after since the start, still silent: now it is judged
    await liveness.reconcile()
    [worker] = await get(db, Worker, [wid])
    [inst] = await get(db, ModelInstance, ids)
    assert worker.state == WorkerState.NOT_READY
    assert (inst.state, inst.worker_id) == (InstanceState.PENDING, None)


async def test_a_gap_between_passes_restarts_the_grace_window(db: Database) -> None:
    """A database outage stops both heartbeats and passes; the pass after it must not judge the workers."""
    wid = await add_worker(db, "db-outage", silent_for=1)
    ids = await add_instances(db, wid, [InstanceState.RUNNING])
    liveness = WorkerLiveness(db, grace=GRACE, reschedule_after=RESCHEDULE_AFTER, outage_after=1.0)
    await liveness.reconcile()

    await set_silence(db, wid, GRACE + RESCHEDULE_AFTER + 5)  # no heartbeat got through the outage
    await asyncio.sleep(2.1)
    await liveness.reconcile()

    [worker] = await get(db, Worker, [wid])
    [inst] = await get(db, ModelInstance, ids)
    assert worker.state == WorkerState.READY and (inst.state, inst.worker_id) == (InstanceState.RUNNING, wid)


async def test_without_a_gap_a_stale_worker_is_still_judged(db: Database) -> None:
    wid = await add_worker(db, "no-gap", silent_for=1)
    ids = await add_instances(db, wid, [InstanceState.RUNNING])
    liveness = WorkerLiveness(db, grace=GRACE, reschedule_after=RESCHEDULE_AFTER, outage_after=60.0)
    liveness.watching_since = utcnow() - timedelta(seconds=GRACE + RESCHEDULE_AFTER + 10)  # started long ago
    liveness._last_pass = utcnow()

    await set_silence(db, wid, GRACE + 5)
    await liveness.reconcile()

    [worker] = await get(db, Worker, [wid])
    [inst] = await get(db, ModelInstance, ids)
    assert worker.state == WorkerState.NOT_READY and inst.state == InstanceState.UNREACHABLE


async def test_instance_its_worker_reports_running_is_never_rescheduled(db: Database) -> None:
    """The worker re-reported the instance running (it is alive, its heartbeats are not through yet)."""
    wid = await add_worker(db, "reporting", silent_for=GRACE + RESCHEDULE_AFTER + 5, state=WorkerState.NOT_READY)
    running, unreachable = await add_instances(db, wid, [InstanceState.RUNNING, InstanceState.UNREACHABLE])

    await reconcile(db)

    kept, moved = await get(db, ModelInstance, [running, unreachable])
    assert (kept.state, kept.worker_id, kept.port) == (InstanceState.RUNNING, wid, 40000)
    assert (moved.state, moved.worker_id) == (InstanceState.PENDING, None)
