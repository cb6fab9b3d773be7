"""A subordinate worker of a distributed instance: it lists and watches the instance, reports its own part
(ports, pid, state) and nothing else; workers taking no part are refused."""

import httpx
import pytest

from gpustack.server.services import watch as watch_service
from tests.server.api_test_helpers import admin_client, create_model, insert_instance, of_id, register_worker, watching
from tests.utils.server import RunningServer


@pytest.fixture(autouse=True)
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch_service, "HEARTBEAT_SECONDS", 0.1)


def _as(server: RunningServer, worker: dict) -> httpx.Client:
    return server.client(headers={"Authorization": f"Bearer {worker['credential']}"})


def test_a_subordinate_lists_watches_and_reports_its_part(server: RunningServer) -> None:
    main, sub, bystander = register_worker(server), register_worker(server), register_worker(server)
    with admin_client(server) as api:
        model = create_model(api)
    part = {"worker_id": sub["id"], "worker_name": sub["name"], "gpu_indexes": [0, 1], "ports": []}
    inst = insert_instance(server, model_id=model["id"], worker_id=main["id"], distributed_servers=[part])
    insert_instance(server, model_id=model["id"], worker_id=main["id"])  # not distributed: not the sub's

    with _as(server, sub) as as_sub:
        listed = as_sub.get("/v2/model-instances", params={"worker_id": sub["id"], "page": -1}).json()["items"]
        assert [i["id"] for i in listed] == [inst]
        with watching(server, sub["credential"], "/v2/model-instances", worker_id=sub["id"]) as stream:
            assert [e["data"]["id"] for e in stream.until_heartbeat()] == [inst]
            report = {"subordinate": {"state": "running", "pid": 4242, "ports": [40200, 40201]}}
            answer = as_sub.patch(f"/v2/model-instances/{inst}", json=report)
            assert answer.status_code == 200, answer.text
            seen = stream.wait_for(of_id("updated", inst))
        [mine] = seen["data"]["distributed_servers"]["subordinate_workers"]
        assert (mine["state"], mine["pid"], mine["ports"], mine["gpu_indexes"]) == (
            "running",
            4242,
            [40200, 40201],
            [0, 1],
        )
        assert seen["data"]["state"] == "scheduled"  # the main part's state is the main worker's to report

        refused = as_sub.patch(f"/v2/model-instances/{inst}", json={"state": "error"})
        assert refused.status_code == 403 and "not assigned to worker" in refused.text
        bad = as_sub.patch(f"/v2/model-instances/{inst}", json={"subordinate": {"state": "pending"}})
        assert bad.status_code == 400 and "cannot set state 'pending'" in bad.text

    with _as(server, bystander) as as_other:
        other = as_other.patch(f"/v2/model-instances/{inst}", json={"subordinate": {"state": "running"}})
        assert other.status_code == 403

    with _as(server, main) as as_main:  # the main worker records the ports of its own part
        body = as_main.patch(f"/v2/model-instances/{inst}", json={"state": "starting", "ports": [40101]}).json()
        assert body["ports"] == [40101] and body["distributed_servers"]["subordinate_workers"][0]["pid"] == 4242
