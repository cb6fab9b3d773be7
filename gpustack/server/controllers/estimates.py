"""A model's memory estimate and where it came from: the user's override, files the server reads, or
metadata a hub or worker answered (cached in the database); what the instance shows about it."""

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.estimate.metadata import (
    VRAM_CLAIM_ENV,
    ModelMetadata,
    estimate_from_metadata,
    override_estimate,
    vram_claim_override,
)
from gpustack.scheduler.estimate.safetensors import estimate_model_dir, floor_bytes
from gpustack.scheduler.types import ResourceEstimate
from gpustack.schemas.model_metadata import metadata_cache_key
from gpustack.schemas.models import BackendEnum, Model, SourceEnum

UNKNOWN = ResourceEstimate(weights_bytes=0)
GGUF_BACKENDS = (BackendEnum.LLAMA_BOX, BackendEnum.CUSTOM)
NO_ESTIMATE = "memory estimate unavailable for this source/backend; placed without a check"


@dataclass(frozen=True)
class Estimated:
    estimate: ResourceEstimate
    note: str | None  # why the estimate is unknown or a guess, shown to users
    source: str = "none"  # override | local | hub | cache | worker | none
    category: str = "llm"  # for GPUStack's rule, shown beside the estimate


@dataclass(frozen=True)
class MetadataRequest:
    """Metadata the server must ask a hub or a worker for: one model version and file selection."""

    source: str  # huggingface | model_scope | worker
    repo_id: str  # the repository, or the path on a worker
    revision: str
    selection: str = ""
    prefer_gguf: bool = False

    @property
    def cache_key(self) -> str:
        return metadata_cache_key(self.source, self.repo_id, self.revision, self.selection)

    @property
    def where(self) -> str:
        return {"huggingface": "Hugging Face", "model_scope": "ModelScope"}.get(self.source, "the workers")


def category_of(model: Model) -> str:
    return model.categories[0] if model.categories else "llm"


def _server_can_read(path: str) -> bool:
    try:
        return Path(path).exists()
    except OSError:
        return True  # an unusable path: the local estimate says what is wrong with it


def metadata_request(model: Model) -> MetadataRequest | None:
    """What to fetch for `model`, or None when its estimate needs no hub or worker (an override, or
    files the server reads itself)."""
    if model.env.get(VRAM_CLAIM_ENV) is not None:
        return None
    gguf = model.backend in GGUF_BACKENDS
    if model.source == SourceEnum.HUGGING_FACE and model.huggingface_repo_id:
        return MetadataRequest("huggingface", model.huggingface_repo_id, "main", model.huggingface_filename or "", gguf)
    if model.source == SourceEnum.MODEL_SCOPE and model.model_scope_model_id:
        return MetadataRequest(
            "model_scope", model.model_scope_model_id, "master", model.model_scope_file_path or "", gguf
        )
    if model.source == SourceEnum.LOCAL_PATH and model.local_path and not _server_can_read(model.local_path):
        return MetadataRequest("worker", model.local_path, "", "", gguf)
    return None


def estimate_model(model: Model, remote: tuple[ModelMetadata, str] | None = None) -> Estimated:
    """The user's GPUSTACK_VRAM_CLAIM, else metadata a hub or worker gave (`remote`: metadata and its
    source), else GGUF metadata or a model directory the server reads; otherwise no check (and says so)."""
    return dataclasses.replace(_estimate(model, remote), category=category_of(model))


def _estimate(model: Model, remote: tuple[ModelMetadata, str] | None) -> Estimated:
    claim = vram_claim_override(model.env)
    if claim is not None:
        return Estimated(override_estimate(claim), None, "override")
    if remote is not None:
        meta, source = remote
        params = model.backend_parameters
        estimate, note = estimate_from_metadata(meta, category=category_of(model), backend_parameters=params)
        return Estimated(estimate, note, source)
    if model.backend not in GGUF_BACKENDS:
        return _estimate_directory(model)
    path = _gguf_file(model)
    if path is None:
        return Estimated(UNKNOWN, NO_ESTIMATE)
    if not path.exists():
        return Estimated(UNKNOWN, f"{path} is not on the server; placed without a memory check")
    try:
        return Estimated(estimate_gguf(path, backend_parameters=model.backend_parameters), None, "local")
    except ValueError as exc:
        return Estimated(UNKNOWN, f"cannot estimate memory: {exc}")


def _gguf_file(model: Model) -> Path | None:
    if model.source != SourceEnum.LOCAL_PATH or not model.local_path:
        return None
    path = Path(model.local_path)
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        return files[0] if files else None
    return path if path.suffix == ".gguf" else None


def _estimate_directory(model: Model) -> Estimated:
    """A Hugging Face style directory (config.json + weights) given as local_path."""
    if model.source != SourceEnum.LOCAL_PATH or not model.local_path:
        return Estimated(UNKNOWN, NO_ESTIMATE)
    directory = Path(model.local_path)
    if not (directory / "config.json").is_file():
        return Estimated(UNKNOWN, f"{directory}/config.json is not on the server; placed without a memory check")
    try:
        estimate = estimate_model_dir(
            directory, category=category_of(model), backend_parameters=model.backend_parameters
        )
    except ValueError as exc:
        return Estimated(UNKNOWN, f"cannot estimate memory: {exc}")
    return Estimated(estimate, None, "local")


def estimate_terms(est: Estimated) -> dict[str, Any] | None:
    """What the instance and the dry run show of an estimate: its terms in bytes, GPUStack's rule for
    the same weights (the floor), and where the numbers came from."""
    e = est.estimate
    if e.weights_bytes <= 0:
        return None
    terms: dict[str, Any] = {
        "weights": e.weights_bytes,
        "weights_host": e.host_weights_bytes,
        "kv_cache": e.kv_cache_bytes,
        "compute": e.compute_bytes,
        "total": e.total_bytes,
        "context_size": e.context_size,
        "total_layers": e.total_layers,
        "source": est.source,
    }
    if est.source != "override":
        terms["gpustack_floor"] = floor_bytes(e.weights_bytes, est.category)
    return terms
