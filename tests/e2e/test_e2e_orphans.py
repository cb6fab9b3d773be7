"""A SIGKILLed worker leaves no engine behind: it dies with it, or the restarted worker adopts or reaps it."""

import time
from pathlib import Path
from typing import Any

import pytest

from gpustack.worker.ports import is_bindable
from tests.e2e.cluster import Cluster, Proc, wait_for
from tests.worker.agent.agent_harness import fake_engine_command, pid_alive

pytestmark = pytest.mark.e2e

PORTS = 41700


def _running(cluster: Cluster, model_id: int) -> dict[str, Any] | None:
    with cluster.admin() as admin:
        items = admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]
    return next((i for i in items if i["state"] == "running"), None)


def _deploy(cluster: Cluster, root: Path, *, stubborn: bool) -> tuple[int, dict[str, Any]]:
    """The engine stand-in; a stubborn one ignores SIGTERM, so it outlives its worker."""
    command = fake_engine_command() + (" --ignore-sigterm" if stubborn else "")
    with cluster.admin() as admin:
        wait_for(lambda: [w for w in admin.get("/v2/workers").json()["items"] if w["state"] == "ready"], 60, "worker")
        body = {"name": "orphan", "backend": "custom", "run_command": command, "local_path": str(root)}
        model_id = admin.post("/v2/models", json=body).json()["id"]
    return model_id, wait_for(lambda: _running(cluster, model_id), 60, "running engine")


def _start(tmp_path: Path) -> tuple[Cluster, Proc]:
    cluster = Cluster(tmp_path)
    cluster.start_server()
    return cluster, cluster.start_worker("orphan-w", PORTS)


def test_engine_dies_with_a_killed_worker_and_the_restarted_worker_relaunches(tmp_path: Path) -> None:
    cluster, worker = _start(tmp_path)
    try:
        model_id, before = _deploy(cluster, tmp_path, stubborn=False)
        worker.kill()
        wait_for(lambda: not pid_alive(before["pid"]), 10, "the engine to die with its worker")
        cluster.respawn("orphan-w")
        after = wait_for(lambda: (i := _running(cluster, model_id)) and i["pid"] != before["pid"] and i, 60, "relaunch")
        assert pid_alive(after["pid"]) and not pid_alive(before["pid"])
    finally:
        cluster.shutdown()


def test_restarted_worker_adopts_an_engine_that_outlived_it(tmp_path: Path) -> None:
    cluster, worker = _start(tmp_path)
    try:
        model_id, before = _deploy(cluster, tmp_path, stubborn=True)
        worker.kill()
        time.sleep(1)
        assert pid_alive(before["pid"])  # ignored the parent-death SIGTERM
        restarted = cluster.respawn("orphan-w")
        wait_for(lambda: "adopted its running engine" in restarted.log.read_text(), 30, "adoption")
        now = _running(cluster, model_id)
        assert now is not None and (now["pid"], now["port"]) == (before["pid"], before["port"])
        assert now["restart_count"] == before["restart_count"]
    finally:
        cluster.shutdown()
    wait_for(lambda: not pid_alive(before["pid"]), 30, "the adopted engine stopped with its new worker")


def test_restarted_worker_reaps_an_engine_no_longer_assigned_to_it(tmp_path: Path) -> None:
    cluster, worker = _start(tmp_path)
    try:
        model_id, before = _deploy(cluster, tmp_path, stubborn=True)
        worker.kill()
        with cluster.admin() as admin:
            assert admin.delete(f"/v2/models/{model_id}").status_code == 204
        assert pid_alive(before["pid"]) and not is_bindable(before["port"])
        cluster.respawn("orphan-w")
        wait_for(lambda: not pid_alive(before["pid"]), 40, "the orphaned engine to be stopped")
        wait_for(lambda: is_bindable(before["port"]), 10, "its port to be free")
        assert list((tmp_path / "orphan-w" / "engines").iterdir()) == []
    finally:
        cluster.shutdown()
