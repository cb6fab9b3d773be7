"""/v2/models over real HTTP on every database backend: create, validation, listing, update, delete."""

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.models import Model
from tests.server.api_test_helpers import (
    admin_client,
    admin_key,
    create_model,
    insert_instance,
    sync_engine,
    unique,
)
from tests.utils.server import RunningServer


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def _body(**fields: Any) -> dict[str, Any]:
    return {"name": unique("model"), "source": "local_path", "local_path": "/models/a.gguf", **fields}


def _error_text(response: httpx.Response) -> str:
    """All messages of a 422 (its `details.errors`) or the message of any other error, as one string."""
    body = response.json()
    errors = (body.get("details") or {}).get("errors")
    if errors:
        return " | ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors)
    return str(body["message"])


def test_create_echoes_every_field_and_defaults(api: httpx.Client) -> None:
    body = _body(
        replicas=2,
        backend="llama-box",
        backend_version="0.0.170",  # a version of the built-in llama-box in the catalog
        backend_parameters=["--ctx-size=4096", "--jinja"],
        env={"LLAMA_ARG_THREADS": "4"},
        categories=["llm"],
        placement_strategy="binpack",
        worker_selector={"gpu": "a100"},
        gpu_selector=["worker-a:0", "worker-a:1"],
        cpu_offloading=False,
        description="a test model",
    )
    response = api.post("/v2/models", json=body)
    assert response.status_code == 201, response.text
    created = response.json()
    for key, value in body.items():
        if key != "gpu_selector":
            assert created[key] == value, key
    # GPUStack's object form, GPU ids as <worker>:<type>:<index>
    assert created["gpu_selector"] == {"gpu_ids": ["worker-a:cuda:0", "worker-a:cuda:1"], "gpus_per_replica": None}
    assert created["cluster_id"] == 1
    assert isinstance(created["id"], int)
    assert created["state"] == "pending"
    assert created["ready_replicas"] == 0
    assert created["distributed_inference_across_workers"] is False
    assert created["created_at"] and created["updated_at"]

    fetched = api.get(f"/v2/models/{created['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == created


def test_create_huggingface_source_requires_repo_id(api: httpx.Client) -> None:
    ok = api.post(
        "/v2/models",
        json={"name": unique("hf"), "source": "huggingface", "huggingface_repo_id": "Qwen/Qwen2.5-0.5B-Instruct-GGUF"},
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["local_path"] is None

    missing = api.post("/v2/models", json={"name": unique("hf"), "source": "huggingface"})
    assert missing.status_code == 422
    assert "requires 'huggingface_repo_id'" in _error_text(missing)


def test_duplicate_name_is_a_conflict_with_a_clear_detail(api: httpx.Client) -> None:
    first = create_model(api)
    again = api.post("/v2/models", json=_body(name=first["name"]))
    assert again.status_code == 409
    detail = again.json()["message"]
    assert isinstance(detail, str)
    assert first["name"] in detail and "already exists" in detail


@pytest.mark.parametrize("replicas", [-1, 65, 1000, "many", None, 1.5])
def test_invalid_replicas_are_rejected(api: httpx.Client, replicas: object) -> None:
    response = api.post("/v2/models", json=_body(replicas=replicas))
    assert response.status_code == 422, response.text
    assert any(e["loc"][-1] == "replicas" for e in response.json()["details"]["errors"])


def test_replicas_bounds_are_inclusive(api: httpx.Client) -> None:
    assert create_model(api, replicas=0)["replicas"] == 0
    assert create_model(api, replicas=64)["replicas"] == 64


def test_local_path_source_requires_local_path(api: httpx.Client) -> None:
    body = _body()
    del body["local_path"]
    response = api.post("/v2/models", json=body)
    assert response.status_code == 422
    assert "source 'local_path' requires 'local_path'" in _error_text(response)
    empty = api.post("/v2/models", json=_body(local_path=""))
    assert empty.status_code == 422


@pytest.mark.parametrize(
    ("local_path", "message"),
    [
        ("/models/" + "x" * 300 + "/a.gguf", "is 300 bytes"),
        ("/models/" + "é" * 128, "is 256 bytes"),
        ("/models/a\u0000.gguf", "NUL"),
        ("models/a.gguf", "must be absolute"),
        ("~/a.gguf", "must be absolute"),
    ],
    ids=["long-component", "long-utf8-component", "nul", "relative", "tilde"],
)
def test_unusable_local_path_is_refused_on_create_and_update(api: httpx.Client, local_path: str, message: str) -> None:
    """A path no file system can open is refused up front, not left to block the scheduler."""
    created = api.post("/v2/models", json=_body(local_path=local_path))
    assert created.status_code == 422 and message in _error_text(created), created.text
    model = create_model(api)
    updated = api.put(f"/v2/models/{model['id']}", json=_body(name=model["name"], local_path=local_path))
    assert updated.status_code == 422 and message in _error_text(updated), updated.text
    assert api.get(f"/v2/models/{model['id']}").json()["local_path"] == model["local_path"]


def test_windows_and_255_byte_local_paths_are_accepted(api: httpx.Client) -> None:
    for path in ("C:\\models\\a.gguf", "/models/" + "x" * 255):
        assert create_model(api, local_path=path)["local_path"] == path


@pytest.mark.parametrize("entry", ["abc", "worker-a", ":0", "worker-a:", "worker-a:x", "worker-a:-1"])
def test_malformed_gpu_selector_is_rejected(api: httpx.Client, entry: str) -> None:
    response = api.post("/v2/models", json=_body(gpu_selector=[entry]))
    assert response.status_code == 422, response.text
    assert f"gpu_selector entry '{entry}'" in _error_text(response)


def test_custom_backend_needs_a_command_or_an_image(api: httpx.Client) -> None:
    response = api.post("/v2/models", json=_body(backend="custom"))
    assert response.status_code == 422
    assert "backend 'custom' requires" in _error_text(response)
    assert create_model(api, backend="custom", run_command="my-server --port {port}")["backend"] == "custom"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": ""},
        {"name": " leading-space"},
        {"name": "has space"},
        {"name": "x" * 256},
        {"name": "-starts-with-dash"},
        {"source": "ftp"},
        {"backend": "tensorrt"},
        {"placement_strategy": "random"},
        {"env": {"A": 1}},
        {"backend_parameters": "--flag"},
        {"description": "d" * 2049},
    ],
    ids=lambda f: next(iter(f)),
)
def test_invalid_fields_are_rejected(api: httpx.Client, fields: dict[str, Any]) -> None:
    response = api.post("/v2/models", json=_body(**fields))
    assert response.status_code == 422, response.text
    assert any(next(iter(fields)) in e["loc"] for e in response.json()["details"]["errors"])


