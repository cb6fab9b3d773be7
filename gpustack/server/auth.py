"""Request authentication: API key / worker credential bearer, HTTP Basic, session cookie."""

import base64
import binascii
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from gpustack.core.errors import ForbiddenError, UnauthorizedError
from gpustack.schemas.api_keys import ApiKey, Scope
from gpustack.schemas.users import User
from gpustack.schemas.workers import Worker
from gpustack.server.security import WORKER_PREFIX
from gpustack.server.services import api_keys as api_key_service
from gpustack.server.services import users as user_service
from gpustack.server.services import workers as worker_service

SESSION_COOKIE = "gpustack_session"


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    db = request.app.state.db
    async with db.session() as session:
        await db.check_recovered(session)
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


@dataclass
class Principal:
    user: User | None = None
    worker: Worker | None = None
    api_key: ApiKey | None = None

    @property
    def is_admin(self) -> bool:
        return bool(self.user and self.user.is_admin)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _from_header(request: Request, session: AsyncSession, header: str) -> Principal:
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        if value.startswith(WORKER_PREFIX + "_"):
            return Principal(worker=await worker_service.authenticate_worker(session=session, value=value))
        user, key = await api_key_service.verify_api_key(session=session, value=value)
        return Principal(user=user, api_key=key)
    if scheme.lower() == "basic":
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise UnauthorizedError("malformed Basic credentials") from None
        user = await user_service.authenticate(
            session=session,
            username=username,
            password=password,
            throttle=request.app.state.login_throttle,
            address=client_address(request),
        )
        return Principal(user=user)
    raise UnauthorizedError(f"unsupported authorization scheme '{scheme}'")


def authorization_header(request: Request) -> str | None:
    """`Authorization`, or GPUStack's `X-API-Key: <key>` header read as `Bearer <key>`."""
    header = request.headers.get("authorization")
    if header:
        return header
    api_key = request.headers.get("x-api-key", "").strip()
    return f"Bearer {api_key}" if api_key else None


async def get_principal(request: Request, session: SessionDep) -> Principal:
    header = authorization_header(request)
    if header:
        principal = await _from_header(request, session, header)
        if principal.api_key is not None and request.url.path.startswith("/v2/"):
            api_key_service.require_scope(principal.api_key, Scope.MANAGEMENT)
        return principal
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        user = await user_service.session_user(session=session, secret_key=request.app.state.secret_key, cookie=cookie)
        if user is not None:
            return Principal(user=user)
    raise UnauthorizedError("authentication required")


PrincipalDep = Annotated[Principal, Depends(get_principal)]


async def get_current_user(principal: PrincipalDep) -> User:
    if principal.user is None:
        raise ForbiddenError("this endpoint is for users, not workers")
    return principal.user


async def get_admin(user: Annotated[User, Depends(get_current_user)]) -> User:
    if not user.is_admin:
        raise ForbiddenError("admin rights required")
    return user


async def get_worker(principal: PrincipalDep) -> Worker:
    if principal.worker is None:
        raise ForbiddenError("this endpoint is for workers")
    return principal.worker


async def get_admin_or_worker(principal: PrincipalDep) -> Principal:
    if not (principal.is_admin or principal.worker is not None):
        raise ForbiddenError("admin rights required")
    return principal


CurrentUser = Annotated[User, Depends(get_current_user)]
AdminUser = Annotated[User, Depends(get_admin)]
CurrentWorker = Annotated[Worker, Depends(get_worker)]
AdminOrWorker = Annotated[Principal, Depends(get_admin_or_worker)]
