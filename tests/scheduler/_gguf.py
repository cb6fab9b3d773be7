"""Deterministic tiny llama-style GGUF writer for scheduler tests (no tokenizer, constant weights)."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, GGUFWriter


@dataclass(frozen=True)
class TinySpec:
    vocab: int = 32
    embd: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int | None = 2  # None: omit head_count_kv from the metadata
    kv_heads_per_layer: tuple[int, ...] | None = None  # metadata only: write head_count_kv as an array
    ffn: int = 128
    ctx: int | None = 2048  # None: omit context_length from the metadata
    key_length: int | None = None
    value_length: int | None = None
    dtype: type[np.floating] = np.float32
    tied: bool = False  # no output.weight: the engine reuses token_embd as the output matrix


def _tensor(rows: int, cols: int | None, dtype: type[np.floating]) -> np.ndarray:
    shape = (rows,) if cols is None else (rows, cols)
    return np.full(shape, 0.01, dtype=dtype)


def layer_tensors(spec: TinySpec, i: int) -> dict[str, np.ndarray]:
    head_dim = spec.embd // spec.heads
    kv_heads = spec.kv_heads or spec.heads
    e, d = spec.embd, spec.dtype
    return {
        f"blk.{i}.attn_norm.weight": _tensor(e, None, d),
        f"blk.{i}.attn_q.weight": _tensor(spec.heads * head_dim, e, d),
        f"blk.{i}.attn_k.weight": _tensor(kv_heads * head_dim, e, d),
        f"blk.{i}.attn_v.weight": _tensor(kv_heads * head_dim, e, d),
        f"blk.{i}.attn_output.weight": _tensor(e, spec.heads * head_dim, d),
        f"blk.{i}.ffn_norm.weight": _tensor(e, None, d),
        f"blk.{i}.ffn_gate.weight": _tensor(spec.ffn, e, d),
        f"blk.{i}.ffn_up.weight": _tensor(spec.ffn, e, d),
        f"blk.{i}.ffn_down.weight": _tensor(e, spec.ffn, d),
    }


def all_tensors(spec: TinySpec) -> dict[str, np.ndarray]:
    tensors = {"token_embd.weight": _tensor(spec.vocab, spec.embd, spec.dtype)}
    for i in range(spec.layers):
        tensors.update(layer_tensors(spec, i))
    tensors["output_norm.weight"] = _tensor(spec.embd, None, spec.dtype)
    if not spec.tied:
        tensors["output.weight"] = _tensor(spec.vocab, spec.embd, spec.dtype)
    return tensors


def _add_metadata(writer: GGUFWriter, spec: TinySpec) -> None:
    writer.add_name("tiny-test-llama")
    if spec.ctx is not None:
        writer.add_context_length(spec.ctx)
    writer.add_embedding_length(spec.embd)
    writer.add_block_count(spec.layers)
    writer.add_feed_forward_length(spec.ffn)
    writer.add_head_count(spec.heads)
    if spec.kv_heads_per_layer is not None:
        writer.add_head_count_kv(list(spec.kv_heads_per_layer))
    elif spec.kv_heads is not None:
        writer.add_head_count_kv(spec.kv_heads)
    if spec.key_length is not None:
        writer.add_key_length(spec.key_length)
    if spec.value_length is not None:
        writer.add_value_length(spec.value_length)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(spec.vocab)


def _write(path: Path, spec: TinySpec, tensors: dict[str, np.ndarray], split: tuple[int, int] | None) -> None:
    writer = GGUFWriter(str(path), "llama")
    _add_metadata(writer, spec)
    if split is not None:  # same keys and types as llama.cpp's gguf-split
        writer.add_uint16("split.no", split[0])
        writer.add_uint16("split.count", split[1])
        writer.add_int32("split.tensors.count", len(all_tensors(spec)))
    for name, data in tensors.items():
        writer.add_tensor(name, data)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def write_tiny_gguf(path: Path, spec: TinySpec = TinySpec()) -> Path:
    """Write one GGUF file with `spec` and return its path."""
    _write(path, spec, all_tensors(spec), None)
    return path


def write_split_gguf(directory: Path, stem: str, spec: TinySpec = TinySpec(), parts: int = 2) -> list[Path]:
    """Write `stem-0000i-of-0000N.gguf` files, tensors dealt round-robin; returns the paths in order."""
    names = list(all_tensors(spec).items())
    paths = []
    for i in range(parts):
        path = directory / f"{stem}-{i + 1:05d}-of-{parts:05d}.gguf"
        chunk = dict(names[i::parts])
        _write(path, spec, chunk, (i, parts))
        paths.append(path)
    return paths


@dataclass(frozen=True)
class LlamaShape:
    """A real llama-architecture shape (F16 matrices, F32 norms) for full-size sparse GGUF files."""

    embd: int
    blocks: int
    heads: int
    kv_heads: int
    ffn: int
    ctx: int
    vocab: int = 32000
    q4_k: bool = False  # matrices as Q4_K (144 bytes per 256 weights), as in a Q4_K quantized file


def shape_tensors(shape: LlamaShape) -> dict[str, tuple[tuple[int, ...], type[np.floating]]]:
    """Tensor name -> (numpy-order shape, dtype), as llama.cpp's converter writes a llama model."""
    e, f16, f32 = shape.embd, np.float16, np.float32
    kv = shape.kv_heads * (e // shape.heads)
    block = {
        "attn_norm.weight": ((e,), f32),
        "attn_q.weight": ((e, e), f16),
        "attn_k.weight": ((kv, e), f16),
        "attn_v.weight": ((kv, e), f16),
        "attn_output.weight": ((e, e), f16),
        "ffn_norm.weight": ((e,), f32),
        "ffn_gate.weight": ((shape.ffn, e), f16),
        "ffn_up.weight": ((shape.ffn, e), f16),
        "ffn_down.weight": ((e, shape.ffn), f16),
    }
    tensors: dict[str, tuple[tuple[int, ...], type[np.floating]]] = {"token_embd.weight": ((shape.vocab, e), f16)}
    for i in range(shape.blocks):
        tensors.update({f"blk.{i}.{name}": spec for name, spec in block.items()})
    tensors["output_norm.weight"] = ((e,), f32)
    tensors["output.weight"] = ((shape.vocab, e), f16)
    return tensors


def write_sparse_llama_gguf(path: Path, shape: LlamaShape) -> Path:
    """A GGUF with real metadata and tensor sizes whose data region is a hole (no disk blocks used)."""
    writer = GGUFWriter(str(path), "llama")
    writer.add_name("sparse-llama")
    writer.add_context_length(shape.ctx)
    writer.add_embedding_length(shape.embd)
    writer.add_block_count(shape.blocks)
    writer.add_feed_forward_length(shape.ffn)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(shape.kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(shape.vocab)
    end = 0
    for name, (dims, dtype) in shape_tensors(shape).items():
        if shape.q4_k and len(dims) == 2:
            block, size = GGML_QUANT_SIZES[GGMLQuantizationType.Q4_K]
            byte_dims = (dims[0], dims[1] // block * size)
            nbytes = byte_dims[0] * byte_dims[1]
            writer.add_tensor_info(name, byte_dims, np.dtype(np.uint8), nbytes, raw_dtype=GGMLQuantizationType.Q4_K)
        else:
            nbytes = int(np.prod(dims)) * np.dtype(dtype).itemsize
            writer.add_tensor_info(name, dims, np.dtype(dtype), nbytes)
        end += -(-nbytes // 32) * 32  # tensors are aligned to 32 bytes
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    writer.close()
    with open(path, "r+b") as fh:
        header = fh.seek(0, 2)
        fh.truncate(-(-header // 32) * 32 + end)
    return path