def test_unknown_model_is_404_with_detail(api: httpx.Client) -> None:
    for model_id in (2**31 - 1, 2**31, 10**20, 0, -1):
        response = api.get(f"/v2/models/{model_id}")
        assert response.status_code == 404, (model_id, response.text)
        assert response.json()["message"] == f"model {model_id} not found"
    assert api.get("/v2/models/not-a-number").status_code == 422


def test_list_paginates_and_searches(api: httpx.Client) -> None:
    token = unique("page")
    ids = [create_model(api, name=f"{token}-{i}")["id"] for i in range(5)]
    create_model(api)  # not matching the search

    pages = []
    for page in (1, 2, 3):
        response = api.get("/v2/models", params={"search": token, "page": page, "perPage": 2})
        assert response.status_code == 200
        pages.append(response.json())
    assert [len(p["items"]) for p in pages] == [2, 2, 1]
    for number, p in enumerate(pages, start=1):
        assert p["pagination"] == {"page": number, "perPage": 2, "total": 5, "totalPage": 3}
    listed = [item["id"] for p in pages for item in p["items"]]
    assert listed == ids[::-1]  # newest first, as GPUStack lists, nothing twice, nothing missing

    beyond = api.get("/v2/models", params={"search": token, "page": 4, "perPage": 2}).json()
    assert beyond["items"] == [] and beyond["pagination"]["total"] == 5

    everything = api.get("/v2/models", params={"page": -1, "perPage": 2}).json()  # GPUStack's "all rows"
    assert everything["pagination"]["total"] >= 6 and everything["pagination"]["page"] == -1
    assert set(ids) <= {item["id"] for item in everything["items"]}
    assert len(everything["items"]) == everything["pagination"]["total"]
    legacy = api.get("/v2/models", params={"search": token, "perPage": 2}).json()  # the earlier spelling
    assert legacy["pagination"]["perPage"] == 2 and len(legacy["items"]) == 2


