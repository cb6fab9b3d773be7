"""The header-only GGUF reader agrees with gguf's full reader, and refuses damaged files."""

from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType, GGUFReader, GGUFWriter

from gpustack.scheduler.estimate.gguf_header import read_header
from tests.utils.tiny_gguf import write_tiny_gguf


def test_metadata_and_tensors_match_the_full_reader(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "tok.gguf", layers=3, hidden=64, heads=4, kv_heads=2)
    header, full = read_header(path), GGUFReader(path)
    assert [(t.name, t.n_elements, t.n_bytes) for t in header.tensors] == [
        (t.name, int(t.n_elements), int(t.n_bytes)) for t in full.tensors
    ]
    assert header.metadata["general.architecture"] == "llama"
    assert header.metadata["llama.block_count"] == 3
    assert header.metadata["llama.attention.head_count_kv"] == 2
    assert header.metadata["tokenizer.chat_template"].startswith("{% for message")  # type: ignore[union-attr]
    tokens = full.get_field("tokenizer.ggml.tokens")
    assert tokens is not None
    assert header.array_lengths["tokenizer.ggml.tokens"] == len(tokens.data)
    assert "tokenizer.ggml.tokens" not in header.metadata  # string arrays are only counted


def test_short_numeric_arrays_are_kept(tmp_path: Path) -> None:
    writer = GGUFWriter(str(tmp_path / "a.gguf"), "llama")
    writer.add_head_count_kv([8, 8, 2, 2])
    writer.add_array("big.array", list(range(5000)))
    writer.add_tensor("x", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    header = read_header(tmp_path / "a.gguf")
    assert header.metadata["llama.attention.head_count_kv"] == [8, 8, 2, 2]
    assert "big.array" not in header.metadata and header.array_lengths["big.array"] == 5000


def test_quantized_tensor_sizes(tmp_path: Path) -> None:
    path = tmp_path / "q.gguf"
    writer = GGUFWriter(str(path), "llama")
    # Q4_0: blocks of 32 values in 18 bytes; 64 x 128 values = 256 blocks = 4608 bytes
    writer.add_tensor("q", np.zeros((64, 72), dtype=np.uint8), raw_dtype=GGMLQuantizationType.Q4_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    (tensor,) = read_header(path).tensors
    assert (tensor.n_elements, tensor.n_bytes) == (64 * 128, 4608)
    assert tensor.n_bytes == int(GGUFReader(path).tensors[0].n_bytes)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"GGML\x03\x00\x00\x00", "bad magic"),
        (b"GGUF\x09\x00\x00\x00" + b"\x00" * 16, "unsupported GGUF version 9"),
        (b"GGUF\x03\x00\x00\x00\x01", "file ends inside the header"),
    ],
)
def test_damaged_files_raise_value_error(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.gguf"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=reason):
        read_header(path)


def test_missing_tensor_data_is_detected(tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "cut.gguf")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ValueError, match="past the end of the file"):
        read_header(path)
