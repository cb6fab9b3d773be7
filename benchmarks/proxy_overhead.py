"""Proxy overhead: the same requests direct to the engine and through server -> worker -> engine.

Starts a server and one worker as processes on loopback, deploys a generated tiny GGUF on the CPU engine,
then sends N sequential small completions both ways and prints p50/p99 latency, the added latency, and
the ratio of requests per second (proxied / direct). Run: `.venv/bin/python benchmarks/proxy_overhead.py`.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402
from tests.utils.tiny_gguf import write_tiny_gguf  # noqa: E402

BODY = {"model": "tiny", "prompt": "hello", "max_tokens": 1, "temperature": 0}


def _measure(client: httpx.Client, url: str, n: int, headers: dict[str, str]) -> tuple[list[float], float]:
    for _ in range(5):  # warm up connections and the engine
        client.post(url, json=BODY, headers=headers).raise_for_status()
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        client.post(url, json=BODY, headers=headers).raise_for_status()
        latencies.append(time.perf_counter() - t0)
    return latencies, n / (time.perf_counter() - start)


def _pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def _deploy(cluster: Cluster, root: Path) -> tuple[str, str]:
    model = write_tiny_gguf(root / "tiny.gguf")
    with cluster.admin() as admin:
        wait_for(lambda: admin.get("/v2/workers").json()["items"], 60, "worker registered")
        created = admin.post("/v2/models", json={"name": "tiny", "local_path": str(model), "replicas": 1}).json()
        inst = wait_for(
            lambda: [
                i
                for i in admin.get("/v2/model-instances", params={"model_id": created["id"]}).json()["items"]
                if i["state"] == "running"
            ],
            300,
            "running instance",
        )[0]
        key = admin.post("/v2/api-keys", json={"name": "bench"}).json()["value"]
    return f"http://127.0.0.1:{inst['port']}/v1/completions", key


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="requests per path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp))
        try:
            cluster.start_server()
            cluster.start_worker("bench-worker", 42000)
            direct_url, key = _deploy(cluster, Path(tmp))
            with httpx.Client(timeout=60) as client:
                direct, direct_rps = _measure(client, direct_url, args.n, {})
                auth = {"authorization": f"Bearer {key}"}
                proxied, proxied_rps = _measure(client, f"{cluster.url}/v1/completions", args.n, auth)
        finally:
            cluster.shutdown()
    print(f"requests per path: {args.n} (sequential, max_tokens=1)")
    print(f"direct : p50 {_pct(direct, 50):7.2f} ms  p99 {_pct(direct, 99):7.2f} ms  {direct_rps:7.1f} req/s")
    print(f"proxied: p50 {_pct(proxied, 50):7.2f} ms  p99 {_pct(proxied, 99):7.2f} ms  {proxied_rps:7.1f} req/s")
    added50, added99 = _pct(proxied, 50) - _pct(direct, 50), _pct(proxied, 99) - _pct(direct, 99)
    print(f"added latency: p50 {added50:+.2f} ms  p99 {added99:+.2f} ms")
    print(f"throughput ratio (proxied / direct): {proxied_rps / direct_rps:.3f}")


if __name__ == "__main__":
    main()
