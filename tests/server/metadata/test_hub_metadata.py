"""Hub metadata through huggingface_hub and ModelScope's REST API, against a real stand-in hub on loopback."""

import json
import socket
from collections.abc import Iterator

import pytest

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.estimate.metadata import estimate_from_metadata
from gpustack.scheduler.estimate.safetensors import estimate_model_dir
from gpustack.server.metadata.hub import FETCH_ERRORS, fetch_huggingface, fetch_modelscope
from tests.scheduler._gguf import LlamaShape, write_sparse_llama_gguf
from tests.scheduler._safetensors import HFShape, write_model_dir
from tests.server.metadata.fake_hub import COMMIT, FakeHub, running_hub

LLAMA_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=131072)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    root = tmp_path_factory.mktemp("hub")
    write_model_dir(root / "llama-8b", LLAMA_8B, shards=4)
    (root / "llama-8b" / "README.md").write_text("# not weights")
    gguf = root / "llama-gguf"
    gguf.mkdir()
    write_sparse_llama_gguf(gguf / "llama-Q8_0.gguf", LlamaShape(2048, 16, 16, 4, 5632, 4096))
    write_sparse_llama_gguf(gguf / "llama-F16.gguf", LlamaShape(2048, 16, 16, 4, 5632, 4096, vocab=64000))
    with running_hub(FakeHub(repos={"meta/llama-8b": root / "llama-8b", "meta/llama-gguf": gguf})) as served:
        yield served


@pytest.fixture
def hf(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("MODELSCOPE_DOMAIN", hub.url)
    hub.log.clear()
    return hub


def test_an_8b_repo_gives_the_same_terms_as_the_same_directory(hf: FakeHub) -> None:
    fetched = fetch_huggingface("meta/llama-8b", "")

    assert fetched.commit_sha == COMMIT and fetched.metadata.format == "safetensors"
    assert sorted(fetched.metadata.files) == [f"model-0000{i}-of-00004.safetensors" for i in range(1, 5)]
    params = ["--max-model-len=16384"]
    remote, note = estimate_from_metadata(fetched.metadata, backend_parameters=params)
    assert note is None
    assert remote == estimate_model_dir(hf.repos["meta/llama-8b"], backend_parameters=params)
    served = {s.path: s for s in hf.log}
    assert served["meta/llama-8b/config.json"].range is None
    shards = [s for s in hf.log if s.path.endswith(".safetensors")]
    assert len(shards) == 4 and all(s.range == "bytes=0-100000" for s in shards)  # headers only
    assert sum(s.sent for s in hf.log) < 1 << 20  # of ~15 GiB of weights


def test_a_filename_pattern_picks_one_gguf_and_its_header_is_read_by_ranges(hf: FakeHub) -> None:
    fetched = fetch_huggingface("meta/llama-gguf", "*Q8_0*")

    assert list(fetched.metadata.files) == ["llama-Q8_0.gguf"]
    estimate, note = estimate_from_metadata(fetched.metadata)
    assert note is None and estimate == estimate_gguf(hf.repos["meta/llama-gguf"] / "llama-Q8_0.gguf")
    assert all(s.range and s.range.startswith("bytes=") for s in hf.log)
    assert sum(s.sent for s in hf.log) <= 1 << 20


def test_an_unknown_repo_or_selection_says_so(hf: FakeHub) -> None:
    with pytest.raises(OSError, match="404"):
        fetch_huggingface("meta/absent", "")
    with pytest.raises(ValueError, match="no \\*.safetensors"):
        fetch_huggingface("meta/llama-8b", "README.md")


def test_a_closed_port_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(FETCH_ERRORS):
        fetch_huggingface("meta/llama-8b", "", timeout=2.0)


def test_modelscope_listing_and_config(hf: FakeHub) -> None:
    fetched = fetch_modelscope("meta/llama-8b", "")

    config = json.loads((hf.repos["meta/llama-8b"] / "config.json").read_text())
    assert fetched.metadata.config == config and fetched.metadata.format == "safetensors"
    estimate, _ = estimate_from_metadata(fetched.metadata)
    local = estimate_model_dir(hf.repos["meta/llama-8b"])
    # sizes from the listing include each shard's JSON header: a few KiB over the tensors' bytes
    assert 0 < estimate.weights_bytes - local.weights_bytes < 4 * 100_000
    assert estimate.kv_cache_bytes == local.kv_cache_bytes
    gguf = fetch_modelscope("meta/llama-gguf", "llama-F16.gguf")
    assert list(gguf.metadata.files) == ["llama-F16.gguf"] and gguf.metadata.format == "gguf"
