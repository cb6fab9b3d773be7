"""Memory estimate of a (possibly split) GGUF model for llama.cpp-style engines."""

import re
from collections.abc import Sequence
from pathlib import Path

from gguf import GGUFReader, GGUFValueType

from gpustack.scheduler.types import ResourceEstimate
from gpustack.scheduler.units import MiB

DEFAULT_CONTEXT_CAP = 8192
"""Context used when neither the caller nor backend_parameters set one: min(train ctx, this)."""

COMPUTE_BASE_BYTES = 64 * MiB
"""Fixed scratch overhead per device (graph, CUDA/Metal context slack)."""

COMPUTE_BYTES_PER_CTX_EMBD = 4
"""Plus one f32 activation per (context token x embedding dim): compute = base + ctx * embd * 4."""

KV_BYTES_PER_ELEMENT = 2  # f16 K and V cache

CTX_FLAGS = ("--ctx-size", "-c", "--n_ctx")
_SPLIT_RE = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
_LAYER_RE = re.compile(r"^blk\.\d+\.")
_READ_ERRORS = (ValueError, OSError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError)

Scalar = int | float | str


def estimate_gguf(
    path: str | Path,
    *,
    context_size: int | None = None,
    backend_parameters: Sequence[str] = (),
) -> ResourceEstimate:
    """Estimate the bytes needed to serve the GGUF at `path` (any part of a split GGUF works).

    Weights are the tensors' on-disk sizes; the KV cache is f16 for the whole context; compute is
    `COMPUTE_BASE_BYTES + ctx * embedding_length * 4`. Raises ValueError naming the file when it is
    missing, unreadable or lacks the metadata we need.
    """
    parts = split_parts(Path(path))
    readers = [_open(part) for part in parts]
    head, head_path = readers[0], parts[0]
    arch = _require_str(head, "general.architecture", head_path)
    n_layers = _require_int(head, f"{arch}.block_count", head_path)
    weights = non_layer = 0
    for reader in readers:
        for tensor in reader.tensors:
            weights += int(tensor.n_bytes)
            if not _LAYER_RE.match(tensor.name):
                non_layer += int(tensor.n_bytes)
    train_ctx = _int(head, f"{arch}.context_length")
    ctx = resolve_context_size(context_size, backend_parameters, train_ctx)
    embd = _int(head, f"{arch}.embedding_length") or 0
    return ResourceEstimate(
        weights_bytes=weights,
        non_layer_bytes=non_layer,
        kv_cache_bytes=_kv_cache_bytes(head, arch, n_layers, ctx, embd),
        compute_bytes=COMPUTE_BASE_BYTES + ctx * embd * COMPUTE_BYTES_PER_CTX_EMBD,
        total_layers=n_layers,
        context_size=ctx,
    )


def split_parts(path: Path) -> list[Path]:
    """All files of a split GGUF (`name-00001-of-00003.gguf`), or just `path` if not split."""
    match = _SPLIT_RE.match(path.name)
    if match is None:
        return [path]
    count = int(match["count"])
    parts = [path.with_name(f"{match['prefix']}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    missing = [p for p in parts if not p.is_file()]
    if missing:
        raise ValueError(f"{path}: split GGUF part {missing[0]} is missing")
    return parts


def resolve_context_size(explicit: int | None, backend_parameters: Sequence[str], train_ctx: int | None) -> int:
    """Explicit arg > last ctx flag in backend_parameters > min(train ctx, 8192).

    A value of 0 (llama.cpp's "use the model's") means the full training context.
    """
    ctx = explicit if explicit is not None else context_from_parameters(backend_parameters)
    if ctx is None:
        return min(train_ctx or DEFAULT_CONTEXT_CAP, DEFAULT_CONTEXT_CAP)
    if ctx < 0:
        raise ValueError(f"context size must not be negative, got {ctx}")
    if ctx == 0:
        return train_ctx or DEFAULT_CONTEXT_CAP
    return ctx


def context_from_parameters(backend_parameters: Sequence[str]) -> int | None:
    """Parse `--ctx-size N`, `--ctx-size=N`, `-c N`, `--n_ctx N`, `--n_ctx=N` (last one wins).

    Items may hold several words ("--ctx-size 4096") or one ("--ctx-size", "4096").
    """
    tokens = [word for item in backend_parameters for word in item.split()]
    found: str | None = None
    for i, token in enumerate(tokens):
        flag, sep, value = token.partition("=")
        if flag not in CTX_FLAGS:
            continue
        if sep:
            found = value
        elif i + 1 < len(tokens):
            found = tokens[i + 1]
    if found is None:
        return None
    try:
        return int(found)
    except ValueError as e:
        raise ValueError(f"invalid context size {found!r} in backend_parameters") from e


def _kv_cache_bytes(reader: GGUFReader, arch: str, n_layers: int, ctx: int, embd: int) -> int:
    """Sum over layers of ctx * n_head_kv * (key_len + value_len) * 2 bytes (f16)."""
    heads = _per_layer(reader, f"{arch}.attention.head_count", n_layers)
    kv_heads = _per_layer(reader, f"{arch}.attention.head_count_kv", n_layers) or heads
    if not heads or not kv_heads:
        return 0  # no attention metadata (e.g. recurrent models): no KV cache to reserve
    key_len = _int(reader, f"{arch}.attention.key_length")
    value_len = _int(reader, f"{arch}.attention.value_length")
    per_token = 0
    for n_head, n_kv in zip(heads, kv_heads, strict=True):
        if n_head <= 0:
            continue
        head_dim = embd // n_head
        per_token += n_kv * ((key_len or head_dim) + (value_len or head_dim))
    return per_token * ctx * KV_BYTES_PER_ELEMENT


def _open(path: Path) -> GGUFReader:
    """Open a GGUF (memory-mapped; tensors stay on disk) or raise ValueError naming the file."""
    if not path.is_file():
        raise ValueError(f"{path}: GGUF file not found")
    try:
        return GGUFReader(path)
    except _READ_ERRORS as e:
        raise ValueError(f"{path}: not a readable GGUF file ({e})") from e


def _values(reader: GGUFReader, key: str) -> list[Scalar] | None:
    """A metadata field as a list of Python values (1 element for scalars), or None if absent."""
    field = reader.get_field(key)
    if field is None or not field.types:
        return None
    sub_type = field.types[-1]
    if sub_type == GGUFValueType.STRING:
        return [bytes(field.parts[i]).decode("utf-8") for i in field.data]
    return [field.parts[i].tolist()[0] for i in field.data]


def _int(reader: GGUFReader, key: str) -> int | None:
    values = _values(reader, key)
    if not values or not isinstance(values[0], int | float):
        return None
    return int(values[0])


def _per_layer(reader: GGUFReader, key: str, n_layers: int) -> list[int] | None:
    """A per-layer int field: scalars repeat for every layer; arrays give one value per layer."""
    field = reader.get_field(key)
    values = _values(reader, key)
    if field is None or not values or not all(isinstance(v, int | float) for v in values):
        return None
    if field.types[0] != GGUFValueType.ARRAY:
        return [int(values[0])] * n_layers
    if len(values) != n_layers:
        return None
    return [int(v) for v in values]


def _require_str(reader: GGUFReader, key: str, path: Path) -> str:
    values = _values(reader, key)
    if not values or not isinstance(values[0], str):
        raise ValueError(f"{path}: GGUF metadata '{key}' is missing")
    return values[0]


def _require_int(reader: GGUFReader, key: str, path: Path) -> int:
    value = _int(reader, key)
    if value is None:
        raise ValueError(f"{path}: GGUF metadata '{key}' is missing")
    return value
