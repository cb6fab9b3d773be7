"""Scheduling controller: estimates pending instances' needs and records the scheduler's placement."""

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.scheduler.estimate.metadata import VRAM_CLAIM_ENV, ModelMetadata
from gpustack.scheduler.scheduler import apply_claim, schedule
from gpustack.scheduler.types import Candidate, ModelSnapshot, WorkerSnapshot
from gpustack.schemas.instances import ComputedResourceClaim, InstanceState, ModelInstance, SubordinateWorker
from gpustack.schemas.model_files import ModelFile, ModelFileState
from gpustack.schemas.model_metadata import ModelMetadataCache
from gpustack.schemas.models import BackendEnum, Model, source_key
from gpustack.schemas.workers import Worker
from gpustack.server.controllers.estimates import (
    Estimated,
    MetadataRequest,
    estimate_model,
    estimate_terms,
    metadata_request,
)
from gpustack.server.controllers.metadata import MetadataStatus
from gpustack.server.controllers.snapshots import model_snapshot, worker_snapshots
from gpustack.server.db import Database
from gpustack.server.services.model_metadata import cached_metadata

logger = logging.getLogger(__name__)

_SCHEDULABLE = (InstanceState.PENDING, InstanceState.ANALYZING)
FAILED_RETRY_SECONDS = 30.0  # a model whose estimate failed is probed again after this long


def estimate_key(model: Model) -> tuple[object, ...]:
    """What the estimate depends on: scaling or relabelling a model does not re-read its file."""
    return (
        model.source,
        model.local_path,
        model.huggingface_repo_id,
        model.huggingface_filename,
        model.model_scope_model_id,
        model.model_scope_file_path,
        model.backend,
        tuple(model.backend_parameters),
        model.env.get(VRAM_CLAIM_ENV),
        tuple(model.categories[:1]),
    )


@dataclass(frozen=True)
class Cluster:
    """What one pass places against: worker snapshots, instances per (model, worker), worker IPs, and
    which workers hold which files ((source, key) -> worker ids)."""

    snapshots: tuple[WorkerSnapshot, ...]
    per_model: Counter[tuple[int, int | None]]
    ips: dict[int | None, str]
    files: dict[tuple[str, str], frozenset[int]] = field(default_factory=dict)

    def snapshot_of(self, model: Model) -> ModelSnapshot:
        """The model as the scheduler sees it, with the workers that already hold its files."""
        holders = self.files.get((str(model.source), source_key(model)), frozenset())
        return dataclasses.replace(model_snapshot(model), workers_with_files=holders)

    def mine(self, model_id: int) -> dict[int, int]:
        return replicas_per_worker(self.per_model, model_id)


def replicas_per_worker(per_model: Counter[tuple[int, int | None]], model_id: int) -> dict[int, int]:
    """Worker id -> this model's placed replicas there."""
    return {w: n for (m, w), n in per_model.items() if m == model_id and w is not None}


async def load_cluster(session: AsyncSession) -> Cluster:
    workers = (await session.execute(select(Worker).order_by(col(Worker.id)))).scalars().all()
    placed_stmt = select(ModelInstance).where(col(ModelInstance.worker_id).is_not(None))
    placed = (await session.execute(placed_stmt)).scalars().all()
    ready = select(ModelFile.source, ModelFile.source_key, ModelFile.worker_id).where(
        ModelFile.state == ModelFileState.READY
    )
    holders: dict[tuple[str, str], set[int]] = {}
    for source, key, worker_id in (await session.execute(ready)).all():
        holders.setdefault((str(source), key), set()).add(worker_id)
    ray_stmt = select(Model.id).where(Model.backend == BackendEnum.VLLM)
    ray_models = frozenset((await session.execute(ray_stmt)).scalars().all())
    return Cluster(
        snapshots=worker_snapshots(workers, placed, ray_models),
        per_model=Counter((i.model_id, i.worker_id) for i in placed),
        ips={w.id: w.ip for w in workers},
        files={k: frozenset(v) for k, v in holders.items()},
    )


def _decision_key(model: Model, cluster_print: int, mine: dict[int, int]) -> tuple[object, ...]:
    """Everything schedule() decides on for an instance of `model`: while it is unchanged, a refused
    instance would be refused again, so the pass skips it."""
    return (cluster_print, repr(model_snapshot(model)), estimate_key(model), tuple(sorted(mine.items())))


