"""ModelFile table: a model's files as downloaded (or found) on one worker."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from gpustack.schemas.common import created_at_field, enum_field, updated_at_field
from gpustack.schemas.models import SourceEnum


class ModelFileState(StrEnum):
    DOWNLOADING = "downloading"
    READY = "ready"
    ERROR = "error"


class ModelFileBase(SQLModel):
    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)
    source_key: str = Field(max_length=1024, description="repo id/filename or local path")
    resolved_path: str | None = Field(default=None, max_length=2048)
    size: int | None = None
    state: ModelFileState = enum_field(ModelFileState.DOWNLOADING)
    state_message: str | None = Field(default=None, max_length=4096)
    download_progress: float = 0.0


class ModelFile(ModelFileBase, table=True):
    __tablename__ = "model_files"
    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(
        sa_column=Column(Integer, ForeignKey("workers.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ModelFileReport(BaseModel):
    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)
    source_key: str
    resolved_path: str | None = None
    size: int | None = None
    state: ModelFileState = ModelFileState.DOWNLOADING
    state_message: str | None = None
    download_progress: float = 0.0


class ModelFilePublic(ModelFileBase):
    id: int
    worker_id: int
    created_at: datetime
    updated_at: datetime
