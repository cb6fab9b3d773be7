"""End to end: a model path only a worker can read is estimated from that worker's /model-metadata answer.

The path is `/proc/self/cwd/<dir>/tiny.gguf`: /proc/self is whichever process opens it, and only the
worker process runs in the directory that holds <dir>; for the server (and this test) it does not exist.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gpustack.scheduler.estimate.gguf import estimate_gguf
from tests.e2e.cluster import Cluster, wait_for
from tests.utils.tiny_gguf import write_tiny_gguf

pytestmark = pytest.mark.e2e
MODEL_DIR = "worker-only-model-7f3a"


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Path, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("worker-meta")
    worker_cwd = root / "worker-cwd"
    (worker_cwd / MODEL_DIR).mkdir(parents=True)
    real = write_tiny_gguf(worker_cwd / MODEL_DIR / "tiny.gguf")
    cluster = Cluster(root)
    try:
        cluster.start_server()
        cluster.start_worker("worker-a", 41400, cwd=worker_cwd)
        with cluster.admin() as admin:
            worker = wait_for(
                lambda: next((w for w in admin.get("/v2/workers").json()["items"] if w["state"] == "ready"), None),
                60,
                "a ready worker",
            )
        yield cluster, real, worker
    finally:
        cluster.shutdown()
        for proc in cluster.procs:
            print(f"---- {proc.name} log tail ----\n" + proc.log.read_text(errors="replace")[-3000:])


def test_the_estimate_of_a_worker_only_path_comes_from_the_worker(
    setup: tuple[Cluster, Path, dict[str, Any]],
) -> None:
    cluster, real, _ = setup
    local_path = f"/proc/self/cwd/{MODEL_DIR}/tiny.gguf"
    assert not Path(local_path).exists()  # not for this process, nor for the server (same working directory)
    with cluster.admin() as admin:
        created = admin.post("/v2/models", json={"name": "worker-only", "local_path": local_path, "replicas": 1})
        assert created.status_code == 201, created.text

        def estimate() -> dict[str, Any] | None:
            items = admin.get("/v2/model-instances", params={"model_id": created.json()["id"]}).json()["items"]
            claim = items[0].get("computed_resource_claim") if items else None
            return (claim or {}).get("estimate")

        terms = wait_for(estimate, 60, "a placement with an estimate")
        expected = estimate_gguf(real)
        assert terms["source"] == "worker"
        assert (terms["weights"], terms["kv_cache"], terms["compute"]) == (
            expected.weights_bytes, expected.kv_cache_bytes, expected.compute_bytes,
        )  # fmt: skip

        dry = admin.post("/v2/model-evaluations", json={"model_specs": [{"local_path": local_path}]})
        assert dry.status_code == 200, dry.text
        assert dry.json()["results"][0]["estimate"]["source"] == "worker"  # from the cache now
    server_log = next(p for p in cluster.procs if p.name == "server").log.read_text(errors="replace")
    assert f"metadata of {local_path} measured by worker worker-a" in server_log


def test_the_worker_endpoint_needs_the_servers_credential(setup: tuple[Cluster, Path, dict[str, Any]]) -> None:
    _, real, worker = setup
    url = f"http://{worker['ip']}:{worker['port']}/model-metadata"
    anonymous = httpx.get(url, params={"path": str(real)}, timeout=10)
    assert anonymous.status_code == 401
    forged = httpx.get(url, params={"path": str(real)}, headers={"authorization": "Bearer nope"}, timeout=10)
    assert forged.status_code == 401
