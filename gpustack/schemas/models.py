"""Model (a deployment) table and DTOs: source, backend, replicas and placement."""

import re
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, field_serializer, field_validator, model_validator
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from gpustack.compat.enums import drop_nulls, lenient
from gpustack.engines import known_models, mindie
from gpustack.scheduler.estimate.metadata import vram_claim_override
from gpustack.scheduler.selectors.parallel import selection_problem
from gpustack.schemas.clusters import DEFAULT_CLUSTER_ID, ClusterScoped
from gpustack.schemas.common import NO_ID_REUSE, created_at_field, enum_field, json_field, updated_at_field


class SourceEnum(StrEnum):
    HUGGING_FACE = "huggingface"
    MODEL_SCOPE = "model_scope"
    LOCAL_PATH = "local_path"


class PlacementStrategy(StrEnum):
    SPREAD = "spread"
    BINPACK = "binpack"


class ModelState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    PARTIALLY_RUNNING = "partially_running"
    ERROR = "error"
    STOPPED = "stopped"


class BackendEnum(StrEnum):
    LLAMA_BOX = "llama-box"
    VLLM = "vllm"
    SGLANG = "sglang"
    MINDIE = "mindie"
    VOX_BOX = "vox-box"
    CUSTOM = "custom"


MAX_REPLICAS = 64


class ModelSpec(SQLModel):
    """Fields a user sets; shared by create, table and public shapes."""

    source: SourceEnum = enum_field(SourceEnum.LOCAL_PATH)
    huggingface_repo_id: str | None = Field(default=None, max_length=255)
    huggingface_filename: str | None = Field(default=None, max_length=255)
    model_scope_model_id: str | None = Field(default=None, max_length=255)
    model_scope_file_path: str | None = Field(default=None, max_length=255)
    local_path: str | None = Field(default=None, max_length=1024)
    replicas: int = Field(default=1, ge=0, le=MAX_REPLICAS)
    backend: BackendEnum = enum_field(BackendEnum.LLAMA_BOX)
    backend_version: str | None = Field(default=None, max_length=64)
    backend_parameters: list[str] = json_field(list)
    env: dict[str, str] = json_field(dict)
    categories: list[str] = json_field(list)
    placement_strategy: PlacementStrategy = enum_field(PlacementStrategy.SPREAD)
    worker_selector: dict[str, str] = json_field(dict)
    gpu_selector: list[str] = json_field(list)
    cpu_offloading: bool = True
    distributed_inference_across_workers: bool = False
    image_name: str | None = Field(default=None, max_length=512)
    run_command: str | None = Field(default=None, max_length=4096)
    description: str | None = Field(default=None, max_length=2048)


def source_key(model: ModelSpec) -> str:
    """What identifies a model's files on a worker: repo/filename for hubs (just the repo for whole
    repositories), else the local path."""
    if model.source == SourceEnum.HUGGING_FACE:
        parts = [model.huggingface_repo_id or "", model.huggingface_filename or ""]
    elif model.source == SourceEnum.MODEL_SCOPE:
        parts = [model.model_scope_model_id or "", model.model_scope_file_path or ""]
    else:
        return model.local_path or ""
    return "/".join(p for p in parts if p)


class Model(ModelSpec, table=True):
    __tablename__ = "models"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=255)
    state: ModelState = enum_field(ModelState.PENDING)
    ready_replicas: int = 0
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
MAX_PATH_COMPONENT_BYTES = 255  # NAME_MAX of Linux, macOS and Windows file systems
_WINDOWS_ABSOLUTE = re.compile(r"^([A-Za-z]:[\\/]|\\\\)")


def check_local_path(value: str | None) -> str | None:
    """An absolute path every worker OS could open: no control characters, no component over 255 bytes."""
    if value is None:
        return value
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("local_path must not contain NUL or other control characters")
    if not (value.startswith("/") or _WINDOWS_ABSOLUTE.match(value)):
        raise ValueError(f"local_path must be absolute (e.g. /models/qwen.gguf), got {value!r}")
    for part in re.split(r"[\\/]", value):
        size = len(part.encode())
        if size > MAX_PATH_COMPONENT_BYTES:
            raise ValueError(
                f"local_path component {part[:32]!r}... is {size} bytes; file systems allow "
                f"{MAX_PATH_COMPONENT_BYTES} per name"
            )
    return value


