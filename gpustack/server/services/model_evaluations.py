"""Model evaluation: runs the scheduler's own pipeline for model specs without creating anything."""

import asyncio
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from gpustack.scheduler.scheduler import schedule
from gpustack.scheduler.types import Candidate, ResourceEstimate
from gpustack.schemas.model_evaluations import (
    ModelEvaluationRequest,
    ModelEvaluationResponse,
    ModelEvaluationResult,
    Placement,
    ResourceClaim,
)
from gpustack.schemas.models import Model, ModelCreate, gpu_selector_out
from gpustack.server.controllers.scheduling import (
    Cluster,
    Estimated,
    claim_of,
    distributed_servers,
    estimate_model,
    load_cluster,
)

PLACEHOLDER_NAME = "evaluation"


async def evaluate_models(*, session: AsyncSession, request: ModelEvaluationRequest) -> ModelEvaluationResponse:
    """One result per spec: the estimate with its terms and where one replica would go, or every worker's
    reason (the same reasons a pending instance shows)."""
    cluster = await load_cluster(session)
    await session.rollback()  # no transaction stays open while models are read from disk
    results = []
    for spec in request.model_specs or []:
        try:
            model = Model(**ModelCreate.model_validate({"name": PLACEHOLDER_NAME, **spec}).model_dump())
        except ValidationError as exc:
            results.append(ModelEvaluationResult(compatible=False, error=True, error_message=_first_error(exc)))
            continue
        estimated = await asyncio.to_thread(estimate_model, model)
        results.append(_evaluate(model, estimated, cluster))
    return ModelEvaluationResponse(results=results)


def _evaluate(model: Model, estimated: Estimated, cluster: Cluster) -> ModelEvaluationResult:
    notes = [estimated.note] if estimated.note else []
    terms = _estimate_terms(estimated.estimate)
    try:
        result = schedule(cluster.snapshot_of(model), estimated.estimate, cluster.snapshots)
    except ValueError as exc:
        return ModelEvaluationResult(compatible=False, compatibility_messages=[str(exc)], estimate=terms)
    if not isinstance(result, Candidate):
        reasons = sorted((f"{name}: {why}" for name, why in result.reasons.items()), key=len)
        return ModelEvaluationResult(
            compatible=False, scheduling_messages=reasons or [result.message], compatibility_messages=notes,
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


def _estimate_terms(estimate: ResourceEstimate) -> dict[str, int] | None:
    if estimate.weights_bytes <= 0:
        return None
    return {
        "weights": estimate.weights_bytes,
        "weights_host": estimate.host_weights_bytes,
        "kv_cache": estimate.kv_cache_bytes,
        "compute": estimate.compute_bytes,
        "context_size": estimate.context_size,
        "total_layers": estimate.total_layers,
    }


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"]) or "spec"
    return f"{where}: {error['msg']}"
