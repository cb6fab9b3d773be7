"""Distributed placements through the scheduling controller on a real database: recorded subordinates in
GPUStack's shape, the refusal when distributed inference is off, the claims other placements see, and a
subordinate worker's loss sending the whole instance back to pending."""

import math
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from gpustack.scheduler.estimate.safetensors import estimate_model_dir
from gpustack.schemas.common import utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance, ModelInstancePublic
from gpustack.schemas.models import BackendEnum, Model, SourceEnum
from gpustack.schemas.workers import CPUInfo, GPUDevice, MemoryInfo, Worker, WorkerState, WorkerStatus
from gpustack.server.controllers.models import reconcile_models
from gpustack.server.controllers.scheduling import SchedulingController, load_cluster
from gpustack.server.controllers.snapshots import worker_snapshots
from gpustack.server.controllers.workers import reconcile_workers
from gpustack.server.db import Database
from gpustack.server.services.workers import delete_worker
from tests.scheduler._safetensors import HFShape, write_model_dir
from tests.utils.openapi_contract import violations

GiB = 1 << 30
SMALL = HFShape(hidden=2048, layers=16, heads=16, kv_heads=4, ffn=8192, vocab=32000, max_context=4096)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("hf") / "small"
    write_model_dir(directory, SMALL)
    return directory


@pytest.fixture(scope="module")
def half_gpu(model_dir: Path) -> int:
    """A GPU size where 0.9 of one card does not hold the model but 0.9 of two cards do."""
    need = estimate_model_dir(model_dir, category="llm").full_gpu_bytes
    return math.ceil(need / 0.9 / 2 * 1.1)


async def add_worker(db: Database, name: str, gpus: list[int], ip: str) -> int:
    status = WorkerStatus(
        cpu=CPUInfo(total=8),
        memory=MemoryInfo(total=64 * GiB),
        gpu_devices=[
            GPUDevice(index=i, name="Simulated GPU", uuid=f"{name}-{i}", memory_total=size, simulated=True)
            for i, size in enumerate(gpus)
        ],
        simulated_gpus=True,
    )
    async with db.session() as session:
        worker = Worker(name=name, ip=ip, port=10150, state=WorkerState.READY, status=status.model_dump(mode="json"))
        session.add(worker)
        await session.commit()
        return worker.id  # type: ignore[return-value]


async def add_model(db: Database, name: str, path: Path, *, distributed: bool) -> int:
    async with db.session() as session:
        model = Model(
            name=name,
            source=SourceEnum.LOCAL_PATH,
            local_path=str(path),
            replicas=1,
            backend=BackendEnum.VLLM,
            distributed_inference_across_workers=distributed,
        )
        session.add(model)
        await session.commit()
        model_id = model.id
    await reconcile_models(db)
    return model_id  # type: ignore[return-value]


async def only_instance(db: Database, model_id: int) -> ModelInstance:
    async with db.session() as session:
        stmt = select(ModelInstance).where(ModelInstance.model_id == model_id).order_by(col(ModelInstance.id))
        [inst] = (await session.execute(stmt)).scalars().all()
        return inst


