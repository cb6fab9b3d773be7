"""Fault tests with real processes: a long server outage and a frozen worker restart no engine."""

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf
from tests.worker.agent.agent_harness import pid_alive

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")

# Heartbeat every 1 s; a worker is judged after 3 s of silence and its instances move 2 s later: an outage of
# 10 s is, at these settings, what 200 s is at the defaults (10 s / 45 s / 120 s).
OUTAGE_LOOPS = {
    "GPUSTACK_HEARTBEAT_INTERVAL_SECONDS": "1",
    "GPUSTACK_HEARTBEAT_GRACE_SECONDS": "3",
    "GPUSTACK_RESCHEDULE_AFTER_SECONDS": "2",
}


def _instances(admin: httpx.Client, model_id: int) -> list[dict[str, Any]]:
    return list(admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"])


def _deploy(cluster: Cluster, root: Path, replicas: int) -> tuple[int, list[dict[str, Any]], str]:
    """The tiny GGUF on llama.cpp; returns (model id, running instances, an API key)."""
    path = write_tiny_gguf(root / "tiny.gguf")
    with cluster.admin() as admin:
        body = {"name": "tiny", "source": "local_path", "local_path": str(path), "replicas": replicas}
        created = admin.post("/v2/models", json=body)
        assert created.status_code == 201, created.text
        model_id = created.json()["id"]

        def running() -> list[dict[str, Any]] | None:
            items = [i for i in _instances(admin, model_id) if i["state"] == "running"]
            return items if len(items) == replicas else None

        instances = wait_for(running, 180, f"{replicas} running replicas")
        key = admin.post("/v2/api-keys", json={"name": "faults"}).json()["value"]
    return model_id, instances, key


def _chat(cluster: Cluster, key: str) -> httpx.Response:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.post(f"{cluster.url}/v1/chat/completions", json=body, headers=headers, timeout=30)


def _instance_in(admin: httpx.Client, model_id: int, instance_id: int, state: str) -> dict[str, Any] | None:
    return next((i for i in _instances(admin, model_id) if i["id"] == instance_id and i["state"] == state), None)


def _ready_workers(cluster: Cluster, count: int) -> None:
    with cluster.admin() as admin:
        wait_for(
            lambda: len([w for w in admin.get("/v2/workers").json()["items"] if w["state"] == "ready"]) == count,
            60,
            f"{count} ready workers",
        )


def _dump_logs(cluster: Cluster) -> None:
    for log in sorted(cluster.root.glob("*.log")):
        print(f"---- {log.name} ----\n" + log.read_text(errors="replace")[-3000:])


def test_engines_keep_running_through_a_long_server_outage(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, env=OUTAGE_LOOPS)
    try:
        server = cluster.start_server()
        cluster.start_worker("outage-w", 41400)
        _ready_workers(cluster, 1)
        model_id, [before], key = _deploy(cluster, tmp_path, 1)

        server.kill()
        time.sleep(10)  # every heartbeat is now older than grace + reschedule delay
        assert pid_alive(before["pid"])
        cluster.respawn("server")

        deadline = time.monotonic() + 10  # several liveness passes and heartbeats after the restart
        with cluster.admin() as admin:
            while time.monotonic() < deadline:
                [now] = _instances(admin, model_id)
                assert (now["state"], now["pid"], now["worker_name"]) == ("running", before["pid"], "outage-w"), now
                time.sleep(0.3)
        assert now["restart_count"] == before["restart_count"] and now["port"] == before["port"]
        assert pid_alive(before["pid"])
        assert _chat(cluster, key).status_code == 200
    except BaseException:
        _dump_logs(cluster)
        raise
    finally:
        cluster.shutdown()


def test_a_frozen_worker_leaves_routing_quickly_and_comes_back_without_restart(tmp_path: Path) -> None:
    cluster = Cluster(tmp_path, env={**OUTAGE_LOOPS, "GPUSTACK_RESCHEDULE_AFTER_SECONDS": "120"})
    frozen = None
    try:
        cluster.start_server()
        cluster.start_worker("freeze-a", 41450)
        cluster.start_worker("freeze-b", 41500)
        _ready_workers(cluster, 2)
        model_id, running, key = _deploy(cluster, tmp_path, 2)
        victim = next(i for i in running if i["worker_name"] == "freeze-a")

        frozen = next(p for p in cluster.procs if p.name == "freeze-a")
        os.kill(frozen.popen.pid, signal.SIGSTOP)
        with cluster.admin() as admin:
            wait_for(lambda: _instance_in(admin, model_id, victim["id"], "unreachable"), 15, "instance out of routing")
        for _ in range(4):  # served by freeze-b only: none of them waits on the frozen worker
            assert _chat(cluster, key).status_code == 200

        os.kill(frozen.popen.pid, signal.SIGCONT)
        frozen = None
        with cluster.admin() as admin:
            back = wait_for(
                lambda: _instance_in(admin, model_id, victim["id"], "running"), 30, "instance running again"
            )
        assert (back["pid"], back["port"], back["worker_name"]) == (victim["pid"], victim["port"], "freeze-a")
        assert back["restart_count"] == victim["restart_count"] and pid_alive(victim["pid"])
    except BaseException:
        _dump_logs(cluster)
        raise
    finally:
        if frozen is not None:
            os.kill(frozen.popen.pid, signal.SIGCONT)
        cluster.shutdown()
