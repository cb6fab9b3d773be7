"""Scheduling controller: estimates pending instances' needs and records the scheduler's placement."""

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlmodel import col, select

from gpustack.scheduler.estimate.gguf import estimate_gguf
from gpustack.scheduler.scheduler import apply_claim, schedule
from gpustack.scheduler.types import Candidate, ResourceEstimate
from gpustack.schemas.instances import ComputedResourceClaim, InstanceState, ModelInstance
from gpustack.schemas.models import BackendEnum, Model, SourceEnum
from gpustack.schemas.workers import Worker
from gpustack.server.controllers.snapshots import model_snapshot, worker_snapshots
from gpustack.server.db import Database

logger = logging.getLogger(__name__)

UNKNOWN = ResourceEstimate(0, 0, 0, 0, 0, 0)


@dataclass(frozen=True)
class Estimated:
    estimate: ResourceEstimate
    note: str | None  # why the estimate is unknown, shown to users


def _gguf_file(model: Model) -> Path | None:
    if model.source != SourceEnum.LOCAL_PATH or not model.local_path:
        return None
    path = Path(model.local_path)
    if path.is_dir():
        files = sorted(path.glob("*.gguf"))
        return files[0] if files else None
    return path if path.suffix == ".gguf" else None


def estimate_model(model: Model) -> Estimated:
    """Reads GGUF metadata where the server can see the file; otherwise places without a memory check."""
    path = _gguf_file(model)
    if path is None or model.backend not in (BackendEnum.LLAMA_BOX, BackendEnum.CUSTOM):
        return Estimated(UNKNOWN, "memory estimate unavailable for this source/backend; placed without a check")
    if not path.exists():
        return Estimated(UNKNOWN, f"{path} is not on the server; placed without a memory check")
    try:
        return Estimated(estimate_gguf(path, backend_parameters=model.backend_parameters), None)
    except ValueError as exc:
        return Estimated(UNKNOWN, f"cannot estimate memory: {exc}")


class SchedulingController:
    """Keeps an estimate cache per model version; one pass places every pending instance it can."""

    def __init__(self, db: Database):
        self.db = db
        self._cache: dict[tuple[int, datetime], Estimated] = {}

    async def _estimates(self, models: dict[int, Model]) -> dict[int, Estimated]:
        out = {}
        for model_id, model in models.items():
            key = (model_id, model.updated_at)
            if key not in self._cache:
                self._cache[key] = await asyncio.to_thread(estimate_model, model)
            out[model_id] = self._cache[key]
        return out

    async def reconcile(self) -> None:
        async with self.db.session() as session:
            pending = (
                (await session.execute(select(ModelInstance).where(ModelInstance.state == InstanceState.PENDING)))
                .scalars()
                .all()
            )
            if not pending:
                return
            ids = {i.model_id for i in pending}
            models = {m.id: m for m in (await session.execute(select(Model).where(Model.id.in_(ids)))).scalars()}  # type: ignore[union-attr]
        estimates = await self._estimates(models)  # type: ignore[arg-type]
        async with self.db.session() as session:
            workers = (await session.execute(select(Worker).order_by(col(Worker.id)))).scalars().all()
            placed = (
                (await session.execute(select(ModelInstance).where(col(ModelInstance.worker_id).is_not(None))))  # type: ignore[union-attr]
                .scalars()
                .all()
            )
            snapshots = worker_snapshots(workers, placed)
            per_model = Counter((i.model_id, i.worker_id) for i in placed)
            ips = {w.id: w.ip for w in workers}
            for inst in sorted(pending, key=lambda i: i.id or 0):
                row = await session.get(ModelInstance, inst.id)
                model = models.get(inst.model_id)
                if row is None or model is None or row.state != InstanceState.PENDING:
                    continue
                est = estimates[inst.model_id]
                mine = {w: n for (m, w), n in per_model.items() if m == inst.model_id and w is not None}
                result = schedule(model_snapshot(model), est.estimate, snapshots, model_instances_per_worker=mine)
                if isinstance(result, Candidate):
                    _place(row, result, ips.get(result.worker_id), est.note)
                    snapshots = apply_claim(snapshots, result)
                    per_model[(inst.model_id, result.worker_id)] += 1
                elif row.state_message != result.message:
                    row.state_message = result.message
            await session.commit()


def _place(inst: ModelInstance, cand: Candidate, worker_ip: str | None, note: str | None) -> None:
    claim = ComputedResourceClaim(
        vram=dict(cand.vram), ram=cand.ram, offload_layers=cand.offload_layers, total_layers=cand.total_layers
    )
    inst.worker_id = cand.worker_id
    inst.worker_name = cand.worker_name
    inst.worker_ip = worker_ip
    inst.gpu_indexes = list(cand.gpu_indexes)
    inst.computed_resource_claim = claim.model_dump(mode="json")
    inst.state = InstanceState.SCHEDULED
    inst.state_message = note
    logger.info("scheduled %s on %s gpus=%s", inst.name, cand.worker_name, list(cand.gpu_indexes))
