"""Instance logs: looks up where an instance runs, then streams its log from that worker's proxy."""

from collections.abc import AsyncIterator

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from gpustack.core.errors import ForbiddenError, InvalidError, UnavailableError
from gpustack.core.http import relay
from gpustack.schemas.instances import ModelInstance
from gpustack.schemas.workers import Worker, url_host
from gpustack.server.security import proxy_credential
from gpustack.server.services.common import get_or_404

_TIMEOUT = httpx.Timeout(connect=5.0, read=None, write=10.0, pool=5.0)


async def log_source(
    *, session: AsyncSession, instance_id: int, secret_key: bytes, worker_id: int | None = None
) -> tuple[str, str]:
    """(worker URL of the log, credential) — read before streaming, so no transaction stays open.
    A worker (`worker_id`) may read only the logs of its own instances; admins read every log."""
    inst = await get_or_404(session, ModelInstance, instance_id, "model instance")
    if worker_id is not None and inst.worker_id != worker_id:
        raise ForbiddenError(f"model instance {instance_id} does not run on this worker")
    worker = await session.get(Worker, inst.worker_id) if inst.worker_id else None
    if worker is None:
        raise InvalidError(f"model instance {instance_id} is not placed on a worker yet")
    url = f"http://{url_host(worker.ip)}:{worker.port}/instances/{instance_id}/logs"
    return url, proxy_credential(secret_key, worker.name, worker.proxy_nonce)


async def open_log_stream(url: str, credential: str, *, tail: int, follow: bool) -> AsyncIterator[bytes]:
    """Connects first (so errors surface as HTTP errors), then yields the worker's bytes as they come."""
    client = httpx.AsyncClient(timeout=_TIMEOUT)
    params = {"tail": str(tail), "follow": "true" if follow else "false"}
    request = client.build_request("GET", url, params=params, headers={"authorization": f"Bearer {credential}"})
    try:
        response = await client.send(request, stream=True)
    except httpx.TransportError as exc:
        await client.aclose()
        raise UnavailableError(f"cannot reach the worker for logs: {exc}") from None
    if response.status_code != 200:
        body = (await response.aread()).decode(errors="replace")[:500]
        await response.aclose()
        await client.aclose()
        raise UnavailableError(f"worker answered {response.status_code} for logs: {body}")
    return _relay(client, response)


async def _relay(client: httpx.AsyncClient, response: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in relay(response):
            yield chunk
    finally:
        await client.aclose()
