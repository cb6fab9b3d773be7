"""ModelFile table: a model's files as downloaded (or found) on one worker."""

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, computed_field, field_validator
from pydantic import Field as PField
from sqlalchemy import BigInteger, Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from gpustack.schemas.common import NO_ID_REUSE, created_at_field, enum_field, updated_at_field
from gpustack.schemas.models import SourceEnum


class ModelFileState(StrEnum):
    DOWNLOADING = "downloading"
    READY = "ready"
    ERROR = "error"


class ModelFileBase(SQLModel):
    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)
    source_key: str = Field(max_length=1024, description="repo id/filename or local path")
    resolved_path: str | None = Field(default=None, max_length=2048)
    size: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    state: ModelFileState = enum_field(ModelFileState.DOWNLOADING)
    state_message: str | None = Field(default=None, max_length=4096)
    download_progress: float = 0.0


class ModelFile(ModelFileBase, table=True):
    __tablename__ = "model_files"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    worker_id: int = Field(
        sa_column=Column(Integer, ForeignKey("workers.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ModelFileReport(BaseModel):
    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)
    source_key: str = PField(min_length=1, max_length=1024)
    resolved_path: str | None = PField(default=None, max_length=2048)
    size: int | None = PField(default=None, ge=0, le=2**63 - 1)
    state: ModelFileState = ModelFileState.DOWNLOADING
    state_message: str | None = None
    download_progress: float = 0.0

    @field_validator("state_message")
    @classmethod
    def _fit_message(cls, value: str | None) -> str | None:
        """Free text (often an error): cut to the column size rather than refuse the report."""
        return value[:4096] if value else value


class ModelFilePublic(ModelFileBase):
    id: int
    worker_id: int
    created_at: datetime
    updated_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def local_path(self) -> str | None:
        """GPUStack's name for a local file's path."""
        return self.source_key if self.source == SourceEnum.LOCAL_PATH else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_paths(self) -> list[str]:
        return [self.resolved_path] if self.resolved_path else []
