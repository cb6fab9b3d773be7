"""The worker's HTTP surface: health, a streaming reverse proxy to local engines, and instance logs."""

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Protocol

import httpx
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gpustack.core.http import PROXY_ERROR_HEADER, fast_async_client, relay
from gpustack.schemas.instances import InstanceState
from gpustack.worker.logs import follow, read_tail
from gpustack.worker.metrics import ProxyTimer, WorkerMetrics
from gpustack.worker.metrics_routes import engines_metrics, instance_metrics, worker_metrics
from gpustack.worker.model_metadata import model_metadata

logger = logging.getLogger(__name__)

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | {"host", "authorization", "content-length"}
PROXY_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class ProxyTarget(Protocol):
    """What the proxy needs to know about a local instance (InstanceRunner provides it)."""

    phase: InstanceState
    port: int | None
    log_path: Path
    name: str


Lookup = Callable[[int], ProxyTarget | None]
CredentialSource = Callable[[], str | None]


class ClosingStreamingResponse(StreamingResponse):
    """A StreamingResponse that always closes its body iterator, even when the client went away."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            aclose = getattr(self.body_iterator, "aclose", None)
            if aclose is not None:
                await aclose()


def _unauthorized() -> HTTPException:
    return HTTPException(
        401,
        "a valid 'Authorization: Bearer <proxy credential>' is required",
        {"WWW-Authenticate": "Bearer", PROXY_ERROR_HEADER: "1"},
    )


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers={PROXY_ERROR_HEADER: "1"})


def _require_credential(request: Request) -> None:
    """`Authorization: Bearer <proxy credential>` (constant-time compare), else 401."""
    expected: str | None = request.app.state.credential()
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        raise _unauthorized()
    if not hmac.compare_digest(value.strip().encode(), expected.encode()):
        raise _unauthorized()


def _upstream_path(request: Request, instance_id: int, path: str) -> str:
    """The path after /proxy/<id>, kept percent-encoded as the client sent it."""
    raw = request.scope.get("raw_path")
    prefix = f"/proxy/{instance_id}".encode()
    if isinstance(raw, bytes) and raw.startswith(prefix + b"/"):
        return raw[len(prefix) :].decode("latin-1")
    return "/" + path


async def _forward(client: httpx.AsyncClient, request: Request, port: int, path: str) -> Response:
    url = f"http://127.0.0.1:{port}{path}"
    if request.url.query:
        url += "?" + request.url.query
    headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _NOT_FORWARDED]
    upstream = client.build_request(request.method, url, headers=headers, content=await request.body())
    try:
        response = await client.send(upstream, stream=True)
    except httpx.HTTPError as exc:
        logger.warning("proxy to %s failed: %r", url, exc)
        return _error(502, f"the engine on port {port} did not answer: {exc!r}")
    kept = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}
    return ClosingStreamingResponse(relay(response), status_code=response.status_code, headers=kept)


async def _log_stream(
    request: Request, target: ProxyTarget, lookup: Lookup, instance_id: int, tail: int, keep_following: bool
) -> AsyncIterator[bytes]:
    """The last `tail` lines, then (when following) appended bytes until the client or instance goes."""

    async def stopped() -> bool:
        return lookup(instance_id) is not target or await request.is_disconnected()

    data, offset = await asyncio.to_thread(read_tail, target.log_path, tail)
    if data:
        yield data
    if keep_following:
        async for chunk in follow(target.log_path, offset, stopped):
            yield chunk


async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def proxy(request: Request, instance_id: int, path: str) -> Response:
    """Forward to the instance's engine on 127.0.0.1, streaming the answer back."""
    target = request.app.state.lookup(instance_id)
    if target is None:
        return _error(404, f"model instance {instance_id} is not served by this worker")
    port = target.port
    if target.phase != InstanceState.RUNNING or port is None:
        return _error(503, f"model instance {instance_id} is {target.phase.value}, not running")
    timer = ProxyTimer(request.app.state.metrics, target.name) if request.app.state.metrics else None
    response = await _forward(request.app.state.http, request, port, _upstream_path(request, instance_id, path))
    if timer is not None:
        response.body_iterator = _timed(response.body_iterator, timer, response.status_code)  # type: ignore[attr-defined]
    return response


async def _timed(body: AsyncIterator[bytes], timer: ProxyTimer, status: int) -> AsyncIterator[bytes]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        timer.done(status)


async def logs(
    request: Request,
    instance_id: int,
    tail: Annotated[int, Query(ge=-1, description="last N lines; -1 for the whole file")] = 100,
    follow: Annotated[bool, Query(description="keep streaming appended lines")] = False,
) -> Response:
    """The instance's log file: the last `tail` lines, then appended output when following."""
    lookup: Lookup = request.app.state.lookup
    target = lookup(instance_id)
    if target is None:
        return _error(404, f"model instance {instance_id} is not served by this worker")
    stream = _log_stream(request, target, lookup, instance_id, tail, follow)
    return ClosingStreamingResponse(stream, media_type="text/plain; charset=utf-8")


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One pooled client for every forward (no read timeout: generations stream for long)."""
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200, keepalive_expiry=60)
    timeout = httpx.Timeout(connect=5.0, read=None, write=60.0, pool=None)
    async with fast_async_client(limits=limits, timeout=timeout) as client:
        app.state.http = client
        yield


def create_proxy_app(
    lookup: Lookup,
    credential: CredentialSource,
    metrics: WorkerMetrics | None = None,
    *,
    metrics_token: str | None = None,
    metrics_auth: bool = True,
) -> FastAPI:
    """The app served on the worker port; every route but /healthz needs the proxy credential (the metrics
    routes also take the metrics token)."""
    app = FastAPI(title="GPUStack worker", lifespan=_lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.lookup = lookup
    app.state.credential = credential
    app.state.metrics = metrics
    app.state.metrics_token = metrics_token
    app.state.metrics_auth = metrics_auth
    if metrics is not None:
        app.add_api_route("/metrics", worker_metrics, methods=["GET"])
        app.add_api_route("/metrics/engines", engines_metrics, methods=["GET"])
        app.add_api_route("/instances/{instance_id}/metrics", instance_metrics, methods=["GET"])
    authorized = [Depends(_require_credential)]
    app.add_api_route("/healthz", healthz, methods=["GET"])
    app.add_api_route("/proxy/{instance_id}/{path:path}", proxy, methods=PROXY_METHODS, dependencies=authorized)
    app.add_api_route("/instances/{instance_id}/logs", logs, methods=["GET"], dependencies=authorized)
    app.add_api_route("/model-metadata", model_metadata, methods=["GET"], dependencies=authorized)
    return app
