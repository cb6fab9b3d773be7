"""Memory estimate of a (possibly split) GGUF model for llama.cpp-style engines."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from gpustack.scheduler.estimate.gguf_header import GGUFHeader, read_header
from gpustack.scheduler.estimate.params import int_flag
from gpustack.scheduler.types import ResourceEstimate
from gpustack.scheduler.units import MiB

DEFAULT_CONTEXT_CAP = 8192
"""Context used when neither the caller nor backend_parameters set one: min(train ctx, this)."""

DEFAULT_UBATCH = 512
"""llama.cpp's default micro-batch (n_ubatch): the compute buffer is reserved for this many tokens."""

F32 = 4  # bytes of one activation
KV_BYTES_PER_ELEMENT = 2  # f16 K and V cache
COMPUTE_SLACK_BYTES = 1 * MiB
"""Small buffers of the graph beside its peak (measured: 0.01 MiB on an H100)."""

CTX_FLAGS = ("--ctx-size", "-c", "--n_ctx")
UBATCH_FLAGS = ("--ubatch-size", "-ub", "--n_ubatch")
BATCH_FLAGS = ("--batch-size", "-b", "--n_batch")
HOST_TENSORS = ("token_embd.weight",)  # llama.cpp keeps the input embedding in host memory
_SPLIT_RE = re.compile(r"^(?P<prefix>.+)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")
_LAYER_RE = re.compile(r"^blk\.\d+\.")
_READ_ERRORS = (ValueError, OSError, IndexError, KeyError, TypeError, OverflowError, UnicodeDecodeError)


@dataclass(frozen=True)
class _Tensors:
    """Byte totals of a GGUF's tensors, grouped the way llama.cpp places them."""

    weights: int = 0  # what the engine holds, host and GPUs together
    host: int = 0  # input embedding
    output: int = 0  # every tensor outside the blocks except the input embedding
    largest_block_tensor: int = 0
    vocab: int = 0

    @classmethod
    def read(cls, headers: Sequence[GGUFHeader], embd: int) -> "_Tensors":
        weights = host = output = largest = vocab = 0
        tied = True  # no output.weight: llama.cpp duplicates token_embd as the output matrix
        for header in headers:
            for tensor in header.tensors:
                size = int(tensor.n_bytes)
                weights += size
                if tensor.name in HOST_TENSORS:
                    host += size
                    vocab = int(tensor.n_elements) // embd if embd else 0
                elif _LAYER_RE.match(tensor.name):
                    largest = max(largest, size)
                else:
                    output += size
                    tied = tied and tensor.name != "output.weight"
        duplicated = host if tied else 0  # counted on the output layer's device as well
        return cls(weights + duplicated, host, output + duplicated, largest, vocab)


def estimate_gguf(
    path: str | Path,
    *,
    context_size: int | None = None,
    backend_parameters: Sequence[str] = (),
) -> ResourceEstimate:
    """Estimate the bytes needed to serve the GGUF at `path` (any part of a split GGUF works).

    Calibrated against llama.cpp on an H100 (docs/gpu-memory.md): weights are the tensors' sizes, the
    input embedding stays on the host, the KV cache is f16 for the whole context, and the compute
    buffer is the larger of the attention peak (KQ scores for a micro-batch against the whole
    context, flash attention off) and the output peak (logits). Raises ValueError naming the file
    when it is missing, unreadable or lacks the metadata we need.
    """
    parts = split_parts(Path(path))
    headers = [_open(part) for part in parts]
    return estimate_gguf_headers(
        headers, source=parts[0], context_size=context_size, backend_parameters=backend_parameters
    )


