"""Hardware check on an NVIDIA machine: detection, VRAM claim vs real use, full offload, proxy speed, restart.

Starts a server with its embedded worker, writes a realistic-size GGUF (hidden 2048, 22 blocks, F16 by
default), deploys it with every layer on GPU 0 and prints: the GPUs the worker reports vs nvidia-smi, the
scheduler's claim vs the engine's measured GPU memory after serving, the offload the engine logged,
proxied vs direct p50 latency and tokens/s, and the time to running again after the engine is SIGKILLed.
Exits 1 when the claim is below the measured use or the offload is incomplete, 2 when no GPU is found.
Run: `.venv/bin/python benchmarks/gpu_check.py` (needs the CUDA build of llama-cpp-python: `make engine`).
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402
from tests.utils.tiny_gguf import write_tiny_gguf  # noqa: E402

MiB = 2**20
_OFFLOAD_RE = re.compile(r"offloaded (\d+)/(\d+) layers to GPU")


@dataclass(frozen=True)
class SmiGpu:
    index: int
    name: str
    total_mib: int
    used_mib: int


def parse_smi_gpus(text: str) -> list[SmiGpu]:
    """`nvidia-smi --query-gpu=index,name,memory.total,memory.used --format=csv,noheader,nounits`."""
    gpus = []
    for line in text.strip().splitlines():
        index, name, total, used = (part.strip() for part in line.split(","))
        gpus.append(SmiGpu(int(index), name, int(total), int(used)))
    return gpus


def parse_smi_apps(text: str) -> dict[int, int]:
    """`nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits` -> {pid: MiB}."""
    apps: dict[int, int] = {}
    for line in text.strip().splitlines():
        pid, used = (part.strip() for part in line.split(","))
        if used.isdigit():
            apps[int(pid)] = apps.get(int(pid), 0) + int(used)
    return apps


def parse_offload(log: str) -> tuple[int, int] | None:
    """The last "offloaded N/M layers to GPU" llama.cpp logged, or None."""
    found = _OFFLOAD_RE.findall(log)
    return (int(found[-1][0]), int(found[-1][1])) if found else None


def verdict(claim_mib: float, measured_mib: float, offload: tuple[int, int] | None) -> list[str]:
    """What failed: a claim below the measured use, an offload that left layers on the CPU."""
    problems = []
    if claim_mib < measured_mib:
        problems.append(f"claim {claim_mib:.0f} MiB is below the measured {measured_mib:.0f} MiB")
    if offload is None:
        problems.append("the engine log shows no offload line")
    elif offload[0] < offload[1]:
        problems.append(f"only {offload[0]}/{offload[1]} layers were offloaded")
    return problems


def _smi(query: str) -> str:
    return subprocess.run(
        ["nvidia-smi", f"--query-{query}", "--format=csv,noheader,nounits"], capture_output=True, text=True, check=True
    ).stdout


def _instance(admin: httpx.Client, model_id: int, state: str = "running") -> dict[str, Any]:
    def running() -> list[dict[str, Any]]:
        items = admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]
        return [i for i in items if i["state"] == state]

    return wait_for(running, 900, f"a {state} instance")[0]


def _timed(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str], n: int
) -> tuple[float, float]:
    """p50 latency (ms) and generated tokens per second over n sequential requests."""
    for _ in range(2):  # warm up the connection and the engine
        client.post(url, json=body, headers=headers).raise_for_status()
    latencies, tokens = [], 0
    for _ in range(n):
        t0 = time.perf_counter()
        response = client.post(url, json=body, headers=headers)
        response.raise_for_status()
        latencies.append(time.perf_counter() - t0)
        tokens += response.json()["usage"]["completion_tokens"]
    return statistics.median(latencies) * 1000, tokens / sum(latencies)


def _detection(admin: httpx.Client) -> None:
    worker = admin.get("/v2/workers").json()["items"][0]
    print("detection (worker report vs nvidia-smi):")
    smi = {g.index: g for g in parse_smi_gpus(_smi("gpu=index,name,memory.total,memory.used"))}
    for gpu in worker["status"]["gpu_devices"]:
        ref = smi.get(gpu["index"])
        print(
            f"  GPU {gpu['index']} {gpu['name']}: total {gpu['memory_total'] / MiB:.0f} MiB, "
            f"used {gpu['memory_used'] / MiB:.0f} MiB, reserved {gpu.get('memory_reserved', 0) / MiB:.0f} MiB"
            + (f" | nvidia-smi: {ref.name}, total {ref.total_mib} MiB, used {ref.used_mib} MiB" if ref else "")
        )
    print(f"  engines: {worker['status'].get('backends')}")


def _check(args: argparse.Namespace, root: Path) -> int:
    model_path = write_tiny_gguf(
        root / "check.gguf", layers=args.layers, hidden=args.hidden, heads=args.heads, kv_heads=args.kv_heads,
        ffn=args.ffn, ctx=args.ctx, f16=True,
    )  # fmt: skip
    print(f"model: {model_path.stat().st_size / MiB:.0f} MiB, {args.layers} blocks, hidden {args.hidden}, F16")
    cluster = Cluster(root)
    try:
        cluster.start_server(embedded_worker=True)
        with cluster.admin() as admin, httpx.Client(timeout=300) as client:
            wait_for(lambda: admin.get("/v2/workers").json()["items"], 120, "the embedded worker")
            _detection(admin)
            spec = {"name": "check", "local_path": str(model_path)}
            model = admin.post("/v2/models", json=spec).json()
            inst = _instance(admin, model["id"])
            claim = inst["computed_resource_claim"]
            key = admin.post("/v2/api-keys", json={"name": "gpu-check"}).json()["value"]
            body = {"model": "check", "prompt": "hello", "max_tokens": args.max_tokens, "temperature": 0}
            direct = _timed(client, f"http://127.0.0.1:{inst['port']}/v1/completions", body, {}, args.requests)
            auth = {"authorization": f"Bearer {key}"}
            proxied = _timed(client, f"{cluster.url}/v1/completions", body, auth, args.requests)
            measured = parse_smi_apps(_smi("compute-apps=pid,used_memory")).get(inst["pid"], 0)
            log = admin.get(f"/v2/model-instances/{inst['id']}/logs").text
            offload = parse_offload(log)
            restart = _restart_seconds(admin, model["id"], inst["pid"])
    finally:
        cluster.shutdown()
    claim_mib = sum(claim["vram"].values()) / MiB
    print(f"claim: {claim_mib:.0f} MiB on GPU {list(claim['vram'])}, terms {claim.get('terms')}")
    print(
        f"measured after {2 * args.requests} requests: {measured} MiB (claim - measured: {claim_mib - measured:+.0f})"
    )
    print(f"offload reported by the engine: {offload}; claim {claim['offload_layers']}/{claim['total_layers']}")
    print(f"direct : p50 {direct[0]:.1f} ms, {direct[1]:.0f} tok/s")
    print(f"proxied: p50 {proxied[0]:.1f} ms, {proxied[1]:.0f} tok/s (ratio {proxied[1] / direct[1]:.3f})")
    print(f"running again {restart:.1f} s after SIGKILL")
    problems = verdict(claim_mib, measured, offload)
    for problem in problems:
        print(f"FAIL: {problem}")
    print("PASS" if not problems else "")
    return 1 if problems else 0


def _restart_seconds(admin: httpx.Client, model_id: int, pid: int) -> float:
    os.kill(pid, signal.SIGKILL)
    started = time.monotonic()
    wait_for(lambda: [i for i in admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]
                      if i["state"] == "running" and i["pid"] != pid], 300, "the restarted instance")  # fmt: skip
    return time.monotonic() - started


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--heads", type=int, default=32)
    parser.add_argument("--kv-heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=5632)
    parser.add_argument("--ctx", type=int, default=2048, help="the model's training context")
    parser.add_argument("--requests", type=int, default=20, help="requests per path (direct, proxied)")
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--work-dir", type=Path, help="keep the model and logs here (default: a temp dir)")
    args = parser.parse_args(argv)
    if min(args.hidden, args.layers, args.heads, args.kv_heads, args.ffn, args.ctx, args.requests) <= 0:
        parser.error("sizes and counts must be positive")
    if args.hidden % args.heads or args.heads % args.kv_heads:
        parser.error("--hidden must be a multiple of --heads, and --heads of --kv-heads")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("nvidia-smi") is None or subprocess.run(["nvidia-smi", "-L"], capture_output=True).returncode:
        print("no NVIDIA GPU answers nvidia-smi here: nothing to check", file=sys.stderr)
        return 2
    if args.work_dir:
        args.work_dir.mkdir(parents=True, exist_ok=True)
        return _check(args, args.work_dir)
    with tempfile.TemporaryDirectory() as tmp:
        return _check(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
