"""Scheduling controller against a real database: simulated GPU workers and a tiny GGUF on disk."""

from pathlib import Path
from typing import Any

import pytest
from ctrl_db import set_replicas
from sqlmodel import col, select

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.schemas.instances import ComputedResourceClaim, InstanceState, ModelInstance, ModelInstancePublic
from gpustack.schemas.model_files import ModelFile
from gpustack.schemas.models import BackendEnum, Model, PlacementStrategy, SourceEnum
from gpustack.schemas.workers import (
    DEFAULT_GPU_RUNTIME_OVERHEAD,
    CPUInfo,
    GPUDevice,
    MemoryInfo,
    Worker,
    WorkerState,
    WorkerStatus,
)
from gpustack.server.controllers.models import reconcile_models
from gpustack.server.controllers.scheduling import SchedulingController, estimate_model
from gpustack.server.db import Database
from gpustack.server.events import EventBus
from tests.scheduler._safetensors import LLAMA3_8B, write_model_dir

GiB = 1 << 30


@pytest.fixture(scope="module")
def need(tiny_gguf: Path) -> int:
    """VRAM the tiny GGUF needs on one GPU (~660 MiB, mostly the engine's runtime overhead)."""
    return estimate_gguf(tiny_gguf).full_gpu_bytes + DEFAULT_GPU_RUNTIME_OVERHEAD


async def add_worker(
    db: Database,
    name: str,
    gpus: list[int],
    *,
    state: WorkerState = WorkerState.READY,
    labels: dict[str, str] | None = None,
    ram: int = 16 * GiB,
) -> int:
    status = WorkerStatus(
        cpu=CPUInfo(total=8),
        memory=MemoryInfo(total=ram),
        gpu_devices=[
            GPUDevice(index=i, name="Simulated GPU", uuid=f"{name}-gpu{i}", memory_total=size, simulated=True)
            for i, size in enumerate(gpus)
        ],
        simulated_gpus=True,
    )
    async with db.session() as session:
        worker = Worker(
            name=name,
            ip=f"10.0.0.{len(name)}",
            port=10150,
            labels=labels or {},
            state=state,
            status=status.model_dump(mode="json"),
        )
        session.add(worker)
        await session.commit()
        return worker.id  # type: ignore[return-value]


async def add_model(db: Database, name: str, path: Path | str, replicas: int, **spec: Any) -> int:
    """A model plus its pending instances, created by the model controller as the server would."""
    async with db.session() as session:
        model = Model(name=name, source=SourceEnum.LOCAL_PATH, local_path=str(path), replicas=replicas, **spec)
        session.add(model)
        await session.commit()
        model_id = model.id
    await reconcile_models(db)
    return model_id  # type: ignore[return-value]


async def scale(db: Database, model_id: int, replicas: int) -> None:
    """Change the replica count and let the model controller create the new pending instances."""
    await set_replicas(db, model_id, replicas)
    await reconcile_models(db)


async def instances(db: Database, model_id: int) -> list[ModelInstance]:
    async with db.session() as session:
        stmt = select(ModelInstance).where(ModelInstance.model_id == model_id).order_by(col(ModelInstance.id))
        return list((await session.execute(stmt)).scalars().all())


async def test_pending_instance_is_scheduled_with_its_claim(db: Database, tiny_gguf: Path, need: int) -> None:
    wid = await add_worker(db, "w-one", [4 * GiB])
    mid = await add_model(db, "sched-one", tiny_gguf, 1)
    [before] = await instances(db, mid)
    assert before.state == InstanceState.PENDING

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert inst.state == InstanceState.SCHEDULED
    assert (inst.worker_id, inst.worker_name, inst.worker_ip) == (wid, "w-one", "10.0.0.5")
    assert inst.gpu_indexes == [0]
    est = estimate_gguf(tiny_gguf)
    claim = ComputedResourceClaim.model_validate(inst.computed_resource_claim)
    assert (claim.vram, claim.ram) == ({0: need}, est.host_weights_bytes)
    assert (claim.offload_layers, claim.total_layers, claim.context_size) == (3, 3, est.context_size)
    assert claim.terms["runtime_overhead_gpu"] == DEFAULT_GPU_RUNTIME_OVERHEAD
    assert sum(v for k, v in claim.terms.items() if k.endswith("_gpu")) == need
    assert inst.state_message is None


