"""End to end: a frozen worker (SIGSTOP: its sockets accept, nothing answers) must not hang clients."""

import os
import signal
from collections.abc import Iterator

import openai
import pytest

from tests.e2e import cluster as cluster_module
from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
pytest.importorskip("llama_cpp.server", reason="the CPU engine (llama-cpp-python[server]) is not installed")


@pytest.fixture(scope="module")
def frozen_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, str]]:
    root = tmp_path_factory.mktemp("freeze")
    with pytest.MonkeyPatch.context() as patch:
        # the liveness controller must not reschedule the frozen worker's replica during the test: what is
        # tested is the gateway alone
        patch.setitem(cluster_module.FAST_LOOPS, "GPUSTACK_HEARTBEAT_GRACE_SECONDS", "300")
        patch.setitem(cluster_module.FAST_LOOPS, "GPUSTACK_GATEWAY_FIRST_BYTE_TIMEOUT_SECONDS", "1")
        cluster = Cluster(root)
        try:
            cluster.start_server()
            cluster.start_worker("worker-a", 41200)
            cluster.start_worker("worker-b", 41250)
            model = write_tiny_gguf(root / "tiny.gguf")
            with cluster.admin() as admin:
                # both ready before the model exists, or spread puts both replicas on the first one
                def ready() -> list[str]:
                    return [w["state"] for w in admin.get("/v2/workers").json()["items"]]

                wait_for(lambda: ready() == ["ready", "ready"], 60, "two ready workers")
                created = admin.post("/v2/models", json={"name": "tiny", "local_path": str(model), "replicas": 2})
                assert created.status_code == 201, created.text

                def running() -> set[str]:
                    items = admin.get("/v2/model-instances", params={"model_id": created.json()["id"]}).json()
                    return {i["worker_name"] for i in items["items"] if i["state"] == "running"}

                wait_for(lambda: running() == {"worker-a", "worker-b"}, 180, "a running replica on each worker")
                key = admin.post("/v2/api-keys", json={"name": "freeze"}).json()["value"]
            yield cluster, key
        finally:
            cluster.shutdown()
            for proc in cluster.procs:
                print(f"---- {proc.name} log tail ----\n" + proc.log.read_text(errors="replace")[-3000:])


def test_requests_go_around_a_frozen_worker(frozen_setup: tuple[Cluster, str]) -> None:
    cluster, key = frozen_setup
    client = openai.OpenAI(base_url=f"{cluster.url}/v1", api_key=key, max_retries=0, timeout=30)
    worker_a = next(p for p in cluster.procs if p.name == "worker-a")
    os.kill(worker_a.popen.pid, signal.SIGSTOP)
    try:
        for _ in range(6):  # round-robin sends some of them to the frozen worker first
            reply = client.chat.completions.create(
                model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4
            )
            assert reply.choices
    finally:
        os.kill(worker_a.popen.pid, signal.SIGCONT)
    reply = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "hi"}], max_tokens=4)
    assert reply.choices
