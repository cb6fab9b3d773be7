"""Model evaluation DTOs: would these model specs fit the cluster, where, and why not (nothing is stored)."""

from typing import Any

from pydantic import BaseModel, Field


class ModelEvaluationRequest(BaseModel):
    cluster_id: int | None = None
    model_specs: list[dict[str, Any]] | None = Field(default=None, max_length=50)


class ResourceClaim(BaseModel):
    ram: int = 0
    vram: int = 0


class Placement(BaseModel):
    """Where one replica would go: as the scheduler would record it on the instance."""

    worker_id: int
    worker_name: str
    gpu_indexes: list[int]
    computed_resource_claim: dict[str, Any]
    subordinate_workers: list[dict[str, Any]] = []  # the other workers of a placement across workers


class ModelEvaluationResult(BaseModel):
    compatible: bool = True
    compatibility_messages: list[str] = []
    scheduling_messages: list[str] = []  # per worker, why it cannot take a replica (shortest first)
    default_spec: dict[str, Any] | None = None
    resource_claim: ResourceClaim | None = None
    placement: Placement | None = None
    # the estimate's terms in bytes, GPUStack's rule for the same weights (gpustack_floor), and its source
    # (override | local | hub | cache | worker)
    estimate: dict[str, Any] | None = None
    error: bool | None = None
    error_message: str | None = None


class ModelEvaluationResponse(BaseModel):
    results: list[ModelEvaluationResult] = []
