"""/v2/inference-backends over real HTTP on every database backend: built-ins, overrides, user backends."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.server.api_test_helpers import admin_client, unique
from tests.utils.server import RunningServer

BUILT_INS = {"vllm", "sglang", "mindie", "vox-box", "llama-box", "custom"}


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _by_name(api: httpx.Client, name: str) -> dict[str, Any]:
    response = api.get(f"/v2/inference-backends/backend_name/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def test_built_ins_are_listed_with_versions_and_health(api: httpx.Client) -> None:
    items = api.get("/v2/inference-backends", params={"per_page": 1000}).json()["items"]
    built_in = {b["backend_name"]: b for b in items if b["is_built_in"]}
    assert set(built_in) == BUILT_INS
    vllm = built_in["vllm"]
    assert vllm["health_check_path"] == "/health"
    version = vllm["version_configs"][vllm["default_version"]]
    assert version["images"]["cuda"].startswith("gpustack/runner:") and version["run_command"] == "vllm"
    assert built_in["mindie"]["health_check_path"] == "/info"
    assert set(built_in["llama-box"]["version_configs"]["0.0.170"]["images"]) == {"cuda", "rocm", "cann", "cpu"}
    assert api.get(f"/v2/inference-backends/{vllm['id']}").json()["backend_name"] == "vllm"


def test_built_in_cannot_be_deleted_but_can_be_overridden(api: httpx.Client) -> None:
    sglang = _by_name(api, "sglang")
    refused = api.delete(f"/v2/inference-backends/{sglang['id']}")
    assert refused.status_code == 403 and "cannot be deleted" in refused.json()["message"]
    body = {
        "backend_name": "sglang",
        "default_version": "0.5.5",
        "version_configs": {"0.5.5": {"images": {"cuda": "mirror.local/sglang:0.5.5"}, "run_command": "python3"}},
        "default_env": {"SGLANG_LOG": "1"},
        "default_backend_param": ["--enable-metrics"],
        "health_check_path": "/health",
    }
    updated = api.put(f"/v2/inference-backends/{sglang['id']}", json=body)
    assert updated.status_code == 200, updated.text
    got = _by_name(api, "sglang")
    assert got["is_built_in"] is True and got["default_version"] == "0.5.5"
    assert got["version_configs"]["0.5.5"]["images"] == {"cuda": "mirror.local/sglang:0.5.5"}
    assert got["default_env"] == {"SGLANG_LOG": "1"}
    renamed = api.put(f"/v2/inference-backends/{sglang['id']}", json={**body, "backend_name": "sgl"})
    assert renamed.status_code == 400 and "cannot be renamed" in renamed.json()["message"]


def test_user_backend_crud(api: httpx.Client) -> None:
    name = unique("engine").lower()
    body = {
        "backend_name": name,
        "default_version": "1.0",
        "version_configs": {"1.0": {"image_name": "ghcr.io/me/engine:1.0"}},
        "default_run_command": "engine serve {{model_path}} --port {{port}}",
        "health_check_path": "/ping",
    }
    created = api.post("/v2/inference-backends", json=body)
    assert created.status_code == 201, created.text
    backend = created.json()
    assert backend["is_built_in"] is False and backend["default_run_command"].startswith("engine serve")
    assert api.post("/v2/inference-backends", json=body).status_code == 409
    clash = api.post("/v2/inference-backends", json={**body, "backend_name": "vllm"})
    assert clash.status_code == 409 and "built-in" in clash.json()["message"]
    assert api.delete(f"/v2/inference-backends/{backend['id']}").status_code == 204
    assert api.get(f"/v2/inference-backends/{backend['id']}").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"version_configs": {"1": {"images": {"tpu": "x"}}}}, "unknown accelerator kind ['tpu']"),
        ({"version_configs": {"1": {}}, "default_version": "2"}, "default_version '2' is not one of"),
        ({"health_check_path": "health"}, "health_check_path"),
        ({"backend_name": "Bad Name"}, "backend_name"),
    ],
)
def test_bad_backend_bodies(api: httpx.Client, body: dict[str, Any], message: str) -> None:
    response = api.post("/v2/inference-backends", json={"backend_name": unique("b").lower(), **body})
    assert response.status_code == 422
    assert message in response.text


def test_model_backend_version_must_be_known(api: httpx.Client) -> None:
    body = {"name": unique("m"), "local_path": "/models/q", "backend": "vllm"}
    bad = api.post("/v2/models", json={**body, "backend_version": "0.0.1"})
    assert bad.status_code == 400 and "backend_version '0.0.1' is not a version of vllm" in bad.json()["message"]
    ok = api.post("/v2/models", json={**body, "backend_version": "0.11.0"})
    assert ok.status_code == 201, ok.text


def test_compact_list_for_deployment_forms(api: httpx.Client) -> None:
    items = {i["backend_name"]: i for i in api.get("/v2/inference-backends/list").json()["items"]}
    assert BUILT_INS <= set(items)
    assert items["vllm"]["is_built_in"] is True
    assert items["vllm"]["default_version"] in [v["version"] for v in items["vllm"]["versions"]]
    assert [v["version"] for v in items["vllm"]["versions"]] == ["0.11.0"]


def test_custom_backend_version_supplies_the_run_command(api: httpx.Client) -> None:
    custom = _by_name(api, "custom")
    model = {"name": unique("c"), "local_path": "/models/q", "backend": "custom", "backend_version": "echo"}
    missing = api.post("/v2/models", json=model)
    assert missing.status_code == 400 and "backend_version 'echo' is not a version of custom" in missing.text
    fields = ("backend_name", "default_version", "health_check_path")
    body = {key: custom[key] for key in fields}
    body["version_configs"] = {"echo": {"run_command": "engine {{model_path}} --port {{port}}"}, "bare": {}}
    assert api.put(f"/v2/inference-backends/{custom['id']}", json=body).status_code == 200
    created = api.post("/v2/models", json=model)
    assert created.status_code == 201, created.text
    bare = api.post("/v2/models", json={**model, "name": unique("c"), "backend_version": "bare"})
    assert bare.status_code == 400 and "has no run_command or image" in bare.text
    nothing = api.post("/v2/models", json={**model, "name": unique("c"), "backend_version": None})
    assert nothing.status_code == 422 and "requires 'run_command', 'image_name' or a 'backend_version'" in nothing.text
