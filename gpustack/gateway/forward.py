"""Forwards one OpenAI request to a worker proxy and streams the answer back chunk by chunk."""

import json
import logging

import httpx
from fastapi.responses import JSONResponse, Response, StreamingResponse

from gpustack.core.http import PROXY_ERROR_HEADER, relay
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
    stream = relay(response)
    if watch is not None and response.status_code == 200:
        stream = with_usage(stream, watch)
    return StreamingResponse(stream, status_code=response.status_code, headers=kept)


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
    watch: UsageWatch | None = None,
) -> Response:
    """Tries each route in turn until one connects; only connection failures move on to the next."""
    last_error = "no running instance"
    for route in routes:
        request = client.build_request(
            method,
            f"{route.base_url}{path}",
            content=body,
            headers=forward_headers(headers, credentials.get(route.worker_name, "")),
        )
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            last_error = f"instance {route.instance_id} on {route.worker_name} unreachable: {exc}"
            logger.warning(last_error)
            continue
        if response.headers.get(PROXY_ERROR_HEADER):  # the worker, not the engine, refused: try another
            detail = (await response.aread()).decode(errors="replace")[:300]
            await response.aclose()
            last_error = (
                f"worker {route.worker_name} answered {response.status_code} for instance {route.instance_id}: {detail}"
            )
            logger.warning(last_error)
            continue
        return await _answer(response, model, path, watch)
    return openai_error(503, f"No replica could take the request ({last_error}).", "service_unavailable")
