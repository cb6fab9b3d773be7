"""A model's metadata wherever it was read (hub listing, worker, cache) and the estimate made from it.

The numbers an estimate needs are small: the weight files' bytes, config.json, and for GGUF the header
summaries. They travel as `ModelMetadata` (JSON-able, stored in the metadata cache), so a model on a hub
or on a worker's disk is estimated by the same functions as a directory the server reads.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gpustack.core.sizes import parse_size
from gpustack.scheduler.estimate.gguf import estimate_gguf_headers
from gpustack.scheduler.estimate.gguf_header import header_from_dict
from gpustack.scheduler.estimate.safetensors import estimate_from_config, floor_bytes
from gpustack.scheduler.types import ResourceEstimate
from gpustack.scheduler.units import GiB, fmt_bytes

VRAM_CLAIM_ENV = "GPUSTACK_VRAM_CLAIM"
"""A model's env entry that replaces every estimate: the bytes the model needs in all (e.g. "40GiB")."""
MAX_VRAM_CLAIM = 64 * 1024 * GiB  # 64 TiB: more than any cluster this scheduler places on

WEIGHT_FORMATS = {".safetensors": "safetensors", ".bin": "pytorch", ".pt": "pytorch", ".pth": "pytorch"}
GGUF_SUFFIX = ".gguf"


@dataclass(frozen=True)
class ModelMetadata:
    """What an estimate reads of a model: its weight files and their bytes, config.json, GGUF headers."""

    format: str  # "safetensors" | "pytorch" | "gguf"
    weights_bytes: int
    files: Mapping[str, int] = field(default_factory=dict)  # weight file -> bytes
    config: Mapping[str, Any] | None = None
    gguf_headers: Sequence[Mapping[str, Any]] = ()  # header_to_dict of each part, first part first

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "weights_bytes": self.weights_bytes,
            "files": dict(self.files),
            "config": dict(self.config) if self.config is not None else None,
            "gguf_headers": [dict(h) for h in self.gguf_headers],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelMetadata":
        try:
            return cls(
                format=str(data["format"]),
                weights_bytes=int(data["weights_bytes"]),
                files={str(k): int(v) for k, v in (data.get("files") or {}).items()},
                config=data.get("config"),
                gguf_headers=list(data.get("gguf_headers") or ()),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed model metadata ({exc})") from exc


def select_weight_files(files: Mapping[str, int], wanted: set[str] | None = None) -> tuple[str, dict[str, int]]:
    """The weight files an engine loads of a listing (name -> bytes): safetensors if any, else PyTorch
    checkpoints, else GGUF; `wanted` narrows to the files a model's filename/pattern picked.
    ValueError when none is left."""
    names = [n for n in files if wanted is None or n in wanted]
    by_format: dict[str, dict[str, int]] = {}
    for name in sorted(names):
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        kind = "gguf" if suffix == GGUF_SUFFIX else WEIGHT_FORMATS.get(suffix)
        if kind is not None:
            by_format.setdefault(kind, {})[name] = files[name]
    for kind in ("safetensors", "pytorch", "gguf"):
        if kind in by_format:
            return kind, by_format[kind]
    raise ValueError("no *.safetensors, PyTorch (*.bin, *.pt) or *.gguf weight files")


def estimate_from_metadata(
    meta: ModelMetadata, *, category: str = "llm", backend_parameters: Sequence[str] = ()
) -> tuple[ResourceEstimate, str | None]:
    """The estimate, and a note when it had to fall back to GPUStack's rule (no config.json or header)."""
    if meta.format == "gguf" and meta.gguf_headers:
        headers = [header_from_dict(dict(h)) for h in meta.gguf_headers]
        source = next(iter(meta.files), "model.gguf")
        return estimate_gguf_headers(headers, source=source, backend_parameters=backend_parameters), None
    if meta.format != "gguf" and meta.config is not None:
        config = dict(meta.config)
        return estimate_from_config(
            config, meta.weights_bytes, category=category, backend_parameters=backend_parameters
        ), None
    floor = floor_bytes(meta.weights_bytes, category)
    what = "GGUF header" if meta.format == "gguf" else "config.json"
    note = f"no {what} was read: estimated by GPUStack's rule from the files' {fmt_bytes(meta.weights_bytes)}"
    return ResourceEstimate(weights_bytes=meta.weights_bytes, compute_bytes=floor - meta.weights_bytes), note


def vram_claim_override(env: Mapping[str, str]) -> int | None:
    """The user's `GPUSTACK_VRAM_CLAIM` in bytes, or None; ValueError saying what is wrong with it."""
    raw = env.get(VRAM_CLAIM_ENV)
    if raw is None:
        return None
    try:
        claim = parse_size(raw.strip())
    except ValueError as exc:
        raise ValueError(f"env {VRAM_CLAIM_ENV}: {exc}") from None
    if claim <= 0:
        raise ValueError(f"env {VRAM_CLAIM_ENV} must be more than 0 bytes, got {raw!r}")
    if claim > MAX_VRAM_CLAIM:
        raise ValueError(
            f"env {VRAM_CLAIM_ENV} of {raw!r} is over {fmt_bytes(MAX_VRAM_CLAIM)}; give the bytes one replica needs"
        )
    return claim


def override_estimate(claim: int) -> ResourceEstimate:
    """The user's claim as an estimate: one indivisible piece of `claim` bytes (no layers to split)."""
    return ResourceEstimate(weights_bytes=claim)