async def test_spread_puts_two_replicas_on_two_workers(db: Database, tiny_gguf: Path) -> None:
    a = await add_worker(db, "w-a", [4 * GiB])
    b = await add_worker(db, "w-b", [4 * GiB])
    mid = await add_model(db, "spread", tiny_gguf, 2, placement_strategy=PlacementStrategy.SPREAD)

    await SchedulingController(db).reconcile()

    placed = await instances(db, mid)
    assert [i.state for i in placed] == [InstanceState.SCHEDULED] * 2
    assert sorted(i.worker_id for i in placed) == sorted([a, b])  # type: ignore[type-var]


async def test_binpack_puts_two_replicas_on_one_worker(db: Database, tiny_gguf: Path, need: int) -> None:
    await add_worker(db, "w-a", [4 * GiB])
    await add_worker(db, "w-b", [4 * GiB])
    mid = await add_model(db, "binpack", tiny_gguf, 2, placement_strategy=PlacementStrategy.BINPACK)

    await SchedulingController(db).reconcile()

    placed = await instances(db, mid)
    assert [i.state for i in placed] == [InstanceState.SCHEDULED] * 2
    assert len({i.worker_id for i in placed}) == 1
    assert [i.gpu_indexes for i in placed] == [[0], [0]]


async def test_a_worker_that_already_has_the_files_wins_a_tie(db: Database, tiny_gguf: Path) -> None:
    await add_worker(db, "w-files-a", [4 * GiB])
    b = await add_worker(db, "w-files-b", [4 * GiB])
    async with db.session() as session:
        session.add(ModelFile(worker_id=b, source=SourceEnum.LOCAL_PATH, source_key=str(tiny_gguf), state="ready"))
        session.add(ModelFile(worker_id=b, source=SourceEnum.LOCAL_PATH, source_key="/other.gguf", state="ready"))
        await session.commit()
    mid = await add_model(db, "locality", tiny_gguf, 1)

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert (inst.state, inst.worker_id) == (InstanceState.SCHEDULED, b)  # "w-files-a" would win by name


async def test_unmatched_worker_selector_leaves_instance_pending_with_reason(db: Database, tiny_gguf: Path) -> None:
    await add_worker(db, "w-us", [4 * GiB], labels={"zone": "us"})
    await add_worker(db, "w-nolabel", [4 * GiB])
    mid = await add_model(db, "picky", tiny_gguf, 1, worker_selector={"zone": "eu"})

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert inst.state == InstanceState.PENDING and inst.worker_id is None
    message = inst.state_message or ""
    assert message.startswith("No worker can take this instance.")
    assert "w-us: label selector wants zone=eu, worker has zone=us" in message
    assert "w-nolabel: label selector wants zone=eu, worker has no label 'zone'" in message


async def test_not_ready_worker_is_not_used(db: Database, tiny_gguf: Path) -> None:
    await add_worker(db, "w-big-down", [80 * GiB, 80 * GiB], state=WorkerState.NOT_READY)
    small = await add_worker(db, "w-small-up", [1 * GiB])
    mid = await add_model(db, "avoid-down", tiny_gguf, 2)

    await SchedulingController(db).reconcile()

    placed = await instances(db, mid)
    assert [(i.state, i.worker_id) for i in placed] == [(InstanceState.SCHEDULED, small)] * 2


async def test_only_not_ready_workers_means_pending_with_reason(db: Database, tiny_gguf: Path) -> None:
    await add_worker(db, "w-down", [80 * GiB], state=WorkerState.NOT_READY)
    mid = await add_model(db, "nowhere", tiny_gguf, 1)

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert inst.state == InstanceState.PENDING
    assert "w-down: worker is not_ready" in (inst.state_message or "")