async def test_a_model_needing_two_workers_is_placed_on_both(db: Database, model_dir: Path, half_gpu: int) -> None:
    main = await add_worker(db, "d-main", [half_gpu], "10.0.0.1")
    sub = await add_worker(db, "d-sub", [half_gpu], "10.0.0.2")
    mid = await add_model(db, "across", model_dir, distributed=True)

    await SchedulingController(db).reconcile()

    inst = await only_instance(db, mid)
    assert inst.state == InstanceState.SCHEDULED, inst.state_message
    assert (inst.worker_id, inst.gpu_indexes) == (main, [0])
    [part] = inst.distributed_servers
    assert (part["worker_id"], part["worker_name"], part["worker_ip"]) == (sub, "d-sub", "10.0.0.2")
    assert part["gpu_indexes"] == [0] and part["total_gpus"] == 1 and part["ports"] == []
    assert part["computed_resource_claim"]["vram"] == {"0": int(0.9 * half_gpu)}
    public = ModelInstancePublic.model_validate(inst, from_attributes=True).model_dump(mode="json")
    assert violations({"$ref": "#/components/schemas/ModelInstancePublic"}, public) == []
    assert public["distributed_servers"]["subordinate_workers"][0]["worker_id"] == sub

    async with db.session() as session:  # the subordinate's GPU counts as claimed, and both joined Ray
        cluster = await load_cluster(session)
    by_name = {w.name: w for w in cluster.snapshots}
    assert by_name["d-sub"].gpus[0].memory_claimed == int(0.9 * half_gpu)
    assert by_name["d-main"].in_ray_cluster and by_name["d-sub"].in_ray_cluster

    async with db.session() as session:  # removing a subordinate sends the whole instance back to pending
        await delete_worker(session=session, worker_id=sub)
    inst = await only_instance(db, mid)
    assert (inst.state, inst.worker_id, inst.distributed_servers) == (InstanceState.PENDING, None, [])
    assert inst.state_message == "worker 'd-sub' was removed"


async def test_without_distributed_inference_the_instance_says_it_fits_across_two(
    db: Database, model_dir: Path, half_gpu: int
) -> None:
    await add_worker(db, "n-a", [half_gpu], "10.0.0.1")
    await add_worker(db, "n-b", [half_gpu], "10.0.0.2")
    mid = await add_model(db, "not-across", model_dir, distributed=False)

    await SchedulingController(db).reconcile()

    inst = await only_instance(db, mid)
    assert inst.state == InstanceState.PENDING and inst.distributed_servers == []
    assert "*: fits across 2 workers (n-a, n-b); enable distributed inference across workers" in (
        inst.state_message or ""
    )


def test_sglang_parts_claim_but_do_not_join_a_ray_cluster() -> None:
    worker_a = Worker(id=1, name="a", ip="1", state=WorkerState.READY, status={})
    worker_b = Worker(id=2, name="b", ip="2", state=WorkerState.READY, status={})
    sub = {"worker_id": 2, "computed_resource_claim": {"vram": {"0": 5}, "ram": 7}}
    inst = ModelInstance(id=1, name="x", model_id=9, worker_id=1, distributed_servers=[sub])
    assert [w.in_ray_cluster for w in worker_snapshots([worker_a, worker_b], [inst], frozenset())] == [False, False]
    snaps = worker_snapshots([worker_a, worker_b], [inst], frozenset({9}))
    assert [w.in_ray_cluster for w in snaps] == [True, True]
    assert snaps[1].memory_claimed == 7


async def test_a_silent_subordinate_makes_the_instance_unreachable_then_rescheduled(
    db: Database, model_dir: Path, half_gpu: int
) -> None:
    await add_worker(db, "s-main", [half_gpu], "10.0.0.1")
    sub = await add_worker(db, "s-sub", [half_gpu], "10.0.0.2")
    mid = await add_model(db, "silent-sub", model_dir, distributed=True)
    await SchedulingController(db).reconcile()
    async with db.session() as session:
        inst = await session.get(ModelInstance, (await only_instance(db, mid)).id)
        assert inst is not None and inst.distributed_servers
        inst.state = InstanceState.RUNNING
        for worker in (await session.execute(select(Worker))).scalars():
            worker.heartbeat_time = utcnow() - timedelta(seconds=5 if worker.id != sub else 100)
        await session.commit()

    await reconcile_workers(db, grace=10, reschedule_after=1000)
    inst = await only_instance(db, mid)
    assert (inst.state, inst.state_message) == (InstanceState.UNREACHABLE, "worker 's-sub' is not responding")

    await reconcile_workers(db, grace=10, reschedule_after=30)
    inst = await only_instance(db, mid)
    assert (inst.state, inst.worker_id, inst.distributed_servers) == (InstanceState.PENDING, None, [])
    assert inst.state_message == "rescheduled: worker 's-sub' has been gone for over 30s"
