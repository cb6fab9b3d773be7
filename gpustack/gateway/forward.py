"""Forwards one OpenAI request to a worker proxy and streams the answer back chunk by chunk."""

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gpustack.core.http import PROXY_ERROR_HEADER, relay
from gpustack.gateway.health import WorkerHealth, worker_answers
from gpustack.gateway.routing import Route
from gpustack.gateway.usage import UsageWatch, with_usage

logger = logging.getLogger(__name__)

_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "authorization",
}
# The gateway's own HTTP server writes these; passing the worker's on would send each twice.
_RESPONSE_DROP = _HOP_BY_HOP | {"date", "server"}


def openai_error(status: int, message: str, err_type: str, code: str | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": err_type, "param": None, "code": code}}, status)


def forward_headers(headers: dict[str, str], credential: str) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP and k.lower() != "cookie"}
    out["authorization"] = f"Bearer {credential}"
    return out


async def _not_found(response: httpx.Response, model: str, path: str) -> Response:
    """An engine's own OpenAI-shaped 404 passes; a bare one (no such route) says the endpoint is unsupported."""
    try:
        raw = await response.aread()
    finally:
        await response.aclose()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return Response(raw, status_code=404, media_type="application/json")
    message = f"The engine serving '{model}' has no {path} endpoint (its backend does not support it)."
    return openai_error(404, message, "invalid_request_error", "unsupported_endpoint")


async def _answer(response: httpx.Response, model: str, path: str, watch: UsageWatch | None) -> Response:
    """The engine's answer, streamed as it arrives (a bare 404 and the usage chunk handled on the way)."""
    if response.status_code == 404:
        return await _not_found(response, model, path)
    kept = {k: v for k, v in response.headers.items() if k.lower() not in _RESPONSE_DROP}
    stream = _relay(response)
    if watch is not None and response.status_code == 200:
        stream = with_usage(stream, watch)
    return StreamingResponse(stream, status_code=response.status_code, headers=kept)


class WorkerSilent(Exception):
    """No response headers within the first-byte timeout, and the worker's health probe failed too."""


async def _first_byte(
    client: httpx.AsyncClient, request: httpx.Request, route: Route, first_byte_timeout: float
) -> httpx.Response:
    """Sends and waits for the response headers. Past `first_byte_timeout` the worker itself is probed:
    an engine may think for minutes before answering, but a worker that does not answer its health probe
    is hung, and the request goes elsewhere."""
    sending = asyncio.ensure_future(client.send(request, stream=True))
    try:
        return await asyncio.wait_for(asyncio.shield(sending), first_byte_timeout)
    except TimeoutError:
        if await worker_answers(client, route.worker_url):
            return await sending  # the engine is busy; the client's read timeout still applies
        raise WorkerSilent(f"no answer within {first_byte_timeout:g}s and its health probe failed") from None
    finally:
        if not sending.done():
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending


async def _relay(response: httpx.Response) -> AsyncIterator[bytes]:
    """The worker's bytes as they arrive; a worker lost mid-answer ends the stream (with an error event
    for event streams) instead of an unhandled exception."""
    try:
        async for chunk in relay(response):
            yield chunk
    except httpx.TransportError as exc:
        logger.warning("worker connection lost mid-answer: %r", exc)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            error = {"message": "the worker serving this request stopped answering", "type": "service_unavailable"}
            yield f"data: {json.dumps({'error': error})}\n\n".encode()


async def _refusal(response: httpx.Response, route: Route) -> str:
    detail = (await response.aread()).decode(errors="replace")[:300]
    await response.aclose()
    message = f"worker {route.worker_name} answered {response.status_code} for instance {route.instance_id}: {detail}"
    logger.warning(message)
    return message


async def forward(
    client: httpx.AsyncClient,
    model: str,
    routes: list[Route],
    *,
    method: str,
    path: str,
    body: bytes,
    headers: dict[str, str],
    credentials: dict[str, str],
    health: WorkerHealth,
    first_byte_timeout: float,
    watch: UsageWatch | None = None,
) -> Response:
    """Tries each route in turn (suspended workers last) until one answers; any failure before the first
    byte moves on to the next replica, and a worker that failed is suspended for a while."""
    last_error = "no running instance"
    for route in sorted(routes, key=lambda r: health.suspended(r.worker_name)):
        request = client.build_request(
            method,
            f"{route.base_url}{path}",
            content=body,
            headers=forward_headers(headers, credentials.get(route.worker_name, "")),
        )
        try:
            response = await _first_byte(client, request, route, first_byte_timeout)
        except (httpx.TransportError, WorkerSilent) as exc:
            last_error = f"instance {route.instance_id} on {route.worker_name} failed: {exc!r}"
            logger.warning(last_error)
            if not isinstance(exc, httpx.PoolTimeout):  # our own pool was full: not the worker's fault
                health.suspend(route.worker_name)
            continue
        health.recovered(route.worker_name)
        if response.headers.get(PROXY_ERROR_HEADER):  # the worker, not the engine, refused: try another
            last_error = await _refusal(response, route)
            continue
        return await _answer(response, model, path, watch)
    return openai_error(503, f"No replica could take the request ({last_error}).", "service_unavailable")
