"""Model file services: what each worker has downloaded or found, reported by the worker."""

from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select

from gpustack.schemas.common import PaginatedList
from gpustack.schemas.model_files import ModelFile, ModelFilePublic, ModelFileReport
from gpustack.schemas.workers import Worker
from gpustack.server.services.common import get_or_404, paginate


async def list_model_files(
    *, session: AsyncSession, page: int, per_page: int, worker_id: int | None = None, search: str | None = None
) -> PaginatedList[ModelFilePublic]:
    stmt = select(ModelFile)
    if search:
        stmt = stmt.where(ModelFile.source_key.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if worker_id is not None:
        stmt = stmt.where(ModelFile.worker_id == worker_id)
    return await paginate(session, stmt, page=page, per_page=per_page, public=ModelFilePublic)


async def upsert_model_file(*, session: AsyncSession, worker: Worker, data: ModelFileReport) -> ModelFile:
    """One row per (worker, source, source_key): concurrent reports (two replicas of one model on a worker)
    may each insert; the oldest row then takes the report and the others are removed."""
    same = (
        ModelFile.worker_id == worker.id,
        ModelFile.source == data.source,
        ModelFile.source_key == data.source_key,
    )
    if (await session.execute(select(ModelFile.id).where(*same).limit(1))).first() is None:
        session.add(ModelFile(worker_id=worker.id, **data.model_dump()))  # type: ignore[arg-type]
        await session.commit()
    for _ in range(3):  # a concurrent report may delete the row this one updates: read again
        try:
            return await _merge(session, worker.id, same, data)  # type: ignore[arg-type]
        except StaleDataError:
            await session.rollback()
    return await _merge(session, worker.id, same, data)  # type: ignore[arg-type]


async def _merge(session: AsyncSession, worker_id: int, same: tuple[Any, ...], data: ModelFileReport) -> ModelFile:
    """The report goes into the oldest matching row; newer duplicates are deleted."""
    rows = (await session.execute(select(ModelFile).where(*same).order_by(col(ModelFile.id)))).scalars().all()
    if not rows:  # removed (by an admin) since it was written
        rows = [ModelFile(worker_id=worker_id, **data.model_dump())]
        session.add(rows[0])
    row, extra = rows[0], [r.id for r in rows[1:]]
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    if extra:
        await session.execute(delete(ModelFile).where(col(ModelFile.id).in_(extra)))
    await session.commit()
    return row


async def delete_model_file(*, session: AsyncSession, file_id: int) -> None:
    row = await get_or_404(session, ModelFile, file_id, "model file")
    await session.delete(row)
    await session.commit()
