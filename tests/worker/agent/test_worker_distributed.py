"""Two real workers run one distributed vLLM instance: the main worker's Ray head, the subordinate's
`ray start --address` joining it, both reported on the instance; the main then launches vLLM over the
cluster (not installed here, so it fails), and the whole instance stops and restarts together."""

import random
import secrets
import shutil
from pathlib import Path

import psutil
from agent_harness import FAST, Cluster, cluster, run_agent, wait_for

from gpustack.config import Config
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.worker.distributed.ray import TEMP_ROOT
from tests.utils.server import free_port


def _second_worker(c: Cluster, tmp: Path, low: int) -> Config:
    """A second worker on the same server, its instance ports above the first worker's (42000-48000)."""
    return Config(
        data_dir=tmp / "worker-2", token=c.server.token, server_url=c.server.url, host="127.0.0.1",
        worker_name=f"w2-{secrets.token_hex(3)}", worker_port=free_port(), instance_port_range=f"{low}-{low + 19}",
        heartbeat_interval_seconds=1.0, resync_seconds=300.0, gpu_runtime_overhead="1GiB",
    )  # fmt: skip


def _place(c: Cluster, model: dict, sub_id: int, sub_name: str) -> int:
    async def insert() -> int:
        async with c.server_app.state.db.session() as session:
            part = {"worker_id": sub_id, "worker_name": sub_name, "worker_ip": "127.0.0.1", "gpu_indexes": []}
            inst = ModelInstance(
                name=f"{model['name']}-{secrets.token_hex(3)}", model_id=model["id"], model_name=model["name"],
                worker_id=c.worker_id, worker_name=c.agent.name, worker_ip="127.0.0.1",
                state=InstanceState.SCHEDULED, distributed_servers=[part],
            )  # fmt: skip
            session.add(inst)
            await session.commit()
            assert inst.id is not None
            return inst.id

    return int(c.run_on_server(insert()))


def _ray_processes(instance_id: int) -> list[psutil.Process]:
    marks = (str(TEMP_ROOT / f"i{instance_id}-head"), str(TEMP_ROOT / f"i{instance_id}-node1"))
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(mark in arg for arg in proc.info["cmdline"] or [] for mark in marks):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _followed(c: Cluster, instance_id: int) -> bool:
    parts = [e["distributed_servers"]["subordinate_workers"][0] for e in c.recorder.events if e["id"] == instance_id]
    texts = [p.get("state_message") or "" for p in parts if p.get("state") == "error"]
    return any("restarting together with it" in t or "joining it again" in t or "exited" in t for t in texts)


def test_two_workers_form_the_ray_cluster_of_a_distributed_vllm_instance(tmp_path: Path) -> None:
    low = random.randrange(48000, 52000, 20)
    with cluster(tmp_path) as c, run_agent(_second_worker(c, tmp_path, low), c.server.url, FAST) as (sub, _loop):
        sub_id = sub.client.worker_id
        assert sub_id is not None
        model = c.create_model(backend="vllm", replicas=0)
        instance_id = _place(c, model, sub_id, sub.name)
        try:
            failed = wait_for(
                lambda: (i := c.instance(instance_id)) and "'vllm' is not installed" in (i["state_message"] or "")
                and i, 180, "the main worker to launch vLLM over the joined Ray cluster",
            )  # fmt: skip
            assert failed["state"] == "error"
            seen = [e for e in c.recorder.events if e["id"] == instance_id]
            main_ports = [e["ports"] for e in seen if e.get("ports")]
            assert main_ports and len(main_ports[0]) == 11  # GCS + node ports + Ray worker ports, from range
            parts = [e["distributed_servers"]["subordinate_workers"][0] for e in seen]
            running = [p for p in parts if p.get("state") == "running"]
            assert running and len(running[0]["ports"]) == 10 and running[0]["pid"]
            assert all(low <= port <= low + 19 for port in running[0]["ports"])  # from the worker's range
            # the main's failure stopped its Ray head: the subordinate restarts its part with the instance
            wait_for(lambda: _followed(c, instance_id), 60, "the subordinate to restart with the main")
        finally:
            with c.server.admin() as admin:
                assert admin.delete(f"/v2/model-instances/{instance_id}").status_code == 204
        wait_for(lambda: not _ray_processes(instance_id), 60, "every Ray process of the instance to stop")
        for role in ("head", "node1"):  # Ray's session directories of this instance
            shutil.rmtree(TEMP_ROOT / f"i{instance_id}-{role}", ignore_errors=True)
