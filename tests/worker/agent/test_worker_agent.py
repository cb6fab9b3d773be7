"""End-to-end worker tests: a real server, a real agent, and a tiny real engine process."""

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_harness import Cluster, cluster, pid_alive, wait_for

from gpustack.core.http import PROXY_ERROR_HEADER


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("agent")) as running:
        yield running


@pytest.fixture(scope="module")
def running(env: Cluster) -> dict[str, Any]:
    """One instance brought to running by the worker (shared by the read-only tests)."""
    model = env.create_model()
    instance_id = env.place_instance(model)
    inst = env.wait_state(instance_id, "running")
    return {"model": model, **inst}


def test_worker_registers_and_heartbeats(env: Cluster) -> None:
    with env.server.admin() as admin:
        worker = admin.get(f"/v2/workers/{env.worker_id}").json()
    assert worker["name"] == env.agent.name
    assert worker["ip"] == "127.0.0.1"
    assert worker["port"] == int(env.worker_url.rsplit(":", 1)[1])
    wait_for(lambda: env.server.admin().get(f"/v2/workers/{env.worker_id}").json()["state"] == "ready")


def test_worker_reports_its_gpu_overhead_headroom_and_engines(env: Cluster) -> None:
    with env.server.admin() as admin:
        status = admin.get(f"/v2/workers/{env.worker_id}").json()["status"]
    assert status["gpu_runtime_overhead"] == 2**30  # --gpu-runtime-overhead 1GiB
    assert status["gpu_headroom"] == 256 * 2**20  # the default
    engine = status["backends"]["llama-box"]
    assert engine["engine"].startswith("llama-cpp-python 0.3")
    assert engine["gpu_offload"] is False  # the CPU build of this machine


def test_instance_reaches_running_with_port_and_pid(env: Cluster, running: dict[str, Any]) -> None:
    low, high = env.agent.config.port_range()
    assert low <= running["port"] <= high
    assert running["pid"] and pid_alive(running["pid"])
    assert running["state_message"] is None
    assert env.recorder.states(running["id"])[:1] == ["scheduled"]
    assert {"initializing", "starting", "running"} <= set(env.recorder.states(running["id"]))


def test_proxy_forwards_with_credential(env: Cluster, running: dict[str, Any]) -> None:
    body = {"model": running["model"]["name"], "messages": [{"role": "user", "content": "hello there"}]}
    with env.proxy() as client:
        response = client.post(f"/proxy/{running['id']}/v1/chat/completions", json=body, headers=env.auth())
        assert response.status_code == 200, response.text
        assert response.json()["choices"][0]["message"]["content"] == "hello there"
        assert response.json()["authorization"] is None  # the proxy credential stays on the worker
        models = client.get(f"/proxy/{running['id']}/v1/models", headers=env.auth())
        assert models.json()["data"][0]["id"] == running["model"]["name"]
        echoed = client.get(f"/proxy/{running['id']}/echo-path/a%2Fb?x=1", headers=env.auth())
        assert echoed.json()["path"] == "/echo-path/a%2Fb?x=1"


def test_proxy_streams_chunks(env: Cluster, running: dict[str, Any]) -> None:
    body = {"stream": True, "messages": [{"role": "user", "content": "one two three"}]}
    url = f"/proxy/{running['id']}/v1/chat/completions"
    with env.proxy() as client, client.stream("POST", url, json=body, headers=env.auth()) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    assert lines == ['data: {"delta": "one"}', 'data: {"delta": "two"}', 'data: {"delta": "three"}', "data: [DONE]"]


