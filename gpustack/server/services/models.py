"""Model services: create, list, update, scale and delete (cascading to instances)."""

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import ConflictError
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import Model, ModelCreate, ModelPatch, ModelPublic, ModelUpdate
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate


async def _ensure_name_free(session: AsyncSession, name: str, exclude_id: int | None = None) -> None:
    found = (await session.execute(select(Model.id).where(Model.name == name))).scalar_one_or_none()
    if found is not None and found != exclude_id:
        raise ConflictError(f"a model named '{name}' already exists")


async def create_model(*, session: AsyncSession, data: ModelCreate) -> Model:
    await _ensure_name_free(session, data.name)
    model = Model(**data.model_dump())
    session.add(model)
    await commit_or_conflict(session, f"a model named '{data.name}' already exists")
    return model


async def list_models(
    *, session: AsyncSession, page: int, per_page: int, search: str | None = None, state: str | None = None
) -> PaginatedList[ModelPublic]:
    stmt = select(Model).order_by(col(Model.id))
    if search:
        stmt = stmt.where(Model.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if state:
        stmt = stmt.where(Model.state == state)
    return await paginate(session, stmt, page=page, per_page=per_page, public=ModelPublic)


async def get_model(*, session: AsyncSession, model_id: int) -> Model:
    return await get_or_404(session, Model, model_id, "model")


async def update_model(*, session: AsyncSession, model_id: int, data: ModelUpdate) -> Model:
    model = await get_or_404(session, Model, model_id, "model")
    await _ensure_name_free(session, data.name, exclude_id=model_id)
    for key, value in data.model_dump().items():
        setattr(model, key, value)
    await commit_or_conflict(session, f"a model named '{data.name}' already exists")
    return model


async def patch_model(*, session: AsyncSession, model_id: int, data: ModelPatch) -> Model:
    model = await get_or_404(session, Model, model_id, "model")
    model.replicas = data.replicas
    await session.commit()
    return model


async def delete_model(*, session: AsyncSession, model_id: int) -> None:
    """Deletes the model's instances through the ORM first so watchers see each deletion."""
    model = await get_or_404(session, Model, model_id, "model")
    instances = (await session.execute(select(ModelInstance).where(ModelInstance.model_id == model_id))).scalars().all()
    for inst in instances:
        await session.delete(inst)
    await session.delete(model)
    await session.commit()
