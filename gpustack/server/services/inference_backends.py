"""Backend catalog services: built-ins seeded at start-up (overridable, not deletable), user backends CRUD."""

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import ConflictError, ForbiddenError, InvalidError, NotFoundError
from gpustack.engines.catalog import BUILT_INS
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.inference_backends import (
    InferenceBackend,
    InferenceBackendCreate,
    InferenceBackendListItem,
    InferenceBackendPublic,
    InferenceBackendResponse,
    InferenceBackendUpdate,
    VersionListItem,
)
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate

logger = logging.getLogger(__name__)


def _fields(data: InferenceBackendCreate) -> dict[str, Any]:
    fields = data.model_dump()
    fields["version_configs"] = {k: v.model_dump(exclude_none=True) for k, v in data.version_configs.items()}
    return fields


async def seed_built_ins(*, session: AsyncSession) -> None:
    """Insert the built-in backends that are missing (an existing row, overridden or not, is kept);
    a server starting at the same time that inserted them first is not an error."""
    names = set((await session.execute(select(InferenceBackend.backend_name))).scalars().all())
    for name, spec in BUILT_INS.items():
        if name not in names:
            session.add(InferenceBackend(backend_name=name, is_built_in=True, **spec))
    try:
        await commit_or_conflict(session, "the built-in backends were seeded concurrently")
    except ConflictError:
        logger.info("built-in backends were seeded by another server")


async def list_backends(*, session: AsyncSession, page: int, per_page: int) -> PaginatedList[InferenceBackendPublic]:
    stmt = select(InferenceBackend)
    return await paginate(session, stmt, page=page, per_page=per_page, public=InferenceBackendPublic)


async def list_backend_items(*, session: AsyncSession) -> InferenceBackendResponse:
    """Every enabled backend with its version names (GPUStack's /list shape)."""
    stmt = select(InferenceBackend).where(col(InferenceBackend.enabled)).order_by(col(InferenceBackend.id))
    rows = (await session.execute(stmt)).scalars().all()
    return InferenceBackendResponse(
        items=[
            InferenceBackendListItem(
                backend_name=row.backend_name,
                is_built_in=row.is_built_in,
                default_version=row.default_version,
                default_backend_param=row.default_backend_param,
                versions=[VersionListItem(version=v, env=(c or {}).get("env")) for v, c in row.version_configs.items()],
                enabled=row.enabled,
                default_env=row.default_env,
            )
            for row in rows
        ]
    )


async def get_backend(*, session: AsyncSession, backend_id: int) -> InferenceBackend:
    return await get_or_404(session, InferenceBackend, backend_id, "inference backend")


async def get_backend_by_name(*, session: AsyncSession, name: str) -> InferenceBackend:
    stmt = select(InferenceBackend).where(InferenceBackend.backend_name == name)
    found = (await session.execute(stmt)).scalar_one_or_none()
    if found is None:
        raise NotFoundError(f"inference backend '{name}' not found (GET /v2/inference-backends lists them)")
    return found


async def create_backend(*, session: AsyncSession, data: InferenceBackendCreate) -> InferenceBackend:
    if data.backend_name in BUILT_INS:
        raise ConflictError(f"'{data.backend_name}' is a built-in backend: override its settings with PUT instead")
    backend = InferenceBackend(**_fields(data))
    session.add(backend)
    await commit_or_conflict(session, f"an inference backend named '{data.backend_name}' already exists")
    return backend


async def update_backend(*, session: AsyncSession, backend_id: int, data: InferenceBackendUpdate) -> InferenceBackend:
    backend = await get_or_404(session, InferenceBackend, backend_id, "inference backend")
    if backend.is_built_in and data.backend_name != backend.backend_name:
        raise InvalidError(f"built-in backend '{backend.backend_name}' cannot be renamed")
    if not backend.is_built_in and data.backend_name in BUILT_INS:
        raise ConflictError(f"'{data.backend_name}' is the name of a built-in backend")
    for key, value in _fields(data).items():
        setattr(backend, key, value)
    await commit_or_conflict(session, f"an inference backend named '{data.backend_name}' already exists")
    return backend


async def delete_backend(*, session: AsyncSession, backend_id: int) -> None:
    backend = await get_or_404(session, InferenceBackend, backend_id, "inference backend")
    if backend.is_built_in:
        raise ForbiddenError(
            f"built-in backend '{backend.backend_name}' cannot be deleted; change its settings with PUT "
            f"/v2/inference-backends/{backend_id} (or set enabled=false)"
        )
    await session.delete(backend)
    await session.commit()


async def check_backend_version(
    *, session: AsyncSession, backend: str, version: str | None, needs_command: bool = False
) -> None:
    """A model's backend_version must be one of its backend's versions (when the catalog lists any); a custom
    model without its own run_command or image needs a version that has one."""
    if not version:
        return
    row = (
        await session.execute(select(InferenceBackend).where(InferenceBackend.backend_name == backend))
    ).scalar_one_or_none()
    configs: dict[str, Any] = (row.version_configs or {}) if row else {}
    versions = sorted(configs)
    if (versions or needs_command) and version not in versions:
        known = ", ".join(versions) or "none; add one with PUT /v2/inference-backends/{id}"
        raise InvalidError(f"backend_version '{version}' is not a version of {backend}; known: {known}")
    config = configs.get(version) or {}
    if needs_command and not (config.get("run_command") or config.get("image_name") or config.get("images")):
        raise InvalidError(f"version '{version}' of {backend} has no run_command or image; the model needs one")
