"""Estimates from metadata (as a hub, a worker or the cache give it) match those from the files themselves."""

import json
from pathlib import Path

import pytest

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.estimate.gguf_header import header_from_dict, header_to_dict, read_header
from gpustack.scheduler.estimate.metadata import (
    MAX_VRAM_CLAIM,
    ModelMetadata,
    estimate_from_metadata,
    select_weight_files,
    vram_claim_override,
)
from gpustack.scheduler.estimate.safetensors import estimate_model_dir, floor_bytes
from tests.scheduler._gguf import LlamaShape, write_sparse_llama_gguf, write_split_gguf
from tests.scheduler._safetensors import HFShape, write_model_dir

GiB = 1 << 30
LLAMA_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=131072)


def test_metadata_of_a_directory_gives_the_directorys_estimate(tmp_path: Path) -> None:
    weights = write_model_dir(tmp_path / "m", LLAMA_8B, shards=4)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    meta = ModelMetadata(format="safetensors", weights_bytes=weights, config=config)
    params = ["--max-model-len", "32768"]

    estimate, note = estimate_from_metadata(ModelMetadata.from_dict(meta.to_dict()), backend_parameters=params)

    assert note is None
    assert estimate == estimate_model_dir(tmp_path / "m", backend_parameters=params)
    assert estimate.weights_bytes == weights and 14 * GiB < weights < 15 * GiB  # 8.0B parameters, bf16
    assert estimate.kv_cache_bytes == 2 * 32 * 8 * 128 * 2 * 32768  # K+V, 32 layers, 8 kv heads, bf16


def test_gguf_header_summaries_give_the_files_estimate(tmp_path: Path) -> None:
    path = write_sparse_llama_gguf(tmp_path / "7b.gguf", LlamaShape(4096, 32, 32, 8, 14336, 8192))
    summary = json.loads(json.dumps(header_to_dict(read_header(path))))  # as it crosses HTTP and the DB
    meta = ModelMetadata(format="gguf", weights_bytes=path.stat().st_size, files={path.name: 1}, gguf_headers=[summary])

    estimate, note = estimate_from_metadata(meta)

    assert note is None and estimate == estimate_gguf(path)
    assert header_from_dict(summary).tensors == read_header(path).tensors


def test_split_gguf_summaries_cover_every_part(tmp_path: Path) -> None:
    parts = write_split_gguf(tmp_path, "tiny", parts=2)
    meta = ModelMetadata(
        format="gguf", weights_bytes=1, files={p.name: 1 for p in parts},
        gguf_headers=[header_to_dict(read_header(p)) for p in parts],
    )  # fmt: skip
    assert estimate_from_metadata(meta)[0] == estimate_gguf(parts[0])


def test_without_config_or_header_the_estimate_is_gpustacks_rule_and_says_so() -> None:
    meta = ModelMetadata(format="safetensors", weights_bytes=10 * GiB)
    estimate, note = estimate_from_metadata(meta, category="text_to_speech")
    assert estimate.total_bytes == floor_bytes(10 * GiB, "text_to_speech") == 3 * (12 * GiB + 512 * 2**20)
    assert note and "no config.json" in note and "GPUStack's rule" in note
    gguf, gguf_note = estimate_from_metadata(ModelMetadata(format="gguf", weights_bytes=4 * GiB))
    assert gguf.total_bytes == floor_bytes(4 * GiB, "llm") and gguf_note and "no GGUF header" in gguf_note


def test_weight_files_are_picked_as_the_engines_load_them() -> None:
    listing = {
        "config.json": 1, "model-00001-of-00002.safetensors": 5, "model-00002-of-00002.safetensors": 6,
        "pytorch_model.bin": 100, "q4.gguf": 7, "q8.gguf": 9, "README.md": 2,
    }  # fmt: skip
    assert select_weight_files(listing) == (
        "safetensors",
        {"model-00001-of-00002.safetensors": 5, "model-00002-of-00002.safetensors": 6},
    )
    assert select_weight_files(listing, {"q8.gguf"}) == ("gguf", {"q8.gguf": 9})
    assert select_weight_files(listing, {"pytorch_model.bin", "README.md"}) == ("pytorch", {"pytorch_model.bin": 100})
    with pytest.raises(ValueError, match="no \\*.safetensors"):
        select_weight_files({"README.md": 1})


@pytest.mark.parametrize(
    ("raw", "expected"), [("40GiB", 40 * GiB), ("1500000000", 1_500_000_000), (" 512MiB ", 512 << 20)]
)
def test_vram_claim_override_reads_sizes(raw: str, expected: int) -> None:
    assert vram_claim_override({"GPUSTACK_VRAM_CLAIM": raw}) == expected


@pytest.mark.parametrize(
    ("raw", "message"),
    [("-1GiB", "invalid size"), ("0", "more than 0"), ("lots", "invalid size"), ("1PiB", "invalid size"),
     ("100TiB", "is over")],
)  # fmt: skip
def test_vram_claim_override_refuses_nonsense(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        vram_claim_override({"GPUSTACK_VRAM_CLAIM": raw})
    assert "GPUSTACK_VRAM_CLAIM" in str(info.value)
    assert vram_claim_override({}) is None and MAX_VRAM_CLAIM == 64 * 1024 * GiB
