"""ModelInstance table and DTOs: one replica of a model, its placement and lifecycle state."""

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, field_serializer, field_validator
from pydantic import Field as PField
from sqlalchemy import Column, ForeignKey, Integer
from sqlmodel import Field, SQLModel

from gpustack.schemas.clusters import DEFAULT_CLUSTER_ID
from gpustack.schemas.common import (
    NO_ID_REUSE,
    created_at_field,
    enum_field,
    json_field,
    nullable_json_field,
    updated_at_field,
)
from gpustack.schemas.models import SourceEnum


class InstanceState(StrEnum):
    PENDING = "pending"
    ANALYZING = "analyzing"
    SCHEDULED = "scheduled"
    INITIALIZING = "initializing"
    DOWNLOADING = "downloading"
    STARTING = "starting"
    RUNNING = "running"
    ERROR = "error"
    UNREACHABLE = "unreachable"


# States a worker owns once an instance is placed on it.
WORKER_OWNED_STATES = frozenset(
    {
        InstanceState.SCHEDULED,
        InstanceState.INITIALIZING,
        InstanceState.DOWNLOADING,
        InstanceState.STARTING,
        InstanceState.RUNNING,
        InstanceState.ERROR,
        InstanceState.UNREACHABLE,
    }
)


class ComputedResourceClaim(BaseModel):
    """What the scheduler reserved: bytes of VRAM per GPU index and bytes of RAM, the layers (as
    llama.cpp counts them: blocks + output layer) and context it was computed for, and its terms."""

    vram: dict[int, int] = {}
    ram: int = 0
    offload_layers: int | None = None
    total_layers: int | None = None
    tensor_split: list[int] | None = None  # layers per GPU, in gpu_indexes order (multi-GPU layer split)
    context_size: int | None = None
    vram_utilization: float | None = None  # the fraction of each GPU a vLLM/SGLang engine is told to reserve
    # bytes: weights_gpu, kv_cache_gpu, compute_gpu, runtime_overhead_gpu, weights_host, kv_cache_host,
    # compute_host (the *_gpu terms add up to the VRAM claimed, the *_host terms to the RAM)
    terms: dict[str, int] = {}
    # the model's estimate: weights, kv_cache, compute, total, gpustack_floor (GPUStack's rule for the same
    # weights) in bytes, and source: override | local | hub | cache | worker
    estimate: dict[str, Any] | None = None


class SubordinateWorker(BaseModel):
    """One subordinate worker's part of a distributed instance (GPUStack's ModelInstanceSubordinateWorker):
    where it runs and what it claimed (set by the scheduler), and the ports, pid and state of its process
    (reported by that worker)."""

    worker_id: int | None = None
    worker_name: str | None = None
    worker_ip: str | None = None
    worker_ifname: str | None = None
    total_gpus: int | None = None
    gpu_type: str | None = None
    gpu_indexes: list[int] = []
    gpu_addresses: list[str] = []
    computed_resource_claim: ComputedResourceClaim | None = None
    download_progress: float | None = None
    pid: int | None = None
    ports: list[int] = []
    arguments: list[str] = []
    state: InstanceState = InstanceState.PENDING
    state_message: str | None = None


class ModelInstanceBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=255)
    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)  # the model's, copied at creation (GPUStack's field)
    model_name: str = Field(default="", max_length=255)
    worker_name: str | None = Field(default=None, max_length=255)
    worker_ip: str | None = Field(default=None, max_length=255)
    state: InstanceState = enum_field(InstanceState.PENDING)
    state_message: str | None = Field(default=None, max_length=8192)
    gpu_indexes: list[int] = json_field(list)
    port: int | None = None
    pid: int | None = None
    computed_resource_claim: dict[str, Any] | None = nullable_json_field()
    download_progress: float | None = None
    restart_count: int = 0
    distributed_servers: list[dict[str, Any]] = json_field(list)
    # ports the main worker opened for the distributed part (a Ray head's, a rendezvous), GPUStack's `ports`
    ports: list[int] | None = nullable_json_field()


class ModelInstance(ModelInstanceBase, table=True):
    __tablename__ = "model_instances"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(
        sa_column=Column(Integer, ForeignKey("models.id", ondelete="CASCADE"), index=True, nullable=False)
    )
    worker_id: int | None = Field(
        default=None,
        sa_column=Column(Integer, ForeignKey("workers.id", ondelete="SET NULL"), index=True, nullable=True),
    )
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class SubordinateReport(BaseModel):
    """What a subordinate worker reports of its part of a distributed instance."""

    state: InstanceState
    state_message: str | None = PField(default=None, max_length=8192)
    pid: int | None = PField(default=None, ge=0, le=2**31 - 1)
    ports: list[int] = PField(default=[], max_length=64)


class ModelInstanceUpdate(BaseModel):
    """State report from the worker that owns the instance (or an admin); a subordinate worker of a
    distributed instance sends only `subordinate`, its own part."""

    state: InstanceState | None = None
    state_message: str | None = None
    port: int | None = PField(default=None, ge=0, le=65535)
    pid: int | None = PField(default=None, ge=0, le=2**31 - 1)
    download_progress: float | None = None
    restart_count: int | None = PField(default=None, ge=0, le=2**31 - 1)
    ports: list[int] | None = PField(default=None, max_length=64)
    subordinate: SubordinateReport | None = None

    @field_validator("state", "restart_count")
    @classmethod
    def _not_null(cls, value: object) -> object:
        """These columns are NOT NULL: leave them out to keep them, but null is refused."""
        if value is None:
            raise ValueError("may be omitted but not null")
        return value

    @field_validator("state_message")
    @classmethod
    def _fit_message(cls, value: str | None) -> str | None:
        """Free text (often an error log): cut to the column size rather than refuse the report."""
        return value[:8192] if value else value


class ModelInstancePublic(ModelInstanceBase):
    id: int
    model_id: int
    worker_id: int | None = None
    cluster_id: int = DEFAULT_CLUSTER_ID
    computed_resource_claim: ComputedResourceClaim | None = None  # type: ignore[assignment]
    created_at: datetime
    updated_at: datetime

    @field_validator("distributed_servers", mode="before")
    @classmethod
    def _servers_in(cls, value: Any) -> Any:
        """GPUStack's object form, or this project's stored list of subordinate workers."""
        if isinstance(value, dict):
            return value.get("subordinate_workers") or []
        return value or []

    @field_validator("ports", mode="before")
    @classmethod
    def _ports_in(cls, value: Any) -> Any:
        return value or []

    @field_serializer("distributed_servers")
    def _servers_out(self, value: list[dict[str, Any]]) -> dict[str, Any]:
        return {"mode": "delegated", "download_model_files": True, "subordinate_workers": value}
