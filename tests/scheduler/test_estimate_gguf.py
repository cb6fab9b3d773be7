"""GGUF estimate: byte counts checked against hand-computed values for tiny generated files."""

from pathlib import Path

import numpy as np
import pytest

from gpustack.scheduler.estimate.gguf import context_from_parameters, estimate_gguf
from gpustack.scheduler.units import MiB

from ._gguf import TinySpec, write_split_gguf, write_tiny_gguf

# Default TinySpec: vocab 32, embd 64, 2 layers, 4 heads (head_dim 16), 2 KV heads, ffn 128, f32.
TOKEN_EMBD = 32 * 64 * 4  # 8192
OUTPUT = 32 * 64 * 4 + 64 * 4  # output.weight + output_norm.weight = 8448
PER_LAYER = (
    2 * 64 * 4  # attn_norm + ffn_norm
    + 2 * (64 * 64 * 4)  # attn_q + attn_output
    + 2 * (32 * 64 * 4)  # attn_k + attn_v (2 kv heads * 16)
    + 3 * (128 * 64 * 4)  # ffn gate/up/down
)  # 147968
WEIGHTS = TOKEN_EMBD + OUTPUT + 2 * PER_LAYER  # 312576


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return write_tiny_gguf(tmp_path / "tiny.gguf")


def _compute(ctx: int, ubatch: int = 512) -> int:
    """Attention peak of the default spec: 4 heads + mask per context token, K and V (2 kv heads * 16),
    4 hidden-size activations; f32; plus 1 MiB slack."""
    return MiB + 4 * ubatch * (ctx * (4 + 1) + 2 * 32 + 4 * 64)


def test_weights_layers_and_default_context(tiny: Path) -> None:
    est = estimate_gguf(tiny)
    assert (PER_LAYER, WEIGHTS) == (147968, 312576)
    assert est.weights_bytes == WEIGHTS
    assert est.host_weights_bytes == TOKEN_EMBD
    assert est.output_bytes == OUTPUT
    assert (est.block_count, est.total_layers) == (2, 3)  # llama.cpp counts the output layer
    assert est.context_size == 2048  # min(train ctx 2048, 8192)
    # K and V * 2 layers * 2048 tokens * 2 kv heads * head_dim 16 * 2 bytes
    assert est.kv_cache_bytes == 2 * 2 * 2048 * 2 * 16 * 2 == 524288
    assert est.compute_bytes == _compute(2048)
    assert est.total_bytes == WEIGHTS + 524288 + _compute(2048)
    assert est.full_gpu_bytes == WEIGHTS - TOKEN_EMBD + 524288 + _compute(2048)
    assert est.per_block_bytes() == PER_LAYER + 524288 // 2


def test_tied_embeddings_count_the_output_matrix_on_the_gpu(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "tied.gguf", TinySpec(tied=True)))
    # no output.weight: llama.cpp puts a copy of token_embd on the output layer's device
    assert est.output_bytes == OUTPUT
    assert est.weights_bytes == WEIGHTS
    assert est.per_block_bytes() == PER_LAYER + 524288 // 2


def test_compute_follows_micro_batch_and_logits(tmp_path: Path, tiny: Path) -> None:
    assert estimate_gguf(tiny, backend_parameters=["-ub", "128"]).compute_bytes == _compute(2048, 128)
    assert estimate_gguf(tiny, backend_parameters=["--batch-size=64"]).compute_bytes == _compute(2048, 64)
    big_vocab = estimate_gguf(write_tiny_gguf(tmp_path / "v.gguf", TinySpec(vocab=40000)), context_size=16)
    assert big_vocab.compute_bytes == MiB + 4 * 512 * (40000 + 64)  # logits beat attention at a short context


def test_f16_tensors_halve_weights(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "f16.gguf", TinySpec(dtype=np.float16)))
    assert est.weights_bytes == WEIGHTS // 2
    assert (est.host_weights_bytes, est.output_bytes) == (TOKEN_EMBD // 2, OUTPUT // 2)


def test_long_training_context_is_capped(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "long.gguf", TinySpec(ctx=32768)))
    assert est.context_size == 8192
    assert est.kv_cache_bytes == 2 * 2 * 8192 * 2 * 16 * 2


def test_missing_context_length_uses_cap(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "noctx.gguf", TinySpec(ctx=None)))
    assert est.context_size == 8192


