"""Memory estimate of a Hugging Face model directory (config.json + safetensors or PyTorch weights).

Weights are the tensors' byte sizes from the safetensors headers (the data is never read), or the weight
files' sizes for PyTorch checkpoints. The KV cache is K and V for the context the engine will use. What an
engine takes beside them (activations, CUDA graphs, runtime) is not modelled term by term yet: GPUStack's
rule (weights × 1.2 + 2 GiB for language models, + 512 MiB for others, × 3 for text-to-speech) is the
floor, and `compute_bytes` is what that floor adds beyond weights and KV cache.
"""

import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gpustack.scheduler.estimate.gguf import DEFAULT_CONTEXT_CAP
from gpustack.scheduler.estimate.params import int_flag
from gpustack.scheduler.types import ResourceEstimate
from gpustack.scheduler.units import GiB, MiB

DTYPE_BYTES = {
    "F64": 8, "I64": 8, "U64": 8, "F32": 4, "I32": 4, "U32": 4, "F16": 2, "BF16": 2, "I16": 2, "U16": 2,
    "F8_E4M3": 1, "F8_E5M2": 1, "I8": 1, "U8": 1, "BOOL": 1, "F4": 1,
}  # fmt: skip
TORCH_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2, "float8_e4m3fn": 1}
CONTEXT_FLAGS = ("--max-model-len", "--context-length", "--max-seq-len")
KV_DTYPE_FLAGS = ("--kv-cache-dtype",)
PYTORCH_SUFFIXES = (".bin", ".pt", ".pth")
MAX_HEADER_BYTES = 100 * MiB
_NESTED_CONFIGS = ("text_config", "llm_config", "language_config", "thinker_config")

