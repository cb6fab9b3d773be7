"""Worker table and DTOs: registration, status with GPU devices, liveness state."""

import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, computed_field, model_validator
from pydantic import Field as PField
from sqlmodel import Field, SQLModel

from gpustack.schemas.clusters import DEFAULT_CLUSTER_ID, ClusterScoped
from gpustack.schemas.common import (
    NO_ID_REUSE,
    created_at_field,
    enum_field,
    json_field,
    nullable_json_field,
    optional_datetime_field,
    updated_at_field,
)


class WorkerState(StrEnum):
    NOT_READY = "not_ready"
    READY = "ready"
    UNREACHABLE = "unreachable"


class GPUDevice(BaseModel):
    vendor: str = "nvidia"
    index: int
    name: str = ""
    uuid: str = ""
    memory_total: int = 0
    memory_used: int = 0  # used by processes, as nvidia-smi shows it (without the driver's reserve)
    memory_reserved: int = 0  # held by the driver, never available to processes
    core_utilization: float = 0.0
    temperature: float | None = None
    power_watts: float | None = None  # power draw, where the driver reports it (NVML)
    power_limit_watts: float | None = None  # the enforced power limit
    simulated: bool = False

    @computed_field  # type: ignore[prop-decorator]
    @property
    def memory(self) -> dict[str, Any]:
        """GPUStack's nested form of the memory figures."""
        used = self.memory_used + self.memory_reserved
        rate = round(100 * used / self.memory_total, 2) if self.memory_total else 0.0
        return {"total": self.memory_total, "used": used, "utilization_rate": rate, "is_unified_memory": False}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def core(self) -> dict[str, Any]:
        return {"total": 0, "utilization_rate": self.core_utilization}


class CPUInfo(BaseModel):
    total: int = 0
    utilization_rate: float = 0.0


class MemoryInfo(BaseModel):
    total: int = 0
    used: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def utilization_rate(self) -> float:
        return round(100 * self.used / self.total, 2) if self.total else 0.0


class DiskInfo(BaseModel):
    path: str = ""
    total: int = 0
    used: int = 0


DEFAULT_GPU_RUNTIME_OVERHEAD = 640 * 2**20
"""GPU memory an engine process takes beside its buffers (CUDA context, cuBLAS workspace, CUDA graphs):
626-629 MiB measured for llama.cpp on an H100 after serving (docs/gpu-memory.md)."""
DEFAULT_GPU_HEADROOM = 256 * 2**20
"""GPU memory the scheduler leaves free on every GPU, so claims that are exact still never fill it."""


class BackendInfo(BaseModel):
    """What a worker found out about one backend's engine."""

    engine: str = ""  # e.g. "llama-cpp-python 0.3.36" or a binary path
    gpu_offload: bool | None = None  # False: a CPU-only build; None: not known


class WorkerStatus(BaseModel):
    cpu: CPUInfo = CPUInfo()
    memory: MemoryInfo = MemoryInfo()
    gpu_devices: list[GPUDevice] = []
    disks: list[DiskInfo] = []
    simulated_gpus: bool = False
    gpu_runtime_overhead: int = PField(default=DEFAULT_GPU_RUNTIME_OVERHEAD, ge=0)
    gpu_headroom: int = PField(default=DEFAULT_GPU_HEADROOM, ge=0)
    backends: dict[str, BackendInfo] = {}

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filesystem(self) -> list[dict[str, Any]]:
        """GPUStack's name for the disks."""
        return [{"name": d.path, "mount_point": d.path, "total": d.total, "used": d.used} for d in self.disks]


class Maintenance(BaseModel):
    """GPUStack's maintenance mode: a worker in it takes no new replicas; the running ones stay."""

    enabled: bool = False
    message: str | None = PField(default=None, max_length=2048)


class WorkerBase(SQLModel):
    name: str = Field(index=True, unique=True, max_length=255)
    hostname: str = Field(default="", max_length=255)
    ifname: str = Field(default="", max_length=255)
    labels: dict[str, str] = json_field(dict)
    ip: str = Field(default="", max_length=255)
    port: int = 0


class Worker(WorkerBase, table=True):
    __tablename__ = "workers"
    __table_args__ = NO_ID_REUSE
    id: int | None = Field(default=None, primary_key=True)
    state: WorkerState = enum_field(WorkerState.NOT_READY)
    state_message: str | None = Field(default=None, max_length=2048)
    heartbeat_time: datetime | None = optional_datetime_field()
    status: dict[str, Any] | None = nullable_json_field()
    maintenance: dict[str, Any] | None = nullable_json_field()
    credential_hash: str = Field(default="", max_length=255)
    # hash of the secret a worker must present to register again under its name (rotated each time)
    registration_secret_hash: str = Field(default="", max_length=255)
    proxy_nonce: str = Field(default="", max_length=64)  # part of the proxy credential, rotated likewise
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def check_address(value: str | None) -> str | None:
    """An IP address or a DNS host name, nothing else: it goes into URLs the server requests."""
    if not value:
        return value
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if not _HOSTNAME.match(value):
        raise ValueError("must be an IP address or a host name (letters, digits, '-' and '.')")
    return value


def url_host(address: str) -> str:
    """The host part of a URL for an address (IPv6 in brackets); loopback when none is known."""
    if not address:
        return "127.0.0.1"
    return f"[{address}]" if ":" in address else address


WorkerAddress = Annotated[str, PField(default="", max_length=255), AfterValidator(check_address)]


class WorkerRegister(ClusterScoped):
    """Sent by a worker with the cluster token; answered with a per-worker credential. A worker that
    registered before presents the secret it got then, so no other machine can take over its name."""

    name: str = PField(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    hostname: str = PField(default="", max_length=255)
    ifname: str = PField(default="", max_length=255)
    labels: dict[str, str] = {}
    ip: WorkerAddress = ""
    port: int = PField(default=0, ge=0, le=65535)
    status: WorkerStatus | None = None
    secret: str | None = PField(default=None, max_length=128)


class WorkerRegistered(BaseModel):
    id: int
    name: str
    credential: str  # the worker's own API credential
    proxy_credential: str  # what the server presents to the worker's proxy
    secret: str = ""  # present it on the next registration; replaced each time


class WorkerUpdate(BaseModel):
    """GPUStack sends the worker's `name` too; it must stay the worker's name (its registration identity)."""

    name: str | None = PField(default=None, max_length=255)
    labels: dict[str, str] | None = None
    maintenance: Maintenance | None = None

    @model_validator(mode="before")
    @classmethod
    def _nulls(cls, data: Any) -> Any:
        return {k: v for k, v in data.items() if v is not None} if isinstance(data, dict) else data


class WorkerStatusReport(BaseModel):
    """Heartbeat payload from the worker itself."""

    status: WorkerStatus
    ip: Annotated[str | None, PField(default=None, max_length=255), AfterValidator(check_address)] = None
    port: int | None = PField(default=None, ge=0, le=65535)


class WorkerPublic(WorkerBase):
    id: int
    cluster_id: int = DEFAULT_CLUSTER_ID
    state: WorkerState
    state_message: str | None = None
    heartbeat_time: datetime | None = optional_datetime_field()
    status: WorkerStatus | None = None
    maintenance: Maintenance | None = None
    created_at: datetime
    updated_at: datetime
