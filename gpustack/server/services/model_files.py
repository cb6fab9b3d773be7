"""Model file services: what each worker has downloaded or found, reported by the worker."""

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.schemas.common import PaginatedList
from gpustack.schemas.model_files import ModelFile, ModelFilePublic, ModelFileReport
from gpustack.schemas.workers import Worker
from gpustack.server.services.common import get_or_404, paginate


async def list_model_files(
    *, session: AsyncSession, page: int, per_page: int, worker_id: int | None = None
) -> PaginatedList[ModelFilePublic]:
    stmt = select(ModelFile).order_by(col(ModelFile.id))
    if worker_id is not None:
        stmt = stmt.where(ModelFile.worker_id == worker_id)
    return await paginate(session, stmt, page=page, per_page=per_page, public=ModelFilePublic)


async def upsert_model_file(*, session: AsyncSession, worker: Worker, data: ModelFileReport) -> ModelFile:
    stmt = select(ModelFile).where(
        ModelFile.worker_id == worker.id,
        ModelFile.source == data.source,
        ModelFile.source_key == data.source_key,
    )
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None:
        row = ModelFile(worker_id=worker.id, source=data.source, source_key=data.source_key)  # type: ignore[arg-type]
        session.add(row)
    for key, value in data.model_dump().items():
        setattr(row, key, value)
    await session.commit()
    return row


async def delete_model_file(*, session: AsyncSession, file_id: int) -> None:
    row = await get_or_404(session, ModelFile, file_id, "model file")
    await session.delete(row)
    await session.commit()
