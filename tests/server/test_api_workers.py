"""Workers, model instances and model files over real HTTP: registration, heartbeats, ownership."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from sqlmodel import Session

from gpustack.schemas.model_files import ModelFile
from tests.server.api_test_helpers import (
    admin_client,
    bearer,
    client_with,
    create_model,
    create_user,
    insert_instance,
    register_worker,
    sync_engine,
    unique,
)
from tests.utils.server import RunningServer

STATUS = {
    "cpu": {"total": 16, "utilization_rate": 12.5},
    "memory": {"total": 64 * 2**30, "used": 8 * 2**30},
    "gpu_devices": [
        {"index": 0, "name": "NVIDIA H100", "uuid": "GPU-0", "memory_total": 80 * 2**30, "memory_used": 2**30},
        {"index": 1, "name": "NVIDIA H100", "uuid": "GPU-1", "memory_total": 80 * 2**30},
    ],
    "disks": [{"path": "/", "total": 2**40, "used": 2**39}],
}


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


@pytest.fixture
def worker(server: RunningServer) -> Iterator[tuple[dict[str, Any], httpx.Client]]:
    """A freshly registered worker and a client holding its credential."""
    registered = register_worker(server, labels={"zone": "a"}, ip="10.0.0.5", port=10150)
    with client_with(server, registered["credential"]) as client:
        yield registered, client


def test_register_returns_credentials_and_creates_a_not_ready_worker(server: RunningServer, api: httpx.Client) -> None:
    name = unique("worker")
    registered = register_worker(server, name, labels={"gpu": "h100"}, ip="10.1.2.3", port=10150)
    assert registered["name"] == name
    assert registered["credential"].startswith(f"gpsw_{registered['id']}_")
    assert len(registered["proxy_credential"]) == 64
    int(registered["proxy_credential"], 16)

    public = api.get(f"/v2/workers/{registered['id']}").json()
    assert public["name"] == name and public["labels"] == {"gpu": "h100"}
    assert (public["ip"], public["port"]) == ("10.1.2.3", 10150)
    assert public["state"] == "not_ready" and public["heartbeat_time"] is None
    assert "credential" not in str(public.keys())
    assert registered["credential"] not in api.get("/v2/workers", params={"page": -1}).text


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", "Bearer ", "Basic YWRtaW46YWRtaW4=", "cluster-token-without-scheme"],
    ids=["none", "wrong", "empty", "basic", "no-scheme"],
)
def test_register_needs_the_cluster_token(server: RunningServer, authorization: str | None) -> None:
    headers = {"Authorization": authorization.strip()} if authorization else {}
    if authorization == "cluster-token-without-scheme":
        headers = {"Authorization": server.token}
    with server.client() as anonymous:
        response = anonymous.post("/v2/workers/register", json={"name": unique("worker")}, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json()["message"]


def test_register_validates_its_body(server: RunningServer) -> None:
    with server.client(headers=bearer(server.token)) as client:
        for body in (
            {"name": ""},
            {"name": "bad name"},
            {"name": unique("w"), "port": 70000},
            {"name": unique("w"), "labels": {"a": 1}},
            {"name": unique("w"), "status": "up"},
        ):
            assert client.post("/v2/workers/register", json=body).status_code == 422, body


def test_heartbeat_marks_the_worker_ready(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    response = client.post("/v2/workers/me/status", json={"status": STATUS, "ip": "10.0.0.6", "port": 10151})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == registered["id"] and body["state"] == "ready"
    assert body["heartbeat_time"] is not None and body["state_message"] is None
    assert (body["ip"], body["port"]) == ("10.0.0.6", 10151)
    assert [g["name"] for g in body["status"]["gpu_devices"]] == ["NVIDIA H100", "NVIDIA H100"]
    assert body["status"]["memory"]["total"] == 64 * 2**30

    public = api.get(f"/v2/workers/{registered['id']}").json()
    assert public["state"] == "ready" and public["status"] == body["status"]
    ready = api.get("/v2/workers", params={"state": "ready", "name": registered["name"]}).json()
    assert [w["id"] for w in ready["items"]] == [registered["id"]]

    bad: dict[str, Any]
    for bad in ({}, {"status": []}, {"status": {"gpu_devices": [{"name": "no index"}]}}, {"status": {}, "port": -1}):
        assert client.post("/v2/workers/me/status", json=bad).status_code == 422, bad


def test_worker_credential_scope(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    _registered, client = worker
    model = create_model(api)
    assert client.get("/v2/models").status_code == 200
    assert client.get(f"/v2/models/{model['id']}").status_code == 200
    assert client.get("/v2/model-files").status_code == 200
    for response in (
        client.post("/v2/models", json={"name": unique("m"), "local_path": "/x"}),
        client.patch(f"/v2/models/{model['id']}", json={"replicas": 0}),
        client.delete(f"/v2/models/{model['id']}"),
    ):
        assert response.status_code == 403
        assert response.json()["message"] == "this endpoint is for users, not workers"
    assert client.get("/v2/users/me").status_code == 403
    assert client.post("/v2/api-keys", json={"name": "k"}).status_code == 403
    # and the worker-only endpoints refuse users
    only_workers = api.post("/v2/workers/me/status", json={"status": STATUS})
    assert only_workers.status_code == 403 and only_workers.json()["message"] == "this endpoint is for workers"


def test_reregistering_rotates_the_credential(server: RunningServer, api: httpx.Client) -> None:
    name = unique("worker")
    first = register_worker(server, name)
    second = register_worker(server, name, labels={"after": "restart"}, secret=first["secret"])
    assert second["id"] == first["id"]
    assert second["credential"] != first["credential"]
    assert second["proxy_credential"] != first["proxy_credential"]
    assert second["secret"] != first["secret"] and len(second["secret"]) >= 32
    with client_with(server, first["credential"]) as old:
        rejected = old.get("/v2/models")
        assert rejected.status_code == 401 and rejected.json()["message"] == "invalid worker credential"
    with client_with(server, second["credential"]) as new:
        assert new.post("/v2/workers/me/status", json={"status": STATUS}).status_code == 200
    listed = api.get("/v2/workers", params={"name": name}).json()
    assert listed["pagination"]["total"] == 1 and listed["items"][0]["labels"] == {"after": "restart"}


@pytest.mark.parametrize(
    "credential",
    ["gpsw_1_", "gpsw_x_abc", "gpsw_99999999999999_abc", "gpsw_2147483647_abc", "gpsw_0_abc", "gpsw__"],
)
def test_forged_worker_credentials_are_401(server: RunningServer, credential: str) -> None:
    with client_with(server, credential) as forged:
        response = forged.get("/v2/models")
    assert response.status_code == 401 and response.json()["message"] == "invalid worker credential"


def test_non_ascii_digits_in_a_worker_credential_are_401(server: RunningServer) -> None:
    # '²' is a digit to str.isdigit() but not to int(); the header travels as latin-1
    with server.client(headers={"Authorization": b"Bearer gpsw_\xb2_abc"}) as forged:
        assert forged.get("/v2/models").status_code == 401


def test_admin_updates_labels_and_deletes_workers(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    path = f"/v2/workers/{registered['id']}"
    response = api.put(path, json={"labels": {"zone": "b", "gpu": "h100"}})
    assert response.status_code == 200 and response.json()["labels"] == {"zone": "b", "gpu": "h100"}
    assert api.put(path, json={}).json()["labels"] == {"zone": "b", "gpu": "h100"}  # no labels: unchanged
    assert api.put(path, json={"labels": {}}).json()["labels"] == {}
    assert api.put(path, json={"labels": ["a"]}).status_code == 422
    assert api.put("/v2/workers/2147483647", json={"labels": {}}).status_code == 404

    user = create_user(api, password="pw-123456")
    with server.client(auth=(user["username"], "pw-123456")) as regular:
        assert regular.put(path, json={"labels": {}}).status_code == 403
        assert regular.delete(path).status_code == 403
    assert client.put(path, json={"labels": {}}).status_code == 403  # a worker cannot relabel itself

    assert api.delete(path).status_code == 204
    assert api.get(path).status_code == 404
    assert api.delete(path).status_code == 404
    assert client.post("/v2/workers/me/status", json={"status": STATUS}).status_code == 401


def test_deleting_a_worker_returns_its_instances_to_pending(server: RunningServer, api: httpx.Client) -> None:
    registered = register_worker(server)
    model = create_model(api)
    inst_id = insert_instance(
        server, model_id=model["id"], worker_id=registered["id"], worker_name=registered["name"], port=40001, pid=42
    )
    assert api.delete(f"/v2/workers/{registered['id']}").status_code == 204
    inst = api.get(f"/v2/model-instances/{inst_id}").json()
    assert inst["state"] == "pending" and inst["worker_id"] is None and inst["worker_name"] is None
    assert (inst["port"], inst["pid"]) == (None, None)
    assert registered["name"] in inst["state_message"]


def test_worker_reports_only_its_own_instances(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    other = register_worker(server)
    model = create_model(api)
    mine = insert_instance(server, model_id=model["id"], worker_id=registered["id"])
    theirs = insert_instance(server, model_id=model["id"], worker_id=other["id"])
    unplaced = insert_instance(server, model_id=model["id"])

    response = client.patch(
        f"/v2/model-instances/{mine}",
        json={"state": "running", "port": 40000, "pid": 1234, "download_progress": 100.0, "state_message": None},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["state"], body["port"], body["pid"], body["download_progress"]) == ("running", 40000, 1234, 100.0)
    assert api.get(f"/v2/model-instances/{mine}").json()["state"] == "running"
    # omitted fields are kept
    assert client.patch(f"/v2/model-instances/{mine}", json={"restart_count": 2}).json()["port"] == 40000

    for inst_id in (theirs, unplaced):
        refused = client.patch(f"/v2/model-instances/{inst_id}", json={"state": "running"})
        assert refused.status_code == 403
        assert refused.json()["message"] == f"model instance {inst_id} is not assigned to worker '{registered['name']}'"
        assert api.get(f"/v2/model-instances/{inst_id}").json()["state"] != "running"
    assert client.patch("/v2/model-instances/2147483647", json={}).status_code == 404
    # instance reports are the worker's: users, even admins, are refused
    assert api.patch(f"/v2/model-instances/{mine}", json={"state": "error"}).status_code == 403


@pytest.mark.parametrize("state", ["pending", "analyzing"])
def test_worker_cannot_set_scheduler_states(server: RunningServer, api: httpx.Client, worker: Any, state: str) -> None:
    registered, client = worker
    inst = insert_instance(server, model_id=create_model(api)["id"], worker_id=registered["id"])
    response = client.patch(f"/v2/model-instances/{inst}", json={"state": state})
    assert response.status_code == 400
    assert response.json()["message"] == f"a worker cannot set state '{state}'"
    assert api.get(f"/v2/model-instances/{inst}").json()["state"] == "scheduled"


@pytest.mark.parametrize(
    "body",
    [
        {"state": "exploded"},
        {"state": None},
        {"restart_count": None},
        {"restart_count": -1},
        {"port": 70000},
        {"pid": 2**40},
        {"download_progress": "half"},
    ],
    ids=str,
)
def test_instance_report_validates(server: RunningServer, api: httpx.Client, worker: Any, body: dict[str, Any]) -> None:
    registered, client = worker
    inst = insert_instance(server, model_id=create_model(api)["id"], worker_id=registered["id"])
    response = client.patch(f"/v2/model-instances/{inst}", json=body)
    assert response.status_code == 422, response.text
    assert api.get(f"/v2/model-instances/{inst}").json()["state"] == "scheduled"


def test_long_instance_messages_are_cut_to_fit(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    inst = insert_instance(server, model_id=create_model(api)["id"], worker_id=registered["id"])
    response = client.patch(f"/v2/model-instances/{inst}", json={"state": "error", "state_message": "E" * 20000})
    assert response.status_code == 200, response.text
    assert response.json()["state_message"] == "E" * 8192


def test_instances_list_filters_and_delete(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    model = create_model(api)
    on_worker = insert_instance(server, model_id=model["id"], worker_id=registered["id"], state="running")
    pending = insert_instance(server, model_id=model["id"])

    by_model = api.get("/v2/model-instances", params={"model_id": model["id"]}).json()
    assert sorted(i["id"] for i in by_model["items"]) == sorted([on_worker, pending])
    by_worker = api.get("/v2/model-instances", params={"worker_id": registered["id"]}).json()
    assert [i["id"] for i in by_worker["items"]] == [on_worker]
    by_state = api.get("/v2/model-instances", params={"model_id": model["id"], "state": "pending"}).json()
    assert [i["id"] for i in by_state["items"]] == [pending]
    assert client.get("/v2/model-instances", params={"worker_id": registered["id"]}).status_code == 200
    for bad in ({"worker_id": 2**31}, {"worker_id": 10**20}, {"model_id": 0}, {"model_id": "x"}):
        assert api.get("/v2/model-instances", params=bad).status_code == 422, bad

    assert client.delete(f"/v2/model-instances/{on_worker}").status_code == 403
    assert api.delete(f"/v2/model-instances/{on_worker}").status_code == 204
    assert api.get(f"/v2/model-instances/{on_worker}").status_code == 404
    assert api.delete(f"/v2/model-instances/{on_worker}").status_code == 404
    assert api.get(f"/v2/models/{model['id']}").status_code == 200  # the model stays


def test_model_files_are_upserted_per_worker(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    registered, client = worker
    key = f"Qwen/Qwen2.5-7B-Instruct-GGUF/{unique('file')}.gguf"
    first = client.post(
        "/v2/model-files", json={"source": "huggingface", "source_key": key, "state": "downloading", "size": None}
    )
    assert first.status_code == 200, first.text
    assert first.json()["worker_id"] == registered["id"] and first.json()["state"] == "downloading"
    size = 5 * 2**30  # larger than a 32-bit INTEGER
    done = client.post(
        "/v2/model-files",
        json={
            "source": "huggingface",
            "source_key": key,
            "state": "ready",
            "size": size,
            "download_progress": 100.0,
            "resolved_path": "/data/cache/model.gguf",
        },
    )
    assert done.status_code == 200, done.text
    assert done.json()["id"] == first.json()["id"]
    assert (done.json()["size"], done.json()["state"]) == (size, "ready")

    listed = api.get("/v2/model-files", params={"worker_id": registered["id"]}).json()
    assert [(f["id"], f["size"]) for f in listed["items"]] == [(first.json()["id"], size)]
    failed = client.post(
        "/v2/model-files", json={"source_key": unique("k"), "state": "error", "state_message": "x" * 9000}
    )
    assert failed.status_code == 200 and len(failed.json()["state_message"]) == 4096
    for bad in (
        {"source_key": ""},
        {"source_key": "k" * 1025},
        {"source_key": "k", "size": -1},
        {"source_key": "k", "size": 2**64},
    ):
        assert client.post("/v2/model-files", json=bad).status_code == 422, bad
    assert api.post("/v2/model-files", json={"source_key": "k"}).status_code == 403  # only workers report files

    assert api.delete(f"/v2/model-files/{failed.json()['id']}").status_code == 204
    assert api.delete(f"/v2/model-files/{failed.json()['id']}").status_code == 404
    assert client.delete(f"/v2/model-files/{first.json()['id']}").status_code == 403
    # a removed worker's files go with it
    assert api.delete(f"/v2/workers/{registered['id']}").status_code == 204
    assert api.get("/v2/model-files", params={"worker_id": registered["id"]}).json()["items"] == []


def test_model_file_reports_never_duplicate_rows(server: RunningServer, api: httpx.Client, worker: Any) -> None:
    """Two replicas of one model on a worker report the same file at once; old duplicates are merged."""
    registered, client = worker
    key = f"org/repo/{unique('dup')}.gguf"

    def report(progress: float) -> httpx.Response:
        with client_with(server, registered["credential"]) as own:
            return own.post(
                "/v2/model-files", json={"source": "huggingface", "source_key": key, "download_progress": progress}
            )

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(report, [float(i) for i in range(16)]))
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    mine = [
        f
        for f in api.get("/v2/model-files", params={"worker_id": registered["id"]}).json()["items"]
        if f["source_key"] == key
    ]
    assert len(mine) == 1, mine

    # rows duplicated before this fix (or by hand) are merged into the oldest by the next report
    with Session(sync_engine(server)) as session:
        for _ in range(2):
            session.add(ModelFile(worker_id=registered["id"], source="huggingface", source_key=key))
        session.commit()
    merged = report(100.0)
    assert merged.status_code == 200, merged.text
    assert merged.json()["id"] == mine[0]["id"] and merged.json()["download_progress"] == 100.0
    listed = api.get("/v2/model-files", params={"worker_id": registered["id"]}).json()["items"]
    assert [f["id"] for f in listed if f["source_key"] == key] == [mine[0]["id"]]


def _register_raw(server: RunningServer, **body: object) -> httpx.Response:
    with server.client() as anonymous:
        return anonymous.post("/v2/workers/register", json=body, headers=bearer(server.token))


def test_a_name_cannot_be_taken_over_without_its_secret(server: RunningServer, api: httpx.Client) -> None:
    """The cluster token alone must not hand out an existing worker's credentials."""
    name = unique("worker")
    first = register_worker(server, name)
    second = register_worker(server, name, secret=first["secret"])
    for secret in (None, "guess", first["secret"]):  # none, a wrong one, and one already rotated away
        body = {"name": name, **({"secret": secret} if secret else {})}
        refused = _register_raw(server, **body)
        assert refused.status_code == 403, refused.text
        assert "--worker-name" in refused.json()["message"] and second["credential"] not in refused.text
    with client_with(server, second["credential"]) as still_valid:
        assert still_valid.post("/v2/workers/me/status", json={"status": STATUS}).status_code == 200
    # once an admin deletes the worker, the name is free again
    assert api.delete(f"/v2/workers/{second['id']}").status_code == 204
    assert _register_raw(server, name=name).status_code == 200


@pytest.mark.parametrize("address", ["10.0.0.1/evil", "user@host", "host:80", "a b", "-x", "é.example", "x" * 300])
def test_worker_addresses_must_be_an_ip_or_a_host_name(server: RunningServer, address: str) -> None:
    assert _register_raw(server, name=unique("worker"), ip=address).status_code == 422
    registered = register_worker(server)
    with client_with(server, registered["credential"]) as client:
        report = client.post("/v2/workers/me/status", json={"status": STATUS, "ip": address})
    assert report.status_code == 422


@pytest.mark.parametrize("address", ["10.0.0.7", "fd00::7", "gpu-node-7.cluster.local"])
def test_valid_worker_addresses_are_kept(server: RunningServer, api: httpx.Client, address: str) -> None:
    registered = register_worker(server, ip=address)
    assert api.get(f"/v2/workers/{registered['id']}").json()["ip"] == address