def _check_source(spec: "ModelCreate | ModelUpdate") -> None:
    required = {
        SourceEnum.HUGGING_FACE: ("huggingface_repo_id",),
        SourceEnum.MODEL_SCOPE: ("model_scope_model_id",),
        SourceEnum.LOCAL_PATH: ("local_path",),
    }
    for attr in required[spec.source]:
        if not getattr(spec, attr):
            raise ValueError(f"source '{spec.source.value}' requires '{attr}'")
    if spec.backend == BackendEnum.CUSTOM and not (spec.run_command or spec.image_name or spec.backend_version):
        raise ValueError(
            "backend 'custom' requires 'run_command', 'image_name' or a 'backend_version' of the custom backend "
            "in /v2/inference-backends that has them"
        )
    if spec.backend == BackendEnum.MINDIE:
        mindie.validate(spec.backend_parameters)
    vram_claim_override(spec.env)  # a user's claim must be a size one replica could need
    for item in spec.gpu_selector:
        worker, sep, index = item.rpartition(":")
        if not sep or not worker or not index.isdigit():
            raise ValueError(f"gpu_selector entry '{item}' must look like '<worker-name>:<gpu-index>'")
    if problem := selection_problem(str(spec.backend), spec.backend_parameters, spec.gpu_selector):
        raise ValueError(problem)


class GPUSelector(BaseModel):
    """GPUStack's `gpu_selector`: GPU ids as `<worker>:<type>:<index>` (or `<worker>:<index>`)."""

    gpu_ids: list[str] | None = None
    gpus_per_replica: int | None = None


_DEVICE_TYPES = {"cuda", "rocm", "npu", "musa", "mps", "cann", "dcu", "corex", "mlu", "maca", "cpu"}
# the spellings GPUStack uses for backends, placement strategies and sources, matched case-insensitively
_BACKEND_ALIASES = {"ascend-mindie": "mindie", "llama.cpp": "llama-box", "llamabox": "llama-box", "voxbox": "vox-box"}
# fields GPUStack's ModelCreate declares optional (null when unset) where this project has a default
_NULLABLE_IN_GPUSTACK = {
    "backend",
    "backend_parameters",
    "env",
    "worker_selector",
    "gpu_selector",
    "cpu_offloading",
    "distributed_inference_across_workers",
    "categories",
    "placement_strategy",
}
_SOURCE_ALIASES = {"hugging_face": "huggingface", "modelscope": "model_scope"}


def gpu_ids_from(value: Any) -> Any:
    """`gpu_selector` as this project's list of `<worker>:<index>`, from that list or GPUStack's object."""
    if value is None:
        return []
    if isinstance(value, GPUSelector):
        value = value.model_dump()
    if isinstance(value, dict):
        value = GPUSelector.model_validate(value).gpu_ids or []
    if isinstance(value, list):
        return [_short_gpu_id(v) if isinstance(v, str) else v for v in value]
    return value


def _short_gpu_id(gpu_id: str) -> str:
    parts = gpu_id.split(":")
    if len(parts) >= 3 and parts[-2].lower() in _DEVICE_TYPES:
        return ":".join(parts[:-2] + parts[-1:])
    return gpu_id


def gpu_selector_out(gpu_ids: list[str]) -> dict[str, Any] | None:
    """GPUStack's object form (`<worker>:cuda:<index>`), null when no GPU is chosen."""
    if not gpu_ids:
        return None
    long_ids = [f"{worker}:cuda:{index}" for worker, _, index in (g.rpartition(":") for g in gpu_ids)]
    return {"gpu_ids": long_ids, "gpus_per_replica": None}


