"""Immutable snapshots the scheduler reads and the results it returns (no DB, no I/O)."""

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GPUSnapshot:
    index: int
    name: str
    vendor: str
    memory_total: int
    memory_used: int = 0  # as reported by the device, including foreign processes
    memory_claimed: int = 0  # bytes already claimed by other instances' computed_resource_claim


@dataclass(frozen=True)
class WorkerSnapshot:
    id: int
    name: str
    state: str  # "ready" is the only schedulable state
    labels: Mapping[str, str]
    gpus: tuple[GPUSnapshot, ...]
    memory_total: int
    memory_claimed: int = 0  # RAM bytes claimed by other instances on this worker
    cpu_cores: int = 0


@dataclass(frozen=True)
class ModelSnapshot:
    id: int
    name: str
    backend: str
    placement_strategy: str  # "spread" | "binpack"
    worker_selector: Mapping[str, str] = field(default_factory=dict)
    gpu_selector: tuple[str, ...] = ()  # "<worker-name>:<gpu-index>"
    cpu_offloading: bool = True
    distributed_inference_across_workers: bool = False


@dataclass(frozen=True)
class ResourceEstimate:
    """Bytes needed to serve the model, split so a selector can offload layers."""

    weights_bytes: int  # all layers' weights
    non_layer_bytes: int  # embeddings/output kept with the first device
    kv_cache_bytes: int  # for the whole context, all layers
    compute_bytes: int  # scratch buffers, per device used
    total_layers: int
    context_size: int

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes

    def per_layer_bytes(self) -> int:
        if self.total_layers <= 0:
            return 0
        return (self.weights_bytes - self.non_layer_bytes + self.kv_cache_bytes) // self.total_layers


@dataclass(frozen=True)
class Candidate:
    worker_id: int
    worker_name: str
    gpu_indexes: tuple[int, ...]
    vram: Mapping[int, int]  # bytes claimed per GPU index
    ram: int  # bytes claimed in system memory
    offload_layers: int | None = None
    total_layers: int | None = None
    score: float = 0.0


@dataclass(frozen=True)
class Refusal:
    reasons: Mapping[str, str]  # worker name (or "*") -> why it cannot take the instance

    @property
    def message(self) -> str:
        if not self.reasons:
            return "No workers available."
        parts = [f"{name}: {why}" for name, why in sorted(self.reasons.items())]
        return "No worker can take this instance. " + "; ".join(parts)
