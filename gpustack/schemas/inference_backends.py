"""InferenceBackend table and DTOs: the backend catalog (built-ins and user-defined backends)."""

from datetime import datetime
from typing import Any

from pydantic import BaseModel, field_validator
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from gpustack.engines.catalog import ACCELERATORS
from gpustack.schemas.common import NO_ID_REUSE, created_at_field, json_field, updated_at_field

BACKEND_NAME = r"^[a-z0-9][a-z0-9._-]*$"


class VersionConfig(BaseModel):
    """One version: an image per accelerator kind (cuda, rocm, cann, cpu) and/or a command on PATH."""

    image_name: str | None = PField(default=None, max_length=512)  # one image for every accelerator kind
    images: dict[str, str] = {}
    run_command: str | None = PField(default=None, max_length=4096)
    entrypoint: str | None = PField(default=None, max_length=1024)
    env: dict[str, str] | None = None

    @field_validator("images")
    @classmethod
    def _kinds(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(ACCELERATORS))
        if unknown:
            raise ValueError(f"images: unknown accelerator kind {unknown}; use {', '.join(ACCELERATORS)}")
        return value


class InferenceBackendSpec(SQLModel):
    """Fields a user sets (GPUStack's InferenceBackend names)."""

    backend_name: str = Field(index=True, unique=True, max_length=255)
    version_configs: dict[str, Any] = json_field(dict)
    default_version: str | None = Field(default=None, max_length=64)
    default_backend_param: list[str] = json_field(list)
    default_run_command: str | None = Field(default="", max_length=4096)
    default_entrypoint: str | None = Field(default="", max_length=1024)
    description: str | None = Field(default=None, max_length=2048)
    health_check_path: str | None = Field(default=None, max_length=255)
    default_env: dict[str, str] = json_field(dict)
    enabled: bool = True


class InferenceBackend(InferenceBackendSpec, table=True):
    __tablename__ = "inference_backends"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    is_built_in: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class InferenceBackendCreate(BaseModel):
    backend_name: str = PField(min_length=1, max_length=255, pattern=BACKEND_NAME)
    version_configs: dict[str, VersionConfig] = {}
    default_version: str | None = PField(default=None, max_length=64)
    default_backend_param: list[str] = []
    default_run_command: str | None = PField(default="", max_length=4096)
    default_entrypoint: str | None = PField(default="", max_length=1024)
    description: str | None = PField(default=None, max_length=2048)
    health_check_path: str | None = PField(default=None, max_length=255, pattern=r"^/")
    default_env: dict[str, str] = {}
    enabled: bool = True

    @field_validator("default_version")
    @classmethod
    def _version_known(cls, value: str | None, info: Any) -> str | None:
        versions = info.data.get("version_configs") or {}
        if value and versions and value not in versions:
            raise ValueError(f"default_version {value!r} is not one of version_configs: {', '.join(versions)}")
        return value


class InferenceBackendUpdate(InferenceBackendCreate):
    """Full replacement (PUT); a built-in keeps its name."""


class InferenceBackendPublic(InferenceBackendSpec):
    id: int
    is_built_in: bool
    created_at: datetime
    updated_at: datetime


class VersionListItem(BaseModel):
    version: str
    is_deprecated: bool = False
    env: dict[str, str] | None = None


class InferenceBackendListItem(BaseModel):
    """GPUStack's compact catalog entry (GET /v2/inference-backends/list), for deployment forms."""

    backend_name: str
    is_built_in: bool | None = None
    default_version: str | None = None
    default_backend_param: list[str] | None = None
    versions: list[VersionListItem] | None = None
    enabled: bool | None = None
    default_env: dict[str, str] | None = None


class InferenceBackendResponse(BaseModel):
    items: list[InferenceBackendListItem]
