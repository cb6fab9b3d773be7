"""A real Ray cluster on loopback: the main worker's Ray head and a subordinate's `ray start --address`,
built by the distributed launch specs and run by the process runtime, form one cluster of two nodes."""

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import psutil
import pytest

from gpustack.worker.backends.base import LaunchContext
from gpustack.worker.distributed import Node, Topology
from gpustack.worker.distributed.parts import PartGroup
from gpustack.worker.distributed.ray import (
    RayLimits,
    RayPorts,
    alive_nodes,
    ray_head_part,
    ray_worker_part,
    wait_for_nodes,
)
from gpustack.worker.runtimes.process import ProcessRuntime

FAST_HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}  # test timing
LIMITS = RayLimits(num_cpus=1, object_store_bytes=80 * 2**20)  # temp_root: the test's own directory
NODES_SCRIPT = """
import json, sys, ray
ray.init(address=sys.argv[1], log_to_driver=False, logging_level="ERROR")
print(json.dumps([[n["Alive"], n["NodeManagerPort"]] for n in ray.nodes()]))
"""


def free_ports(n: int) -> list[int]:
    """n distinct ports free right now (bound together so none repeats)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@pytest.fixture
def root() -> Iterator[Path]:
    """A short, unique directory (Ray's unix socket paths must stay under 107 bytes); afterwards every
    process still running from it is killed by pid and the directory removed."""
    path = Path(tempfile.mkdtemp(prefix="gsr", dir="/tmp"))
    yield path
    leftovers = _processes_under(path)
    for proc in leftovers:
        proc.send_signal(signal.SIGKILL)
    shutil.rmtree(path, ignore_errors=True)
    assert leftovers == [], f"Ray processes outlived their part: {[p.cmdline() for p in leftovers]}"


def _processes_under(path: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(str(path) in arg for arg in proc.info["cmdline"] or []):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _ctx(root: Path, name: str) -> LaunchContext:
    return LaunchContext(
        instance_id=1, instance_name=f"m-{name}", model_name="m", model_path="/m", host="127.0.0.1", port=0,
        work_dir=root / name, env=dict(FAST_HEALTH),
    )  # fmt: skip


def _nodes(address: str) -> list[list[object]]:
    out = subprocess.run(
        [sys.executable, "-c", NODES_SCRIPT, address], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_main_and_subordinate_form_one_ray_cluster(root: Path) -> None:
    ports = free_ports(RayPorts.count(head=True) + RayPorts.count(head=False))
    head_ports = RayPorts.from_list(ports[: RayPorts.count(head=True)], head=True)
    sub_ports = RayPorts.from_list(ports[RayPorts.count(head=True) :], head=False)
    topo = Topology((Node(1, "127.0.0.1", (), head_ports.as_list()), Node(2, "127.0.0.1", (), sub_ports.as_list())))
    runtime = ProcessRuntime()
    main, sub = PartGroup(runtime, root / "logs-main"), PartGroup(runtime, root / "logs-sub")
    try:
        limits = dataclasses.replace(LIMITS, temp_root=root)
        await main.start([ray_head_part(_ctx(root, "main"), topo, head_ports, limits)])
        await sub.start([ray_worker_part(_ctx(root, "sub"), topo, 1, sub_ports, limits)])
        address = f"127.0.0.1:{head_ports.gcs}"
        await wait_for_nodes(address, 2, timeout=90)  # what the main worker waits for before vLLM starts
        nodes = await asyncio.to_thread(_nodes, address)
        assert sorted(nodes, key=str) == sorted([[True, head_ports.node[0]], [True, sub_ports.node[0]]], key=str), (
            nodes
        )  # both nodes, on the node manager ports taken from the workers' port ranges
        assert await main.check() is None and await sub.check() is None

        os.kill(sub.pids[0], signal.SIGKILL)  # the subordinate's `ray start` dies: its part reports it
        for _ in range(50):
            if (why := await sub.check()) is not None:
                break
            await asyncio.sleep(0.1)
        assert why == "m-sub-ray-worker-1 exited with code -9"
        await sub.stop(timeout=5)  # a failed part is stopped whole (its raylet too)
        for _ in range(60):  # and the head's cluster loses the node
            if await alive_nodes(address, timeout=20) == 1:
                break
            await asyncio.sleep(1)
        else:
            pytest.fail("the head still counts the stopped subordinate as alive")
    finally:
        await sub.stop(timeout=5)
        await main.stop(timeout=5)
    assert await alive_nodes(address, timeout=20) == 0  # the cluster is gone with its parts
