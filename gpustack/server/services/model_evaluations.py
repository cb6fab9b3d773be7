"""Model evaluation: runs the scheduler's own pipeline for model specs without creating anything."""

import asyncio
import time
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gpustack.scheduler.estimate.metadata import ModelMetadata
from gpustack.scheduler.scheduler import schedule
from gpustack.scheduler.types import Candidate
from gpustack.schemas.model_evaluations import (
    ModelEvaluationRequest,
    ModelEvaluationResponse,
    ModelEvaluationResult,
    Placement,
    ResourceClaim,
)
from gpustack.schemas.models import Model, ModelCreate, gpu_selector_out
from gpustack.server.controllers.estimates import (
    UNKNOWN,
    Estimated,
    MetadataRequest,
    estimate_model,
    estimate_terms,
    metadata_request,
)
from gpustack.server.controllers.metadata import FETCH_ERRORS, fetch_metadata, ready_workers, worker_targets
from gpustack.server.controllers.scheduling import Cluster, claim_of, distributed_servers, load_cluster
from gpustack.server.services.model_metadata import cached_metadata, store_metadata

FETCH_TIMEOUT_SECONDS = 10.0
FETCH_BUDGET_SECONDS = 30.0  # per evaluation call: specs beyond it are answered without fetching
UNAVAILABLE = "unavailable"  # no metadata could be had: the estimate's source when a hub or worker failed

PLACEHOLDER_NAME = "evaluation"


async def evaluate_models(
    *, session: AsyncSession, request: ModelEvaluationRequest, secret_key: bytes
) -> ModelEvaluationResponse:
    """One result per spec: the estimate with its terms and where one replica would go, or every worker's
    reason (the same reasons a pending instance shows). Hub or worker metadata comes from the cache, else
    is fetched now (after the cluster is read, outside any transaction) and cached."""
    cluster = await load_cluster(session)
    results: list[ModelEvaluationResult | Model] = []
    for spec in request.model_specs or []:
        try:
            results.append(Model(**ModelCreate.model_validate({"name": PLACEHOLDER_NAME, **spec}).model_dump()))
        except ValidationError as exc:
            results.append(ModelEvaluationResult(compatible=False, error=True, error_message=_first_error(exc)))
    out = []
    deadline = time.monotonic() + FETCH_BUDGET_SECONDS
    for item in results:
        if isinstance(item, Model):
            estimated = await _estimated(session, item, secret_key, deadline)
            item = _evaluate(item, estimated, cluster)
        out.append(item)
    return ModelEvaluationResponse(results=out)


async def _estimated(session: AsyncSession, model: Model, secret_key: bytes, deadline: float) -> Estimated:
    request = await asyncio.to_thread(metadata_request, model)
    if request is None:
        await session.rollback()  # no transaction stays open while models are read from disk
        return await asyncio.to_thread(estimate_model, model)
    row = (await cached_metadata(session=session, keys=[request.cache_key])).get(request.cache_key)
    if row is not None:
        meta = ModelMetadata.from_dict(row.data)  # read before the rollback expires the row
        await session.rollback()
        source = "worker" if request.source == "worker" else "cache"
        return await asyncio.to_thread(estimate_model, model, (meta, source))
    return await _fetch(session, model, request, secret_key, deadline)


async def _fetch(
    session: AsyncSession, model: Model, request: MetadataRequest, secret_key: bytes, deadline: float
) -> Estimated:
    """Metadata the cache lacks, fetched now (no transaction open meanwhile) and stored."""
    targets = worker_targets(request, model, await ready_workers(session), secret_key)
    await session.rollback()
    budget = deadline - time.monotonic()
    if budget <= 0:
        return Estimated(
            UNKNOWN,
            f"{request.where} was not asked: this evaluation spent its {FETCH_BUDGET_SECONDS:.0f} s "
            "for fetching metadata; evaluate this spec again (what was fetched is cached)",
            UNAVAILABLE,
        )
    try:
        meta, sha = await asyncio.wait_for(fetch_metadata(request, targets, FETCH_TIMEOUT_SECONDS), budget)
    except FETCH_ERRORS as exc:
        return Estimated(UNKNOWN, _unreachable(request, exc), UNAVAILABLE)
    await store_metadata(
        session=session, source=request.source, repo_id=request.repo_id, revision=request.revision,
        selection=request.selection, metadata=meta, commit_sha=sha,
    )  # fmt: skip
    return await asyncio.to_thread(estimate_model, model, (meta, "worker" if request.source == "worker" else "hub"))


def _unreachable(request: MetadataRequest, exc: BaseException) -> str:
    what = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else 'timed out'}"
    fix = "put the files on a ready worker" if request.source == "worker" else "deploy it from a local_path"
    return (
        f"cannot get the model's metadata from {request.where} ({what}); set env GPUSTACK_VRAM_CLAIM on the model "
        f"(the bytes one replica needs) or {fix}"
    )


def _evaluate(model: Model, estimated: Estimated, cluster: Cluster) -> ModelEvaluationResult:
    notes = [estimated.note] if estimated.note else []
    terms = estimate_terms(estimated)
    if estimated.source == UNAVAILABLE:  # the scheduler would keep it pending: so does the dry run
        return ModelEvaluationResult(compatible=False, compatibility_messages=notes)
    try:
        result = schedule(cluster.snapshot_of(model), estimated.estimate, cluster.snapshots)
    except ValueError as exc:
        return ModelEvaluationResult(compatible=False, compatibility_messages=[str(exc)], estimate=terms)
    if not isinstance(result, Candidate):
        return ModelEvaluationResult(
            compatible=False, scheduling_messages=result.lines() or [result.message], compatibility_messages=notes,
            estimate=terms,
        )  # fmt: skip
    claim = claim_of(result, estimated)
    placement = Placement(
        worker_id=result.worker_id,
        worker_name=result.worker_name,
        gpu_indexes=list(result.gpu_indexes),
        computed_resource_claim=claim.model_dump(mode="json"),
        subordinate_workers=distributed_servers(result, cluster.ips),
    )
    vram = sum(sum(part.vram.values()) for part in (result, *result.subordinates))
    return ModelEvaluationResult(
        compatible=True,
        compatibility_messages=notes + ([result.note] if result.note else []),
        default_spec=_spec_out(model),
        resource_claim=ResourceClaim(ram=result.ram, vram=vram),
        placement=placement,
        estimate=terms,
    )


def _spec_out(model: Model) -> dict[str, Any]:
    """The spec as GPUStack renders one (gpu_selector an object), without what only a stored model has."""
    spec = model.model_dump(mode="json", exclude={"id", "name", "state", "ready_replicas", "created_at", "updated_at"})
    spec["gpu_selector"] = gpu_selector_out(model.gpu_selector)
    return spec


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "spec"
    return f"{where}: {error['msg']}"
