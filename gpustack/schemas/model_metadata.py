"""ModelMetadataCache table: what an estimate needs of one model version, as a hub or a worker answered it."""

import hashlib
from datetime import datetime
from typing import Any

from sqlmodel import Field, SQLModel

from gpustack.schemas.common import NO_ID_REUSE, created_at_field, json_field, updated_at_field


def metadata_cache_key(source: str, repo_id: str, revision: str, selection: str) -> str:
    """One fixed-width key for (source, repo id or path, revision, file selection): the parts are too long
    together for a unique index on every database."""
    raw = "\x00".join((source, repo_id, revision, selection))
    return hashlib.sha256(raw.encode()).hexdigest()


class ModelMetadataCache(SQLModel, table=True):
    """One model version's weight files, config.json and GGUF header summaries (`ModelMetadata.to_dict`).

    source is "huggingface", "model_scope" or "worker"; repo_id the repo (or the path on the worker);
    revision the requested revision (or the worker's name); selection the model's filename/pattern.
    """

    __tablename__ = "model_metadata_cache"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    cache_key: str = Field(max_length=64, unique=True, index=True)
    source: str = Field(max_length=32)
    repo_id: str = Field(max_length=1024)
    revision: str = Field(max_length=255)
    selection: str = Field(default="", max_length=1024)
    commit_sha: str | None = Field(default=None, max_length=255)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ModelMetadataCachePublic(SQLModel):
    """What a change event of the cache carries (it wakes the scheduler; the data stays in the row)."""

    id: int
    source: str
    repo_id: str
    revision: str
    selection: str
    commit_sha: str | None = None
