"""`?watch=true` streams over real HTTP: the current rows as `created`, then live changes, in GPUStack's framing."""

import json
from collections.abc import Iterator

import httpx
import pytest

from gpustack.server.services import watch as watch_service
from tests.server.api_test_helpers import (
    admin_client,
    admin_key,
    create_model,
    insert_instance,
    of_id,
    register_worker,
    unique,
    watching,
)
from tests.utils.server import RunningServer

HEARTBEAT_SECONDS = 0.1


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server runs in this process: a short heartbeat bounds every wait and lets readers stop promptly."""
    monkeypatch.setattr(watch_service, "HEARTBEAT_SECONDS", HEARTBEAT_SECONDS)


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


def test_models_watch_sends_the_snapshot_then_changes(server: RunningServer, api: httpx.Client) -> None:
    existing = create_model(api)
    listing = api.get("/v2/models", params={"page": -1}).json()
    assert listing["pagination"]["total"] <= 1000
    with watching(server, admin_key(server), "/v2/models") as stream:
        assert stream.status_code == 200
        snapshot = stream.until_heartbeat()
        assert {e["type"] for e in snapshot} == {"created"}
        # every current row, oldest first (the listing is newest first), in the public shape
        assert [e["data"] for e in snapshot] == listing["items"][::-1]
        assert any(e["data"]["id"] == existing["id"] for e in snapshot)

        new = create_model(api)
        assert stream.wait_for(of_id("created", new["id"]))["data"] == new

        api.patch(f"/v2/models/{new['id']}", json={"replicas": 3}).raise_for_status()
        assert stream.wait_for(of_id("updated", new["id"]))["data"]["replicas"] == 3

        renamed = unique("renamed")
        api.put(f"/v2/models/{new['id']}", json={"name": renamed, "local_path": "/models/b.gguf"}).raise_for_status()
        updated = stream.wait_for(of_id("updated", new["id"]))["data"]
        assert (updated["name"], updated["local_path"], updated["replicas"]) == (renamed, "/models/b.gguf", 1)

        assert api.delete(f"/v2/models/{new['id']}").status_code == 204
        assert stream.wait_for(of_id("deleted", new["id"]))["data"]["name"] == renamed

        about_new = [e["type"] for e in stream.seen if (e["data"] or {}).get("id") == new["id"]]
        assert about_new == ["created", "updated", "updated", "deleted"]


def test_heartbeats_keep_the_stream_alive(server: RunningServer) -> None:
    with watching(server, admin_key(server), "/v2/models", state="no-such-state") as stream:
        assert stream.until_heartbeat() == []  # nothing matches: straight to the first heartbeat
        beats = [stream.next(timeout=5) for _ in range(2)]
    assert beats == [{"type": "heartbeat", "code": None, "data": None}] * 2


def test_watch_frames_are_gpustack_events(server: RunningServer, api: httpx.Client) -> None:
    """The raw bytes: compact JSON events with GPUStack's integer type codes, the row id, `changed_fields`
    as [old, new] pairs, each frame ended by a blank line; a heartbeat is a bare blank line."""
    model = create_model(api)
    with watching(server, admin_key(server), "/v2/models") as stream:
        stream.until_heartbeat()
        api.patch(f"/v2/models/{model['id']}", json={"replicas": 3}).raise_for_status()
        updated = stream.wait_for(of_id("updated", model["id"]))
        api.delete(f"/v2/models/{model['id']}").raise_for_status()
        deleted = stream.wait_for(of_id("deleted", model["id"]))
    assert updated["code"] == 2 and updated["id"] == model["id"]
    assert updated["changed_fields"]["replicas"] == [1, 3]
    assert deleted["code"] == 3 and deleted["id"] == model["id"]
    with api.stream("GET", "/v2/models", params={"watch": "true"}) as response:
        assert response.headers["content-type"].startswith("application/json")
        raw = b""
        for chunk in response.iter_raw():
            raw += chunk
            if raw.endswith(b"\n\n\n\n") or raw == b"\n\n":  # the last event's end, then a heartbeat
                break
    frames = raw.split(b"\n\n")
    first = json.loads(frames[0])
    assert first["type"] == 1 and set(first) == {"type", "id", "data", "changed_fields"}
    assert frames[0] == json.dumps(first, separators=(",", ":")).encode()


def test_refused_and_failed_writes_publish_nothing(server: RunningServer, api: httpx.Client) -> None:
    model = create_model(api)
    with watching(server, admin_key(server), "/v2/models") as stream:
        stream.until_heartbeat()
        assert api.post("/v2/models", json={"name": model["name"], "local_path": "/x"}).status_code == 409
        assert api.patch(f"/v2/models/{model['id']}", json={"replicas": -1}).status_code == 422
        assert api.delete("/v2/models/2147483647").status_code == 404
        assert stream.quiet() == []


def test_state_filter_applies_to_live_events(server: RunningServer, api: httpx.Client) -> None:
    with (
        watching(server, admin_key(server), "/v2/models", state="pending") as pending,
        watching(server, admin_key(server), "/v2/models", state="running") as running,
    ):
        assert all(e["data"]["state"] == "pending" for e in pending.until_heartbeat())
        assert all(e["data"]["state"] == "running" for e in running.until_heartbeat())
        model = create_model(api)
        assert pending.wait_for(of_id("created", model["id"]))["data"]["state"] == "pending"
        assert running.quiet() == []


def test_every_watcher_gets_every_event(server: RunningServer, api: httpx.Client) -> None:
    worker = register_worker(server)
    with (
        watching(server, admin_key(server), "/v2/models") as first,
        watching(server, worker["credential"], "/v2/models") as second,
    ):
        first.until_heartbeat()
        second.until_heartbeat()
        model = create_model(api)
        assert (
            first.wait_for(of_id("created", model["id"]))["data"]
            == second.wait_for(of_id("created", model["id"]))["data"]
        )


@pytest.mark.parametrize("path", ["/v2/models", "/v2/workers", "/v2/model-instances"])
def test_watch_needs_credentials(server: RunningServer, path: str) -> None:
    with watching(server, None, path) as anonymous:
        assert anonymous.status_code == 401
    with watching(server, "gpustack_bad_key", path) as forged:
        assert forged.status_code == 401


def test_workers_watch_follows_one_worker(server: RunningServer, api: httpx.Client) -> None:
    name = unique("watched-worker")
    with watching(server, admin_key(server), "/v2/workers", name=name) as stream:
        assert stream.until_heartbeat() == []
        worker = register_worker(server, name, labels={"a": "1"})
        created = stream.wait_for(of_id("created", worker["id"]))["data"]
        assert (created["name"], created["state"], created["labels"]) == (name, "not_ready", {"a": "1"})

        with server.client(headers={"Authorization": f"Bearer {worker['credential']}"}) as as_worker:
            as_worker.post("/v2/workers/me/status", json={"status": {"cpu": {"total": 8}}}).raise_for_status()
        ready = stream.wait_for(lambda e: e["type"] == "updated" and e["data"]["state"] == "ready")["data"]
        assert ready["heartbeat_time"] is not None and ready["status"]["cpu"]["total"] == 8

        api.put(f"/v2/workers/{worker['id']}", json={"labels": {"b": "2"}}).raise_for_status()
        assert stream.wait_for(of_id("updated", worker["id"]))["data"]["labels"] == {"b": "2"}

        register_worker(server)  # another worker: filtered out by name
        assert api.delete(f"/v2/workers/{worker['id']}").status_code == 204
        assert stream.wait_for(of_id("deleted", worker["id"]))["data"]["name"] == name

    assert {e["data"]["name"] for e in stream.seen if e["data"]} == {name}
    assert all("credential" not in str(e["data"]) for e in stream.seen)


def test_instances_watch_filtered_by_worker(server: RunningServer, api: httpx.Client) -> None:
    mine, other = register_worker(server), register_worker(server)
    model = create_model(api)
    first = insert_instance(server, model_id=model["id"], worker_id=mine["id"])
    foreign = insert_instance(server, model_id=model["id"], worker_id=other["id"])

    with watching(server, mine["credential"], "/v2/model-instances", worker_id=mine["id"]) as stream:
        snapshot = stream.until_heartbeat()
        assert [(e["type"], e["data"]["id"]) for e in snapshot] == [("created", first)]
        assert snapshot[0]["data"]["model_id"] == model["id"] and snapshot[0]["data"]["state"] == "scheduled"

        with server.client(headers={"Authorization": f"Bearer {other['credential']}"}) as as_other:
            as_other.patch(f"/v2/model-instances/{foreign}", json={"state": "running"}).raise_for_status()
        with server.client(headers={"Authorization": f"Bearer {mine['credential']}"}) as as_mine:
            as_mine.patch(f"/v2/model-instances/{first}", json={"state": "downloading"}).raise_for_status()
            as_mine.patch(f"/v2/model-instances/{first}", json={"state": "running", "port": 40000}).raise_for_status()
        running = stream.wait_for(lambda e: of_id("updated", first)(e) and e["data"]["state"] == "running")
        assert running["data"]["port"] == 40000 and running["data"]["worker_id"] == mine["id"]

        assert api.delete(f"/v2/model-instances/{first}").status_code == 204
        stream.wait_for(of_id("deleted", first))

        # deleting the model deletes its instances one by one, so watchers see each of them go
        later = insert_instance(server, model_id=model["id"], worker_id=mine["id"])
        assert api.delete(f"/v2/models/{model['id']}").status_code == 204
        assert stream.wait_for(of_id("deleted", later))["data"]["model_id"] == model["id"]

    assert all(e["data"]["worker_id"] == mine["id"] for e in stream.seen if e["data"])
    assert foreign not in {e["data"]["id"] for e in stream.seen if e["data"]}
    states = [e["data"]["state"] for e in stream.seen if e["type"] == "updated"]
    assert states == ["downloading", "running"]


def test_row_leaving_the_filter_is_seen_as_deleted(server: RunningServer, api: httpx.Client) -> None:
    """A worker watching its instances learns at once when one is moved off it (e.g. its worker is removed)."""
    mine, bystander = register_worker(server), register_worker(server)
    model = create_model(api)
    moved = insert_instance(server, model_id=model["id"], worker_id=mine["id"])
    with watching(server, bystander["credential"], "/v2/model-instances", worker_id=mine["id"]) as stream:
        assert [e["data"]["id"] for e in stream.until_heartbeat()] == [moved]
        # deleting the worker puts its instances back to pending with no worker
        assert api.delete(f"/v2/workers/{mine['id']}").status_code == 204
        gone = stream.wait_for(of_id("deleted", moved))
    assert gone["data"]["worker_id"] is None and gone["data"]["state"] == "pending"


def test_model_files_watch_follows_a_worker(server: RunningServer) -> None:
    worker = register_worker(server)
    report = {"source": "local_path", "source_key": f"/models/{unique('f')}.gguf", "state": "downloading"}
    with watching(server, admin_key(server), "/v2/model-files", worker_id=worker["id"]) as stream:
        assert stream.until_heartbeat() == []
        with server.client(headers={"Authorization": f"Bearer {worker['credential']}"}) as as_worker:
            as_worker.post("/v2/model-files", json=report).raise_for_status()
            created = stream.wait_for(lambda e: e["type"] == "created")
            as_worker.post("/v2/model-files", json={**report, "state": "ready"}).raise_for_status()
        updated = stream.wait_for(lambda e: e["type"] == "updated")
    assert created["data"]["local_path"] == report["source_key"] and created["data"]["worker_id"] == worker["id"]
    assert updated["changed_fields"]["state"] == ["downloading", "ready"]
