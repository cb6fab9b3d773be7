"""Metering overhead: proxied OpenAI requests with usage metering on and off, in the same server process.

Starts a server (gateway on, SQLite) and a stand-in engine that answers at once with usage (plain and
streamed), then alternates phases with the gateway's meter attached and detached, on the same warm
server. Prints p50/p99 latency and throughput per mode, the p50 difference and the throughput ratio
(metered / unmetered; the target is >= 0.95), and how many usage rows were written while metered.
Run: `.venv/bin/python benchmarks/metering_overhead.py [-n REQUESTS_PER_PHASE] [--phases N]`.
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI  # noqa: E402

from gpustack.core.tasks import TaskGroup  # noqa: E402
from gpustack.gateway.wiring import start_gateway  # noqa: E402
from tests.utils.openai_engine import UsageEngine, route_model  # noqa: E402
from tests.utils.server import run_server  # noqa: E402

PLAIN = {"model": "bench", "messages": [{"role": "user", "content": "hello"}]}
STREAM = {**PLAIN, "stream": True}


def _phase(client: httpx.Client, n: int, body: dict[str, Any]) -> tuple[list[float], float]:
    latencies = []
    start = time.perf_counter()
    for _ in range(n):
        t0 = time.perf_counter()
        client.post("/v1/chat/completions", json=body).raise_for_status()
        latencies.append(time.perf_counter() - t0)
    return latencies, n / (time.perf_counter() - start)


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


def _rows(admin: httpx.Client) -> int:
    return int(admin.get("/v2/usage").json()["summary"]["api_requests"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=300, help="requests per phase")
    parser.add_argument("--phases", type=int, default=6, help="phases per mode, alternating")
    args = parser.parse_args()
    captured: dict[str, Any] = {}

    def capture(app: FastAPI, _tasks: TaskGroup) -> None:
        captured["app"] = app

    with tempfile.TemporaryDirectory() as tmp, UsageEngine() as engine:
        db_url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        with run_server(Path(tmp) / "data", db_url, hooks=[capture, start_gateway]) as server:
            route_model(server, db_url, engine, "bench")
            key = server.admin().post("/v2/api-keys", json={"name": "bench"}).json()["value"]
            gateway = captured["app"].state
            while getattr(gateway, "gateway", None) is None:
                time.sleep(0.05)
            meter = gateway.gateway.meter
            results: dict[str, dict[str, list[float]]] = {
                m: {"lat": [], "rps": [], "plain": [], "stream": []} for m in ("on", "off")
            }
            headers = {"Authorization": f"Bearer {key}"}
            with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client, server.admin() as admin:
                _phase(client, 50, PLAIN)  # warm up connections, caches and the routing table
                time.sleep(1.5)  # the warm-up's rows written
                written_before = _rows(admin)
                for i in range(2 * args.phases):
                    mode = "on" if i % 2 == 0 else "off"
                    gateway.gateway.meter = meter if mode == "on" else None  # read once per request
                    started, count = time.perf_counter(), 0
                    for kind, body in (("plain", PLAIN), ("stream", STREAM)):
                        lat, _ = _phase(client, args.n // 2, body)
                        results[mode]["lat"] += lat
                        results[mode][kind] += lat
                        count += len(lat)
                    results[mode]["rps"].append(count / (time.perf_counter() - started))
                time.sleep(1.5)  # the writer's next batch
                written = _rows(admin) - written_before
    _report(results, args, written)


def _report(results: dict[str, dict[str, list[float]]], args: argparse.Namespace, written: int) -> None:
    on, off = results["on"], results["off"]
    # adjacent phases (on, then off) share the machine's load at that moment: their ratios' median
    pairs = [a / b for a, b in zip(on["rps"], off["rps"], strict=True)]
    print(f"requests per mode: {len(on['lat'])} (sequential, half streamed), {args.phases} phases each")
    for name, r in (("metering on ", on), ("metering off", off)):
        rps = statistics.median(r["rps"])
        print(f"{name}: p50 {_pct(r['lat'], 50):6.3f} ms  p99 {_pct(r['lat'], 99):6.3f} ms  {rps:7.1f} req/s")
    print(f"added p50 latency: {_pct(on['lat'], 50) - _pct(off['lat'], 50):+.3f} ms (plain "
          f"{_pct(on['plain'], 50) - _pct(off['plain'], 50):+.3f} ms, streamed "
          f"{_pct(on['stream'], 50) - _pct(off['stream'], 50):+.3f} ms)")  # fmt: skip
    print(f"throughput ratio (on / off), median of adjacent phases: {statistics.median(pairs):.3f}  "
          f"(target >= 0.95; per pair {' '.join(f'{p:.3f}' for p in pairs)})")  # fmt: skip
    overall = statistics.median(on["rps"]) / statistics.median(off["rps"])
    print(f"throughput ratio (on / off), median phase of each mode: {overall:.3f}")
    print(f"usage rows written while metered: {written} of {len(on['lat'])} metered requests")


if __name__ == "__main__":
    main()
