"""The default cluster and the GPUs its workers report, as GPUStack's cluster and gpu-devices APIs show them."""

from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import NotFoundError
from gpustack.schemas.clusters import DEFAULT_CLUSTER_ID, ClusterPublic, RegistrationToken
from gpustack.schemas.common import PaginatedList, Pagination, utcnow
from gpustack.schemas.gpu_devices import GPUDevicePublic
from gpustack.schemas.models import Model
from gpustack.schemas.workers import Worker, WorkerState, WorkerStatus


async def get_cluster(*, session: AsyncSession, cluster_id: int, server_url: str | None = None) -> ClusterPublic:
    if cluster_id != DEFAULT_CLUSTER_ID:
        raise NotFoundError(f"cluster {cluster_id} not found; this server has one cluster, id {DEFAULT_CLUSTER_ID}")
    workers = (await session.execute(select(Worker))).scalars().all()
    models = (await session.execute(select(func.count()).select_from(Model))).scalar_one()
    first = (await session.execute(select(func.min(Model.created_at)))).scalar_one()
    created = min([w.created_at for w in workers] + ([first] if first else []), default=None)
    gpus = sum(len(WorkerStatus.model_validate(w.status).gpu_devices) for w in workers if w.status)
    stamp = created or utcnow()
    return ClusterPublic(
        workers=len(workers),
        ready_workers=sum(1 for w in workers if w.state == WorkerState.READY),
        gpus=gpus,
        models=models,
        server_url=server_url,
        created_at=stamp,
        updated_at=stamp,
    )


async def list_clusters(*, session: AsyncSession, server_url: str | None = None) -> PaginatedList[ClusterPublic]:
    cluster = await get_cluster(session=session, cluster_id=DEFAULT_CLUSTER_ID, server_url=server_url)
    return PaginatedList(items=[cluster], pagination=Pagination(page=1, perPage=100, total=1, totalPage=1))


WORKER_IMAGE = "gpustack:ci"  # the image the Dockerfile builds (docs/quickstart.md)


def registration_token(*, cluster_id: int, token: str, server_url: str) -> RegistrationToken:
    """What a new worker needs to join: this server's token (workers then get their own credential)."""
    if cluster_id != DEFAULT_CLUSTER_ID:
        raise NotFoundError(f"cluster {cluster_id} not found; this server has one cluster, id {DEFAULT_CLUSTER_ID}")
    env = {"GPUSTACK_SERVER_URL": server_url, "GPUSTACK_TOKEN": token}
    return RegistrationToken(token=token, server_url=server_url, image=WORKER_IMAGE, env=env, args=["start"])


def _devices(worker: Worker) -> list[GPUDevicePublic]:
    if not worker.status:
        return []
    out = []
    for gpu in WorkerStatus.model_validate(worker.status).gpu_devices:
        device = gpu.model_dump(mode="json")
        out.append(
            GPUDevicePublic(
                **{k: v for k, v in device.items() if k in GPUDevicePublic.model_fields},
                id=f"{worker.name}:cuda:{gpu.index}",
                device_index=gpu.index,
                worker_id=worker.id or 0,
                worker_name=worker.name,
                worker_ip=worker.ip,
                worker_ifname=worker.ifname,
            )
        )
    return out


async def list_gpu_devices(
    *, session: AsyncSession, page: int, per_page: int, worker_id: int | None = None, search: str | None = None
) -> PaginatedList[GPUDevicePublic]:
    """Every GPU of every worker's last status report (GPUStack keeps them as rows; here they are derived)."""
    stmt = select(Worker).order_by(col(Worker.id))
    if worker_id is not None:
        stmt = stmt.where(Worker.id == worker_id)
    devices = [d for w in (await session.execute(stmt)).scalars().all() for d in _devices(w)]
    if search:
        devices = [d for d in devices if search.lower() in d.name.lower() or search.lower() in d.id.lower()]
    total = len(devices)
    if page > 0:
        devices = devices[(page - 1) * per_page : page * per_page]
    pagination = Pagination(page=page, perPage=per_page, total=total, totalPage=-(-total // per_page))
    return PaginatedList(items=devices, pagination=pagination)


async def get_gpu_device(*, session: AsyncSession, device_id: str) -> GPUDevicePublic:
    worker_name = device_id.split(":", 1)[0]
    worker = (await session.execute(select(Worker).where(Worker.name == worker_name))).scalar_one_or_none()
    for device in _devices(worker) if worker else []:
        if device.id == device_id:
            return device
    raise NotFoundError(f"GPU device '{device_id}' not found (ids look like <worker>:cuda:<index>)")
