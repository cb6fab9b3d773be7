"""Model controller: keeps each model's instance count equal to `replicas` and its state in sync."""

import secrets

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.models import Model, ModelState
from gpustack.server.db import Database

# Which instances go first when scaling down: not yet useful ones before running ones.
_REMOVAL_ORDER = {
    InstanceState.ERROR: 0,
    InstanceState.PENDING: 1,
    InstanceState.ANALYZING: 1,
    InstanceState.UNREACHABLE: 2,
    InstanceState.SCHEDULED: 3,
    InstanceState.INITIALIZING: 4,
    InstanceState.DOWNLOADING: 4,
    InstanceState.STARTING: 5,
    InstanceState.RUNNING: 6,
}


def model_state(replicas: int, states: list[str]) -> tuple[ModelState, int]:
    ready = sum(1 for s in states if s == InstanceState.RUNNING)
    if replicas == 0:
        return ModelState.STOPPED, ready
    if ready >= replicas:
        return ModelState.RUNNING, ready
    if ready > 0:
        return ModelState.PARTIALLY_RUNNING, ready
    if states and all(s == InstanceState.ERROR for s in states):
        return ModelState.ERROR, ready
    return ModelState.PENDING, ready


def _sync_replicas(session: AsyncSession, model: Model, instances: list[ModelInstance]) -> None:
    missing = model.replicas - len(instances)
    for _ in range(max(0, missing)):
        inst = ModelInstance(
            name=f"{model.name}-{secrets.token_hex(3)}",
            model_id=model.id,  # type: ignore[arg-type]
            model_name=model.name,
            state=InstanceState.PENDING,
        )
        session.add(inst)
        instances.append(inst)  # so this pass's model state counts it
    if missing < 0:
        extra = sorted(instances, key=lambda i: (_REMOVAL_ORDER.get(i.state, 0), -(i.id or 0)))
        for inst in extra[:-missing]:
            instances.remove(inst)
            session.sync_session.delete(inst)


def _sync_state(model: Model, instances: list[ModelInstance]) -> None:
    state, ready = model_state(model.replicas, [i.state for i in instances])
    if model.state != state:
        model.state = state
    if model.ready_replicas != ready:
        model.ready_replicas = ready
    for inst in instances:
        if inst.model_name != model.name:
            inst.model_name = model.name


async def reconcile_models(db: Database) -> None:
    async with db.session() as session:
        models = (await session.execute(select(Model).order_by(col(Model.id)))).scalars().all()
        rows = (await session.execute(select(ModelInstance))).scalars().all()
        by_model: dict[int, list[ModelInstance]] = {}
        for inst in rows:
            by_model.setdefault(inst.model_id, []).append(inst)
        for model in models:
            instances = by_model.get(model.id, [])  # type: ignore[arg-type]
            _sync_replicas(session, model, instances)
            _sync_state(model, instances)
        await session.commit()
