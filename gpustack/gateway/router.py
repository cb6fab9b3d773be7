"""OpenAI-compatible routes under /v1, authenticated by API key and routed by the `model` field."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from gpustack.core.errors import GPUStackError, UnavailableError
from gpustack.gateway.auth import Caller
from gpustack.gateway.forward import openai_error
from gpustack.gateway.service import Gateway, list_models, proxy_openai

router = APIRouter(prefix="/v1", tags=["openai"])

PASS_THROUGH = [
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/rerank",
    "/audio/speech",
    "/audio/transcriptions",
    "/images/generations",
    "/images/edits",
]


def _gateway(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise UnavailableError("the OpenAI gateway is not running on this server")
    return gateway  # type: ignore[no-any-return]


async def _caller(request: Request) -> Caller:
    return await _gateway(request).callers.resolve(request)


GatewayDep = Annotated[Gateway, Depends(_gateway)]
CallerDep = Annotated[Caller, Depends(_caller)]


@router.get("/models")
async def models(gateway: GatewayDep, caller: CallerDep) -> dict[str, object]:
    await gateway.ensure_fresh()
    return list_models(gateway, caller)


def _make_handler(path: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request, gateway: GatewayDep, caller: CallerDep) -> StreamingResponse | JSONResponse:
        return await proxy_openai(gateway, request, caller, "/v1" + path)

    handler.__name__ = "openai_" + path.strip("/").replace("/", "_")
    return handler


for _path in PASS_THROUGH:
    router.add_api_route(_path, _make_handler(_path), methods=["POST"], response_model=None)


_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    429: "rate_limit_error",
    503: "service_unavailable",
}


async def openai_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Errors under /v1 use OpenAI's shape; elsewhere the API's own `{detail}`."""
    assert isinstance(exc, GPUStackError)
    retry_after = getattr(exc, "retry_after", None)
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    if request.url.path.startswith("/v1"):
        kind = _ERROR_TYPES.get(exc.status_code, "invalid_request_error")
        response = openai_error(exc.status_code, exc.message, kind)
    else:
        response = JSONResponse({"detail": exc.message}, status_code=exc.status_code)
    response.headers.update(headers or {})
    return response
