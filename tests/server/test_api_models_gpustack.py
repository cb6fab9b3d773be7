"""/v2/models as GPUStack's clients use it: its spellings and nulls, its filters, its state values."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session

from gpustack.schemas.models import Model
from tests.server.api_test_helpers import admin_client, create_model, sync_engine, unique
from tests.utils.server import RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _body(**fields: Any) -> dict[str, Any]:
    return {"name": unique("model"), "source": "local_path", "local_path": "/models/a.gguf", **fields}


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ({"backend": "vLLM"}, {"backend": "vllm"}),
        ({"backend": "SGLang"}, {"backend": "sglang"}),
        ({"backend": "MindIE"}, {"backend": "mindie"}),
        ({"backend": "Llama-Box"}, {"backend": "llama-box"}),
        ({"placement_strategy": "BinPack"}, {"placement_strategy": "binpack"}),
        ({"env": None, "backend_parameters": None, "worker_selector": None}, {"env": {}, "worker_selector": {}}),
        ({"gpu_selector": {"gpu_ids": ["w:cuda:3"], "gpus_per_replica": 1}}, {}),
    ],
    ids=str,
)
def test_gpustack_spellings_and_nulls_are_accepted(
    api: httpx.Client, sent: dict[str, Any], stored: dict[str, Any]
) -> None:
    response = api.post("/v2/models", json=_body(**sent))
    assert response.status_code == 201, response.text
    created = response.json()
    for key, value in stored.items():
        assert created[key] == value, key
    if "gpu_selector" in sent:
        assert created["gpu_selector"]["gpu_ids"] == ["w:cuda:3"]


def test_unknown_backend_names_the_accepted_ones(api: httpx.Client) -> None:
    response = api.post("/v2/models", json=_body(backend="tensorrt"))
    assert response.status_code == 422 and "vllm" in response.json()["message"]


def test_state_filter_takes_gpustack_values(api: httpx.Client) -> None:
    token = unique("gsf")
    stopped = create_model(api, name=f"{token}-s", replicas=0)
    waiting = create_model(api, name=f"{token}-w", replicas=1)
    found = {
        state: [m["id"] for m in api.get("/v2/models", params={"search": token, "state": state}).json()["items"]]
        for state in ("stopped", "not_ready", "ready", "NOT_READY")
    }
    assert found == {
        "stopped": [stopped["id"]],
        "not_ready": [waiting["id"]],
        "ready": [],
        "NOT_READY": [waiting["id"]],
    }


def test_categories_filter_matches_any(api: httpx.Client) -> None:
    token = unique("cat")
    llm = create_model(api, name=f"{token}-l", categories=["llm"])
    emb = create_model(api, name=f"{token}-e", categories=["embedding"])
    create_model(api, name=f"{token}-r", categories=["reranker"])
    listed = api.get("/v2/models", params={"search": token, "categories": ["llm", "embedding"]}).json()["items"]
    assert sorted(m["id"] for m in listed) == sorted([llm["id"], emb["id"]])


def test_model_states_render_as_gpustack_spells_them(server: RunningServer, api: httpx.Client) -> None:
    """Partially running is GPUStack's "partial"; a stopped model (0 replicas) has no state (null)."""
    partial = create_model(api)
    stopped = create_model(api, replicas=0)
    with Session(sync_engine(server)) as session:
        session.execute(update(Model).where(Model.id == partial["id"]).values(state="partially_running"))
        session.execute(update(Model).where(Model.id == stopped["id"]).values(state="stopped"))
        session.commit()
    assert api.get(f"/v2/models/{partial['id']}").json()["state"] == "partial"
    assert api.get(f"/v2/models/{stopped['id']}").json()["state"] is None
    listed = api.get("/v2/models", params={"state": "partial", "page": -1}).json()["items"]
    assert partial["id"] in [m["id"] for m in listed]