class SchedulingController:
    """Keeps an estimate cache per model spec, and remembers refusals: a pass evaluates only pending
    instances that are new or whose model or cluster changed since they were refused.

    A model whose estimate or placement fails (an unreadable local_path, a corrupt file...) only keeps its
    own instances pending with the reason; every other model is still scheduled.
    """

    def __init__(self, db: Database, metadata: MetadataStatus | None = None):
        self.db = db
        self.metadata = metadata or MetadataStatus()  # shared with the metadata controller that fills the cache
        self._cache: dict[tuple[object, ...], Estimated] = {}
        self._failed: dict[tuple[object, ...], tuple[str, float]] = {}  # key -> (reason, when)
        self._refused: dict[int, tuple[object, ...]] = {}  # instance id -> decision key of its refusal

    def _key(self, model: Model, remote: "Remote") -> tuple[object, ...] | None:
        """The estimate cache key of `model`; None while a hub or worker has not given its metadata."""
        key = estimate_key(model)
        request = remote.requests.get(model.id)  # type: ignore[arg-type]
        if request is None:
            return key
        row = remote.rows.get(request.cache_key)
        if row is None:
            return None
        return (*key, request.cache_key, str(row.updated_at), request.cache_key in self.metadata.fetched)

    async def _estimates(
        self, models: dict[int, Model], remote: "Remote"
    ) -> tuple[dict[int, Estimated], dict[int, str]]:
        """Estimates per model id, and the reasons of the models that could not be estimated (or whose
        metadata a hub or worker has not given yet)."""
        out, failed = {}, {}
        for model_id, model in models.items():
            request = remote.requests.get(model_id)
            row = remote.rows.get(request.cache_key) if request is not None else None
            key = self._key(model, remote)
            if request is not None and (row is None or key is None):
                failed[model_id] = self.metadata.message(request)
                continue
            key = key or estimate_key(model)
            source = self._remote(request, row) if request is not None and row is not None else None
            if key not in self._cache and (reason := await self._estimate(model, key, source)):
                failed[model_id] = reason
            else:
                out[model_id] = self._cache[key]
        return out, failed

    def _remote(self, request: MetadataRequest, row: ModelMetadataCache) -> tuple[ModelMetadata, str]:
        if request.source == "worker":
            return ModelMetadata.from_dict(row.data), "worker"
        return ModelMetadata.from_dict(row.data), "hub" if request.cache_key in self.metadata.fetched else "cache"

    async def _estimate(
        self, model: Model, key: tuple[object, ...], remote: tuple[ModelMetadata, str] | None = None
    ) -> str | None:
        """Fill the cache for `key`; on failure the reason (re-probed after FAILED_RETRY_SECONDS)."""
        known = self._failed.get(key)
        if known is not None and time.monotonic() - known[1] < FAILED_RETRY_SECONDS:
            return known[0]
        try:
            self._cache[key] = await asyncio.to_thread(estimate_model, model, remote)
        except Exception as exc:  # per-model boundary: one bad model must not stop the others
            reason = _estimate_failure(model, exc)
            if known is None or known[0] != reason:
                logger.exception("model %s: %s", model.name, reason)
            self._failed[key] = (reason, time.monotonic())
            return reason
        self._failed.pop(key, None)
        return None

    async def reconcile(self) -> None:
        """pending → analyzing (while a model's estimate is computed) → scheduled, or back to pending with
        the refusal's reasons."""
        async with self.db.session() as session:
            stmt = select(ModelInstance.id, ModelInstance.model_id).where(col(ModelInstance.state).in_(_SCHEDULABLE))
            pending = (await session.execute(stmt)).all()
            still = {row[0] for row in pending}
            self._refused = {i: k for i, k in self._refused.items() if i in still}
            if not pending:
                return
            ids = {row[1] for row in pending}
            rows = (await session.execute(select(Model).where(col(Model.id).in_(ids)))).scalars()
            models = {m.id: m for m in rows if m.id is not None}
            todo = await self._worth_evaluating(session, pending, models)
            if not todo:
                return
            remote = await load_remote(session, models)
            loaded = (await session.execute(select(ModelInstance).where(col(ModelInstance.id).in_(todo)))).scalars()
            await self._mark_analyzing(session, loaded.all(), models, remote)
        estimates, failed = await self._estimates(models, remote)
        async with self.db.session() as session:
            refusals = await self._place_all(session, todo, models, estimates, failed)
            await session.commit()
        self._refused.update(refusals)  # only once the refusals are stored

    async def _worth_evaluating(
        self, session: AsyncSession, pending: Sequence[Any], models: dict[int, Model]
    ) -> list[int]:
        cluster = await load_cluster(session)
        cluster_print = hash(repr(cluster.snapshots))
        keys = {mid: _decision_key(m, cluster_print, cluster.mine(mid)) for mid, m in models.items()}
        return sorted(iid for iid, mid in pending if mid in models and self._refused.get(iid) != keys[mid])

    async def _mark_analyzing(
        self, session: AsyncSession, pending: Sequence[ModelInstance], models: dict[int, Model], remote: "Remote"
    ) -> None:
        """Instances whose model has no cached estimate show `analyzing` while it is computed (not while
        its metadata is awaited: they stay pending and say so)."""
        for inst in pending:
            model = models.get(inst.model_id)
            key = self._key(model, remote) if model is not None else None
            if key is not None and key not in self._cache and key not in self._failed:
                inst.state = InstanceState.ANALYZING
                inst.state_message = "estimating the memory the model needs"
        await session.commit()

    async def _place_all(
        self,
        session: AsyncSession,
        instance_ids: list[int],
        models: dict[int, Model],
        estimates: dict[int, Estimated],
        failed: dict[int, str],
    ) -> dict[int, tuple[object, ...]]:
        """Places what fits; returns the decision key of each refusal (not of failures, which are retried)."""
        cluster = await load_cluster(session)
        snapshots, per_model = cluster.snapshots, cluster.per_model
        refused: list[tuple[int, Model]] = []
        for instance_id in instance_ids:
            row = await session.get(ModelInstance, instance_id)
            model = models.get(row.model_id) if row is not None else None
            if row is None or model is None or row.state not in _SCHEDULABLE:
                continue
            if row.model_id in failed:
                _refuse(row, failed[row.model_id])
                continue
            est = estimates[row.model_id]
            mine = replicas_per_worker(per_model, row.model_id)
            try:
                result = schedule(cluster.snapshot_of(model), est.estimate, snapshots, model_instances_per_worker=mine)
            except Exception as exc:  # per-instance boundary: the next instances are still placed
                logger.exception("placing %s failed", row.name)
                _refuse(row, f"scheduling failed: {exc}")
                continue
            if isinstance(result, Candidate):
                _place(row, result, cluster.ips, est)
                snapshots = apply_claim(snapshots, result)
                per_model[(row.model_id, result.worker_id)] += 1
            else:
                _refuse(row, result.message)
                refused.append((instance_id, model))
        # placing later instances only took capacity, so the earlier refusals hold for the final state
        cluster_print = hash(repr(snapshots))
        return {
            iid: _decision_key(m, cluster_print, replicas_per_worker(per_model, m.id))  # type: ignore[arg-type]
            for iid, m in refused
        }