def test_search_is_literal_not_a_like_pattern(api: httpx.Client) -> None:
    token = unique("lit")
    model = create_model(api, name=f"{token}xq")
    exact = api.get("/v2/models", params={"search": f"{token}xq"}).json()
    assert [m["id"] for m in exact["items"]] == [model["id"]]
    for pattern in (f"{token}_q", f"{token}%q", f"{token}%"):
        found = api.get("/v2/models", params={"search": pattern}).json()
        assert found["pagination"]["total"] == 0, pattern


def test_state_filter(api: httpx.Client) -> None:
    token = unique("state")
    model = create_model(api, name=token)
    pending = api.get("/v2/models", params={"search": token, "state": "pending"}).json()
    assert [m["id"] for m in pending["items"]] == [model["id"]]
    running = api.get("/v2/models", params={"search": token, "state": "running"}).json()
    assert running["items"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": -2},
        {"per_page": 0},
        {"perPage": 0},
        {"perPage": 1001},
        {"page": "x"},
        {"page": 2**31},
        {"page": 10**20},
    ],
    ids=str,
)
def test_bad_pagination_is_rejected(api: httpx.Client, params: dict[str, Any]) -> None:
    response = api.get("/v2/models", params=params)
    assert response.status_code == 422
    assert response.json()["reason"] == "Invalid" and next(iter(params)) in response.json()["message"]


