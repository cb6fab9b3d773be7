"""Model file routes under /v2/model-files: listed for admins, reported by workers."""

from fastapi import APIRouter, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.model_files import ModelFile, ModelFilePublic, ModelFileReport
from gpustack.server.auth import AdminOrWorker, AdminUser, CurrentWorker, SessionDep
from gpustack.server.routers.deps import IdFilter
from gpustack.server.services import model_files as service

router = APIRouter(prefix="/model-files", tags=["model-files"])


@router.get("", response_model=PaginatedList[ModelFilePublic])
async def list_model_files(
    session: SessionDep,
    _p: AdminOrWorker,
    paging: Paging,
    worker_id: IdFilter = None,
) -> PaginatedList[ModelFilePublic]:
    return await service.list_model_files(
        session=session, page=paging.page, per_page=paging.per_page, worker_id=worker_id
    )


@router.post("", response_model=ModelFilePublic)
async def report_model_file(data: ModelFileReport, session: SessionDep, worker: CurrentWorker) -> ModelFile:
    return await service.upsert_model_file(session=session, worker=worker, data=data)


@router.delete("/{file_id}", status_code=204)
async def delete_model_file(file_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_model_file(session=session, file_id=file_id)
    return Response(status_code=204)
