"""Every response this server gives on GPUStack's paths validates against GPUStack 2.3.0's OpenAPI document,
on SQLite, PostgreSQL and MariaDB; requests built as GPUStack's clients build them are accepted."""

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from gpustack.server.app import create_app
from tests.server.api_test_helpers import admin_key, bearer, insert_instance, sync_engine, unique
from tests.utils.openapi_contract import (
    LOG,
    contract_client,
    document,
    missing_operations,
    operation,
    template_of,
    violations,
)
from tests.utils.server import ADMIN_PASSWORD, RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with contract_client(server.url, headers=bearer(admin_key(server))) as client:
        yield client


@pytest.fixture
def anonymous(server: RunningServer) -> Iterator[httpx.Client]:
    with contract_client(server.url) as client:
        yield client


def _worker(server: RunningServer, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("w"), "hostname": "node-1", "ifname": "eth0", "ip": "10.0.0.5", "port": 10150, **fields}
    with contract_client(server.url, headers=bearer(server.token)) as client:
        response = client.post("/v2/workers/register", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _gpustack_model_create(name: str) -> dict[str, Any]:
    """A ModelCreate as GPUStack's Python DTO dumps it: every unset optional field is a JSON null."""
    return {
        "name": name,
        "source": "local_path",
        "local_path": "/models/contract.gguf",
        "huggingface_repo_id": None,
        "huggingface_filename": None,
        "model_scope_model_id": None,
        "model_scope_file_path": None,
        "description": None,
        "meta": {},
        "replicas": 1,
        "ready_replicas": 0,
        "categories": ["llm"],
        "placement_strategy": "spread",
        "cpu_offloading": None,
        "distributed_inference_across_workers": None,
        "worker_selector": None,
        "gpu_selector": None,
        "backend": "llama-box",
        "backend_version": None,
        "backend_parameters": None,
        "image_name": None,
        "run_command": None,
        "env": None,
        "restart_on_error": True,
        "distributable": False,
        "cluster_id": None,
    }


def test_version_and_probes(anonymous: httpx.Client) -> None:
    version = anonymous.get("/version")
    assert version.status_code == 200 and version.json()["version"]
    assert anonymous.get("/healthz").status_code == 200
    assert anonymous.get("/readyz").status_code == 200


def test_default_cluster_and_gpu_devices(server: RunningServer, api: httpx.Client) -> None:
    gpus = [{"index": i, "name": "H100", "uuid": f"GPU-{i}", "memory_total": 80 << 30} for i in range(2)]
    registered = _worker(server, status={"gpu_devices": gpus})
    clusters = api.get("/v2/clusters").json()
    assert [c["id"] for c in clusters["items"]] == [1] and clusters["items"][0]["is_default"] is True
    cluster = api.get("/v2/clusters/1").json()
    assert cluster["workers"] >= 1 and cluster["gpus"] >= 2
    assert api.get("/v2/clusters/2").status_code == 404
    joining = api.get("/v2/clusters/1/registration-token").json()
    assert joining["token"] == server.token and joining["env"]["GPUSTACK_TOKEN"] == server.token
    registered_with_it = _worker(server)  # the cluster's registration token registers a worker
    assert registered_with_it["credential"]
    devices = api.get("/v2/gpu-devices", params={"worker_id": registered["id"]}).json()["items"]
    assert [d["id"] for d in devices] == [f"{registered['name']}:cuda:0", f"{registered['name']}:cuda:1"]
    assert devices[0]["memory"]["total"] == 80 << 30 and devices[0]["worker_ifname"] == "eth0"
    assert api.get(f"/v2/gpu-devices/{devices[1]['id']}").json()["index"] == 1
    assert api.get(f"/v2/gpu-devices/{registered['name']}:cuda:7").status_code == 404
    assert api.get("/v2/models", params={"cluster_id": 2}).status_code == 422


def test_login_with_a_form_and_json(server: RunningServer) -> None:
    with contract_client(server.url) as client:
        form = client.post("/auth/login", data={"username": "admin", "password": ADMIN_PASSWORD})
        assert form.status_code == 200, form.text
        me = client.get("/v2/users/me").json()
        assert me["username"] == "admin"
        same_name = client.put("/v2/users/me", json={"full_name": me["full_name"], "password": None})
        assert same_name.status_code == 200, same_name.text
        same = {"current_password": ADMIN_PASSWORD, "new_password": "x"}  # too short: refused, nothing changes
        refused = client.post("/auth/update-password", json=same)
        assert refused.status_code == 422 and refused.json()["reason"] == "Invalid"
        assert client.post("/auth/logout").status_code in (200, 204)
        as_json = client.post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
        assert as_json.status_code == 200, as_json.text
        wrong = client.post("/auth/login", data={"username": "admin", "password": "wrong-password"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "Unauthorized"


def test_models_round_trip(api: httpx.Client) -> None:
    created = api.post("/v2/models", json=_gpustack_model_create(unique("c")))
    assert created.status_code == 201, created.text
    model = created.json()
    assert model["gpu_selector"] is None and model["cluster_id"] == 1
    assert api.get(f"/v2/models/{model['id']}").json()["name"] == model["name"]
    listing = api.get("/v2/models", params={"page": -1, "categories": ["llm"], "cluster_id": 1}).json()
    assert model["id"] in [m["id"] for m in listing["items"]]
    body = {**_gpustack_model_create(model["name"]), "backend": "LLAMA-BOX", "replicas": 0}
    body["gpu_selector"] = {"gpu_ids": ["w1:cuda:0", "w1:cuda:1"], "gpus_per_replica": 2}
    updated = api.put(f"/v2/models/{model['id']}", json=body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["gpu_selector"]["gpu_ids"] == ["w1:cuda:0", "w1:cuda:1"]
    assert updated.json()["backend"] == "llama-box"
    assert api.get("/v2/models/2147483647").status_code == 404
    assert api.post("/v2/models", json={"name": "x"}).status_code in (400, 422)
    assert api.post("/v2/models", json=_gpustack_model_create(model["name"])).status_code == 409
    assert api.delete(f"/v2/models/{model['id']}").status_code in (200, 204)


def test_model_evaluations(api: httpx.Client) -> None:
    spec = {**_gpustack_model_create(unique("eval")), "local_path": "/nowhere/m.gguf"}
    answer = api.post("/v2/model-evaluations", json={"cluster_id": None, "model_specs": [spec]})
    assert answer.status_code == 200, answer.text
    (result,) = answer.json()["results"]
    assert result["error"] is None and result["compatibility_messages"]  # the file is not on the server: said


def test_inference_backends(api: httpx.Client) -> None:
    listing = api.get("/v2/inference-backends", params={"page": -1})
    assert listing.status_code == 200, listing.text
    assert {"vllm", "llama-box"} <= {b["backend_name"] for b in listing.json()["items"]}
    assert api.get("/v2/inference-backends/list").status_code == 200
    vllm = api.get("/v2/inference-backends/backend_name/vllm").json()
    assert api.get(f"/v2/inference-backends/{vllm['id']}").json()["backend_name"] == "vllm"
    name = unique("engine").lower()
    body = {
        "backend_name": name,
        "default_version": "1.0",
        "version_configs": {"1.0": {"image_name": "registry.example/engine:1.0"}},
        "default_run_command": "engine serve {{model_path}} --port {{port}}",
        "health_check_path": "/ping",
    }
    created = api.post("/v2/inference-backends", json=body)
    assert created.status_code in (200, 201), created.text
    backend_id = created.json()["id"]
    updated = api.put(f"/v2/inference-backends/{backend_id}", json={**body, "description": "mine"})
    assert updated.status_code == 200, updated.text
    assert api.delete(f"/v2/inference-backends/{backend_id}").status_code in (200, 204)


def test_workers_instances_and_files(server: RunningServer, api: httpx.Client) -> None:
    registered = _worker(server)
    worker = api.get(f"/v2/workers/{registered['id']}").json()
    assert (worker["hostname"], worker["ifname"], worker["cluster_id"]) == ("node-1", "eth0", 1)
    assert registered["id"] in [w["id"] for w in api.get("/v2/workers", params={"page": -1}).json()["items"]]
    renamed = api.put(f"/v2/workers/{registered['id']}", json={"name": worker["name"], "labels": {"a": "b"}})
    assert renamed.status_code == 200 and renamed.json()["labels"]["a"] == "b"

    model = api.post("/v2/models", json=_gpustack_model_create(unique("i"))).json()
    inst_id = insert_instance(server, model_id=model["id"], worker_id=registered["id"])
    instance = api.get(f"/v2/model-instances/{inst_id}").json()
    assert instance["distributed_servers"]["subordinate_workers"] == []
    assert instance["source"] == "local_path"
    listed = api.get("/v2/model-instances", params={"model_id": model["id"]}).json()["items"]
    assert [i["id"] for i in listed] == [inst_id]
    logs = api.get(f"/v2/model-instances/{inst_id}/logs")  # the worker at 10.0.0.5 does not answer
    assert logs.status_code >= 400 and logs.json()["message"]

    with contract_client(server.url, headers=bearer(registered["credential"])) as as_worker:
        report = {"source": "local_path", "source_key": "/models/contract.gguf", "state": "ready", "size": 1}
        assert as_worker.post("/v2/model-files", json=report).status_code == 200
    files = api.get("/v2/model-files", params={"worker_id": registered["id"]}).json()["items"]
    assert files and files[0]["local_path"] == "/models/contract.gguf"
    assert files[0]["resolved_paths"] == []
    for path, search, expected in (
        ("/v2/workers", registered["name"], registered["id"]),
        ("/v2/model-instances", instance["name"], inst_id),
        ("/v2/model-files", "contract.gguf", files[0]["id"]),
    ):
        found = api.get(path, params={"search": search, "cluster_id": 1}).json()["items"]
        assert expected in [row["id"] for row in found], path
        assert api.get(path, params={"search": unique("none")}).json()["items"] == [], path
    assert api.delete(f"/v2/model-files/{files[0]['id']}").status_code in (200, 204)
    assert api.delete(f"/v2/model-instances/{inst_id}").status_code in (200, 204)
    assert api.delete(f"/v2/workers/{registered['id']}").status_code in (200, 204)


def test_users_and_api_keys(api: httpx.Client) -> None:
    body = {"username": unique("u"), "password": "user-password-1", "is_admin": False, "full_name": None}
    user = api.post("/v2/users", json=body)
    assert user.status_code == 201, user.text
    uid = user.json()["id"]
    assert api.get(f"/v2/users/{uid}").json()["is_active"] is True
    update = {"username": body["username"], "full_name": "Someone", "is_admin": False, "password": None}
    assert api.put(f"/v2/users/{uid}", json=update).json()["full_name"] == "Someone"
    assert uid in [u["id"] for u in api.get("/v2/users", params={"page": -1}).json()["items"]]
    assert api.delete(f"/v2/users/{uid}").status_code in (200, 204)

    key = api.post("/v2/api-keys", json={"name": unique("k"), "scope": ["inference"], "expires_in": None})
    assert key.status_code in (200, 201), key.text
    assert key.json()["value"] and key.json()["is_custom"] is False
    assert key.json()["id"] in [k["id"] for k in api.get("/v2/api-keys", params={"page": -1}).json()["items"]]
    found = api.get("/v2/api-keys", params={"search": key.json()["name"]}).json()["items"]
    assert [k["id"] for k in found] == [key.json()["id"]]
    change = {"description": "ci", "allowed_model_names": ["m1"], "scope": ["inference", "management"]}
    changed = api.put(f"/v2/api-keys/{key.json()['id']}", json=change)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["description"], changed.json()["allowed_model_names"]) == ("ci", ["m1"])
    assert set(changed.json()["scope"]) == {"inference", "management"}
    kept = api.put(f"/v2/api-keys/{key.json()['id']}", json={"description": None}).json()  # scope omitted: kept
    assert set(kept["scope"]) == {"inference", "management"} and kept["allowed_model_names"] == []
    assert api.delete(f"/v2/api-keys/{key.json()['id']}").status_code in (200, 204)


def _usage_rows(server: RunningServer, rows: list[dict[str, Any]]) -> None:
    """Day rollups as the usage writer leaves them (the contract server runs no gateway)."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from gpustack.schemas.usage import UsageRollup

    base = {"granularity": "day", "route": "/v1/chat/completions", "errors": 0, "latency_ms_sum": 1.0}
    with Session(sync_engine(server)) as session:
        session.execute(insert(UsageRollup), [{**base, **row} for row in rows])
        session.commit()


def test_usage(server: RunningServer, api: httpx.Client) -> None:
    model = api.post("/v2/models", json=_gpustack_model_create(unique("used"))).json()
    key = api.post("/v2/api-keys", json={"name": unique("k"), "scope": ["inference"], "expires_in": None}).json()
    me = api.get("/v2/users/me").json()["id"]
    day, gone = datetime(2025, 2, 3), unique("gone-model")
    tokens = {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42}
    _usage_rows(server, [
        {"bucket": day, "user_id": me, "api_key_id": key["id"], "model": model["name"], "requests": 3, **tokens},
        {"bucket": day + timedelta(days=1), "user_id": me, "api_key_id": 0, "model": gone, "requests": 1, **tokens},
    ])  # fmt: skip
    span = {"start_date": "2025-02-03", "end_date": "2025-02-04"}
    meta = api.get("/v2/usage/meta").json()
    assert {"route", "user", "api_key", "date"} <= {g["key"] for g in meta["group_bys"]}
    assert model["name"] in {r["label"] for r in meta["filters"]["routes"]}
    by_route = api.post("/v2/usage/breakdown", json={**span, "group_by": ["route"]}).json()
    items = {i["route"]["label"]: i for i in by_route["items"]}
    assert items[model["name"]]["api_requests"] == 3 and items[model["name"]]["route"]["deleted"] is False
    assert items[model["name"]]["route"]["identity"]["current"]["route_id"] == model["id"]
    assert items[gone]["route"]["deleted"] is True and items[gone]["avg_tokens_per_request"] == 42
    assert by_route["summary"]["api_requests"] == 4 and by_route["summary"]["total_tokens"] == 84
    paged = api.post("/v2/usage/breakdown", json={**span, "group_by": ["date", "api_key"], "sort_by": "date",
                                                  "perPage": 1, "page": 2}).json()  # fmt: skip
    assert paged["pagination"] == {"page": 2, "perPage": 1, "total": 2, "totalPage": 2}
    assert paged["items"][0]["date"]["value"] == "2025-02-04" and paged["items"][0]["api_key"]["label"]
    one = {**span, "filters": {"routes": [{"identity": {"value": {"route_name": model["name"]}}}]}}
    assert api.post("/v2/usage/breakdown", json={**one, "group_by": ["user"]}).json()["summary"]["api_requests"] == 3
    assert api.get("/v2/usage/summary", params=span).json()["total_tokens"] == 84
    export = api.post("/v2/usage/breakdown/export", json={**span, "format": "csv", "group_by": ["route"]})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("route,api_requests") and len(export.text.splitlines()) == 3
    assert api.post("/v2/usage/breakdown/export", json=span).status_code == 400  # xlsx: not produced, said so
    estimate = api.post("/v2/usage/breakdown/export/estimate", json={**span, "format": "csv", "group_by": ["route"]})
    assert estimate.json()["total"] == 2 and estimate.json()["effective_format"] == "csv"
    backwards = api.post("/v2/usage/breakdown", json={**span, "start_date": "2025-02-05", "group_by": ["route"]})
    assert backwards.status_code == 400 and "must not be before" in backwards.json()["message"]


def test_errors_have_gpustack_shape(anonymous: httpx.Client, api: httpx.Client) -> None:
    for response, status in (
        (anonymous.get("/v2/models"), 401),
        (api.get("/v2/workers/2147483647"), 404),
        (api.get("/v2/models", params={"page": "x"}), 422),
    ):
        assert response.status_code == status
        assert violations({"$ref": "#/components/schemas/ErrorResponse"}, response.json()) == []


def test_every_served_path_of_the_document_was_checked(server: RunningServer) -> None:
    """Lists (never fails on) the document's operations this server does not serve; fails when a served
    operation of the document was not exercised by the contract tests above."""
    ours = create_app(server.config).openapi()["paths"]
    served = set()
    for path, operations in ours.items():
        template = template_of(re.sub(r"\{[^}]+\}", "1", path))
        for method in operations:
            if template and operation(method, template):
                served.add((method.upper(), template))
    missing = missing_operations(served)
    print(f"\n{len(missing)} of GPUStack's operations are not served:\n  " + "\n  ".join(missing))
    assert len(document()["paths"]) > 100
    unchecked = {op for op in served if op[0] != "HEAD" and not op[1].startswith("/v1")} - LOG.checked
    assert not unchecked, f"served but not exercised by the contract tests: {sorted(unchecked)}"
