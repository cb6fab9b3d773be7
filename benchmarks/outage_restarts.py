"""Engines restarted by a long server outage (target: 0).

Starts a server and one worker as processes on loopback, deploys the generated tiny GGUF on the CPU engine
(llama.cpp), kills the server, keeps it down, starts it again, then watches the instances and sends chat
requests for a while. Time is compressed: every interval of the default configuration (heartbeat 10 s,
grace 45 s, reschedule after 120 s) is divided by --compress, and so is the outage, so the run simulates
an outage of --outage seconds at the default settings. Prints the engines restarted, the instances that
left `running`, and the chat requests answered after the restart.
Run: `.venv/bin/python benchmarks/outage_restarts.py [--outage 200] [--compress 20] [--replicas 2]`.
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.cluster import Cluster, wait_for  # noqa: E402
from tests.utils.tiny_gguf import write_tiny_gguf  # noqa: E402
from tests.worker.agent.agent_harness import pid_alive  # noqa: E402

DEFAULTS = {"HEARTBEAT_INTERVAL": 10.0, "HEARTBEAT_GRACE": 45.0, "RESCHEDULE_AFTER": 120.0}


def _env(compress: float) -> dict[str, str]:
    return {f"GPUSTACK_{name}_SECONDS": f"{value / compress:g}" for name, value in DEFAULTS.items()}


def _instances(admin: httpx.Client, model_id: int) -> dict[int, dict[str, Any]]:
    return {i["id"]: i for i in admin.get("/v2/model-instances", params={"model_id": model_id}).json()["items"]}


def _deploy(cluster: Cluster, root: Path, replicas: int) -> tuple[int, dict[int, dict[str, Any]], str]:
    path = write_tiny_gguf(root / "tiny.gguf")
    with cluster.admin() as admin:
        wait_for(lambda: admin.get("/v2/workers").json()["items"], 60, "worker registered")
        body = {"name": "tiny", "local_path": str(path), "replicas": replicas}
        model_id = admin.post("/v2/models", json=body).json()["id"]

        def running() -> dict[int, dict[str, Any]] | None:
            items = {k: v for k, v in _instances(admin, model_id).items() if v["state"] == "running"}
            return items if len(items) == replicas else None

        before = wait_for(running, 180, "running replicas")
        key = admin.post("/v2/api-keys", json={"name": "bench"}).json()["value"]
    return model_id, before, key


def _chat_ok(client: httpx.Client, url: str, key: str) -> bool:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}
    try:
        return client.post(url, json=body, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    except httpx.HTTPError:
        return False


def _observe(cluster: Cluster, model_id: int, key: str, seconds: float) -> tuple[set[int], int, int]:
    """(ids of instances seen outside `running`, chat requests answered, chat requests sent)."""
    left, ok, sent = set(), 0, 0
    deadline = time.monotonic() + seconds
    with cluster.admin() as admin, httpx.Client(timeout=30) as client:
        while time.monotonic() < deadline:
            left |= {i for i, inst in _instances(admin, model_id).items() if inst["state"] != "running"}
            ok += _chat_ok(client, f"{cluster.url}/v1/chat/completions", key)
            sent += 1
            time.sleep(0.2)
        return left, ok, sent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outage", type=float, default=200.0, help="outage length at the default settings (s)")
    parser.add_argument("--compress", type=float, default=20.0, help="divide every interval by this")
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    grace, reschedule = DEFAULTS["HEARTBEAT_GRACE"], DEFAULTS["RESCHEDULE_AFTER"]
    with tempfile.TemporaryDirectory() as tmp:
        cluster = Cluster(Path(tmp), env=_env(args.compress))
        try:
            server = cluster.start_server()
            cluster.start_worker("bench-w", 41600)
            model_id, before, key = _deploy(cluster, Path(tmp), args.replicas)
            server.kill()
            time.sleep(args.outage / args.compress)
            cluster.respawn("server")
            left, ok, sent = _observe(cluster, model_id, key, 2 * (grace + reschedule) / args.compress + 3)
            with cluster.admin() as admin:
                after = _instances(admin, model_id)
            alive = {i: pid_alive(inst["pid"]) for i, inst in before.items()}  # the original engine processes
        finally:
            cluster.shutdown()
    restarted = [i for i, inst in before.items() if i not in after or after[i]["pid"] != inst["pid"] or not alive[i]]
    print(
        f"simulated outage: {args.outage:.0f}s at the default settings (heartbeat 10s, grace {grace:.0f}s, "
        f"reschedule after {reschedule:.0f}s), compressed {args.compress:g}x to {args.outage / args.compress:.1f}s"
    )
    print(f"engines restarted: {len(restarted)} of {len(before)} (target 0)")
    print(f"instances that left running after the restart: {len(left)} of {len(before)}")
    print(f"chat requests answered after the restart: {ok}/{sent} (ratio {ok / max(sent, 1):.2f}, target 1.00)")


if __name__ == "__main__":
    main()
