"""Model instance routes under /v2/model-instances."""

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from gpustack.compat.paging import Paging
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.instances import ModelInstance, ModelInstancePublic, ModelInstanceUpdate
from gpustack.server.auth import AdminOrWorker, AdminUser, CurrentWorker, PrincipalDep, SessionDep
from gpustack.server.routers.deps import ClusterFilter, IdFilter, Watch, watch_response
from gpustack.server.services import instances as service
from gpustack.server.services import logs

router = APIRouter(prefix="/model-instances", tags=["model-instances"])


@router.get("", response_model=PaginatedList[ModelInstancePublic])
async def list_instances(
    request: Request,
    session: SessionDep,
    _p: PrincipalDep,
    paging: Paging,
    model_id: IdFilter = None,
    worker_id: IdFilter = None,
    state: str | None = None,
    search: str | None = None,
    cluster_id: ClusterFilter = None,
    watch: Watch = False,
) -> object:
    if watch:
        part_of = await service.worker_filter(session=session, worker_id=worker_id) if worker_id else None
        await session.close()  # the stream outlives the request's session
        return watch_response(
            request, ModelInstance, ModelInstancePublic, model_id=model_id, worker_id=part_of, state=state
        )
    return await service.list_instances(
        session=session,
        page=paging.page,
        per_page=paging.per_page,
        model_id=model_id,
        worker_id=worker_id,
        state=state,
        search=search,
    )


@router.get("/{instance_id}", response_model=ModelInstancePublic)
async def get_instance(instance_id: int, session: SessionDep, _p: PrincipalDep) -> ModelInstance:
    return await service.get_instance(session=session, instance_id=instance_id)


@router.get("/{instance_id}/logs")
async def instance_logs(
    instance_id: int,
    request: Request,
    session: SessionDep,
    principal: AdminOrWorker,
    tail: Annotated[int, Query(ge=0, le=100_000)] = 200,
    follow: bool = False,
) -> StreamingResponse:
    url, credential = await logs.log_source(
        session=session,
        instance_id=instance_id,
        secret_key=request.app.state.secret_key,
        worker_id=principal.worker.id if principal.worker else None,
    )
    await session.close()
    stream = await logs.open_log_stream(url, credential, tail=tail, follow=follow)
    return StreamingResponse(stream, media_type="text/plain")


@router.patch("/{instance_id}", response_model=ModelInstancePublic)
async def report_instance(
    instance_id: int, data: ModelInstanceUpdate, session: SessionDep, worker: CurrentWorker
) -> ModelInstance:
    return await service.report_instance(session=session, instance_id=instance_id, worker=worker, data=data)


@router.delete("/{instance_id}", status_code=204)
async def delete_instance(instance_id: int, session: SessionDep, _a: AdminUser) -> Response:
    await service.delete_instance(session=session, instance_id=instance_id)
    return Response(status_code=204)
