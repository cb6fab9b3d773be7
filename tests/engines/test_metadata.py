"""Categories from a model's own files: GGUF headers (architecture, pooling type) and config.json."""

import json
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFWriter

from gpustack.engines.metadata import categories_from_files, config_categories
from tests.utils.tiny_gguf import write_tiny_gguf


def _gguf(path: Path, arch: str, pooling: int | None) -> Path:
    writer = GGUFWriter(str(path), arch)
    writer.add_block_count(1)
    if pooling is not None:
        writer.add_uint32(f"{arch}.pooling_type", pooling)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.mark.parametrize(
    ("arch", "pooling", "expected"),
    [
        ("llama", None, ["llm"]),
        ("llama", 1, ["llm", "embedding"]),  # a decoder with a pooling type also embeds
        ("bert", 2, ["embedding"]),
        ("bert", 4, ["reranker"]),
        ("qwen3", 4, ["reranker"]),
    ],
)
def test_gguf_categories(tmp_path: Path, arch: str, pooling: int | None, expected: list[str]) -> None:
    assert categories_from_files(str(_gguf(tmp_path / "m.gguf", arch, pooling))) == expected


def test_the_tiny_test_model_chats_and_embeds(tmp_path: Path) -> None:
    assert categories_from_files(str(write_tiny_gguf(tmp_path / "tiny.gguf"))) == ["llm", "embedding"]


@pytest.mark.parametrize(
    ("architecture", "expected"),
    [
        ("LlamaForCausalLM", ["llm"]),
        ("Qwen2VLForConditionalGeneration", ["llm"]),
        ("XLMRobertaForSequenceClassification", ["reranker"]),
        ("XLMRobertaModel", ["embedding"]),
        ("SomethingElse", []),
    ],
)
def test_config_categories(tmp_path: Path, architecture: str, expected: list[str]) -> None:
    assert config_categories({"architectures": [architecture]}) == expected
    (tmp_path / "config.json").write_text(json.dumps({"architectures": [architecture]}))
    assert categories_from_files(str(tmp_path)) == expected


def test_unreadable_or_absent_files_give_no_categories(tmp_path: Path) -> None:
    assert categories_from_files(str(tmp_path / "absent.gguf")) == []
    (tmp_path / "broken.gguf").write_bytes(b"GGUF\x03")
    assert categories_from_files(str(tmp_path / "broken.gguf")) == []
    (tmp_path / "config.json").write_text("[not an object]")
    assert categories_from_files(str(tmp_path)) == []
