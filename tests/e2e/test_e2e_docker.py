"""End to end with the docker runtime: a real container engine runs llama.cpp's server from a local image."""

import os
from collections.abc import Iterator
from pathlib import Path

import docker
import httpx
import pytest

from gpustack.worker.runtimes.docker import LABEL
from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
IMAGE = os.environ.get("GPUSTACK_ENGINE_IMAGE", "gpustack-llama-box:ci")


def _engine_image() -> str | None:
    """Why the test cannot run here, or None when the engine answers and has the image."""
    try:
        client = docker.from_env(timeout=5)
        client.ping()
        client.images.get(IMAGE)
    except docker.errors.DockerException as exc:
        return f"{type(exc).__name__}: {exc}"
    client.close()
    return None


_WHY = _engine_image()
if _WHY is not None and os.environ.get("CI") != "true":
    pytest.skip(f"no Docker engine with {IMAGE} here ({_WHY}); run .ci/ensure-docker", allow_module_level=True)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    assert _WHY is None, f"CI=true but the docker runtime cannot run: {_WHY} (run .ci/ensure-docker)"
    cluster = Cluster(tmp_path_factory.mktemp("e2e-docker"))
    try:
        cluster.start_server()
        cluster.start_worker("docker-worker", 41400, extra=("--runtime", "docker"))
        with cluster.admin() as admin:
            wait_for(lambda: _workers_ready(admin), 60, "a ready worker")
        yield cluster
    finally:
        cluster.shutdown()
        _remove_test_containers()  # only after a failure midway: the test itself deletes its model
        for proc in cluster.procs:
            print(f"---- {proc.name} log tail ----\n" + proc.log.read_text(errors="replace")[-3000:])


def _remove_test_containers() -> None:
    """Containers of this test's instances that a failed run may leave (a worker stopped mid-adoption)."""
    client = docker.from_env(timeout=10)
    try:
        for container in client.containers.list(all=True, filters={"label": LABEL}):
            if container.labels.get(LABEL, "").startswith("tiny-docker-"):
                container.remove(force=True)
    finally:
        client.close()


def _workers_ready(admin: httpx.Client) -> bool:
    return any(w["state"] == "ready" for w in admin.get("/v2/workers").json()["items"])


def _chat_ok(cluster: Cluster, key: str) -> bool:
    """One chat request answered (the worker's proxy is back); False while it is not."""
    body = {"model": "tiny-docker", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    try:
        response = httpx.post(
            f"{cluster.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _instance(admin: httpx.Client, model_id: int) -> dict | None:
    items = admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]
    return items[0] if items else None


def _containers(name: str) -> list:  # type: ignore[type-arg]
    client = docker.from_env(timeout=10)
    try:
        return client.containers.list(all=True, filters={"label": f"{LABEL}={name}"})
    finally:
        client.close()


def _chat(cluster: Cluster, key: str) -> str:
    body = {"model": "tiny-docker", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    headers = {"Authorization": f"Bearer {key}"}
    response = httpx.post(f"{cluster.url}/v1/chat/completions", json=body, headers=headers, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["role"]


def _use_ci_image(admin: httpx.Client) -> None:
    """Point the built-in llama-box's cpu image at the locally built one (no registry here)."""
    backend = admin.get("/v2/inference-backends/backend_name/llama-box").json()
    fields = ("backend_name", "default_version", "default_backend_param", "health_check_path", "default_env")
    body = {key: backend[key] for key in fields}
    body["version_configs"] = {backend["default_version"]: {"images": {"cpu": IMAGE}}}
    assert admin.put(f"/v2/inference-backends/{backend['id']}", json=body).status_code == 200


def test_deploy_chat_restart_and_delete(cluster: Cluster, tmp_path: Path) -> None:
    """The image comes from the catalog: the model names neither backend nor image."""
    model_path = write_tiny_gguf(tmp_path / "tiny.gguf")
    with cluster.admin() as admin:
        _use_ci_image(admin)
        body = {"name": "tiny-docker", "local_path": str(model_path)}
        created = admin.post("/v2/models", json=body)
        assert created.status_code == 201, created.text
        model_id = created.json()["id"]
        assert created.json()["backend"] == "llama-box"  # pre-selected from the .gguf source

        def running() -> dict | None:
            inst = _instance(admin, model_id)
            return inst if inst and inst["state"] == "running" else None

        first = wait_for(running, 180, "the containerised instance running")
        (container,) = _containers(first["name"])
        assert container.status == "running" and container.image.tags[0] == IMAGE
        assert first["pid"] == container.attrs["State"]["Pid"] > 0  # the container's process on this host
        mounts = container.attrs["Mounts"]
        assert [(m["Source"], m["RW"]) for m in mounts] == [(str(model_path), False)]
        key = admin.post("/v2/api-keys", json={"name": "docker-e2e"}).json()["value"]
        assert _chat(cluster, key) == "assistant"

        container.kill()
        restarted = wait_for(
            lambda: (i := running()) and i["restart_count"] > first["restart_count"] and i, 180, "a restarted engine"
        )
        (replacement,) = _containers(restarted["name"])
        assert replacement.id != container.id and replacement.status == "running"
        assert _chat(cluster, key) == "assistant"

        # a worker killed outright leaves its container running; the restarted worker adopts it
        next(p for p in cluster.procs if p.name == "docker-worker" and p.popen.poll() is None).kill()
        cluster.respawn("docker-worker")
        wait_for(lambda: _chat_ok(cluster, key), 90, "chat through the restarted worker")
        (adopted,) = _containers(restarted["name"])
        assert adopted.id == replacement.id
        assert (running() or {}).get("restart_count") == restarted["restart_count"]

        assert admin.delete(f"/v2/models/{model_id}").status_code in (200, 204)
        wait_for(lambda: not _containers(first["name"]), 60, "no container left after the model was deleted")
