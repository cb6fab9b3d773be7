"""What every engine runner shares (server client, ports, settings) and the launch context it builds."""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from gpustack.schemas.instances import ModelInstancePublic
from gpustack.schemas.models import ModelPublic
from gpustack.worker.backends import LaunchContext
from gpustack.worker.client import ServerClient
from gpustack.worker.downloads import ModelResolver
from gpustack.worker.ports import PortAllocator
from gpustack.worker.records import EngineRecords


@dataclass(frozen=True)
class ServeOptions:
    """Timings of the serve loop; tests shorten them, real engines need the generous defaults."""

    tick_seconds: float = 2.0
    monitor_seconds: float = 1.0
    health_timeout_seconds: float = 600.0
    health_poll_seconds: float = 0.5
    restart_base_seconds: float = 2.0
    restart_max_seconds: float = 60.0
    healthy_reset_seconds: float = 300.0
    resend_seconds: float = 5.0
    stop_timeout_seconds: float = 10.0
    error_log_lines: int = 10  # error lines and last lines each, in a failed instance's message
    log_max_bytes: int = 20 * 2**20  # an instance log is rotated past this size
    log_backups: int = 2  # rotated files kept per instance


@dataclass
class EngineDeps:
    """What every runner shares: the server client, file resolver, ports and settings."""

    client: ServerClient
    resolver: ModelResolver
    ports: PortAllocator
    options: ServeOptions
    data_dir: Path
    runtime_name: str
    health: httpx.AsyncClient
    gpu_vendor: Callable[[], str]
    request_resync: Callable[[], None]
    records: EngineRecords
    image_registry: str | None = None  # overrides the registry of built-in backend images
    image_namespace: str | None = None  # overrides their namespace (e.g. a mirror's project)


def launch_context(
    instance: ModelInstancePublic, model: ModelPublic, *, model_path: str, port: int, gpu_vendor: str, work_dir: Path
) -> LaunchContext:
    """What a backend builds its command from: the model, and the placement the scheduler claimed
    (GPUs, layers per GPU, the context the claim was computed for)."""
    claim = instance.computed_resource_claim
    return LaunchContext(
        instance_id=instance.id,
        instance_name=instance.name,
        model_name=model.name,
        model_path=model_path,
        host="127.0.0.1",
        port=port,
        gpu_indexes=tuple(instance.gpu_indexes),
        gpu_vendor=gpu_vendor,
        backend_parameters=tuple(model.backend_parameters),
        env=dict(model.env),
        run_command=model.run_command,
        image_name=model.image_name,
        backend_version=model.backend_version,
        offload_layers=claim.offload_layers if claim else None,
        total_layers=claim.total_layers if claim else None,
        tensor_split=tuple(claim.tensor_split or ()) if claim else (),
        context_size=claim.context_size if claim else None,
        vram_utilization=claim.vram_utilization if claim else None,
        categories=tuple(model.categories),
        worker_ip=instance.worker_ip or "",
        work_dir=work_dir,
    )
