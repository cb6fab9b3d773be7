"""Model controller: keeps each model's instance count equal to `replicas` and its state in sync."""

import secrets
from collections import Counter, defaultdict
from collections.abc import Iterable

from sqlalchemy import func
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


def model_state(replicas: int, states: Iterable[str]) -> tuple[ModelState, int]:
    return _state_of(replicas, Counter(str(s) for s in states))


def _state_of(replicas: int, counts: Counter[str]) -> tuple[ModelState, int]:
    ready = counts[InstanceState.RUNNING]
    total = sum(counts.values())
    if replicas == 0:
        return ModelState.STOPPED, ready
    if ready >= replicas:
        return ModelState.RUNNING, ready
    if ready > 0:
        return ModelState.PARTIALLY_RUNNING, ready
    if total and counts[InstanceState.ERROR] == total:
        return ModelState.ERROR, ready
    return ModelState.PENDING, ready


async def _scale_down(session: AsyncSession, model: Model, extra: int, counts: Counter[str]) -> None:
    """Loads only this model's instances, and deletes the `extra` least useful ones."""
    stmt = select(ModelInstance).where(ModelInstance.model_id == model.id)
    instances = (await session.execute(stmt)).scalars().all()
    ordered = sorted(instances, key=lambda i: (_REMOVAL_ORDER.get(i.state, 0), -(i.id or 0)))
    for inst in ordered[:extra]:
        counts[str(inst.state)] -= 1
        await session.delete(inst)


def _scale_up(session: AsyncSession, model: Model, missing: int, counts: Counter[str]) -> None:
    for _ in range(missing):
        session.add(
            ModelInstance(
                name=f"{model.name}-{secrets.token_hex(3)}",
                model_id=model.id,  # type: ignore[arg-type]
                model_name=model.name,
                source=model.source,
                state=InstanceState.PENDING,
            )
        )
    counts[InstanceState.PENDING] += missing  # so this pass's model state counts them


async def _state_counts(session: AsyncSession) -> dict[int, Counter[str]]:
    """Instances per model and state, counted by the database: a pass does not load every instance."""
    stmt = select(ModelInstance.model_id, ModelInstance.state, func.count()).group_by(
        col(ModelInstance.model_id), col(ModelInstance.state)
    )
    out: dict[int, Counter[str]] = defaultdict(Counter)
    for model_id, state, count in (await session.execute(stmt)).all():
        out[model_id][str(state)] += count
    return out


async def _sync_names(session: AsyncSession) -> None:
    """Instances still carrying a renamed model's old name (only those rows are loaded)."""
    stmt = (
        select(ModelInstance, Model.name)
        .join(Model, col(Model.id) == col(ModelInstance.model_id))
        .where(col(ModelInstance.model_name) != col(Model.name))
    )
    for inst, name in (await session.execute(stmt)).all():
        inst.model_name = name


async def reconcile_models(db: Database) -> None:
    """One pass costs O(models + instances that change), not O(all instances): counts come from SQL."""
    async with db.session() as session:
        models = (await session.execute(select(Model).order_by(col(Model.id)))).scalars().all()
        counts = await _state_counts(session)
        for model in models:
            mine = counts[model.id]  # type: ignore[index]
            missing = model.replicas - sum(mine.values())
            if missing > 0:
                _scale_up(session, model, missing, mine)
            elif missing < 0:
                await _scale_down(session, model, -missing, mine)
            state, ready = _state_of(model.replicas, mine)
            if model.state != state:
                model.state = state
            if model.ready_replicas != ready:
                model.ready_replicas = ready
        await _sync_names(session)
        await session.commit()
