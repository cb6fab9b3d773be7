"""Metadata controller + scheduler on every database: hub models are estimated from fetched (then cached)
metadata, an unreachable hub keeps only its own models pending, and a user's claim needs no metadata."""

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import select

from gpustack.scheduler.estimate.safetensors import estimate_model_dir, floor_bytes
from gpustack.schemas.instances import ComputedResourceClaim, InstanceState, ModelInstance
from gpustack.schemas.model_metadata import ModelMetadataCache
from gpustack.schemas.models import BackendEnum, Model, SourceEnum
from gpustack.schemas.workers import CPUInfo, GPUDevice, MemoryInfo, Worker, WorkerState, WorkerStatus
from gpustack.server.controllers.metadata import MetadataController, MetadataStatus
from gpustack.server.controllers.models import reconcile_models
from gpustack.server.controllers.scheduling import SchedulingController
from gpustack.server.db import Database
from tests.scheduler._safetensors import HFShape, write_model_dir
from tests.server.metadata.fake_hub import COMMIT, FakeHub, running_hub

GiB = 1 << 30
LLAMA_8B = HFShape(hidden=4096, layers=32, heads=32, kv_heads=8, ffn=14336, vocab=128256, max_context=131072)
SECRET = b"x" * 32


class SilentHub:
    """Accepts connections and never answers (a hub behind a black-holing firewall); counts them."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    root = tmp_path_factory.mktemp("ctrl-hub")
    write_model_dir(root / "llama-8b", LLAMA_8B, shards=2)
    with running_hub(FakeHub(repos={"meta/llama-8b": root / "llama-8b"})) as served:
        yield served


@pytest.fixture
async def clean(db: Database) -> Database:
    async with db.session() as session:
        await session.execute(delete(ModelMetadataCache))
        await session.commit()
    return db


async def add_gpu_worker(db: Database, name: str, gpu_bytes: int) -> int:
    gpu = GPUDevice(index=0, name="Simulated H100", uuid=f"{name}-0", memory_total=gpu_bytes, simulated=True)
    status = WorkerStatus(cpu=CPUInfo(total=16), memory=MemoryInfo(total=256 * GiB), gpu_devices=[gpu])
    async with db.session() as session:
        worker = Worker(
            name=name, ip="127.0.0.1", port=1, state=WorkerState.READY, status=status.model_dump(mode="json")
        )
        session.add(worker)
        await session.commit()
        return worker.id  # type: ignore[return-value]


async def add_model(db: Database, name: str, **spec: Any) -> int:
    async with db.session() as session:
        model = Model(name=name, replicas=1, **spec)
        session.add(model)
        await session.commit()
        model_id = model.id
    await reconcile_models(db)
    return model_id  # type: ignore[return-value]


def hf_model(**extra: Any) -> dict[str, Any]:
    return {"source": SourceEnum.HUGGING_FACE, "huggingface_repo_id": "meta/llama-8b", "backend": BackendEnum.VLLM,
            **extra}  # fmt: skip


async def instance_of(db: Database, model_id: int) -> ModelInstance:
    async with db.session() as session:
        stmt = select(ModelInstance).where(ModelInstance.model_id == model_id)
        return (await session.execute(stmt)).scalars().one()


async def test_a_hub_model_waits_then_is_placed_from_the_fetched_metadata(
    clean: Database, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    await add_gpu_worker(clean, "h100", 80 * GiB)
    mid = await add_model(clean, "llama-hub", **hf_model())
    status = MetadataStatus()
    scheduler = SchedulingController(clean, status)

    await scheduler.reconcile()
    waiting = await instance_of(clean, mid)
    assert waiting.state == InstanceState.PENDING
    assert "waiting for the model's metadata from Hugging Face" in (waiting.state_message or "")

    await MetadataController(clean, status, secret_key=SECRET).reconcile()
    async with clean.session() as session:
        [row] = (await session.execute(select(ModelMetadataCache))).scalars().all()
    assert (row.source, row.repo_id, row.revision, row.selection, row.commit_sha) == (
        "huggingface", "meta/llama-8b", "main", "", COMMIT,
    )  # fmt: skip

    await scheduler.reconcile()
    placed = await instance_of(clean, mid)
    assert placed.state == InstanceState.SCHEDULED, placed.state_message
    estimate = ComputedResourceClaim.model_validate(placed.computed_resource_claim).estimate
    local = estimate_model_dir(hub.repos["meta/llama-8b"])
    assert estimate is not None and estimate["source"] == "hub"
    assert (estimate["weights"], estimate["kv_cache"], estimate["compute"]) == (
        local.weights_bytes, local.kv_cache_bytes, local.compute_bytes,
    )  # fmt: skip
    assert estimate["gpustack_floor"] == floor_bytes(local.weights_bytes, "llm")


async def test_an_unreachable_hub_keeps_only_its_model_pending(
    clean: Database, tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    silent = SilentHub()
    monkeypatch.setenv("HF_ENDPOINT", silent.url)
    try:
        await add_gpu_worker(clean, "h100", 80 * GiB)
        hub_mid = await add_model(clean, "llama-silent", **hf_model())
        local_mid = await add_model(clean, "tiny-local", local_path=str(tiny_gguf))
        status = MetadataStatus()
        fetcher = MetadataController(clean, status, secret_key=SECRET, timeout=0.3)

        await fetcher.reconcile()  # times out on the silent hub
        tried = len(silent.accepted)
        assert tried >= 1
        await SchedulingController(clean, status).reconcile()

        assert len(silent.accepted) == tried  # the scheduling pass never touched the network
        assert (await instance_of(clean, local_mid)).state == InstanceState.SCHEDULED
        stuck = await instance_of(clean, hub_mid)
        message = stuck.state_message or ""
        assert stuck.state == InstanceState.PENDING and stuck.worker_id is None
        assert "Hugging Face is unreachable for 'meta/llama-8b'" in message and "Timeout" in message
        assert "GPUSTACK_VRAM_CLAIM" in message and "local_path" in message

        await fetcher.reconcile()  # backing off: no second try yet
        assert len(silent.accepted) == tried
    finally:
        silent.close()


async def test_the_cached_metadata_is_reused_once_the_hub_is_gone(
    clean: Database, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    await add_gpu_worker(clean, "h100", 80 * GiB)
    first = await add_model(clean, "llama-first", **hf_model())
    await MetadataController(clean, MetadataStatus(), secret_key=SECRET).reconcile()
    async with clean.session() as session:
        await session.execute(delete(ModelInstance).where(ModelInstance.model_id == first))
        await session.execute(delete(Model).where(Model.id == first))
        await session.commit()

    silent = SilentHub()  # the hub goes away; the server restarts (fresh in-memory state)
    monkeypatch.setenv("HF_ENDPOINT", silent.url)
    try:
        status = MetadataStatus()
        mid = await add_model(clean, "llama-again", **hf_model())
        await MetadataController(clean, status, secret_key=SECRET, timeout=0.3).reconcile()
        assert silent.accepted == [] and status.attempts == {}  # a fresh row: the hub is not asked

        stale = MetadataController(clean, status, secret_key=SECRET, timeout=0.3, refresh_after=0)
        await stale.reconcile()  # an old row is asked for again; the failure leaves the row in use
        assert len(silent.accepted) == 1 and status.attempts
        await SchedulingController(clean, status).reconcile()

        placed = await instance_of(clean, mid)
        estimate = ComputedResourceClaim.model_validate(placed.computed_resource_claim).estimate
        assert placed.state == InstanceState.SCHEDULED and estimate is not None and estimate["source"] == "cache"
    finally:
        silent.close()


async def test_a_users_claim_wins_and_needs_no_metadata(clean: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    silent = SilentHub()
    monkeypatch.setenv("HF_ENDPOINT", silent.url)
    try:
        await add_gpu_worker(clean, "h100", 80 * GiB)
        mid = await add_model(clean, "llama-claimed", **hf_model(env={"GPUSTACK_VRAM_CLAIM": "30GiB"}))
        status = MetadataStatus()
        await MetadataController(clean, status, secret_key=SECRET, timeout=0.3).reconcile()
        await SchedulingController(clean, status).reconcile()

        assert silent.accepted == []
        placed = await instance_of(clean, mid)
        estimate = ComputedResourceClaim.model_validate(placed.computed_resource_claim).estimate
        assert placed.state == InstanceState.SCHEDULED, placed.state_message
        assert estimate == {
            "weights": 30 * GiB, "weights_host": 0, "kv_cache": 0, "compute": 0, "total": 30 * GiB,
            "context_size": 0, "total_layers": 0, "source": "override",
        }  # fmt: skip
    finally:
        silent.close()
