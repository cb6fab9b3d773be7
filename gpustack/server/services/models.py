"""Model services: create, list, update, scale and delete (cascading to instances)."""

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import ConflictError
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import BackendEnum, Model, ModelCreate, ModelPatch, ModelPublic, ModelUpdate
from gpustack.server.redaction import redact_model
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate
from gpustack.server.services.inference_backends import check_backend_version


async def _ensure_name_free(session: AsyncSession, name: str, exclude_id: int | None = None) -> None:
    found = (await session.execute(select(Model.id).where(Model.name == name))).scalar_one_or_none()
    if found is not None and found != exclude_id:
        raise ConflictError(f"a model named '{name}' already exists")


async def _check_version(session: AsyncSession, data: ModelCreate) -> None:
    backend = data.backend.value if data.backend else ""
    needs_command = data.backend == BackendEnum.CUSTOM and not (data.run_command or data.image_name)
    await check_backend_version(
        session=session, backend=backend, version=data.backend_version, needs_command=needs_command
    )


async def create_model(*, session: AsyncSession, data: ModelCreate) -> Model:
    await _ensure_name_free(session, data.name)
    await _check_version(session, data)
    model = Model(**data.model_dump())
    session.add(model)
    await commit_or_conflict(session, f"a model named '{data.name}' already exists")
    return model


def redacted(model: ModelPublic) -> ModelPublic:
    return ModelPublic.model_validate(redact_model(model.model_dump(mode="json")))


async def list_models(
    *,
    session: AsyncSession,
    page: int,
    per_page: int,
    search: str | None = None,
    state: str | None = None,
    reveal_secrets: bool = False,
) -> PaginatedList[ModelPublic]:
    """Secrets in env, parameters and commands are masked unless `reveal_secrets` (admins)."""
    stmt = select(Model).order_by(col(Model.id))
    if search:
        stmt = stmt.where(Model.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if state:
        stmt = stmt.where(Model.state == state)
    found = await paginate(session, stmt, page=page, per_page=per_page, public=ModelPublic)
    if not reveal_secrets:
        found.items = [redacted(m) for m in found.items]
    return found


async def get_model(
    *, session: AsyncSession, model_id: int, is_admin: bool = True, worker_id: int | None = None
) -> ModelPublic:
    """Admins see every model whole; a worker sees the models it runs an instance of whole (it needs
    their env to launch them); anyone else sees secrets masked."""
    model = ModelPublic.model_validate(await get_or_404(session, Model, model_id, "model"), from_attributes=True)
    if is_admin:
        return model
    if worker_id is not None:
        stmt = select(ModelInstance.id).where(ModelInstance.model_id == model_id, ModelInstance.worker_id == worker_id)
        if (await session.execute(stmt.limit(1))).first():
            return model
    return redacted(model)


async def update_model(*, session: AsyncSession, model_id: int, data: ModelUpdate) -> Model:
    model = await get_or_404(session, Model, model_id, "model")
    await _ensure_name_free(session, data.name, exclude_id=model_id)
    await _check_version(session, data)
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
