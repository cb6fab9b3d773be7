"""Backend catalog routes under /v2/inference-backends (admins write, any signed-in principal reads)."""

from fastapi import APIRouter, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.inference_backends import (
    InferenceBackend,
    InferenceBackendCreate,
    InferenceBackendPublic,
    InferenceBackendResponse,
    InferenceBackendUpdate,
)
from gpustack.server.auth import AdminUser, PrincipalDep, SessionDep
from gpustack.server.services import inference_backends as service

router = APIRouter(prefix="/inference-backends", tags=["inference-backends"])


@router.get("", response_model=PaginatedList[InferenceBackendPublic])
async def list_backends(session: SessionDep, _p: PrincipalDep, paging: Paging) -> PaginatedList[InferenceBackendPublic]:
    return await service.list_backends(session=session, page=paging.page, per_page=paging.per_page)


@router.get("/list", response_model=InferenceBackendResponse)
async def list_backend_items(session: SessionDep, _p: PrincipalDep) -> InferenceBackendResponse:
    return await service.list_backend_items(session=session)


@router.post("", response_model=InferenceBackendPublic, status_code=201)
async def create_backend(data: InferenceBackendCreate, session: SessionDep, _a: AdminUser) -> InferenceBackend:
    return await service.create_backend(session=session, data=data)


@router.get("/backend_name/{backend_name}", response_model=InferenceBackendPublic)
async def get_backend_by_name(backend_name: str, session: SessionDep, _p: PrincipalDep) -> InferenceBackend:
    return await service.get_backend_by_name(session=session, name=backend_name)


@router.get("/{backend_id}", response_model=InferenceBackendPublic)
async def get_backend(backend_id: int, session: SessionDep, _p: PrincipalDep) -> InferenceBackend:
    return await service.get_backend(session=session, backend_id=backend_id)


@router.put("/{backend_id}", response_model=InferenceBackendPublic)
async def update_backend(
    backend_id: int, data: InferenceBackendUpdate, session: SessionDep, _a: AdminUser
) -> InferenceBackend:
    return await service.update_backend(session=session, backend_id=backend_id, data=data)


@router.delete("/{backend_id}", status_code=204)
async def delete_backend(backend_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_backend(session=session, backend_id=backend_id)
    return Response(status_code=204)
