"""Model file routes under /v2/model-files: listed for admins, reported by workers."""

from fastapi import APIRouter, Request, Response

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.model_files import ModelFile, ModelFilePublic, ModelFileReport
from gpustack.server.auth import AdminOrWorker, AdminUser, CurrentWorker, SessionDep
from gpustack.server.routers.deps import IdFilter, Watch, watch_response
from gpustack.server.services import model_files as service

router = APIRouter(prefix="/model-files", tags=["model-files"])


@router.get("", response_model=PaginatedList[ModelFilePublic])
async def list_model_files(
    request: Request,
    session: SessionDep,
    _p: AdminOrWorker,
    paging: Paging,
    worker_id: IdFilter = None,
    search: str | None = None,
    watch: Watch = False,
) -> object:
    if watch:
        return watch_response(request, ModelFile, ModelFilePublic, worker_id=worker_id)
    return await service.list_model_files(
        session=session, page=paging.page, per_page=paging.per_page, worker_id=worker_id, search=search
    )


@router.post("", response_model=ModelFilePublic)
async def report_model_file(data: ModelFileReport, session: SessionDep, worker: CurrentWorker) -> ModelFile:
    return await service.upsert_model_file(session=session, worker=worker, data=data)


@router.delete("/{file_id}", status_code=204)
async def delete_model_file(file_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_model_file(session=session, file_id=file_id)
    return Response(status_code=204)
