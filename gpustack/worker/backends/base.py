"""The launch spec shared by all backends, the context they build it from, and the registry."""

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class LaunchContext:
    """Everything a backend may read to build its command; filled by the worker's serve loop."""

    instance_id: int
    instance_name: str
    model_name: str
    model_path: str  # resolved local file or directory
    host: str  # address the engine binds to (the worker proxy forwards to it)
    port: int
    gpu_indexes: tuple[int, ...] = ()
    gpu_vendor: str = "nvidia"
    backend_parameters: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    run_command: str | None = None
    image_name: str | None = None
    backend_version: str | None = None
    offload_layers: int | None = None  # llama.cpp layers (blocks + output); None: all when GPUs are given
    total_layers: int | None = None  # the model's llama.cpp layer count, when the scheduler knows it
    tensor_split: tuple[int, ...] = ()  # layers per GPU (gpu_indexes order) for multi-GPU layer splits
    context_size: int | None = None  # the context the claim was computed for
    vram_utilization: float | None = None  # the GPU memory fraction the claim was computed for (vLLM/SGLang)
    categories: tuple[str, ...] = ()  # the model's categories (llm, embedding, reranker, image, tts, stt)
    worker_ip: str = ""  # the worker's address as the server knows it ({{worker_ip}} in run_command)
    health_path: str | None = None  # the catalog's health path for this backend, when it has one
    rpc_servers: tuple[str, ...] = ()  # llama-box RPC servers (host:port) of a distributed placement
    work_dir: Path = Path(".")


@dataclass(frozen=True)
class LaunchSpec:
    """What a runtime needs to start an engine: a process argv or a container image + argv."""

    argv: tuple[str, ...]
    env: dict[str, str]
    port: int
    health_path: str = "/v1/models"
    image: str | None = None  # set for the docker runtime
    gpu_indexes: tuple[int, ...] = ()
    gpu_vendor: str = "nvidia"
    name: str = ""
    work_dir: Path = Path(".")
    mounts: tuple[str, ...] = ()  # host paths bind-mounted read-only at the same path (docker runtime)
    # docker runtime: by default argv replaces the image's ENTRYPOINT+CMD (argv is exactly what runs);
    # True passes argv as CMD after the image's ENTRYPOINT (an empty argv keeps the image's CMD).
    keep_entrypoint: bool = False
    files: tuple[tuple[str, str], ...] = ()  # (path, text) the runtime writes before it starts the engine
    links: tuple[tuple[str, str], ...] = ()  # (link, target) symlinks the runtime makes before it starts


BackendBuilder = Callable[[LaunchContext], LaunchSpec]

_REGISTRY: dict[str, BackendBuilder] = {}


def register(name: str) -> Callable[[BackendBuilder], BackendBuilder]:
    """Decorator: a backend module registers its builder under the model's `backend` value."""

    def wrap(builder: BackendBuilder) -> BackendBuilder:
        _REGISTRY[name] = builder
        return builder

    return wrap


def get_backend(name: str) -> BackendBuilder:
    from gpustack.worker import backends as _pkg  # noqa: F401  (imports every backend module)

    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"backend '{name}' is not available on this worker") from None


def available_backends() -> list[str]:
    from gpustack.worker import backends as _pkg  # noqa: F401

    return sorted(_REGISTRY)
