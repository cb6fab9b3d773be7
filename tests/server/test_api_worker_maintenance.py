"""Worker maintenance mode (GPUStack's `maintenance: {enabled, message}`): set by admins, honoured by scheduling."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.scheduler._gguf import write_tiny_gguf
from tests.server.api_test_helpers import admin_client, client_with, create_user, register_worker, unique
from tests.utils.server import RunningServer

GiB = 2**30


@pytest.fixture
def api(server: RunningServer) -> Iterator[httpx.Client]:
    with admin_client(server) as client:
        yield client


@pytest.fixture
def ready_worker(server: RunningServer) -> dict[str, Any]:
    """A ready worker with one simulated GPU under a label of its own."""
    label = unique("maint")
    status = {"memory": {"total": 32 * GiB}, "gpu_devices": [{"index": 0, "name": "RTX", "memory_total": 8 * GiB}]}
    registered = register_worker(server, unique("maint"), labels={"pool": label}, status=status)
    with client_with(server, registered["credential"]) as own:
        assert own.post("/v2/workers/me/status", json={"status": status}).status_code == 200
    return {**registered, "selector": {"pool": label}}


def _fits(api: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v2/model-evaluations", json={"model_specs": [spec]})
    assert response.status_code == 200, response.text
    return response.json()["results"][0]  # type: ignore[no-any-return]


def test_a_worker_in_maintenance_takes_no_new_replicas(
    server: RunningServer, api: httpx.Client, ready_worker: dict[str, Any], tmp_path: Path
) -> None:
    path = f"/v2/workers/{ready_worker['id']}"
    spec = {"local_path": str(write_tiny_gguf(tmp_path / "tiny.gguf")), "worker_selector": ready_worker["selector"]}
    assert api.get(path).json()["maintenance"] is None and _fits(api, spec)["compatible"] is True

    on = api.put(path, json={"maintenance": {"enabled": True, "message": "new fans"}})
    assert on.status_code == 200 and on.json()["maintenance"] == {"enabled": True, "message": "new fans"}
    assert api.put(path, json={"labels": ready_worker["selector"]}).json()["maintenance"]["enabled"] is True  # kept
    refused = _fits(api, spec)
    assert refused["compatible"] is False
    assert f"{ready_worker['name']}: worker is in maintenance (new fans)" in refused["scheduling_messages"]

    user = create_user(api, password="pw-123456")
    with server.client(auth=(user["username"], "pw-123456")) as regular:
        assert regular.put(path, json={"maintenance": {"enabled": False}}).status_code == 403
    assert api.put(path, json={"maintenance": {"enabled": "sometimes"}}).status_code == 422

    off = api.put(path, json={"maintenance": {"enabled": False}})
    assert off.json()["maintenance"] == {"enabled": False, "message": None}
    assert _fits(api, spec)["compatible"] is True