async def test_vllm_refusal_names_each_gpu_shortest_reason_first(db: Database, tmp_path: Path) -> None:
    """A Llama-3-8B directory for vLLM on a 4090 (6 GiB used elsewhere) + 4080 worker and a worker that is down."""
    write_model_dir(tmp_path / "llama-3-8b", LLAMA3_8B)
    status = WorkerStatus(
        cpu=CPUInfo(total=16),
        memory=MemoryInfo(total=64 * GiB),
        gpu_devices=[
            GPUDevice(index=0, name="RTX 4090", memory_total=24 * GiB, memory_used=6 * GiB),
            GPUDevice(index=1, name="RTX 4080", memory_total=16 * GiB),
        ],
    )
    async with db.session() as session:
        session.add(Worker(name="busy-mixed", ip="10.0.0.9", state=WorkerState.READY, status=status.model_dump()))
        await session.commit()
    await add_worker(db, "w-down", [80 * GiB], state=WorkerState.NOT_READY)
    mid = await add_model(db, "vllm-8b", tmp_path / "llama-3-8b", 1, backend=BackendEnum.VLLM)

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert inst.state == InstanceState.PENDING
    assert inst.state_message == (
        "No worker can take this instance. w-down: worker is not_ready; busy-mixed: needs 19.9 GiB VRAM; "
        "its 1 qualifying GPU holds 14.4 GiB at 0.9 of each; GPU 0 RTX 4090: 17.8 GiB allocatable < 0.9 × 24.0 GiB"
    )