@dataclass(frozen=True)
class Remote:
    """The metadata requests of a pass's models (model id -> request) and the cached rows answering them."""

    requests: dict[int, MetadataRequest]
    rows: dict[str, ModelMetadataCache]


async def load_remote(session: AsyncSession, models: dict[int, Model]) -> Remote:
    """Which models need hub or worker metadata, and what the cache holds for them (no network I/O)."""
    found = await asyncio.to_thread(lambda: {mid: metadata_request(m) for mid, m in models.items()})  # stats
    requests = {mid: request for mid, request in found.items() if request is not None}
    rows = await cached_metadata(session=session, keys=(r.cache_key for r in requests.values()))
    return Remote(requests, rows)


def _estimate_failure(model: Model, exc: Exception) -> str:
    """What the instance shows when its model cannot be estimated, with the next step."""
    if isinstance(exc, OSError):
        what = f"cannot read local_path '{model.local_path}': {exc.strerror or exc}"
    else:
        what = f"cannot estimate the memory of the model: {exc}"
    return f"{what}; fix the model's path or files (edit the model) and it is scheduled on the next pass"


def _refuse(inst: ModelInstance, message: str) -> None:
    if inst.state != InstanceState.PENDING:
        inst.state = InstanceState.PENDING
    if inst.state_message != message:
        inst.state_message = message


def claim_of(cand: Candidate, est: Estimated) -> ComputedResourceClaim:
    """What the instance records of a placement: the candidate's claim and the context it was made for."""
    known = est.estimate.weights_bytes > 0
    return ComputedResourceClaim(
        vram=dict(cand.vram),
        ram=cand.ram,
        offload_layers=cand.offload_layers,
        total_layers=cand.total_layers,
        tensor_split=list(cand.tensor_split) or None,
        context_size=est.estimate.context_size if known else None,
        vram_utilization=cand.vram_utilization,
        terms=dict(cand.terms),
        estimate=estimate_terms(est),
    )


def distributed_servers(cand: Candidate, ips: dict[int | None, str]) -> list[dict[str, Any]]:
    """The subordinate workers of a distributed placement as the instance records them (GPUStack's
    ModelInstanceSubordinateWorker); each worker reports its ports, pid and state once its part runs."""
    return [
        SubordinateWorker(
            worker_id=part.worker_id,
            worker_name=part.worker_name,
            worker_ip=ips.get(part.worker_id),
            total_gpus=len(part.gpu_indexes),
            gpu_indexes=list(part.gpu_indexes),
            computed_resource_claim=ComputedResourceClaim(
                vram=dict(part.vram), ram=part.ram, tensor_split=list(part.tensor_split) or None,
                vram_utilization=part.vram_utilization,
            ),
        ).model_dump(mode="json")
        for part in cand.subordinates
    ]  # fmt: skip


def _place(inst: ModelInstance, cand: Candidate, ips: dict[int | None, str], est: Estimated) -> None:
    inst.worker_id = cand.worker_id
    inst.worker_name = cand.worker_name
    inst.worker_ip = ips.get(cand.worker_id)
    inst.gpu_indexes = list(cand.gpu_indexes)
    inst.computed_resource_claim = claim_of(cand, est).model_dump(mode="json")
    inst.distributed_servers = distributed_servers(cand, ips)
    inst.state = InstanceState.SCHEDULED
    inst.state_message = "; ".join(note for note in (cand.note, est.note) if note) or None
    subs = [f"{part.worker_name} gpus={list(part.gpu_indexes)}" for part in cand.subordinates]
    logger.info(
        "scheduled %s on %s gpus=%s%s",
        inst.name,
        cand.worker_name,
        list(cand.gpu_indexes),
        f" with {', '.join(subs)}" if subs else "",
    )
