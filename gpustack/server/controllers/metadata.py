"""Metadata controller: fetches what estimates need of hub models and worker-only paths, off the
scheduling pass and outside DB transactions, with timeouts and backoff, into the metadata cache."""

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.scheduler.estimate.metadata import VRAM_CLAIM_ENV, ModelMetadata
from gpustack.schemas.common import utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.model_files import ModelFile, ModelFileState
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker, WorkerState, url_host
from gpustack.server.controllers.estimates import MetadataRequest, metadata_request
from gpustack.server.db import Database
from gpustack.server.metadata.hub import FETCH_ERRORS, fetch_huggingface, fetch_modelscope
from gpustack.server.metadata.worker import WorkerTarget, measure_on_workers
from gpustack.server.security import proxy_credential
from gpustack.server.services.model_metadata import cached_metadata, store_metadata

logger = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 5.0
MAX_RETRY_SECONDS = 300.0
CONCURRENT_FETCHES = 4
REFRESH_AFTER_SECONDS = 24 * 3600.0  # a cached row older than this is fetched again (and used until then)


@dataclass
class Attempt:
    failures: int = 0
    error: str | None = None
    next_try: float = 0.0  # monotonic
    next_try_wall: str = ""


class MetadataStatus:
    """What the controller knows of each fetch (in memory, shared with the scheduling controller): the
    last error and when it is retried, and which cached rows this process fetched itself."""

    def __init__(self) -> None:
        self.attempts: dict[str, Attempt] = {}
        self.fetched: set[str] = set()

    def due(self, key: str, now: float) -> bool:
        attempt = self.attempts.get(key)
        return attempt is None or attempt.next_try <= now

    def failed(self, key: str, error: str, now: float) -> None:
        attempt = self.attempts.setdefault(key, Attempt())
        attempt.failures += 1
        delay = min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** (attempt.failures - 1))
        attempt.error, attempt.next_try = error, now + delay
        attempt.next_try_wall = datetime.fromtimestamp(time.time() + delay, UTC).strftime("%H:%M:%S UTC")

    def forget_all_but(self, keys: set[str]) -> None:
        """Drop the failures of requests no pending instance needs any more (memory stays bounded)."""
        self.attempts = {k: v for k, v in self.attempts.items() if k in keys}

    def succeeded(self, key: str) -> None:
        self.attempts.pop(key, None)
        self.fetched.add(key)

    def message(self, request: MetadataRequest) -> str:
        """The pending instance's state_message while its model's metadata is unknown."""
        attempt = self.attempts.get(request.cache_key)
        if attempt is None or attempt.error is None:
            return (
                f"waiting for the model's metadata from {request.where} (weight file sizes, config.json) "
                "to estimate the memory it needs"
            )
        if request.source == "worker":
            what = f"no worker could measure local_path {request.repo_id} ({attempt.error})"
            fix = "put the files on a ready worker"
        else:
            what = f"{request.where} is unreachable for '{request.repo_id}' ({attempt.error})"
            fix = "deploy it from a local_path"
        return (
            f"{what}; retried at {attempt.next_try_wall}. To place it now, set env {VRAM_CLAIM_ENV} on the model "
            f'(the bytes one replica needs, e.g. "40GiB") or {fix}'
        )


