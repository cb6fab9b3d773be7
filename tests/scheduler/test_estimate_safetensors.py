"""Model-directory estimates from config.json and sparse safetensors files (real headers, no data)."""

import json
from pathlib import Path

import pytest

from gpustack.scheduler.estimate.safetensors import (
    ModelShape,
    estimate_model_dir,
    floor_bytes,
    safetensors_bytes,
)
from gpustack.scheduler.units import GiB, MiB

from ._safetensors import HFShape, write_model_dir, write_sparse_safetensors

LLAMA3_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=8192)
QWEN_72B = HFShape(hidden=8192, layers=80, heads=64, kv_heads=8, ffn=29568, vocab=152064, max_context=32768)


def test_llama3_8b_terms(tmp_path: Path) -> None:
    weights = write_model_dir(tmp_path / "llama3", LLAMA3_8B)
    assert weights == 16_060_522_496  # 8.03 B parameters in bf16
    est = estimate_model_dir(tmp_path / "llama3")
    assert est.weights_bytes == weights
    assert est.context_size == 8192
    # K and V, 32 layers, 8 kv heads of 128, bf16, 8192 tokens
    assert est.kv_cache_bytes == 2 * 32 * 8 * 128 * 2 * 8192 == GiB
    assert est.full_gpu_bytes == floor_bytes(weights, "llm")  # the GPUStack rule is the floor here
    assert est.attention_heads == 32


def test_long_context_models_are_capped_at_8192_unless_asked(tmp_path: Path) -> None:
    write_model_dir(tmp_path / "qwen", QWEN_72B)
    assert estimate_model_dir(tmp_path / "qwen").context_size == 8192
    asked = estimate_model_dir(tmp_path / "qwen", backend_parameters=["--max-model-len=32768"])
    assert asked.context_size == 32768
    assert asked.kv_cache_bytes == 2 * 80 * 8 * 128 * 2 * 32768  # 10 GiB: within the floor's allowance
    assert asked.full_gpu_bytes == floor_bytes(asked.weights_bytes, "llm")
    longest = estimate_model_dir(tmp_path / "qwen", backend_parameters=["--max-model-len", "131072"])
    assert longest.kv_cache_bytes == 40 * GiB  # beyond what the floor allows for: counted in full
    assert longest.full_gpu_bytes == longest.weights_bytes + 40 * GiB > floor_bytes(longest.weights_bytes, "llm")
    params = ["--max-model-len", "32768", "--kv-cache-dtype", "fp8"]
    fp8 = estimate_model_dir(tmp_path / "qwen", backend_parameters=params)
    assert fp8.kv_cache_bytes == asked.kv_cache_bytes // 2


def test_floor_by_category() -> None:
    assert floor_bytes(10 * GiB, "llm") == 12 * GiB + 2 * GiB
    assert floor_bytes(10 * GiB, "embedding") == 12 * GiB + 512 * MiB
    assert floor_bytes(GiB, "text_to_speech") == 3 * (int(GiB * 1.2) + 512 * MiB)


def test_multimodal_configs_use_the_text_config() -> None:
    config = {"architectures": ["Qwen2VLForConditionalGeneration"], "vision_config": {"num_attention_heads": 16},
              "text_config": {"hidden_size": 3584, "num_hidden_layers": 28, "num_attention_heads": 28,
                              "num_key_value_heads": 4, "max_position_embeddings": 32768}}  # fmt: skip
    shape = ModelShape.from_config(config)
    assert (shape.layers, shape.heads, shape.kv_heads, shape.head_dim) == (28, 28, 4, 128)
    assert shape.architectures == ("Qwen2VLForConditionalGeneration",)


def test_pytorch_checkpoints_count_their_file_sizes(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"num_hidden_layers": 2, "hidden_size": 64}))
    with open(tmp_path / "pytorch_model.bin", "wb") as fh:
        fh.truncate(3 * MiB)
    assert estimate_model_dir(tmp_path).weights_bytes == 3 * MiB


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda d: None, "no config.json"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "config.json").write_text("{}"), "no \\*.safetensors or PyTorch weight files"),
    ],
)
def test_unusable_directories_say_why(tmp_path: Path, setup: object, message: str) -> None:
    setup(tmp_path)  # type: ignore[operator]
    with pytest.raises(ValueError, match=message):
        estimate_model_dir(tmp_path)


def test_damaged_safetensors_files(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    size = write_sparse_safetensors(path, {"a": [4, 4]}, "F32")
    assert safetensors_bytes(path) == size == 64
    with open(path, "r+b") as fh:
        fh.truncate(40)
    with pytest.raises(ValueError):
        safetensors_bytes(path)
    path.write_bytes(b"\xff" * 8)
    with pytest.raises(ValueError, match="not a safetensors file"):
        safetensors_bytes(path)