def estimate_gguf_headers(
    headers: Sequence[GGUFHeader],
    *,
    source: str | Path,
    context_size: int | None = None,
    backend_parameters: Sequence[str] = (),
) -> ResourceEstimate:
    """`estimate_gguf` from headers already read (every part of a split GGUF, the first first), e.g. by
    the worker that has the file; `source` names it in errors."""
    if not headers:
        raise ValueError(f"{source}: no GGUF header")
    head, head_path = headers[0], Path(source)
    arch = _require_str(head, "general.architecture", head_path)
    n_blocks = _require_int(head, f"{arch}.block_count", head_path)
    embd = _int(head, f"{arch}.embedding_length") or 0
    tensors = _Tensors.read(headers, embd)
    ctx = resolve_context_size(context_size, backend_parameters, _int(head, f"{arch}.context_length"))
    ubatch = resolve_ubatch(backend_parameters)
    shape = _Attention.read(head, arch, n_blocks, embd)
    ffn = _int(head, f"{arch}.feed_forward_length") or 0
    compute = COMPUTE_SLACK_BYTES + F32 * ubatch * max(
        shape.scores_per_token(ctx) + 4 * embd,
        tensors.vocab + embd,  # logits and the normalised input of the output layer
        3 * ffn + 2 * embd,
    )
    staging = tensors.output + 2 * tensors.largest_block_tensor + F32 * ubatch * (tensors.vocab + embd)
    return ResourceEstimate(
        weights_bytes=tensors.weights,
        host_weights_bytes=tensors.host,
        output_bytes=tensors.output,
        kv_cache_bytes=shape.kv_per_token * ctx * KV_BYTES_PER_ELEMENT,
        compute_bytes=compute,
        offload_compute_bytes=max(compute, staging + COMPUTE_SLACK_BYTES),
        block_count=n_blocks,
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
    return int_flag(backend_parameters, CTX_FLAGS, "context size")


def resolve_ubatch(backend_parameters: Sequence[str]) -> int:
    """The engine's micro-batch: `--ubatch-size`, capped by `--batch-size`, default 512."""
    ubatch = int_flag(backend_parameters, UBATCH_FLAGS, "micro-batch size") or DEFAULT_UBATCH
    batch = int_flag(backend_parameters, BATCH_FLAGS, "batch size")
    return max(1, min(ubatch, batch) if batch else ubatch)


@dataclass(frozen=True)
class _Attention:
    """The attention shape that sizes the KV cache and the compute buffer's score matrix."""

    kv_per_token: int = 0  # K and V elements per context token, all blocks together
    max_heads: int = 0
    max_kv_width: int = 0  # n_head_kv * head dim of the widest block

    @classmethod
    def read(cls, reader: GGUFHeader, arch: str, n_blocks: int, embd: int) -> "_Attention":
        heads = _per_layer(reader, f"{arch}.attention.head_count", n_blocks)
        kv_heads = _per_layer(reader, f"{arch}.attention.head_count_kv", n_blocks) or heads
        if not heads or not kv_heads:
            return cls()  # no attention metadata (e.g. recurrent models): no KV cache to reserve
        key_len = _int(reader, f"{arch}.attention.key_length")
        value_len = _int(reader, f"{arch}.attention.value_length")
        per_token = widest = 0
        for n_head, n_kv in zip(heads, kv_heads, strict=True):
            if n_head <= 0:
                continue
            head_dim = embd // n_head
            per_token += n_kv * ((key_len or head_dim) + (value_len or head_dim))
            widest = max(widest, n_kv * (key_len or head_dim))
        return cls(per_token, max(heads), widest)

    def scores_per_token(self, ctx: int) -> int:
        """Activations per micro-batch token at the attention peak: the KQ scores of every head and
        the mask against the whole context, plus the current K and V."""
        if not self.max_heads:
            return 0
        return ctx * (self.max_heads + 1) + 2 * self.max_kv_width


def _open(path: Path) -> GGUFHeader:
    """Read a GGUF's header (tensors stay on disk) or raise ValueError naming the file."""
    if not path.is_file():
        raise ValueError(f"{path}: GGUF file not found")
    try:
        return read_header(path)
    except _READ_ERRORS as e:
        raise ValueError(f"{path}: not a readable GGUF file ({e})") from e


def _int(header: GGUFHeader, key: str) -> int | None:
    value = header.metadata.get(key)
    return int(value) if isinstance(value, int | float) else None


def _per_layer(header: GGUFHeader, key: str, n_layers: int) -> list[int] | None:
    """A per-layer int field: scalars repeat for every layer; arrays give one value per layer."""
    value = header.metadata.get(key)
    if isinstance(value, int | float):
        return [int(value)] * n_layers
    if isinstance(value, list) and len(value) == n_layers and all(isinstance(v, int | float) for v in value):
        return [int(v) for v in value]
    return None


def _require_str(header: GGUFHeader, key: str, path: Path) -> str:
    value = header.metadata.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{path}: GGUF metadata '{key}' is missing")
    return value


def _require_int(header: GGUFHeader, key: str, path: Path) -> int:
    value = _int(header, key)
    if value is None:
        raise ValueError(f"{path}: GGUF metadata '{key}' is missing")
    return value