def test_put_replaces_the_spec(api: httpx.Client) -> None:
    model = create_model(api, env={"A": "1"}, backend_parameters=["--a"], description="before")
    new_name = unique("renamed")
    response = api.put(
        f"/v2/models/{model['id']}",
        json=_body(name=new_name, replicas=3, local_path="/models/b.gguf", description="after"),
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["id"] == model["id"]
    assert updated["name"] == new_name
    assert updated["replicas"] == 3
    assert updated["local_path"] == "/models/b.gguf"
    assert updated["description"] == "after"
    # a full replacement: what the body leaves out goes back to its default
    assert updated["env"] == {} and updated["backend_parameters"] == []
    assert updated["created_at"] == model["created_at"]
    assert updated["updated_at"] >= model["updated_at"]
    assert api.get(f"/v2/models/{model['id']}").json() == updated


def test_put_rename_to_an_existing_name_conflicts(api: httpx.Client) -> None:
    first, second = create_model(api), create_model(api)
    clash = api.put(f"/v2/models/{second['id']}", json=_body(name=first["name"]))
    assert clash.status_code == 409
    assert first["name"] in clash.json()["message"]
    assert api.get(f"/v2/models/{second['id']}").json()["name"] == second["name"]
    # keeping its own name is not a conflict
    same = api.put(f"/v2/models/{second['id']}", json=_body(name=second["name"], replicas=2))
    assert same.status_code == 200 and same.json()["replicas"] == 2


def test_put_validates_and_404s(api: httpx.Client) -> None:
    model = create_model(api)
    assert api.put(f"/v2/models/{model['id']}", json=_body(replicas=-1)).status_code == 422
    assert api.put(f"/v2/models/{model['id']}", json={"replicas": 1}).status_code == 422  # name is required
    missing = api.put("/v2/models/2147483647", json=_body())
    assert missing.status_code == 404 and "not found" in missing.json()["message"]


def test_patch_scales_replicas_only(api: httpx.Client) -> None:
    model = create_model(api, description="keep me")
    response = api.patch(f"/v2/models/{model['id']}", json={"replicas": 4})
    assert response.status_code == 200, response.text
    patched = response.json()
    assert patched["replicas"] == 4
    assert {k: v for k, v in patched.items() if k not in ("replicas", "updated_at")} == {
        k: v for k, v in model.items() if k not in ("replicas", "updated_at")
    }
    assert api.get(f"/v2/models/{model['id']}").json()["replicas"] == 4
    for bad in ({}, {"replicas": -1}, {"replicas": 65}, {"replicas": "2x"}, {"replicas": None}):
        assert api.patch(f"/v2/models/{model['id']}", json=bad).status_code == 422, bad
    assert api.patch("/v2/models/2147483647", json={"replicas": 1}).status_code == 404


def test_delete_is_204_then_404(api: httpx.Client) -> None:
    model = create_model(api)
    assert api.delete(f"/v2/models/{model['id']}").status_code == 204
    assert api.get(f"/v2/models/{model['id']}").status_code == 404
    again = api.delete(f"/v2/models/{model['id']}")
    assert again.status_code == 404 and again.json()["message"] == f"model {model['id']} not found"
    # the name is free again (SQLite may hand out the same id again: it has no AUTOINCREMENT)
    assert create_model(api, name=model["name"])["name"] == model["name"]


def test_delete_cascades_to_the_models_instances_only(server: RunningServer, api: httpx.Client) -> None:
    doomed, kept = create_model(api), create_model(api)
    doomed_instances = [insert_instance(server, model_id=doomed["id"]) for _ in range(2)]
    kept_instance = insert_instance(server, model_id=kept["id"])
    listed = api.get("/v2/model-instances", params={"model_id": doomed["id"]}).json()
    assert sorted(i["id"] for i in listed["items"]) == sorted(doomed_instances)

    assert api.delete(f"/v2/models/{doomed['id']}").status_code == 204

    for inst_id in doomed_instances:
        response = api.get(f"/v2/model-instances/{inst_id}")
        assert response.status_code == 404
        assert response.json()["message"] == f"model instance {inst_id} not found"
    assert api.get(f"/v2/model-instances/{kept_instance}").status_code == 200
    with sync_engine(server).connect() as conn:
        instances = ModelInstance.metadata.tables["model_instances"]
        left = conn.execute(select(instances.c.id).where(instances.c.model_id == doomed["id"])).all()
    assert left == []


def test_a_patch_racing_a_delete_is_404_not_500(server: RunningServer, api: httpx.Client) -> None:
    """The DELETE commits between the PATCH reading the row and writing it: a hook on the server's own
    flush deletes the row through another connection at exactly that moment."""
    from sqlalchemy import event, text

    model = create_model(api)

    def delete_first(session: Session, _ctx: object, _instances: object) -> None:
        if any(isinstance(o, Model) and o.id == model["id"] for o in session.dirty):
            with sync_engine(server).begin() as other:
                other.execute(text("DELETE FROM models WHERE id = :id"), {"id": model["id"]})

    event.listen(Session, "before_flush", delete_first)
    try:
        response = api.patch(f"/v2/models/{model['id']}", json={"replicas": 3})
    finally:
        event.remove(Session, "before_flush", delete_first)
    assert response.status_code == 404, response.text
    assert "deleted" in response.json()["message"]
    assert api.get(f"/v2/models/{model['id']}").status_code == 404


def _user_key(server: RunningServer, api: httpx.Client) -> str:
    """A management key of a new non-admin user."""
    from tests.server.api_test_helpers import create_user

    user = create_user(api, password="pw-123456")
    with server.client(auth=(user["username"], "pw-123456")) as own:
        response = own.post("/v2/api-keys", json={"name": unique("k"), "scope": ["management"]})
    assert response.status_code == 201, response.text
    return str(response.json()["value"])


def test_model_secrets_are_masked_for_everyone_but_admins_and_the_workers_running_it(
    server: RunningServer, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gpustack.server.services import watch as watch_service
    from tests.server.api_test_helpers import client_with, register_worker, watching

    monkeypatch.setattr(watch_service, "HEARTBEAT_SECONDS", 0.1)  # so the watch reader stops promptly

    secret_env = {"HF_TOKEN": "hf_topsecret", "LANG": "C"}
    model = create_model(api, env=secret_env, backend_parameters=["--api-key=sk-topsecret", "--ctx-size=512"])
    assert api.get(f"/v2/models/{model['id']}").json()["env"] == secret_env  # admins see it whole
    running, idle = register_worker(server), register_worker(server)
    insert_instance(server, model_id=model["id"], worker_id=running["id"])
    user_key = _user_key(server, api)
    with client_with(server, running["credential"]) as worker:
        assert worker.get(f"/v2/models/{model['id']}").json()["env"] == secret_env  # needs it to launch
    for credential in (user_key, idle["credential"]):
        with client_with(server, credential) as viewer:
            one = viewer.get(f"/v2/models/{model['id']}").json()
            listed = [m for m in viewer.get("/v2/models", params={"page": -1}).json()["items"]]
        for seen in (one, next(m for m in listed if m["id"] == model["id"])):
            assert seen["env"] == {"HF_TOKEN": "******", "LANG": "C"}
            assert seen["backend_parameters"] == ["--api-key=******", "--ctx-size=512"]
        assert "topsecret" not in json.dumps(listed)
    with watching(server, user_key, "/v2/models") as stream:
        created = stream.wait_for(lambda ev: ev["type"] == "created" and ev["data"]["id"] == model["id"])
    assert created["data"]["env"]["HF_TOKEN"] == "******"


def test_instance_logs_are_for_admins_and_the_worker_running_it(server: RunningServer, api: httpx.Client) -> None:
    from tests.server.api_test_helpers import client_with, register_worker

    model = create_model(api)
    owner, other = register_worker(server), register_worker(server)
    instance = insert_instance(server, model_id=model["id"], worker_id=owner["id"])
    for credential in (_user_key(server, api), other["credential"]):
        with client_with(server, credential) as outsider:
            refused = outsider.get(f"/v2/model-instances/{instance}/logs")
        assert refused.status_code == 403, refused.text
    # admins and the owning worker get past the check (the registered worker does not listen: 503)
    for credential in (admin_key(server), owner["credential"]):
        with client_with(server, credential) as allowed:
            response = allowed.get(f"/v2/model-instances/{instance}/logs")
        assert response.status_code == 503 and "cannot reach the worker" in response.json()["message"]


def test_mindie_parameters_are_checked_at_create(api: httpx.Client) -> None:
    bad = api.post("/v2/models", json=_body(backend="mindie", backend_parameters=["--max-link-num", "5000"]))
    assert bad.status_code == 422, bad.text
    assert "--max-link-num=5000 is out of range [1, 1000]" in _error_text(bad)
    unknown = api.post("/v2/models", json=_body(backend="mindie", backend_parameters=["--tp-size 2"]))
    assert unknown.status_code == 422 and "does not take the parameter --tp-size" in _error_text(unknown)
    ok = api.post("/v2/models", json=_body(backend="mindie", backend_parameters=["--max-batch-size 64", "-tp 2"]))
    assert ok.status_code == 201, ok.text
    assert ok.json()["backend_parameters"] == ["--max-batch-size 64", "-tp 2"]


@pytest.mark.parametrize(
    ("fields", "backend", "categories"),
    [
        ({"local_path": "/models/tiny.gguf"}, "llama-box", []),
        (
            {"source": "huggingface", "huggingface_repo_id": "Systran/faster-whisper-small"},
            "vox-box",
            ["speech_to_text"],
        ),
        ({"source": "huggingface", "huggingface_repo_id": "Qwen/Qwen-Image"}, "sglang", ["image"]),
        ({"source": "huggingface", "huggingface_repo_id": "Qwen/Qwen3-Embedding-0.6B"}, "vllm", ["embedding"]),
        ({"local_path": "/models/Qwen3-8B"}, "vllm", []),
        ({"local_path": "/models/Qwen3-8B", "backend": "sglang", "categories": ["llm"]}, "sglang", ["llm"]),
    ],
)
def test_backend_is_preselected_when_not_given(
    api: httpx.Client, fields: dict[str, Any], backend: str, categories: list[str]
) -> None:
    created = api.post("/v2/models", json=_body(**fields))
    assert created.status_code == 201, created.text
    got = api.get(f"/v2/models/{created.json()['id']}").json()
    assert (got["backend"], got["categories"]) == (backend, categories)


def test_parallel_sizes_must_match_the_selected_gpus(api: httpx.Client) -> None:
    body = _body(
        backend="vllm",
        local_path="/models/llama-3-70b",
        backend_parameters=["--tensor-parallel-size", "4"],
        gpu_selector=["worker-a:0", "worker-a:1"],
    )
    response = api.post("/v2/models", json=body)
    assert response.status_code == 422, response.text
    assert "gpu_selector lists 2 GPUs but the backend parameters ask for tp 4 × pp 1 × dp 1 = 4 GPUs" in (
        _error_text(response)
    )
    body["gpu_selector"] = [f"worker-a:{i}" for i in range(4)]
    assert api.post("/v2/models", json=body).status_code == 201
