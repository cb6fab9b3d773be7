"""Immutable snapshots the scheduler reads and the results it returns (no DB, no I/O)."""

import functools
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
    memory_reserved: int = 0  # never available to engines: the driver's reserve plus the worker's headroom

    @functools.cached_property
    def free(self) -> int:
        """Free VRAM we may claim: see `capacity.gpu_free` (computed once per snapshot; snapshots are frozen)."""
        usable = self.memory_total - self.memory_reserved
        return max(0, min(usable - self.memory_claimed, usable - self.memory_used))


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
    gpu_overhead: int = 0  # bytes an engine process takes on each GPU it uses (CUDA context, cuBLAS, graphs)
    cpu_only_backends: frozenset[str] = frozenset()  # backends whose engine here cannot offload to GPUs
    in_ray_cluster: bool = False  # takes part in a distributed vLLM instance (one Ray cluster per worker)
    maintenance: str | None = None  # in maintenance mode (the admin's message, maybe ""): no new replicas

    @functools.cached_property
    def gpu_by_index(self) -> Mapping[int, GPUSnapshot]:
        """The worker's GPUs by index (computed once per snapshot; snapshots are frozen)."""
        return {gpu.index: gpu for gpu in self.gpus}

    @functools.cached_property
    def gpus_by_free(self) -> tuple[GPUSnapshot, ...]:
        """The GPUs, most free VRAM first, then by index (computed once per snapshot)."""
        return tuple(sorted(self.gpus, key=lambda g: (-g.free, g.index)))

    @functools.cached_property
    def gpus_by_index(self) -> tuple[GPUSnapshot, ...]:
        """The GPUs in index order, the order an engine sees them (computed once per snapshot)."""
        return tuple(sorted(self.gpus, key=lambda g: g.index))

    @functools.cached_property
    def gpu_memory(self) -> tuple[int, int]:
        """(bytes taken, bytes in all) over every GPU of the worker; taken = total - free per GPU."""
        return sum(g.memory_total - g.free for g in self.gpus), sum(g.memory_total for g in self.gpus)


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
    backend_parameters: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    workers_with_files: frozenset[int] = frozenset()  # workers that already hold the model's files


@dataclass(frozen=True)
class ResourceEstimate:
    """Bytes needed to serve a model, split the way a layer-offloading engine (llama.cpp) allocates them.

    Layers are llama.cpp's: `block_count` repeating blocks plus the output layer, so placing every layer
    on GPUs means `block_count + 1` offloaded layers. The input embedding (`host_weights_bytes`) stays in
    host memory whatever the placement. A model without layers (block_count 0) is one indivisible piece.
    """

    weights_bytes: int  # every tensor of the model
    host_weights_bytes: int = 0  # tensors the engine always keeps in host memory (token_embd)
    output_bytes: int = 0  # the output layer (output norm + matrix); on a GPU only when every layer is
    kv_cache_bytes: int = 0  # for the whole context, all blocks
    compute_bytes: int = 0  # compute buffer of a GPU that holds the output layer (or of the CPU)
    offload_compute_bytes: int = 0  # compute buffer of a GPU while the output layer stays on the host
    block_count: int = 0
    context_size: int = 0
    attention_heads: int = 0  # tensor parallelism must divide it (0: unknown)
    vision_heads: int = 0  # the vision tower's attention heads (multimodal); TP must divide it too (0: none)
    vocab_size: int = 0  # tensor parallelism must divide it (0: unknown)

    @property
    def total_layers(self) -> int:
        """llama.cpp's layer count: the blocks plus the output layer (0 for unlayered models)."""
        return self.block_count + 1 if self.block_count > 0 else 0

    @property
    def total_bytes(self) -> int:
        """Everything in one memory (a CPU placement)."""
        return self.weights_bytes + self.kv_cache_bytes + self.compute_bytes

    @property
    def full_gpu_bytes(self) -> int:
        """One GPU holding every layer, before the engine's runtime overhead."""
        return self.weights_bytes - self.host_weights_bytes + self.kv_cache_bytes + self.compute_bytes

    def per_block_bytes(self) -> int:
        """One block's weights plus its KV cache, rounded up so n blocks never under-count."""
        return self._per_block

    @functools.cached_property
    def _per_block(self) -> int:
        if self.block_count <= 0:
            return 0
        blocks = self.weights_bytes - self.host_weights_bytes - self.output_bytes + self.kv_cache_bytes
        return -(-blocks // self.block_count)

    def gpu_compute_bytes(self, holds_output: bool) -> int:
        """The compute buffer a GPU reserves, depending on whether it holds the output layer."""
        if holds_output or not self.offload_compute_bytes:
            return self.compute_bytes
        return self.offload_compute_bytes


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
    tensor_split: tuple[int, ...] = ()  # llama.cpp layers per GPU, in gpu_indexes order (multi-GPU only)
    terms: Mapping[str, int] = field(default_factory=dict)  # what the claim is made of, in bytes
    note: str = ""  # said on the instance when placed (e.g. why it runs on the CPU)
    vram_utilization: float | None = None  # fraction of each GPU the engine reserves (vLLM, SGLang)
    # distributed placement: this candidate is the main worker's part, these are the other workers' parts
    subordinates: tuple["Candidate", ...] = ()
    ray_cluster: bool = False  # the placement forms a Ray cluster (each worker may join only one)


def is_partial(candidate: Candidate) -> bool:
    """GPUs plus layers in RAM (partial offload)."""
    layers, total = candidate.offload_layers, candidate.total_layers
    return bool(candidate.gpu_indexes) and layers is not None and bool(total) and layers < (total or 0)


@dataclass(frozen=True)
class Refusal:
    reasons: Mapping[str, str]  # worker name (or "*") -> why it cannot take the instance

    @property
    def message(self) -> str:
        if not self.reasons:
            return "No workers available."
        return "No worker can take this instance. " + "; ".join(self.lines())

    def lines(self) -> list[str]:
        """'<worker>: <why>' per refused worker, shortest first (then by name): the reason a user can act
        on most easily comes first."""
        return sorted((f"{name}: {why}" for name, why in self.reasons.items()), key=lambda line: (len(line), line))
