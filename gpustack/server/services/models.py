"""Model services: create, list, update, scale and delete (cascading to instances)."""

import asyncio
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.compat.enums import lenient
from gpustack.core.errors import ConflictError
from gpustack.engines.metadata import categories_from_files
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import (
    WIRE_MODEL_STATES,
    BackendEnum,
    Model,
    ModelCreate,
    ModelPatch,
    ModelPublic,
    ModelState,
    ModelUpdate,
    SourceEnum,
)
from gpustack.server.redaction import redact_model
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate
from gpustack.server.services.inference_backends import check_backend_version
from gpustack.server.services.watch import RowFilter


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
    if not data.categories and data.source == SourceEnum.LOCAL_PATH and data.local_path:
        data.categories = await asyncio.to_thread(categories_from_files, data.local_path)
    await _ensure_name_free(session, data.name)
    await _check_version(session, data)
    model = Model(**data.model_dump(exclude={"cluster_id"}))
    session.add(model)
    await commit_or_conflict(session, f"a model named '{data.name}' already exists")
    return model


_PARSE_STATE = lenient(ModelState, {"partial": ModelState.PARTIALLY_RUNNING.value})


def state_condition(state: str) -> ColumnElement[bool]:
    """GPUStack's state filter: ready = a replica answers, not_ready = none does yet, stopped = 0 replicas."""
    wanted = state.strip().lower()
    if wanted == "ready":
        return col(Model.ready_replicas) > 0
    if wanted == "not_ready":
        return and_(col(Model.ready_replicas) == 0, col(Model.replicas) > 0)
    if wanted == "stopped":
        return col(Model.replicas) == 0
    return col(Model.state) == _PARSE_STATE(wanted)


def state_filter(state: str | None) -> RowFilter | None:
    """`state_condition` for a watch stream, with its mirror on a model's public form."""
    if not state:
        return None
    wanted = state.strip().lower()
    predicates: dict[str, Callable[[Mapping[str, Any]], bool]] = {
        "ready": lambda m: (m.get("ready_replicas") or 0) > 0,
        "not_ready": lambda m: (m.get("ready_replicas") or 0) == 0 and (m.get("replicas") or 0) > 0,
        "stopped": lambda m: (m.get("replicas") or 0) == 0,
    }
    if wanted in predicates:
        return RowFilter(state_condition(wanted), predicates[wanted])
    raw = _PARSE_STATE(wanted)
    wire = WIRE_MODEL_STATES.get(ModelState(raw), raw) if raw in set(ModelState) else raw
    return RowFilter(state_condition(wanted), lambda m: m.get("state") == wire)


async def _ids_in_categories(session: AsyncSession, categories: list[str]) -> list[int]:
    """Models having any of `categories` (a JSON list column: matched here, portable across databases);
    an empty string matches models without a category, as in GPUStack."""
    wanted = set(categories)
    rows = (await session.execute(select(Model.id, Model.categories))).all()
    return [mid for mid, cats in rows if wanted & set(cats or []) or ("" in wanted and not cats)]


def redacted(model: ModelPublic) -> ModelPublic:
    return ModelPublic.model_validate(redact_model(model.model_dump(mode="json")))


async def list_models(
    *,
    session: AsyncSession,
    page: int,
    per_page: int,
    search: str | None = None,
    state: str | None = None,
    backend: str | None = None,
    categories: list[str] | None = None,
    reveal_secrets: bool = False,
) -> PaginatedList[ModelPublic]:
    """Secrets in env, parameters and commands are masked unless `reveal_secrets` (admins). `state` takes
    GPUStack's filter values (ready, not_ready, stopped) or a model state; `categories` matches any."""
    stmt = select(Model)
    if search:
        stmt = stmt.where(Model.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if state:
        stmt = stmt.where(state_condition(state))
    if backend:
        stmt = stmt.where(func.lower(Model.backend) == lenient(BackendEnum)(backend))
    if categories:
        found_ids = await _ids_in_categories(session, categories)
        stmt = stmt.where(col(Model.id).in_(found_ids))
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
    for key, value in data.model_dump(exclude={"cluster_id"}).items():
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
