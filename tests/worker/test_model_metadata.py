"""What a worker answers about a model path: the same numbers the server's own readers get from the files."""

from pathlib import Path

import pytest

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.estimate.metadata import estimate_from_metadata
from gpustack.scheduler.estimate.safetensors import estimate_model_dir
from gpustack.worker.model_metadata import measure_path
from tests.scheduler._gguf import write_split_gguf
from tests.scheduler._safetensors import HFShape, write_model_dir
from tests.utils.tiny_gguf import write_tiny_gguf

SHAPE = HFShape(hidden=256, layers=4, heads=8, kv_heads=2, ffn=512, vocab=1000, max_context=4096)


def test_a_safetensors_directory(tmp_path: Path) -> None:
    weights = write_model_dir(tmp_path / "m", SHAPE, shards=2)
    meta = measure_path(str(tmp_path / "m"), prefer_gguf=False)
    assert meta.format == "safetensors" and meta.weights_bytes == weights and len(meta.files) == 2
    assert estimate_from_metadata(meta) == (estimate_model_dir(tmp_path / "m"), None)


def test_a_gguf_file_a_split_gguf_and_a_gguf_directory(tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    tiny = write_tiny_gguf(tmp_path / "one" / "tiny.gguf")
    meta = measure_path(str(tiny), prefer_gguf=True)
    assert meta.format == "gguf" and estimate_from_metadata(meta)[0] == estimate_gguf(tiny)
    assert measure_path(str(tiny.parent), prefer_gguf=True) == meta
    parts = write_split_gguf(tmp_path, "split", parts=2)
    split = measure_path(str(parts[1]), prefer_gguf=True)
    assert len(split.gguf_headers) == 2 and estimate_from_metadata(split)[0] == estimate_gguf(parts[0])


def test_a_directory_with_both_follows_the_backend(tmp_path: Path) -> None:
    write_model_dir(tmp_path / "both", SHAPE, shards=1)
    write_tiny_gguf(tmp_path / "both" / "tiny.gguf")
    assert measure_path(str(tmp_path / "both"), prefer_gguf=True).format == "gguf"
    assert measure_path(str(tmp_path / "both"), prefer_gguf=False).format == "safetensors"


def test_what_is_not_a_model_is_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        measure_path(str(tmp_path / "absent"), prefer_gguf=False)
    with pytest.raises(ValueError, match="absolute"):
        measure_path("models/m", prefer_gguf=False)
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ValueError, match="not a GGUF file"):
        measure_path(str(tmp_path / "notes.txt"), prefer_gguf=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no config.json"):
        measure_path(str(tmp_path / "empty"), prefer_gguf=False)
    (tmp_path / "bad.gguf").write_bytes(b"GGUF\x07\x00\x00\x00")
    with pytest.raises(ValueError, match="not a readable GGUF file"):
        measure_path(str(tmp_path / "bad.gguf"), prefer_gguf=True)