async def test_one_pass_does_not_double_book_a_gpu(db: Database, tiny_gguf: Path, need: int) -> None:
    wid = await add_worker(db, "w-tight", [need * 3 // 2])
    mid = await add_model(db, "tight", tiny_gguf, 2, cpu_offloading=False)

    await SchedulingController(db).reconcile()

    first, second = await instances(db, mid)
    assert (first.state, first.worker_id, first.gpu_indexes) == (InstanceState.SCHEDULED, wid, [0])
    assert (second.state, second.worker_id) == (InstanceState.PENDING, None)
    message = second.state_message or ""
    assert "w-tight: needs" in message and "VRAM" in message
    assert "CPU offloading is disabled" in message


async def test_claims_in_the_database_are_respected_by_a_later_pass(db: Database, tiny_gguf: Path, need: int) -> None:
    await add_worker(db, "w-tight2", [need * 3 // 2], ram=0)
    mid = await add_model(db, "later", tiny_gguf, 1)
    controller = SchedulingController(db)
    await controller.reconcile()

    await scale(db, mid, 2)
    await controller.reconcile()

    placed, waiting = await instances(db, mid)
    assert placed.state == InstanceState.SCHEDULED
    assert waiting.state == InstanceState.PENDING
    assert "w-tight2:" in (waiting.state_message or "")


async def test_reconcile_leaves_placed_instances_alone(db: Database, tiny_gguf: Path) -> None:
    await add_worker(db, "w-a", [4 * GiB])
    await add_worker(db, "w-b", [4 * GiB])
    mid = await add_model(db, "stable", tiny_gguf, 2)
    controller = SchedulingController(db)
    await controller.reconcile()
    first = [(i.id, i.worker_id, i.gpu_indexes, i.updated_at) for i in await instances(db, mid)]

    await controller.reconcile()

    assert [(i.id, i.worker_id, i.gpu_indexes, i.updated_at) for i in await instances(db, mid)] == first


async def test_a_path_the_server_cannot_read_waits_for_a_workers_measurement(db: Database, tmp_path: Path) -> None:
    """No guess: the instance stays pending and says it waits for the workers (the metadata controller
    asks them; tests/server/controllers/test_ctrl_metadata.py)."""
    await add_worker(db, "w-note", [4 * GiB])
    missing = tmp_path / "absent.gguf"
    mid = await add_model(db, "not-here", missing, 1)

    await SchedulingController(db).reconcile()

    [inst] = await instances(db, mid)
    assert (inst.state, inst.worker_id) == (InstanceState.PENDING, None)
    assert inst.state_message and "waiting for the model's metadata from the workers" in inst.state_message


def test_estimate_model_reads_gguf_metadata(tiny_gguf: Path) -> None:
    est = estimate_model(Model(name="m", local_path=str(tiny_gguf)))
    assert est.note is None and est.estimate.total_layers == 3 and est.estimate.total_bytes > 16 << 20

    in_dir = estimate_model(Model(name="m", local_path=str(tiny_gguf.parent)))
    assert in_dir == est

    vllm = estimate_model(Model(name="m", local_path=str(tiny_gguf), backend=BackendEnum.VLLM))
    assert vllm.estimate.total_bytes == 0 and "config.json is not on the server" in (vllm.note or "")

    hub = estimate_model(Model(name="m", source=SourceEnum.HUGGING_FACE, huggingface_repo_id="a/b"))
    assert hub.estimate.total_bytes == 0 and hub.note


def test_estimate_model_reads_a_model_directory_for_vllm(tmp_path: Path) -> None:
    from tests.scheduler._safetensors import HFShape, write_model_dir

    weights = write_model_dir(tmp_path / "m", HFShape(64, 2, 4, 2, 128, 1000, 32768))
    est = estimate_model(Model(name="m", local_path=str(tmp_path / "m"), backend=BackendEnum.VLLM))
    assert est.note is None and est.estimate.weights_bytes == weights
    assert est.estimate.context_size == 8192 and est.estimate.attention_heads == 4
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text("[]")
    bad = estimate_model(Model(name="m", local_path=str(broken), backend=BackendEnum.SGLANG))
    assert bad.estimate.total_bytes == 0 and "not a JSON object" in (bad.note or "")


async def test_instances_show_analyzing_while_their_model_is_estimated(db: Database, tiny_gguf: Path) -> None:
    """pending → analyzing → scheduled for a model seen the first time; a cached estimate skips analyzing."""
    await add_worker(db, "w-analyze", [4 * GiB])
    mid = await add_model(db, "sched-analyze", tiny_gguf, 1)
    bus = EventBus()
    bus.register("model_instances", ModelInstancePublic)
    watched = Database(db.url, bus=bus)
    controller = SchedulingController(watched)
    try:
        assert await _states_seen(bus, controller) == ["analyzing", "scheduled"]
        await scale(db, mid, 2)
        assert await _states_seen(bus, controller) == ["scheduled"]  # the estimate is cached now
    finally:
        await watched.dispose()


async def _states_seen(bus: EventBus, controller: SchedulingController) -> list[str]:
    with bus.subscribe("model_instances") as sub:
        await controller.reconcile()
        states = []
        while not sub.queue.empty():
            ev = sub.queue.get_nowait()
            assert ev is not None
            states.append(ev.data["state"])
    return states


async def test_refused_instance_returns_to_pending_not_analyzing(db: Database, tiny_gguf: Path) -> None:
    mid = await add_model(db, "sched-nowhere", tiny_gguf, 1)  # no workers at all
    await SchedulingController(db).reconcile()
    [inst] = await instances(db, mid)
    assert inst.state == InstanceState.PENDING
    assert inst.state_message and "No worker" in inst.state_message


async def test_a_model_with_an_unusable_path_does_not_block_the_others(db: Database, tiny_gguf: Path) -> None:
    """A 300-byte path component raises ENAMETOOLONG from the file probe; only that model stays pending."""
    await add_worker(db, "w-iso", [4 * GiB])
    bad = await add_model(db, "bad-path", tiny_gguf.parent / ("x" * 300) / "m.gguf", 1)
    good = await add_model(db, "good-path", tiny_gguf, 1)
    controller = SchedulingController(db)

    await controller.reconcile()

    [placed] = await instances(db, good)
    assert placed.state == InstanceState.SCHEDULED and placed.state_message is None
    [stuck] = await instances(db, bad)
    assert stuck.state == InstanceState.PENDING and stuck.worker_id is None
    assert "File name too long" in (stuck.state_message or "") and "fix the model's path" in stuck.state_message
    updated = stuck.updated_at

    await controller.reconcile()  # the failure is remembered: no flapping through analyzing, no new event
    [again] = await instances(db, bad)
    assert (again.state, again.updated_at) == (InstanceState.PENDING, updated)


async def test_refused_instances_are_not_evaluated_again_until_something_changes(
    db: Database, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pass costs nothing per refused instance while the cluster and its model stay as they were."""
    from gpustack.server.controllers import scheduling

    calls: list[int] = []
    real = scheduling.schedule

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(scheduling, "schedule", counting)
    controller = SchedulingController(db)
    mid = await add_model(db, "backlog", tiny_gguf, 20)
    await controller.reconcile()
    assert len(calls) == 20  # no worker: each is refused once
    calls.clear()
    await controller.reconcile()
    await controller.reconcile()
    assert calls == []  # nothing changed: nothing evaluated
    await add_worker(db, "w-late", [4 * GiB])
    await controller.reconcile()
    assert len(calls) == 20
    assert all(i.state == InstanceState.SCHEDULED for i in await instances(db, mid))