class ModelCreate(ClusterScoped):
    name: str = PField(min_length=1, max_length=255, pattern=NAME_PATTERN)
    source: SourceEnum = SourceEnum.LOCAL_PATH
    huggingface_repo_id: str | None = PField(default=None, max_length=255)
    huggingface_filename: str | None = PField(default=None, max_length=255)
    model_scope_model_id: str | None = PField(default=None, max_length=255)
    model_scope_file_path: str | None = PField(default=None, max_length=255)
    local_path: str | None = PField(default=None, max_length=1024)
    replicas: int = PField(default=1, ge=0, le=MAX_REPLICAS)
    backend: BackendEnum | None = None  # None: pre-selected from the source (see _preselect)
    backend_version: str | None = PField(default=None, max_length=64)
    backend_parameters: list[str] = []
    env: dict[str, str] = {}
    categories: list[str] = []
    placement_strategy: PlacementStrategy = PlacementStrategy.SPREAD
    worker_selector: dict[str, str] = {}
    gpu_selector: list[str] = []
    cpu_offloading: bool = True
    distributed_inference_across_workers: bool = False
    image_name: str | None = PField(default=None, max_length=512)
    run_command: str | None = PField(default=None, max_length=4096)
    description: str | None = PField(default=None, max_length=2048)

    @model_validator(mode="before")
    @classmethod
    def _gpustack_nulls(cls, data: Any) -> Any:
        return drop_nulls(data, _NULLABLE_IN_GPUSTACK)

    @field_validator("backend", mode="before")
    @classmethod
    def _backend(cls, value: Any) -> Any:
        return lenient(BackendEnum, _BACKEND_ALIASES)(value)

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, value: Any) -> Any:
        return lenient(SourceEnum, _SOURCE_ALIASES)(value)

    @field_validator("placement_strategy", mode="before")
    @classmethod
    def _placement(cls, value: Any) -> Any:
        return lenient(PlacementStrategy)(value)

    @field_validator("gpu_selector", mode="before")
    @classmethod
    def _gpu_selector(cls, value: Any) -> Any:
        return gpu_ids_from(value)

    @field_validator("local_path")
    @classmethod
    def _local_path(cls, value: str | None) -> str | None:
        return check_local_path(value)

    @model_validator(mode="after")
    def _validate(self) -> "ModelCreate":
        self._preselect()
        _check_source(self)
        return self

    def _preselect(self) -> None:
        """No backend given: GGUF → llama-box, a known speech model → vox-box, a known image model →
        sglang, else vllm; categories, when none were given, from the same known-model data."""
        names = {
            SourceEnum.LOCAL_PATH: (self.local_path,),
            SourceEnum.HUGGING_FACE: (self.huggingface_filename, self.huggingface_repo_id),
            SourceEnum.MODEL_SCOPE: (self.model_scope_file_path, self.model_scope_model_id),
        }[self.source]
        backend, categories = known_models.preselect(names)
        if self.backend is None:
            self.backend = BackendEnum(backend)
        if not self.categories:
            self.categories = categories


class ModelUpdate(ModelCreate):
    """Full replacement of a model's spec (PUT); the name may change if unique."""


class ModelPatch(BaseModel):
    """Partial update; today only the replica count, the common scaling call."""

    replicas: int = PField(ge=0, le=MAX_REPLICAS)


class ModelPublic(ModelSpec):
    """As GPUStack renders a model: `gpu_selector` an object, `state` "partial" for partially running and
    null for a stopped model (GPUStack's clients tell stopped by `replicas` 0), `cluster_id` the default."""

    id: int
    name: str
    state: ModelState | None = None
    ready_replicas: int
    cluster_id: int = DEFAULT_CLUSTER_ID
    created_at: datetime
    updated_at: datetime

    @field_validator("gpu_selector", mode="before")
    @classmethod
    def _gpu_selector_in(cls, value: Any) -> Any:
        return gpu_ids_from(value)

    @field_validator("state", mode="before")
    @classmethod
    def _state_in(cls, value: Any) -> Any:
        return lenient(ModelState, {"partial": ModelState.PARTIALLY_RUNNING.value})(value)

    @field_serializer("gpu_selector")
    def _gpu_selector_out(self, value: list[str]) -> dict[str, Any] | None:
        return gpu_selector_out(value)

    @field_serializer("state")
    def _state_out(self, value: ModelState | None) -> str | None:
        return WIRE_MODEL_STATES.get(value, value) if value is not None else None


WIRE_MODEL_STATES: dict[ModelState, str | None] = {ModelState.PARTIALLY_RUNNING: "partial", ModelState.STOPPED: None}
