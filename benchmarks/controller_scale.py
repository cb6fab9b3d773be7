"""Controllers at scale: model creation rate on an empty cluster and with ~1,000 pending instances.

Starts a server process with no workers (so nothing can be placed and every instance stays pending), times
creating models one after another over the API, deletes them, creates 16 models x 63 replicas (1,008
instances the scheduler keeps refusing) and times the same again. The model and scheduling controllers run on every
change, so their per-pass cost shows up as a lower creation rate. Prints both rates and their ratio.
Run: `.venv/bin/python benchmarks/controller_scale.py`.
"""

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402

BACKLOG_MODELS, BACKLOG_REPLICAS = 16, 63


def _create_rate(api: httpx.Client, n: int) -> tuple[float, list[int]]:
    """Models created per second, and their ids."""
    ids = []
    start = time.perf_counter()
    for _ in range(n):
        body = {"name": f"bench-{uuid.uuid4().hex[:8]}", "local_path": "/models/none.gguf", "replicas": 1}
        response = api.post("/v2/models", json=body)
        response.raise_for_status()
        ids.append(response.json()["id"])
    return n / (time.perf_counter() - start), ids


def _pending(api: httpx.Client) -> int:
    return int(api.get("/v2/model-instances", params={"perPage": 1, "state": "pending"}).json()["pagination"]["total"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="models created per measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_server()
            with cluster.admin() as admin:
                key = admin.post("/v2/api-keys", json={"name": "bench", "scope": ["management"]}).json()["value"]
            with httpx.Client(base_url=cluster.url, headers={"authorization": f"Bearer {key}"}, timeout=60) as api:
                _, warm = _create_rate(api, 20)  # warm-up: connections, caches, SQLite pages
                empty, first = _create_rate(api, args.n)
                first += warm
                for model_id in first:  # both measurements start with about as many models
                    api.delete(f"/v2/models/{model_id}").raise_for_status()
                for _ in range(BACKLOG_MODELS):
                    body = {"name": f"backlog-{uuid.uuid4().hex[:8]}", "local_path": "/m.gguf"}
                    api.post("/v2/models", json={**body, "replicas": BACKLOG_REPLICAS}).raise_for_status()
                backlog = BACKLOG_MODELS * BACKLOG_REPLICAS
                wait_for(lambda: _pending(api) >= backlog, 120, f"{backlog} pending instances", interval=1.0)
                time.sleep(3)  # let the controllers settle
                loaded, _ = _create_rate(api, args.n)
                pending = _pending(api)
        finally:
            cluster.shutdown()
    print(f"models created per measurement: {args.n} (sequential, replicas=1, no workers)")
    print(f"empty cluster            : {empty:7.1f} models/s")
    print(f"with {pending:5d} pending insts: {loaded:7.1f} models/s")
    print(f"ratio (loaded / empty): {loaded / empty:.3f}")


if __name__ == "__main__":
    main()