class MetadataController:
    """Each pass: the metadata that pending instances' models need and the cache lacks is fetched
    (hub listing + config.json + headers, or a worker's answer) and stored; failures back off."""

    def __init__(
        self,
        db: Database,
        status: MetadataStatus,
        *,
        secret_key: bytes,
        timeout: float = 10.0,
        refresh_after: float = REFRESH_AFTER_SECONDS,
    ) -> None:
        self.db, self.status, self.secret_key, self.timeout = db, status, secret_key, timeout
        self.refresh_after = refresh_after

    async def reconcile(self) -> None:
        async with self.db.session() as session:
            wanted = await self._wanted(session)
        if not wanted:
            return
        limit = asyncio.Semaphore(CONCURRENT_FETCHES)
        fetched = await asyncio.gather(*(self._fetch(request, targets, limit) for request, targets in wanted))
        for (request, _), result in zip(wanted, fetched, strict=True):
            if result is not None:
                async with self.db.session() as session:
                    await store_metadata(
                        session=session, source=request.source, repo_id=request.repo_id, revision=request.revision,
                        selection=request.selection, metadata=result[0], commit_sha=result[1],
                    )  # fmt: skip
                self.status.succeeded(request.cache_key)

    async def _wanted(self, session: AsyncSession) -> list[tuple[MetadataRequest, list[WorkerTarget]]]:
        """Requests of models with schedulable instances that are not cached (or cached longer than
        `refresh_after` ago) and are due for a try."""
        schedulable = (InstanceState.PENDING, InstanceState.ANALYZING)
        ids = select(ModelInstance.model_id).where(col(ModelInstance.state).in_(schedulable))
        models = (await session.execute(select(Model).where(col(Model.id).in_(ids)))).scalars().all()
        found = await asyncio.to_thread(lambda: [(metadata_request(m), m) for m in models])  # stats local paths
        requests: dict[str, tuple[MetadataRequest, Model]] = {}
        for request, model in found:
            if request is not None:
                requests.setdefault(request.cache_key, (request, model))
        self.status.forget_all_but(set(requests))
        cached = await cached_metadata(session=session, keys=requests)
        stale = utcnow() - timedelta(seconds=self.refresh_after)  # a branch moves: ask again, using the row meanwhile
        fresh = {key for key, row in cached.items() if row.updated_at > stale}
        now = time.monotonic()
        todo = [(r, m) for key, (r, m) in requests.items() if key not in fresh and self.status.due(key, now)]
        if not any(r.source == "worker" for r, _ in todo):
            return [(r, []) for r, _ in todo]
        workers = await ready_workers(session)
        return [(r, worker_targets(r, m, workers, self.secret_key)) for r, m in todo]

    async def _fetch(
        self, request: MetadataRequest, targets: list[WorkerTarget], limit: asyncio.Semaphore
    ) -> tuple[ModelMetadata, str | None] | None:
        async with limit:
            try:
                return await asyncio.wait_for(fetch_metadata(request, targets, self.timeout), timeout=3 * self.timeout)
            except FETCH_ERRORS as exc:
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else 'timed out'}"
                if self.status.attempts.get(request.cache_key, Attempt()).error != error:
                    logger.warning("metadata of %s %s: %s", request.source, request.repo_id, error)
                self.status.failed(request.cache_key, error, time.monotonic())
            except Exception:  # per-fetch boundary: one model's metadata must not stop the others'
                logger.exception("fetching the metadata of %s %s failed", request.source, request.repo_id)
                self.status.failed(request.cache_key, "unexpected error (see the server log)", time.monotonic())
        return None


@dataclass(frozen=True)
class ReadyWorkers:
    rows: Sequence[Worker]
    holders: dict[str, set[int]]  # local path -> workers whose files there are ready


async def ready_workers(session: AsyncSession) -> ReadyWorkers:
    rows = (await session.execute(select(Worker).where(Worker.state == WorkerState.READY))).scalars().all()
    files = select(ModelFile.source_key, ModelFile.worker_id).where(ModelFile.state == ModelFileState.READY)
    holders: dict[str, set[int]] = {}
    for key, worker_id in (await session.execute(files)).all():
        holders.setdefault(key, set()).add(worker_id)
    return ReadyWorkers(rows, holders)


def worker_targets(
    request: MetadataRequest, model: Model, workers: ReadyWorkers, secret_key: bytes
) -> list[WorkerTarget]:
    """Workers that may have a worker-only path: those reporting its files first, then the others the
    model may run on (its worker selector and GPU selector); none for hub requests."""
    if request.source != "worker":
        return []
    wanted_names = {g.rpartition(":")[0] for g in model.gpu_selector}
    fits = [
        w for w in workers.rows
        if all(w.labels.get(k) == v for k, v in model.worker_selector.items())
        and (not wanted_names or w.name in wanted_names)
    ]  # fmt: skip
    holders = workers.holders.get(request.repo_id, set())
    fits.sort(key=lambda w: (w.id not in holders, w.id))
    return [
        WorkerTarget(w.name, f"http://{url_host(w.ip)}:{w.port}", proxy_credential(secret_key, w.name, w.proxy_nonce))
        for w in fits
    ]


async def fetch_metadata(
    request: MetadataRequest, targets: list[WorkerTarget], timeout: float
) -> tuple[ModelMetadata, str | None]:
    """One request's metadata (and the commit it is of) from its hub or the workers; raises on failure."""
    if request.source == "worker":
        meta, worker = await measure_on_workers(
            targets, request.repo_id, prefer_gguf=request.prefer_gguf, timeout=timeout
        )
        logger.info("metadata of %s measured by worker %s", request.repo_id, worker)
        return meta, None
    fetch = fetch_huggingface if request.source == "huggingface" else fetch_modelscope
    fetched = await asyncio.to_thread(
        fetch, request.repo_id, request.selection, revision=request.revision, timeout=timeout
    )
    return fetched.metadata, fetched.commit_sha
