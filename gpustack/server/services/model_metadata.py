"""Model metadata cache: rows of what hubs and workers answered, read by the scheduler and the dry run."""

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.scheduler.estimate.metadata import ModelMetadata
from gpustack.schemas.common import utcnow
from gpustack.schemas.model_metadata import ModelMetadataCache, metadata_cache_key


async def cached_metadata(*, session: AsyncSession, keys: Iterable[str]) -> dict[str, ModelMetadataCache]:
    """The cached rows among `keys`, by cache key."""
    wanted = sorted(set(keys))
    if not wanted:
        return {}
    stmt = select(ModelMetadataCache).where(col(ModelMetadataCache.cache_key).in_(wanted))
    return {row.cache_key: row for row in (await session.execute(stmt)).scalars()}


async def store_metadata(
    *,
    session: AsyncSession,
    source: str,
    repo_id: str,
    revision: str,
    selection: str,
    metadata: ModelMetadata,
    commit_sha: str | None = None,
) -> ModelMetadataCache:
    """Insert or refresh the row of one model version; a concurrent insert of the same key is merged."""
    key = metadata_cache_key(source, repo_id, revision, selection)
    for _ in range(2):
        row = (await cached_metadata(session=session, keys=[key])).get(key)
        if row is None:
            row = ModelMetadataCache(
                cache_key=key, source=source, repo_id=repo_id, revision=revision, selection=selection
            )
            session.add(row)
        row.commit_sha, row.data, row.updated_at = commit_sha, metadata.to_dict(), utcnow()  # refreshed even if equal
        try:
            await session.commit()
            return row
        except IntegrityError:  # another writer inserted the key first: update theirs
            await session.rollback()
    raise RuntimeError(f"metadata row {key} could not be stored")
