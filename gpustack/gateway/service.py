"""Gateway service: picks the model from the request, checks access, forwards to a replica."""

import json
import re
from dataclasses import dataclass, field

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, Response

from gpustack.core.errors import InvalidError
from gpustack.gateway.auth import Caller, CallerCache
from gpustack.gateway.forward import forward, openai_error
from gpustack.gateway.health import WorkerHealth
from gpustack.gateway.metering import Meter, Metered
from gpustack.gateway.routing import ModelRoutes, Route, RoutingTable
from gpustack.gateway.usage import UsageWatch, ask_for_usage, usage_watch
from gpustack.server.db import Database
from gpustack.server.security import proxy_credential

_MULTIPART_MODEL = re.compile(rb'name="model"\r\n\r\n([^\r]*)\r\n')


@dataclass
class Gateway:
    db: Database
    secret_key: bytes
    client: httpx.AsyncClient
    first_byte_timeout: float = 5.0
    table: RoutingTable = field(default_factory=RoutingTable)
    callers: CallerCache = field(default_factory=CallerCache)
    health: WorkerHealth = field(default_factory=WorkerHealth)
    meter: Meter | None = None  # None: metering off (nothing counted, the stream bytes pass untouched)
    _credentials: dict[str, str] = field(default_factory=dict)

    def credential(self, route: Route) -> str:
        key = f"{route.worker_name}:{route.proxy_nonce}"
        if key not in self._credentials:
            if len(self._credentials) > 10_000:
                self._credentials.clear()
            self._credentials[key] = proxy_credential(self.secret_key, route.worker_name, route.proxy_nonce)
        return self._credentials[key]

    async def ensure_fresh(self) -> None:
        if self.table.dirty:
            await self.table.refresh(self.db)


def _string(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


@dataclass
class Parsed:
    model: str | None
    watch: UsageWatch | None = None  # streamed requests only
    data: dict[str, object] | None = None  # the JSON body


def read_request(body: bytes, headers: dict[str, str]) -> Parsed | None:
    """Model name, usage watch and JSON from the body, parsed once; None when a JSON body is not a JSON object.

    Everything but uploads is JSON whatever the client said (`curl -d` sends a form type), so the
    forwarded content-type becomes application/json.
    """
    if headers.get("content-type", "").startswith("multipart/form-data"):
        match = _MULTIPART_MODEL.search(body)
        return Parsed(match.group(1).decode(errors="replace") if match else None)
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        raise InvalidError("The request body is JSON nested too deeply to parse.") from None
    if not isinstance(data, dict):
        return None
    headers["content-type"] = "application/json"
    return Parsed(_string(data.get("model")), usage_watch(data), data)


# Which model categories each endpoint serves (GPUStack's category names).
ENDPOINT_CATEGORIES = {
    "/v1/chat/completions": "llm",
    "/v1/completions": "llm",
    "/v1/embeddings": "embedding",
    "/v1/rerank": "reranker",
    "/v1/audio/speech": "text_to_speech",
    "/v1/audio/transcriptions": "speech_to_text",
    "/v1/images/generations": "image",
    "/v1/images/edits": "image",
}


def _model_object(name: str, entry: ModelRoutes) -> dict[str, object]:
    return {"id": name, "object": "model", "created": entry.created, "owned_by": "gpustack"}


def list_models(gateway: Gateway, caller: Caller) -> dict[str, object]:
    """Models this key may use that can answer now (at least one running replica on a ready worker)."""
    data = [
        _model_object(name, entry)
        for name, entry in sorted(gateway.table.models.items())
        if entry.routes and (not caller.allowed_models or name in caller.allowed_models)
    ]
    return {"object": "list", "data": data}


def retrieve_model(gateway: Gateway, caller: Caller, name: str) -> JSONResponse:
    """One model, under the same rule as the list; a 404 that says why otherwise."""
    entry = gateway.table.models.get(name)
    if entry is None or (caller.allowed_models and name not in caller.allowed_models):
        return openai_error(404, f"The model '{name}' does not exist.", "invalid_request_error", "model_not_found")
    if not entry.routes:
        message = f"The model '{name}' has no running replica right now (see its instances in /v2/model-instances)."
        return openai_error(404, message, "invalid_request_error", "model_not_found")
    return JSONResponse(_model_object(name, entry))


def unsupported_category(name: str, entry: ModelRoutes, path: str) -> str | None:
    """A message when the model's categories say it cannot serve `path`; None when it may."""
    wanted = ENDPOINT_CATEGORIES.get(path)
    if not entry.categories or wanted is None or wanted in entry.categories:
        return None
    kinds = ", ".join(entry.categories)
    return f"The model '{name}' is a {kinds} model; {path} needs a {wanted} model."


async def proxy_openai(gateway: Gateway, request: Request, caller: Caller, path: str) -> Response:
    """Forwards one OpenAI request; with metering on, its answer is counted as it passes."""
    body = await request.body()
    headers = dict(request.headers)
    parsed = read_request(body, headers)
    if gateway.meter is None:
        return await _proxy(gateway, request, caller, path, body, headers, parsed)
    metered = Metered(caller.user_id, caller.api_key_id, (parsed.model if parsed else None) or "", path)
    if parsed is not None and parsed.watch is not None and parsed.data is not None:
        metered.watch = parsed.watch
        if not parsed.watch.client_wants_usage:
            body = ask_for_usage(parsed.data, body)  # the usage chunk is hidden from the client again
    response = await _proxy(gateway, request, caller, path, body, headers, parsed, metered=True)
    if metered.model not in gateway.table.models:
        metered.model = ""  # a name no model has: not a label value (clients could invent any number)
    return gateway.meter.meter(metered, response)


async def _proxy(
    gateway: Gateway,
    request: Request,
    caller: Caller,
    path: str,
    body: bytes,
    headers: dict[str, str],
    parsed: Parsed | None,
    *,
    metered: bool = False,
) -> Response:
    if parsed is None:
        return openai_error(400, "The request body must be a JSON object.", "invalid_request_error")
    name, watch = parsed.model, parsed.watch
    if metered or (watch is not None and not watch.client_wants_usage):
        watch = None  # the meter relays the stream through its watch, or there is nothing to add or hide
    if not name:
        return openai_error(400, "The request needs a 'model' field.", "invalid_request_error")
    if caller.allowed_models and name not in caller.allowed_models:
        return openai_error(403, f"This API key may not use model '{name}'.", "permission_error")
    await gateway.ensure_fresh()
    entry = gateway.table.models.get(name)
    if entry is None:
        return openai_error(404, f"The model '{name}' does not exist.", "invalid_request_error", "model_not_found")
    if message := unsupported_category(name, entry, path):
        return openai_error(400, message, "invalid_request_error", "unsupported_model_category")
    routes = entry.ordered()
    if not routes:
        return openai_error(503, f"No running replica of model '{name}' right now.", "service_unavailable")
    credentials = {r.worker_name: gateway.credential(r) for r in routes}
    return await forward(
        gateway.client,
        name,
        routes,
        method=request.method,
        path=path,
        body=body,
        headers=headers,
        credentials=credentials,
        health=gateway.health,
        first_byte_timeout=gateway.first_byte_timeout,
        watch=watch,
    )
