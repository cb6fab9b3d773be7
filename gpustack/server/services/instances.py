"""Model instance services: list, read, state reports from the owning worker, delete."""

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from gpustack.core.errors import ForbiddenError, InvalidError
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import (
    WORKER_OWNED_STATES,
    ModelInstance,
    ModelInstancePublic,
    ModelInstanceUpdate,
)
from gpustack.schemas.workers import Worker
from gpustack.server.services.common import get_or_404, paginate


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
        stmt = stmt.where(ModelInstance.worker_id == worker_id)
    if state:
        stmt = stmt.where(ModelInstance.state == state)
    return await paginate(session, stmt, page=page, per_page=per_page, public=ModelInstancePublic)


async def get_instance(*, session: AsyncSession, instance_id: int) -> ModelInstance:
    return await get_or_404(session, ModelInstance, instance_id, "model instance")


async def report_instance(
    *, session: AsyncSession, instance_id: int, worker: Worker, data: ModelInstanceUpdate
) -> ModelInstance:
    """A worker reports progress of an instance placed on it; other instances are refused."""
    inst = await get_or_404(session, ModelInstance, instance_id, "model instance")
    if inst.worker_id != worker.id:
        raise ForbiddenError(f"model instance {instance_id} is not assigned to worker '{worker.name}'")
    if data.state is not None and data.state not in WORKER_OWNED_STATES:
        raise InvalidError(f"a worker cannot set state '{data.state.value}'")
    for key, value in data.model_dump(exclude_unset=True).items():
        setattr(inst, key, value)
    await session.commit()
    return inst


async def delete_instance(*, session: AsyncSession, instance_id: int) -> None:
    """Deleting an instance is how users restart one: the model controller creates a replacement."""
    inst = await get_or_404(session, ModelInstance, instance_id, "model instance")
    await session.delete(inst)
    await session.commit()
