"""GPUStack's cluster and GPU device routes: the one default cluster, GPUs from the workers' status."""

from fastapi import APIRouter, Request

from gpustack.compat.paging import Paging
from gpustack.schemas.clusters import ClusterPublic, RegistrationToken
from gpustack.schemas.common import PaginatedList
from gpustack.schemas.gpu_devices import GPUDevicePublic
from gpustack.server.auth import AdminUser, PrincipalDep, SessionDep
from gpustack.server.routers.deps import ClusterFilter, IdFilter
from gpustack.server.services import clusters as service

router = APIRouter(tags=["clusters"])


def _server_url(request: Request) -> str:
    return str(request.base_url).rstrip("/")


@router.get("/clusters", response_model=PaginatedList[ClusterPublic])
async def list_clusters(request: Request, session: SessionDep, _p: PrincipalDep) -> PaginatedList[ClusterPublic]:
    return await service.list_clusters(session=session, server_url=_server_url(request))


@router.get("/clusters/{cluster_id}", response_model=ClusterPublic)
async def get_cluster(cluster_id: int, request: Request, session: SessionDep, _p: PrincipalDep) -> ClusterPublic:
    return await service.get_cluster(session=session, cluster_id=cluster_id, server_url=_server_url(request))


@router.get("/clusters/{cluster_id}/registration-token", response_model=RegistrationToken)
async def registration_token(cluster_id: int, request: Request, _a: AdminUser) -> RegistrationToken:
    token = request.app.state.token
    return service.registration_token(cluster_id=cluster_id, token=token, server_url=_server_url(request))


@router.get("/gpu-devices", response_model=PaginatedList[GPUDevicePublic])
async def list_gpu_devices(
    session: SessionDep,
    _p: PrincipalDep,
    paging: Paging,
    worker_id: IdFilter = None,
    search: str | None = None,
    cluster_id: ClusterFilter = None,
) -> PaginatedList[GPUDevicePublic]:
    return await service.list_gpu_devices(
        session=session, page=paging.page, per_page=paging.per_page, worker_id=worker_id, search=search
    )


@router.get("/gpu-devices/{device_id}", response_model=GPUDevicePublic)
async def get_gpu_device(device_id: str, session: SessionDep, _p: PrincipalDep) -> GPUDevicePublic:
    return await service.get_gpu_device(session=session, device_id=device_id)
