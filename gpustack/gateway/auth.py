"""Gateway authentication with a short-lived cache, so the request path rarely touches the DB."""

import hashlib
import time
from dataclasses import dataclass

from fastapi import Request

from gpustack.core.errors import UnauthorizedError
from gpustack.server.auth import get_principal

CACHE_SECONDS = 30.0
_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Caller:
    user_id: int
    allowed_models: frozenset[str]  # empty: every model


class CallerCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}

    async def resolve(self, request: Request) -> Caller:
        header = request.headers.get("authorization", "")
        key = hashlib.sha256(header.encode()).hexdigest() if header else ""
        now = time.monotonic()
        hit = self._entries.get(key) if key else None
        if hit is not None and hit[0] > now:
            return hit[1]
        caller = await self._authenticate(request)
        if key:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + CACHE_SECONDS, caller)
        return caller

    async def _authenticate(self, request: Request) -> Caller:
        async with request.app.state.db.session() as session:
            principal = await get_principal(request, session)
        if principal.user is None:
            raise UnauthorizedError("an API key or user credentials are required")
        allowed = principal.api_key.allowed_model_names if principal.api_key else []
        return Caller(user_id=principal.user.id, allowed_models=frozenset(allowed))  # type: ignore[arg-type]