LLM_FLOOR_EXTRA = 2 * GiB
OTHER_FLOOR_EXTRA = 512 * MiB
TTS_FACTOR = 3


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a config.json the estimate needs (the language model's, for multimodal models)."""

    architectures: tuple[str, ...]
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    max_context: int | None
    dtype_bytes: int
    vision_heads: int = 0  # a multimodal model's vision tower (vision_config), 0 when it has none

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "ModelShape":
        text = next((config[k] for k in _NESTED_CONFIGS if isinstance(config.get(k), dict)), config)
        hidden = _first_int(text, "hidden_size", "d_model", "n_embd") or 0
        heads = _first_int(text, "num_attention_heads", "n_head", "num_heads") or 0
        head_dim = _first_int(text, "head_dim") or (hidden // heads if heads else 0)
        max_context = _first_int(text, "max_position_embeddings", "max_sequence_length", "seq_length", "n_positions")
        dtype = str(text.get("torch_dtype") or config.get("torch_dtype") or "bfloat16")
        vision = config.get("vision_config")
        vision_heads = _first_int(vision, "num_attention_heads", "num_heads") if isinstance(vision, dict) else None
        return cls(
            architectures=tuple(str(a) for a in config.get("architectures") or text.get("architectures") or ()),
            layers=_first_int(text, "num_hidden_layers", "n_layer", "num_layers") or 0,
            hidden=hidden,
            heads=heads,
            kv_heads=_first_int(text, "num_key_value_heads", "multi_query_group_num") or heads,
            head_dim=head_dim,
            vocab=_first_int(text, "vocab_size") or 0,
            max_context=max_context,
            dtype_bytes=TORCH_DTYPE_BYTES.get(dtype.replace("torch.", ""), 2),
            vision_heads=vision_heads or 0,
        )

    def kv_bytes_per_token(self, element_bytes: int) -> int:
        return 2 * self.layers * self.kv_heads * self.head_dim * element_bytes


def _first_int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def safetensors_bytes(path: Path) -> int:
    """The tensors' byte size from a safetensors header; ValueError when the file is not one."""
    with open(path, "rb") as fh:
        size = fh.seek(0, 2)
        fh.seek(0)
        raw = fh.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: not a safetensors file (too short)")
        (length,) = struct.unpack("<Q", raw)
        if length > MAX_HEADER_BYTES or 8 + length > size:
            raise ValueError(f"{path}: not a safetensors file (header of {length} bytes)")
        try:
            header = json.loads(fh.read(length))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: unreadable safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise ValueError(f"{path}: unreadable safetensors header")
    end = total = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            start, stop = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: tensor '{name}' has no data_offsets") from exc
        total += stop - start
        end = max(end, stop)
    if 8 + length + end > size:
        raise ValueError(f"{path}: tensor data ends past the end of the file")
    return total


def weights_bytes(directory: Path) -> int:
    """Safetensors tensors of the directory, else its PyTorch weight files; ValueError when it has none."""
    files = sorted(directory.glob("*.safetensors"))
    if files:
        return sum(safetensors_bytes(f) for f in files)
    pytorch = [f for f in sorted(directory.iterdir()) if f.suffix in PYTORCH_SUFFIXES and f.is_file()]
    if not pytorch:
        raise ValueError(f"{directory}: no *.safetensors or PyTorch weight files")
    return sum(f.stat().st_size for f in pytorch)


def read_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{directory}: no config.json") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a JSON object")
    return config


def resolve_context(shape: ModelShape, explicit: int | None, backend_parameters: Sequence[str]) -> int:
    """The user's context flag, else min(the model's maximum, 8192): the rule the backends apply."""
    ctx = explicit if explicit is not None else int_flag(backend_parameters, CONTEXT_FLAGS, "context length")
    if ctx is not None:
        if ctx <= 0:
            raise ValueError(f"context length must be positive, got {ctx}")
        return ctx
    return min(shape.max_context or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)


def _kv_element_bytes(shape: ModelShape, backend_parameters: Sequence[str]) -> int:
    tokens = [word for item in backend_parameters for word in item.replace("=", " ").split()]
    for i, token in enumerate(tokens[:-1]):
        if token in KV_DTYPE_FLAGS and tokens[i + 1].startswith("fp8"):
            return 1
    return shape.dtype_bytes


def floor_bytes(weights: int, category: str) -> int:
    """GPUStack's rule: weights × 1.2 + 2 GiB for language models, + 512 MiB for others, × 3 for TTS."""
    extra = LLM_FLOOR_EXTRA if category == "llm" else OTHER_FLOOR_EXTRA
    base = int(weights * 1.2) + extra
    return base * TTS_FACTOR if category == "text_to_speech" else base


def estimate_model_dir(
    directory: str | Path,
    *,
    category: str = "llm",
    context_size: int | None = None,
    backend_parameters: Sequence[str] = (),
) -> ResourceEstimate:
    """Estimate for an engine that loads the whole model on its GPUs (vLLM, SGLang...); unlayered."""
    directory = Path(directory)
    config = read_config(directory)
    return estimate_from_config(
        config,
        weights_bytes(directory),
        category=category,
        context_size=context_size,
        backend_parameters=backend_parameters,
    )


def estimate_from_config(
    config: dict[str, Any],
    weights: int,
    *,
    category: str = "llm",
    context_size: int | None = None,
    backend_parameters: Sequence[str] = (),
) -> ResourceEstimate:
    """The estimate from a config.json and the weights' byte size, wherever they were read (a directory,
    a hub's file listing, a worker's answer): the same terms for the same numbers."""
    shape = ModelShape.from_config(config)
    ctx = resolve_context(shape, context_size, backend_parameters)
    kv = shape.kv_bytes_per_token(_kv_element_bytes(shape, backend_parameters)) * ctx if category == "llm" else 0
    compute = max(0, floor_bytes(weights, category) - weights - kv)
    return ResourceEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        compute_bytes=compute,
        context_size=ctx,
        attention_heads=shape.heads,
        vision_heads=shape.vision_heads,
        vocab_size=shape.vocab,
    )
