"""Worker services: registration with the cluster token, heartbeats, labels, removal."""

import hmac

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from gpustack.core.errors import ForbiddenError, InvalidError, UnauthorizedError
from gpustack.schemas.common import PaginatedList, utcnow
from gpustack.schemas.instances import InstanceState, ModelInstance
from gpustack.schemas.workers import (
    Worker,
    WorkerPublic,
    WorkerRegister,
    WorkerRegistered,
    WorkerState,
    WorkerStatusReport,
    WorkerUpdate,
)
from gpustack.server.security import (
    hash_secret,
    new_token,
    new_worker_credential,
    parse_worker_credential,
    proxy_credential,
    verify_secret,
)
from gpustack.server.services.common import commit_or_conflict, get_or_404, paginate


async def register_worker(
    *, session: AsyncSession, token: str, cluster_token: str, secret_key: bytes, data: WorkerRegister
) -> WorkerRegistered:
    """Creates a worker, or re-registers one that presents its registration secret; every credential
    (API credential, proxy credential, registration secret) is new each time."""
    if not hmac.compare_digest(token.encode(), cluster_token.encode()):
        raise UnauthorizedError("invalid cluster token")
    worker = (await session.execute(select(Worker).where(Worker.name == data.name))).scalar_one_or_none()
    if worker is None:
        worker = Worker(name=data.name)
        session.add(worker)
    elif worker.registration_secret_hash and not verify_secret(data.secret or "", worker.registration_secret_hash):
        raise ForbiddenError(
            f"a worker named '{data.name}' is already registered and this one did not present its secret "
            f"(kept in that worker's data dir); start this one with another --worker-name, or delete worker "
            f"{worker.id} if the machine that had the name is gone"
        )
    # labels an admin set survive re-registration; the worker's own labels are refreshed
    worker.labels = {**(worker.labels or {}), **data.labels}
    worker.ip = data.ip
    worker.hostname = data.hostname or worker.hostname
    worker.ifname = data.ifname or worker.ifname
    worker.port = data.port
    if data.status is not None:
        worker.status = data.status.model_dump(mode="json")
    await commit_or_conflict(session, f"worker '{data.name}' registered concurrently, try again")
    return await _issue_credentials(session, worker, secret_key)


async def _issue_credentials(session: AsyncSession, worker: Worker, secret_key: bytes) -> WorkerRegistered:
    secret, credential = new_worker_credential(worker.id)  # type: ignore[arg-type]
    registration_secret = new_token()
    worker.credential_hash = hash_secret(secret)
    worker.registration_secret_hash = hash_secret(registration_secret)
    worker.proxy_nonce = new_token()[:32]
    await session.commit()
    return WorkerRegistered(
        id=worker.id,  # type: ignore[arg-type]
        name=worker.name,
        credential=credential,
        proxy_credential=proxy_credential(secret_key, worker.name, worker.proxy_nonce),
        secret=registration_secret,
    )


async def authenticate_worker(*, session: AsyncSession, value: str) -> Worker:
    parsed = parse_worker_credential(value)
    if parsed is None:
        raise UnauthorizedError("invalid worker credential")
    worker = await session.get(Worker, parsed[0])
    if worker is None or not worker.credential_hash or not verify_secret(parsed[1], worker.credential_hash):
        raise UnauthorizedError("invalid worker credential")
    return worker


async def report_status(*, session: AsyncSession, worker: Worker, report: WorkerStatusReport) -> Worker:
    worker.status = report.status.model_dump(mode="json")
    worker.heartbeat_time = utcnow()
    if report.ip is not None:
        worker.ip = report.ip
    if report.port is not None:
        worker.port = report.port
    worker.state = WorkerState.READY
    worker.state_message = None
    session.add(worker)
    await session.commit()
    return worker


async def list_workers(
    *,
    session: AsyncSession,
    page: int,
    per_page: int,
    state: str | None = None,
    name: str | None = None,
    search: str | None = None,
) -> PaginatedList[WorkerPublic]:
    stmt = select(Worker)
    if search:
        stmt = stmt.where(Worker.name.contains(search, autoescape=True))  # type: ignore[attr-defined]
    if state:
        stmt = stmt.where(Worker.state == state)
    if name:
        stmt = stmt.where(Worker.name == name)
    return await paginate(session, stmt, page=page, per_page=per_page, public=WorkerPublic)


async def get_worker(*, session: AsyncSession, worker_id: int) -> Worker:
    return await get_or_404(session, Worker, worker_id, "worker")


async def update_worker(*, session: AsyncSession, worker_id: int, data: WorkerUpdate) -> Worker:
    worker = await get_or_404(session, Worker, worker_id, "worker")
    if data.name is not None and data.name != worker.name:
        raise InvalidError(
            f"worker {worker_id} is named '{worker.name}'; a worker's name is the one it registers with "
            f"(--worker-name), so it cannot be renamed here"
        )
    if data.labels is not None:
        worker.labels = data.labels
    if data.maintenance is not None:
        worker.maintenance = data.maintenance.model_dump()
    await session.commit()
    return worker


async def delete_worker(*, session: AsyncSession, worker_id: int) -> None:
    """Removes the worker; its instances go back to pending so the scheduler places them again."""
    worker = await get_or_404(session, Worker, worker_id, "worker")
    stmt = select(ModelInstance).where(col(ModelInstance.worker_id).is_not(None))
    for inst in (await session.execute(stmt)).scalars().all():
        if inst.worker_id == worker_id or worker_id in subordinate_ids(inst):
            reset_placement(inst, f"worker '{worker.name}' was removed")
    await session.delete(worker)
    await session.commit()


def subordinate_ids(inst: ModelInstance) -> set[int]:
    """Ids of the subordinate workers of a distributed instance."""
    return {sub["worker_id"] for sub in inst.distributed_servers or [] if sub.get("worker_id") is not None}


def reset_placement(inst: ModelInstance, reason: str) -> None:
    """Back to pending, no worker, no claim: the scheduler will place it again."""
    inst.state = InstanceState.PENDING
    inst.state_message = reason
    inst.worker_id = None
    inst.worker_name = None
    inst.worker_ip = None
    inst.gpu_indexes = []
    inst.port = None
    inst.pid = None
    inst.computed_resource_claim = None
    inst.distributed_servers = []
    inst.download_progress = None
