"""The main worker's side of a distributed instance: RPC servers ready before llama-box, ports taken from the
worker's range and recorded, a failed subordinate failing the instance, backends without a distributed mode."""

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from gpustack.schemas.instances import ModelInstancePublic
from gpustack.worker.backends.base import LaunchContext, LaunchSpec
from gpustack.worker.distributed import PartSpec
from gpustack.worker.distributed.main import MainPart
from gpustack.worker.distributed.parts import PartFailure
from gpustack.worker.ports import PortAllocator, is_bindable
from gpustack.worker.runtimes.process import ProcessRuntime


def _instance(**sub: Any) -> ModelInstancePublic:
    part = {"worker_id": 2, "worker_name": "b", "worker_ip": "10.0.0.2", "gpu_indexes": [0], **sub}
    return ModelInstancePublic.model_validate(
        {
            "id": 5, "name": "m-1", "model_id": 1, "worker_id": 1, "worker_ip": "10.0.0.1", "gpu_indexes": [0],
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "distributed_servers": [part],
        }
    )  # fmt: skip


CTX = LaunchContext(
    instance_id=5, instance_name="m-1", model_name="m", model_path="/m.gguf", host="127.0.0.1", port=40100,
    gpu_indexes=(0,), tensor_split=(4, 5), work_dir=Path("/tmp/unused"),
)  # fmt: skip


class Reports:
    def __init__(self) -> None:
        self.ports: list[list[int]] = []

    async def __call__(self, ports: list[int]) -> None:
        self.ports.append(ports)


async def test_llama_box_waits_for_every_rpc_server_then_uses_them(tmp_path: Path) -> None:
    current = {"row": _instance(state="initializing")}
    main = MainPart(ProcessRuntime(), PortAllocator(40100, 40110), tmp_path, lambda: current["row"], Reports(),
                    join_timeout=5)  # fmt: skip
    waiting = asyncio.ensure_future(main.prepare("llama-box", CTX))
    await asyncio.sleep(0.8)
    assert not waiting.done()  # the subordinate has not reported its RPC server yet
    current["row"] = _instance(state="running", ports=[40300])
    spec = await asyncio.wait_for(waiting, 5)
    argv = list(spec.argv)
    assert argv[argv.index("--rpc") + 1] == "10.0.0.2:40300" and argv[argv.index("--tensor-split") + 1] == "4,5"


async def test_a_subordinate_that_never_starts_is_named(tmp_path: Path) -> None:
    row = _instance(state="initializing")
    main = MainPart(ProcessRuntime(), PortAllocator(40100, 40110), tmp_path, lambda: row, Reports(), join_timeout=0.5)
    with pytest.raises(PartFailure, match="subordinate workers b did not start their part"):
        await main.prepare("llama-box", CTX)


async def test_sglang_takes_its_rendezvous_port_from_the_range_and_records_it(tmp_path: Path) -> None:
    reports = Reports()
    low = next(p for p in range(47300, 47390) if is_bindable(p))
    ports = PortAllocator(low, low + 5)
    main = MainPart(ProcessRuntime(), ports, tmp_path, lambda: _instance(), reports)
    spec = await main.prepare("sglang", CTX)
    assert reports.ports == [[low]] and list(spec.argv)[-2:] == ["--dist-init-addr", f"10.0.0.1:{low}"]
    assert ports.reserved == {low}
    await main.stop()
    assert reports.ports == [[low], []] and ports.reserved == frozenset()  # subordinates wait for new ports


async def test_a_failed_subordinate_or_process_fails_the_instance(tmp_path: Path) -> None:
    row = {"row": _instance(state="running")}
    main = MainPart(ProcessRuntime(), PortAllocator(40100, 40110), tmp_path, lambda: row["row"], Reports())
    assert await main.check() is None
    row["row"] = _instance(state="error", state_message="rpc server exited with code 1")
    assert await main.check() == "subordinate worker b failed: rpc server exited with code 1"
    row["row"] = _instance(state="running")
    argv = (sys.executable, "-c", "import time, sys; time.sleep(0.3); sys.exit(3)")
    quick = PartSpec(LaunchSpec(argv=argv, env={}, port=0, name="short-x", work_dir=tmp_path), role="ray-head")
    await main.group.start([quick])
    for _ in range(50):
        if why := await main.check():
            break
        await asyncio.sleep(0.1)
    assert why == "short-x exited with code 3"
    await main.stop()


async def test_backends_without_a_distributed_mode_are_refused(tmp_path: Path) -> None:
    main = MainPart(ProcessRuntime(), PortAllocator(40100, 40110), tmp_path, lambda: _instance(), Reports())
    with pytest.raises(PartFailure, match="the vox-box backend cannot run across workers"):
        await main.prepare("vox-box", CTX)
