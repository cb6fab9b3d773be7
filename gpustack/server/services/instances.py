"""Model instance services: list, read, state reports from the owning worker, delete."""

from collections.abc import Mapping
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import ForbiddenError, InvalidError
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import (
    WORKER_OWNED_STATES,
    ModelInstance,
    ModelInstancePublic,
    ModelInstanceUpdate,
    SubordinateReport,
)
from gpustack.schemas.workers import Worker
from gpustack.server.services.common import get_or_404, paginate
from gpustack.server.services.watch import RowFilter


async def list_instances(
    *,
    session: AsyncSession,
    page: int,
    per_page: int,
    model_id: int | None = None,
    worker_id: int | None = None,
    state: str | None = None,
    search: str | None = None,
) -> PaginatedList[ModelInstancePublic]:
    stmt = select(ModelInstance)
    if search:
        stmt = stmt.where(ModelInstance.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if model_id is not None:
        stmt = stmt.where(ModelInstance.model_id == model_id)
    if worker_id is not None:
        stmt = stmt.where((await worker_filter(session=session, worker_id=worker_id)).condition)
    if state:
        stmt = stmt.where(ModelInstance.state == state)
    return await paginate(session, stmt, page=page, per_page=per_page, public=ModelInstancePublic)


def _subordinate_ids(servers: Any) -> set[int]:
    """Worker ids of the subordinates in a stored list or in GPUStack's public object."""
    if isinstance(servers, dict):
        servers = servers.get("subordinate_workers") or []
    return {s["worker_id"] for s in servers or [] if isinstance(s, dict) and s.get("worker_id") is not None}


async def worker_filter(*, session: AsyncSession, worker_id: int) -> RowFilter:
    """Instances a worker takes part in: placed on it, or with it as a subordinate of a distributed placement."""
    stmt = select(ModelInstance.id, ModelInstance.distributed_servers).where(col(ModelInstance.worker_id).is_not(None))
    ids = [iid for iid, servers in (await session.execute(stmt)).all() if worker_id in _subordinate_ids(servers)]

    def takes_part(data: Mapping[str, Any]) -> bool:
        return data.get("worker_id") == worker_id or worker_id in _subordinate_ids(data.get("distributed_servers"))

    return RowFilter(or_(col(ModelInstance.worker_id) == worker_id, col(ModelInstance.id).in_(ids)), takes_part)


async def get_instance(*, session: AsyncSession, instance_id: int) -> ModelInstance:
    return await get_or_404(session, ModelInstance, instance_id, "model instance")


async def report_instance(
    *, session: AsyncSession, instance_id: int, worker: Worker, data: ModelInstanceUpdate
) -> ModelInstance:
    """A worker reports progress of an instance placed on it, or a subordinate worker of a distributed
    instance its own part; other instances are refused."""
    inst = await get_or_404(session, ModelInstance, instance_id, "model instance")
    if inst.worker_id != worker.id:
        if worker.id in _subordinate_ids(inst.distributed_servers) and data.subordinate is not None:
            _report_part(inst, worker.id, data.subordinate)
            await session.commit()
            return inst
        raise ForbiddenError(f"model instance {instance_id} is not assigned to worker '{worker.name}'")
    for state in (data.state, data.subordinate.state if data.subordinate else None):
        if state is not None and state not in WORKER_OWNED_STATES:
            raise InvalidError(f"a worker cannot set state '{state.value}'")
    for key, value in data.model_dump(exclude_unset=True, exclude={"subordinate"}).items():
        setattr(inst, key, value)
    await session.commit()
    return inst


def _report_part(inst: ModelInstance, worker_id: int, report: SubordinateReport) -> None:
    """Write a subordinate's report into its entry (a new list, so the JSON column is saved)."""
    if report.state not in WORKER_OWNED_STATES:
        raise InvalidError(f"a worker cannot set state '{report.state.value}'")
    fields = report.model_dump(mode="json")
    inst.distributed_servers = [
        {**sub, **fields} if sub.get("worker_id") == worker_id else sub for sub in inst.distributed_servers
    ]


async def delete_instance(*, session: AsyncSession, instance_id: int) -> None:
    """Deleting an instance is how users restart one: the model controller creates a replacement."""
    inst = await get_or_404(session, ModelInstance, instance_id, "model instance")
    await session.delete(inst)
    await session.commit()
