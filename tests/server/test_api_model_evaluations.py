"""/v2/model-evaluations: the scheduler's dry run over real HTTP, on every database backend."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scheduler._gguf import LlamaShape, write_sparse_llama_gguf, write_tiny_gguf
from tests.scheduler._safetensors import BGE_M3, LLAMA3_8B, write_model_dir
from tests.server.api_test_helpers import admin_client, ready_worker, unique
from tests.utils.server import RunningServer

GiB = 2**30


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


@pytest.fixture
def pool(server: RunningServer) -> dict[str, str]:
    """A worker with one simulated 8 GiB GPU, under a label of its own (other tests' workers differ)."""
    gpu = {"index": 0, "name": "RTX 4060", "memory_total": 8 * GiB, "simulated": True}
    return ready_worker(server, "eval", [gpu], 32 * GiB)["selector"]  # type: ignore[no-any-return]


def _evaluate(api: httpx.Client, *specs: dict[str, Any]) -> list[dict[str, Any]]:
    response = api.post("/v2/model-evaluations", json={"model_specs": list(specs)})
    assert response.status_code == 200, response.text
    return response.json()["results"]  # type: ignore[no-any-return]


def test_a_fitting_model_gets_its_placement_and_terms(api: httpx.Client, pool: dict[str, str], tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "tiny.gguf")
    (result,) = _evaluate(api, {"local_path": str(path), "worker_selector": pool})
    assert result["compatible"] is True and result["error"] is None, result
    placement = result["placement"]
    assert placement["gpu_indexes"] == [0]
    claim = placement["computed_resource_claim"]
    assert claim["offload_layers"] == claim["total_layers"] == 3 and claim["context_size"] == 2048
    assert result["resource_claim"]["vram"] == sum(claim["vram"].values())
    assert claim["terms"]["runtime_overhead_gpu"] == 640 * 2**20
    assert result["estimate"]["context_size"] == 2048
    assert api.get("/v2/models", params={"search": "evaluation"}).json()["items"] == []  # nothing was created


def test_a_model_that_fits_nowhere_says_why_per_worker(api: httpx.Client, pool: dict[str, str], tmp_path: Path) -> None:
    shape = LlamaShape(embd=4096, blocks=32, heads=32, kv_heads=32, ffn=11008, ctx=4096)  # 7B, F16, ~15 GiB
    big = write_sparse_llama_gguf(tmp_path / "big.gguf", shape)
    spec = {"local_path": str(big), "worker_selector": pool, "cpu_offloading": False}
    (result,) = _evaluate(api, spec)
    assert result["compatible"] is False and result["placement"] is None
    mine = [m for m in result["scheduling_messages"] if "largest free GPU" in m]
    assert mine and "needs" in mine[0] and "CPU offloading is disabled" in mine[0]
    assert all(
        ("label selector" in m) or ("largest free GPU" in m) or ("worker is" in m)
        for m in result["scheduling_messages"]
    )


def test_invalid_specs_are_reported_per_spec(api: httpx.Client, pool: dict[str, str], tmp_path: Path) -> None:
    path = write_tiny_gguf(tmp_path / "ok.gguf")
    bad, good = _evaluate(api, {"replicas": -1}, {"local_path": str(path), "worker_selector": pool})
    assert bad["error"] is True and "replicas" in bad["error_message"]
    assert good["compatible"] is True


def test_evaluations_need_credentials(server: RunningServer) -> None:
    with server.client() as anonymous:
        assert anonymous.post("/v2/model-evaluations", json={"model_specs": []}).status_code == 401


@pytest.fixture
def busy_4090(server: RunningServer) -> dict[str, str]:
    """A worker with one simulated 24 GiB RTX 4090 of which 6 GiB are used by another process."""
    gpu = {"index": 0, "name": "RTX 4090", "memory_total": 24 * GiB, "memory_used": 6 * GiB, "simulated": True}
    return ready_worker(server, "busy", [gpu], 64 * GiB)["selector"]  # type: ignore[no-any-return]


def test_vllm_fit_rules_are_explained(api: httpx.Client, busy_4090: dict[str, str], tmp_path: Path) -> None:
    """The fraction rule's per-GPU reason for a language model; an embedding model claimed at its estimate."""
    write_model_dir(tmp_path / "llama-3-8b", LLAMA3_8B)
    write_model_dir(tmp_path / "bge-m3", BGE_M3)
    llm = {"local_path": str(tmp_path / "llama-3-8b"), "backend": "vllm", "worker_selector": busy_4090}
    embed = {**llm, "local_path": str(tmp_path / "bge-m3"), "categories": ["embedding"]}
    refused, placed = _evaluate(api, llm, embed)
    assert refused["compatible"] is False
    mine = [m for m in refused["scheduling_messages"] if "RTX 4090" in m]
    assert len(mine) == 1 and "GPU 0 RTX 4090: 17.8 GiB allocatable < 0.9 × 24.0 GiB" in mine[0]
    lengths = [len(m) for m in refused["scheduling_messages"]]
    assert lengths == sorted(lengths)
    assert placed["compatible"] is True, placed
    claim = placed["placement"]["computed_resource_claim"]
    assert claim["vram_utilization"] == 0.2 and claim["vram"]["0"] < 5 * GiB


def test_a_model_fitting_only_across_two_workers(api: httpx.Client, server: RunningServer, tmp_path: Path) -> None:
    """Refused with the reason when distributed inference is off; placed on both when it is on."""
    label = unique("pair")
    gpu = {"index": 0, "name": "RTX 4060", "memory_total": 8 * GiB, "simulated": True}
    names = [ready_worker(server, "pair", [gpu], 32 * GiB, label=label)["name"] for _ in range(2)]
    shape = LlamaShape(embd=4096, blocks=24, heads=32, kv_heads=8, ffn=11008, ctx=2048)  # ~8.4 GiB F16
    path = write_sparse_llama_gguf(tmp_path / "pair.gguf", shape)
    spec = {"local_path": str(path), "worker_selector": {"pool": label}, "cpu_offloading": False}

    (refused,) = _evaluate(api, spec)
    assert refused["compatible"] is False
    assert any(m.startswith("*: fits across 2 workers") for m in refused["scheduling_messages"]), refused

    (placed,) = _evaluate(api, {**spec, "distributed_inference_across_workers": True})
    assert placed["compatible"] is True, placed
    placement = placed["placement"]
    (sub,) = placement["subordinate_workers"]
    assert {placement["worker_name"], sub["worker_name"]} == set(names)
    assert sub["gpu_indexes"] == [0] and sub["ports"] == []
    both = sum(placement["computed_resource_claim"]["vram"].values()) + sum(
        sub["computed_resource_claim"]["vram"].values()
    )
    assert placed["resource_claim"]["vram"] == both
