"""Gateway service: picks the model from the request, checks access, forwards to a replica."""

import json
import re
from dataclasses import dataclass, field

import httpx
from fastapi import Request
from fastapi.responses import JSONResponse, StreamingResponse

from gpustack.core.errors import InvalidError
from gpustack.gateway.auth import Caller, CallerCache
from gpustack.gateway.forward import forward, openai_error
from gpustack.gateway.health import WorkerHealth
from gpustack.gateway.routing import Route, RoutingTable
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


def model_name_of(body: bytes, content_type: str) -> str | None:
    if content_type.startswith("multipart/form-data"):
        match = _MULTIPART_MODEL.search(body)
        return match.group(1).decode(errors="replace") if match else None
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    except RecursionError:
        raise InvalidError("The request body is JSON nested too deeply to parse.") from None
    value = data.get("model") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


def list_models(gateway: Gateway, caller: Caller) -> dict[str, object]:
    data = [
        {"id": name, "object": "model", "created": entry.created, "owned_by": "gpustack"}
        for name, entry in sorted(gateway.table.models.items())
        if not caller.allowed_models or name in caller.allowed_models
    ]
    return {"object": "list", "data": data}


async def proxy_openai(
    gateway: Gateway, request: Request, caller: Caller, path: str
) -> StreamingResponse | JSONResponse:
    body = await request.body()
    name = model_name_of(body, request.headers.get("content-type", ""))
    if not name:
        return openai_error(400, "The request needs a 'model' field.", "invalid_request_error")
    if caller.allowed_models and name not in caller.allowed_models:
        return openai_error(403, f"This API key may not use model '{name}'.", "permission_error")
    await gateway.ensure_fresh()
    entry = gateway.table.models.get(name)
    if entry is None:
        return openai_error(404, f"The model '{name}' does not exist.", "invalid_request_error", "model_not_found")
    routes = entry.ordered()
    if not routes:
        return openai_error(503, f"No running replica of model '{name}' right now.", "service_unavailable")
    credentials = {r.worker_name: gateway.credential(r) for r in routes}
    return await forward(
        gateway.client,
        routes,
        method=request.method,
        path=path,
        body=body,
        headers=dict(request.headers),
        credentials=credentials,
        health=gateway.health,
        first_byte_timeout=gateway.first_byte_timeout,
    )
