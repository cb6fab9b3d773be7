"""Gateway authentication with a short-lived cache, so the request path rarely touches the DB."""

import hashlib
import time
from dataclasses import dataclass
from datetime import datetime

from fastapi import Request

from gpustack.core.errors import UnauthorizedError
from gpustack.schemas.api_keys import Scope
from gpustack.schemas.common import utcnow
from gpustack.server.auth import authorization_header, get_principal
from gpustack.server.events import EventBus
from gpustack.server.services.api_keys import require_scope

CACHE_SECONDS = 30.0
_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class Caller:
    user_id: int
    allowed_models: frozenset[str]  # empty: every model
    expires_at: datetime | None = None  # the API key's expiry (naive UTC)
    api_key_id: int = 0  # 0: user credentials, no key (usage records say so)

    def cache_seconds(self) -> float:
        """Cached no longer than the key stays valid."""
        if self.expires_at is None:
            return CACHE_SECONDS
        return max(0.0, min(CACHE_SECONDS, (self.expires_at - utcnow()).total_seconds()))


class CallerCache:
    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Caller]] = {}

    async def resolve(self, request: Request) -> Caller:
        header = authorization_header(request) or ""
        key = hashlib.sha256(header.encode()).hexdigest() if header else ""
        now = time.monotonic()
        hit = self._entries.get(key) if key else None
        if hit is not None and hit[0] > now:
            return hit[1]
        caller = await self._authenticate(request)
        if key:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()
            self._entries[key] = (now + caller.cache_seconds(), caller)
        return caller

    def clear(self) -> None:
        self._entries.clear()

    async def _authenticate(self, request: Request) -> Caller:
        async with request.app.state.db.session() as session:
            principal = await get_principal(request, session)
        if principal.user is None:
            raise UnauthorizedError("an API key or user credentials are required")
        key = principal.api_key
        if key is not None:
            require_scope(key, Scope.INFERENCE)
        allowed = key.allowed_model_names if key else []
        return Caller(
            user_id=principal.user.id,  # type: ignore[arg-type]
            allowed_models=frozenset(allowed),
            expires_at=key.expires_at if key else None,
            api_key_id=(key.id or 0) if key else 0,
        )


async def clear_on_changes(bus: EventBus, kind: str, callers: CallerCache) -> None:
    """Any change to `kind` (users, api_keys) drops every cached caller, so a deleted or demoted
    credential stops working at once."""
    while not bus.closed:
        with bus.subscribe(kind) as sub:
            while await sub.queue.get() is not None:
                callers.clear()
            callers.clear()  # overflowed or closed: subscribe again