def test_explicit_context_wins_over_parameters(tiny: Path) -> None:
    est = estimate_gguf(tiny, context_size=512, backend_parameters=["--ctx-size=4096"])
    assert est.context_size == 512
    assert est.kv_cache_bytes == 2 * 2 * 512 * 2 * 16 * 2
    assert est.compute_bytes == _compute(512)


@pytest.mark.parametrize(
    "params",
    [
        ["--ctx-size", "4096"],
        ["--ctx-size=4096"],
        ["--ctx-size 4096"],
        ["-c", "4096"],
        ["--n_ctx", "4096"],
        ["--n_ctx=4096"],
        ["--threads", "8", "-c", "1024", "--ctx-size=4096"],  # last one wins
    ],
)
def test_context_from_backend_parameters(tiny: Path, params: list[str]) -> None:
    assert context_from_parameters(params) == 4096
    est = estimate_gguf(tiny, backend_parameters=params)
    assert est.context_size == 4096
    assert est.kv_cache_bytes == 2 * 2 * 4096 * 2 * 16 * 2


def test_unrelated_parameters_are_ignored() -> None:
    assert context_from_parameters(["--threads", "8", "--ctx", "7", "-cb"]) is None


def test_zero_context_means_training_context(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "long.gguf", TinySpec(ctx=32768))
    assert estimate_gguf(path, backend_parameters=["-c", "0"]).context_size == 32768


def test_invalid_context_values(tiny: Path) -> None:
    with pytest.raises(ValueError, match="invalid context size 'big'"):
        estimate_gguf(tiny, backend_parameters=["--ctx-size", "big"])
    with pytest.raises(ValueError, match="must not be negative"):
        estimate_gguf(tiny, context_size=-1)


def test_missing_head_count_kv_falls_back_to_head_count(tmp_path: Path) -> None:
    est = estimate_gguf(write_tiny_gguf(tmp_path / "mha.gguf", TinySpec(kv_heads=None)))
    assert est.kv_cache_bytes == 2 * 2 * 2048 * 4 * 16 * 2


def test_per_layer_head_count_kv_array(tmp_path: Path) -> None:
    spec = TinySpec(kv_heads_per_layer=(2, 1))
    est = estimate_gguf(write_tiny_gguf(tmp_path / "swa.gguf", spec), context_size=1024)
    # layer 0: 2 kv heads, layer 1: 1 kv head; K and V; head_dim 16; 1024 tokens; 2 bytes
    assert est.kv_cache_bytes == (2 + 1) * 2 * 16 * 1024 * 2 == 196608


def test_key_and_value_length_override_head_dim(tmp_path: Path) -> None:
    spec = TinySpec(key_length=32, value_length=16)
    est = estimate_gguf(write_tiny_gguf(tmp_path / "kv.gguf", spec), context_size=1024)
    # per layer per token: 2 kv heads * (32 + 16) elements; 2 layers; 1024 tokens; 2 bytes
    assert est.kv_cache_bytes == 2 * (32 + 16) * 2 * 1024 * 2 == 393216


def test_split_gguf_sums_all_parts(tmp_path: Path) -> None:
    paths = write_split_gguf(tmp_path, "tiny", parts=3)
    assert [p.name for p in paths] == [f"tiny-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    single = estimate_gguf(write_tiny_gguf(tmp_path / "whole.gguf"))
    for part in paths:  # any part names the whole model
        assert estimate_gguf(part) == single
    assert single.weights_bytes == WEIGHTS


def test_split_gguf_with_missing_part(tmp_path: Path) -> None:
    paths = write_split_gguf(tmp_path, "tiny", parts=2)
    paths[1].unlink()
    with pytest.raises(ValueError, match="tiny-00002-of-00002.gguf is missing"):
        estimate_gguf(paths[0])


@pytest.mark.parametrize("content", [b"", b"not a gguf file at all", b"GGUF\x03\x00\x00\x00\xff"])
def test_unreadable_files_raise_value_error_naming_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.gguf"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        estimate_gguf(path)
    assert str(path) in str(info.value)


def test_missing_file_raises_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope.gguf: GGUF file not found"):
        estimate_gguf(tmp_path / "nope.gguf")


@pytest.mark.parametrize("keep", [10, 200, 1000, 0.5])
def test_truncated_gguf_raises_value_error(tmp_path: Path, tiny: Path, keep: float) -> None:
    data = tiny.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: int(len(data) * keep) if keep < 1 else int(keep)])
    with pytest.raises(ValueError, match="cut.gguf: not a readable GGUF file"):
        estimate_gguf(cut)
