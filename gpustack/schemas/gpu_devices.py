"""GPUStack's `/v2/gpu-devices` shape: one GPU of a worker's reported status, with the worker's identity."""

from typing import Any

from pydantic import BaseModel

from gpustack.schemas.clusters import DEFAULT_CLUSTER_ID


class GPUDevicePublic(BaseModel):
    id: str  # "<worker name>:<type>:<index>", as GPUStack names a GPU
    worker_id: int
    worker_name: str
    worker_ip: str
    worker_ifname: str
    cluster_id: int = DEFAULT_CLUSTER_ID
    vendor: str = ""
    type: str = "cuda"
    index: int | None = None
    device_index: int = 0
    name: str = ""
    uuid: str = ""
    memory: dict[str, Any] | None = None
    core: dict[str, Any] | None = None
    temperature: float | None = None
    simulated: bool = False
