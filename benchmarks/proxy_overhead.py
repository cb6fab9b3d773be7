"""Proxy overhead: the same requests direct to the engine, and through server -> worker -> engine with usage
metering on and off in the same server process.

Starts a server (`gpustack start` run by this script, with a metering switch: SIGUSR1 detaches the gateway's
meter, SIGUSR2 attaches it again) and one worker as processes on loopback, deploys a generated tiny GGUF on the
CPU engine, then runs rounds of three phases in rotating order (direct, proxied metered, proxied unmetered),
each phase half plain and half streamed completions (max_tokens=1). Prints p50/p99 and throughput per path, what
the proxy adds, what metering adds (p50 delta and ratio, overall and the median of each round's delta), checks
that the server metered exactly the metered phases' requests, and profiles the metering hook in this process
(its CPU time per request, metered minus unmetered, and a cProfile of its functions).
Run: `.venv/bin/python benchmarks/proxy_overhead.py [-n REQUESTS_PER_PHASE] [--rounds N]`.
"""

import argparse
import asyncio
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.metering_hook import profile_hook  # noqa: E402
from tests.e2e.cluster import Cluster, wait_for  # noqa: E402
from tests.utils.tiny_gguf import write_tiny_gguf  # noqa: E402

PLAIN = {"model": "tiny", "prompt": "hello", "max_tokens": 1, "temperature": 0}
STREAM = {**PLAIN, "stream": True}
MODES = ("direct", "metered", "unmetered")


def _switch(app: Any, _tasks: Any) -> None:
    """The server side of the metering switch (a start hook of the server this script runs)."""
    kept: dict[str, Any] = {}

    def off() -> None:
        gateway = app.state.gateway
        kept.setdefault("meter", gateway.meter)
        gateway.meter = None

    def on() -> None:
        app.state.gateway.meter = kept.get("meter", app.state.gateway.meter)

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, off)
    loop.add_signal_handler(signal.SIGUSR2, on)


def _serve(argv: list[str]) -> int:
    import gpustack.server.wiring as wiring
    from gpustack import cli

    hooks = wiring.server_hooks
    wiring.server_hooks = lambda: [*hooks(), _switch]
    return cli.main(["start", *argv])


def _phase(client: httpx.Client, url: str, n: int, headers: dict[str, str]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"plain": [], "stream": []}
    for _ in range(2):  # warm up after a switch
        client.post(url, json=PLAIN, headers=headers).raise_for_status()
    for i in range(n):
        kind, body = ("plain", PLAIN) if i % 2 == 0 else ("stream", STREAM)
        t0 = time.perf_counter()
        client.post(url, json=body, headers=headers).raise_for_status()
        out[kind].append(time.perf_counter() - t0)
    return out


def _pct(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000


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


def _metered_count(cluster: Cluster) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    with cluster.admin() as admin:
        text = admin.get("/metrics").text
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    return sum(s.value for s in samples if s.name == "gpustack_openai_requests_total" and "/v1/" in s.labels["route"])


def _rounds(cluster: Cluster, args: argparse.Namespace) -> tuple[dict[str, dict[str, list[float]]], list[float], int]:
    direct_url, key = _deploy(cluster, cluster.root)
    server = next(p for p in cluster.procs if p.name == "server").popen.pid
    results = {mode: {"plain": [], "stream": [], "rps": []} for mode in MODES}
    deltas, metered_sent = [], 0
    auth = {"authorization": f"Bearer {key}"}
    with httpx.Client(timeout=60) as client:
        for r in range(args.rounds):
            p50 = {}
            for mode in MODES[r % 3 :] + MODES[: r % 3]:
                if mode != "direct":
                    os.kill(server, signal.SIGUSR2 if mode == "metered" else signal.SIGUSR1)
                    time.sleep(0.05)
                url, headers = (direct_url, {}) if mode == "direct" else (f"{cluster.url}/v1/completions", auth)
                started = time.perf_counter()
                got = _phase(client, url, args.n, headers)
                results[mode]["rps"].append(args.n / (time.perf_counter() - started))
                for kind in ("plain", "stream"):
                    results[mode][kind] += got[kind]
                p50[mode] = statistics.median(got["plain"] + got["stream"])
                metered_sent += (args.n + 2) if mode == "metered" else 0
            deltas.append((p50["metered"] - p50["unmetered"]) * 1000)
    time.sleep(2.5)  # the writer's next batch updates the request counters
    counted = _metered_count(cluster)
    return results, deltas, int(counted) - metered_sent


def _report(results: dict[str, dict[str, list[float]]], deltas: list[float], extra: int, n: int) -> None:
    print(f"requests per phase: {n} (sequential, half streamed, max_tokens=1), {len(deltas)} rounds")
    for mode in MODES:
        lat = results[mode]["plain"] + results[mode]["stream"]
        rps = statistics.median(results[mode]["rps"])
        plain, stream = _pct(results[mode]["plain"], 50), _pct(results[mode]["stream"], 50)
        print(f"{mode:9}: p50 {_pct(lat, 50):7.3f} ms  p99 {_pct(lat, 99):7.3f} ms  {rps:7.1f} req/s  "
              f"(plain p50 {plain:.3f}, streamed {stream:.3f})")  # fmt: skip
    d, m, u = (results[k]["plain"] + results[k]["stream"] for k in MODES)
    print(f"added by the proxy (unmetered - direct): p50 {_pct(u, 50) - _pct(d, 50):+.3f} ms  "
          f"p99 {_pct(u, 99) - _pct(d, 99):+.3f} ms")  # fmt: skip
    for kind in ("plain", "stream"):
        on, off = results["metered"][kind], results["unmetered"][kind]
        print(f"added by metering, {kind:6}: p50 {_pct(on, 50) - _pct(off, 50):+.3f} ms  "
              f"(ratio metered/unmetered {_pct(on, 50) / _pct(off, 50):.4f})")  # fmt: skip
    print(f"added by metering, all   : p50 {_pct(m, 50) - _pct(u, 50):+.3f} ms (ratio {_pct(m, 50) / _pct(u, 50):.4f});"
          f" median of the rounds' p50 deltas {statistics.median(deltas):+.3f} ms (target < 0.1 ms)")  # fmt: skip
    ratio = statistics.median(results["metered"]["rps"]) / statistics.median(results["unmetered"]["rps"])
    print(
        f"throughput ratio metered/unmetered: {ratio:.3f}; proxied/direct: "
        f"{statistics.median(results['unmetered']['rps']) / statistics.median(results['direct']['rps']):.3f}"
    )
    print(f"requests the server metered beyond the metered phases: {extra} (0: the switch worked)")


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        raise SystemExit(_serve(sys.argv[2:]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100, help="requests per phase")
    parser.add_argument("--rounds", type=int, default=8, help="rounds of the three phases")
    parser.add_argument("--hook-requests", type=int, default=20_000, help="requests through the profiled hook")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), server_command=(sys.executable, str(Path(__file__).resolve()), "--serve"))
        try:
            cluster.start_server()
            cluster.start_worker("bench-worker", 47150)
            results, deltas, extra = _rounds(cluster, args)
        finally:
            cluster.shutdown()
    _report(results, deltas, extra, args.n)
    profile_hook(args.hook_requests)


if __name__ == "__main__":
    main()
