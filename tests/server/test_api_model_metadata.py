"""Hub metadata, its cache and the user's GPUSTACK_VRAM_CLAIM as the API shows them (dry run and model
create), against a real stand-in hub on loopback, on every database backend."""

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpustack.scheduler.estimate.safetensors import estimate_model_dir, floor_bytes
from tests.scheduler._safetensors import HFShape, write_model_dir
from tests.server.api_test_helpers import admin_client, ready_worker, unique
from tests.server.metadata.fake_hub import FakeHub, running_hub
from tests.utils.server import RunningServer

GiB = 2**30
QWEN_7B = HFShape(hidden=3584, layers=28, heads=28, kv_heads=4, ffn=18944, vocab=152064, max_context=32768)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


@pytest.fixture
def pool(server: RunningServer) -> dict[str, str]:
    """A worker with one simulated 80 GiB GPU under a label of its own."""
    gpu = {"index": 0, "name": "H100", "memory_total": 80 * GiB, "simulated": True}
    return ready_worker(server, "meta", [gpu], 256 * GiB)["selector"]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    directory = tmp_path_factory.mktemp("api-hub") / "qwen"
    write_model_dir(directory, QWEN_7B, shards=2)
    with running_hub(FakeHub(repos={"qwen/qwen-7b": directory})) as served:
        yield served


def _evaluate(api: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v2/model-evaluations", json={"model_specs": [spec]})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]  # type: ignore[no-any-return]


def test_a_hub_model_is_evaluated_from_the_hub_then_from_the_cache(
    api: httpx.Client, pool: dict[str, str], hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    spec = {"source": "huggingface", "huggingface_repo_id": "qwen/qwen-7b", "backend": "vllm", "worker_selector": pool}
    first = _evaluate(api, spec)

    local = estimate_model_dir(hub.repos["qwen/qwen-7b"])
    assert first["compatible"] is True, first
    terms = first["estimate"]
    assert terms["source"] in ("hub", "cache")  # the server's own metadata loop may have cached it first
    assert (terms["weights"], terms["kv_cache"], terms["total"]) == (
        local.weights_bytes, local.kv_cache_bytes, local.total_bytes,
    )  # fmt: skip
    assert terms["gpustack_floor"] == floor_bytes(local.weights_bytes, "llm")
    assert first["placement"]["computed_resource_claim"]["estimate"] == terms

    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the hub is gone
    assert _evaluate(api, spec)["estimate"] == {**terms, "source": "cache"}


def test_an_unreachable_hub_says_what_to_do(
    api: httpx.Client, pool: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed}")
    spec = {"source": "huggingface", "huggingface_repo_id": unique("org/absent"), "backend": "vllm",
            "worker_selector": pool}  # fmt: skip
    result = _evaluate(api, spec)
    assert result["compatible"] is False and result["placement"] is None
    [message] = result["compatibility_messages"]
    assert "cannot get the model's metadata from Hugging Face" in message and "ConnectError" in message
    assert "GPUSTACK_VRAM_CLAIM" in message and "local_path" in message


def test_a_users_vram_claim_is_the_estimate(api: httpx.Client, pool: dict[str, str], tmp_path: Path) -> None:
    write_model_dir(tmp_path / "m", QWEN_7B, shards=1)
    spec = {"local_path": str(tmp_path / "m"), "backend": "vllm", "worker_selector": pool,
            "env": {"GPUSTACK_VRAM_CLAIM": "20GiB"}}  # fmt: skip
    result = _evaluate(api, spec)
    assert result["compatible"] is True, result
    assert result["estimate"]["source"] == "override" and result["estimate"]["total"] == 20 * GiB
    assert "gpustack_floor" not in result["estimate"]


@pytest.mark.parametrize(
    ("claim", "message"),
    [("-5GiB", "invalid size"), ("0", "more than 0"), ("a lot", "invalid size"), ("999TiB", "is over")],
)
def test_nonsense_claims_are_refused_on_create(api: httpx.Client, tmp_path: Path, claim: str, message: str) -> None:
    body = {"name": unique("claim"), "local_path": "/models/m.gguf", "env": {"GPUSTACK_VRAM_CLAIM": claim}}
    response = api.post("/v2/models", json=body)
    assert response.status_code == 422, response.text
    assert message in response.text and "GPUSTACK_VRAM_CLAIM" in response.text
    good = api.post("/v2/models", json={**body, "env": {"GPUSTACK_VRAM_CLAIM": "12GiB"}, "replicas": 0})
    assert good.status_code == 201, good.text
    assert api.delete(f"/v2/models/{good.json()['id']}").status_code in (200, 204)
