"""Worker routes under /v2/workers: registration, heartbeat, admin management."""

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from gpustack.compat.paging import Paging
from gpustack.core.errors import UnauthorizedError
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.workers import (
    Worker,
    WorkerPublic,
    WorkerRegister,
    WorkerRegistered,
    WorkerStatusReport,
    WorkerUpdate,
)
from gpustack.server.auth import AdminUser, CurrentWorker, PrincipalDep, SessionDep
from gpustack.server.routers.deps import ClusterFilter, Watch, watch_response
from gpustack.server.services import workers as service

router = APIRouter(prefix="/workers", tags=["workers"])


@router.post("/register", response_model=WorkerRegistered)
async def register(
    request: Request,
    data: WorkerRegister,
    session: SessionDep,
    authorization: Annotated[str | None, Header()] = None,
) -> WorkerRegistered:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise UnauthorizedError("registration needs 'Authorization: Bearer <cluster token>'")
    state = request.app.state
    return await service.register_worker(
        session=session,
        token=token.strip(),
        cluster_token=state.token,
        secret_key=state.secret_key,
        data=data,
    )


@router.post("/me/status", response_model=WorkerPublic)
async def report_status(data: WorkerStatusReport, session: SessionDep, worker: CurrentWorker) -> Worker:
    return await service.report_status(session=session, worker=worker, report=data)


@router.get("", response_model=PaginatedList[WorkerPublic])
async def list_workers(
    request: Request,
    session: SessionDep,
    _p: PrincipalDep,
    paging: Paging,
    state: str | None = None,
    name: str | None = None,
    search: str | None = None,
    cluster_id: ClusterFilter = None,
    watch: Watch = False,
) -> object:
    if watch:
        return watch_response(request, Worker, WorkerPublic, state=state, name=name)
    return await service.list_workers(
        session=session, page=paging.page, per_page=paging.per_page, state=state, name=name, search=search
    )


@router.get("/{worker_id}", response_model=WorkerPublic)
async def get_worker(worker_id: int, session: SessionDep, _p: PrincipalDep) -> Worker:
    return await service.get_worker(session=session, worker_id=worker_id)


@router.put("/{worker_id}", response_model=WorkerPublic)
async def update_worker(worker_id: int, data: WorkerUpdate, session: SessionDep, _a: AdminUser) -> Worker:
    return await service.update_worker(session=session, worker_id=worker_id, data=data)


@router.delete("/{worker_id}", status_code=204)
async def delete_worker(worker_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_worker(session=session, worker_id=worker_id)
    return Response(status_code=204)
