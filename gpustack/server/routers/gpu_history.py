"""GPU history route under /v2/gpu-history: per worker and GPU utilisation and memory samples."""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from gpustack.schemas.gpu_history import GPUHistory
from gpustack.server.auth import CurrentUser, SessionDep
from gpustack.server.routers.deps import IdFilter
from gpustack.server.services import gpu_history as service

router = APIRouter(prefix="/gpu-history", tags=["workers"])


@router.get("", response_model=GPUHistory)
async def get_gpu_history(
    request: Request,
    session: SessionDep,
    _user: CurrentUser,
    start: Annotated[datetime | None, Query(description="UTC, inclusive; default: end - 1 hour")] = None,
    end: Annotated[datetime | None, Query(description="UTC, exclusive; default: now")] = None,
    worker_id: IdFilter = None,
) -> GPUHistory:
    """One series per worker and GPU (gpu_index -1: the worker's CPU and RAM), oldest sample first."""
    config = request.app.state.config
    return await service.gpu_history(
        session=session,
        start=start,
        end=end,
        worker_id=worker_id,
        interval_seconds=config.gpu_history_interval_seconds,
        retention_days=config.gpu_history_retention_days,
    )
