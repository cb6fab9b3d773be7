"""Model routes under /v2/models."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.models import Model, ModelCreate, ModelPatch, ModelPublic, ModelUpdate
from gpustack.server.auth import AdminUser, PrincipalDep, SessionDep
from gpustack.server.redaction import redact_model
from gpustack.server.routers.deps import ClusterFilter, Watch, watch_response
from gpustack.server.services import models as service

router = APIRouter(prefix="/models", tags=["models"])


@router.get("", response_model=PaginatedList[ModelPublic])
async def list_models(
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    paging: Paging,
    search: str | None = None,
    state: str | None = None,
    backend: str | None = None,
    categories: Annotated[list[str] | None, Query()] = None,
    cluster_id: ClusterFilter = None,
    watch: Watch = False,
) -> object:
    if watch:
        transform = None if principal.is_admin else redact_model
        return watch_response(request, Model, ModelPublic, transform, state=service.state_filter(state))
    return await service.list_models(
        session=session,
        page=paging.page,
        per_page=paging.per_page,
        search=search,
        state=state,
        backend=backend,
        categories=categories,
        reveal_secrets=principal.is_admin,
    )


@router.post("", response_model=ModelPublic, status_code=201)
async def create_model(data: ModelCreate, session: SessionDep, _a: AdminUser) -> Model:
    return await service.create_model(session=session, data=data)


@router.get("/{model_id}", response_model=ModelPublic)
async def get_model(model_id: int, session: SessionDep, principal: PrincipalDep) -> ModelPublic:
    worker_id = principal.worker.id if principal.worker else None
    return await service.get_model(session=session, model_id=model_id, is_admin=principal.is_admin, worker_id=worker_id)


@router.put("/{model_id}", response_model=ModelPublic)
async def update_model(model_id: int, data: ModelUpdate, session: SessionDep, _a: AdminUser) -> Model:
    return await service.update_model(session=session, model_id=model_id, data=data)


@router.patch("/{model_id}", response_model=ModelPublic)
async def patch_model(model_id: int, data: ModelPatch, session: SessionDep, _a: AdminUser) -> Model:
    return await service.patch_model(session=session, model_id=model_id, data=data)


@router.delete("/{model_id}", status_code=204)
async def delete_model(model_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_model(session=session, model_id=model_id)
    return Response(status_code=204)