def test_proxy_refuses_without_credential(env: Cluster, running: dict[str, Any]) -> None:
    url = f"/proxy/{running['id']}/v1/models"
    with env.proxy() as client:
        assert client.get("/healthz").status_code == 200
        refused = client.get(url)
        assert refused.status_code == 401 and refused.headers[PROXY_ERROR_HEADER] == "1"
        assert client.get(url, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get(url, headers={"Authorization": env.server.token}).status_code == 401
        assert client.get(f"/instances/{running['id']}/logs").status_code == 401
        missing = client.get("/proxy/999999/v1/models", headers=env.auth())
        assert missing.status_code == 404 and "999999" in missing.json()["detail"]
        assert missing.headers[PROXY_ERROR_HEADER] == "1"  # the proxy's own answer, not the engine's
        engine_answer = client.get(url, headers=env.auth())
        assert engine_answer.status_code == 200 and PROXY_ERROR_HEADER not in engine_answer.headers


def test_logs_tail_and_follow(env: Cluster, running: dict[str, Any]) -> None:
    with env.proxy() as client:
        tail = client.get(f"/instances/{running['id']}/logs", params={"tail": 50}, headers=env.auth())
        assert tail.status_code == 200
        assert "fake engine listening" in tail.text
        one = client.get(f"/instances/{running['id']}/logs", params={"tail": 1}, headers=env.auth())
        assert one.text.count("\n") == 1
        params = {"tail": 0, "follow": "true"}
        with client.stream("GET", f"/instances/{running['id']}/logs", params=params, headers=env.auth()) as logs:
            client.get(f"/proxy/{running['id']}/v1/models?marker=follow-me", headers=env.auth())
            seen = ""
            for chunk in logs.iter_text():
                seen += chunk
                if "follow-me" in seen:
                    break
    assert "follow-me" in seen


def test_killed_engine_is_reported_and_restarted(env: Cluster) -> None:
    instance_id = env.place_instance(env.create_model())
    first = env.wait_state(instance_id, "running")
    os.kill(first["pid"], signal.SIGKILL)
    wait_for(lambda: "error" in env.recorder.states(instance_id), 10, "the error report")
    errors = [e for e in env.recorder.events if e["id"] == instance_id and e["state"] == "error"]
    assert "exited with code -9" in errors[0]["state_message"]
    assert "fake engine listening" in errors[0]["state_message"]  # the last log lines

    def restarted() -> dict[str, Any] | None:
        inst = env.instance(instance_id)
        return inst if inst and inst["state"] == "running" and inst["pid"] != first["pid"] else None

    again = wait_for(restarted, 20, "the restart")
    assert again["restart_count"] >= 1
    assert pid_alive(again["pid"])
    with env.proxy() as client:
        assert client.get(f"/proxy/{instance_id}/v1/models", headers=env.auth()).status_code == 200


def test_deleted_instance_stops_engine(env: Cluster) -> None:
    instance_id = env.place_instance(env.create_model())
    pid = env.wait_state(instance_id, "running")["pid"]
    with env.server.admin() as admin:
        assert admin.delete(f"/v2/model-instances/{instance_id}").status_code == 204
    wait_for(lambda: not pid_alive(pid), 15, "the engine to stop")
    with env.proxy() as client:
        assert client.get(f"/proxy/{instance_id}/v1/models", headers=env.auth()).status_code == 404


def test_instance_moved_back_to_pending_stops_engine(env: Cluster) -> None:
    """The watch is filtered by worker_id, so a row that leaves this worker is seen on the next resync."""
    instance_id = env.place_instance(env.create_model())
    pid = env.wait_state(instance_id, "running")["pid"]

    async def unassign() -> None:
        from gpustack.schemas.instances import ModelInstance

        async with env.server_app.state.db.session() as session:
            inst = await session.get(ModelInstance, instance_id)
            inst.state, inst.worker_id, inst.worker_name, inst.pid, inst.port = "pending", None, None, None, None
            await session.commit()

    env.run_on_server(unassign())
    env.resync_now()
    wait_for(lambda: not pid_alive(pid), 15, "the engine to stop")
    assert env.instance(instance_id)["state"] == "pending"  # type: ignore[index]


def test_missing_local_path_is_an_error(env: Cluster, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model.gguf"
    instance_id = env.place_instance(env.create_model(local_path=str(missing)))
    inst = env.wait_state(instance_id, "error")
    assert f"local_path '{missing}' does not exist on worker '{env.agent.name}'" in inst["state_message"]
    with env.server.admin() as admin:
        files = admin.get("/v2/model-files", params={"worker_id": env.worker_id}).json()["items"]
    assert any(f["source_key"] == str(missing) and f["state"] == "error" for f in files)


def test_engine_exiting_at_start_is_an_error_with_log_lines(env: Cluster) -> None:
    command = "python3 -c \"print('engine says boom'); raise SystemExit(3)\""
    instance_id = env.place_instance(env.create_model(run_command=command))
    inst = env.wait_state(instance_id, "error")
    assert "exited with code 3 while starting" in inst["state_message"]
    assert "engine says boom" in inst["state_message"]


def test_proxy_answers_503_while_not_running(env: Cluster) -> None:
    command = 'python3 -c "import time; time.sleep(60)"'
    instance_id = env.place_instance(env.create_model(run_command=command))
    env.wait_state(instance_id, "starting")
    with env.proxy() as client:
        response = client.get(f"/proxy/{instance_id}/v1/models", headers=env.auth())
    assert response.status_code == 503 and response.headers[PROXY_ERROR_HEADER] == "1"
    with env.server.admin() as admin:
        admin.delete(f"/v2/model-instances/{instance_id}")


def test_resync_reports_running_again(env: Cluster, running: dict[str, Any]) -> None:
    """A server that lost the state (e.g. marked it unreachable) gets `running` re-reported."""

    async def mark_unreachable() -> None:
        from gpustack.schemas.instances import ModelInstance

        async with env.server_app.state.db.session() as session:
            inst = await session.get(ModelInstance, running["id"])
            inst.state = "unreachable"
            await session.commit()

    env.run_on_server(mark_unreachable())
    inst = env.wait_state(running["id"], "running", timeout=10)
    assert inst["pid"] == running["pid"]
    assert httpx.get(f"{env.worker_url}/healthz").status_code == 200
