"""OpenAI-compatible routes under /v1, authenticated by API key and routed by the `model` field."""

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from gpustack.core.errors import GPUStackError, UnavailableError
from gpustack.gateway.auth import Caller
from gpustack.gateway.forward import openai_error
from gpustack.gateway.service import Gateway, list_models, proxy_openai, retrieve_model

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


async def models(gateway: GatewayDep, caller: CallerDep) -> dict[str, object]:
    await gateway.ensure_fresh()
    return list_models(gateway, caller)


async def model(model_id: str, gateway: GatewayDep, caller: CallerDep) -> JSONResponse:
    await gateway.ensure_fresh()
    return retrieve_model(gateway, caller, model_id)


async def unsupported(path: str, request: Request) -> JSONResponse:
    """Any other path or method under /v1: an OpenAI-shaped answer that says what is served."""
    if "/" + path in PASS_THROUGH:
        return openai_error(405, f"{request.url.path} takes POST, not {request.method}.", "invalid_request_error")
    served = ", ".join(["GET /v1/models", *(f"POST /v1{p}" for p in PASS_THROUGH)])
    message = f"{request.method} {request.url.path} is not supported by this server. Supported: {served}."
    return openai_error(404, message, "invalid_request_error", "unsupported_endpoint")


def _make_handler(path: str):  # type: ignore[no-untyped-def]
    async def handler(request: Request, gateway: GatewayDep, caller: CallerDep) -> Response:
        return await proxy_openai(gateway, request, caller, "/v1" + path)

    handler.__name__ = "openai_" + path.strip("/").replace("/", "_")
    return handler


def make_router(prefix: str, include_in_schema: bool = True) -> APIRouter:
    """The OpenAI routes under `prefix` (/v1, and /v1-openai as GPUStack also serves them)."""
    router = APIRouter(prefix=prefix, tags=["openai"], include_in_schema=include_in_schema)
    router.add_api_route("/models", models, methods=["GET"])
    router.add_api_route("/models/{model_id:path}", model, methods=["GET"], response_model=None)
    for path in PASS_THROUGH:
        router.add_api_route(path, _make_handler(path), methods=["POST"], response_model=None)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    router.add_api_route("/{path:path}", unsupported, methods=methods, include_in_schema=False)
    return router


routers = [make_router("/v1"), make_router("/v1-openai", include_in_schema=False)]


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
