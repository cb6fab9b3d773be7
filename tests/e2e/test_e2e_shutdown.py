"""SIGTERM is a clean stop: engines started by the embedded or a joined worker do not outlive it."""

import signal
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, Proc, wait_for
from tests.worker.agent.agent_harness import fake_engine_command, pid_alive

pytestmark = pytest.mark.e2e


def _deploy_engine(cluster: Cluster, local_path: Path) -> int:
    """A custom-backend model on the engine stand-in; returns the engine's pid once it runs."""
    with cluster.admin() as admin:
        wait_for(lambda: [w for w in admin.get("/v2/workers").json()["items"] if w["state"] == "ready"], 60, "worker")
        body = {
            "name": "stand-in",
            "backend": "custom",
            "run_command": fake_engine_command(),
            "local_path": str(local_path),
        }
        model = admin.post("/v2/models", json=body).json()
        running = wait_for(
            lambda: [i for i in admin.get("/v2/model-instances", params={"model_id": model["id"]}).json()["items"]
                     if i["state"] == "running"],
            60, "running engine",
        )  # fmt: skip
    return int(running[0]["pid"])


def _terminate(proc: Proc) -> None:
    proc.popen.send_signal(signal.SIGTERM)
    assert proc.popen.wait(timeout=30) == 0, proc.log.read_text()[-2000:]


def test_sigterm_on_server_with_embedded_worker_stops_engines(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        server = cluster.start_server(embedded_worker=True)
        pid = _deploy_engine(cluster, tmp_path)
        assert pid_alive(pid)
        _terminate(server)
        wait_for(lambda: not pid_alive(pid), 15, "engine gone")
        assert "Traceback" not in server.log.read_text()
    finally:
        cluster.shutdown()


def test_sigterm_on_joined_worker_stops_engines(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path)
    try:
        cluster.start_server()
        worker = cluster.start_worker("worker-term", 41200)
        pid = _deploy_engine(cluster, tmp_path)
        _terminate(worker)
        wait_for(lambda: not pid_alive(pid), 15, "engine gone")
    finally:
        cluster.shutdown()
